"""Trainable per-element PQEq parameters, kept inside physical bounds (docs/method/learning.md).

The tabulated parameters (χ, J, R, K_s per element) are the starting point.  Each freed
(element, parameter) entry gets one raw, unbounded ``nn.Parameter`` θ (initialized to 0, which
reproduces the table exactly) mapped through a smooth, bounded transform:

==========  ===========================================  ===============================
parameter   transform                                    bounds
==========  ===========================================  ===============================
``chi``     χ = χ₀ + w · tanh θ            (w in eV)     χ₀ ± w
``J``       J = J₀ · exp(ln f · tanh θ)                  [J₀/f, J₀·f]
``R``       R = R₀ · exp(ln f · tanh θ)  (core = shell)  [R₀/f, R₀·f]; a = λ/(2R²) follows
``Ks``      K_s = K_s₀ · exp(ln f · tanh θ)              [K_s₀/f, K_s₀·f]
==========  ===========================================  ===============================

tanh is a sigmoid scaled to (−1, 1), so a value can never leave its bounds, however large θ
grows, and the transform is smooth everywhere.  χ is shifted additively (only differences of χ
matter, and χ can be refined by a few eV either way); J, R and K_s are positive and scaled
multiplicatively.

Configuration (the ``trainable`` argument of :class:`~openmm_pqeq.electrostatics.PQEq`, stored
in model files)::

    {"chi": ["H", "C", "O"],          # elements whose χ is free ("all": every supported element)
     "J": "all", "R": [], "Ks": "all",
     "bounds": {"chi": 2.0, "J": 2.0, "R": 1.5, "Ks": 5.0}}   # w (eV) for χ, factors f otherwise

Frozen by default (``trainable=None`` or no element listed): the module then has no parameters
and the PQEq outputs are bit-identical to the tables.

Bond hardnesses of the split-charge model are per element, ``"kappa": ["C", "H"]`` (or ``"all"``),
and optionally per element pair, ``"kappa_pairs": ["C-H"]``, with ``"bounds": {"kappa": f}``; their
length slopes by ``"kappa_slope": true`` (one common shift) and ``"kappa_slope_pairs": [...]``
(per pair), with ``"bounds": {"kappa_slope": w}`` (1/Å); bonded shell springs by
``"Ks_bonds": ["O:C", ...]`` or ``"all"`` (``"bounds": {"Ks_bonds": w}``);
:func:`split_pair_spec` hands them to :class:`~openmm_pqeq.electrostatics.bond_hardness.BondHardness`.
"""

from __future__ import annotations

import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

from ..elements import SYMBOLS, atomic_number
from .bond_hardness import DEFAULT_KAPPA_BOUND, DEFAULT_SHELL_BOUND, DEFAULT_SLOPE_BOUND

#: The refinable PQEq parameters, in the order of the tables.
TRAINABLE_NAMES: Tuple[str, ...] = ("chi", "J", "R", "Ks")
#: Default bounds: half-width in eV for χ, scale factor f (value within [v₀/f, v₀·f]) otherwise.
DEFAULT_BOUNDS: Dict[str, float] = {"chi": 2.0, "J": 2.0, "R": 1.5, "Ks": 5.0}


class FreeBondHardness(NamedTuple):
    """The bond-hardness entries of a ``trainable`` specification: ``elements`` and ``pairs``
    (None, a list of element symbols / pair names, or ``"all"``), their scale-factor ``bound``,
    whether the common shift of the length slopes is free (``slope``), the pairs whose own slope
    is free (``slope_pairs``: None, a list or ``"all"``) and their half-width ``slope_bound`` (1/Å),
    the directed pairs whose bonded shell-spring coefficient is free (``shell``: None, a list like
    ``["O:C"]`` or ``"all"``) and its half-width ``shell_bound``."""
    elements: object
    pairs: object
    bound: float
    slope: bool
    slope_pairs: object
    slope_bound: float
    shell: object
    shell_bound: float


