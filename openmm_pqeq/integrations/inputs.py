"""OpenMM's view of the modelled atoms turned into the model's inputs, in one place.

Both force backends and :class:`~openmm_pqeq.integrations.reporters.PQEqReporter` call the model
through :class:`ModelInputs`: the TorchForce module inside OpenMM (TorchScript, on the tensors
openmm-torch passes), the ``openmm.PythonForce`` and the reporter through :func:`state_inputs`
on an OpenMM ``State``.  OpenMM speaks nm and V/nm, the model Å and V/Å (docs/method/units.md);
the factors come from :mod:`openmm_pqeq.units`.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from e3nn.util.jit import compile_mode

from ..units import NM_TO_ANGSTROM, V_PER_NM_TO_V_PER_A
from .setup import AtomSetup

#: ``(positions (N, 3) Å, numbers (N,), cell (3, 3) Å or None, field (3,) V/Å, total charge e,
#: groups (N,) or None, group charges (G,) e or None)``: the arguments of ``PQEqModel.forward``.
Inputs = Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], torch.Tensor, float,
               Optional[torch.Tensor], Optional[torch.Tensor]]


#: The attributes of a :class:`ModelInputs` that hold its :class:`AtomSetup` (:func:`setup_of`).
INPUTS_ATTRIBUTES = ("atoms", "numbers", "has_groups", "groups", "group_charges", "total_charge", "periodic")


@compile_mode("script")
class ModelInputs(torch.nn.Module):
    """The :class:`~openmm_pqeq.integrations.setup.AtomSetup` of a force as buffers, and the
    conversion of OpenMM positions, box and field into the model's arguments (TorchScript)."""

    def __init__(self, setup: AtomSetup):
        super().__init__()
        self.register_buffer("atoms", torch.tensor(setup.atoms, dtype=torch.long))
        self.register_buffer("numbers", torch.tensor(setup.numbers, dtype=torch.long))
        self.has_groups: bool = setup.groups is not None
        self.register_buffer("groups", torch.tensor(setup.groups or [0] * len(setup.atoms), dtype=torch.long))
        self.register_buffer("group_charges", torch.tensor(setup.group_charges or [0.0], dtype=torch.float64))
        self.total_charge: float = setup.total_charge
        self.periodic: bool = setup.periodic
        self.length_scale: float = NM_TO_ANGSTROM  # nm -> Å
        self.field_scale: float = V_PER_NM_TO_V_PER_A  # V/nm -> V/Å

    def forward(self, positions: torch.Tensor, box: Optional[torch.Tensor], field_v_per_nm: torch.Tensor) -> Inputs:
        """Model arguments (:data:`Inputs`) from the positions of every particle of the System
        (N_system, 3) nm, the box (3, 3) nm (None: open) and the field (3,) V/nm."""
        pos = positions.to(torch.float64).index_select(0, self.atoms) * self.length_scale
        cell: Optional[torch.Tensor] = None
        if box is not None:
            cell = box.to(torch.float64) * self.length_scale
        field = field_v_per_nm.to(torch.float64) * self.field_scale
        groups: Optional[torch.Tensor] = None
        group_charges: Optional[torch.Tensor] = None
        if self.has_groups:
            groups = self.groups
            group_charges = self.group_charges
        return pos, self.numbers, cell, field, self.total_charge, groups, group_charges


def setup_of(inputs: torch.nn.Module) -> AtomSetup:
    """The :class:`AtomSetup` a :class:`ModelInputs` (eager or scripted) was built from."""
    has_groups = bool(inputs.has_groups)
    return AtomSetup(atoms=inputs.atoms.tolist(), numbers=inputs.numbers.tolist(),
                     groups=inputs.groups.tolist() if has_groups else None,
                     group_charges=inputs.group_charges.tolist() if has_groups else None,
                     total_charge=float(inputs.total_charge), periodic=bool(inputs.periodic))


def state_inputs(state, inputs: ModelInputs, field_v_per_nm: Sequence[float]) -> Inputs:
    """Model arguments from an OpenMM ``State`` with positions (and its box when ``inputs`` is
    periodic) and the field (3,) V/nm, on the device of ``inputs``."""
    from openmm import unit

    device = inputs.atoms.device  # the model's (move ``inputs`` there)
    positions = torch.tensor(np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)),
                             dtype=torch.float64, device=device)
    box: Optional[torch.Tensor] = None
    if inputs.periodic:
        box = torch.tensor(np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)),
                           dtype=torch.float64, device=device)
    field = torch.tensor([float(f) for f in field_v_per_nm], dtype=torch.float64, device=device)
    return inputs(positions, box, field)
