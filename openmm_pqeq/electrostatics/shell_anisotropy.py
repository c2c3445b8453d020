"""Anisotropic shell springs from bond directions (docs/method/pqeq.md, *Anisotropic shells*).

An isotropic shell spring gives a planar molecule no way to be as polarizable out of its plane
as in it: charge flows only along bonds, so in the plane the response is shell plus charge flow,
out of it the shell alone.  Water shows it most (PBE: nearly isotropic, 1.58 / 1.51 / 1.47 Å³;
isotropic shells fitted to it: 1.71 / 1.61 / 1.24).  Here the spring of atom i is a tensor,

    K_i = K_s,Z_i (I + Σ_{b ∋ i} a_{Z_i←Z_j} g(r_b) r̂_b r̂_bᵀ),      E_spring = ½ Σ_i d_iᵀ K_i d_i,

with one coefficient a per directed element pair (``{"O:H": a}``: the shell of O bonded to H;
0 by default) and g the smooth bond switch of the split-charge model (1 below
f_on (R_i + R_j), 0 above f_c (R_i + R_j), covalent radii R; :func:`.bond_hardness.smooth_switch`).
a > 0 stiffens the shell along its bonds, a < 0 softens it.  The switch keeps the energy and its
derivatives continuous as bonds stretch and break, and forces and stress carry the dependence of
K on the positions by autograd.

K_i stays positive definite while 1 + Σ_b min(a g, 0) > 0 (each r̂ r̂ᵀ has eigenvalues 0 and 1):
:meth:`ShellAnisotropy.tensors` checks that lower bound and raises, naming the atom, before it
falls under :data:`MIN_SPRING_FRACTION`.

Trainable (bounded, like :mod:`.trainable`): the coefficients of chosen directed pairs,
``a = a_start + w tanh θ`` with θ = 0 at the start (``trainable: {Ks_aniso: ["O:H"]}``, half-width
``bounds: {Ks_aniso: w}``).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch

from ..elements import SYMBOLS
from .bond_hardness import DEFAULT_TRANSFER, bounded_entries, directed_name, parse_directed, smooth_switch
from .messages import decimal

#: Bond switch of the anisotropy, in multiples of the covalent-radius sum (the split-charge defaults).
ANISOTROPY_ONSET: float = float(DEFAULT_TRANSFER["onset"])  # type: ignore[arg-type]
ANISOTROPY_CUTOFF: float = float(DEFAULT_TRANSFER["cutoff"])  # type: ignore[arg-type]
#: Default half-width of a trainable coefficient: a within a_start ± w.
DEFAULT_ANISOTROPY_BOUND: float = 0.45
#: Smallest allowed lower bound of an atom's spring eigenvalues, as a fraction of K_s,Z.
MIN_SPRING_FRACTION: float = 0.1


def normalize_anisotropy(options: Optional[dict]) -> Dict[str, float]:
    """Validated coefficients ``{"O:H": a}`` (directed pair names, finite floats)."""
    result: Dict[str, float] = {}
    for name, value in dict(options or {}).items():
        center, neighbor = parse_directed(name)
        value = float(value)
        if not value == value or abs(value) == float("inf"):
            raise ValueError(f"shell anisotropy {name!r} is {value}; it must be finite")
        result[directed_name(center, neighbor)] = value
    return result


class ShellAnisotropy(torch.nn.Module):
    """Bond-direction shell-spring anisotropy S_i = Σ_b a g(r_b) r̂_b r̂_bᵀ (module docstring).

    Parameters
    ----------
    supported : atomic numbers the PQEq module supports.
    coefficients : ``{"O:H": a}``, the start values (unlisted pairs 0).
    trainable : directed pairs whose coefficient is free (names, or ``"all"``: every pair of
        supported polarizable elements), or None.
    bound : half-width w of a free coefficient.

    Buffers (not saved: the start values come from the options): ``base`` (Z, Z) [center,
    neighbor], ``radius`` (Z,) Å; parameter ``raw`` (k,) of the free pairs (an empty buffer when none is free).
    """

    def __init__(self, supported: Sequence[int], coefficients: Optional[dict] = None,
                 trainable: Optional[Union[str, Sequence[str]]] = None,
                 bound: float = DEFAULT_ANISOTROPY_BOUND):
        super().__init__()
        from ase.data import covalent_radii

        if not bound > 0:
            raise ValueError(f"bound of trainable 'Ks_aniso' is {bound}; it must be positive")
        supported = sorted(int(z) for z in supported)
        size = max(supported) + 1 if supported else 1
        self.options: Dict[str, float] = normalize_anisotropy(coefficients)
        base = torch.zeros(size, size, dtype=torch.float64)
        for name, value in self.options.items():
            center, neighbor = parse_directed(name)
            if center not in supported or neighbor not in supported:
                raise ValueError(f"shell anisotropy {name!r}: both elements must be supported by this PQEq module "
                                 f"({', '.join(SYMBOLS[z] for z in supported)})")
            base[center, neighbor] = value
        everything = [directed_name(a, b) for a in supported for b in supported]
        if trainable == "all":
            free: List[str] = everything
        elif isinstance(trainable, str):
            raise ValueError(f"trainable 'Ks_aniso': give a list of pairs like 'O:H' or 'all', got {trainable!r}")
        else:
            free = [directed_name(*parse_directed(name)) for name in (trainable or [])]
        for name in free:
            if name not in everything:
                raise ValueError(f"trainable 'Ks_aniso' pair {name!r}: both elements must be supported by this PQEq "
                                 "module")
        self.free_pairs: List[str] = free
        self.element_names: List[str] = [SYMBOLS[z] for z in range(size)]
        self.bound: float = float(bound)
        self.onset: float = ANISOTROPY_ONSET
        self.cutoff_factor: float = ANISOTROPY_CUTOFF
        self.min_fraction: float = MIN_SPRING_FRACTION
        self.register_buffer("base", base, persistent=False)
        self.register_buffer("radius", torch.tensor([float(covalent_radii[z]) for z in range(size)],
                                                    dtype=torch.float64), persistent=False)
        self.register_buffer("free_center", torch.tensor([parse_directed(n)[0] for n in free], dtype=torch.long),
                             persistent=False)
        self.register_buffer("free_neighbor", torch.tensor([parse_directed(n)[1] for n in free], dtype=torch.long),
                             persistent=False)
        if free:
            self.raw = torch.nn.Parameter(torch.zeros(len(free), dtype=torch.float64))
        else:  # nothing free: no parameter, so model files written before this option still match
            self.register_buffer("raw", torch.zeros(0, dtype=torch.float64), persistent=False)
        #: whether any coefficient is non-zero or free (otherwise the springs are isotropic, at no cost)
        self.enabled: bool = bool(free) or any(v != 0.0 for v in self.options.values())
        self.n_free: int = len(free)
        #: the largest bond cutoff (Å), for the pre-selection of candidate pairs
        self.max_cutoff: float = float(2.0 * ANISOTROPY_CUTOFF * self.radius.max())

    def table(self) -> torch.Tensor:
        """a (Z, Z) [center, neighbor], free entries mapped from their raw parameters (differentiable)."""
        return bounded_entries(self.base, self.free_center, self.free_neighbor, self.bound, self.raw)

    def tensors(self, vectors: torch.Tensor, numbers: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                n_atoms: int) -> torch.Tensor:
        """S (N, 3, 3), dimensionless, from the pair vectors ``vectors`` (P, 3) Å (from atom i to
        atom j of each listed pair ``i``, ``j`` (P,)); differentiable in the vectors and the free
        coefficients.  An error when an atom's spring could lose positive definiteness."""
        v0 = vectors.detach()
        distance0 = (v0 * v0).sum(1).sqrt()
        near = torch.nonzero(distance0 < self.max_cutoff).flatten()
        vec = vectors.index_select(0, near)
        bi, bj = i.index_select(0, near), j.index_select(0, near)
        zi, zj = numbers.index_select(0, bi), numbers.index_select(0, bj)
        total = (self.radius.index_select(0, zi) + self.radius.index_select(0, zj)).to(vec.dtype)
        distance = (vec * vec).sum(1).clamp_min(1e-24).sqrt()
        g = smooth_switch((distance - self.onset * total) / ((self.cutoff_factor - self.onset) * total))
        table = self.table().to(vec.dtype)
        weight_i = table[zi, zj] * g
        weight_j = table[zj, zi] * g
        unit = vec / distance.unsqueeze(1)
        outer = unit.unsqueeze(2) * unit.unsqueeze(1)
        s = torch.zeros(n_atoms, 3, 3, dtype=vec.dtype, device=vec.device)
        s = s.index_add(0, bi, weight_i.reshape(-1, 1, 1) * outer).index_add(0, bj, weight_j.reshape(-1, 1, 1) * outer)
        with torch.no_grad():
            lower = torch.ones(n_atoms, dtype=vec.dtype, device=vec.device)
            lower = lower.index_add(0, bi, weight_i.clamp_max(0.0)).index_add(0, bj, weight_j.clamp_max(0.0))
            if n_atoms > 0 and float(lower.min()) < self.min_fraction:
                atom = int(torch.argmin(lower))
                raise ValueError("shell anisotropy: the spring of atom " + str(atom) + " (" + self.element_names[int(numbers[atom])]
                                 + ") could fall to " + decimal(float(lower[atom]), 3) + " of its K_s (limit "
                                 + str(self.min_fraction) + "): too many bonds with negative coefficients; "
                                 "use smaller negative coefficients")
        return s

    @torch.jit.ignore
    def record(self) -> Dict[str, float]:
        """``{"O:H": a}`` with the current values of the given and free pairs (non-zero ones)."""
        with torch.no_grad():
            table = self.table()
        names = set(self.options) | set(self.free_pairs)
        values = {name: float(table[parse_directed(name)[0], parse_directed(name)[1]]) for name in sorted(names)}
        return {name: value for name, value in values.items() if value != 0.0}


