"""Model files record the range of their training data; inputs outside it warn once per
kind, and a shell displaced beyond the 0.5 Å bound is an error."""

import warnings

import ase.io
import numpy as np
import pytest
import torch

from helpers import REPO_DATA, WATER, water_dimer
from openmm_pqeq.io import load_model, read_model_file, save_model
from openmm_pqeq.model import build_model, script_model
from openmm_pqeq.training_range import METADATA_KEY, set_training_range, training_range_of

NEUTRAL_WEAK_FIELD = {"elements": ["H", "O"], "total_charges": [0.0, 0.0], "max_field_V_per_A": 0.5}


@pytest.mark.parametrize("name, training_file, train_frames", [
    ("water-demo", "water_model_train.extxyz", 440),  # 489 frames less the 10 % validation split
    ("water-demo-v1", "water_demo_train.extxyz", 362),  # the training split of its provenance
])
def test_shipped_water_models_record_their_training_range(name, training_file, train_frames):
    recorded = training_range_of(load_model(name))
    frames = ase.io.read(REPO_DATA / training_file, ":")  # all splits: bounds the training split
    fields = [np.linalg.norm(a.info.get("field", np.zeros(3))) for a in frames]
    assert recorded["elements"] == ["H", "O"]
    assert recorded["total_charges"] == [0.0, 0.0] and {a.info["charge"] for a in frames} == {0}
    assert 0.25 <= recorded["max_field_V_per_A"] <= max(fields) + 1e-12
    assert recorded["frames"] == train_frames


def _messages(caught):
    return [str(w.message) for w in caught if "training range" in str(w.message)]


@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "torchscript"])
def test_inputs_outside_the_training_range_warn_once_per_kind(scripted):
    model = build_model({"elements": ["O", "H", "C"], "pqeq": {}})
    set_training_range(model, NEUTRAL_WEAK_FIELD)
    run = script_model(model) if scripted else model
    positions, numbers = water_dimer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(positions, numbers, None, torch.tensor([0.0, 0.0, 0.4]), 0.0)  # inside: nothing
        assert _messages(caught) == []
        for _ in range(3):
            run(positions, numbers, None, torch.tensor([0.0, 0.0, 2.0]), 1.0)
        carbon = numbers.clone()
        carbon[3] = 6
        run(positions, carbon, None, torch.tensor([0.0, 0.0, 0.1]), 0.0)
    messages = _messages(caught)
    assert len(messages) == 3
    assert sum("field of 2" in m and "strongest field in the training data was 0.5 V/Å" in m for m in messages) == 1
    assert sum("total charge 1" in m and "0 to 0 e" in m for m in messages) == 1
    assert sum("element C was not in the training data (elements H, O)" in m for m in messages) == 1


def test_a_runaway_shell_is_an_error():
    model = load_model("water-demo")
    positions, numbers = water_dimer()
    out = model(positions, numbers, None, torch.tensor([0.0, 0.0, 0.25]), 0.0)
    # the demo's field: well below the bound (the O shells of the pqeq-water model sit about 0.16 Å
    # off their cores, mostly from the molecule's own field)
    assert out["shell_displacements"].norm(dim=1).max() < 0.25
    with pytest.raises(ValueError, match=r"the shell of atom \d+ moved \d+\.\d+ Å from its core \(bound 0.5 Å\)"):
        model(positions, numbers, None, torch.tensor([0.0, 0.0, 12.0]), 0.0)


def test_model_files_carry_metadata_they_do_not_interpret(tmp_path):
    model = build_model({"elements": ["O", "H"], "pqeq": {}})
    set_training_range(model, NEUTRAL_WEAK_FIELD)
    first = save_model(model, tmp_path / "first.pt")
    payload = read_model_file(first)
    payload["metadata"]["written_by_a_newer_version"] = {"rule": 42}
    torch.save(payload, first)
    second = save_model(load_model(first), tmp_path / "second.pt")
    metadata = read_model_file(second)["metadata"]
    assert metadata["written_by_a_newer_version"] == {"rule": 42}
    assert metadata[METADATA_KEY] == NEUTRAL_WEAK_FIELD


def test_single_water_has_no_training_range_warning_without_a_range():
    model = build_model({"elements": ["O", "H"], "pqeq": {}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model(torch.tensor(WATER), torch.tensor([8, 1, 1]), None, torch.tensor([0.0, 0.0, 3.0]), 0.0)
    assert _messages(caught) == []
