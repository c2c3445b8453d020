"""What an OpenMM force needs to know about the atoms it models (shared by both backends).

Converts an OpenMM ``Topology`` (+ options) into the model's inputs: which atoms, their
atomic numbers, and the charge constraints (one total charge, or one per molecule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np


#: Names of the OpenMM global parameters holding the field components, in V/nm.
FIELD_PARAMETERS = ("pqeq_field_x", "pqeq_field_y", "pqeq_field_z")


@dataclass
class AtomSetup:
    """Atoms handled by the model and their charge constraints.

    ``atoms``: indices into the System; ``numbers``: atomic numbers; ``groups``: group index
    of each atom (None: one total-charge constraint); ``group_charges``: charge of each
    group in e; ``total_charge``: e (used when ``groups`` is None); ``periodic``.
    """

    atoms: List[int]
    numbers: List[int]
    groups: Optional[List[int]]
    group_charges: Optional[List[float]]
    total_charge: float
    periodic: bool


def molecules_of(topology, atoms: Sequence[int]) -> List[int]:
    """Group index of each atom in ``atoms``: connected components of the Topology's bonds
    restricted to ``atoms`` (a Topology without bonds falls back to residues)."""
    position = {a: k for k, a in enumerate(atoms)}
    parent = list(range(len(atoms)))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    bonds = list(topology.bonds())
    if bonds:
        for a, b in bonds:
            if a.index in position and b.index in position:
                ra, rb = find(position[a.index]), find(position[b.index])
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
        roots = [find(k) for k in range(len(atoms))]
    else:
        residue_of = {atom.index: atom.residue.index for atom in topology.atoms()}
        roots = [residue_of[a] for a in atoms]
    labels = {r: g for g, r in enumerate(dict.fromkeys(roots))}
    return [labels[r] for r in roots]


def atom_setup(topology, atoms: Optional[Sequence[int]] = None, charge: float = 0.0,
               charge_groups: Optional[str] = None, group_charges: Optional[Sequence[float]] = None) -> AtomSetup:
    """Build an :class:`AtomSetup` from an OpenMM Topology.

    ``charge_groups``: None or ``"total"`` (one total ``charge``), ``"molecules"`` (each bonded
    molecule keeps its charge, neutral unless ``group_charges`` says otherwise) or ``"residues"``.
    A non-zero ``charge`` together with groups is an error (it would be ignored).
    (The entry points resolve ``"model"``, the model's own rule, before calling this.)
    """
    all_atoms = list(topology.atoms())
    chosen = list(range(len(all_atoms))) if atoms is None else [int(a) for a in atoms]
    if not chosen:
        raise ValueError("`atoms` is empty: the model needs at least one atom")
    if len(set(chosen)) != len(chosen) or min(chosen) < 0 or max(chosen) >= len(all_atoms):
        raise ValueError(f"`atoms` must be distinct indices in 0..{len(all_atoms) - 1}")
    numbers = []
    for a in chosen:
        element = all_atoms[a].element
        if element is None:
            raise ValueError(f"atom {a} ({all_atoms[a].name}) has no element in the Topology: "
                             "virtual sites and extra particles cannot be modelled")
        numbers.append(int(element.atomic_number))
    groups: Optional[List[int]] = None
    if charge_groups == "total":
        charge_groups = None
    if charge_groups == "molecules":
        groups = molecules_of(topology, chosen)
    elif charge_groups == "residues":
        residue_of = [all_atoms[a].residue.index for a in chosen]
        labels = {r: g for g, r in enumerate(dict.fromkeys(residue_of))}
        groups = [labels[r] for r in residue_of]
    elif charge_groups is not None:
        raise ValueError(f"`charge_groups` is {charge_groups!r}; options are 'molecules', 'residues', 'total' "
                         "(None: one total charge)")
    charges_of_groups: Optional[List[float]] = None
    if groups is not None and float(charge) != 0.0:
        raise ValueError(f"charge={charge} does not apply with charge_groups={charge_groups!r}: each group keeps its "
                         "own charge (neutral unless group_charges= says otherwise); give group_charges=[...] "
                         "(one per group), or charge_groups='total' for one total charge")
    if groups is not None:
        n_groups = max(groups) + 1
        charges_of_groups = [0.0] * n_groups if group_charges is None else [float(q) for q in group_charges]
        if len(charges_of_groups) != n_groups:
            raise ValueError(f"`group_charges` has {len(charges_of_groups)} entries but the Topology has "
                             f"{n_groups} {charge_groups}")
    elif group_charges is not None:
        raise ValueError("`group_charges` needs `charge_groups='molecules'` or `'residues'`")
    return AtomSetup(chosen, numbers, groups, charges_of_groups, float(charge),
                     topology.getPeriodicBoxVectors() is not None)


def field_in_v_per_nm(field) -> np.ndarray:
    """A field given as 3 numbers (V/nm) or an ``openmm.unit`` Quantity, as V/nm floats."""
    try:
        from openmm import unit

        if unit.is_quantity(field):
            field = field.value_in_unit(unit.volt / unit.nanometer)
    except ImportError:  # pragma: no cover - openmm is a dependency
        pass
    values = np.asarray(field, dtype=float).reshape(-1)
    if values.shape != (3,):
        raise ValueError(f"`field` must have 3 components (V/nm), got {np.asarray(field).tolist()}")
    return values

