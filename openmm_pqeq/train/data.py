"""Datasets of labelled structures: read once with ASE, cached as tensors, split reproducibly.

A :class:`StructureDataset` holds all frames of a file as concatenated tensors (Å, eV, e,
V/Å, float64): per-atom ``positions`` (ΣN, 3), ``numbers`` (ΣN,), ``forces`` (ΣN, 3) eV/Å and
per-frame ``n_atoms`` (F,), ``cell`` (F, 3, 3) Å, ``periodic`` (F,), ``energy`` (F,) eV,
``stress`` (F, 3, 3) eV/Å³ (ASE sign: positive = tensile), ``charge`` (F,) e, ``field`` (F, 3)
V/Å and ``frame`` (F,) (index in the source file), with masks ``has_energy``,
``has_forces``, ``has_stress`` for quantities missing from some frames, and the charge
constraints of the frame (:mod:`openmm_pqeq.charge_constraint`): per-atom ``groups`` (ΣN,)
(group index within the frame; all 0 for one total charge) and per-frame ``n_groups`` (F,)
(1 for one total charge, else the number of molecules, each neutral).

Reading an extxyz file with ASE is slow, so the first :func:`load_dataset` writes the tensors
to ``<cache_dir>/<stem>-<key>.data.pt`` (default ``cache_dir``: ``.pqeq_cache`` next to the
data file), where the key hashes the file's content and the reading options: a changed file
is converted again, an unchanged one is never re-read.  The charge-constraint policy is part of
the key (molecules found by a distance rule depend on its bond factor).

>>> dataset = load_dataset("water.extxyz")  # doctest: +SKIP
>>> splits = split_indices(len(dataset), validation_fraction=0.1, test_fraction=0.1, seed=1)  # doctest: +SKIP
>>> train = dataset.subset(splits["train"])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch

from .._atomic import atomic_write
from ..charge_constraint import ChargeConstraint

#: Version of the cached tensor layout; bump it when the layout changes.
CACHE_VERSION = 2
PER_ATOM = ("positions", "numbers", "forces", "groups")
PER_FRAME = ("n_atoms", "cell", "periodic", "energy", "has_energy", "has_forces", "stress", "has_stress",
             "charge", "field", "frame", "n_groups")


def file_sha256(path: Union[str, Path]) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class StructureDataset:
    """Frames of labelled structures as concatenated tensors (see the module docstring).

    Attach extra per-atom or per-frame tensors (e.g. long-range terms) with :meth:`attach`;
    :meth:`subset` and :meth:`batch` carry them along.
    """

    def __init__(self, tensors: Dict[str, torch.Tensor], source: Optional[Dict] = None):
        missing = [k for k in PER_ATOM + PER_FRAME if k not in tensors]
        if missing:
            raise ValueError(f"dataset tensors lack {missing}")
        self.tensors = tensors
        self.per_atom = set(PER_ATOM)
        self.source = dict(source or {})
        n_atoms = tensors["n_atoms"]
        self.offsets = torch.zeros(len(n_atoms) + 1, dtype=torch.long)
        self.offsets[1:] = torch.cumsum(n_atoms, 0)

    def __len__(self) -> int:
        return int(self.tensors["n_atoms"].shape[0])

    def __repr__(self) -> str:
        return (f"StructureDataset({len(self)} frames, {self.num_atoms} atoms, elements {self.elements}, "
                f"source {self.source.get('path', '?')})")

    def __getattr__(self, name: str) -> torch.Tensor:
        tensors = self.__dict__.get("tensors", {})
        if name in tensors:
            return tensors[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or tensor {name!r}")

    @property
    def num_atoms(self) -> int:
        return int(self.offsets[-1])

    @property
    def charge_constraint(self) -> ChargeConstraint:
        """The policy the groups were made with (one total charge when the source does not say)."""
        return ChargeConstraint.from_dict(self.source.get("charge_constraint") or {"rule": "total"})

    def frame_groups(self, frame: int) -> Optional[torch.Tensor]:
        """Group index (N,) of the atoms of ``frame`` for the PQEq solve, or None (one total charge)."""
        if not self.charge_constraint.molecular:
            return None
        return self.tensors["groups"][int(self.offsets[frame]):int(self.offsets[frame + 1])]

    @property
    def elements(self) -> List[int]:
        """Sorted atomic numbers present."""
        return sorted(set(self.tensors["numbers"].tolist()))

    def attach(self, name: str, value: torch.Tensor, per_atom: bool) -> None:
        """Add a tensor with one row per atom (``per_atom``) or per frame."""
        expected = self.num_atoms if per_atom else len(self)
        if value.shape[0] != expected:
            raise ValueError(f"`{name}` has {value.shape[0]} rows but the dataset has {expected} "
                             f"{'atoms' if per_atom else 'frames'}")
        self.tensors[name] = value
        if per_atom:
            self.per_atom.add(name)

    def atom_index(self, frames: torch.Tensor) -> torch.Tensor:
        """Indices of the atoms of ``frames`` (in that order), (Σ N,) int64."""
        counts = self.tensors["n_atoms"].index_select(0, frames)
        starts = self.offsets.index_select(0, frames)
        base = torch.repeat_interleave(starts - torch.cumsum(counts, 0) + counts, counts)
        return base + torch.arange(int(counts.sum()))

    def subset(self, frames: Union[Sequence[int], torch.Tensor]) -> "StructureDataset":
        """A new dataset with the given frames (in that order)."""
        frames = torch.as_tensor(frames, dtype=torch.long).reshape(-1)
        if frames.numel() and (int(frames.min()) < 0 or int(frames.max()) >= len(self)):
            raise IndexError(f"frame indices must be in [0, {len(self)}), got {frames.min()}..{frames.max()}")
        atoms = self.atom_index(frames)
        tensors = {k: v.index_select(0, atoms if k in self.per_atom else frames) for k, v in self.tensors.items()}
        subset = StructureDataset(tensors, self.source)
        subset.per_atom = set(self.per_atom)
        return subset

    def batch(self, frames: Union[Sequence[int], torch.Tensor]) -> "StructureDataset":
        """:meth:`subset` plus ``atom_frame`` (Σ N,): the batch position of each atom's frame."""
        sub = self.subset(frames)
        counts = sub.tensors["n_atoms"]
        sub.tensors["atom_frame"] = torch.repeat_interleave(torch.arange(len(counts)), counts)
        sub.per_atom.add("atom_frame")
        return sub

    def to(self, device: Union[str, torch.device]) -> "StructureDataset":
        moved = StructureDataset({k: v.to(device) for k, v in self.tensors.items()}, self.source)
        moved.per_atom = set(self.per_atom)
        moved.offsets = self.offsets
        return moved

    def structures(self) -> Iterator[Dict[str, torch.Tensor]]:
        """One dict per frame: positions, numbers, cell (or None), charge, field, ..."""
        for k in range(len(self)):
            lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
            frame = {name: (v[lo:hi] if name in self.per_atom else v[k]) for name, v in self.tensors.items()}
            if not bool(frame["periodic"]):
                frame["cell"] = None
            yield frame


