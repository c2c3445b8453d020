r"""NequIP interaction block: equivariant convolution, self-connection and gate.

One block of Batzner et al., Nat. Commun. 13, 2453 (2022) (NequIP), built from e3nn
(Geiger & Smidt, arXiv 2207.09453) modules.  For atom ``i`` with neighbours ``j`` (all periodic
images within ``r_max``):

.. math::
    m_i = \frac{1}{\sqrt{\bar n}} \sum_j R(r_{ij}) \left( W_1 h_j \otimes Y(\hat r_{ij}) \right),
    \qquad h_i' = \mathrm{Gate}\left( W_2 m_i + W_\text{sc}^{(Z_i)} h_i \right)

with ``Y`` the spherical harmonics of the edge direction, ``R`` a radial MLP over the Bessel
basis times the cutoff envelope giving one weight per channel and tensor-product path ("uvu",
:class:`~openmm_pqeq.nn.tensor_product.EdgeTensorProduct`), ``n̄`` the
average number of neighbours, ``W_1, W_2`` equivariant linear maps and ``W_sc`` a
species-dependent linear self-connection.  Feature irreps that no path can reach are dropped,
as in NequIP.
"""

from typing import List, Sequence, Tuple

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet, Gate
from e3nn.util.jit import compile_mode

from .tensor_product import EdgeTensorProduct

# Activations of NequIP's defaults: SiLU on even scalars and gates, tanh on odd ones (odd
# functions keep the parity of pseudoscalars).
_ACTIVATIONS = {1: torch.nn.functional.silu, -1: torch.tanh}


