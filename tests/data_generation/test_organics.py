"""The larger organic molecules of the response set: structure, bookkeeping, test split."""

import collections

import numpy as np
import pytest

pytest.importorskip("rdkit")

from openmm_pqeq.data_generation.organics import ORGANIC_MOLECULES, molecule_from_smiles, organic_molecules


def test_molecules_are_sane_and_sorted_by_size():
    molecules = organic_molecules(series=("alkane", "nitrile"), max_heavy=8)
    heavy = [int((m.get_atomic_numbers() > 1).sum()) for m in molecules]
    assert heavy == sorted(heavy) and max(heavy) <= 8
    for atoms in molecules:
        assert atoms.info["kind"] == "organic" and atoms.info["family"] == atoms.info["name"]
        assert atoms.info["split"] in ("train", "test") and atoms.info["charge"] == 0
        distances = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=2)
        np.fill_diagonal(distances, np.inf)
        assert 0.9 < distances.min() < 1.2  # C-H / N-H bonds, no overlaps
        assert np.allclose(atoms.positions.mean(0), 0.0, atol=1e-9)
    dodecane = molecule_from_smiles("CCCCCCCCCCCC")
    assert len(dodecane) == 38 and np.ptp(dodecane.positions, axis=0).max() > 9.0  # a chain, not a ball


def test_test_split_covers_every_series_and_size():
    by_series = collections.defaultdict(set)
    test_sizes = set()
    for series, _, smiles, split in ORGANIC_MOLECULES:
        by_series[series].add(split)
        if split == "test":
            from rdkit import Chem

            test_sizes.add(Chem.MolFromSmiles(smiles).GetNumAtoms())
    assert all("test" in splits for splits in by_series.values())
    assert by_series["nitrile"] == {"test"} and by_series["sulfur"] == {"test"}
    assert set(range(3, 13)) <= test_sizes
    with pytest.raises(ValueError, match="SMILES"):
        molecule_from_smiles("C1CC")
