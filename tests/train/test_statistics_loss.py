"""Per-element shift and scale, Δ-learning targets, and the loss."""

import math

import numpy as np
import pytest
import torch

from openmm_pqeq.train.config import LossConfig
from openmm_pqeq.train.data import StructureDataset, atoms_to_tensors, load_dataset
from openmm_pqeq.train.longrange import attach_long_range
from openmm_pqeq.train.loss import ErrorSums, Loss, format_table
from openmm_pqeq.train.statistics import delta_targets, fit_statistics

NO_LONG_RANGE = {"elements": [1, 8], "pqeq": None, "d3": None}


def _molecules(seed=0):
    """Frames of varied composition: H2, O2, OH, H2O, H2O2, HO2 with random geometry."""
    from ase import Atoms

    rng = np.random.default_rng(seed)
    formulas = ["H2", "O2", "OH", "H2O", "H2O2", "HO2", "H3O", "O3"]
    return [Atoms(f, positions=rng.normal(scale=1.5, size=(len(Atoms(f)), 3))) for f in formulas * 3]


def test_least_squares_shift_recovers_known_shifts():
    shifts = {1: -13.61, 8: -432.05}
    frames = _molecules()
    rng = np.random.default_rng(1)
    for atoms in frames:
        atoms.info["energy"] = sum(shifts[z] for z in atoms.numbers) + rng.normal(scale=1e-3)
    dataset = StructureDataset(atoms_to_tensors(frames))
    attach_long_range(dataset, NO_LONG_RANGE)
    fitted = fit_statistics(dataset, [1, 8], "least_squares", "force_rms")
    assert fitted["shift"][1] == pytest.approx(shifts[1], abs=2e-3)
    assert fitted["shift"][8] == pytest.approx(shifts[8], abs=2e-3)
    # no forces: the scale is the RMS per-atom residual after the shift (the noise level)
    assert 0 < fitted["scale"][1] == fitted["scale"][8] < 1e-3
    assert fit_statistics(dataset, [1, 8], "none", 0.5) == {"scale": {1: 0.5, 8: 0.5}}
    assert fit_statistics(dataset, [1, 8], {"H": -1.0}, "none") == {"shift": {1: -1.0}}


def test_scale_is_force_rms_of_delta_target(water_data):
    dataset = load_dataset(water_data)
    attach_long_range(dataset, NO_LONG_RANGE)
    fitted = fit_statistics(dataset, [1, 8])
    rms = float(dataset.forces.pow(2).mean().sqrt())
    assert fitted["scale"][1] == pytest.approx(rms) and fitted["scale"][8] == pytest.approx(rms)


def test_delta_target_excludes_pqeq_and_d3(long_range_only_data, reference):
    """The reference IS shifts + PQEq + D3: the E0 target is the shifts alone, zero forces."""
    D3, PQEQ, SHIFTS = reference.D3, reference.PQEQ, reference.SHIFTS
    dataset = load_dataset(long_range_only_data)
    attach_long_range(dataset, {"elements": [1, 8], "pqeq": PQEQ, "d3": D3})
    target = delta_targets(dataset)
    counts = torch.stack([(dataset.subset([k]).numbers == z).sum() for k in range(len(dataset))
                          for z in (1, 8)]).view(-1, 2).to(torch.float64)
    expected = counts @ torch.tensor([SHIFTS[1], SHIFTS[8]], dtype=torch.float64)
    assert torch.allclose(target["energy"], expected, atol=1e-8)
    assert target["forces"].abs().max() < 1e-8
    assert dataset.lr_energy.abs().min() > 1e-3  # the long-range part is not trivial
    fitted = fit_statistics(dataset, [1, 8])
    assert fitted["shift"][1] == pytest.approx(SHIFTS[1], abs=1e-6)
    assert fitted["shift"][8] == pytest.approx(SHIFTS[8], abs=1e-6)
    assert fitted["scale"] == {1: 1.0, 8: 1.0}


