"""The physical-mode solve of global charge transfer: inexact Newton steps (docs/method/solver.md).

Mixed into :class:`~openmm_pqeq.electrostatics.pqeq.PQEq`, whose parameters, Coulomb module
(:class:`~openmm_pqeq.electrostatics.coulomb.GaussianCoulomb`) and analytic gradients
(``PQEq._gradients``) it uses.  Each cycle solves the linear model ``H̃ s = −g`` (H̃: the exact
(q, d) Hessian at zero shell displacement, ``PhysicalSolve._joint_matvec``) by projected
preconditioned conjugate gradients inside the charge constraints (``PhysicalSolve._newton_step``;
Jacobi per charge group, or with the long-wavelength PME correction), and
:class:`.cycles.NewtonCycles` mixes the steps (Anderson).  The split-charge solve
(:mod:`openmm_pqeq.electrostatics.splitcharge`) reuses the linear model.  Charges e, shell
displacements Å, energies eV, ∂E/∂q eV/e, ∂E/∂d eV/Å; no autograd.
"""

from typing import Dict, List, NamedTuple, Tuple

import torch

from ..constraints import group_sum, project_out_group_means, project_preconditioned
from ..coulomb import setup_kind
from ..shell_anisotropy import solve_anisotropy, spring_force
from ..solver_stats import SolverStats
from .cycles import NewtonCycles, inverse_spring_constants
from .problem import SolveProblem


def host_floats(values: torch.Tensor) -> List[float]:
    """The entries of a small 1-D tensor as Python floats: one device-to-host copy (one
    synchronization on a GPU) for all of them."""
    out: List[float] = values.tolist()
    return out


class Preconditioner(NamedTuple):
    """The preconditioner of one Newton step's PCG (``PhysicalSolve._precondition``):
    ``inv_j`` 1/J (N,) e/eV, ``inv_ks`` 1/K_s (N,) Å²/eV, ``shell_charges`` −Z (N,) e, each atom's
    charge group ``groups`` (N,) and the group sums of 1/J ``weight_sums`` (G,); with the
    long-wavelength PME correction its ``smooth`` filter and M·(1, 0) as ``ones_q`` (N,),
    ``ones_d`` (N, 3) (all empty without it)."""

    inv_j: torch.Tensor
    inv_ks: torch.Tensor
    shell_charges: torch.Tensor
    groups: torch.Tensor
    weight_sums: torch.Tensor
    smooth: torch.Tensor
    ones_q: torch.Tensor
    ones_d: torch.Tensor


