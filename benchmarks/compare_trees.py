"""Speed of two source trees of openmm_pqeq side by side, in one run on one machine: the PQEq
benchmark (:mod:`bench_pqeq`) and the OpenMM step benchmark (:mod:`bench_md`) of each tree,
alternated (before, after, before, after, ...) so that both see the same load, and the ratio
after/before of each headline time (median over the repeats).

For a refactoring that must not slow anything down: check out the old commit in a worktree
(with its compiled operators built: ``python setup.py build_ext --inplace`` there), then

    git worktree add ../before <old commit>
    (cd ../before && ../main/.venv/bin/python setup.py -q build_ext --inplace)
    .venv/bin/python benchmarks/compare_trees.py ../before . --output benchmarks/results/compare.json

Each tree runs its own copy of the benchmark scripts with ``PYTHONPATH`` set to the tree, so
both measure the same quantities as their code defines them.  Times in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from tqdm import tqdm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from openmm_pqeq._atomic import atomic_write_text  # noqa: E402

#: The default workload: 2160 and 4320 atoms of Li2PO2N (warm and cold solves, the dense
#: published baseline and the PyTorch fallback at 2160), OpenMM steps of 64 and 216 waters.
PQEQ_ARGS = "--sizes 1x1x1 2x1x1 --dense-sizes 1x1x1 --fallback"
MD_ARGS = "--molecules 64 216"


def git_commit(tree: Path) -> str:
    run = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
    return run.stdout.strip() if run.returncode == 0 else "unknown"


def headline_times(pqeq: Dict, md: Dict) -> Dict[str, float]:
    """The times to compare (s) from one run of each benchmark's JSON report."""
    out: Dict[str, float] = {}
    for row in pqeq.get("pqeq", []):
        if "error" in row:
            continue
        atoms = row["atoms"]
        out[f"pqeq_warm_{atoms}"] = row["warm_s"]
        out[f"pqeq_warm_forward_backward_{atoms}"] = row["warm_forward_backward_s"]
        out[f"pqeq_cold_{atoms}"] = row["cold"]["forward_s"]
    for row in pqeq.get("dense_baseline", []):
        if "error" not in row:
            out[f"dense_baseline_{row['atoms']}"] = row["seconds"]["total"]
    fallback = pqeq.get("fallback")
    if fallback and "error" not in fallback:
        out[f"pytorch_fallback_warm_{fallback['atoms']}"] = fallback["warm_s"]
    for row in md.get("openmm", []):
        if "error" not in row:
            out[f"openmm_step_{row['atoms']}_{row['backend']}"] = row["median_s"]
    return out


def run_tree(tree: Path, script: str, args: List[str], output: Path) -> Dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, str(tree / "benchmarks" / script), *args, "--output", str(output)]
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"{script} in {tree} failed (exit {run.returncode}): {run.stderr[-2000:]}")
    return json.loads(output.read_text())


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the reference source tree (a git worktree)")
    parser.add_argument("after", type=Path, help="the source tree to compare with it")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each tree, alternated (default 2)")
    parser.add_argument("--pqeq-args", default=PQEQ_ARGS, help=f"bench_pqeq.py options (default {PQEQ_ARGS!r})")
    parser.add_argument("--md-args", default=MD_ARGS, help=f"bench_md.py options (default {MD_ARGS!r})")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "compare_trees.json")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats is {args.repeats}; it must be at least 1")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for label, tree in trees.items():
        if not (tree / "benchmarks" / "bench_pqeq.py").is_file():
            parser.error(f"{label} tree {tree} has no benchmarks/bench_pqeq.py")
    samples: Dict[str, List[Dict[str, float]]] = {label: [] for label in trees}
    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        jobs = [(r, label) for r in range(args.repeats) for label in trees]
        for repeat, label in tqdm(jobs, desc="benchmark runs", unit="run"):
            tree = trees[label]
            folder = Path(scratch) / f"{label}_{repeat}"
            folder.mkdir()
            pqeq = run_tree(tree, "bench_pqeq.py", shlex.split(args.pqeq_args), folder / "pqeq.json")
            md = run_tree(tree, "bench_md.py", shlex.split(args.md_args), folder / "md.json")
            samples[label].append(headline_times(pqeq, md))
    medians = {label: {key: statistics.median(s[key] for s in runs if key in s) for key in runs[0]}
               for label, runs in samples.items()}
    ratios = {key: medians["after"][key] / medians["before"][key]
              for key in medians["before"] if key in medians["after"] and medians["before"][key] > 0}
    report = {
        "benchmark": "two source trees, alternated in one run (benchmarks/compare_trees.py)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "trees": {label: {"path": str(tree), "commit": git_commit(tree)} for label, tree in trees.items()},
        "workload": {"bench_pqeq.py": args.pqeq_args, "bench_md.py": args.md_args, "repeats": args.repeats},
        "samples_s": samples,
        "median_s": medians,
        "ratio_after_over_before": ratios,
        "wall_s": time.time() - started,
    }
    atomic_write_text(args.output, json.dumps(report, indent=1) + "\n")
    width = max(len(k) for k in ratios) if ratios else 10
    print(f"{'time':{width}s}  before (s)  after (s)  after/before")
    for key, ratio in ratios.items():
        print(f"{key:{width}s}  {medians['before'][key]:10.4f}  {medians['after'][key]:9.4f}  {ratio:12.3f}")
    return report


if __name__ == "__main__":
    main()
