"""Find and load the operator library built for the running torch (vesin's layout)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import torch

#: Namespace of the operators: ``torch.ops.openmm_pqeq.<name>``.
OPS_NAMESPACE = "openmm_pqeq"
#: Operators the library must register (checked after loading).
REQUIRED_OPS = ("core_kernel", "kernel_derivatives", "pair_matvec", "pair_hessian_matvec", "site_potentials",
                "pair_energy", "pair_energy_backward", "pair_energy_known", "pme_spread", "pme_gather")
#: Operators with a kernel of their own per device (pair_energy_known is device-independent).
DEVICE_OPS = tuple(name for name in REQUIRED_OPS if name != "pair_energy_known")

_PACKAGE = Path(__file__).resolve().parents[1]
_state = {"loaded": False, "tried": False, "reason": "not loaded yet", "path": None}


def _library_name() -> str:
    if sys.platform == "darwin":
        return "libopenmm_pqeq_ops.dylib"
    if sys.platform.startswith("win"):
        return "openmm_pqeq_ops.dll"
    return "libopenmm_pqeq_ops.so"


def _torch_tag() -> str:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return f"torch-{major}.{minor}"


def library_path() -> Optional[Path]:
    """Path of the operator library for this torch version, or None when not built."""
    path = _PACKAGE / "lib" / _torch_tag() / _library_name()
    return path if path.exists() else None


def _builds_present() -> List[str]:
    lib = _PACKAGE / "lib"
    return sorted(p.name for p in lib.iterdir() if p.is_dir()) if lib.is_dir() else []


def load_library() -> bool:
    """Load the library once (idempotent); returns :func:`has_custom_ops`."""
    if _state["tried"]:
        return bool(_state["loaded"])
    _state["tried"] = True
    if os.environ.get("OPENMM_PQEQ_DISABLE_OPS", "0") not in ("", "0"):
        _state["reason"] = "disabled by OPENMM_PQEQ_DISABLE_OPS"
        return False
    path = library_path()
    if path is None:
        present = _builds_present()
        _state["reason"] = (f"no operator library for {_torch_tag()} under {_PACKAGE / 'lib'}"
                            + (f" (builds present: {', '.join(present)})" if present else "")
                            + "; build it with `make install` or `python setup.py build_ext --inplace`")
        return False
    try:
        torch.ops.load_library(str(path))
    except (OSError, RuntimeError) as error:
        _state["reason"] = f"loading {path} failed: {error}; rebuild with `python setup.py build_ext --inplace`"
        return False
    missing = [name for name in REQUIRED_OPS if not _registered(name)]
    if missing:
        _state["reason"] = f"{path} lacks the operators {', '.join(missing)}; rebuild it"
        return False
    _state["loaded"] = True
    _state["path"] = str(path)
    _state["reason"] = ""
    return True


def _registered(name: str) -> bool:
    try:
        getattr(getattr(torch.ops, OPS_NAMESPACE), name)
    except (AttributeError, RuntimeError):
        return False
    return True


def has_custom_ops() -> bool:
    """True when ``torch.ops.openmm_pqeq.*`` are registered in this process."""
    return bool(_state["loaded"])


def has_cuda_kernels() -> bool:
    """True when the loaded library has CUDA kernels for every operator (it was built with nvcc:
    ``setup.py build_ext`` with a CUDA toolkit), so a model on a GPU runs them there."""
    if not _state["loaded"]:
        return False
    return all(torch._C._dispatch_has_kernel_for_dispatch_key(f"{OPS_NAMESPACE}::{name}", "CUDA")
               for name in DEVICE_OPS)


def unavailable_reason() -> str:
    """Why the operators are not available ('' when they are)."""
    return str(_state["reason"])
