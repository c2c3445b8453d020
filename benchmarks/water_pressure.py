"""Virial pressure of a water model on frames sampled by ``water_validation.py``: an independent
check of what the Monte Carlo barostat finds (it uses energy differences, not the virial).

For each stage folder given, the last ``--frames`` sampled frames are evaluated with the model
(its own charge-constraint rule) and the atomic-virial pressure is averaged:

    P = N k_B T / V − tr(σ) / 3,   σ = (1/V) ∂E/∂ε  (eV/Å³; the model's stress),

with N the number of atoms (the atomic form, which is what the barostat sees: the model's
System has no bonds, so every atom is its own "molecule"), T the thermostat temperature and V
the frame's volume.  Beside it, the molecular pressure and its split into the model's energy
terms, by central finite differences of each term under a uniform scaling of the cell with the
molecules kept rigid (their O atoms scaled):

    P_mol = N_mol k_B T / V − Σ_terms ∂E_term/∂V,

which says which term pulls the liquid together.  Error: standard error of the mean over the
frames (they are 50 fs apart, so it is a lower bound).  Pressure in bar, density in g/cm³.

    python benchmarks/water_pressure.py runs/wv/nvt runs/wv/npt --model water-demo \\
        --output benchmarks/results/water_pressure.json
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
sys.path.insert(0, str(HERE))

from openmm_pqeq.units import AVOGADRO, BOLTZMANN_EV_PER_K, ELEMENTARY_CHARGE_C  # noqa: E402

#: 1 eV/Å³ in bar (1 bar = 10⁵ Pa).
EV_PER_A3_TO_BAR = ELEMENTARY_CHARGE_C * 1e30 / 1e5


def mean_and_error(values) -> list:
    """[mean, standard error of the mean] (None for a single value)."""
    values = np.asarray(values, dtype=float)
    error = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None
    return [float(values.mean()), error]


def scaled_rigid(atoms, factor: float):
    """A copy with the cell scaled by ``factor`` and each molecule (O, H, H) moved rigidly with its O."""
    out = atoms.copy()
    molecules = out.positions.reshape(-1, 3, 3)
    out.positions = (molecules + (factor - 1.0) * molecules[:, :1, :]).reshape(-1, 3)
    out.set_cell(out.cell * factor, scale_atoms=False)
    return out


def term_pressures(atoms, model: str, temperature_K: float, step: float = 0.002) -> dict:
    """Molecular pressure (bar) and the part −∂E_term/∂V of each energy term, rigid molecules."""
    from openmm_pqeq.single_point import evaluate

    plus = evaluate(scaled_rigid(atoms, 1.0 + step), model=model, device="cpu")
    minus = evaluate(scaled_rigid(atoms, 1.0 - step), model=model, device="cpu")
    volume = atoms.get_volume()
    d_volume = volume * ((1.0 + step) ** 3 - (1.0 - step) ** 3)
    parts = {name: -(plus["terms"][name] - minus["terms"][name]) / d_volume * EV_PER_A3_TO_BAR for name in plus["terms"]}
    parts["ideal"] = len(atoms) // 3 * BOLTZMANN_EV_PER_K * temperature_K / volume * EV_PER_A3_TO_BAR
    parts["total"] = sum(parts.values())
    return parts


def stage_pressure(folder: Path, model: str, frames: int, temperature_K: float) -> dict:
    """Mean virial pressure (bar) and density (g/cm³) over the last ``frames`` frames of a stage."""
    import ase

    from openmm_pqeq.single_point import evaluate
    from water_validation import load_frames

    sampled = load_frames(folder.parent, folder.name)
    if sampled is None:
        raise FileNotFoundError(f"no sampled frames in {folder}: run the stage first")
    positions, boxes = sampled["positions_A"][-frames:], sampled["box_A"][-frames:]
    n_molecules = positions.shape[1] // 3
    pressures, densities, molecular = [], [], []
    for x, box in zip(positions, boxes):
        atoms = ase.Atoms("OH2" * n_molecules, positions=x, cell=box, pbc=True)
        result = evaluate(atoms, model=model, device="cpu")
        volume = atoms.get_volume()
        stress = np.array(result["stress_eV_per_A3"])
        pressures.append((len(atoms) * BOLTZMANN_EV_PER_K * temperature_K / volume - np.trace(stress) / 3)
                         * EV_PER_A3_TO_BAR)
        densities.append(atoms.get_masses().sum() / AVOGADRO / (volume * 1e-24))
        molecular.append(term_pressures(atoms, model, temperature_K))
    return {"folder": str(folder), "frames": len(pressures), "molecules": n_molecules,
            "density_g_cm3": [float(np.mean(densities)), float(np.min(densities)), float(np.max(densities))],
            "pressure_bar": mean_and_error(pressures),
            "molecular_pressure_bar": {name: mean_and_error([m[name] for m in molecular]) for name in molecular[0]}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="+", help="stage folders of water_validation.py (frames_*.npz)")
    parser.add_argument("--model", default="water-demo", help="model file or shipped name")
    parser.add_argument("--frames", type=int, default=15, help="last frames of each stage to evaluate")
    parser.add_argument("--temperature", type=float, default=300.0, help="thermostat temperature, K")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    started = time.time()
    rows = []
    for stage in args.stages:
        row = stage_pressure(Path(stage), args.model, args.frames, args.temperature)
        rows.append(row)
        parts = ", ".join(f"{name} {value[0]:.0f} ± {value[1] or float('nan'):.0f}"
                          for name, value in row["molecular_pressure_bar"].items())
        print(f"{stage}: density {row['density_g_cm3'][0]:.3f} g/cm³, atomic virial pressure "
              f"{row['pressure_bar'][0]:.0f} ± {row['pressure_bar'][1] or float('nan'):.0f} bar; molecular "
              f"pressure by term (bar): {parts} ({row['frames']} frames)", flush=True)
    if args.output:
        from openmm_pqeq._atomic import atomic_write_text

        report = {"benchmark": "virial pressure of sampled water frames (benchmarks/water_pressure.py)",
                  "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "model": args.model,
                  "command": " ".join(["water_pressure.py", *(argv if argv is not None else sys.argv[1:])]),
                  "temperature_K": args.temperature, "stages": rows, "wall_s": time.time() - started}
        atomic_write_text(Path(args.output), json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
