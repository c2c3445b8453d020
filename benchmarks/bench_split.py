"""Cost of split charge transfer against global transfer, measured in the same run.

For each Li2PO2N size (the 2160-atom cell and its replications; ``bench_pqeq.py`` has the
global-only scaling) one process runs the same MD-like warm-started trajectory (every atom moves
0.01 Å per step along a fixed random direction) with ``charge_transfer="global"`` and with
``"split"`` (default bond options: bonds within 1.5 × the covalent-radius sum, κ⁰ = 5 eV/e²),
alternating the two models step by step so that load changes on a shared machine hit both alike.
Timed: forward (solve + energy) and backward (forces and virial by autograd); ``warm`` = median
over the steps after the predictor has its three previous solutions.  The ratio split/global is
the headline.  ``--shaped`` adds a third model in the same alternation, split with the two bond
shapes of the fitted ``pqeq-split`` switched on at the same κ⁰ (a length slope of 3/Å and bonded
shell springs c = ±0.1 on every directed pair): their own cost, as the ratio to plain split.

    .venv/bin/python benchmarks/bench_split.py                          # results/split_cpu.json
    .venv/bin/python benchmarks/bench_split.py --sizes 1x1x1 --steps 6 --output /tmp/s.json
    .venv/bin/python benchmarks/bench_split.py --sizes 1x1x1 --shaped --output results/split_shapes_cpu.json

Run from a worktree with ``PYTHONPATH=.`` (the script's folder, not the current one, is on the
import path).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ("global", "split")


#: bond shapes of the ``--shaped`` model: length slope (1/Å) and bonded shell coefficients
SHAPED_SLOPE = 3.0
SHAPED_SHELL = 0.1


def shaped_transfer(elements) -> dict:
    """Split-charge options with a length slope and a shell coefficient of +0.1 (neighbour heavier)
    or −0.1 on every directed pair of ``elements`` (symbols)."""
    from openmm_pqeq.elements import atomic_number

    shell = {f"{a}:{b}": (SHAPED_SHELL if atomic_number(b) > atomic_number(a) else -SHAPED_SHELL)
             for a in elements for b in elements}
    return {"length_slope": SHAPED_SLOPE, "shell_bonds": shell}


def run_size(reps: str, steps: int, shaped: bool = False) -> dict:
    import torch

    sys.path.insert(0, str(HERE))
    from bench_pqeq import ELEMENTS, _peak_gb, _trajectory_step, load_structure

    from openmm_pqeq.electrostatics import PQEq

    torch.set_default_dtype(torch.float64)
    pos, num, cell = load_structure(reps)
    field = torch.zeros(3)
    gen = torch.Generator().manual_seed(0)
    direction = torch.randn(pos.shape, generator=gen)
    velocity = 0.01 * direction / direction.norm(dim=1, keepdim=True)
    modules = {m: PQEq(ELEMENTS, charge_transfer=m) for m in MODELS}
    models = MODELS
    if shaped:
        modules["split-shaped"] = PQEq(ELEMENTS, charge_transfer="split", transfer=shaped_transfer(ELEMENTS))
        models = MODELS + ("split-shaped",)
    records = {m: [] for m in models}
    for step in range(steps):
        for m in models:
            records[m].append(_trajectory_step(modules[m], pos, num, cell, field, step, velocity, 0.0))
    out = {"atoms": int(pos.shape[0]), "replication": reps, "uses_custom_ops": modules["global"].uses_custom_ops}
    with torch.no_grad():
        bonds = modules["split"](pos, num, cell, field)["bonds"].shape[1]
    out["bonds"] = int(bonds)
    for m in models:
        warm = records[m][3:] or records[m][1:]
        out[m] = {"md": records[m], "warm_forward_s": statistics.median([r["forward_s"] for r in warm]),
                  "warm_forward_backward_s": statistics.median([r["forward_s"] + r["backward_s"] for r in warm]),
                  "warm_cg_iterations": statistics.median([r["cg_iterations"] for r in warm]),
                  "warm_cycles": statistics.median([r["iterations"] for r in warm]),
                  "cold_forward_s": records[m][0]["forward_s"]}
    out["ratio_warm_forward"] = out["split"]["warm_forward_s"] / out["global"]["warm_forward_s"]
    out["ratio_warm_forward_backward"] = (out["split"]["warm_forward_backward_s"]
                                          / out["global"]["warm_forward_backward_s"])
    out["ratio_cold_forward"] = out["split"]["cold_forward_s"] / out["global"]["cold_forward_s"]
    if shaped:
        out["ratio_shaped_to_split_warm_forward_backward"] = (out["split-shaped"]["warm_forward_backward_s"]
                                                              / out["split"]["warm_forward_backward_s"])
    out["peak_memory_GB"] = _peak_gb()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1x1x1", "2x2x3"], help="Li2PO2N replications")
    parser.add_argument("--steps", type=int, default=8, help="trajectory steps per model")
    parser.add_argument("--output", default=str(HERE / "results" / "split_cpu.json"))
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed per size (one process each); a size over it is recorded as timed out")
    parser.add_argument("--shaped", action="store_true",
                        help="also time split with a length slope and bonded shell springs (ratio to plain split)")
    parser.add_argument("--single", nargs=2, metavar=("REPS", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:
        print(json.dumps(run_size(args.single[0], int(args.single[1]), args.shaped)))
        return 0
    sys.path.insert(0, str(HERE))
    from bench_pqeq import new_report, write_report

    started = time.time()
    import openmm_pqeq

    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = new_report("PQEq split vs global charge transfer (same run, alternating steps)", argv,
                        structure="Li2PO2N (examples/data/Li2PO2N.cif) replications",
                        code={"openmm_pqeq": str(Path(openmm_pqeq.__file__).parent), "git_commit": commit}, sizes=[])
    for reps in args.sizes:
        try:
            line = subprocess.run([sys.executable, __file__, "--single", reps, str(args.steps)]
                                  + (["--shaped"] if args.shaped else []), check=True,
                                  capture_output=True, text=True, timeout=args.timeout).stdout.strip().splitlines()[-1]
        except subprocess.TimeoutExpired:
            report["sizes"].append({"replication": reps, "timed_out_after_s": args.timeout})
            print(f"{reps}: not finished within {args.timeout} s", flush=True)
            write_report(report, started, Path(args.output))
            continue
        result = json.loads(line)
        report["sizes"].append(result)
        write_report(report, started, Path(args.output))  # after each size: a later timeout keeps it
        print(f"{result['atoms']:6d} atoms, {result['bonds']} bonds: warm forward global "
              f"{result['global']['warm_forward_s']:.3f} s, split {result['split']['warm_forward_s']:.3f} s "
              f"(x{result['ratio_warm_forward']:.2f}); forward+backward x{result['ratio_warm_forward_backward']:.2f}; "
              f"CG {result['global']['warm_cg_iterations']} vs {result['split']['warm_cg_iterations']}"
              + (f"; shaped/split forward+backward x{result['ratio_shaped_to_split_warm_forward_backward']:.2f} "
                 f"(CG {result['split-shaped']['warm_cg_iterations']})" if args.shaped else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
