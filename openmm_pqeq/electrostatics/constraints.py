"""Linear charge constraints: the total charge of each group of atoms is fixed.

Groups are given as an ``(N,)`` int64 tensor of group indices ``0..G-1`` (one group,
all zeros, for a single total-charge constraint).  The charge solve searches only in the
subspace ``Σ_{i∈g} δq_i = 0`` for every group g; these helpers project onto it.
"""

from __future__ import annotations

import torch


def group_sum(values: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Sum of ``values`` (N,) over each group: (G,)."""
    return torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add_(0, groups, values)


def project_out_group_means(values: torch.Tensor, groups: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``values - mean over the atom's group``: the orthogonal projection onto ``Σ_g v = 0``.
    ``counts`` (G,) are the group sizes (float)."""
    means = group_sum(values, groups, counts.shape[0]) / counts
    return values - means.index_select(0, groups)


def project_preconditioned(
    residual: torch.Tensor, inverse_diagonal: torch.Tensor, groups: torch.Tensor, weight_sums: torch.Tensor
) -> torch.Tensor:
    """Constraint-preconditioned residual ``z = D⁻¹r − D⁻¹ (Σ_g D⁻¹r) / (Σ_g D⁻¹)``.

    ``z`` satisfies every group constraint (``Σ_{i∈g} z_i = 0``) and is the diagonal
    (Jacobi) preconditioner restricted to the constraint subspace.  ``weight_sums`` (G,) is
    ``Σ_{i∈g} 1/D_i``."""
    z = inverse_diagonal * residual
    correction = group_sum(z, groups, weight_sums.shape[0]) / weight_sums
    return z - inverse_diagonal * correction.index_select(0, groups)


def make_feasible(
    charges: torch.Tensor, groups: torch.Tensor, counts: torch.Tensor, group_charges: torch.Tensor
) -> torch.Tensor:
    """Shift ``charges`` (N,) uniformly within each group so that group totals equal
    ``group_charges`` (G,) e."""
    excess = (group_sum(charges, groups, counts.shape[0]) - group_charges) / counts
    return charges - excess.index_select(0, groups)
