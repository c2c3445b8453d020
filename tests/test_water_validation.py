"""The pieces of benchmarks/water_validation.py that its numbers rest on, on small synthetic
inputs with known answers: the liquid box (count, density, no clashes), the hydrogen mass
repartitioning (molecular masses kept), the density, and the proton-transfer and dissociation
detection (including molecules split by the periodic boundary).  The MD itself is the
benchmark's job (committed results), not a test's."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import water_validation  # noqa: E402
import water_validation_report  # noqa: E402

from openmm_pqeq.units import ATOMIC_MASS_KG  # noqa: E402

WATER_MASS_AMU = 15.999 + 2 * 1.008  # IUPAC standard atomic weights, as OpenMM's elements


def _frames(positions, box_A):
    positions = np.asarray(positions, dtype=float)[None]
    return {"positions_A": positions, "box_A": np.asarray(box_A, dtype=float)[None]}


def _water(oxygen, direction=(1.0, 0.0, 0.0)):
    """O, H, H with O–H 0.96 Å at 104.5°, the bisector along ``direction``."""
    oxygen = np.asarray(oxygen, dtype=float)
    half = np.radians(104.5 / 2)
    u = np.asarray(direction, dtype=float) / np.linalg.norm(direction)
    v = np.cross(u, [0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.cross(u, [1.0, 0.0, 0.0])
    v /= np.linalg.norm(v)
    return [oxygen, oxygen + 0.96 * (np.cos(half) * u + np.sin(half) * v),
            oxygen + 0.96 * (np.cos(half) * u - np.sin(half) * v)]


def test_liquid_box_has_the_asked_molecules_at_the_experimental_density():
    from openmm import unit

    topology, positions = water_validation.liquid_box(12)
    assert topology.getNumResidues() == 12
    side_A = topology.getPeriodicBoxVectors()[0][0].value_in_unit(unit.angstrom)
    density = 12 * WATER_MASS_AMU * ATOMIC_MASS_KG * 1e3 / (side_A * 1e-8) ** 3  # g/cm³
    assert density == pytest.approx(water_validation.DENSITY_G_CM3, rel=1e-3)
    xyz = np.array(positions.value_in_unit(unit.angstrom))
    oxygens = xyz[::3]
    d = oxygens[:, None] - oxygens[None]
    d -= side_A * np.round(d / side_A)
    r = np.linalg.norm(d, axis=-1) + np.eye(12) * 100
    assert r.min() > 2.3  # the relaxed box has no clashes through the periodic faces
    assert np.linalg.norm(xyz[1::3] - xyz[::3], axis=1) == pytest.approx(0.9572, abs=1e-4)  # rigid TIP3P


def test_density_of_one_molecule_in_a_known_volume():
    topology = water_validation.water_topology(2)
    volume = np.array([60.0, 90.0])
    expected = 2 * WATER_MASS_AMU * ATOMIC_MASS_KG * 1e3 / (volume * 1e-24)
    assert water_validation.density_g_cm3(topology, volume) == pytest.approx(expected, rel=1e-4)


def test_hydrogen_mass_repartitioning_keeps_molecular_masses():
    import openmm
    from openmm import unit

    topology = water_validation.water_topology(3)
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    water_validation._repartition_masses(system, topology)
    masses = np.array([system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(9)])
    assert masses[1::3] == pytest.approx(water_validation.HYDROGEN_MASS)
    assert masses.reshape(3, 3).sum(1) == pytest.approx(WATER_MASS_AMU, abs=1e-3)


def test_intact_water_has_no_transfer_or_dissociation_even_across_the_boundary():
    box = np.eye(3) * 8.0
    # molecule 0 sits on the boundary: its H atoms are wrapped to the far side of the box
    first = np.array(_water([0.1, 4.0, 4.0], direction=(-1.0, 0.0, 0.0))) % 8.0
    positions = np.concatenate([first, _water([3.0, 4.0, 4.0])])
    result = water_validation_report.chemistry(_frames(positions, box), np.array([True]), 2)
    assert result["proton_transfer_h_frames"] == 0 and result["dissociated_bond_frames"] == 0
    assert result["frames_with_proton_transfer"] == 0 and result["frames_with_dissociated_bond"] == 0
    assert result["oh_max_A"] == pytest.approx(0.96, abs=1e-6)


def test_a_proton_moved_to_the_neighbour_counts_as_transfer_and_dissociation():
    box = np.eye(3) * 10.0
    positions = np.concatenate([_water([2.0, 5.0, 5.0]), _water([4.6, 5.0, 5.0], direction=(0.0, 1.0, 0.0))])
    # the H atoms of molecule 0 point towards molecule 1; move one to 1.0 Å from O of molecule 1
    positions[1] = positions[3] + (positions[1] - positions[3]) / np.linalg.norm(positions[1] - positions[3]) * 1.0
    result = water_validation_report.chemistry(_frames(positions, box), np.array([True]), 2)
    assert result["proton_transfer_h_frames"] == 1 and result["frames_with_proton_transfer"] == 1
    assert result["dissociated_bond_frames"] == 1  # its own O is 1.7 Å away
    assert result["intermolecular_oh_min_A"] == pytest.approx(1.0, abs=1e-9)


def test_unknown_stage_names_are_one_clear_error():
    with pytest.raises(ValueError, match="unknown stage 'nvx'"):
        water_validation.stage_settings("nvx")
    with pytest.raises(ValueError, match="the field must be in"):
        water_validation.stage_settings("field-1.5")
