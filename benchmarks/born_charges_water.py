"""Born effective charges (atomic polar tensors) of a water molecule: the model against DFT.

DFT reference: central finite differences of analytic PBE/def2-SVPD forces (PySCF, the
project's labelling settings, grid response on) in uniform fields ±h along x, y, z:
Z*_{i,αβ} = (F_{iα}(+h e_β) − F_{iα}(−h e_β)) / 2h.  Model: :func:`openmm_pqeq.born_charges`
(autograd through the converged PQEq solve) of the shipped ``water-demo`` and ``water-demo-v1``
models and of the PQEq term alone with the ``reaxnet``, ``pqeq-refined`` and ``pqeq-water``
parameter sets (one neutral group: the molecule).  Geometry: the
experimental gas-phase monomer (r_OH 0.9572 Å, HOH 104.52°), C2 along z, molecular plane xz
(x in plane ⊥ C2, y out of plane).

    OMP_NUM_THREADS=2 python benchmarks/born_charges_water.py --output benchmarks/results/born_charges_water.json
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from bench_pqeq import new_report, write_report


def water():
    from ase import Atoms

    half = math.radians(104.52) / 2
    r = 0.9572
    return Atoms("OH2", positions=[[0, 0, 0], [r * math.sin(half), 0, r * math.cos(half)],
                                   [-r * math.sin(half), 0, r * math.cos(half)]])


def dft_born(atoms, step: float, threads: int) -> tuple:
    from openmm_pqeq.data_generation.labelling import DFTSettings, label_atoms

    settings = DFTSettings(grid_level=3)
    born = np.zeros((len(atoms), 3, 3))
    dipole = None
    for beta in range(3):
        forces = []
        for sign in (1.0, -1.0):
            field = np.zeros(3)
            field[beta] = sign * step
            labelled = label_atoms(atoms, settings, field=field, threads=threads)
            forces.append(labelled.get_forces())
        born[:, :, beta] = (forces[0] - forces[1]) / (2 * step)
    dipole = label_atoms(atoms, settings, forces=False, threads=threads).get_dipole_moment()
    return born, dipole, settings.method + f"/grid{settings.grid_level}"


def model_born(model, atoms) -> tuple:
    import torch

    from openmm_pqeq.electrostatics.response import born_charges

    out = born_charges(model, torch.tensor(atoms.positions), torch.tensor(atoms.numbers), None,
                       torch.zeros(3, dtype=torch.float64), groups=torch.zeros(len(atoms), dtype=torch.long))
    q = out["charges"].numpy()
    return out["born_charges"].numpy(), q


def summary(born: np.ndarray) -> dict:
    """Diagonal and isotropic parts of O and H, and the largest |Σ_i Z*_i| entry (e)."""
    return {"O_diagonal_xx_yy_zz": np.diag(born[0]).round(4).tolist(),
            "H1_diagonal_xx_yy_zz": np.diag(born[1]).round(4).tolist(),
            "O_isotropic": float(np.trace(born[0]) / 3), "H_isotropic": float(np.trace(born[1]) / 3),
            "sum_rule_max_abs_e": float(np.abs(born.sum(0)).max())}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--field-step", type=float, default=0.05, help="finite-field step h, V/Å (default 0.05)")
    parser.add_argument("--threads", type=int, default=2, help="PySCF threads (default 2)")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/born_charges_water.json"))
    args = parser.parse_args(argv)
    import torch

    from openmm_pqeq.electrostatics import PQEq
    from openmm_pqeq.io import load_model

    torch.set_default_dtype(torch.float64)
    started = time.time()
    atoms = water()
    reference, dipole, method = dft_born(atoms, args.field_step, args.threads)
    report = new_report("Born effective charges of water: model vs DFT finite fields", argv,
                        geometry="experimental monomer, C2 along z, plane xz", positions_A=atoms.positions.tolist(),
                        dft={"method": method, "field_step_V_per_A": args.field_step,
                             "born_charges_e": reference.tolist(), "dipole_eA": dipole.tolist(), **summary(reference)})
    models = {"water-demo (full model; PQEq pqeq-water parameters)": load_model("water-demo"),
              "water-demo-v1 (full model; PQEq reaxnet parameters)": load_model("water-demo-v1"),
              "PQEq reaxnet parameters": PQEq(["O", "H"], params="reaxnet"),
              "PQEq pqeq-refined parameters": PQEq(["O", "H"], params="pqeq-refined"),
              "PQEq pqeq-water parameters": PQEq(["O", "H"], params="pqeq-water")}
    report["models"] = {}
    for name, model in models.items():
        born, charges = model_born(model, atoms)
        report["models"][name] = {"born_charges_e": born.round(6).tolist(), "charges_e": charges.round(6).tolist(),
                                  "mae_vs_dft_e": float(np.abs(born - reference).mean()),
                                  "max_abs_error_vs_dft_e": float(np.abs(born - reference).max()), **summary(born)}
        print(f"{name}: MAE vs DFT {report['models'][name]['mae_vs_dft_e']:.3f} e; O diag {np.diag(born[0]).round(3)} "
              f"(DFT {np.diag(reference[0]).round(3)})")
    return write_report(report, started, args.output)


if __name__ == "__main__":
    main()
