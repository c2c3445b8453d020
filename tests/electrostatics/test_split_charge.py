"""Split-charge (bounded charge transfer) model of the physical mode: finite differences, limits,
invariances under wrapping with a field, ions, warm start, TorchScript and OpenMM."""

import io
import math

import numpy as np
import pytest
import torch

from openmm_pqeq.electrostatics import PQEq
from openmm_pqeq.electrostatics.bond_hardness import smooth_switch
from openmm_pqeq.electrostatics.splitcharge import split_polarizability
from openmm_pqeq.units import COULOMB_EV_A

from helpers import central_difference, strain_cell, water_box, water_dimer

TIGHT = dict(charge_tolerance=1e-11, shell_tolerance=1e-10)
FIELD = torch.tensor([0.05, -0.1, 0.2], dtype=torch.float64)
#: transfer cutoff wide enough that the two water molecules of the test cell are bonded across images
WIDE = {"cutoff": 2.2}


def _split(elements=("O", "H"), transfer=None, **kwargs):
    options = dict(TIGHT)
    options.update(kwargs)
    return PQEq(list(elements), charge_transfer="split", transfer=transfer, **options)


def _force_error(pqeq, positions, numbers, cell, field, **kwargs):
    x = positions.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(pqeq(x, numbers, cell, field, **kwargs)["energy"], x)
    fd = central_difference(lambda y: float(pqeq(y, numbers, cell, field, **kwargs)["energy"]), positions, h=1e-4)
    return float((grad - fd).abs().max() / fd.abs().max())


def _rock_salt():
    """Conventional NaCl cell (8 atoms, a = 5.64 Å), slightly distorted."""
    a = 5.64
    frac = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0],
                     [.5, 0, 0], [0, .5, 0], [0, 0, .5], [.5, .5, .5]])
    rng = np.random.default_rng(3)
    pos = frac * a + rng.normal(0, 0.05, size=frac.shape)
    return torch.tensor(pos), torch.tensor([11] * 4 + [17] * 4), torch.eye(3, dtype=torch.float64) * a


#: bond options that exercise the length slope and the bonded shell springs
SHAPED = {"length_slope": 3.0, "pair_slope": {"H-O": -1.5}, "shell_bonds": {"O:H": 0.4, "H:O": -0.3, "O:O": 0.2}}


@pytest.mark.parametrize("shape", [{}, SHAPED], ids=["plain-bonds", "slope-and-shell-bonds"])
@pytest.mark.parametrize("field", [torch.zeros(3), FIELD], ids=["no-field", "field"])
def test_forces_open_system(field, shape):
    pos, num = water_dimer()
    assert _force_error(_split(transfer={"cutoff": 2.0, **shape}), pos, num, None, field) < 1e-6


@pytest.mark.parametrize("reciprocal", ["ewald", "pme"])
def test_forces_periodic_with_bonds_across_the_cell(reciprocal):
    pos, num, cell = water_box()
    pqeq = _split(transfer=WIDE, reciprocal=reciprocal)
    out = pqeq(pos, num, cell, FIELD)
    assert bool((out["bond_shifts"].abs().sum(1) > 0).any())  # some bonds reach into another image
    assert _force_error(pqeq, pos, num, cell, FIELD) < 1e-6


@pytest.mark.parametrize("shape", [{}, SHAPED], ids=["plain-bonds", "slope-and-shell-bonds"])
def test_virial_matches_strain_derivative(shape):
    pos, num, cell = water_box()
    pqeq = _split(transfer={**WIDE, **shape})

    def energy_of_strain(eps):
        p, c = strain_cell(pos, cell, eps)
        return pqeq(p, num, c, FIELD)["energy"]

    eps = torch.zeros(3, 3, requires_grad=True)
    (virial,) = torch.autograd.grad(energy_of_strain(eps), eps)
    fd = central_difference(lambda e: float(energy_of_strain(e)), torch.zeros(3, 3), h=1e-5)
    assert float((virial - fd).abs().max() / fd.abs().max()) < 1e-6


