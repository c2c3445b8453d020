"""Invariances of E0 and equivariance of its forces, open and periodic."""

import pytest
import torch
from e3nn import o3


def _rotation(seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return o3.rand_matrix(dtype=torch.float64)


def _transform(positions, cell, matrix, shift=None):
    positions = positions @ matrix.T + (0.0 if shift is None else shift)
    return positions, None if cell is None else cell @ matrix.T


def test_rotation_translation_invariance_and_force_equivariance(net, system, energy_and_forces):
    positions, numbers, cell = system
    rot = _rotation(0)
    shift = torch.tensor([0.7, -1.9, 3.3], dtype=torch.float64)
    energy, forces = energy_and_forces(net, positions, numbers, cell)
    positions_r, cell_r = _transform(positions, cell, rot, shift)
    energy_r, forces_r = energy_and_forces(net, positions_r, numbers, cell_r)
    assert abs(energy) > 1e-3
    assert energy_r == pytest.approx(energy.item(), abs=1e-10)
    torch.testing.assert_close(forces_r, forces @ rot.T, atol=1e-10, rtol=0)


def test_reflection_invariance_with_parity(net_parity, system, energy_and_forces):
    positions, numbers, cell = system
    mirror = -_rotation(1)  # det = -1
    energy, forces = energy_and_forces(net_parity, positions, numbers, cell)
    positions_m, cell_m = _transform(positions, cell, mirror)
    energy_m, forces_m = energy_and_forces(net_parity, positions_m, numbers, cell_m)
    assert energy_m == pytest.approx(energy.item(), abs=1e-10)
    torch.testing.assert_close(forces_m, forces @ mirror.T, atol=1e-10, rtol=0)


def test_rotation_invariance_with_parity(net_parity, system, energy_and_forces):
    positions, numbers, cell = system
    energy, _ = energy_and_forces(net_parity, positions, numbers, cell)
    positions_r, cell_r = _transform(positions, cell, _rotation(2))
    energy_r, _ = energy_and_forces(net_parity, positions_r, numbers, cell_r)
    assert energy_r == pytest.approx(energy.item(), abs=1e-10)


def test_permutation_permutes_per_atom_energies(net, system):
    positions, numbers, cell = system
    perm = torch.randperm(len(numbers), generator=torch.Generator().manual_seed(3))
    per_atom = net(positions, numbers, cell)
    torch.testing.assert_close(net(positions[perm], numbers[perm], cell), per_atom[perm], atol=1e-12, rtol=0)


def test_lattice_translation_of_one_atom_changes_nothing(net, periodic_system):
    positions, numbers, cell = periodic_system
    moved = positions.clone()
    moved[1] += 2 * cell[0] - cell[2]
    torch.testing.assert_close(net(moved, numbers, cell), net(positions, numbers, cell), atol=1e-12, rtol=0)


def test_without_parity_the_energy_can_be_chiral(net, open_system):
    # parity=False (the published choice) is SE(3)-equivariant only: a triple product of edge
    # vectors (1e x 1e -> 1e, then . 1e -> 0e) is a scalar under rotations that flips sign
    # under inversion, so mirror images may differ in energy.
    positions, numbers, _ = open_system
    mirror = -_rotation(3)
    assert abs(net(positions @ mirror.T, numbers).sum() - net(positions, numbers).sum()) > 1e-6
