"""PQEq electrostatics: parameters, Gaussian Coulomb kernels, Ewald/PME, the charge solve."""

from .coulomb import GaussianCoulomb
from .parameters import PARAMETER_SETS, element_parameters, parameter_table
from .pqeq import PQEq

__all__ = ["GaussianCoulomb", "PQEq", "PARAMETER_SETS", "element_parameters", "parameter_table"]
