"""``openmm-pqeq label-response``: DFT electrostatic-response reference data."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Build the response molecule set (closed-shell G2 molecules, ionic molecules and ion-pair dimers,
atomic and molecular ions, ion-water complexes, distorted copies; elements H C N O F Si P S Cl
Li Na K Mg Ca) or read structures from --input, and label each with Kohn-Sham DFT through PySCF:
zero-field dipole (e·Å), polarizability tensor by central finite fields (Å³), energy changes
E(±F) - E(0) under uniform fields along x, y, z (eV), and the electrostatic potential (V) on
points at 1.4-2.0 x the van der Waals radii.  Appends to OUTPUT (extxyz, info keys; see
examples/data/README.md) and skips structures already there (resumable).  The test split used by
`openmm-pqeq fit-pqeq` is a seeded hash of each structure's family name.

Needs PySCF:  pip install pyscf

--polarizability analytic computes the polarizability by coupled-perturbed Kohn-Sham from the
zero-field SCF (closed shells; no field SCFs, so no field energies, and free of the
finite-field truncation error).  --max-minutes starts no new structure after that much
wall time (run it again to continue), for labelling in bounded chunks.

--set organics labels the larger organic molecules instead (chains and rings of 3-12 heavy
atoms: alkanes, alkenes, alcohols, ethers, amines, carbonyls, aromatics, halides, nitriles, sulfur
compounds; RDKit geometries; each with a fixed train/test split; needs RDKit), cheapest first.

examples (the shipped examples/data/response_pbe.extxyz, the water set with forces for atomic
polar tensors, examples/data/water_response_pbe.extxyz, and the organic set):
  OMP_NUM_THREADS=1 openmm-pqeq label-response examples/data/response_pbe.extxyz
  OMP_NUM_THREADS=1 openmm-pqeq label-response --input water_response_structures.extxyz --forces \
      --field-step 0.1 examples/data/water_response_pbe.extxyz
  OMP_NUM_THREADS=1 openmm-pqeq label-response examples/data/organics_pbe.extxyz --set organics \
      --max-minutes 60
(the shipped files are labelled with finite fields; a structure already in OUTPUT under other
options, --polarizability analytic for one, is named and labelled again)
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("label-response", help="DFT dipoles, polarizabilities, field energies and ESP (PySCF)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", help="output extxyz file (appended to; finished structures are skipped)")
    p.add_argument("--input", default=None, help="structures to label instead of the built-in set (ASE-readable; "
                   "info['charge'] is used)")
    p.add_argument("--set", dest="molecule_set", choices=["small", "organics"], default="small",
                   help="built-in structures: the small-molecule and ion set (default) or the larger organic "
                        "molecules (openmm_pqeq.data_generation.organics)")
    p.add_argument("--max-heavy-organic", type=int, default=12,
                   help="largest organic molecule taken, in heavy atoms (--set organics; default: 12)")
    p.add_argument("--seed", type=int, default=0, help="seed of the distorted copies (default: 0)")
    p.add_argument("--max-atoms", type=int, default=5, help="largest G2 molecule taken (default: 5)")
    p.add_argument("--max-heavy", type=int, default=2,
                   help="largest number of atoms beyond neon in a G2 molecule (default: 2)")
    p.add_argument("--distorted", type=int, default=16, help="number of distorted copies (default: 16)")
    p.add_argument("--field-step", type=float, default=0.25, help="finite field in V/Å (default: 0.25)")
    p.add_argument("--functional", default="pbe", help="exchange-correlation functional (default: pbe)")
    p.add_argument("--basis", default="def2-svpd", help="basis set (default: def2-svpd)")
    p.add_argument("--grid-level", type=int, default=2, help="PySCF DFT grid level 0-9 (default: 2)")
    p.add_argument("--conv-tol", type=float, default=1e-9, help="SCF energy tolerance in Hartree (default: 1e-9)")
    p.add_argument("--no-esp", action="store_true", help="skip the electrostatic potential")
    p.add_argument("--forces", action="store_true",
                   help="also analytic forces (with the grid response) at zero field and at the six finite fields: "
                        "per-atom arrays forces (N, 3) and field_forces (N, 18) in eV/Å, for atomic polar tensors")
    p.add_argument("--polarizability", choices=["finite-field", "analytic"], default="finite-field",
                   help="finite-field: central differences of the dipole at +-F plus the field energies (default); "
                        "analytic: coupled-perturbed Kohn-Sham at zero field, no field energies (closed shells)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="start no new structure after this many minutes (resumable: rerun to continue)")
    p.add_argument("--threads", type=int, default=1, help="OpenMP threads (default: 1)")
    p.add_argument("--list", action="store_true", help="only list the structures and exit")
    p.add_argument("--prune", action="store_true",
                   help="afterwards, drop frames of OUTPUT that are not in the current structure list")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data_generation.labelling import DFTSettings
    from ..data_generation.response import label_response_file, response_molecules, split_families

    if args.input:
        import ase.io

        frames = ase.io.read(args.input, ":")
        for index, atoms in enumerate(frames):
            atoms.info.setdefault("name", f"{args.input}:{index}")
            atoms.info.setdefault("family", atoms.info["name"])
    elif args.molecule_set == "organics":
        from ..data_generation.organics import organic_molecules

        frames = organic_molecules(max_heavy=args.max_heavy_organic)
    else:
        frames = response_molecules(seed=args.seed, n_distorted=args.distorted, max_atoms=args.max_atoms,
                                    max_heavy=args.max_heavy)
    if args.list:
        split = split_families(frames)
        test = set(split["test"])
        for index, atoms in enumerate(frames):
            print(f"{index:4d} {'test ' if index in test else 'train'} {atoms.info.get('charge', 0):+d} "
                  f"{len(atoms):2d} {atoms.info.get('name')}")
        return 0
    settings = DFTSettings(functional=args.functional, basis=args.basis, grid_level=args.grid_level,
                           conv_tol=args.conv_tol, grid_response=args.forces)
    if args.forces and args.polarizability == "analytic":
        raise SystemExit("label-response: --forces needs the finite-field SCFs; drop --polarizability analytic")
    summary = label_response_file(frames, args.output, settings, field_step=args.field_step,
                                  esp=not args.no_esp, threads=args.threads, forces=args.forces,
                                  polarizability=args.polarizability, max_minutes=args.max_minutes)
    print(f"{settings.method}: labelled {summary['labelled']}, skipped {summary['skipped']}, failed "
          f"{summary['failed']}, left {summary['left']}; wall {summary['wall_s']:.1f} s, "
          f"DFT {summary['dft_wall_s']:.1f} s")
    for index, message in summary["failures"]:
        print(f"  structure {index}: {message}")
    if args.prune:
        from ..data_generation.response import prune_response_file

        dropped = prune_response_file(args.output, frames, settings, args.field_step, args.forces,
                                      args.polarizability)
        print(f"pruned {dropped} frames not in the structure list")
    return 1 if summary["failed"] else 0
