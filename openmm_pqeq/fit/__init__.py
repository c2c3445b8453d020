"""Refinement of PQEq parameters against DFT response data (``openmm-pqeq fit-pqeq``)."""

from .pqeq_fit import FitConfig, fit, load_structures, loss_terms, metrics, predict  # noqa: F401
