"""A tiny real `openmm-pqeq md` output folder shared by the tests of this folder, made through
the command line with a sinusoidal field protocol (random-weight model: it checks the reading,
the bookkeeping and the plumbing, not the physics of water)."""

import pytest

from openmm_pqeq.cli.main import main
from openmm_pqeq.io import save_model
from openmm_pqeq.model import build_model

#: The protocol of the shared run: a 200 THz sine (period 5 fs) over 12 steps of 0.5 fs.
PROTOCOL = "sin:amplitude=0.3,frequency_THz=200,axis=z"


@pytest.fixture(scope="session")
def md_output(tmp_path_factory):
    folder = tmp_path_factory.mktemp("md")
    model = build_model({"elements": ["O", "H"], "e0": {"preset": "small", "num_blocks": 1}, "pqeq": {}, "d3": {}})
    path = save_model(model, folder / "model.pt")
    code = main(["md", "--model", str(path), "--molecules", "8", "--timestep", "0.5", "--equilibration-steps", "2",
                 "--steps", "12", "--report-interval", "1", "--platform", "Reference", "--field-protocol", PROTOCOL,
                 "--output", str(folder / "out"), "--quiet"])
    assert code == 0
    return folder / "out"


@pytest.fixture(scope="session")
def md_protocol():
    """The --field-protocol of ``md_output``."""
    return PROTOCOL
