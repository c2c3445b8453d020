"""Save and load models: one versioned file with weights, configuration and provenance.

A model file is a ``torch.save`` dict read back with ``weights_only=True`` (no code runs
at load time)::

    {"format": "openmm_pqeq.model", "format_version": 1,
     "config": {...},          # build_model() input: elements, e0 / pqeq / d3 settings
     "state_dict": {...},      # weights and parameter tables (D3 reference data included)
     "metadata": {...}}        # units, versions, creation date, provenance, description,
                               # "learnable": names of the learned entries of state_dict,
                               # "charge_constraint": the constraint rule it was trained with,
                               # "training_range": elements, total charges, fields of its data
                               # (any other key of a loaded file is carried to the next save)

Loading is strict only where it must be, so a file keeps loading when the code changes how it
derives non-learnable buffers (see :func:`state_kind`):

- *learned* entries (every ``nn.Parameter``, and all persistent E0 state: its weights and the
  fitted per-species shift and scale) must all be in the file, with the right shapes; a file
  missing one, or carrying a learned entry this code does not have, is an error;
- *tables* (buffers named ``table_*``, e.g. PQEq parameter tables, and the D3 reference data)
  are restored when the file has them (the model keeps the physics it was trained with) and
  rebuilt from the configuration when it does not;
- every other buffer is *derived*: rebuilt from the configuration; the file's copy, if any, and
  unknown derived entries are ignored.

Shipped models are addressed by name (``KNOWN_MODELS``); any other argument is a path.
"""

from __future__ import annotations

import datetime
import json
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ._atomic import atomic_write
from .charge_constraint import METADATA_KEY as CHARGE_CONSTRAINT_KEY
from .charge_constraint import ChargeConstraint, set_policy
from .model import PQEqModel, build_model, config_of
from .training_range import METADATA_KEY as TRAINING_RANGE_KEY
from .training_range import set_training_range

FORMAT = "openmm_pqeq.model"
FORMAT_VERSION = 1
UNITS = {"length": "Angstrom", "energy": "eV", "charge": "e", "field": "V/Angstrom"}
#: Metadata keys save_model writes itself; any other key of a loaded file is carried to the next save.
_WRITTEN_METADATA = ("units", "openmm_pqeq_version", "torch_version", "created", "description", "provenance",
                     "custom_ops", "learnable", CHARGE_CONSTRAINT_KEY, TRAINING_RANGE_KEY)


def known_models() -> Dict[str, Dict[str, Any]]:
    """Shipped models: name -> {"file", "description", ...} (from package data)."""
    index = resources.files("openmm_pqeq").joinpath("data/models.json")
    if not index.is_file():
        return {}
    return json.loads(index.read_text())


def resolve_model_path(model: Union[str, Path]) -> Path:
    """Path of a model given by shipped name or by path; a clear error if neither exists."""
    models = known_models()
    if str(model) in models:
        return Path(str(resources.files("openmm_pqeq").joinpath("data/" + models[str(model)]["file"])))
    path = Path(model)
    if not path.exists():
        names = ", ".join(sorted(models)) or "none shipped yet"
        raise FileNotFoundError(f"model {str(model)!r} is neither a file nor a shipped model name ({names})")
    return path


def state_kind(model: torch.nn.Module, key: str) -> str:
    """How :func:`load_model` treats state-dict entry ``key`` of ``model``: ``"learned"``
    (strict), ``"table"`` (restored when present) or ``"derived"`` (rebuilt from the config)."""
    from .dispersion import D3Dispersion

    owner_name, _, leaf = key.rpartition(".")
    if key in dict(model.named_parameters()) or owner_name.split(".")[0] == "e0":
        return "learned"
    owner = model.get_submodule(owner_name) if owner_name else model
    if leaf.startswith("table_") or isinstance(owner, D3Dispersion):
        return "table"
    return "derived"


