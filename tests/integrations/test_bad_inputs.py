"""What used to be silently wrong through the OpenMM and ASE entry points is an error now (or
gives the right answer): a second PQEq force, an element the model lacks, a total charge
with per-molecule groups, the python backend's dipole, the ASE stress in a field, and the
water box helper's reproducibility."""

import subprocess
import sys
from pathlib import Path

import ase
import numpy as np
import openmm
import pytest
import torch
from ase.calculators.fd import calculate_numerical_stress
from openmm import app, unit

from openmm_pqeq.integrations.ase_calculator import PQEqCalculator
from openmm_pqeq.integrations.openmm_force import dipole_from_context, dipole_from_state
from openmm_pqeq.integrations.system import add_pqeq_force, create_system
from openmm_pqeq.model import build_model
from water_systems import water_topology

BACKENDS = ["torchforce", "python"]


@pytest.fixture(scope="module")
def model():
    return build_model({"elements": ["O", "H"], "pqeq": {}})


@pytest.fixture(scope="module")
def waters():
    return water_topology(2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_pqeq_force_is_an_error(model, waters, backend):
    top, _ = waters
    system = create_system(top, model, charge_groups="molecules", backend=backend)
    with pytest.raises(ValueError, match=r"already has a PQEq force \(force 0\); a second one would count"):
        add_pqeq_force(system, top, model, charge_groups="molecules", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_element_the_model_lacks_is_an_error_at_build_time(model, waters, backend):
    top, _ = waters
    sodium = app.Topology()
    sodium.setPeriodicBoxVectors(top.getPeriodicBoxVectors())
    residue = sodium.addResidue("NA", sodium.addChain())
    sodium.addAtom("Na", app.element.sodium, residue)
    with pytest.raises(ValueError, match=r"atom 0 is Na \(Z=11\), which the model does not support \(its elements: H, O\)"):
        create_system(sodium, model, backend=backend)


def test_a_total_charge_with_per_molecule_groups_is_an_error(model, waters):
    top, pos = waters
    with pytest.raises(ValueError, match="charge=1 does not apply with charge_groups='molecules'"):
        create_system(top, model, charge=1, charge_groups="molecules")
    atoms = ase.Atoms([a.element.symbol for a in top.atoms()], positions=pos * 10, cell=np.eye(3) * 6.2, pbc=True)
    with pytest.raises(ValueError, match="charge=1 does not apply with per-group charge constraints"):
        PQEqCalculator(model, charge=1, groups="molecules")
    from openmm_pqeq.single_point import evaluate

    with pytest.raises(ValueError, match="total charge of 1.0 e does not apply with one neutral group per molecule"):
        evaluate(atoms, charge=1.0, charge_groups="molecules")


def test_the_python_backend_dipole_comes_from_the_context_not_the_state(model, waters):
    top, pos = waters
    dipoles = {}
    for backend in BACKENDS:
        system = create_system(top, model, charge_groups="molecules", field=(0.0, 0.0, 5.0), backend=backend)
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(pos)
        state = context.getState(getEnergy=True, getParameterDerivatives=True)
        if backend == "python":
            with pytest.raises(ValueError, match="openmm.PythonForce .* cannot compute parameter derivatives"):
                dipole_from_state(state)
        dipoles[backend] = dipole_from_context(context)
    out = model(torch.tensor(pos * 10), torch.tensor([8, 1, 1] * 8), torch.eye(3, dtype=torch.float64) * 6.2,
                torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64), 0.0, torch.arange(24) // 3, torch.zeros(8))
    assert np.abs(dipoles["python"]).max() > 0.1
    assert dipoles["python"] == pytest.approx(out["dipole"].numpy(), abs=1e-8)
    assert dipoles["torchforce"] == pytest.approx(out["dipole"].numpy(), abs=1e-6)


def test_ase_stress_in_a_field_is_symmetric_with_the_torque_part_apart(model, waters):
    """The antisymmetric part is the field's torque on the polarized cell, (E⊗μ − μ⊗E)/(2V):
    only the field term −μ·E breaks rotational symmetry, and under a strain ε the dipole goes
    to μ(1 + ε)."""
    top, pos = waters
    field = np.array([0.3, 0.0, 0.4])  # V/Å
    atoms = ase.Atoms([a.element.symbol for a in top.atoms()], positions=pos * 10, cell=np.eye(3) * 6.2, pbc=True)
    atoms.calc = PQEqCalculator(model, field=field, groups=list(np.arange(24) // 3))
    voigt = atoms.get_stress()
    antisymmetric = atoms.calc.results["stress_antisymmetric"]
    mu = atoms.calc.results["dipole"]
    torque = (np.outer(field, mu) - np.outer(mu, field)) / (2 * atoms.get_volume())
    assert np.abs(torque).max() > 1e-4
    assert antisymmetric == pytest.approx(torque, abs=1e-9)
    numerical = calculate_numerical_stress(atoms, eps=1e-5)  # symmetric strains
    assert voigt == pytest.approx(numerical, abs=1e-6)
    assert np.abs(voigt[3:] - numerical[3:]).max() < 1e-6
    plain = atoms.copy()
    plain.calc = PQEqCalculator(model, groups=list(np.arange(24) // 3))
    plain.get_stress()
    assert np.abs(plain.calc.results["stress_antisymmetric"]).max() < 1e-8  # solver tolerance


WATER_BOX = """
import sys, numpy as np
from openmm import unit
from openmm_pqeq.md import water_box
np.save(sys.argv[1], np.asarray(water_box(64)[1].value_in_unit(unit.angstrom)))
"""


def test_water_box_is_the_same_in_every_process(tmp_path):
    """It used to differ by about 0.01 Å between processes (multithreaded relaxation)."""
    from openmm_pqeq.md import water_box

    repository = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", WATER_BOX, str(tmp_path / "box.npy")], check=True, cwd=repository,
                   env={"PYTHONPATH": str(repository), "PATH": "/usr/bin:/bin"}, timeout=600)
    here = np.asarray(water_box(64)[1].value_in_unit(unit.angstrom))
    there = np.load(tmp_path / "box.npy")
    assert here.shape == (177, 3)
    assert np.array_equal(here, there)
