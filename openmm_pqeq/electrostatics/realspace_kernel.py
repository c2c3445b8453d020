"""Which real-space pair kernel a pair sum uses, and where it ends (:mod:`.realspace`).

One NamedTuple instead of five arguments, so that both back ends (:mod:`.backends`) take the
same short argument lists; a NamedTuple is read by TorchScript (the model runs scripted and
frozen in an OpenMM TorchForce).
"""

from typing import NamedTuple  # no ``from __future__ import annotations``: TorchScript reads the field types


class RealSpaceKernel(NamedTuple):
    """Settings of the pair kernel (the formulas are in :mod:`.realspace`).

    ``method``: kernel code (``METHOD_DIRECT`` 0, ``METHOD_EWALD`` 1, ``METHOD_TAPERED`` 2);
    ``beta``: Ewald splitting parameter β (Å⁻¹; used by method 1); ``coulomb_constant``: k_e
    (eV·Å/e²); ``taper_cutoff``: where the taper of method 2 reaches zero (Å);
    ``cutoff``: pairs of atoms this far apart (Å) or more are skipped (``<= 0``: none).
    """

    method: int
    beta: float
    coulomb_constant: float
    taper_cutoff: float
    cutoff: float
