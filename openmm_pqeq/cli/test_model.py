"""``openmm-pqeq test``: error table of a model on a data file."""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Print the errors of a model (file or shipped name) on DATA (any ASE-readable file with
reference energy eV, forces eV/Å, optional stress eV/Å³; `charge` e and `field` V/Å per frame
in the frame info): MAE and RMSE of the energy per atom (meV/atom), the force components
(meV/Å) and the stress components (meV/Å³, periodic frames with stress).  The model's full
energy E0 + E_PQEq + E_D3 is compared with the reference.

examples:
  openmm-pqeq test water-demo water.extxyz
  openmm-pqeq test runs/water/model.pt water.extxyz --split test     # the run's own test split
  openmm-pqeq test model.pt other.extxyz --index ::10 --json
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("test", help="error table (MAE/RMSE of energy, forces, stress, molecular net forces) of a model on data",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model file or shipped model name")
    p.add_argument("data", metavar="DATA", help="data file (extxyz or any ASE-readable format)")
    p.add_argument("--split", default="all", choices=["all", "train", "validation", "test"],
                   help="all frames, or a split of the model's training run (DATA must be its training file; "
                        "default: all)")
    p.add_argument("--index", default=None, help="frames to read, ASE syntax (default: all)")
    p.add_argument("--batch-size", type=int, default=16, help="structures per evaluation batch (default: 16)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--cache-dir", default=None, help="folder of the cached tensors (default: next to DATA)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write cached tensors")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..train.loss import format_table
    from ..train.evaluation import model_errors

    metrics = model_errors(args.model, args.data, split=args.split, index=args.index, batch_size=args.batch_size,
                           device=args.device, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                           progress=not args.quiet and not args.json)
    if args.json:
        json.dump({"model": str(args.model), "data": str(args.data), "split": args.split, **metrics}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    title = (f"{args.model} on {args.data}" + (f" ({args.split} split)" if args.split != "all" else "")
             + f": {metrics['frames']} frames, {metrics['atoms']} atoms")
    print(format_table(metrics, title))
    return 0
