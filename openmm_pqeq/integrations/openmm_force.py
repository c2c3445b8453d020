"""PQEq models as OpenMM forces: ``TorchForce`` (openmm-torch) or ``openmm.PythonForce``.

Both backends run the same :class:`~openmm_pqeq.model.PQEqModel`; they differ in who drives
it.  The OpenMM side speaks nm, kJ/mol and V/nm; conversions happen here, once:

- positions and box: nm -> Å (×10), energy: eV -> kJ/mol (×96.4853), forces: eV/Å -> kJ/mol/nm;
- the field: global parameters ``pqeq_field_x``, ``pqeq_field_y``, ``pqeq_field_z`` in V/nm
  (change them during a run with ``context.setParameter``); the model gets V/Å (×0.1).

With the TorchForce backend, ``∂E/∂pqeq_field_*`` is requested, so a State made with
``getParameterDerivatives=True`` yields the system dipole for free:
``μ (e·nm) = -∂E/∂E_field (kJ/mol per V/nm) / 96.4853`` (see :func:`dipole_from_state`).
An ``openmm.PythonForce`` cannot compute parameter derivatives, so with the python backend
:func:`dipole_from_state` raises; :func:`dipole_from_context` gives the dipole for both.

Import this module (or :mod:`openmm_pqeq.integrations.system`) before deserializing a
System or loading a checkpoint that holds a PQEq TorchForce: it registers the TorchScript
classes and the openmm-torch plugin the serialized module needs.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any, Dict, Optional
from xml.etree import ElementTree

import numpy as np
import torch
import vesin_torch  # noqa: F401  registers the TorchScript neighbour-list class used inside the force
from e3nn.util.jit import compile_mode

from ..model import PQEqModel, energy_forces_stress, script_model
from ..training_range import set_training_range, training_range_of
from ..units import ANGSTROM_TO_NM, EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM
from .inputs import INPUTS_ATTRIBUTES, ModelInputs, setup_of, state_inputs
from .setup import FIELD_PARAMETERS, AtomSetup, field_in_v_per_nm

BACKENDS = ("torchforce", "python")
#: Extra global parameter of the python backend's force (value 1): marks its States, whose field
#: derivatives OpenMM reports as 0 because a PythonForce cannot compute them.
PYTHON_BACKEND_MARKER = "pqeq_python_backend"

try:  # registers TorchForce (and its XML serialization proxy) with OpenMM
    import openmmtorch  # noqa: F401
except ImportError:  # the "python" backend works without openmm-torch
    openmmtorch = None


@compile_mode("script")
class OpenMMEnergy(torch.nn.Module):
    """Unit boundary around a model: nm / V/nm in, kJ/mol out (TorchScript)."""

    def __init__(self, model: PQEqModel, setup: AtomSetup):
        super().__init__()
        self.model = model
        self.inputs = ModelInputs(setup)
        self.energy_scale: float = EV_TO_KJ_PER_MOL  # eV -> kJ/mol

    def energy(self, positions: torch.Tensor, box: Optional[torch.Tensor], field_v_per_nm: torch.Tensor) -> torch.Tensor:
        """Energy in kJ/mol from positions (N_system, 3) nm, box (3, 3) nm, field (3,) V/nm."""
        pos, numbers, cell, field, total_charge, groups, group_charges = self.inputs(positions, box, field_v_per_nm)
        out = self.model(pos, numbers, cell, field, total_charge, groups, group_charges)
        return out["energy"] * self.energy_scale


class _TorchForceModule(torch.nn.Module):
    """A TorchForce's module around an :class:`OpenMMEnergy`; the subclasses have the
    ``forward`` signatures openmm-torch calls (with and without the box)."""

    def __init__(self, energy: OpenMMEnergy):
        super().__init__()
        self.energy = energy


@compile_mode("script")
class PeriodicTorchForceModule(_TorchForceModule):
    """``forward(positions nm, box nm, Ex, Ey, Ez V/nm) -> kJ/mol`` (TorchForce contract)."""

    def forward(self, positions: torch.Tensor, boxvectors: torch.Tensor, field_x: torch.Tensor,
                field_y: torch.Tensor, field_z: torch.Tensor) -> torch.Tensor:
        field = torch.cat([field_x.reshape(1), field_y.reshape(1), field_z.reshape(1)])
        return self.energy.energy(positions, boxvectors, field)


@compile_mode("script")
class OpenTorchForceModule(_TorchForceModule):
    """``forward(positions nm, Ex, Ey, Ez V/nm) -> kJ/mol`` (TorchForce contract, no box)."""

    def forward(self, positions: torch.Tensor, field_x: torch.Tensor, field_y: torch.Tensor,
                field_z: torch.Tensor) -> torch.Tensor:
        field = torch.cat([field_x.reshape(1), field_y.reshape(1), field_z.reshape(1)])
        return self.energy.energy(positions, None, field)


def torchforce_module(module: torch.nn.Module) -> torch.jit.ScriptModule:
    """``module`` scripted and frozen, as a TorchForce must be given it.

    openmm-torch freezes the module it is given (``torch.jit.freeze``).  Freezing inlines
    every method into ``forward`` and then deletes the methods of the submodules that keep
    mutable state (the warm starts and Verlet list of PQEq, the neighbour lists), while the
    inlined nodes keep raw pointers to those methods for the call stack of an error message.
    An exception raised inside the model (overlapping atoms, a failed solve, an unsupported
    element, a check in a compiled operator) then made the TorchScript interpreter read freed
    memory while it formatted the message, and the process died (SIGSEGV).  A module frozen
    here is saved with all of its code inlined into ``forward``: when openmm-torch loads and
    freezes it again there is nothing left to inline or delete, so errors reach OpenMM with
    their message.  (Never call the returned module itself when it may raise: it has the
    same dangling pointers; only its saved copy inside the TorchForce is safe.)  The attributes
    of the :class:`~openmm_pqeq.integrations.inputs.ModelInputs` are kept (plain values, no
    code), so that :func:`force_setup` can read the atom set-up back from the force.
    """
    preserved = [f"energy.inputs.{name}" for name in INPUTS_ATTRIBUTES] if hasattr(module, "energy") else []
    return torch.jit.freeze(script_model(module).eval(), preserved_attrs=preserved, optimize_numerics=False)


class PythonForceComputation:
    """Picklable computation of an ``openmm.PythonForce``: rebuilds the model from its
    configuration and weights after unpickling (Systems serialize to XML and reload).

    A PythonForce cannot give parameter derivatives, so its States hold no dipole;
    :meth:`dipole` (what :func:`dipole_from_context` calls) evaluates it.

    ``device`` (None: the GPU when torch sees one, resolved where the force runs) and
    ``precision``/``pqeq_precision`` (:mod:`openmm_pqeq.runtime`) say where and how the model
    runs; positions go to the device and forces come back once per call.
    """

    def __init__(self, config: Dict[str, Any], state_dict: Dict[str, torch.Tensor], setup: AtomSetup,
                 n_particles: int, training_range: Optional[Dict[str, Any]] = None, device: Optional[str] = None,
                 precision: Optional[str] = None, pqeq_precision: str = "double"):
        self.config = config
        self.state_dict = state_dict
        self.setup = setup
        self.n_particles = n_particles
        self.training_range = training_range
        self.device = None if device is None else str(device)
        self.precision = precision
        self.pqeq_precision = pqeq_precision
        self._model: Optional[PQEqModel] = None
        self._device: Optional[torch.device] = None
        self._inputs: Optional[ModelInputs] = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_model"] = None
        state["_device"] = None
        state["_inputs"] = None
        return state

    def __setstate__(self, state):
        # Systems pickled before the device and precision options: the defaults
        state.setdefault("device", None)
        state.setdefault("precision", None)
        state.setdefault("pqeq_precision", "double")
        state.setdefault("_device", None)
        state.setdefault("_inputs", None)
        self.__dict__.update(state)

    @property
    def model(self) -> PQEqModel:
        if self._model is None:
            from ..model import build_model

            from ..runtime import check_custom_ops_device, resolve_device, set_precision

            model = build_model(self.config)
            model.load_state_dict(self.state_dict, strict=False)
            set_training_range(model, getattr(self, "training_range", None))
            set_precision(model, self.precision, self.pqeq_precision)
            device = resolve_device(self.device)
            check_custom_ops_device(model, device)
            self._device = device
            self._model = model.to(device).eval()
        return self._model

    def inputs(self, state):
        """Model inputs (Å, V/Å, e; :func:`~openmm_pqeq.integrations.inputs.state_inputs`) from an
        OpenMM State with positions and parameters, on the model's device."""
        if self._inputs is None:
            self.model  # builds the model on first use and sets self._device
            self._inputs = ModelInputs(self.setup).to(self._device)
        params = state.getParameters()
        return state_inputs(state, self._inputs, [params[name] for name in FIELD_PARAMETERS])

    def dipole(self, state) -> np.ndarray:
        """System dipole (3,) e·Å at ``state`` (one model evaluation)."""
        with torch.no_grad():
            out = self.model(*self.inputs(state))
        return out["dipole"].cpu().numpy().copy()

    def __call__(self, state):
        setup = self.setup
        out = energy_forces_stress(self.model, *self.inputs(state))
        forces = np.zeros((self.n_particles, 3))
        forces[setup.atoms] = out["forces"].cpu().numpy() * (EV_TO_KJ_PER_MOL / ANGSTROM_TO_NM)
        return float(out["energy"]) * EV_TO_KJ_PER_MOL, forces


