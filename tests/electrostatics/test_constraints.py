"""Total-charge and per-group charge constraints, and the charge-solve mat-vec."""

import pytest
import torch

from openmm_pqeq.electrostatics import PQEq

from helpers import water_box, water_dimer


@pytest.mark.parametrize("total_charge", [0.0, 1.0, -2.0])
def test_total_charge_is_exact(total_charge):
    pos, num, cell = water_box()
    out = PQEq(["O", "H"])(pos, num, cell, torch.tensor([0.0, 0.0, 0.2]), total_charge=total_charge)
    assert abs(float(out["charges"].sum()) - total_charge) < 1e-10
    assert bool(out["converged"])


def test_group_constraints_hold_and_differ_from_global():
    pos, num = water_dimer()
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    field = torch.tensor([0.0, 0.5, 0.0])  # along the O...O axis: drives charge transfer
    pqeq = PQEq(["O", "H"])
    grouped = pqeq(pos, num, None, field, groups=groups, group_charges=torch.tensor([1.0, -1.0]))
    sums = torch.zeros(2).index_add_(0, groups, grouped["charges"])
    assert sums.tolist() == pytest.approx([1.0, -1.0], abs=1e-10)
    neutral = pqeq(pos, num, None, field, groups=groups)
    assert torch.zeros(2).index_add_(0, groups, neutral["charges"]).abs().max() < 1e-10
    free = PQEq(["O", "H"])(pos, num, None, field)
    transferred = float(torch.zeros(2).index_add_(0, groups, free["charges"])[0])
    assert abs(transferred) > 1e-3  # without groups the field moves charge between molecules


@pytest.mark.parametrize("reciprocal", ["ewald", "pme"])
def test_charge_matvec_is_the_charge_hessian(reciprocal):
    """The matrix-free mat-vec equals the autograd Hessian-vector product of the energy."""
    pos, num, cell = water_box()
    pqeq = PQEq(["O", "H"], reciprocal=reciprocal)
    coulomb = pqeq.coulomb
    a = pqeq.table_exponent.index_select(0, num)
    z = pqeq.table_Z.index_select(0, num)
    i, j, s = pqeq.neighbors(pos, cell)
    d = 0.05 * torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    q = torch.randn(6, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    v = torch.randn(6, generator=torch.Generator().manual_seed(3))
    energy = coulomb.energy(pos, d, q + z, -z, a, cell, i, j, s)
    (grad,) = torch.autograd.grad(energy, q, create_graph=True)
    (hvp,) = torch.autograd.grad(grad @ v, q)
    cache = coulomb.setup(pos, a, cell, i, j, s, 0.0)
    matvec = coulomb.hessian_matvec(cache, i, j, v)
    assert torch.allclose(matvec, hvp, rtol=1e-9, atol=1e-10)
