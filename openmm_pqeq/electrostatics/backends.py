"""Two interchangeable back ends for the hot loops of the charge/shell solve.

- :class:`TorchKernels`: pure PyTorch (:mod:`.realspace`), runs everywhere.
- :class:`CustomOpKernels`: the compiled operators ``torch.ops.openmm_pqeq.*`` from
  ``plugin/`` (multi-threaded CPU, CUDA), loaded by :mod:`openmm_pqeq.ops`.

Both expose the same methods with the same arguments and results (to rounding: the
operators sum in another order), so :class:`.coulomb.GaussianCoulomb` holds one of them and a
scripted model contains only the one chosen at construction (TorchScript resolves
``torch.ops.openmm_pqeq.*`` when scripting, so the fallback class never names them).  Which
kernel a pair sum uses, and its cutoffs, come as one :class:`.realspace_kernel.RealSpaceKernel`.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from . import realspace
from .reciprocal import spline_stencils
from .realspace_kernel import RealSpaceKernel


class _Kernels(torch.nn.Module):
    """What both back ends share: ``uses_custom_ops``, from the class's ``USES_CUSTOM_OPS``."""

    USES_CUSTOM_OPS = False

    def __init__(self):
        super().__init__()
        self.uses_custom_ops: bool = self.USES_CUSTOM_OPS


