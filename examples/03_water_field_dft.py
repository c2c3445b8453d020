"""Polarizable physics against DFT: energy of one water molecule in a uniform field.

The published benchmark: a field perpendicular to the molecular plane.  The script computes
ΔE(F) = E(F) − E(0) for

- PySCF Kohn-Sham PBE (finite field, self-consistent; def2-SVPD by default, the basis of the
  shipped water data), and
- the model's PQEq term alone (physical mode: converged charges and shells, with the field), with
  the reaxnet parameter set (and any other set given by --params),

and the static polarizability α = −d²E/dF² from a polynomial fit, printed in Å³ (polarizability
volume α/4πε₀) and atomic units.  With --in-plane it also scans the two in-plane directions
(perpendicular to and along the C2 axis; along C2 the linear term gives the dipole).

The E0 network has no field input, so within the model the whole field response is PQEq's: this
is the term to compare.  (PQEq cannot move charge out of the plane of a planar molecule: the
out-of-plane response is from the shells alone.)

Sign and units: field in V/Å, E_field = −F·μ (the energy drops for a field along the dipole);
1 V/Å = 0.019447 a.u.; α[Å³] = α[e·Å²/V] × 14.3996 V·Å/e; 1 a.u. = 0.148185 Å³.

Run (about 10 s on one core, 25 s with --in-plane; needs pyscf and matplotlib):

    python examples/03_water_field_dft.py          # writes example-output/water_field_dft.{png,json}
    python examples/03_water_field_dft.py out/ --in-plane --basis aug-cc-pvdz
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from openmm_pqeq.units import BOHR_TO_ANGSTROM, COULOMB_EV_A

#: 1 atomic unit of polarizability (Bohr³) in Å³.
AU_TO_A3 = BOHR_TO_ANGSTROM ** 3


def water_molecule():
    """Gas-phase water (experimental r = 0.9572 Å, θ = 104.52°): plane yz, C2 axis along +z.

    The dipole points along +z (from O towards the H atoms).  The x axis is perpendicular to the
    molecular plane.
    """
    from ase import Atoms

    r, theta = 0.9572, np.radians(104.52)
    positions = np.array([[0.0, 0.0, 0.0],
                          [0.0, r * np.sin(theta / 2), r * np.cos(theta / 2)],
                          [0.0, -r * np.sin(theta / 2), r * np.cos(theta / 2)]])
    positions -= positions.mean(axis=0)
    return Atoms("OH2", positions=positions)


def fit(fields, delta_e, degree=4):
    """Polynomial fit ΔE(F) = c1 F + c2 F² + ...: returns (μ along F in e·Å, α in Å³)."""
    coefficients = np.polynomial.polynomial.polyfit(fields, delta_e, degree)
    mu = -coefficients[1]                        # e·Å  (ΔE = −μF − ½αF²)
    alpha = -2.0 * coefficients[2] * COULOMB_EV_A  # e·Å²/V → Å³
    return mu, alpha


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir", nargs="?", default="example-output",
                        help="folder for the PNG and JSON (default: example-output/)")
    parser.add_argument("--basis", default="def2-svpd", help="PySCF basis (default: def2-svpd)")
    parser.add_argument("--functional", default="pbe", help="functional (default: pbe)")
    parser.add_argument("--max-field", type=float, default=0.4, help="largest |field| in V/Å (default: 0.4)")
    parser.add_argument("--points", type=int, default=9, help="field values per direction, odd (default: 9)")
    parser.add_argument("--params", default="reaxnet",
                        help="comma-separated PQEq parameter sets for the model (default: reaxnet)")
    parser.add_argument("--in-plane", action="store_true", help="also scan the two in-plane directions")
    args = parser.parse_args(argv)
    if args.points < 5 or args.points % 2 == 0:
        parser.error(f"--points must be odd and at least 5, got {args.points}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from openmm_pqeq.data_generation.labelling import DFTSettings, label_atoms
    from openmm_pqeq.single_point import evaluate

    os.makedirs(args.output_dir, exist_ok=True)
    atoms = water_molecule()
    settings = DFTSettings(functional=args.functional, basis=args.basis, grid_level=3)
    param_sets = [p.strip() for p in args.params.split(",") if p.strip()]
    fields = np.linspace(-args.max_field, args.max_field, args.points)
    directions = {"x (out of plane)": np.array([1.0, 0.0, 0.0])}
    if args.in_plane:
        directions["y (in plane, ⊥ C2)"] = np.array([0.0, 1.0, 0.0])
        directions["z (in plane, along C2 and μ)"] = np.array([0.0, 0.0, 1.0])

    results = {"basis": args.basis, "functional": args.functional, "fields_V_per_A": fields.tolist(),
               "directions": {}}
    start = time.perf_counter()
    for name, direction in directions.items():
        entry = {"dft": {}, "model": {}}
        energies = np.array([label_atoms(atoms, settings, field=f * direction, forces=False,
                                         threads=1).get_potential_energy() for f in fields])
        delta = energies - energies[len(fields) // 2]
        mu, alpha = fit(fields, delta)
        entry["dft"] = {"delta_e_eV": delta.tolist(), "mu_eA": mu, "alpha_A3": alpha}
        for params in param_sets:
            model = np.array([evaluate(atoms, terms=("pqeq",), mode="physical", params=params,
                                       field=(f * direction).tolist())["energy_eV"] for f in fields])
            model_delta = model - model[len(fields) // 2]
            mu_m, alpha_m = fit(fields, model_delta)
            entry["model"][params] = {"delta_e_eV": model_delta.tolist(), "mu_eA": mu_m, "alpha_A3": alpha_m}
        results["directions"][name] = entry

    # ---- report -------------------------------------------------------------------------------
    label = f"{args.functional.upper()}/{args.basis}"
    print(f"water in a uniform field, |F| ≤ {args.max_field} V/Å, {args.points} points "
          f"({time.perf_counter() - start:.0f} s)")
    print(f"{'direction':<30} {'method':<26} {'α (Å³)':>8} {'α (a.u.)':>9} {'μ·F̂ (e·Å)':>11}")
    for name, entry in results["directions"].items():
        rows = [(label, entry["dft"])] + [(f"PQEq ({p}, physical)", v) for p, v in entry["model"].items()]
        for method, values in rows:
            print(f"{name:<30} {method:<26} {values['alpha_A3']:8.3f} {values['alpha_A3'] / AU_TO_A3:9.2f} "
                  f"{values['mu_eA']:11.4f}")

    n = len(directions)
    figure, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
    for axis, (name, entry) in zip(axes[0], results["directions"].items()):
        axis.plot(fields, 1000 * np.array(entry["dft"]["delta_e_eV"]), "o-", color="black",
                  label=f"{label}  α={entry['dft']['alpha_A3']:.2f} Å³")
        for params, values in entry["model"].items():
            axis.plot(fields, 1000 * np.array(values["delta_e_eV"]), "s--",
                      label=f"PQEq {params}  α={values['alpha_A3']:.2f} Å³")
        axis.set_xlabel("field (V/Å)")
        axis.set_ylabel("ΔE = E(F) − E(0)  (meV)")
        axis.set_title(f"H₂O, field along {name}", fontsize=10)
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    png = os.path.join(args.output_dir, "water_field_dft.png")
    figure.savefig(png, dpi=120)
    with open(os.path.join(args.output_dir, "water_field_dft.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    print(f"wrote {png} and water_field_dft.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
