"""Radial distribution functions through mdtraj (Å), and the first peak of g(r).

mdtraj normalises g(r) by the ideal-gas pair density of the cell, so g → 1 at large r in a
homogeneous liquid.  For water the reference is the X-ray O–O g(r) of Skinner et al.,
J. Chem. Phys. 138, 074506 (2013): first peak at 2.80 Å, height 2.57 (docs in README *Analysis*).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from ..units import ANGSTROM_TO_NM, NM_TO_ANGSTROM


def radial_distribution(trajectory, selection_a: str, selection_b: str, r_max_A: float = 8.0,
                        bin_width_A: float = 0.05) -> Tuple[np.ndarray, np.ndarray]:
    """g(r) between the atoms of two mdtraj selections over all frames of a periodic
    ``mdtraj.Trajectory``: (bin centres (B,) Å, g (B,)).  Pairs of an atom with itself are skipped.

    ``r_max_A`` must stay below half the shortest cell width (minimum image).
    """
    import mdtraj

    if trajectory.unitcell_vectors is None:
        raise ValueError("the trajectory has no unit cell; g(r) needs a periodic box")
    first = trajectory.topology.select(selection_a)
    second = trajectory.topology.select(selection_b)
    if first.size == 0 or second.size == 0:
        raise ValueError(f"selection {selection_a!r} or {selection_b!r} matches no atom")
    half_width_A = max_rdf_range_A(trajectory.unitcell_vectors * NM_TO_ANGSTROM)
    if r_max_A > half_width_A + 1e-9:
        raise ValueError(f"`r_max_A` is {r_max_A} Å but the cell allows at most {half_width_A:.3f} Å "
                         "(half its width)")
    pairs = trajectory.topology.select_pairs(first, second)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    n_bins = int(round(r_max_A / bin_width_A))
    r_nm, g = mdtraj.compute_rdf(trajectory, pairs, r_range=(0.0, n_bins * bin_width_A * ANGSTROM_TO_NM),
                                 n_bins=n_bins, periodic=True)
    return r_nm * NM_TO_ANGSTROM, g


def max_rdf_range_A(cell_A) -> float:
    """Half the smallest distance between opposite faces over all frames of ``cell_A`` (F, 3, 3)
    or (3, 3) Å (rows are cell vectors): the largest r the minimum image reaches."""
    cells = np.asarray(cell_A, dtype=float).reshape(-1, 3, 3)
    faces = np.linalg.norm(np.cross(cells[:, [1, 2, 0]], cells[:, [2, 0, 1]]), axis=2)
    return 0.5 * float((np.abs(np.linalg.det(cells))[:, None] / faces).min())


def oxygen_rdf(trajectory, r_max_A: float = 8.0, bin_width_A: float = 0.05) -> Tuple[np.ndarray, np.ndarray]:
    """O–O g(r) of a water trajectory (every oxygen with every other oxygen)."""
    return radial_distribution(trajectory, "element O", "element O", r_max_A, bin_width_A)


def first_peak(r_A, g, r_min_A: float = 0.0) -> Tuple[float, float]:
    """Position (Å, bin centre) and height of the highest g(r) at r ≥ ``r_min_A`` (for water's
    O–O g(r) the first peak is the highest); the position is known to one bin width."""
    r = np.asarray(r_A, dtype=float)
    values = np.asarray(g, dtype=float)
    keep = r >= r_min_A
    if not keep.any() or values[keep].max() <= 0:
        raise ValueError("g(r) has no peak in the given range")
    k = int(np.argmax(np.where(keep, values, -np.inf)))
    return float(r[k]), float(values[k])