class PhysicalSolve:
    """Converged charges and shells of the physical mode (see the module docstring); the
    attributes it reads (``coulomb``, tolerances, ``max_iterations``, ``max_cg_iterations``,
    ``newton_reduction``, ``anderson_depth``) are :class:`~openmm_pqeq.electrostatics.pqeq.PQEq`'s."""

    def _solve_physical(
        self, problem: SolveProblem, q: torch.Tensor, d: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, SolverStats, torch.Tensor]:
        """Converged charges and shells by inexact Newton steps with Anderson acceleration.

        Each cycle evaluates the exact gradient (∂E/∂q, ∂E/∂d) analytically, then solves the
        linear model ``H̃ s = −g`` by preconditioned conjugate gradients, where H̃ is the exact
        Hessian of E in (q, d) at zero shell displacement (charge Hessian, charge–shell and
        shell–shell couplings from the cached pair kernels and their derivatives, reciprocal
        charges and point dipoles;
        :meth:`~openmm_pqeq.electrostatics.coulomb.GaussianCoulomb.hessian_joint_matvec`).  With
        shells displaced by a few hundredths of an Å, H̃ differs from the true Hessian by a few
        per cent, so each cycle gains one to two digits; Anderson mixing of the steps of previous
        cycles absorbs most of the rest.  Starts from charges ``q`` (N,) e and shells ``d`` (N, 3)
        Å, at the fixed inputs of ``problem`` (:class:`.problem.SolveProblem`).  Returns (q, d,
        :class:`~openmm_pqeq.electrostatics.solver_stats.SolverStats`, real-space pair sum at
        (q, d) () eV).  One host synchronization per cycle (the residual norms), none per
        Anderson mix."""
        n = q.shape[0]
        p = problem.params
        inv_ks = inverse_spring_constants(p)
        cycles = NewtonCycles(q, d, p["J"], p["Ks"] * p["pol"], self.anderson_depth)
        real_energy = torch.zeros((), dtype=q.dtype, device=q.device)
        while True:
            gq, gd, real_energy = self._gradients(problem, q, d, problem.cutoff)
            rq = project_out_group_means(gq, problem.groups, problem.counts)
            if n > 0:
                residuals = host_floats(torch.stack([rq.abs().max(), gd.abs().max()]))
                q_res, d_res = residuals[0], residuals[1]
            else:
                q_res, d_res = float(rq.abs().max()), 0.0
            if cycles.finished(q_res, d_res, self.charge_tolerance, self.shell_tolerance, self.max_iterations):
                break
            dq, dd, n_cg = self._newton_step(problem, gq, gd, q, inv_ks)
            cycles.step(dq, dd, n_cg)
            q = cycles.charge_variables()
            d = cycles.shells()
        # every exit follows a gradient evaluation at the returned (q, d): real_energy belongs to them
        return q, d, cycles.stats(), real_energy

    def _joint_matvec(
        self, cache: Dict[str, torch.Tensor], i: torch.Tensor, j: torch.Tensor, q: torch.Tensor,
        p: Dict[str, torch.Tensor], static: torch.Tensor, xq: torch.Tensor, xd: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The Newton steps' linear model ``H̃ (xq (N,), xd (N, 3))`` at charges ``q`` (N,) e:
        J and the shell springs K_s (with their bond anisotropy, if any) on the diagonal plus the Coulomb part
        (:meth:`~openmm_pqeq.electrostatics.coulomb.GaussianCoulomb.hessian_joint_matvec`, with the
        reciprocal ``static`` blocks); shells of non-polarizable atoms are held fixed."""
        yq, yd = self.coulomb.hessian_joint_matvec(cache, i, j, q, -p["Z"], static, xq, xd)
        return p["J"] * xq + yq, (spring_force(p["Ks"], xd, solve_anisotropy(p)) + yd) * p["pol"].unsqueeze(1)

    def _smooth_preconditioner(
        self, cache: Dict[str, torch.Tensor], smooth: torch.Tensor, rq: torch.Tensor, rd: torch.Tensor,
        inv_j: torch.Tensor, inv_ks: torch.Tensor, qs: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``M r = D^-½ (u − V†FV u)``, ``u = D^-½ r``: Jacobi (D = diag(J, K_s)) with the
        long-wavelength waves of effective charge (charges plus shell dipoles, V) divided by
        their Coulomb excess (F,
        :meth:`~openmm_pqeq.electrostatics.coulomb.GaussianCoulomb.smooth_filter`)."""
        sj = inv_j.sqrt()
        sk = inv_ks.sqrt().unsqueeze(1)
        charges = inv_j * rq  # = sj · u_q
        dipoles = qs.unsqueeze(1) * sk * sk * rd  # = qs sk · u_d
        cq, cd = self.coulomb.smooth_correction(cache, smooth, charges, dipoles)
        return inv_j * rq - sj * sj * cq, inv_ks.unsqueeze(1) * rd - sk * sk * qs.unsqueeze(1) * cd

    def _precondition(
        self, cache: Dict[str, torch.Tensor], pre: Preconditioner, rq: torch.Tensor, rd: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Preconditioned residual inside the charge constraints: ``z = M r − M c (cᵀ M r)/(cᵀ M c)``
        with ``c = (1, 0)`` (Jacobi per charge group, or with the long-wavelength correction)."""
        if pre.smooth.numel() == 0:
            return project_preconditioned(rq, pre.inv_j, pre.groups, pre.weight_sums), rd * pre.inv_ks.unsqueeze(1)
        zq, zd = self._smooth_preconditioner(cache, pre.smooth, rq, rd, pre.inv_j, pre.inv_ks, pre.shell_charges)
        factor = zq.sum() / pre.ones_q.sum()
        return zq - factor * pre.ones_q, zd - factor * pre.ones_d

    def _newton_step(
        self, problem: SolveProblem, gq: torch.Tensor, gd: torch.Tensor, q: torch.Tensor, inv_ks: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, int]:
        """Step ``(δq (N,) e, δd (N, 3) Å)`` solving the linear model ``H̃ s = −g`` at the gradient
        ``g = (gq (N,) eV/e, gd (N, 3) eV/Å)`` by projected PCG (charges preconditioned by 1/J
        within the constraints, shells by 1/K_s, ``inv_ks`` (N,)), to ``newton_reduction`` of the
        residual's 2-norm (or a fifth of the tolerances).  Returns (δq, δd, CG iterations)."""
        n = q.shape[0]
        cache, p, i, j = problem.cache, problem.params, problem.i, problem.j
        groups, counts = problem.groups, problem.counts
        z = p["Z"]
        static = self.coulomb.hessian_static(cache, q, q + z, -z)
        inv_j = 1.0 / p["J"]
        weight_sums = group_sum(inv_j, groups, counts.shape[0])
        # long-wavelength preconditioner (PME, one charge group), M = D^-½ (I − V†FV) D^-½ with V
        # the mesh spreading of charges and shell dipoles; its filter and M·(1, 0) once per step
        smooth = torch.zeros(0, dtype=q.dtype, device=q.device)
        ones_q = torch.zeros(0, dtype=q.dtype, device=q.device)
        ones_d = torch.zeros(0, 3, dtype=q.dtype, device=q.device)
        if counts.shape[0] == 1 and n > 0 and setup_kind(cache) == 2:  # KIND_PME
            polarizable = p["pol"] > 0
            shell_weight = float((z * z * inv_ks).sum() / max(int(polarizable.sum()), 1))
            smooth = self.coulomb.smooth_filter(cache, n, float(inv_j.mean()), shell_weight)
            ones_q, ones_d = self._smooth_preconditioner(cache, smooth, torch.ones_like(q), torch.zeros_like(gd),
                                                         inv_j, inv_ks, -z)
        pre = Preconditioner(inv_j, inv_ks, -z, groups, weight_sums, smooth, ones_q, ones_d)
        # stop at a fixed relative reduction of the residual's 2-norm (independent of N, unlike
        # the max-norm), or when the max-norm is well inside the tolerances
        tol_q = 0.2 * self.charge_tolerance
        tol_d = 0.2 * self.shell_tolerance
        sq = torch.zeros_like(q)
        sd = torch.zeros_like(gd)
        rq = project_out_group_means(-gq, groups, counts)
        rd = -gd
        zq, zd = self._precondition(cache, pre, rq, rd)
        pq, pd = zq, zd
        rz = (rq * zq).sum() + (rd * zd).sum()
        iterations = 0
        done = True
        rz_positive = True
        target_q = 0.0
        target_d = 0.0
        if n > 0:
            # one host synchronization per CG iteration: the numbers that decide whether to go on
            norms = host_floats(torch.stack([rq.norm(), rd.norm(), rq.abs().max(), rd.abs().max(), rz]))
            target_q = self.newton_reduction * norms[0]
            target_d = self.newton_reduction * norms[1]
            done = norms[2] <= tol_q and norms[3] <= tol_d
            rz_positive = norms[4] > 0
        while not done and rz_positive and iterations < self.max_cg_iterations:
            hq, hd = self._joint_matvec(cache, i, j, q, p, static, pq, pd)
            curvature = (pq * hq).sum() + (pd * hd).sum()
            # a direction without positive curvature ends the solve with a zero step (its sign is
            # read with the norms below, in the same synchronization)
            positive = curvature > 0
            step = torch.where(positive, rz / torch.where(positive, curvature, torch.ones_like(curvature)),
                               torch.zeros_like(curvature))
            sq = sq + step * pq
            sd = sd + step * pd
            rq = project_out_group_means(rq - step * hq, groups, counts)
            rd = rd - step * hd
            zq, zd = self._precondition(cache, pre, rq, rd)
            rz_new = (rq * zq).sum() + (rd * zd).sum()
            norms = host_floats(torch.stack([rq.norm(), rd.norm(), rq.abs().max(), rd.abs().max(), rz_new, curvature]))
            if not norms[5] > 0:
                break
            pq = zq + (rz_new / rz) * pq
            pd = zd + (rz_new / rz) * pd
            rz = rz_new
            iterations += 1
            done = (norms[0] <= target_q and norms[1] <= target_d) or (norms[2] <= tol_q and norms[3] <= tol_d)
            rz_positive = norms[4] > 0
        return sq, sd, iterations
