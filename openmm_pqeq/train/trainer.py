"""The training loop: Δ-learning of E0 with PQEq and D3 frozen (docs/method/learning.md).

The loss compares the *total* energy, forces and stress ``E0 + E_PQEq + E_D3`` with the
reference.  With PQEq and D3 frozen this is exactly the published Δ-learning: E0 is fitted to
``E_ref − E_PQEq − E_D3`` (and the same for forces and stress), it never sees charges and
never double counts electrostatics or dispersion.

One run (:func:`train`):

1. read the data through the tensor cache and split it (fixed seed);
2. build the model (elements and E0's ``avg_num_neighbors`` from the data), or load one
   (``model.init``, finetuning), or restore a checkpoint (``training.resume``);
3. compute the long-range terms of every frame once (cached, keyed by the PQEq/D3 config and
   the charge-constraint policy ``model.charge_constraint``, which gives each frame its groups
   and is recorded in the model file);
4. fit the per-element energy shift (least squares on the Δ-target) and scale (RMS Δ-force);
5. train with AdamW/Adam, a learning-rate schedule, optional EMA of the weights and gradient
   clipping; after each epoch evaluate the validation split (with the EMA weights), keep the
   best-validation weights, write ``model.pt`` (best weights), ``checkpoint.pt`` (to resume)
   and one line of ``metrics.jsonl`` (MAE and RMSE per quantity per split);
6. finally evaluate every split with the best weights and store the errors in the model
   file's provenance.

Under ``torchrun`` the same code runs data-parallel (:mod:`~openmm_pqeq.train.distributed`).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch

from ..charge_constraint import ChargeConstraint, policy_of, set_policy
from ..io import load_model, model_weights, save_model
from ..model import PQEqModel, build_model, config_of
from ..training_range import merge_training_ranges, set_training_range, training_range_of, training_range_of_dataset
from .config import TrainConfig
from .data import StructureDataset, epoch_batches, load_dataset, save_atomic, split_indices
from .distributed import init_distributed, shutdown
from .finetune import finetune_config, finetune_statistics
from .freezing import select_trainable
from .longrange import attach_long_range
from .evaluation import evaluate_dataset
from .loss import ErrorSums, Loss, format_table
from .predict import predict_batch
from .statistics import fit_statistics, structures_for_neighbors

CHECKPOINT_FORMAT = "openmm_pqeq.checkpoint"
CHECKPOINT_VERSION = 1
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainResult:
    """What :func:`train` returns (the same on every rank)."""

    model: PQEqModel
    #: split -> metrics (``energy_mae`` meV/atom, ``forces_rmse`` meV/Å, ...), best weights.
    metrics: Dict[str, Dict[str, float]]
    output_dir: Path
    model_path: Path
    best_epoch: int
    epochs_run: int
    history: List[Dict[str, Any]] = field(default_factory=list)


class ExponentialMovingAverage:
    """EMA of parameters: θ̄ ← d θ̄ + (1 − d) θ, with d = min(decay, (1 + n)/(10 + n)) at step n."""

    def __init__(self, params: List[torch.nn.Parameter], decay: float):
        self.params = params
        self.decay = decay
        self.steps = 0
        self.shadow = [p.detach().clone() for p in params]

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        d = min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        for s, p in zip(self.shadow, self.params):
            s.mul_(d).add_(p.detach(), alpha=1.0 - d)

    @contextlib.contextmanager
    def applied(self):
        """Temporarily put the averaged weights into the model."""
        saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for s, p in zip(self.shadow, self.params):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for s, p in zip(saved, self.params):
                    p.copy_(s)

    def state_dict(self) -> Dict[str, Any]:
        return {"steps": self.steps, "decay": self.decay, "shadow": [s.cpu() for s in self.shadow]}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        for s, v in zip(self.shadow, state["shadow"]):
            s.copy_(v)


def _r_max(e0_config: Dict[str, Any]) -> float:
    from ..nn.e0 import PRESETS

    preset = PRESETS.get(e0_config.get("preset"), {}) if e0_config.get("preset") else {}
    r_max = e0_config.get("r_max", preset.get("r_max"))
    if r_max is None:
        raise ValueError("`model.e0` needs `r_max` (or a `preset`)")
    return float(r_max)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class Trainer:
    """One training run described by a :class:`TrainConfig` (module docstring)."""

    def __init__(self, config: TrainConfig):
        config.validate()
        self.config = config
        self.dist = init_distributed(config.device)
        self.device = self.dist.device
        self.out = Path(config.output.dir)
        self.progress = bool(config.output.progress) and self.dist.is_main
        self.loss_fn = Loss(config.loss)
        self.history: List[Dict[str, Any]] = []

    # ------------------------------------------------------------------ set-up
    def _policy(self) -> ChargeConstraint:
        """The charge-constraint policy of the run: the configured one, else (finetuning) that of
        the starting model, else one total charge."""
        cfg = self.config.model
        if cfg.charge_constraint is not None:
            configured = ChargeConstraint.from_dict(cfg.charge_constraint)
            if cfg.init is not None:
                start = policy_of(load_model(cfg.init))
                if start is not None and start != configured:
                    raise ValueError(f"`model.charge_constraint` {configured.to_dict()} differs from the rule model "
                                     f"{cfg.init!r} was trained with ({start.to_dict()}); its E0 corrects the PQEq "
                                     "energy of that rule. Leave `model.charge_constraint` out to keep it")
            return configured
        if cfg.init is not None:
            return policy_of(load_model(cfg.init)) or ChargeConstraint("total")
        return ChargeConstraint("total")

    def _load(self, path: str) -> StructureDataset:
        d = self.config.data
        kwargs = dict(index=d.index, cache_dir=d.cache_dir, energy_key=d.energy_key, forces_key=d.forces_key,
                      stress_key=d.stress_key, charge_key=d.charge_key, field_key=d.field_key,
                      charge_constraint=self.policy)
        if self.dist.is_main:  # rank 0 converts the file; the others then read the cache
            dataset = load_dataset(path, **kwargs)
        self.dist.barrier()
        if not self.dist.is_main:
            dataset = load_dataset(path, **kwargs)
        return dataset

    def _datasets(self) -> Dict[str, StructureDataset]:
        d = self.config.data
        full = {"train": self._load(d.train)}
        for name in ("validation", "test"):
            if getattr(d, name) is not None:
                full[name] = self._load(getattr(d, name))
        self.split = split_indices(len(full["train"]), 0.0 if d.validation is not None else d.validation_fraction,
                                   0.0 if d.test is not None else d.test_fraction, d.split_seed)
        return full

    def _build(self, full: Dict[str, StructureDataset]) -> PQEqModel:
        cfg = self.config.model
        data_elements = sorted(set().union(*[set(ds.elements) for ds in full.values()]))
        if cfg.init is not None:
            model = load_model(cfg.init)
            missing = sorted(set(data_elements) - set(model.elements))
            if missing:
                raise ValueError(f"the data contain elements {missing} that model {cfg.init!r} does not support "
                                 f"(model elements: {model.elements})")
            if model.e0 is None:
                raise ValueError(f"model {cfg.init!r} has no E0 network: nothing to finetune")
            return model
        elements = data_elements if cfg.elements == "auto" else list(cfg.elements)
        e0 = dict(cfg.e0)
        if e0.get("avg_num_neighbors", "auto") == "auto":
            from ..nn.e0 import average_num_neighbors

            train = full["train"].subset(self.split["train"])
            e0["avg_num_neighbors"] = round(average_num_neighbors(structures_for_neighbors(train), _r_max(e0)), 4)
        model_config = {"elements": elements, "e0": e0, "pqeq": cfg.pqeq, "d3": cfg.d3}
        torch.manual_seed(self.config.seed)
        with _default_dtype(torch.float64):  # PQEq/D3 tables in float64; E0 cast below
            return build_model(model_config)

    def setup(self) -> None:
        config = self.config
        resume = config.training.resume
        if resume == "auto":
            resume = str(self.out / "checkpoint.pt")
        self.checkpoint = None
        if resume is not None:
            if not Path(resume).is_file():
                raise FileNotFoundError(f"checkpoint {resume!r} to resume from does not exist")
            self.checkpoint = torch.load(resume, map_location="cpu", weights_only=True)
            if self.checkpoint.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"{resume} is not an openmm_pqeq training checkpoint")
        elif self.dist.is_main and (self.out / "checkpoint.pt").exists() and not config.output.overwrite:
            raise ValueError(f"output folder {self.out} already holds a training run; resume it "
                             "(`training.resume: auto`, --resume) or allow overwriting (`output.overwrite`, --overwrite)")
        self.policy = self._policy()
        full = self._datasets()
        if self.checkpoint is not None:
            with _default_dtype(torch.float64):
                self.model = build_model(self.checkpoint["model_config"])
        else:
            self.model = self._build(full)
        self.model.e0.to(_DTYPES[config.dtype])
        set_policy(self.model, self.policy)
        model_config = config_of(self.model)
        for dataset in full.values():
            attach_long_range(dataset, model_config, dist=self.dist, progress=self.progress,
                              cache_dir=None if dataset.source.get("cache") else config.data.cache_dir)
        self.sets = {"train": full["train"].subset(self.split["train"])}
        self.sets["validation"] = full.get("validation", full["train"].subset(self.split["validation"]))
        self.sets["test"] = full.get("test", full["train"].subset(self.split["test"]))
        self.sources = {name: ds.source for name, ds in full.items()}
        if len(self.sets["train"]) == 0:
            raise ValueError("the training split is empty")
        train_tensors = self.sets["train"].tensors
        if config.loss.molecule_forces_weight > 0 and not bool(
                (train_tensors["has_forces"] & (train_tensors["n_groups"] > 1)).any()):
            raise ValueError(f"`loss.molecule_forces_weight` is {config.loss.molecule_forces_weight} but no training "
                             f"frame with forces has more than one charge group (charge constraint: "
                             f"{self.policy.to_dict()}): give `model.charge_constraint: {{rule: molecules}}`")
        # the model file records the range of its training data (finetuning: both models' data)
        set_training_range(self.model, merge_training_ranges(training_range_of(self.model),
                                                             training_range_of_dataset(self.sets["train"])))
        self.statistics: Dict[str, Any] = {}
        if self.checkpoint is None:
            self._fit_statistics()
        self.model.to(self.device)
        self.trainable = select_trainable(self.model, config.training.freeze)
        if any(n.startswith("pqeq.trainable_parameters.") for n, _ in self.trainable) \
                and config.training.long_range != "online":
            raise ValueError("the model has trainable PQEq parameters (pqeq.trainable), so cached long-range "
                             "Δ-targets would be stale: set `training.long_range: online`")
        self.params = [p for _, p in self.trainable]
        t = config.training
        optimizer = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer(self.params, lr=t.lr, weight_decay=t.weight_decay)
        if t.scheduler == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="min", factor=t.plateau_factor, patience=t.plateau_patience, min_lr=t.min_lr)
        elif t.scheduler == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=t.epochs,
                                                                        eta_min=t.min_lr)
        else:
            self.scheduler = None
        self.ema = ExponentialMovingAverage(self.params, t.ema_decay) if t.ema_decay > 0 else None
        self.start_epoch = 1
        self.best = {"epoch": 0, "loss": math.inf, "weights": None}
        self.since_best = 0
        if self.checkpoint is not None:
            self._restore(self.checkpoint)
        else:
            self.dist.broadcast_module(self.model)
            if self.ema is not None:
                self.ema.shadow = [p.detach().clone() for p in self.params]

    def _fit_statistics(self) -> None:
        s = self.config.statistics
        train = self.sets["train"]
        if self.config.model.init is not None:
            self.statistics = finetune_statistics(self.model, train, s, self.config.training.long_range,
                                                  self.device)
            return
        fitted = fit_statistics(train, list(self.model.elements), s.shift, s.scale)
        self.model.e0.set_species_statistics(shift=fitted.get("shift"), scale=fitted.get("scale"))
        self.statistics = fitted

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> Dict[str, torch.Tensor]:
        """Model state without the D3 reference tables (rebuilt from the configuration)."""
        return {k: v.clone() for k, v in model_weights(self.model).items() if not k.startswith("d3.")}

    def _weights(self) -> Dict[str, torch.Tensor]:
        """Model state with the EMA average applied (what is evaluated and saved)."""
        with self.ema.applied() if self.ema is not None else contextlib.nullcontext():
            return self._state()

    def _restore(self, checkpoint: Dict[str, Any]) -> None:
        self._load_weights(checkpoint["weights"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and checkpoint.get("scheduler") is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
            if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
                self.scheduler.T_max = self.config.training.epochs  # the total may have been raised
        if self.ema is not None and checkpoint.get("ema") is not None:
            self.ema.load_state_dict(checkpoint["ema"])
        self.start_epoch = int(checkpoint["epoch"]) + 1
        self.best = dict(checkpoint["best"])
        self.since_best = int(checkpoint.get("since_best", 0))
        self.statistics = checkpoint.get("statistics", {})

    def _load_weights(self, weights: Dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.model.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not k.startswith("d3.")]
        if missing or unexpected:
            raise ValueError(f"checkpoint weights do not match the model (missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]})")

    def _save_checkpoint(self, epoch: int) -> None:
        if not self.dist.is_main:
            return
        payload = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": epoch,
            "config": self.config.to_dict(), "model_config": config_of(self.model),
            "weights": self._state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "best": self.best, "since_best": self.since_best, "statistics": self.statistics,
            "world_size": self.dist.world_size,
        }
        save_atomic(payload, self.out / "checkpoint.pt")

    def _provenance(self, metrics: Optional[Dict[str, Dict[str, float]]] = None) -> Dict[str, Any]:
        d = self.config.data
        return {"training": {
            "data": {name: {k: v for k, v in src.items() if k != "cache"} for name, src in self.sources.items()},
            "split": {"seed": d.split_seed, "validation_fraction": d.validation_fraction,
                      "test_fraction": d.test_fraction, "validation_file": d.validation is not None,
                      "test_file": d.test is not None,
                      "frames": {k: len(v) for k, v in self.sets.items()}},
            "config": self.config.to_dict(),
            "statistics": {k: {str(z): v for z, v in table.items()} for k, table in self.statistics.items()},
            "best_epoch": self.best["epoch"], "best_validation_loss": self.best["loss"],
            "metrics": metrics or {}, "units": {"energy": "meV/atom", "forces": "meV/Å", "stress": "meV/Å³"},
            "world_size": self.dist.world_size,
        }}

    def _save_model(self, metrics: Optional[Dict[str, Dict[str, float]]] = None) -> Path:
        path = self.out / self.config.output.model_file
        if self.dist.is_main:
            current = self._state()
            self._load_weights(self.best["weights"])
            try:
                save_model(self.model, path, provenance=self._provenance(metrics),
                           description=self.config.output.description)
            finally:
                self._load_weights(current)
        return path

    def _log(self, record: Dict[str, Any]) -> None:
        self.history.append(record)
        if self.dist.is_main:
            with open(self.out / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ loop
    def _evaluate(self, name: str) -> ErrorSums:
        t = self.config.training
        with self.ema.applied() if self.ema is not None else contextlib.nullcontext():
            return evaluate_dataset(self.model, self.sets[name], t.batch_size, t.long_range, self.dist,
                                    self.progress, self.device, desc=name)

    def _train_epoch(self, epoch: int) -> ErrorSums:
        from tqdm.auto import tqdm

        t = self.config.training
        self.model.train()
        batches = epoch_batches(len(self.sets["train"]), t.batch_size, self.config.seed, epoch,
                                self.dist.rank, self.dist.world_size)
        sums = ErrorSums()
        bar = tqdm(batches, desc=f"epoch {epoch}/{t.epochs}", disable=not self.progress, leave=False)
        for idx in bar:
            batch = self.sets["train"].batch(idx).to(self.device)
            pred = predict_batch(self.model, batch, t.long_range, training=True)
            loss = self.loss_fn(pred, batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.dist.average_gradients(self.params)
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.params, t.grad_clip)
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update()
            sums.add(pred, batch, float(loss.detach()))
            bar.set_postfix(loss=f"{float(loss.detach()):.4g}")
        if self.dist.enabled:
            sums = ErrorSums.from_tensor(self.dist.all_reduce_sum(sums.to_tensor()))
        return sums

    def _selection_loss(self, val: ErrorSums, train: Optional[ErrorSums]) -> float:
        source = val if len(self.sets["validation"]) else train
        return self.loss_fn.from_sums(source) if source is not None else math.nan

    def fit(self) -> TrainResult:
        """Set up (if needed), train, evaluate; returns a :class:`TrainResult`."""
        if not hasattr(self, "model"):
            self.setup()
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.checkpoint is None and (self.out / "metrics.jsonl").exists():
                (self.out / "metrics.jsonl").unlink()
            self.config.to_yaml(self.out / "config.yaml")
        t = self.config.training
        if self.checkpoint is None:
            val = self._evaluate("validation")
            loss = self._selection_loss(val, None)
            if math.isnan(loss):
                loss = math.inf
            self.best = {"epoch": 0, "loss": loss, "weights": self._weights()}
            self._log({"epoch": 0, "lr": self.optimizer.param_groups[0]["lr"], "validation_loss": loss,
                       "validation": val.metrics()})
        epoch = self.start_epoch - 1
        for epoch in range(self.start_epoch, t.epochs + 1):
            start = time.time()
            train_sums = self._train_epoch(epoch)
            val = self._evaluate("validation")
            loss = self._selection_loss(val, train_sums)
            lr = self.optimizer.param_groups[0]["lr"]
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(loss)
            elif self.scheduler is not None:
                self.scheduler.step()
            improved = loss < self.best["loss"]
            if improved:
                self.best = {"epoch": epoch, "loss": loss, "weights": self._weights()}
                self.since_best = 0
                self._save_model()
            else:
                self.since_best += 1
            record = {"epoch": epoch, "lr": lr, "time_s": round(time.time() - start, 3), "validation_loss": loss,
                      "best": improved, "train": train_sums.metrics(), "validation": val.metrics()}
            self._log(record)
            self._save_checkpoint(epoch)
            if self.progress:
                summary = ", ".join(f"{k} {v:.4g}" for k, v in record["validation"].items() if k.endswith("rmse"))
                print(f"epoch {epoch}: validation loss {loss:.5g} ({summary}){' *' if improved else ''}", flush=True)
            if t.early_stopping_patience is not None and self.since_best >= t.early_stopping_patience:
                break
        return self._finish(epoch)

    def _finish(self, epochs_run: int) -> TrainResult:
        self._load_weights(self.best["weights"])
        difference = self.dist.max_parameter_difference(self.model)
        if difference > 0:
            warnings.warn(f"parameters differ between ranks by up to {difference:.3g}")
        metrics: Dict[str, Dict[str, float]] = {}
        t = self.config.training
        for name, dataset in self.sets.items():
            if len(dataset):
                sums = evaluate_dataset(self.model, dataset, t.batch_size, t.long_range, self.dist, self.progress,
                                        self.device, desc=f"final {name}")
                metrics[name] = {**sums.metrics(), "loss": self.loss_fn.from_sums(sums), "frames": len(dataset)}
        path = self._save_model(metrics)
        self._log({"final": metrics, "best_epoch": self.best["epoch"], "epochs_run": epochs_run,
                   "world_size": self.dist.world_size, "max_rank_parameter_difference": difference})
        if self.progress:
            for name, values in metrics.items():
                print(format_table(values, f"{name} ({values['frames']} frames), best epoch {self.best['epoch']}"))
            print(f"model written to {path}")
        return TrainResult(self.model, metrics, self.out, path, self.best["epoch"], epochs_run, self.history)


def train(config: TrainConfig) -> TrainResult:
    """Run :class:`Trainer` for ``config`` (see the module docstring), then leave the
    torch.distributed process group (under torchrun), also when training fails.

    >>> result = train(TrainConfig.from_yaml("examples/train_water.yaml"))  # doctest: +SKIP
    >>> result.metrics["test"]["forces_rmse"]  # meV/Å  # doctest: +SKIP
    """
    trainer = Trainer(config)
    try:
        return trainer.fit()
    finally:
        shutdown(trainer.dist)


def finetune(model: Union[str, Path], data: Union[str, Path], output_dir: Union[str, Path] = "runs/finetune",
             **options: Any) -> TrainResult:
    """Finetune a saved model (file or shipped name) on ``data`` (any ASE-readable file).

    Defaults follow the published protocol (:mod:`openmm_pqeq.train.finetune`); every keyword of
    :func:`~openmm_pqeq.train.finetune.finetune_config` can be changed.  Returns the
    :class:`TrainResult`; the finetuned model is ``<output_dir>/model.pt``.

    >>> result = finetune("water-demo", "new_data.extxyz", "runs/ft", epochs=20)  # doctest: +SKIP
    """
    return train(finetune_config(model, data, output_dir, **options))
