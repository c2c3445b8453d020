"""Anisotropic shell springs K_i = K_s (I + Σ_b a g r̂ r̂ᵀ): the spring energy against an independent
formula, finite-difference forces and virial, α against finite fields, Born-charge sum rule,
bounds, errors, TorchScript and the fit-loss gradients."""

import io
import math

import numpy as np
import pytest
import torch
from ase.data import covalent_radii

from openmm_pqeq.electrostatics import PQEq
from openmm_pqeq.electrostatics.implicit import analytic_polarizability
from openmm_pqeq.electrostatics.response import born_charges
from openmm_pqeq.fit.pqeq_fit import Structure, build_pqeq, free_parameters, loss_terms, predict
from openmm_pqeq.units import COULOMB_EV_A

from helpers import assert_gradients_match_finite_differences, central_difference, strain_cell, water_box, water_dimer

TIGHT = dict(charge_tolerance=1e-11, shell_tolerance=1e-10, predictor_order=0)
FIELD = torch.tensor([0.05, -0.1, 0.2], dtype=torch.float64)
ANISO = {"O:H": 0.35, "H:O": -0.3}


def _pqeq(anisotropy=ANISO, **kwargs):
    return PQEq(["O", "H"], params="pqeq-water", shell_anisotropy=anisotropy, **{**TIGHT, **kwargs})


def _stretched_dimer():
    """The test dimer with one O–H bond inside the switch (between 1.1 and 1.5 × the radius sum)."""
    pos, num = water_dimer()
    pos = pos.clone()
    bond = pos[1] - pos[0]
    pos[1] = pos[0] + bond / bond.norm() * 1.25
    return pos, num


def _force_error(pqeq, positions, numbers, cell, field):
    x = positions.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(pqeq(x, numbers, cell, field)["energy"], x)
    fd = central_difference(lambda y: float(pqeq(y, numbers, cell, field)["energy"]), positions, h=1e-4)
    return float((grad - fd).abs().max() / fd.abs().max())


def _independent_spring_excess(positions, numbers, d, ks, coefficients):
    """½ Σ_i K_s,i d_iᵀ S_i d_i written out with numpy: every pair, the quintic switch, ase radii."""
    x, z, d = positions.numpy(), numbers.numpy(), d.numpy()
    total = 0.0
    for i in range(len(z)):
        s = np.zeros((3, 3))
        for j in range(len(z)):
            if i == j:
                continue
            a = coefficients.get(f"{'H' if z[i] == 1 else 'O'}:{'H' if z[j] == 1 else 'O'}", 0.0)
            rv = x[j] - x[i]
            r = np.linalg.norm(rv)
            radius = covalent_radii[z[i]] + covalent_radii[z[j]]
            t = min(max((r - 1.1 * radius) / (0.4 * radius), 0.0), 1.0)
            g = 1 - 10 * t ** 3 + 15 * t ** 4 - 6 * t ** 5
            s += a * g * np.outer(rv / r, rv / r)
        total += 0.5 * float(ks[i]) * d[i] @ s @ d[i]
    return total


def test_spring_energy_matches_an_independent_formula():
    pos, num = _stretched_dimer()
    iso, aniso = _pqeq({}), _pqeq()
    p = aniso.atom_parameters(num, torch.float64)
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(6, generator=gen, dtype=torch.float64) * 0.1
    d = torch.randn(6, 3, generator=gen, dtype=torch.float64) * 0.05
    args = (None, *iso.pairs(pos, None)[:3], FIELD, pos, 0.0)
    excess = float(aniso.energy(pos, q, d, p, *args) - iso.energy(pos, q, d, p, *args))
    expected = _independent_spring_excess(pos, num, d, p["Ks"], ANISO)
    assert abs(expected) > 1e-3  # the stretched bond and the others all contribute
    assert excess == pytest.approx(expected, rel=1e-10)


def test_zero_coefficients_free_are_the_isotropic_model():
    pos, num = water_dimer()
    iso = _pqeq({})(pos, num, None, FIELD)
    free = PQEq(["O", "H"], params="pqeq-water", trainable={"Ks_aniso": "all"}, **TIGHT)
    assert free.shell_anisotropy.enabled
    out = free(pos, num, None, FIELD)
    assert float(out["energy"]) == pytest.approx(float(iso["energy"]), abs=1e-12)
    assert torch.allclose(out["charges"], iso["charges"], atol=1e-10)


@pytest.mark.parametrize("field", [torch.zeros(3, dtype=torch.float64), FIELD], ids=["no-field", "field"])
def test_forces_open_system_with_a_bond_in_the_switch(field):
    pos, num = _stretched_dimer()
    assert _force_error(_pqeq(), pos, num, None, field) < 1e-6


def test_forces_and_virial_periodic():
    pos, num, cell = water_box()
    pqeq = _pqeq()
    assert _force_error(pqeq, pos, num, cell, FIELD) < 1e-6

    def energy_of_strain(eps):
        p, c = strain_cell(pos, cell, eps)
        return pqeq(p, num, c, FIELD)["energy"]

    eps = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    (virial,) = torch.autograd.grad(energy_of_strain(eps), eps)
    fd = central_difference(lambda e: float(energy_of_strain(e)), torch.zeros(3, 3, dtype=torch.float64), h=1e-5)
    assert float((virial - fd).abs().max() / fd.abs().max()) < 1e-6


