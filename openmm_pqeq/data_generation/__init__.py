"""Reference data: sample water clusters and label structures with DFT through PySCF.

- :func:`sample_water_clusters` — random clusters (rigid placement with distance rules,
  intramolecular distortions, thermal jitter; optional fields and ions), reproducible by seed.
- :func:`label_atoms` — energy (eV), forces (eV/Å) and dipole (e·Å) of one structure with
  Kohn-Sham DFT (PySCF; PBE/def2-SVPD by default, no dispersion), net charge, spin and an
  optional uniform field (V/Å).
- :func:`label_file` — many structures, parallel over processes, resumable.

PySCF is optional and imported only when a calculation runs (``pip install pyscf``).
CLI: ``openmm-pqeq sample-water`` and ``openmm-pqeq label``.
"""

from __future__ import annotations

import importlib

__all__ = ["DFTSettings", "label_atoms", "label_file", "sample_water_clusters", "water_cluster"]

_WHERE = {
    "DFTSettings": "labelling",
    "label_atoms": "labelling",
    "label_file": "batch",
    "sample_water_clusters": "sampling",
    "water_cluster": "sampling",
}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
