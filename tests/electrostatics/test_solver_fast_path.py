"""The matrix-free solve (docs/method/solver.md): analytic gradients, the Hessian model of the Newton steps,
own smooth PME, Verlet pair list, warm-start predictor, and the dense published baseline."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from openmm_pqeq.electrostatics import PQEq
from openmm_pqeq.electrostatics.coulomb import GaussianCoulomb
from openmm_pqeq.electrostatics.reciprocal.ewald import EwaldReciprocal
from openmm_pqeq.electrostatics.reciprocal.pme import PMEReciprocal
from openmm_pqeq.electrostatics.realspace_kernel import RealSpaceKernel
from openmm_pqeq.neighbors import NeighborList

from helpers import data_file, water_box, water_dimer

COULOMB = 14.4


def _system(periodic=True):
    pos, num, cell = water_box()
    if not periodic:
        pos, num = water_dimer()
        cell = None
    a = torch.tensor([0.5 if z == 8 else 0.9 for z in num.tolist()])
    z = torch.tensor([6.0 if z == 8 else 1.0 for z in num.tolist()])  # large shell charges stress the shells
    return pos, num, cell, a, z


def _pairs(pos, cell, cutoff):
    n = pos.shape[0]
    if cell is None:
        i, j = torch.triu_indices(n, n, 1)
        return i, j, torch.zeros(i.shape[0], 3)
    return NeighborList(cutoff + 0.5)(pos, cell)  # with a skin: the cutoff mask must drop the extra pairs


CASES = [("direct", "ewald", False), ("tapered", "ewald", False), ("ewald", "ewald", True), ("ewald", "pme", True)]


@pytest.mark.parametrize("method,reciprocal,periodic", CASES)
def test_analytic_gradients_equal_autograd(method, reciprocal, periodic):
    pos, num, cell, a, z = _system(periodic)
    cutoff = 9.0 if periodic else 0.0
    coulomb = GaussianCoulomb(method, COULOMB, beta=0.4, reciprocal=reciprocal, kspace_tolerance=1e-9)
    i, j, s = _pairs(pos, cell, cutoff)
    gen = torch.Generator().manual_seed(0)
    d = 0.08 * torch.randn(pos.shape, generator=gen)
    q = 0.3 * torch.randn(pos.shape[0], generator=gen)
    qv, dv = q.clone().requires_grad_(True), d.clone().requires_grad_(True)
    energy = coulomb.energy(pos, dv, qv + z, -z, a, cell, i, j, s, cutoff)
    gq, gd = torch.autograd.grad(energy, [qv, dv])
    cache = coulomb.setup(pos, a, cell, i, j, s, cutoff)
    phi_core, phi_shell, grad, real_energy = coulomb.site_gradients(cache, pos, cell, a, i, j, q + z, -z, d, cutoff)
    assert torch.allclose(phi_core, gq, rtol=0, atol=1e-11 * float(gq.abs().max()))
    assert torch.allclose(grad, gd, rtol=0, atol=1e-11 * float(gd.abs().max()))
    # E = ½ Σ Q φ over all sites
    assert float(0.5 * ((q + z) * phi_core - z * phi_shell).sum()) == pytest.approx(float(energy.detach()), rel=1e-12)
    # the real-space part alone: the pair sum of the energy
    vec = pos[j] - pos[i] + (s @ cell if cell is not None else 0.0)
    pair_sum = coulomb.kernels.pair_energy(vec, a, i, j, q + z, -z, d,
                                           RealSpaceKernel(coulomb.method_code, coulomb.beta,
                                                           coulomb.coulomb_constant, coulomb.taper_cutoff, cutoff))
    assert float(real_energy) == pytest.approx(float(pair_sum), rel=1e-12)
    # and the energy built on that known value: the same energy and the same forces
    x = pos.clone().requires_grad_(True)
    plain = coulomb.energy(x, d, q + z, -z, a, cell, i, j, s, cutoff)
    (f_plain,) = torch.autograd.grad(plain, x)
    known = coulomb.energy(x, d, q + z, -z, a, cell, i, j, s, cutoff, real_energy)
    (f_known,) = torch.autograd.grad(known, x)
    assert float(known.detach()) == pytest.approx(float(plain.detach()), rel=1e-12)
    assert torch.allclose(f_known, f_plain, rtol=0, atol=1e-11 * float(f_plain.abs().max()))


@pytest.mark.parametrize("method,reciprocal,periodic", [c for c in CASES if c[0] != "tapered"])
def test_newton_model_is_the_hessian_at_zero_shells(method, reciprocal, periodic):
    """The linear model of the Newton steps equals the autograd Hessian of the Coulomb energy
    at vanishing shell displacement (1e-6 Å: exactly at 0 autograd misses the excluded-pair term)."""
    pos, num, cell, a, z = _system(periodic)
    cutoff = 9.0 if periodic else 0.0
    coulomb = GaussianCoulomb(method, COULOMB, beta=0.4, reciprocal=reciprocal, kspace_tolerance=1e-10)
    i, j, s = _pairs(pos, cell, cutoff)
    n = pos.shape[0]
    gen = torch.Generator().manual_seed(1)
    q = 0.3 * torch.randn(n, generator=gen)

    def energy(x):
        return coulomb.energy(pos, x[n:].reshape(n, 3), x[:n] + z, -z, a, cell, i, j, s, cutoff)

    x0 = torch.cat([q, 1e-6 * torch.randn(3 * n, generator=gen)])
    hessian = torch.autograd.functional.hessian(energy, x0)
    cache = coulomb.setup(pos, a, cell, i, j, s, cutoff)
    with torch.no_grad():
        static = coulomb.hessian_static(cache, q, q + z, -z)
        v = torch.randn(4 * n, generator=gen)
        y_q, y_d = coulomb.hessian_joint_matvec(cache, i, j, q, -z, static, v[:n], v[n:].reshape(n, 3))
    reference = hessian @ v
    error = (torch.cat([y_q, y_d.reshape(-1)]) - reference).abs().max() / reference.abs().max()
    assert float(error) < 1e-5


def test_own_pme_matches_exact_ewald_and_is_consistent():
    """SPME against the exact k-space sum in a skewed cell; potentials are its exact gradient."""
    gen = torch.Generator().manual_seed(2)
    cell = torch.tensor([[9.0, 0.0, 0.0], [2.0, 8.0, 0.0], [-1.0, 1.5, 10.0]])
    pos = torch.rand(30, 3, generator=gen) @ cell
    q = torch.randn(30, 1, generator=gen)
    q = q - q.mean()
    exact = EwaldReciprocal(0.35, COULOMB, 1e-14)(q, cell, pos)
    for tolerance in (1e-6, 1e-8):
        pme = PMEReciprocal(0.35, COULOMB, tolerance)
        v = pme(q, cell, pos)
        e_exact, e_pme = float((q * exact).sum()), float((q * v).sum())
        assert abs(e_pme - e_exact) < 10 * tolerance * abs(e_exact)
    qv = q.clone().requires_grad_(True)
    energy = (qv * pme(qv, cell, pos)).sum()
    (grad,) = torch.autograd.grad(energy, qv)
    assert torch.allclose(grad, 2.0 * pme(q, cell, pos), atol=1e-12)


def test_pme_mesh_sizes_are_fft_friendly():
    pme = PMEReciprocal(0.3, COULOMB, 1e-6)
    for n in pme.mesh_shape(torch.eye(3) * 27.3):
        m = n
        for f in (2, 3, 5):
            while m % f == 0:
                m //= f
        assert m == 1 and n >= pme.order + 1


def _crystal(seed=0):
    """A jittered rock-salt-like Li/P/N/O cell of 64 atoms (periodic, 8.6 Å)."""
    rng = np.random.default_rng(seed)
    a0, cells = 4.3, 2
    base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    frac = np.concatenate([base, base + [0.5, 0, 0]]) % 1.0
    shift = np.array([[x, y, z] for x in range(cells) for y in range(cells) for z in range(cells)])
    pos = (frac[None] + shift[:, None]).reshape(-1, 3) * a0 + rng.normal(scale=0.05, size=(64, 3))
    numbers = np.tile([3, 3, 3, 15, 8, 8, 7, 8], 8)
    return torch.tensor(pos), torch.tensor(numbers), torch.eye(3, dtype=torch.float64) * a0 * cells


def test_verlet_list_gives_the_same_answer_as_a_fresh_list():
    pos, num, cell = _crystal()
    kwargs = dict(charge_tolerance=1e-10, shell_tolerance=1e-9)
    skin, fresh = PQEq(["Li", "P", "N", "O"], neighbor_skin=1.0, **kwargs), PQEq(["Li", "P", "N", "O"], neighbor_skin=0.0, **kwargs)
    field = torch.tensor([0.0, 0.01, 0.0], dtype=torch.float64)
    skin(pos, num, cell, field)
    built = skin.verlet.edge_i.clone()
    moved = pos + 0.2 * torch.randn(pos.shape, generator=torch.Generator().manual_seed(3)).clamp(-1, 1)
    a, b = skin(moved, num, cell, field), fresh(moved, num, cell, field)
    assert skin.verlet.edge_i.data_ptr() == built.data_ptr() or torch.equal(skin.verlet.edge_i, built)  # reused
    assert float(a["energy"]) == pytest.approx(float(b["energy"]), abs=1e-9)
    assert torch.allclose(a["charges"], b["charges"], atol=1e-9)
    # forces agree too (the cutoff mask drops the skin pairs)
    x1, x2 = moved.clone().requires_grad_(True), moved.clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(skin(x1, num, cell, field)["energy"], x1)
    (g2,) = torch.autograd.grad(fresh(x2, num, cell, field)["energy"], x2)
    assert torch.allclose(g1, g2, atol=1e-8)


def test_predictor_warm_start_in_a_smooth_trajectory():
    pos, num, cell = _crystal(1)
    velocity = 0.01 * torch.randn(pos.shape, generator=torch.Generator().manual_seed(4))
    field = torch.zeros(3, dtype=torch.float64)
    tight = dict(charge_tolerance=1e-10, shell_tolerance=1e-9)
    module = PQEq(["Li", "P", "N", "O"], **tight)
    counts = [int(module(pos + k * velocity, num, cell, field)["iterations"]) for k in range(5)]
    # extrapolating from three previous solutions beats restarting from the last one
    assert counts[-1] < counts[1]
    # the converged answer does not depend on the start
    cold = PQEq(["Li", "P", "N", "O"], predictor_order=0, **tight)(pos + 4 * velocity, num, cell, field)
    assert torch.allclose(module.warm_start.charges, cold["charges"], atol=1e-9)


def test_reaxnet_mode_matches_the_dense_published_algorithm():
    """Reaxnet mode (matrix-free) against the dense two-cycle baseline of benchmarks/ on a
    dilute random Li-P-N-O cell wide enough for the minimum-image convention (26 Å)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from dense_baseline import dense_two_cycle

    rng = np.random.default_rng(5)
    side = 26.0
    points = []
    while len(points) < 150:
        p = rng.uniform(0, side, 3)
        if all(np.linalg.norm((p - o + side / 2) % side - side / 2) > 2.0 for o in points):
            points.append(p)
    pos = torch.tensor(np.array(points))
    num = torch.tensor(np.tile([3, 3, 15, 8, 8, 7], 25))
    cell = torch.eye(3, dtype=torch.float64) * side
    dense = dense_two_cycle(pos, num, cell)
    out = PQEq(["Li", "P", "N", "O"], mode="reaxnet")(pos, num, cell, torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(out["charges"], dense["charges"], atol=1e-8)
    assert torch.allclose(out["shell_displacements"], dense["shell_displacements"], atol=1e-8)
