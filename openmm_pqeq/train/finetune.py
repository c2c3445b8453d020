"""Finetuning a saved model on new data, and the choice of trainable parameters.

The published protocol (docs/method/learning.md; Ko et al. 2021 charge-state systems in Gao et al. 2025):
force MSE as the only loss, all but the last two linear layers frozen, AdamW with lr 1e-4,
batch 32, 100 epochs, 80/20 split, best-validation checkpoint.  Those are the defaults of
:func:`finetune` and of ``openmm-pqeq finetune``.

Freezing options (``freeze``):

- ``"none"``: every E0 parameter is trained;
- ``"readout"``: only the last two linear layers: the readout (node scalars → energy) and the
  linear maps that make the last node features (``linear_down`` and ``self_connection`` of
  the last interaction block, whose sum is one linear layer on [messages, features]);
- a list of ``fnmatch`` patterns of parameter names to train (e.g. ``["e0.readout.*"]``).

The per-species scale and shift are buffers, never trained; ``refit_shift`` refits the shift
to the residual of the starting model on the new data (useful when the new reference energies
come from another code or functional).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch

FREEZE_OPTIONS = ("none", "readout")


def readout_patterns(model: torch.nn.Module) -> List[str]:
    """Parameter-name patterns of the last two linear layers of ``model.e0``."""
    last = len(model.e0.blocks) - 1
    return ["e0.readout.*", f"e0.blocks.{last}.linear_down.*", f"e0.blocks.{last}.self_connection.*"]


def select_trainable(model: torch.nn.Module, freeze: Union[str, Sequence[str]] = "none"
                     ) -> List[Tuple[str, torch.nn.Parameter]]:
    """Set ``requires_grad`` by ``freeze`` (module docstring) and return the trainable
    ``(name, parameter)`` pairs: E0 parameters, and the PQEq parameters freed by the model's
    ``pqeq.trainable`` configuration (D3 has none)."""
    if model.e0 is None:
        raise ValueError("the model has no E0 network: nothing to train")
    if isinstance(freeze, str):
        if freeze not in FREEZE_OPTIONS:
            raise ValueError(f"`freeze` is {freeze!r}; options are {', '.join(map(repr, FREEZE_OPTIONS))} "
                             "or a list of parameter-name patterns to train")
        patterns = ["e0.*"] if freeze == "none" else readout_patterns(model)
    else:
        patterns = list(freeze)
    trainable = []
    for name, param in model.named_parameters():
        # PQEq parameters freed in the model configuration (``pqeq.trainable``) train with E0
        keep = (name.startswith("e0.") and any(fnmatch.fnmatchcase(name, p) for p in patterns)) or \
            name.startswith("pqeq.trainable_parameters.")
        param.requires_grad_(keep)
        if keep:
            trainable.append((name, param))
    if not trainable:
        names = [n for n, _ in model.named_parameters()][:8]
        raise ValueError(f"`freeze` = {freeze!r} leaves no parameter to train (parameters: {names} ...)")
    return trainable


def finetune_config(model: Union[str, Path], data: Union[str, Path], output_dir: Union[str, Path] = "runs/finetune",
                    loss: str = "forces", freeze: Union[str, Sequence[str]] = "readout", epochs: int = 100,
                    lr: float = 1e-4, batch_size: int = 32, validation_fraction: float = 0.2,
                    test_fraction: float = 0.0, split_seed: int = 1, seed: int = 0, ema_decay: float = 0.0,
                    scheduler: str = "none", refit_shift: bool = False, long_range: str = "cached",
                    device: str = "auto", dtype: str = "float32", progress: bool = True, overwrite: bool = False,
                    resume: Optional[str] = None, description: str = "", **data_options: Any):
    """The :class:`~openmm_pqeq.train.config.TrainConfig` of a finetuning run (see :func:`finetune`)."""
    from .config import TrainConfig

    if loss not in ("forces", "full"):
        raise ValueError(f"`loss` is {loss!r}; options are 'forces' (force MSE only, published) or 'full' "
                         "(1·RMSE(E/atom) + 10·RMSE(F) + 100·RMSE(σ))")
    values = {
        "data": {"train": str(data), "validation_fraction": validation_fraction, "test_fraction": test_fraction,
                 "split_seed": split_seed, **data_options},
        "model": {"init": str(model)},
        "statistics": {"shift": "least_squares" if refit_shift else "none", "scale": "none"},
        "loss": ({"force_only": True, "form": "mse", "forces_weight": 1.0} if loss == "forces" else {}),
        "training": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "optimizer": "adamw",
                     "scheduler": scheduler, "ema_decay": ema_decay, "freeze": "none",
                     "long_range": long_range, "resume": resume},
        "output": {"dir": str(output_dir), "progress": progress, "overwrite": overwrite,
                   "description": description or f"finetuned from {model} on {Path(data).name}"},
        "seed": seed, "device": device, "dtype": dtype,
    }
    config = TrainConfig.from_dict(values)
    config.training.freeze = freeze  # may be a list of patterns (Python API)
    return config


def finetune(model: Union[str, Path], data: Union[str, Path], output_dir: Union[str, Path] = "runs/finetune",
             **options: Any):
    """Finetune a saved model (file or shipped name) on ``data`` (any ASE-readable file).

    Defaults follow the published protocol (module docstring); every keyword of
    :func:`finetune_config` can be changed.  Returns the
    :class:`~openmm_pqeq.train.trainer.TrainResult`; the finetuned model is
    ``<output_dir>/model.pt``.

    >>> result = finetune("water-demo", "new_data.extxyz", "runs/ft", epochs=20)  # doctest: +SKIP
    """
    from .trainer import train

    return train(finetune_config(model, data, output_dir, **options))
