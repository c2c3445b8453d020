"""Shared helpers for the D3 tests: structures, our evaluation and the simple-dftd3 reference."""

from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from openmm_pqeq.units import BOHR_TO_ANGSTROM, HARTREE_TO_EV


def _rattled(atoms: Atoms, seed: int, stdev: float = 0.05) -> Atoms:
    atoms = atoms.copy()
    atoms.rattle(stdev=stdev, seed=seed)
    return atoms


def _heavy_cluster() -> Atoms:
    """An open cluster of light, transition-metal, lanthanide and actinide atoms (up to Pu)."""
    rng = np.random.default_rng(7)
    numbers = [1, 6, 8, 26, 29, 53, 57, 64, 78, 79, 82, 92, 94, 55]
    grid = np.array([(x, y, z) for x in range(3) for y in range(3) for z in range(2)], float)
    positions = 2.6 * grid[: len(numbers)] + rng.normal(0.0, 0.15, (len(numbers), 3))
    return Atoms(numbers=numbers, positions=positions)


def _triclinic_small() -> Atoms:
    """Three atoms in a skewed cell of ~3-4 Å edges: every pair has many images within 12.5 Å."""
    cell = np.array([[3.1, 0.0, 0.0], [1.2, 3.4, 0.0], [-0.7, 0.9, 3.8]])
    frac = np.array([[0.05, 0.1, 0.0], [0.45, 0.55, 0.4], [0.8, 0.2, 0.7]])
    return Atoms(numbers=[6, 8, 14], scaled_positions=frac, cell=cell, pbc=True)


#: Structures for the comparison with simple-dftd3, by name.
STRUCTURES: Dict[str, Callable[[], Atoms]] = {
    "ethanol": lambda: molecule("CH3CH2OH"),
    "benzene-water": lambda: molecule("C6H6") + Atoms(
        "OH2", [[0.0, 0.0, 3.2], [0.76, 0.0, 3.8], [-0.76, 0.0, 3.8]]
    ),
    "heavy-cluster": _heavy_cluster,
    "si-diamond-fcc-primitive": lambda: _rattled(bulk("Si", "diamond", a=5.43), 1),
    "nacl-rocksalt-cubic": lambda: _rattled(bulk("NaCl", "rocksalt", a=5.64, cubic=True), 2),
    "zno-wurtzite-hexagonal": lambda: _rattled(bulk("ZnO", "wurtzite", a=3.25, c=5.21), 3),
    "cu-fcc-sheared": lambda: _rattled(
        Atoms("Cu2", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]],
              cell=[[3.6, 0, 0], [0.9, 3.5, 0], [0.4, -0.6, 7.2]], pbc=True), 4),
    "triclinic-small": _triclinic_small,
}


def _evaluate(d3: torch.nn.Module, atoms: Atoms, dtype: torch.dtype = torch.float64):
    """Energy (eV), forces (N, 3) eV/Å and virial dE/dε (3, 3) eV from ``d3`` by autograd."""
    periodic = bool(atoms.pbc.any())
    positions = torch.tensor(atoms.positions, dtype=dtype, requires_grad=True)
    strain = torch.zeros(3, 3, dtype=dtype, requires_grad=True)
    deform = torch.eye(3, dtype=dtype) + strain
    cell = torch.tensor(np.array(atoms.cell), dtype=dtype) @ deform if periodic else None
    energy = d3(positions @ deform, torch.tensor(atoms.numbers), cell)
    grad, virial = torch.autograd.grad(energy, [positions, strain])
    return energy.item(), -grad.numpy(), virial.numpy()


def _dftd3_reference(
    atoms: Atoms,
    damping: str,
    functional: Optional[str],
    cutoff: Optional[float] = None,
    cn_cutoff: Optional[float] = None,
    width: float = 0.0,
    parameters: Optional[dict] = None,
):
    """Energy (eV), forces (eV/Å) and virial (eV) from simple-dftd3, two-body only (s9 = 0).

    Cut-offs in Å; ``None`` keeps simple-dftd3's defaults (60 bohr, 40 bohr for CN).
    """
    from dftd3.interface import DispersionModel, RationalDampingParam, ZeroDampingParam

    periodic = bool(atoms.pbc.any())
    model = DispersionModel(
        np.asarray(atoms.numbers),
        atoms.positions / BOHR_TO_ANGSTROM,
        lattice=np.array(atoms.cell) / BOHR_TO_ANGSTROM if periodic else None,
        periodic=np.array(atoms.pbc) if periodic else None,
    )
    if cutoff is not None:
        model.set_realspace_cutoff(
            disp2=cutoff / BOHR_TO_ANGSTROM,
            disp3=cutoff / BOHR_TO_ANGSTROM,
            cn=cn_cutoff / BOHR_TO_ANGSTROM,
            width2=width / BOHR_TO_ANGSTROM,
        )
    kind = ZeroDampingParam if damping == "zero" else RationalDampingParam
    param = kind(method=functional, atm=False) if parameters is None else kind(s9=0.0, **parameters)
    res = model.get_dispersion(param, grad=True)
    return (
        float(res["energy"]) * HARTREE_TO_EV,
        -res["gradient"] * HARTREE_TO_EV / BOHR_TO_ANGSTROM,
        res["virial"] * HARTREE_TO_EV,
    )


@pytest.fixture(params=sorted(STRUCTURES))
def structure(request) -> Atoms:
    """Each structure of :data:`STRUCTURES`."""
    return STRUCTURES[request.param]()


@pytest.fixture
def triclinic() -> Atoms:
    """The small triclinic cell of :func:`_triclinic_small`."""
    return _triclinic_small()


@pytest.fixture(name="evaluate")
def evaluate_fixture():
    """:func:`_evaluate`: energy, forces and virial of a D3 module by autograd."""
    return _evaluate


@pytest.fixture(name="dftd3_reference")
def dftd3_reference_fixture():
    """:func:`_dftd3_reference`: energy, forces and virial from simple-dftd3."""
    pytest.importorskip("dftd3.interface")
    return _dftd3_reference
