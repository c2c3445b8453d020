"""Polarization, molecular dipoles and their orientation (Å, e, e·Å, e/Å²).

Molecules are made whole by the minimum-image convention around their first atom (the
same rule the PQEq field term uses with one charge group per molecule, docs in README
*The physics*), so a molecule split by the periodic boundary gets its true dipole.  A
molecule must be smaller than half the cell for that rule to hold.

A PQEq atom carries a core charge q_i + Z_i at r_i and a shell −Z_i at r_i + d_i, so its
dipole relative to r_i is p_i = −Z_i d_i.  The molecular dipole is

    μ_m = Σ_{i∈m} (q_i r̃_i + p_i),

r̃ the whole-molecule coordinates.  :class:`~openmm_pqeq.integrations.reporters.PQEqReporter`
writes q_i always and p_i when given a ``shells_file`` (``openmm-pqeq md`` does); without
p_i the molecular dipole holds the charge part only.  For a neutral molecule μ_m does not
depend on the origin.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def polarization(dipole_eA, volume_A3, direction: Sequence[float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Polarization P(t) = M(t)·n / V (e/Å²) along the unit vector of ``direction``.

    ``dipole_eA`` (F, 3) system dipole M in e·Å (e.g. the ``dipole_eA`` of
    :func:`~openmm_pqeq.integrations.reporters.read_charges`); ``volume_A3`` a scalar or (F,)
    cell volume in Å³.  1 e/Å² = 16.02 C/m².
    """
    dipole = np.asarray(dipole_eA, dtype=float)
    if dipole.ndim != 2 or dipole.shape[1] != 3:
        raise ValueError(f"`dipole_eA` must have shape (F, 3), got {list(dipole.shape)}")
    volume = np.asarray(volume_A3, dtype=float)
    if (volume <= 0).any():
        raise ValueError(f"`volume_A3` must be positive, got {volume.min()}")
    return dipole @ unit_vector(direction) / volume


def unit_vector(direction: Sequence[float]) -> np.ndarray:
    """``direction`` (3,) normalised; a zero or malformed vector is an error."""
    vector = np.asarray(direction, dtype=float)
    if vector.shape != (3,) or not np.isfinite(vector).all() or np.linalg.norm(vector) == 0:
        raise ValueError(f"`direction` must be a non-zero 3-vector, got {list(np.ravel(vector))}")
    return vector / np.linalg.norm(vector)


def molecule_index(molecules, n_atoms: int) -> np.ndarray:
    """Molecule index (N,) of each atom from a per-atom index array or a list of atom-index lists."""
    if len(molecules) == n_atoms and np.ndim(molecules[0]) == 0:
        index = np.asarray(molecules, dtype=int)
    else:
        index = np.full(n_atoms, -1, dtype=int)
        for m, atoms in enumerate(molecules):
            index[np.asarray(atoms, dtype=int)] = m
    if index.shape != (n_atoms,) or (index < 0).any():
        raise ValueError(f"`molecules` must assign each of the {n_atoms} atoms to a molecule")
    return index


def whole_molecules(positions_A, molecules, cell_A=None) -> np.ndarray:
    """Positions (F, N, 3) Å with each molecule made whole around its first atom.

    ``positions_A`` (F, N, 3) or (N, 3); ``molecules`` per-atom molecule index (N,) or lists
    of atom indices; ``cell_A`` (3, 3) or (F, 3, 3) with cell vectors as rows, or None (open
    system: positions are returned unchanged).
    """
    positions = np.asarray(positions_A, dtype=float)
    single = positions.ndim == 2
    positions = positions[None] if single else positions
    if positions.ndim != 3 or positions.shape[2] != 3:
        raise ValueError(f"`positions_A` must have shape (F, N, 3) or (N, 3), got {list(np.shape(positions_A))}")
    if cell_A is None:
        return positions[0] if single else positions
    index = molecule_index(molecules, positions.shape[1])
    cell = np.broadcast_to(np.asarray(cell_A, dtype=float), (positions.shape[0], 3, 3))
    first = np.full(index.max() + 1, positions.shape[1])
    np.minimum.at(first, index, np.arange(positions.shape[1]))
    anchor = positions[:, first[index]]
    frac = np.linalg.solve(np.transpose(cell, (0, 2, 1))[:, None], (positions - anchor)[..., None])[..., 0]
    frac -= np.round(frac)
    whole = anchor + np.einsum("fnk,fkc->fnc", frac, cell)
    return whole[0] if single else whole


def molecular_dipoles(positions_A, charges_e, molecules, cell_A=None, shell_dipoles_eA=None) -> np.ndarray:
    """Dipole of each molecule in each frame, (F, M, 3) e·Å.

    ``positions_A`` (F, N, 3) Å; ``charges_e`` (F, N) or (N,) e; ``molecules`` per-atom index
    or atom lists; ``cell_A`` (3, 3) / (F, 3, 3) or None; ``shell_dipoles_eA`` (F, N, 3)
    per-atom shell dipoles p_i = −Z_i d_i, or None for the charge part only (module docstring).
    """
    positions = np.asarray(positions_A, dtype=float)
    if positions.ndim == 2:
        positions = positions[None]
    frames, n_atoms = positions.shape[:2]
    charges = np.broadcast_to(np.asarray(charges_e, dtype=float), (frames, n_atoms))
    index = molecule_index(molecules, n_atoms)
    whole = whole_molecules(positions, index, cell_A)
    atom_dipoles = charges[..., None] * whole
    if shell_dipoles_eA is not None:
        shells = np.asarray(shell_dipoles_eA, dtype=float)
        if shells.shape != (frames, n_atoms, 3):
            raise ValueError(f"`shell_dipoles_eA` must have shape {[frames, n_atoms, 3]}, got {list(shells.shape)}")
        atom_dipoles = atom_dipoles + shells
    result = np.zeros((frames, index.max() + 1, 3))
    np.add.at(result, (slice(None), index), atom_dipoles)
    return result


def orientation_cosines(dipoles_eA, direction: Sequence[float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """cos θ (…,) of each dipole (…, 3) with ``direction``; a zero dipole is an error."""
    dipoles = np.asarray(dipoles_eA, dtype=float)
    norms = np.linalg.norm(dipoles, axis=-1)
    if (norms == 0).any():
        raise ValueError("a dipole of zero length has no orientation")
    return dipoles @ unit_vector(direction) / norms


def dipole_distribution(dipoles_eA, bins: int = 40, value_range: Optional[Sequence[float]] = None):
    """Histogram of dipole magnitudes: (centres (B,), probability density (B,)) in e·Å and 1/(e·Å)."""
    magnitudes = np.linalg.norm(np.asarray(dipoles_eA, dtype=float), axis=-1).ravel()
    density, edges = np.histogram(magnitudes, bins=bins, range=value_range, density=True)
    return 0.5 * (edges[1:] + edges[:-1]), density
