"""``openmm-pqeq label``: DFT energies, forces and dipoles through PySCF (parallel, resumable)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Label every frame of INPUT (any file ASE reads, isolated molecules/clusters in Å) with Kohn-Sham
DFT through PySCF and append the results to OUTPUT (extxyz): energy (eV), forces (eV/Å, analytic,
exact gradients), dipole (e·Å), and info keys charge, multiplicity, field (V/Å), dft_method,
scf_cycles, dft_wall_s, source_index, label_key.  No dispersion correction is added, so a model
trained on these labels with its D3 term learns to cancel D3 within E0's cutoff
(docs/method/learning.md, "Dispersion and the reference").

Resumable: frames already in OUTPUT (same structure, charge, spin, field and settings) are skipped,
so rerunning the same command after an interruption finishes the job.

Charge, spin and field: a frame's own info["charge"], info["multiplicity"] (2S+1) and
info["field"] win; --charge and --field are the defaults for frames without them.  Odd electron
counts run unrestricted (UKS) as doublets unless a multiplicity is given.  The field couples as
E_field = -field·dipole (origin at 0; the energy drops for a field along the dipole).

Needs PySCF:  pip install pyscf

examples:
  openmm-pqeq label clusters.extxyz labelled.extxyz --workers 2
  openmm-pqeq label water.xyz water_field.extxyz --basis aug-cc-pvdz --field 0 0 0.25
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("label", help="label structures with DFT (PySCF): energy, forces, dipole",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="input structures (xyz, extxyz, ...; all frames)")
    p.add_argument("output", help="output extxyz file (appended to; finished frames are skipped)")
    p.add_argument("--functional", default="pbe", help="exchange-correlation functional (default: pbe)")
    p.add_argument("--basis", default="def2-svpd", help="basis set (default: def2-svpd)")
    p.add_argument("--no-density-fit", action="store_true", help="exact Coulomb/exchange instead of density fitting")
    p.add_argument("--grid-level", type=int, default=2, help="PySCF DFT grid level 0-9 (default: 2)")
    p.add_argument("--no-grid-response", action="store_true",
                   help="skip the grid-response term of the forces (faster, forces not exact gradients)")
    p.add_argument("--conv-tol", type=float, default=1e-9, help="SCF energy tolerance in Hartree (default: 1e-9)")
    p.add_argument("--charge", type=int, default=None,
                   help="net charge in e for frames without info['charge'] (default: 0)")
    p.add_argument("--field", nargs=3, type=float, default=None, metavar=("EX", "EY", "EZ"),
                   help="uniform field in V/Å for frames without info['field'] (default: 0 0 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="OpenMP threads per worker (default: 1)")
    p.add_argument("--index", default=":", help="frames of INPUT to label, ASE syntax (default: all)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data_generation.batch import label_file
    from ..data_generation.labelling import DFTSettings

    settings = DFTSettings(functional=args.functional, basis=args.basis, density_fit=not args.no_density_fit,
                           grid_level=args.grid_level, grid_response=not args.no_grid_response,
                           conv_tol=args.conv_tol)
    summary = label_file(args.input, args.output, settings, workers=args.workers,
                         threads_per_worker=args.threads_per_worker, charge=args.charge, field=args.field,
                         index=args.index)
    print(f"{settings.method}: labelled {summary['labelled']}, skipped {summary['skipped']} (already done), "
          f"failed {summary['failed']}; wall {summary['wall_s']:.1f} s, DFT time {summary['dft_wall_s']:.1f} s")
    for index, message in summary["failures"]:
        print(f"  frame {index}: {message}")
    return 1 if summary["failed"] else 0
