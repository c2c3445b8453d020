"""Gaussian-charge Coulomb kernels (the "potentials" of the PQEq electrostatics).

Every PQEq site (core or shell) of atom i is a normalized Gaussian with exponent
``a_i = λ / (2 R_i²)`` (R in Å).  Two Gaussians interact through

    C_ij(r) = k_e · erf(α_ij r) / r,   α_ij = sqrt(a_i a_j / (a_i + a_j))   (Å⁻¹)

(Naserifar et al., J. Chem. Phys. 146, 124117 (2017); k_e in eV·Å).  The periodic
(Ewald) splitting with a global β writes erf(α r)/r = [erf(α r) - erf(β r)]/r + erf(β r)/r;
the first part is short-ranged and summed in real space, the second is a point-charge
Ewald/PME problem.  The published ReaxNet practice instead multiplies C by the ReaxFF
7th-order taper and truncates at 12.5 Å.
"""

from __future__ import annotations

import math

import torch

#: λ of the PQEq Gaussian exponent a = λ / (2 R²), as printed in the published code.
LAMBDA_PUBLISHED: float = 0.462770
#: λ with more digits (docs/method/pqeq.md); used in the physical mode.
LAMBDA: float = 0.4627701421



def gaussian_exponent(radius: torch.Tensor, lam: float = LAMBDA) -> torch.Tensor:
    """Gaussian exponent ``a = λ / (2 R²)`` (Å⁻²) of sites with radius ``R`` (Å)."""
    return lam / (2.0 * radius * radius)


def pair_screening(a_i: torch.Tensor, a_j: torch.Tensor) -> torch.Tensor:
    """Pair screening ``α_ij = sqrt(a_i a_j / (a_i + a_j))`` (Å⁻¹) from exponents (Å⁻²)."""
    return torch.sqrt(a_i * a_j / (a_i + a_j))


def erf_over_r(alpha: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``erf(α r) / r`` (Å⁻¹), finite and smooth at r → 0 (limit 2α/√π); shapes broadcast."""
    small = r < 1e-6
    r_safe = torch.where(small, torch.ones_like(r), r)
    ar = alpha * r
    series = 1.1283791670955126 * alpha  # 2/sqrt(pi) * (1.0 - ar * ar / 3.0)
    return torch.where(small, series, torch.erf(alpha * r_safe) / r_safe)


def reaxff_taper(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """ReaxFF taper ``1 - 35x⁴ + 84x⁵ - 70x⁶ + 20x⁷`` with ``x = r / cutoff`` (zero at the cutoff)."""
    x = r / cutoff
    x4 = x * x * x * x
    return 1.0 + x4 * (-35.0 + x * (84.0 + x * (-70.0 + 20.0 * x)))


def safe_norm(vectors: torch.Tensor) -> torch.Tensor:
    """Row norms of ``(n, 3)`` vectors whose gradient is finite (zero) at the zero vector."""
    sq = (vectors * vectors).sum(-1)
    zero = sq == 0
    return torch.where(zero, torch.zeros_like(sq), torch.sqrt(torch.where(zero, torch.ones_like(sq), sq)))
