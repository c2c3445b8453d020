"""Symmetries of the converged physical-mode PQEq energy and charges."""

import math

import numpy as np
import pytest
import torch

from openmm_pqeq.electrostatics import PQEq

from helpers import water_box, water_dimer

TIGHT = dict(charge_tolerance=1e-10, shell_tolerance=1e-9)
FIELD = torch.tensor([0.1, -0.05, 0.15], dtype=torch.float64)


def _rotation(angle: float, axis) -> torch.Tensor:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return torch.tensor(np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k)


def _solve(positions, numbers, cell, field, **kw):
    return PQEq(["O", "H"], **TIGHT)(positions, numbers, cell, field, **kw)


def test_translation_open_and_periodic():
    pos, num = water_dimer()
    shift = torch.tensor([3.1, -7.2, 0.4])
    a, b = _solve(pos, num, None, FIELD), _solve(pos + shift, num, None, FIELD)
    # the field energy of a neutral system does not depend on the origin
    assert float(b["energy"]) == pytest.approx(float(a["energy"]), abs=1e-9)
    assert torch.allclose(a["charges"], b["charges"], atol=1e-9)
    pos, num, cell = water_box()
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    a, b = _solve(pos, num, cell, FIELD, groups=groups), _solve(pos + shift, num, cell, FIELD, groups=groups)
    assert float(b["energy"]) == pytest.approx(float(a["energy"]), abs=1e-9)


def test_rotation_open_system_with_field():
    pos, num = water_dimer()
    rot = _rotation(0.7, [1.0, 2.0, -0.5])
    a = _solve(pos, num, None, FIELD)
    b = _solve(pos @ rot.T, num, None, FIELD @ rot.T)
    assert float(b["energy"]) == pytest.approx(float(a["energy"]), abs=1e-9)
    assert torch.allclose(b["dipole"], a["dipole"] @ rot.T, atol=1e-8)
    assert torch.allclose(b["shell_displacements"], a["shell_displacements"] @ rot.T, atol=1e-8)


def test_permutation_of_atoms():
    pos, num, cell = water_box()
    perm = torch.tensor([4, 0, 5, 2, 1, 3])
    a = _solve(pos, num, cell, FIELD)
    b = _solve(pos[perm], num[perm], cell, FIELD)
    assert float(b["energy"]) == pytest.approx(float(a["energy"]), abs=1e-9)
    assert torch.allclose(b["charges"], a["charges"][perm], atol=1e-9)


def test_wrapping_atoms_into_the_box_under_a_field():
    """Per-molecule groups make the field term independent of how molecules are wrapped."""
    pos, num, cell = water_box()
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    wrapped = pos.clone()
    wrapped[1] += cell[0] - cell[2]  # move one H by lattice vectors (splits its molecule)
    wrapped[3:] += cell[1]  # move a whole molecule
    a = _solve(pos, num, cell, FIELD, groups=groups)
    b = _solve(wrapped, num, cell, FIELD, groups=groups)
    assert float(b["energy"]) == pytest.approx(float(a["energy"]), abs=1e-9)
    assert torch.allclose(a["dipole"], b["dipole"], atol=1e-8)


def _stretched_dimer(fraction: float):
    """The water dimer in an 8 Å cubic cell with atom 2 (an H of molecule 0) moved to
    ``fraction`` of the a vector from atom 0 (its O), plus a small y/z offset."""
    pos, num = water_dimer()
    cell = torch.diag(torch.full((3,), 8.0, dtype=torch.float64))
    pos = pos.to(torch.float64) + torch.tensor([2.0, 3.0, 3.0], dtype=torch.float64)
    pos[2] = pos[0] + torch.tensor([fraction * 8.0, 0.3, 0.4], dtype=torch.float64)
    return pos, num, cell


def test_field_refuses_a_group_that_reaches_half_the_box():
    """Under a field a charge group is made whole around its first atom by minimum image; an
    atom that passes half a box from it flips image and -E·μ jumps by E·q·a.  Below the limit
    the energy is the wrapped one, past it the solve raises one line naming the atom, at zero
    field and with split charges (bond dipoles) it runs."""
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    field = torch.tensor([0.2, 0.0, 0.0], dtype=torch.float64)
    pos, num, cell = _stretched_dimer(0.44)
    wrapped = pos.clone()
    wrapped[2] -= cell[0]
    below = _solve(pos, num, cell, field, groups=groups)
    assert float(_solve(wrapped, num, cell, field, groups=groups)["energy"]) == pytest.approx(
        float(below["energy"]), abs=1e-9)

    pos, num, cell = _stretched_dimer(0.46)
    with pytest.raises(ValueError, match=r"under a field, atom 2 sits 0\.46 of a cell vector .* from atom 0, "
                                         r"the first atom of its charge group 0"):
        _solve(pos, num, cell, field, groups=groups)
    _solve(pos, num, cell, torch.zeros(3, dtype=torch.float64), groups=groups)
    # a field normal to the stretched direction: a flip along a changes nothing, so it runs
    normal = torch.tensor([0.0, 0.2, 0.0], dtype=torch.float64)
    wrapped = pos.clone()
    wrapped[2] -= cell[0]
    assert float(_solve(pos, num, cell, normal, groups=groups)["energy"]) == pytest.approx(
        float(_solve(wrapped, num, cell, normal, groups=groups)["energy"]), abs=1e-9)
    split = PQEq(["O", "H"], params="pqeq-split", **TIGHT)
    split(pos, num, cell, field, groups=groups)

    # what the limit prevents: with it lifted, crossing 0.5 raises the energy by a finite jump;
    # the field term of the pre-flip charges rises by E·q_H·a, and re-solving can only lower that
    unguarded = PQEq(["O", "H"], **TIGHT)
    unguarded.group_extent_limit = 1.0
    before = unguarded(*_stretched_dimer(0.499), field, groups=groups)
    after = unguarded(*_stretched_dimer(0.501), field, groups=groups)
    jump = float(after["energy"]) - float(before["energy"])
    expected = float(field[0]) * float(before["charges"][2]) * 8.0
    assert 0.1 < jump <= expected + 1e-9


def test_supercell_energy_per_atom():
    pos, num, cell = water_box()
    single = _solve(pos, num, cell, torch.zeros(3))
    sc_pos = torch.cat([pos, pos + cell[0]])
    sc_cell = cell.clone()
    sc_cell[0] *= 2
    double = _solve(sc_pos, torch.cat([num, num]), sc_cell, torch.zeros(3))
    assert float(double["energy"]) / 12 == pytest.approx(float(single["energy"]) / 6, abs=1e-8)
    assert torch.allclose(double["charges"][:6], single["charges"], atol=1e-8)
