"""DFT-D3 reference data and damping parameters, read from the ``tad-dftd3`` package.

The D3 model (Grimme, Antony, Ehrlich, Krieg, J. Chem. Phys. 132, 154104 (2010)) needs, per
element, covalent radii (coordination numbers), reference coordination numbers and the
reference C6 coefficients between them, the <r⁴>/<r²> expectation values (C8) and, for zero
damping, pairwise cut-off radii R0.  All of them come from ``tad-dftd3`` (Apache-2.0) and its
dependency ``tad-mctc``, which carry the same tables as the reference Fortran code
(simple-dftd3); the damping parameters come from the ``parameters.toml`` that ``tad-dftd3``
vendors verbatim from simple-dftd3.

The tables are read once, when a :class:`~openmm_pqeq.dispersion.D3Dispersion` is built, and
converted from atomic units to the model's units (Å, eV) with the constants of
:mod:`openmm_pqeq.units`.  The module keeps them as buffers, so a saved TorchScript model needs
neither this package nor any file.

>>> tables = reference_tables()
>>> tuple(tables["c6"].shape)
(104, 104, 7, 7)
>>> damping_parameters("pbe", "zero")
{'s6': 1.0, 's8': 0.722, 'rs6': 1.217, 'rs8': 1.0, 'alp': 14.0}
"""

from __future__ import annotations

import sys
from importlib import resources
from typing import Dict, List, Mapping, Optional

import torch

from openmm_pqeq.units import BOHR_TO_ANGSTROM, HARTREE_TO_EV

__all__ = [
    "DAMPINGS",
    "MAX_Z_D3",
    "available_functionals",
    "damping_parameters",
    "reference_tables",
]

#: Damping functions offered: ``"zero"`` (Grimme et al. 2010, Chai–Head-Gordon form) and ``"bj"``
#: (rational / Becke–Johnson, Grimme, Ehrlich, Goerigk, J. Comput. Chem. 32, 1456 (2011)).
DAMPINGS = ("zero", "bj")

#: Largest atomic number with D3 reference data (Lr).
MAX_Z_D3: int = 103

# Parameters each damping takes, with the defaults of the reference code.  Lengths that carry a
# unit (a2 of BJ damping) are in bohr, as published; s6, s8, rs6, rs8, a1, alp are unitless.
_REQUIRED = {"zero": ("s8", "rs6"), "bj": ("s8", "a1", "a2")}
_DEFAULTS = {
    "zero": {"s6": 1.0, "rs8": 1.0, "alp": 14.0},
    "bj": {"s6": 1.0},
}
_ORDER = {"zero": ("s6", "s8", "rs6", "rs8", "alp"), "bj": ("s6", "s8", "a1", "a2")}


def reference_tables() -> Dict[str, torch.Tensor]:
    """D3 reference tables in Å and eV, as float64 tensors indexed by atomic number.

    Returns
    -------
    dict
        ``"c6"`` ``(104, 104, 7, 7)`` eV·Å⁶, reference C6 of element pairs and their reference
        systems; ``"cn_ref"`` ``(104, 7)``, reference coordination numbers, -1 where an element
        has fewer than 7 references; ``"n_ref"`` ``(104,)`` int64, number of references (they
        come first in each row); ``"rcov"`` ``(104,)`` Å, covalent radii scaled by 4/3 (the
        k2 of the paper); ``"r0ab"`` ``(104, 104)`` Å, pairwise cut-off radii of zero damping;
        ``"sqrt_q"`` ``(104,)`` Å, ``sqrt(0.5 sqrt(Z) <r⁴>/<r²>)``, so that
        ``C8 = 3 C6 sqrt_q[i] sqrt_q[j]``.  Index 0 is a placeholder.
    """
    from tad_dftd3.data import R4R2
    from tad_dftd3.reference import Reference
    from tad_mctc.data.radii import COV_D3, VDW_PAIRWISE
    from tad_mctc.units.length import AA2AU

    dd = {"dtype": torch.float64, "device": torch.device("cpu")}
    ref = Reference(**dd)
    n = MAX_Z_D3 + 1
    cn_ref = ref.cn.detach().clone()[:n]
    # C6 and <r⁴>/<r²> are tabulated in atomic units.  The radii are published in Å and
    # tad-mctc converts them to bohr with its own AA2AU: dividing by it restores the Å values.
    # Its pairwise radii passed through single precision (relative error 1e-7, which the
    # steep zero damping turns into 1e-7 relative energy errors); they are published with
    # four decimals in Å, so rounding restores them exactly.
    c6 = ref.c6.detach().clone()[:n, :n] * (HARTREE_TO_EV * BOHR_TO_ANGSTROM**6)
    sqrt_q = R4R2(**dd)[:n] * BOHR_TO_ANGSTROM
    rcov = COV_D3(**dd)[:n] / AA2AU
    r0ab_raw = VDW_PAIRWISE(**dd)[:n, :n] / AA2AU
    r0ab = torch.round(r0ab_raw, decimals=4)
    if float((r0ab - r0ab_raw).abs().max()) > 1e-6:
        raise ValueError("tad-mctc's pairwise D3 radii are not the four-decimal published table")
    n_ref = (cn_ref >= 0).sum(dim=1)
    # The model takes the first n_ref[z] references of each element: check that layout.
    bad = [z for z in range(1, n) if n_ref[z] == 0 or not bool((cn_ref[z, : n_ref[z]] >= 0).all())]
    if bad:
        raise ValueError(f"tad-dftd3 reference systems are missing or out of order for Z = {bad}")
    return {
        "c6": c6, "cn_ref": cn_ref, "n_ref": n_ref, "rcov": rcov, "r0ab": r0ab, "sqrt_q": sqrt_q
    }