def model_weights(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """The state dict of ``model`` on the CPU (run-time state such as the warm start is not in it:
    its buffers are non-persistent)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def save_model(model: PQEqModel, path: Union[str, Path], provenance: Optional[Dict[str, Any]] = None,
               description: str = "") -> Path:
    """Write ``model`` (made by :func:`build_model`) with its configuration and weights."""
    import openmm_pqeq

    state = model_weights(model)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config_of(model),
        "state_dict": state,
        "metadata": {
            "units": UNITS,
            "openmm_pqeq_version": openmm_pqeq.__version__,
            "torch_version": str(torch.__version__),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "description": description,
            "provenance": provenance or {},
            # whether the saved model ran PQEq's compiled operators; not a requirement: load_model
            # rebuilds the model, which uses them when they are loaded and the same-result PyTorch
            # fallback otherwise (a TorchScript copy records its choice in PQEq.uses_custom_ops)
            "custom_ops": bool(model.pqeq is not None and model.pqeq.uses_custom_ops),
            "learnable": sorted(k for k in state if state_kind(model, k) == "learned"),
        },
    }
    if model.charge_constraint_json:
        # the charge-constraint rule the model was trained with (openmm_pqeq.charge_constraint)
        payload["metadata"][CHARGE_CONSTRAINT_KEY] = json.loads(model.charge_constraint_json)
    if model.training_range_json:
        # the range of its training data (openmm_pqeq.training_range)
        payload["metadata"][TRAINING_RANGE_KEY] = json.loads(model.training_range_json)
    for key, value in (json.loads(model.carried_metadata_json) if model.carried_metadata_json else {}).items():
        payload["metadata"].setdefault(key, value)  # keys of the loaded file this version does not write
    # atomic: an interrupted save (Ctrl-C during training, a kill) keeps the previous file
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def read_model_file(model: Union[str, Path]) -> Dict[str, Any]:
    """The validated content of a model file (by name or path)."""
    path = resolve_model_path(model)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupted, truncated, or not a torch file
        raise ValueError(f"cannot read model file {path}: it is corrupted or not an openmm_pqeq model "
                         f"({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not an openmm_pqeq model file (no '{FORMAT}' format marker)")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ValueError(f"{path} has model format version {version!r}; this openmm_pqeq reads versions "
                         f"1..{FORMAT_VERSION}: upgrade openmm_pqeq or re-export the model")
    for key in ("config", "state_dict", "metadata"):
        if key not in payload:
            raise ValueError(f"{path} is corrupted: the '{key}' section is missing")
    return payload


def load_model(model: Union[str, Path]) -> PQEqModel:
    """Rebuild a :class:`PQEqModel` from a file or shipped name, with its weights.

    >>> model = load_model("path/to/model.pt")  # doctest: +SKIP
    """
    payload = read_model_file(model)
    built = build_model(payload["config"])
    stored = payload["state_dict"]
    own = built.state_dict()
    kinds = {k: state_kind(built, k) for k in own}
    learned = {k for k, kind in kinds.items() if kind == "learned"}
    # entries the file marks as learned (older files: anything under e0) that this code lacks
    marked = payload["metadata"].get("learnable")
    file_learned = set(marked) if marked is not None else {k for k in stored if k.split(".")[0] == "e0"}
    missing = sorted(learned - set(stored))
    unknown = sorted(k for k in file_learned & set(stored) if k not in learned)
    if missing or unknown:
        raise ValueError(f"model file {model} does not match its configuration: learnable weights missing from the "
                         f"file: {missing[:5]}; learnable weights in the file that this openmm_pqeq does not have: "
                         f"{unknown[:5]}. It is corrupted or was written by an incompatible version")
    restore = {k: stored[k] for k in own if k in stored and kinds[k] != "derived"}
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in restore.items() if v.shape != own[k].shape]
    if wrong:
        raise ValueError(f"model file {model} does not match its configuration: shapes differ for {wrong[:5]}")
    built.load_state_dict(restore, strict=False)
    metadata = payload["metadata"]
    policy = metadata.get(CHARGE_CONSTRAINT_KEY)
    if policy is not None:
        set_policy(built, ChargeConstraint.from_dict(policy))
    set_training_range(built, metadata.get(TRAINING_RANGE_KEY))
    carried = {k: v for k, v in metadata.items() if k not in _WRITTEN_METADATA}
    built.carried_metadata_json = json.dumps(carried) if carried else ""
    built.eval()
    return built
