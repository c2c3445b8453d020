"""The published charge/shell algorithm as a dense baseline (Gao et al., Nat. Commun. 16,
10484 (2025), and the original PQEq/LAMMPS practice; docs/method/pqeq.md):

two cycles of {build the dense (N+1)×(N+1) bordered charge matrix (J_i on the diagonal,
the tapered Gaussian kernel of every minimum-image core pair off it, the total-charge row
and column), solve it directly (LU), then move every shell once, d = F/K_s capped at
0.25 Å, with F the Coulomb force on the shell from all other sites}, tapered 12.5 Å kernel,
minimum image, no Ewald.  Cost O(N³) for the solves, O(N²) for the kernels and forces, memory
O(N²).

It uses the kernel of :mod:`openmm_pqeq.electrostatics.realspace` (method 2, tapered) and the
``reaxnet`` parameters, so it reproduces the published Li2PO2N charges (checked by
``benchmarks/run_all.py`` and ``tests/electrostatics/test_dense_baseline.py``).  Pairs are
processed in row blocks to bound memory.  Lengths Å, energies eV, charges e.

    .venv/bin/python benchmarks/dense_baseline.py      # Li2PO2N: charges and timing
"""

from __future__ import annotations

import time
from typing import Dict

import torch

from openmm_pqeq.electrostatics.kernels import LAMBDA_PUBLISHED, gaussian_exponent
from openmm_pqeq.electrostatics.parameters import parameter_table
from openmm_pqeq.electrostatics.realspace import METHOD_TAPERED, pair_kernel
from openmm_pqeq.units import COULOMB_EV_A_PUBLISHED

CUTOFF = 12.5
SHELL_CAP = 0.25
CYCLES = 2


