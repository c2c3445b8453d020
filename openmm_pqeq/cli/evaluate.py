"""``openmm-pqeq evaluate``: energy terms, forces, charges and dipole of one structure."""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Evaluate energy terms of one structure (any file ASE can read; periodic if the file has a
cell).  Units: Å, eV, e; the field is in V/Å.  With --json, print one JSON object with
energy_eV, terms, forces_eV_per_A, charges_e, shell_displacements_A, dipole_eA,
scf_iterations, converged (and stress_eV_per_A3 for periodic cells).

examples:
  openmm-pqeq evaluate water.xyz --field 0 0 0.1
  openmm-pqeq evaluate Li2PO2N.cif --mode reaxnet --json
  openmm-pqeq evaluate crystal.cif --terms pqeq,d3 --d3-damping bj --json
  openmm-pqeq evaluate water.xyz --model water-demo --json
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="energy, forces, PQEq charges and dipole of a structure",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("structure", help="structure file (xyz, extxyz, cif, POSCAR/vasp, pdb, ...)")
    p.add_argument("--model", default=None,
                   help="model file or shipped model name (e.g. water-demo): evaluate all of its terms "
                        "(E0 + PQEq + D3); without it, --terms selects model-free terms")
    p.add_argument("--terms", default="pqeq", help="comma-separated energy terms: pqeq, d3 (default: pqeq)")
    p.add_argument("--mode", default="physical", choices=["physical", "reaxnet"],
                   help="PQEq mode: converged with Ewald and field (physical, default) or the published "
                        "two-cycle tapered practice (reaxnet)")
    p.add_argument("--params", default="reaxnet",
                   choices=["reaxnet", "pqeq0", "pqeq1", "pqeq3", "pqeq-refined", "pqeq-split"],
                   help="PQEq parameter set (default: reaxnet; pqeq-split selects split-charge transfer)")
    p.add_argument("--field", nargs=3, type=float, default=[0.0, 0.0, 0.0], metavar=("EX", "EY", "EZ"),
                   help="uniform external field in V/Å (default: 0 0 0)")
    p.add_argument("--charge", type=float, default=0.0, help="total charge in e (default: 0)")
    p.add_argument("--charge-groups", default="model", choices=["model", "molecules", "total"],
                   help="charge constraints: model (default: the rule the --model was trained with; without "
                        "--model, or for older model files, one total charge), molecules (one neutral group per "
                        "molecule, molecules from covalent-radius distances) or total (one total --charge)")
    p.add_argument("--index", default="-1", help="frame of a multi-frame file, ASE syntax (default: last)")
    p.add_argument("--d3-damping", default="zero", choices=["zero", "bj"], help="D3 damping (default: zero)")
    p.add_argument("--d3-functional", default="pbe", help="functional of the D3 parameters (default: pbe)")
    p.add_argument("--d3-cutoff", type=float, default=12.5, help="D3 dispersion cutoff in Å (default: 12.5)")
    p.add_argument("--d3-cn-cutoff", type=float, default=None, help="D3 coordination-number cutoff in Å")
    p.add_argument("--d3-hard-cutoff", action="store_true",
                   help="plain truncation at the cutoffs, as the reference dftd3 code (default: smooth)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import ase.io

    from ..single_point import evaluate

    atoms = ase.io.read(args.structure, index=args.index)
    d3_options = {"damping": args.d3_damping, "functional": args.d3_functional, "cutoff": args.d3_cutoff,
                  "hard_cutoff": args.d3_hard_cutoff}
    if args.d3_cn_cutoff is not None:
        d3_options["cn_cutoff"] = args.d3_cn_cutoff
    terms = [t.strip() for t in args.terms.split(",") if t.strip()]
    result = evaluate(atoms, terms=terms, mode=args.mode, params=args.params, field=args.field,
                      charge=args.charge, d3_options=d3_options, model=args.model, charge_groups=args.charge_groups)
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return 0
    _print_summary(atoms, result)
    return 0


def _print_summary(atoms, result: dict) -> None:
    import numpy as np

    symbols = atoms.get_chemical_symbols()
    charges = np.asarray(result["charges_e"])
    forces = np.asarray(result["forces_eV_per_A"])
    print(f"{atoms.get_chemical_formula()}: {len(atoms)} atoms, "
          f"{'periodic' if atoms.pbc.all() else 'open'}")
    print(f"energy      {result['energy_eV']:.6f} eV")
    for name, value in result["terms"].items():
        print(f"  {name:<9} {value:.6f} eV")
    print(f"dipole      {' '.join(f'{x:.5f}' for x in result['dipole_eA'])} e·Å")
    print(f"max |force| {np.linalg.norm(forces, axis=1).max():.5f} eV/Å")
    print(f"solve       {result['scf_iterations']} cycles, converged: {result['converged']}")
    print("charges by element (e): mean [min, max]")
    for element in sorted(set(symbols)):
        q = charges[[s == element for s in symbols]]
        print(f"  {element:<3} {q.mean():+.6f} [{q.min():+.6f}, {q.max():+.6f}]  n={len(q)}")
