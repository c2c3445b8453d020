"""openmm_pqeq: an E(3)-equivariant ML potential with polarizable charge equilibration (PQEq),
uniform external fields and DFT-D3 dispersion, delivered as an OpenMM force.

Importing the package is light (no torch, no OpenMM); each public name loads its module on
first use.  The names users call first:

- OpenMM: :func:`create_system`, :func:`add_pqeq_force`, :class:`PQEqReporter`;
- model files: :func:`load_model`, :func:`save_model`, :func:`build_model`, :class:`PQEqModel`;
- ASE and quick evaluation: :class:`PQEqCalculator`, :func:`evaluate`;
- the terms of the energy: :class:`E0Network`, :class:`PQEq`, :class:`D3Dispersion`;
- response: :func:`born_charges`.

>>> import openmm_pqeq
>>> openmm_pqeq.__version__
'0.1.0'
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_PUBLIC = {
    "create_system": "openmm_pqeq.integrations.system",
    "add_pqeq_force": "openmm_pqeq.integrations.system",
    "PQEqReporter": "openmm_pqeq.integrations.reporters",
    "load_model": "openmm_pqeq.io",
    "save_model": "openmm_pqeq.io",
    "build_model": "openmm_pqeq.model",
    "PQEqModel": "openmm_pqeq.model",
    "PQEqCalculator": "openmm_pqeq.integrations.ase_calculator",
    "evaluate": "openmm_pqeq.single_point",
    "E0Network": "openmm_pqeq.nn.e0",
    "PQEq": "openmm_pqeq.electrostatics.pqeq",
    "D3Dispersion": "openmm_pqeq.dispersion.d3",
    "born_charges": "openmm_pqeq.electrostatics.response",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'openmm_pqeq' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
