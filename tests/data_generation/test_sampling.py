"""Water-cluster sampler: distance rules, reproducibility, composition (no PySCF needed)."""

import numpy as np
import pytest

from openmm_pqeq.data_generation.sampling import (DEFAULT_MIN_DISTANCES, min_intermolecular_distances,
                                                  parse_size_weights, sample_water_clusters)


def _molecule_sizes(atoms):
    # every molecule starts with its O; H atoms follow their O
    starts = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "O"] + [len(atoms)]
    return [b - a for a, b in zip(starts[:-1], starts[1:])]


def test_minimum_distances_respected():
    frames = sample_water_clusters(40, max_molecules=6, seed=3, ion_fraction=0.3)
    for atoms in frames:
        sizes = _molecule_sizes(atoms)
        assert len(sizes) == atoms.info["n_molecules"]
        found = min_intermolecular_distances(atoms, sizes)
        for key, minimum in DEFAULT_MIN_DISTANCES.items():
            assert found[key] >= minimum - 1e-9, (key, found[key])
        # intramolecular O–H bonds stay bonds
        pos, symbols = atoms.get_positions(), atoms.get_chemical_symbols()
        start = 0
        for size in sizes:
            d = np.linalg.norm(pos[start + 1:start + size] - pos[start], axis=1)
            assert np.all((d > 0.8) & (d < 1.15)), d
            start += size


def test_reproducible_with_seed():
    a = sample_water_clusters(10, max_molecules=4, seed=11, field_fraction=0.5)
    b = sample_water_clusters(10, max_molecules=4, seed=11, field_fraction=0.5)
    c = sample_water_clusters(10, max_molecules=4, seed=12, field_fraction=0.5)
    for x, y in zip(a, b):
        assert x.get_chemical_symbols() == y.get_chemical_symbols()
        np.testing.assert_array_equal(x.get_positions(), y.get_positions())
        np.testing.assert_array_equal(x.info["field"], y.info["field"])
    assert any(len(x) != len(z) or not np.allclose(x.get_positions(), z.get_positions()) for x, z in zip(a, c))


def test_composition_fields_and_ions():
    frames = sample_water_clusters(60, max_molecules=3, seed=5, size_weights={1: 1, 2: 1, 3: 1},
                                   field_fraction=1.0, max_field=0.3, field_max_molecules=1,
                                   ion_fraction=1.0)
    sizes = [a.info["n_molecules"] for a in frames]
    assert [sizes.count(n) for n in (1, 2, 3)] == [20, 20, 20]
    for atoms in frames:
        field = np.asarray(atoms.info["field"])
        if atoms.info["n_molecules"] == 1:
            assert 0.0 <= np.linalg.norm(field) <= 0.3 + 1e-9
            assert atoms.info["charge"] == 0            # field frames carry no ion
        else:
            assert np.all(field == 0.0)
            assert atoms.info["charge"] in (-1, 1)
            n_h = atoms.get_chemical_symbols().count("H")
            assert n_h == 2 * atoms.info["n_molecules"] + atoms.info["charge"]


def test_argument_errors():
    with pytest.raises(ValueError, match="field_fraction must be in"):
        sample_water_clusters(2, field_fraction=1.5)
    with pytest.raises(ValueError, match="min_molecules <= max_molecules"):
        sample_water_clusters(2, max_molecules=2, min_molecules=3)
    with pytest.raises(ValueError, match="outside"):
        sample_water_clusters(2, max_molecules=2, size_weights={5: 1.0})
    with pytest.raises(ValueError, match="size weights must look like"):
        parse_size_weights("1=0.3")
    assert parse_size_weights("1:0.5, 3:2") == {1: 0.5, 3: 2.0}
