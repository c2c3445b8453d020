"""The terms every Ewald-split reciprocal sum (exact Ewald or PME) adds to its site potential:
the Gaussian self energy of each site and the neutralizing background of a charged cell,

    − k_e β/√π Σ_a Q_a²  −  k_e π Q_tot² / (2 V β²).

Lengths Å, charges e, energies eV.
"""

from __future__ import annotations

import math

import torch


def self_and_background(charges: torch.Tensor, volume: torch.Tensor, beta: float,
                        coulomb_constant: float) -> torch.Tensor:
    """``∂/∂Q_a`` (n,) or (n, c) V of the self energy ``−k_e β/√π Σ Q²`` and the neutralizing
    background ``−k_e π Q_tot²/(2 V β²)`` for charges (n,) or (n, c) e in a
    cell of ``volume`` Å³, splitting ``beta`` Å⁻¹."""
    return -coulomb_constant * ((2.0 * beta / math.sqrt(math.pi)) * charges
                                + (math.pi / (volume * beta * beta)) * charges.sum(0, keepdim=True))