def _minimum_image(vec: torch.Tensor, cell: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    frac = vec @ inverse
    return (frac - torch.round(frac)) @ cell


def _clock(like: torch.Tensor) -> float:
    """``time.perf_counter()`` after the queued GPU work (if any) has finished."""
    if like.is_cuda:
        torch.cuda.synchronize(like.device)
    return time.perf_counter()


def dense_two_cycle(positions: torch.Tensor, numbers: torch.Tensor, cell: torch.Tensor,
                    block: int = 256) -> Dict[str, object]:
    """Charges, shells and PQEq energy by the published dense two-cycle algorithm.

    ``positions`` (N, 3) Å, ``numbers`` (N,), ``cell`` (3, 3) Å (rows are cell vectors), on any
    device (the work runs there).  Returns a dict with ``charges`` (N,), ``shell_displacements``
    (N, 3), ``energy`` (eV) and ``seconds`` per phase (``matrix``, ``solve``, ``shells``, ``total``)."""
    t0 = _clock(positions)
    dtype = positions.dtype
    device = positions.device
    elements = sorted(set(numbers.tolist()))
    table = {key: value.to(device) for key, value in parameter_table("reaxnet", elements).items()}
    chi = table["chi"][numbers].to(dtype)
    hardness = table["J"][numbers].to(dtype)
    z = table["Z"][numbers].to(dtype)
    ks = table["Ks"][numbers].to(dtype)
    exponent = gaussian_exponent(table["R"][numbers].to(dtype), LAMBDA_PUBLISHED)
    n = positions.shape[0]
    inverse = torch.linalg.inv(cell)
    k_e = COULOMB_EV_A_PUBLISHED
    seconds = {"matrix": 0.0, "solve": 0.0, "shells": 0.0}

    def kernel(r: torch.Tensor, alpha: torch.Tensor, inside: torch.Tensor):
        # a pair counts when its cores are within the cutoff (minimum image), as in reaxnet mode;
        # its four site pairs then use the tapered kernel at their own distances
        k, dk = pair_kernel(r, alpha, METHOD_TAPERED, 0.0, k_e, CUTOFF)
        return k * inside, dk * inside

    q = torch.zeros(n, dtype=dtype, device=device)
    d = torch.zeros(n, 3, dtype=dtype, device=device)
    for _ in range(CYCLES):
        # dense bordered matrix and right-hand side at the current shells
        t = _clock(positions)
        matrix = torch.zeros(n + 1, n + 1, dtype=dtype, device=device)
        rhs = torch.zeros(n + 1, dtype=dtype, device=device)
        for start in range(0, n, block):
            rows = slice(start, min(start + block, n))
            vec = _minimum_image(positions.unsqueeze(0) - positions[rows].unsqueeze(1), cell, inverse)  # (b, N, 3)
            alpha = torch.sqrt(exponent[rows].unsqueeze(1) * exponent.unsqueeze(0)
                               / (exponent[rows].unsqueeze(1) + exponent.unsqueeze(0)))
            r_cc = vec.norm(dim=-1)
            self_pair = r_cc == 0
            inside = ((r_cc < CUTOFF) & ~self_pair).to(dtype)
            k_cc, _ = kernel(torch.where(self_pair, torch.ones_like(r_cc), r_cc), alpha, inside)
            k_cc = torch.where(self_pair, torch.zeros_like(k_cc), k_cc)
            # core i sees shell j (charge -Z_j) at r_j + d_j
            k_cs, _ = kernel((vec + d.unsqueeze(0)).norm(dim=-1), alpha, inside)
            k_cs = torch.where(self_pair, torch.zeros_like(k_cs), k_cs)
            matrix[rows, :n] = k_cc
            rhs[rows] = -chi[rows] - (k_cc * z.unsqueeze(0)).sum(1) + (k_cs * z.unsqueeze(0)).sum(1)
        matrix[:n, :n] += torch.diag(hardness)
        matrix[:n, n] = 1.0
        matrix[n, :n] = 1.0
        seconds["matrix"] += _clock(positions) - t
        t = _clock(positions)
        q = torch.linalg.solve(matrix, rhs)[:n]
        seconds["solve"] += _clock(positions) - t
        # one-shot shell update d = F / K_s from all other sites, capped
        t = _clock(positions)
        force = torch.zeros(n, 3, dtype=dtype, device=device)
        qc = q + z
        for start in range(0, n, block):
            rows = slice(start, min(start + block, n))
            vec = _minimum_image(positions.unsqueeze(0) - positions[rows].unsqueeze(1), cell, inverse)  # r_j - r_i
            alpha = torch.sqrt(exponent[rows].unsqueeze(1) * exponent.unsqueeze(0)
                               / (exponent[rows].unsqueeze(1) + exponent.unsqueeze(0)))
            r_cc = vec.norm(dim=-1)
            self_pair = (r_cc == 0).unsqueeze(-1)
            inside = ((r_cc < CUTOFF) & (r_cc > 0)).to(dtype)
            # shell i at r_i + d_i with charge -Z_i; u points from shell i to the other site
            u_c = vec - d[rows].unsqueeze(1)
            u_s = vec + d.unsqueeze(0) - d[rows].unsqueeze(1)
            _, g_c = kernel(u_c.norm(dim=-1), alpha, inside)
            _, g_s = kernel(u_s.norm(dim=-1), alpha, inside)
            # E ∋ Qs_i Q_b K(|u|): ∂/∂d_i = -Qs_i Q_b K'/r u
            grad = -(g_c * qc.unsqueeze(0)).unsqueeze(-1) * u_c + (g_s * z.unsqueeze(0)).unsqueeze(-1) * u_s
            grad = torch.where(self_pair, torch.zeros_like(grad), grad).sum(1)
            force[rows] = -(-z[rows]).unsqueeze(1) * grad
        d = force / ks.unsqueeze(1)
        norm = d.norm(dim=1, keepdim=True)
        d = torch.where(norm > SHELL_CAP, d * SHELL_CAP / norm.clamp_min(1e-300), d)
        seconds["shells"] += _clock(positions) - t
    seconds["total"] = _clock(positions) - t0
    return {"charges": q, "shell_displacements": d, "seconds": seconds}


if __name__ == "__main__":
    import ase.io
    import numpy as np
    from pathlib import Path

    torch.set_default_dtype(torch.float64)
    path = Path(__file__).resolve().parents[1] / "examples" / "data" / "Li2PO2N.cif"
    atoms = ase.io.read(path)
    numbers = torch.tensor(atoms.numbers)
    out = dense_two_cycle(torch.tensor(atoms.positions), numbers, torch.tensor(np.array(atoms.cell)))
    for zz in (3, 15, 7, 8):
        print(zz, float(out["charges"][numbers == zz].mean()))
    print(out["seconds"])
