"""Static dielectric constant of a periodic MD run from its dipole (tin-foil Ewald boundary).

Two routes (docs in README *Analysis*; both assume Ewald/PME with conducting, "tin-foil",
boundary conditions, where the applied field is the macroscopic field):

- linear response to a small applied field E:  ε − 1 = ⟨P⟩ / (ε₀ E),  P = M·n/V (e/Å²);
- dipole fluctuations without a field:  ε = 1 + (⟨M²⟩ − ⟨M⟩²) / (3 V ε₀ k_B T).

ε₀ in e/(V·Å) and k_B in eV/K come from :mod:`openmm_pqeq.units`.  Errors are block
estimates: the linear response from the spread of block means of P, the fluctuation
formula by the jackknife over blocks (leave one block out), which also carries the bias of
⟨M⟩² estimated from the same run.  Both need runs much longer than the correlation time of
M (about 8 ps for liquid water): :func:`fluctuation_run_length` says how long.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from ..units import BOLTZMANN_EV_PER_K, VACUUM_PERMITTIVITY_E_PER_V_A
from .correlation import block_average, integrated_correlation_time, split_blocks


@dataclass
class DielectricEstimate:
    """ε with its standard error, the method, the frames used and the correlation time of the
    series behind it (frames, and ps when the frame spacing is known)."""

    epsilon: float
    error: float
    method: str
    frames: int
    correlation_frames: float
    correlation_ps: Optional[float] = None

    def as_dict(self) -> dict:
        return asdict(self)


def dielectric_linear_response(polarization_e_per_A2, field_V_per_A: float, baseline_e_per_A2: float = 0.0,
                               n_blocks: int = 10, frame_ps: Optional[float] = None) -> DielectricEstimate:
    """ε − 1 = (⟨P⟩ − P₀)/(ε₀ E) from a run in a constant field ``field_V_per_A`` along P.

    ``polarization_e_per_A2`` (F,) polarization along the field; ``baseline_e_per_A2`` the
    zero-field ⟨P⟩ (0 for a long enough zero-field run; its error is not included).  The
    field must be small enough for the response to be linear (for water, below about
    0.03 V/Å; docs in README *Analysis*).
    """
    if not field_V_per_A or not np.isfinite(field_V_per_A):
        raise ValueError(f"`field_V_per_A` is {field_V_per_A}; the linear-response route needs a non-zero field")
    mean, error = block_average(polarization_e_per_A2, n_blocks)
    scale = 1.0 / (VACUUM_PERMITTIVITY_E_PER_V_A * field_V_per_A)
    tau = integrated_correlation_time(polarization_e_per_A2)
    return DielectricEstimate(1.0 + (mean - baseline_e_per_A2) * scale, abs(error * scale), "linear response",
                              int(np.size(polarization_e_per_A2)), tau, None if frame_ps is None else tau * frame_ps)


def fluctuation_epsilon(dipole_eA, volume_A3: float, temperature_K: float) -> float:
    """ε = 1 + (⟨M²⟩ − ⟨M⟩²)/(3 V ε₀ k_B T) for ``dipole_eA`` (F, 3) e·Å, V in Å³, T in K."""
    dipole = np.asarray(dipole_eA, dtype=float)
    if dipole.ndim != 2 or dipole.shape[1] != 3:
        raise ValueError(f"`dipole_eA` must have shape (F, 3), got {list(dipole.shape)}")
    if not volume_A3 > 0 or not temperature_K > 0:
        raise ValueError(f"volume ({volume_A3} Å³) and temperature ({temperature_K} K) must be positive")
    variance = (dipole**2).sum(axis=1).mean() - (dipole.mean(axis=0) ** 2).sum()
    return 1.0 + variance / (3.0 * volume_A3 * VACUUM_PERMITTIVITY_E_PER_V_A * BOLTZMANN_EV_PER_K * temperature_K)


def dielectric_fluctuation(dipole_eA, volume_A3: float, temperature_K: float, n_blocks: int = 10,
                           frame_ps: Optional[float] = None) -> DielectricEstimate:
    """ε from the fluctuations of the system dipole ``dipole_eA`` (F, 3) of a zero-field run,
    with a block-jackknife standard error (module docstring)."""
    dipole = np.asarray(dipole_eA, dtype=float)
    estimate = fluctuation_epsilon(dipole, volume_A3, temperature_K)
    blocks = split_blocks(dipole, n_blocks)
    leave_out = np.array([fluctuation_epsilon(np.delete(blocks, k, axis=0).reshape(-1, 3), volume_A3, temperature_K)
                          for k in range(n_blocks)])
    error = np.sqrt((n_blocks - 1) / n_blocks * ((leave_out - leave_out.mean()) ** 2).sum())
    tau = integrated_correlation_time(dipole)
    return DielectricEstimate(estimate, float(error), "dipole fluctuations", int(dipole.shape[0]), tau,
                              None if frame_ps is None else tau * frame_ps)


def fluctuation_run_length(correlation_time_ps: float, relative_error: float = 0.1) -> float:
    """Run length (ps) for a relative standard error ``relative_error`` of ε − 1 by the
    fluctuation route, for a Gaussian dipole with exponential correlation time τ.

    The variance of one component estimated over a run T ≫ τ has relative variance 2τ/T;
    three independent components give (ε − 1) a relative error √(2τ/(3T)), so
    T = 2τ/(3 r²).  Liquid water (τ ≈ 8 ps) needs about 530 ps for 10 %.
    """
    if not correlation_time_ps > 0 or not relative_error > 0:
        raise ValueError("the correlation time and the relative error must be positive")
    return 2.0 * correlation_time_ps / (3.0 * relative_error**2)
