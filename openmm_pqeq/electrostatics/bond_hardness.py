"""Bond hardness of the split-charge model (docs/method/splitcharge.md).

A bond b between atoms of elements Z_i and Z_j at distance r_b has the hardness

    κ_b = κ⁰_{Z_i Z_j} exp(γ (r_b − R_i − R_j)) / g(r_b)²   (eV/e²),

with g the smooth switch of :func:`smooth_switch` between r_on = f_on (R_i + R_j) and
r_c = f_c (R_i + R_j) (covalent radii R, ase.data).  The length slope γ (1/Å; one for all
pairs, 0 by default, or a pair's own ``pair_slope``) makes a bond shorter than the radius sum softer and a longer one harder,
the way bond order falls with bond length (Pauling, J. Am. Chem. Soc. 69, 542 (1947):
n = exp((r₁ − r)/0.3 Å), i.e. γ ≈ 3.3/Å for a softness proportional to bond order).  With it a
double bond (C=O 1.21 Å) or an aromatic one (C–C 1.39 Å) carries charge more easily than a single
bond of the same elements (C–O 1.42 Å, C–C 1.53 Å), which one κ⁰ per pair cannot express.  The pair constant κ⁰ comes from one bond
hardness κ_Z per element and a combination rule,

    κ⁰_ij = √(κ_i κ_j)   ("geometric", default)   or   ½ (κ_i + κ_j)   ("arithmetic"),

so n elements have n constants, not n(n+1)/2; an element pair may still be given its own κ⁰
(``hardness``), which then replaces the combination.  Elements not listed have
``default_hardness``.

Pairs a fit has no data for: a fit of per-pair κ⁰ moves only the pairs that form bonds in its
training structures.  :meth:`BondHardness.record` with those pairs (``seen``) keeps their own κ⁰
and gives every element the κ_Z that best reproduces them under the geometric rule, a least-squares
fit of ln κ⁰_ij ≈ ½ (ln κ_i + ln κ_j) (:func:`element_hardness_from_pairs`), so a pair without data
gets √(κ_i κ_j) from its elements instead of ``default_hardness``.

Bonded shell springs.  The same bonds can stiffen or soften the shells of their atoms:

    K_s,i = K_s,Z_i · exp(Σ_{b ∋ i} c_{Z_i←Z_j} g(r_b)),

with one coefficient c per directed element pair (``shell_bonds`` {"O:C": c}: the shell of O
bonded to C; 0 by default).  An oxygen bonded to two hydrogens (water) and one bonded to two
carbons (an ether), or a chlorine in an anion and one bonded to carbon, then have different
polarizabilities, which one K_s per element cannot give.  The factor is smooth (the switch g),
so energy and forces stay continuous as bonds form and break.

Trainable (bounded, like the per-element χ, J, R, K_s of :mod:`.trainable`): the κ_Z of chosen
elements and the κ⁰ of chosen pairs, each ``value = start · f^tanh(θ)`` with θ = 0 at the start,
and the length slopes: one shift of all of them, and the own slope of chosen pairs, each
``γ = γ_start + w tanh(θ)`` (half-width w in 1/Å); and the shell coefficients of chosen directed
pairs, ``c = c_start + w tanh(θ)``.
"""

from __future__ import annotations

import math
from typing import Collection, Dict, List, Optional, Sequence, Set, Tuple, Union

import torch

from ..elements import SYMBOLS, atomic_number

#: Defaults of the split-charge options (``transfer`` argument of :class:`~.pqeq.PQEq`).
DEFAULT_TRANSFER: Dict[str, object] = {"default_hardness": 5.0, "element_hardness": {}, "combination": "geometric",
                                       "hardness": {}, "onset": 1.1, "cutoff": 1.5, "length_slope": 0.0,
                                       "pair_slope": {}, "shell_bonds": {}}
#: Combination rules of the per-element bond hardnesses.
COMBINATION_RULES = ("geometric", "arithmetic")
#: Default bound of trainable bond hardnesses: κ within [κ_start / f, κ_start · f].
DEFAULT_KAPPA_BOUND: float = 20.0
#: Default half-width (1/Å) of a trainable length slope: γ within γ_start ± w.
DEFAULT_SLOPE_BOUND: float = 6.0
#: Default half-width of a trainable shell coefficient: c within c_start ± w (a factor e^{±w} per bond).
DEFAULT_SHELL_BOUND: float = 1.0


