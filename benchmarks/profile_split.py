"""Where the time goes: split vs global charge transfer, warm MD-like steps on Li2PO2N (the
trajectory of bench_split.py), with timers wrapped around the solver's parts (per warm step,
steps 3 and on) and the charge/shell residual at the start of every Newton step.

    PYTHONPATH=. OMP_NUM_THREADS=2 .venv/bin/python benchmarks/profile_split.py 1x1x1 6
"""
import collections
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_pqeq import ELEMENTS, _trajectory_step, load_structure  # noqa: E402
from openmm_pqeq.electrostatics import PQEq  # noqa: E402
from openmm_pqeq.electrostatics import pqeq as pqeq_module  # noqa: E402
from openmm_pqeq.electrostatics import splitcharge, warm_start  # noqa: E402
from openmm_pqeq.electrostatics.constraints import project_out_group_means  # noqa: E402

torch.set_default_dtype(torch.float64)
reps = sys.argv[1] if len(sys.argv) > 1 else "1x1x1"
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 6
totals = collections.defaultdict(float)
counts = collections.defaultdict(int)
current = {"model": None}

def wrap(cls, name):
    original = getattr(cls, name)
    def timed(self, *a, **k):
        t = time.perf_counter()
        out = original(self, *a, **k)
        key = f"{current['model']}:{name}"
        totals[key] += time.perf_counter() - t
        counts[key] += 1
        return out
    setattr(cls, name, timed)

for name in ("_gradients", "_joint_matvec", "_solve_physical", "_newton_step", "forward", "energy"):
    wrap(pqeq_module.PQEq, name)
for name in ("_split_bonds", "_solve_split", "_split_newton_step", "_split_energy", "_split_solve_call",
             "_split_static"):
    wrap(splitcharge.SplitChargeSolve, name)
for name in ("predict", "remember"):
    wrap(warm_start.BondWarmStart, name)
entry = collections.defaultdict(list)
_global_step = pqeq_module.PQEq._newton_step
def global_step(self, problem, gq, gd, q, inv_ks):
    entry["global"].append((float(project_out_group_means(gq, problem.groups, problem.counts).abs().max()),
                            float(gd.abs().max())))
    return _global_step(self, problem, gq, gd, q, inv_ks)
pqeq_module.PQEq._newton_step = global_step
_split_step = splitcharge.SplitChargeSolve._split_newton_step
def split_step(self, problem, gu, gd, q, inv_ks, bonds, diag):
    entry["split"].append((float((gu * bonds.root_kappa).abs().max()), float(gd.abs().max())))
    return _split_step(self, problem, gu, gd, q, inv_ks, bonds, diag)
splitcharge.SplitChargeSolve._split_newton_step = split_step
pos, num, cell = load_structure(reps)
field = torch.zeros(3)
gen = torch.Generator().manual_seed(0)
direction = torch.randn(pos.shape, generator=gen)
velocity = 0.01 * direction / direction.norm(dim=1, keepdim=True)
modules = {m: PQEq(ELEMENTS, charge_transfer=m) for m in ("global", "split")}
records = {m: [] for m in modules}
for step in range(steps):
    if step == 3:
        totals.clear(); counts.clear()
    for m, module in modules.items():
        current["model"] = m
        records[m].append(_trajectory_step(module, pos, num, cell, field, step, velocity, 0.0))
print(json.dumps({m: [{k: r[k] for k in ("forward_s", "backward_s", "iterations", "cg_iterations")} for r in v] for m, v in records.items()}, indent=0))
print("tolerances", modules["split"].charge_tolerance, modules["split"].shell_tolerance)
print("residuals at each Newton step (charge, shell):", json.dumps({m: [(f"{a:.2e}", f"{b:.2e}") for a, b in v] for m, v in entry.items()}))
for key in sorted(totals):
    print(f"{key:40s} {totals[key] / (steps - 3):8.4f} s/step  calls/step {counts[key] / (steps - 3):6.1f}")
