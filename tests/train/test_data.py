"""Datasets: conversion from ASE files, tensor cache, reproducible splits, batches."""

from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch

from openmm_pqeq.train.data import epoch_batches, load_dataset, split_indices


def test_dataset_matches_ase_file(periodic_data):
    dataset = load_dataset(periodic_data)
    frames = ase.io.read(str(periodic_data), ":")
    assert len(dataset) == len(frames) == 7
    assert dataset.elements == [1, 8]
    for k, (frame, atoms) in enumerate(zip(dataset.structures(), frames)):
        np.testing.assert_allclose(frame["positions"].numpy(), atoms.positions)
        np.testing.assert_allclose(frame["forces"].numpy(), atoms.get_forces())
        assert float(frame["energy"]) == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
        periodic = bool(atoms.pbc.all())
        assert bool(frame["periodic"]) == periodic == (frame["cell"] is not None)
        assert bool(frame["has_stress"]) == periodic
        if periodic:
            np.testing.assert_allclose(frame["stress"].numpy(), atoms.get_stress(voigt=False), atol=1e-12)
        assert float(frame["charge"]) == atoms.info["charge"]
        np.testing.assert_allclose(frame["field"].numpy(), atoms.info["field"])


def test_charge_and_field_defaults(tmp_path):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((2, 3)))
    ase.io.write(str(tmp_path / "h2.extxyz"), [atoms, atoms])
    dataset = load_dataset(tmp_path / "h2.extxyz")
    assert dataset.charge.tolist() == [0.0, 0.0]
    assert dataset.field.abs().sum() == 0
    assert not bool(dataset.has_stress.any())


def test_cache_is_written_once_and_invalidated_on_change(tmp_path, periodic_data):
    data = tmp_path / "data.extxyz"
    data.write_bytes(periodic_data.read_bytes())
    first = load_dataset(data)
    cache = first.source["cache"]
    assert cache.startswith(str(tmp_path / ".pqeq_cache"))
    written = Path(cache).stat().st_mtime_ns
    again = load_dataset(data)
    assert again.source["cache"] == cache
    assert Path(cache).stat().st_mtime_ns == written  # read, not rewritten
    assert len(list((tmp_path / ".pqeq_cache").iterdir())) == 1
    for key, value in first.tensors.items():
        assert torch.equal(value, again.tensors[key]), key
    # a changed file gets a new cache; other reading options too
    frames = ase.io.read(str(data), ":")[:3]
    ase.io.write(str(data), frames)
    changed = load_dataset(data)
    assert len(changed) == 3 and changed.source["cache"] != cache
    assert load_dataset(data, index="::2").source["cache"] not in (cache, changed.source["cache"])
    # explicit cache folder, and no cache at all
    elsewhere = load_dataset(data, cache_dir=tmp_path / "cache")
    assert elsewhere.source["cache"].startswith(str(tmp_path / "cache"))
    assert "cache" not in load_dataset(data, use_cache=False).source


def test_missing_references_are_reported(tmp_path):
    from ase import Atoms

    ase.io.write(str(tmp_path / "bare.extxyz"), [Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])])
    with pytest.raises(ValueError, match="neither energies"):
        load_dataset(tmp_path / "bare.extxyz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(tmp_path / "nothing.extxyz")


def test_split_is_reproducible_disjoint_and_complete():
    a = split_indices(50, 0.2, 0.1, seed=7)
    b = split_indices(50, 0.2, 0.1, seed=7)
    c = split_indices(50, 0.2, 0.1, seed=8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["validation"], c["validation"])
    assert [len(a[k]) for k in ("train", "validation", "test")] == [35, 10, 5]
    union = torch.cat([a["train"], a["validation"], a["test"]])
    assert sorted(union.tolist()) == list(range(50))
    # fixed values: the split must not change between versions (models record their seed)
    assert split_indices(10, 0.2, 0.1, seed=1)["validation"].tolist() == \
        np.sort(np.random.default_rng(1).permutation(10)[:2]).tolist()
    with pytest.raises(ValueError, match="too few"):
        split_indices(2, 0.5, 0.5, seed=1)


def test_subset_and_batch(periodic_data):
    dataset = load_dataset(periodic_data)
    batch = dataset.batch([5, 0, 2])
    assert batch.n_atoms.tolist() == [dataset.n_atoms[5], dataset.n_atoms[0], dataset.n_atoms[2]]
    lo, hi = int(dataset.offsets[5]), int(dataset.offsets[6])
    assert torch.equal(batch.positions[: hi - lo], dataset.positions[lo:hi])
    assert batch.atom_frame.tolist() == sum(([m] * int(n) for m, n in enumerate(batch.n_atoms)), [])


def test_epoch_batches_shard_between_ranks():
    single = torch.cat(epoch_batches(11, 4, seed=3, epoch=2))
    assert sorted(single.tolist()) == list(range(11))
    assert torch.equal(single, torch.cat(epoch_batches(11, 4, seed=3, epoch=2)))
    assert not torch.equal(single, torch.cat(epoch_batches(11, 4, seed=3, epoch=3)))
    ranks = [epoch_batches(11, 2, seed=3, epoch=2, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1])  # same number of steps on every rank
    covered = torch.cat([torch.cat(r) for r in ranks]).tolist()
    assert set(covered) == set(range(11)) and len(covered) == 12
