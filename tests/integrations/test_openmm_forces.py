"""OpenMM forces over one model: TorchForce vs PythonForce vs ASE, field parameters and
dipole, XML round trip in a new process, ML/MM subsets, openmm-ml, reporter, model files."""

import json
import subprocess
import sys

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from openmm_pqeq.integrations.openmm_force import dipole_from_state
from openmm_pqeq.integrations.system import add_pqeq_force, create_system
from openmm_pqeq.io import load_model, save_model
from openmm_pqeq.model import build_model, energy_forces_stress
from openmm_pqeq.units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM, V_PER_NM_TO_V_PER_A
from water_systems import bonded_water_system, water_topology

CONFIG = {"elements": ["O", "H"], "pqeq": {"charge_tolerance": 1e-10, "shell_tolerance": 1e-9}, "d3": {}}
KJ = unit.kilojoule_per_mole


@pytest.fixture(scope="module")
def model():
    return build_model(CONFIG)


@pytest.fixture(scope="module")
def waters():
    return water_topology(2)


def _state(system, positions, derivatives=False):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    return context, context.getState(getEnergy=True, getForces=True, getParameterDerivatives=derivatives)


def test_backends_and_ase_agree(model, waters):
    from openmm_pqeq.integrations.ase_calculator import PQEqCalculator
    import ase

    top, pos = waters
    field = (0.0, 1.0, 2.0)  # V/nm
    results = {}
    for backend in ("torchforce", "python"):
        system = create_system(top, model, charge_groups="molecules", field=field, backend=backend)
        _, state = _state(system, pos)
        results[backend] = (state.getPotentialEnergy().value_in_unit(KJ),
                            state.getForces(asNumpy=True).value_in_unit(KJ / unit.nanometer))
    atoms = ase.Atoms([a.element.symbol for a in top.atoms()], positions=pos * NM_TO_ANGSTROM, cell=np.eye(3) * 6.2, pbc=True)
    groups = [a.residue.index for a in top.atoms()]
    atoms.calc = PQEqCalculator(model, field=np.array(field) * V_PER_NM_TO_V_PER_A, groups=groups)
    e_ase = atoms.get_potential_energy() * EV_TO_KJ_PER_MOL
    f_ase = atoms.get_forces() * EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM
    e_tf, f_tf = results["torchforce"]
    e_py, f_py = results["python"]
    assert e_py == pytest.approx(e_tf, rel=1e-6)
    assert e_ase == pytest.approx(e_tf, rel=1e-6)
    scale = np.abs(f_tf).max()
    assert np.abs(f_py - f_tf).max() < 1e-6 * scale
    assert np.abs(f_ase - f_tf).max() < 1e-6 * scale
    assert atoms.get_charges().reshape(-1, 3).sum(1) == pytest.approx(np.zeros(8), abs=1e-10)


def test_field_parameters_and_dipole(model, waters):
    top, pos = waters
    system = create_system(top, model, charge_groups="molecules")
    context, state = _state(system, pos, derivatives=True)
    dipole0 = dipole_from_state(state)
    e0 = state.getPotentialEnergy().value_in_unit(KJ)
    context.setParameter("pqeq_field_z", 5.0)  # V/nm
    state = context.getState(getEnergy=True, getParameterDerivatives=True)
    dipole = dipole_from_state(state)
    assert dipole[2] > dipole0[2]  # the system polarizes along the field
    # the dipole from dE/dfield equals the model's own dipole output
    out = model(torch.tensor(pos * NM_TO_ANGSTROM), torch.tensor([8, 1, 1] * 8), torch.eye(3, dtype=torch.float64) * 6.2,
                torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64), 0.0, torch.arange(24) // 3, torch.zeros(8))
    assert dipole == pytest.approx(out["dipole"].numpy(), abs=1e-6)
    # and the energy changes by -∫ μ·dE (second order: E(F) < E(0) - μ0·F)
    e1 = state.getPotentialEnergy().value_in_unit(KJ)
    assert e1 < e0 - dipole0[2] * 0.5 * EV_TO_KJ_PER_MOL + 1e-9


def test_field_energy_does_not_jump_when_an_atom_is_wrapped(model, waters):
    top, pos = waters
    system = create_system(top, model, charge_groups="molecules", field=(1.0, 2.0, 3.0))
    context, state = _state(system, pos)
    moved = pos.copy()
    moved[4] += np.array([0.62, 0.0, -0.62])  # one H by box vectors: its molecule is split
    context.setPositions(moved)
    e_moved = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(KJ)
    assert e_moved == pytest.approx(state.getPotentialEnergy().value_in_unit(KJ), abs=1e-7)