def split_pair_spec(spec: Optional[dict], default_bound: float = DEFAULT_KAPPA_BOUND,
                    default_slope_bound: float = DEFAULT_SLOPE_BOUND,
                    default_shell_bound: float = DEFAULT_SHELL_BOUND) -> Tuple[Optional[dict], FreeBondHardness]:
    """``(per-element spec, FreeBondHardness)``: the bond-hardness entries of a ``trainable``
    specification taken out of it (``kappa``: None, a list of element symbols or ``"all"``;
    ``kappa_pairs``: None, a list of pair names or ``"all"``; ``kappa_slope``: true to free a
    common shift of the length slopes; ``kappa_slope_pairs``: pairs with their own free slope;
    ``Ks_bonds``: directed pairs ``"O:C"`` (or ``"all"``) whose bonded shell-spring coefficient is
    free; ``bounds``: ``kappa`` factor, ``kappa_slope`` half-width in 1/Å, ``Ks_bonds`` half-width)."""
    if not spec:
        return spec, FreeBondHardness(None, None, default_bound, False, None, default_slope_bound, None,
                                      default_shell_bound)
    spec = dict(spec)
    elements = spec.pop("kappa", None)
    pairs = spec.pop("kappa_pairs", None)
    slope = spec.pop("kappa_slope", False)
    slope_pairs = spec.pop("kappa_slope_pairs", None)
    shell = spec.pop("Ks_bonds", None)
    if not isinstance(slope, bool):
        raise ValueError(f"trainable 'kappa_slope' is {slope!r}; give true (free the bond-length slope) or false")
    bounds = dict(spec.get("bounds") or {})
    bound = float(bounds.pop("kappa", default_bound))
    slope_bound = float(bounds.pop("kappa_slope", default_slope_bound))
    shell_bound = float(bounds.pop("Ks_bonds", default_shell_bound))
    if "bounds" in spec:
        spec["bounds"] = bounds
    return spec, FreeBondHardness(elements, pairs, bound, slope, slope_pairs, slope_bound, shell, shell_bound)


def split_anisotropy_spec(spec: Optional[dict]) -> Tuple[Optional[dict], Optional[Union[str, List[str]]], float]:
    """``(per-element spec, free pairs, bound)``: the anisotropic shell-spring entries of a
    ``trainable`` specification taken out of it (``Ks_aniso``: None, a list of directed pairs like
    ``"O:H"`` or ``"all"``; ``bounds: {Ks_aniso: w}``, the half-width, default
    :data:`.shell_anisotropy.DEFAULT_ANISOTROPY_BOUND`)."""
    from .shell_anisotropy import DEFAULT_ANISOTROPY_BOUND

    if not spec:
        return spec, None, DEFAULT_ANISOTROPY_BOUND
    spec = dict(spec)
    free = spec.pop("Ks_aniso", None)
    bound = DEFAULT_ANISOTROPY_BOUND
    if "bounds" in spec:
        bounds = dict(spec["bounds"] or {})
        bound = float(bounds.pop("Ks_aniso", bound))
        spec["bounds"] = bounds
    return spec, free, bound


def normalize_spec(spec: Optional[dict], supported: Sequence[int]) -> Dict[str, object]:
    """Validated trainable-parameter specification with element lists as sorted atomic numbers.

    ``supported``: the atomic numbers the PQEq module supports.  An error for unknown keys,
    elements the module does not support, or bounds that are not positive (factors > 1)."""
    spec = dict(spec or {})
    unknown = set(spec) - set(TRAINABLE_NAMES) - {"bounds"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} in the PQEq `trainable` specification; "
                         f"allowed: {list(TRAINABLE_NAMES)}, 'kappa', 'kappa_pairs', 'kappa_slope', 'kappa_slope_pairs' and 'Ks_bonds' (bond hardnesses "
                         "and bonded shell springs, "
                         "charge_transfer 'split'), 'Ks_aniso' (anisotropic shell springs) and 'bounds'")
    bounds = dict(DEFAULT_BOUNDS)
    user_bounds = spec.get("bounds") or {}
    bad = set(user_bounds) - set(TRAINABLE_NAMES)
    if bad:
        raise ValueError(f"unknown parameters {sorted(bad)} in trainable bounds; allowed: {list(TRAINABLE_NAMES)}")
    bounds.update({k: float(v) for k, v in user_bounds.items()})
    for name, value in bounds.items():
        if name == "chi" and not value > 0:
            raise ValueError(f"the χ bound is a half-width in eV and must be positive, got {value}")
        if name != "chi" and not value > 1:
            raise ValueError(f"the {name} bound is a scale factor and must be > 1, got {value}")
    out: Dict[str, object] = {"bounds": bounds}
    supported_set = set(int(z) for z in supported)
    for name in TRAINABLE_NAMES:
        value = spec.get(name, [])
        if value == "all":
            zs = sorted(supported_set)
        elif isinstance(value, str):
            raise ValueError(f"trainable {name!r}: give a list of elements or 'all', got {value!r}")
        else:
            zs = sorted({atomic_number(e) for e in value})
            missing = [SYMBOLS[z] for z in zs if z not in supported_set]
            if missing:
                raise ValueError(f"trainable {name!r}: elements {missing} are not supported by this PQEq "
                                 "module (give them in `elements`)")
        out[name] = zs
    return out