@pytest.mark.parametrize("shape", [{}, SHAPED], ids=["plain-bonds", "slope-and-shell-bonds"])
def test_dipole_is_minus_the_field_derivative_and_alpha_matches_finite_fields(shape):
    pos, num = water_dimer()
    pqeq = _split(transfer={"cutoff": 2.0, **shape}, predictor_order=0)
    field = FIELD.clone().requires_grad_(True)
    out = pqeq(pos, num, None, field)
    (grad,) = torch.autograd.grad(out["energy"], field)
    fd = central_difference(lambda f: float(pqeq(pos, num, None, f)["energy"]), FIELD, h=1e-4)
    assert torch.allclose(-grad, out["dipole"].detach(), atol=1e-8)
    assert torch.allclose(-fd, out["dipole"].detach(), atol=1e-7)
    # polarizability: analytic (dense Hessian of the split-charge energy) against finite fields
    zero = pqeq(pos, num, None, torch.zeros(3))
    p = pqeq.atom_parameters(num, torch.float64)
    q_ref = torch.zeros(6, dtype=torch.float64)
    bonds = zero["bonds"]
    alpha = split_polarizability(pqeq, pos, num, zero["split_variables"], zero["shell_displacements"], q_ref, p,
                                 bonds[0], bonds[1], zero["bond_shifts"])
    step = 1e-3
    columns = []
    for axis in range(3):
        f = torch.zeros(3)
        f[axis] = step
        columns.append((pqeq(pos, num, None, f)["dipole"] - pqeq(pos, num, None, -f)["dipole"]) / (2 * step))
    assert torch.allclose(alpha, torch.stack(columns, 1).detach() * COULOMB_EV_A, atol=1e-5, rtol=1e-6)


def test_global_limit_small_bond_hardness_on_a_connected_graph():
    """κ⁰ → 0 with every atom bonded (directly or through others): charges, energy and dipole of
    global PQEq, approached linearly in κ⁰ (a disconnected graph keeps each molecule neutral)."""
    pos, num = water_dimer()
    ref = PQEq(["O", "H"], charge_transfer="global", **TIGHT)(pos, num, None, FIELD)
    errors = []
    for kappa in (1e-2, 1e-3):
        out = _split(transfer={"cutoff": 3.0, "default_hardness": kappa}, max_iterations=500)(pos, num, None, FIELD)
        assert bool(out["converged"]) and int(out["bonds"].shape[1]) == 11
        errors.append(float((out["charges"] - ref["charges"]).abs().max()))
        assert float(out["energy"]) == pytest.approx(float(ref["energy"]), abs=0.2 * kappa)
        assert torch.allclose(out["dipole"].detach(), ref["dipole"], atol=0.1 * kappa)
    assert errors[1] < 0.1 * 1e-3 and errors[1] == pytest.approx(0.1 * errors[0], rel=0.05)
    disconnected = _split(transfer={"cutoff": 2.2, "default_hardness": 1e-3})(pos, num, None, FIELD)
    assert float(disconnected["charges"][:3].sum()) == pytest.approx(0.0, abs=1e-12)
    assert abs(float(ref["charges"][:3].sum())) > 1e-3


def test_no_transfer_limit_is_shells_only():
    """κ⁰ → ∞: no charge moves, and (q, d) is the shells-only minimum (checked by an independent
    minimization of the energy over the shells alone, with charges fixed at zero)."""
    from scipy.optimize import minimize

    pos, num = water_dimer()
    out = _split(transfer={"cutoff": 2.2, "default_hardness": 1e12})(pos, num, None, FIELD)
    assert float(out["charges"].abs().max()) < 1e-9
    shells_only = PQEq(["O", "H"], **TIGHT)
    p = shells_only.atom_parameters(num, torch.float64)
    from openmm_pqeq.electrostatics.coulomb import all_pairs

    i, j = all_pairs(6, pos.device)
    shifts = torch.zeros(i.shape[0], 3)
    zero_q = torch.zeros(6)

    def energy(flat):
        d = torch.tensor(flat).reshape(6, 3).requires_grad_(True)
        e = shells_only.energy(pos, zero_q, d, p, None, i, j, shifts, FIELD, pos, 0.0)
        (g,) = torch.autograd.grad(e, d)
        return float(e.detach()), g.reshape(-1).numpy()

    result = minimize(energy, np.zeros(18), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-16})
    assert float(out["energy"]) == pytest.approx(result.fun, abs=1e-9)
    assert np.allclose(out["shell_displacements"].numpy().reshape(-1), result.x, atol=1e-6)


