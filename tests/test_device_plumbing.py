"""The model runs where its inputs are: no tensor of the model's own is made on the CPU behind
the caller's back (the class of bug that breaks a model on a GPU), checked here without a GPU.

Two independent checks:

- eager: a torch function mode records every tensor factory (``torch.tensor``, ``torch.zeros``,
  ...) called *from this package's code* without a ``device=``, and every copy to the host
  (``.cpu()``, ``.numpy()``, ``.to("cpu")``), while the model computes energy, forces and stress;
- scripted (what openmm-torch runs): the TorchScript graphs of the TorchForce module are scanned
  for factory calls whose ``device`` argument is the constant None.

Plus the plumbing of ``device=`` and ``precision=`` in the backends, the ASE calculator and the
command line, run with ``device="cpu"``.
"""

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import openmm_pqeq
from openmm_pqeq.model import build_model, energy_forces_stress
from openmm_pqeq.runtime import prepare_model, resolve_device, set_precision

from helpers import water_box, water_dimer

PACKAGE = Path(openmm_pqeq.__file__).resolve().parent
TORCH_DIR = Path(torch.__file__).resolve().parent
FACTORIES = {torch.tensor, torch.as_tensor, torch.zeros, torch.ones, torch.full, torch.empty, torch.arange,
             torch.eye, torch.linspace, torch.rand, torch.randn, torch.scalar_tensor, torch.triu_indices}
ROOT = Path(__file__).resolve().parents[1]


