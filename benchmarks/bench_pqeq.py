"""Cost of the PQEq charge/shell solve per model call, against N, next to the published dense
algorithm, and (optionally) of a full model step (E0 + PQEq + D3).

Structures: the 2160-atom Li2PO2N cell (``examples/data/Li2PO2N.cif``, elements Li P N O) and its
replications (2×1×1 = 4320, 2×2×1 = 8640, 2×2×2 = 17,280 and 2×2×3 = 25,920 atoms).  PQEq runs
with its defaults: physical mode, periodic, PME above 1000 atoms, tolerances 1e-6 eV/e and 1e-5
eV/Å, float64.  Each size runs in its own process (peak resident memory ``ru_maxrss`` belongs to
that size alone) and times:

- ``cold``: the first call (no previous solution, Verlet list built).
- ``md``: an MD-like trajectory, every atom moving 0.01 Å per step along a fixed random
  direction (a ballistic step: smooth in time, like a 1 fs MD step at ~300 K), warm-started from
  the previous steps (the default quadratic predictor).  ``warm_s`` is the median forward time
  over the steps after the predictor has its three previous solutions (step ≥ 3).
- ``random``: (2160 atoms only) every step adds an independent random 0.01 Å displacement, so
  the predictor cannot extrapolate: the warm start is the previous solution.
- forward (solve and differentiable energy) and backward (forces and virial by autograd) are
  timed separately; ``iterations``/``cg_iterations`` are the solver's counts.

The dense baseline (:mod:`dense_baseline`: (N+1)×(N+1) direct solve, two cycles, the published
tapered kernel) runs on the same structure at the sizes given by ``--dense-sizes``.

    .venv/bin/python benchmarks/bench_pqeq.py                      # all sizes, results/pqeq_cpu.json
    .venv/bin/python benchmarks/bench_pqeq.py --sizes 1x1x1 --steps 6 --output /tmp/p.json
    .venv/bin/python benchmarks/bench_pqeq.py --model               # add E0 + PQEq + D3 steps

GPU mode (``--device cuda``, what ``benchmarks/gpu/check.sh`` runs): the same stages on the GPU
(tensors and modules there, ``torch.cuda.synchronize()`` around every timing), the dense baseline
on the same GPU, the pure-PyTorch fallback beside the CUDA operators, and the peak GPU memory
(``torch.cuda.max_memory_allocated``) of each size; the report names the GPU.

    .venv/bin/python benchmarks/bench_pqeq.py --device cuda --sizes 1x1x1 2x2x3 --fallback \
        --model --model-sizes 1x1x1 2x2x3 --output benchmarks/results/pqeq_gpu.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ELEMENTS = ["Li", "P", "N", "O"]
DEFAULT_SIZES = ["1x1x1", "2x1x1", "2x2x1", "2x2x2", "2x2x3"]


def structure_path() -> Path:
    path = ROOT / "examples" / "data" / "Li2PO2N.cif"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    return path


#: Structure file replicated by every stage (``--structure``; default: the Li2PO2N cell).
STRUCTURE = {"path": None}


def load_structure(reps: str, device: str = "cpu"):
    import ase.io
    import numpy as np
    import torch

    atoms = ase.io.read(STRUCTURE["path"] or structure_path()).repeat(tuple(int(x) for x in reps.split("x")))
    return (torch.tensor(atoms.positions, device=device), torch.tensor(atoms.numbers, device=device),
            torch.tensor(np.array(atoms.cell), device=device))


def clock(device) -> float:
    """``time.perf_counter()`` once the queued GPU work (if any) has finished."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def gpu_info(device) -> dict:
    """Name, memory and driver of the GPU (empty for the CPU)."""
    import torch

    if torch.device(device).type != "cuda":
        return {}
    props = torch.cuda.get_device_properties(torch.device(device))
    info = {"gpu": props.name, "gpu_memory_GB": props.total_memory / 1e9,
            "compute_capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=False).stdout.strip()
        info["nvidia_smi"] = out
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "load_average": list(os.getloadavg())}


