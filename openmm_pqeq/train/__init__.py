"""Training, finetuning and testing of models (docs/method/learning.md).

- :mod:`.config`: :class:`TrainConfig` (dataclasses + YAML; ``examples/train_water.yaml``);
- :mod:`.data`: :func:`load_dataset` (any ASE-readable file, cached as tensors), :func:`split_indices`;
- :mod:`.longrange`: PQEq + D3 terms per frame, cached by configuration (Δ-learning targets);
- :mod:`.statistics`: per-element shift (least squares) and scale of E0;
- :mod:`.predict`: batched energies, forces and stresses;
- :mod:`.loss`: :class:`Loss` (published weights 1/10/100) and error metrics;
- :mod:`.trainer`: :func:`train` (schedule, EMA, best-validation model, resume, metrics log);
- :mod:`.evaluation`: :func:`model_errors` (``openmm-pqeq test``), :func:`evaluate_dataset`;
- :mod:`.finetune`: the finetuning protocol (:func:`~.finetune.finetune_config`, shift refit); :func:`finetune` runs it;
- :mod:`.freezing`: :func:`select_trainable` (which parameters train: ``freeze``);
- :mod:`.distributed`: data-parallel training under ``torchrun``.

>>> from openmm_pqeq.train import TrainConfig, train
>>> config = TrainConfig.from_yaml("examples/train_water.yaml")  # doctest: +SKIP
>>> result = train(config)  # doctest: +SKIP
"""

from .config import TrainConfig
from .data import StructureDataset, load_dataset, split_indices
from .evaluation import evaluate_dataset, model_errors
from .freezing import select_trainable
from .loss import ErrorSums, Loss, format_table
from .predict import predict_batch
from .trainer import TrainResult, Trainer, finetune, train

__all__ = [
    "TrainConfig",
    "StructureDataset",
    "load_dataset",
    "split_indices",
    "finetune",
    "select_trainable",
    "ErrorSums",
    "Loss",
    "format_table",
    "predict_batch",
    "TrainResult",
    "Trainer",
    "evaluate_dataset",
    "model_errors",
    "train",
]
