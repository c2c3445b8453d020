"""Where and in which precision a model runs: the ``device=`` and ``precision=`` options.

Conventions of openmm-ml (``MLPotential.createSystem(..., precision=...)``, ``device=``):

- ``device``: a torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``) or ``None`` for the GPU when
  torch sees one, else the CPU (:func:`resolve_device`).  The TorchForce backend has no such
  option: openmm-torch moves the module to the device of the OpenMM platform (CUDA platform: the
  GPU); the ``python`` backend and the ASE calculator move positions in and forces out once per call.
- ``precision`` (:data:`PRECISIONS`, named after OpenMM's CUDA precision modes), per term:

  ==========  =========  =========  =========
  precision   E0         D3         PQEq
  ==========  =========  =========  =========
  None        as saved   float64    float64
  "single"    float32    float32    float64
  "mixed"     float32    float64    float64
  "double"    float64    float64    float64
  ==========  =========  =========  =========

  PQEq stays in float64 unless ``pqeq_precision="single"``: its charge solve converges to
  1e-6 eV/e, which float32 (7 digits on energies of order 10³ eV) cannot resolve reliably.
  Energies are summed in float64 in every case.  What each choice costs is in README
  (*Running on a GPU*).
"""

from __future__ import annotations

import copy
from typing import Optional, Tuple, Union

import torch

#: Values of ``precision=`` (and None: the model as saved).
PRECISIONS = ("single", "mixed", "double")
#: Values of ``pqeq_precision=``.
PQEQ_PRECISIONS = ("single", "double")

DeviceLike = Union[None, str, torch.device]


def resolve_device(device: DeviceLike = None) -> torch.device:
    """The torch device for ``device``: None → ``cuda`` when ``torch.cuda.is_available()``,
    else ``cpu``; a CUDA device that torch cannot use is an error naming the problem."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device {device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1'): {error}") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: torch sees no GPU here (torch.cuda.is_available() is False); "
                             "use device='cpu'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: torch sees {torch.cuda.device_count()} GPU(s)")
    return resolved


def check_custom_ops_device(model: torch.nn.Module, device: torch.device) -> None:
    """A model (or PQEq module) whose PQEq term calls the compiled operators needs their CUDA
    kernels on a GPU: a clear error when the library was built without them."""
    pqeq = getattr(model, "pqeq", model)
    if device.type != "cuda" or pqeq is None or not getattr(pqeq, "uses_custom_ops", False):
        return
    from . import ops

    if not ops.has_cuda_kernels():
        raise ValueError("the model's PQEq term uses the compiled operators, but the loaded library has no CUDA "
                         "kernels (built without nvcc): rebuild it with CUDA (`make install` on the GPU machine, "
                         "or `python setup.py build_ext --inplace` with CUDA_HOME set), or build the model with "
                         "pqeq use_custom_ops=False")


def check_precision(precision: Optional[str], pqeq_precision: str = "double") -> None:
    """A clear error for values of ``precision`` / ``pqeq_precision`` that do not exist."""
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision is {precision!r}; options are None, {', '.join(map(repr, PRECISIONS))}")
    if pqeq_precision not in PQEQ_PRECISIONS:
        raise ValueError(f"pqeq_precision is {pqeq_precision!r}; options are {', '.join(map(repr, PQEQ_PRECISIONS))}")


def set_precision(model: torch.nn.Module, precision: Optional[str] = None,
                  pqeq_precision: str = "double") -> torch.nn.Module:
    """Set the dtypes of the terms of a :class:`~openmm_pqeq.model.PQEqModel` (in place; returns
    it) following the table of the module docstring."""
    check_precision(precision, pqeq_precision)
    if getattr(model, "e0", None) is not None and precision is not None:
        model.e0.to(torch.float64 if precision == "double" else torch.float32)
    model.d3_double = precision != "single"
    model.pqeq_double = pqeq_precision == "double"
    return model


def prepare_model(model: torch.nn.Module, device: DeviceLike = None, precision: Optional[str] = None,
                  pqeq_precision: str = "double") -> Tuple[torch.nn.Module, torch.device]:
    """``(model on the device with the precision asked for, that device)``: the model itself when
    it already is so, else a copy (the caller's model is never moved or cast in place)."""
    resolved = resolve_device(device)
    check_precision(precision, pqeq_precision)
    check_custom_ops_device(model, resolved)
    on_device = all(t.device == resolved or (resolved.index is None and t.device.type == resolved.type)
                    for t in list(model.parameters()) + list(model.buffers()))
    if on_device and precision is None and pqeq_precision == "double":
        return model, resolved
    copied = copy.deepcopy(model)
    if precision is not None or pqeq_precision != "double":
        set_precision(copied, precision, pqeq_precision)
    return copied.to(resolved), resolved