def test_wrapping_atoms_by_lattice_vectors_under_a_field_liquid_and_crystal():
    """No charge groups: the field couples to bond and shell dipoles, so moving atoms by lattice
    vectors changes nothing (global transfer with one total charge does change: shown too)."""
    pos, num, cell = water_box()
    moved = pos.clone()
    moved[1] += cell[0] - cell[2]
    moved[3:] += cell[1]
    a = _split(transfer=WIDE)(pos, num, cell, FIELD)
    b = _split(transfer=WIDE)(moved, num, cell, FIELD)
    assert float(b["energy"]) == pytest.approx(float(a["energy"]), abs=1e-9)
    assert torch.allclose(a["dipole"], b["dipole"], atol=1e-9)
    g_a = PQEq(["O", "H"], **TIGHT)(pos, num, cell, FIELD)
    g_b = PQEq(["O", "H"], **TIGHT)(moved, num, cell, FIELD)
    assert abs(float(g_b["energy"] - g_a["energy"])) > 1e-3

    pos, num, cell = _rock_salt()
    moved = pos.clone()
    moved[0] += cell[2]
    moved[5] -= cell[0] + cell[1]
    field = torch.tensor([0.1, 0.0, -0.05])
    a = _split(["Na", "Cl"])(pos, num, cell, field)
    b = _split(["Na", "Cl"])(moved, num, cell, field)
    assert int(a["bonds"].shape[1]) == 48  # six Na-Cl bonds per Na (3 across the cell faces each way)
    assert float(b["energy"]) == pytest.approx(float(a["energy"]), abs=1e-9)
    assert torch.allclose(a["charges"], b["charges"], atol=1e-9)


def test_bonded_shell_springs_scale_each_atoms_spring_by_its_bonds():
    """K_s,i = K_s,Z · exp(Σ_b c g(r_b)): with the bonds fully on (g = 1), a water monomer's O spring
    is K_s,O e^{2 c_OH} and the H springs K_s,H e^{c_HO}, and the stiffer O spring shrinks its shell's
    displacement in a field."""
    pos, num = water_dimer()
    pos, num = pos[:3], num[:3]
    plain = _split()
    shaped = _split(transfer={"shell_bonds": {"O:H": 0.5, "H:O": -0.4}})
    root_s, root_kappa = shaped.transfer.root_softness((pos[[1, 2]] - pos[0]).norm(dim=1), num[[0, 0]], num[[1, 2]])
    factors = shaped.transfer.shell_factors(root_s * root_kappa, num[[0, 0]], num[[1, 2]],
                                            torch.tensor([0, 0]), torch.tensor([1, 2]), 3)
    assert torch.allclose(factors, torch.tensor([math.exp(1.0), math.exp(-0.4), math.exp(-0.4)], dtype=factors.dtype))
    out_plain, out_shaped = plain(pos, num, None, FIELD), shaped(pos, num, None, FIELD)
    # stiffer O shell: its displacement shrinks; softer H shells: theirs grow
    d_plain, d_shaped = out_plain["shell_displacements"].norm(dim=1), out_shaped["shell_displacements"].norm(dim=1)
    assert float(d_shaped[0]) < float(d_plain[0])
    with pytest.raises(ValueError, match="shell bond"):
        _split(transfer={"shell_bonds": {"O-H": 0.5}})
    with pytest.raises(ValueError, match="does not support"):
        _split(transfer={"shell_bonds": {"O:C": 0.5}})


def test_bond_hardness_switch_keeps_energy_and_force_continuous_at_the_cutoff():
    """Li–F pulled apart through the transfer cutoff: the split charge and the transfer energy
    (against the same pair without transfer) go to zero smoothly, and the force is the derivative
    of the energy on both sides."""
    assert float(smooth_switch(torch.tensor(1.0))) == 0.0 and float(smooth_switch(torch.tensor(0.0))) == 1.0
    pqeq = _split(["Li", "F"])
    frozen = _split(["Li", "F"], transfer={"default_hardness": 1e12})
    r_c = 1.5 * (1.28 + 0.57)  # covalent radii of Li and F (Cordero et al. 2008)
    num = torch.tensor([3, 9])

    def energy(r, module=pqeq):
        return float(module(torch.tensor([[0.0, 0.0, 0.0], [r, 0.0, 0.0]]), num, None, torch.zeros(3))["energy"])

    transfer, moved = [], []
    for r in (r_c - 0.3, r_c - 0.1, r_c - 0.02, r_c - 0.002, r_c + 0.002, r_c + 0.05):
        x = torch.tensor([[0.0, 0.0, 0.0], [r, 0.0, 0.0]], requires_grad=True)
        out = pqeq(x, num, None, torch.zeros(3))
        (g,) = torch.autograd.grad(out["energy"], x)
        numeric = (energy(r + 1e-4) - energy(r - 1e-4)) / 2e-4
        assert float(g[1, 0]) == pytest.approx(numeric, abs=1e-7, rel=1e-5)
        transfer.append(float(out["energy"].detach()) - energy(r, frozen))
        moved.append(abs(float(out["charges"][1].detach())))
    assert transfer[0] < transfer[1] < transfer[2] < transfer[3] < -1e-13
    assert abs(transfer[4]) < 1e-12 and abs(transfer[5]) < 1e-12
    assert moved[0] > moved[1] > moved[2] > moved[3] > 0.0 == moved[4]
    assert abs(transfer[3]) < 1e-9 and moved[3] < 1e-6


