"""The charge-constraint policy of a model: which atoms share one charge constraint.

PQEq conserves charge inside each constraint group (docs/method/pqeq.md).  With one total charge for
a whole cluster or box, charge flows from molecule to molecule, and the polarizability grows
with the size of the system; with one neutral group per molecule it cannot.  E0 is trained on
E_ref − E_PQEq − E_D3 (Δ-learning), so it corrects the PQEq energy of *one* constraint rule:
a model must be run with the rule it was trained with.  Model files record that rule as
metadata key ``"charge_constraint"`` (:data:`METADATA_KEY`)::

    {"rule": "molecules", "molecules_from": "distance", "bond_factor": 1.3, "group_charges": "neutral"}
    {"rule": "total"}

- ``rule``: ``"molecules"`` (one group per molecule) or ``"total"`` (one total charge).
- ``molecules_from``: how molecules are found in structures that carry no bonds (training data,
  ASE, ``openmm-pqeq evaluate``): ``"distance"``, connected components of the bonds between
  atoms closer than ``bond_factor`` × the sum of their covalent radii (Cordero et al., Dalton
  Trans. 2008, 2832, as tabulated by ASE; water: O–H < 1.26 Å, H-bonds in the liquid are longer
  than 1.45 Å).  OpenMM uses the bonds of the Topology, fixed for the whole run, which give the
  same molecules for intact molecules.  A structure's own per-atom array ``molecule``
  (:data:`MOLECULE_ARRAY`, integer labels, e.g. an extxyz column) wins over the distance rule:
  frames cut out of MD where a proton has moved to a neighbour keep the molecules of the MD's
  Topology, so training sees the groups that the MD ran with (with the distance rule the groups,
  and with them E_PQEq, jump by up to 2 eV as an O–H bond passes 1.26 Å).
- ``group_charges``: ``"neutral"`` (every molecule has zero charge).

Every entry point (``create_system``, ``add_pqeq_force``, openmm-ml's ``createSystem``, the ASE
calculator, ``openmm-pqeq evaluate`` and ``md``, training) takes ``charge_groups="model"`` by
default, which means this policy.  Models without the key (older files) keep the entry point's
earlier behaviour, with a warning.

>>> policy = ChargeConstraint.from_dict({"rule": "molecules"})
>>> policy.to_dict()["bond_factor"]
1.3
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Sequence

import numpy as np

#: Model-file metadata key of the policy.
METADATA_KEY = "charge_constraint"
#: Per-atom array (ASE ``atoms.arrays``) of molecule labels that wins over the distance rule.
MOLECULE_ARRAY = "molecule"
RULES = ("molecules", "total")
MOLECULES_FROM = ("distance",)
GROUP_CHARGES = ("neutral",)
#: Values of ``charge_groups`` accepted by the entry points ("model": the model's policy;
#: None is a synonym of "total", kept for older code).
CHARGE_GROUP_CHOICES = ("model", "molecules", "residues", "total")


@dataclass(frozen=True)
class ChargeConstraint:
    """A charge-constraint policy (module docstring); units: ``bond_factor`` is dimensionless."""

    rule: str = "total"
    molecules_from: str = "distance"
    bond_factor: float = 1.3
    group_charges: str = "neutral"

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"charge_constraint rule is {self.rule!r}; options are {', '.join(map(repr, RULES))}")
        if self.molecules_from not in MOLECULES_FROM:
            raise ValueError(f"charge_constraint molecules_from is {self.molecules_from!r}; options are "
                             f"{', '.join(map(repr, MOLECULES_FROM))}")
        if self.group_charges not in GROUP_CHARGES:
            raise ValueError(f"charge_constraint group_charges is {self.group_charges!r}; options are "
                             f"{', '.join(map(repr, GROUP_CHARGES))}")
        if not 0.5 <= float(self.bond_factor) <= 3.0:
            raise ValueError(f"charge_constraint bond_factor is {self.bond_factor}; it must be in [0.5, 3]")

    @property
    def molecular(self) -> bool:
        return self.rule == "molecules"

    @classmethod
    def from_dict(cls, values: Optional[Dict[str, Any]]) -> "ChargeConstraint":
        """Policy from its dict (a model file's metadata, a YAML section); unknown keys are an error."""
        values = dict(values or {})
        allowed = {"rule", "molecules_from", "bond_factor", "group_charges"}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ValueError(f"unknown charge_constraint key(s) {unknown}; allowed: {sorted(allowed)}")
        if "rule" not in values:
            raise ValueError("charge_constraint needs a 'rule': 'molecules' or 'total'")
        if "bond_factor" in values:
            values["bond_factor"] = float(values["bond_factor"])
        return cls(**values)

    def to_dict(self) -> Dict[str, Any]:
        """The metadata dict (``{"rule": "total"}`` for a total charge; every key for molecules)."""
        return asdict(self) if self.molecular else {"rule": "total"}

    def molecule_groups(self, atoms) -> np.ndarray:
        """Group index (N,) int64 of every atom of an ASE ``Atoms``: its ``molecule`` array when it
        has one, else molecules by the distance rule (:func:`molecules_of`)."""
        return molecules_of(atoms, self.bond_factor)

    def groups(self, atoms) -> Optional[np.ndarray]:
        """Groups (N,) of ``atoms`` under this policy, or None for one total charge."""
        return self.molecule_groups(atoms) if self.molecular else None


def molecules_of(atoms, bond_factor: float = 1.3) -> np.ndarray:
    """Molecule index (N,) int64 of every atom of an ASE ``Atoms``, numbered 0, 1, ... in order of
    first atom: the structure's own ``atoms.arrays["molecule"]`` labels when present (any integers),
    else :func:`molecules_by_distance`."""
    labels = atoms.arrays.get(MOLECULE_ARRAY)
    if labels is None:
        return molecules_by_distance(atoms, bond_factor)
    labels = np.asarray(labels)
    if labels.shape != (len(atoms),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"atoms.arrays[{MOLECULE_ARRAY!r}] must be one integer label per atom ({len(atoms)},), "
                         f"got dtype {labels.dtype} and shape {labels.shape}")
    order = {label: k for k, label in enumerate(dict.fromkeys(labels.tolist()))}
    return np.asarray([order[label] for label in labels.tolist()], dtype=np.int64)


def molecules_by_distance(atoms, bond_factor: float = 1.3) -> np.ndarray:
    """Connected components (N,) int64, numbered in order of first atom, of the graph of atom
    pairs closer than ``bond_factor`` × (r_cov,i + r_cov,j) (Å; ASE's covalent radii)."""
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    n = len(atoms)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cutoffs = bond_factor * covalent_radii[atoms.get_atomic_numbers()]
    first, second = neighbor_list("ij", atoms, cutoffs, self_interaction=False)
    return connected_components(n, first, second)


def connected_components(n: int, first: Sequence[int], second: Sequence[int]) -> np.ndarray:
    """Component label (n,) int64 of each node of the undirected graph with edges (first, second),
    numbered 0, 1, ... in order of each component's lowest node."""
    parent = list(range(n))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in zip(np.asarray(first).tolist(), np.asarray(second).tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = [find(k) for k in range(n)]
    labels = {r: g for g, r in enumerate(dict.fromkeys(roots))}
    return np.asarray([labels[r] for r in roots], dtype=np.int64)


def policy_of(model) -> Optional[ChargeConstraint]:
    """The policy a :class:`~openmm_pqeq.model.PQEqModel` was trained with (None when its file
    does not record one)."""
    text = getattr(model, "charge_constraint_json", "")
    return ChargeConstraint.from_dict(json.loads(text)) if text else None


def set_policy(model, policy: Optional[ChargeConstraint]) -> None:
    """Record ``policy`` on ``model`` (written to the model file by ``save_model``)."""
    model.charge_constraint_json = json.dumps(policy.to_dict(), sort_keys=True) if policy is not None else ""


def resolve_charge_groups(requested: Optional[str], model, legacy: Optional[str], where: str) -> Optional[str]:
    """The charge-group choice an entry point uses: ``"molecules"``, ``"residues"`` or None (one
    total charge).

    ``requested``: ``"model"`` (the model's policy), ``"molecules"``, ``"residues"``, ``"total"``
    or None (same as ``"total"``).  ``legacy``: what the entry point did before models recorded
    their policy (used, with a warning, for model files without one).  ``where`` names the entry
    point in messages."""
    if requested is not None and requested not in CHARGE_GROUP_CHOICES:
        raise ValueError(f"`charge_groups` is {requested!r}; options are "
                         f"{', '.join(map(repr, CHARGE_GROUP_CHOICES))} (None: one total charge)")
    if requested != "model":
        return None if requested in (None, "total") else requested
    policy = policy_of(model)
    if policy is None:
        warnings.warn(f"{where}: the model file does not record the charge constraint it was trained with "
                      f"(metadata '{METADATA_KEY}', older file); using "
                      f"{'one total charge' if legacy is None else repr(legacy) + ' groups'} as before. Pass "
                      "charge_groups='molecules' or 'total' to choose, or retrain the model", stacklevel=3)
        return legacy
    return "molecules" if policy.molecular else None


def warn_total_spanning_molecules(model, n_molecules: int, where: str) -> None:
    """The warning for one total charge over more than one molecule of a molecular model."""
    policy = policy_of(model)
    if policy is not None and policy.molecular and n_molecules > 1:
        warnings.warn(f"{where}: one total charge spans {n_molecules} molecules, but this model was trained with "
                      "one neutral charge group per molecule (charge_constraint rule 'molecules'): charge can flow "
                      "between molecules, the polarizability grows with the system and E0 corrects a different "
                      "PQEq energy. Use charge_groups='model' (or 'molecules') unless this is intended",
                      stacklevel=3)
