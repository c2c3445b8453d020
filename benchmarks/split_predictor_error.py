"""Why the split-charge warm start starts further from the solution than the global one: how
smooth the solution is along the MD-like trajectory of ``bench_pqeq.py`` (Li2PO2N, 2160 atoms,
every atom 0.01 Å per step along a fixed random direction).

Each step is solved cold to tight tolerances (1e-10 eV/e, 1e-9 eV/Å), so what is measured is
the solution itself, not solver noise.  For the scaled split charges u (per bond), the bond
drives w = u/√s that the warm start extrapolates, the atomic charges q of the split solve and
the charges of the global solve, it reports the largest first, second and third differences
in the step index and the error of the quadratic predictor 3x₋₁ − 3x₋₂ + x₋₃ (which is the
third difference on this trajectory), the drives split by whether the bond is inside the
bond-hardness switch (r between r_on and r_c) or fully on; and how far a solve at the default
tolerances lands from the tight one.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/split_predictor_error.py

Writes ``results/split_predictor_error.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_pqeq import ELEMENTS, load_structure  # noqa: E402
from openmm_pqeq._atomic import atomic_write_text  # noqa: E402
from openmm_pqeq.electrostatics import PQEq  # noqa: E402
from openmm_pqeq.electrostatics.splitcharge import bond_keys  # noqa: E402

TIGHT = dict(charge_tolerance=1e-10, shell_tolerance=1e-9, max_iterations=200)


def differences(series: torch.Tensor) -> dict:
    """Largest |Δ¹|, |Δ²|, |Δ³| over steps and entries of ``series`` (steps, M), and the largest
    quadratic-predictor error over the steps that have three predecessors."""
    d1 = series[1:] - series[:-1]
    d2 = d1[1:] - d1[:-1]
    d3 = d2[1:] - d2[:-1]
    predicted = 3 * series[2:-1] - 3 * series[1:-2] + series[:-3]
    return {"max_first": float(d1.abs().max()), "max_second": float(d2.abs().max()),
            "max_third": float(d3.abs().max()), "quadratic_predictor_error": float((predicted - series[3:]).abs().max())}


def main(steps: int = 6) -> dict:
    torch.set_default_dtype(torch.float64)
    pos, num, cell = load_structure("1x1x1")
    gen = torch.Generator().manual_seed(0)
    direction = torch.randn(pos.shape, generator=gen)
    velocity = 0.01 * direction / direction.norm(dim=1, keepdim=True)
    field = torch.zeros(3)
    started = time.time()
    u_steps, w_steps, q_steps, g_steps, switching = [], [], [], [], None
    keys0 = None
    for step in range(steps):
        x = pos + step * velocity
        split = PQEq(ELEMENTS, charge_transfer="split", **TIGHT)
        out = split(x, num, cell, field)
        bond_i, bond_j = out["bonds"]
        keys = bond_keys(bond_i, bond_j, out["bond_shifts"], pos.shape[0])
        order = torch.argsort(keys)
        if keys0 is None:
            keys0 = keys[order]
        elif not torch.equal(keys0, keys[order]):
            raise RuntimeError("the bond set changed along the trajectory; use fewer steps")
        vectors = x[bond_j] - x[bond_i] + out["bond_shifts"] @ cell
        r_on, r_c = split.transfer.cutoffs(num[bond_i], num[bond_j])
        root_s, _ = split.transfer.root_softness(vectors.norm(dim=1), num[bond_i], num[bond_j])
        inside = ((vectors.norm(dim=1) > r_on) & (vectors.norm(dim=1) < r_c))[order]
        switching = inside if switching is None else switching | inside
        u = out["split_variables"][order]
        u_steps.append(u)
        w_steps.append(u / root_s[order])
        q_steps.append(out["charges"])
        g_steps.append(PQEq(ELEMENTS, **TIGHT)(x, num, cell, field)["charges"])
    u_all, w_all = torch.stack(u_steps), torch.stack(w_steps)
    default = PQEq(ELEMENTS, charge_transfer="split")(pos, num, cell, field)
    report = {
        "benchmark": "smoothness of the split-charge solution along the bench_pqeq trajectory "
                     "(benchmarks/split_predictor_error.py)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "structure": "Li2PO2N 1x1x1, 2160 atoms, 0.01 A per step",
        "steps": steps,
        "bonds": int(keys0.shape[0]),
        "bonds_inside_the_switch": int(switching.sum()),
        "scaled_split_charges_u": differences(u_all),
        "bond_drives_w_eV_per_e": {"all": differences(w_all), "inside_switch": differences(w_all[:, switching]),
                                   "fully_on": differences(w_all[:, ~switching])},
        "split_charges_q_e": differences(torch.stack(q_steps)),
        "global_charges_q_e": differences(torch.stack(g_steps)),
        "default_tolerance_solve_vs_tight": {
            "max_abs_u": float((default["split_variables"][torch.argsort(bond_keys(
                default["bonds"][0], default["bonds"][1], default["bond_shifts"], pos.shape[0]))]
                - u_steps[0]).abs().max()),
            "max_abs_q_e": float((default["charges"] - q_steps[0]).abs().max())},
        "wall_s": time.time() - started,
    }
    atomic_write_text(HERE / "results" / "split_predictor_error.json", json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
