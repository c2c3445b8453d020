"""Loss and error metrics on energy per atom, forces and stress.

The published loss (docs/method/learning.md; released code of Gao et al. 2025) is

    L = 1 · RMSE(E/N) + 10 · RMSE(F) + 100 · RMSE(σ)

in eV/atom, eV/Å and eV/Å³ (all force and stress components; stress only for frames that
have it).  ``form="mse"`` uses mean squared errors instead; ``force_only`` keeps only the
force term (the published finetuning protocol uses the force MSE).

An optional fourth term weighs the error of the net force on each molecule,
F_I = Σ_{a∈I} F_a (eV/Å, the charge groups of frames with more than one group): the force
between molecules, which sets a liquid's pressure and density.  In water it is a few
tenths of an eV/Å against atomic forces of about 1.5 eV/Å, so the plain force RMSE hardly
sees it: ``molecule_forces_weight`` prices it on its own.  Its error (``molecule_forces``,
meV/Å per component) is reported whether weighted or not.

:class:`ErrorSums` accumulates absolute and squared errors over many batches (and ranks:
they are plain sums) and turns them into MAE / RMSE per quantity, reported in meV/atom,
meV/Å and meV/Å³.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from .config import LossConfig
from .data import StructureDataset

#: Quantities, their units in reports and the factor from eV-based units.
QUANTITIES = {"energy": ("meV/atom", 1000.0), "forces": ("meV/Å", 1000.0), "stress": ("meV/Å³", 1000.0),
              "molecule_forces": ("meV/Å", 1000.0)}


def molecule_force_errors(force_errors: torch.Tensor, tensors: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Net force error of each charge group, (G, 3) eV/Å, for the frames that have forces and
    more than one group (a frame's only group carries no force between molecules).

    ``force_errors`` (ΣN, 3) eV/Å are model minus reference forces of every atom of the batch.
    """
    n_groups = tensors["n_groups"]
    first_group = torch.cumsum(n_groups, 0) - n_groups
    group_of_atom = first_group.index_select(0, tensors["atom_frame"]) + tensors["groups"]
    net = torch.zeros(int(n_groups.sum()), 3, dtype=force_errors.dtype, device=force_errors.device)
    net = net.index_add(0, group_of_atom, force_errors)
    frame_of_group = torch.repeat_interleave(torch.arange(len(n_groups), device=n_groups.device), n_groups)
    keep = (tensors["has_forces"] & (n_groups > 1)).index_select(0, frame_of_group)
    return net[keep]


def _errors(pred: Dict[str, torch.Tensor], batch: StructureDataset) -> Dict[str, torch.Tensor]:
    """Error vectors: energy per atom (frames with energy), force, stress and molecular net
    force components."""
    t = batch.tensors
    per_atom = (pred["energy"] - t["energy"]) / t["n_atoms"].to(pred["energy"].dtype)
    has_forces_atom = t["has_forces"].index_select(0, t["atom_frame"])
    force_errors = pred["forces"] - t["forces"]
    return {
        "energy": per_atom[t["has_energy"]],
        "forces": force_errors[has_forces_atom].reshape(-1),
        "stress": (pred["stress"] - t["stress"])[t["has_stress"]].reshape(-1),
        "molecule_forces": molecule_force_errors(force_errors, t).reshape(-1),
    }


