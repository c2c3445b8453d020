"""E0 as a potential: smooth cutoff, forces and virial = -gradients, periodic consistency."""

import pytest
import torch
from helpers import central_difference, strain_cell


@pytest.mark.parametrize("frequency_noise", [0.0, 0.3], ids=["initial", "trained"])
def test_energy_and_forces_vanish_smoothly_at_cutoff(make_net, energy_and_forces, frequency_noise):
    # An O-H dimer pulled apart: its interaction energy and the force go to zero at r_max at
    # least as (r_max - r)^3 and (r_max - r)^2 (polynomial envelope, p = 6; one order more while
    # the Bessel frequencies are still n*pi, as sin(n*pi*r/r_max) also vanishes there), so
    # halving r_max - r divides them by about 8 and 4 (or 16 and 8), and beyond r_max both are 0.
    net = make_net()
    with torch.no_grad():
        net.bessel.frequencies += frequency_noise * torch.randn_like(net.bessel.frequencies)
    numbers = torch.tensor([8, 1])
    r_max = net.r_max

    def dimer(r):
        return torch.tensor([[0.0, 0.0, 0.0], [0.6 * r, 0.0, 0.8 * r]], dtype=torch.float64)

    isolated = net(dimer(10.0 * r_max), numbers).sum().item()
    interaction, force = [], []
    for delta in (2e-3, 1e-3, 0.0, -1e-3):
        energy, forces = energy_and_forces(net, dimer(r_max - delta), numbers)
        interaction.append(energy.item() - isolated)
        force.append(forces.norm().item())
    assert abs(interaction[0]) > 1e-12 and force[0] > 1e-10
    assert interaction[0] / interaction[1] > 7.0
    assert force[0] / force[1] > 3.5
    assert interaction[2:] == pytest.approx([0.0, 0.0], abs=1e-14)
    assert force[2:] == pytest.approx([0.0, 0.0], abs=1e-14)
    assert abs(interaction[1]) < 1e-5 and force[1] < 1e-3


def test_forces_match_central_differences(net, system, energy_and_forces):
    positions, numbers, cell = system
    _, forces = energy_and_forces(net, positions, numbers, cell)
    numeric = -central_difference(lambda x: net(x, numbers, cell).sum().item(), positions, h=1e-5)
    torch.testing.assert_close(forces, numeric, atol=1e-8, rtol=1e-6)


def test_cell_gradient_gives_virial(net, periodic_system):
    # dE/dε of the homogeneous strain r -> r(1+ε), cell -> cell(1+ε) (the virial), by autograd
    # through positions and cell, against central differences.
    positions, numbers, cell = periodic_system
    strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    (virial,) = torch.autograd.grad(net(*_strained(positions, numbers, cell, strain)).sum(), strain)

    def energy(eps):
        return net(*_strained(positions, numbers, cell, eps)).sum().item()

    numeric = central_difference(energy, torch.zeros(3, 3, dtype=torch.float64), h=1e-6)
    assert virial.abs().max() > 1e-3
    torch.testing.assert_close(virial, numeric, atol=1e-7, rtol=1e-6)


def _strained(positions, numbers, cell, strain):
    strained_positions, strained_cell = strain_cell(positions, cell, strain)
    return strained_positions, numbers, strained_cell


def test_supercell_has_the_same_energy_per_atom(net, periodic_system):
    positions, numbers, cell = periodic_system
    reps = (2, 1, 3)
    images = [a * cell[0] + b * cell[1] + c * cell[2]
              for a in range(reps[0]) for b in range(reps[1]) for c in range(reps[2])]
    super_positions = torch.cat([positions + t for t in images])
    super_numbers = numbers.repeat(len(images))
    super_cell = torch.stack([reps[k] * cell[k] for k in range(3)])
    per_atom = net(positions, numbers, cell)
    torch.testing.assert_close(net(super_positions, super_numbers, super_cell), per_atom.repeat(len(images)),
                               atol=1e-11, rtol=0)


def test_single_atom_in_tiny_cell_sees_only_its_images(net):
    # Self-image pairs (i == j, shift != 0) only; a 2x2x2 supercell agrees.
    cell = torch.tensor([[1.9, 0.0, 0.0], [0.3, 2.1, 0.0], [0.2, -0.4, 2.0]], dtype=torch.float64)
    positions = torch.tensor([[0.3, 0.2, 0.1]], dtype=torch.float64)
    numbers = torch.tensor([14])
    alone = net(positions, numbers, None)
    in_cell = net(positions, numbers, cell)
    assert (in_cell - alone).abs().item() > 1e-4
    shifts = torch.cartesian_prod(*[torch.arange(2, dtype=torch.float64)] * 3)
    super_positions = positions + shifts @ cell
    energies = net(super_positions, numbers.repeat(8), 2 * cell)
    torch.testing.assert_close(energies, in_cell.repeat(8), atol=1e-11, rtol=0)


def test_open_system_equals_large_box(net, open_system):
    positions, numbers, _ = open_system
    box = 20.0 * torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(net(positions + 5.0, numbers, box), net(positions, numbers, None), atol=1e-12, rtol=0)


def test_separated_fragments_are_additive(net, open_system):
    positions, numbers, _ = open_system
    far = positions + torch.tensor([net.r_max + 4.0, 0.0, 0.0], dtype=torch.float64)
    both = net(torch.cat([positions, far]), torch.cat([numbers, numbers]))
    alone = net(positions, numbers)
    torch.testing.assert_close(both, torch.cat([alone, alone]), atol=1e-12, rtol=0)
