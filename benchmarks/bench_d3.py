"""Cost of D3 dispersion (energy + forces by autograd) against the number of atoms, periodic.

The test system is a liquid-like box at the atom density of water (0.1 atoms/Å³, O:H = 1:2):
atoms on a cubic grid, each displaced at random by up to 0.4 Å.  Each size runs in its own
process, so the peak resident memory (``ru_maxrss``) belongs to that size alone.  The module is
the published setting: PBE, zero damping, 12.5 Å cutoffs, smooth switch.

    .venv/bin/python benchmarks/bench_d3.py             # writes benchmarks/results/d3_cpu.json
    .venv/bin/python benchmarks/bench_d3.py --sizes 100 1000 --repeats 2 --output /tmp/d3.json
    .venv/bin/python benchmarks/bench_d3.py --threads 1         # one thread (shared machines)

The JSON holds the machine (CPU model, cores, torch threads, load average), the date, and per
size: atoms, pairs within the cutoff, seconds per call (min and mean over repeats, and the
neighbour-list share), peak memory, and the fitted exponent of time ∝ N^k over N ≥ 1000.

Peak memory is the resident set after a warm-up and the timed calls.  The tensors autograd keeps
for the backward pass take about 0.4 kB per pair; the rest is memory glibc keeps for reuse after
freeing (with ``MALLOC_MMAP_THRESHOLD_=131072`` the peak drops to about that, but each call
takes about twice as long, spent in page faults).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

DENSITY = 0.1  # atoms per Å³ (liquid water)
DEFAULT_SIZES = [100, 300, 1000, 3000, 10000, 20000]


def liquid_box(n_atoms: int, seed: int = 0):
    """Positions ``(N, 3)`` Å, atomic numbers ``(N,)`` and cubic cell ``(3, 3)`` Å."""
    import torch

    side = math.ceil(n_atoms ** (1.0 / 3.0))
    length = (n_atoms / DENSITY) ** (1.0 / 3.0)
    spacing = length / side
    grid = torch.stack(
        torch.meshgrid(*(torch.arange(side, dtype=torch.float64),) * 3, indexing="ij"), dim=-1
    ).reshape(-1, 3)[:n_atoms]
    gen = torch.Generator().manual_seed(seed)
    jitter = torch.rand(n_atoms, 3, generator=gen, dtype=torch.float64) - 0.5
    positions = (grid + 0.5) * spacing + 0.8 * jitter
    numbers = torch.where(torch.arange(n_atoms) % 3 == 0, 8, 1)
    cell = torch.eye(3, dtype=torch.float64) * length
    return positions, numbers, cell


def measure(n_atoms: int, repeats: int, threads: int) -> dict:
    """Time energy + forces for one size (run inside a fresh process)."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)

    from openmm_pqeq.dispersion import D3Dispersion

    d3 = D3Dispersion()
    positions, numbers, cell = liquid_box(n_atoms)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def energy_and_forces():
        pos = positions.clone().requires_grad_(True)
        energy = d3(pos, numbers, cell)
        (grad,) = torch.autograd.grad(energy, pos)
        return energy, -grad

    nl_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        n_pairs = int(d3.neighbors(positions, cell)[0].shape[0])
        nl_times.append(time.perf_counter() - start)
    energy, _ = energy_and_forces()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        energy_and_forces()
        times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n_atoms": n_atoms,
        "n_pairs": n_pairs,
        "energy_ev_per_atom": energy.item() / n_atoms,
        "seconds_per_call_min": min(times),
        "seconds_per_call_mean": sum(times) / len(times),
        "neighbor_list_seconds_min": min(nl_times),
        "microseconds_per_atom": 1e6 * min(times) / n_atoms,
        "peak_rss_mb": peak_mb,
        "peak_rss_above_setup_mb": peak_mb - baseline_mb,
        "peak_rss_above_setup_bytes_per_pair": (peak_mb - baseline_mb) * 1024**2 / n_pairs,
        "repeats": repeats,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "d3_cpu.json"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one is not None:
        print(json.dumps(measure(args.one, args.repeats, args.threads)))
        return

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    results = []
    for n_atoms in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n_atoms), "--repeats", str(args.repeats),
             "--threads", str(args.threads)],
            check=True, capture_output=True, text=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(row)
        print(
            f"{row['n_atoms']:>7d} atoms {row['n_pairs']:>10d} pairs "
            f"{row['seconds_per_call_min']:9.4f} s/call "
            f"(neighbour list {row['neighbor_list_seconds_min']:.4f} s) "
            f"{row['microseconds_per_atom']:7.1f} µs/atom  peak {row['peak_rss_mb']:8.1f} MB "
            f"({row['peak_rss_above_setup_bytes_per_pair']:.0f} B/pair)",
            flush=True,
        )

    large = [r for r in results if r["n_atoms"] >= 1000]
    exponent = None
    if len(large) >= 2:
        xs = [math.log(r["n_atoms"]) for r in large]
        ys = [math.log(r["seconds_per_call_min"]) for r in large]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        exponent = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        print(f"time ∝ N^{exponent:.2f} for N ≥ 1000")

    report = {
        "benchmark": "D3Dispersion energy + forces (autograd), periodic liquid-like box",
        "command": "python benchmarks/bench_d3.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_model": cpu_model(),
            "logical_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1min_at_end": os.getloadavg()[0],
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "model": "D3Dispersion(functional='pbe', damping='zero', cutoff=12.5, cn_cutoff=12.5, "
        "hard_cutoff=False, switch_width=2.0), float64",
        "system": f"cubic box, {DENSITY} atoms/Å³, O:H = 1:2, jittered grid",
        "results": results,
        "scaling_exponent_n_ge_1000": exponent,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    from openmm_pqeq._atomic import atomic_write_text

    atomic_write_text(args.output, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