def _fake(energy_err, force_err, stress_err=None):
    n_atoms = torch.tensor([2, 4])
    batch = StructureDataset({
        "positions": torch.zeros(6, 3), "numbers": torch.ones(6, dtype=torch.long), "forces": torch.zeros(6, 3),
        "n_atoms": n_atoms, "cell": torch.zeros(2, 3, 3), "periodic": torch.tensor([False, True]),
        "energy": torch.zeros(2), "has_energy": torch.tensor([True, True]),
        "has_forces": torch.tensor([True, True]), "stress": torch.zeros(2, 3, 3),
        "has_stress": torch.tensor([False, stress_err is not None]), "charge": torch.zeros(2),
        "field": torch.zeros(2, 3), "frame": torch.arange(2), "groups": torch.zeros(6, dtype=torch.long),
        "n_groups": torch.ones(2, dtype=torch.long)}).batch([0, 1])
    stress = torch.zeros(2, 3, 3)
    if stress_err is not None:
        stress[1] = stress_err
    pred = {"energy": torch.tensor(energy_err, dtype=torch.float64) * n_atoms, "forces": torch.full((6, 3), force_err),
            "stress": stress}
    return pred, batch


def test_loss_published_weights_and_force_only():
    pred, batch = _fake([0.01, -0.03], 0.2, stress_err=0.001)
    rmse_e, rmse_f, rmse_s = math.sqrt((0.01 ** 2 + 0.03 ** 2) / 2), 0.2, 0.001
    assert float(Loss()(pred, batch)) == pytest.approx(1 * rmse_e + 10 * rmse_f + 100 * rmse_s)
    mse = Loss(LossConfig(form="mse"))(pred, batch)
    assert float(mse) == pytest.approx(rmse_e ** 2 + 10 * rmse_f ** 2 + 100 * rmse_s ** 2)
    force_only = Loss(LossConfig(force_only=True, form="mse", forces_weight=1.0))
    assert float(force_only(pred, batch)) == pytest.approx(0.04)
    with pytest.raises(ValueError, match="options are"):
        Loss(LossConfig(form="mae"))


def test_error_sums_report_mae_rmse_in_mev():
    sums = ErrorSums()
    pred, batch = _fake([0.01, -0.03], 0.2)
    sums.add(pred, batch, loss=1.0)
    again = ErrorSums.from_tensor(sums.to_tensor())
    m = again.metrics()
    assert m["energy_mae"] == pytest.approx(20.0) and m["energy_rmse"] == pytest.approx(1000 * math.sqrt(5e-4))
    assert m["forces_mae"] == pytest.approx(200.0) and "stress_mae" not in m
    table = format_table(m, "title")
    assert "meV/atom" in table and "meV/Å" in table and "stress" not in table


def test_long_range_cache_is_keyed_by_configuration(periodic_data, tmp_path):
    """Changing the D3 (or PQEq) settings recomputes the long-range terms; the same settings reuse them."""
    first = {"elements": [1, 8], "pqeq": None, "d3": {"cutoff": 8.0, "cn_cutoff": 8.0}}
    second = {"elements": [1, 8], "pqeq": None, "d3": {"cutoff": 8.0, "cn_cutoff": 8.0, "damping": "bj"}}
    a = attach_long_range(load_dataset(periodic_data, cache_dir=tmp_path), first)
    b = attach_long_range(load_dataset(periodic_data, cache_dir=tmp_path), second)
    assert len(list(tmp_path.glob("*.lr-*.pt"))) == 2
    assert not torch.allclose(a.lr_energy, b.lr_energy)
    again = attach_long_range(load_dataset(periodic_data, cache_dir=tmp_path), first)
    assert torch.equal(again.lr_forces, a.lr_forces) and torch.equal(again.lr_stress, a.lr_stress)
    assert a.lr_stress[a.periodic].abs().sum() > 0 and a.lr_stress[~a.periodic].abs().sum() == 0


