"""Active-learning round: clusters cut out of MD snapshots of a model that fails in liquid water.

Runs short NVT MD (Langevin 300 K, ``--timestep`` fs (0.5), relaxed TIP3P start box, the model's own
charge constraints) of a periodic water box with MODEL, at each field of ``--fields`` (V/Å along z;
default without field and with 0.25 V/Å), and keeps a snapshot every ``--interval`` steps up to
``--steps``.  From each snapshot it cuts clusters (the molecule of the
hydrogen closest to a foreign oxygen, i.e. where the model goes wrong first, plus random molecules,
each with its nearest neighbours) exactly like ``07_sample_bulk_cutouts.py``, ready for
``openmm-pqeq label`` with the default (shipped) recipe::

    python examples/09_active_learning_cutouts.py runs/water-demo-v2/model.pt water_al_cutouts.extxyz
    OMP_NUM_THREADS=1 openmm-pqeq label water_al_cutouts.extxyz examples/data/water_al_pbe.extxyz --workers 1

With ``--proton-scan`` it instead writes proton-transfer scans: from clusters of the given files
(neutral, field-free 2- and 4-molecule clusters), the hydrogen of the shortest intermolecular
O···H contact is moved along its O···O axis to O–H distances of 1.10–1.55 Å (the model had a
spurious ion-pair basin there, which the reference data did not cover)::

    python examples/09_active_learning_cutouts.py --proton-scan examples/data/water_pbe.extxyz \
        examples/data/water_bulk_pbe.extxyz -- water_pt_scan.extxyz
    OMP_NUM_THREADS=1 openmm-pqeq label water_pt_scan.extxyz examples/data/water_al_pbe.extxyz --workers 1
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("bulk_cutouts", Path(__file__).with_name("07_sample_bulk_cutouts.py"))
bulk_cutouts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bulk_cutouts)


def proton_scan(files, output, seed=2029, distances=(1.10, 1.25, 1.40, 1.55), per_size=3):
    import ase.io

    rng = np.random.default_rng(seed)
    scans = []
    for path, n_molecules in ((files[0], 2), (files[-1], 4)):
        pool = [a for a in ase.io.read(path, ":") if a.info.get("n_molecules") == n_molecules
                and int(a.info.get("charge", 0)) == 0 and not np.any(a.info.get("field", np.zeros(3)))]
        for index in rng.choice(len(pool), size=per_size, replace=False):
            atoms = pool[int(index)]
            symbols = np.array(atoms.get_chemical_symbols())
            molecule = np.arange(len(atoms)) // 3
            oxygens = np.flatnonzero(symbols == "O")
            best = None
            for h in np.flatnonzero(symbols == "H"):
                own = oxygens[molecule[oxygens] == molecule[h]][0]
                for o in oxygens[molecule[oxygens] != molecule[h]]:
                    r = np.linalg.norm(atoms.positions[h] - atoms.positions[o])
                    if best is None or r < best[0]:
                        best = (r, h, own, o)
            _, h, own, o = best
            axis = atoms.positions[o] - atoms.positions[own]
            axis /= np.linalg.norm(axis)
            for distance in distances:
                moved = atoms.copy()
                moved.calc = None
                moved.positions[h] = atoms.positions[own] + distance * axis
                moved.info = {"charge": 0, "n_molecules": n_molecules, "field": np.zeros(3),
                              "proton_scan_OH_A": distance, "sample_index": len(scans)}
                scans.append(moved)
    ase.io.write(output, scans, format="extxyz")
    print(f"wrote {len(scans)} proton-transfer frames to {output}")


def main() -> None:
    import sys

    if "--proton-scan" in sys.argv:
        args = sys.argv[sys.argv.index("--proton-scan") + 1:]
        proton_scan(args[:args.index("--")], args[args.index("--") + 1])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("output")
    parser.add_argument("--molecules", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--sizes", default="5,4,4", help="cluster sizes cut from each snapshot (first: worst H)")
    parser.add_argument("--timestep", type=float, default=0.5, help="MD time step in fs (default 0.5)")
    parser.add_argument("--fields", default="0,0.25", help="fields along z in V/Å, one MD run each (default 0,0.25)")
    parser.add_argument("--seed", type=int, default=2028)
    args = parser.parse_args()

    import ase.io
    import openmm
    from openmm import app, unit

    from openmm_pqeq.integrations.system import create_system
    from openmm_pqeq.io import load_model
    from openmm_pqeq.md import water_box
    from openmm_pqeq.units import V_PER_A_TO_V_PER_NM

    rng = np.random.default_rng(args.seed)
    model = load_model(args.model)
    sizes = [int(s) for s in args.sizes.split(",")]
    clusters = []
    for fz in (float(f) for f in args.fields.split(",")):
        topology, positions = water_box(args.molecules)
        # the model's own charge constraints
        system = create_system(topology, model, field=(0.0, 0.0, V_PER_A_TO_V_PER_NM * fz))
        integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond,
                                                     args.timestep * unit.femtosecond)
        integrator.setRandomNumberSeed(args.seed)
        simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("CPU"))
        simulation.context.setPositions(positions)
        simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, args.seed)
        symbols = [a.element.symbol for a in topology.atoms()]
        residues = np.array([a.residue.index for a in topology.atoms()])
        hydrogens = np.flatnonzero(np.array(symbols) == "H")
        oxygens = np.flatnonzero(np.array(symbols) == "O")
        for step in range(args.interval, args.steps + 1, args.interval):
            simulation.step(args.interval)
            state = simulation.context.getState(getPositions=True)
            x = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
            box = np.array(state.getPeriodicBoxVectors().value_in_unit(unit.angstrom))
            edge = np.diag(box)
            d = x[hydrogens][:, None] - x[oxygens][None]
            d -= edge * np.round(d / edge)
            r = np.linalg.norm(d, axis=-1)
            r[residues[hydrogens][:, None] == residues[oxygens][None]] = np.inf
            worst = residues[hydrogens[np.argmin(r.min(axis=1))]]
            centres = [int(worst)] + [int(c) for c in rng.integers(residues.max() + 1, size=len(sizes) - 1)]
            for centre, n in zip(centres, sizes):
                atoms = bulk_cutouts.cut_cluster(x, box, symbols, residues, centre, n)
                atoms.info["field"] = np.array([0.0, 0.0, fz])
                atoms.info["md_step"] = step
                atoms.info["sample_index"] = len(clusters)
                clusters.append(atoms)
    ase.io.write(args.output, clusters, format="extxyz")
    print(f"wrote {len(clusters)} clusters to {args.output}")


if __name__ == "__main__":
    main()