def test_analytic_polarizability_matches_finite_fields_and_changes_the_anisotropy():
    pos, num = water_dimer()
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    results = {}
    for name, coefficients in (("iso", {}), ("aniso", ANISO)):
        pqeq = _pqeq(coefficients)
        out = pqeq(pos, num, None, torch.zeros(3, dtype=torch.float64), groups=groups)
        p = pqeq.atom_parameters(num, torch.float64)
        alpha = analytic_polarizability(pqeq, pos, out["charges"], out["shell_displacements"], p, groups, 2)
        step = 1e-3
        columns = []
        for axis in range(3):
            f = torch.zeros(3, dtype=torch.float64)
            f[axis] = step
            plus = pqeq(pos, num, None, f, groups=groups)["dipole"]
            minus = pqeq(pos, num, None, -f, groups=groups)["dipole"]
            columns.append((plus - minus) / (2 * step))
        assert torch.allclose(alpha.detach(), torch.stack(columns, 1) * COULOMB_EV_A, atol=1e-6)
        results[name] = torch.linalg.eigvalsh(alpha.detach())
    # stiffer O shells along O–H lower the in-plane response: the eigenvalues move
    assert float((results["iso"] - results["aniso"]).abs().max()) > 0.05


def test_born_charge_sum_rule():
    pos, num = water_dimer()
    z = born_charges(_pqeq(), pos, num, groups=torch.tensor([0, 0, 0, 1, 1, 1]))["born_charges"]
    assert float(z.sum(0).abs().max()) < 1e-6


def test_spring_that_could_lose_positive_definiteness_is_an_error():
    pos, num = water_dimer()
    with pytest.raises(ValueError, match=r"spring of atom \d+ \(O\)"):
        _pqeq({"O:H": -0.47})(pos, num, None, FIELD)


def test_anisotropy_needs_global_physical_mode_and_known_pairs():
    with pytest.raises(ValueError, match="global charge transfer"):
        PQEq(["O", "H"], charge_transfer="split", shell_anisotropy={"O:H": 0.1})
    with pytest.raises(ValueError, match="mode 'physical'"):
        PQEq(["O", "H"], mode="reaxnet", shell_anisotropy={"O:H": 0.1})
    with pytest.raises(ValueError, match="supported"):
        PQEq(["O", "H"], shell_anisotropy={"O:C": 0.1})
    with pytest.raises(ValueError, match="'O:C'"):
        PQEq(["O", "H"], shell_anisotropy={"OC": 0.1})


def test_scripted_module_matches_eager():
    pos, num, cell = water_box()
    eager = _pqeq()(pos, num, cell, FIELD)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(_pqeq()), buffer)
    buffer.seek(0)
    out = torch.jit.load(buffer)(pos, num, cell, FIELD)
    assert float(out["energy"]) == pytest.approx(float(eager["energy"]), abs=1e-10)
    assert torch.allclose(out["shell_displacements"], eager["shell_displacements"], atol=1e-10)


def test_fit_loss_gradient_with_respect_to_the_anisotropy_matches_finite_differences():
    ref = build_pqeq([1, 8], "pqeq-water", {"Ks_aniso": ["O:H"]}, 1e-10, 1e-9)
    with torch.no_grad():
        ref.shell_anisotropy.raw.fill_(0.6)
    structures = []
    for pos, num, groups in ((*water_dimer(), torch.tensor([0, 0, 0, 1, 1, 1])),
                             (*_stretched_dimer(), torch.tensor([0, 0, 0, 1, 1, 1]))):
        s = Structure(name=str(len(structures)), positions=pos, numbers=num, charge=0.0, dipole=torch.zeros(3),
                      polarizability=torch.zeros(3, 3), field_step=0.25, field_energies=None,
                      esp_points=torch.zeros(0, 3), esp_values=torch.zeros(0), groups=groups)
        with torch.no_grad():
            pred = predict(ref, s)
        s.dipole, s.polarizability = pred["dipole"], pred["polarizability"]
        structures.append(s)
    pqeq = build_pqeq([1, 8], "pqeq-water", {"Ks_aniso": ["O:H", "H:O"], "Ks": ["O"]}, 1e-10, 1e-9)
    params = free_parameters(pqeq)
    assert sum(p.numel() for p in params) == 3
    with torch.no_grad():
        pqeq.shell_anisotropy.raw.copy_(torch.tensor([0.2, -0.1]))
    weights, scales = {"dipole": 1.0, "polarizability": 1.0}, {"dipole": 0.1, "polarizability": 1.0}
    assert_gradients_match_finite_differences(lambda: loss_terms(pqeq, structures, weights, scales)["loss"], params,
                                              tol=1e-5)
    assert pqeq.shell_anisotropy.record() == pytest.approx({"O:H": 0.45 * math.tanh(0.2),
                                                            "H:O": -0.45 * math.tanh(0.1)})