def pair_name(z_a: int, z_b: int) -> str:
    """Element-pair name, lighter element first (``"H-C"``, ``"C-O"``)."""
    lo, hi = min(z_a, z_b), max(z_a, z_b)
    return SYMBOLS[lo] + "-" + SYMBOLS[hi]


def parse_pair(name: str) -> Tuple[int, int]:
    """Atomic numbers ``(lighter, heavier)`` of an element-pair name like ``"C-H"`` or ``"O-H"``."""
    parts = str(name).split("-")
    if len(parts) != 2:
        raise ValueError(f"element pair {name!r}: write it as two element symbols joined by '-', e.g. 'C-H'")
    za, zb = atomic_number(parts[0]), atomic_number(parts[1])
    return min(za, zb), max(za, zb)


def directed_name(z_center: int, z_neighbor: int) -> str:
    """Name of a directed element pair, the atom whose shell it sets first: ``"O:C"``."""
    return SYMBOLS[z_center] + ":" + SYMBOLS[z_neighbor]


def parse_directed(name: str) -> Tuple[int, int]:
    """Atomic numbers ``(center, neighbor)`` of a directed pair name like ``"O:C"``."""
    parts = str(name).split(":")
    if len(parts) != 2:
        raise ValueError(f"shell bond {name!r}: write it as the element whose shell it sets, ':', and its bonded "
                         "neighbour, e.g. 'O:C'")
    return atomic_number(parts[0]), atomic_number(parts[1])


def _positive(value, what: str) -> float:
    if not float(value) > 0:
        raise ValueError(f"{what} is {value} eV/e² but must be positive")
    return float(value)


def normalize_transfer(transfer: Optional[dict]) -> Dict[str, object]:
    """Validated split-charge options (see :data:`DEFAULT_TRANSFER`): ``default_hardness`` κ
    (eV/e²) of elements not listed, ``element_hardness`` {element: κ_Z}, ``combination``
    (``"geometric"`` or ``"arithmetic"``), ``hardness`` {pair: κ⁰} (replaces the combination for
    that pair), ``onset`` f_on and ``cutoff`` f_c (multiples of the covalent-radius sum) and
    ``length_slope`` γ (1/Å), ``pair_slope`` {pair: γ} (replaces it for that pair), ``shell_bonds``
    {"O:C": c} (the bonded shell-spring coefficients).  Unknown
    keys, non-positive hardnesses, an unknown rule, ``cutoff <= onset`` and a non-finite slope
    are errors."""
    given = dict(transfer or {})
    unknown = set(given) - set(DEFAULT_TRANSFER)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} in the split-charge `transfer` options; "
                         f"allowed: {sorted(DEFAULT_TRANSFER)}")
    values = {k: v for k, v in DEFAULT_TRANSFER.items() if not isinstance(v, dict)}
    values.update({k: v for k, v in given.items() if k not in ("hardness", "element_hardness", "pair_slope",
                                                                  "shell_bonds")})
    values["hardness"] = {pair_name(*parse_pair(name)): _positive(v, f"bond hardness of {name}")
                          for name, v in dict(given.get("hardness") or {}).items()}
    values["element_hardness"] = {SYMBOLS[atomic_number(name)]: _positive(v, f"bond hardness of element {name}")
                                  for name, v in dict(given.get("element_hardness") or {}).items()}
    values["default_hardness"] = _positive(values["default_hardness"], "`default_hardness`")
    if values["combination"] not in COMBINATION_RULES:
        raise ValueError(f"`combination` is {values['combination']!r}; options are {', '.join(COMBINATION_RULES)}")
    onset, cutoff = float(values["onset"]), float(values["cutoff"])  # type: ignore[arg-type]
    if not 0 < onset < cutoff:
        raise ValueError(f"split-charge `onset` ({onset}) and `cutoff` ({cutoff}) must satisfy 0 < onset < cutoff "
                         "(multiples of the covalent-radius sum)")
    values["onset"], values["cutoff"] = onset, cutoff
    values["length_slope"] = _finite(values["length_slope"], "split-charge `length_slope`")
    values["pair_slope"] = {pair_name(*parse_pair(name)): _finite(v, f"length slope of {name}")
                            for name, v in dict(given.get("pair_slope") or {}).items()}
    values["shell_bonds"] = {directed_name(*parse_directed(name)): _finite(v, f"shell coefficient of {name}")
                             for name, v in dict(given.get("shell_bonds") or {}).items()}
    return values


