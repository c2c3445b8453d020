"""The conversion constants of openmm_pqeq.units against scipy.constants (CODATA, an
independent source; CODATA 2018 and 2022 differ below 1e-8 for the measured constants)."""

import math

import pytest
import scipy.constants as si

from openmm_pqeq import units


def test_exact_conversions():
    assert units.EV_TO_KJ_PER_MOL == pytest.approx(si.e * si.N_A / 1000.0, rel=1e-14)
    assert units.E_ANGSTROM_TO_DEBYE == pytest.approx(si.e * 1e-10 / (1e-21 / si.c), rel=1e-14)
    assert units.NM_TO_ANGSTROM * units.ANGSTROM_TO_NM == 1.0
    assert units.V_PER_NM_TO_V_PER_A * units.V_PER_A_TO_V_PER_NM == 1.0


def test_measured_constants():
    assert units.COULOMB_EV_A == pytest.approx(si.e / (4 * math.pi * si.epsilon_0) * 1e10, rel=1e-8)
    assert units.BOHR_TO_ANGSTROM == pytest.approx(si.physical_constants["Bohr radius"][0] * 1e10, rel=1e-8)
    assert units.HARTREE_TO_EV == pytest.approx(si.physical_constants["Hartree energy in eV"][0], rel=1e-8)


def test_published_constants_are_the_printed_values():
    # the published PQEq code prints k_e = 14.399645 eV·Å and 1 eV = 23.060549 kcal/mol
    assert units.COULOMB_EV_A_PUBLISHED == pytest.approx(units.COULOMB_EV_A, abs=1e-6)
    assert units.EV_TO_KCAL_PER_MOL == pytest.approx(units.EV_TO_KJ_PER_MOL / si.calorie, abs=1e-5)  # kJ per kcal = J per cal
