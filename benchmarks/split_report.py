"""Global against split charge transfer: `pqeq-refined` and `pqeq-split` side by side.

On the test structures of the response data, of the organic molecules labelled so far
(examples/data/organics_pbe.extxyz, their own split) and of the water response set
(examples/data/water_response_pbe.extxyz) — structures that neither set was fitted on; PQEq alone
against PBE/def2-SVPD — it reports the isotropic polarizability MAE (a.u.), the dipole-magnitude MAE (D)
and the field-response energy MAE (meV, E(±F) − E(0) at F = 0.25 V/Å), and the model/DFT ratio of
α_iso against molecule size (plotted).  Without DFT it reports:

- the polarizability per molecule of periodic water boxes of two sizes, without charge groups
  (one total charge for the global set): α = k_e [μ(+F) − μ(−F)] / 2F per molecule, F = 0.01 V/Å
  along x, y, z (DFT: about 1.5 Å³ per molecule, independent of the box);
- α_iso of the n-alkanes C_nH_2n+2 (n = 1 … 12, RDKit geometries) per carbon atom: additive
  (constant per CH2 group) in reality, superlinear for global charge equilibration.

    .venv/bin/python benchmarks/split_report.py            # benchmarks/results/split_report.json + .png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SETS = ("pqeq-refined", "pqeq-split")


def response_metrics(files, test_fraction: float = 0.2, seed: int = 0) -> dict:
    """Per-structure test-split results of both sets."""
    import torch

    from openmm_pqeq.electrostatics.parameters import charge_transfer_of
    from openmm_pqeq.fit.pqeq_fit import A3_TO_AU, build_pqeq, load_structures, predict, split
    from openmm_pqeq.units import E_ANGSTROM_TO_DEBYE

    structures = [s for f in files for s in load_structures(f)]
    parts = split(structures, test_fraction, seed)
    test = [structures[k] for k in parts["test"]]
    elements = sorted({int(z) for s in structures for z in s.numbers.tolist()})
    out = {"n_test": len(test), "structures": []}
    modules = {name: build_pqeq(elements, name, None, 1e-8, 1e-7, charge_transfer_of(name)[0]) for name in SETS}
    for module in modules.values():
        module.eval()
    for s in test:
        row = {"name": s.name, "kind": s.kind, "atoms": int(s.numbers.shape[0]), "charge": s.charge,
               "alpha_dft_au": float(torch.trace(s.polarizability)) / 3 * A3_TO_AU,
               "dipole_dft_D": float(torch.linalg.norm(s.dipole)) * E_ANGSTROM_TO_DEBYE}
        for name, module in modules.items():
            with torch.no_grad():
                pred = predict(module, s)
            row[name] = {"alpha_au": float(torch.trace(pred["polarizability"])) / 3 * A3_TO_AU,
                         "dipole_D": float(torch.linalg.norm(pred["dipole"])) * E_ANGSTROM_TO_DEBYE,
                         "field_energy_abs_err_meV": (1000 * (pred["field_energies"] - s.field_energies)).abs().tolist(),
                         "converged": bool(pred["converged"])}
        out["structures"].append(row)
    for name in SETS:
        rows = out["structures"]
        a = [abs(r[name]["alpha_au"] - r["alpha_dft_au"]) for r in rows]
        mu = [abs(r[name]["dipole_D"] - r["dipole_dft_D"]) for r in rows]
        fe = [e for r in rows for e in r[name]["field_energy_abs_err_meV"]]
        ratio = np.array([r[name]["alpha_au"] / r["alpha_dft_au"] for r in rows if r["alpha_dft_au"] > 1.0])
        atoms = np.array([r["atoms"] for r in rows if r["alpha_dft_au"] > 1.0])
        out[name] = {"polarizability_iso_mae_au": float(np.mean(a)), "dipole_magnitude_mae_debye": float(np.mean(mu)),
                     "field_energy_mae_meV": float(np.mean(fe)),
                     "ratio_vs_atoms_correlation": float(np.corrcoef(ratio, atoms)[0, 1]) if len(set(atoms)) > 1 else None}
        neutral = [abs(r[name]["alpha_au"] - r["alpha_dft_au"]) for r in rows if r["charge"] == 0]
        out[name]["polarizability_iso_mae_au_neutral"] = float(np.mean(neutral)) if neutral else None
        out[name]["by_kind"] = {}
        for kind in sorted({r["kind"] for r in rows}):
            part = [r for r in rows if r["kind"] == kind]
            out[name]["by_kind"][kind] = {
                "n": len(part),
                "polarizability_iso_mae_au": float(np.mean([abs(r[name]["alpha_au"] - r["alpha_dft_au"]) for r in part])),
                "dipole_magnitude_mae_debye": float(np.mean([abs(r[name]["dipole_D"] - r["dipole_dft_D"]) for r in part]))}
        organic = [abs(r[name]["alpha_au"] - r["alpha_dft_au"]) for r in rows if r["name"].startswith("organic:")]
        out[name]["polarizability_iso_mae_au_organic"] = float(np.mean(organic)) if organic else None
    return out


def water_box_polarizability(n_molecules: int) -> dict:
    """α per molecule (Å³) of a periodic water box, both sets, no charge groups."""
    import torch
    from openmm import unit

    from openmm_pqeq.electrostatics import PQEq
    from openmm_pqeq.md import water_box
    from openmm_pqeq.units import COULOMB_EV_A, NM_TO_ANGSTROM

    topology, positions = water_box(n_molecules)
    pos = torch.tensor(np.array(positions.value_in_unit(unit.nanometer)) * NM_TO_ANGSTROM)
    box = topology.getPeriodicBoxVectors()
    cell = torch.tensor(np.array([[v.value_in_unit(unit.nanometer) for v in row] for row in box]) * NM_TO_ANGSTROM)
    numbers = torch.tensor([a.element.atomic_number for a in topology.atoms()])
    n_mol = topology.getNumResidues()
    out = {"molecules": n_mol, "atoms": int(numbers.shape[0]), "box_A": float(cell[0, 0])}
    step = 0.01
    for name in SETS:
        module = PQEq(["O", "H"], params=name, charge_tolerance=1e-8, shell_tolerance=1e-7)
        trace = 0.0
        for axis in range(3):
            field = torch.zeros(3)
            field[axis] = step
            with torch.no_grad():
                up = module(pos, numbers, cell, field)["dipole"][axis]
                down = module(pos, numbers, cell, -field)["dipole"][axis]
            trace += float(up - down) / (2 * step) * COULOMB_EV_A
        out[name] = {"alpha_per_molecule_A3": trace / 3 / n_mol, "charge_transfer": module.charge_transfer}
    return out


def alkane_chains(max_carbons: int = 12) -> list:
    """α_iso (a.u.) of C_nH_2n+2 for both sets (RDKit geometries)."""
    import torch

    from openmm_pqeq.data_generation.organics import molecule_from_smiles
    from openmm_pqeq.electrostatics.parameters import charge_transfer_of
    from openmm_pqeq.fit.pqeq_fit import A3_TO_AU, build_pqeq
    from openmm_pqeq.electrostatics.implicit import analytic_polarizability
    from openmm_pqeq.electrostatics.splitcharge import split_polarizability, transfer_charges

    rows = []
    modules = {name: build_pqeq([1, 6], name, None, 1e-9, 1e-8, charge_transfer_of(name)[0]) for name in SETS}
    for n in range(1, max_carbons + 1):
        atoms = molecule_from_smiles("C" * n)
        pos = torch.tensor(atoms.positions)
        num = torch.tensor(atoms.numbers)
        row = {"carbons": n, "atoms": len(atoms)}
        for name, module in modules.items():
            module.reset()
            with torch.no_grad():
                out = module(pos, num, None, torch.zeros(3))
            p = module.atom_parameters(num, torch.float64)
            if module.charge_transfer == "split":
                b = out["bonds"]
                q_ref = out["charges"] - transfer_charges(out["split_charges"], b[0], b[1], len(atoms))
                alpha = split_polarizability(module, pos, num, out["split_variables"], out["shell_displacements"],
                                             q_ref, p, b[0], b[1], out["bond_shifts"])
            else:
                alpha = analytic_polarizability(module, pos, out["charges"], out["shell_displacements"], p)
            row[name + "_alpha_au"] = float(torch.trace(alpha.detach())) / 3 * A3_TO_AU
        rows.append(row)
    return rows


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    rows = [r for r in report["response"]["structures"] if r["alpha_dft_au"] > 1.0]
    for name, marker in zip(SETS, ("o", "s")):
        axes[0].scatter([r["atoms"] for r in rows], [r[name]["alpha_au"] / r["alpha_dft_au"] for r in rows],
                        marker=marker, label=f"{name} (MAE {report['response'][name]['polarizability_iso_mae_au']:.1f} a.u.)",
                        alpha=0.75)
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[0].set_xlabel("atoms in the molecule")
    axes[0].set_ylabel("α_iso model / DFT (PBE/def2-SVPD)")
    axes[0].set_title(f"test split ({report['response']['n_test']} structures)")
    axes[0].legend(fontsize=8)
    chains = report["alkanes"]
    for name, marker in zip(SETS, ("o", "s")):
        axes[1].plot([r["carbons"] for r in chains], [r[name + "_alpha_au"] / r["carbons"] for r in chains],
                     marker=marker, label=name)
    axes[1].set_xlabel("carbons n in C_nH_2n+2")
    axes[1].set_ylabel("model α_iso per carbon (a.u.)")
    axes[1].set_title("n-alkanes: additive in reality")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=[str(ROOT / "examples/data" / name) for name in
                                                      ("response_pbe.extxyz", "organics_pbe.extxyz",
                                                       "water_response_pbe.extxyz")],
                        help="response files (the test split of each is used)")
    parser.add_argument("--boxes", type=int, nargs="+", default=[9, 120], help="water-box sizes (molecules)")
    parser.add_argument("--output", default=str(HERE / "results" / "split_report.json"))
    args = parser.parse_args(argv)
    import torch

    torch.set_default_dtype(torch.float64)
    sys.path.insert(0, str(HERE))
    from bench_pqeq import new_report, write_report

    started = time.time()
    report = new_report("global vs split charge transfer (pqeq-refined vs pqeq-split)", argv,
                        data=[str(Path(f).relative_to(ROOT)) if Path(f).is_relative_to(ROOT) else f for f in args.data])
    report["response"] = response_metrics(args.data)
    report["water_boxes"] = [water_box_polarizability(n) for n in args.boxes]
    report["alkanes"] = alkane_chains()
    output = Path(args.output)
    plot(report, output.with_suffix(".png"))
    write_report(report, started, output)
    for name in SETS:
        print(name, json.dumps(report["response"][name]))
    for box in report["water_boxes"]:
        print(box)
    return 0


if __name__ == "__main__":
    sys.exit(main())