def _finite(value, what: str) -> float:
    if not math.isfinite(float(value)):
        raise ValueError(f"{what} is {value} but must be a finite number")
    return float(value)


def merge_transfer(base: Optional[dict], override: Optional[dict], supported: Sequence[int]) -> Dict[str, object]:
    """Split-charge options of a parameter set (``base``) with the caller's ``override`` on top
    (its element and pair hardnesses added to the set's, other keys replaced); the set's entries
    for elements the module does not support are dropped."""
    zs = {int(z) for z in supported}
    merged = dict(base or {})
    merged["hardness"] = {k: v for k, v in dict(merged.get("hardness") or {}).items()
                          if all(z in zs for z in parse_pair(k))}
    merged["element_hardness"] = {k: v for k, v in dict(merged.get("element_hardness") or {}).items()
                                  if atomic_number(k) in zs}
    merged["pair_slope"] = {k: v for k, v in dict(merged.get("pair_slope") or {}).items()
                            if all(z in zs for z in parse_pair(k))}
    merged["shell_bonds"] = {k: v for k, v in dict(merged.get("shell_bonds") or {}).items()
                             if all(z in zs for z in parse_directed(k))}
    for key, value in dict(override or {}).items():
        if key in ("hardness", "element_hardness", "pair_slope", "shell_bonds"):
            merged[key] = {**merged[key], **dict(value or {})}
        else:
            merged[key] = value
    return merged


def bounded_entries(base: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, half_width: float,
                    raw: torch.Tensor) -> torch.Tensor:
    """``base`` with its entries ``[rows, cols]`` (k,) moved by ``half_width · tanh(raw)`` (k,)
    (differentiable in ``raw``); ``base`` itself when k = 0."""
    if rows.shape[0] == 0:
        return base
    values = base[rows, cols] + half_width * torch.tanh(raw)
    return base.index_put((rows, cols), values)


def smooth_switch(t: torch.Tensor) -> torch.Tensor:
    """``1 − 10t³ + 15t⁴ − 6t⁵`` for t clipped to [0, 1]: 1 at t ≤ 0, 0 at t ≥ 1, with zero first
    and second derivatives at both ends."""
    t = t.clamp(0.0, 1.0)
    return 1.0 - t * t * t * (10.0 + t * (-15.0 + 6.0 * t))


def _free_names(trainable: Optional[Union[str, Sequence[str]]], everything: List[str], what: str) -> Optional[List[str]]:
    if trainable == "all":
        return everything
    if isinstance(trainable, str):
        raise ValueError(f"trainable {what!r}: give a list or 'all', got {trainable!r}")
    return list(trainable) if trainable else None


def element_hardness_from_pairs(pairs: Dict[str, float], anchor: float, ridge: float = 1e-3) -> Dict[str, float]:
    """Per-element bond hardnesses κ_Z (eV/e²) whose geometric means best reproduce the pair values
    ``pairs`` {name: κ⁰}: x = ln κ minimizes Σ_pairs (½ (x_i + x_j) − ln κ⁰_ij)² + ridge Σ_Z (x_Z −
    ln anchor)² over the elements of the pairs (the small ridge toward ``anchor`` fixes what the
    pairs leave undetermined, e.g. the split of a lone hetero pair between its two elements)."""
    import numpy as np

    if not pairs:
        return {}
    _positive(anchor, "the anchor bond hardness")
    zs = sorted({z for name in pairs for z in parse_pair(name)})
    column = {z: k for k, z in enumerate(zs)}
    rows, rhs = [], []
    for name, value in pairs.items():
        row = np.zeros(len(zs))
        for z in parse_pair(name):
            row[column[z]] += 0.5
        rows.append(row)
        rhs.append(math.log(_positive(value, f"bond hardness of {name}")))
    weight = math.sqrt(ridge)
    rows.extend(weight * np.eye(len(zs)))
    rhs.extend([weight * math.log(anchor)] * len(zs))
    logs = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    return {SYMBOLS[z]: float(math.exp(x)) for z, x in zip(zs, logs)}


