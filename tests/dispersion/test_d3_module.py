"""D3Dispersion as a module: smoothness, derivatives, TorchScript, dtypes and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmm_pqeq.dispersion import D3Dispersion, available_functionals, damping_parameters


def dimer_energies(d3, distances, numbers=(6, 8)):
    """Energy (eV) and force along the axis (eV/Å) of a dimer at each distance (Å)."""
    energies, forces = [], []
    for r in distances:
        pos = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, float(r)]], dtype=torch.float64,
                           requires_grad=True)
        energy = d3(pos, torch.tensor(numbers))
        (grad,) = torch.autograd.grad(energy, pos)
        energies.append(energy.item())
        forces.append(-grad[1, 2].item())
    return np.array(energies), np.array(forces)


@pytest.mark.parametrize("damping", ["zero", "bj"])
def test_smooth_mode_is_continuous_at_cutoff(damping):
    cutoff, width = 12.5, 2.0
    r = np.linspace(cutoff - width - 0.5, cutoff + 0.5, 201)
    step = r[1] - r[0]
    d3 = D3Dispersion(damping=damping, cutoff=cutoff, switch_width=width)
    energy, force = dimer_energies(d3, r)
    assert np.all(energy[r >= cutoff] == 0.0) and np.all(force[r >= cutoff] == 0.0)
    # Energy and force change by O(step) between neighbouring points: no jump anywhere, and
    # the force tends to zero at the cutoff (C¹); the energy is -dE/dr of the force.
    assert np.max(np.abs(np.diff(energy))) < 2 * np.max(np.abs(force)) * step
    assert np.max(np.abs(np.diff(force))) < 5 * np.max(np.abs(force)) * step
    _, (edge_force,) = dimer_energies(d3, [cutoff - 1e-4])
    assert abs(edge_force) < 1e-12
    np.testing.assert_allclose(-np.gradient(energy, r)[1:-1], force[1:-1], atol=1e-8)

    hard_energy, _ = dimer_energies(D3Dispersion(damping=damping, cutoff=cutoff,
                                                 hard_cutoff=True), r)
    assert np.max(np.abs(np.diff(hard_energy))) > 20 * np.max(np.abs(np.diff(energy)))
    # Below the switch both modes agree.
    inner = r < cutoff - width
    np.testing.assert_array_equal(energy[inner], hard_energy[inner])


def test_smooth_coordination_cutoff_is_continuous():
    """A third atom crossing ``cn_cutoff`` (but beyond the dispersion cutoff) changes the energy
    of a bonded pair only through its coordination numbers: smoothly, unlike plain truncation."""
    cutoff, cn_cutoff, width = 2.2, 4.0, 1.0  # the bonded pair (1.1 Å) is not switched
    smooth = D3Dispersion(cutoff=cutoff, cn_cutoff=cn_cutoff, switch_width=width)
    hard = D3Dispersion(cutoff=cutoff, cn_cutoff=cn_cutoff, hard_cutoff=True)

    def scan(model, ys):
        out = []
        for y in ys:
            pos = torch.tensor([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [0.0, y, 0.0]],
                               dtype=torch.float64)
            out.append(model(pos, torch.tensor([6, 1, 8])).item())
        return np.array(out)

    near = np.linspace(cn_cutoff - 0.05, cn_cutoff + 0.05, 101)
    assert np.max(np.abs(np.diff(scan(hard, near)))) > 100 * np.max(
        np.abs(np.diff(scan(smooth, near)))
    )
    # Outside the switching window both modes agree, and the far value is reached.
    outside = np.array([2.4, cn_cutoff + 0.2])
    np.testing.assert_array_equal(scan(smooth, outside), scan(hard, outside))


def random_cell(seed: int, n_atoms: int = 6):
    rng = np.random.default_rng(seed)
    cell = np.diag([4.2, 4.6, 5.0]) + rng.uniform(-0.8, 0.8, (3, 3))
    frac = rng.uniform(0.0, 1.0, (n_atoms, 3))
    numbers = rng.choice([1, 6, 7, 8, 14, 26, 79], n_atoms)
    # push atoms apart a little so no pair is unphysically close
    positions = frac @ cell
    return torch.tensor(positions), torch.tensor(numbers), torch.tensor(cell)


@pytest.mark.parametrize("damping", ["zero", "bj"])
def test_forces_and_virial_are_derivatives(damping):
    """Forces = -dE/dx and virial = dE/dε by central finite differences (periodic, triclinic;
    smooth mode: with plain truncation pairs crossing the cutoff spoil finite differences)."""
    positions, numbers, cell = random_cell(seed=3)
    d3 = D3Dispersion(damping=damping, cutoff=9.0, cn_cutoff=7.0)

    pos = positions.clone().requires_grad_(True)
    strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    deform = torch.eye(3, dtype=torch.float64) + strain
    energy = d3(pos @ deform, numbers, cell @ deform)
    grad, virial = torch.autograd.grad(energy, [pos, strain])

    h = 1e-5
    fd_grad = torch.zeros_like(positions)
    for a in range(positions.shape[0]):
        for k in range(3):
            plus, minus = positions.clone(), positions.clone()
            plus[a, k] += h
            minus[a, k] -= h
            fd_grad[a, k] = (d3(plus, numbers, cell) - d3(minus, numbers, cell)) / (2 * h)
    fd_virial = torch.zeros(3, 3, dtype=torch.float64)
    for a in range(3):
        for b in range(3):
            eps = torch.zeros(3, 3, dtype=torch.float64)
            eps[a, b] = h
            up = torch.eye(3, dtype=torch.float64) + eps
            down = torch.eye(3, dtype=torch.float64) - eps
            fd_virial[a, b] = (d3(positions @ up, numbers, cell @ up)
                               - d3(positions @ down, numbers, cell @ down)) / (2 * h)
    torch.testing.assert_close(grad, fd_grad, rtol=0, atol=1e-7)
    torch.testing.assert_close(virial, fd_virial, rtol=0, atol=1e-7)


def test_periodic_images_and_wrapping():
    """Unwrapped positions, a different but equivalent cell, and supercells give the same energy."""
    positions, numbers, cell = random_cell(seed=5)
    d3 = D3Dispersion(damping="bj")
    reference = d3(positions, numbers, cell)

    shifted = positions + torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64) @ cell
    torch.testing.assert_close(d3(shifted, numbers, cell), reference, rtol=1e-12, atol=0)

    # same lattice, other basis: a' = a + b
    other = cell.clone()
    other[0] = cell[0] + cell[1]
    torch.testing.assert_close(d3(positions, numbers, other), reference, rtol=1e-12, atol=0)

    # a 2x1x1 supercell has twice the energy
    super_pos = torch.cat([positions, positions + cell[0]])
    super_cell = cell.clone()
    super_cell[0] *= 2
    torch.testing.assert_close(
        d3(super_pos, numbers.repeat(2), super_cell), 2 * reference, rtol=1e-12, atol=0
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_save_load_run(tmp_path):
    positions, numbers, cell = random_cell(seed=11)
    for damping in ("zero", "bj"):
        d3 = D3Dispersion("pbe", damping)
        path = tmp_path / f"d3_{damping}.pt"
        torch.jit.script(d3).save(str(path))
        loaded = torch.jit.load(str(path))

        pos = positions.clone().requires_grad_(True)
        eager = d3(pos, numbers, cell)
        (eager_grad,) = torch.autograd.grad(eager, pos)
        scripted = loaded(pos, numbers, cell)
        (scripted_grad,) = torch.autograd.grad(scripted, pos)
        assert scripted.item() == eager.item()
        torch.testing.assert_close(scripted_grad, eager_grad, rtol=0, atol=0)
        assert loaded(positions, numbers, None).item() == d3(positions, numbers, None).item()


def test_float32_and_open_systems():
    positions, numbers, cell = random_cell(seed=13)
    d3 = D3Dispersion()
    e64 = d3(positions, numbers, cell)
    e32 = d3(positions.float(), numbers, cell.float())
    assert e32.dtype == torch.float32
    assert e32.item() == pytest.approx(e64.item(), rel=1e-5)

    # isolated atoms: zero energy, zero (not missing) gradient
    far = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 20.0]], dtype=torch.float64,
                       requires_grad=True)
    energy = d3(far, torch.tensor([6, 6]))
    (grad,) = torch.autograd.grad(energy, far)
    assert energy.item() == 0.0 and torch.all(grad == 0)


def test_attributes_and_parameters():
    d3 = D3Dispersion()
    assert (d3.functional, d3.damping, d3.cutoff, d3.hard_cutoff) == ("pbe", "zero", 12.5, False)
    # the published model: PBE zero damping s6 1, rs6 1.217, s18 0.722, rs18 1, alpha 14
    assert d3.parameters == {"s6": 1.0, "s8": 0.722, "rs6": 1.217, "rs8": 1.0, "alp": 14.0}
    assert damping_parameters("PBEsol", "bj") == {"s6": 1.0, "s8": 2.9491, "a1": 0.4466,
                                                  "a2": 6.1742}
    assert {"pbe", "pbesol", "b3lyp", "r2scan"} <= set(available_functionals("bj"))
    assert {"pbe", "pbesol", "b3lyp"} <= set(available_functionals("zero"))
    assert "D3Dispersion" in repr(d3) and "smooth over 2.0" in repr(d3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"functional": "nosuchdft"}, r"functional 'nosuchdft'; options are \[.*'pbe'"),
        ({"functional": "r2scan", "damping": "zero"}, r"no D3 'zero'-damping .*'r2scan'"),
        ({"damping": "zerom"}, r"unknown D3 damping 'zerom' \(options are \['zero', 'bj'\]\)"),
        ({"cutoff": -1.0}, r"`cutoff` is -1.0"),
        ({"cn_cutoff": 0.0}, r"`cn_cutoff` is 0.0"),
        ({"switch_width": 20.0}, r"`switch_width` is 20.0"),
        ({"damping": "bj", "parameters": {"s8": 1.0, "a1": 0.4}}, r"lacks \['a2'\]"),
        ({"damping": "bj", "parameters": {"s8": 1.0, "a1": 0.4, "a2": 5.0, "s9": 1.0}},
         r"keys \['s9'\] not used"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        D3Dispersion(**kwargs)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("script", [False, True])
def test_forward_errors(script):
    d3 = D3Dispersion()
    if script:
        d3 = torch.jit.script(d3)
    error = torch.jit.Error if script else ValueError
    pos = torch.zeros(2, 3, dtype=torch.float64)
    pos[1, 2] = 3.0
    with pytest.raises(error, match="atom 1 has atomic number 104"):
        d3(pos, torch.tensor([6, 104]))
    with pytest.raises(error, match="atom 0 has atomic number 0"):
        d3(pos, torch.tensor([0, 6]))
    with pytest.raises(error, match=r"`positions` must have shape \(N, 3\) .* got \[2, 2\]"):
        d3(pos[:, :2], torch.tensor([6, 6]))
    with pytest.raises(error, match=r"got \[0, 3\]"):
        d3(pos[:0], torch.tensor([], dtype=torch.long))
    with pytest.raises(error, match=r"`numbers` must have shape \(2,\)"):
        d3(pos, torch.tensor([6]))
    with pytest.raises(error, match="`numbers` must be integer"):
        d3(pos, torch.tensor([6.0, 6.0]))
    with pytest.raises(error, match=r"`cell` must have shape \(3, 3\)"):
        d3(pos, torch.tensor([6, 6]), torch.eye(2, dtype=torch.float64))
    with pytest.raises(error, match="`cell` is on meta but `positions` on cpu"):
        d3(pos, torch.tensor([6, 6]), torch.eye(3, device="meta"))


def test_star_import():
    namespace: dict = {}
    exec("from openmm_pqeq.dispersion import *", namespace)
    assert {"D3Dispersion", "available_functionals", "damping_parameters"} <= set(namespace)
