"""The charge/shell solves of :class:`~openmm_pqeq.electrostatics.pqeq.PQEq` (docs/method/solver.md).

- :mod:`.physical`: the physical mode with global charge transfer (inexact Newton steps by
  projected preconditioned conjugate gradients, Anderson mixing);
- :mod:`.published`: the published ReaxNet two-cycle solve (mode ``"reaxnet"``);
- :mod:`.cycles`: the Newton-cycle state (iterate, Anderson history, statistics) that the physical
  solve and the split-charge solve (:mod:`openmm_pqeq.electrostatics.splitcharge`) share;
- :mod:`.anderson`: Anderson acceleration;
- :mod:`.problem`: what one solve holds fixed (:class:`~.problem.SolveProblem`).

The two solves are mixed into PQEq (they use its parameters and Coulomb module), so a scripted
and frozen model (an OpenMM TorchForce) holds them as its own methods.
"""

from .physical import PhysicalSolve
from .problem import SolveProblem
from .published import PublishedSolve

__all__ = ["PhysicalSolve", "PublishedSolve", "SolveProblem"]
