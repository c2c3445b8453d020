"""DFT labelling through PySCF: forces, field sign, dipole, charge/spin (sto-3g, seconds)."""

import sys

import numpy as np
import pytest

pytest.importorskip("pyscf")

from ase import Atoms  # noqa: E402

from openmm_pqeq.data_generation.labelling import (DFTSettings, import_pyscf, label_atoms,  # noqa: E402
                                                   structure_multiplicity)

FAST = DFTSettings(basis="sto-3g", conv_tol=1e-11)


def water():
    """A distorted water molecule, off the origin (dipole along roughly −z)."""
    return Atoms("OH2", positions=[[0.1, -0.2, 0.3], [0.1, 0.57, -0.26], [0.14, -0.95, -0.2]])


@pytest.mark.parametrize("field", [(0.0, 0.0, 0.0), (0.3, -0.2, 0.4)])
def test_forces_are_gradients_of_the_energy(field):
    atoms = water()
    forces = label_atoms(atoms, FAST, field=field, threads=1).get_forces()
    h = 5e-4
    for i, k in [(0, 0), (1, 1), (2, 2), (0, 2)]:
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[i, k] += sign * h
            energies.append(label_atoms(moved, FAST, field=field, forces=False, threads=1).get_potential_energy())
        assert forces[i, k] == pytest.approx(-(energies[0] - energies[1]) / (2 * h), abs=2e-5)
    # grid response included: no net force on an isolated molecule without field
    if not any(field):
        np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-8)


def test_field_lowers_energy_along_the_dipole():
    atoms = water()
    zero = label_atoms(atoms, FAST, forces=False, threads=1)
    mu = zero.get_dipole_moment()                      # e·Å
    assert np.linalg.norm(mu) > 0.1
    unit = mu / np.linalg.norm(mu)
    f = 0.01                                           # V/Å
    plus = label_atoms(atoms, FAST, field=f * unit, forces=False, threads=1).get_potential_energy()
    minus = label_atoms(atoms, FAST, field=-f * unit, forces=False, threads=1).get_potential_energy()
    e0 = zero.get_potential_energy()
    assert plus < e0 < minus
    # first order: E(F) ≈ E0 − μ·F  (eV = e·Å · V/Å)
    assert (plus - minus) / (2 * f) == pytest.approx(-np.linalg.norm(mu), rel=1e-3)
    # second order: the induced dipole follows the field, and −d²E/dF² > 0
    assert plus + minus - 2 * e0 < 0


def test_metadata_units_and_frame_info():
    atoms = water()
    atoms.info["field"] = np.array([0.0, 0.0, 0.1])
    labelled = label_atoms(atoms, FAST, threads=1)
    assert labelled.info["dft_method"] == "PBE/sto-3g/DF"
    assert labelled.info["charge"] == 0 and labelled.info["multiplicity"] == 1
    np.testing.assert_array_equal(labelled.info["field"], [0.0, 0.0, 0.1])
    # PBE/sto-3g water is about −2047 eV (−75.2 Hartree): energies are in eV
    assert -2060 < labelled.get_potential_energy() < -2040
    assert labelled.get_forces().shape == (3, 3)


def test_charge_and_open_shell():
    hydroxyl = Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]])      # 9 electrons: doublet, UKS
    radical = label_atoms(hydroxyl, FAST, threads=1)
    assert radical.info["multiplicity"] == 2
    hydroxyl.info["charge"] = -1                                    # OH−: closed shell
    anion = label_atoms(hydroxyl, FAST, threads=1)
    assert anion.info["multiplicity"] == 1 and anion.info["charge"] == -1
    with pytest.raises(ValueError, match="multiplicity 2 is impossible"):
        label_atoms(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), FAST, multiplicity=2)
    triplet = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], info={"multiplicity": 3})
    assert structure_multiplicity(triplet, 0) == 3
    with pytest.raises(ValueError, match="must be an integer"):
        label_atoms(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], info={"charge": 0.5}), FAST)


def test_errors_name_the_problem(monkeypatch):
    with pytest.raises(ValueError, match="periodic"):
        label_atoms(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[5, 5, 5], pbc=True), FAST)
    with pytest.raises(ValueError, match="3 finite numbers"):
        label_atoms(water(), FAST, field=(0.0, 1.0))
    with pytest.raises(ValueError, match="grid_level"):
        DFTSettings(grid_level=12)
    monkeypatch.setitem(sys.modules, "pyscf", None)
    with pytest.raises(ImportError, match="pip install pyscf"):
        import_pyscf()
