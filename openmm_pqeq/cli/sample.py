"""``openmm-pqeq sample-water``: random water clusters (and optional fields/ions) for DFT labelling."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Sample random water clusters by rigid placement with minimum-distance rules (hydrogen-bond donor,
acceptor or random placement next to a molecule already in the cluster) plus random O–H / H–O–H
distortions and thermal jitter, and write them to an extxyz file (Å).  The same arguments and seed
give the same structures.  A fraction of the small clusters can carry a uniform field
(info["field"], V/Å, random direction) and a fraction can hold one H3O+ or OH− (info["charge"]).
Label the output with `openmm-pqeq label`.

examples:
  openmm-pqeq sample-water clusters.extxyz --n-structures 200 --max-molecules 6 --seed 1
  openmm-pqeq sample-water clusters.extxyz --n-structures 360 --max-molecules 6 --seed 2026 \\
      --size-weights 1:130,2:140,3:55,4:22,5:8,6:5 --field-fraction 0.4 --max-field 0.5 \\
      --ion-fraction 0.1
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sample-water", help="sample random water clusters for DFT labelling",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", help="output extxyz file (overwritten)")
    p.add_argument("--n-structures", type=int, required=True, help="number of structures")
    p.add_argument("--max-molecules", type=int, default=6, help="largest cluster size (default: 6)")
    p.add_argument("--min-molecules", type=int, default=1, help="smallest cluster size (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--size-weights", default=None,
                   help="relative frequency of each cluster size, e.g. 1:0.3,2:0.4,3:0.3 "
                        "(default: proportional to 1/n)")
    p.add_argument("--field-fraction", type=float, default=0.0,
                   help="fraction of the small clusters (see --field-max-molecules) given a uniform "
                        "field (default: 0)")
    p.add_argument("--max-field", type=float, default=0.5,
                   help="largest field magnitude in V/Å; magnitudes are uniform in [0, max] (default: 0.5)")
    p.add_argument("--field-max-molecules", type=int, default=2,
                   help="only clusters up to this size get fields (default: 2)")
    p.add_argument("--ion-fraction", type=float, default=0.0,
                   help="fraction of (field-free) clusters with one H3O+ or OH− (default: 0)")
    p.add_argument("--thermal-sigma", type=float, default=0.02,
                   help="Gaussian jitter of every atom in Å (default: 0.02)")
    p.add_argument("--sigma-oh", type=float, default=0.03, help="spread of O–H lengths in Å (default: 0.03)")
    p.add_argument("--sigma-angle", type=float, default=5.0,
                   help="spread of H–O–H angles in degrees (default: 5)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import ase.io

    from ..data_generation.sampling import parse_size_weights, sample_water_clusters

    weights = parse_size_weights(args.size_weights) if args.size_weights else None
    frames = sample_water_clusters(
        args.n_structures, max_molecules=args.max_molecules, min_molecules=args.min_molecules,
        seed=args.seed, size_weights=weights, field_fraction=args.field_fraction, max_field=args.max_field,
        field_max_molecules=args.field_max_molecules, ion_fraction=args.ion_fraction,
        thermal_sigma=args.thermal_sigma, sigma_oh=args.sigma_oh, sigma_angle=args.sigma_angle)
    from .._atomic import atomic_path

    with atomic_path(args.output) as temporary:
        ase.io.write(temporary, frames, format="extxyz")
    sizes = {}
    for atoms in frames:
        sizes[atoms.info["n_molecules"]] = sizes.get(atoms.info["n_molecules"], 0) + 1
    n_field = sum(1 for a in frames if any(a.info["field"]))
    n_ion = sum(1 for a in frames if a.info["charge"] != 0)
    print(f"wrote {len(frames)} structures to {args.output}: by size "
          + ", ".join(f"{n}: {c}" for n, c in sorted(sizes.items()))
          + f"; {n_field} in a field, {n_ion} with an ion", file=sys.stderr)
    return 0
