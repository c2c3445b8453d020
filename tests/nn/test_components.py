"""Building blocks of the E0 network against e3nn and closed forms."""

import math

import pytest
import torch
from e3nn import o3

from openmm_pqeq.nn import BesselBasis, EdgeTensorProduct, PolynomialCutoff, SpeciesLinear, neighbor_slots


def test_bessel_basis_closed_form():
    r = torch.tensor([0.5, 1.7, 4.9])
    values = BesselBasis(r_max=5.0, num_basis=4)(r)
    n = torch.arange(1, 5)
    expected = 2.0 / 5.0 * torch.sin(n * math.pi * r[:, None] / 5.0) / r[:, None]
    torch.testing.assert_close(values, expected)


def test_polynomial_cutoff_is_twice_continuously_differentiable_at_r_max():
    cutoff = PolynomialCutoff(r_max=4.0, p=6)
    r = torch.tensor([4.0 - 1e-9, 4.0, 4.5], requires_grad=True)
    u = cutoff(r)
    (du,) = torch.autograd.grad(u.sum(), r, create_graph=True)
    (d2u,) = torch.autograd.grad(du.sum(), r)
    # u ~ (1-x)^3, u' ~ (1-x)^2, u'' ~ (1-x) just inside r_max; all exactly 0 beyond.
    for values, bound in ((u, 1e-12), (du, 1e-12), (d2u, 1e-7)):
        assert values.abs().max().item() < bound
    assert cutoff(torch.tensor([0.0, 2.0])).tolist() == pytest.approx([1.0, 1 - 28 / 64 + 48 / 128 - 21 / 256])


def test_neighbor_slots_place_each_edge_once():
    center = torch.tensor([2, 0, 2, 2, 1, 0])
    order, slot, k = neighbor_slots(center, num_nodes=4)
    assert k == 3
    assert torch.equal(center[order], torch.tensor([0, 0, 1, 2, 2, 2]))
    assert slot.tolist() == [0, 1, 3, 6, 7, 8]  # center * K + rank
    order, slot, k = neighbor_slots(torch.zeros(0, dtype=torch.long), num_nodes=2)
    assert k == 0 and order.numel() == 0 and slot.numel() == 0


@pytest.mark.parametrize(
    ("irreps_in", "irreps_sh", "allowed"),
    [
        ("5x0e+3x1e+2x2e", "0e+1e+2e", "0e+1e+2e"),
        ("4x0e+2x0o+3x1o+2x1e+2x2e", "0e+1o+2e", "0e+0o+1o+1e+2e"),
        ("3x0e+2x1e", "0e+1e", "0e"),
    ],
    ids=["even", "parity", "to-scalars"],
)
def test_edge_tensor_product_equals_e3nn_uvu_plus_scatter(irreps_in, irreps_sh, allowed):
    torch.manual_seed(0)
    irreps_in, irreps_sh = o3.Irreps(irreps_in), o3.Irreps(irreps_sh)
    allowed = [ir for _, ir in o3.Irreps(allowed)]
    tp = EdgeTensorProduct(irreps_in, irreps_sh, allowed)
    instructions, irreps_mid = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_sh:
                if ir_out in allowed:
                    instructions.append((i, j, len(irreps_mid), "uvu", True))
                    irreps_mid.append((mul, ir_out))
    reference = o3.TensorProduct(irreps_in, irreps_sh, irreps_mid, instructions,
                                 shared_weights=False, internal_weights=False)
    assert tp.irreps_out == o3.Irreps(irreps_mid) and tp.weight_numel == reference.weight_numel

    n_nodes, n_edges = 5, 17
    x = torch.randn(n_nodes, irreps_in.dim)
    center = torch.randint(0, n_nodes, (n_edges,))
    neighbor = torch.randint(0, n_nodes, (n_edges,))
    sh = o3.spherical_harmonics(irreps_sh, torch.randn(n_edges, 3), normalize=True, normalization="component")
    weights = torch.randn(n_edges, tp.weight_numel)
    expected = torch.zeros(n_nodes, tp.irreps_out.dim).index_add(0, center, reference(x[neighbor], sh, weights))

    order, slot, k = neighbor_slots(center, n_nodes)

    def slots(values):
        padded = values.new_zeros((n_nodes * k,) + values.shape[1:]).index_copy(0, slot, values[order])
        return padded.view((n_nodes, k) + values.shape[1:])

    result = tp(x, slots(sh), slots(weights), slots(neighbor).view(-1))
    torch.testing.assert_close(result, expected, atol=1e-12, rtol=1e-12)


def test_species_linear_is_a_per_species_e3nn_linear():
    torch.manual_seed(0)
    irreps_in, irreps_out = o3.Irreps("4x0e+2x1o+1x2e"), o3.Irreps("3x0e+2x1o+2x1e")
    layer = SpeciesLinear(irreps_in, irreps_out, num_species=3)
    x = torch.randn(7, irreps_in.dim)
    species = torch.tensor([2, 0, 2, 1, 0, 2, 2])
    result = layer(x, species)
    for s in range(3):
        reference = o3.Linear(irreps_in, irreps_out)
        with torch.no_grad():
            reference.weight.copy_(layer.weight[s])
        rows = species == s
        torch.testing.assert_close(result[rows], reference(x[rows]), atol=1e-12, rtol=0)
    assert torch.all(result[:, 9:] == 0)  # no 1e input: that block is zero
    assert layer(x[:0], species[:0]).shape == (0, irreps_out.dim)
