"""Signed energy and force errors of a water model on clusters cut out of compressed liquid,
against its errors on held-out clusters at normal density: does the model under-price
compression?

For every frame of each DATA file (labelled extxyz: reference energy in eV, forces in eV/Å,
O, H, H per molecule) it evaluates the model (its own charge-constraint rule) and records the
signed energy error per molecule, E_model − E_DFT (meV), the force RMSE (meV/Å) and the mean
nearest-neighbour O–O distance of the cluster (Å), a measure of how compressed it is.  A model
whose energy error falls as the O–O distance shrinks binds compressed water too strongly, and
its liquid contracts under NPT.

Energies are only offsets; what sets the pressure is how the forces between molecules change
with compression.  So each frame also gets its molecular virial error per molecule,

    δw = [W_model − W_DFT] / N_mol,   W = Σ_I (R_I − R̄) · F_I   (eV),

with R_I the centre of mass of molecule I, F_I the total force on it and R̄ the mean of the R_I
(a cluster's net force is zero, so W does not depend on the origin).  W > 0 pushes the molecules
apart; a negative δw is a model that pulls compressed water together harder than DFT does.  In
the bulk the molecular pressure is (N_mol k_B T + W/3)/V, so δw shifts it by about
δw/(3 v), v the volume per molecule: −0.1 eV at 1.27 g/cm³ (v = 23.6 Å³) is −2.3 kbar, a lower
bound since a molecule of a 4–5-molecule cluster has fewer neighbours than one in the liquid.

    python benchmarks/water_dense_errors.py examples/data/water_al2_test.extxyz \\
        examples/data/water_dense_pbe.extxyz --model water-demo \\
        --output benchmarks/results/water_dense_errors.json          # + .png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def mean_nearest_oo(atoms) -> float:
    """Mean over the O atoms of the distance to the nearest other O, Å (NaN for a monomer)."""
    oxygens = atoms.positions[np.array(atoms.get_chemical_symbols()) == "O"]
    if len(oxygens) < 2:
        return float("nan")
    distances = np.linalg.norm(oxygens[:, None] - oxygens[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return float(distances.min(axis=1).mean())


def molecular_virial(atoms, forces: np.ndarray) -> float:
    """W = Σ_I (R_I − R̄)·F_I in eV for a cluster of O, H, H molecules (atoms in that order)."""
    masses = atoms.get_masses().reshape(-1, 3)
    centres = (masses[:, :, None] * atoms.positions.reshape(-1, 3, 3)).sum(1) / masses.sum(1)[:, None]
    molecule_forces = np.asarray(forces).reshape(-1, 3, 3).sum(1)
    return float(np.sum((centres - centres.mean(0)) * molecule_forces))


def frame_errors(path: str, model: str) -> list:
    """Per-frame errors of ``model`` on the labelled frames of ``path``."""
    import ase.io

    from openmm_pqeq.single_point import evaluate

    rows = []
    for k, atoms in enumerate(ase.io.read(path, ":")):
        reference_energy = atoms.get_potential_energy()
        reference_forces = atoms.get_forces()
        atoms.calc = None
        result = evaluate(atoms, model=model, device="cpu")
        n_molecules = int(np.sum(np.array(atoms.get_chemical_symbols()) == "O"))
        forces = np.array(result["forces_eV_per_A"])
        rows.append({"file": Path(path).name, "index": k, "molecules": n_molecules,
                     "origin": str(atoms.info.get("origin", "")),
                     "mean_nearest_OO_A": mean_nearest_oo(atoms),
                     "energy_error_meV_per_molecule": 1000 * (result["energy_eV"] - reference_energy) / n_molecules,
                     "force_rmse_meV_per_A": 1000 * float(np.sqrt(np.mean((forces - reference_forces) ** 2))),
                     "virial_error_meV_per_molecule": 1000 * (molecular_virial(atoms, forces)
                                                              - molecular_virial(atoms, reference_forces)) / n_molecules})
    return rows


def plot(rows: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in sorted({r["file"] for r in rows}):
        part = [r for r in rows if r["file"] == name and np.isfinite(r["mean_nearest_OO_A"])]
        ax.scatter([r["mean_nearest_OO_A"] for r in part], [r["energy_error_meV_per_molecule"] for r in part],
                   label=name, alpha=0.8)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("mean nearest-neighbour O–O distance in the cluster (Å)")
    ax.set_ylabel("E_model − E_DFT per molecule (meV)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="+", help="labelled extxyz files")
    parser.add_argument("--model", default="water-demo", help="model file or shipped name")
    parser.add_argument("--output", default=None, help="JSON file (a PNG beside it)")
    args = parser.parse_args(argv)
    started = time.time()
    rows = [row for path in args.data for row in frame_errors(path, args.model)]
    summary = {}
    for name in sorted({r["file"] for r in rows}):
        part = [r for r in rows if r["file"] == name]
        errors = np.array([r["energy_error_meV_per_molecule"] for r in part])
        oo = np.array([r["mean_nearest_OO_A"] for r in part])
        virial = np.array([r["virial_error_meV_per_molecule"] for r in part if r["molecules"] > 1])
        finite = np.isfinite(oo)
        summary[name] = {"frames": len(part), "energy_error_mean_meV_per_molecule": float(errors.mean()),
                         "energy_error_mae_meV_per_molecule": float(np.abs(errors).mean()),
                         "force_rmse_mean_meV_per_A": float(np.mean([r["force_rmse_meV_per_A"] for r in part])),
                         "mean_nearest_OO_A": float(np.nanmean(oo)) if finite.any() else None,
                         "virial_error_mean_meV_per_molecule": [float(virial.mean()),
                                                                 float(virial.std(ddof=1) / np.sqrt(len(virial)))]}
        print(f"{name}: {len(part)} frames, E error {errors.mean():+.1f} meV/molecule (MAE {np.abs(errors).mean():.1f}), "
              f"force RMSE {summary[name]['force_rmse_mean_meV_per_A']:.0f} meV/Å, mean nearest O–O "
              f"{summary[name]['mean_nearest_OO_A']:.3f} Å, molecular virial error {virial.mean():+.0f} ± "
              f"{summary[name]['virial_error_mean_meV_per_molecule'][1]:.0f} meV/molecule", flush=True)
    if args.output:
        from openmm_pqeq._atomic import atomic_write_text

        output = Path(args.output)
        report = {"benchmark": "water model errors on compressed-liquid clusters (benchmarks/water_dense_errors.py)",
                  "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "model": args.model,
                  "command": " ".join(["water_dense_errors.py", *(argv if argv is not None else sys.argv[1:])]),
                  "summary": summary, "frames": rows, "wall_s": time.time() - started}
        atomic_write_text(output, json.dumps(report, indent=1) + "\n")
        plot(rows, output.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
