"""``openmm-pqeq evaluate``: energy terms, forces, charges and dipole of one structure."""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Evaluate energy terms of one structure (any file ASE can read; periodic if the file has a
cell).  Units: Å, eV, e; the field is in V/Å.  With --json, print one JSON object with
energy_eV, terms, forces_eV_per_A, charges_e, shell_displacements_A, dipole_eA,
scf_iterations, converged (null without a pqeq term), and stress_eV_per_A3 for periodic
cells.  The total charge and the field default to info["charge"] and info["field"] of the
structure file (as label and train read them); --charge / --field override them.

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
    p.add_argument("--terms", default=None,
                   help="comma-separated model-free energy terms: pqeq, d3 (default: pqeq; not with --model)")
    p.add_argument("--mode", default=None, choices=["physical", "reaxnet"],
                   help="PQEq mode: converged with Ewald and field (physical, default) or the published "
                        "two-cycle tapered practice (reaxnet); not with --model")
    p.add_argument("--params", default=None,
                   help="PQEq parameter set: reaxnet (default), pqeq0, pqeq1, pqeq3, pqeq-refined (molecules and "
                        "ions), pqeq-water (water, one neutral group per molecule), pqeq-water-aniso (the same, "
                        "anisotropic shells), pqeq-split "
                        "(selects split-charge transfer); not with --model")
    p.add_argument("--field", nargs=3, type=float, default=None, metavar=("EX", "EY", "EZ"),
                   help="uniform external field in V/Å (default: info['field'] of the structure file, else "
                        "0 0 0; a given value overrides the file's, with a warning)")
    p.add_argument("--charge", type=float, default=None,
                   help="total charge in e (default: info['charge'] of the structure file, else 0; a given "
                        "value overrides the file's, with a warning)")
    p.add_argument("--charge-groups", default="model", choices=["model", "molecules", "total"],
                   help="charge constraints: model (default: the rule the --model was trained with; without "
                        "--model, or for older model files, one total charge), molecules (one neutral group per "
                        "molecule, molecules from covalent-radius distances) or total (one total --charge)")
    p.add_argument("--index", default="-1",
                   help="frame of a multi-frame file: an integer, negative from the end (default: -1, the last)")
    p.add_argument("--d3-damping", default=None, choices=["zero", "bj"],
                   help="D3 damping (default: zero; not with --model)")
    p.add_argument("--d3-functional", default=None, help="functional of the D3 parameters (default: pbe; "
                                                           "not with --model)")
    p.add_argument("--d3-cutoff", type=float, default=None, help="D3 dispersion cutoff in Å (default: 12.5; "
                                                                  "not with --model)")
    p.add_argument("--d3-cn-cutoff", type=float, default=None, help="D3 coordination-number cutoff in Å "
                                                                     "(not with --model)")
    p.add_argument("--d3-hard-cutoff", action="store_true", default=None,
                   help="plain truncation at the cutoffs, as the reference dftd3 code (default: smooth; not "
                        "with --model)")
    p.add_argument("--device", default=None,
                   help="torch device: cpu, cuda, cuda:1 ... (default: the GPU when torch sees one, else cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(run=run)


#: Options of model-free evaluation (a model brings its own terms and settings).
MODEL_FREE_OPTIONS = {"terms": "--terms", "mode": "--mode", "params": "--params", "d3_damping": "--d3-damping",
                      "d3_functional": "--d3-functional", "d3_cutoff": "--d3-cutoff", "d3_cn_cutoff": "--d3-cn-cutoff",
                      "d3_hard_cutoff": "--d3-hard-cutoff"}
D3_OPTIONS = {"d3_damping": "damping", "d3_functional": "functional", "d3_cutoff": "cutoff",
              "d3_cn_cutoff": "cn_cutoff", "d3_hard_cutoff": "hard_cutoff"}


def run(args: argparse.Namespace) -> int:
    from ..single_point import evaluate, read_structure

    if args.model is not None:
        given = [option for name, option in MODEL_FREE_OPTIONS.items() if getattr(args, name) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply with --model: the "
                             "model's own terms and settings are evaluated; drop them, or evaluate without --model")
    atoms = read_structure(args.structure, args.index)
    d3_options = {key: getattr(args, name) for name, key in D3_OPTIONS.items() if getattr(args, name) is not None}
    terms = None if args.terms is None else [t.strip() for t in args.terms.split(",") if t.strip()]
    result = evaluate(atoms, terms=terms, mode=args.mode, params=args.params, field=args.field,
                      charge=args.charge, d3_options=d3_options or None, model=args.model,
                      charge_groups=args.charge_groups, device=args.device)
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return 0
    _print_summary(atoms, result)
    return 0


def _print_summary(atoms, result: dict) -> None:
    import numpy as np

    symbols = atoms.get_chemical_symbols()
    forces = np.asarray(result["forces_eV_per_A"])
    print(f"{atoms.get_chemical_formula()}: {len(atoms)} atoms, "
          f"{'periodic' if atoms.pbc.all() else 'open'}")
    print(f"energy      {result['energy_eV']:.6f} eV")
    for name, value in result["terms"].items():
        print(f"  {name:<9} {value:.6f} eV")
    print(f"max |force| {np.linalg.norm(forces, axis=1).max():.5f} eV/Å")
    if result["charges_e"] is None:
        print("PQEq        not evaluated (no pqeq term): no charges, dipole or solve")
        return
    charges = np.asarray(result["charges_e"])
    print(f"dipole      {' '.join(f'{x:.5f}' for x in result['dipole_eA'])} e·Å")
    print(f"solve       {result['scf_iterations']} cycles, converged: {result['converged']}")
    print("charges by element (e): mean [min, max]")
    for element in sorted(set(symbols)):
        q = charges[[s == element for s in symbols]]
        print(f"  {element:<3} {q.mean():+.6f} [{q.min():+.6f}, {q.max():+.6f}]  n={len(q)}")