class HostTensorRecorder(TorchFunctionMode):
    """Records (file:line, call) of factories without a device, and host copies, made by this package."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            self._record(func.__name__)
        elif func in (torch.Tensor.cpu, torch.Tensor.numpy):
            self._record(func.__name__)
        elif func is torch.Tensor.to:
            targets = list(args[1:]) + [kwargs.get("device")]
            if any(isinstance(t, (str, torch.device)) and torch.device(t).type == "cpu" for t in targets):
                self._record("to(cpu)")
        return func(*args, **kwargs)

    def _record(self, name):
        frame = sys._getframe(2)
        while frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(TORCH_DIR):
            frame = frame.f_back
        if frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(PACKAGE):
            where = Path(frame.f_code.co_filename).resolve().relative_to(PACKAGE)
            self.calls.append(f"{where}:{frame.f_lineno} {name}")


def _model(reciprocal="auto"):
    return build_model({"elements": ["H", "O"], "e0": {"preset": "small"}, "pqeq": {"reciprocal": reciprocal},
                        "d3": {}})


@pytest.mark.parametrize("periodic,reciprocal", [(False, "auto"), (True, "ewald"), (True, "pme")])
def test_model_makes_no_host_tensors_of_its_own(periodic, reciprocal):
    model = _model(reciprocal)
    if periodic:
        pos, num, cell = water_box()
    else:
        (pos, num), cell = water_dimer(), None
    field = torch.tensor([0.0, 0.05, 0.1])
    reference = energy_forces_stress(model, pos, num, cell, field)
    model.pqeq.reset()
    recorder = HostTensorRecorder()
    with recorder:
        out = energy_forces_stress(model, pos, num, cell, field)
    assert recorder.calls == []
    assert float(out["energy"]) == pytest.approx(float(reference["energy"]), abs=1e-9)


def test_recorder_sees_a_host_tensor_made_without_device():
    """The check above can fail: a factory without device in package code is caught."""
    from openmm_pqeq.electrostatics import constraints

    recorder = HostTensorRecorder()
    with recorder:
        constraints.group_sum(torch.ones(3), torch.zeros(3, dtype=torch.long), 1)  # device from the input
    assert recorder.calls == []
    namespace = {"torch": torch}
    source = "def make():\n    return torch.zeros(3)\n"
    exec(compile(source, str(PACKAGE / "fake_module.py"), "exec"), namespace)
    with recorder:
        namespace["make"]()
    assert recorder.calls == ["fake_module.py:2 zeros"]


def _factory_nodes_without_device(scripted):
    """(method, node) of tensor factories with device=None in every graph of a scripted module."""
    kinds = ("aten::tensor", "aten::zeros", "aten::ones", "aten::full", "aten::empty", "aten::arange", "aten::eye",
             "aten::linspace", "aten::scalar_tensor", "aten::as_tensor", "aten::randn", "aten::rand")
    found = []
    for name, module in scripted.named_modules():
        for method in module._c._method_names():
            graph = module._c._get_method(method).graph
            for kind in kinds:
                for node in graph.findAllNodes(kind, recurse=True):
                    schema = torch._C.parse_schema(node.schema())
                    names = [a.name for a in schema.arguments]
                    if "device" not in names:
                        continue
                    value = list(node.inputs())[names.index("device")]
                    if value.node().kind() == "prim::Constant" and value.type().kind() == "NoneType":
                        found.append(f"{name or 'root'}.{method}: {node.sourceRange().splitlines()[0]}")
    return found


def test_torchforce_module_graph_has_no_factories_without_device():
    from openmm import app

    from openmm_pqeq.integrations.openmm_force import OpenMMEnergy, PeriodicTorchForceModule
    from openmm_pqeq.integrations.setup import atom_setup
    from openmm_pqeq.model import script_model

    topology = app.Topology()
    chain = topology.addChain()
    for _ in range(2):
        residue = topology.addResidue("HOH", chain)
        o = topology.addAtom("O", app.element.oxygen, residue)
        for h in ("H1", "H2"):
            topology.addBond(o, topology.addAtom(h, app.element.hydrogen, residue))
    topology.setPeriodicBoxVectors(np.eye(3) * 0.6)
    setup = atom_setup(topology, None, 0.0, "molecules", None)
    scripted = script_model(PeriodicTorchForceModule(OpenMMEnergy(_model("pme"), setup)))
    assert _factory_nodes_without_device(scripted) == []


def test_graph_scan_finds_a_factory_without_device():
    class Bad(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.zeros(3, dtype=x.dtype)

    assert len(_factory_nodes_without_device(torch.jit.script(Bad()))) == 1


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no GPU"):
            resolve_device("cuda")


def test_precision_sets_the_dtype_of_each_term():
    pos, num, cell = water_box()
    field = torch.tensor([0.0, 0.0, 0.1])
    model = _model()
    e0_dtype = model.e0.per_species_shift.dtype
    results = {}
    for precision in (None, "single", "mixed", "double"):
        copy, _ = prepare_model(model, "cpu", precision)
        expected_e0 = {None: e0_dtype, "double": torch.float64}.get(precision, torch.float32)
        assert copy.e0.per_species_shift.dtype == expected_e0
        assert copy.d3_double == (precision != "single") and copy.pqeq_double
        results[precision] = energy_forces_stress(copy, pos, num, cell, field)
        assert results[precision]["energy"].dtype == torch.float64
    assert model.e0.per_species_shift.dtype == e0_dtype  # the caller's model is not cast
    for precision in ("single", "mixed"):
        assert float(results[precision]["energy"]) == pytest.approx(float(results["double"]["energy"]), rel=1e-5)
        assert torch.allclose(results[precision]["forces"], results["double"]["forces"], atol=1e-3)
    # PQEq stays in float64 unless asked: identical charges with single E0 and D3
    assert torch.equal(results["single"]["charges"], results["double"]["charges"])
    with pytest.raises(ValueError, match="precision is 'half'"):
        set_precision(_model(), "half")
    with pytest.raises(ValueError, match="pqeq_precision is 'mixed'"):
        set_precision(_model(), None, "mixed")


def test_pqeq_in_float32_when_asked():
    pos, num, cell = water_box()
    model, _ = prepare_model(build_model({"elements": ["H", "O"], "pqeq": {"charge_tolerance": 1e-4,
                                                                          "shell_tolerance": 1e-3}}),
                             "cpu", None, "single")
    assert not model.pqeq_double
    single = model(pos, num, cell, torch.zeros(3))
    double = build_model({"elements": ["H", "O"], "pqeq": {}})(pos, num, cell, torch.zeros(3))
    assert single["charges"].dtype == torch.float64  # outputs in the dtype of the positions
    assert torch.allclose(single["charges"], double["charges"], atol=1e-4)


def test_model_sums_e0_per_atom_energies_in_float64():
    model = build_model({"elements": ["H", "O"], "e0": {"preset": "small"}})
    model.e0.float()
    with torch.no_grad():
        model.e0.per_species_shift.fill_(-2.0e4)  # large per-atom offsets: float32 sums lose digits
    pos, num = water_dimer()
    pos = pos.repeat(300, 1) + torch.arange(1800.0).unsqueeze(1) * 3.0  # 1800 atoms in a line
    num = num.repeat(300)
    out = model(pos, num, None, torch.zeros(3))
    per_atom = model.e0(pos.float(), num, None)
    exact = float(per_atom.double().sum())
    assert abs(float(per_atom.float().sum()) - exact) > 1e-3  # a float32 sum would fail the next line
    assert float(out["energy"]) == pytest.approx(exact, abs=1e-6)


def test_python_backend_device_and_precision_survive_pickling():
    from openmm_pqeq.integrations.openmm_force import PythonForceComputation
    from openmm_pqeq.io import model_weights
    from openmm_pqeq.model import config_of

    model = _model()
    computation = PythonForceComputation(config_of(model), model_weights(model), None, 6, device="cpu",
                                         precision="double")
    loaded = pickle.loads(pickle.dumps(computation))
    assert (loaded.device, loaded.precision, loaded.pqeq_precision) == ("cpu", "double", "double")
    assert loaded.model.e0.per_species_shift.dtype == torch.float64
    assert loaded._device == torch.device("cpu")
    old = PythonForceComputation.__new__(PythonForceComputation)
    old.__setstate__({"config": config_of(model), "state_dict": model_weights(model), "setup": None,
                      "n_particles": 6, "_model": None})  # pickled before these options existed
    assert old.device is None and old.precision is None and old.model is not None


def test_openmm_backends_take_device_and_precision():
    import openmm
    from openmm import app, unit

    from openmm_pqeq.integrations.system import create_system

    pos, num, cell = water_box()
    topology = app.Topology()
    chain = topology.addChain()
    for _ in range(2):
        residue = topology.addResidue("HOH", chain)
        o = topology.addAtom("O", app.element.oxygen, residue)
        for h in ("H1", "H2"):
            topology.addBond(o, topology.addAtom(h, app.element.hydrogen, residue))
    topology.setPeriodicBoxVectors([openmm.Vec3(*row) * 0.1 for row in cell.tolist()])
    from openmm_pqeq.integrations.openmm_force import openmmtorch
    from openmm_pqeq.units import EV_TO_KJ_PER_MOL

    model = _model()
    double, _ = prepare_model(model, "cpu", "double")
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    expected = float(double(pos, num, cell, torch.zeros(3), 0.0, groups)["energy"]) * EV_TO_KJ_PER_MOL
    runs = [("python", {"device": device, "precision": "double"})
            for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])]
    if openmmtorch is not None:  # not on the one-shot GPU machine
        runs.append(("torchforce", {"precision": "double"}))
    for backend, options in runs:
        system = create_system(topology, model, charge_groups="molecules", backend=backend, **options)
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        context.setPositions((pos * 0.1).tolist())
        energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        assert energy == pytest.approx(expected, rel=1e-6), (backend, options)
    with pytest.raises(ValueError, match="device= is for backend='python'"):
        create_system(topology, model, backend="torchforce", device="cpu")
    with pytest.raises(ValueError, match="precision is 'quad'"):
        create_system(topology, model, backend="python", precision="quad")


def test_ase_calculator_device_and_precision():
    from ase import Atoms

    from openmm_pqeq.integrations.ase_calculator import PQEqCalculator

    pos, num, cell = water_box()
    model = _model()
    atoms = Atoms(numbers=num.tolist(), positions=pos.numpy(), cell=cell.numpy(), pbc=True)
    model.e0.float()
    atoms.calc = PQEqCalculator(model, device="cpu", precision="double")
    double = atoms.get_potential_energy()
    assert atoms.calc.model.e0.per_species_shift.dtype == torch.float64
    assert model.e0.per_species_shift.dtype == torch.float32  # its own copy was cast
    atoms.calc = PQEqCalculator(model, device="cpu")
    assert atoms.calc.model is model  # already there: no copy
    assert atoms.get_potential_energy() == pytest.approx(double, rel=1e-5)
    assert atoms.get_forces().shape == (6, 3)


def test_cli_evaluate_takes_device(tmp_path):
    import ase.io
    from ase.build import molecule

    path = tmp_path / "water.xyz"
    ase.io.write(path, molecule("H2O"))
    run = [sys.executable, "-m", "openmm_pqeq.cli.main", "evaluate", str(path), "--json"]
    done = subprocess.run(run + ["--device", "cpu"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    if not torch.cuda.is_available():
        failed = subprocess.run(run + ["--device", "cuda"], capture_output=True, text=True, cwd=ROOT, check=False)
        assert failed.returncode != 0 and "torch sees no GPU" in failed.stderr
