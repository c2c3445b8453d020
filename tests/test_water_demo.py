"""The shipped water-demo model: loads by name, gives sane water energies and runs MD."""

import numpy as np
import pytest
import torch

from openmm_pqeq.io import known_models, load_model, resolve_model_path
from openmm_pqeq.model import energy_forces_stress

MONOMER = np.array([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]])


#: The S22 water dimer (MP2 geometry, O-O 2.91 Å); its PBE binding energy is about -0.21 eV.
DIMER = np.array([[-1.551, -0.1145, 0.0], [-1.9343, 0.7625, 0.0], [-0.5997, 0.0407, 0.0],
                  [1.3506, 0.1115, 0.0], [1.6804, -0.3737, -0.7586], [1.6804, -0.3737, 0.7586]])


def test_shipped_entry():
    entry = known_models()["water-demo"]
    assert entry["file"] == "water-demo.pt" and entry["description"]
    assert {"data", "config", "epochs", "test_errors"} <= set(entry["provenance"])
    path = resolve_model_path("water-demo")
    assert path.is_file() and path.stat().st_size < 5e6


def test_water_demo_records_its_rule_and_range_and_v1_stays_loadable():
    from openmm_pqeq.charge_constraint import policy_of

    model = load_model("water-demo")
    assert policy_of(model).rule == "molecules"
    assert model.pqeq.params == "pqeq-water"
    entry = known_models()["water-demo"]["provenance"]
    assert entry["charge_constraint"]["rule"] == "molecules"
    assert entry["training_range"]["elements"] == ["H", "O"] and entry["training_range"]["total_charges"] == [0.0, 0.0]
    old = load_model("water-demo-v1")
    assert old.pqeq.params == "reaxnet" and policy_of(old) is None  # older file: one total charge


def test_water_demo_monomer_dipole_matches_pbe():
    """Gas-phase monomer at the reference geometry of examples/data/water_response_pbe.extxyz:
    the PBE/def2-SVPD dipole there is 1.840 D (water-demo-v1: 1.00 D)."""
    from pathlib import Path

    from openmm_pqeq.data_generation.response import read_response
    from openmm_pqeq.units import E_ANGSTROM_TO_DEBYE

    path = Path(__file__).resolve().parents[1] / "examples" / "data" / "water_response_pbe.extxyz"
    monomer = next(a for a in read_response(str(path)) if a.info["name"] == "monomer:eq")
    reference = float(np.linalg.norm(monomer.info["dipole"]))
    model = load_model("water-demo")
    out = model(torch.tensor(monomer.positions), torch.tensor(monomer.numbers), None,
                torch.zeros(3, dtype=torch.float64), 0.0, torch.zeros(3, dtype=torch.long))
    assert float(out["dipole"].norm()) * E_ANGSTROM_TO_DEBYE == pytest.approx(reference * E_ANGSTROM_TO_DEBYE, rel=0.05)


def test_water_demo_dimer():
    model = load_model("water-demo")
    numbers = torch.tensor([8, 1, 1, 8, 1, 1])
    zero = torch.zeros(3, dtype=torch.float64)
    dimer = energy_forces_stress(model, torch.tensor(DIMER), numbers, None, zero)
    monomer = energy_forces_stress(model, torch.tensor(MONOMER), numbers[:3], None, zero)
    assert torch.isfinite(dimer["energy"]) and torch.isfinite(dimer["forces"]).all()
    binding = float(dimer["energy"] - 2 * monomer["energy"])
    assert -0.6 < binding < -0.05  # eV; PBE gives about -0.2 eV for the water dimer
    assert float(dimer["forces"].abs().max()) < 5.0
    assert abs(float(dimer["charges"].sum())) < 1e-8


def test_water_demo_md(tmp_path):
    from openmm_pqeq.integrations.reporters import read_charges
    from openmm_pqeq.md import MDSettings, run_water_field_md

    settings = MDSettings(n_molecules=8, field_V_per_A=(0.0, 0.0, 0.25), equilibration_steps=2,
                          steps_without_field=4, steps_with_field=4, report_interval=2, platform="Reference")
    summary = run_water_field_md("water-demo", tmp_path, settings, progress=False)
    frames = read_charges(tmp_path / "charges.txt")
    assert len(frames["step"]) == 4 and np.isfinite(frames["charges_e"]).all()
    assert np.abs(frames["charges_e"].reshape(4, -1, 3).sum(-1)).max() < 1e-6
    assert summary["atoms"] == frames["charges_e"].shape[1] and np.isfinite(summary["seconds_per_step"])


def test_openmm_ml_name():
    from openmm import app
    from openmmml import MLPotential

    topology = app.Topology()
    chain = topology.addChain()
    residue = topology.addResidue("HOH", chain)
    for name, element in (("O", app.element.oxygen), ("H1", app.element.hydrogen), ("H2", app.element.hydrogen)):
        topology.addAtom(name, element, residue)
    system = MLPotential("pqeq-water-demo").createSystem(topology, chargeGroups="molecules")
    assert system.getNumParticles() == 3 and system.getNumForces() >= 1


def test_water_demo_proton_transfer_scan_follows_pbe():
    """A proton moved along the O–O axis of the S22 water dimer (rigid scan, O–H 0.97–1.60 Å,
    examples/data/water_pt_scan_pbe.extxyz, PBE/def2-SVPD, never trained on): the energy rises
    by 2.29 eV with no ion-pair minimum; the model, run with the molecules of an OpenMM Topology
    (the ``molecule`` column), must follow it."""
    from pathlib import Path

    import ase.io

    from openmm_pqeq.integrations.ase_calculator import PQEqCalculator

    frames = ase.io.read(Path(__file__).resolve().parents[1] / "examples" / "data" / "water_pt_scan_pbe.extxyz", ":")
    reference = np.array([a.get_potential_energy() for a in frames])
    calculator = PQEqCalculator("water-demo")
    energies = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.arrays["molecule"] = np.array([0, 0, 0, 1, 1, 1])
        atoms.calc = calculator
        energies.append(atoms.get_potential_energy())
    model = np.array(energies) - energies[0]
    assert np.all(np.diff(model) > 0)
    assert np.abs(model - (reference - reference[0])).max() < 0.3  # eV, of a 2.29 eV rise
