"""Analysis of field-driven MD: polarization, molecular dipoles and their orientation, the
static dielectric constant, radial distribution functions and IR spectra.

NumPy only at import (mdtraj is imported by the functions that read trajectories).  Units:
Å, e, e·Å, e/Å², V/Å, K, ps/fs as the names say.  :func:`load_md_run` reads an
``openmm-pqeq md`` output folder; ``openmm-pqeq analyze`` runs all of it.

>>> import numpy as np
>>> from openmm_pqeq.analysis import orientation_cosines
>>> float(orientation_cosines(np.array([[0.0, 0.0, 2.0]]))[0])
1.0
"""

from .correlation import autocorrelation, block_average, integrated_correlation_time, split_blocks
from .dielectric import (DielectricEstimate, dielectric_fluctuation, dielectric_linear_response, fluctuation_epsilon,
                         fluctuation_run_length)
from .dipoles import (dipole_distribution, molecular_dipoles, orientation_cosines, polarization, unit_vector,
                      whole_molecules)
from .rdf import first_peak, oxygen_rdf, radial_distribution
from .run import MDRun, load_md_run, read_table, read_thermo
from .spectra import IRSpectrum, ir_spectrum, spectrum_peaks
from .vibrations import dipole_trajectory, mode_velocities, normal_modes, relaxed

__all__ = [
    "DielectricEstimate", "IRSpectrum", "MDRun", "autocorrelation", "block_average", "dielectric_fluctuation",
    "dielectric_linear_response", "dipole_distribution", "dipole_trajectory", "first_peak", "fluctuation_epsilon",
    "fluctuation_run_length", "integrated_correlation_time", "ir_spectrum", "load_md_run", "mode_velocities",
    "molecular_dipoles", "normal_modes", "orientation_cosines", "oxygen_rdf", "polarization", "radial_distribution",
    "read_table", "read_thermo", "relaxed", "split_blocks", "spectrum_peaks", "unit_vector", "whole_molecules",
]
