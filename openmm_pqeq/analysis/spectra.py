"""Infrared absorption spectrum from the autocorrelation of the system dipole.

Classical MD gives the dipole autocorrelation C(t) = ⟨δM(0)·δM(t)⟩ (δM = M − ⟨M⟩).  The
absorption coefficient times the refractive index is, from the fluctuation–dissipation
theorem (Ramírez et al., J. Chem. Phys. 121, 3973 (2004)),

    α(ω) n(ω) ∝ ω (1 − e^{−βħω}) / ħ · Q(ω) · S(ω),   S(ω) = ∫ C(t) w(t) cos(ωt) dt,

where Q(ω) turns the classical lineshape into the quantum one.  ``correction`` picks it:

- ``"harmonic"`` (default): Q = βħω / (1 − e^{−βħω}), exact for a harmonic system with
  linear dipole; the prefactor becomes β ω², i.e. I(ω) ∝ β ω² S(ω) (the classical result);
- ``"standard"``: Q = 2 / (1 + e^{−βħω});
- ``"schofield"``: Q = e^{βħω/2};
- ``"none"``: the plain dipole power spectrum S(ω), no prefactor.

The window w(t) over lags 0..T_lag (``"hann"``: cos²(πt/2T_lag); ``"gaussian"``:
exp(−½ (3t/T_lag)²); ``"none"``) trades resolution for noise: the spectrum is sampled every
1/(2 T_lag) (in cm⁻¹: ``resolution_cm``); a Hann-windowed line has a full width at half
maximum of about 1.44 times that.  Intensities are normalised to 1 at their maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..units import BOLTZMANN_EV_PER_K, CM_INVERSE_PER_THZ, FS_TO_PS, PLANCK_EV_PER_THZ
from .correlation import autocorrelation

WINDOWS = ("hann", "gaussian", "none")
CORRECTIONS = ("harmonic", "standard", "schofield", "none")


@dataclass
class IRSpectrum:
    """``wavenumber_cm`` (K,) cm⁻¹, ``intensity`` (K,) normalised to a maximum of 1,
    ``frequency_THz`` (K,), and the settings that made it."""

    wavenumber_cm: np.ndarray
    intensity: np.ndarray
    frequency_THz: np.ndarray
    resolution_cm: float
    max_lag_ps: float
    window: str
    correction: str
    temperature_K: float


def lag_window(n_lags: int, window: str) -> np.ndarray:
    """Window (n_lags,) over lags 0..n_lags−1, 1 at lag 0 (module docstring)."""
    if window not in WINDOWS:
        raise ValueError(f"`window` is {window!r}; options are {', '.join(WINDOWS)}")
    t = np.arange(n_lags) / max(n_lags - 1, 1)
    if window == "hann":
        return np.cos(0.5 * np.pi * t) ** 2
    if window == "gaussian":
        return np.exp(-0.5 * (3.0 * t) ** 2)
    return np.ones(n_lags)


def ir_spectrum(dipole_eA, frame_fs: float, temperature_K: float = 300.0, max_lag_ps: Optional[float] = None,
                window: str = "hann", correction: str = "harmonic", zero_padding: int = 4,
                max_wavenumber_cm: float = 5000.0) -> IRSpectrum:
    """IR spectrum of a dipole series ``dipole_eA`` (F, 3) e·Å sampled every ``frame_fs`` fs.

    ``max_lag_ps`` the correlation length T_lag (default: a third of the run, at most F − 1
    frames); ``zero_padding`` pads the windowed correlation to that many times its length
    (finer sampling, not finer resolution); ``max_wavenumber_cm`` cuts the output.  The
    Nyquist limit 1/(2 Δt) must exceed ``max_wavenumber_cm`` (1 fs frames reach 16,678 cm⁻¹).
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"`correction` is {correction!r}; options are {', '.join(CORRECTIONS)}")
    if not frame_fs > 0 or not temperature_K > 0:
        raise ValueError(f"`frame_fs` ({frame_fs}) and `temperature_K` ({temperature_K}) must be positive")
    if int(zero_padding) < 1:
        raise ValueError(f"`zero_padding` is {zero_padding} but must be >= 1")
    correlation = autocorrelation(dipole_eA)
    frame_ps = frame_fs * FS_TO_PS
    n_frames = correlation.shape[0]
    n_lags = n_frames // 3 if max_lag_ps is None else int(round(max_lag_ps / frame_ps)) + 1
    if not 2 <= n_lags <= n_frames:
        raise ValueError(f"`max_lag_ps` {max_lag_ps} gives {n_lags} lags; the run has {n_frames} frames "
                         f"of {frame_fs} fs")
    windowed = correlation[:n_lags] * lag_window(n_lags, window)
    size = int(zero_padding) * 2 * n_lags
    even = np.zeros(size)
    even[:n_lags] = windowed
    even[size - n_lags + 1:] = windowed[1:][::-1]
    power = np.fft.rfft(even).real * frame_ps  # S(ω) of the symmetric correlation, (e·Å)²·ps
    frequency = np.fft.rfftfreq(size, d=frame_ps)  # THz
    x = PLANCK_EV_PER_THZ * frequency / (BOLTZMANN_EV_PER_K * temperature_K)  # βħω
    if correction == "harmonic":
        prefactor = x * frequency
    elif correction == "standard":
        prefactor = 2.0 * frequency * np.tanh(0.5 * x)
    elif correction == "schofield":
        prefactor = 2.0 * frequency * np.sinh(0.5 * x)
    else:
        prefactor = np.ones_like(frequency)
    intensity = prefactor * power
    wavenumber = frequency * CM_INVERSE_PER_THZ
    keep = wavenumber <= max_wavenumber_cm
    peak = np.abs(intensity[keep]).max()
    if peak == 0:
        raise ValueError("the dipole does not fluctuate: the spectrum is zero")
    lag_ps = (n_lags - 1) * frame_ps
    return IRSpectrum(wavenumber[keep], intensity[keep] / peak, frequency[keep],
                      CM_INVERSE_PER_THZ / (2.0 * lag_ps), lag_ps, window, correction, float(temperature_K))


def spectrum_peaks(spectrum: IRSpectrum, min_height: float = 0.05, min_wavenumber_cm: float = 100.0) -> np.ndarray:
    """Wavenumbers (cm⁻¹) of the local maxima of ``spectrum.intensity`` above ``min_height``
    (of the maximum) and above ``min_wavenumber_cm``, highest first."""
    y = spectrum.intensity
    inner = (y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:]) & (y[1:-1] >= min_height)
    inner &= spectrum.wavenumber_cm[1:-1] >= min_wavenumber_cm
    index = np.nonzero(inner)[0] + 1
    return spectrum.wavenumber_cm[index[np.argsort(-y[index])]]
