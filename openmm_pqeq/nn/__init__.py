"""E0 network: NequIP-style E(3)-equivariant GNN on e3nn (Batzner et al., Nat. Commun. 13, 2453 (2022)).

Per-atom short-range energies in eV from positions in Å; see :class:`E0Network`.
"""

from .e0 import PRESETS, E0Network, average_num_neighbors
from .interaction import InteractionBlock, SpeciesLinear
from .radial import BesselBasis, PolynomialCutoff
from .tensor_product import EdgeTensorProduct, neighbor_slots

__all__ = [
    "PRESETS",
    "BesselBasis",
    "E0Network",
    "EdgeTensorProduct",
    "InteractionBlock",
    "PolynomialCutoff",
    "SpeciesLinear",
    "average_num_neighbors",
    "neighbor_slots",
]
