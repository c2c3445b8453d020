"""The package front door: light import, a working star import, the CLI entry point."""

import json
import subprocess
import sys

import pytest

from helpers import data_file


def test_import_is_light():
    code = "import sys, openmm_pqeq; print(json.dumps(sorted(m for m in ('torch', 'e3nn', 'openmm') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


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
