"""Small E0 networks and structures for the tests of openmm_pqeq.nn (float64), as fixtures."""

import pytest
import torch

from openmm_pqeq.nn import E0Network

#: A fast network exercising l = 0, 1, 2 features and all path kinds (3 blocks: the middle one
#: maps l > 0 to l > 0; the last one computes scalars only).
TINY = dict(
    num_blocks=3,
    l_max=2,
    hidden_irreps="8x0e+4x1e+2x2e",
    num_bessel=6,
    r_max=3.0,
    radial_mlp=[8],
    avg_num_neighbors=8.0,
)
ELEMENTS = [1, 8, 14]


def _build(seed: int = 0, **overrides) -> E0Network:
    """A float64 network with non-trivial per-species scale and shift."""
    torch.manual_seed(seed)
    net = E0Network(ELEMENTS, **{**TINY, **overrides}).double()
    net.set_species_statistics(shift={1: -0.3, 8: -1.1, 14: -2.0}, scale={1: 0.7, 8: 1.3, 14: 0.9})
    return net


def _energy_and_forces(net, positions, numbers, cell=None):
    """Total energy (eV) and forces (N, 3) eV/Å by autograd."""
    positions = positions.detach().clone().requires_grad_(True)
    energy = net(positions, numbers, cell).sum()
    (grad,) = torch.autograd.grad(energy, positions)
    return energy.detach(), -grad


def _cluster(n: int = 8, seed: int = 1):
    """``n`` atoms (H, O, Si) in a 3.5 Å cube, no pair closer than 0.9 Å: positions, numbers."""
    g = torch.Generator().manual_seed(seed)
    points = []
    while len(points) < n:
        p = 3.5 * torch.rand(3, generator=g, dtype=torch.float64)
        if all(torch.linalg.vector_norm(p - q) > 0.9 for q in points):
            points.append(p)
    numbers = torch.tensor([ELEMENTS[k % 3] for k in range(n)])
    return torch.stack(points), numbers


def _small_cell():
    """Three atoms in a skewed cell smaller than r_max (many images, self-images included)."""
    cell = torch.tensor([[2.6, 0.0, 0.0], [0.7, 2.4, 0.0], [-0.5, 0.4, 2.8]], dtype=torch.float64)
    positions = torch.tensor([[0.1, 0.2, 0.3], [1.3, 0.9, 1.1], [2.4, 1.9, 2.2]], dtype=torch.float64)
    return positions, torch.tensor([8, 1, 14]), cell


@pytest.fixture(scope="module")
def make_net():
    """``make_net(seed=0, **overrides)``: a fresh float64 network (``TINY`` hyperparameters)."""
    return _build


@pytest.fixture(scope="module")
def net():
    return _build()


@pytest.fixture(scope="module")
def net_parity():
    """E(3) variant: odd and even features, harmonics 0e+1o+2e."""
    return _build(hidden_irreps="8x0e+2x0o+4x1o+4x1e+2x2e", parity=True)


@pytest.fixture(scope="session")
def energy_and_forces():
    """``energy_and_forces(net, positions, numbers, cell=None)`` -> (energy eV, forces (N, 3) eV/Å)."""
    return _energy_and_forces


@pytest.fixture
def open_system():
    """(positions, numbers, None): 8 atoms without a cell."""
    return (*_cluster(), None)


@pytest.fixture
def periodic_system():
    """(positions, numbers, cell): 3 atoms in a skewed cell smaller than r_max."""
    return _small_cell()


@pytest.fixture(params=["open", "periodic"])
def system(request):
    """Each of ``open_system`` and ``periodic_system``."""
    return request.getfixturevalue(f"{request.param}_system")
