"""Cost of anisotropic shell springs: ``pqeq-water-aniso`` against ``pqeq-water``, same run.

For each water box (the relaxed TIP3P boxes of ``openmm-pqeq md --molecules N``, 1 g/cm³,
periodic, one neutral charge group per molecule, physical mode) one process runs the same MD-like
warm-started trajectory with both PQEq sets: every atom moves 0.01 Å per step along a fixed
random direction.  It alternates the two sets step by step, so load changes on a shared machine hit
both alike.  Timed: forward (solve and energy; with anisotropy the spring tensors are built once
for the solve and again, with a graph, in the energy) and backward (forces and virial by autograd).
``warm`` is the median over the steps after the first three.  The headline is the ratio
aniso/iso.

    .venv/bin/python benchmarks/bench_shell_anisotropy.py       # results/shell_anisotropy_cpu.json
    .venv/bin/python benchmarks/bench_shell_anisotropy.py --molecules 64 --steps 6 --output /tmp/a.json
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

#: the two parameter sets compared: same elements and rule, isotropic and anisotropic shells
SETS = ("pqeq-water", "pqeq-water-aniso")


def water_tensors(n_molecules: int):
    """Positions (N, 3) Å, atomic numbers (N,), cell (3, 3) Å and molecule groups (N,) of a box."""
    import numpy as np
    import torch
    from openmm import unit

    from openmm_pqeq.md import water_box

    topology, positions = water_box(n_molecules)
    pos = torch.tensor(np.asarray(positions.value_in_unit(unit.angstrom)), dtype=torch.float64)
    num = torch.tensor([atom.element.atomic_number for atom in topology.atoms()])
    box = topology.getPeriodicBoxVectors()
    cell = torch.tensor(np.asarray([v.value_in_unit(unit.angstrom) for v in box]), dtype=torch.float64)
    groups = torch.tensor([atom.residue.index for atom in topology.atoms()])
    return pos, num, cell, groups


def run_box(n_molecules: int, steps: int) -> dict:
    import torch

    from bench_pqeq import _peak_gb, _trajectory_step
    from openmm_pqeq.electrostatics import PQEq

    torch.set_default_dtype(torch.float64)
    pos, num, cell, groups = water_tensors(n_molecules)
    gen = torch.Generator().manual_seed(0)
    direction = torch.randn(pos.shape, generator=gen)
    velocity = 0.01 * direction / direction.norm(dim=1, keepdim=True)
    field = torch.zeros(3)
    modules = {name: PQEq(["H", "O"], params=name) for name in SETS}
    records = {name: [] for name in SETS}
    for step in range(steps):
        for name in SETS:
            records[name].append(_trajectory_step(modules[name], pos, num, cell, field, step, velocity, 0.0, groups))
    out = {"molecules": int(groups.max()) + 1, "atoms": int(pos.shape[0]),
           "uses_custom_ops": modules[SETS[0]].uses_custom_ops}
    for name in SETS:
        warm = records[name][3:] or records[name][1:]
        out[name] = {"md": records[name], "warm_forward_s": statistics.median(r["forward_s"] for r in warm),
                     "warm_forward_backward_s": statistics.median(r["forward_s"] + r["backward_s"] for r in warm),
                     "warm_cycles": statistics.median(r["iterations"] for r in warm)}
    iso, aniso = out[SETS[0]], out[SETS[1]]
    out["ratio_warm_forward"] = aniso["warm_forward_s"] / iso["warm_forward_s"]
    out["ratio_warm_forward_backward"] = aniso["warm_forward_backward_s"] / iso["warm_forward_backward_s"]
    out["peak_memory_GB"] = _peak_gb()
    return out


def main(argv=None) -> int:
    import json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--molecules", nargs="+", type=int, default=[64, 512], help="water molecules per box")
    parser.add_argument("--steps", type=int, default=10, help="trajectory steps per parameter set")
    parser.add_argument("--output", default=str(HERE / "results" / "shell_anisotropy_cpu.json"))
    parser.add_argument("--single", nargs=2, type=int, metavar=("MOLECULES", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:
        print(json.dumps(run_box(*args.single)))
        return 0
    from bench_pqeq import new_report, write_report

    started = time.time()
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = new_report("PQEq anisotropic vs isotropic shell springs (pqeq-water-aniso vs pqeq-water, "
                        "same run, alternating steps)", argv, structure="relaxed TIP3P water boxes, 1 g/cm3",
                        code={"git_commit": commit}, sizes=[])
    for n in args.molecules:
        line = subprocess.run([sys.executable, __file__, "--single", str(n), str(args.steps)], check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]
        result = json.loads(line)
        report["sizes"].append(result)
        write_report(report, started, Path(args.output))
        print(f"{result['molecules']} molecules ({result['atoms']} atoms): warm forward {SETS[0]} "
              f"{result[SETS[0]]['warm_forward_s']:.3f} s, {SETS[1]} {result[SETS[1]]['warm_forward_s']:.3f} s "
              f"(x{result['ratio_warm_forward']:.2f}); forward+backward x{result['ratio_warm_forward_backward']:.2f}; "
              f"solver cycles {result[SETS[0]]['warm_cycles']} vs {result[SETS[1]]['warm_cycles']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
