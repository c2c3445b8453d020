"""ASE calculator over a PQEq model: energy, forces, stress, charges, dipole (Å, eV, e)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ..model import PQEqModel, energy_forces_stress


class PQEqCalculator(Calculator):
    """ASE calculator for a :class:`~openmm_pqeq.model.PQEqModel`.

    >>> calc = PQEqCalculator("model.pt", field=(0, 0, 0.1))   # doctest: +SKIP
    >>> atoms.calc = calc; atoms.get_charges()                   # doctest: +SKIP

    Parameters
    ----------
    model : model file path, shipped model name, or a PQEqModel.
    field : uniform field (3,) in V/Å.
    charge : total charge in e (ignored when ``groups`` is given).
    groups, group_charges : per-group charge constraints (group index per atom; charges in e).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "charges", "dipole"]

    def __init__(self, model: Union[str, Path, PQEqModel], field: Sequence[float] = (0.0, 0.0, 0.0),
                 charge: float = 0.0, groups: Optional[Sequence[int]] = None,
                 group_charges: Optional[Sequence[float]] = None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(model, PQEqModel):
            from ..io import load_model

            model = load_model(model)
        self.model = model
        self.field = np.asarray(field, dtype=float)
        if self.field.shape != (3,):
            raise ValueError(f"`field` must have 3 components (V/Å), got {list(field)}")
        self.charge = float(charge)
        self.groups = None if groups is None else torch.tensor(list(groups), dtype=torch.long)
        self.group_charges = None if group_charges is None else torch.tensor(list(group_charges), dtype=torch.float64)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pbc = np.asarray(self.atoms.pbc)
        if pbc.any() and not pbc.all():
            raise ValueError(f"partially periodic cells (pbc={pbc.tolist()}) are not supported")
        cell = torch.tensor(np.asarray(self.atoms.cell), dtype=torch.float64) if pbc.all() else None
        out = energy_forces_stress(
            self.model, torch.tensor(self.atoms.positions, dtype=torch.float64),
            torch.tensor(self.atoms.numbers, dtype=torch.long), cell,
            torch.tensor(self.field, dtype=torch.float64), self.charge, self.groups, self.group_charges)
        self.results["energy"] = self.results["free_energy"] = float(out["energy"])
        self.results["forces"] = out["forces"].numpy()
        self.results["charges"] = out["charges"].numpy()
        self.results["dipole"] = out["dipole"].numpy()
        if cell is not None:
            s = out["stress"].numpy()
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