def make_force(model: PQEqModel, setup: AtomSetup, n_particles: int, config: Optional[Dict[str, Any]] = None,
               field=(0.0, 0.0, 0.0), backend: str = "torchforce", force_group: int = 0,
               device: Optional[str] = None, precision: Optional[str] = None, pqeq_precision: str = "double"):
    """An OpenMM Force evaluating ``model`` on ``setup.atoms`` (see module docstring).

    ``config`` (the model's :func:`~openmm_pqeq.model.build_model` configuration) is needed
    by the ``"python"`` backend, which pickles configuration and weights.  ``device`` (python
    backend only; the TorchForce runs on the device of the OpenMM platform), ``precision`` and
    ``pqeq_precision``: see :mod:`openmm_pqeq.runtime`.
    """
    import copy

    import openmm

    from ..runtime import check_precision, set_precision

    if backend not in BACKENDS:
        raise ValueError(f"`backend` is {backend!r}; options are {', '.join(BACKENDS)}")
    if device is not None and backend == "torchforce":
        raise ValueError("device= is for backend='python'; a TorchForce runs on the device of the OpenMM platform "
                         "(CUDA platform: the GPU), so leave device unset")
    field0 = field_in_v_per_nm(field)
    if backend == "torchforce":
        if openmmtorch is None:
            raise ImportError("the 'torchforce' backend needs openmm-torch; install acellera-openmmtorch-cpu "
                              "(see README) or use backend='python'")
        from openmmtorch import TorchForce

        if precision is not None or pqeq_precision != "double":
            model = set_precision(copy.deepcopy(model), precision, pqeq_precision)
        energy = OpenMMEnergy(model, setup)
        module = PeriodicTorchForceModule(energy) if setup.periodic else OpenTorchForceModule(energy)
        force = TorchForce(torchforce_module(module))
        force.setUsesPeriodicBoundaryConditions(setup.periodic)
        for name, value in zip(FIELD_PARAMETERS, field0):
            force.addGlobalParameter(name, float(value))
            force.addEnergyParameterDerivative(name)
    else:
        if config is None:
            raise ValueError("backend='python' needs the model configuration (load models with load_model "
                             "or pass config=)")
        from ..io import model_weights

        check_precision(precision, pqeq_precision)  # bad values fail here, not inside the running force
        computation = PythonForceComputation(config, model_weights(model), setup, n_particles,
                                             training_range_of(model), device, precision, pqeq_precision)
        parameters = {name: float(v) for name, v in zip(FIELD_PARAMETERS, field0)}
        parameters[PYTHON_BACKEND_MARKER] = 1.0  # tells dipole_from_state that ∂E/∂field is not computed
        force = openmm.PythonForce(computation, parameters)
        force.setUsesPeriodicBoundaryConditions(setup.periodic)
    force.setName("PQEq")
    force.setForceGroup(force_group)
    return force


