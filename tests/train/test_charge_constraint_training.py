"""Training under a charge-constraint policy: groups per frame, Δ-targets under them, the policy
recorded in the model file and used again by ``openmm-pqeq test`` and finetuning."""

import pytest
import torch

from openmm_pqeq.charge_constraint import ChargeConstraint, policy_of
from openmm_pqeq.io import load_model, read_model_file
from openmm_pqeq.model import energy_forces_stress
from openmm_pqeq.train import train
from openmm_pqeq.train.evaluation import model_errors

MOLECULES = {"rule": "molecules", "bond_factor": 1.3}


@pytest.fixture(scope="module")
def neutral_data(tmp_path_factory, reference):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        frames = [f for f in reference.make_frames(seed=4, n_open=18) if f[3] == 0.0]
        path = tmp_path_factory.mktemp("neutral") / "neutral.extxyz"
        return reference.write_data(path, reference.label_frames(frames))
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture(scope="module")
def molecular_run(neutral_data, tmp_path_factory, reference):
    config = reference.tiny_config(neutral_data, tmp_path_factory.mktemp("mol") / "out", training={"epochs": 1},
                                   model={"charge_constraint": MOLECULES})
    return train(config)


def test_policy_is_recorded_and_targets_use_groups(molecular_run, neutral_data):
    metadata = read_model_file(molecular_run.model_path)["metadata"]
    assert metadata["charge_constraint"] == ChargeConstraint.from_dict(MOLECULES).to_dict()
    model = load_model(molecular_run.model_path)
    assert policy_of(model).molecular
    # the test command (model_errors) reproduces the final errors: it uses the recorded rule
    errors = model_errors(molecular_run.model_path, neutral_data, split="test")
    assert errors["energy_mae"] == pytest.approx(molecular_run.metrics["test"]["energy_mae"], rel=1e-6)
    assert errors["forces_mae"] == pytest.approx(molecular_run.metrics["test"]["forces_mae"], rel=1e-6)


def test_long_range_targets_are_per_molecule(neutral_data):
    from openmm_pqeq.model import build_model
    from openmm_pqeq.train.data import load_dataset
    from openmm_pqeq.train.longrange import attach_long_range

    config = {"elements": [1, 8], "pqeq": {"charge_tolerance": 1e-10, "shell_tolerance": 1e-9}, "d3": None}
    dataset = attach_long_range(load_dataset(neutral_data, charge_constraint=ChargeConstraint("molecules")), config)
    lr = build_model({**config, "e0": None})
    frame = next(k for k in range(len(dataset)) if int(dataset.n_groups[k]) > 1)
    lo, hi = int(dataset.offsets[frame]), int(dataset.offsets[frame + 1])
    groups = dataset.groups[lo:hi]
    assert groups.tolist() == sorted(groups.tolist()) and int(groups.max()) + 1 == (hi - lo) // 3
    out = energy_forces_stress(lr, dataset.positions[lo:hi], dataset.numbers[lo:hi], None, dataset.field[frame],
                               0.0, groups)
    assert float(dataset.lr_energy[frame]) == pytest.approx(float(out["energy"]), abs=1e-9)
    assert torch.allclose(dataset.lr_forces[lo:hi], out["forces"], atol=1e-8)


def test_finetuning_keeps_the_rule_and_rejects_another(molecular_run, neutral_data, tmp_path, reference):
    config = reference.tiny_config(neutral_data, tmp_path / "ft", training={"epochs": 1},
                                   model={"init": str(molecular_run.model_path)})
    assert policy_of(load_model(train(config).model_path)).molecular
    other = reference.tiny_config(neutral_data, tmp_path / "ft2", training={"epochs": 1},
                                  model={"init": str(molecular_run.model_path), "charge_constraint": {"rule": "total"}})
    with pytest.raises(ValueError, match="differs from the rule model"):
        train(other)


def test_bad_policy_in_config(reference, neutral_data, tmp_path):
    with pytest.raises(ValueError, match="model.charge_constraint"):
        reference.tiny_config(neutral_data, tmp_path, model={"charge_constraint": {"rule": "molecule"}})
