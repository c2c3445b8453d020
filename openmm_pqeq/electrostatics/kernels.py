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


def edge_screening(exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor) -> torch.Tensor:
    """Pair screening (P,) Å⁻¹ of each listed pair ``(edge_i, edge_j)`` from per-site
    exponents (N,) Å⁻² (:func:`pair_screening`)."""
    return pair_screening(exponents.index_select(0, edge_i), exponents.index_select(0, edge_j))


def safe_norm(vectors: torch.Tensor) -> torch.Tensor:
    """Row norms of ``(n, 3)`` vectors whose gradient is finite (zero) at the zero vector."""
    sq = (vectors * vectors).sum(-1)
    zero = sq == 0
    return torch.where(zero, torch.zeros_like(sq), torch.sqrt(torch.where(zero, torch.ones_like(sq), sq)))
