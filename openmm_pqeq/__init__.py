"""openmm_pqeq: an E(3)-equivariant ML potential with polarizable charge equilibration (PQEq),
uniform external fields and DFT-D3 dispersion, delivered as an OpenMM force.

Importing the package is light (no torch); the public names below load on first use.

>>> import openmm_pqeq
>>> openmm_pqeq.__version__
'0.1.0'
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "PQEq": "openmm_pqeq.electrostatics.pqeq",
    "GaussianCoulomb": "openmm_pqeq.electrostatics.coulomb",
    "D3Dispersion": "openmm_pqeq.dispersion.d3",
    "E0Network": "openmm_pqeq.nn.e0",
    "evaluate": "openmm_pqeq.evaluate",
    "NeighborList": "openmm_pqeq.neighbors",
    "born_charges": "openmm_pqeq.electrostatics.response",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'openmm_pqeq' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
