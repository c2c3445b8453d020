"""Long-range terms (PQEq + D3) of every frame, computed once through the model and cached.

Δ-learning (docs/method/learning.md): E0 is fitted to ``E_ref − E_PQEq − E_D3`` (and the same for
forces and stress).  PQEq and D3 have no trainable parameters, so their energies (eV), forces
(eV/Å) and stresses (eV/Å³) are computed once per frame, with the frame's total charge and
field, by :func:`~openmm_pqeq.model.energy_forces_stress` on a model holding only those terms,
in float64, under the frame's charge constraints (one total charge, or one neutral group per
molecule: :mod:`openmm_pqeq.charge_constraint`).  The cache file is keyed by the data, the
charge-constraint policy and the exact PQEq/D3 configuration (and the elements, which fix the
Ewald cutoff): changing any of them recomputes it.  When PQEq
parameters become trainable, train with ``long_range: online`` instead, which evaluates these
terms through the model at every step.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from .data import StructureDataset, save_atomic

#: Names of the attached long-range tensors.
LR_KEYS = ("lr_energy", "lr_forces", "lr_stress")


def long_range_config(model_config: Dict[str, Any]) -> Dict[str, Any]:
    """The part of a :func:`~openmm_pqeq.model.build_model` config that fixes the long-range terms."""
    return {"elements": sorted(model_config["elements"]), "pqeq": model_config.get("pqeq"),
            "d3": model_config.get("d3")}


def long_range_key(model_config: Dict[str, Any], charge_constraint: Optional[Dict[str, Any]] = None) -> str:
    config = long_range_config(model_config)
    if charge_constraint is not None and charge_constraint.get("rule") != "total":
        config["charge_constraint"] = charge_constraint
    text = json.dumps(config, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compute_long_range(dataset: StructureDataset, model_config: Dict[str, Any],
                       frames: Optional[Sequence[int]] = None, progress: bool = False) -> Dict[str, torch.Tensor]:
    """Long-range energy (F,), forces (ΣN, 3) and stress (F, 3, 3) of ``dataset`` (float64).

    Only ``frames`` are computed (others stay zero); used to share the work between ranks.
    """
    from ..model import build_model, energy_forces_stress

    config = long_range_config(model_config)
    energy = torch.zeros(len(dataset), dtype=torch.float64)
    forces = torch.zeros(dataset.num_atoms, 3, dtype=torch.float64)
    stress = torch.zeros(len(dataset), 3, 3, dtype=torch.float64)
    result = {"lr_energy": energy, "lr_forces": forces, "lr_stress": stress}
    if config["pqeq"] is None and config["d3"] is None:
        return result
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = build_model({**config, "e0": None})
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    wanted = range(len(dataset)) if frames is None else frames
    from tqdm.auto import tqdm

    for k in tqdm(wanted, desc="PQEq + D3 of the data", disable=not progress, leave=False):
        lo, hi = int(dataset.offsets[k]), int(dataset.offsets[k + 1])
        cell = dataset.cell[k] if bool(dataset.periodic[k]) else None
        if model.pqeq is not None:
            model.pqeq.reset()  # every frame starts from zero charges (no warm start across frames)
        try:
            out = energy_forces_stress(model, dataset.positions[lo:hi], dataset.numbers[lo:hi], cell,
                                       dataset.field[k], float(dataset.charge[k]), dataset.frame_groups(k))
        except (RuntimeError, ValueError) as error:
            raise type(error)(f"long-range terms of frame {int(dataset.frame[k])} of "
                              f"{dataset.source.get('path', 'the data')}: {error}") from error
        energy[k] = out["energy"]
        forces[lo:hi] = out["forces"]
        if cell is not None:
            stress[k] = out["stress"]
    return result


def attach_long_range(dataset: StructureDataset, model_config: Dict[str, Any], cache_dir: Optional[Path] = None,
                      dist=None, progress: bool = False) -> StructureDataset:
    """Attach ``lr_energy``, ``lr_forces``, ``lr_stress`` to ``dataset`` (in place), from the cache
    when it exists.  Under torch.distributed the frames are shared between ranks and rank 0
    writes the cache."""
    cache_file = None
    policy = dataset.charge_constraint.to_dict()
    source_cache = dataset.source.get("cache")
    if source_cache is not None or cache_dir is not None:
        folder = Path(cache_dir) if cache_dir is not None else Path(source_cache).parent
        stem = Path(source_cache).name.replace(".data.pt", "") if source_cache else dataset.source["sha256"][:16]
        cache_file = folder / f"{stem}.lr-{long_range_key(model_config, policy)}.pt"
    terms = None
    stamp = json.dumps({**long_range_config(model_config), "charge_constraint": policy}, sort_keys=True)
    if cache_file is not None and cache_file.is_file():
        payload = torch.load(cache_file, map_location="cpu", weights_only=True)
        if payload.get("config") == stamp:
            terms = payload["terms"]
    if terms is None:
        rank, world = (dist.rank, dist.world_size) if dist is not None else (0, 1)
        mine = list(range(rank, len(dataset), world))
        terms = compute_long_range(dataset, model_config, mine, progress=progress and rank == 0)
        if world > 1:
            for value in terms.values():
                dist.all_reduce_sum(value)
        if cache_file is not None and rank == 0:
            save_atomic({"config": stamp, "sha256": dataset.source.get("sha256"), "terms": terms}, cache_file)
        if dist is not None:
            dist.barrier()
    dataset.attach("lr_energy", terms["lr_energy"], per_atom=False)
    dataset.attach("lr_forces", terms["lr_forces"], per_atom=True)
    dataset.attach("lr_stress", terms["lr_stress"], per_atom=False)
    return dataset
