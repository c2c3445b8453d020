"""Small structures and numerical helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

REPO_DATA = Path(__file__).resolve().parents[1] / "examples" / "data"


def data_file(name: str) -> Path:
    """A data file of the repository (``examples/data/NAME``); the test is skipped without it."""
    if not (REPO_DATA / name).exists():
        pytest.skip(f"{name} not found in {REPO_DATA}")
    return REPO_DATA / name

#: Gas-phase water (Å): O at the origin.
WATER = np.array([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]])
WATER_Z = [8, 1, 1]


def water_dimer() -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (6, 3) Å and numbers of a hydrogen-bonded-like water dimer."""
    second = WATER @ np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]]).T + np.array([0.3, 2.9, 0.4])
    pos = np.concatenate([WATER, second])
    return torch.tensor(pos), torch.tensor(WATER_Z * 2)


def water_box() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two water molecules in a small triclinic cell (6 atoms; cell smaller than the
    real-space cutoff, so many images of each atom contribute)."""
    pos, num = water_dimer()
    cell = torch.tensor([[5.2, 0.0, 0.0], [0.6, 5.0, 0.0], [-0.4, 0.3, 5.5]])
    return pos + torch.tensor([1.0, 0.5, 1.2]), num, cell


def central_difference(fn: Callable[[torch.Tensor], float], x: torch.Tensor, h: float = 1e-4) -> torch.Tensor:
    """Central finite-difference gradient of scalar ``fn`` at ``x`` (any shape)."""
    grad = torch.zeros_like(x)
    flat = grad.view(-1)
    for k in range(x.numel()):
        e = torch.zeros_like(x).view(-1)
        e[k] = h
        e = e.view_as(x)
        flat[k] = (fn(x + e) - fn(x - e)) / (2 * h)
    return grad


def assert_gradients_match_finite_differences(loss_fn: Callable[[], torch.Tensor], params, h: float = 1e-5,
                                              tol: float = 1e-6) -> None:
    """Autograd gradients of ``loss_fn()`` by each entry of each 1-D tensor in ``params`` against
    central differences with step ``h``: |grad − fd| ≤ tol · max(1, |fd|)."""
    grads = torch.autograd.grad(loss_fn(), params)
    for param, grad in zip(params, grads):
        for k in range(param.shape[0]):
            with torch.no_grad():
                param[k] += h
                up = float(loss_fn())
                param[k] -= 2 * h
                down = float(loss_fn())
                param[k] += h
            fd = (up - down) / (2 * h)
            assert abs(float(grad[k]) - fd) <= tol * max(1.0, abs(fd)), (param.shape, k, float(grad[k]), fd)


def strain_cell(positions: torch.Tensor, cell: torch.Tensor, strain: torch.Tensor):
    """Apply a (3, 3) strain: r -> r (1 + ε), cell -> cell (1 + ε)."""
    deform = torch.eye(3, dtype=positions.dtype) + strain
    return positions @ deform, cell @ deform
