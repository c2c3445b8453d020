"""Stability check of a water model in periodic liquid water (the gate for shipping water-demo).

NVT Langevin MD (OpenMM, the model as a TorchForce, one group per molecule, no constraints)
of a periodic water box at 1 g/cm³ started from OpenMM's TIP3P box, once without field and
once with a uniform field, at fixed volume.  Every ``--chunk`` steps it records the
instantaneous temperature, the shortest and longest intramolecular O–H bond, the shortest
intermolecular O···H distance and whether any H is closer to a foreign O than to its own
(proton transfer).  A run passes when, after the first 100 steps, the temperature stays within
±25 % of the target (running mean over 10 records), every O–H bond stays in [0.8, 1.3] Å and no
proton transfers; it stops early when the bounds are badly broken (T > 2× target or O–H > 1.6 Å).

    OMP_NUM_THREADS=2 python benchmarks/water_demo_stability.py --model water-demo --molecules 64 \\
        --steps 2000 --output benchmarks/results/water_demo_stability.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from openmm_pqeq._atomic import atomic_write


def run(model, n_molecules: int, steps: int, field_V_per_A, temperature_K: float = 300.0, timestep_fs: float = 0.5,
        friction_per_ps: float = 1.0, chunk: int = 20, seed: int = 1, platform: str = "CPU") -> dict:
    import openmm
    from openmm import app, unit

    from openmm_pqeq.integrations.system import create_system
    from openmm_pqeq.md import water_box
    from openmm_pqeq.units import AVOGADRO, V_PER_A_TO_V_PER_NM

    topology, positions = water_box(n_molecules)
    system = create_system(topology, model, charge_groups="molecules", field=tuple(V_PER_A_TO_V_PER_NM * np.asarray(field_V_per_A)),
                           backend="torchforce")
    integrator = openmm.LangevinMiddleIntegrator(temperature_K * unit.kelvin, friction_per_ps / unit.picosecond,
                                                 timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName(platform))
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(temperature_K * unit.kelvin, seed)
    atoms = list(topology.atoms())
    oxygens = np.array([a.index for a in atoms if a.element.symbol == "O"])
    hydrogens = np.array([a.index for a in atoms if a.element.symbol == "H"])
    own_o = np.array([next(b.index for b in atoms[h].residue.atoms() if b.element.symbol == "O") for h in hydrogens])
    n_dof = 3 * system.getNumParticles() - 3
    box = np.array(topology.getPeriodicBoxVectors().value_in_unit(unit.angstrom))
    edge = np.diag(box)
    mass_g = sum(a.element.mass.value_in_unit(unit.dalton) for a in atoms) / AVOGADRO
    density = mass_g / (np.prod(edge) * 1e-24)
    records = []
    started = time.time()
    status = "completed"
    for step in range(chunk, steps + 1, chunk):
        simulation.step(chunk)
        state = simulation.context.getState(getPositions=True, getEnergy=True)
        x = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
        d = x[hydrogens][:, None, :] - x[oxygens][None, :, :]
        d -= edge * np.round(d / edge)
        r = np.linalg.norm(d, axis=-1)  # (H, O)
        own = r[np.arange(len(hydrogens)), np.searchsorted(oxygens, own_o)]
        r_foreign = r.copy()
        r_foreign[np.arange(len(hydrogens)), np.searchsorted(oxygens, own_o)] = np.inf
        temperature = (2 * state.getKineticEnergy() / (n_dof * unit.MOLAR_GAS_CONSTANT_R)).value_in_unit(unit.kelvin)
        records.append({"step": step, "T_K": temperature,
                        "potential_kJ_mol": state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
                        "oh_min_A": float(own.min()), "oh_max_A": float(own.max()),
                        "intermolecular_oh_min_A": float(r_foreign.min()),
                        "proton_transfers": int((r_foreign.min(axis=1) < own).sum())})
        if len(records) % 10 == 0:
            print(f"step {step}: T {temperature:.0f} K, O-H {own.min():.3f}..{own.max():.3f} A, "
                  f"{(time.time() - started) / step:.3f} s/step", flush=True)
        if temperature > 2 * temperature_K or own.max() > 1.6 or not np.isfinite(temperature):
            status = f"stopped at step {step}: T {temperature:.0f} K, longest O-H {own.max():.2f} A"
            break
    elapsed = time.time() - started
    T = np.array([r["T_K"] for r in records])
    after = [r for r in records if r["step"] > 100] or records
    T_after = np.array([r["T_K"] for r in after])
    running = np.convolve(T_after, np.ones(10) / 10, mode="valid") if len(T_after) >= 10 else T_after
    summary = {
        "molecules": len(oxygens), "atoms": len(atoms), "density_g_cm3": round(float(density), 4),
        "field_V_per_A": list(map(float, field_V_per_A)), "timestep_fs": timestep_fs, "friction_per_ps": friction_per_ps,
        "temperature_target_K": temperature_K, "steps_run": records[-1]["step"] if records else 0,
        "simulated_ps": (records[-1]["step"] if records else 0) * timestep_fs / 1000, "status": status,
        "T_mean_K": float(T_after.mean()), "T_std_K": float(T_after.std()), "T_max_K": float(T.max()),
        "T_running_mean_range_K": [float(running.min()), float(running.max())],
        "oh_min_A": min(r["oh_min_A"] for r in records), "oh_max_A": max(r["oh_max_A"] for r in records),
        "intermolecular_oh_min_A": min(r["intermolecular_oh_min_A"] for r in records),
        "proton_transfers": max(r["proton_transfers"] for r in records),
        "seconds_per_step": elapsed / max(records[-1]["step"] if records else 1, 1),
    }
    summary["passed"] = bool(status == "completed" and 0.75 * temperature_K <= running.min()
                             and running.max() <= 1.25 * temperature_K and summary["oh_min_A"] >= 0.8
                             and summary["oh_max_A"] <= 1.3 and summary["proton_transfers"] == 0)
    summary["records"] = records
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="water-demo")
    parser.add_argument("--molecules", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--field", type=float, default=0.25, help="field along z (V/Å) of the second run")
    parser.add_argument("--friction", type=float, default=1.0, help="Langevin friction (1/ps)")
    parser.add_argument("--chunk", type=int, default=20)
    parser.add_argument("--only", choices=["both", "nofield", "field"], default="both")
    parser.add_argument("--output", default="benchmarks/results/water_demo_stability.json")
    args = parser.parse_args()

    from openmm_pqeq.io import load_model

    model = load_model(args.model)
    results = {"model": args.model, "runs": []}
    fields = {"both": [0.0, args.field], "nofield": [0.0], "field": [args.field]}[args.only]
    for fz in fields:
        summary = run(model, args.molecules, args.steps, (0.0, 0.0, fz), friction_per_ps=args.friction, chunk=args.chunk)
        results["runs"].append(summary)
        print(json.dumps({k: v for k, v in summary.items() if k != "records"}), flush=True)
        atomic_write(args.output, lambda handle: json.dump(results, handle, indent=1), mode="w")


if __name__ == "__main__":
    main()
