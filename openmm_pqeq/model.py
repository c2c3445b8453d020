"""The full potential E = Σ_i E0_i + E_PQEq + E_D3 as one TorchScript-compatible module.

Units inside: Å, eV, e, V/Å.  Each term is optional (``None`` switches it off), so the same
class serves the production model, PQEq-only electrostatics for ML/MM, and tests.  Build one
from a plain configuration dict with :func:`build_model` (what model files store).
"""

from __future__ import annotations

import copy
import math
import json
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from e3nn.util.jit import compile_mode

from .elements import atomic_number
from .training_range import InputGuard

#: Keys of the configuration dict accepted by :func:`build_model`.
CONFIG_KEYS = ("elements", "e0", "pqeq", "d3")


def _values(x: torch.Tensor) -> str:
    """The entries of ``x`` as text, for error messages (TorchScript-compatible)."""
    values: List[float] = x.reshape(-1).tolist()
    return str(values)


def check_finite_inputs(positions: torch.Tensor, cell: Optional[torch.Tensor], field: torch.Tensor,
                        total_charge: float, group_charges: Optional[torch.Tensor]) -> None:
    """Raise a ValueError naming the first NaN or infinite input (positions (N, 3) Å, cell
    (3, 3) Å, field (3,) V/Å, total charge e, group charges (G,) e).  A NaN would otherwise
    surface much later, e.g. as a charge solve that "does not converge" after 200 cycles."""
    finite_atoms = torch.isfinite(positions).all(dim=1)
    if not bool(finite_atoms.all()):
        atom = int(torch.nonzero(~finite_atoms)[0, 0])
        raise ValueError("the position of atom " + str(atom) + " is not finite ("
                         + _values(positions[atom]) + " Å): the structure is broken or the MD run blew up")
    if cell is not None:
        if not bool(torch.isfinite(cell).all()):
            raise ValueError("the cell is not finite: " + _values(cell) + " Å")
    if field.shape != (3,):
        raise ValueError("the field must have 3 components (V/Å), got shape " + str(list(field.shape)))
    if not bool(torch.isfinite(field).all()):
        raise ValueError("the field is not finite: " + _values(field) + " V/Å")
    if not math.isfinite(total_charge):
        raise ValueError("the total charge is not finite: " + str(total_charge) + " e")
    if group_charges is not None:
        if not bool(torch.isfinite(group_charges).all()):
            raise ValueError("group charges are not finite: " + _values(group_charges) + " e")


