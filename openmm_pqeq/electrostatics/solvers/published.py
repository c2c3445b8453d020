"""The published ReaxNet solve: two cycles of {exact charge solve, one-shot shell update}.

Gao et al., Nat. Commun. 16, 10484 (2025), as the ``"reaxnet"`` mode of
:class:`~openmm_pqeq.electrostatics.pqeq.PQEq` runs it (docs/method/pqeq.md): each cycle solves
the charges exactly for the current shells by projected preconditioned conjugate gradients
inside the charge constraints (``PublishedSolve._solve_charges``), then moves the shells
once, d = F/K_s (F: the Coulomb and field force on the shell, so d − (∂E/∂d)/K_s), capped at
``shell_cap`` Å.
Mixed into PQEq (its parameters, Coulomb module and ``PQEq._gradients``).  Charges e, shell
displacements Å, ∂E/∂q eV/e, ∂E/∂d eV/Å; no autograd.
"""

from typing import Tuple

import torch

from ..constraints import group_sum, project_out_group_means, project_preconditioned
from ..kernels import safe_norm
from ..solver_stats import SolverStats
from .cycles import inverse_spring_constants
from .problem import SolveProblem


class PublishedSolve:
    """Charges and shells of the published two-cycle practice (see the module docstring); the
    attributes it reads (``coulomb``, ``charge_tolerance``, ``max_iterations`` (2),
    ``max_cg_iterations``, ``shell_cap``) are :class:`~openmm_pqeq.electrostatics.pqeq.PQEq`'s."""

    def _solve_published(
        self, problem: SolveProblem, q: torch.Tensor, d: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, SolverStats]:
        """The published practice: ``max_iterations`` (2) cycles of {exact charge solve,
        one-shot shell update d = F/K_s capped at ``shell_cap``}, from charges ``q`` (N,) e and
        shells ``d`` (N, 3) Å at the fixed inputs of ``problem`` (:class:`.problem.SolveProblem`;
        its pairs all count, whatever their distance)."""
        groups, counts = problem.groups, problem.counts
        inv_ks = inverse_spring_constants(problem.params)
        cg_tolerance = 1e-3 * self.charge_tolerance
        iterations = 0
        cg_iterations = 0
        worst_solve = 0.0
        q_res = float("inf")
        d_res = float("inf")
        for _ in range(self.max_iterations + 1):
            gq, gd, _ = self._gradients(problem, q, d, 0.0)
            q_res = float(project_out_group_means(gq, groups, counts).abs().max())
            d_res = float(gd.abs().max())
            if iterations == self.max_iterations:
                break
            delta, n_cg, solve_res = self._solve_charges(problem, -gq, cg_tolerance)
            q = q + delta
            cg_iterations += n_cg
            worst_solve = max(worst_solve, solve_res)
            gq, gd, _ = self._gradients(problem, q, d, 0.0)
            d = d - gd * inv_ks.unsqueeze(1)
            if self.shell_cap > 0:
                norm = safe_norm(d).unsqueeze(1)
                d = torch.where(norm > self.shell_cap, d * self.shell_cap / torch.where(norm > 0, norm, torch.ones_like(norm)), d)
            iterations += 1
        # a fixed number of cycles, so the final charges are not stationary for the final
        # shells (q_res, d_res report that); "converged" reports the charge solves themselves
        converged = worst_solve <= cg_tolerance
        return q, d, SolverStats(iterations, cg_iterations, q_res, d_res, converged)

    def _solve_charges(
        self, problem: SolveProblem, rhs: torch.Tensor, tolerance: float,
    ) -> Tuple[torch.Tensor, int, float]:
        """Solve ``A δ = rhs`` (rhs (N,) eV/e, δ (N,) e) in the constraint subspace by projected
        preconditioned CG (A: charge Hessian, J on the diagonal plus the core–core Coulomb block
        :meth:`~openmm_pqeq.electrostatics.coulomb.GaussianCoulomb.hessian_matvec`; Jacobi 1/J
        per charge group).  Returns (δ, iterations,
        final projected residual max-norm in eV/e)."""
        p, groups, counts = problem.params, problem.groups, problem.counts
        inv_diag = 1.0 / p["J"]
        weight_sums = group_sum(inv_diag, groups, counts.shape[0])
        delta = torch.zeros_like(rhs)
        # The residual is kept projected (group means removed): its group-constant part is the
        # Lagrange multiplier, orders of magnitude larger than the residual near convergence.
        r = project_out_group_means(rhs, groups, counts)
        z = project_preconditioned(r, inv_diag, groups, weight_sums)
        direction = z.clone()
        rz = (r * z).sum()
        residual = float(r.abs().max())
        iterations = 0
        while residual > tolerance and iterations < self.max_cg_iterations:
            hp = p["J"] * direction + self.coulomb.hessian_matvec(problem.cache, problem.i, problem.j, direction)
            curvature = (direction * hp).sum()
            if not bool(curvature > 0) or not bool(rz > 0):
                break
            step = rz / curvature
            delta = delta + step * direction
            r = project_out_group_means(r - step * hp, groups, counts)
            z = project_preconditioned(r, inv_diag, groups, weight_sums)
            rz_new = (r * z).sum()
            direction = z + (rz_new / rz) * direction
            rz = rz_new
            iterations += 1
            residual = float(r.abs().max())
        return delta, iterations, residual
