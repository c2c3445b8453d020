"""Response labelling (PySCF): sign and unit conventions of dipole, polarizability, field
energies and electrostatic potential, checked against each other."""

import numpy as np
import pytest

pytest.importorskip("pyscf")

from openmm_pqeq.data_generation.labelling import DFTSettings  # noqa: E402
from openmm_pqeq.data_generation.response import (label_response, response_molecules,  # noqa: E402
                                                  split_families)
from openmm_pqeq.units import COULOMB_EV_A  # noqa: E402


def test_response_labels_are_mutually_consistent():
    from ase.build import molecule

    atoms = molecule("H2O")
    atoms.info.update({"name": "water", "charge": 0})
    settings = DFTSettings(functional="pbe", basis="6-31g", density_fit=False, grid_level=1)
    out = label_response(atoms, settings, field_step=0.1)
    mu = np.asarray(out.info["dipole"])
    alpha = np.asarray(out.info["polarizability"]).reshape(3, 3) / COULOMB_EV_A  # e·Å²/V
    assert np.allclose(alpha, alpha.T) and np.all(np.linalg.eigvalsh(alpha) > 0)
    # E(F) - E(0) = -mu.F - 1/2 F.alpha.F + O(F^3)
    expected = []
    for axis in range(3):
        for sign in (1.0, -1.0):
            f = np.zeros(3)
            f[axis] = sign * 0.1
            expected.append(-mu @ f - 0.5 * f @ alpha @ f)
    assert np.allclose(out.info["field_energies"], expected, atol=2e-5)
    # far from the molecule the ESP is that of its dipole: k_e mu.r / r^3
    from openmm_pqeq.data_generation.labelling import build_molecule, make_scf
    from openmm_pqeq.data_generation.response import _scf, electrostatic_potential

    mf = _scf(make_scf(build_molecule(atoms, "6-31g"), settings))
    far = np.array([[0.0, 0.0, 150.0], [0.0, 0.0, -120.0], [0.0, -100.0, 60.0]])
    dipole_potential = COULOMB_EV_A * (far @ mu) / np.linalg.norm(far, axis=1) ** 3
    assert np.allclose(electrostatic_potential(mf, far), dipole_potential, rtol=3e-2, atol=2e-7)
    assert out.info["esp_points"].size == 3 * out.info["esp_values"].size > 0


def test_molecule_set_covers_the_elements_and_the_split_is_by_family():
    frames = response_molecules(seed=0, n_distorted=16, max_atoms=5, max_heavy=2)
    elements = {s for a in frames for s in a.get_chemical_symbols()}
    assert {"H", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Li", "Na", "K", "Mg", "Ca"} <= elements
    split = split_families(frames, 0.2, seed=0)
    assert sorted(split["train"] + split["test"]) == list(range(len(frames)))
    test_families = {frames[k].info["family"] for k in split["test"]}
    assert not any(frames[k].info["family"] in test_families for k in split["train"])
    assert split == split_families(frames, 0.2, seed=0)
