"""Build OpenMM Systems with a PQEq model, the way OpenMM users expect.

>>> system = create_system(pdb.topology, model="model.pt", field=(0, 0, 2.5))  # doctest: +SKIP

The charge constraints default to the model's own rule (``charge_groups="model"``, see
:mod:`openmm_pqeq.charge_constraint`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from ..charge_constraint import resolve_charge_groups, warn_total_spanning_molecules
from ..model import PQEqModel, config_of
from ..elements import SYMBOLS
from .openmm_force import make_force, pqeq_force_index
from .setup import atom_setup, molecules_of

ModelLike = Union[str, Path, PQEqModel]


def _resolve(model: ModelLike) -> PQEqModel:
    if isinstance(model, PQEqModel):
        return model
    from ..io import load_model

    return load_model(model)


def add_pqeq_force(system, topology, model: ModelLike, *, atoms: Optional[Sequence[int]] = None,
                   charge: float = 0.0, charge_groups: Optional[str] = "model",
                   group_charges: Optional[Sequence[float]] = None, field=(0.0, 0.0, 0.0),
                   backend: str = "torchforce", force_group: int = 0, device: Optional[str] = None,
                   precision: Optional[str] = None, pqeq_precision: str = "double"):
    """Add a PQEq model force to an existing ``system`` and return it.

    Parameters
    ----------
    system, topology : the OpenMM System and the Topology it was built from.
    model : path or shipped name of a model file, or a :class:`~openmm_pqeq.model.PQEqModel`.
    atoms : indices of the atoms the model handles (ML/MM-style use); default all.
    charge : total charge (e) of those atoms, with one total charge.
    charge_groups : ``"model"`` (default: the charge-constraint rule the model was trained with,
        :mod:`openmm_pqeq.charge_constraint`; older model files without one: one total charge,
        with a warning), ``"molecules"`` (bonded molecules of the Topology keep their charge,
        neutral unless ``group_charges`` says otherwise; the field then couples to molecular
        dipoles), ``"residues"``, or ``"total"`` / None (one total charge; a warning when it spans
        several molecules of a model trained with one group per molecule).
    field : initial uniform field, 3 numbers in V/nm or an ``openmm.unit`` Quantity.
        The components are the global parameters ``pqeq_field_x/y/z`` (V/nm).
    backend : ``"torchforce"`` (openmm-torch TorchForce) or ``"python"`` (openmm.PythonForce).
    force_group : OpenMM force group of the new force.
    device : where the ``"python"`` backend runs the model (None: the GPU when torch sees one);
        a TorchForce runs on the device of the OpenMM platform.
    precision, pqeq_precision : dtypes of the terms (``None``/``"single"``/``"mixed"``/``"double"``;
        PQEq in float64 unless ``pqeq_precision="single"``), see :mod:`openmm_pqeq.runtime`.
    """
    if system.getNumParticles() != topology.getNumAtoms():
        raise ValueError(f"system has {system.getNumParticles()} particles but topology has "
                         f"{topology.getNumAtoms()} atoms")
    existing = pqeq_force_index(system)
    if existing is not None:
        raise ValueError(f"the System already has a PQEq force (force {existing}); a second one would count the "
                         "model's energy again (and neither would see the other's charges): use one force, with "
                         "atoms=[...] covering every atom the model handles")
    resolved = _resolve(model)
    groups_rule = resolve_charge_groups(charge_groups, resolved, None, "add_pqeq_force")
    setup = atom_setup(topology, atoms, charge, groups_rule, group_charges)
    unsupported = [(a, z) for a, z in zip(setup.atoms, setup.numbers) if z not in resolved.elements]
    if unsupported:
        atom, z = unsupported[0]
        raise ValueError(f"atom {atom} is {SYMBOLS[z]} (Z={z}), which the model does not support (its elements: "
                         f"{', '.join(SYMBOLS[e] for e in resolved.elements)}); {len(unsupported)} such atom(s)")
    if setup.groups is None:
        warn_total_spanning_molecules(resolved, max(molecules_of(topology, setup.atoms)) + 1, "add_pqeq_force")
    config = config_of(resolved) if backend == "python" else None
    force = make_force(resolved, setup, system.getNumParticles(), config, field, backend, force_group, device,
                       precision, pqeq_precision)
    system.addForce(force)
    return force


def create_system(topology, model: ModelLike, *, charge: float = 0.0, charge_groups: Optional[str] = "model",
                  group_charges: Optional[Sequence[float]] = None, field=(0.0, 0.0, 0.0),
                  backend: str = "torchforce", remove_cm_motion: bool = True, device: Optional[str] = None,
                  precision: Optional[str] = None, pqeq_precision: str = "double"):
    """A new System whose only force is the model (masses from the Topology's elements).

    Periodic when the Topology has box vectors.  Arguments as for :func:`add_pqeq_force`.
    """
    import openmm
    from openmm import unit

    system = openmm.System()
    for atom in topology.atoms():
        if atom.element is None:
            raise ValueError(f"atom {atom.index} ({atom.name}) has no element in the Topology")
        system.addParticle(atom.element.mass)
    box = topology.getPeriodicBoxVectors()
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*box)
    add_pqeq_force(system, topology, model, charge=charge, charge_groups=charge_groups,
                   group_charges=group_charges, field=field, backend=backend, device=device, precision=precision,
                   pqeq_precision=pqeq_precision)
    if remove_cm_motion:
        system.addForce(openmm.CMMotionRemover())
    return system
