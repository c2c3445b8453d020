"""Reciprocal-space Ewald sum for point charges (the smooth erf(βr)/r part), exact in k.

    E_rec = (2π k_e / V) Σ_{k≠0} exp(-k²/4β²)/k² |S(k)|²,   S(k) = Σ_a Q_a exp(i k·r_a)
            - k_e β/√π Σ_a Q_a²                      (self energy of each site)
            - k_e π Q_tot² / (2 V β²)                  (neutralizing background)

k-vectors are all reciprocal-lattice vectors inside a sphere |k| < k_max, enumerated from
the cell (any triclinic shape), and only one of each ±k pair is stored.  The returned
per-site potential V_a satisfies E_rec = Σ_a Q_a V_a (the torch-pme convention), so the
electrostatic potential at site a is 2 V_a.  Cost O(N·K) with K ∝ V k_max³; for large
cells use PME.  Lengths Å, charges e, energies eV.
"""

from __future__ import annotations

import math

import torch

from ..._torchscript import constant
from .background import self_and_background


class EwaldReciprocal(torch.nn.Module):
    """Reciprocal part of the Ewald sum with splitting ``beta`` (Å⁻¹), Coulomb constant
    ``coulomb_constant`` (eV·Å/e²) and relative truncation ``tolerance``
    (exp(-k_max²/4β²) = tolerance)."""

    def __init__(self, beta: float, coulomb_constant: float, tolerance: float = 1e-8, chunk_size: int = 4096):
        super().__init__()
        if not beta > 0:
            raise ValueError(f"`beta` is {beta} Å⁻¹ but must be positive")
        self.beta: float = float(beta)
        self.coulomb_constant: float = float(coulomb_constant)
        self.k_max: float = 2.0 * beta * math.sqrt(math.log(1.0 / tolerance))
        self.chunk_size: int = int(chunk_size)

    def kvectors(self, cell: torch.Tensor) -> torch.Tensor:
        """Half-space reciprocal vectors (K, 3) Å⁻¹ with 0 < |k| < k_max."""
        reciprocal = 2.0 * math.pi * torch.linalg.inv(cell).transpose(0, 1)  # rows b_i, a_i·b_j = 2π δ_ij
        lengths = torch.linalg.norm(cell, dim=1)
        n_max = [int(math.ceil(self.k_max * float(lengths[d]) / (2.0 * math.pi))) for d in range(3)]
        ranges = [torch.arange(-n, n + 1, dtype=cell.dtype, device=cell.device) for n in n_max]
        grid = torch.stack(torch.meshgrid(ranges[0], ranges[1], ranges[2], indexing="ij"), dim=-1).reshape(-1, 3)
        # keep one of each ±n pair: first non-zero component positive
        n0, n1, n2 = grid[:, 0], grid[:, 1], grid[:, 2]
        half = (n0 > 0) | ((n0 == 0) & (n1 > 0)) | ((n0 == 0) & (n1 == 0) & (n2 > 0))
        k = grid[half] @ reciprocal
        return k[(k * k).sum(1) < self.k_max * self.k_max]

    def forward(self, charges: torch.Tensor, cell: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Per-site V (n, c) for charges (n, c) e at positions (n, 3) Å in ``cell`` (3, 3) Å."""
        volume = torch.abs(torch.linalg.det(cell))
        fixed_cell = constant(cell)
        k = self.kvectors(fixed_cell)
        # differentiable in the cell: k = 2π n·inv(cell)ᵀ with integer n held fixed
        n_int = torch.round(k @ fixed_cell.transpose(0, 1) / (2.0 * math.pi))
        k = 2.0 * math.pi * n_int @ torch.linalg.inv(cell).transpose(0, 1)
        beta2 = self.beta * self.beta
        potential = torch.zeros_like(charges)
        for start in range(0, k.shape[0], self.chunk_size):
            kc = k[start:start + self.chunk_size]
            k2 = (kc * kc).sum(1)
            weight = torch.exp(-k2 / (4.0 * beta2)) / k2  # (K,)
            phase = positions @ kc.transpose(0, 1)  # (n, K)
            cos, sin = torch.cos(phase), torch.sin(phase)
            s_re = cos.transpose(0, 1) @ charges  # (K, c)
            s_im = sin.transpose(0, 1) @ charges
            potential = potential + cos @ (weight.unsqueeze(1) * s_re) + sin @ (weight.unsqueeze(1) * s_im)
        # Σ_a Q_a V_a = E: the half space stands for ±k, so 2π/V of the full sum becomes 4π/V
        potential = potential * (4.0 * math.pi * self.coulomb_constant / volume)
        return potential + 0.5 * self_and_background(charges, volume, self.beta, self.coulomb_constant)
