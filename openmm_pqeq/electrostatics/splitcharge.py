"""Split-charge equilibration (SQE) in the physical-mode PQEq solve: bounded charge transfer.

The derivation (why, the limits, smoothness at the cutoff, the field under periodic boundaries)
is in docs/method/splitcharge.md.

In PQEq as published, charge flows freely between any two atoms under one total-charge
constraint; only the atoms' hardness J holds it back.  Extended systems then over-polarize,
and the error grows with their size.  Split-charge equilibration
(Nistor, Pollet, Müser, J. Chem. Phys. 125, 094108 (2006)) lets charge move only along
*bonds*: pairs of atoms within a transfer cutoff, each with a bond hardness.

Variables and energy
--------------------
Each bond b = (i, j, image shift) with pair vector r_b = r_j − r_i + n_b·cell carries a split
charge p_b, the charge moved from i to j; the atomic charges are

    q = q_ref + T p,          (T p)_k = Σ_{b: j_b = k} p_b − Σ_{b: i_b = k} p_b,

so Σ_k q_k = Σ_k q_ref,k whatever p is.  The energy is the PQEq energy (χ, J, springs,
Gaussian core/shell Coulomb with Ewald/PME, unchanged) of these charges plus the bond term
and the field coupling through bond and shell dipoles:

    E(p, d) = E_PQEq(q_ref + T p, d) + ½ Σ_b κ_b p_b² − F · μ,
    μ = Σ_k q_ref,k r̃_k + Σ_b p_b r_b − Σ_k Z_k d_k.

Bond hardness and its cutoff
----------------------------
κ_b = κ⁰_{Z_i Z_j} / g(r_b)², with κ⁰ from per-element bond hardnesses and a combination rule
(or given per element pair; eV/e², :mod:`.bond_hardness`) and the smooth switch

    g(r) = 1 − 10t³ + 15t⁴ − 6t⁵,   t = clip((r − r_on)/(r_c − r_on), 0, 1),
    r_on = f_on (R_i + R_j),   r_c = f_c (R_i + R_j)

(R: covalent radii of Cordero et al., Dalton Trans. 2008, as in ase.data; defaults
f_on = 1.1, f_c = 1.5: covalent bonds and cation–anion contacts transfer charge, hydrogen
bonds (O···H ≈ 1.9 R_sum) and 1–3 pairs do not).  κ rises smoothly to infinity at r_c.

The solve works with the scaled split charges u_b = √κ_b p_b = p_b / √s_b (bond softness
s_b = 1/κ_b = g² / κ⁰): then ½κp² = ½u², q = q_ref + T(√s u), and nothing is infinite:

    E(u, d) = E_PQEq(q_ref + T √s u, d) + ½ |u|² − F · μ,    Hessian  I + √s Tᵀ H_qq T √s

(plus the unchanged shell blocks and the charge–shell block √s Tᵀ H_qd): the SQE Hessian
Tᵀ H_qq T + diag(κ) in p, scaled by the diagonal √s on both sides.  At r → r_c, √s → 0 and the
bond decouples (u_b → 0 and p_b = √s_b u_b → 0): the bond's energy, about −½ s_b (Δφ_b)², goes
to zero with s_b = g²/κ⁰, whose first and second derivatives vanish there, so energy, forces
and stress stay continuous as bonds appear and disappear.

Limits: κ⁰ → 0 on a connected bond graph gives global PQEq (only the total charge is fixed);
κ⁰ → ∞ freezes q = q_ref (shells only).

Total charge (project choice): the reference charges q_ref put every charge group's charge
uniformly on the group's atoms (``groups``/``group_charges`` of :class:`~.pqeq.PQEq`; without
groups, the total charge on all atoms).  Bonds also cross group boundaries, so inter-molecular
transfer is possible but bounded by κ: give an ion its own group to put its charge on it (the
OpenMM integration's ``charge_groups="molecules"`` does this from the topology); its charge then
stays on it up to what its bonds to neighbours transfer.

Field under periodic boundaries: the bond vectors r_b are the pair vectors of the image actually
bonded, so μ and the field energy do not change when an atom is wrapped into the box (the
reference term is zero for neutral groups; charged groups are made whole around their first
atom).  This holds for liquids and crystals without charge groups.

Forces: at the converged (u, d), dE/dr = ∂E/∂r at fixed (u, d); q depends on r through √s(r),
which adds Σ_b (∂E/∂q_j − ∂E/∂q_i) u_b ∂√s_b/∂r (``SplitChargeSolve._split_energy``).

The solve (:class:`SplitChargeSolve`, mixed into :class:`~.pqeq.PQEq`) is the physical mode's:
inexact Newton steps on the exact Hessian at zero shell displacement (``PhysicalSolve._joint_matvec``
of :mod:`.solvers.physical`, with the charges mapped through T √s, back through √s Tᵀ),
preconditioned conjugate gradients (Jacobi: 1 + s_b (J_i + J_j − 2 C_ij) on the bonds, K_s on
the shells), Anderson mixing (:class:`.solvers.cycles.NewtonCycles`), and a warm start of u extrapolated from previous calls (bonds matched by (i, j, shift)).  Bonds
are a subset of the real-space pair list, so no extra neighbour search is needed.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch

from .._torchscript import constant
from ..neighbors import pair_vectors
from .bond_hardness import BondHardness
from .kernels import pair_screening, safe_norm
from .realspace import erf_over_r_and_derivative
from .solver_stats import SolverStats
from .solvers.cycles import NewtonCycles, inverse_spring_constants
from .solvers.problem import SolveProblem, SplitBonds
from .trainable import FreeBondHardness
from .warm_start import BondWarmStart

#: Charge-transfer models of the physical mode.
CHARGE_TRANSFER_MODELS = ("global", "split")


def transfer_charges(split: torch.Tensor, bond_i: torch.Tensor, bond_j: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """``T p`` (N,) e: split charges ``split`` (B,) moved from ``bond_i`` to ``bond_j``."""
    out = torch.zeros(n_atoms, dtype=split.dtype, device=split.device)
    return out.index_add(0, bond_j, split).index_add(0, bond_i, -split)


def bond_differences(values: torch.Tensor, bond_i: torch.Tensor, bond_j: torch.Tensor) -> torch.Tensor:
    """``Tᵀ v`` (B,): ``v_j − v_i`` for per-atom ``values`` (N,)."""
    return values.index_select(0, bond_j) - values.index_select(0, bond_i)


def bond_keys(bond_i: torch.Tensor, bond_j: torch.Tensor, shifts: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """One int64 key per bond (B,) from (i, j, integer image shift; |shift| < 16), to match bonds
    across calls."""
    shift_range = 16
    code = torch.round(shifts).to(torch.long).clamp(-shift_range + 1, shift_range - 1) + shift_range
    width = 2 * shift_range
    cell_code = (code[:, 0] * width + code[:, 1]) * width + code[:, 2]
    return (bond_i * n_atoms + bond_j) * (width * width * width) + cell_code


class SplitChargeSolve:
    """The split-charge solve, mixed into :class:`~.pqeq.PQEq` (it uses its parameters, pair
    kernels and Hessian products; see the module docstring).  Its state: the bond hardness
    module ``transfer`` and the warm start of the bond drives per bond key
    (:class:`~.warm_start.BondWarmStart`)."""

    def _init_split(self, charge_transfer: str, supported: Sequence[int], transfer: Optional[dict],
                    free: FreeBondHardness) -> None:
        if charge_transfer not in CHARGE_TRANSFER_MODELS:
            raise ValueError(f"`charge_transfer` is {charge_transfer!r}; options are 'global', 'split'")
        if charge_transfer == "split" and getattr(self, "mode") != "physical":
            raise ValueError("charge_transfer 'split' needs mode 'physical' (mode 'reaxnet' is the published practice, "
                             "which has global charge transfer)")
        if charge_transfer == "global" and (transfer or free.elements or free.pairs or free.slope or free.slope_pairs
                                            or free.shell):
            raise ValueError("bond hardnesses and bonded shell springs (`transfer`, trainable 'kappa', 'kappa_pairs', "
                             "'kappa_slope', 'kappa_slope_pairs', 'Ks_bonds') belong to "
                             "charge_transfer 'split'")
        self.charge_transfer: str = charge_transfer
        split = charge_transfer == "split"
        self.transfer = BondHardness(supported, transfer, free.elements if split else None,
                                     free.pairs if split else None, free.bound, split and free.slope,
                                     free.slope_pairs if split else None, free.slope_bound,
                                     free.shell if split else None, free.shell_bound)
        # the previous calls' bond drives, matched by bond key (run-time state)
        self.bond_warm_start = BondWarmStart(getattr(self, "predictor_order"))

    # ------------------------------------------------------------------ bonds
    def _split_bonds(
        self, numbers: torch.Tensor, i: torch.Tensor, j: torch.Tensor, shifts: torch.Tensor, vec: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bonds among the listed pairs: ``(bond_i, bond_j, bond_shifts)``, the pairs closer than
        their transfer cutoff (``vec``: the pairs' vectors, no gradient needed)."""
        z_i, z_j = numbers.index_select(0, i), numbers.index_select(0, j)
        _, r_c = self.transfer.cutoffs(z_i, z_j)
        keep = safe_norm(vec) < r_c.to(vec.dtype)
        return i[keep], j[keep], shifts[keep]

    def _split_reference(self, groups: torch.Tensor, counts: torch.Tensor, group_charges: torch.Tensor) -> torch.Tensor:
        """Reference charges q_ref (N,) e: each group's charge spread uniformly over its atoms."""
        return (group_charges / counts).index_select(0, groups)

    # ------------------------------------------------------------------ solve
    def _split_solve_call(
        self, problem: SolveProblem, numbers: torch.Tensor, d: torch.Tensor, shifts: torch.Tensor,
        group_charges: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
               torch.Tensor, torch.Tensor, torch.Tensor, SolverStats, torch.Tensor]:
        """Bonds, reference charges, warm start and the converged solve at the fixed inputs of
        ``problem`` (:class:`.solvers.problem.SolveProblem`; no autograd), from shells ``d`` (N, 3)
        Å, with the pair image ``shifts`` of its pair list and the charges of its groups.  Returns (bond_i, bond_j, bond_shifts, bond keys, bond drives w = u/√s, q_ref, u,
        q, d, ∂E/∂q, :class:`.solver_stats.SolverStats`, real-space pair sum at the solution () eV)."""
        pos = problem.positions
        bond_i, bond_j, bond_shifts = self._split_bonds(numbers, problem.i, problem.j, shifts, problem.cache["vec"])
        bond_vec = pair_vectors(pos, problem.cell, bond_i, bond_j, bond_shifts)
        z_i, z_j = numbers.index_select(0, bond_i), numbers.index_select(0, bond_j)
        root_s, root_kappa = self.transfer.root_softness(safe_norm(bond_vec), z_i, z_j)
        if self.transfer.shell_dependent:
            params = with_shell_factors(problem.params, self.transfer.shell_factors(
                root_s * root_kappa, z_i, z_j, bond_i, bond_j, pos.shape[0]))
            problem = SolveProblem(problem.cache, problem.positions, params, problem.cell, problem.i, problem.j,
                                   problem.field, problem.field_positions, problem.cutoff, problem.groups,
                                   problem.counts)
        keys = bond_keys(bond_i, bond_j, bond_shifts, pos.shape[0])
        q_ref = self._split_reference(problem.groups, problem.counts, group_charges)
        u = self.bond_warm_start.predict(keys, root_s)
        bonds = SplitBonds(bond_i, bond_j, bond_vec, root_s, root_kappa)
        u, q, d, gq, stats, real_energy = self._solve_split(problem, u, d, q_ref, bonds)
        positive = root_s > 1e-12
        drive = torch.where(positive, u / torch.where(positive, root_s, torch.ones_like(root_s)), torch.zeros_like(u))
        return bond_i, bond_j, bond_shifts, keys, drive, q_ref, u, q, d, gq, stats, real_energy

    def _split_static(self, cache: Dict[str, torch.Tensor], q: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.coulomb.hessian_static(cache, q, q + z, -z)

    def _solve_split(
        self, problem: SolveProblem, u: torch.Tensor, d: torch.Tensor, q_ref: torch.Tensor, bonds: SplitBonds,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, SolverStats, torch.Tensor]:
        """Converged scaled split charges u (B,) and shells d (N, 3) by inexact Newton steps with
        Anderson acceleration, from u and d, reference charges ``q_ref`` (N,) e and ``bonds``
        (:class:`.solvers.problem.SplitBonds`) at the fixed inputs of ``problem`` (whose field
        positions are zero: the field couples through the bond vectors).  Returns (u, q, d,
        ∂E/∂q (N,) eV/e without the field term, :class:`.solver_stats.SolverStats`, real-space
        pair sum at the solution () eV);
        the charge residual is max_b |∂E/∂u_b| √κ⁰_b (= |∂E/∂p_b| g(r_b), eV/e)."""
        n = problem.positions.shape[0]
        nb = u.shape[0]
        p = problem.params
        bond_i, bond_j, root_s, root_kappa = bonds.i, bonds.j, bonds.root_s, bonds.root_kappa
        inv_ks = inverse_spring_constants(p)
        bond_field = bonds.vectors @ problem.field
        # Jacobi of the bond block: 1 + s (J_i + J_j − 2 C_ij) (C: the bare Gaussian kernel of the pair)
        r_b = safe_norm(bonds.vectors)
        alpha = pair_screening(p["a"].index_select(0, bond_i), p["a"].index_select(0, bond_j))
        pair_hardness = (p["J"].index_select(0, bond_i) + p["J"].index_select(0, bond_j)
                         - 2.0 * self.coulomb.coulomb_constant * erf_over_r_and_derivative(alpha, r_b)[0])
        diag = torch.where(bond_i == bond_j, torch.ones_like(r_b), 1.0 + root_s * root_s * pair_hardness).clamp(min=1.0)
        cycles = NewtonCycles(u, d, torch.ones_like(u), p["Ks"] * p["pol"], self.anderson_depth)
        q = q_ref + transfer_charges(root_s * u, bond_i, bond_j, n)
        gq = torch.zeros_like(q)
        real_energy = torch.zeros((), dtype=q.dtype, device=q.device)
        while True:
            q = q_ref + transfer_charges(root_s * u, bond_i, bond_j, n)
            gq, gd, real_energy = self._gradients(problem, q, d, problem.cutoff)
            gu = u + root_s * (bond_differences(gq, bond_i, bond_j) - bond_field)
            q_res = float((gu * root_kappa).abs().max()) if nb > 0 else 0.0
            d_res = float(gd.abs().max()) if n > 0 else 0.0
            if cycles.finished(q_res, d_res, self.charge_tolerance, self.shell_tolerance, self.max_iterations):
                break
            du, dd, n_cg = self._split_newton_step(problem, gu, gd, q, inv_ks, bonds, diag)
            cycles.step(du, dd, n_cg)
            u = cycles.charge_variables()
            d = cycles.shells()
        return u, q, d, gq, cycles.stats(), real_energy

    def _split_newton_step(
        self, problem: SolveProblem, gu: torch.Tensor, gd: torch.Tensor, q: torch.Tensor, inv_ks: torch.Tensor,
        bonds: SplitBonds, diag: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, int]:
        """Step ``(δu, δd)`` solving the linear model ``H̃ s = −g`` by PCG (Jacobi on bonds and
        shells; no constraints: T conserves the charge), to ``newton_reduction`` of the residual's
        2-norm or a fifth of the tolerances (``diag``: the bond block's Jacobi diagonal (B,)).
        Returns (δu, δd, CG iterations)."""
        n = q.shape[0]
        cache, p = problem.cache, problem.params
        bond_i, bond_j, root_s, root_kappa = bonds.i, bonds.j, bonds.root_s, bonds.root_kappa
        static = self._split_static(cache, q, p["Z"])
        tol_q = 0.2 * self.charge_tolerance
        tol_d = 0.2 * self.shell_tolerance
        su = torch.zeros_like(gu)
        sd = torch.zeros_like(gd)
        ru = -gu
        rd = -gd
        zu = ru / diag
        zd = rd * inv_ks.unsqueeze(1)
        pu, pd = zu, zd
        rz = (ru * zu).sum() + (rd * zd).sum()
        target_u = self.newton_reduction * float(ru.norm())
        target_d = self.newton_reduction * float(rd.norm())
        nb = gu.shape[0]
        iterations = 0
        done = ((float((ru * root_kappa).abs().max()) if nb > 0 else 0.0) <= tol_q
                and (float(rd.abs().max()) if n > 0 else 0.0) <= tol_d)
        while not done and iterations < self.max_cg_iterations:
            xq = transfer_charges(root_s * pu, bond_i, bond_j, n)
            yq, yd = self._joint_matvec(cache, problem.i, problem.j, q, p, static, xq, pd)
            hu = pu + root_s * bond_differences(yq, bond_i, bond_j)
            curvature = (pu * hu).sum() + (pd * yd).sum()
            if not bool(curvature > 0) or not bool(rz > 0):
                break
            step = rz / curvature
            su = su + step * pu
            sd = sd + step * pd
            ru = ru - step * hu
            rd = rd - step * yd
            zu = ru / diag
            zd = rd * inv_ks.unsqueeze(1)
            rz_new = (ru * zu).sum() + (rd * zd).sum()
            pu = zu + (rz_new / rz) * pu
            pd = zd + (rz_new / rz) * pd
            rz = rz_new
            iterations += 1
            done = (float(ru.norm()) <= target_u and float(rd.norm()) <= target_d) or (
                (float((ru * root_kappa).abs().max()) if nb > 0 else 0.0) <= tol_q
                and (float(rd.abs().max()) if n > 0 else 0.0) <= tol_d)
        return su, sd, iterations

    # ------------------------------------------------------------------ energy
    def _split_energy(
        self, positions: torch.Tensor, numbers: torch.Tensor, q: torch.Tensor, d: torch.Tensor, u: torch.Tensor,
        charge_gradient: torch.Tensor, q_ref: torch.Tensor, p: Dict[str, torch.Tensor], cell: Optional[torch.Tensor],
        i: torch.Tensor, j: torch.Tensor, shifts: torch.Tensor, field: torch.Tensor, field_pos: torch.Tensor,
        cutoff: float, known: Optional[torch.Tensor], bond_i: torch.Tensor, bond_j: torch.Tensor,
        bond_shifts: torch.Tensor, exact: bool,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energy () eV, dipole (3,) e·Å and split charges p (B,) e at the solution, differentiable
        in positions, cell, field and the free parameters.

        ``exact``: the charges are rebuilt as q_ref + T(√s(r) u) with their whole graph (needed
        when u and d carry implicit derivatives, or for second derivatives).  Otherwise the charges
        enter as constants and their dependence on the positions through √s(r) is the term
        Σ_b (∂E/∂q_j − ∂E/∂q_i) u_b (√s_b(r) − √s_b) (value zero, exact first derivatives), so the
        Coulomb energy keeps its fast path (the solve's real-space sum, compiled operators)."""
        z = p["Z"]
        n = positions.shape[0]
        bond_vec = pair_vectors(positions, cell, bond_i, bond_j, bond_shifts)
        z_i, z_j = numbers.index_select(0, bond_i), numbers.index_select(0, bond_j)
        root_s, root_kappa = self.transfer.root_softness(safe_norm(bond_vec), z_i, z_j)
        if self.transfer.shell_dependent:
            p = with_shell_factors(p, self.transfer.shell_factors(root_s * root_kappa, z_i, z_j, bond_i, bond_j, n))
        split = root_s * u
        no_field = torch.zeros_like(field)
        if exact:
            charges = q_ref + transfer_charges(split, bond_i, bond_j, n)
            energy = self.energy(positions, charges, d, p, cell, i, j, shifts, no_field, field_pos, cutoff, None)
        else:
            energy = self.energy(positions, q, d, p, cell, i, j, shifts, no_field, field_pos, cutoff, known)
            energy = energy + ((root_s - constant(root_s)) * u
                               * bond_differences(charge_gradient, bond_i, bond_j)).sum()
        dipole = ((q_ref.unsqueeze(1) * field_pos).sum(0) + (split.unsqueeze(1) * bond_vec).sum(0)
                  - (z.unsqueeze(1) * d).sum(0))
        energy = energy + 0.5 * (u * u).sum() - (field * dipole).sum()
        return energy, dipole, split

    @torch.jit.unused
    def _implicit_split(
        self, positions: torch.Tensor, numbers: torch.Tensor, u: torch.Tensor, d: torch.Tensor, q_ref: torch.Tensor,
        p: Dict[str, torch.Tensor], cell: Optional[torch.Tensor], field: torch.Tensor, bond_i: torch.Tensor,
        bond_j: torch.Tensor, bond_shifts: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(ũ, d̃)`` equal to the converged ``(u, d)`` with exact first derivatives with respect to
        the free parameters, positions and field (:func:`.implicit.implicit_stationary`; open systems)."""
        from .implicit import implicit_stationary

        if cell is not None:
            raise NotImplementedError(
                "derivatives of PQEq charges and forces with respect to trainable PQEq parameters are implemented "
                "for open (non-periodic) systems; freeze the PQEq parameters for periodic training data")
        n = positions.shape[0]
        if n > self.implicit_max_atoms:
            raise NotImplementedError(
                "trainable PQEq parameters: the dense implicit differentiation handles up to "
                + str(self.implicit_max_atoms) + " atoms, this structure has " + str(n))
        energy = split_energy_function(self, positions, numbers, p, field, bond_i, bond_j, bond_shifts, q_ref)
        x = implicit_stationary(energy, torch.cat([u, d.reshape(-1)]), split_mask(p, u.shape[0]),
                                torch.zeros(0, dtype=torch.long, device=positions.device), 0)
        return x[: u.shape[0]], x[u.shape[0]:].reshape(n, 3)


def with_shell_factors(p: Dict[str, torch.Tensor], factors: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The per-atom parameters ``p`` with the shell springs ``Ks`` (N,) scaled by ``factors`` (N,)
    (:meth:`.bond_hardness.BondHardness.shell_factors`)."""
    scaled = {key: value for key, value in p.items()}
    scaled["Ks"] = p["Ks"] * factors.to(p["Ks"].dtype)
    return scaled


def split_energy_function(pqeq, positions: torch.Tensor, numbers: torch.Tensor, p: Dict[str, torch.Tensor],
                          field: torch.Tensor, bond_i: torch.Tensor, bond_j: torch.Tensor, bond_shifts: torch.Tensor,
                          q_ref: torch.Tensor):
    """E(x) eV of the variables x = (u (B,), d (3N,)) of an open system, with its whole graph
    (for implicit differentiation and the analytic polarizability)."""
    from .coulomb import all_pairs

    n = positions.shape[0]
    nb = bond_i.shape[0]
    i, j = all_pairs(n, positions.device)
    shifts = torch.zeros((i.shape[0], 3), dtype=positions.dtype, device=positions.device)

    def energy(x: torch.Tensor) -> torch.Tensor:
        value, _, _ = pqeq._split_energy(positions, numbers, q_ref, x[nb:].reshape(n, 3), x[:nb], q_ref, q_ref, p,
                                         None, i, j, shifts, field, positions, 0.0, None, bond_i, bond_j,
                                         bond_shifts, True)
        return value

    return energy


def split_mask(p: Dict[str, torch.Tensor], n_bonds: int) -> torch.Tensor:
    """1 for the free variables (every u, the shells of polarizable atoms), 0 for fixed ones."""
    n = p["pol"].shape[0]
    shells = (p["pol"] > 0).to(p["pol"].dtype).unsqueeze(1).expand(n, 3).reshape(-1)
    return torch.cat([torch.ones(n_bonds, dtype=shells.dtype, device=shells.device), shells])


def split_polarizability(pqeq, positions: torch.Tensor, numbers: torch.Tensor, u: torch.Tensor, d: torch.Tensor,
                         q_ref: torch.Tensor, p: Dict[str, torch.Tensor], bond_i: torch.Tensor, bond_j: torch.Tensor,
                         bond_shifts: torch.Tensor) -> torch.Tensor:
    """Polarizability (3, 3) Å³ of an open system in the split-charge model at its converged
    ``(u, d)`` (best the implicit ``(ũ, d̃)``), differentiable in the free parameters:
    α = M K⁻¹ Mᵀ k_e with μ = Σ_b √s_b u_b r_b − Σ Z d (:func:`.implicit.response_polarizability`)."""
    from .implicit import response_polarizability

    n = positions.shape[0]
    vec = pair_vectors(positions, None, bond_i, bond_j, bond_shifts)
    root_s, _ = pqeq.transfer.root_softness(safe_norm(vec), numbers.index_select(0, bond_i),
                                            numbers.index_select(0, bond_j))
    eye = torch.eye(3, dtype=positions.dtype, device=positions.device)
    shells = -(p["Z"] * (p["pol"] > 0).to(positions.dtype)).reshape(n, 1, 1) * eye.unsqueeze(0)
    m = torch.cat([(root_s.unsqueeze(1) * vec).transpose(0, 1), shells.permute(2, 0, 1).reshape(3, 3 * n)], dim=1)
    field = torch.zeros(3, dtype=positions.dtype, device=positions.device)
    energy = split_energy_function(pqeq, positions, numbers, p, field, bond_i, bond_j, bond_shifts, q_ref)
    return response_polarizability(energy, torch.cat([u, d.reshape(-1)]), m, split_mask(p, u.shape[0]),
                                   torch.zeros(0, dtype=torch.long, device=positions.device), 0)
