"""What one charge/shell solve holds fixed: the geometry, the per-atom parameters, the pair list,
the field and the charge constraints (docs/method/solver.md).

A NamedTuple, so that the solvers pass it by name inside TorchScript too (the model runs scripted
and frozen in an OpenMM TorchForce).
"""

from typing import Dict, NamedTuple, Optional  # no ``from __future__ import annotations``: TorchScript reads the field types

import torch


class SolveProblem(NamedTuple):
    """The fixed inputs of one solve (no autograd through them).

    ``cache``: the Coulomb set-up at these positions
    (:meth:`~openmm_pqeq.electrostatics.coulomb.GaussianCoulomb.setup`); ``positions`` (N, 3) Å;
    ``params``: per-atom ``chi``, ``J``, ``Z``, ``Ks``, ``pol``, ``a`` (N,)
    (:meth:`~openmm_pqeq.electrostatics.pqeq.PQEq.atom_parameters`); ``cell`` (3, 3) Å or None;
    ``i``, ``j`` (P,): the pair list; ``field`` (3,) V/Å; ``field_positions`` (N, 3) Å: the
    coordinates the field couples to
    (:meth:`~openmm_pqeq.electrostatics.pqeq.PQEq.field_coordinates`); ``cutoff`` Å: the real-space
    cutoff; ``groups`` (N,) and ``counts`` (G,): each atom's charge group and the atoms per group.
    """

    cache: Dict[str, torch.Tensor]
    positions: torch.Tensor
    params: Dict[str, torch.Tensor]
    cell: Optional[torch.Tensor]
    i: torch.Tensor
    j: torch.Tensor
    field: torch.Tensor
    field_positions: torch.Tensor
    cutoff: float
    groups: torch.Tensor
    counts: torch.Tensor


class SplitBonds(NamedTuple):
    """The bonds of a split-charge solve (:mod:`openmm_pqeq.electrostatics.splitcharge`):
    ``i``, ``j`` (B,) their atoms, ``vectors`` (B, 3) Å the bonded image's pair vectors,
    ``root_s`` (B,) √(bond softness) e/√eV and ``root_kappa`` (B,) √κ⁰ √eV/e."""

    i: torch.Tensor
    j: torch.Tensor
    vectors: torch.Tensor
    root_s: torch.Tensor
    root_kappa: torch.Tensor
