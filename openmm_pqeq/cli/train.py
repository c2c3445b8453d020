"""``openmm-pqeq train``: train a model from a YAML configuration."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Train the E0 network of a model E = E0 + E_PQEq + E_D3 on reference data (Δ-learning: PQEq
and D3 are frozen, so E0 learns E_ref − E_PQEq − E_D3; published loss 1·RMSE(E/atom) +
10·RMSE(F) + 100·RMSE(stress)).  CONFIG is a YAML file; examples/train_water.yaml comments
every key.  Writes into the output folder: model.pt (best validation weights, usable as
--model elsewhere), checkpoint.pt (to resume), metrics.jsonl (MAE/RMSE per quantity and
split for every epoch), config.yaml.  Units: Å, eV, e, V/Å; errors in meV/atom, meV/Å, meV/Å³.

Data-parallel on several processes (gloo on CPU, nccl on GPU):
  torchrun --nproc_per_node 2 -m openmm_pqeq.cli.main train CONFIG

examples:
  openmm-pqeq train examples/train_water.yaml
  openmm-pqeq train examples/train_water.yaml --epochs 5 --output runs/quick --overwrite
  openmm-pqeq train examples/train_water.yaml --resume            # continue runs/water-demo
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model from a YAML configuration (Δ-learning of E0)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG", help="training configuration (YAML)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                   help="resume from CHECKPOINT (default: checkpoint.pt of the output folder)")
    p.add_argument("--output", default=None, help="output folder (overrides output.dir)")
    p.add_argument("--epochs", type=int, default=None, help="number of epochs (overrides training.epochs)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (overrides device)")
    p.add_argument("--overwrite", action="store_true", help="start afresh in an output folder that holds a run")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, train

    config = TrainConfig.from_yaml(args.config)
    if args.output is not None:
        config.output.dir = args.output
    if args.epochs is not None:
        config.training.epochs = args.epochs
    if args.device is not None:
        config.device = args.device
    if args.resume is not None:
        config.training.resume = args.resume
    if args.overwrite:
        config.output.overwrite = True
    if args.quiet:
        config.output.progress = False
    config.validate()
    train(config)
    return 0
