"""The warm start of the physical-mode charge/shell solve: the previous calls' solutions and
their extrapolation to the next call (docs/method/solver.md).

Run-time state, not part of a model: the buffers are non-persistent (not in the state dict) and
are reassigned, never resized, so that they persist across calls inside a frozen TorchScript
module (an OpenMM TorchForce) too.
"""

from typing import Tuple

import torch

from .._torchscript import constant


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
        q = self.charges
        d = self.shells
        older = self.history_charges.shape[0] if self.history_charges.shape[1] == n else 0
        order = min(self.order, older)
        if order == 1:
            q = 2.0 * q - self.history_charges[0]
            d = 2.0 * d - self.history_shells[0]
        elif order == 2:
            q = 3.0 * q - 3.0 * self.history_charges[0] + self.history_charges[1]
            d = 3.0 * d - 3.0 * self.history_shells[0] + self.history_shells[1]
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