class Loss:
    """Weighted loss of a batch (module docstring).

    >>> loss = Loss(LossConfig(force_only=True))
    >>> loss.weights
    {'energy': 0.0, 'forces': 10.0, 'stress': 0.0, 'molecule_forces': 0.0}
    """

    def __init__(self, config: Optional[LossConfig] = None):
        config = config or LossConfig()
        if config.form not in ("rmse", "mse"):
            raise ValueError(f"`form` is {config.form!r}; options are 'rmse', 'mse'")
        self.form = config.form
        self.weights = {
            "energy": 0.0 if config.force_only else float(config.energy_weight),
            "forces": float(config.forces_weight),
            "stress": 0.0 if config.force_only else float(config.stress_weight),
            "molecule_forces": float(config.molecule_forces_weight),
        }

    def _combine(self, mse: Dict[str, torch.Tensor]) -> torch.Tensor:
        total = None
        for name, weight in self.weights.items():
            if weight == 0.0 or name not in mse:
                continue
            term = mse[name].clamp_min(1e-30).sqrt() if self.form == "rmse" else mse[name]
            total = weight * term if total is None else total + weight * term
        if total is None:
            raise ValueError("the loss has no term: all weights are zero or the data has none of "
                             f"the weighted quantities (weights {self.weights})")
        return total

    def __call__(self, pred: Dict[str, torch.Tensor], batch: StructureDataset) -> torch.Tensor:
        """Loss of one batch (a 0-d tensor with the graph of ``pred``)."""
        errors = _errors(pred, batch)
        mse = {name: e.pow(2).mean() for name, e in errors.items() if e.numel() > 0}
        present = {k for k in mse if self.weights[k] > 0}
        if not present:
            # a batch without any weighted quantity contributes nothing (but keeps the graph)
            return pred["energy"].sum() * 0.0
        return self._combine(mse)

    def from_sums(self, sums: "ErrorSums") -> float:
        """The loss of a whole set from accumulated errors (validation loss)."""
        mse = {name: torch.tensor(sums.sq[name] / sums.count[name]) for name in self.weights
               if sums.count[name] > 0}
        try:
            return float(self._combine(mse))
        except ValueError:
            return math.nan


class ErrorSums:
    """Sums of absolute and squared errors and counts per quantity (add batches, then report)."""

    NAMES = tuple(QUANTITIES)

    def __init__(self):
        self.abs = {n: 0.0 for n in self.NAMES}
        self.sq = {n: 0.0 for n in self.NAMES}
        self.count = {n: 0 for n in self.NAMES}
        self.loss_sum = 0.0
        self.batches = 0

    def add(self, pred: Dict[str, torch.Tensor], batch: StructureDataset, loss: Optional[float] = None) -> None:
        for name, e in _errors(pred, batch).items():
            e = e.detach().to(torch.float64)
            self.abs[name] += float(e.abs().sum())
            self.sq[name] += float(e.pow(2).sum())
            self.count[name] += int(e.numel())
        if loss is not None:
            self.loss_sum += float(loss)
            self.batches += 1

    def to_tensor(self) -> torch.Tensor:
        values = [self.abs[n] for n in self.NAMES] + [self.sq[n] for n in self.NAMES]
        values += [float(self.count[n]) for n in self.NAMES] + [self.loss_sum, float(self.batches)]
        return torch.tensor(values, dtype=torch.float64)

    @classmethod
    def from_tensor(cls, values: torch.Tensor) -> "ErrorSums":
        sums = cls()
        v = values.tolist()
        k = len(cls.NAMES)
        for m, n in enumerate(cls.NAMES):
            sums.abs[n], sums.sq[n], sums.count[n] = v[m], v[k + m], int(round(v[2 * k + m]))
        sums.loss_sum, sums.batches = v[3 * k], int(round(v[3 * k + 1]))
        return sums

    def metrics(self) -> Dict[str, float]:
        """``<quantity>_mae`` and ``<quantity>_rmse`` in meV/atom, meV/Å, meV/Å³ (present ones only)."""
        out: Dict[str, float] = {}
        for name, (_, factor) in QUANTITIES.items():
            if self.count[name] > 0:
                out[f"{name}_mae"] = factor * self.abs[name] / self.count[name]
                out[f"{name}_rmse"] = factor * math.sqrt(self.sq[name] / self.count[name])
        if self.batches:
            out["loss_mean"] = self.loss_sum / self.batches
        return out


def format_table(metrics: Dict[str, float], title: str = "") -> str:
    """A plain-text error table (one row per quantity present)."""
    labels = {"energy": "energy per atom", "forces": "forces", "stress": "stress",
              "molecule_forces": "molecule forces"}
    lines = [title] if title else []
    lines.append(f"{'quantity':<16} {'unit':<9} {'MAE':>12} {'RMSE':>12}")
    for name, (unit, _) in QUANTITIES.items():
        if f"{name}_mae" in metrics:
            lines.append(f"{labels[name]:<16} {unit:<9} {metrics[name + '_mae']:>12.4f} "
                         f"{metrics[name + '_rmse']:>12.4f}")
    return "\n".join(lines)
