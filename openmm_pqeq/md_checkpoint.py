"""Checkpoints of an ``openmm-pqeq md`` run, so that a killed run continues where it was.

A checkpoint is one JSON file in the run folder (``checkpoint.json``, written atomically)::

    {"format": "openmm_pqeq.md_checkpoint", "version": 1,
     "step": 1200, "finished": false,           # MD steps done; whether the run completed
     "run": {...},                              # the run's settings and model: a resume must match
     "outputs": {"trajectory.dcd": {"bytes": 51234, "frames": 110}, "charges.txt": {"bytes": ...}, ...},
     "openmm_checkpoint": "<base64>",           # Context.createCheckpoint(): positions, velocities,
                                                # box, parameters (the field), step count, RNG states
     "wall_seconds": 812.4}                     # MD wall time spent before this checkpoint

The output files only grow, and their sizes are recorded when the checkpoint is written
(after every reporter has flushed).  On resume each file is cut back to its recorded size
(a DCD also gets its frame count in the header reset), so the frames written between the
checkpoint and the kill are dropped and written again: no frame is duplicated or missing.
The OpenMM checkpoint is exact but specific to the platform and OpenMM version (see
``openmm.Context.createCheckpoint``); the PQEq warm start is not in it, so the first step
after a resume starts its charge solve cold (same converged result within the tolerances).
"""

from __future__ import annotations

import base64
import json
import os
import struct
from pathlib import Path
from typing import Any, Dict, Optional

from ._atomic import atomic_write_text

CHECKPOINT_NAME = "checkpoint.json"
FORMAT = "openmm_pqeq.md_checkpoint"
VERSION = 1
#: Byte offsets in a DCD header (OpenMM's ``DCDFile``): number of frames, first step, step
#: interval between frames, last step.
_DCD_COUNT, _DCD_FIRST, _DCD_INTERVAL, _DCD_LAST = 8, 12, 16, 20


def dcd_frames(path: Path) -> int:
    """Number of frames a DCD file's header declares (0 for an empty or absent file)."""
    if not path.exists() or path.stat().st_size < 24:
        return 0
    with open(path, "rb") as handle:
        handle.seek(_DCD_COUNT)
        return struct.unpack("<i", handle.read(4))[0]


def output_sizes(folder: Path, names) -> Dict[str, Dict[str, int]]:
    """Size in bytes (and DCD frame count) of each output file now (absent files: 0)."""
    sizes = {}
    for name in names:
        path = folder / name
        entry = {"bytes": path.stat().st_size if path.exists() else 0}
        if name.endswith(".dcd"):
            entry["frames"] = dcd_frames(path)
        sizes[name] = entry
    return sizes


def restore_outputs(folder: Path, recorded: Dict[str, Dict[str, int]]) -> None:
    """Cut each output file back to its size at the checkpoint (and fix a DCD header)."""
    for name, entry in recorded.items():
        path = folder / name
        size = int(entry["bytes"])
        current = path.stat().st_size if path.exists() else 0
        if current < size:
            raise ValueError(f"{path} has {current} bytes but had {size} at the checkpoint: it was truncated or "
                             "replaced since, so the run cannot continue consistently; start it afresh")
        if not path.exists():
            continue
        with open(path, "r+b") as handle:
            handle.truncate(size)
            if name.endswith(".dcd") and size > 0:
                frames = int(entry["frames"])
                handle.seek(_DCD_FIRST)
                first, interval = struct.unpack("<2i", handle.read(8))
                handle.seek(_DCD_COUNT)
                handle.write(struct.pack("<i", frames))
                handle.seek(_DCD_LAST)
                handle.write(struct.pack("<i", first + max(frames - 1, 0) * interval))
            handle.flush()
            os.fsync(handle.fileno())


def write_checkpoint(folder: Path, step: int, finished: bool, run: Dict[str, Any], outputs: Dict[str, Any],
                     openmm_checkpoint: bytes, wall_seconds: float) -> Path:
    """Write ``folder/checkpoint.json`` atomically (see the module docstring)."""
    payload = {"format": FORMAT, "version": VERSION, "step": int(step), "finished": bool(finished), "run": run,
               "outputs": outputs, "openmm_checkpoint": base64.b64encode(openmm_checkpoint).decode("ascii"),
               "wall_seconds": float(wall_seconds)}
    return atomic_write_text(folder / CHECKPOINT_NAME, json.dumps(payload))


def read_checkpoint(folder: Path) -> Optional[Dict[str, Any]]:
    """The checkpoint of the run in ``folder`` (``openmm_checkpoint`` decoded to bytes), or
    None when there is none; a clear error for a file that is not one."""
    path = folder / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text())
        valid = payload.get("format") == FORMAT
    except (ValueError, AttributeError):
        valid = False
    if not valid:
        raise ValueError(f"{path} is not an openmm-pqeq md checkpoint")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path} has checkpoint version {payload.get('version')!r}; this openmm_pqeq reads "
                         f"version {VERSION}")
    payload["openmm_checkpoint"] = base64.b64decode(payload["openmm_checkpoint"])
    return payload


def run_differences(stored: Dict[str, Any], requested: Dict[str, Any]) -> Dict[str, Any]:
    """Settings that differ between a checkpoint's run and the requested one:
    name -> (stored, requested)."""
    requested = json.loads(json.dumps(requested))  # tuples become lists, as stored
    names = sorted(set(stored) | set(requested))
    return {name: (stored.get(name), requested.get(name)) for name in names if stored.get(name) != requested.get(name)}
