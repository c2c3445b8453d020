"""The state of the charge/shell Newton cycles both physical-mode solves share (docs/method/solver.md).

The global solve (:mod:`.physical`) iterates x = (q (N,), d (3N,)), the split-charge solve
(:mod:`openmm_pqeq.electrostatics.splitcharge`) x = (u (B,), d (3N,)); both take one Newton step
per cycle, mix it with the steps of earlier cycles (:func:`.anderson.anderson_update`) and report
the same statistics (:class:`openmm_pqeq.electrostatics.solver_stats.SolverStats`).
:class:`NewtonCycles` holds all of that, so each solve keeps only its own gradient and step.
A TorchScript class: the solves run scripted and frozen in an OpenMM TorchForce.
"""

from typing import Dict, List  # no ``from __future__ import annotations``: TorchScript reads the attribute types

import torch

from ..solver_stats import SolverStats
from .anderson import anderson_update


def inverse_spring_constants(p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """1/K_s (N,) Å²/eV of the polarizable atoms, 0 for the others (per-atom parameters ``p``
    as :meth:`openmm_pqeq.electrostatics.pqeq.PQEq.atom_parameters` returns them)."""
    pol = p["pol"]
    return torch.where(pol > 0, 1.0 / torch.where(pol > 0, p["Ks"], torch.ones_like(p["Ks"])),
                       torch.zeros_like(p["Ks"]))


class NewtonCycles:
    """Iterate, Anderson history and statistics of a Newton solve of charge variables and shells.

    Parameters
    ----------
    charge_variables : (M,) the charge variables of the start (charges e, or scaled split charges √eV).
    shells : (N, 3) Å, the shell displacements of the start.
    charge_metric : (M,) energy scale of each charge variable in the Anderson least squares
        (J in eV/e² for charges, 1 for scaled split charges).
    shell_metric : (N,) eV/Å², the shells' scale (K_s, 0 for non-polarizable atoms).
    depth : number of earlier steps Anderson mixes in (0: plain Newton steps).
    """

    def __init__(self, charge_variables: torch.Tensor, shells: torch.Tensor, charge_metric: torch.Tensor,
                 shell_metric: torch.Tensor, depth: int):
        n = shells.shape[0]
        self.n_charge_variables: int = charge_variables.shape[0]
        self.n_atoms: int = n
        self.x: torch.Tensor = torch.cat([charge_variables, shells.reshape(-1)])
        # metric of the Anderson least-squares problem: energy units, so charges and shells weigh alike
        self.weight: torch.Tensor = torch.cat([charge_metric, shell_metric.unsqueeze(1).expand(n, 3).reshape(-1)]).sqrt()
        self.depth: int = depth
        self.x_prev: torch.Tensor = self.x
        self.f_prev: torch.Tensor = torch.zeros_like(self.x)
        self.hist_dx: List[torch.Tensor] = []
        self.hist_df: List[torch.Tensor] = []
        self.iterations: int = 0
        self.cg_iterations: int = 0
        self.charge_residual: float = float("inf")
        self.shell_residual: float = float("inf")
        self.converged: bool = False

    def charge_variables(self) -> torch.Tensor:
        """The charge variables (M,) of the current iterate."""
        return self.x[: self.n_charge_variables]

    def shells(self) -> torch.Tensor:
        """The shell displacements (N, 3) Å of the current iterate."""
        return self.x[self.n_charge_variables:].reshape(self.n_atoms, 3)

    def finished(self, charge_residual: float, shell_residual: float, charge_tolerance: float,
                 shell_tolerance: float, max_iterations: int) -> bool:
        """Record the residuals at the current iterate (eV/e, eV/Å) and say whether to stop:
        both within their tolerances (then ``converged``), or ``max_iterations`` cycles taken."""
        self.charge_residual = charge_residual
        self.shell_residual = shell_residual
        if charge_residual <= charge_tolerance and shell_residual <= shell_tolerance:
            self.converged = True
            return True
        return self.iterations >= max_iterations

    def step(self, charge_step: torch.Tensor, shell_step: torch.Tensor, cg_iterations: int) -> None:
        """Take the Newton step ``(charge_step (M,), shell_step (N, 3))`` that ``cg_iterations``
        conjugate-gradient iterations found, mixed with the earlier ones."""
        f = torch.cat([charge_step, shell_step.reshape(-1)])
        x_new, hist_dx, hist_df = anderson_update(self.x, f, self.x_prev, self.f_prev, self.iterations == 0,
                                                  self.hist_dx, self.hist_df, self.weight, self.depth)
        self.hist_dx = hist_dx
        self.hist_df = hist_df
        self.x_prev = self.x
        self.f_prev = f
        self.x = x_new
        self.cg_iterations += cg_iterations
        self.iterations += 1

    def stats(self) -> SolverStats:
        """The statistics of the solve so far."""
        return SolverStats(self.iterations, self.cg_iterations, self.charge_residual, self.shell_residual,
                           self.converged)
