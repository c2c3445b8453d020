"""Neighbour pairs with periodic images, as a TorchScript-compatible module.

Wraps ``vesin_torch.NeighborList`` (cell lists, any triclinic cell, any cutoff: a cell
smaller than the cutoff simply gives several images of the same pair, including images of
an atom with itself).  Pair vectors are recomputed in torch from the positions, the integer
shifts and the cell, so autograd reaches positions *and* cell (for the virial).

Conventions (shared by every term of the model):

- ``edge_i``, ``edge_j``: ``(n_pairs,)`` int64, a *half* list: each unordered pair once,
  including the self-image pairs ``i == j`` with a non-zero shift.
- ``shifts``: ``(n_pairs, 3)`` integer multiples of the cell vectors (float dtype of the
  positions), so that ``r_ij = r_j - r_i + shifts @ cell`` points from ``i`` to ``j``.
- Lengths in Å.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import vesin_torch

from ._torchscript import constant


class NeighborList(torch.nn.Module):
    """Half neighbour list within ``cutoff`` (Å).

    >>> nl = NeighborList(cutoff=3.0)
    >>> pos = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    >>> i, j, s = nl(pos, None)
    >>> i.tolist(), j.tolist()
    ([0], [1])
    """

    def __init__(self, cutoff: float):
        super().__init__()
        if not cutoff > 0:
            raise ValueError(f"`cutoff` is {cutoff} Å but must be positive")
        self.cutoff: float = float(cutoff)
        self._nl = vesin_torch.NeighborList(cutoff=float(cutoff), full_list=False)

    def forward(
        self, positions: torch.Tensor, cell: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pairs of ``positions`` ``(N, 3)`` Å within the cutoff; ``cell`` ``(3, 3)`` Å (rows are
        cell vectors) or ``None`` for an open system.  Returns ``(edge_i, edge_j, shifts)``."""
        pos = constant(positions)
        if cell is None:
            box = torch.zeros(3, 3, dtype=pos.dtype, device=pos.device)
            i, j, s = self._nl.compute(pos, box, False, "ijS")
        else:
            i, j, s = self._nl.compute(pos, constant(cell).to(pos.dtype), True, "ijS")
        # vesin returns i and j as strided views of one (P, 2) array: contiguous copies once here,
        # not in every pair loop that reads them
        return i.to(torch.long).contiguous(), j.to(torch.long).contiguous(), s.to(positions.dtype)


def pair_vectors(
    positions: torch.Tensor,
    cell: Optional[torch.Tensor],
    edge_i: torch.Tensor,
    edge_j: torch.Tensor,
    shifts: torch.Tensor,
) -> torch.Tensor:
    """Vectors ``r_j - r_i + shifts @ cell`` ``(n_pairs, 3)`` Å, differentiable in positions and cell."""
    vec = positions.index_select(0, edge_j) - positions.index_select(0, edge_i)
    if cell is not None:
        vec = vec + shifts @ cell
    return vec
