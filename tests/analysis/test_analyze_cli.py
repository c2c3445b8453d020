"""`openmm-pqeq analyze` on a real (tiny) `openmm-pqeq md` output: every table and plot, and
numbers that agree with what the reporter files hold."""

import json
import subprocess
import sys

import numpy as np
import pytest

from openmm_pqeq.cli.main import main
from openmm_pqeq.integrations.reporters import read_charges


def test_analyze_writes_tables_plots_and_summary(md_output, tmp_path):
    destination = tmp_path / "analysis"
    assert main(["analyze", str(md_output), "--destination", str(destination), "--quiet", "--blocks", "2"]) == 0
    summary = json.loads((destination / "summary.json").read_text())
    for name in ("polarization", "orientation", "dipole_distribution", "ir_spectrum", "charges", "rdf"):
        assert (destination / f"{name}.csv").stat().st_size > 0
        assert (destination / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["frames"] == 24 and summary["direction"] == [0.0, 0.0, 1.0]
    # the polarization table against the reporter's dipole and the box of final.pdb
    import mdtraj

    volume_A3 = float(mdtraj.load("%s/final.pdb" % md_output).unitcell_volumes[0]) * 1e3
    table = np.loadtxt(destination / "polarization.csv", delimiter=",", skiprows=1)
    frames = read_charges(md_output / "charges.txt")
    # final.pdb keeps the box to 0.001 Å (CRYST1): its volume is good to ~3e-4 here
    np.testing.assert_allclose(table[:, 1], frames["dipole_eA"][:, 2] / volume_A3, rtol=5e-4)
    charges = np.loadtxt(destination / "charges.csv", delimiter=",", skiprows=1)
    header = (destination / "charges.csv").read_text().splitlines()[0].split(",")
    np.testing.assert_allclose(charges[:, header.index("O_mean_e")], frames["charges_e"][:, 0::3].mean(1), atol=1e-7)
    assert summary["molecular_dipoles"]["includes_shells"] is True
    assert -1.0 <= summary["molecular_dipoles"]["mean_cos_theta"] <= 1.0
    assert summary["polarization"]["response_at_drive"]["drive_THz"] == pytest.approx(200.0, rel=0.01)
    assert summary["rdf"]["first_peak_A"] > 2.0
    assert summary["charges"]["all_converged"] is True


def test_analyze_help_and_errors(tmp_path):
    help_text = subprocess.run([sys.executable, "-m", "openmm_pqeq.cli.main", "analyze", "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert "OUTPUT_DIR" in help_text and "harmonic" in help_text and "--ir-max-lag-ps" in help_text
    out = subprocess.run([sys.executable, "-m", "openmm_pqeq.cli.main", "analyze", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "openmm-pqeq md" in out.stderr and "Traceback" not in out.stderr