def bonded_pairs(transfer: "BondHardness", positions: torch.Tensor, numbers: torch.Tensor) -> Set[str]:
    """Element pairs (names) that form at least one split-charge bond (distance below the transfer
    cutoff) in an isolated structure: positions (N, 3) Å, atomic numbers (N,)."""
    n = int(positions.shape[0])
    if n < 2:
        return set()
    i, j = torch.triu_indices(n, n, 1)
    distance = (positions[j] - positions[i]).norm(dim=1)
    _, r_c = transfer.cutoffs(numbers[i], numbers[j])
    bonded = torch.nonzero(distance < r_c.to(distance.dtype)).flatten().tolist()
    return {pair_name(int(numbers[i[k]]), int(numbers[j[k]])) for k in bonded}


class BondHardness(torch.nn.Module):
    """Bond hardness κ_b = κ⁰_{Z_i Z_j} exp(γ (r_b − R_i − R_j)) / g(r_b)² of the split-charge
    model (module docstring).

    Parameters
    ----------
    supported : atomic numbers the PQEq module supports.
    transfer : split-charge options (:func:`normalize_transfer`).
    trainable_elements : elements whose κ_Z is free (symbols, or ``"all"``: every supported one), or None.
    trainable_pairs : element pairs whose own κ⁰ is free (names like ``"C-H"``, or ``"all"``), or None;
        a free pair without a given κ⁰ starts from the combination rule.
    bound : factor f of the bounds: a free value = start · f^tanh(θ), θ = 0 at the start.
    trainable_slope : whether one common shift of all length slopes is free.
    trainable_slope_pairs : element pairs whose own length slope is free (names, or ``"all"``), or None.
    slope_bound : half-width w (1/Å) of a free slope or shift: γ = start + w tanh(θ).
    trainable_shell : directed pairs whose shell coefficient is free (``"O:C"``, or ``"all"``), or None.
    shell_bound : half-width w of a free shell coefficient: c = start + w tanh(θ).

    Buffers: ``element_base`` (Z,) and ``pair_base`` (Z, Z) eV/e², ``pair_given`` (Z, Z) 1 where a
    pair has its own κ⁰, ``radius`` (Z,) Å, ``slope_base`` (Z, Z) 1/Å; parameters ``raw_elements`` (k,),
    ``raw_pairs`` (m,), ``raw_slope`` (1,) when the common shift is free, ``raw_slope_pairs`` (n,);
    ``shell_base`` (Z, Z) [center, neighbor] and ``raw_shell`` (k,) for the bonded shell springs.
    """

    def __init__(self, supported: Sequence[int], transfer: Optional[dict] = None,
                 trainable_elements: Optional[Union[str, Sequence[str]]] = None,
                 trainable_pairs: Optional[Union[str, Sequence[str]]] = None, bound: float = DEFAULT_KAPPA_BOUND,
                 trainable_slope: bool = False, trainable_slope_pairs: Optional[Union[str, Sequence[str]]] = None,
                 slope_bound: float = DEFAULT_SLOPE_BOUND,
                 trainable_shell: Optional[Union[str, Sequence[str]]] = None, shell_bound: float = DEFAULT_SHELL_BOUND):
        super().__init__()
        from ase.data import covalent_radii

        options = normalize_transfer(transfer)
        self.options: Dict[str, object] = options
        zs = sorted({int(z) for z in supported})
        size = (max(zs) + 1) if zs else 1
        self.onset: float = float(options["onset"])  # type: ignore[arg-type]
        self.cutoff_factor: float = float(options["cutoff"])  # type: ignore[arg-type]
        self.geometric: bool = options["combination"] == "geometric"
        if not bound > 1:
            raise ValueError(f"the bond-hardness bound is a scale factor and must be > 1, got {bound}")
        self.bound: float = float(bound)
        if not slope_bound > 0:
            raise ValueError(f"the length-slope bound is a half-width in 1/Å and must be positive, got {slope_bound}")
        self.slope_bound: float = float(slope_bound)
        if not shell_bound > 0:
            raise ValueError(f"the shell-coefficient bound is a half-width and must be positive, got {shell_bound}")
        self.shell_bound: float = float(shell_bound)

        def supported_element(symbol: str, what: str) -> int:
            z = atomic_number(symbol)
            if z not in zs:
                raise ValueError(f"{what} {symbol}: the PQEq module does not support this element (give it in "
                                 "`elements`)")
            return z

        def supported_pair(name: str, what: str) -> Tuple[int, int]:
            za, zb = parse_pair(name)
            if za not in zs or zb not in zs:
                raise ValueError(f"{what} {name}: the PQEq module does not support both elements (give them in "
                                 "`elements`)")
            return za, zb

        element = torch.full((size,), float(options["default_hardness"]), dtype=torch.float64)  # type: ignore[arg-type]
        for symbol, value in dict(options["element_hardness"]).items():  # type: ignore[call-overload]
            element[supported_element(symbol, "bond hardness of element")] = value
        free_elements = sorted({supported_element(s, "trainable 'kappa': element") for s in
                                (_free_names(trainable_elements, [SYMBOLS[z] for z in zs], "kappa") or [])})
        free_pairs = sorted({supported_pair(p, "trainable 'kappa_pairs': pair") for p in
                             (_free_names(trainable_pairs, [pair_name(a, b) for k, a in enumerate(zs) for b in zs[k:]],
                                          "kappa_pairs") or [])})
        pair = self._combine(element.unsqueeze(1), element.unsqueeze(0))
        given = torch.zeros((size, size), dtype=torch.float64)
        for name, value in dict(options["hardness"]).items():  # type: ignore[call-overload]
            za, zb = supported_pair(name, "bond hardness of")
            pair[za, zb] = pair[zb, za] = value
            given[za, zb] = given[zb, za] = 1.0
        for za, zb in free_pairs:
            given[za, zb] = given[zb, za] = 1.0
        self.register_buffer("element_base", element)
        self.register_buffer("pair_base", pair)
        self.register_buffer("pair_given", given)
        self.register_buffer("radius", torch.tensor([float(covalent_radii[z]) for z in range(size)],
                                                    dtype=torch.float64))
        self.elements: List[str] = [SYMBOLS[z] for z in free_elements]
        self.pairs: List[str] = [pair_name(a, b) for a, b in free_pairs]
        slope = torch.full((size, size), float(options["length_slope"]), dtype=torch.float64)  # type: ignore[arg-type]
        for name, value in dict(options["pair_slope"]).items():  # type: ignore[call-overload]
            za, zb = supported_pair(name, "length slope of")
            slope[za, zb] = slope[zb, za] = value
        free_slope_pairs = sorted({supported_pair(p, "trainable 'kappa_slope_pairs': pair") for p in
                                   (_free_names(trainable_slope_pairs,
                                                [pair_name(a, b) for k, a in enumerate(zs) for b in zs[k:]],
                                                "kappa_slope_pairs") or [])})
        self.register_buffer("slope_base", slope)
        self.slope_free: bool = bool(trainable_slope)
        self.slope_pairs: List[str] = [pair_name(a, b) for a, b in free_slope_pairs]
        self.register_buffer("slope_a", torch.tensor([a for a, _ in free_slope_pairs], dtype=torch.long),
                             persistent=False)
        self.register_buffer("slope_b", torch.tensor([b for _, b in free_slope_pairs], dtype=torch.long),
                             persistent=False)
        #: whether bonds carry the length factor at all (a slope free or nonzero)
        self.length_dependent: bool = self.slope_free or bool(free_slope_pairs) or bool((slope != 0).any())
        shell = torch.zeros((size, size), dtype=torch.float64)
        for name, value in dict(options["shell_bonds"]).items():  # type: ignore[call-overload]
            zc, zn = parse_directed(name)
            supported_pair(pair_name(zc, zn), "shell coefficient of")
            shell[zc, zn] = value
        if trainable_shell == "all":
            free_shell = [(a, b) for a in zs for b in zs]
        else:
            free_shell = sorted({parse_directed(name) for name in (_free_names(trainable_shell, [], "Ks_bonds") or [])})
            for zc, zn in free_shell:
                supported_pair(pair_name(zc, zn), "trainable 'Ks_bonds':")
        self.register_buffer("shell_base", shell)
        self.shell_pairs: List[str] = [directed_name(a, b) for a, b in free_shell]
        self.register_buffer("shell_c", torch.tensor([a for a, _ in free_shell], dtype=torch.long), persistent=False)
        self.register_buffer("shell_n", torch.tensor([b for _, b in free_shell], dtype=torch.long), persistent=False)
        #: whether bonds change the shell springs (a coefficient free or nonzero)
        self.shell_dependent: bool = bool(free_shell) or bool((shell != 0).any())
        self.n_free: int = (len(free_elements) + len(free_pairs) + int(self.slope_free) + len(free_slope_pairs)
                            + len(free_shell))
        self.register_buffer("element_index", torch.tensor(free_elements, dtype=torch.long), persistent=False)
        self.register_buffer("pair_a", torch.tensor([a for a, _ in free_pairs], dtype=torch.long), persistent=False)
        self.register_buffer("pair_b", torch.tensor([b for _, b in free_pairs], dtype=torch.long), persistent=False)
        for name, count in (("raw_elements", len(free_elements)), ("raw_pairs", len(free_pairs)),
                            ("raw_slope", int(self.slope_free)), ("raw_slope_pairs", len(free_slope_pairs)),
                            ("raw_shell", len(free_shell))):
            if count:
                setattr(self, name, torch.nn.Parameter(torch.zeros(count, dtype=torch.float64)))
            else:
                self.register_buffer(name, torch.zeros(0, dtype=torch.float64), persistent=False)

    def _combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sqrt() if self.geometric else 0.5 * (a + b)

    def _scaled(self, start: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        return start * torch.exp(math.log(self.bound) * torch.tanh(raw))

    def element_table(self) -> torch.Tensor:
        """κ_Z (Z,) eV/e², the free elements mapped from their raw parameters (differentiable)."""
        table = self.element_base
        if self.element_index.shape[0] > 0:
            table = table.index_put((self.element_index,),
                                    self._scaled(table.index_select(0, self.element_index), self.raw_elements))
        return table

    def hardness_table(self) -> torch.Tensor:
        """κ⁰ (Z, Z) eV/e²: the combination rule of :meth:`element_table`, replaced by the pairs'
        own values where given (free ones mapped from their raw parameters; differentiable)."""
        element = self.element_table()
        table = torch.where(self.pair_given > 0, self.pair_base,
                            self._combine(element.unsqueeze(1), element.unsqueeze(0)))
        if self.pair_a.shape[0] > 0:
            values = self._scaled(self.pair_base[self.pair_a, self.pair_b], self.raw_pairs)
            table = table.index_put((self.pair_a, self.pair_b), values).index_put((self.pair_b, self.pair_a), values)
        return table

    def slope_table(self) -> torch.Tensor:
        """γ (Z, Z) 1/Å: the set's slopes, shifted by the free common shift and replaced by the free
        pairs' own (differentiable)."""
        table = self.slope_base
        if self.raw_slope.shape[0] > 0:
            table = table + self.slope_bound * torch.tanh(self.raw_slope[0])
        if self.slope_a.shape[0] > 0:
            values = table[self.slope_a, self.slope_b] + self.slope_bound * torch.tanh(self.raw_slope_pairs)
            table = table.index_put((self.slope_a, self.slope_b), values).index_put((self.slope_b, self.slope_a), values)
        return table

    def shell_table(self) -> torch.Tensor:
        """c (Z, Z) [center, neighbor]: the bonded shell-spring coefficients, free ones mapped from
        their raw parameters (differentiable)."""
        return bounded_entries(self.shell_base, self.shell_c, self.shell_n, self.shell_bound, self.raw_shell)

    def shell_factors(self, g: torch.Tensor, z_i: torch.Tensor, z_j: torch.Tensor, bond_i: torch.Tensor,
                      bond_j: torch.Tensor, n_atoms: int) -> torch.Tensor:
        """exp(Σ_{b ∋ i} c_{Z_i←Z_j} g(r_b)) (N,): the factors of the atoms' shell springs from bonds
        ``bond_i``, ``bond_j`` (B,) between elements ``z_i``, ``z_j`` with switch values ``g`` (B,)
        (the product √s_b · √κ_b of :meth:`root_softness`; differentiable in it and in the free
        coefficients)."""
        table = self.shell_table().to(g.dtype)
        exponent = torch.zeros(n_atoms, dtype=g.dtype, device=g.device)
        exponent = exponent.index_add(0, bond_i, table[z_i, z_j] * g).index_add(0, bond_j, table[z_j, z_i] * g)
        return torch.exp(exponent)

    def cutoffs(self, z_i: torch.Tensor, z_j: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Onset r_on and cutoff r_c (Å) of bonds between elements ``z_i``, ``z_j`` (B,)."""
        total = self.radius.index_select(0, z_i) + self.radius.index_select(0, z_j)
        return self.onset * total, self.cutoff_factor * total

    def root_softness(self, distance: torch.Tensor, z_i: torch.Tensor, z_j: torch.Tensor
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(√s_b, √κ_b g_b)`` (B,): √s = g(r)/√(κ⁰ e^{γ(r − R_i − R_j)}) in e/√eV and the bond's
        hardness without the switch, √(κ⁰ e^{γ(r − R_i − R_j)}) in √eV/e, differentiable in the
        distances (Å), the free hardnesses and the free slopes."""
        r_on, r_c = self.cutoffs(z_i, z_j)
        g = smooth_switch((distance - r_on) / (r_c - r_on))
        kappa = self.hardness_table()[z_i, z_j].to(distance.dtype)
        if self.length_dependent:
            radius_sum = self.radius.index_select(0, z_i) + self.radius.index_select(0, z_j)
            slope = self.slope_table()[z_i, z_j].to(distance.dtype)
            kappa = kappa * torch.exp(slope * (distance - radius_sum.to(distance.dtype)))
        root_kappa = kappa.sqrt()
        return g / root_kappa, root_kappa

    def free_log_hardness(self) -> torch.Tensor:
        """ln κ (k + m,) of the free elements and pairs (for a prior on their spread)."""
        element = self.element_table().index_select(0, self.element_index)
        pair = self.hardness_table()[self.pair_a, self.pair_b]
        return torch.cat([element, pair]).log()

    @torch.jit.ignore
    def record(self, seen: Optional[Collection[str]] = None) -> Dict[str, object]:
        """The options with the current values (eV/e²) of every element and pair that has its own
        value, fitted ones included: building a :class:`BondHardness` from it gives the same
        :meth:`hardness_table`.

        ``seen``: the element pairs the fit had data for (:func:`bonded_pairs`).  Then only those
        keep their own κ⁰, and, unless element hardnesses were given or free, every element gets the κ_Z of
        :func:`element_hardness_from_pairs` (anchored at ``default_hardness``) with the geometric
        rule: a pair without data then gets √(κ_i κ_j), not the default (module docstring).
        Length slopes: ``length_slope`` carries the common shift; pairs with their own slope
        (given or free; with ``seen``, only those with data) keep it in ``pair_slope``."""
        with torch.no_grad():
            element = self.element_table()
            table = self.hardness_table()
        options = dict(self.options)
        elements = dict(options.get("element_hardness") or {})  # type: ignore[call-overload]
        elements.update({s: float(element[atomic_number(s)]) for s in self.elements})
        pairs = dict(options.get("hardness") or {})  # type: ignore[call-overload]
        pairs.update({p: float(table[parse_pair(p)[0], parse_pair(p)[1]]) for p in self.pairs})
        if seen is not None:
            names = {pair_name(*parse_pair(p)) for p in seen}
            pairs = {p: v for p, v in pairs.items() if p in names}
            if not self.elements and not elements:
                anchor = float(options["default_hardness"])  # type: ignore[arg-type]
                elements = element_hardness_from_pairs(pairs, anchor)
                options["combination"] = "geometric"
        options["element_hardness"] = elements
        options["hardness"] = pairs
        with torch.no_grad():
            slopes = self.slope_table()
            shift = float(self.slope_bound * torch.tanh(self.raw_slope[0])) if self.slope_free else 0.0
        own = set(dict(options.get("pair_slope") or {})) | set(self.slope_pairs)  # type: ignore[call-overload]
        if seen is not None:
            own &= {pair_name(*parse_pair(p)) for p in seen}
        options["length_slope"] = float(options["length_slope"]) + shift  # type: ignore[arg-type]
        options["pair_slope"] = {p: float(slopes[parse_pair(p)[0], parse_pair(p)[1]]) for p in sorted(own)}
        with torch.no_grad():
            shell = self.shell_table()
        directed = set(dict(options.get("shell_bonds") or {})) | set(self.shell_pairs)  # type: ignore[call-overload]
        if seen is not None:
            names = {pair_name(*parse_pair(p)) for p in seen}
            directed = {d for d in directed if pair_name(*parse_directed(d)) in names}
        values = {d: float(shell[parse_directed(d)]) for d in sorted(directed)}
        options["shell_bonds"] = {d: v for d, v in values.items() if v != 0.0}
        return options