TRIVIAL_TORCHFORCE_XML = """
import torch, openmm, openmmtorch
class Square(torch.nn.Module):
    def forward(self, positions):
        return (positions ** 2).sum()
system = openmm.System()
system.addParticle(1.0)
system.addForce(openmmtorch.TorchForce(torch.jit.script(Square())))
openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
"""


def _torchforce_xml_works(tmp_path) -> bool:
    script = tmp_path / "square.py"  # TorchScript needs the source in a file
    script.write_text(TRIVIAL_TORCHFORCE_XML)
    return subprocess.run([sys.executable, str(script)], capture_output=True).returncode == 0


@pytest.mark.parametrize("backend", ["torchforce", "python"])
def test_xml_round_trip_in_a_new_process(model, waters, backend, tmp_path):
    if backend == "torchforce" and not _torchforce_xml_works(tmp_path):
        pytest.skip("upstream: acellera-openmmtorch-cpu 1.10 crashes deserializing any TorchForce from XML "
                    "(even E = |r|^2); use backend='python' for XML round trips")
    top, pos = waters
    system = create_system(top, model, charge_groups="molecules", field=(0, 0, 1.0), backend=backend)
    _, state = _state(system, pos)
    (tmp_path / "system.xml").write_text(openmm.XmlSerializer.serialize(system))
    np.save(tmp_path / "pos.npy", pos)
    script = f"""
import numpy as np, openmm, openmm_pqeq.integrations.openmm_force
system = openmm.XmlSerializer.deserialize(open({str(tmp_path / 'system.xml')!r}).read())
ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName('Reference'))
ctx.setPositions(np.load({str(tmp_path / 'pos.npy')!r}))
print(ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert float(out.stdout.split()[-1]) == pytest.approx(state.getPotentialEnergy().value_in_unit(KJ), rel=1e-9)


def test_subset_of_atoms_ml_mm(model, waters):
    top, pos = waters
    system = bonded_water_system(top)
    force = add_pqeq_force(system, top, model, atoms=range(6), charge_groups="molecules", force_group=1)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(pos)
    forces = context.getState(getForces=True, groups={1}).getForces(asNumpy=True).value_in_unit(KJ / unit.nanometer)
    assert np.abs(forces[6:]).max() == 0.0 and np.abs(forces[:6]).max() > 0.0
    assert force.getName() == "PQEq"


def test_openmm_ml_entry_point(model, waters, tmp_path):
    from openmmml import MLPotential

    path = save_model(model, tmp_path / "model.pt", description="test model")
    top, pos = waters
    potential = MLPotential("pqeq", modelPath=str(path))
    assert potential._impl.getMLLongRange() is True
    system = potential.createSystem(top, chargeGroups="molecules", field=(0, 0, 1.0))
    _, state = _state(system, pos)
    reference = create_system(top, model, charge_groups="molecules", field=(0, 0, 1.0))
    _, ref_state = _state(reference, pos)
    assert state.getPotentialEnergy().value_in_unit(KJ) == pytest.approx(ref_state.getPotentialEnergy().value_in_unit(KJ), rel=1e-9)
    with pytest.raises(ValueError, match="unknown argument"):
        potential.createSystem(top, feild=(0, 0, 1))
    with pytest.raises(ValueError, match="needs modelPath"):
        MLPotential("pqeq")


@pytest.mark.parametrize("first", ["openmm_pqeq.integrations.openmmml_plugin", "openmmml"])
def test_openmm_ml_plugin_imports_in_either_order(first):
    """openmm-ml loads its plugins while it is imported: importing the plugin module first
    must not meet itself half-initialized (a new process, so neither is imported yet)."""
    code = (f"import {first}\n"
            "from openmmml import MLPotential\n"
            "from openmm_pqeq.integrations import openmmml_plugin\n"
            "factory = MLPotential._implFactories['pqeq']\n"
            "assert isinstance(factory, openmmml_plugin.PQEqPotentialImplFactory)\n"
            "assert isinstance(factory.createImpl('pqeq-water-demo'), openmmml_plugin.PQEqPotentialImpl)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_model_file_errors(model, tmp_path):
    path = save_model(model, tmp_path / "model.pt")
    reloaded = load_model(path)
    pos = torch.tensor([[0.0, 0.0, 0.0], [0.7572, 0.5865, 0.0], [-0.7572, 0.5865, 0.0]], dtype=torch.float64)
    a = energy_forces_stress(model, pos, torch.tensor([8, 1, 1]), None, torch.zeros(3, dtype=torch.float64))
    b = energy_forces_stress(reloaded, pos, torch.tensor([8, 1, 1]), None, torch.zeros(3, dtype=torch.float64))
    assert float(a["energy"]) == float(b["energy"])
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format version 99"):
        load_model(tmp_path / "future.pt")
    (tmp_path / "broken.pt").write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match="corrupted"):
        load_model(tmp_path / "broken.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an openmm_pqeq model file"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="neither a file nor a shipped model"):
        load_model(tmp_path / "missing.pt")


def test_charge_reporter(model, waters, tmp_path):
    from openmm import app

    from openmm_pqeq.integrations.reporters import PQEqReporter, read_charges

    top, pos = waters
    system = bonded_water_system(top)
    add_pqeq_force(system, top, model, charge_groups="molecules", field=(0, 0, 2.0))
    simulation = app.Simulation(top, system, openmm.VerletIntegrator(0.25 * unit.femtosecond),
                                openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(pos)
    reporter = PQEqReporter(tmp_path / "charges.txt", 2, model, top, charge_groups="molecules")
    simulation.reporters.append(reporter)
    simulation.reporters.append(app.DCDReporter(str(tmp_path / "traj.dcd"), 2))
    simulation.step(4)
    reporter.close()
    frames = read_charges(tmp_path / "charges.txt")
    assert frames["step"].tolist() == [2, 4]
    assert frames["charges_e"].shape == (2, 24)
    assert np.abs(frames["charges_e"].reshape(2, 8, 3).sum(-1)).max() < 1e-6
    assert frames["converged"].all() and frames["dipole_eA"][:, 2].min() > 0
    import mdtraj

    assert mdtraj.load_dcd(str(tmp_path / "traj.dcd"), top=mdtraj.Topology.from_openmm(top)).n_frames == 2


@pytest.mark.parametrize("backend", ["torchforce", "python"])
def test_reporter_takes_the_force_setup(model, waters, tmp_path, backend):
    """A reporter given the force (taken back from the System) writes what one given the
    Topology and the force's options writes; the force's set-up is the one add_pqeq_force made."""
    from openmm import app

    from openmm_pqeq.integrations.openmm_force import force_setup
    from openmm_pqeq.integrations.reporters import PQEqReporter, read_charges
    from openmm_pqeq.integrations.setup import atom_setup

    top, pos = waters
    system = bonded_water_system(top)
    add_pqeq_force(system, top, model, atoms=range(3, 24), charge_groups="molecules", field=(0, 0, 2.0),
                   backend=backend)
    force = system.getForce(system.getNumForces() - 1)
    assert force_setup(force) == atom_setup(top, range(3, 24), 0.0, "molecules")
    simulation = app.Simulation(top, system, openmm.VerletIntegrator(0.25 * unit.femtosecond),
                                openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(pos)
    by_force = PQEqReporter(tmp_path / "force.txt", 1, build_model(CONFIG), force=force)
    by_topology = PQEqReporter(tmp_path / "topology.txt", 1, build_model(CONFIG), top, atoms=range(3, 24),
                               charge_groups="molecules")
    simulation.reporters += [by_force, by_topology]
    simulation.step(2)
    by_force.close()
    by_topology.close()
    a, b = read_charges(tmp_path / "force.txt"), read_charges(tmp_path / "topology.txt")
    assert a["charges_e"].shape == (2, 21)
    assert np.array_equal(a["charges_e"], b["charges_e"]) and np.array_equal(a["dipole_eA"], b["dipole_eA"])
    with pytest.raises(ValueError, match="not both"):
        PQEqReporter(tmp_path / "x.txt", 1, model, top, force=force)
    with pytest.raises(ValueError, match="not a PQEq force"):
        PQEqReporter(tmp_path / "x.txt", 1, model, force=system.getForce(0))


def test_evaluate_with_a_model_file(model, tmp_path):
    """`evaluate(..., model=PATH)` (CLI: --model) evaluates every term of a saved model."""
    import ase

    from openmm_pqeq.single_point import evaluate

    path = save_model(build_model({"elements": ["O", "H"], "e0": {"preset": "small", "num_blocks": 1},
                                   "pqeq": {}, "d3": {}}), tmp_path / "full.pt")
    water = ase.Atoms("OH2", positions=[[0, 0, 0], [0.7572, 0.5865, 0], [-0.7572, 0.5865, 0]])
    result = evaluate(water, model=str(path))
    assert set(result["terms"]) == {"e0", "pqeq", "d3"}
    assert result["energy_eV"] == pytest.approx(sum(result["terms"].values()))
    assert result["terms"]["pqeq"] == pytest.approx(evaluate(water)["terms"]["pqeq"], abs=1e-8)
