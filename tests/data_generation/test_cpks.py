"""Coupled-perturbed Kohn-Sham polarizabilities against finite-field PySCF."""

import numpy as np
import pytest

pyscf = pytest.importorskip("pyscf")

from pyscf import dft, gto  # noqa: E402

from openmm_pqeq.data_generation.cpks import cpks_polarizability  # noqa: E402

WATER = "O 0.0 0.0 0.117; H 0.0 0.757 -0.469; H 0.0 -0.757 -0.469"


def _rks(mol, field_au=None):
    mf = dft.RKS(mol)
    mf.xc = "pbe"
    mf.grids.level = 2
    mf.conv_tol = 1e-12
    if field_au is not None:
        with mol.with_common_orig((0.0, 0.0, 0.0)):
            ints = mol.intor_symmetric("int1e_r", comp=3)
        hcore = mf.get_hcore(mol) + np.einsum("x,xij->ij", field_au, ints)
        mf.get_hcore = lambda *args: hcore
    mf.kernel()
    assert mf.converged
    return mf


def _dipole_au(mf):
    mol = mf.mol
    with mol.with_common_orig((0.0, 0.0, 0.0)):
        ints = mol.intor_symmetric("int1e_r", comp=3)
    return mol.atom_charges() @ mol.atom_coords() - np.einsum("xij,ji->x", ints, mf.make_rdm1())


def test_cpks_polarizability_matches_finite_field_pyscf():
    """Water, PBE/6-31+G*: the analytic α against central differences of PySCF's dipole at fields
    ±h along x, y, z, Richardson-extrapolated from h and h/2 (h = 2e-3 a.u.)."""
    mol = gto.M(atom=WATER, basis="6-31+g*", verbose=0)
    analytic = cpks_polarizability(_rks(mol))

    def central(h):
        columns = []
        for b in range(3):
            step = np.zeros(3)
            step[b] = h
            columns.append((_dipole_au(_rks(mol, step)) - _dipole_au(_rks(mol, -step))) / (2 * h))
        return np.stack(columns, axis=1)

    h = 2e-3
    finite = (4.0 * central(h / 2) - central(h)) / 3.0
    finite = 0.5 * (finite + finite.T)
    iso_analytic, iso_finite = np.trace(analytic) / 3, np.trace(finite) / 3
    assert 3.0 < iso_finite < 20.0  # a.u.; a sane water polarizability in this basis
    assert abs(iso_analytic - iso_finite) <= 1e-3 * iso_finite
    assert np.abs(analytic - finite).max() <= 1e-3 * np.abs(finite).max()
    assert np.allclose(analytic, analytic.T)


def test_cpks_rejects_open_shells_and_unconverged_scf():
    radical = gto.M(atom="O 0 0 0; H 0 0 0.97", basis="sto-3g", spin=1, verbose=0)
    mf = dft.UKS(radical)
    mf.xc = "pbe"
    mf.kernel()
    with pytest.raises(ValueError, match="closed-shell"):
        cpks_polarizability(mf)
    mf = dft.RKS(gto.M(atom=WATER, basis="sto-3g", verbose=0))
    mf.max_cycle = 1
    mf.kernel()
    with pytest.raises(ValueError, match="converged"):
        cpks_polarizability(mf)


def test_label_response_analytic_route_agrees_with_finite_fields_and_fits_without_field_energies(tmp_path):
    from ase.build import molecule

    from openmm_pqeq.data_generation.labelling import DFTSettings
    from openmm_pqeq.data_generation.response import label_response, read_response
    from openmm_pqeq.fit.pqeq_fit import build_pqeq, load_structures, predict, structure_errors

    atoms = molecule("H2O")
    atoms.info.update({"name": "water", "charge": 0})
    settings = DFTSettings(functional="pbe", basis="6-31+g*", density_fit=False, grid_level=2, conv_tol=1e-11)
    analytic = label_response(atoms, settings, esp=False, polarizability="analytic")
    finite = label_response(atoms, settings, field_step=0.02, esp=False)
    assert analytic.info["polarizability_method"] == "cpks"
    assert "field_energies" not in analytic.info and "field_step" not in analytic.info
    a = np.asarray(analytic.info["polarizability"]).reshape(3, 3)
    f = np.asarray(finite.info["polarizability"]).reshape(3, 3)
    assert np.abs(a - f).max() <= 1e-3 * np.abs(f).max()
    assert np.allclose(analytic.info["dipole"], finite.info["dipole"], atol=1e-8)
    with pytest.raises(ValueError, match="finite-field"):
        label_response(atoms, settings, polarizability="analytic", forces=True)
    # such a frame reads back and enters a fit without field energies
    path = tmp_path / "analytic.extxyz"
    analytic.write(str(path), format="extxyz")
    assert "field_energies" not in read_response(str(path))[0].info
    (structure,) = load_structures(path)
    assert structure.field_energies is None
    pqeq = build_pqeq([1, 8], "pqeq-refined")
    errors = structure_errors(predict(pqeq, structure), structure)
    assert "field_energy" not in errors and errors["polarizability"].shape == (3, 3)