def spring_energy(ks: torch.Tensor, d: torch.Tensor, anisotropy: Optional[torch.Tensor]) -> torch.Tensor:
    """½ Σ_i K_s,i d_iᵀ (I + S_i) d_i (eV): springs ``ks`` (N,) eV/Å², shells ``d`` (N, 3) Å,
    anisotropy ``S`` (N, 3, 3) or None (isotropic)."""
    energy = (ks * (d * d).sum(1)).sum()
    if anisotropy is not None:
        energy = energy + (ks * torch.einsum("ni,nij,nj->n", d, anisotropy, d)).sum()
    return 0.5 * energy


def spring_force(ks: torch.Tensor, d: torch.Tensor, anisotropy: Optional[torch.Tensor]) -> torch.Tensor:
    """K_i d_i (N, 3) eV/Å: the spring gradient of :func:`spring_energy`."""
    out = ks.unsqueeze(1) * d
    if anisotropy is not None:
        out = out + ks.unsqueeze(1) * torch.bmm(anisotropy, d.unsqueeze(2)).squeeze(2)
    return out


def solve_anisotropy(p: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
    """The spring anisotropy S (N, 3, 3) that :meth:`~.pqeq.PQEq.forward` puts into the per-atom
    parameters ``p`` of its solve (key ``shell_anisotropy``), or None (isotropic springs)."""
    if "shell_anisotropy" in p:
        return p["shell_anisotropy"]
    return None
