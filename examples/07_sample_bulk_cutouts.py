"""Water clusters cut out of liquid water: condensed-phase environments for reference data.

The gas-phase clusters of ``examples/data/water_pbe.extxyz`` never put more than a few molecules
around a water, so an E0 network trained on them alone extrapolates in the liquid (a 64-water
box heated from 300 K to ~950 K in 20 fs with such a model).  This script samples the missing
environments: classical MD of a periodic box of flexible TIP3P water (OpenMM, Langevin, PME) at
300 K and 400 K, snapshots every 0.5 ps, and from each snapshot one cluster made of a random
central molecule and its n−1 nearest neighbours (O–O minimum-image distance), unwrapped around
the central oxygen and centred at the origin.  A quarter of the clusters get a uniform field of
0.25 V/Å in a random direction (the demo's field strength).  Everything is seeded.

The clusters are then labelled with exactly the recipe of the shipped data (PBE/def2-SVPD,
``openmm-pqeq label`` defaults); see examples/data/README.md::

    python examples/07_sample_bulk_cutouts.py water_bulk_cutouts.extxyz
    OMP_NUM_THREADS=1 openmm-pqeq label water_bulk_cutouts.extxyz examples/data/water_bulk_pbe.extxyz --workers 1
"""

from __future__ import annotations

import argparse

import numpy as np


def classical_snapshots(n_molecules: int, temperature_K: float, n_snapshots: int, seed: int,
                        equilibration_ps: float = 5.0, interval_ps: float = 0.5):
    """Positions (Å, list of (N, 3)), box edge (Å) and element symbols of flexible TIP3P water."""
    import openmm
    from openmm import app, unit

    from openmm_pqeq.md import water_box

    topology, positions = water_box(n_molecules)
    forcefield = app.ForceField("tip3p.xml")
    system = forcefield.createSystem(topology, nonbondedMethod=app.PME, nonbondedCutoff=0.7 * unit.nanometer,
                                     constraints=None, rigidWater=False)
    system.addForce(openmm.MonteCarloBarostat(1 * unit.bar, temperature_K * unit.kelvin))
    timestep_fs = 0.5
    integrator = openmm.LangevinMiddleIntegrator(temperature_K * unit.kelvin, 1 / unit.picosecond,
                                                 timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("CPU"),
                                {"Threads": "1"})
    simulation.context.setPositions(positions)
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(temperature_K * unit.kelvin, seed)
    simulation.step(int(equilibration_ps * 1000 / timestep_fs))
    symbols = [atom.element.symbol for atom in topology.atoms()]
    residues = [atom.residue.index for atom in topology.atoms()]
    frames = []
    for _ in range(n_snapshots):
        simulation.step(int(interval_ps * 1000 / timestep_fs))
        state = simulation.context.getState(getPositions=True)
        box = np.array(state.getPeriodicBoxVectors().value_in_unit(unit.angstrom))
        frames.append((np.array(state.getPositions().value_in_unit(unit.angstrom)), box))
    return frames, symbols, np.array(residues)


def cut_cluster(positions: np.ndarray, box: np.ndarray, symbols, residues: np.ndarray, centre: int,
                n_molecules: int):
    """ase.Atoms of molecule ``centre`` and its nearest neighbours, whole and centred (isolated)."""
    import ase

    edge = np.diag(box)
    oxygens = np.array([np.flatnonzero((residues == r) & (np.array(symbols) == "O"))[0]
                        for r in range(residues.max() + 1)])
    delta = positions[oxygens] - positions[oxygens[centre]]
    delta -= edge * np.round(delta / edge)
    chosen = np.argsort(np.linalg.norm(delta, axis=1))[:n_molecules]
    cluster_symbols, cluster_positions = [], []
    for r in chosen:
        o = oxygens[r]
        o_pos = positions[oxygens[centre]] + delta[r]
        for atom in np.flatnonzero(residues == r):
            d = positions[atom] - positions[o]
            d -= edge * np.round(d / edge)
            cluster_symbols.append(symbols[atom])
            cluster_positions.append(o_pos + d)
    cluster_positions = np.array(cluster_positions)
    cluster_positions -= cluster_positions.mean(axis=0)
    atoms = ase.Atoms(cluster_symbols, positions=cluster_positions)
    atoms.info["charge"] = 0
    atoms.info["n_molecules"] = n_molecules
    return atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="extxyz file of unlabelled clusters")
    parser.add_argument("--sizes", default="6:24,5:16,4:32", help="cluster size:count pairs (default 6:24,5:16,4:32)")
    parser.add_argument("--box-molecules", type=int, default=128)
    parser.add_argument("--temperatures", default="300,400", help="MD temperatures in K")
    parser.add_argument("--field-fraction", type=float, default=0.25)
    parser.add_argument("--field", type=float, default=0.25, help="field magnitude in V/Å")
    parser.add_argument("--seed", type=int, default=2027)
    args = parser.parse_args()

    import ase.io

    rng = np.random.default_rng(args.seed)
    sizes = []
    for item in args.sizes.split(","):
        size, count = item.split(":")
        sizes += [int(size)] * int(count)
    sizes = list(rng.permutation(sizes))  # interleaved, so a partial labelling run has every size
    temperatures = [float(t) for t in args.temperatures.split(",")]
    per_temperature = int(np.ceil(len(sizes) / len(temperatures)))
    snapshots = []
    for k, temperature in enumerate(temperatures):
        frames, symbols, residues = classical_snapshots(args.box_molecules, temperature, per_temperature,
                                                        seed=args.seed + k)
        snapshots += [(f, temperature) for f in frames]
    order = rng.permutation(len(snapshots))
    clusters = []
    for index, n in enumerate(sizes):
        (positions, box), temperature = snapshots[order[index % len(snapshots)]]
        centre = int(rng.integers(residues.max() + 1))
        atoms = cut_cluster(positions, box, symbols, residues, centre, int(n))
        field = np.zeros(3)
        if rng.random() < args.field_fraction:
            direction = rng.normal(size=3)
            field = args.field * direction / np.linalg.norm(direction)
        atoms.info["field"] = np.round(field, 6)
        atoms.info["md_temperature_K"] = temperature
        atoms.info["sample_index"] = index
        clusters.append(atoms)
    ase.io.write(args.output, clusters, format="extxyz")
    print(f"wrote {len(clusters)} clusters ({sum(len(a) for a in clusters)} atoms) to {args.output}")


if __name__ == "__main__":
    main()