@compile_mode("script")
class SpeciesLinear(torch.nn.Module):
    """Equivariant linear map whose weights depend on the species of each atom.

    Equivalent to NequIP's self-connection ``FullyConnectedTensorProduct(h, one_hot(Z))`` but
    applied per species group, so memory grows as ``N * irreps_out.dim`` instead of
    ``N * irreps_in.dim * num_species``.

    Parameters
    ----------
    irreps_in, irreps_out : str or e3nn.o3.Irreps
        Input and output irreps; each output block mixes the input blocks of the same irrep
        (blocks without a matching input are zero).
    num_species : int
        Number of species (rows of the weight table).

    >>> lin = SpeciesLinear("4x0e+2x1o", "3x0e+1x1o", num_species=2)
    >>> lin(torch.randn(5, 10), torch.tensor([0, 1, 1, 0, 1])).shape
    torch.Size([5, 6])
    """

    # For each output block: (mul_out, 2l+1, 1/sqrt(fan_in)) and its paths
    # (input offset, mul_in, weight offset).
    _out_blocks: List[Tuple[int, int, float]]
    _paths: List[List[Tuple[int, int, int]]]

    def __init__(self, irreps_in, irreps_out, num_species: int):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        if num_species < 1:
            raise ValueError(f"`num_species` is {num_species} but must be at least 1")
        self.dim_out: int = self.irreps_out.dim
        self._out_blocks = []
        self._paths = []
        numel = 0
        for mul_out, ir_out in self.irreps_out:
            paths: List[Tuple[int, int, int]] = []
            fan_in = 0
            for (mul_in, ir_in), sl in zip(self.irreps_in, self.irreps_in.slices()):
                if ir_in == ir_out and mul_in > 0 and mul_out > 0:
                    paths.append((sl.start, mul_in, numel))
                    numel += mul_in * mul_out
                    fan_in += mul_in
            self._out_blocks.append((mul_out, ir_out.dim, fan_in ** -0.5 if fan_in > 0 else 0.0))
            self._paths.append(paths)
        self.weight = torch.nn.Parameter(torch.randn(num_species, numel))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__} ({self.irreps_in} -> {self.irreps_out} | {self.weight.shape[0]} species)"

    def forward(self, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Map features ``x`` ``(N, irreps_in.dim)`` of atoms of species index ``species``
        ``(N,)`` int64 (rows of the weight table) to ``(N, irreps_out.dim)``."""
        present: List[int] = torch.unique(species).tolist()
        if len(present) == 0:
            return x.new_zeros(0, self.dim_out)
        rows: List[torch.Tensor] = []
        outputs: List[torch.Tensor] = []
        for s in present:
            idx = torch.nonzero(species == s).squeeze(1)
            xs = x.index_select(0, idx)
            w = self.weight[s]
            blocks: List[torch.Tensor] = []
            for b, (mul_out, dim, norm) in enumerate(self._out_blocks):
                acc = xs.new_zeros(xs.shape[0], mul_out, dim)
                for start, mul_in, w_start in self._paths[b]:
                    x_block = xs[:, start : start + mul_in * dim].reshape(-1, mul_in, dim)
                    w_block = w[w_start : w_start + mul_in * mul_out].view(mul_in, mul_out)
                    acc = acc + torch.einsum("nud,uv->nvd", x_block, w_block)
                blocks.append((norm * acc).reshape(-1, mul_out * dim))
            rows.append(idx)
            outputs.append(torch.cat(blocks, dim=1))
        y = torch.cat(outputs, dim=0)
        return torch.zeros_like(y).index_copy(0, torch.cat(rows), y)


@compile_mode("script")
class InteractionBlock(torch.nn.Module):
    """One NequIP interaction block followed by its gate nonlinearity (module docstring).

    Parameters
    ----------
    irreps_in : str or e3nn.o3.Irreps
        Irreps of the input node features (must contain scalars).
    irreps_target : str or e3nn.o3.Irreps
        Wanted output irreps, e.g. ``"128x0e+64x1e+4x2e"``; irreps no tensor-product path
        reaches from ``irreps_in`` are dropped.  Scalars go through SiLU (even) or tanh (odd);
        each ``l > 0`` irrep is multiplied by its own gate scalar.
    irreps_sh : str or e3nn.o3.Irreps
        Irreps of the edge spherical harmonics, e.g. ``"1x0e+1x1o+1x2e"``.
    num_species : int
        Number of species (for the self-connection).
    num_basis : int
        Size of the radial edge embedding.
    radial_mlp : sequence of int
        Hidden layer sizes of the radial MLP (SiLU, no biases, so zero embedding gives zero weights).
    avg_num_neighbors : float
        ``n̄``; the neighbour sum is divided by ``sqrt(n̄)`` as in NequIP.

    Attributes
    ----------
    irreps_out : e3nn.o3.Irreps
        Irreps of the output node features.
    """

    def __init__(
        self,
        irreps_in,
        irreps_target,
        irreps_sh,
        num_species: int,
        num_basis: int,
        radial_mlp: Sequence[int],
        avg_num_neighbors: float,
    ):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        irreps_target = o3.Irreps(irreps_target)
        self.irreps_sh = o3.Irreps(irreps_sh)
        if not avg_num_neighbors > 0:
            raise ValueError(f"`avg_num_neighbors` is {avg_num_neighbors} but must be positive")

        reachable = {ir_out for _, ir_in in self.irreps_in for _, ir_sh in self.irreps_sh for ir_out in ir_in * ir_sh}
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_target if ir.l == 0 and ir in reachable])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps_target if ir.l > 0 and ir in reachable])
        if scalars.dim == 0:
            raise ValueError(f"no scalar (l=0) irreps reachable in `irreps_target` = {irreps_target}")
        gate_ir = o3.Irrep("0e") if o3.Irrep("0e") in reachable else o3.Irrep("0o")
        gates = o3.Irreps([(mul, gate_ir) for mul, _ in gated])
        self.gate = Gate(
            scalars,
            [_ACTIVATIONS[ir.p] for _, ir in scalars],
            gates,
            [_ACTIVATIONS[gate_ir.p] for _ in gates],
            gated,
        )
        irreps_gate_in = self.gate.irreps_in
        self.irreps_out = self.gate.irreps_out

        self.linear_up = o3.Linear(self.irreps_in, self.irreps_in)
        self.tensor_product = EdgeTensorProduct(self.irreps_in, self.irreps_sh, [ir for _, ir in irreps_gate_in])
        self.radial = FullyConnectedNet(
            [num_basis] + list(radial_mlp) + [self.tensor_product.weight_numel], torch.nn.functional.silu
        )
        self.linear_down = o3.Linear(self.tensor_product.irreps_out, irreps_gate_in)
        self.self_connection = SpeciesLinear(self.irreps_in, irreps_gate_in, num_species)
        self.neighbor_norm: float = float(avg_num_neighbors) ** -0.5

    def __repr__(self) -> str:
        return f"{self.__class__.__name__} ({self.irreps_in} -> {self.irreps_out})"

    def forward(
        self,
        x: torch.Tensor,
        species: torch.Tensor,
        neighbor: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_embedding: torch.Tensor,
    ) -> torch.Tensor:
        """Update node features.

        Edges are in per-centre slots (:func:`~openmm_pqeq.nn.tensor_product.neighbor_slots`):
        ``K`` slots per atom, unused ones with zero harmonics and zero embedding.

        Parameters
        ----------
        x : Tensor
            ``(N, irreps_in.dim)`` node features.
        species : Tensor
            ``(N,)`` int64 species indices.
        neighbor : Tensor
            ``(N * K,)`` int64 neighbour atom of each slot.
        edge_sh : Tensor
            ``(N, K, irreps_sh.dim)`` spherical harmonics of the unit vector from the centre
            to the neighbour.
        edge_embedding : Tensor
            ``(N, K, num_basis)`` radial embedding (zero at and beyond the cutoff).

        Returns
        -------
        Tensor
            ``(N, irreps_out.dim)`` node features.
        """
        self_connection = self.self_connection(x, species)
        h = self.linear_up(x)
        summed = self.tensor_product(h, edge_sh, self.radial(edge_embedding), neighbor)
        return self.gate(self.linear_down(self.neighbor_norm * summed) + self_connection)