def new_report(title: str, argv, device: str = "cpu", **fields) -> dict:
    """Header of a benchmark report: title, UTC date, machine (and GPU), device, command line,
    then ``fields``."""
    host = machine()
    host.update(gpu_info(device))
    return {"benchmark": title, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": host, "device": str(device),
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]), **fields}


def write_report(report: dict, started: float, output: Path) -> dict:
    """Add the end load average and wall time to ``report`` and write it to ``output`` (JSON)."""
    report["machine"]["load_average_end"] = list(os.getloadavg())
    report["wall_s"] = time.time() - started
    output.parent.mkdir(parents=True, exist_ok=True)
    from openmm_pqeq._atomic import atomic_write_text

    atomic_write_text(output, json.dumps(report, indent=1) + "\n")
    print(f"wrote {output}")
    return report


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB (Linux)


def peak_memory(device) -> dict:
    """Peak resident memory of this process and, on a GPU, peak allocated GPU memory (GB)."""
    import torch

    out = {"peak_memory_GB": _peak_gb()}
    if torch.device(device).type == "cuda":
        out["peak_gpu_memory_GB"] = torch.cuda.max_memory_allocated() / 1e9
    return out


def _trajectory_step(module, pos, num, cell, field, step, velocity, noise, groups=None):
    import torch

    x = (pos + step * velocity + noise).requires_grad_(True)
    t0 = clock(pos.device)
    out = module(x, num, cell, field, groups=groups)
    t1 = clock(pos.device)
    out["energy"].backward()
    t2 = clock(pos.device)
    return {"step": step, "forward_s": t1 - t0, "backward_s": t2 - t1, "iterations": int(out["iterations"]),
            "cg_iterations": int(out.get("cg_iterations", torch.tensor(-1))),
            "charge_residual": float(out.get("charge_residual", torch.tensor(float("nan")))),
            "shell_residual": float(out.get("shell_residual", torch.tensor(float("nan"))))}


def run_pqeq(reps: str, steps: int, random_steps: int, use_custom_ops, device: str = "cpu") -> dict:
    import torch

    from openmm_pqeq.electrostatics import PQEq
    from openmm_pqeq.electrostatics.coulomb import KIND_PME

    torch.set_default_dtype(torch.float64)
    pos, num, cell = load_structure(reps, device)
    field = torch.zeros(3, device=device)
    module = PQEq(ELEMENTS, use_custom_ops=use_custom_ops).to(device)
    gen = torch.Generator().manual_seed(0)
    direction = torch.randn(pos.shape, generator=gen).to(device)
    velocity = 0.01 * direction / direction.norm(dim=1, keepdim=True)
    result = {"atoms": int(pos.shape[0]), "replication": reps, "uses_custom_ops": module.uses_custom_ops,
              "reciprocal": "pme" if module.coulomb.kind(pos.shape[0], cell) == KIND_PME else "ewald",
              "real_space_cutoff_A": module.cutoff, "neighbor_skin_A": module.neighbor_skin}
    md = [_trajectory_step(module, pos, num, cell, field, s, velocity, 0.0) for s in range(steps)]
    result["pairs_in_verlet_list"] = int(module.verlet.edge_i.shape[0])
    result["cold"] = md[0]
    result["md"] = md
    warm = [s["forward_s"] for s in md[3:]] or [s["forward_s"] for s in md[1:]]
    result["warm_s"] = statistics.median(warm)
    result["warm_forward_backward_s"] = statistics.median(
        [s["forward_s"] + s["backward_s"] for s in (md[3:] or md[1:])])
    if random_steps > 0:
        module.reset()
        noise = torch.zeros_like(pos)
        walk = []
        for s in range(random_steps):
            kick = torch.randn(pos.shape, generator=gen).to(device)
            noise = noise + 0.01 * kick / kick.norm(dim=1, keepdim=True)
            walk.append(_trajectory_step(module, pos, num, cell, field, 0, velocity, noise))
        result["random"] = walk
        result["random_warm_s"] = statistics.median([s["forward_s"] for s in walk[1:]])
    result.update(peak_memory(device))
    return result