class BoundedPQEqParameters(torch.nn.Module):
    """Maps raw parameters onto the tabulated per-Z tables (see the module docstring).

    Attributes ``raw_<name>`` are ``nn.Parameter`` (k,) float64 for the k freed elements of
    ``<name>``, or empty non-persistent buffers when none is freed (so frozen modules have no
    parameters and model files without them keep loading).  ``index_<name>`` are the atomic
    numbers and ``width_<name>`` the transform widths (w for χ, ln f otherwise)."""

    def __init__(self, spec: Optional[dict], supported: Sequence[int]):
        super().__init__()
        spec_n = normalize_spec(spec, supported)
        self.spec: Dict[str, List[int]] = {name: list(spec_n[name]) for name in TRAINABLE_NAMES}  # type: ignore[arg-type]
        self.bounds: Dict[str, float] = dict(spec_n["bounds"])  # type: ignore[arg-type]
        self.n_free: int = sum(len(v) for v in self.spec.values())
        for name in TRAINABLE_NAMES:
            zs = self.spec[name]
            width = self.bounds[name] if name == "chi" else math.log(self.bounds[name])
            self.register_buffer("index_" + name, torch.tensor(zs, dtype=torch.long), persistent=False)
            self.register_buffer("width_" + name, torch.full((len(zs),), width, dtype=torch.float64),
                                 persistent=False)
            if zs:
                setattr(self, "raw_" + name, torch.nn.Parameter(torch.zeros(len(zs), dtype=torch.float64)))
            else:
                self.register_buffer("raw_" + name, torch.zeros(0, dtype=torch.float64), persistent=False)

    @torch.jit.ignore
    def raw_parameters(self) -> List[torch.nn.Parameter]:
        """The freed raw parameters (empty when frozen)."""
        return [p for p in self.parameters()]

    def forward(self, chi: torch.Tensor, J: torch.Tensor, Ks: torch.Tensor, exponent: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Effective per-Z tables ``(χ, J, K_s, a)`` from the tabulated ones (returned
        unchanged, the same tensors, for frozen parameters)."""
        if self.index_chi.shape[0] > 0:
            idx = self.index_chi
            chi = chi.index_put((idx,), chi.index_select(0, idx) + self.width_chi * torch.tanh(self.raw_chi))
        if self.index_J.shape[0] > 0:
            idx = self.index_J
            J = J.index_put((idx,), J.index_select(0, idx) * torch.exp(self.width_J * torch.tanh(self.raw_J)))
        if self.index_Ks.shape[0] > 0:
            idx = self.index_Ks
            Ks = Ks.index_put((idx,), Ks.index_select(0, idx) * torch.exp(self.width_Ks * torch.tanh(self.raw_Ks)))
        if self.index_R.shape[0] > 0:
            idx = self.index_R
            # a = λ / (2 R²): R scaled by s gives a / s²
            exponent = exponent.index_put((idx,), exponent.index_select(0, idx)
                                          * torch.exp(-2.0 * self.width_R * torch.tanh(self.raw_R)))
        return chi, J, Ks, exponent

    @torch.jit.ignore
    def values(self, table: Dict[str, torch.Tensor]) -> Dict[str, Dict[str, float]]:
        """Current effective values ``{symbol: {"chi_eV", "J_eV", "R_A", "Ks_eV_per_A2"}}`` of
        the freed entries; ``table`` holds the tabulated per-Z ``chi``, ``J``, ``R``, ``Ks``."""
        out: Dict[str, Dict[str, float]] = {}
        units = {"chi": "chi_eV", "J": "J_eV", "R": "R_A", "Ks": "Ks_eV_per_A2"}
        with torch.no_grad():
            for name in TRAINABLE_NAMES:
                raw = getattr(self, "raw_" + name)
                width = getattr(self, "width_" + name)
                for k, z in enumerate(self.spec[name]):
                    base = float(table[name][z])
                    t = float(torch.tanh(raw[k]))
                    value = base + float(width[k]) * t if name == "chi" else base * math.exp(float(width[k]) * t)
                    out.setdefault(SYMBOLS[z], {})[units[name]] = value
        return out
