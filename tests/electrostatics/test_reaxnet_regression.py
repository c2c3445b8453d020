"""Reaxnet mode against the published Li2PO2N charges and an independent water result."""

import ase.io
import numpy as np
import pytest
import torch

from openmm_pqeq.electrostatics import PQEq

from helpers import data_file, WATER, WATER_Z

# docs/method/pqeq.md: published charges (the published model printed the same digits)
LI2PO2N_CHARGES = {3: 0.37500883, 15: 0.05885434, 7: -0.27178660, 8: -0.26854270}
LI2PO2N_ENERGY_EV = -592.3511


def test_li2po2n_published_charges_and_energy():
    atoms = ase.io.read(data_file("Li2PO2N.cif"))
    numbers = torch.tensor(atoms.numbers)
    pqeq = PQEq(["Li", "P", "N", "O"], params="reaxnet", mode="reaxnet")
    out = pqeq(torch.tensor(atoms.positions), numbers, torch.tensor(np.array(atoms.cell)), torch.zeros(3))
    charges = out["charges"]
    for z, reference in LI2PO2N_CHARGES.items():
        species = charges[numbers == z]
        assert float((species - species.mean()).abs().max()) < 1e-10
        assert float(species.mean()) == pytest.approx(reference, abs=1e-6)
    assert float(out["energy"]) == pytest.approx(LI2PO2N_ENERGY_EV, abs=1e-3)
    assert bool(out["converged"])


def test_water_reaxnet_matches_independent_implementation():
    # docs/method/pqeq.md (independent implementation): q_O -0.416083, q_H +0.208042, E_PQEq -0.744698 eV
    pqeq = PQEq(["O", "H"], params="reaxnet", mode="reaxnet")
    out = pqeq(torch.tensor(WATER), torch.tensor(WATER_Z), None, torch.zeros(3))
    assert out["charges"].tolist() == pytest.approx([-0.416083, 0.208042, 0.208042], abs=1e-6)
    assert float(out["energy"]) == pytest.approx(-0.744698, abs=1e-6)
    # published practice caps shells at 0.25 Å and runs exactly two cycles
    assert int(out["iterations"]) == 2
