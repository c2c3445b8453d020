"""The range of a model's training data, and the guard that flags inputs outside it.

A model file records the range of the data it was trained on, metadata key
``"training_range"`` (:data:`METADATA_KEY`)::

    {"elements": ["H", "O"],            # elements present in the training structures
     "total_charges": [0.0, 0.0],        # smallest and largest total charge of a structure, e
     "max_field_V_per_A": 0.49,          # largest uniform-field magnitude, V/Å
     "frames": 452, "periodic_frames": 0}  # informational

Training writes it from its training split (merged with the range of the model it starts
from, when finetuning).  Inputs outside it still run, with one warning per kind and model (an
element the model supports but never saw in training, a total charge outside the range, a
field stronger than any in training): a model trained on neutral water given ``--charge 10``
or a field of 50 V/Å is extrapolating, and says so.

Independently of the training data, a shell displacement larger than
:data:`MAX_SHELL_DISPLACEMENT_A` (0.5 Å) is an error.  Half an O–H bond: beyond it a shell
sits on a neighbouring atom and the harmonic core–shell picture has lost its meaning (measured
with water-demo-v1 in liquid water: largest O shell displacement 0.027 Å at 0.25 V/Å, 0.04 Å at
0.5 V/Å, 0.34 Å at 5 V/Å, 0.67 Å at 10 V/Å; so the bound sits about 15× beyond the
training fields and 20× beyond the displacements seen there; the retrained water-demo, with the
softer O shell of pqeq-water, has its O shells about 0.16 Å off their cores already in a
gas-phase dimer at 0.25 V/Å, so there the bound is only 3× away).  It stops MD in a runaway field
instead of letting it heat up silently.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any, Dict, List, Optional

import torch

from .elements import MAX_Z, SYMBOLS, atomic_number

#: Metadata key of the training range in a model file.
METADATA_KEY = "training_range"
#: Largest shell displacement accepted (Å); see the module docstring.
MAX_SHELL_DISPLACEMENT_A = 0.5


class InputGuard(torch.nn.Module):
    """Checks a model's inputs against its training range (warn once per kind) and its shell
    displacements against :data:`MAX_SHELL_DISPLACEMENT_A` (error).  TorchScript-compatible;
    without a recorded range only the shell bound applies."""

    def __init__(self, max_shell_displacement: float = MAX_SHELL_DISPLACEMENT_A):
        super().__init__()
        self.has_range: bool = False
        self.max_field: float = math.inf
        self.min_charge: float = -math.inf
        self.max_charge: float = math.inf
        # the range as text for the messages (TorchScript prints floats as "0.")
        self.trained_elements_text: str = ""
        self.charge_range_text: str = ""
        self.max_field_text: str = ""
        self.register_buffer("trained", torch.ones(MAX_Z + 1, dtype=torch.bool), persistent=False)
        self.symbols: List[str] = list(SYMBOLS)
        self.max_shell_displacement: float = float(max_shell_displacement)
        # one warning per kind: set once warned (mutable state, also inside an OpenMM TorchForce)
        self.warned_field: bool = False
        self.warned_charge: bool = False
        self.warned_element: bool = False

    def set_range(self, training_range: Optional[Dict[str, Any]]) -> None:
        """Use ``training_range`` (the metadata dict, or None for no range)."""
        self.warned_field = self.warned_charge = self.warned_element = False
        trained = torch.ones(MAX_Z + 1, dtype=torch.bool)
        self.has_range = training_range is not None
        if training_range is None:
            self.max_field, self.min_charge, self.max_charge = math.inf, -math.inf, math.inf
            self.trained_elements_text = self.charge_range_text = self.max_field_text = ""
        else:
            low, high = training_range["total_charges"]
            self.min_charge, self.max_charge = float(low), float(high)
            self.max_field = float(training_range["max_field_V_per_A"])
            trained = torch.zeros(MAX_Z + 1, dtype=torch.bool)
            trained[[atomic_number(z) for z in training_range["elements"]]] = True
            self.trained_elements_text = ", ".join(training_range["elements"])
            self.charge_range_text = f"{self.min_charge:g} to {self.max_charge:g} e"
            self.max_field_text = f"{self.max_field:.3g} V/Å"
        self.trained = trained.to(self.trained.device)

    def check_inputs(self, numbers: torch.Tensor, field: torch.Tensor, total_charge: float) -> None:
        """Warn (once per kind) for elements, a total charge (e) or a field (3,) V/Å outside
        the training range."""
        if not self.has_range:
            return
        if not self.warned_element:
            unseen = ~self.trained.index_select(0, numbers.clamp(0, self.trained.shape[0] - 1))
            if bool(unseen.any()):
                self.warned_element = True
                z = int(numbers[unseen][0])
                warnings.warn("input outside the model's training range: element " + self.symbols[z]
                              + " was not in the training data (elements " + self.trained_elements_text
                              + "); results for it are extrapolated (warned once)")
        if not self.warned_charge:
            if total_charge < self.min_charge - 1e-6 or total_charge > self.max_charge + 1e-6:
                self.warned_charge = True
                warnings.warn("input outside the model's training range: total charge " + str(total_charge)
                              + " e; the training structures had " + self.charge_range_text + " (warned once)")
        if not self.warned_field:
            strength = float(torch.linalg.vector_norm(field))
            if strength > self.max_field * (1.0 + 1e-6):
                self.warned_field = True
                warnings.warn("input outside the model's training range: field of " + str(strength)
                              + " V/Å; the strongest field in the training data was " + self.max_field_text
                              + " (warned once)")

    def check_shells(self, shells: torch.Tensor) -> None:
        """Error when a shell displacement (N, 3) Å exceeds the bound."""
        if shells.shape[0] == 0:
            return
        lengths = torch.linalg.vector_norm(shells, dim=1)
        largest = float(lengths.max())
        if largest > self.max_shell_displacement:
            atom = int(torch.argmax(lengths))
            raise ValueError("the shell of atom " + str(atom) + " moved " + str(largest) + " Å from its core (bound "
                             + str(self.max_shell_displacement) + " Å): the field or the structure is far outside "
                             + "what the core-shell model describes")


def dataset_training_range(elements: List[str], total_charges: List[float], fields_V_per_A: List[List[float]],
                           periodic: List[bool]) -> Dict[str, Any]:
    """The training-range dict of a set of structures: element symbols, the total charge (e)
    and field (3,) V/Å of each structure, and whether it is periodic."""
    if not total_charges:
        raise ValueError("no structures: a training range needs at least one")
    strengths = [math.sqrt(sum(float(x) ** 2 for x in f)) for f in fields_V_per_A]
    return {"elements": sorted({SYMBOLS[atomic_number(z)] for z in elements}, key=atomic_number),
            "total_charges": [float(min(total_charges)), float(max(total_charges))],
            "max_field_V_per_A": float(max(strengths)), "frames": len(total_charges),
            "periodic_frames": int(sum(bool(p) for p in periodic))}


def training_range_of_atoms(frames) -> Dict[str, Any]:
    """The training range of ASE structures (``info["charge"]``, ``info["field"]`` in V/Å)."""
    return dataset_training_range(sorted({s for atoms in frames for s in atoms.get_chemical_symbols()}),
                                  [float(atoms.info.get("charge", 0.0)) for atoms in frames],
                                  [list(atoms.info.get("field", (0.0, 0.0, 0.0))) for atoms in frames],
                                  [bool(atoms.pbc.all()) for atoms in frames])


def training_range_of_dataset(dataset) -> Dict[str, Any]:
    """The training range of a :class:`~openmm_pqeq.train.data.StructureDataset`."""
    return dataset_training_range(list(dataset.elements), dataset.charge.tolist(), dataset.field.tolist(),
                                  dataset.periodic.tolist())


def merge_training_ranges(first: Optional[Dict[str, Any]], second: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The range covering both (None when neither is known)."""
    if first is None or second is None:
        return second if first is None else first
    return {"elements": sorted(set(first["elements"]) | set(second["elements"]), key=atomic_number),
            "total_charges": [min(first["total_charges"][0], second["total_charges"][0]),
                              max(first["total_charges"][1], second["total_charges"][1])],
            "max_field_V_per_A": max(first["max_field_V_per_A"], second["max_field_V_per_A"]),
            "frames": int(first.get("frames", 0)) + int(second.get("frames", 0)),
            "periodic_frames": int(first.get("periodic_frames", 0)) + int(second.get("periodic_frames", 0))}


def training_range_of(model) -> Optional[Dict[str, Any]]:
    """The training range recorded on ``model`` (None when unknown)."""
    text = getattr(model, "training_range_json", "")
    return json.loads(text) if text else None


def set_training_range(model, training_range: Optional[Dict[str, Any]]) -> None:
    """Record ``training_range`` on ``model`` (saved in its file) and let its guard use it."""
    if training_range is not None:
        missing = [k for k in ("elements", "total_charges", "max_field_V_per_A") if k not in training_range]
        if missing:
            raise ValueError(f"training_range lacks {missing}")
    model.training_range_json = "" if training_range is None else json.dumps(training_range)
    model.guard.set_range(training_range)

