r"""Edge tensor product and neighbour sum of the NequIP convolution, on padded neighbour lists.

Computes, for every centre atom ``c``,

.. math::
    m_c[u, k] = \sum_{e:\,\text{center}(e) = c} w_e[u, p(k)] \sum_{i,j}
                h_{\text{neighbor}(e)}[u, i] \, Y_e[j] \, C_{ijk},

the "uvu" tensor product of e3nn (each channel ``u`` of an input irrep coupled to each
spherical-harmonic irrep, one learned weight per edge, channel and path) summed over edges.
``C`` holds ``sqrt(2 l_out + 1)`` times the Wigner 3j symbols, which is e3nn's
``TensorProduct(..., irrep_normalization="component", path_normalization="element")``
with one output slot per path (as in NequIP, Batzner et al., Nat. Commun. 13, 2453 (2022)),
so the result equals that module followed by a scatter-sum (a test checks this).

Layout (a performance choice): the edges of each centre are stored in ``K`` slots, ``K`` the
largest neighbour count, unused slots holding zero harmonics and zero weights
(:func:`neighbor_slots`).  The neighbour sum then is a batched matrix product per atom, and a
path with ``2l_in+1 <= 2l_out+1`` only needs ``mul * (2l_in+1)``-wide edge tensors instead of
the ``mul * (2l_out+1)`` that a per-edge product followed by a scatter materializes.
Measured on one CPU thread, float32, published hyperparameters, 192 atoms and 10,500 edges
(a water box at r_max 5 Å), values plus gradients: 0.28 s per block against 0.68 s for
``e3nn.o3.TensorProduct`` plus ``index_add`` (whose generated code slices edge tensors per
path, and autograd zero-fills one edge-sized gradient per slice); the whole network
(energy+forces) 1.25 s against 1.65 s with the same products done edge by edge and scattered.
"""

import math
from typing import List, Sequence, Tuple

import torch
from e3nn import o3
from e3nn.util.jit import compile_mode


def neighbor_slots(edge_center: torch.Tensor, num_nodes: int) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """Place directed edges in per-centre slots.

    Parameters
    ----------
    edge_center : Tensor
        ``(n_edges,)`` int64 centre atom of each edge.
    num_nodes : int
        Number of atoms N.

    Returns
    -------
    order : Tensor
        ``(n_edges,)`` int64 permutation sorting the edges by centre.
    slot : Tensor
        ``(n_edges,)`` int64 slot ``center * K + rank`` of each *sorted* edge.
    K : int
        Slots per atom (largest neighbour count, 0 without edges).

    >>> order, slot, k = neighbor_slots(torch.tensor([1, 0, 1]), num_nodes=2)
    >>> order.tolist(), slot.tolist(), k
    ([1, 0, 2], [0, 2, 3], 2)
    """
    order = torch.argsort(edge_center, stable=True)
    counts = torch.bincount(edge_center, minlength=num_nodes)
    if edge_center.shape[0] == 0:
        return order, edge_center, 0
    k = int(counts.max())
    center = edge_center.index_select(0, order)
    first = torch.cumsum(counts, 0) - counts
    rank = torch.arange(center.shape[0], device=center.device) - first.index_select(0, center)
    return order, center * k + rank, k