def run_dense(reps: str, device: str = "cpu") -> dict:
    import torch

    sys.path.insert(0, str(HERE))
    from dense_baseline import dense_two_cycle

    torch.set_default_dtype(torch.float64)
    pos, num, cell = load_structure(reps, device)
    if torch.device(device).type == "cuda":
        dense_two_cycle(pos, num, cell)  # first call: CUDA/cuSOLVER initialization, not timed
        torch.cuda.reset_peak_memory_stats()
    out = dense_two_cycle(pos, num, cell)
    charges = {str(z): float(out["charges"][num == z].mean()) for z in (3, 15, 7, 8)}
    return {"atoms": int(pos.shape[0]), "replication": reps, "seconds": out["seconds"],
            "mean_charges_by_Z": charges, **peak_memory(device)}


def time_terms(model, pos, num, cell, calls: int, groups=None):
    """Forward + backward time of each term of ``model`` (E0, PQEq, D3) per call, in an MD-like
    warm-started sequence (every atom moves 0.01 Å per call along a fixed random direction).
    Returns (per-call records, medians after the predictor is primed, shares of the total)."""
    import torch

    device = pos.device
    field = torch.zeros(3, device=device)
    gen = torch.Generator().manual_seed(0)
    direction = torch.randn(pos.shape, generator=gen).to(device)
    velocity = 0.01 * direction / direction.norm(dim=1, keepdim=True)
    e0_dtype = model.e0.per_species_shift.dtype
    records = []
    for s in range(calls):
        # each term on its own (the model sums them); PQEq warm-starts as in MD
        x = (pos + s * velocity).requires_grad_(True)
        times = {"call": s}
        t = clock(device)
        model.e0(x.to(e0_dtype), num, cell.to(e0_dtype)).sum(dtype=torch.float64).backward()
        times["e0_s"] = clock(device) - t
        t = clock(device)
        out = model.pqeq(x, num, cell, field, groups=groups)
        out["energy"].backward()
        times["pqeq_s"] = clock(device) - t
        times["pqeq_cycles"] = int(out["iterations"])
        t = clock(device)
        model.d3(x, num, cell).backward()
        times["d3_s"] = clock(device) - t
        times["total_s"] = times["e0_s"] + times["pqeq_s"] + times["d3_s"]
        records.append(times)
    warm = records[3:] or records[1:] or records
    keys = ("e0_s", "pqeq_s", "d3_s", "total_s")
    median = {k: statistics.median([r[k] for r in warm]) for k in keys}
    share = {k.replace("_s", "_share"): median[k] / median["total_s"] for k in keys[:3]}
    return records, median, share


def run_model(reps: str, steps: int, device: str = "cpu", e0_preset: str = "published") -> dict:
    """Full model step (E0 with the published preset, random weights, float32; PQEq; D3): each
    term's forward + backward, and their sum; and one step of the whole model (energy, then
    forces and virial by one backward pass, as a TorchForce or the python backend runs it)."""
    import torch

    from openmm_pqeq.model import build_model, energy_forces_stress

    torch.set_default_dtype(torch.float32)  # the E0 network in float32, as built by default
    model = build_model({"elements": ELEMENTS, "e0": {"preset": e0_preset}, "pqeq": {}, "d3": {}}).to(device)
    torch.set_default_dtype(torch.float64)
    pos, num, cell = load_structure(reps, device)
    records, median, share = time_terms(model, pos, num, cell, steps)
    model.pqeq.reset()
    whole = []
    field = torch.zeros(3, device=device)
    for s in range(steps):
        t = clock(device)
        energy_forces_stress(model, pos + 0.01 * s, num, cell, field)
        whole.append(clock(device) - t)
    warm = whole[3:] or whole[1:] or whole
    return {"atoms": int(pos.shape[0]), "replication": reps, "e0_preset": e0_preset, "steps": records,
            "median": median, "share": share, "whole_step_s": whole, "whole_step_median_s": statistics.median(warm),
            "e0_dtype": str(model.e0.per_species_shift.dtype), **peak_memory(device)}


