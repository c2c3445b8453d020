"""Reciprocal space of the Ewald-split Gaussian Coulomb sum: the exact Ewald sum
(:mod:`.ewald`), smooth particle-mesh Ewald (:mod:`.pme`) and the self and background terms
both add (:mod:`.background`)."""

from .background import self_and_background
from .ewald import EwaldReciprocal
from .pme import PMEReciprocal, mesh_wavenumbers_squared, spline_stencils

__all__ = ["EwaldReciprocal", "PMEReciprocal", "mesh_wavenumbers_squared", "self_and_background", "spline_stencils"]
