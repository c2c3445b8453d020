"""ASE calculator over a PQEq model: energy, forces, stress, charges, dipole, Born effective
charges (Å, eV, e)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ..charge_constraint import (ChargeConstraint, molecules_of, policy_of, resolve_charge_groups,
                                 warn_total_spanning_molecules)
from ..model import PQEqModel, energy_forces_stress


class PQEqCalculator(Calculator):
    """ASE calculator for a :class:`~openmm_pqeq.model.PQEqModel`.

    >>> calc = PQEqCalculator("model.pt", field=(0, 0, 0.1))   # doctest: +SKIP
    >>> atoms.calc = calc; atoms.get_charges()                   # doctest: +SKIP
    >>> calc.get_property("born_charges", atoms)                 # doctest: +SKIP

    ``born_charges`` (also under ASE's name ``born_effective_charges``) is Z*_{i,αβ} =
    ∂F_{iα}/∂E_β, (N, 3, 3) in e, computed only when asked for
    (:func:`openmm_pqeq.electrostatics.response.born_charges`; physical-mode PQEq).

    Parameters
    ----------
    model : model file path, shipped model name, or a PQEqModel.
    field : uniform field (3,) in V/Å.
    charge : total charge in e (with one total charge).
    groups : ``"model"`` (default: the charge-constraint rule the model was trained with,
        :mod:`openmm_pqeq.charge_constraint`; molecules come from the structure's own
        ``atoms.arrays["molecule"]`` labels, else from its distance rule in each structure
        evaluated, so in ASE MD without the array a bond that breaks changes the groups (set the
        array to keep the molecules of the start, as OpenMM keeps its Topology's); older model
        files without a rule: one total charge, with a warning), ``"molecules"`` (the same rule),
        ``"total"`` or None (one total charge), or one group index per atom.
    group_charges : charge of each group in e (default neutral).
    device : torch device of the model (None: the GPU when torch sees one, else the CPU);
        positions go there and results come back once per calculation.
    precision, pqeq_precision : dtypes of the terms (see :mod:`openmm_pqeq.runtime`); None
        keeps the model's own (E0 as saved, PQEq and D3 in float64).

    Stress (periodic cells): ``get_stress()`` is what ASE expects, the symmetric part of the
    stress tensor σ = (1/V) ∂E/∂ε as a Voigt 6-vector (xx, yy, zz, yz, xz, xy), eV/Å³.  In a
    field σ is not symmetric: the field exerts a torque on the polarized cell, and the
    antisymmetric part is A = (σ − σᵀ)/2 = (E ⊗ μ − μ ⊗ E)/(2V) (μ the dipole, E the field).
    It is in ``calc.results["stress_antisymmetric"]`` (3, 3) eV/Å³ after a stress calculation
    (zero without a field); the full tensor is the symmetric part plus A.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "charges", "dipole", "born_charges",
                              "born_effective_charges"]

    def __init__(self, model: Union[str, Path, PQEqModel], field: Sequence[float] = (0.0, 0.0, 0.0),
                 charge: float = 0.0, groups: Union[str, Sequence[int], None] = "model",
                 group_charges: Optional[Sequence[float]] = None, device: Optional[str] = None,
                 precision: Optional[str] = None, pqeq_precision: str = "double", **kwargs):
        super().__init__(**kwargs)
        from ..runtime import prepare_model

        if not isinstance(model, PQEqModel):
            from ..io import load_model

            model = load_model(model)
        self.model, self.device = prepare_model(model, device, precision, pqeq_precision)
        self.field = np.asarray(field, dtype=float)
        if self.field.shape != (3,):
            raise ValueError(f"`field` must have 3 components (V/Å), got {list(field)}")
        self.charge = float(charge)
        self.rule: Optional[str] = None  # "molecules": groups from each structure; None: as given
        self.groups = None
        if isinstance(groups, str):
            self.rule = resolve_charge_groups(groups, model, None, "PQEqCalculator")
            if self.rule not in (None, "molecules"):
                raise ValueError(f"`groups` is {groups!r}; options are 'model', 'molecules', 'total', None or one "
                                 "group index per atom")
        elif groups is not None:
            self.groups = torch.tensor(list(groups), dtype=torch.long, device=self.device)
        self.group_charges = (None if group_charges is None
                              else torch.tensor(list(group_charges), dtype=torch.float64, device=self.device))
        if self.charge != 0.0 and (self.rule is not None or self.groups is not None):
            raise ValueError(f"charge={charge} does not apply with per-group charge constraints (groups={groups!r}): "
                             "each group keeps its own charge (neutral unless group_charges= says otherwise); give "
                             "group_charges=[...], or groups='total' for one total charge")
        policy = policy_of(model)
        self._checked_total = policy is None or not policy.molecular
        self.bond_factor = policy.bond_factor if policy is not None and policy.molecular else ChargeConstraint().bond_factor

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pbc = np.asarray(self.atoms.pbc)
        if pbc.any() and not pbc.all():
            raise ValueError(f"partially periodic cells (pbc={pbc.tolist()}) are not supported")
        device = self.device
        cell = torch.tensor(np.asarray(self.atoms.cell), dtype=torch.float64, device=device) if pbc.all() else None
        groups = self.groups
        if self.rule == "molecules":
            groups = torch.as_tensor(molecules_of(self.atoms, self.bond_factor), device=device)
        elif groups is None and not self._checked_total:
            self._checked_total = True  # the warning once, at the first structure
            molecules = molecules_of(self.atoms, self.bond_factor)
            warn_total_spanning_molecules(self.model, int(molecules.max()) + 1, "PQEqCalculator")
        out = energy_forces_stress(
            self.model, torch.tensor(self.atoms.positions, dtype=torch.float64, device=device),
            torch.tensor(self.atoms.numbers, dtype=torch.long, device=device), cell,
            torch.tensor(self.field, dtype=torch.float64, device=device), self.charge, groups, self.group_charges)
        out = {key: value.cpu() for key, value in out.items()}
        self.results["energy"] = self.results["free_energy"] = float(out["energy"])
        self.results["forces"] = out["forces"].numpy()
        self.results["charges"] = out["charges"].numpy()
        self.results["dipole"] = out["dipole"].numpy()
        if cell is not None:
            full = out["stress"].numpy()
            symmetric = 0.5 * (full + full.T)
            self.results["stress"] = symmetric[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]  # xx yy zz yz xz xy
            self.results["stress_antisymmetric"] = 0.5 * (full - full.T)
        if "born_charges" in properties or "born_effective_charges" in properties:
            from ..electrostatics.response import born_charges

            born = born_charges(self.model, torch.tensor(self.atoms.positions, dtype=torch.float64, device=device),
                                torch.tensor(self.atoms.numbers, dtype=torch.long, device=device), cell,
                                torch.tensor(self.field, dtype=torch.float64, device=device), self.charge, groups,
                                self.group_charges)["born_charges"].cpu().numpy()
            self.results["born_charges"] = self.results["born_effective_charges"] = born
