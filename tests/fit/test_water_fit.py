"""fit-pqeq for water: per-molecule charge groups, atomic-polar-tensor targets, forced test families,
per-kind metrics."""

import math

import ase
import numpy as np
import pytest
import torch

from openmm_pqeq.electrostatics import PQEq
from openmm_pqeq.electrostatics.implicit import analytic_polarizability
from openmm_pqeq.fit.pqeq_fit import (Structure, build_pqeq, load_structures, loss_terms, metrics, predict, split,
                                      water_monomer_axes)
from openmm_pqeq.units import COULOMB_EV_A

DIMER = torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0],
                      [0.1, -0.2, 2.95], [0.8, -0.75, 3.1], [-0.65, -0.8, 3.05]], dtype=torch.float64)
NUMBERS = torch.tensor([8, 1, 1, 8, 1, 1])
GROUPS = torch.tensor([0, 0, 0, 1, 1, 1])
SPEC = {"chi": ["O"], "J": "all", "R": ["H"], "Ks": "all"}


def _pqeq():
    pqeq = build_pqeq([1, 8], "reaxnet", SPEC, 1e-11, 1e-10)
    with torch.no_grad():
        for k, param in enumerate(pqeq.trainable_parameters.parameters()):
            param.copy_(torch.linspace(-0.2, 0.3, param.numel()) + 0.05 * k)
    return pqeq


def _structure(groups):
    return Structure(name="dimer", positions=DIMER, numbers=NUMBERS, charge=0.0, dipole=torch.zeros(3),
                     polarizability=torch.zeros(3, 3), field_step=0.05, field_energies=torch.zeros(6),
                     esp_points=torch.zeros(0, 3), esp_values=torch.zeros(0), groups=groups,
                     apt=torch.zeros(6, 3, 3), kind="gas")


def test_polarizability_with_one_group_per_molecule_matches_finite_fields():
    pqeq = PQEq(["O", "H"], charge_tolerance=1e-11, shell_tolerance=1e-10, predictor_order=0)
    out = pqeq(DIMER, NUMBERS, None, torch.zeros(3), 0.0, GROUPS)
    p = pqeq.atom_parameters(NUMBERS, torch.float64)
    alpha = analytic_polarizability(pqeq, DIMER, out["charges"], out["shell_displacements"], p, GROUPS, 2)
    step = 1e-3
    columns = []
    for axis in range(3):
        f = torch.zeros(3)
        f[axis] = step
        up = pqeq(DIMER, NUMBERS, None, f, 0.0, GROUPS)["dipole"]
        down = pqeq(DIMER, NUMBERS, None, -f, 0.0, GROUPS)["dipole"]
        columns.append((up - down) / (2 * step) * COULOMB_EV_A)
    assert torch.allclose(alpha, torch.stack(columns, 1), atol=1e-5)
    total = analytic_polarizability(pqeq, DIMER, *(lambda o: (o["charges"], o["shell_displacements"]))(
        pqeq(DIMER, NUMBERS, None, torch.zeros(3), 0.0)), p)
    assert torch.trace(total) > torch.trace(alpha) + 0.1  # charge flow between the molecules


def test_model_apt_equals_dipole_derivatives():
    """predict()'s APT (finite-field forces) against ∂μ_b/∂r_ia from displaced geometries (Maxwell relation)."""
    pqeq = PQEq(["O", "H"], charge_tolerance=1e-11, shell_tolerance=1e-10, predictor_order=0)
    s = _structure(GROUPS)
    with torch.no_grad():
        apt = predict(pqeq, s, ("apt",))["apt"]
    assert torch.allclose(apt.sum(0), torch.zeros(3, 3), atol=1e-6)  # neutral: no net force in a field
    h = 1e-4
    for i, a in [(0, 0), (1, 2), (4, 1), (5, 0)]:
        dipoles = []
        for sign in (1.0, -1.0):
            moved = DIMER.clone()
            moved[i, a] += sign * h
            dipoles.append(pqeq(moved, NUMBERS, None, torch.zeros(3), 0.0, GROUPS)["dipole"])
        assert torch.allclose(apt[i, a], (dipoles[0] - dipoles[1]) / (2 * h), atol=2e-4), (i, a)


def test_loss_with_apt_has_exact_parameter_gradients():
    pqeq = _pqeq()
    s = _structure(GROUPS)
    s.apt = torch.full((6, 3, 3), 0.1)
    s.dipole = torch.tensor([0.1, 0.2, 0.3])
    weights = {"dipole": 1.0, "polarizability": 1.0, "apt": 1.0}
    scales = {"dipole": 0.1, "polarizability": 1.0, "apt": 0.05}
    params = list(pqeq.trainable_parameters.parameters())
    grads = torch.autograd.grad(loss_terms(pqeq, [s], weights, scales)["loss"], params)
    h = 1e-5
    for param, grad in zip(params, grads):
        for k in range(param.numel()):
            values = []
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    param[k] += sign * h
                with torch.no_grad():
                    values.append(float(loss_terms(pqeq, [s], weights, scales)["loss"]))
                with torch.no_grad():
                    param[k] -= sign * h
            fd = (values[0] - values[1]) / (2 * h)
            assert abs(float(grad[k]) - fd) <= 1e-5 * max(1.0, abs(fd)), (param.shape, k, float(grad[k]), fd)


