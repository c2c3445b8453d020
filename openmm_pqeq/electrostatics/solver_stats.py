"""What a PQEq charge/shell solve reports about itself (docs/method/solver.md).

A NamedTuple, so that the solvers return their statistics by name inside TorchScript too (the
model runs scripted and frozen in an OpenMM TorchForce).
"""

from typing import NamedTuple  # no ``from __future__ import annotations``: TorchScript reads the field types


class SolverStats(NamedTuple):
    """Statistics of one solve.

    ``iterations``: charge/shell cycles; ``cg_iterations``: conjugate-gradient iterations of
    all cycles together; ``charge_residual``: max |∂E/∂q_i − μ_g| (eV/e) and
    ``shell_residual``: max |∂E/∂d_i| (eV/Å) at the returned solution; ``converged``: both
    within the tolerances (the published two-cycle solve: its charge solves converged).
    """

    iterations: int
    cg_iterations: int
    charge_residual: float
    shell_residual: float
    converged: bool
