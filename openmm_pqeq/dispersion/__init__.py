"""DFT-D3 dispersion (Grimme et al. 2010; Becke–Johnson damping: Grimme, Ehrlich, Goerigk 2011).

>>> from openmm_pqeq.dispersion import D3Dispersion
>>> D3Dispersion().cutoff
12.5
"""

from openmm_pqeq.dispersion.d3 import D3Dispersion
from openmm_pqeq.dispersion.d3_params import available_functionals, damping_parameters

__all__ = ["D3Dispersion", "available_functionals", "damping_parameters"]
