"""Errors of a model on a dataset: the evaluation behind validation and ``openmm-pqeq test``.

Errors are those of the full model E0 + E_PQEq + E_D3 against the reference, summed over
batches (and over ranks under torch.distributed) in :class:`~openmm_pqeq.train.loss.ErrorSums`
and reported as MAE and RMSE in meV/atom (energy per atom), meV/Å (force components) and
meV/Å³ (stress components of periodic frames that have a reference stress).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from ..charge_constraint import ChargeConstraint, policy_of
from ..io import load_model
from ..model import PQEqModel, config_of
from .data import StructureDataset, load_dataset, split_indices
from .distributed import Distributed
from .longrange import attach_long_range
from .loss import ErrorSums
from .predict import predict_batch


def evaluate_dataset(model: PQEqModel, dataset: StructureDataset, batch_size: int = 16,
                     long_range: str = "cached", dist: Optional[Distributed] = None, progress: bool = False,
                     device: Optional[torch.device] = None, desc: str = "evaluate") -> ErrorSums:
    """Error sums of ``model`` on ``dataset`` (this rank's share; summed over ranks)."""
    from tqdm.auto import tqdm

    rank, world = (dist.rank, dist.world_size) if dist is not None else (0, 1)
    sums = ErrorSums()
    frames = torch.arange(rank, len(dataset), world)
    batches = [frames[i:i + batch_size] for i in range(0, len(frames), batch_size)]
    was_training = model.training
    model.eval()
    with torch.enable_grad():
        for idx in tqdm(batches, desc=desc, disable=not progress or rank != 0, leave=False):
            batch = dataset.batch(idx)
            if device is not None:
                batch = batch.to(device)
            sums.add(predict_batch(model, batch, long_range, training=False), batch)
    model.train(was_training)
    if dist is not None and dist.enabled:
        total = dist.all_reduce_sum(sums.to_tensor())
        sums = ErrorSums.from_tensor(total)
    return sums


def model_errors(model, data, split: str = "all", index: Optional[str] = None, batch_size: int = 16,
                 device: str = "cpu", cache_dir: Optional[str] = None, use_cache: bool = True,
                 progress: bool = False, **keys: str) -> Dict[str, Any]:
    """Errors of a saved model (file or shipped name) on an ASE-readable data file, under the
    charge constraints the model was trained with (one total charge for older model files).

    Parameters
    ----------
    model : str or Path
        Model file or shipped name.
    data : str or Path
        Data file (same conventions as training: energy eV, forces eV/Å, stress eV/Å³,
        ``charge`` and ``field`` in the frame info).
    split : {"all", "train", "validation", "test"}
        All frames, or one split of the model's training run (recomputed from the split
        settings stored in the model file; ``data`` must be the file it was trained on).
    index : str, optional
        Frames to read (ASE syntax); default ":" (or the training run's for a split).

    Returns
    -------
    dict
        ``energy_mae``/``energy_rmse`` meV/atom, ``forces_*`` meV/Å, ``stress_*`` meV/Å³
        (quantities present in the data), ``frames``, ``atoms``.
    """
    from ..io import read_model_file

    if split not in ("all", "train", "validation", "test"):
        raise ValueError(f"`split` is {split!r}; options are 'all', 'train', 'validation', 'test'")
    data_options = dict(keys)
    split_frames = None
    if split != "all":
        provenance = read_model_file(model)["metadata"].get("provenance", {}).get("training")
        if not provenance:
            raise ValueError(f"model {model} has no training provenance, so its {split} split is unknown; "
                             "use --split all")
        trained = provenance["data"].get("train", {})
        cfg = provenance["config"]["data"]
        index = index or cfg.get("index", ":")
        for key in ("energy_key", "forces_key", "stress_key", "charge_key", "field_key"):
            data_options.setdefault(key, cfg.get(key, key.split("_")[0]))
        s = provenance["split"]
        from_file = s.get(f"{split}_file", False) if split != "train" else False
        if from_file:
            raise ValueError(f"the {split} set of this model came from its own file "
                             f"({provenance['data'][split]['path']}); test on that file with --split all")
    loaded = load_model(model)
    policy = policy_of(loaded) or ChargeConstraint("total")  # the rule the model was trained with
    dataset = load_dataset(data, index=index or ":", cache_dir=cache_dir, use_cache=use_cache,
                           charge_constraint=policy, **data_options)
    if split != "all":
        if dataset.source["sha256"] != trained.get("sha256"):
            raise ValueError(f"{data} is not the file this model was trained on (SHA-256 "
                             f"{dataset.source['sha256'][:12]}… vs {str(trained.get('sha256'))[:12]}…), so its "
                             f"{split} split is undefined; use --split all")
        split_frames = split_indices(len(dataset), 0.0 if s["validation_file"] else s["validation_fraction"],
                                     0.0 if s["test_file"] else s["test_fraction"], s["seed"])[split]
    attach_long_range(dataset, config_of(loaded), progress=progress,
                      cache_dir=None if dataset.source.get("cache") else cache_dir)
    if split_frames is not None:
        dataset = dataset.subset(split_frames)
    if len(dataset) == 0:
        raise ValueError(f"the {split} split is empty")
    loaded.to(torch.device(device))
    sums = evaluate_dataset(loaded, dataset, batch_size, "cached", None, progress, torch.device(device),
                            desc="test")
    return {**sums.metrics(), "frames": len(dataset), "atoms": dataset.num_atoms}
