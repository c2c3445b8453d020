"""Tiny labelled data sets for the training tests, made by a hidden reference potential.

The reference is ``E_ref = Σ_i shift[Z_i] + E_Morse + E_PQEq + E_D3``: a smooth short-range
Morse pair potential (what E0 must learn), the frozen long-range terms of the model and known
per-element shifts.  Frames are small open water clusters (monomer to trimer, plus H3O+ and
OH- so the composition varies and the per-element shifts are identifiable), some in a field,
and a few periodic boxes with stress.  Everything is session-scoped so the long-range terms
are computed once.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

#: Known per-element shifts of the reference (eV).
SHIFTS = {1: -13.6, 8: -432.0}
#: Long-range terms of the reference = those of the model under test.
PQEQ = {"mode": "physical", "params": "reaxnet"}
D3 = {"functional": "pbe", "damping": "zero", "cutoff": 8.0, "cn_cutoff": 8.0}
MORSE = {  # (D eV, a 1/Å, r0 Å) per element pair
    (1, 1): (0.1, 2.0, 1.6),
    (1, 8): (2.0, 2.2, 0.97),
    (8, 8): (0.2, 1.5, 2.9),
}
MORSE_CUTOFF = 4.5

WATER = np.array([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]])
HYDRONIUM = np.array([[0.0, 0.0, 0.0], [0.94, 0.0, 0.33], [-0.47, 0.814, 0.33], [-0.47, -0.814, 0.33]])
HYDROXIDE = np.array([[0.0, 0.0, 0.0], [0.97, 0.0, 0.0]])


def morse_energy(positions: torch.Tensor, numbers: torch.Tensor, cell) -> torch.Tensor:
    """Smoothly truncated Morse pair energy (eV) of one frame (minimum image for cells)."""
    i, j = torch.triu_indices(len(numbers), len(numbers), 1)
    vec = positions[j] - positions[i]
    if cell is not None:
        frac = vec @ torch.linalg.inv(cell)
        vec = (frac - torch.round(frac)) @ cell
    r = vec.norm(dim=1)
    energy = positions.new_zeros(())
    for (za, zb), (d, a, r0) in MORSE.items():
        zi, zj = numbers[i], numbers[j]
        mask = ((zi == za) & (zj == zb)) | ((zi == zb) & (zj == za))
        rr = r[mask]
        taper = 0.5 * (torch.cos(torch.pi * rr.clamp(max=MORSE_CUTOFF) / MORSE_CUTOFF) + 1.0)
        energy = energy + (d * ((1 - torch.exp(-a * (rr - r0))) ** 2 - 1.0) * taper).sum()
    return energy


def _rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _cluster(rng, molecules, spread=2.9):
    """Place molecules (list of (geometry, numbers)) at least ``spread`` Å apart (centres)."""
    centres = []
    positions, numbers = [], []
    for geometry, z in molecules:
        for _ in range(1000):
            c = rng.normal(size=3) * spread * 0.8
            if all(np.linalg.norm(c - o) > spread for o in centres):
                break
        centres.append(c)
        positions.append(geometry @ _rotation(rng).T + c)
        numbers += z
    pos = np.concatenate(positions)
    return pos + rng.normal(scale=0.04, size=pos.shape), numbers


def make_frames(seed: int = 0, n_open: int = 30, n_periodic: int = 0):
    """(positions, numbers, cell or None, charge, field) tuples of the reference data."""
    rng = np.random.default_rng(seed)
    water = (WATER, [8, 1, 1])
    frames = []
    for k in range(n_open):
        kind = k % 6
        if kind == 4:
            molecules, charge = [(HYDRONIUM, [8, 1, 1, 1]), water], 1.0
        elif kind == 5:
            molecules, charge = [(HYDROXIDE, [8, 1])] + [water] * (k % 2), -1.0
        else:
            molecules, charge = [water] * (1 + kind % 3), 0.0
        pos, z = _cluster(rng, molecules)
        field = [0.0, 0.0, 0.1] if k % 5 == 0 else [0.0, 0.0, 0.0]
        frames.append((pos, z, None, charge, field))
    for k in range(n_periodic):
        pos, z = _cluster(rng, [water, water])
        cell = np.diag([7.0, 7.2, 6.8]) + rng.normal(scale=0.1, size=(3, 3))
        frames.append((pos + 3.4, z, cell, 0.0, [0.0, 0.0, 0.0]))
    return frames


def label_frames(frames, pqeq=PQEQ, d3=D3, shifts=SHIFTS, morse=True):
    """ASE Atoms with reference energy, forces, stress (periodic), charge and field."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from openmm_pqeq.model import build_model, energy_forces_stress

    lr = None
    if pqeq is not None or d3 is not None:
        lr = build_model({"elements": [1, 8], "e0": None, "pqeq": pqeq, "d3": d3})
    out = []
    for pos, z, cell, charge, field in frames:
        positions = torch.tensor(pos, dtype=torch.float64)
        numbers = torch.tensor(z)
        cell_t = None if cell is None else torch.tensor(cell, dtype=torch.float64)
        strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
        x = positions.clone().requires_grad_(True)
        xs = x @ (torch.eye(3, dtype=torch.float64) + strain)
        cs = None if cell_t is None else cell_t @ (torch.eye(3, dtype=torch.float64) + strain)
        energy = sum(shifts[int(n)] for n in z) + (morse_energy(xs, numbers, cs) if morse else xs.sum() * 0)
        g_x, g_s = torch.autograd.grad(energy, [x, strain], allow_unused=True)
        e = float(energy.detach())
        forces = -(g_x if g_x is not None else torch.zeros_like(x))
        stress = (g_s if g_s is not None else torch.zeros(3, 3, dtype=torch.float64))
        if cell_t is not None:
            stress = stress / torch.linalg.det(cell_t).abs()
        if lr is not None:
            lr.pqeq.reset() if lr.pqeq is not None else None
            terms = energy_forces_stress(lr, positions, numbers, cell_t, torch.tensor(field, dtype=torch.float64),
                                         charge)
            e += float(terms["energy"])
            forces = forces + terms["forces"]
            if cell_t is not None:
                stress = stress + terms["stress"]
        atoms = Atoms(numbers=z, positions=pos, cell=cell, pbc=cell is not None)
        atoms.info["charge"] = charge
        atoms.info["field"] = np.array(field)
        results = {"energy": e, "forces": forces.detach().numpy()}
        if cell_t is not None:
            results["stress"] = stress.detach().numpy().reshape(3, 3)[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        atoms.calc = SinglePointCalculator(atoms, **results)
        out.append(atoms)
    return out


def write_data(path: Path, atoms_list) -> Path:
    import ase.io

    ase.io.write(str(path), atoms_list, format="extxyz")
    return path


@pytest.fixture(scope="session")
def water_data(tmp_path_factory) -> Path:
    """30 open water clusters labelled by the full reference (Morse + PQEq + D3 + shifts)."""
    folder = tmp_path_factory.mktemp("water")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return write_data(folder / "water.extxyz", label_frames(make_frames(seed=0, n_open=30)))
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def long_range_only_data(tmp_path_factory) -> Path:
    """Frames whose reference is exactly PQEq + D3 + shifts (no short-range part)."""
    folder = tmp_path_factory.mktemp("lr_only")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        frames = make_frames(seed=1, n_open=12)
        return write_data(folder / "lr_only.extxyz", label_frames(frames, morse=False))
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def periodic_data(tmp_path_factory) -> Path:
    """Four open clusters and three periodic two-water boxes with stress (Morse + D3 + shifts)."""
    folder = tmp_path_factory.mktemp("periodic")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        frames = make_frames(seed=2, n_open=4, n_periodic=3)
        return write_data(folder / "periodic.extxyz", label_frames(frames, pqeq=None))
    finally:
        torch.set_default_dtype(previous)


def tiny_config(data_file: Path, out: Path, **overrides):
    """A small, fast TrainConfig (float64 E0, tiny network, few epochs) for ``data``."""
    from openmm_pqeq.train import TrainConfig

    values = {
        "data": {"train": str(data_file), "validation_fraction": 0.2, "test_fraction": 0.1, "split_seed": 1},
        "model": {"elements": "auto",
                  "e0": {"preset": "small", "num_blocks": 1, "hidden_irreps": "8x0e+4x1e", "radial_mlp": [8],
                         "r_max": 4.0, "avg_num_neighbors": "auto"},
                  "pqeq": dict(PQEQ), "d3": dict(D3)},
        "training": {"epochs": 3, "batch_size": 8, "lr": 0.01, "scheduler": "plateau", "ema_decay": 0.0},
        "output": {"dir": str(out), "progress": False},
        "seed": 0, "device": "cpu", "dtype": "float64",
    }
    for section, entries in overrides.items():
        if isinstance(entries, dict) and isinstance(values.get(section), dict):
            values[section] = {**values[section], **entries}
        else:
            values[section] = entries
    return TrainConfig.from_dict(values)


@pytest.fixture
def make_config():
    """The :func:`tiny_config` factory."""
    return tiny_config


@pytest.fixture(scope="session")
def reference():
    """The reference potential's constants and helpers (test modules cannot import conftest)."""
    return SimpleNamespace(SHIFTS=SHIFTS, PQEQ=PQEQ, D3=D3, make_frames=make_frames, label_frames=label_frames,
                           write_data=write_data, tiny_config=tiny_config)


@pytest.fixture(scope="session")
def trained_run(water_data, tmp_path_factory):
    """One tiny training run on ``water_data`` (3 epochs), shared by several tests."""
    from openmm_pqeq.train import train

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return train(tiny_config(water_data, tmp_path_factory.mktemp("run") / "out"))
    finally:
        torch.set_default_dtype(previous)
