"""Real-space pair lists of the physical-mode solve: the overlap check and the periodic Verlet list.

The Verlet list (docs/method/solver.md, "Warm start and the Verlet list") is a half pair list
built with ``cutoff + skin`` and reused until an atom has moved more than half the skin or the
cell has changed; the pair sums skip pairs beyond the cutoff, so results do not depend on when
it was built.  It is run-time state (non-persistent buffers, not in the state dict) that
persists across calls, also inside a frozen TorchScript module (an OpenMM TorchForce).
Lengths Å.
"""

from typing import Tuple

import torch

from ..neighbors import NeighborList, pair_vectors
from .kernels import safe_norm


def check_overlap(edge_i: torch.Tensor, edge_j: torch.Tensor, distances: torch.Tensor, min_distance: float) -> None:
    """One clear error when the closest listed pair (``distances`` (P,) Å of the pairs
    ``(edge_i, edge_j)``) is closer than ``min_distance`` Å: overlapping atoms, or a wrong length
    unit."""
    if distances.numel() > 0:
        k = int(torch.argmin(distances))
        if float(distances[k]) < min_distance:
            raise ValueError("atoms " + str(int(edge_i[k])) + " and " + str(int(edge_j[k])) + " are "
                             + str(float(distances[k])) + " Å apart (closer than min_distance="
                             + str(min_distance) + " Å): overlapping atoms or wrong length unit?")


class VerletList(torch.nn.Module):
    """Periodic half pair list with a skin, rebuilt only when needed.

    Parameters
    ----------
    cutoff : float
        Real-space cutoff (Å): pairs this far apart or more are skipped by the pair sums.
    skin : float
        Verlet skin (Å): the list holds the pairs within ``cutoff + skin`` and is rebuilt when an
        atom has moved more than ``skin / 2`` since it was built, or the cell changed (0: at every
        call).
    """

    def __init__(self, cutoff: float, skin: float):
        super().__init__()
        self.cutoff: float = float(cutoff)
        self.skin: float = float(skin)
        self.neighbors = NeighborList(self.cutoff + self.skin)
        self.register_buffer("edge_i", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("edge_j", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("shifts", torch.zeros(0, 3, dtype=torch.float64), persistent=False)
        self.register_buffer("positions", torch.zeros(0, 3, dtype=torch.float64), persistent=False)
        self.register_buffer("cell", torch.zeros(0, 3, dtype=torch.float64), persistent=False)
        # the closest pair of the list when it was built (Å)
        self.register_buffer("closest_distance", torch.zeros(1, dtype=torch.float64), persistent=False)

    def forward(
        self, pos: torch.Tensor, cell: torch.Tensor, min_distance: float
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """Pairs ``(edge_i (P,), edge_j (P,), shifts (P, 3))`` of positions ``pos`` (N, 3) Å in
        ``cell`` (3, 3) Å (no autograd needed) and the cutoff (Å) beyond which they are skipped;
        an error when two atoms are closer than ``min_distance`` Å (:func:`check_overlap`)."""
        n = pos.shape[0]
        pos64 = pos.to(torch.float64)
        cell64 = cell.to(torch.float64)
        moved = 0.0
        rebuild = self.positions.shape[0] != n or self.cell.shape[0] != 3
        if not rebuild:
            rebuild = not bool(torch.equal(self.cell, cell64))
        if not rebuild:
            moved = float(torch.linalg.norm(pos64 - self.positions, dim=1).max()) if n > 0 else 0.0
            rebuild = moved > 0.5 * self.skin
        if rebuild:
            i, j, shifts = self.neighbors(pos, cell)
            dist = safe_norm(pair_vectors(pos, cell, i, j, shifts))
            closest = dist.min() if dist.numel() > 0 else torch.full((), 1e30, dtype=dist.dtype, device=dist.device)
            if float(closest) < min_distance:
                check_overlap(i, j, dist, min_distance)
            else:
                # the new list is stored only in this branch: in a frozen TorchScript module (an OpenMM
                # TorchForce) the optimizer moves an attribute write up to where its value is made,
                # past a check that raises, so an error left half a new list behind
                self.edge_i = i
                self.edge_j = j
                self.shifts = shifts.to(torch.float64)
                self.positions = pos64
                self.cell = cell64
                self.closest_distance = closest.reshape(1).to(torch.float64)
            moved = 0.0
        i, j = self.edge_i, self.edge_j
        shifts = self.shifts.to(pos.dtype)
        if float(self.closest_distance[0]) - 2.0 * moved < min_distance:
            check_overlap(i, j, safe_norm(pair_vectors(pos, cell, i, j, shifts)), min_distance)
        return i, j, shifts, self.cutoff
