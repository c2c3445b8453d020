"""Soak test: long periodic water MD with the field switched on and off, a barostat,
checkpoints, and one real ``kill -9`` and resume in the middle.

The driver (default) starts a worker process, kills it with SIGKILL once its checkpoint has
passed the middle of the run and it has written records past that checkpoint, starts it again
with ``--resume``, and writes the summary.  The worker (``--worker``) runs the MD:

- water box (:func:`openmm_pqeq.md.water_box`), the model as a TorchForce, one neutral
  group per molecule, no constraints (flexible water);
- blocks of ``--block`` steps (default 2,000), the uniform field (``--field`` V/Å along z)
  off in even blocks and on in odd ones;
- each block: Langevin (``LangevinMiddleIntegrator``) with a ``MonteCarloBarostat``, then its
  last ``--nve-steps`` steps in NVE (velocity Verlet, barostat paused) to measure the energy
  drift: with a thermostat the total energy is not conserved, so the drift is the slope of a
  straight-line fit of PE + KE (recorded every ``--nve-record`` steps) over each NVE segment,
  in kJ/mol/ps per atom, with the scatter about the fit;
- every ``--sample`` steps one extra model evaluation on the current positions records the
  largest shell displacement, the solver's cycles and convergence, the temperature,
  the volume and the density; an exception from the model (a failed solve) is recorded,
  the run goes back to its last checkpoint and continues (it stops after 3 failures);
- a checkpoint (:mod:`openmm_pqeq.md_checkpoint`) every ``--checkpoint-interval`` steps and
  at every phase change; the record file is cut back to its checkpointed size on resume, so
  no record is duplicated or missing.

Run (long lane, one thread; 0.3-0.5 s per step for 59 waters on this machine, so 2-3 hours for
20,000 steps; the Reference platform, in double precision, so that the drift is the model's):

    nohup flock /work/long.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/soak_water_md.py \\
        --model water-demo --steps 20000 --output runs/soak \\
        --summary benchmarks/results/soak_water_md.json > runs/soak.log 2>&1 &

A driver that is itself interrupted is rerun with the same command: the worker resumes from
its checkpoint (the summary then reports that resume as well).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RECORDS = "records.jsonl"


# ----------------------------------------------------------------------------- worker
def _schedule(step: int, args) -> tuple:
    """(field on?, in the NVE part?) for the step that follows ``step``."""
    block, offset = divmod(step, args.block)
    return block % 2 == 1, offset >= args.block - args.nve_steps


def _next_stop(step: int, args) -> int:
    """The next step at which something changes or is recorded."""
    block_start = (step // args.block) * args.block
    marks = [block_start + args.block - args.nve_steps, block_start + args.block, args.steps,
             (step // args.sample + 1) * args.sample, (step // args.checkpoint_interval + 1) * args.checkpoint_interval]
    in_nve = _schedule(step, args)[1]
    if in_nve:
        marks.append((step // args.nve_record + 1) * args.nve_record)
    return min(m for m in marks if m > step)


def run_worker(args) -> None:
    import openmm
    import torch
    from openmm import unit

    from openmm_pqeq.integrations.setup import FIELD_PARAMETERS, atom_setup
    from openmm_pqeq.integrations.system import create_system
    from openmm_pqeq.io import load_model
    from openmm_pqeq.md import water_box
    from openmm_pqeq.md_checkpoint import output_sizes, read_checkpoint, restore_outputs, write_checkpoint
    from openmm_pqeq.units import FS_TO_PS, NM_TO_ANGSTROM, V_PER_A_TO_V_PER_NM, V_PER_NM_TO_V_PER_A

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    run_identity = {k: v for k, v in vars(args).items() if k not in ("worker", "resume", "summary", "kill_fraction")}
    checkpoint = read_checkpoint(output) if args.resume else None
    if args.resume and checkpoint is None:
        raise SystemExit(f"--resume: no checkpoint in {output}")
    if checkpoint is not None and checkpoint["run"] != json.loads(json.dumps(run_identity)):
        raise SystemExit("--resume: the options differ from the checkpointed run")

    model = load_model(args.model)
    topology, positions = water_box(args.molecules)
    system = create_system(topology, model, charge_groups="molecules", backend="torchforce")
    barostat = openmm.MonteCarloBarostat(args.pressure * unit.bar, args.temperature * unit.kelvin,
                                         args.barostat_interval)
    system.addForce(barostat)
    integrator = openmm.CompoundIntegrator()
    langevin = openmm.LangevinMiddleIntegrator(args.temperature * unit.kelvin, args.friction / unit.picosecond,
                                               args.timestep * unit.femtosecond)
    langevin.setRandomNumberSeed(args.seed)
    integrator.addIntegrator(langevin)
    integrator.addIntegrator(openmm.VerletIntegrator(args.timestep * unit.femtosecond))
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(args.platform))
    if checkpoint is None:
        (output / RECORDS).unlink(missing_ok=True)
        context.setPositions(positions)
        context.setVelocitiesToTemperature(args.temperature * unit.kelvin, args.seed)
        wall_before = 0.0
    else:
        context.loadCheckpoint(checkpoint["openmm_checkpoint"])
        restore_outputs(output, checkpoint["outputs"])
        wall_before = checkpoint["wall_seconds"]

    # the extra evaluation for shell displacements and solver statistics
    setup = atom_setup(topology, None, 0.0, "molecules", None)
    numbers = torch.tensor(setup.numbers)
    groups = torch.tensor(setup.groups)
    mass = sum((a.element.mass for a in topology.atoms()), 0.0 * unit.dalton)

    def density_g_cm3(volume) -> float:
        return (mass / volume / unit.AVOGADRO_CONSTANT_NA).value_in_unit(unit.gram / unit.centimeter**3)

    n_dof = 3 * system.getNumParticles() - 3
    started = time.time()
    nve_energies = []  # (step, PE + KE) of the current NVE segment, kJ/mol
    failures = 0

    def save():
        write_checkpoint(output, context.getStepCount(), context.getStepCount() >= args.steps, run_identity,
                         output_sizes(output, [RECORDS]), context.createCheckpoint(),
                         wall_before + time.time() - started)

    def record(entry: dict) -> None:
        with open(output / RECORDS, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    if checkpoint is None:
        save()
    while context.getStepCount() < args.steps:
        step = context.getStepCount()
        field_on, in_nve = _schedule(step, args)
        context.setParameter(FIELD_PARAMETERS[2], args.field * V_PER_A_TO_V_PER_NM if field_on else 0.0)
        integrator.setCurrentIntegrator(1 if in_nve else 0)
        barostat.setFrequency(0 if in_nve else args.barostat_interval)
        if in_nve and not nve_energies:
            state = context.getState(getEnergy=True)
            nve_energies.append((step, (state.getPotentialEnergy() + state.getKineticEnergy())
                                 .value_in_unit(unit.kilojoule_per_mole)))
        stop = _next_stop(step, args)
        try:
            integrator.step(stop - step)
        except Exception as error:  # a failed solve (or any model error) inside the TorchForce
            failures += 1
            lines = [line for line in str(error).splitlines() if line.strip()]
            if failures > 3:
                raise
            last = read_checkpoint(output)
            context.loadCheckpoint(last["openmm_checkpoint"])
            restore_outputs(output, last["outputs"])
            # new velocities: the restored random-number state would repeat the same failure
            context.setVelocitiesToTemperature(args.temperature * unit.kelvin, args.seed + failures)
            record({"step": step, "failure": lines[-1] if lines else type(error).__name__,
                    "restarted_from_step": last["step"]})
            nve_energies = []
            continue
        step = stop
        state = context.getState(getEnergy=True, getPositions=True)
        if _schedule(step - 1, args)[1]:
            nve_energies.append((step, (state.getPotentialEnergy() + state.getKineticEnergy())
                                 .value_in_unit(unit.kilojoule_per_mole)))
            if step % args.block == 0:  # the segment is complete
                times = (np.array([s for s, _ in nve_energies]) - nve_energies[0][0]) * args.timestep * FS_TO_PS
                totals = np.array([e for _, e in nve_energies])
                slope, intercept = np.polyfit(times, totals, 1)
                record({"step": step, "nve": True, "field_on": field_on, "points": len(totals),
                        "drift_kJ_mol_ps_atom": float(slope / system.getNumParticles()),
                        "scatter_kJ_mol": float(np.std(totals - (slope * times + intercept))),
                        "total_kJ_mol": totals.tolist()})
                nve_energies = []
        if step % args.sample == 0:
            box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
            pos = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            field = torch.tensor([0.0, 0.0, context.getParameter(FIELD_PARAMETERS[2]) * V_PER_NM_TO_V_PER_A],
                                 dtype=torch.float64)
            with torch.no_grad():
                out = model(torch.tensor(pos * NM_TO_ANGSTROM), numbers,
                            torch.tensor(np.asarray(box) * NM_TO_ANGSTROM), field, 0.0, groups, None)
            volume = state.getPeriodicBoxVolume()
            temperature = (2 * state.getKineticEnergy() / (n_dof * unit.MOLAR_GAS_CONSTANT_R)).value_in_unit(unit.kelvin)
            record({"step": step, "atoms": system.getNumParticles(), "field_on": field_on,
                    "nve_part": _schedule(step - 1, args)[1],
                    "T_K": temperature, "volume_nm3": volume.value_in_unit(unit.nanometer**3),
                    "density_g_cm3": density_g_cm3(volume),
                    "potential_kJ_mol": state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
                    "max_shell_displacement_A": float(out["shell_displacements"].norm(dim=1).max()),
                    "solver_cycles": int(out["iterations"]), "converged": bool(out["converged"]),
                    "wall_s": wall_before + time.time() - started})
            print(f"step {step}: T {temperature:.0f} K, density {density_g_cm3(volume):.3f} g/cm3, "
                  f"field {'on' if field_on else 'off'}, {(time.time() - started) / max(step, 1):.3f} s/step",
                  flush=True)
        if step % args.checkpoint_interval == 0 or step % args.block in (0, args.block - args.nve_steps) \
                or step >= args.steps:
            save()


# ----------------------------------------------------------------------------- driver
def _worker_command(args, resume: bool) -> list:
    command = [sys.executable, os.path.abspath(__file__), "--worker"]
    for name, value in vars(args).items():
        if name in ("worker", "resume", "summary", "kill_fraction"):
            continue
        command += [f"--{name.replace('_', '-')}", str(value)]
    return command + (["--resume"] if resume else [])


def summarize(args, kills: list, wall_seconds: float) -> dict:
    from openmm_pqeq.md_checkpoint import read_checkpoint
    from openmm_pqeq.units import FS_TO_PS

    output = Path(args.output)
    lines = [json.loads(line) for line in (output / RECORDS).read_text().splitlines() if line.strip()]
    samples = [r for r in lines if "T_K" in r]
    segments = [r for r in lines if r.get("nve")]
    failures = [r for r in lines if "failure" in r]
    steps = [r["step"] for r in samples]
    expected = list(range(args.sample, args.steps + 1, args.sample))

    def stats(values):
        values = np.asarray(values, dtype=float)
        return {"mean": float(values.mean()), "sd": float(values.std()), "min": float(values.min()),
                "max": float(values.max())} if len(values) else None

    by_field = {}
    for state, flag in (("field_off", False), ("field_on", True)):
        chosen = [r for r in samples if r["field_on"] == flag]
        langevin = [r for r in chosen if not r["nve_part"]]
        drift = [s["drift_kJ_mol_ps_atom"] for s in segments if s["field_on"] == flag]
        by_field[state] = {
            "samples": len(chosen),
            "temperature_K (Langevin part)": stats([r["T_K"] for r in langevin]),
            "density_g_cm3": stats([r["density_g_cm3"] for r in chosen]),
            "max_shell_displacement_A": max((r["max_shell_displacement_A"] for r in chosen), default=None),
            "solver_cycles": stats([r["solver_cycles"] for r in chosen]),
            "nve_segments": len(drift),
            "nve_drift_kJ_mol_ps_atom": stats(drift),
            "nve_scatter_kJ_mol": stats([s["scatter_kJ_mol"] for s in segments if s["field_on"] == flag]),
        }
    blocks = []
    for index in range(-(-args.steps // args.block)):
        chosen = [r for r in samples if index * args.block < r["step"] <= (index + 1) * args.block]
        langevin = [r for r in chosen if not r["nve_part"]]
        if not langevin:
            continue
        half = max(len(langevin) // 2, 1)
        blocks.append({
            "block": index, "field_on": langevin[0]["field_on"],
            "temperature_K_first_half": float(np.mean([r["T_K"] for r in langevin[:half]])),
            "temperature_K_second_half": float(np.mean([r["T_K"] for r in langevin[half:]] or [np.nan])),
            "density_g_cm3_start": chosen[0]["density_g_cm3"], "density_g_cm3_end": chosen[-1]["density_g_cm3"],
            "potential_change_kJ_mol": chosen[-1]["potential_kJ_mol"] - chosen[0]["potential_kJ_mol"],
        })
    checkpoint = read_checkpoint(output)
    import openmm
    import torch

    return {
        "benchmark": "soak_water_md", "model": args.model, "molecules_requested": args.molecules,
        "atoms": samples[0]["atoms"] if samples else None,
        "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "resume", "summary")},
        "finished": bool(checkpoint["finished"]), "steps": checkpoint["step"],
        "simulated_ps": checkpoint["step"] * args.timestep * FS_TO_PS,
        "kills": kills,
        "records_complete": steps == expected,
        "records_duplicated": len(steps) - len(set(steps)),
        "solver_failures": len(failures), "failures": failures,
        "unconverged_samples": sum(not r["converged"] for r in samples),
        "max_shell_displacement_A": max(r["max_shell_displacement_A"] for r in samples),
        "by_field": by_field,
        # per block: the temperature course, the density and the potential energy from its first sample to its
        # last (within a block the field is constant, so the change excludes the jump of -mu.E at the switch)
        "blocks": blocks,
        "md_wall_seconds": checkpoint["wall_seconds"], "driver_wall_seconds": wall_seconds,
        "seconds_per_step": checkpoint["wall_seconds"] / max(checkpoint["step"], 1),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "threads": os.environ.get("OMP_NUM_THREADS"),
                    "load_average_at_end": os.getloadavg(), "openmm": openmm.__version__, "torch": torch.__version__,
                    "openmm_platform": args.platform},
        "date": time.strftime("%Y-%m-%d"),
        "drift_measurement": "slope of a straight-line fit of PE+KE over each NVE segment (velocity Verlet, "
                             "barostat paused), per atom; scatter = sd about the fit",
    }


def run_driver(args) -> None:
    from openmm_pqeq._atomic import atomic_write_text
    from openmm_pqeq.md_checkpoint import read_checkpoint

    output = Path(args.output)
    started = time.time()
    previous = read_checkpoint(output) if output.exists() else None
    kills_file = output / "kills.json"
    kills = json.loads(kills_file.read_text()) if previous is not None and kills_file.exists() else []
    resume = previous is not None and not previous["finished"]
    if previous is not None and previous["finished"]:
        print("the run is complete; writing the summary", flush=True)
    else:
        worker = subprocess.Popen(_worker_command(args, resume))
        killed = bool(kills)  # an earlier driver did the kill
        while worker.poll() is None:
            time.sleep(1.0)
            if killed:
                continue
            checkpoint = read_checkpoint(output)
            if checkpoint is None or checkpoint["step"] < args.kill_fraction * args.steps:
                continue
            records = output / RECORDS
            if records.stat().st_size > checkpoint["outputs"][RECORDS]["bytes"]:  # records past the checkpoint
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait()
                kills.append({"checkpoint_step": checkpoint["step"],
                              "records_dropped_on_resume": records.read_text()
                              [checkpoint["outputs"][RECORDS]["bytes"]:].count("\n")})
                atomic_write_text(kills_file, json.dumps(kills))
                print(f"killed the worker (SIGKILL) after its checkpoint at step {checkpoint['step']}; resuming",
                      flush=True)
                killed = True
                worker = subprocess.Popen(_worker_command(args, True))
        if worker.returncode != 0:
            raise SystemExit(f"the worker failed with exit code {worker.returncode}")
    summary = summarize(args, kills, time.time() - started)
    if args.summary:
        atomic_write_text(args.summary, json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("failures",)}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="water-demo", help="model file or shipped name (default: water-demo)")
    parser.add_argument("--molecules", type=int, default=64, help="water molecules requested (default: 64)")
    parser.add_argument("--steps", type=int, default=20000, help="MD steps in all (default: 20000)")
    parser.add_argument("--block", type=int, default=2000, help="steps per field-off / field-on block (default 2000)")
    parser.add_argument("--nve-steps", type=int, default=200, help="NVE steps at the end of each block (default 200)")
    parser.add_argument("--nve-record", type=int, default=10, help="steps between NVE energy records (default 10)")
    parser.add_argument("--sample", type=int, default=50, help="steps between samples (default 50)")
    parser.add_argument("--checkpoint-interval", type=int, default=500, help="steps between checkpoints (500)")
    parser.add_argument("--field", type=float, default=0.25, help="field along z in the on blocks, V/Å (0.25)")
    parser.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    parser.add_argument("--pressure", type=float, default=1.0, help="bar (default 1)")
    parser.add_argument("--barostat-interval", type=int, default=25, help="steps between MC volume moves (25)")
    parser.add_argument("--friction", type=float, default=1.0, help="Langevin friction, 1/ps (default 1)")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    parser.add_argument("--seed", type=int, default=1, help="velocities and thermostat")
    parser.add_argument("--platform", default="Reference",
                        help="OpenMM platform (default Reference: double precision, for the drift)")
    parser.add_argument("--output", default="runs/soak", help="run folder (checkpoint, records)")
    parser.add_argument("--summary", default=None, help="summary JSON to write (atomically)")
    parser.add_argument("--kill-fraction", type=float, default=0.5,
                        help="kill the worker once its checkpoint is past this fraction of the run (default 0.5)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("block", "nve_steps", "nve_record", "sample", "checkpoint_interval", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.nve_steps < args.block or args.block % args.sample or args.checkpoint_interval % args.sample:
        parser.error("--nve-steps must be shorter than --block; --block and --checkpoint-interval multiples of --sample")
    (run_worker if args.worker else run_driver)(args)


if __name__ == "__main__":
    main()
