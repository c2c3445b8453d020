"""Two-body DFT-D3 dispersion as a TorchScript module, for molecules and periodic cells.

The energy (Grimme, Antony, Ehrlich, Krieg, J. Chem. Phys. 132, 154104 (2010)) is a sum over
atom pairs ``i < j`` and, under periodic boundaries, over every lattice image within the cutoff
(self-images of one atom included)::

    E = - Σ_pairs [ s6 C6_ij f6(r) / r⁶  +  s8 C8_ij f8(r) / r⁸ ] · S(r)

- C6_ij = Σ_ab w_ia w_jb C6_ref(Z_i, a, Z_j, b), with Gaussian weights
  w_ia ∝ exp(-k3 (CN_i - CN_ref,ia)²), k3 = 4, normalised over the references of Z_i;
- CN_i = Σ_j 1 / (1 + exp(-k1 (R_cov,i + R_cov,j) / r_ij + k1)) · S_cn(r_ij), k1 = 16, with
  covalent radii already scaled by k2 = 4/3;
- C8_ij = 3 C6_ij sqrt(Q_i Q_j), Q = 0.5 sqrt(Z) <r⁴>/<r²>;
- zero damping: f_n = 1 / (1 + 6 (r / (s_r,n R0_ij))^(-α_n)), s_r,6 = rs6, s_r,8 = rs8,
  α6 = alp, α8 = alp + 2, R0_ij the pairwise cut-off radii of the 2010 paper;
- rational (Becke–Johnson) damping (Grimme, Ehrlich, Goerigk, J. Comput. Chem. 32, 1456 (2011)):
  C6 f6 / r⁶ → C6 / (r⁶ + R⁶), C8 f8 / r⁸ → C8 / (r⁸ + R⁸), R = a1 sqrt(C8/C6) + a2.

Cut-offs (project choice).  Pairs enter the energy up to ``cutoff`` (12.5 Å, as in the
published model) and the coordination numbers up to ``cn_cutoff``.  By default both sums are
smooth: each pair term is multiplied by the C²-continuous quintic switch
``S(x) = 1 - 10x³ + 15x⁴ - 6x⁵``, ``x = (r - cutoff + switch_width) / switch_width``
clipped to [0, 1], so energy, forces and their first derivatives are continuous and MD
conserves energy.  For the two-body energy this is exactly simple-dftd3's smooth cut-off
(``set_realspace_cutoff(..., width2=switch_width)``); simple-dftd3 has no smooth CN cut-off.
``hard_cutoff=True`` truncates both sums plainly, as simple-dftd3 does by default, so results
can be compared exactly.

The default ``cn_cutoff`` is the dispersion cutoff (12.5 Å) rather than simple-dftd3's
40 bohr (21.2 Å): the counting function tends to 1/(1 + e¹⁶) ≈ 1e-7 per pair at long range,
and the pairs between 12.5 Å and 40 bohr add only about 2e-3 to a coordination number in dense
matter (4e-5 eV/atom in the energy of crystalline Si), while a 40 bohr list holds five times as
many pairs.  Pass ``cn_cutoff=40 * BOHR_TO_ANGSTROM`` to match simple-dftd3.

Pairs are processed in chunks of :data:`PAIR_CHUNK`, which keeps temporaries small: memory grows
as about 0.4 kB per pair within the cutoff (kept for the backward pass), time as O(N).
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

import torch

from openmm_pqeq.dispersion.d3_params import MAX_Z_D3, damping_parameters, reference_tables
from openmm_pqeq.elements import SYMBOLS
from openmm_pqeq.neighbors import NeighborList, pair_vectors
from openmm_pqeq.units import BOHR_TO_ANGSTROM

__all__ = ["D3Dispersion"]

#: Steepness of the coordination-number counting function (k1 of Grimme et al. 2010).
K1: float = 16.0
#: Exponent of the Gaussian weights of the reference C6 (k3 of Grimme et al. 2010).
K3: float = 4.0
#: Pairs handled at once: bounds the size of temporaries (and so cache misses and page faults).
PAIR_CHUNK: int = 1 << 17


class D3Dispersion(torch.nn.Module):
    """DFT-D3 dispersion energy (two-body, zero or Becke–Johnson damping), TorchScript-ready.

    >>> d3 = D3Dispersion()                                   # PBE-D3(0), as published
    >>> d3 = D3Dispersion("r2scan", damping="bj")             # named functional, BJ damping
    >>> d3 = D3Dispersion(parameters={"s8": 0.7875, "a1": 0.4289, "a2": 4.4407}, damping="bj")

    ``cutoff`` and ``cn_cutoff`` (Å) bound the dispersion and coordination-number sums; by
    default both are switched off smoothly over their last ``switch_width`` Å:

    >>> d3 = D3Dispersion(cutoff=15.0, cn_cutoff=15.0, switch_width=3.0)

    ``hard_cutoff=True`` truncates plainly, like simple-dftd3 (``switch_width`` is then unused):

    >>> d3 = D3Dispersion(cutoff=60 * BOHR_TO_ANGSTROM, cn_cutoff=40 * BOHR_TO_ANGSTROM,
    ...                   hard_cutoff=True)

    Forces and virial come from autograd of the energy with respect to positions and a
    strain applied to positions and cell:

    >>> pos = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 3.5]], dtype=torch.float64,
    ...                    requires_grad=True)
    >>> energy = D3Dispersion()(pos, torch.tensor([18, 18]))
    >>> forces = -torch.autograd.grad(energy, pos)[0]
    >>> round(energy.item(), 6)
    -0.011905

    Parameters
    ----------
    functional : str
        Functional whose published D3 parameters to use (case-insensitive; simple-dftd3's
        names and aliases, e.g. ``"pbe"``, ``"pbesol"``, ``"r2scan"``, ``"b3lyp"``).  Only a
        label when ``parameters`` is given.
    damping : str
        ``"zero"`` (Grimme et al. 2010) or ``"bj"`` (rational, Grimme et al. 2011).
    cutoff : float
        Dispersion cutoff (Å).
    cn_cutoff : float
        Coordination-number cutoff (Å).
    hard_cutoff : bool
        Plain truncation (True) instead of the smooth switch (False).
    switch_width : float
        Width (Å) of the smooth switch below each cutoff; at most ``min(cutoff, cn_cutoff)``.
    parameters : mapping, optional
        Explicit damping parameters instead of the published ones: zero damping needs ``s8``,
        ``rs6`` (optional ``s6`` = 1, ``rs8`` = 1, ``alp`` = 14); BJ damping needs ``s8``, ``a1``,
        ``a2`` in bohr as published (optional ``s6`` = 1).

    Notes
    -----
    Reference data (C6, reference CNs, radii, <r⁴>/<r²>; Z = 1 … 103) are read from tad-dftd3
    when the module is built and kept as buffers: a saved TorchScript module is self-contained.
    The three-body (ATM) term is not included.
    """

    def __init__(
        self,
        functional: str = "pbe",
        damping: str = "zero",
        cutoff: float = 12.5,
        cn_cutoff: float = 12.5,
        hard_cutoff: bool = False,
        switch_width: float = 2.0,
        parameters: Optional[Mapping[str, float]] = None,
    ):
        super().__init__()
        if not cutoff > 0:
            raise ValueError(f"`cutoff` is {cutoff} Å but must be positive")
        if not cn_cutoff > 0:
            raise ValueError(f"`cn_cutoff` is {cn_cutoff} Å but must be positive")
        if not hard_cutoff and not 0 < switch_width <= min(cutoff, cn_cutoff):
            raise ValueError(
                f"`switch_width` is {switch_width} Å but must be in (0, {min(cutoff, cn_cutoff)}]"
                " (the smaller cutoff)"
            )
        values = damping_parameters(functional, damping, parameters)

        self.functional: str = functional
        self.damping: str = damping
        self.cutoff: float = float(cutoff)
        self.cn_cutoff: float = float(cn_cutoff)
        self.hard_cutoff: bool = bool(hard_cutoff)
        self.switch_width: float = float(switch_width)
        #: Damping parameters as given or published (``a2`` in bohr).
        self.parameters: Dict[str, float] = values

        self._zero: bool = damping == "zero"
        self._s6: float = values["s6"]
        self._s8: float = values["s8"]
        # Zero damping: rs6, rs8, alp; BJ damping: a1, a2 (converted to Å).  Unused ones are 0.
        self._rs6: float = values.get("rs6", 0.0)
        self._rs8: float = values.get("rs8", 0.0)
        self._alp: float = values.get("alp", 0.0)
        self._a1: float = values.get("a1", 0.0)
        self._a2: float = values.get("a2", 0.0) * BOHR_TO_ANGSTROM

        tables = reference_tables()
        for name in ("c6", "cn_ref", "n_ref", "rcov", "r0ab", "sqrt_q"):
            self.register_buffer(name, tables[name])
        self._symbols: List[str] = SYMBOLS[: MAX_Z_D3 + 1]
        self._max_z: int = MAX_Z_D3
        self._k1: float = K1
        self._k3: float = K3
        self._chunk: int = PAIR_CHUNK
        self._list_cutoff: float = max(self.cutoff, self.cn_cutoff)
        self.neighbors = NeighborList(self._list_cutoff)

    def extra_repr(self) -> str:
        mode = "hard" if self.hard_cutoff else f"smooth over {self.switch_width} Å"
        return (
            f"functional={self.functional!r}, damping={self.damping!r}, "
            f"cutoff={self.cutoff} Å, cn_cutoff={self.cn_cutoff} Å ({mode}), "
            f"parameters={self.parameters}"
        )

    def forward(
        self, positions: torch.Tensor, numbers: torch.Tensor, cell: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Dispersion energy (eV), a 0-d tensor of the dtype of ``positions``.

        Parameters
        ----------
        positions : torch.Tensor
            ``(N, 3)`` Å, floating point; need not be wrapped into the cell.
        numbers : torch.Tensor
            ``(N,)`` integer atomic numbers, 1 … 103.
        cell : torch.Tensor, optional
            ``(3, 3)`` Å, rows are the cell vectors (cast to the dtype of ``positions``);
            ``None`` for an open (non-periodic) system.
        """
        self._validate(positions, numbers, cell)
        if cell is not None:
            cell = cell.to(positions.dtype)
        edge_i, edge_j, shifts = self.neighbors(positions, cell)
        n_atoms = positions.shape[0]

        # The elements present, each atom's index among them ("kind"); a pair's element pair
        # kind_i * n_el + kind_j indexes small (n_el²,) tables of pair constants.
        present = torch.zeros(self.n_ref.shape[0], dtype=torch.bool, device=numbers.device)
        present[numbers] = True
        elements = torch.nonzero(present).flatten()
        n_el = elements.shape[0]
        lookup = torch.zeros_like(present, dtype=torch.long)
        lookup[elements] = torch.arange(n_el, device=numbers.device)
        kind = lookup.index_select(0, numbers)
        rcov = self.rcov.index_select(0, elements).to(positions.dtype)
        pair_radii = (rcov.unsqueeze(1) + rcov.unsqueeze(0)).flatten()

        # Pass 1 over the pairs, in chunks so that temporaries stay small: distances and
        # coordination numbers; keep the pairs within the dispersion cutoff for pass 2.  With no
        # pairs at all one empty chunk still runs, so the energy stays a function of positions.
        cn = torch.zeros(n_atoms, dtype=positions.dtype, device=positions.device)
        pairs: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for start in range(0, max(edge_i.shape[0], 1), self._chunk):
            i = edge_i[start : start + self._chunk]
            j = edge_j[start : start + self._chunk]
            vectors = pair_vectors(positions, cell, i, j, shifts[start : start + self._chunk])
            dist = torch.linalg.vector_norm(vectors, dim=1)
            pair_kind = kind.index_select(0, i) * n_el + kind.index_select(0, j)
            ci, cj, ck, cdist = self._within(i, j, pair_kind, dist, self.cn_cutoff)
            count = torch.sigmoid(self._k1 * (pair_radii.index_select(0, ck) / cdist - 1.0))
            if not self.hard_cutoff:
                count = count * _switch(cdist, self.cn_cutoff, self.switch_width)
            cn = cn.index_add(0, ci, count).index_add(0, cj, count)
            pairs.append(self._within(i, j, pair_kind, dist, self.cutoff))

        # Gaussian weights of each atom's references: (N, R), R = most references present.
        n_ref = int(self.n_ref.index_select(0, elements).max().item())
        cn_ref = self.cn_ref.index_select(0, numbers)[:, :n_ref].to(positions.dtype)
        logits = -self._k3 * (cn.unsqueeze(1) - cn_ref) ** 2
        weights = torch.softmax(logits.masked_fill(cn_ref < 0, float("-inf")), dim=1)

        # Contract the weights of atom i with the reference C6 towards every element present:
        # u[i, t, b] = Σ_a w_ia C6_ref(Z_i, a, Z_t, b), so that C6_ij = Σ_b u[i, t_j, b] w_jb.
        c6_ref = self.c6.index_select(0, elements).index_select(1, elements)
        c6_ref = c6_ref[:, :, :n_ref, :n_ref].to(positions.dtype)
        u = torch.einsum("ia,itab->itb", weights, c6_ref.index_select(0, kind))
        u = u.reshape(-1, n_ref)

        # Pass 2: the damped pair energies.
        damp6, damp8, s8_c8_over_c6 = self._damping_tables(elements, positions.dtype)
        energy = torch.zeros((), dtype=positions.dtype, device=positions.device)
        for i, j, pair_kind, dist in pairs:
            u_ij = u.index_select(0, i * n_el + kind.index_select(0, j))
            c6 = (u_ij * weights.index_select(0, j)).sum(dim=1)
            pair = c6 * self._pair_energy(damp6, damp8, s8_c8_over_c6, pair_kind, dist)
            if not self.hard_cutoff:
                pair = pair * _switch(dist, self.cutoff, self.switch_width)
            energy = energy + pair.sum()
        return energy

    def _within(
        self,
        edge_i: torch.Tensor,
        edge_j: torch.Tensor,
        pair_kind: torch.Tensor,
        dist: torch.Tensor,
        cutoff: float,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The pairs of the neighbour list with ``dist <= cutoff`` (all of them when the list was
        built with this cutoff)."""
        if cutoff >= self._list_cutoff:
            return edge_i, edge_j, pair_kind, dist
        keep = torch.nonzero(dist <= cutoff).flatten()
        return (
            edge_i.index_select(0, keep),
            edge_j.index_select(0, keep),
            pair_kind.index_select(0, keep),
            dist.index_select(0, keep),
        )

    def _damping_tables(
        self, elements: torch.Tensor, dtype: torch.dtype
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Constants of the damped pair energy per element pair, each ``(n_el²,)``: zero
        damping ``6 (rs6 R0)^α``, ``6 (rs8 R0)^(α+2)``; BJ damping ``R⁶``, ``R⁸`` (Å⁶, Å⁸);
        both ``s8 C8/C6`` (Å²), where C8/C6 = 3 sqrt(Q_i Q_j) depends on the elements only."""
        sqrt_q = self.sqrt_q.index_select(0, elements).to(dtype)
        c8_over_c6 = 3.0 * (sqrt_q.unsqueeze(1) * sqrt_q.unsqueeze(0)).flatten()
        if self._zero:
            r0 = self.r0ab.index_select(0, elements).index_select(1, elements).flatten().to(dtype)
            damp6 = 6.0 * (self._rs6 * r0) ** self._alp
            damp8 = 6.0 * (self._rs8 * r0) ** (self._alp + 2.0)
        else:
            r0 = self._a1 * torch.sqrt(c8_over_c6) + self._a2
            damp6 = r0**6
            damp8 = r0**8
        return damp6, damp8, self._s8 * c8_over_c6

    def _pair_energy(
        self,
        damp6: torch.Tensor,
        damp8: torch.Tensor,
        s8_c8_over_c6: torch.Tensor,
        pair_kind: torch.Tensor,
        dist: torch.Tensor,
    ) -> torch.Tensor:
        """Damped pair energy per unit C6, ``(n_pairs,)`` 1/Å⁶: the bracket of the module
        docstring divided by C6, from the tables of :meth:`_damping_tables`."""
        damp6 = damp6.index_select(0, pair_kind)
        damp8 = damp8.index_select(0, pair_kind)
        s8_c8_over_c6 = s8_c8_over_c6.index_select(0, pair_kind)
        inv_r2 = 1.0 / (dist * dist)
        inv_r6 = inv_r2 * inv_r2 * inv_r2
        if self._zero:
            # 6 (r / (rs R0))^(-α) = [6 (rs R0)^α] r^(-α)
            inv_r_alp = dist ** (-self._alp)
            f6 = 1.0 / (1.0 + damp6 * inv_r_alp)
            f8 = 1.0 / (1.0 + damp8 * inv_r_alp * inv_r2)
            return -inv_r6 * (self._s6 * f6 + s8_c8_over_c6 * f8 * inv_r2)
        r6 = 1.0 / inv_r6
        return -(self._s6 / (r6 + damp6) + s8_c8_over_c6 / (r6 * dist * dist + damp8))

    def _validate(
        self, positions: torch.Tensor, numbers: torch.Tensor, cell: Optional[torch.Tensor]
    ) -> None:
        if positions.dim() != 2 or positions.shape[1] != 3 or positions.shape[0] == 0:
            raise ValueError(
                f"`positions` must have shape (N, 3) with N > 0, got {list(positions.shape)}"
            )
        if not positions.is_floating_point():
            raise ValueError(f"`positions` must be floating point, got {positions.dtype}")
        if numbers.dim() != 1 or numbers.shape[0] != positions.shape[0]:
            raise ValueError(
                f"`numbers` must have shape ({positions.shape[0]},) like `positions`, "
                f"got {list(numbers.shape)}"
            )
        if numbers.is_floating_point() or numbers.dtype == torch.bool:
            raise ValueError(f"`numbers` must be integer atomic numbers, got {numbers.dtype}")
        if numbers.device != positions.device:
            raise ValueError(
                f"`numbers` is on {numbers.device} but `positions` on {positions.device}"
            )
        bad = torch.nonzero((numbers < 1) | (numbers > self._max_z)).flatten()
        if bad.numel() > 0:
            z = int(numbers[bad[0]].item())
            raise ValueError(
                f"atom {int(bad[0].item())} has atomic number {z}: D3 reference data cover "
                f"1 ({self._symbols[1]}) to {self._max_z} ({self._symbols[self._max_z]})"
            )
        if cell is not None:
            if cell.dim() != 2 or cell.shape[0] != 3 or cell.shape[1] != 3:
                raise ValueError(f"`cell` must have shape (3, 3), got {list(cell.shape)}")
            if cell.device != positions.device:
                raise ValueError(
                    f"`cell` is on {cell.device} but `positions` on {positions.device}"
                )


def _switch(dist: torch.Tensor, cutoff: float, width: float) -> torch.Tensor:
    """Quintic switch, 1 below ``cutoff - width``, 0 from ``cutoff`` on, C² in between."""
    x = ((dist - (cutoff - width)) / width).clamp(0.0, 1.0)
    return 1.0 - x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)
