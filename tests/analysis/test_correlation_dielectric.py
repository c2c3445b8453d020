"""Correlation functions, block errors and the dielectric estimates on synthetic series whose
answers are known analytically (Ornstein–Uhlenbeck dipoles of given variance and correlation time)."""

import numpy as np
import pytest

from openmm_pqeq.analysis import (autocorrelation, block_average, dielectric_fluctuation, dielectric_linear_response,
                                  fluctuation_epsilon, fluctuation_run_length, integrated_correlation_time)
from openmm_pqeq.units import BOLTZMANN_EV_PER_K, VACUUM_PERMITTIVITY_E_PER_V_A

VOLUME_A3 = 2000.0
TEMPERATURE_K = 300.0


def ornstein_uhlenbeck(rng, frames, tau_frames, sigma, components=3):
    """AR(1) series with stationary standard deviation ``sigma`` and correlation e^{-k/tau}."""
    phi = np.exp(-1.0 / tau_frames)
    noise = rng.normal(size=(frames, components)) * sigma * np.sqrt(1.0 - phi**2)
    x = np.empty((frames, components))
    x[0] = rng.normal(size=components) * sigma
    for k in range(1, frames):
        x[k] = phi * x[k - 1] + noise[k]
    return x


def sigma_for(epsilon):
    """Per-component dipole standard deviation (e·Å) for which the fluctuation formula gives ``epsilon``."""
    return np.sqrt((epsilon - 1.0) * VOLUME_A3 * VACUUM_PERMITTIVITY_E_PER_V_A * BOLTZMANN_EV_PER_K * TEMPERATURE_K)


def test_autocorrelation_matches_direct_sum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    c = autocorrelation(x, subtract_mean=False)
    direct = [np.mean(np.sum(x[: 50 - k] * x[k:], axis=1)) for k in range(50)]
    np.testing.assert_allclose(c, direct, rtol=1e-10, atol=1e-12)


def test_correlation_time_of_exponential_series():
    x = ornstein_uhlenbeck(np.random.default_rng(1), 40000, 25.0, 1.0)
    phi = np.exp(-1 / 25.0)
    exact = 0.5 + phi / (1 - phi)  # ½ + Σ φ^k
    assert integrated_correlation_time(x) == pytest.approx(exact, rel=0.15)


def test_block_error_of_independent_samples():
    x = np.random.default_rng(2).normal(size=20000) * 3.0 + 1.0
    mean, error = block_average(x, 20)
    assert error == pytest.approx(3.0 / np.sqrt(20000), rel=0.4)
    assert abs(mean - 1.0) < 4 * error


def test_fluctuation_epsilon_known_variance():
    epsilon_true = 60.0
    rng = np.random.default_rng(3)
    offset = np.array([0.3, -0.2, 5.0])  # ⟨M⟩ ≠ 0
    dipole = ornstein_uhlenbeck(rng, 30000, 20.0, sigma_for(epsilon_true)) + offset
    estimate = dielectric_fluctuation(dipole, VOLUME_A3, TEMPERATURE_K, n_blocks=20, frame_ps=0.01)
    assert abs(estimate.epsilon - epsilon_true) < 4 * estimate.error
    predicted = (epsilon_true - 1) * np.sqrt(2 * 20.0 / (3 * 30000))  # relative error √(2τ/3T)
    assert 0.5 < estimate.error / predicted < 2.0
    assert estimate.correlation_frames == pytest.approx(20.0, rel=0.3)
    assert estimate.correlation_ps == pytest.approx(estimate.correlation_frames * 0.01)


def test_run_length_formula_matches_scatter_of_independent_runs():
    """The run length that fluctuation_run_length asks for gives the stated relative error
    (checked on 48 independent synthetic runs), and the jackknife errors match that scatter."""
    epsilon_true, tau, relative = 40.0, 10.0, 0.12
    frames = int(round(fluctuation_run_length(tau, relative)))  # τ in frames, so T in frames
    rng = np.random.default_rng(4)
    estimates, errors = [], []
    for _ in range(48):
        run = dielectric_fluctuation(ornstein_uhlenbeck(rng, frames, tau, sigma_for(epsilon_true)), VOLUME_A3,
                                     TEMPERATURE_K, n_blocks=10)
        estimates.append(run.epsilon)
        errors.append(run.error)
    scatter = np.std(estimates, ddof=1) / (epsilon_true - 1)
    assert scatter == pytest.approx(relative, rel=0.35)
    assert np.mean(errors) / (epsilon_true - 1) == pytest.approx(relative, rel=0.35)


def test_linear_response_recovers_epsilon():
    epsilon_true, field = 80.0, 0.01
    mean_p = VACUUM_PERMITTIVITY_E_PER_V_A * (epsilon_true - 1) * field
    noise = ornstein_uhlenbeck(np.random.default_rng(5), 20000, 15.0, 0.5 * mean_p, components=1)[:, 0]
    estimate = dielectric_linear_response(mean_p + noise, field, n_blocks=20)
    assert abs(estimate.epsilon - epsilon_true) < 4 * estimate.error
    assert estimate.error < 0.05 * epsilon_true


def test_dielectric_input_errors():
    with pytest.raises(ValueError, match="non-zero field"):
        dielectric_linear_response(np.ones(10), 0.0)
    with pytest.raises(ValueError, match=r"shape \(F, 3\)"):
        fluctuation_epsilon(np.ones((10, 2)), VOLUME_A3, TEMPERATURE_K)
    with pytest.raises(ValueError, match="cannot be split"):
        dielectric_fluctuation(np.ones((5, 3)), VOLUME_A3, TEMPERATURE_K, n_blocks=10)
    with pytest.raises(ValueError, match="NaN"):
        autocorrelation(np.array([1.0, np.nan, 2.0]))
