"""Energies, forces and stresses of a batch of frames, differentiable for training.

The total is ``E = Σ_i E0_i + E_PQEq + E_D3`` as in :class:`~openmm_pqeq.model.PQEqModel`.
The E0 network takes one structure at a time, so a batch is evaluated as:

- all open (non-periodic) frames together as one graph: each frame is centred and placed on
  a grid with spacing larger than its extent plus ``r_max``, so no edge joins two frames and
  the per-atom energies are exactly those of the separate frames;
- periodic frames one by one, each with a strain tensor for the stress.

Long-range terms come either from the cached ``lr_*`` tensors attached to the batch
(:mod:`~openmm_pqeq.train.longrange`) or, with ``long_range="online"``, from ``model.pqeq``
and ``model.d3`` evaluated on the same (strained) positions (under each frame's charge groups),
so gradients reach them.
Forces and stress are derivatives of the total energy (``create_graph=True`` when training).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch

from .data import StructureDataset


def _grid_offsets(count: int, spacing: float, dtype: torch.dtype) -> torch.Tensor:
    side = max(1, math.ceil(count ** (1.0 / 3.0) - 1e-9))
    k = torch.arange(count)
    grid = torch.stack([k % side, (k // side) % side, k // (side * side)], dim=1)
    return grid.to(dtype) * spacing


def predict_batch(model: torch.nn.Module, batch: StructureDataset, long_range: str = "cached",
                  training: bool = False) -> Dict[str, torch.Tensor]:
    """Predicted ``energy`` (B,) eV, ``forces`` (ΣN, 3) eV/Å and ``stress`` (B, 3, 3) eV/Å³
    (zero for open frames), float64, for a batch made by :meth:`StructureDataset.batch`.

    Parameters
    ----------
    model : PQEqModel
        Its ``e0`` is evaluated here; ``pqeq`` and ``d3`` only with ``long_range="online"``.
    batch : StructureDataset
        With ``atom_frame``; with ``lr_energy``/``lr_forces``/``lr_stress`` for ``"cached"``.
    long_range : {"cached", "online"}
    training : bool
        Keep the graph of forces and stress (for a loss on them).
    """
    if long_range not in ("cached", "online"):
        raise ValueError(f"`long_range` is {long_range!r}; options are 'cached', 'online'")
    t = batch.tensors
    n_frames = len(batch)
    positions = t["positions"].detach().clone().requires_grad_(True)
    numbers = t["numbers"]
    atom_frame = t["atom_frame"]
    periodic = t["periodic"].tolist()
    offsets = batch.offsets.tolist()
    e0 = model.e0
    e0_dtype = e0.per_species_shift.dtype if e0 is not None else torch.float64
    energy = positions.new_zeros(n_frames)
    strains: List[Optional[torch.Tensor]] = [None] * n_frames
    strained_positions: List[torch.Tensor] = []
    strained_cells: List[Optional[torch.Tensor]] = []
    eye = torch.eye(3, dtype=positions.dtype, device=positions.device)
    for k in range(n_frames):
        pos_k = positions[offsets[k]:offsets[k + 1]]
        if periodic[k]:
            strain = torch.zeros(3, 3, dtype=positions.dtype, device=positions.device, requires_grad=True)
            strains[k] = strain
            strained_positions.append(pos_k @ (eye + strain))
            strained_cells.append(t["cell"][k] @ (eye + strain))
        else:
            strained_positions.append(pos_k)
            strained_cells.append(None)

    if e0 is not None:
        atom_energy = positions.new_zeros(positions.shape[0])
        open_frames = [k for k in range(n_frames) if not periodic[k]]
        if open_frames:
            # one graph: frames centred and spread on a grid, farther apart than r_max
            centred = []
            extent = 0.0
            for k in open_frames:
                p = strained_positions[k]
                low, high = p.detach().min(0).values, p.detach().max(0).values
                centred.append(p - 0.5 * (low + high))
                extent = max(extent, float((high - low).norm()))
            spacing = extent + float(e0.r_max) + 1.0
            grid = _grid_offsets(len(open_frames), spacing, positions.dtype).to(positions.device)
            merged = torch.cat([c + grid[m] for m, c in enumerate(centred)])
            index = torch.cat([torch.arange(offsets[k], offsets[k + 1], device=positions.device)
                               for k in open_frames])
            per_atom = e0(merged.to(e0_dtype), numbers.index_select(0, index), None).to(positions.dtype)
            atom_energy = atom_energy.index_add(0, index, per_atom)
        for k in range(n_frames):
            if periodic[k]:
                per_atom = e0(strained_positions[k].to(e0_dtype), numbers[offsets[k]:offsets[k + 1]],
                              strained_cells[k].to(e0_dtype)).to(positions.dtype)
                atom_energy = atom_energy.index_add(
                    0, torch.arange(offsets[k], offsets[k + 1], device=positions.device), per_atom)
        energy = energy.index_add(0, atom_frame, atom_energy)

    if long_range == "online":
        frame_index = [torch.tensor([k], device=positions.device) for k in range(n_frames)]
        for k in range(n_frames):
            lo, hi = offsets[k], offsets[k + 1]
            field = t["field"][k]
            if model.pqeq is not None:
                model.pqeq.reset()
                out = model.pqeq(strained_positions[k], numbers[lo:hi], strained_cells[k], field,
                                 float(t["charge"][k]), batch.frame_groups(k), None)
                energy = energy.index_add(0, frame_index[k], out["energy"].reshape(1))
            if model.d3 is not None:
                e_d3 = model.d3(strained_positions[k], numbers[lo:hi], strained_cells[k])
                energy = energy.index_add(0, frame_index[k], e_d3.reshape(1))

    inputs = [positions] + [s for s in strains if s is not None]
    if energy.requires_grad:
        grads = torch.autograd.grad(energy.sum(), inputs, create_graph=training, allow_unused=True)
    else:
        grads = [None] * len(inputs)
    forces = -grads[0] if grads[0] is not None else torch.zeros_like(positions)
    zero = positions.new_zeros(3, 3)
    rows: List[torch.Tensor] = []
    m = 1
    for k in range(n_frames):
        row = zero
        if strains[k] is not None:
            g = grads[m]
            m += 1
            if g is not None:
                row = g / torch.linalg.det(t["cell"][k]).abs()
        rows.append(row)
    stress = torch.stack(rows)
    if long_range == "cached":
        energy = energy + t["lr_energy"]
        forces = forces + t["lr_forces"]
        stress = stress + t["lr_stress"]
    if not training:
        energy, forces, stress = energy.detach(), forces.detach(), stress.detach()
    return {"energy": energy, "forces": forces, "stress": stress}
