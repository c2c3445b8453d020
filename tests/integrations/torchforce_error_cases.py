"""Child process of test_torchforce_errors.py: every way the shipped model can raise inside
an OpenMM TorchForce, in getState and in integrator.step.

Prints one JSON line per case, ``{"case": ..., "error": "<type>: <last line>" | null}``, as
soon as it is done (flushed), so the parent sees how far a process got if it dies.
"""

import json
import sys

import numpy as np
import openmm
from openmm import app, unit

from openmm_pqeq.integrations.openmm_force import make_force
from openmm_pqeq.integrations.setup import atom_setup
from openmm_pqeq.io import load_model, read_model_file
from openmm_pqeq.model import build_model
from openmm_pqeq.ops import has_custom_ops
from water_systems import water_topology


def report(case, action):
    try:
        action()
        error = None
    except Exception as exc:  # what reaches the user: the type and the last line of the message
        lines = [line for line in str(exc).splitlines() if line.strip()]
        error = f"{type(exc).__name__}: {lines[-1] if lines else ''}"
    print(json.dumps({"case": case, "error": error}), flush=True)


def context_for(topology, model, numbers=None):
    """A Reference-platform Context whose only force is ``model`` as a TorchForce."""
    setup = atom_setup(topology, None, 0.0, "molecules", None)
    if numbers is not None:
        setup.numbers = list(numbers)
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    if topology.getPeriodicBoxVectors() is not None:
        system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    system.addForce(make_force(model, setup, system.getNumParticles(), backend="torchforce"))
    integrator = openmm.VerletIntegrator(0.0005)
    return openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference")), integrator


def energy(context):
    return context.getState(getEnergy=True).getPotentialEnergy()


def main():
    periodic, positions = water_topology(2)  # 8 waters, 6.2 Å box
    overlapping = positions.copy()
    overlapping[4] = overlapping[0] + np.array([0.015, 0.0, 0.0])  # an H 0.15 Å from another O
    nan = positions.copy()
    nan[5, 1] = np.nan
    open_top = app.Topology()
    open_top.addChain()
    for residue in periodic.residues():  # the same molecules without a box
        new = open_top.addResidue("HOH", next(open_top.chains()))
        atoms = [open_top.addAtom(a.name, a.element, new) for a in residue.atoms()]
        open_top.addBond(atoms[0], atoms[1])
        open_top.addBond(atoms[0], atoms[2])

    model = load_model("water-demo")
    context, integrator = context_for(periodic, model)

    def set_and(state_positions, then):
        def action():
            context.setPositions(state_positions)
            then()
        return action

    reference = []
    report("periodic_reference_energy", set_and(positions, lambda: reference.append(energy(context))))
    report("periodic_overlap_getState", set_and(overlapping, lambda: energy(context)))
    report("periodic_overlap_step", set_and(overlapping, lambda: integrator.step(1)))
    report("periodic_nan_getState", set_and(nan, lambda: energy(context)))
    report("periodic_nan_step", set_and(nan, lambda: integrator.step(1)))

    def tiny_box():
        context.setPositions(positions)
        side = 0.25  # nm: molecules overlap their neighbours' periodic images
        context.setPeriodicBoxVectors(openmm.Vec3(side, 0, 0), openmm.Vec3(0, side, 0), openmm.Vec3(0, 0, side))
        energy(context)

    report("periodic_tiny_box_getState", tiny_box)

    def field_then(strength_v_per_nm, then):
        def action():
            context.setPeriodicBoxVectors(*periodic.getPeriodicBoxVectors())
            context.setPositions(positions)
            context.setParameter("pqeq_field_z", strength_v_per_nm)
            then()
        return action

    # 5 V/Å, ten times the strongest training field: runs, with one warning on stderr
    report("periodic_strong_field_step", field_then(50.0, lambda: integrator.step(3)))
    # 10 V/Å: the O shells move about 0.7 Å, beyond the 0.5 Å bound
    report("periodic_runaway_field_getState", field_then(100.0, lambda: energy(context)))

    # an H of molecule 0 pulled 0.47 of the box along z from its O (at least 1.8 Å from every
    # other atom): with a field along z its molecule cannot be made whole by minimum image
    stretched = positions.copy()
    stretched[2] = stretched[0] + np.array([0.10, 0.15, 0.47 * 0.62])

    def stretched_then(strength_v_per_nm):
        def action():
            context.setPeriodicBoxVectors(*periodic.getPeriodicBoxVectors())
            context.setPositions(stretched)
            context.setParameter("pqeq_field_z", strength_v_per_nm)
            energy(context)
        return action

    report("periodic_stretched_no_field_getState", stretched_then(0.0))
    report("periodic_stretched_field_getState", stretched_then(1.0))

    def same_energy_as_before():
        """After all those errors the force gives the first energy again (no stale state)."""
        again = energy(context).value_in_unit(unit.kilojoule_per_mole)
        first = reference[0].value_in_unit(unit.kilojoule_per_mole)
        if abs(again - first) > 1e-6 * abs(first):
            raise AssertionError(f"energy {again} kJ/mol after the errors, {first} before")

    report("periodic_energy_after_errors", field_then(0.0, same_energy_as_before))

    # the open system, with a solve that cannot converge (one charge/shell cycle allowed):
    # input checks come before the solve, so both kinds of error show on one force
    payload = read_model_file("water-demo")
    config = dict(payload["config"])
    config["pqeq"] = {**config["pqeq"], "max_iterations": 1, "charge_tolerance": 1e-12, "shell_tolerance": 1e-12}
    stubborn = build_model(config)
    stubborn.load_state_dict(model.state_dict(), strict=False)
    open_context, open_integrator = context_for(open_top, stubborn)
    report("open_overlap_getState", lambda: (open_context.setPositions(overlapping), energy(open_context)))
    report("open_nan_step", lambda: (open_context.setPositions(nan), open_integrator.step(1)))
    report("open_not_converged_getState", lambda: (open_context.setPositions(positions), energy(open_context)))
    report("open_not_converged_step", lambda: (open_context.setPositions(positions), open_integrator.step(1)))

    # an element the model does not have (create_system refuses it; the module checks too)
    small = build_model({"elements": ["O", "H"], "pqeq": {}})
    sodium = [11 if k == 0 else z for k, z in enumerate(atom_setup(periodic).numbers)]
    foreign_context, _ = context_for(periodic, small, numbers=sodium)
    report("unknown_element_getState", lambda: (foreign_context.setPositions(positions), energy(foreign_context)))
    print(json.dumps({"case": "done", "error": None, "custom_ops": has_custom_ops()}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
