"""openmm-ml plugin: ``MLPotential('pqeq', modelPath=...)`` and one name per shipped model.

Registered through the ``openmmml.potentials`` entry point group.  openmm-ml imports this
module whenever ``openmmml`` is imported, so it imports nothing heavy at module level
(torch and the model load inside ``addForces``).

>>> from openmmml import MLPotential                                     # doctest: +SKIP
>>> potential = MLPotential('pqeq', modelPath='model.pt')                 # doctest: +SKIP
>>> system = potential.createSystem(topology, field=(0, 0, 2.5))          # doctest: +SKIP

The charge groups default to the model's own rule (``chargeGroups='model'``).

openmm-ml looks names up in a plain dict (``MLPotential._implFactories``), so a misspelled
name such as ``MLPotential('pqeq-watr-demo')`` used to fail with a bare ``KeyError``.  This
module wraps that dict so that an unknown ``'pqeq-...'`` name is an error listing the PQEq
names there are (other names are untouched).

Import order: openmm-ml's ``mlpotential`` module loads every registered plugin, this one
included, at the end of its own import.  So the factory is defined before this module imports
openmm-ml: whichever is imported first (this module or ``openmmml``), the factory already
exists when openmm-ml looks it up.  openmm-ml asks a factory only for ``createImpl``, so it is a
plain class (the openmm-ml base class would have to be imported first).
"""

from __future__ import annotations

import json
from importlib import resources

#: Keyword arguments accepted by createSystem()/addForces() (openmm-ml camelCase style).
_OPTIONS = ("charge", "field", "chargeGroups", "groupCharges", "backend", "precision", "device")


class PQEqPotentialImplFactory:
    """Creates :class:`PQEqPotentialImpl` for ``'pqeq'`` and ``'pqeq-<shipped model>'``
    (openmm-ml's ``MLPotentialImplFactory`` interface)."""

    def createImpl(self, name: str, modelPath: str | None = None, **args) -> PQEqPotentialImpl:
        if args:
            raise ValueError(f"unknown argument(s) {sorted(args)} for MLPotential('{name}'); "
                             "the only constructor argument is modelPath")
        if name == "pqeq":
            if modelPath is None:
                raise ValueError("MLPotential('pqeq') needs modelPath= (a model file), or use the name of a "
                                 "shipped model, e.g. MLPotential('pqeq-water-demo')")
            return PQEqPotentialImpl(name, modelPath)
        if modelPath is not None:
            raise ValueError(f"MLPotential('{name}') is a shipped model; modelPath= is only for 'pqeq'")
        return PQEqPotentialImpl(name, name[len("pqeq-"):])


# after the factory (module docstring): this import may load this very module as a plugin
from openmmml.mlpotential import MLPotential, MLPotentialImpl  # noqa: E402


class UnknownPotentialError(KeyError, ValueError):
    """An ``MLPotential`` name that no plugin registers (a KeyError, as openmm-ml raises,
    that prints its message)."""

    def __str__(self) -> str:
        return str(self.args[0])


class _Registry(dict):
    """``MLPotential._implFactories`` with a clear error for unknown ``'pqeq-...'`` names."""

    def __missing__(self, name):
        if isinstance(name, str) and name.startswith("pqeq"):
            shipped = json.loads(resources.files("openmm_pqeq").joinpath("data/models.json").read_text())
            known = ", ".join(f"'pqeq-{model}'" for model in sorted(shipped))
            raise UnknownPotentialError(f"MLPotential({name!r}): no such PQEq potential; the names are 'pqeq' (with "
                                        f"modelPath=) and the shipped models {known}")
        raise KeyError(name)


if not isinstance(MLPotential._implFactories, _Registry):
    MLPotential._implFactories = _Registry(MLPotential._implFactories)


class PQEqPotentialImpl(MLPotentialImpl):
    """Adds a PQEq model force (TorchForce by default) to an openmm-ml System.

    Options of ``createSystem``: ``charge`` (e), ``field`` (V/nm, 3 numbers or a Quantity),
    ``chargeGroups`` (``'model'``, the default: the charge-constraint rule the model was trained
    with; ``'molecules'``, ``'residues'``, ``'total'``), ``groupCharges``, ``backend``
    (``'torchforce'`` or ``'python'``), ``precision`` (None, ``'single'``, ``'mixed'``,
    ``'double'``: the dtypes of E0 and D3; PQEq computes in double precision, see
    :mod:`openmm_pqeq.runtime`), ``device`` (``'python'`` backend; None: the GPU when there is one).
    """

    def __init__(self, name: str, model: str):
        self.name = name
        self.model = model

    def getMLLongRange(self) -> bool:
        return True

    def addForces(self, topology, system, atoms, forceGroup, **args):
        unknown = sorted(set(args) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"unknown argument(s) {unknown} for the '{self.name}' potential; "
                             f"options are {', '.join(_OPTIONS)}")
        try:
            from .system import add_pqeq_force
        except ImportError as error:  # pragma: no cover - dependencies of the package
            raise ImportError(f"the '{self.name}' potential needs openmm_pqeq's dependencies ({error})") from None
        add_pqeq_force(system, topology, self.model, atoms=atoms, charge=args.get("charge", 0.0),
                       charge_groups=args.get("chargeGroups", "model"), group_charges=args.get("groupCharges"),
                       field=args.get("field", (0.0, 0.0, 0.0)), backend=args.get("backend", "torchforce"),
                       force_group=forceGroup, device=args.get("device"), precision=args.get("precision"))
