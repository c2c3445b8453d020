"""PQEq parameter sets, looked up by atomic number.

Sets shipped as package data (``openmm_pqeq/data/pqeq_params.json``, made by
``tools/make_pqeq_params.py`` from the published tables):

- ``pqeq0``: Naserifar, Brooks, Goddard, J. Chem. Phys. 146, 124117 (2017).
- ``pqeq1``: pqeq0 with re-optimized χ, J for H C N O F Si P S Cl.
- ``pqeq3``: the later full table of the same authors.
- ``reaxnet``: the set of the published foundation model (Gao et al., Nat. Commun. 16,
  10484 (2025)): pqeq0, H N O P from pqeq1, refitted Li.

Refined sets (``openmm_pqeq/data/pqeq_refined.json`` and ``pqeq_water.json``, made by ``openmm-pqeq
fit-pqeq examples/fit_pqeq.yaml`` and ``examples/fit_pqeq_water.yaml``; provenance and test-split
metrics inside, :func:`provenance`):

- ``pqeq-refined``: reaxnet with χ, J, R, K_s of H C N O F Si P S Cl Li Na K Mg Ca refined
  against PBE/def2-SVPD dipoles, polarizabilities, field energies and electrostatic potentials
  (``examples/data/response_pbe.extxyz``).  For the physical (converged) mode.
- ``pqeq-split`` (``openmm_pqeq/data/pqeq_split.json``): the split-charge model
  (:mod:`.splitcharge`), χ, J, R, K_s and the bond hardnesses refined on the same data plus the
  training split of the larger organic molecules (``examples/data/organics_pbe.extxyz``) and of
  the water response set (``examples/fit_pqeq_split.yaml``).  Selecting it selects
  ``charge_transfer="split"`` with its bond hardnesses (:func:`charge_transfer_of`).
- ``pqeq-water``: reaxnet with χ (O), J, R, K_s of H and O refined against the water response
  set (``examples/data/water_response_pbe.extxyz``: monomers, gas-phase clusters and liquid
  cut-outs; dipoles, polarizabilities, ESP, atomic polar tensors) with one neutral charge group
  per molecule (``examples/fit_pqeq_water.yaml``).  For water models run with that rule.

Units: χ and J in eV, Z in e, R in Å, K_s in eV/Å².
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Dict, List, Sequence, Tuple, Union

import torch

from ..elements import atomic_number, symbol

#: Names of the shipped parameter sets.
PARAMETER_SETS = ("reaxnet", "pqeq0", "pqeq1", "pqeq3", "pqeq-refined", "pqeq-split", "pqeq-water", "pqeq-water-aniso")
#: Package-data files of refined sets (``openmm-pqeq fit-pqeq`` output), added to the tables.
REFINED_SET_FILES = ("data/pqeq_refined.json", "data/pqeq_split.json", "data/pqeq_water.json",
                     "data/pqeq_water_aniso.json")


@lru_cache(maxsize=1)
def _load_tables() -> dict:
    with resources.files("openmm_pqeq").joinpath("data/pqeq_params.json").open() as f:
        tables = json.load(f)
    for name in REFINED_SET_FILES:
        resource = resources.files("openmm_pqeq").joinpath(name)
        if resource.is_file():
            refined = json.loads(resource.read_text())
            tables["sets"][refined["name"]] = {"citation": refined["citation"], "elements": refined["elements"],
                                               "provenance": refined.get("provenance", {}),
                                               "metrics": refined.get("metrics", {}),
                                               "charge_transfer": refined.get("charge_transfer"),
                                               "shell_anisotropy": refined.get("shell_anisotropy")}
    return tables


def provenance(name: str) -> dict:
    """How a refined parameter set was made (configuration, data, split, metrics); ``{}`` for
    the published tables."""
    entry = _set(name)
    return {"provenance": entry.get("provenance", {}), "metrics": entry.get("metrics", {})}


def charge_transfer_of(name: str) -> Tuple[str, Dict[str, Any]]:
    """``(model, options)``: the charge-transfer model a set was made for (``"global"`` for the
    published tables and ``pqeq-refined``; ``"split"`` with its bond hardnesses and cutoffs,
    :func:`.bond_hardness.normalize_transfer`, for ``pqeq-split``)."""
    entry = _set(name).get("charge_transfer") or {}
    options = {k: v for k, v in entry.items() if k != "model"}
    return str(entry.get("model", "global")), options


def shell_anisotropy_of(name: str) -> Dict[str, float]:
    """The anisotropic shell-spring coefficients ``{"O:H": a}`` a set was fitted with
    (:mod:`.shell_anisotropy`; ``{}``: isotropic springs, every published table)."""
    return {str(k): float(v) for k, v in dict(_set(name).get("shell_anisotropy") or {}).items()}


@dataclass(frozen=True)
class ElementParameters:
    """PQEq parameters of one element (χ eV, J eV, Z e, R Å, K_s eV/Å²)."""

    chi: float
    J: float
    Z: float
    R: float
    Ks: float
    polarizable: bool


def citation(name: str) -> str:
    """Literature source of a parameter set."""
    return _set(name)["citation"]


def _set(name: str) -> dict:
    sets = _load_tables()["sets"]
    if name not in sets:
        raise ValueError(f"unknown PQEq parameter set {name!r}; options are {', '.join(sorted(sets))}")
    return sets[name]


def element_parameters(name: str, element: Union[str, int]) -> ElementParameters:
    """Parameters of ``element`` (symbol or Z) in set ``name``; a clear error if absent.

    >>> element_parameters("reaxnet", "O").Ks  # 414.04451 kcal/mol/Å² in eV/Å²
    17.954...
    """
    z = atomic_number(element)
    table = _set(name)["elements"]
    sym = symbol(z)
    if sym not in table:
        raise ValueError(
            f"element {sym} (Z={z}) has no parameters in PQEq set {name!r}; "
            f"supported: {' '.join(table)}"
        )
    row = table[sym]
    return ElementParameters(
        chi=row["chi_eV"], J=row["J_eV"], Z=row["Z_e"], R=row["R_A"],
        Ks=row["Ks_eV_per_A2"], polarizable=row["polarizable"],
    )


def supported_elements(name: str) -> List[int]:
    """Atomic numbers that have parameters in set ``name``."""
    return [atomic_number(s) for s in _set(name)["elements"]]


def parameter_table(name: str, elements: Sequence[Union[str, int]]) -> Dict[str, torch.Tensor]:
    """Per-Z lookup tables ``(max Z + 1,)`` float64 for the given elements.

    Keys: ``chi``, ``J``, ``Z``, ``R``, ``Ks``, ``polarizable`` (1.0/0.0) and ``supported``
    (1.0 for the elements asked for).  Rows of other atomic numbers are zero.
    """
    zs = sorted({atomic_number(e) for e in elements})
    if not zs:
        raise ValueError("`elements` is empty: give the elements the model must support")
    size = max(zs) + 1
    out = {k: torch.zeros(size, dtype=torch.float64) for k in ("chi", "J", "Z", "R", "Ks", "polarizable", "supported")}
    for z in zs:
        p = element_parameters(name, z)
        out["chi"][z], out["J"][z], out["Z"][z], out["R"][z] = p.chi, p.J, p.Z, p.R
        out["Ks"][z] = p.Ks if p.polarizable else 0.0
        out["polarizable"][z] = 1.0 if p.polarizable else 0.0
        out["supported"][z] = 1.0
    return out