class TorchKernels(_Kernels):
    """Pure-PyTorch pair sums (see :mod:`.realspace` for the arguments)."""

    def core_kernel(
        self, vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
        settings: RealSpaceKernel,
    ) -> torch.Tensor:
        return realspace.core_kernel(vec, exponents, edge_i, edge_j, settings.method, settings.beta,
                                     settings.coulomb_constant, settings.taper_cutoff, settings.cutoff)

    def matvec(self, kernel: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return realspace.pair_matvec(kernel, edge_i, edge_j, x)

    def kernel_derivatives(
        self, vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
        settings: RealSpaceKernel,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """K, K'/r and (K'' − K'/r)/r² per pair (methods 0 and 1; ``settings.taper_cutoff`` unused)."""
        return realspace.kernel_derivatives(vec, exponents, edge_i, edge_j, settings.method, settings.beta,
                                            settings.coulomb_constant, settings.cutoff)

    def hessian_matvec(
        self, vec: torch.Tensor, kernel: torch.Tensor, kernel_a: torch.Tensor, kernel_b: torch.Tensor,
        edge_i: torch.Tensor, edge_j: torch.Tensor, net_charges: torch.Tensor, shell_charges: torch.Tensor,
        x_charges: torch.Tensor, x_shells: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return realspace.pair_hessian_matvec(vec, kernel, kernel_a, kernel_b, edge_i, edge_j, net_charges,
                                             shell_charges, x_charges, x_shells)

    def site_potentials(
        self, vec: torch.Tensor, kernel: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
        core_charges: torch.Tensor, shell_charges: torch.Tensor, shell_displacements: torch.Tensor,
        settings: RealSpaceKernel,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return realspace.site_potentials(vec, kernel, exponents, edge_i, edge_j, core_charges, shell_charges,
                                         shell_displacements, settings.method, settings.beta,
                                         settings.coulomb_constant, settings.taper_cutoff, settings.cutoff)

    def pair_energy(
        self, vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
        core_charges: torch.Tensor, shell_charges: torch.Tensor, shell_displacements: torch.Tensor,
        settings: RealSpaceKernel,
    ) -> torch.Tensor:
        """Real-space energy (eV), differentiable in every tensor argument."""
        return _torch_pair_energy(vec, exponents, edge_i, edge_j, core_charges, shell_charges, shell_displacements,
                                  settings)

    def pair_energy_known(
        self, energy: torch.Tensor, vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor,
        edge_j: torch.Tensor, core_charges: torch.Tensor, shell_charges: torch.Tensor,
        shell_displacements: torch.Tensor, settings: RealSpaceKernel,
    ) -> torch.Tensor:
        """Real-space energy (eV) whose value ``energy`` () is known already (from the site
        potentials at the same charges and shells), differentiable by ``vec``.  Here it is
        simply recomputed (same value to rounding)."""
        return self.pair_energy(vec, exponents, edge_i, edge_j, core_charges, shell_charges, shell_displacements,
                                settings)

    def pme_stencils(
        self, positions: torch.Tensor, frac: torch.Tensor, shape: List[int], order: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Stencils (indices, weights) of fixed sites, reused by :meth:`pme_spread` and
        :meth:`pme_gather` (the operators compute them on the fly and return empty tensors)."""
        index, weights, _ = spline_stencils(positions, frac, shape, order, False)
        return index, weights

    def pme_spread(
        self, positions: torch.Tensor, charges: torch.Tensor, frac: torch.Tensor, shape: List[int], order: int,
        index: torch.Tensor, weights: torch.Tensor, dipoles: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Mesh charges ``(K1·K2·K3,)`` of site charges ``(n,)`` and, when given, point
        dipoles ``(n, 3)`` e·Å at the sites (stencils from ``index``, ``weights`` when given,
        else computed)."""
        if dipoles is not None:
            index, weights, grad = spline_stencils(positions, frac, shape, order, True)
            values = weights * charges.unsqueeze(1) + (grad * dipoles.unsqueeze(1)).sum(2)
        else:
            if index.numel() == 0:
                index, weights, _ = spline_stencils(positions, frac, shape, order, False)
            values = weights * charges.unsqueeze(1)
        mesh = torch.zeros(shape[0] * shape[1] * shape[2], dtype=charges.dtype, device=charges.device)
        return mesh.index_add_(0, index.reshape(-1), values.reshape(-1))

    def pme_gather(
        self, positions: torch.Tensor, mesh: torch.Tensor, frac: torch.Tensor, shape: List[int], order: int,
        gradient: bool, index: torch.Tensor, weights: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Interpolated mesh values ``(n,)`` at the sites and, when ``gradient``, their
        gradient by the site positions ``(n, 3)`` (else ``(0, 3)``)."""
        if gradient:
            index, weights, grad_weights = spline_stencils(positions, frac, shape, order, True)
            values = mesh.index_select(0, index.reshape(-1)).reshape(index.shape)
            grad = (grad_weights * values.unsqueeze(2)).sum(1)
            return (weights * values).sum(1), grad
        if index.numel() == 0:
            index, weights, _ = spline_stencils(positions, frac, shape, order, False)
        values = mesh.index_select(0, index.reshape(-1)).reshape(index.shape)
        return (weights * values).sum(1), torch.zeros(0, 3, dtype=mesh.dtype, device=mesh.device)


class CustomOpKernels(_Kernels):
    """The same pair sums by the compiled operators ``torch.ops.openmm_pqeq.*``."""

    USES_CUSTOM_OPS = True

    def core_kernel(
        self, vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
        settings: RealSpaceKernel,
    ) -> torch.Tensor:
        return torch.ops.openmm_pqeq.core_kernel(vec, exponents, edge_i, edge_j, settings.method, settings.beta,
                                                 settings.coulomb_constant, settings.taper_cutoff, settings.cutoff)

    def matvec(self, kernel: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:
            return torch.ops.openmm_pqeq.pair_matvec(kernel, edge_i, edge_j, x.unsqueeze(1)).squeeze(1)
        return torch.ops.openmm_pqeq.pair_matvec(kernel, edge_i, edge_j, x)

    def kernel_derivatives(
        self, vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
        settings: RealSpaceKernel,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = torch.ops.openmm_pqeq.kernel_derivatives(vec, exponents, edge_i, edge_j, settings.method, settings.beta,
                                                       settings.coulomb_constant, settings.cutoff)
        return out[0], out[1], out[2]

    def hessian_matvec(
        self, vec: torch.Tensor, kernel: torch.Tensor, kernel_a: torch.Tensor, kernel_b: torch.Tensor,
        edge_i: torch.Tensor, edge_j: torch.Tensor, net_charges: torch.Tensor, shell_charges: torch.Tensor,
        x_charges: torch.Tensor, x_shells: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        out = torch.ops.openmm_pqeq.pair_hessian_matvec(vec, kernel, kernel_a, kernel_b, edge_i, edge_j, net_charges,
                                                        shell_charges, x_charges, x_shells)
        return out[0], out[1]

    def site_potentials(
        self, vec: torch.Tensor, kernel: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
        core_charges: torch.Tensor, shell_charges: torch.Tensor, shell_displacements: torch.Tensor,
        settings: RealSpaceKernel,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = torch.ops.openmm_pqeq.site_potentials(vec, kernel, exponents, edge_i, edge_j, core_charges, shell_charges,
                                                    shell_displacements, settings.method, settings.beta,
                                                    settings.coulomb_constant, settings.taper_cutoff, settings.cutoff)
        return out[0], out[1], out[2]

    def pair_energy(
        self, vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
        core_charges: torch.Tensor, shell_charges: torch.Tensor, shell_displacements: torch.Tensor,
        settings: RealSpaceKernel,
    ) -> torch.Tensor:
        """Real-space energy (eV); the operator differentiates by ``vec`` only, so gradients by
        charges, shells or exponents (e.g. a charge Hessian by autograd) use the PyTorch twin."""
        if _needs_gradients_beyond_vec(exponents, core_charges, shell_charges, shell_displacements):
            return _torch_pair_energy(vec, exponents, edge_i, edge_j, core_charges, shell_charges,
                                      shell_displacements, settings)
        return torch.ops.openmm_pqeq.pair_energy(vec, exponents, edge_i, edge_j, core_charges, shell_charges,
                                                 shell_displacements, settings.method, settings.beta,
                                                 settings.coulomb_constant, settings.taper_cutoff, settings.cutoff)

    def pair_energy_known(
        self, energy: torch.Tensor, vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor,
        edge_j: torch.Tensor, core_charges: torch.Tensor, shell_charges: torch.Tensor,
        shell_displacements: torch.Tensor, settings: RealSpaceKernel,
    ) -> torch.Tensor:
        """The given value, no pair loop; the gradient by ``vec`` is the one of :meth:`pair_energy`."""
        if _needs_gradients_beyond_vec(exponents, core_charges, shell_charges, shell_displacements):
            return _torch_pair_energy(vec, exponents, edge_i, edge_j, core_charges, shell_charges,
                                      shell_displacements, settings)
        return torch.ops.openmm_pqeq.pair_energy_known(energy, vec, exponents, edge_i, edge_j, core_charges,
                                                       shell_charges, shell_displacements, settings.method,
                                                       settings.beta, settings.coulomb_constant,
                                                       settings.taper_cutoff, settings.cutoff)

    def pme_stencils(
        self, positions: torch.Tensor, frac: torch.Tensor, shape: List[int], order: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        empty = torch.zeros(0, 0, dtype=positions.dtype, device=positions.device)
        return empty.to(torch.long), empty

    def pme_spread(
        self, positions: torch.Tensor, charges: torch.Tensor, frac: torch.Tensor, shape: List[int], order: int,
        index: torch.Tensor, weights: torch.Tensor, dipoles: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        return torch.ops.openmm_pqeq.pme_spread(positions, charges, frac, shape, order, dipoles)

    def pme_gather(
        self, positions: torch.Tensor, mesh: torch.Tensor, frac: torch.Tensor, shape: List[int], order: int,
        gradient: bool, index: torch.Tensor, weights: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        out = torch.ops.openmm_pqeq.pme_gather(positions, mesh, frac, shape, order, gradient)
        return out[0], out[1]


def _torch_pair_energy(
    vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
    core_charges: torch.Tensor, shell_charges: torch.Tensor, shell_displacements: torch.Tensor,
    settings: RealSpaceKernel,
) -> torch.Tensor:
    """Real-space energy (eV) by :func:`.realspace.pair_energy`, differentiable in every tensor."""
    return realspace.pair_energy(vec, exponents, edge_i, edge_j, core_charges, shell_charges, shell_displacements,
                                 settings.method, settings.beta, settings.coulomb_constant, settings.taper_cutoff,
                                 settings.cutoff)


def _needs_gradients_beyond_vec(
    exponents: torch.Tensor, core_charges: torch.Tensor, shell_charges: torch.Tensor,
    shell_displacements: torch.Tensor,
) -> bool:
    """Whether an energy must be differentiable by more than the pair vectors (the operators'
    energies are not: the PyTorch twin then computes it)."""
    return (core_charges.requires_grad or shell_charges.requires_grad or shell_displacements.requires_grad
            or exponents.requires_grad)