def dipole_from_state(state) -> np.ndarray:
    """System dipole (3,) in e·Å from a State with parameter derivatives (TorchForce backend).

    A State of a System built with ``backend="python"`` is an error: an ``openmm.PythonForce``
    cannot compute parameter derivatives (OpenMM reports them as 0), so it holds no dipole;
    use :func:`dipole_from_context` (both backends).
    """
    derivatives = state.getEnergyParameterDerivatives()
    if PYTHON_BACKEND_MARKER in derivatives:
        raise ValueError("this State comes from a System whose PQEq force is an openmm.PythonForce "
                         "(backend='python'), which cannot compute parameter derivatives, so the State holds no "
                         "dipole: use dipole_from_context(context) or backend='torchforce'")
    missing = [name for name in FIELD_PARAMETERS if name not in derivatives]
    if missing:
        raise ValueError("the State has no field derivatives: use backend='torchforce' and "
                         "getState(getParameterDerivatives=True)")
    per_v_per_nm = np.array([derivatives[name] for name in FIELD_PARAMETERS])
    return -per_v_per_nm / EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM


def pqeq_force_index(system) -> Optional[int]:
    """Index of the PQEq force (either backend) in ``system``, or None."""
    for index in range(system.getNumForces()):
        if system.getForce(index).getName() == "PQEq":
            return index
    return None


