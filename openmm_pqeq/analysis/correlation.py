"""Time correlation functions, correlation times and block averages of MD time series.

All functions take NumPy arrays whose first axis is time (equally spaced frames); extra
axes are components (e.g. the three Cartesian components of a dipole) that are summed in
the correlation.  Nothing here knows about units: lags come back in frames unless a time
step is given.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def _as_series(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 0 or array.shape[0] < 2:
        raise ValueError(f"`{name}` needs at least 2 frames along its first axis, got shape {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return array.reshape(array.shape[0], -1)


def autocorrelation(values, subtract_mean: bool = True) -> np.ndarray:
    """Autocorrelation C(k) = ⟨x(t)·x(t+k)⟩ for lags k = 0..F−1 (F frames), by FFT.

    ``values`` (F,) or (F, ...): components after the first axis are summed in the dot
    product.  Each lag is averaged over the F − k pairs it has (unbiased estimator).  With
    ``subtract_mean`` the mean of each component is removed first (the fluctuation part).
    Returns (F,) in the squared units of ``values``.
    """
    x = _as_series(values, "values")
    if subtract_mean:
        x = x - x.mean(axis=0)
    n = x.shape[0]
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, n=size, axis=0)
    correlation = np.fft.irfft(spectrum * spectrum.conj(), n=size, axis=0)[:n].sum(axis=1)
    return correlation / np.arange(n, 0, -1)


def integrated_correlation_time(values, window_factor: float = 5.0) -> float:
    """Integrated autocorrelation time τ_int (frames) of a series, with Sokal's automatic window.

    τ_int = ½ + Σ_{k=1}^{W} ρ(k), ρ = C(k)/C(0), the window W the first lag with W ≥
    ``window_factor`` · τ_int(W).  For an exponential correlation e^{−t/τ} sampled every Δt,
    τ_int Δt ≈ τ; the variance of a mean over F frames is 2 τ_int σ²/F.  Components of a
    multi-component series are correlated together (their dot product).
    """
    correlation = autocorrelation(values)
    if correlation[0] <= 0:
        raise ValueError("the series is constant: its correlation time is undefined")
    rho = correlation / correlation[0]
    running = 0.5 + np.cumsum(rho[1:])
    for window in range(1, len(running) + 1):
        if window >= window_factor * running[window - 1]:
            return float(running[window - 1])
    return float(running[-1])


def block_average(values, n_blocks: int = 10) -> Tuple[float, float]:
    """Mean of a scalar series and its standard error from ``n_blocks`` contiguous blocks.

    The error is the standard deviation of the block means over √(n_blocks − 1) (frames
    that do not fill the last block are dropped).  It is honest when each block is much
    longer than the correlation time (:func:`integrated_correlation_time`).
    """
    x = _as_series(values, "values")
    if x.shape[1] != 1:
        raise ValueError(f"block_average takes a scalar series, got shape {list(np.shape(values))}")
    means = split_blocks(x[:, 0], n_blocks).mean(axis=1)
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(n_blocks))


def split_blocks(values, n_blocks: int) -> np.ndarray:
    """``values`` (F, ...) as ``n_blocks`` contiguous, equal blocks (n_blocks, F // n_blocks, ...);
    frames that do not fill the last block are dropped."""
    array = np.asarray(values, dtype=float)
    if int(n_blocks) != n_blocks or n_blocks < 2:
        raise ValueError(f"`n_blocks` is {n_blocks} but must be an integer >= 2")
    size = array.shape[0] // int(n_blocks)
    if size < 1:
        raise ValueError(f"{array.shape[0]} frames cannot be split into {n_blocks} blocks")
    return array[: size * int(n_blocks)].reshape(int(n_blocks), size, *array.shape[1:])