def _reference(atoms, key: str, per_atom: bool):
    """A reference quantity from the calculator results, ``info`` or ``arrays`` (None if absent)."""
    calc = atoms.calc
    results = getattr(calc, "results", None) or {}
    if key in results:
        return results[key]
    source = atoms.arrays if per_atom else atoms.info
    return source.get(key)


def _stress_matrix(value, frame: int) -> np.ndarray:
    stress = np.asarray(value, dtype=np.float64)
    if stress.shape == (6,):  # Voigt order xx yy zz yz xz xy (ASE)
        xx, yy, zz, yz, xz, xy = stress
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    if stress.shape in ((3, 3), (9,)):
        return stress.reshape(3, 3)
    raise ValueError(f"frame {frame}: stress has shape {stress.shape}; expected (6,) Voigt or (3, 3)")


def atoms_to_tensors(frames: Sequence, energy_key: str = "energy", forces_key: str = "forces",
                     stress_key: str = "stress", charge_key: str = "charge", field_key: str = "field",
                     frame_numbers: Optional[Sequence[int]] = None,
                     charge_constraint: Optional[ChargeConstraint] = None) -> Dict[str, torch.Tensor]:
    """Concatenated dataset tensors of a list of ASE ``Atoms`` (module docstring); the groups come
    from ``charge_constraint`` (default: one total charge)."""
    policy = charge_constraint if charge_constraint is not None else ChargeConstraint("total")
    positions, numbers, forces, groups = [], [], [], []
    per_frame: Dict[str, list] = {k: [] for k in PER_FRAME}
    for k, atoms in enumerate(frames):
        n = len(atoms)
        if n == 0:
            raise ValueError(f"frame {k} has no atoms")
        pbc = np.asarray(atoms.get_pbc())
        if pbc.any() and not pbc.all():
            raise ValueError(f"frame {k}: partially periodic cells (pbc={pbc.tolist()}) are not supported; "
                             "use a fully periodic cell with vacuum padding, or an open system")
        positions.append(np.asarray(atoms.get_positions(), dtype=np.float64))
        numbers.append(np.asarray(atoms.get_atomic_numbers(), dtype=np.int64))
        energy = _reference(atoms, energy_key, False)
        f = _reference(atoms, forces_key, True)
        stress = _reference(atoms, stress_key, False)
        if f is not None and np.shape(f) != (n, 3):
            raise ValueError(f"frame {k}: forces have shape {np.shape(f)}, expected ({n}, 3)")
        forces.append(np.zeros((n, 3)) if f is None else np.asarray(f, dtype=np.float64))
        field_value = np.zeros(3) if atoms.info.get(field_key) is None else np.asarray(
            atoms.info[field_key], dtype=np.float64).reshape(-1)
        if field_value.shape != (3,):
            raise ValueError(f"frame {k}: `{field_key}` must have 3 components (V/Å), got {field_value.tolist()}")
        per_frame["n_atoms"].append(n)
        per_frame["cell"].append(np.asarray(atoms.get_cell()[:], dtype=np.float64))
        per_frame["periodic"].append(bool(pbc.all()))
        per_frame["energy"].append(0.0 if energy is None else float(energy))
        per_frame["has_energy"].append(energy is not None)
        per_frame["has_forces"].append(f is not None)
        per_frame["stress"].append(np.zeros((3, 3)) if stress is None else _stress_matrix(stress, k))
        per_frame["has_stress"].append(stress is not None and bool(pbc.all()))
        charge = float(atoms.info.get(charge_key, 0.0) or 0.0)
        frame_groups = policy.groups(atoms)
        if frame_groups is None:
            frame_groups = np.zeros(n, dtype=np.int64)
        elif abs(charge) > 1e-9:
            raise ValueError(f"frame {k if frame_numbers is None else frame_numbers[k]} has total charge {charge:g} e, "
                             "but the charge constraint makes every molecule neutral (rule 'molecules'): leave "
                             "charged frames out, or train with charge_constraint rule 'total'")
        groups.append(frame_groups)
        per_frame["n_groups"].append(int(frame_groups.max()) + 1)
        per_frame["charge"].append(charge)
        per_frame["field"].append(field_value)
        per_frame["frame"].append(k if frame_numbers is None else frame_numbers[k])
    if not positions:
        raise ValueError("no frames to convert")
    tensors = {
        "positions": torch.tensor(np.concatenate(positions)),
        "numbers": torch.tensor(np.concatenate(numbers)),
        "forces": torch.tensor(np.concatenate(forces)),
        "groups": torch.tensor(np.concatenate(groups)).to(torch.long),
    }
    for key, values in per_frame.items():
        tensors[key] = torch.tensor(np.asarray(values))
    for key in ("n_atoms", "frame", "n_groups"):
        tensors[key] = tensors[key].to(torch.long)
    return tensors


