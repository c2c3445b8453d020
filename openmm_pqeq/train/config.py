"""Training configuration: one dataclass per YAML section, every key documented.

A run is described by one YAML file (see ``examples/train_water.yaml``, which comments every
key) read by :meth:`TrainConfig.from_yaml`.  Relative paths are resolved against the folder of
the YAML file.  Unknown keys are an error that lists the allowed ones, so a misspelled option
never vanishes silently.

>>> config = TrainConfig.from_dict({"data": {"train": "water.extxyz"}, "training": {"epochs": 5}})
>>> config.training.epochs, config.loss.forces_weight
(5, 10.0)
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

#: Model sections accepted in ``model``: ``auto`` values are filled in from the training data.
DEFAULT_E0 = {"preset": "small", "avg_num_neighbors": "auto"}
DEFAULT_PQEQ = {"mode": "physical", "params": "reaxnet"}
DEFAULT_D3 = {"functional": "pbe", "damping": "zero", "cutoff": 12.5}


@dataclass
class DataConfig:
    """Where the structures come from and how they are split (section ``data``)."""

    #: ASE-readable file with the training structures (extxyz: energy eV, forces eV/Å,
    #: optional stress eV/Å³, ``charge`` e and ``field`` V/Å in the frame info).
    train: Optional[str] = None
    #: Optional separate validation / test files; without them the sets are split from ``train``.
    validation: Optional[str] = None
    test: Optional[str] = None
    #: Frames to read (ASE index syntax, e.g. ":" or "::2").
    index: str = ":"
    #: Fractions of ``train`` held out for validation and test (used when no file is given).
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    #: Seed of the random split (the same seed always gives the same split).
    split_seed: int = 1
    #: Names of the reference quantities in the file (calculator results, ``info`` or ``arrays``).
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    charge_key: str = "charge"
    field_key: str = "field"
    #: Folder of the cached tensor files; default: ``.pqeq_cache`` next to each data file.
    cache_dir: Optional[str] = None


@dataclass
class ModelConfig:
    """The model to train (section ``model``): :func:`~openmm_pqeq.model.build_model` input."""

    #: Elements (symbols or numbers) or "auto" (all elements in the data files).
    elements: Union[str, List[Union[str, int]]] = "auto"
    #: E0 network: E0Network keywords or {"preset": ..., overrides}; ``avg_num_neighbors: auto``
    #: is computed from the training split.  ``null`` switches E0 off (nothing to train).
    e0: Optional[Dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_E0))
    #: PQEq keywords (``null``: no electrostatics).  Frozen unless ``trainable`` frees per-element
    #: χ, J, R, K_s (e.g. ``trainable: {Ks: [O, H], chi: all}``; needs ``training.long_range:
    #: online``; :mod:`openmm_pqeq.electrostatics.trainable`): they are then trained with E0.
    pqeq: Optional[Dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_PQEQ))
    #: D3Dispersion keywords (``null``: no dispersion).  Frozen.
    d3: Optional[Dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_D3))
    #: Start from a saved model (file or shipped name) instead of building one (finetuning);
    #: ``elements``/``e0``/``pqeq``/``d3`` are then taken from that model.
    init: Optional[str] = None
    #: Charge constraints of the PQEq term in training, recorded in the model file and used by
    #: default everywhere the model runs (:mod:`openmm_pqeq.charge_constraint`):
    #: ``{rule: total}`` (one total charge per frame) or ``{rule: molecules, bond_factor: 1.3}``
    #: (one neutral group per molecule; molecules from covalent-radius distances).  null: one total
    #: charge, or, with ``init``, the rule of that model.
    charge_constraint: Optional[Dict[str, Any]] = None


@dataclass
class StatisticsConfig:
    """Per-species scale and shift of E0, fitted from the training split (section ``statistics``)."""

    #: "least_squares": per-element energies fitted to the Δ-target E_ref − E_PQEq − E_D3
    #: (for a model started from ``model.init``: refitted to that model's energy residual);
    #: "none": keep the current values; or a mapping {element: eV}.
    shift: Union[str, Dict[str, float]] = "least_squares"
    #: "force_rms": RMS of the Δ-target forces (NequIP's choice); "none"; a number; or {element: value}.
    scale: Union[str, float, Dict[str, float]] = "force_rms"


@dataclass
class LossConfig:
    """Loss weights (section ``loss``); published defaults 1 / 10 / 100 (docs/method/learning.md)."""

    #: Weight of the energy-per-atom term (eV/atom).
    energy_weight: float = 1.0
    #: Weight of the force term (eV/Å, all components).
    forces_weight: float = 10.0
    #: Weight of the stress term (eV/Å³, structures with stress only).
    stress_weight: float = 100.0
    #: "rmse" (published: 1·RMSE(E/atom) + 10·RMSE(F) + 100·RMSE(σ)) or "mse".
    form: str = "rmse"
    #: Forces only (published finetuning): energy and stress weights are ignored.
    force_only: bool = False
    #: Weight of the net force on each molecule (eV/Å, the charge groups of frames with more
    #: than one; 0: off).  Needs a charge constraint that makes groups, e.g. {rule: molecules}.
    molecule_forces_weight: float = 0.0


@dataclass
class TrainingConfig:
    """Optimisation (section ``training``)."""

    epochs: int = 100
    #: Structures per optimisation step (per process under torchrun).
    batch_size: int = 8
    #: "adamw" or "adam".
    optimizer: str = "adamw"
    lr: float = 5e-3
    weight_decay: float = 0.0
    #: "plateau" (ReduceLROnPlateau on the validation loss), "cosine" (to ``min_lr`` at the
    #: last epoch) or "none".
    scheduler: str = "plateau"
    plateau_factor: float = 0.5
    plateau_patience: int = 10
    min_lr: float = 1e-6
    #: Exponential moving average of the weights (validation and the saved model use it); 0 = off.
    ema_decay: float = 0.99
    #: Clip the gradient norm (0 = off).
    grad_clip: float = 10.0
    #: "none" (train all of E0), "readout" (only the last two linear layers) or a list of
    #: parameter-name patterns to train (fnmatch, e.g. ["e0.readout.*"]).
    freeze: Union[str, List[str]] = "none"
    #: "cached": PQEq/D3 energies, forces and stresses computed once per structure and cached
    #: (keyed by their configuration); "online": computed through the model at every step.
    long_range: str = "cached"
    #: Stop when the validation loss has not improved for this many epochs (null = never).
    early_stopping_patience: Optional[int] = None
    #: Resume from this checkpoint ("auto": ``<output.dir>/checkpoint.pt``; null: fresh start).
    resume: Optional[str] = None


@dataclass
class OutputConfig:
    """What a run writes (section ``output``); only rank 0 writes."""

    #: Run folder: ``model.pt``, ``checkpoint.pt``, ``metrics.jsonl``, ``config.yaml``.
    dir: str = "runs/train"
    #: Name of the saved model file (best validation weights) in ``dir``.
    model_file: str = "model.pt"
    #: Description stored in the model file.
    description: str = ""
    #: Show tqdm progress bars.
    progress: bool = True
    #: Allow starting a fresh run in a folder that already has one.
    overwrite: bool = False


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "statistics": StatisticsConfig,
    "loss": LossConfig,
    "training": TrainingConfig,
    "output": OutputConfig,
}
_CHOICES = {
    ("loss", "form"): ("rmse", "mse"),
    ("training", "optimizer"): ("adamw", "adam"),
    ("training", "scheduler"): ("plateau", "cosine", "none"),
    ("training", "freeze"): ("none", "readout"),
    ("training", "long_range"): ("cached", "online"),
    ("top", "dtype"): ("float32", "float64"),
}


@dataclass
class TrainConfig:
    """A whole training run: sections plus ``seed``, ``device`` and ``dtype`` of E0."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    #: Seed of the weight initialisation and of the batch order.
    seed: int = 0
    #: "auto" (CUDA if available), "cpu", "cuda" or "cuda:N".
    device: str = "auto"
    #: Floating-point type of the E0 network; PQEq and D3 always run in float64.
    dtype: str = "float32"

    @classmethod
    def from_dict(cls, values: Dict[str, Any], base_dir: Union[str, Path, None] = None) -> "TrainConfig":
        """Build from nested dicts (a parsed YAML file); relative paths are taken from ``base_dir``."""
        if not isinstance(values, dict):
            raise TypeError(f"a training configuration must be a mapping, got {type(values).__name__}")
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - top)
        if unknown:
            raise ValueError(f"unknown configuration section(s) {unknown}; allowed: {sorted(top)}")
        kwargs: Dict[str, Any] = {}
        for name, value in values.items():
            if name in _SECTIONS:
                section = _SECTIONS[name]
                value = value or {}
                if not isinstance(value, dict):
                    raise ValueError(f"configuration section `{name}` must be a mapping, got {value!r}")
                allowed = {f.name for f in dataclasses.fields(section)}
                bad = sorted(set(value) - allowed)
                if bad:
                    raise ValueError(f"unknown key(s) {bad} in section `{name}`; allowed: {sorted(allowed)}")
                kwargs[name] = section(**copy.deepcopy(value))
            else:
                kwargs[name] = value
        config = cls(**kwargs)
        if base_dir is not None:
            config.resolve_paths(base_dir)
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: Union[str, Path]) -> "TrainConfig":
        """Read a YAML file (relative paths inside are relative to the file's folder)."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training configuration {str(path)!r} does not exist")
        with open(path) as handle:
            values = yaml.safe_load(handle) or {}
        return cls.from_dict(values, base_dir=path.parent)

    def to_dict(self) -> Dict[str, Any]:
        """Plain nested dicts (YAML/JSON-serialisable)."""
        return dataclasses.asdict(self)

    def to_yaml(self, path: Union[str, Path]) -> None:
        import yaml

        from .._atomic import atomic_write

        atomic_write(path, lambda handle: yaml.safe_dump(self.to_dict(), handle, sort_keys=False), mode="w")

    def resolve_paths(self, base_dir: Union[str, Path]) -> None:
        """Make relative file paths absolute with respect to ``base_dir``."""
        base = Path(base_dir)

        def resolve(value: Optional[str]) -> Optional[str]:
            if value is None or Path(value).is_absolute():
                return value
            return str((base / value).resolve())

        for key in ("train", "validation", "test", "cache_dir"):
            setattr(self.data, key, resolve(getattr(self.data, key)))
        self.output.dir = resolve(self.output.dir)
        if self.model.init is not None and (base / self.model.init).exists():
            self.model.init = resolve(self.model.init)
        if self.training.resume not in (None, "auto"):
            self.training.resume = resolve(self.training.resume)

    def validate(self) -> None:
        """Check values; errors name the key, the value and what is allowed."""
        for (section, key), options in _CHOICES.items():
            value = getattr(self, key) if section == "top" else getattr(getattr(self, section), key)
            if (section, key) == ("training", "freeze") and isinstance(value, (list, tuple)):
                continue  # parameter-name patterns (see openmm_pqeq.train.freezing)
            if value not in options:
                where = key if section == "top" else f"{section}.{key}"
                raise ValueError(f"`{where}` is {value!r}; options are {', '.join(map(repr, options))}")
        if self.data.train is None:
            raise ValueError("`data.train` is missing: give the ASE-readable file of training structures")
        for key in ("validation_fraction", "test_fraction"):
            value = getattr(self.data, key)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"`data.{key}` is {value} but must be in [0, 1)")
        if self.data.validation_fraction + self.data.test_fraction >= 1.0:
            raise ValueError("`data.validation_fraction` + `data.test_fraction` must be below 1 "
                             f"(got {self.data.validation_fraction} + {self.data.test_fraction})")
        for key in ("epochs", "batch_size"):
            value = getattr(self.training, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`training.{key}` is {value!r} but must be a positive integer")
        if not self.training.lr > 0:
            raise ValueError(f"`training.lr` is {self.training.lr} but must be positive")
        if not 0.0 <= self.training.ema_decay < 1.0:
            raise ValueError(f"`training.ema_decay` is {self.training.ema_decay} but must be in [0, 1)")
        for key in ("energy_weight", "forces_weight", "stress_weight", "molecule_forces_weight"):
            if getattr(self.loss, key) < 0:
                raise ValueError(f"`loss.{key}` is {getattr(self.loss, key)} but must be non-negative")
        if self.loss.force_only and self.loss.forces_weight <= 0:
            raise ValueError("`loss.force_only` is true but `loss.forces_weight` is not positive")
        trainable_pqeq = {k: v for k, v in ((self.model.pqeq or {}).get("trainable") or {}).items() if k != "bounds"}
        if any(trainable_pqeq.values()) and self.training.long_range != "online":
            raise ValueError("`model.pqeq.trainable` frees PQEq parameters, so the PQEq energies and forces change "
                             "during training and cached Δ-targets would be stale: set `training.long_range: online` "
                             "(E0 and the PQEq parameters are then optimized together)")
        if self.model.charge_constraint is not None:
            from ..charge_constraint import ChargeConstraint

            try:
                ChargeConstraint.from_dict(self.model.charge_constraint)
            except (TypeError, ValueError) as error:
                raise ValueError(f"`model.charge_constraint`: {error}") from None
        if self.model.init is None and self.model.e0 is None:
            raise ValueError("`model.e0` is null: there is nothing to train (give an E0 network)")
        if isinstance(self.statistics.shift, str) and self.statistics.shift not in ("least_squares", "none"):
            raise ValueError(f"`statistics.shift` is {self.statistics.shift!r}; options are 'least_squares', "
                             "'none' or a mapping {element: eV}")
        if isinstance(self.statistics.scale, str) and self.statistics.scale not in ("force_rms", "none"):
            raise ValueError(f"`statistics.scale` is {self.statistics.scale!r}; options are 'force_rms', "
                             "'none', a number or a mapping {element: value}")
