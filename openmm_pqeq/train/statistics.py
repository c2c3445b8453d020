"""Per-species energy shift and scale of E0, and the average neighbour count, from the data.

E0_i = scale[Z_i] · readout_i + shift[Z_i] (eV).  The shift is the per-element energy that
best explains the Δ-target ``E_ref − E_PQEq − E_D3`` of the training frames in least squares
(min ‖A s − E_Δ‖ with A[k, z] = number of atoms of element z in frame k; the minimum-norm
solution when compositions are collinear, e.g. water only).  The scale is the RMS of the
Δ-target force components (NequIP's ``forces_rms``), so the network starts with forces of the
right size; without forces, the RMS of the per-atom energy residual after the shift.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Union

import torch

from ..elements import SYMBOLS, atomic_number
from .data import StructureDataset


def composition_matrix(dataset: StructureDataset, elements: List[int]) -> torch.Tensor:
    """(F, len(elements)) float64: number of atoms of each element in each frame."""
    t = dataset.tensors
    frame_of_atom = torch.repeat_interleave(torch.arange(len(dataset)), t["n_atoms"])
    column = torch.full((int(t["numbers"].max()) + 1,), -1, dtype=torch.long)
    column[torch.tensor(elements)] = torch.arange(len(elements))
    cols = column.index_select(0, t["numbers"])
    if bool((cols < 0).any()):
        z = int(t["numbers"][cols < 0][0])
        raise ValueError(f"the data contain element {SYMBOLS[z]} (Z={z}), not among the model's elements "
                         f"{[SYMBOLS[e] for e in elements]}")
    counts = torch.zeros(len(dataset), len(elements), dtype=torch.float64)
    counts.index_put_((frame_of_atom, cols), torch.ones(len(cols), dtype=torch.float64), accumulate=True)
    return counts


def fit_species_shift(dataset: StructureDataset, energies: torch.Tensor, elements: List[int],
                      mask: Optional[torch.Tensor] = None) -> Dict[int, float]:
    """Least-squares per-element energies (eV) explaining ``energies`` (F,) eV, over the
    frames selected by ``mask`` (F,) bool (all by default): ``{Z: eV}``."""
    counts = composition_matrix(dataset, elements)
    if mask is not None:
        counts, energies = counts[mask], energies[mask]
    if counts.shape[0] == 0:
        raise ValueError("no frames with energies to fit the per-element shift to")
    solution = torch.linalg.lstsq(counts, energies.to(torch.float64).unsqueeze(1), driver="gelsd").solution
    return {z: float(v) for z, v in zip(elements, solution.squeeze(1))}


def delta_targets(dataset: StructureDataset) -> Dict[str, torch.Tensor]:
    """Δ-targets E_ref − E_LR (F,), F_ref − F_LR (ΣN, 3) from the attached long-range terms."""
    t = dataset.tensors
    if "lr_energy" not in t:
        raise ValueError("the dataset has no long-range terms attached (attach_long_range)")
    return {"energy": t["energy"] - t["lr_energy"], "forces": t["forces"] - t["lr_forces"]}


def fit_statistics(dataset: StructureDataset, elements: List[int],
                   shift: Union[str, Dict, None] = "least_squares",
                   scale: Union[str, float, Dict, None] = "force_rms") -> Dict[str, Dict[int, float]]:
    """Shift and scale per element (``{"shift": {Z: eV}, "scale": {Z: value}}``; an option of
    ``"none"`` leaves that entry out).  ``dataset`` must carry long-range terms."""
    targets = delta_targets(dataset)
    t = dataset.tensors
    result: Dict[str, Dict[int, float]] = {}
    if isinstance(shift, dict):
        result["shift"] = {atomic_number(k): float(v) for k, v in shift.items()}
    elif shift == "least_squares":
        if bool(t["has_energy"].any()):
            result["shift"] = fit_species_shift(dataset, targets["energy"], elements, t["has_energy"])
    if isinstance(scale, dict):
        result["scale"] = {atomic_number(k): float(v) for k, v in scale.items()}
    elif isinstance(scale, (int, float)) and not isinstance(scale, bool):
        result["scale"] = {z: float(scale) for z in elements}
    elif scale == "force_rms":
        has_forces = t["has_forces"].index_select(0, torch.repeat_interleave(torch.arange(len(dataset)),
                                                                            t["n_atoms"]))
        value = 0.0
        if bool(has_forces.any()):
            value = float(targets["forces"][has_forces].pow(2).mean().sqrt())
        elif "shift" in result and bool(t["has_energy"].any()):
            counts = composition_matrix(dataset, elements)[t["has_energy"]]
            fitted = counts @ torch.tensor([result["shift"][z] for z in elements], dtype=torch.float64)
            residual = (targets["energy"][t["has_energy"]] - fitted) / counts.sum(1)
            value = float(residual.pow(2).mean().sqrt())
        # a vanishing target (e.g. the data are PQEq + D3 exactly) keeps the unit scale
        result["scale"] = {z: (value if value > 1e-6 else 1.0) for z in elements}
    return result


def structures_for_neighbors(dataset: StructureDataset, max_frames: int = 2000):
    """(positions, cell) pairs of up to ``max_frames`` frames, for :func:`~openmm_pqeq.nn.e0.average_num_neighbors`."""
    step = max(1, len(dataset) // max_frames)
    for k, frame in enumerate(dataset.structures()):
        if k % step == 0:
            yield frame["positions"], frame["cell"]
