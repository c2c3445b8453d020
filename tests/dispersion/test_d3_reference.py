"""D3Dispersion against simple-dftd3 (the reference Fortran code), two-body, matching cut-offs."""

from __future__ import annotations

import numpy as np
import pytest

from openmm_pqeq.dispersion import D3Dispersion, damping_parameters
from openmm_pqeq.units import BOHR_TO_ANGSTROM

#: Tolerances required of D3: energy per atom (eV), forces (eV/Å), virial (eV).
E_TOL, F_TOL, V_TOL = 1e-6, 1e-5, 1e-5


def assert_matches(ours, ref, n_atoms):
    energy, forces, virial = ours
    ref_energy, ref_forces, ref_virial = ref
    assert abs(energy - ref_energy) / n_atoms < E_TOL, (energy, ref_energy)
    np.testing.assert_allclose(forces, ref_forces, rtol=0, atol=F_TOL)
    np.testing.assert_allclose(virial, ref_virial, rtol=0, atol=V_TOL)


@pytest.mark.parametrize(
    "damping, functional",
    [("zero", "pbe"), ("bj", "pbe"), ("zero", "pbesol"), ("bj", "b3lyp"), ("bj", "r2scan")],
)
def test_hard_cutoff_matches_dftd3(structure, damping, functional, evaluate, dftd3_reference):
    d3 = D3Dispersion(functional, damping, cutoff=12.5, cn_cutoff=12.5, hard_cutoff=True)
    ours = evaluate(d3, structure)
    ref = dftd3_reference(structure, damping, functional, cutoff=12.5, cn_cutoff=12.5)
    assert ours[0] < 0
    assert_matches(ours, ref, len(structure))


@pytest.mark.parametrize("damping, functional", [("zero", "b3lyp"), ("bj", "pbesol")])
def test_dftd3_default_cutoffs(triclinic, damping, functional, evaluate, dftd3_reference):
    """simple-dftd3's own defaults: 60 bohr dispersion, 40 bohr CN (so cn_cutoff < cutoff);
    hundreds of images of each pair in the small triclinic cell."""
    d3 = D3Dispersion(
        functional, damping, cutoff=60 * BOHR_TO_ANGSTROM, cn_cutoff=40 * BOHR_TO_ANGSTROM,
        hard_cutoff=True,
    )
    ref = dftd3_reference(triclinic, damping, functional)
    assert_matches(evaluate(d3, triclinic), ref, len(triclinic))


def test_cn_cutoff_larger_than_cutoff(triclinic, evaluate, dftd3_reference):
    d3 = D3Dispersion("pbe", "zero", cutoff=9.0, cn_cutoff=15.0, hard_cutoff=True)
    ref = dftd3_reference(triclinic, "zero", "pbe", cutoff=9.0, cn_cutoff=15.0)
    assert_matches(evaluate(d3, triclinic), ref, len(triclinic))


@pytest.mark.parametrize("damping", ["zero", "bj"])
def test_smooth_cutoff_matches_dftd3_width(damping, evaluate, dftd3_reference):
    """Smooth mode: the two-body switch is simple-dftd3's ``width2`` switch.  The molecule is
    smaller than ``cn_cutoff - switch_width``, so the CN switch (absent in simple-dftd3) is 1."""
    from ase.build import molecule

    atoms = molecule("C60")
    cutoff, width = 5.0, 2.0
    d3 = D3Dispersion("pbe", damping, cutoff=cutoff, cn_cutoff=15.0, switch_width=width)
    ref = dftd3_reference(atoms, damping, "pbe", cutoff=cutoff, cn_cutoff=15.0, width=width)
    hard = dftd3_reference(atoms, damping, "pbe", cutoff=cutoff, cn_cutoff=15.0)
    assert abs(ref[0] - hard[0]) > 1e-3  # the switch matters here
    assert_matches(evaluate(d3, atoms), ref, len(atoms))


@pytest.mark.parametrize("damping", ["zero", "bj"])
def test_explicit_parameters_match_dftd3(damping, evaluate, dftd3_reference):
    """Explicit parameters (not a published set) reach the energy as simple-dftd3 uses them."""
    from ase.build import molecule

    atoms = molecule("CH3CH2OH")
    if damping == "zero":
        params = {"s6": 0.9, "s8": 1.1, "rs6": 1.1, "rs8": 1.05, "alp": 12.0}
    else:
        params = {"s6": 0.9, "s8": 1.3, "a1": 0.35, "a2": 4.9}
    d3 = D3Dispersion("custom", damping, parameters=params, hard_cutoff=True)
    ref = dftd3_reference(atoms, damping, None, cutoff=12.5, cn_cutoff=12.5, parameters=params)
    assert_matches(evaluate(d3, atoms), ref, len(atoms))


@pytest.mark.parametrize(
    "damping, functional", [("zero", "pbe"), ("bj", "pbe"), ("bj", "r2scan"), ("zero", "b3lyp")]
)
def test_published_parameters_are_dftd3s(damping, functional, evaluate, dftd3_reference):
    """Looking parameters up by name here gives the same energy as simple-dftd3's own lookup."""
    from ase.build import molecule

    atoms = molecule("CH3CH2OH")
    params = damping_parameters(functional, damping)
    named = dftd3_reference(atoms, damping, functional, cutoff=12.5, cn_cutoff=12.5)
    explicit = dftd3_reference(atoms, damping, None, cutoff=12.5, cn_cutoff=12.5, parameters=params)
    assert named[0] == pytest.approx(explicit[0], rel=1e-14, abs=0)


def test_triclinic_cell_needs_many_images(triclinic):
    """The small cell really exercises images: every cell height is far below the cutoff."""
    cell = np.array(triclinic.cell)
    volume = abs(np.linalg.det(cell))
    faces = [np.cross(cell[1], cell[2]), np.cross(cell[2], cell[0]), np.cross(cell[0], cell[1])]
    heights = [volume / np.linalg.norm(face) for face in faces]
    assert max(heights) < 12.5 / 3
