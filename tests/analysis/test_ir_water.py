"""IR spectrum of a gas-phase water molecule from MD with the shipped water-demo model against
the model's own harmonic frequencies (Hessian by finite differences of its forces).

Short on purpose (0.2 ps: the bend is resolved, the two stretches merge into one band);
benchmarks/ir_water_gas.py runs 2 ps and resolves all three lines (committed results)."""

import numpy as np
import pytest

from openmm_pqeq.analysis import ir_spectrum, spectrum_peaks
from openmm_pqeq.analysis.vibrations import dipole_trajectory, mode_velocities, normal_modes, relaxed


def test_gas_phase_water_peaks_at_hessian_frequencies():
    from ase import Atoms

    from openmm_pqeq.integrations.ase_calculator import PQEqCalculator

    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.7572, 0.5865, 0], [-0.7572, 0.5865, 0]])
    atoms.calc = PQEqCalculator("water-demo", groups=[0, 0, 0])
    relaxed(atoms)
    frequencies, modes = normal_modes(atoms)
    bend, symmetric, antisymmetric = frequencies
    assert 1000 < bend < 2000 and 3000 < symmetric < antisymmetric < 4500
    atoms.set_velocities(mode_velocities(atoms, modes, temperature_K=30.0))  # small amplitude: nearly harmonic
    spectrum = ir_spectrum(dipole_trajectory(atoms, 400, 0.5), 0.5, temperature_K=30.0, max_lag_ps=0.19)
    peaks = spectrum_peaks(spectrum, min_height=0.05)
    assert len(peaks) == 2
    low, high = sorted(peaks)
    # measured with water-demo-v1: 1597.8 against a 1582.9 cm⁻¹ Hessian bend; the stretch band at 3742.7
    # between 3684.4 and 3820.1
    assert low == pytest.approx(bend, abs=0.4 * spectrum.resolution_cm)
    assert symmetric - 0.5 * spectrum.resolution_cm < high < antisymmetric + 0.5 * spectrum.resolution_cm
