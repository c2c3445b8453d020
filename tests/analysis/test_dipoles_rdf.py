"""Polarization, molecular dipoles across periodic boundaries, orientation, and g(r) of
configurations whose answers are known (an ideal gas, a simple cubic lattice)."""

import numpy as np
import pytest

from openmm_pqeq.analysis import (dipole_distribution, first_peak, molecular_dipoles, orientation_cosines,
                                  oxygen_rdf, polarization, whole_molecules)

WATER = np.array([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]])
CHARGES = np.array([-0.8, 0.4, 0.4])


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def water_box(rng, n_molecules, cell):
    """Whole molecules at random places and orientations, and the same atoms wrapped into the cell."""
    whole = np.concatenate([WATER @ random_rotation(rng).T + rng.uniform(0, 1, 3) @ cell for _ in range(n_molecules)])
    frac = np.linalg.solve(cell.T, whole.T).T
    wrapped = (frac - np.floor(frac)) @ cell
    return whole, wrapped


def test_polarization_along_direction():
    dipole = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -4.0]])
    np.testing.assert_allclose(polarization(dipole, 100.0, (0, 0, 2)), [0.03, -0.04])
    np.testing.assert_allclose(polarization(dipole, np.array([10.0, 20.0]), (1, 0, 0)), [0.1, 0.0])
    with pytest.raises(ValueError, match="non-zero 3-vector"):
        polarization(dipole, 1.0, (0, 0, 0))


@pytest.mark.parametrize("cell", [np.diag([9.0, 10.0, 11.0]),
                                  np.array([[9.0, 0, 0], [3.0, 9.5, 0], [-2.0, 1.5, 10.0]])])
def test_molecular_dipoles_across_the_boundary(cell):
    rng = np.random.default_rng(0)
    whole, wrapped = water_box(rng, 20, cell)
    charges = np.tile(CHARGES, 20)
    molecules = np.repeat(np.arange(20), 3)
    expected = np.stack([(CHARGES[:, None] * (whole[3 * m:3 * m + 3])).sum(0) for m in range(20)])
    assert not np.allclose(wrapped, whole)  # some molecules really are split
    np.testing.assert_allclose(molecular_dipoles(wrapped[None], charges, molecules, cell)[0], expected, atol=1e-10)
    np.testing.assert_allclose(whole_molecules(wrapped, molecules, cell) - whole_molecules(whole, molecules, cell), 0,
                               atol=1e-10)
    shells = rng.normal(size=(1, 60, 3)) * 0.01
    with_shells = molecular_dipoles(wrapped[None], charges, molecules, cell, shells)[0]
    np.testing.assert_allclose(with_shells - expected, shells[0].reshape(20, 3, 3).sum(1), atol=1e-10)


def test_orientation_and_distribution():
    aligned = np.tile([0.0, 0.0, 0.5], (100, 1)) * np.arange(1, 101)[:, None]
    np.testing.assert_allclose(orientation_cosines(aligned), 1.0)
    np.testing.assert_allclose(orientation_cosines(-aligned, (0, 0, 3)), -1.0)
    isotropic = np.random.default_rng(1).normal(size=(40000, 3))
    assert abs(orientation_cosines(isotropic).mean()) < 0.01
    # isotropic cos θ is uniform on [-1, 1]: variance 1/3
    assert orientation_cosines(isotropic).var() == pytest.approx(1 / 3, rel=0.03)
    centres, density = dipole_distribution(np.tile([0.0, 0.4, 0.3], (10, 1)), bins=5, value_range=(0.0, 1.0))
    assert centres[np.argmax(density)] == pytest.approx(0.5)
    assert (density * 0.2).sum() == pytest.approx(1.0)


def _oxygen_trajectory(positions_A, side_A):
    import mdtraj

    topology = mdtraj.Topology()
    chain = topology.add_chain()
    for _ in range(positions_A.shape[1]):
        topology.add_atom("O", mdtraj.element.oxygen, topology.add_residue("HOH", chain))
    frames = positions_A.shape[0]
    return mdtraj.Trajectory(positions_A / 10.0, topology, unitcell_lengths=np.full((frames, 3), side_A / 10.0),
                             unitcell_angles=np.full((frames, 3), 90.0))


def test_rdf_of_simple_cubic_lattice():
    spacing, n = 3.05, 8  # the nearest-neighbour distance sits in the middle of the bin [3.0, 3.1)
    grid = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) * spacing + 0.1
    traj = _oxygen_trajectory(grid[None], n * spacing)
    r, g = oxygen_rdf(traj, r_max_A=4.0, bin_width_A=0.1)  # below the second shell, √2 · 3.05 Å
    position, height = first_peak(r, g)
    assert position == pytest.approx(spacing, abs=0.05)
    density = (n**3 - 1) / (n * spacing) ** 3  # pair density of the other N − 1 atoms (mdtraj's normalisation)
    # 6 nearest neighbours in the bin [3.0, 3.1): g = 6 / (ρ × volume of that spherical shell)
    shell = 4.0 / 3.0 * np.pi * (3.1**3 - 3.0**3)
    assert height == pytest.approx(6.0 / (density * shell), rel=1e-4)
    coordination = np.sum(g[r < 3.5] * 4 * np.pi * r[r < 3.5] ** 2 * 0.1) * density
    assert coordination == pytest.approx(6.0, rel=0.01)


def test_rdf_of_ideal_gas_is_one():
    rng = np.random.default_rng(2)
    side = 20.0
    traj = _oxygen_trajectory(rng.uniform(0, side, size=(20, 300, 3)), side)
    r, g = oxygen_rdf(traj, r_max_A=9.0, bin_width_A=0.5)
    assert np.abs(g[r > 2.0] - 1.0).max() < 0.1
    with pytest.raises(ValueError, match="half its width"):
        oxygen_rdf(traj, r_max_A=11.0)


def test_analysis_import_is_light():
    import json
    import subprocess
    import sys

    code = ("import json, sys, openmm_pqeq.analysis; "
            "print(json.dumps(sorted(m for m in ('torch', 'mdtraj', 'openmm') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
