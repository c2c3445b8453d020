r"""Fused edge tensor product and neighbour sum of the NequIP convolution.

Computes, for every centre atom ``c``,

.. math::
    m_c[u, k] = \sum_{e:\,\text{center}(e) = c} w_e[u, p(k)] \sum_{i,j}
                h_{\text{neighbor}(e)}[u, i] \, Y_e[j] \, C_{ijk},

the "uvu" tensor product of e3nn (each channel ``u`` of an input irrep coupled to each
spherical-harmonic irrep, one learned weight per edge, channel and path) summed over edges.
``C`` holds ``sqrt(2 l_out + 1)`` times the Wigner 3j symbols, which is e3nn's
``TensorProduct(..., irrep_normalization="component", path_normalization="element")``
with one output slot per path (as in NequIP, Batzner et al., Nat. Commun. 13, 2453 (2022)),
so the result equals that module followed by a scatter-sum.

Why not ``e3nn.o3.TensorProduct`` followed by a scatter: its generated code slices large
per-edge tensors into many paths, and autograd then allocates one zero-filled edge-sized
gradient per slice.  Here each path is one batched product
``(n_edges, mul, 2l_in+1) x (n_edges, 2l_in+1, 2l_out+1)`` summed straight into its own
node-sized output; the weights use e3nn's layout (per path, ``mul`` contiguous values).
"""

import math
from typing import List, Sequence, Tuple

import torch
from e3nn import o3
from e3nn.util.jit import compile_mode


@compile_mode("script")
class EdgeTensorProduct(torch.nn.Module):
    """Weighted "uvu" tensor product of neighbour features with edge harmonics, summed per centre.

    Parameters
    ----------
    irreps_in : str or e3nn.o3.Irreps
        Irreps of the node features.
    irreps_sh : str or e3nn.o3.Irreps
        Irreps of the edge spherical harmonics.
    allowed_out : sequence of e3nn.o3.Irrep
        Output irreps to compute; paths to other irreps are skipped.

    Attributes
    ----------
    irreps_out : e3nn.o3.Irreps
        One ``mul x ir_out`` entry per path, ordered by input irrep then by path.
    weight_numel : int
        Number of weights per edge.

    >>> tp = EdgeTensorProduct("4x0e+2x1o", "1x0e+1x1o", [o3.Irrep("0e"), o3.Irrep("1o")])
    >>> tp.irreps_out, tp.weight_numel
    (4x0e+4x1o+2x1o+2x0e, 12)
    """

    # Per input irrep: (feature offset, mul, 2l+1) and its paths: (index of the weight chunk,
    # index of the harmonics chunk, 2l_out+1, coefficient offset).
    _blocks: List[Tuple[int, int, int]]
    _paths: List[List[Tuple[int, int, int, int]]]
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
            paths: List[Tuple[int, int, int, int]] = []
            for j, (mul_sh, ir_sh) in enumerate(self.irreps_sh):
                if mul_sh != 1:
                    raise ValueError(f"`irreps_sh` = {self.irreps_sh} must have multiplicity 1")
                for ir_out in ir_in * ir_sh:
                    if ir_out not in allowed or mul == 0:
                        continue
                    # (2l_sh+1, 2l_in+1, 2l_out+1), laid out for edge_sh @ c.
                    c = math.sqrt(ir_out.dim) * o3.wigner_3j(ir_in.l, ir_sh.l, ir_out.l, dtype=torch.float64)
                    coefficients.append(c.transpose(0, 1).flatten())
                    paths.append((len(self._weight_chunks), j, ir_out.dim, coefficient_offset))
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
        self.register_buffer(
            "coefficients", torch.cat(coefficients).to(torch.get_default_dtype()), persistent=False
        )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__} ({self.irreps_in} x {self.irreps_sh} -> {self.irreps_out})"

    def forward(
        self,
        x: torch.Tensor,
        edge_sh: torch.Tensor,
        weights: torch.Tensor,
        edge_center: torch.Tensor,
        edge_neighbor: torch.Tensor,
    ) -> torch.Tensor:
        """Neighbour sum of the weighted tensor products.

        Parameters
        ----------
        x : Tensor
            ``(N, irreps_in.dim)`` node features.
        edge_sh : Tensor
            ``(n_edges, irreps_sh.dim)`` edge spherical harmonics.
        weights : Tensor
            ``(n_edges, weight_numel)`` per-edge path weights.
        edge_center, edge_neighbor : Tensor
            ``(n_edges,)`` int64: features of ``edge_neighbor`` are summed on ``edge_center``.

        Returns
        -------
        Tensor
            ``(N, irreps_out.dim)``.
        """
        n_nodes = x.shape[0]
        n_edges = edge_sh.shape[0]
        # Split once: autograd of a split is one concatenation, of many slices many zero fills.
        weight_chunks = weights.split(self._weight_chunks, dim=1)
        sh_chunks = edge_sh.split(self._sh_chunks, dim=1)
        parts: List[torch.Tensor] = []
        for b, (start, mul, dim) in enumerate(self._blocks):
            h = x[:, start : start + mul * dim].reshape(n_nodes, mul, dim).index_select(0, edge_neighbor)
            for w_index, sh_index, out_dim, c_start in self._paths[b]:
                sh = sh_chunks[sh_index]
                sh_dim = sh.shape[1]
                c = self.coefficients[c_start : c_start + sh_dim * dim * out_dim].view(sh_dim, dim * out_dim)
                # (n_edges, 2l+1, 2l_out+1): edge harmonics contracted with the coupling coefficients.
                coupling = (sh @ c).view(n_edges, dim, out_dim)
                weighted = h * weight_chunks[w_index].unsqueeze(2)
                messages = torch.einsum("eui,eik->euk", weighted, coupling)
                summed = messages.new_zeros(n_nodes, mul, out_dim).index_add(0, edge_center, messages)
                parts.append(summed.reshape(n_nodes, mul * out_dim))
        return torch.cat(parts, dim=1)
