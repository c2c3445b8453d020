"""IR spectrum of synthetic dipole series with known lines."""

import numpy as np
import pytest

from openmm_pqeq.analysis import ir_spectrum, spectrum_peaks
from openmm_pqeq.units import CM_INVERSE_PER_THZ

LINES_CM = (1650.0, 3700.0)


def synthetic_dipole(rng, frames, frame_fs, amplitudes=(1.0, 1.0), lifetime_ps=0.5):
    """Sum of oscillators at LINES_CM whose phases diffuse (Lorentzian lines of width 1/(π τ))."""
    t_ps = np.arange(frames) * frame_fs * 1e-3
    dipole = np.zeros((frames, 3))
    for wavenumber, amplitude in zip(LINES_CM, amplitudes):
        frequency_THz = wavenumber / CM_INVERSE_PER_THZ
        for c in range(3):
            diffusion = np.sqrt(2 * frame_fs * 1e-3 / lifetime_ps)
            phase = np.cumsum(rng.normal(size=frames)) * diffusion + rng.uniform(0, 6.3)
            dipole[:, c] += amplitude * np.cos(2 * np.pi * frequency_THz * t_ps + phase)
    return dipole + 0.01 * rng.normal(size=dipole.shape)


def test_peaks_at_the_lines():
    spectrum = ir_spectrum(synthetic_dipole(np.random.default_rng(0), 40000, 1.0), frame_fs=1.0, max_lag_ps=2.0)
    peaks = spectrum_peaks(spectrum, min_height=0.2)
    assert len(peaks) == 2
    assert sorted(peaks) == pytest.approx(LINES_CM, abs=2 * spectrum.resolution_cm)
    assert spectrum.resolution_cm == pytest.approx(CM_INVERSE_PER_THZ / 4.0)


def test_quantum_correction_prefactors():
    """Equal dipole amplitudes: the harmonic correction gives I ∝ β ω² S(ω), so the line
    heights scale as ω² against the plain power spectrum; Schofield's exceeds the harmonic one
    at high frequency (βħω ≈ 18 at 3700 cm⁻¹ and 300 K)."""
    dipole = synthetic_dipole(np.random.default_rng(1), 40000, 1.0)
    heights = {}
    for correction in ("none", "harmonic", "standard", "schofield"):
        spectrum = ir_spectrum(dipole, 1.0, max_lag_ps=2.0, correction=correction)
        heights[correction] = [spectrum.intensity[np.argmin(np.abs(spectrum.wavenumber_cm - w))] for w in LINES_CM]
    ratio = lambda h: h[1] / h[0]  # noqa: E731
    assert ratio(heights["harmonic"]) / ratio(heights["none"]) == pytest.approx((LINES_CM[1] / LINES_CM[0]) ** 2,
                                                                                rel=0.05)
    # standard: 2ω tanh(βħω/2) ≈ 2ω at these frequencies, so ∝ ω
    assert ratio(heights["standard"]) / ratio(heights["none"]) == pytest.approx(LINES_CM[1] / LINES_CM[0], rel=0.05)
    assert ratio(heights["schofield"]) > ratio(heights["harmonic"])


def test_window_sets_resolution_and_bad_options():
    dipole = synthetic_dipole(np.random.default_rng(2), 8000, 0.5)
    short = ir_spectrum(dipole, 0.5, max_lag_ps=0.5)
    long = ir_spectrum(dipole, 0.5, max_lag_ps=1.0)
    assert short.resolution_cm == pytest.approx(2 * long.resolution_cm)
    with pytest.raises(ValueError, match="options are hann"):
        ir_spectrum(dipole, 0.5, window="box")
    with pytest.raises(ValueError, match="options are harmonic"):
        ir_spectrum(dipole, 0.5, correction="quantum")
    with pytest.raises(ValueError, match="lags"):
        ir_spectrum(dipole, 0.5, max_lag_ps=100.0)
