"""Save and load models: one versioned file with weights, configuration and provenance.

A model file is a ``torch.save`` dict read back with ``weights_only=True`` (no code runs
at load time)::

    {"format": "openmm_pqeq.model", "format_version": 1,
     "config": {...},          # build_model() input: elements, e0 / pqeq / d3 settings
     "state_dict": {...},      # weights and parameter tables (D3 reference data included)
     "metadata": {...}}        # units, versions, creation date, provenance, description

Shipped models are addressed by name (``KNOWN_MODELS``); any other argument is a path.
"""

from __future__ import annotations

import datetime
import json
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from .model import PQEqModel, build_model, config_of

FORMAT = "openmm_pqeq.model"
FORMAT_VERSION = 1
#: State-dict entries that are run-time state (warm starts), not part of a model.
_TRANSIENT = ("last_charges", "last_shells")
UNITS = {"length": "Angstrom", "energy": "eV", "charge": "e", "field": "V/Angstrom"}


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


def model_weights(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """The state dict of ``model`` on the CPU without run-time state (warm starts)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if k.split(".")[-1] not in _TRANSIENT}


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
            "custom_ops": False,
        },
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


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
    missing, unexpected = built.load_state_dict(payload["state_dict"], strict=False)
    missing = [k for k in missing if k.split(".")[-1] not in _TRANSIENT]
    if missing or unexpected:
        raise ValueError(f"model file {model} does not match its configuration (missing: {missing[:5]}, "
                         f"unexpected: {unexpected[:5]}): it is corrupted or was written by another version")
    built.eval()
    return built
