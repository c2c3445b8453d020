"""Entry point of the ``openmm-pqeq`` command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import analyze, evaluate, finetune, fit_pqeq, label, label_response, md, sample, test_model, train

DESCRIPTION = """\
openmm-pqeq: an equivariant ML potential with polarizable charge equilibration (PQEq),
uniform external fields and D3 dispersion, for OpenMM.  Units on the command line: Å, eV,
e, V/Å.  Run `openmm-pqeq COMMAND --help` for the options of a command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openmm-pqeq", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    evaluate.add_parser(subparsers)
    md.add_parser(subparsers)
    analyze.add_parser(subparsers)
    sample.add_parser(subparsers)
    label.add_parser(subparsers)
    label_response.add_parser(subparsers)
    fit_pqeq.add_parser(subparsers)
    train.add_parser(subparsers)
    finetune.add_parser(subparsers)
    test_model.add_parser(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f"openmm-pqeq {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
