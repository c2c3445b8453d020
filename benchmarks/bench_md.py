"""Cost of an MD step in OpenMM with the full model (E0 + PQEq + D3), and of each term per
model call, against the size of a periodic water box.

For each box (``--molecules``, OpenMM's TIP3P box cut to a cube at 1 g/cm³), in its own process
(so that the peak resident memory ``ru_maxrss`` belongs to that size alone):

- ``terms``: one model call split into its terms, each forward + backward (forces and virial by
  autograd) on its own, in an MD-like warm-started sequence (every atom moves 0.01 Å per call
  along a fixed random direction): E0, PQEq (solve + energy + gradient), D3, their sum and
  shares (median over the calls after the warm-start predictor is primed);
- ``openmm``: seconds per LangevinMiddleIntegrator step (0.5 fs, 300 K) of an OpenMM System made
  by :func:`openmm_pqeq.integrations.system.create_system` (one charge group per molecule), for
  each backend (``torchforce``: openmm-torch TorchForce with the scripted model;
  ``python``: ``openmm.PythonForce``), after ``--warmup`` steps.

The model is :func:`openmm_pqeq.model.build_model` with the ``small`` E0 preset (random
weights: the cost does not depend on their values), PQEq physical mode (reaxnet parameters) and
D3 (PBE, zero damping), or a saved model with ``--model``.

    .venv/bin/python benchmarks/bench_md.py                       # results/md_cpu.json
    .venv/bin/python benchmarks/bench_md.py --molecules 64 --steps 5 --output /tmp/md.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_pqeq import _peak_gb, _subprocess, new_report, time_terms, write_report  # noqa: E402

DEFAULT_MOLECULES = [64, 216, 512]


def _model(path):
    from openmm_pqeq.io import load_model
    from openmm_pqeq.model import build_model

    if path:
        return load_model(path)
    return build_model({"elements": ["H", "O"], "e0": {"preset": "small"}, "pqeq": {}, "d3": {}})


def run_terms(n_molecules: int, calls: int, model_path) -> dict:
    """Per-term forward + backward times of one model call on the water box."""
    import numpy as np
    import torch
    from openmm import unit

    from openmm_pqeq.md import water_box

    torch.set_default_dtype(torch.float64)
    topology, positions = water_box(n_molecules)
    pos = torch.tensor(np.asarray(positions.value_in_unit(unit.angstrom)))
    num = torch.tensor([a.element.atomic_number for a in topology.atoms()])
    cell = torch.tensor(np.asarray(topology.getPeriodicBoxVectors().value_in_unit(unit.angstrom)))
    groups = torch.tensor([a.residue.index for a in topology.atoms()])
    model = _model(model_path)
    records, median, share = time_terms(model, pos, num, cell, calls, groups)
    return {"molecules": n_molecules, "atoms": int(pos.shape[0]), "calls": records, "median": median,
            "share": share, "pqeq_uses_custom_ops": bool(model.pqeq.uses_custom_ops),
            "peak_memory_GB": _peak_gb()}


def run_openmm(n_molecules: int, steps: int, warmup: int, backend: str, model_path) -> dict:
    """Seconds per OpenMM Langevin step with the model as the only force."""
    import openmm
    from openmm import app, unit

    from openmm_pqeq.integrations.system import create_system
    from openmm_pqeq.md import water_box

    topology, positions = water_box(n_molecules)
    system = create_system(topology, _model(model_path), charge_groups="molecules", backend=backend)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 5 / unit.picosecond, 0.5 * unit.femtosecond)
    integrator.setRandomNumberSeed(1)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("CPU"))
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    simulation.step(warmup)
    per_step = []
    for _ in range(steps):
        t = time.perf_counter()
        simulation.step(1)
        per_step.append(time.perf_counter() - t)
    return {"molecules": n_molecules, "atoms": system.getNumParticles(), "backend": backend,
            "warmup_steps": warmup, "seconds_per_step": per_step, "median_s": statistics.median(per_step),
            "peak_memory_GB": _peak_gb()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecules", nargs="+", type=int, default=DEFAULT_MOLECULES, help="water box sizes")
    parser.add_argument("--calls", type=int, default=6, help="model calls per size for the per-term split")
    parser.add_argument("--steps", type=int, default=8, help="timed OpenMM steps per size and backend")
    parser.add_argument("--warmup", type=int, default=3, help="OpenMM steps before timing")
    parser.add_argument("--backends", nargs="+", default=["torchforce", "python"], choices=["torchforce", "python"])
    parser.add_argument("--model", default=None, help="saved model (path or shipped name); default: random small")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per size and stage")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "md_cpu.json")
    parser.add_argument("--single", nargs=3, metavar=("STAGE", "MOLECULES", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.single:
        stage, molecules, backend = args.single
        if stage == "terms":
            out = run_terms(int(molecules), args.calls, args.model)
        else:
            out = run_openmm(int(molecules), args.steps, args.warmup, backend, args.model)
        print(json.dumps(out))
        return out

    started = time.time()
    report = new_report("MD step in OpenMM and model call per term (benchmarks/bench_md.py)", argv,
                        model=args.model or "random weights, E0 preset small, PQEq physical (reaxnet), D3 pbe zero",
                        terms=[], openmm=[])
    common = ["--calls", str(args.calls), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.model:
        common += ["--model", args.model]
    for molecules in args.molecules:
        print(f"terms {molecules} molecules ...", flush=True)
        report["terms"].append(_subprocess(["--single", "terms", str(molecules), "-", *common], args.timeout, __file__))
        for backend in args.backends:
            print(f"openmm {backend} {molecules} molecules ...", flush=True)
            report["openmm"].append(_subprocess(["--single", "openmm", str(molecules), backend, *common],
                                                args.timeout, __file__))
    return write_report(report, started, args.output)


if __name__ == "__main__":
    main()
