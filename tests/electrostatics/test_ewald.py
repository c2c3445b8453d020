"""Periodic Gaussian-site electrostatics against analytic and brute-force references."""

import math

import numpy as np
import pytest
import torch
from scipy.special import erf

from openmm_pqeq.electrostatics.coulomb import GaussianCoulomb
from openmm_pqeq.electrostatics.kernels import pair_screening
from openmm_pqeq.neighbors import NeighborList
from openmm_pqeq.units import COULOMB_EV_A

MADELUNG_NACL = 1.747564594633


def _ewald_energy(method, beta, cutoff, pos, d, qc, qs, a, cell):
    coulomb = GaussianCoulomb("ewald", COULOMB_EV_A, beta=beta, reciprocal=method, kspace_tolerance=1e-9)
    i, j, s = NeighborList(cutoff)(pos, cell)
    return float(coulomb.energy(pos, d, qc, qs, a, cell, i, j, s))


@pytest.mark.parametrize("method", ["ewald", "pme"])
def test_rock_salt_madelung_constant(method):
    """Point-charge limit (very narrow Gaussians) of NaCl: E per ion pair = -M k_e / r0."""
    a0 = 5.64
    fcc = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    pos = torch.tensor(np.concatenate([fcc, fcc + [0.5, 0, 0]]) * a0)
    q = torch.tensor([1.0] * 4 + [-1.0] * 4)
    cell = torch.eye(3) * a0
    energy = _ewald_energy(method, 0.3, 14.0, pos, torch.zeros(8, 3), q, torch.zeros(8), torch.full((8,), 1e4), cell)
    madelung = -energy / 4 / (COULOMB_EV_A / (a0 / 2))
    assert madelung == pytest.approx(MADELUNG_NACL, rel=1e-7)


def _direct_image_sum(pos, d, qc, qs, a, cell, radius):
    """½ Σ over image cells n with |n·L| < radius of all site pairs (brute force, numpy),
    excluding each site with itself and each atom's own core-shell pair in cell n = 0."""
    sites = np.concatenate([pos, pos + d])
    charges = np.concatenate([qc, qs])
    atom = np.concatenate([np.arange(len(pos))] * 2)
    expo = np.concatenate([a, a])
    alpha = np.sqrt(np.outer(expo, expo) / np.add.outer(expo, expo))
    n_max = int(radius / min(np.linalg.norm(cell, axis=1))) + 2
    rng = np.arange(-n_max, n_max + 1)
    shifts = np.stack(np.meshgrid(rng, rng, rng, indexing="ij"), -1).reshape(-1, 3) @ cell
    shifts = shifts[np.linalg.norm(shifts, axis=1) < radius]
    energy = 0.0
    diff = sites[None, :, :] - sites[:, None, :]
    qq = np.outer(charges, charges)
    same_atom = atom[:, None] == atom[None, :]
    for shift in shifts:
        r = np.linalg.norm(diff + shift, axis=-1)
        mask = ~same_atom if not shift.any() else np.ones_like(same_atom)
        energy += 0.5 * np.sum(qq[mask] * erf(alpha[mask] * r[mask]) / r[mask])
    return COULOMB_EV_A * energy


def test_ewald_matches_direct_sum_over_images():
    """Gaussian cores and displaced shells of varying widths in a triclinic cell; the cell is
    centrosymmetric (no dipole), so the spherical image sum converges to the Ewald result."""
    rng = np.random.default_rng(7)
    cell = np.array([[6.0, 0.0, 0.0], [1.0, 5.5, 0.0], [-0.5, 0.8, 6.5]])
    half = rng.uniform(0.5, 2.5, size=(3, 3))
    pos = np.concatenate([half, -half]) + 3.0
    d = rng.normal(scale=0.1, size=(3, 3))
    d = np.concatenate([d, -d])
    qc = np.array([0.7, -0.4, -0.3] * 2) + 1.0  # net atomic charges sum to zero
    qs = -np.ones(6)
    a = np.array([0.5, 0.3, 1.2] * 2)
    t = lambda x: torch.tensor(x)
    ewald = _ewald_energy("ewald", 0.4, 12.0, t(pos), t(d), t(qc), t(qs), t(a), t(cell))
    direct = _direct_image_sum(pos, d, qc, qs, a, cell, radius=100.0)
    # the spherical image sum converges slowly (about 1e-7 relative at 100 Å here)
    assert ewald == pytest.approx(direct, rel=1e-6)


def test_ewald_independent_of_splitting_and_method():
    rng = np.random.default_rng(3)
    cell = torch.tensor([[7.0, 0.0, 0.0], [0.5, 6.0, 0.0], [0.3, -0.6, 6.5]])
    pos = torch.tensor(rng.uniform(0, 6, size=(8, 3)))
    d = torch.tensor(rng.normal(scale=0.05, size=(8, 3)))
    qc = torch.tensor(rng.normal(size=8)) + 1.0
    qc = qc - qc.mean() + 1.0  # neutral cell: Σ(qc + qs) = 0
    qs = -torch.ones(8)
    a = torch.tensor(rng.uniform(0.6, 1.5, size=8))
    energies = [
        _ewald_energy("ewald", 0.35, 14.0, pos, d, qc, qs, a, cell),
        _ewald_energy("ewald", 0.5, 10.0, pos, d, qc, qs, a, cell),
        _ewald_energy("pme", 0.4, 12.0, pos, d, qc, qs, a, cell),
    ]
    assert energies[1] == pytest.approx(energies[0], rel=1e-7)
    assert energies[2] == pytest.approx(energies[0], rel=1e-5)  # PME interpolation error


def test_charged_cell_background_is_independent_of_splitting():
    cell = torch.eye(3) * 6.0
    pos = torch.tensor([[0.5, 0.5, 0.5], [3.0, 2.0, 4.0]])
    qc = torch.tensor([1.0, 0.5])
    a = torch.tensor([0.8, 0.8])
    e1 = _ewald_energy("ewald", 0.35, 14.0, pos, torch.zeros(2, 3), qc, torch.zeros(2), a, cell)
    e2 = _ewald_energy("ewald", 0.55, 9.0, pos, torch.zeros(2, 3), qc, torch.zeros(2), a, cell)
    assert e1 == pytest.approx(e2, rel=1e-7)


def test_pair_screening_formula():
    a_i, a_j = torch.tensor(0.5), torch.tensor(2.0)
    assert float(pair_screening(a_i, a_j)) == pytest.approx(math.sqrt(1.0 / (1 / 0.5 + 1 / 2.0)))