def test_load_structures_groups_apt_split_and_metrics(tmp_path):
    import ase.io

    frames = []
    for k, (pos, kind) in enumerate([(DIMER.numpy(), "gas"), (DIMER.numpy()[:3], "monomer"),
                                     (DIMER.numpy()[3:], "monomer")]):
        atoms = ase.Atoms(numbers=NUMBERS.numpy()[: len(pos)], positions=pos)
        n = len(atoms)
        atoms.info.update({"name": f"s{k}", "family": f"s{k}", "kind": kind, "charge": 0, "dipole": np.zeros(3),
                           "polarizability": np.eye(3).ravel() * 1.5, "field_step": 0.1,
                           "field_energies": np.zeros(6)})
        forces = np.zeros((n, 18))
        forces[:, 0] = np.linspace(-1, 1, n) * 0.02  # F_x at +0.1 x: APT_xx = 0.1 * (...)
        atoms.arrays["field_forces"] = forces
        frames.append(atoms)
    ase.io.write(tmp_path / "r.extxyz", frames)
    structures = load_structures(tmp_path / "r.extxyz", {"rule": "molecules"})
    assert structures[0].groups.tolist() == GROUPS.tolist() and structures[1].groups.tolist() == [0, 0, 0]
    assert structures[0].apt.shape == (6, 3, 3)
    assert torch.allclose(structures[0].apt[:, 0, 0], torch.linspace(-1, 1, 6) * 0.02 / 0.2)
    assert load_structures(tmp_path / "r.extxyz")[0].groups is None
    parts = split(structures, 0.0, 0, test_families=["s2"])
    assert parts == {"train": [0, 1], "test": [2]}
    m = metrics(PQEq(["O", "H"], charge_tolerance=1e-10, shell_tolerance=1e-9), structures)
    assert set(m["by_kind"]) == {"gas", "monomer"} and m["by_kind"]["monomer"]["n_structures"] == 2
    assert len(m["by_kind"]["monomer"]["monomer_components_relative_mae"]) == 3
    assert math.isfinite(m["apt_mae_e"]) and m["apt_rmse_e"] >= m["apt_mae_e"]


def test_water_monomer_axes():
    axes = water_monomer_axes(torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]]))
    assert torch.allclose(axes @ axes.T, torch.eye(3), atol=1e-12)
    assert torch.allclose(axes[1], torch.tensor([0.0, 1.0, 0.0])) and torch.allclose(axes[2].abs(),
                                                                                     torch.tensor([0.0, 0.0, 1.0]))


def test_per_molecule_errors_and_kind_weights():
    pqeq = PQEq(["O", "H"], charge_tolerance=1e-10, shell_tolerance=1e-9)
    dimer = _structure(GROUPS)
    dimer.polarizability = torch.eye(3) * 2.0
    weights, scales = {"polarizability": 1.0}, {"polarizability": 1.0}
    with torch.no_grad():
        plain = float(loss_terms(pqeq, [dimer], weights, scales)["polarizability"])
        per_molecule = float(loss_terms(pqeq, [dimer], weights, scales, ["polarizability"])["polarizability"])
        assert per_molecule == pytest.approx(plain / 4)  # squared errors of a 2-molecule cluster, divided by 2
        monomer = _structure(torch.tensor([0, 0, 0]))
        monomer.positions, monomer.numbers, monomer.kind = DIMER[:3], NUMBERS[:3], "monomer"
        monomer.apt = None
        alone = float(loss_terms(pqeq, [monomer], weights, scales)["polarizability"])
        mixed = float(loss_terms(pqeq, [dimer, monomer], weights, scales, kind_weights={"monomer": 3.0})
                      ["polarizability"])
        assert mixed == pytest.approx((plain + 3.0 * alone) / 4.0)  # 9 components each, weights 1 and 3


def test_fit_records_the_bounds_of_every_free_parameter_kind(tmp_path):
    """A fit's provenance lists the bound of the free shell anisotropy beside the per-element bounds
    (the values given in the configuration, not the defaults)."""
    import ase.io

    from openmm_pqeq.fit.pqeq_fit import FitConfig, fit

    frames = []
    for k, shift in enumerate((0.0, 0.05, -0.05)):
        atoms = ase.Atoms(numbers=NUMBERS.numpy()[:3], positions=DIMER.numpy()[:3] * (1.0 + shift))
        atoms.info.update({"name": f"m{k}", "family": f"m{k}", "kind": "monomer", "charge": 0,
                           "dipole": np.array([0.0, 0.7, 0.0]), "polarizability": np.eye(3).ravel() * 10.0,
                           "field_step": 0.1, "field_energies": np.zeros(6)})
        frames.append(atoms)
    ase.io.write(tmp_path / "r.extxyz", frames)
    config = FitConfig.from_dict({
        "data": str(tmp_path / "r.extxyz"), "charge_constraint": {"rule": "molecules"},
        "trainable": {"J": ["O"], "Ks_aniso": ["O:H"], "bounds": {"J": 1.5, "Ks_aniso": 0.3}},
        "weights": {"dipole": 1.0, "polarizability": 1.0, "field_energy": 0.0, "esp": 0.0, "apt": 0.0},
        "test_families": ["m2"], "epochs": 2, "output": str(tmp_path / "set.json"), "name": "tiny"})
    result = fit(config, progress=False, log=lambda *_: None)
    bounds = result["provenance"]["bounds"]
    assert bounds["J"] == 1.5 and bounds["Ks_aniso"] == 0.3
    assert "kappa" not in bounds and "Ks_bonds" not in bounds
