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

GPU mode (``--device cuda``): the model and the per-term split on the GPU, OpenMM on its CUDA
platform when it has one; ``openmm`` rows give seconds per step and ns/day (0.5 fs steps), and
peak GPU memory.  The one-shot check (``benchmarks/gpu/check.sh``) runs the water-demo model with
the ``python`` backend (the TorchForce CUDA wheel needs the torch it was built with):

    .venv/bin/python benchmarks/bench_md.py --device cuda --model water-demo --molecules 245 2000 \
        --backends python --output benchmarks/results/md_gpu.json
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

from bench_pqeq import _subprocess, clock, new_report, peak_memory, time_terms, write_report  # noqa: E402

#: MD time step of the OpenMM rows (fs).
TIMESTEP_FS = 0.5

DEFAULT_MOLECULES = [64, 216, 512]


def _model(path):
    from openmm_pqeq.io import load_model
    from openmm_pqeq.model import build_model

    if path:
        return load_model(path)
    return build_model({"elements": ["H", "O"], "e0": {"preset": "small"}, "pqeq": {}, "d3": {}})


def run_terms(n_molecules: int, calls: int, model_path, device: str = "cpu") -> dict:
    """Per-term forward + backward times of one model call on the water box."""
    import numpy as np
    import torch
    from openmm import unit

    from openmm_pqeq.md import water_box

    torch.set_default_dtype(torch.float64)
    topology, positions = water_box(n_molecules)
    pos = torch.tensor(np.asarray(positions.value_in_unit(unit.angstrom)), device=device)
    num = torch.tensor([a.element.atomic_number for a in topology.atoms()], device=device)
    cell = torch.tensor(np.asarray(topology.getPeriodicBoxVectors().value_in_unit(unit.angstrom)), device=device)
    groups = torch.tensor([a.residue.index for a in topology.atoms()], device=device)
    model = _model(model_path).to(device)
    records, median, share = time_terms(model, pos, num, cell, calls, groups)
    return {"molecules": n_molecules, "atoms": int(pos.shape[0]), "calls": records, "median": median,
            "share": share, "pqeq_uses_custom_ops": bool(model.pqeq.uses_custom_ops), **peak_memory(device)}


def run_openmm(n_molecules: int, steps: int, warmup: int, backend: str, model_path, device: str = "cpu") -> dict:
    """Seconds per OpenMM Langevin step (and ns/day) with the model as the only force; on a GPU
    (``device`` cuda) OpenMM runs its CUDA platform when it has one and the python backend runs
    the model on the GPU (a TorchForce runs on the platform's device)."""
    import openmm
    import torch
    from openmm import app, unit

    from openmm_pqeq.integrations.system import create_system
    from openmm_pqeq.md import openmm_platform, water_box

    gpu = torch.device(device).type == "cuda"
    topology, positions = water_box(n_molecules)
    options = {"device": device} if backend == "python" else {}
    system = create_system(topology, _model(model_path), charge_groups="molecules", backend=backend, **options)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 5 / unit.picosecond,
                                                 TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(1)
    platform = openmm_platform("auto" if gpu else "CPU")
    simulation = app.Simulation(topology, system, integrator, platform)
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    simulation.step(warmup)
    per_step = []
    for _ in range(steps):
        t = clock(device)
        simulation.step(1)
        per_step.append(clock(device) - t)
    median = statistics.median(per_step)
    return {"molecules": n_molecules, "atoms": system.getNumParticles(), "backend": backend,
            "platform": platform.getName(), "device": device, "warmup_steps": warmup, "timestep_fs": TIMESTEP_FS,
            "seconds_per_step": per_step, "median_s": median,
            "ns_per_day": 86400.0 / median * TIMESTEP_FS * 1e-6, **peak_memory(device)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecules", nargs="+", type=int, default=DEFAULT_MOLECULES, help="water box sizes")
    parser.add_argument("--calls", type=int, default=6, help="model calls per size for the per-term split")
    parser.add_argument("--steps", type=int, default=8, help="timed OpenMM steps per size and backend")
    parser.add_argument("--warmup", type=int, default=3, help="OpenMM steps before timing")
    parser.add_argument("--backends", nargs="+", default=["torchforce", "python"], choices=["torchforce", "python"])
    parser.add_argument("--model", default=None, help="saved model (path or shipped name); default: random small")
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per size and stage")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "md_cpu.json")
    parser.add_argument("--single", nargs=3, metavar=("STAGE", "MOLECULES", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.single:
        stage, molecules, backend = args.single
        if stage == "terms":
            out = run_terms(int(molecules), args.calls, args.model, args.device)
        else:
            out = run_openmm(int(molecules), args.steps, args.warmup, backend, args.model, args.device)
        print(json.dumps(out))
        return out

    started = time.time()
    report = new_report("MD step in OpenMM and model call per term (benchmarks/bench_md.py)", argv, args.device,
                        model=args.model or "random weights, E0 preset small, PQEq physical (reaxnet), D3 pbe zero",
                        terms=[], openmm=[])
    common = ["--calls", str(args.calls), "--steps", str(args.steps), "--warmup", str(args.warmup),
              "--device", args.device]
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
