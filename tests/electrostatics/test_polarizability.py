"""Isolated atom in a field: α = k_e Z² / K_s exactly (docs/method/pqeq.md)."""

import pytest
import torch

from openmm_pqeq.electrostatics import PQEq, element_parameters
from openmm_pqeq.units import COULOMB_EV_A


@pytest.mark.parametrize("element", ["O", "H", "Na", "Cl", "Li"])
@pytest.mark.parametrize("params", ["reaxnet", "pqeq0"])
def test_isolated_atom_polarizability(element, params):
    p = element_parameters(params, element)
    pqeq = PQEq([element], params=params, charge_tolerance=1e-12, shell_tolerance=1e-12)
    field = torch.tensor([0.003, -0.002, 0.01])
    out = pqeq(torch.zeros(1, 3), torch.tensor([pqeq.element_names.index(element)]), None, field)
    alpha_A3 = COULOMB_EV_A * out["dipole"] / field
    expected = COULOMB_EV_A * p.Z**2 / p.Ks
    assert alpha_A3.tolist() == pytest.approx([expected] * 3, rel=1e-9)
    # charge stays zero, energy is -½ (α/k_e) E²
    assert float(out["charges"][0]) == pytest.approx(0.0, abs=1e-12)
    assert float(out["energy"]) == pytest.approx(-0.5 * p.Z**2 / p.Ks * float(field @ field), rel=1e-9)


def test_oxygen_reference_value():
    # docs/method/pqeq.md: 332.06371 / 414.04451 = 0.802000 Å^3 (published constants)
    p = element_parameters("reaxnet", "O")
    assert COULOMB_EV_A * p.Z**2 / p.Ks == pytest.approx(0.802000, abs=1e-6)