def test_ion_charge_stays_on_the_ion_with_its_own_group():
    """Na⁺ with two waters: its group puts +1 on Na; split charges move only what its bonds allow,
    and the water not bonded to it stays exactly neutral (global transfer charges it)."""
    pos, num = water_dimer()
    pos = torch.cat([pos, torch.tensor([[0.2, -2.2, 0.3]])])
    num = torch.cat([num, torch.tensor([11])])
    groups = torch.tensor([1, 1, 1, 2, 2, 2, 0])
    charges = torch.tensor([1.0, 0.0, 0.0])
    pqeq = _split(["O", "H", "Na"])
    out = pqeq(pos, num, None, FIELD, groups=groups, group_charges=charges)
    assert float(out["charges"].sum()) == pytest.approx(1.0, abs=1e-12)
    assert abs(float(out["charges"][6]) - 1.0) < 0.3
    bonded_to_na = set(out["bonds"][0][out["bonds"][1] == 6].tolist())
    assert bonded_to_na and bonded_to_na <= {0, 1, 2}
    assert float(out["charges"][3:6].sum()) == pytest.approx(0.0, abs=1e-12)
    assert _force_error(pqeq, pos, num, None, FIELD, groups=groups, group_charges=charges) < 1e-6
    spread = PQEq(["O", "H", "Na"], **TIGHT)(pos, num, None, FIELD, 1.0)
    assert abs(float(spread["charges"][3:6].sum())) > 0.05


def test_charged_molecule_total_charge_and_forces():
    """Hydroxide without groups: the reference spreads −1 over O and H, the O–H bond redistributes it."""
    pos = torch.tensor([[0.0, 0.0, 0.0], [0.97, 0.1, 0.0]])
    num = torch.tensor([8, 1])
    pqeq = _split()
    out = pqeq(pos, num, None, FIELD, -1.0)
    assert float(out["charges"].sum()) == pytest.approx(-1.0, abs=1e-12)
    assert float(out["charges"][0]) < -0.5 < float(out["charges"][1])
    assert _force_error(pqeq, pos, num, None, FIELD, total_charge=-1.0) < 1e-6


def test_warm_start_matches_cold_solves_when_bonds_change():
    pos, num, cell = water_box()
    warm = _split(transfer=WIDE, charge_tolerance=1e-9, shell_tolerance=1e-8)
    direction = torch.tensor([[0.3, -0.2, 0.1]]) * torch.tensor([[1.0], [0.0], [-1.0], [0.5], [2.0], [0.0]])
    frames = [pos + s * direction for s in (0.0, 0.02, 0.04, 0.06)]
    stretched = frames[-1].clone()  # one O–H pulled beyond its transfer cutoff (2.2 × 0.97 Å)
    stretched[1] = stretched[0] + 2.4 * (stretched[1] - stretched[0]) / torch.linalg.norm(stretched[1] - stretched[0])
    bonds, iterations = [], []
    for x in frames + [stretched]:
        a = warm(x, num, cell, FIELD)
        b = _split(transfer=WIDE, charge_tolerance=1e-9, shell_tolerance=1e-8)(x, num, cell, FIELD)
        assert float(a["energy"]) == pytest.approx(float(b["energy"]), abs=1e-9)
        bonds.append({(int(i), int(j), tuple(t.tolist())) for i, j, t in zip(*a["bonds"], a["bond_shifts"])})
        iterations.append(int(a["iterations"]))
    assert bonds[-1] != bonds[0] and bonds[3] == bonds[0]  # bonds gone and new ones, matched by key
    assert iterations[3] < iterations[0]