def _subprocess(args: list, timeout: float, script: str = __file__) -> dict:
    """Run ``script`` (default: this file) with ``args`` in a new process; its last stdout line
    (JSON), or ``{"error": ...}``.  ``BENCH_DEADLINE`` (Unix time, set by benchmarks/gpu/check.sh)
    caps the time limit; past it the stage is skipped."""
    cmd = [sys.executable, str(Path(script).resolve()), *args]
    stage = " ".join(args[1:3]) if args[:1] == ["--single"] else " ".join(args)
    left = float(os.environ.get("BENCH_DEADLINE", "inf")) - time.time()
    if left < 10:
        return {"error": "skipped: the time budget of the run is spent", "stage": stage}
    timeout = min(timeout, left)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "stage": stage}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}",
                "stage": stage}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, help="replications of the 2160-atom cell")
    parser.add_argument("--steps", type=int, default=8, help="MD-like steps per size (first is cold)")
    parser.add_argument("--large-steps", type=int, default=6, help="steps for sizes above 10,000 atoms")
    parser.add_argument("--random-steps", type=int, default=6, help="random-walk steps at 2160 atoms")
    parser.add_argument("--dense-sizes", nargs="*", default=["1x1x1"], help="sizes for the dense baseline")
    parser.add_argument("--fallback", action="store_true", help="also time the pure-PyTorch path at 2160 atoms")
    parser.add_argument("--model", action="store_true", help="also time full model steps (E0 + PQEq + D3)")
    parser.add_argument("--model-sizes", nargs="*", default=["1x1x1"])
    parser.add_argument("--model-steps", type=int, default=3, help="full model steps per size (first is cold)")
    parser.add_argument("--e0-preset", default="published", help="E0 preset of the model steps (default: published)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    parser.add_argument("--structure", default=None,
                        help="structure file of Li, P, N, O atoms to replicate (default: the 2160-atom Li2PO2N cell)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per size and stage")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "pqeq_cpu.json")
    parser.add_argument("--single", nargs=2, metavar=("STAGE", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--ops", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    STRUCTURE["path"] = args.structure

    if args.single:
        stage, reps = args.single
        ops = {"auto": None, "on": True, "off": False}[args.ops]
        if stage == "pqeq":
            n_steps = args.large_steps if reps in ("2x2x2", "2x2x3") else args.steps
            out = run_pqeq(reps, n_steps, args.random_steps if reps == "1x1x1" else 0, ops, args.device)
        elif stage == "dense":
            out = run_dense(reps, args.device)
        else:
            out = run_model(reps, args.steps, args.device, args.e0_preset)
        print(json.dumps(out))
        return out

    started = time.time()
    report = new_report("PQEq solve per model call (benchmarks/bench_pqeq.py)", argv, args.device,
                        pqeq=[], dense_baseline=[], fallback=None, model=[])
    device = ["--device", args.device] + (["--structure", args.structure] if args.structure else [])
    common = ["--steps", str(args.steps), "--large-steps", str(args.large_steps),
              "--random-steps", str(args.random_steps), *device]
    for reps in args.dense_sizes:
        print(f"dense baseline {reps} ...", flush=True)
        report["dense_baseline"].append(_subprocess(["--single", "dense", reps, *device], args.timeout))
    for reps in args.sizes:
        print(f"pqeq {reps} ...", flush=True)
        report["pqeq"].append(_subprocess(["--single", "pqeq", reps, *common], args.timeout))
    if args.fallback:
        print("pqeq 1x1x1 pure PyTorch ...", flush=True)
        report["fallback"] = _subprocess(["--single", "pqeq", "1x1x1", "--ops", "off", "--steps", "5",
                                          "--random-steps", "0", *device], args.timeout)
    if args.model:
        for reps in args.model_sizes:
            print(f"model {reps} ...", flush=True)
            report["model"].append(_subprocess(["--single", "model", reps, "--steps", str(args.model_steps),
                                                "--e0-preset", args.e0_preset, *device], args.timeout))
    return write_report(report, started, args.output)


if __name__ == "__main__":
    main()
