"""Coulomb energy and potentials of PQEq core/shell Gaussian sites.

Three ways to sum the pair kernel ``k_e erf(α_ij r)/r`` (see :mod:`.kernels`):

- ``"direct"``: open (non-periodic) systems, every pair of atoms, no cutoff.
- ``"ewald"``: periodic cells.  Real space sums ``k_e [erf(α r) - erf(β r)]/r`` over all
  images within the real-space cutoff; reciprocal space is the point-charge Ewald sum of the
  smooth ``erf(β r)/r`` part, by an exact k-space Ewald sum (:mod:`.reciprocal.ewald`) or by smooth
  particle-mesh Ewald (:mod:`.reciprocal.pme`), both including the self-energy and
  neutralizing-background terms.  The reciprocal contribution of the excluded same-atom
  core–shell pair, ``-Q_c Q_s k_e erf(β|d|)/|d|``, is removed.
- ``"tapered"``: the published ReaxNet practice: ``k_e erf(α r)/r`` times the ReaxFF taper,
  truncated at the taper cutoff, minimum-image pairs only.

Pairs come as a half list ``(edge_i, edge_j, shifts)`` (see :mod:`openmm_pqeq.neighbors`).
Each atom pair contributes its four site pairs (core–core, core–shell, shell–core,
shell–shell); the same-atom core–shell pair is excluded (the spring replaces it).
Lengths Å, charges e, energies eV, potentials V (eV/e).

Besides the differentiable :meth:`GaussianCoulomb.energy`, the class offers what the
matrix-free charge/shell solve needs at fixed positions, without autograd:
:meth:`~GaussianCoulomb.setup` (pair vectors, core–core kernel, k-space phases or PME
stencils, computed once per call), :meth:`~GaussianCoulomb.hessian_matvec` (the Coulomb block
of the charge Hessian) and :meth:`~GaussianCoulomb.site_gradients` (potentials at all sites
and the shell gradient, i.e. ∂E/∂q and ∂E/∂d).  Their pair loops run in
:class:`.backends.TorchKernels` or in the compiled operators (:class:`.backends.CustomOpKernels`).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch

from .. import ops
from .._torchscript import constant
from ..neighbors import pair_vectors
from .backends import CustomOpKernels, TorchKernels
from .kernels import safe_norm
from .realspace import METHOD_DIRECT, METHOD_EWALD, METHOD_TAPERED, erf_over_r_and_derivative
from .realspace_kernel import RealSpaceKernel
from .reciprocal import EwaldReciprocal, PMEReciprocal, mesh_wavenumbers_squared, self_and_background

_METHODS = {"direct": METHOD_DIRECT, "ewald": METHOD_EWALD, "tapered": METHOD_TAPERED}

#: How a structure is summed (:meth:`GaussianCoulomb.kind`; the solver's set-up records it;
#: the TorchScript code writes the numbers, as it reads no module-level constants):
#: every listed pair in real space, no reciprocal sum (open systems, the tapered kernel) ...
KIND_REAL_SPACE: int = 0
#: ... Ewald split with the exact k-space sum ...
KIND_EWALD: int = 1
#: ... Ewald split with smooth particle-mesh Ewald.
KIND_PME: int = 2


class GaussianCoulomb(torch.nn.Module):
    """Electrostatics of Gaussian core/shell sites.

    Parameters
    ----------
    method : {"direct", "ewald", "tapered"}
        How pairs are summed (module docstring).  ``"ewald"`` sums an open structure (no
        cell) directly, so one instance serves open and periodic structures.
    coulomb_constant : float
        k_e in eV·Å/e².
    beta : float
        Ewald splitting parameter β (Å⁻¹), used by ``"ewald"``.
    reciprocal : {"ewald", "pme", "auto"}
        Reciprocal-space algorithm for ``"ewald"``: exact k-space sum (cost O(N·K)), smooth
        particle-mesh Ewald (O(N log N)), or PME from ``pme_threshold`` atoms on.
    kspace_tolerance : float
        Relative truncation of the k-space sum (Ewald); the PME mesh is chosen for a
        relative accuracy of ``10 · kspace_tolerance`` of the reciprocal energy.
    taper_cutoff : float
        Cutoff (Å) of the ``"tapered"`` kernel.
    use_custom_ops : bool or None
        Pair loops in the compiled operators (True), in PyTorch (False), or the operators
        when they are loaded (None).
    pme_threshold : int
        Smallest number of atoms summed by PME with ``reciprocal="auto"``.
    """

    def __init__(
        self,
        method: str,
        coulomb_constant: float,
        beta: float = 0.0,
        reciprocal: str = "ewald",
        kspace_tolerance: float = 1e-7,
        taper_cutoff: float = 12.5,
        use_custom_ops: Optional[bool] = None,
        pme_threshold: int = 0,
    ):
        super().__init__()
        if method not in _METHODS:
            raise ValueError(f"`method` is {method!r}; options are 'direct', 'ewald', 'tapered'")
        if reciprocal not in ("ewald", "pme", "auto"):
            raise ValueError(f"`reciprocal` is {reciprocal!r}; options are 'ewald', 'pme', 'auto'")
        if method == "ewald" and not beta > 0:
            raise ValueError(f"`beta` is {beta} Å⁻¹ but must be positive for Ewald sums")
        self.method: str = method
        self.method_code: int = _METHODS[method]
        self.reciprocal: str = reciprocal
        self.pme_threshold: int = int(pme_threshold)
        self.coulomb_constant: float = float(coulomb_constant)
        self.beta: float = float(beta)
        self.taper_cutoff: float = float(taper_cutoff)
        self.ewald = EwaldReciprocal(beta if beta > 0 else 1.0, float(coulomb_constant), kspace_tolerance)
        self.pme = PMEReciprocal(beta if beta > 0 else 1.0, float(coulomb_constant), 10.0 * kspace_tolerance)
        if use_custom_ops is None:
            use_custom_ops = ops.has_custom_ops()
        elif use_custom_ops and not ops.has_custom_ops():
            raise ValueError("`use_custom_ops` is True but the openmm_pqeq operators are not built: "
                             + ops.unavailable_reason())
        self.kernels = CustomOpKernels() if use_custom_ops else TorchKernels()
        self.uses_custom_ops: bool = bool(use_custom_ops)

    def kind(self, n_atoms: int, cell: Optional[torch.Tensor]) -> int:
        """How a structure of ``n_atoms`` atoms in ``cell`` (None: open) is summed:
        :data:`KIND_REAL_SPACE`, :data:`KIND_EWALD` or :data:`KIND_PME`."""
        if cell is None or self.method != "ewald":
            return 0  # KIND_REAL_SPACE
        if self.reciprocal == "pme" or (self.reciprocal == "auto" and n_atoms >= self.pme_threshold):
            return 2  # KIND_PME
        return 1  # KIND_EWALD

    def real_space_kernel(self, kind: int, cutoff: float) -> RealSpaceKernel:
        """Pair-kernel settings of a structure summed as ``kind`` (:meth:`kind`), with atom pairs
        ``cutoff`` Å or more apart skipped (``<= 0``: none)."""
        method = self.method_code
        if self.method == "ewald" and kind == 0:  # KIND_REAL_SPACE
            method = 0  # METHOD_DIRECT
        return RealSpaceKernel(method, self.beta, self.coulomb_constant, self.taper_cutoff, cutoff)

    def _reciprocal_potential(
        self, positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor, kind: int
    ) -> torch.Tensor:
        """Per-site V (n, c) with E_recip = Σ Q V (self and background included)."""
        if kind == 2:  # KIND_PME
            return self.pme(charges, cell, positions)
        return self.ewald(charges, cell, positions)

    # ------------------------------------------------------ differentiable energy
    def energy(
        self,
        positions: torch.Tensor,
        shell_displacements: torch.Tensor,
        core_charges: torch.Tensor,
        shell_charges: torch.Tensor,
        exponents: torch.Tensor,
        cell: Optional[torch.Tensor],
        edge_i: torch.Tensor,
        edge_j: torch.Tensor,
        shifts: torch.Tensor,
        cutoff: float = 0.0,
        real_space_energy: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Coulomb energy (eV) of cores at ``positions`` (N, 3) Å with charges ``core_charges``
        (N,) e and shells at ``positions + shell_displacements`` with ``shell_charges`` (N,) e.
        ``exponents`` (N,) Å⁻² are the Gaussian exponents a_i; atom pairs ``cutoff`` Å or more
        apart are skipped (``cutoff <= 0``: none).  Differentiable in all inputs.

        ``real_space_energy`` (), when given, is the value of the real-space pair sum at these
        charges and shells (:meth:`site_gradients` returns it): the pair loop then runs only in
        the backward pass (compiled operators; the PyTorch back end recomputes it)."""
        kind = self.kind(positions.shape[0], cell)
        settings = self.real_space_kernel(kind, cutoff)
        vec = pair_vectors(positions, cell, edge_i, edge_j, shifts)
        if real_space_energy is None:
            energy = self.kernels.pair_energy(vec, exponents, edge_i, edge_j, core_charges, shell_charges,
                                              shell_displacements, settings)
        else:
            energy = self.kernels.pair_energy_known(real_space_energy, vec, exponents, edge_i, edge_j, core_charges,
                                                    shell_charges, shell_displacements, settings)
        if cell is not None and kind != 0:  # KIND_REAL_SPACE
            sites = torch.cat([positions, positions + shell_displacements], dim=0)
            charges = torch.cat([core_charges, shell_charges], dim=0).unsqueeze(1)
            energy = energy + (charges * self._reciprocal_potential(sites, charges, cell, kind)).sum()
            # remove the excluded same-atom core-shell pair from the reciprocal sum
            f, _ = erf_over_r_and_derivative(torch.full_like(core_charges, self.beta),
                                             safe_norm(shell_displacements))
            energy = energy - self.coulomb_constant * (core_charges * shell_charges * f).sum()
        return energy

    # ------------------------------------------------- solver (fixed positions)
    def setup(
        self,
        positions: torch.Tensor,
        exponents: torch.Tensor,
        cell: Optional[torch.Tensor],
        edge_i: torch.Tensor,
        edge_j: torch.Tensor,
        shifts: torch.Tensor,
        cutoff: float,
    ) -> Dict[str, torch.Tensor]:
        """Everything the solve reuses at fixed positions (no autograd): how the structure is
        summed ``kind`` (1,) (:meth:`kind`; the other methods read it from here), pair vectors
        ``vec`` (P, 3) Å, core–core kernel ``kernel`` (P,) V/e (zero beyond ``cutoff``), and
        for the reciprocal sum the k-vectors with weights and the phases at the cores
        (Ewald) or the mesh, influence function and core stencils (PME)."""
        with torch.no_grad():
            pos = constant(positions)
            kind = self.kind(pos.shape[0], cell)
            settings = self.real_space_kernel(kind, cutoff)
            vec = pair_vectors(pos, cell, edge_i, edge_j, shifts)
            # host-side, like pme_shape: read back with int() without a device synchronization
            cache: Dict[str, torch.Tensor] = {"kind": torch.tensor([kind], dtype=torch.long, device="cpu"),
                                              "vec": vec}
            if self.method == "tapered":
                cache["kernel"] = self.kernels.core_kernel(vec, exponents, edge_i, edge_j, settings)
            else:
                # K, K'/r and (K'' − K'/r)/r²: the second ones for the (charge, shell) Hessian model
                kernel, kernel_a, kernel_b = self.kernels.kernel_derivatives(vec, exponents, edge_i, edge_j, settings)
                cache["kernel"] = kernel
                cache["kernel_a"] = kernel_a
                cache["kernel_b"] = kernel_b
            if cell is not None and kind != 0:  # KIND_REAL_SPACE
                c = constant(cell)
                volume = torch.abs(torch.linalg.det(c))
                cache["volume"] = volume.reshape(1)
                if kind == 2:  # KIND_PME
                    shape = self.pme.mesh_shape(c)
                    frac = self.pme.frac_matrix(c, shape)
                    index, weights = self.kernels.pme_stencils(pos, frac, shape, self.pme.order)
                    cache["positions"] = pos
                    # host-side on purpose: read back with .tolist(), which needs no device synchronization
                    cache["pme_shape"] = torch.tensor(shape, dtype=torch.long, device="cpu")
                    cache["pme_frac"] = frac
                    cache["pme_influence"] = self.pme.influence(c, shape)
                    cache["pme_index"] = index
                    cache["pme_weights"] = weights
                else:
                    k = self.ewald.kvectors(c)
                    k2 = (k * k).sum(1)
                    weight = (8.0 * math.pi * self.coulomb_constant) * torch.exp(
                        -k2 / (4.0 * self.beta * self.beta)) / (k2 * volume)
                    phase = pos @ k.transpose(0, 1)
                    cache["ewald_k"] = k
                    cache["ewald_weight"] = weight
                    cache["ewald_cos"] = torch.cos(phase)
                    cache["ewald_sin"] = torch.sin(phase)
        return cache

    def _pme_mesh_potential(self, cache: Dict[str, torch.Tensor], mesh_charges: torch.Tensor) -> torch.Tensor:
        shape: List[int] = cache["pme_shape"].tolist()
        mesh = mesh_charges.reshape(shape[0], shape[1], shape[2])
        spectrum = torch.fft.rfftn(mesh)
        total = shape[0] * shape[1] * shape[2]
        return (torch.fft.irfftn(spectrum * cache["pme_influence"], s=shape) * float(total)).reshape(-1)

    def _pme_spread_cores(
        self, cache: Dict[str, torch.Tensor], charges: torch.Tensor, dipoles: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Mesh charges of charges (N,) and, when given, point dipoles (N, 3) at the cores (the
        cached stencils)."""
        shape: List[int] = cache["pme_shape"].tolist()
        return self.kernels.pme_spread(cache["positions"], charges, cache["pme_frac"], shape, self.pme.order,
                                       cache["pme_index"], cache["pme_weights"], dipoles)

    def _pme_field(
        self, cache: Dict[str, torch.Tensor], mesh_phi: torch.Tensor, sites: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Interpolated mesh potential (n,) and its gradient (n, 3) at any ``sites`` (n, 3) Å
        (stencils computed on the fly)."""
        shape: List[int] = cache["pme_shape"].tolist()
        none = torch.zeros(0, 0, dtype=torch.long, device=sites.device)
        return self.kernels.pme_gather(sites, mesh_phi, cache["pme_frac"], shape, self.pme.order, True, none,
                                       none.to(sites.dtype))

    def _ewald_field(
        self, cache: Dict[str, torch.Tensor], cos: torch.Tensor, sin: torch.Tensor, s_re: torch.Tensor,
        s_im: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Potential (n,) and its gradient (n, 3) of the weighted structure factors ``(s_re, s_im)``
        (K,) at sites with phases ``cos``, ``sin`` (n, K) (exact Ewald sum)."""
        return cos @ s_re + sin @ s_im, (cos * s_im - sin * s_re) @ cache["ewald_k"]

    def hessian_matvec(
        self, cache: Dict[str, torch.Tensor], edge_i: torch.Tensor, edge_j: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """Coulomb block of the charge Hessian times ``x`` (N,): potentials (N,) V at the
        cores due to core charges ``x``."""
        with torch.no_grad():
            y = self.kernels.matvec(cache["kernel"], edge_i, edge_j, x)
            kind = setup_kind(cache)
            if kind != 0:  # KIND_REAL_SPACE
                if kind == 2:  # KIND_PME
                    shape: List[int] = cache["pme_shape"].tolist()
                    phi = self._pme_mesh_potential(cache, self._pme_spread_cores(cache, x))
                    y = y + self.kernels.pme_gather(cache["positions"], phi, cache["pme_frac"], shape, self.pme.order,
                                                    False, cache["pme_index"], cache["pme_weights"])[0]
                else:
                    cos, sin, w = cache["ewald_cos"], cache["ewald_sin"], cache["ewald_weight"]
                    y = y + cos @ (w * (x @ cos)) + sin @ (w * (x @ sin))
                y = y + self_and_background(x, cache["volume"], self.beta, self.coulomb_constant)
        return y

    def hessian_static(
        self, cache: Dict[str, torch.Tensor], net_charges: torch.Tensor, core_charges: torch.Tensor,
        shell_charges: torch.Tensor,
    ) -> torch.Tensor:
        """Per-atom 3×3 blocks (N, 3, 3) eV/Å² of the shell Hessian at zero shell displacement
        that come from the reciprocal sum: ``qs_i ∇∇φ_rec(r_i)``, the field gradient of the
        smooth potential of the net charges, plus the second derivative of the excluded
        same-atom core–shell term, ``qc_i qs_i · 4β³k_e/(3√π)``.  Zero for open systems (the
        real-space blocks are in :meth:`hessian_joint_matvec`).  Call it under ``torch.no_grad()``
        (the solve does)."""
        n = net_charges.shape[0]
        blocks = torch.zeros(n, 3, 3, dtype=net_charges.dtype, device=net_charges.device)
        kind = setup_kind(cache)
        if kind == 0:  # KIND_REAL_SPACE
            return blocks
        if kind == 2:  # KIND_PME
            cores = cache["positions"]
            phi = self._pme_mesh_potential(cache, self._pme_spread_cores(cache, net_charges))
            # ∇∇φ by central differences of the interpolated gradient (a model Hessian: 1e-3 Å suffices)
            h = 1e-3
            rows: List[torch.Tensor] = []
            for c in range(3):
                step = torch.eye(3, dtype=cores.dtype, device=cores.device)[c] * h
                plus = self._pme_field(cache, phi, cores + step)[1]
                minus = self._pme_field(cache, phi, cores - step)[1]
                rows.append((plus - minus) / (2.0 * h))
            blocks = torch.stack(rows, dim=1)
            blocks = 0.5 * (blocks + blocks.transpose(1, 2))
        else:
            k, w = cache["ewald_k"], cache["ewald_weight"]
            cos, sin = cache["ewald_cos"], cache["ewald_sin"]
            coef = cos * (w * (net_charges @ cos)) + sin * (w * (net_charges @ sin))  # (N, K)
            kk = (k.unsqueeze(2) * k.unsqueeze(1)).reshape(-1, 9)
            blocks = -(coef @ kk).reshape(n, 3, 3)
        blocks = shell_charges.view(-1, 1, 1) * blocks
        own = (4.0 * self.beta ** 3 * self.coulomb_constant / (3.0 * math.sqrt(math.pi))) * core_charges * shell_charges
        blocks = blocks + own.view(-1, 1, 1) * torch.eye(3, dtype=blocks.dtype, device=blocks.device)
        return blocks

    def smooth_filter(
        self, cache: Dict[str, torch.Tensor], n_atoms: int, mean_inverse_hardness: float, shell_weight: float,
    ) -> torch.Tensor:
        """Spectral filter ``F(k) = A/(1 + A (⟨1/J⟩ + k² ⟨q_s²/K_s⟩))`` of the long-wavelength
        preconditioner of the Newton steps (PME only; empty otherwise), ``A(k) = ρ Ĉ_β(k)``
        with ρ = N/V and ``Ĉ_β = 4π k_e exp(−k²/4β²)/k²``.

        A wave of effective charge (charges plus divergence of the shell dipoles) of wave
        vector k adds ``A`` times a rank-one term to the Jacobi-scaled Hessian; these are CG's
        outliers, more of them the larger the cell.  F inverts that rank-one term (with
        ⟨1/J⟩ and ⟨q_s²/K_s⟩ averaged over the atoms)."""
        if setup_kind(cache) != 2 or n_atoms == 0:  # KIND_PME
            return torch.zeros(0, dtype=cache["vec"].dtype, device=cache["vec"].device)
        shape: List[int] = cache["pme_shape"].tolist()
        frac = cache["pme_frac"]
        recip = (frac / torch.tensor(shape, dtype=frac.dtype, device=frac.device).unsqueeze(0)).transpose(0, 1)
        m2 = mesh_wavenumbers_squared(recip, shape)
        zero = m2 == 0
        m2 = torch.where(zero, torch.ones_like(m2), m2)
        density = n_atoms / float(cache["volume"][0])
        # ρ Ĉ_β at k = 2πm: ρ k_e exp(−π²m²/β²) / (π m²)
        excess = density * self.coulomb_constant * torch.exp(-(math.pi ** 2 / self.beta ** 2) * m2) / (math.pi * m2)
        k2 = (4.0 * math.pi * math.pi) * m2
        f = excess / (1.0 + excess * (mean_inverse_hardness + k2 * shell_weight))
        return torch.where(zero, torch.zeros_like(f), f)

    def smooth_correction(
        self, cache: Dict[str, torch.Tensor], smooth_filter: torch.Tensor, charges: torch.Tensor,
        dipoles: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``V† F V`` of per-atom charges (N,) and point dipoles (N, 3) on the PME mesh (spread,
        FFT, filter, inverse FFT, interpolate): potentials (N,) and gradients (N, 3) of the
        filtered long-wavelength part, per atom (the mesh density is rescaled to one atom)."""
        shape: List[int] = cache["pme_shape"].tolist()
        mesh = self._pme_spread_cores(cache, charges, dipoles)
        total = shape[0] * shape[1] * shape[2]
        spectrum = torch.fft.rfftn(mesh.reshape(shape[0], shape[1], shape[2])) * smooth_filter
        smooth = torch.fft.irfftn(spectrum, s=shape).reshape(-1) * (float(total) / charges.shape[0])
        return self._pme_field(cache, smooth, cache["positions"])

    def hessian_joint_matvec(
        self, cache: Dict[str, torch.Tensor], edge_i: torch.Tensor, edge_j: torch.Tensor, net_charges: torch.Tensor,
        shell_charges: torch.Tensor, static: torch.Tensor, x_charges: torch.Tensor, x_shells: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Coulomb part of the (charge, shell) Hessian at zero shell displacement (net charges
        ``net_charges`` at the cores) times ``(x_charges (N,), x_shells (N, 3))``: real-space
        pair terms, reciprocal charges and point dipoles ``qs·x_shells`` at the cores, and the
        ``static`` blocks of :meth:`hessian_static`.  The linear model of the Newton steps of
        the physical-mode solve."""
        with torch.no_grad():
            y_q, y_d = self.kernels.hessian_matvec(cache["vec"], cache["kernel"], cache["kernel_a"], cache["kernel_b"],
                                                   edge_i, edge_j, net_charges, shell_charges, x_charges, x_shells)
            y_d = y_d + torch.bmm(static, x_shells.unsqueeze(2)).squeeze(2)
            kind = setup_kind(cache)
            if kind != 0:  # KIND_REAL_SPACE
                dipoles = shell_charges.unsqueeze(1) * x_shells
                if kind == 2:  # KIND_PME
                    mesh = self._pme_spread_cores(cache, x_charges, dipoles)
                    values, gradient = self._pme_field(cache, self._pme_mesh_potential(cache, mesh), cache["positions"])
                else:
                    w, cos, sin = cache["ewald_weight"], cache["ewald_cos"], cache["ewald_sin"]
                    k_mu = dipoles @ cache["ewald_k"].transpose(0, 1)  # (N, K)
                    s_re = w * (x_charges @ cos - (k_mu * sin).sum(0))
                    s_im = w * (x_charges @ sin + (k_mu * cos).sum(0))
                    values, gradient = self._ewald_field(cache, cos, sin, s_re, s_im)
                y_q = y_q + values
                y_d = y_d + shell_charges.unsqueeze(1) * gradient
                y_q = y_q + self_and_background(x_charges, cache["volume"], self.beta, self.coulomb_constant)
        return y_q, y_d

    def site_gradients(
        self,
        cache: Dict[str, torch.Tensor],
        positions: torch.Tensor,
        cell: Optional[torch.Tensor],
        exponents: torch.Tensor,
        edge_i: torch.Tensor,
        edge_j: torch.Tensor,
        core_charges: torch.Tensor,
        shell_charges: torch.Tensor,
        shell_displacements: torch.Tensor,
        cutoff: float,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(φ_core (N,) V, φ_shell (N,) V, ∂E/∂d (N, 3) eV/Å, E_real () eV)`` of the full
        Coulomb energy (real + reciprocal − excluded pair) at fixed positions:
        ``∂E_coul/∂Q_core = φ_core``, ``∂E_coul/∂Q_shell = φ_shell``,
        ``E_coul = ½ Σ (Q_core φ_core + Q_shell φ_shell)``; ``E_real`` is the real-space pair
        sum alone (the value :meth:`energy` can reuse)."""
        with torch.no_grad():
            qc, qs, d = core_charges, shell_charges, shell_displacements
            kind = setup_kind(cache)
            phi_c, phi_s, grad = self.kernels.site_potentials(cache["vec"], cache["kernel"], exponents, edge_i, edge_j,
                                                              qc, qs, d, self.real_space_kernel(kind, cutoff))
            real_energy = 0.5 * ((qc * phi_c).sum() + (qs * phi_s).sum())
            if kind != 0:  # KIND_REAL_SPACE
                shells = constant(positions) + d
                volume = cache["volume"]
                if kind == 2:  # KIND_PME
                    shape: List[int] = cache["pme_shape"].tolist()
                    frac = cache["pme_frac"]
                    order = self.pme.order
                    cores = cache["positions"]
                    index, weights = cache["pme_index"], cache["pme_weights"]
                    none = torch.zeros(0, 0, dtype=torch.long, device=qc.device)
                    mesh = (self._pme_spread_cores(cache, qc)
                            + self.kernels.pme_spread(shells, qs, frac, shape, order, none, none.to(qc.dtype)))
                    mesh_phi = self._pme_mesh_potential(cache, mesh)
                    phi_c = phi_c + self.kernels.pme_gather(cores, mesh_phi, frac, shape, order, False, index,
                                                            weights)[0]
                    values, gradient = self._pme_field(cache, mesh_phi, shells)
                else:
                    w, cos_c, sin_c = cache["ewald_weight"], cache["ewald_cos"], cache["ewald_sin"]
                    phase = shells @ cache["ewald_k"].transpose(0, 1)
                    cos_s, sin_s = torch.cos(phase), torch.sin(phase)
                    s_re = w * (qc @ cos_c + qs @ cos_s)
                    s_im = w * (qc @ sin_c + qs @ sin_s)
                    phi_c = phi_c + cos_c @ s_re + sin_c @ s_im
                    values, gradient = self._ewald_field(cache, cos_s, sin_s, s_re, s_im)
                phi_s = phi_s + values
                grad = grad + qs.unsqueeze(1) * gradient
                total = torch.cat([qc, qs])
                corr = self_and_background(total, volume, self.beta, self.coulomb_constant)
                phi_c = phi_c + corr[: qc.shape[0]]
                phi_s = phi_s + corr[qc.shape[0]:]
                # excluded same-atom core-shell pair: E -= k_e Qc Qs erf(β|d|)/|d|
                f, df = erf_over_r_and_derivative(torch.full_like(qc, self.beta), safe_norm(d))
                phi_c = phi_c - self.coulomb_constant * qs * f
                phi_s = phi_s - self.coulomb_constant * qc * f
                grad = grad - (self.coulomb_constant * qc * qs * df).unsqueeze(1) * d
        return phi_c, phi_s, grad, real_energy


def setup_kind(cache: Dict[str, torch.Tensor]) -> int:
    """How the structure of a set-up is summed: the ``kind`` :meth:`GaussianCoulomb.setup`
    recorded (:data:`KIND_REAL_SPACE`, :data:`KIND_EWALD`, :data:`KIND_PME`)."""
    return int(cache["kind"][0])


def all_pairs(n_atoms: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Every unordered pair ``i < j`` of ``n_atoms`` atoms (open systems)."""
    pairs = torch.triu_indices(n_atoms, n_atoms, offset=1, device=device)
    return pairs[0], pairs[1]


def minimum_image_pairs(
    edge_i: torch.Tensor, edge_j: torch.Tensor, distances: torch.Tensor, n_atoms: int
) -> torch.Tensor:
    """Boolean mask keeping, for each unordered atom pair, only its nearest image (and no
    image of an atom with itself): the minimum-image convention of the published code."""
    lo = torch.minimum(edge_i, edge_j)
    hi = torch.maximum(edge_i, edge_j)
    _, pair_id = torch.unique(lo * n_atoms + hi, return_inverse=True)
    nearest = torch.full((int(pair_id.max()) + 1 if pair_id.numel() > 0 else 0,), float("inf"),
                         dtype=distances.dtype, device=distances.device)
    nearest = nearest.scatter_reduce(0, pair_id, distances, reduce="amin", include_self=True)
    return (edge_i != edge_j) & (distances <= nearest.index_select(0, pair_id))
