"""Every entry point defaults to the charge-constraint rule the model was trained with:
create_system, add_pqeq_force, openmm-ml, the ASE calculator, the reporter, evaluate and md."""

import contextlib
import json
import subprocess
import sys
import warnings

import ase
import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from openmm_pqeq.charge_constraint import ChargeConstraint, set_policy
from openmm_pqeq.integrations.system import add_pqeq_force, create_system
from openmm_pqeq.io import save_model
from openmm_pqeq.model import build_model
from openmm_pqeq.units import EV_TO_KJ_PER_MOL
from water_systems import bonded_water_system, water_topology

CONFIG = {"elements": ["O", "H"], "pqeq": {"charge_tolerance": 1e-10, "shell_tolerance": 1e-9}}
KJ = unit.kilojoule_per_mole
FIELD = (0.0, 0.0, 2.0)  # V/nm


@contextlib.contextmanager
def no_charge_warning():
    """Fail on warnings about charge constraints (others, e.g. TorchScript deprecations, pass)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    messages = [str(w.message) for w in caught if "charge" in str(w.message)]
    assert not messages, messages


def _model(rule):
    model = build_model(CONFIG)
    if rule is not None:
        set_policy(model, ChargeConstraint(rule))
    return model


@pytest.fixture(scope="module")
def waters():
    return water_topology(2)


@pytest.fixture(scope="module")
def reference(waters):
    """Energies (kJ/mol) with explicit one-group-per-molecule and one-total-charge constraints."""
    top, pos = waters
    model = _model(None)
    return {rule: _energy(create_system(top, model, charge_groups=rule, field=FIELD), pos)
            for rule in ("molecules", "total")}


def _energy(system, positions):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(KJ)


def test_the_two_rules_differ(reference):
    # charge flows between molecules with one total charge: a lower energy in the field
    assert reference["total"] < reference["molecules"] - 1e-3


def test_create_system_defaults_to_the_model_rule(waters, reference):
    top, pos = waters
    with no_charge_warning():
        assert _energy(create_system(top, _model("molecules"), field=FIELD), pos) == pytest.approx(
            reference["molecules"], rel=1e-7)
        assert _energy(create_system(top, _model("total"), field=FIELD), pos) == pytest.approx(
            reference["total"], rel=1e-7)
    with pytest.warns(UserWarning, match="does not record the charge constraint"):
        legacy = _energy(create_system(top, _model(None), field=FIELD), pos)
    assert legacy == pytest.approx(reference["total"], rel=1e-7)  # older files: one total charge, as before


def test_total_charge_over_molecules_of_a_molecular_model_warns(waters, reference):
    top, pos = waters
    with pytest.warns(UserWarning, match="one total charge spans 8 molecules"):
        system = create_system(top, _model("molecules"), charge_groups="total", field=FIELD)
    assert _energy(system, pos) == pytest.approx(reference["total"], rel=1e-7)
    with pytest.warns(UserWarning, match="spans 2 molecules"):
        add_pqeq_force(bonded_water_system(top), top, _model("molecules"), atoms=range(6), charge_groups=None)
    with no_charge_warning():  # one molecule: nothing to warn about
        add_pqeq_force(bonded_water_system(top), top, _model("molecules"), atoms=range(3), charge_groups="total")


def test_openmm_ml_defaults_to_the_model_rule(waters, reference, tmp_path):
    from openmmml import MLPotential

    top, pos = waters
    path = save_model(_model("molecules"), tmp_path / "molecular.pt")
    system = MLPotential("pqeq", modelPath=str(path)).createSystem(top, field=FIELD)
    assert _energy(system, pos) == pytest.approx(reference["molecules"], rel=1e-7)


def test_ase_calculator_defaults_to_the_model_rule(waters, reference):
    from openmm_pqeq.integrations.ase_calculator import PQEqCalculator

    top, pos = waters
    atoms = ase.Atoms([a.element.symbol for a in top.atoms()], positions=pos * 10, cell=np.eye(3) * 6.2, pbc=True)
    for rule in ("molecules", "total"):
        atoms.calc = PQEqCalculator(_model(rule), field=np.array(FIELD) / 10)
        assert atoms.get_potential_energy() * EV_TO_KJ_PER_MOL == pytest.approx(reference[rule], rel=1e-7)
    atoms.calc = PQEqCalculator(_model("molecules"), field=np.array(FIELD) / 10)
    assert atoms.get_charges().reshape(-1, 3).sum(1) == pytest.approx(np.zeros(8), abs=1e-10)
    with pytest.warns(UserWarning, match="spans 8 molecules"):
        atoms.calc = PQEqCalculator(_model("molecules"), field=np.array(FIELD) / 10, groups="total")
        atoms.get_potential_energy()


def test_reporter_defaults_to_the_model_rule(waters, tmp_path):
    from openmm import app

    from openmm_pqeq.integrations.reporters import PQEqReporter, read_charges

    top, pos = waters
    model = _model("molecules")
    system = bonded_water_system(top)
    add_pqeq_force(system, top, model, field=FIELD)
    simulation = app.Simulation(top, system, openmm.VerletIntegrator(0.25 * unit.femtosecond),
                                openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(pos)
    reporter = PQEqReporter(tmp_path / "charges.txt", 1, model, top)
    simulation.reporters.append(reporter)
    simulation.step(1)
    reporter.close()
    charges = read_charges(tmp_path / "charges.txt")["charges_e"]
    assert np.abs(charges.reshape(8, 3).sum(1)).max() < 1e-6  # the file has 8 decimals


def test_cli_evaluate_uses_the_model_rule(tmp_path):
    model = _model("molecules")
    path = save_model(model, tmp_path / "molecular.pt")
    dimer = ase.Atoms("OH2OH2", positions=np.vstack([
        [[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]],
        [[0.0, 0.0, 2.9], [0.7572, -0.5865, 2.9], [-0.7572, -0.5865, 2.9]]]))
    dimer.write(tmp_path / "dimer.xyz")

    def charges(*options):
        out = subprocess.run([sys.executable, "-m", "openmm_pqeq.cli.main", "evaluate", str(tmp_path / "dimer.xyz"),
                              "--model", str(path), "--field", "0", "0", "0.3", "--json", *options],
                             capture_output=True, text=True, check=True)
        return np.array(json.loads(out.stdout)["charges_e"]), out.stderr

    molecular, _ = charges()
    assert np.abs(molecular.reshape(2, 3).sum(1)).max() < 1e-8
    total, stderr = charges("--charge-groups", "total")
    assert abs(total[:3].sum()) > 1e-4 and "spans 2 molecules" in stderr


def test_md_settings_default_to_the_model_rule():
    from openmm_pqeq.md import MDSettings

    assert MDSettings().charge_groups == "model"
    out = subprocess.run([sys.executable, "-m", "openmm_pqeq.cli.main", "md", "--help"], capture_output=True,
                         text=True, check=True)
    assert "--charge-groups" in out.stdout


def test_dataset_groups_and_long_range_terms_follow_the_policy(tmp_path):
    from openmm_pqeq.train.data import load_dataset
    from openmm_pqeq.train.longrange import attach_long_range

    rng = np.random.default_rng(3)
    frames = []
    for k in range(3):
        dimer = ase.Atoms("OH2OH2", positions=np.vstack([
            [[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]],
            [[0.0, 0.0, 2.9], [0.7572, -0.5865, 2.9], [-0.7572, -0.5865, 2.9]]]) + rng.normal(0, 0.03, (6, 3)))
        dimer.info["energy"] = -1.0
        dimer.info["field"] = np.array([0.0, 0.0, 0.2])
        frames.append(dimer)
    ase.io.write(tmp_path / "dimers.extxyz", frames)
    molecular = ChargeConstraint("molecules")
    total = load_dataset(tmp_path / "dimers.extxyz")
    by_molecule = load_dataset(tmp_path / "dimers.extxyz", charge_constraint=molecular)
    assert total.source["cache"] != by_molecule.source["cache"]
    assert by_molecule.groups.tolist() == [0, 0, 0, 1, 1, 1] * 3 and by_molecule.n_groups.tolist() == [2, 2, 2]
    assert total.groups.abs().sum() == 0 and total.n_groups.tolist() == [1, 1, 1]
    config = {"elements": ["O", "H"], "pqeq": CONFIG["pqeq"], "d3": None}
    attach_long_range(total, config)
    attach_long_range(by_molecule, config)
    pqeq = build_model(CONFIG).pqeq
    pos = torch.tensor(frames[0].positions)
    expected = pqeq(pos, torch.tensor([8, 1, 1, 8, 1, 1]), None, torch.tensor([0.0, 0.0, 0.2]), 0.0,
                    torch.tensor([0, 0, 0, 1, 1, 1]))["energy"]
    assert float(by_molecule.lr_energy[0]) == pytest.approx(float(expected), abs=1e-9)
    assert float(total.lr_energy[0]) < float(by_molecule.lr_energy[0]) - 1e-4
    charged = frames[0].copy()
    charged.info["charge"] = 1
    ase.io.write(tmp_path / "charged.extxyz", [charged])
    with pytest.raises(ValueError, match="makes every molecule neutral"):
        load_dataset(tmp_path / "charged.extxyz", charge_constraint=molecular)