def test_torchscript_save_load_and_frozen_backward():
    pos, num, cell = water_box()
    eager = _split(transfer=WIDE)(pos, num, cell, FIELD)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(_split(transfer=WIDE)), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    out = loaded(pos, num, cell, FIELD)
    assert float(out["energy"]) == pytest.approx(float(eager["energy"]), abs=1e-10)
    frozen = torch.jit.freeze(torch.jit.script(_split(transfer=WIDE)).eval())
    for step in range(3):
        x = (pos + 0.01 * step).requires_grad_(True)
        energy = frozen(x, num, cell, FIELD)["energy"]
        (g,) = torch.autograd.grad(energy, x)
        assert bool(torch.isfinite(g).all())


def test_options_and_errors():
    with pytest.raises(ValueError, match="charge_transfer"):
        PQEq(["O", "H"], charge_transfer="local")
    with pytest.raises(ValueError, match="mode 'physical'"):
        PQEq(["O", "H"], mode="reaxnet", charge_transfer="split")
    with pytest.raises(ValueError, match="belong to charge_transfer 'split'"):
        PQEq(["O", "H"], transfer={"default_hardness": 2.0})
    with pytest.raises(ValueError, match="onset"):
        _split(transfer={"onset": 1.6, "cutoff": 1.5})
    with pytest.raises(ValueError, match="unknown keys"):
        _split(transfer={"hardnes": {}})
    with pytest.raises(ValueError, match="does not support"):
        _split(transfer={"hardness": {"C-H": 3.0}})
    pqeq = _split(transfer={"hardness": {"H-O": 3.5}})
    assert float(pqeq.transfer.hardness_table()[8, 1]) == 3.5 and float(pqeq.transfer.hardness_table()[1, 8]) == 3.5
    assert not math.isnan(float(pqeq(*water_dimer(), None, FIELD)["energy"]))


def test_model_with_split_charges_runs_in_an_openmm_torchforce():
    """8 waters in a periodic box, no charge groups, a field: the OpenMM TorchForce gives the
    model's energy and forces (kJ/mol, nm) and survives atoms wrapped by OpenMM (box vectors)."""
    import openmm
    from openmm import unit

    from openmm_pqeq.integrations.system import create_system
    from openmm_pqeq.model import build_model, energy_forces_stress
    from openmm_pqeq.units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM, V_PER_NM_TO_V_PER_A
    from water_systems import water_topology

    model = build_model({"elements": ["O", "H"], "pqeq": {"charge_transfer": "split", **TIGHT}})
    top, pos_nm = water_topology(2)
    field_v_per_nm = (0.0, 1.0, 2.0)
    system = create_system(top, model, charge_groups="total", field=field_v_per_nm, backend="torchforce")
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    energies = []
    box = np.array([v.value_in_unit(unit.nanometer) for v in top.getPeriodicBoxVectors()])
    for shift in (np.zeros(3), box[0] - box[2]):
        moved = np.array(pos_nm)
        moved[4] += shift  # an H one lattice vector away
        context.setPositions(moved)
        state = context.getState(getEnergy=True, getForces=True)
        energies.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    cell = torch.tensor(box * NM_TO_ANGSTROM)
    positions = torch.tensor(np.array(pos_nm) * NM_TO_ANGSTROM)
    numbers = torch.tensor([a.element.atomic_number for a in top.atoms()])
    field = torch.tensor(field_v_per_nm) * V_PER_NM_TO_V_PER_A
    direct = energy_forces_stress(model, positions, numbers, cell, field)
    assert energies[0] == pytest.approx(float(direct["energy"]) * EV_TO_KJ_PER_MOL, rel=1e-8)
    assert energies[1] == pytest.approx(energies[0], abs=1e-6)


def test_compiled_operators_and_pytorch_fallback_agree():
    from openmm_pqeq import ops

    if not ops.has_custom_ops():
        pytest.skip("compiled operators not built: " + ops.unavailable_reason())
    pos, num, cell = water_box()
    results = []
    for use_ops in (True, False):
        x = pos.clone().requires_grad_(True)
        out = _split(transfer=WIDE, reciprocal="pme", use_custom_ops=use_ops)(x, num, cell, FIELD)
        (g,) = torch.autograd.grad(out["energy"], x)
        results.append((float(out["energy"].detach()), out["charges"].detach(), g))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-10)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-10)
    assert torch.allclose(results[0][2], results[1][2], atol=1e-9)
