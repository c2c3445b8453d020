"""The E0 network: a NequIP-style E(3)-equivariant message-passing potential.

Batzner et al., "E(3)-equivariant graph neural networks for data-efficient and accurate
interatomic potentials", Nat. Commun. 13, 2453 (2022), built on e3nn (Geiger & Smidt,
arXiv 2207.09453).  In the full model (docs/method/energy.md) it gives the short-range energy
``E0 = Σ_i E0_i``; PQEq and D3 are added elsewhere.

Pipeline: one-hot species embedding → ``num_blocks`` interaction blocks
(:class:`~openmm_pqeq.nn.interaction.InteractionBlock`; the last one keeps only even scalars)
→ linear scalar readout → per-species scale and shift.  Lengths Å, energies eV.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from e3nn import o3
from e3nn.util.jit import compile_mode

from ..elements import MAX_Z, SYMBOLS, atomic_number
from ..neighbors import NeighborList, pair_vectors
from .interaction import InteractionBlock
from .tensor_product import neighbor_slots
from .radial import BesselBasis, PolynomialCutoff

#: Named hyperparameter sets for :meth:`E0Network.from_preset`.
#:
#: - ``"published"``: the model of Gao et al., Nat. Commun. 16, 10484 (2025): 6 blocks, l_max 2,
#:   ``128x0e+64x1e+4x2e`` (no odd parity), 8 Bessel functions, r_max 5 Å; radial MLP 2 × 64
#:   (NequIP default).  ``avg_num_neighbors`` is a typical value for condensed matter at 5 Å:
#:   set it from the training data (:func:`average_num_neighbors`).
#: - ``"small"``: a few-thousand-parameter variant for CPU tests and demos.
PRESETS: Dict[str, Dict[str, Any]] = {
    "published": {
        "num_blocks": 6,
        "l_max": 2,
        "hidden_irreps": "128x0e+64x1e+4x2e",
        "num_bessel": 8,
        "r_max": 5.0,
        "radial_mlp": [64, 64],
        "avg_num_neighbors": 30.0,
        "parity": False,
    },
    "small": {
        "num_blocks": 2,
        "l_max": 1,
        "hidden_irreps": "16x0e+8x1e",
        "num_bessel": 8,
        "r_max": 5.0,
        "radial_mlp": [16, 16],
        "avg_num_neighbors": 30.0,
        "parity": False,
    },
}


@compile_mode("script")
class E0Network(torch.nn.Module):
    """NequIP-style equivariant network giving one energy per atom.

    >>> net = E0Network.from_preset("small", elements=[1, 8])
    >>> pos = torch.tensor([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    >>> net(pos, torch.tensor([8, 1, 1]), None).shape
    torch.Size([3])

    Rebuild from the stored hyperparameters (a model file saves ``config`` + ``state_dict``):

    >>> twin = E0Network(**net.config)

    Parameters
    ----------
    elements : sequence of int or str
        Supported elements (atomic numbers or symbols, Z ≤ 103), in the order of the
        per-species tables.
    num_blocks : int
        Number of interaction blocks (message-passing layers); receptive field
        ``num_blocks * r_max``.
    l_max : int
        Largest degree of the edge spherical harmonics.
    hidden_irreps : str
        Node-feature irreps, e.g. ``"128x0e+64x1e+4x2e"``; must contain ``0e`` scalars.
    num_bessel : int
        Number of radial Bessel functions.
    r_max : float
        Cutoff radius (Å).
    radial_mlp : sequence of int
        Hidden layer sizes of the radial MLPs.
    avg_num_neighbors : float
        Normalization ``n̄`` of the neighbour sum (divided by ``sqrt(n̄)``).
    parity : bool
        ``True``: E(3) equivariance, edge harmonics ``0e+1o+2e+…`` and features of both
        parities; the energy is invariant under reflections.  ``False`` (published choice):
        SE(3) only, harmonics and features all labelled even.
    polynomial_p : int
        Order of the cutoff envelope (NequIP: 6).

    Attributes
    ----------
    config : dict
        The constructor arguments (``E0Network(**config)`` rebuilds the network).
    per_species_scale : torch.Tensor
        ``(num_species,)`` buffer, the ``scale`` of ``E0_i = scale[Z_i] * readout_i + shift[Z_i]`` (eV);
        set it with :meth:`set_species_statistics`.
    per_species_shift : torch.Tensor
        ``(num_species,)`` buffer, the ``shift`` (eV) of the same formula.
    """

    def __init__(
        self,
        elements: Sequence[Union[int, str]],
        num_blocks: int,
        l_max: int,
        hidden_irreps: str,
        num_bessel: int,
        r_max: float,
        radial_mlp: Sequence[int],
        avg_num_neighbors: float,
        parity: bool = False,
        polynomial_p: int = 6,
    ):
        super().__init__()
        if not r_max > 0:
            raise ValueError(f"`r_max` is {r_max} Å but must be positive")
        zs = [atomic_number(z) for z in elements]
        if len(zs) == 0:
            raise ValueError("`elements` is empty; give at least one element")
        if len(set(zs)) != len(zs):
            raise ValueError(f"`elements` = {list(elements)} contains duplicates")
        if num_blocks < 1:
            raise ValueError(f"`num_blocks` is {num_blocks} but must be at least 1")
        if l_max < 0:
            raise ValueError(f"`l_max` is {l_max} but must be non-negative")
        if any(int(n) < 1 for n in radial_mlp):
            raise ValueError(f"`radial_mlp` is {list(radial_mlp)} but sizes must be positive")
        irreps_hidden = o3.Irreps(hidden_irreps)
        num_scalars = irreps_hidden.count("0e")
        if num_scalars == 0:
            raise ValueError(f"`hidden_irreps` = {hidden_irreps!r} has no 0e scalars")
        if not parity and any(ir.p == -1 for _, ir in irreps_hidden):
            raise ValueError(f"`hidden_irreps` = {hidden_irreps!r} has odd irreps but `parity` is False")

        self.config: Dict[str, Any] = {
            "elements": zs,
            "num_blocks": int(num_blocks),
            "l_max": int(l_max),
            "hidden_irreps": str(hidden_irreps),
            "num_bessel": int(num_bessel),
            "r_max": float(r_max),
            "radial_mlp": [int(n) for n in radial_mlp],
            "avg_num_neighbors": float(avg_num_neighbors),
            "parity": bool(parity),
            "polynomial_p": int(polynomial_p),
        }
        self.elements: List[int] = zs
        self.r_max: float = float(r_max)
        self.symbols: List[str] = list(SYMBOLS)
        self.supported: str = ", ".join(SYMBOLS[z] for z in zs)
        species_of_z = torch.full((MAX_Z + 1,), -1, dtype=torch.long)
        species_of_z[torch.tensor(zs)] = torch.arange(len(zs))
        self.register_buffer("species_of_z", species_of_z, persistent=False)

        self.neighbors = NeighborList(r_max)
        self.bessel = BesselBasis(r_max, num_bessel)
        self.cutoff = PolynomialCutoff(r_max, polynomial_p)
        irreps_sh = o3.Irreps.spherical_harmonics(l_max, p=-1 if parity else 1)
        self.spherical_harmonics = o3.SphericalHarmonics(irreps_sh, normalize=True, normalization="component")

        # One-hot species embedding followed by a linear map = a row lookup.
        self.species_embedding = torch.nn.Parameter(torch.randn(len(zs), num_scalars))
        irreps = o3.Irreps(f"{num_scalars}x0e")
        blocks = []
        for b in range(num_blocks):
            # The readout uses only even scalars: the last block computes nothing else.
            target = irreps_hidden if b < num_blocks - 1 else o3.Irreps(f"{num_scalars}x0e")
            block = InteractionBlock(irreps, target, irreps_sh, len(zs), num_bessel, radial_mlp, avg_num_neighbors)
            blocks.append(block)
            irreps = block.irreps_out
        self.blocks = torch.nn.ModuleList(blocks)
        self.readout = o3.Linear(irreps, "1x0e")
        self.register_buffer("per_species_scale", torch.ones(len(zs)))
        self.register_buffer("per_species_shift", torch.zeros(len(zs)))

    @classmethod
    def from_preset(cls, name: str, elements: Sequence[Union[int, str]], **overrides: Any) -> "E0Network":
        """Build a network from a :data:`PRESETS` entry, with any hyperparameter overridden.

        >>> E0Network.from_preset("small", ["H", "O"], avg_num_neighbors=12.0).config["avg_num_neighbors"]
        12.0
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r} (options are {sorted(PRESETS)})")
        return cls(elements, **{**PRESETS[name], **overrides})

    def set_species_statistics(
        self,
        shift: Optional[Mapping[Union[int, str], float]] = None,
        scale: Union[None, float, Mapping[Union[int, str], float]] = None,
    ) -> None:
        """Set the per-species energy shift and scale (eV), e.g. from training-set statistics.

        Elements missing from a mapping keep their current value.

        >>> net = E0Network.from_preset("small", ["H", "O"])
        >>> net.set_species_statistics(shift={"H": -13.6, 8: -432.0}, scale=0.5)
        >>> net.per_species_shift.tolist(), net.per_species_scale.tolist()
        ([-13.600000381469727, -432.0], [0.5, 0.5])
        """
        if isinstance(scale, (int, float)):
            scale = {z: float(scale) for z in self.elements}
        for name, values, table in (
            ("shift", shift, self.per_species_shift),
            ("scale", scale, self.per_species_scale),
        ):
            for key, value in (values or {}).items():
                z = atomic_number(key)
                if z not in self.elements:
                    raise ValueError(
                        f"`{name}` has element {key!r}, not among the model's elements ({self.supported})"
                    )
                with torch.no_grad():
                    table[self.elements.index(z)] = float(value)

    def forward(
        self, positions: torch.Tensor, numbers: torch.Tensor, cell: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Per-atom energies.

        Parameters
        ----------
        positions : Tensor
            ``(N, 3)`` Å, same dtype as the network; need not be wrapped into the cell.
        numbers : Tensor
            ``(N,)`` integer atomic numbers, all among ``elements``.
        cell : Tensor, optional
            ``(3, 3)`` Å, rows are the cell vectors (any shape and size: small cells give
            several images of a pair, and images of an atom with itself), or ``None`` for an
            open system.

        Returns
        -------
        Tensor
            ``(N,)`` per-atom energies E0_i (eV), float64 whatever the network's dtype (the
            shifts are added in float64, so sums over atoms keep their precision);
            differentiable in positions and cell.
        """
        if positions.dim() != 2 or positions.shape[1] != 3:
            raise ValueError(f"`positions` must have shape (N, 3), got {list(positions.shape)}")
        if numbers.shape != positions.shape[:1]:
            raise ValueError(f"`numbers` must have shape ({positions.shape[0]},), got {list(numbers.shape)}")
        if positions.dtype != self.per_species_shift.dtype:
            raise ValueError(
                f"`positions` has dtype {positions.dtype} but the network is {self.per_species_shift.dtype}; "
                "convert one with .to(dtype)"
            )
        if cell is not None:
            if cell.shape != (3, 3):
                raise ValueError(f"`cell` must have shape (3, 3), got {list(cell.shape)}")
            cell = cell.to(positions.dtype)
        species = self._species(numbers)

        neighbor, edge_sh, edge_embedding = self._edges(positions, cell)
        h = self.species_embedding.index_select(0, species)
        for block in self.blocks:
            h = block(h, species, neighbor, edge_sh, edge_embedding)
        energies = self.readout(h).squeeze(1)
        scale = self.per_species_scale.index_select(0, species)
        # the network may run in float32, but the per-species shifts (hundreds of eV) are added
        # in float64: in float32 every E0_i would be rounded to ~6e-5 eV and the sum over atoms
        # would move in steps of meV, which breaks finite differences and energy conservation
        shift = self.per_species_shift.to(torch.float64).index_select(0, species)
        return (scale * energies).to(torch.float64) + shift

    def _edges(
        self, positions: torch.Tensor, cell: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Edges within r_max in per-centre slots (:func:`neighbor_slots`): neighbour index
        ``(N * K,)``, harmonics ``(N, K, irreps_sh.dim)`` and radial embedding
        ``(N, K, num_bessel)``, zero in unused slots."""
        # Full directed list from the half list: each pair once per direction.
        edge_i, edge_j, shifts = self.neighbors(positions, cell)
        vectors = pair_vectors(positions, cell, edge_i, edge_j, shifts)
        center = torch.cat([edge_i, edge_j])
        neighbor = torch.cat([edge_j, edge_i])
        vectors = torch.cat([vectors, -vectors])
        n_atoms = positions.shape[0]
        order, slot, n_slots = neighbor_slots(center, n_atoms)
        vectors = vectors.index_select(0, order)
        lengths = torch.linalg.vector_norm(vectors, dim=1)
        edge_sh = self.spherical_harmonics(vectors)
        edge_embedding = self.bessel(lengths) * self.cutoff(lengths).unsqueeze(1)
        n_sh = edge_sh.shape[1]
        n_basis = edge_embedding.shape[1]
        edge_sh = edge_sh.new_zeros(n_atoms * n_slots, n_sh).index_copy(0, slot, edge_sh)
        edge_embedding = edge_embedding.new_zeros(n_atoms * n_slots, n_basis).index_copy(0, slot, edge_embedding)
        neighbor = neighbor.new_zeros(n_atoms * n_slots).index_copy(0, slot, neighbor.index_select(0, order))
        return neighbor, edge_sh.view(n_atoms, n_slots, n_sh), edge_embedding.view(n_atoms, n_slots, n_basis)

    def _species(self, numbers: torch.Tensor) -> torch.Tensor:
        """Row of each atom in the per-species tables, ``(N,)`` int64; errors name bad elements."""
        if numbers.is_floating_point() or numbers.dtype == torch.bool:
            raise ValueError(f"`numbers` must be integer atomic numbers, got dtype {numbers.dtype}")
        numbers = numbers.to(torch.long)
        if numbers.numel() == 0:
            return numbers
        max_z = self.species_of_z.shape[0] - 1
        outside = (numbers < 1) | (numbers > max_z)
        if bool(outside.any()):
            z = int(numbers[outside][0])
            raise ValueError(f"`numbers` contains atomic number {z}, outside 1..{max_z}")
        species = self.species_of_z.index_select(0, numbers)
        unsupported = species < 0
        if bool(unsupported.any()):
            z = int(numbers[unsupported][0])
            raise ValueError(
                f"element {self.symbols[z]} (Z={z}) is not supported by this E0Network "
                f"(supported: {self.supported})"
            )
        return species


def average_num_neighbors(structures: Iterable[Tuple[torch.Tensor, Optional[torch.Tensor]]], r_max: float) -> float:
    """Mean number of neighbours per atom within ``r_max`` (Å), all periodic images counted.

    The value to pass as ``avg_num_neighbors`` when training.

    Parameters
    ----------
    structures : iterable of (positions, cell)
        ``positions`` ``(N, 3)`` Å and ``cell`` ``(3, 3)`` Å or ``None``.
    r_max : float
        Cutoff radius (Å).

    >>> pos = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.5]])
    >>> average_num_neighbors([(pos, None)], r_max=2.0)
    1.3333333333333333
    """
    neighbors = NeighborList(r_max)
    num_pairs = 0
    num_atoms = 0
    for positions, cell in structures:
        edge_i, _, _ = neighbors(positions, cell)
        num_pairs += int(edge_i.shape[0])
        num_atoms += int(positions.shape[0])
    if num_atoms == 0:
        raise ValueError("`structures` holds no atoms")
    return 2.0 * num_pairs / num_atoms
