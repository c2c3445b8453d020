"""Read what ``openmm-pqeq md`` writes into its output folder, as NumPy arrays.

The folder holds (see :mod:`openmm_pqeq.md`): ``charges.txt`` (one row per report: step,
time, system dipole, solver statistics, per-atom charges; written by
:class:`~openmm_pqeq.integrations.reporters.PQEqReporter`), optionally ``shells.txt``
(per-atom shell dipoles), ``field.csv`` (the field set at each update: step, time_ps,
E_x, E_y, E_z in V/Å, in force from that step on), ``thermo.csv`` (OpenMM
StateDataReporter), ``trajectory.dcd`` and ``final.pdb`` (topology and last frame).
Only ``charges.txt`` is required; the rest is read when present.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..units import NM_TO_ANGSTROM


@dataclass
class MDRun:
    """One run's time series (F frames, N atoms); units in the names.

    ``positions_A`` (F, N, 3) and ``cell_A`` (F, 3, 3) come from the DCD (None without it);
    ``molecules`` (N,) molecule index of each atom and ``elements`` (N,) symbols come from
    ``final.pdb``; ``shell_dipoles_eA`` (F, N, 3) and ``field_V_per_A`` (F, 3) are None when
    their files are absent; ``temperature_K`` is the mean of thermo.csv (None without it).
    """

    step: np.ndarray
    time_ps: np.ndarray
    dipole_eA: np.ndarray
    charges_e: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    shell_dipoles_eA: Optional[np.ndarray] = None
    field_V_per_A: Optional[np.ndarray] = None
    positions_A: Optional[np.ndarray] = None
    cell_A: Optional[np.ndarray] = None
    molecules: Optional[np.ndarray] = None
    elements: Optional[np.ndarray] = None
    temperature_K: Optional[float] = None
    trajectory: object = None

    @property
    def frames(self) -> int:
        return int(self.step.shape[0])

    @property
    def volume_A3(self) -> Optional[np.ndarray]:
        """Cell volume per frame (F,) Å³, or None without a periodic trajectory."""
        return None if self.cell_A is None else np.abs(np.linalg.det(self.cell_A))

    @property
    def frame_ps(self) -> float:
        """Time between frames (ps); an error if the frames are not equally spaced."""
        spacing = np.diff(self.time_ps)
        if spacing.size == 0 or not np.allclose(spacing, spacing[0], rtol=1e-3, atol=1e-9):
            raise ValueError("the frames are not equally spaced in time")
        return float(spacing[0])


def read_table(path: Union[str, Path]) -> np.ndarray:
    """A whitespace- or comma-separated numeric table with ``#`` comments, (rows, columns)."""
    text = Path(path).read_text().replace(",", " ")
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    try:
        data = np.array([[float(v) for v in row] for row in rows])
    except ValueError as error:
        raise ValueError(f"{path}: not a numeric table ({error})") from None
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"{path}: no rows, or rows of different lengths")
    return data


def read_thermo(path: Union[str, Path]) -> dict:
    """Columns of an OpenMM StateDataReporter CSV (header ``#"Step","Time (ps)",...``) by header name."""
    lines = Path(path).read_text().splitlines()
    if not lines or not lines[0].startswith("#"):
        raise ValueError(f"{path}: no StateDataReporter header")
    names = [name.strip().strip('"') for name in lines[0].lstrip("#").split(",")]
    data = read_table(path)
    if data.shape[1] != len(names):
        raise ValueError(f"{path}: {data.shape[1]} columns but {len(names)} header names")
    return {name: data[:, k] for k, name in enumerate(names)}


def load_md_run(output_dir: Union[str, Path], trajectory: bool = True) -> MDRun:
    """Load an ``openmm-pqeq md`` output folder (module docstring); ``trajectory=False``
    skips the DCD (positions, cell, molecules stay None)."""
    from ..integrations.reporters import read_charges, read_shell_dipoles

    folder = Path(output_dir)
    charges_path = folder / "charges.txt"
    if not charges_path.is_file():
        raise FileNotFoundError(f"{charges_path} not found: is {folder} an `openmm-pqeq md` output folder?")
    frames = read_charges(charges_path)
    run = MDRun(frames["step"], frames["time_ps"], frames["dipole_eA"], frames["charges_e"], frames["iterations"],
                frames["converged"])
    if (folder / "shells.txt").is_file():
        shells = read_shell_dipoles(folder / "shells.txt")
        _check_steps(shells["step"], run.step, "shells.txt")
        run.shell_dipoles_eA = shells["shell_dipoles_eA"]
    if (folder / "field.csv").is_file():
        table = read_table(folder / "field.csv")
        run.field_V_per_A = _acting_at(table[:, 0].astype(int), table[:, 2:5], run.step)
    if (folder / "thermo.csv").is_file():
        thermo = read_thermo(folder / "thermo.csv")
        if "Temperature (K)" in thermo:
            run.temperature_K = float(np.mean(thermo["Temperature (K)"]))
    if trajectory and (folder / "trajectory.dcd").is_file() and (folder / "final.pdb").is_file():
        import mdtraj

        traj = mdtraj.load_dcd(str(folder / "trajectory.dcd"), top=str(folder / "final.pdb"))
        if traj.n_frames != run.frames:
            warnings.warn(f"{folder}: trajectory.dcd has {traj.n_frames} frames, charges.txt {run.frames}; "
                          "using the first frames of both")
        n = min(traj.n_frames, run.frames)
        traj = traj[:n]
        for name in ("step", "time_ps", "dipole_eA", "charges_e", "iterations", "converged", "shell_dipoles_eA",
                     "field_V_per_A"):
            value = getattr(run, name)
            if value is not None:
                setattr(run, name, value[:n])
        run.trajectory = traj
        run.positions_A = traj.xyz.astype(float) * NM_TO_ANGSTROM
        if traj.unitcell_vectors is not None:
            run.cell_A = traj.unitcell_vectors.astype(float) * NM_TO_ANGSTROM
        run.molecules = _molecule_index(traj.topology)
        run.elements = np.array([atom.element.symbol for atom in traj.topology.atoms])
        if run.charges_e.shape[1] != traj.n_atoms:
            raise ValueError(f"charges.txt has {run.charges_e.shape[1]} atoms but the trajectory {traj.n_atoms}: "
                             "the reporter covered a subset of the atoms")
    return run


def _molecule_index(topology) -> np.ndarray:
    index = np.empty(topology.n_atoms, dtype=int)
    groups = topology.find_molecules() if topology.n_bonds else [list(r.atoms) for r in topology.residues]
    for m, atoms in enumerate(groups):
        index[[atom.index for atom in atoms]] = m
    return index


def _check_steps(found: np.ndarray, expected: np.ndarray, name: str) -> None:
    if found.shape != expected.shape or (found != expected).any():
        raise ValueError(f"{name} has other steps than charges.txt ({found.size} rows against {expected.size})")


def _acting_at(steps: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The field that acted during each step of ``wanted``: the last update before it (updates
    are ``steps`` (K,) increasing, ``values`` (K, 3)); steps before the first update get the first."""
    k = np.searchsorted(steps, wanted, side="left") - 1
    return values[np.clip(k, 0, len(steps) - 1)]