@compile_mode("script")
class PQEqModel(torch.nn.Module):
    """E0 network + PQEq + D3 for the elements ``elements``.

    Parameters
    ----------
    elements : list of int
        Atomic numbers the model supports (others are a clear error).
    e0, pqeq, d3 : modules or None
        :class:`~openmm_pqeq.nn.E0Network`, :class:`~openmm_pqeq.electrostatics.PQEq`,
        :class:`~openmm_pqeq.dispersion.D3Dispersion`; ``None`` switches a term off.
    """

    def __init__(self, elements: Sequence[int], e0: Optional[torch.nn.Module] = None,
                 pqeq: Optional[torch.nn.Module] = None, d3: Optional[torch.nn.Module] = None):
        super().__init__()
        if e0 is None and pqeq is None and d3 is None:
            raise ValueError("a model needs at least one energy term (e0, pqeq or d3)")
        self.elements: List[int] = sorted({atomic_number(z) for z in elements})
        self.e0 = e0
        self.pqeq = pqeq
        self.d3 = d3
        supported = torch.zeros(max(self.elements) + 1, dtype=torch.bool)
        supported[self.elements] = True
        self.register_buffer("supported", supported, persistent=False)
        #: JSON of the build_model() configuration ("" when built by hand); model files and
        #: the PythonForce backend rebuild the model from it.
        self.config_json: str = ""
        #: JSON of the charge-constraint policy the model was trained with ("" when unknown);
        #: see :mod:`openmm_pqeq.charge_constraint`.
        self.charge_constraint_json: str = ""
        #: JSON of the range of the training data ("" when unknown) and the guard that warns
        #: on inputs outside it and stops runaway shells; see :mod:`openmm_pqeq.training_range`.
        self.training_range_json: str = ""
        self.guard = InputGuard()
        #: JSON of other metadata of the file the model was loaded from, written back by
        #: save_model (keys this version does not interpret are carried, not dropped)
        self.carried_metadata_json: str = ""
        #: PQEq and D3 in float64 (True) or float32, whatever the dtype of the positions; E0 runs in
        #: its own dtype (:func:`openmm_pqeq.runtime.set_precision` sets all three)
        self.pqeq_double: bool = True
        self.d3_double: bool = True

    def forward(
        self,
        positions: torch.Tensor,
        numbers: torch.Tensor,
        cell: Optional[torch.Tensor],
        field: torch.Tensor,
        total_charge: float = 0.0,
        groups: Optional[torch.Tensor] = None,
        group_charges: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Energy (eV, differentiable in positions, cell and field) and its parts.

        ``positions`` (N, 3) Å, ``numbers`` (N,) int64, ``cell`` (3, 3) Å or None,
        ``field`` (3,) V/Å, ``total_charge`` e, ``groups`` (N,) int64 / ``group_charges``
        (G,) e for per-group constraints.  Returns ``energy``, ``energy_e0``,
        ``energy_pqeq``, ``energy_d3`` (eV), ``charges`` (N,) e, ``shell_displacements``
        (N, 3) Å, ``dipole`` (3,) e·Å, ``iterations`` and ``converged``.
        """
        n = positions.shape[0]
        if numbers.shape[0] != n:
            raise ValueError("numbers has " + str(numbers.shape[0]) + " entries but positions has "
                             + str(n) + " atoms")
        check_finite_inputs(positions, cell, field, total_charge, group_charges)
        self.guard.check_inputs(numbers, field, float(group_charges.sum()) if group_charges is not None
                                and groups is not None else total_charge)
        outside = (numbers < 0) | (numbers >= self.supported.shape[0])
        if bool(outside.any()) or not bool(self.supported.index_select(0, numbers.clamp(0, self.supported.shape[0] - 1)).all()):
            bad = numbers[outside | ~self.supported.index_select(0, numbers.clamp(0, self.supported.shape[0] - 1))]
            raise ValueError("atomic number " + str(int(bad[0])) + " is not supported by this model (elements: "
                             + str(self.elements) + ")")
        zero = torch.zeros((), dtype=positions.dtype, device=positions.device)
        out: Dict[str, torch.Tensor] = {
            "energy_e0": zero, "energy_pqeq": zero, "energy_d3": zero,
            "charges": torch.zeros(n, dtype=positions.dtype, device=positions.device),
            "shell_displacements": torch.zeros(n, 3, dtype=positions.dtype, device=positions.device),
            "dipole": torch.zeros(3, dtype=positions.dtype, device=positions.device),
            "iterations": torch.tensor(0, device=positions.device),
            "converged": torch.tensor(True, device=positions.device),
        }
        e0 = self.e0
        if e0 is not None:
            # E0 runs in its own dtype (float32 is faster), PQEq and D3 in those of pqeq_double and
            # d3_double; the per-atom E0 energies are summed in float64
            e0_dtype = e0.per_species_shift.dtype
            e0_cell: Optional[torch.Tensor] = None
            if cell is not None:
                e0_cell = cell.to(e0_dtype)
            out["energy_e0"] = e0(positions.to(e0_dtype), numbers, e0_cell).sum(dtype=torch.float64)
        pqeq = self.pqeq
        if pqeq is not None:
            dtype = torch.float64 if self.pqeq_double else torch.float32
            pqeq_cell: Optional[torch.Tensor] = None
            if cell is not None:
                pqeq_cell = cell.to(dtype)
            result = pqeq(positions.to(dtype), numbers, pqeq_cell, field.to(dtype), total_charge, groups,
                          group_charges)
            out["energy_pqeq"] = result["energy"].to(torch.float64)
            for key in ("charges", "shell_displacements", "dipole"):
                out[key] = result[key].to(positions.dtype)
            out["iterations"] = result["iterations"]
            out["converged"] = result["converged"]
            self.guard.check_shells(result["shell_displacements"])
        if self.d3 is not None:
            dtype = torch.float64 if self.d3_double else torch.float32
            d3_cell: Optional[torch.Tensor] = None
            if cell is not None:
                d3_cell = cell.to(dtype)
            out["energy_d3"] = self.d3(positions.to(dtype), numbers, d3_cell).to(torch.float64)
        # summed in float64 whatever the dtypes of the terms, returned in the dtype of the positions
        out["energy"] = (out["energy_e0"].to(torch.float64) + out["energy_pqeq"].to(torch.float64)
                         + out["energy_d3"].to(torch.float64)).to(positions.dtype)
        for key in ("energy_e0", "energy_pqeq", "energy_d3"):
            out[key] = out[key].to(positions.dtype)
        return out


def build_model(config: Dict[str, Any]) -> PQEqModel:
    """Build a :class:`PQEqModel` from a configuration dict (what model files store).

    ``config = {"elements": [...], "e0": {...} | None, "pqeq": {...} | None, "d3": {...} | None}``
    where ``e0`` holds :class:`~openmm_pqeq.nn.E0Network` keyword arguments (without
    ``elements``; ``"preset": "small" | "published"`` starts from a preset), ``pqeq`` those of :class:`~openmm_pqeq.electrostatics.PQEq` and ``d3`` those
    of :class:`~openmm_pqeq.dispersion.D3Dispersion`.

    >>> model = build_model({"elements": ["O", "H"], "pqeq": {"mode": "physical"}})
    >>> model.elements
    [1, 8]
    """
    unknown = set(config) - set(CONFIG_KEYS)
    if unknown:
        raise ValueError(f"unknown model configuration keys {sorted(unknown)}; allowed: {list(CONFIG_KEYS)}")
    if not config.get("elements"):
        raise ValueError("model configuration needs a non-empty 'elements' list")
    elements = sorted({atomic_number(z) for z in config["elements"]})
    e0 = pqeq = d3 = None
    if config.get("e0") is not None:
        from .nn import E0Network

        e0_config = {k: v for k, v in config["e0"].items() if k != "elements"}
        preset = e0_config.pop("preset", None)
        e0 = E0Network.from_preset(preset, elements, **e0_config) if preset else E0Network(elements, **e0_config)
    if config.get("pqeq") is not None:
        from .electrostatics import PQEq

        pqeq = PQEq(elements, **config["pqeq"])
    if config.get("d3") is not None:
        from .dispersion import D3Dispersion

        d3 = D3Dispersion(**config["d3"])
    model = PQEqModel(elements, e0=e0, pqeq=pqeq, d3=d3)
    model.config_json = json.dumps(config)
    return model


def config_of(model: PQEqModel) -> Dict[str, Any]:
    """The :func:`build_model` configuration of ``model``; an error for hand-built models."""
    if not model.config_json:
        raise ValueError("this model was not made by build_model(), so it has no configuration to save "
                         "or rebuild from: build it with build_model(config)")
    return json.loads(model.config_json)


def script_model(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """TorchScript version of ``model`` (e3nn submodules are compiled the way e3nn requires)."""
    from e3nn.util.jit import compile as e3nn_compile

    return e3nn_compile(model)


def energy_forces_stress(
    model: torch.nn.Module,
    positions: torch.Tensor,
    numbers: torch.Tensor,
    cell: Optional[torch.Tensor],
    field: torch.Tensor,
    total_charge: float = 0.0,
    groups: Optional[torch.Tensor] = None,
    group_charges: Optional[torch.Tensor] = None,
) -> Dict[str, torch.Tensor]:
    """Model outputs plus ``forces`` (N, 3) eV/Å and, for a cell, ``stress`` (3, 3) eV/Å³
    (positive = tensile, the ASE convention) by autograd at the converged solution."""
    positions = positions.detach()
    strain = torch.zeros(3, 3, dtype=positions.dtype, device=positions.device, requires_grad=cell is not None)
    deform = torch.eye(3, dtype=positions.dtype, device=positions.device) + strain
    pos = positions @ deform if cell is not None else positions.clone()
    pos.requires_grad_(True)
    strained = cell.detach() @ deform if cell is not None else None
    out = model(pos, numbers, strained, field, total_charge, groups, group_charges)
    inputs = [pos] + ([strain] if cell is not None else [])
    grads = torch.autograd.grad(out["energy"], inputs)
    result = {k: v.detach() for k, v in out.items()}
    result["forces"] = -grads[0]
    if cell is not None:
        result["stress"] = grads[1] / torch.linalg.det(cell.detach()).abs()
    return result
