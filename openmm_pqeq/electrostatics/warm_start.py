"""The warm starts of the physical-mode solves: the previous calls' solutions and their
extrapolation to the next call (docs/method/solver.md): charges and shells
(:class:`WarmStart`), and the bond drives of split charges, matched by bond key
(:class:`BondWarmStart`).

Run-time state, not part of a model: the buffers are non-persistent (not in the state dict) and
are reassigned, never resized, so that they persist across calls inside a frozen TorchScript
module (an OpenMM TorchForce) too.
"""

from typing import Tuple

import torch

from .._torchscript import constant


def extrapolate(last: torch.Tensor, history: torch.Tensor, order: int) -> torch.Tensor:
    """Polynomial extrapolation to the next call from the ``last`` values (...) and the older
    ones ``history`` (k, ...), newest first: ``order`` 0 (constant), 1 (linear, needs k ≥ 1) or
    2 (quadratic, needs k ≥ 2) in the call index."""
    if order == 1:
        return 2.0 * last - history[0]
    if order == 2:
        return 3.0 * last - 3.0 * history[0] + history[1]
    return last


class WarmStart(torch.nn.Module):
    """The last solution (charges (N,) e, shells (N, 3) Å, kept in float64) and up to ``order``
    older ones, newest first, for a polynomial predictor of ``order`` 0, 1 or 2 (constant,
    linear, quadratic extrapolation in the call index)."""

    def __init__(self, order: int):
        super().__init__()
        self.order: int = int(order)
        self.register_buffer("charges", torch.zeros(0, dtype=torch.float64), persistent=False)
        self.register_buffer("shells", torch.zeros(0, 3, dtype=torch.float64), persistent=False)
        self.register_buffer("history_charges", torch.zeros(0, 0, dtype=torch.float64), persistent=False)
        self.register_buffer("history_shells", torch.zeros(0, 0, 3, dtype=torch.float64), persistent=False)

    def predict(self, n: int, dtype: torch.dtype, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor, bool]:
        """Start of the next solve of ``n`` atoms: extrapolated from the stored solutions, or
        zero charges and shells (and False) when there are none for ``n`` atoms."""
        if self.charges.shape[0] != n:
            return (torch.zeros(n, dtype=dtype, device=device), torch.zeros(n, 3, dtype=dtype, device=device), False)
        older = self.history_charges.shape[0] if self.history_charges.shape[1] == n else 0
        order = min(self.order, older)
        q = extrapolate(self.charges, self.history_charges, order)
        d = extrapolate(self.shells, self.history_shells, order)
        return q.to(dtype), d.to(dtype), True

    def remember(self, q: torch.Tensor, d: torch.Tensor) -> None:
        """Store the solution ``q`` (N,) e, ``d`` (N, 3) Å of this call for the next one."""
        n = q.shape[0]
        q64 = constant(q).to(torch.float64)
        d64 = constant(d).to(torch.float64)
        if self.order > 0 and self.charges.shape[0] == n:
            keep = self.order - 1
            if self.history_charges.shape[1] == n and keep > 0:
                self.history_charges = torch.cat([self.charges.unsqueeze(0), self.history_charges[:keep]])
                self.history_shells = torch.cat([self.shells.unsqueeze(0), self.history_shells[:keep]])
            else:
                self.history_charges = self.charges.unsqueeze(0)
                self.history_shells = self.shells.unsqueeze(0)
        else:
            self.history_charges = torch.zeros(0, n, dtype=torch.float64, device=q.device)
            self.history_shells = torch.zeros(0, n, 3, dtype=torch.float64, device=q.device)
        self.charges = q64
        self.shells = d64

    def reset(self) -> None:
        """Forget the stored solutions (the next solve starts from zero charges and shells)."""
        device = self.charges.device
        self.charges = torch.zeros(0, dtype=torch.float64, device=device)
        self.shells = torch.zeros(0, 3, dtype=torch.float64, device=device)
        self.history_charges = torch.zeros(0, 0, dtype=torch.float64, device=device)
        self.history_shells = torch.zeros(0, 0, 3, dtype=torch.float64, device=device)