def _parameter_file() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - tad-dftd3 installs tomli on Python < 3.11
        import tomli as tomllib
    text = resources.files("tad_dftd3.param").joinpath("parameters.toml").read_bytes()
    return tomllib.loads(text.decode("utf-8"))


def available_functionals(damping: str) -> List[str]:
    """Names of the functionals with published D3 parameters for ``damping`` (``"zero"``/``"bj"``).

    >>> {"pbe", "pbesol", "b3lyp"} <= set(available_functionals("zero"))
    True
    >>> "r2scan" in available_functionals("bj")
    True
    """
    _check_damping(damping)
    table = _parameter_file()["parameter"]
    return sorted(name for name, entry in table.items() if damping in entry.get("d3", {}))


def damping_parameters(
    functional: str, damping: str, parameters: Optional[Mapping[str, float]] = None
) -> Dict[str, float]:
    """D3 damping parameters of ``functional`` or, when given, of explicit ``parameters``.

    Parameters
    ----------
    functional : str
        Functional name, case- and hyphen-insensitive, with simple-dftd3's aliases
        (``"PBE"``, ``"b3lyp5"``, ``"r2SCAN"``).  Not looked up when ``parameters`` is given.
    damping : str
        ``"zero"`` or ``"bj"``.
    parameters : mapping, optional
        Explicit values.  Zero damping: ``s8``, ``rs6`` required; ``s6`` (1.0), ``rs8`` (1.0),
        ``alp`` (14.0) optional.  BJ damping: ``s8``, ``a1``, ``a2`` (bohr, as published)
        required; ``s6`` (1.0) optional.

    Returns
    -------
    dict
        The parameters as floats, in the order listed above; ``a2`` stays in bohr.  The
        three-body scale ``s9`` of the published sets is not returned: this D3 is two-body.

    >>> damping_parameters("PBE", "bj")
    {'s6': 1.0, 's8': 0.7875, 'a1': 0.4289, 'a2': 4.4407}
    >>> damping_parameters("custom", "bj", {"s8": 1.0, "a1": 0.4, "a2": 5.0})
    {'s6': 1.0, 's8': 1.0, 'a1': 0.4, 'a2': 5.0}
    """
    _check_damping(damping)
    if parameters is None:
        values = _published_parameters(functional, damping)
    else:
        allowed = _ORDER[damping]
        unknown = sorted(set(parameters) - set(allowed))
        if unknown:
            raise ValueError(
                f"`parameters` has keys {unknown} not used by {damping!r} damping "
                f"(allowed: {list(allowed)}; this D3 is two-body, so there is no s9)"
            )
        missing = [key for key in _REQUIRED[damping] if key not in parameters]
        if missing:
            raise ValueError(
                f"`parameters` {dict(parameters)} lacks {missing}, required for {damping!r} damping"
            )
        values = {**_DEFAULTS[damping], **{k: float(v) for k, v in parameters.items()}}
    return {key: float(values[key]) for key in _ORDER[damping]}


def _published_parameters(functional: str, damping: str) -> Dict[str, float]:
    from tad_dftd3.param import get_functional_params

    try:
        found = get_functional_params(functional, damping=damping, dtype=torch.float64)
    except (KeyError, ValueError):
        raise ValueError(
            f"no D3 {damping!r}-damping parameters for functional {functional!r}; "
            f"options are {available_functionals(damping)} (or pass `parameters`)"
        ) from None
    return {key: float(value) for key, value in found.items()}


def _check_damping(damping: str) -> None:
    if damping not in DAMPINGS:
        raise ValueError(f"unknown D3 damping {damping!r} (options are {list(DAMPINGS)})")
