"""A tiny real `openmm-pqeq md` output folder shared by the tests of this folder, made through
the command line with the shipped water-demo model and a sinusoidal field protocol (8 waters,
13 fs: it checks the reading, the bookkeeping and the plumbing, not the physics of water).
The PythonForce backend: an error inside a TorchForce module can still crash the process
instead of raising."""

import pytest

from openmm_pqeq.cli.main import main

#: The protocol of the shared run: a 200 THz sine (period 5 fs) over 12 steps of 0.5 fs.
PROTOCOL = "sin:amplitude=0.1,frequency_THz=200,axis=z"


@pytest.fixture(scope="session")
def md_output(tmp_path_factory):
    folder = tmp_path_factory.mktemp("md")
    code = main(["md", "--model", "water-demo", "--molecules", "8", "--timestep", "0.5", "--equilibration-steps", "2",
                 "--steps", "12", "--report-interval", "1", "--platform", "Reference", "--backend", "python",
                 "--charge-groups", "molecules", "--field-protocol", PROTOCOL, "--output", str(folder / "out"),
                 "--quiet"])
    assert code == 0
    return folder / "out"


@pytest.fixture(scope="session")
def md_protocol():
    """The --field-protocol of ``md_output``."""
    return PROTOCOL
