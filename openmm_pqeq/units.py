"""Unit conventions and the only conversion constants in the package.

Internally the model speaks Å (length), eV (energy), e (charge) and V/Å (field).
OpenMM speaks nm, kJ/mol and ps; ASE speaks Å and eV.  Every conversion between the two
worlds goes through the constants below, derived from CODATA values (the same ones
``openmm.unit`` uses), so no module retypes a number.

>>> round(EV_TO_KJ_PER_MOL, 4)
96.4853
"""

from __future__ import annotations

import math

#: Avogadro constant (1/mol), CODATA 2018 (exact).
AVOGADRO: float = 6.02214076e23
#: Elementary charge (C), CODATA 2018 (exact).
ELEMENTARY_CHARGE_C: float = 1.602176634e-19
#: Vacuum permittivity (F/m), CODATA 2018.
VACUUM_PERMITTIVITY: float = 8.8541878128e-12
#: Speed of light in vacuum (m/s), exact.
SPEED_OF_LIGHT: float = 299792458.0

#: 1 eV in kJ/mol.
EV_TO_KJ_PER_MOL: float = ELEMENTARY_CHARGE_C * AVOGADRO / 1000.0
#: 1 eV in kcal/mol, the value used by the published PQEq code (23.060549).
EV_TO_KCAL_PER_MOL: float = 23.060549

#: 1 nm in Å.
NM_TO_ANGSTROM: float = 10.0
#: 1 Å in nm.
ANGSTROM_TO_NM: float = 0.1

#: Coulomb constant e²/(4πε₀) in eV·Å (≈ 14.399645), derived from CODATA values.
COULOMB_EV_A: float = ELEMENTARY_CHARGE_C / (4.0 * math.pi * VACUUM_PERMITTIVITY) * 1e10
#: Coulomb constant as printed by the published PQEq/ReaxNet code (eV·Å).
COULOMB_EV_A_PUBLISHED: float = 14.399645

#: 1 V/nm in V/Å.  (OpenMM-side field parameters are in V/nm.)
V_PER_NM_TO_V_PER_A: float = 0.1
#: 1 V/Å in V/nm.
V_PER_A_TO_V_PER_NM: float = 10.0

#: 1 e·Å in debye (1 D = 10⁻²¹/c C·m, c in m/s; ≈ 4.803205).
E_ANGSTROM_TO_DEBYE: float = ELEMENTARY_CHARGE_C * 1e-10 * SPEED_OF_LIGHT * 1e21

#: Bohr radius in Å, CODATA 2018.
BOHR_TO_ANGSTROM: float = 0.529177210903
#: Hartree in eV, CODATA 2018.
HARTREE_TO_EV: float = 27.211386245988

#: Boltzmann constant (J/K), CODATA 2018 (exact).
BOLTZMANN_J_PER_K: float = 1.380649e-23
#: Boltzmann constant in eV/K (≈ 8.617333e-5).
BOLTZMANN_EV_PER_K: float = BOLTZMANN_J_PER_K / ELEMENTARY_CHARGE_C
#: Vacuum permittivity ε₀ in e/(V·Å) (≈ 5.526350e-3): P (e/Å²) = ε₀ χ E (V/Å).
VACUUM_PERMITTIVITY_E_PER_V_A: float = VACUUM_PERMITTIVITY / ELEMENTARY_CHARGE_C * 1e-10
#: Planck constant (J·s), CODATA 2018 (exact).
PLANCK_J_S: float = 6.62607015e-34
#: Energy of a 1 THz photon, h · 1 THz, in eV (≈ 4.135668e-3).
PLANCK_EV_PER_THZ: float = PLANCK_J_S * 1e12 / ELEMENTARY_CHARGE_C
#: Speed of light in vacuum (m/s), exact.
SPEED_OF_LIGHT_M_PER_S: float = 299792458.0
#: Wavenumber (cm⁻¹) of a 1 THz wave (≈ 33.35641).
CM_INVERSE_PER_THZ: float = 1e12 / (SPEED_OF_LIGHT_M_PER_S * 100.0)
#: Atomic mass constant (kg), CODATA 2018.
ATOMIC_MASS_KG: float = 1.66053906660e-27
#: 1 ps in fs.
PS_TO_FS: float = 1000.0
#: 1 fs in ps.
FS_TO_PS: float = 1e-3