def dipole_from_context(context) -> np.ndarray:
    """System dipole (3,) e·Å at the Context's current state, for either backend.

    TorchForce: from the field derivatives (no extra cost).  ``backend="python"``: one extra
    evaluation of the model (its computation is rebuilt from the force the first time).
    """
    import openmm

    system = context.getSystem()
    index = pqeq_force_index(system)
    if index is None:
        raise ValueError("the Context's System has no PQEq force")
    force = system.getForce(index)
    if not isinstance(force, openmm.PythonForce):
        return dipole_from_state(context.getState(getParameterDerivatives=True))
    computation = python_force_computation(force)
    if computation is None:
        raise ValueError(f"the PythonForce {force.getName()!r} is not a PQEq force")
    return computation.dipole(context.getState(getPositions=True, getParameters=True))


def python_force_computation(force) -> Optional[PythonForceComputation]:
    """The :class:`PythonForceComputation` of a python-backend PQEq force (None for another
    ``openmm.PythonForce``).  The live computation is not reachable from Python: it is rebuilt
    from the force's pickle, which OpenMM exposes only through its XML (hex), once per force."""
    import openmm

    pickled = ElementTree.fromstring(openmm.XmlSerializer.serialize(force)).get("function") or ""
    key = hashlib.sha256(pickled.encode("ascii")).hexdigest()
    computation = _COMPUTATIONS.get(key)
    if computation is None:
        computation = pickle.loads(bytes.fromhex(pickled)) if pickled else None
        if not isinstance(computation, PythonForceComputation):
            return None
        _COMPUTATIONS.clear()  # keep one: the pickled weights are large
        _COMPUTATIONS[key] = computation
    return computation


def force_setup(force) -> AtomSetup:
    """The :class:`~openmm_pqeq.integrations.setup.AtomSetup` (atoms, atomic numbers, charge
    constraints, periodicity) of a force made by :func:`make_force`, either backend, also one
    taken back from a System (``system.getForce(k)``) or a deserialized one."""
    import openmm

    if isinstance(force, openmm.PythonForce):
        computation = python_force_computation(force)
        if computation is not None:
            return computation.setup
    elif openmmtorch is not None and openmmtorch.TorchForce.isinstance(force):
        module = openmmtorch.TorchForce.cast(force).getModule()
        if hasattr(module, "energy") and hasattr(module.energy, "inputs"):
            return setup_of(module.energy.inputs)
    raise ValueError(f"the force {force.getName()!r} is not a PQEq force (make one with add_pqeq_force)")


#: The latest python-backend computation rebuilt by python_force_computation (pickle digest -> object).
_COMPUTATIONS: Dict[str, "PythonForceComputation"] = {}