def _two_molecule_batch():
    """Frame 0: one group of 2 atoms; frame 1: two groups of 2 atoms each (atoms 2,3 and 4,5)."""
    return StructureDataset({
        "positions": torch.zeros(6, 3), "numbers": torch.ones(6, dtype=torch.long), "forces": torch.zeros(6, 3),
        "n_atoms": torch.tensor([2, 4]), "cell": torch.zeros(2, 3, 3), "periodic": torch.tensor([False, False]),
        "energy": torch.zeros(2), "has_energy": torch.tensor([True, True]),
        "has_forces": torch.tensor([True, True]), "stress": torch.zeros(2, 3, 3),
        "has_stress": torch.tensor([False, False]), "charge": torch.zeros(2),
        "field": torch.zeros(2, 3), "frame": torch.arange(2), "groups": torch.tensor([0, 0, 0, 1, 0, 1]),
        "n_groups": torch.tensor([1, 2])}).batch([0, 1])


def test_molecule_force_term_is_the_net_force_error_of_each_group():
    """Groups {2, 4} and {3, 5} of frame 1 (interleaved on purpose): errors summed per group; the
    single-group frame 0 carries no molecular term, whatever its atoms' errors."""
    batch = _two_molecule_batch()
    errors = torch.zeros(6, 3, dtype=torch.float64)
    errors[0, 0], errors[1, 0] = 5.0, -1.0         # frame 0: ignored
    errors[2] = torch.tensor([0.1, 0.0, 0.0])
    errors[4] = torch.tensor([0.2, 0.0, 0.3])      # group 0 of frame 1: (0.3, 0, 0.3)
    errors[3] = torch.tensor([0.0, 0.4, 0.0])
    errors[5] = torch.tensor([0.0, -0.4, 0.0])     # group 1: zero net error (an internal force error)
    pred = {"energy": torch.zeros(2, dtype=torch.float64), "forces": errors, "stress": torch.zeros(2, 3, 3)}
    config = LossConfig(energy_weight=0.0, forces_weight=0.0, molecule_forces_weight=2.0)
    expected_rmse = math.sqrt((0.3 ** 2 + 0.3 ** 2) / 6)
    assert float(Loss(config)(pred, batch)) == pytest.approx(2.0 * expected_rmse)
    sums = ErrorSums()
    sums.add(pred, batch)
    metrics = ErrorSums.from_tensor(sums.to_tensor()).metrics()
    assert metrics["molecule_forces_rmse"] == pytest.approx(1000 * expected_rmse)
    assert metrics["molecule_forces_mae"] == pytest.approx(1000 * 0.6 / 6)
    assert "molecule forces" in format_table(metrics)


def test_molecule_force_weight_needs_groups(tmp_path):
    """Weighting molecular forces under one total charge per frame (no groups) is an error that
    names the remedy, not a silently empty term."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    import ase.io

    from openmm_pqeq.train import TrainConfig, Trainer

    frames = []
    for shift in (2.8, 3.0, 3.2, 3.4):
        atoms = Atoms("OH2OH2", positions=[[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0],
                                           [shift, 0, 0], [shift + 0.76, 0.59, 0], [shift - 0.76, 0.59, 0]])
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((6, 3)))
        frames.append(atoms)
    ase.io.write(tmp_path / "dimers.extxyz", frames)
    config = TrainConfig.from_dict({
        "data": {"train": str(tmp_path / "dimers.extxyz"), "validation_fraction": 0.25, "test_fraction": 0.0},
        "model": {"elements": [1, 8], "e0": {"preset": "small", "r_max": 3.0}, "pqeq": None, "d3": None,
                  "charge_constraint": {"rule": "total"}},
        "loss": {"molecule_forces_weight": 1.0},
        "training": {"epochs": 1}, "output": {"dir": str(tmp_path / "run")}, "device": "cpu"})
    with pytest.raises(ValueError, match="molecule_forces_weight.*rule: molecules"):
        Trainer(config).setup()
