"""``openmm-pqeq finetune``: finetune a saved model on new data."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Finetune a saved model (file or shipped name) on DATA (any ASE-readable file: extxyz with
energy eV, forces eV/Å, optional stress, `charge` e and `field` V/Å per frame).  Defaults
follow the published protocol: force MSE as the only loss, all but the last two linear layers
frozen, AdamW lr 1e-4, batch 32, 100 epochs, 80/20 train/validation split, best-validation
model.  PQEq and D3 stay frozen (Δ-learning).  Writes model.pt, checkpoint.pt, metrics.jsonl
and config.yaml into the output folder.

examples:
  openmm-pqeq finetune water-demo new.extxyz --output runs/ft
  openmm-pqeq finetune model.pt new.extxyz --loss full --freeze none --epochs 50 --lr 3e-4
  torchrun --nproc_per_node 2 -m openmm_pqeq.cli.main finetune model.pt new.extxyz
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("finetune", help="finetune a saved model on new data (force-only loss, freezing)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model file or shipped model name")
    p.add_argument("data", metavar="DATA", help="data file (extxyz or any ASE-readable format)")
    p.add_argument("--output", default="runs/finetune", help="output folder (default: runs/finetune)")
    p.add_argument("--loss", default="forces", choices=["forces", "full"],
                   help="forces: force MSE only (published); full: 1·RMSE(E/atom) + 10·RMSE(F) + "
                        "100·RMSE(stress) (default: forces)")
    p.add_argument("--freeze", default="readout", choices=["readout", "none"],
                   help="readout: train only the last two linear layers (published); none: train all of E0 "
                        "(default: readout)")
    p.add_argument("--epochs", type=int, default=100, help="epochs (default: 100)")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (default: 1e-4)")
    p.add_argument("--batch-size", type=int, default=32, help="structures per step (default: 32)")
    p.add_argument("--validation-fraction", type=float, default=0.2, help="held-out fraction (default: 0.2)")
    p.add_argument("--test-fraction", type=float, default=0.0, help="test fraction (default: 0)")
    p.add_argument("--split-seed", type=int, default=1, help="seed of the split (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch order (default: 0)")
    p.add_argument("--scheduler", default="none", choices=["none", "plateau", "cosine"],
                   help="learning-rate schedule (default: none)")
    p.add_argument("--ema-decay", type=float, default=0.0, help="EMA of the weights, 0 = off (default: 0)")
    p.add_argument("--refit-shift", action="store_true",
                   help="refit the per-element energy shift to the new data first (e.g. another DFT code)")
    p.add_argument("--index", default=":", help="frames to read, ASE syntax (default: all)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                   help="resume from CHECKPOINT (default: checkpoint.pt of the output folder)")
    p.add_argument("--overwrite", action="store_true", help="start afresh in an output folder that holds a run")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..train import train
    from ..train.finetune import finetune_config

    config = finetune_config(
        args.model, args.data, args.output, loss=args.loss, freeze=args.freeze, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction, split_seed=args.split_seed, seed=args.seed, ema_decay=args.ema_decay,
        scheduler=args.scheduler, refit_shift=args.refit_shift, device=args.device, progress=not args.quiet,
        overwrite=args.overwrite, resume=args.resume, index=args.index)
    train(config)
    return 0