def default_cache_dir(path: Union[str, Path]) -> Path:
    return Path(path).resolve().parent / ".pqeq_cache"


def _writable_dir(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
        return folder
    except OSError:
        fallback = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "openmm_pqeq"
        warnings.warn(f"cache folder {folder} is not writable; using {fallback}")
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def save_atomic(payload, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename (readers never see half a file)."""
    atomic_write(path, lambda handle: torch.save(payload, handle))


def cache_path(path: Union[str, Path], cache_dir: Union[str, Path, None] = None, index: str = ":",
               sha256: Optional[str] = None, **keys: str) -> Path:
    """Where the cached tensors of ``path`` read with these options live."""
    path = Path(path)
    sha256 = sha256 or file_sha256(path)
    options = json.dumps({"sha256": sha256, "index": index, "keys": keys, "version": CACHE_VERSION},
                         sort_keys=True)
    key = hashlib.sha256(options.encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(path)
    return folder / f"{path.name}-{key}.data.pt"


def load_dataset(path: Union[str, Path], index: str = ":", cache_dir: Union[str, Path, None] = None,
                 use_cache: bool = True, energy_key: str = "energy", forces_key: str = "forces",
                 stress_key: str = "stress", charge_key: str = "charge", field_key: str = "field",
                 format: Optional[str] = None,
                 charge_constraint: Optional[ChargeConstraint] = None) -> StructureDataset:
    """Read ``path`` (any ASE-readable file) into a :class:`StructureDataset`, through the cache.

    Parameters
    ----------
    path : str or Path
        Data file (extxyz, traj, ...).  Reference energy (eV), forces (eV/Å) and stress
        (eV/Å³) come from the calculator results ASE attaches, or from ``atoms.info`` /
        ``atoms.arrays`` under the given keys; total charge (e, default 0) and uniform field
        (3,) V/Å (default 0) from ``atoms.info[charge_key]`` and ``atoms.info[field_key]``.
    index : str
        Frames to read, ASE syntax (":" all, "::2" every other, "0:100").
    cache_dir : str or Path, optional
        Folder of the cached tensors (default ``.pqeq_cache`` next to the file).
    use_cache : bool
        False reads the file with ASE every time (nothing written).
    charge_constraint : ChargeConstraint, optional
        How each frame's charge groups are made (default: one total charge per frame).

    Returns
    -------
    StructureDataset
        ``source`` holds the path, its SHA-256, the index and the number of frames.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    keys = dict(energy_key=energy_key, forces_key=forces_key, stress_key=stress_key, charge_key=charge_key,
                field_key=field_key)
    policy = charge_constraint if charge_constraint is not None else ChargeConstraint("total")
    sha256 = file_sha256(path)
    source = {"path": str(path.resolve()), "sha256": sha256, "index": index,
              "charge_constraint": policy.to_dict()}
    cached = None
    if use_cache:
        folder = _writable_dir(Path(cache_dir) if cache_dir is not None else default_cache_dir(path))
        cached = cache_path(path, folder, index, sha256, **keys,
                            charge_constraint=json.dumps(policy.to_dict(), sort_keys=True))
        if cached.is_file():
            try:
                payload = torch.load(cached, map_location="cpu", weights_only=True)
                if payload.get("version") == CACHE_VERSION and payload.get("sha256") == sha256:
                    source.update(frames=len(payload["tensors"]["n_atoms"]), cache=str(cached))
                    return StructureDataset(payload["tensors"], source)
            except Exception as error:  # unreadable cache: convert again
                warnings.warn(f"ignoring unreadable cache {cached} ({type(error).__name__}: {error})")
    import ase.io

    frames = ase.io.read(str(path), index=index, format=format)
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise ValueError(f"{path} (index {index!r}) holds no frames")
    numbers = list(range(len(frames)))
    tensors = atoms_to_tensors(frames, frame_numbers=numbers, charge_constraint=policy, **keys)
    if not bool(tensors["has_energy"].any()) and not bool(tensors["has_forces"].any()):
        raise ValueError(f"{path} has neither energies (key {energy_key!r}) nor forces (key {forces_key!r}): "
                         "nothing to train on; check the key names")
    source["frames"] = len(frames)
    if cached is not None:
        save_atomic({"version": CACHE_VERSION, "sha256": sha256, "source": source, "tensors": tensors}, cached)
        source["cache"] = str(cached)
    return StructureDataset(tensors, source)


def split_indices(num_frames: int, validation_fraction: float = 0.1, test_fraction: float = 0.1,
                  seed: int = 1) -> Dict[str, torch.Tensor]:
    """Random train/validation/test frame indices, the same for the same arguments.

    Sizes are ``round(fraction * num_frames)`` (at least one frame for a non-zero fraction
    when there are enough frames); the rest is training.  Uses NumPy's PCG64 generator, whose
    stream is stable across versions.

    >>> s = split_indices(10, 0.2, 0.1, seed=3)
    >>> [len(s[k]) for k in ("train", "validation", "test")]
    [7, 2, 1]
    """
    if num_frames < 1:
        raise ValueError(f"cannot split {num_frames} frames")
    n_val = int(round(validation_fraction * num_frames))
    n_test = int(round(test_fraction * num_frames))
    if validation_fraction > 0 and n_val == 0 and num_frames >= 3:
        n_val = 1
    if test_fraction > 0 and n_test == 0 and num_frames >= 3:
        n_test = 1
    if n_val + n_test >= num_frames:
        raise ValueError(f"{num_frames} frames are too few for validation fraction {validation_fraction} "
                         f"and test fraction {test_fraction}: no training frames would be left")
    order = np.random.default_rng(seed).permutation(num_frames)
    return {
        "validation": torch.as_tensor(np.sort(order[:n_val]), dtype=torch.long),
        "test": torch.as_tensor(np.sort(order[n_val:n_val + n_test]), dtype=torch.long),
        "train": torch.as_tensor(np.sort(order[n_val + n_test:]), dtype=torch.long),
    }


def epoch_batches(num_frames: int, batch_size: int, seed: int, epoch: int, rank: int = 0,
                  world_size: int = 1, shuffle: bool = True) -> List[torch.Tensor]:
    """Frame indices of this rank's batches for one epoch.

    The order depends only on (``seed``, ``epoch``), so every rank agrees and a resumed run
    sees the same batches.  Each rank takes every ``world_size``-th frame of the shuffled
    order (padded by wrapping around, as ``DistributedSampler``) so all ranks make the same
    number of steps.
    """
    order = np.random.default_rng([seed, epoch]).permutation(num_frames) if shuffle else np.arange(num_frames)
    if world_size > 1:
        per_rank = -(-num_frames // world_size)
        order = np.resize(order, per_rank * world_size)[rank::world_size]
    order = torch.as_tensor(order, dtype=torch.long)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
