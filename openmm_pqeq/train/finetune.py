"""Finetuning a saved model on new data: the protocol's defaults and the refit of E0's statistics.

The published protocol (docs/method/learning.md; Ko et al. 2021 charge-state systems in Gao et al. 2025):
force MSE as the only loss, all but the last two linear layers frozen, AdamW with lr 1e-4,
batch 32, 100 epochs, 80/20 split, best-validation checkpoint.  Those are the defaults of
:func:`finetune_config`, of :func:`~openmm_pqeq.train.finetune` (which runs it) and of
``openmm-pqeq finetune``.  Which parameters train (``freeze``) is
:mod:`openmm_pqeq.train.freezing`'s job.

A finetuning run is any training run whose configuration loads a model (``model.init``).  The
per-species scale and shift of E0 are then kept, except that :func:`finetune_statistics` refits
the shift to the residual of the starting model on the new data when asked (``refit_shift``;
useful when the new reference energies come from another code or functional).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import torch

from .config import StatisticsConfig, TrainConfig
from .data import StructureDataset
from .predict import predict_batch
from .statistics import fit_species_shift, fit_statistics


def finetune_statistics(model: torch.nn.Module, train: StructureDataset, statistics: StatisticsConfig,
                        long_range: str, device: torch.device) -> Dict[str, Any]:
    """Set the per-species statistics of a loaded ``model`` about to be finetuned on ``train``.

    - ``statistics.shift == "least_squares"`` and some frames have energies: the shift is
      refitted to the residual ``E_ref − E_model`` (eV) of the starting model (moved to
      ``device``; ``long_range`` as in training) by least squares over those frames;
    - explicit values (a shift dict ``{element: eV}`` or a scale number): they are set;
    - otherwise the model keeps its statistics.

    Returns what was set, for the model's provenance (empty when nothing changed).
    """
    e0 = model.e0
    elements = list(model.elements)
    if statistics.shift == "least_squares" and bool(train.has_energy.any()):
        current_model = model.to(device)
        residual = torch.zeros(len(train), dtype=torch.float64)
        for start in range(0, len(train), 32):
            idx = torch.arange(start, min(start + 32, len(train)))
            batch = train.batch(idx).to(device)
            with torch.enable_grad():
                pred = predict_batch(current_model, batch, long_range)
            residual[idx] = (batch.energy - pred["energy"]).cpu()
        delta = fit_species_shift(train, residual, elements, train.has_energy)
        current = dict(zip(e0.elements, e0.per_species_shift.tolist()))
        shift = {z: current[z] + delta[z] for z in delta}
        e0.set_species_statistics(shift=shift)
        return {"shift": shift, "shift_refit_delta": delta}
    if isinstance(statistics.shift, dict) or not isinstance(statistics.scale, str):
        fitted = fit_statistics(train, elements, statistics.shift if isinstance(statistics.shift, dict) else "none",
                                statistics.scale if not isinstance(statistics.scale, str) else "none")
        e0.set_species_statistics(**fitted)
        return fitted
    return {}


def finetune_config(model: Union[str, Path], data: Union[str, Path], output_dir: Union[str, Path] = "runs/finetune",
                    loss: str = "forces", freeze: Union[str, Sequence[str]] = "readout", epochs: int = 100,
                    lr: float = 1e-4, batch_size: int = 32, validation_fraction: float = 0.2,
                    test_fraction: float = 0.0, split_seed: int = 1, seed: int = 0, ema_decay: float = 0.0,
                    scheduler: str = "none", refit_shift: bool = False, long_range: str = "cached",
                    device: str = "auto", dtype: str = "float32", progress: bool = True, overwrite: bool = False,
                    resume: Optional[str] = None, description: str = "", **data_options: Any):
    """The :class:`~openmm_pqeq.train.config.TrainConfig` of a finetuning run (module docstring);
    :func:`~openmm_pqeq.train.finetune` runs it."""
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

