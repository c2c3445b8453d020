"""The charge-constraint policy: molecules by distance, metadata round trip, resolution rules."""

import warnings

import ase
import numpy as np
import pytest

from openmm_pqeq.charge_constraint import (ChargeConstraint, connected_components, molecules_by_distance, molecules_of,
                                           policy_of, resolve_charge_groups, set_policy)
from openmm_pqeq.io import load_model, save_model
from openmm_pqeq.model import build_model

WATER = np.array([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]])


def _two_waters(shift):
    return ase.Atoms("OH2OH2", positions=np.vstack([WATER, WATER + shift]))


def test_molecules_by_distance_open_and_periodic():
    # a hydrogen bond (O...H 1.9 Å) does not join two molecules; a stretched O-H of 1.2 Å stays bonded
    dimer = _two_waters([0.0, 2.5, 0.0])
    assert molecules_by_distance(dimer).tolist() == [0, 0, 0, 1, 1, 1]
    stretched = _two_waters([0.0, 4.0, 0.0])
    stretched.positions[1] = stretched.positions[0] + 1.2 * np.array([1.0, 0.0, 0.0])
    assert molecules_by_distance(stretched).tolist() == [0, 0, 0, 1, 1, 1]
    # a molecule split by the periodic boundary is one molecule (minimum image)
    box = ase.Atoms("OH2", positions=WATER + [0.3, 0.2, 0.2], cell=np.eye(3) * 6.0, pbc=True)
    box.positions[1, 0] -= 6.0
    assert molecules_by_distance(box).tolist() == [0, 0, 0]
    open_copy = box.copy()
    open_copy.pbc = False
    assert molecules_by_distance(open_copy).tolist() == [0, 1, 0]  # without the cell, H1 is far away


def _proton_on_the_way(oh_A):
    """Water dimer (O–O 2.8 Å along x) whose bridging H sits ``oh_A`` from its own O, towards the other O."""
    atoms = ase.Atoms("OH2OH2", positions=np.vstack([WATER, WATER + [2.8, 0.0, 0.0]]))
    atoms.positions[1] = [oh_A, 0.0, 0.0]
    return atoms


def test_molecule_array_wins_over_the_distance_rule():
    atoms = _proton_on_the_way(1.4)  # 1.4 Å from both O: the distance rule makes the H its own molecule
    assert molecules_by_distance(atoms).tolist() == [0, 1, 0, 2, 2, 2]
    atoms.arrays["molecule"] = np.array([7, 7, 7, 3, 3, 3])
    assert molecules_of(atoms).tolist() == [0, 0, 0, 1, 1, 1]  # renumbered in order of first atom
    assert ChargeConstraint("molecules").groups(atoms).tolist() == [0, 0, 0, 1, 1, 1]
    del atoms.arrays["molecule"]
    assert molecules_of(atoms).tolist() == [0, 1, 0, 2, 2, 2]
    atoms.arrays["molecule"] = np.full(6, 0.5)
    with pytest.raises(ValueError, match="integer label per atom"):
        molecules_of(atoms)


def test_molecule_column_survives_extxyz_and_reaches_the_training_tensors(tmp_path):
    import ase.io

    from openmm_pqeq.train.data import atoms_to_tensors

    atoms = _proton_on_the_way(1.4)
    atoms.arrays["molecule"] = np.array([0, 0, 0, 1, 1, 1])
    atoms.info["energy"] = 0.0
    ase.io.write(tmp_path / "f.extxyz", atoms, format="extxyz")
    read = ase.io.read(tmp_path / "f.extxyz")
    tensors = atoms_to_tensors([read], charge_constraint=ChargeConstraint("molecules"))
    assert tensors["groups"].tolist() == [0, 0, 0, 1, 1, 1]


def test_pqeq_energy_along_a_proton_transfer_follows_its_force_with_the_molecule_array():
    """Along a proton-transfer path the PQEq energy must be the integral of its force (a smooth
    surface, as in OpenMM, whose Topology keeps its molecules): with the molecule array it is;
    with the distance rule the groups change at O–H 1.26 Å and the energy jumps."""
    from openmm_pqeq.integrations.ase_calculator import PQEqCalculator

    model = build_model({"elements": ["O", "H"], "pqeq": {"mode": "physical", "params": "pqeq-water"}})
    set_policy(model, ChargeConstraint("molecules"))
    path = np.linspace(1.15, 1.40, 26)  # Å; the distance rule's O–H bond ends at 1.26 Å

    def energy_and_force(kind, oh):
        atoms = _proton_on_the_way(oh)
        if kind == "array":
            atoms.arrays["molecule"] = np.array([0, 0, 0, 1, 1, 1])
        atoms.calc = PQEqCalculator(model)
        return atoms.get_potential_energy(), atoms.get_forces()[1, 0]

    for kind, smooth in (("array", True), ("distance", False)):
        energies, forces = np.array([energy_and_force(kind, oh) for oh in path]).T
        work = -0.5 * (forces[1:] + forces[:-1]) * np.diff(path)  # trapezoid ∫ −F dx, eV
        worst = np.max(np.abs(np.diff(energies) - work))
        assert (worst < 2e-3) == smooth, (kind, worst)


def test_connected_components_numbering():
    assert connected_components(6, [4, 1], [5, 2]).tolist() == [0, 1, 1, 2, 3, 3]


def test_policy_dict_round_trip_and_errors():
    policy = ChargeConstraint.from_dict({"rule": "molecules", "bond_factor": 1.25})
    assert ChargeConstraint.from_dict(policy.to_dict()) == policy
    assert ChargeConstraint.from_dict({"rule": "total"}).to_dict() == {"rule": "total"}
    with pytest.raises(ValueError, match="needs a 'rule'"):
        ChargeConstraint.from_dict({})
    with pytest.raises(ValueError, match="unknown charge_constraint key"):
        ChargeConstraint.from_dict({"rule": "molecules", "cutoff": 1.2})
    with pytest.raises(ValueError, match="rule is 'atoms'"):
        ChargeConstraint.from_dict({"rule": "atoms"})


def test_model_file_records_the_policy(tmp_path):
    model = build_model({"elements": ["O", "H"], "pqeq": {}})
    assert policy_of(model) is None
    set_policy(model, ChargeConstraint("molecules", bond_factor=1.2))
    reloaded = load_model(save_model(model, tmp_path / "m.pt"))
    assert policy_of(reloaded) == ChargeConstraint("molecules", bond_factor=1.2)
    legacy = load_model(save_model(build_model({"elements": ["O", "H"], "pqeq": {}}), tmp_path / "old.pt"))
    assert policy_of(legacy) is None


def test_resolve_charge_groups():
    molecular = build_model({"elements": ["O", "H"], "pqeq": {}})
    set_policy(molecular, ChargeConstraint("molecules"))
    total = build_model({"elements": ["O", "H"], "pqeq": {}})
    set_policy(total, ChargeConstraint("total"))
    legacy = build_model({"elements": ["O", "H"], "pqeq": {}})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert resolve_charge_groups("model", molecular, None, "test") == "molecules"
        assert resolve_charge_groups("model", total, "molecules", "test") is None
        assert resolve_charge_groups("total", molecular, None, "test") is None
        assert resolve_charge_groups(None, molecular, None, "test") is None
        assert resolve_charge_groups("residues", molecular, None, "test") == "residues"
    with pytest.warns(UserWarning, match="does not record the charge constraint"):
        assert resolve_charge_groups("model", legacy, "molecules", "test") == "molecules"
    with pytest.raises(ValueError, match="options are 'model'"):
        resolve_charge_groups("molecule", molecular, None, "test")
