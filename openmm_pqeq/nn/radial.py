"""Radial functions of the E0 network: Bessel basis and polynomial cutoff envelope.

Both follow NequIP (Batzner et al., "E(3)-equivariant graph neural networks for data-efficient
and accurate interatomic potentials", Nat. Commun. 13, 2453 (2022), Eqs. 7-8).  The product
``BesselBasis(r) * PolynomialCutoff(r)`` is the edge embedding fed to the radial MLPs; it and
its first two derivatives vanish at ``r_max``, so energies and forces are smooth when a
neighbour leaves the cutoff sphere.  Lengths in Å.
"""

from __future__ import annotations

import math

import torch
from e3nn.util.jit import compile_mode


@compile_mode("script")
class BesselBasis(torch.nn.Module):
    r"""Radial Bessel functions with trainable frequencies.

    .. math:: B_n(r) = \frac{2}{r_\text{max}} \frac{\sin(w_n r / r_\text{max})}{r},
              \qquad w_n = n\pi \text{ at initialization}, n = 1..N

    Parameters
    ----------
    r_max : float
        Cutoff radius (Å).
    num_basis : int
        Number of functions N.

    >>> basis = BesselBasis(r_max=5.0, num_basis=8)
    >>> basis(torch.tensor([1.0, 2.5])).shape
    torch.Size([2, 8])
    """

    def __init__(self, r_max: float, num_basis: int):
        super().__init__()
        if not r_max > 0:
            raise ValueError(f"`r_max` is {r_max} Å but must be positive")
        if num_basis < 1:
            raise ValueError(f"`num_basis` is {num_basis} but must be at least 1")
        self.r_max: float = float(r_max)
        self.prefactor: float = 2.0 / float(r_max)
        self.frequencies = torch.nn.Parameter(math.pi * torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Basis values ``(n_edges, num_basis)`` (Å⁻¹) of distances ``r`` ``(n_edges,)`` (Å, > 0)."""
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.frequencies * r / self.r_max) / r


@compile_mode("script")
class PolynomialCutoff(torch.nn.Module):
    r"""Smooth cutoff envelope of NequIP (Klicpera et al., DimeNet, ICLR 2020).

    .. math:: u(x) = 1 - \frac{(p+1)(p+2)}{2} x^p + p(p+2) x^{p+1} - \frac{p(p+1)}{2} x^{p+2},
              \qquad x = r / r_\text{max},

    for ``x < 1`` and 0 beyond; ``u(1) = u'(1) = u''(1) = 0``.

    Parameters
    ----------
    r_max : float
        Cutoff radius (Å).
    p : int
        Polynomial order (NequIP uses 6).

    >>> PolynomialCutoff(r_max=5.0)(torch.tensor([0.0, 5.0, 6.0])).tolist()
    [1.0, 0.0, 0.0]
    """

    def __init__(self, r_max: float, p: int = 6):
        super().__init__()
        if not r_max > 0:
            raise ValueError(f"`r_max` is {r_max} Å but must be positive")
        if p < 2:
            raise ValueError(f"`p` is {p} but must be at least 2 (for continuous forces)")
        self.r_max: float = float(r_max)
        self.p: float = float(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Envelope ``(n_edges,)`` (dimensionless) of distances ``r`` ``(n_edges,)`` (Å)."""
        p = self.p
        x = r / self.r_max
        u = (
            1.0
            - 0.5 * (p + 1.0) * (p + 2.0) * torch.pow(x, p)
            + p * (p + 2.0) * torch.pow(x, p + 1.0)
            - 0.5 * p * (p + 1.0) * torch.pow(x, p + 2.0)
        )
        return torch.where(x < 1.0, u, torch.zeros_like(u))
