"""Small periodic water systems for OpenMM tests: flexible bonded water (OpenMM forces:
harmonic bonds and angles, O–O Lennard-Jones) plus a PQEq model force on top."""

from __future__ import annotations

import numpy as np
import openmm
from openmm import app, unit

from openmm_pqeq.units import ANGSTROM_TO_NM

WATER_A = np.array([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]])


def water_topology(n_side: int, spacing_A: float = 3.1):
    """Topology and positions (nm) of n_side³ waters on a jittered grid in a cubic box."""
    rng = np.random.default_rng(11)
    top = app.Topology()
    chain = top.addChain()
    positions = []
    for i in range(n_side):
        for j in range(n_side):
            for k in range(n_side):
                res = top.addResidue("HOH", chain)
                o = top.addAtom("O", app.element.oxygen, res)
                h1 = top.addAtom("H1", app.element.hydrogen, res)
                h2 = top.addAtom("H2", app.element.hydrogen, res)
                top.addBond(o, h1)
                top.addBond(o, h2)
                angle = rng.uniform(0, 2 * np.pi)
                rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
                positions.append(WATER_A @ rot.T + spacing_A * np.array([i, j, k]) + 0.7)
    box_nm = n_side * spacing_A * ANGSTROM_TO_NM
    top.setPeriodicBoxVectors(np.eye(3) * box_nm * unit.nanometer)
    return top, np.concatenate(positions) * ANGSTROM_TO_NM


def bonded_water_system(topology) -> openmm.System:
    """Flexible water: O–H bonds, H–O–H angles (SPC/Fw-like constants) and O–O LJ, no charges."""
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    bonds = openmm.HarmonicBondForce()
    angles = openmm.HarmonicAngleForce()
    lj = openmm.NonbondedForce()
    lj.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
    cutoff = min(0.45, 0.49 * topology.getUnitCellDimensions()[0].value_in_unit(unit.nanometer))
    lj.setCutoffDistance(cutoff)
    lj.setUseSwitchingFunction(True)
    lj.setSwitchingDistance(cutoff - 0.1)
    for residue in topology.residues():
        o, h1, h2 = [a.index for a in residue.atoms()]
        bonds.addBond(o, h1, 0.1012, 443153.38)
        bonds.addBond(o, h2, 0.1012, 443153.38)
        angles.addAngle(h1, o, h2, np.deg2rad(113.24), 317.5656)
    for atom in topology.atoms():
        if atom.element.symbol == "O":
            lj.addParticle(0.0, 0.3166, 0.650)
        else:
            lj.addParticle(0.0, 0.1, 0.2)  # small H repulsion: Gaussian PQEq attraction is finite at r = 0
    for residue in topology.residues():
        o, h1, h2 = [a.index for a in residue.atoms()]
        lj.addException(o, h1, 0, 1, 0)
        lj.addException(o, h2, 0, 1, 0)
        lj.addException(h1, h2, 0, 1, 0)
    for force in (bonds, angles, lj):
        system.addForce(force)
    return system
