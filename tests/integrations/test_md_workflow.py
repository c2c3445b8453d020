"""The `openmm-pqeq md` workflow end to end, tiny and short (a random-weight model: this
checks the plumbing and the outputs, not the physics of water)."""

import numpy as np
import pytest

from openmm_pqeq.integrations.reporters import read_charges
from openmm_pqeq.io import save_model
from openmm_pqeq.md import MDSettings, run_water_field_md, water_box
from openmm_pqeq.model import build_model


def test_water_box_density():
    topology, positions = water_box(64)
    n_waters = topology.getNumResidues()
    side_A = topology.getPeriodicBoxVectors()[0][0].value_in_unit(__import__("openmm").unit.angstrom)
    assert 50 <= n_waters <= 70
    assert n_waters * 29.915 / side_A**3 == pytest.approx(1.0, rel=0.15)
    with pytest.raises(ValueError, match="at least 2"):
        water_box(1)


def test_md_workflow_writes_outputs(tmp_path):
    model = build_model({"elements": ["O", "H"], "e0": {"preset": "small", "num_blocks": 1}, "pqeq": {}, "d3": {}})
    path = save_model(model, tmp_path / "model.pt")
    settings = MDSettings(n_molecules=8, field_V_per_A=(0.0, 0.0, 0.5), timestep_fs=0.1, equilibration_steps=2,
                          steps_without_field=2, steps_with_field=2, report_interval=1, platform="Reference")
    summary = run_water_field_md(path, tmp_path / "out", settings, progress=False)
    for name in ("trajectory.dcd", "final.pdb", "charges.txt", "thermo.csv", "polarization.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    frames = read_charges(tmp_path / "out" / "charges.txt")
    assert len(frames["step"]) == 4
    assert np.abs(frames["charges_e"].reshape(4, -1, 3).sum(-1)).max() < 1e-6  # molecules stay neutral
    assert summary["mean_polarization_with_field_e_per_A2"] > summary["mean_polarization_without_field_e_per_A2"]
