"""The water response set and the forces of the response labels (atomic polar tensors)."""

import ase
import numpy as np
import pytest

from openmm_pqeq.charge_constraint import molecules_by_distance
from openmm_pqeq.data_generation.water_response import nearest_molecules, water_response_structures

SMALL = {"monomer": {1: 3}, "gas": {2: 2, 3: 1}, "liquid": {2: 1, 4: 1}}


def _liquid_source():
    from openmm_pqeq.data_generation.sampling import water_cluster

    return [water_cluster(np.random.default_rng(k), 5) for k in range(3)]


def test_structure_set_is_reproducible_and_made_of_whole_molecules():
    frames = water_response_structures(_liquid_source(), SMALL, seed=4)
    again = water_response_structures(_liquid_source(), SMALL, seed=4)
    assert [a.info["name"] for a in frames] == [a.info["name"] for a in again]
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(frames, again))
    assert frames[0].info["name"] == "monomer:eq" and len(frames) == 1 + 3 + 2 + 1 + 1 + 1
    for atoms in frames:
        n = atoms.info["n_molecules"]
        assert len(atoms) == 3 * n and atoms.info["family"] == atoms.info["name"]
        assert molecules_by_distance(atoms).max() + 1 == n  # O, H, H per molecule, no two joined
        assert np.allclose(atoms.positions.mean(0), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="only 0 source clusters"):
        water_response_structures(_liquid_source(), {"liquid": {6: 1}})


def test_nearest_molecules():
    cluster = _liquid_source()[0]
    three = nearest_molecules(cluster, 3, centre=1)
    oxygens = cluster.positions[0::3]
    distance = np.linalg.norm(oxygens - oxygens[1], axis=1)
    expected = np.argsort(distance)[:3]
    assert np.allclose(three.positions[0::3], oxygens[expected])
    with pytest.raises(ValueError, match="whole water molecules"):
        nearest_molecules(ase.Atoms("HOH", positions=np.eye(3)), 1)


def test_field_forces_give_atomic_polar_tensors_that_satisfy_the_maxwell_relation():
    """∂F_ia/∂E_b (field forces of the response labels) equals ∂μ_b/∂r_ia (dipole derivatives,
    from displaced geometries): both are −∂²E/∂r_ia∂E_b.  Also Σ_i Z*_i = 0 for a neutral molecule."""
    pytest.importorskip("pyscf")
    from openmm_pqeq.data_generation.labelling import DFTSettings, label_atoms
    from openmm_pqeq.data_generation.response import label_response
    from openmm_pqeq.fit.pqeq_fit import atomic_polar_tensors

    import torch

    settings = DFTSettings(basis="sto-3g", conv_tol=1e-11, grid_response=True)
    atoms = ase.Atoms("OH2", positions=[[0.1, -0.2, 0.3], [0.1, 0.57, -0.26], [0.14, -0.95, -0.2]])
    atoms.info["name"] = "water"
    labelled = label_response(atoms, settings, field_step=0.02, esp=False, forces=True)
    field_forces = labelled.arrays["field_forces"].reshape(3, 6, 3)
    apt = atomic_polar_tensors(torch.tensor(field_forces), 0.02).numpy()
    np.testing.assert_allclose(apt.sum(0), 0.0, atol=1e-5)
    h = 2e-3
    for i, a in [(0, 2), (1, 1), (2, 0)]:
        dipoles = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[i, a] += sign * h
            dipoles.append(label_atoms(moved, settings, forces=False, threads=1).get_dipole_moment())
        derivative = (dipoles[0] - dipoles[1]) / (2 * h)  # ∂μ_b/∂r_ia, e
        np.testing.assert_allclose(apt[i, a], derivative, atol=2e-3)
    zero_field = label_atoms(atoms, settings, threads=1).get_forces()
    np.testing.assert_allclose(labelled.arrays["forces"], zero_field, atol=1e-6)