def remap(values: torch.Tensor, old_keys: torch.Tensor, new_keys: torch.Tensor) -> torch.Tensor:
    """Values (k, B_old) of bonds ``old_keys`` carried over to bonds ``new_keys`` (k, B_new);
    bonds that are new get NaN (no value)."""
    out = torch.full((values.shape[0], new_keys.shape[0]), float("nan"), dtype=values.dtype, device=values.device)
    if old_keys.shape[0] == 0 or new_keys.shape[0] == 0:
        return out
    order = torch.argsort(old_keys)
    sorted_keys = old_keys.index_select(0, order)
    where = torch.searchsorted(sorted_keys, new_keys).clamp(max=sorted_keys.shape[0] - 1)
    found = sorted_keys.index_select(0, where) == new_keys
    source = order.index_select(0, where)
    picked = values.index_select(1, source)
    return torch.where(found.unsqueeze(0), picked, out)


class BondWarmStart(torch.nn.Module):
    """The warm start of the split-charge solve (:mod:`.splitcharge`): the bond drives
    w = u/√s (B,) eV/e of the last call and up to ``order`` older ones, each matched to the
    current bonds by bond key (bonds appear and disappear as atoms move)."""

    def __init__(self, order: int):
        super().__init__()
        self.order: int = int(order)
        self.register_buffer("keys", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("last", torch.zeros(0, dtype=torch.float64), persistent=False)
        self.register_buffer("history", torch.zeros(0, 0, dtype=torch.float64), persistent=False)

    def predict(self, keys: torch.Tensor, root_s: torch.Tensor) -> torch.Tensor:
        """Start u (B,) = √s w for bonds ``keys`` (B,) with √(softness) ``root_s`` (B,): the bond
        drives (at convergence the potential difference minus the field along the bond, which
        varies smoothly even where √s does not) extrapolated from previous calls, each bond to
        the highest order its history allows; zero for new bonds."""
        if self.keys.shape[0] == 0 or keys.shape[0] == 0:
            return torch.zeros(keys.shape[0], dtype=root_s.dtype, device=keys.device)
        if torch.equal(self.keys, keys):
            last = self.last
            history = self.history
        else:
            last = remap(self.last.unsqueeze(0), self.keys, keys)[0]
            history = remap(self.history, self.keys, keys) if self.history.shape[0] > 0 \
                else torch.zeros(0, keys.shape[0], dtype=torch.float64, device=keys.device)
        # per bond, the highest order its history allows (NaN: the bond was not there then)
        order = min(self.order, history.shape[0])
        drive = torch.where(torch.isnan(last), torch.zeros_like(last), last)
        for k in range(1, order + 1):
            higher = extrapolate(last, history, k)
            drive = torch.where(torch.isnan(higher), drive, higher)
        return root_s * drive.to(root_s.dtype)

    def remember(self, keys: torch.Tensor, drive: torch.Tensor) -> None:
        """Store the bond drives w (B,) of bonds ``keys`` (B,) for the next call (the history
        remapped to these bonds; buffers reassigned)."""
        w64 = constant(drive).to(torch.float64)
        if self.order > 0 and self.keys.shape[0] > 0:
            same = torch.equal(self.keys, keys)
            last = self.last if same else remap(self.last.unsqueeze(0), self.keys, keys)[0]
            keep = self.order - 1
            older = self.history
            if older.shape[0] > 0 and not same:
                older = remap(older, self.keys, keys)
            if older.shape[0] > 0 and keep > 0:
                self.history = torch.cat([last.unsqueeze(0), older[:keep]])
            else:
                self.history = last.unsqueeze(0)
        else:
            self.history = torch.zeros(0, keys.shape[0], dtype=torch.float64, device=keys.device)
        self.keys = keys
        self.last = w64

    def reset(self) -> None:
        """Forget the stored drives."""
        device = self.keys.device
        self.keys = torch.zeros(0, dtype=torch.long, device=device)
        self.last = torch.zeros(0, dtype=torch.float64, device=device)
        self.history = torch.zeros(0, 0, dtype=torch.float64, device=device)