@compile_mode("script")
class EdgeTensorProduct(torch.nn.Module):
    """Weighted "uvu" tensor product of neighbour features with edge harmonics, summed per centre.

    Parameters
    ----------
    irreps_in : str or e3nn.o3.Irreps
        Irreps of the node features.
    irreps_sh : str or e3nn.o3.Irreps
        Irreps of the edge spherical harmonics (multiplicity 1 each).
    allowed_out : sequence of e3nn.o3.Irrep
        Output irreps to compute; paths to other irreps are skipped.

    Attributes
    ----------
    irreps_out : e3nn.o3.Irreps
        One ``mul x ir_out`` entry per path, ordered by input irrep then by harmonic.
    weight_numel : int
        Number of weights per edge (e3nn's layout: per path, ``mul`` contiguous values).

    Examples
    --------
    >>> tp = EdgeTensorProduct("4x0e+2x1o", "1x0e+1x1o", [o3.Irrep("0e"), o3.Irrep("1o")])
    >>> tp.irreps_out, tp.weight_numel
    (4x0e+4x1o+2x1o+2x0e, 12)
    """

    # Per input irrep: (feature offset, mul, 2l+1) and its paths: (weight chunk, harmonics
    # chunk, 2l_out+1, coefficient offset, 1 to contract the harmonics before the neighbour sum).
    _blocks: List[Tuple[int, int, int]]
    _paths: List[List[Tuple[int, int, int, int, int]]]
    _weight_chunks: List[int]
    _sh_chunks: List[int]

    def __init__(self, irreps_in, irreps_sh, allowed_out: Sequence[o3.Irrep]):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_sh = o3.Irreps(irreps_sh)
        allowed = {o3.Irrep(ir) for ir in allowed_out}
        self._blocks = []
        self._paths = []
        self._weight_chunks = []
        self._sh_chunks = [mul * ir.dim for mul, ir in self.irreps_sh]
        irreps_out = []
        coefficients: List[torch.Tensor] = []
        coefficient_offset = 0
        for (mul, ir_in), sl in zip(self.irreps_in, self.irreps_in.slices()):
            paths: List[Tuple[int, int, int, int, int]] = []
            for j, (mul_sh, ir_sh) in enumerate(self.irreps_sh):
                if mul_sh != 1:
                    raise ValueError(f"`irreps_sh` = {self.irreps_sh} must have multiplicity 1")
                for ir_out in ir_in * ir_sh:
                    if ir_out not in allowed or mul == 0:
                        continue
                    # (2l_sh+1, 2l_in+1, 2l_out+1), laid out for edge_sh @ c.
                    c = math.sqrt(ir_out.dim) * o3.wigner_3j(ir_in.l, ir_sh.l, ir_out.l, dtype=torch.float64)
                    coefficients.append(c.transpose(0, 1).flatten())
                    contract_first = int(ir_out.dim < ir_in.dim)
                    paths.append((len(self._weight_chunks), j, ir_out.dim, coefficient_offset, contract_first))
                    irreps_out.append((mul, ir_out))
                    self._weight_chunks.append(mul)
                    coefficient_offset += c.numel()
            if paths:
                self._blocks.append((sl.start, mul, ir_in.dim))
                self._paths.append(paths)
        if not irreps_out:
            raise ValueError(f"no path from {self.irreps_in} x {self.irreps_sh} reaches {sorted(allowed)}")
        self.irreps_out = o3.Irreps(irreps_out)
        self.weight_numel: int = sum(self._weight_chunks)
        # Kept in float64 (exact whatever the default dtype at construction), cast when used.
        self.register_buffer("coefficients", torch.cat(coefficients), persistent=False)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__} ({self.irreps_in} x {self.irreps_sh} -> {self.irreps_out})"

    def forward(
        self,
        x: torch.Tensor,
        edge_sh: torch.Tensor,
        weights: torch.Tensor,
        neighbor: torch.Tensor,
    ) -> torch.Tensor:
        """Neighbour sum of the weighted tensor products.

        Parameters
        ----------
        x : Tensor
            ``(N, irreps_in.dim)`` node features.
        edge_sh : Tensor
            ``(N, K, irreps_sh.dim)`` harmonics of each slot (zero in unused slots).
        weights : Tensor
            ``(N, K, weight_numel)`` path weights of each slot (zero in unused slots).
        neighbor : Tensor
            ``(N * K,)`` int64 neighbour atom of each slot (any valid index in unused slots).

        Returns
        -------
        Tensor
            ``(N, irreps_out.dim)``.
        """
        n_nodes = edge_sh.shape[0]
        n_slots = edge_sh.shape[1]
        # Split once: autograd of a split is one concatenation, of many slices many zero fills.
        weight_chunks = weights.split(self._weight_chunks, dim=2)
        coefficients = self.coefficients.to(edge_sh.dtype)
        sh_chunks = edge_sh.split(self._sh_chunks, dim=2)
        parts: List[torch.Tensor] = []
        for b, (start, mul, dim) in enumerate(self._blocks):
            h = x[:, start : start + mul * dim].reshape(-1, mul, dim).index_select(0, neighbor)
            h = h.view(n_nodes, n_slots, mul, dim)
            for w_index, sh_index, out_dim, c_start, contract_first in self._paths[b]:
                sh = sh_chunks[sh_index]
                sh_dim = sh.shape[2]
                c = coefficients[c_start : c_start + sh_dim * dim * out_dim].view(sh_dim, dim * out_dim)
                coupling = (sh @ c).view(n_nodes, n_slots, dim, out_dim)
                w = weight_chunks[w_index].unsqueeze(3)
                if contract_first:
                    summed = (torch.einsum("nkui,nkio->nkuo", h, coupling) * w).sum(1)
                else:
                    summed = torch.einsum("nkui,nkio->nuo", h * w, coupling)
                parts.append(summed.reshape(n_nodes, mul * out_dim))
        return torch.cat(parts, dim=1)
