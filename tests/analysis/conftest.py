"""A tiny real `openmm-pqeq md` output folder shared by the tests of this folder (random-weight
model: it checks the reading and the bookkeeping, not the physics of water)."""

import pytest

from openmm_pqeq.io import save_model
from openmm_pqeq.md import MDSettings, run_water_field_md
from openmm_pqeq.model import build_model


@pytest.fixture(scope="session")
def md_output(tmp_path_factory):
    folder = tmp_path_factory.mktemp("md")
    model = build_model({"elements": ["O", "H"], "e0": {"preset": "small", "num_blocks": 1}, "pqeq": {}, "d3": {}})
    path = save_model(model, folder / "model.pt")
    settings = MDSettings(n_molecules=8, field_V_per_A=(0.0, 0.0, 0.5), timestep_fs=0.25, equilibration_steps=2,
                          steps_without_field=6, steps_with_field=6, report_interval=1, platform="Reference")
    run_water_field_md(path, folder / "out", settings, progress=False)
    return folder / "out"
