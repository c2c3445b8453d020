"""The package front door: light import, a working star import, the CLI entry point."""

import json
import subprocess
import sys

import pytest

from helpers import data_file


#: What users call first, and the module that defines each name.
TOP_LEVEL = {
    "create_system": "openmm_pqeq.integrations.system",
    "add_pqeq_force": "openmm_pqeq.integrations.system",
    "PQEqReporter": "openmm_pqeq.integrations.reporters",
    "load_model": "openmm_pqeq.io",
    "save_model": "openmm_pqeq.io",
    "build_model": "openmm_pqeq.model",
    "PQEqModel": "openmm_pqeq.model",
    "PQEqCalculator": "openmm_pqeq.integrations.ase_calculator",
    "evaluate": "openmm_pqeq.single_point",
    "E0Network": "openmm_pqeq.nn.e0",
    "PQEq": "openmm_pqeq.electrostatics.pqeq",
    "D3Dispersion": "openmm_pqeq.dispersion.d3",
    "born_charges": "openmm_pqeq.electrostatics.response",
}


def test_import_is_light():
    heavy = ("torch", "e3nn", "openmm", "openmmtorch", "ase", "vesin", "torchpme")
    code = (f"import json, sys, openmm_pqeq; dir(openmm_pqeq); openmm_pqeq.__version__; "
            f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_top_level_names_resolve_to_their_definitions():
    import importlib

    import openmm_pqeq

    assert set(openmm_pqeq.__all__) == {"__version__", *TOP_LEVEL}
    for name, module in TOP_LEVEL.items():
        expected = getattr(importlib.import_module(module), name)
        # twice: importing the defining module must not shadow the name with a submodule
        assert getattr(openmm_pqeq, name) is expected, name
        assert getattr(openmm_pqeq, name) is expected, name
    for internal in ("GaussianCoulomb", "NeighborList"):
        with pytest.raises(AttributeError, match=f"no attribute '{internal}'"):
            getattr(openmm_pqeq, internal)


def test_star_import_lists_only_existing_names():
    namespace: dict = {}
    exec("from openmm_pqeq import *", namespace)
    import openmm_pqeq

    for name in openmm_pqeq.__all__:
        assert name in namespace


def test_cli_help_and_water_json(tmp_path):
    help_text = subprocess.run([sys.executable, "-m", "openmm_pqeq.cli.main", "evaluate", "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert "--field EX EY EZ" in help_text and "V/Å" in help_text
    xyz = tmp_path / "water.xyz"
    xyz.write_text("3\n\nO 0 0 0\nH 0.7572 0.5865 0\nH -0.7572 0.5865 0\n")
    out = subprocess.run([sys.executable, "-m", "openmm_pqeq.cli.main", "evaluate", str(xyz), "--mode", "reaxnet",
                          "--json"], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert set(result) >= {"energy_eV", "terms", "forces_eV_per_A", "charges_e", "shell_displacements_A",
                           "dipole_eA", "scf_iterations", "converged"}
    assert result["charges_e"] == pytest.approx([-0.416083, 0.208042, 0.208042], abs=1e-6)
    assert result["terms"]["pqeq"] == pytest.approx(-0.744698, abs=1e-6)


def test_cli_reports_bad_input_clearly(tmp_path):
    xyz = tmp_path / "bad.xyz"
    xyz.write_text("2\n\nO 0 0 0\nO 0 0 0.01\n")
    out = subprocess.run([sys.executable, "-m", "openmm_pqeq.cli.main", "evaluate", str(xyz)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "are 0.01" in out.stderr and "Traceback" not in out.stderr
