"""Anderson acceleration of the charge/shell Newton cycles (docs/method/solver.md).

Both physical-mode solves (global charge transfer in :mod:`.physical`, split charges in
:mod:`openmm_pqeq.electrostatics.splitcharge`) iterate x ← x + f, f the Newton step, and mix in
the steps of earlier cycles: the combination of the last ``depth`` differences that minimizes
the weighted norm of the predicted step (:class:`.cycles.NewtonCycles` holds that state).
"""

from typing import List, Tuple

import torch


def anderson_update(
    x: torch.Tensor, f: torch.Tensor, x_prev: torch.Tensor, f_prev: torch.Tensor, first: bool,
    hist_dx: List[torch.Tensor], hist_df: List[torch.Tensor], weight: torch.Tensor, depth: int,
) -> Tuple[torch.Tensor, List[torch.Tensor], List[torch.Tensor]]:
    """The next iterate from ``x`` (M,) and its Newton step ``f`` (M,).

    ``x_prev``, ``f_prev``: the previous iterate and step (ignored when ``first``);
    ``hist_dx``, ``hist_df``: the differences of earlier cycles (at most ``depth`` kept);
    ``weight`` (M,): the metric of the least-squares problem (square roots of energy scales, so
    charges and shells weigh alike).  Returns (next iterate, updated histories).  With
    ``depth`` ≤ 0 it is the plain step ``x + f``.  No host synchronization: the ridge keeps the
    Gram matrix regular, and ``solve_ex`` skips the singularity check.
    """
    if depth <= 0:
        return x + f, hist_dx, hist_df
    if not first:
        hist_dx.append(x - x_prev)
        hist_df.append(f - f_prev)
        if len(hist_dx) > depth:
            hist_dx = hist_dx[1:]
            hist_df = hist_df[1:]
    if len(hist_dx) == 0:
        return x + f, hist_dx, hist_df
    dx = torch.stack(hist_dx, dim=1)
    df = torch.stack(hist_df, dim=1)
    a = df * weight.unsqueeze(1)
    gram = a.transpose(0, 1) @ a
    gram = gram + (1e-12 * gram.diagonal().max() + 1e-300) * torch.eye(gram.shape[0], dtype=gram.dtype,
                                                                       device=gram.device)
    gamma = torch.linalg.solve_ex(gram, (a.transpose(0, 1) @ (f * weight)).unsqueeze(1))[0].squeeze(1)
    return x + f - (dx + df) @ gamma, hist_dx, hist_df
