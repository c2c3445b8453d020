"""Real-space sums over Gaussian core/shell site pairs, in pure PyTorch.

These are the reference ("fallback") implementations of the custom operators in
``plugin/`` (``torch.ops.openmm_pqeq.*``): each function here has an operator twin with the
same arguments and the same results (to rounding), and :mod:`openmm_pqeq.ops` picks one of
the two.  Nothing here builds an autograd graph that the charge solve needs: the potentials
and shell gradients are analytic.

Conventions (see :mod:`.coulomb`): a half pair list ``(edge_i, edge_j)`` with pair vectors
``vec = r_j - r_i + shift`` (Å).  Atom i has a core at ``r_i`` with charge ``qc_i`` and a
shell at ``r_i + d_i`` with charge ``qs_i``; an atom pair contributes the four site pairs
core–core, core–shell (core i, shell j), shell–core and shell–shell.  Pairs whose atoms are
``cutoff`` Å or more apart contribute nothing (``cutoff <= 0``: no cutoff), so a Verlet list
with a skin gives the same sums as an exact list.

Pair kernel (eV·Å/e² times 1/Å, i.e. V per e), with ``k_e`` the Coulomb constant:

- method 0, direct:  ``k_e erf(α r)/r``
- method 1, Ewald real space: ``k_e [erf(α r) − erf(β r)]/r``
- method 2, tapered: ``k_e erf(α r)/r · Tap(r / r_taper)`` (ReaxFF 7th-order taper)
"""

from __future__ import annotations

from typing import Tuple

import torch

from .kernels import edge_screening, safe_norm

#: Kernel codes shared with the C++/CUDA operators.
METHOD_DIRECT: int = 0
METHOD_EWALD: int = 1
METHOD_TAPERED: int = 2


def erf_over_r_and_derivative(alpha: torch.Tensor, r: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``f = erf(α r)/r`` and ``f'(r)/r`` (Å⁻¹, Å⁻³), finite at r → 0 (series below αr = 1e-3)."""
    # 1.1283791670955126 = 2/√π (TorchScript reads no module-level floats)
    x = alpha * r
    if not bool((x < 1e-3).any()):
        f = torch.erf(x) / r
        return f, (1.1283791670955126 * alpha * torch.exp(-x * x) - f) / (r * r)
    small = x < 1e-3
    r_safe = torch.where(small, torch.ones_like(r), r)
    x_safe = alpha * r_safe
    f = torch.erf(x_safe) / r_safe
    df_over_r = (1.1283791670955126 * alpha * torch.exp(-x_safe * x_safe) - f) / (r_safe * r_safe)
    x2 = x * x
    # erf(x)/x = 2/√π (1 − x²/3 + x⁴/10 − ...): f = 2α/√π (1 − x²/3 + x⁴/10), f'/r = 2α³/√π (−2/3 + 2x²/5)
    f_series = 1.1283791670955126 * alpha * (1.0 - x2 / 3.0 + x2 * x2 / 10.0)
    df_series = 1.1283791670955126 * alpha * alpha * alpha * (-2.0 / 3.0 + 0.4 * x2)
    return torch.where(small, f_series, f), torch.where(small, df_series, df_over_r)


def pair_kernel(
    r: torch.Tensor, alpha: torch.Tensor, method: int, beta: float, coulomb_constant: float, taper_cutoff: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pair kernel ``K(r)`` (V/e) and ``K'(r)/r`` (V/e/Å²) for distances ``r`` (Å) and pair
    screenings ``alpha`` (Å⁻¹); ``method`` as in the module docstring."""
    f, df = erf_over_r_and_derivative(alpha, r)
    if method == 1:  # METHOD_EWALD
        fb, dfb = erf_over_r_and_derivative(torch.full_like(alpha, beta), r)
        f = f - fb
        df = df - dfb
    elif method == 2:  # METHOD_TAPERED
        # factored forms (no cancellation near the cutoff): Tap = (1-x)^4 (1 + 4x + 10x² + 20x³),
        # dTap/dx = -140 x³ (1-x)³, so dTap/dr / r = -140 x² (1-x)³ / r_c²
        x = r / taper_cutoff
        y = 1.0 - x
        y3 = y * y * y
        taper = y3 * y * (1.0 + x * (4.0 + x * (10.0 + 20.0 * x)))
        dtaper_over_r = -140.0 * x * x * y3 / (taper_cutoff * taper_cutoff)
        df = df * taper + f * dtaper_over_r
        f = f * taper
    return coulomb_constant * f, coulomb_constant * df


def _erf_over_r_second(alpha: torch.Tensor, r: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``f = erf(α r)/r``, ``f'/r`` and ``(f'' − f'/r)/r²`` (series below αr = 1e-3)."""
    f, df = erf_over_r_and_derivative(alpha, r)
    x = alpha * r
    small = x < 1e-3
    r_safe = torch.where(small, torch.ones_like(r), r)
    gauss = 1.1283791670955126 * alpha * torch.exp(-(alpha * r_safe) ** 2)
    # f'' − f'/r = (g' − 3 f')/r with g = 2α/√π exp(−α²r²), g' = −2α² r g
    b = (-2.0 * alpha * alpha * gauss - 3.0 * df) / (r_safe * r_safe)
    b_series = 1.1283791670955126 * 0.8 * alpha ** 5 * torch.ones_like(r)
    return f, df, torch.where(small, b_series, b)


def kernel_derivatives(
    vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
    method: int, beta: float, coulomb_constant: float, cutoff: float,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pair kernel ``K``, ``A = K'/r`` and ``B = (K'' − K'/r)/r²`` (n_pairs,) of each pair, zero
    beyond ``cutoff``; ``∇K = A v`` and ``∇∇K = A I + B v vᵀ``.  Methods 0 and 1 only (the
    Hessian model of the physical mode)."""
    r = safe_norm(vec)
    alpha = edge_screening(exponents, edge_i, edge_j)
    k, a, b = _erf_over_r_second(alpha, r)
    if method == 1:
        kb, ab, bb = _erf_over_r_second(torch.full_like(alpha, beta), r)
        k, a, b = k - kb, a - ab, b - bb
    k, a, b = coulomb_constant * k, coulomb_constant * a, coulomb_constant * b
    if cutoff > 0:
        keep = (r < cutoff).to(vec.dtype)
        k, a, b = k * keep, a * keep, b * keep
    return k, a, b


def pair_hessian_matvec(
    vec: torch.Tensor, kernel: torch.Tensor, kernel_a: torch.Tensor, kernel_b: torch.Tensor,
    edge_i: torch.Tensor, edge_j: torch.Tensor, net_charges: torch.Tensor, shell_charges: torch.Tensor,
    x_charges: torch.Tensor, x_shells: torch.Tensor,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Real-space part of the (charge, shell) Hessian at zero shell displacement times
    ``(x_charges (N,), x_shells (N, 3))``: returns ``(y_charges (N,) V, y_shells (N, 3) eV/Å²·Å)``.

    With net charges q = qc + qs, ``∇K = A v``, ``T = ∇∇K = A I + B v vᵀ`` per pair (i, j):
    ``∂²E/∂q_i∂q_j = K``, ``∂²E/∂q_i∂d_j = qs_j A v``, ``∂²E/∂q_j∂d_i = −qs_i A v``,
    ``∂²E/∂d_j² ∋ qs_j q_i T``, ``∂²E/∂d_i² ∋ qs_i q_j T``, ``∂²E/∂d_i∂d_j = −qs_i qs_j T``."""
    xq_i, xq_j = x_charges.index_select(0, edge_i), x_charges.index_select(0, edge_j)
    xd_i, xd_j = x_shells.index_select(0, edge_i), x_shells.index_select(0, edge_j)
    q_i, q_j = net_charges.index_select(0, edge_i), net_charges.index_select(0, edge_j)
    s_i, s_j = shell_charges.index_select(0, edge_i), shell_charges.index_select(0, edge_j)
    v_di = (vec * xd_i).sum(1)
    v_dj = (vec * xd_j).sum(1)
    y_q = torch.zeros_like(x_charges)
    y_q.index_add_(0, edge_i, kernel * xq_j + s_j * kernel_a * v_dj)
    y_q.index_add_(0, edge_j, kernel * xq_i - s_i * kernel_a * v_di)
    # T x = A x + B v (v·x)
    t_di = kernel_a.unsqueeze(1) * xd_i + (kernel_b * v_di).unsqueeze(1) * vec
    t_dj = kernel_a.unsqueeze(1) * xd_j + (kernel_b * v_dj).unsqueeze(1) * vec
    y_d = torch.zeros_like(x_shells)
    y_d.index_add_(0, edge_j, (s_j * kernel_a * xq_i).unsqueeze(1) * vec + (s_j * q_i).unsqueeze(1) * t_dj
                   - (s_i * s_j).unsqueeze(1) * t_di)
    y_d.index_add_(0, edge_i, -(s_i * kernel_a * xq_j).unsqueeze(1) * vec + (s_i * q_j).unsqueeze(1) * t_di
                   - (s_i * s_j).unsqueeze(1) * t_dj)
    return y_q, y_d


def core_kernel(
    vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
    method: int, beta: float, coulomb_constant: float, taper_cutoff: float, cutoff: float,
) -> torch.Tensor:
    """Core–core kernel ``K(|vec|)`` (n_pairs,) V/e of each pair, zero beyond ``cutoff``:
    the pair weights of the charge-Hessian mat-vec :func:`pair_matvec`."""
    r = safe_norm(vec)
    kernel, _ = pair_kernel(r, edge_screening(exponents, edge_i, edge_j), method, beta, coulomb_constant, taper_cutoff)
    if cutoff > 0:
        kernel = torch.where(r < cutoff, kernel, torch.zeros_like(kernel))
    return kernel


def pair_matvec(kernel: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y_i = Σ_j K_ij x_j`` over the half list (both directions): (N,) or (N, c) like ``x``."""
    if x.dim() == 1:
        y = torch.zeros_like(x)
        y.index_add_(0, edge_i, kernel * x.index_select(0, edge_j))
        y.index_add_(0, edge_j, kernel * x.index_select(0, edge_i))
        return y
    y = torch.zeros_like(x)
    y.index_add_(0, edge_i, kernel.unsqueeze(1) * x.index_select(0, edge_j))
    y.index_add_(0, edge_j, kernel.unsqueeze(1) * x.index_select(0, edge_i))
    return y


def site_potentials(
    vec: torch.Tensor, kernel: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
    core_charges: torch.Tensor, shell_charges: torch.Tensor, shell_displacements: torch.Tensor,
    method: int, beta: float, coulomb_constant: float, taper_cutoff: float, cutoff: float,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Real-space potentials at every core and shell and the shell gradient.

    ``kernel`` (P,) is the core–core kernel of :func:`core_kernel` (computed once per
    geometry).  Returns ``(phi_core (N,) V, phi_shell (N,) V, grad_shell (N, 3) eV/Å)``: the potential at
    each core and at each shell due to every other site (own core–shell pair excluded), and
    ``∂E_real/∂d``, the derivative of the real-space energy by the shell displacements.  The
    real-space energy is ``½ Σ (qc φ_core + qs φ_shell)``.
    """
    d = shell_displacements
    d_i = d.index_select(0, edge_i)
    d_j = d.index_select(0, edge_j)
    alpha = edge_screening(exponents, edge_i, edge_j)
    u_cs = vec + d_j
    u_sc = vec - d_i
    u_ss = u_cs - d_i
    k_cc = kernel
    k_cs, g_cs = pair_kernel(safe_norm(u_cs), alpha, method, beta, coulomb_constant, taper_cutoff)
    k_sc, g_sc = pair_kernel(safe_norm(u_sc), alpha, method, beta, coulomb_constant, taper_cutoff)
    k_ss, g_ss = pair_kernel(safe_norm(u_ss), alpha, method, beta, coulomb_constant, taper_cutoff)
    if cutoff > 0:
        keep = (safe_norm(vec) < cutoff).to(vec.dtype)
        k_cs, k_sc, k_ss = k_cs * keep, k_sc * keep, k_ss * keep
        g_cs, g_sc, g_ss = g_cs * keep, g_sc * keep, g_ss * keep
    qc_i, qc_j = core_charges.index_select(0, edge_i), core_charges.index_select(0, edge_j)
    qs_i, qs_j = shell_charges.index_select(0, edge_i), shell_charges.index_select(0, edge_j)
    phi_core = torch.zeros_like(core_charges)
    phi_core.index_add_(0, edge_i, k_cc * qc_j + k_cs * qs_j)
    phi_core.index_add_(0, edge_j, k_cc * qc_i + k_sc * qs_i)
    phi_shell = torch.zeros_like(core_charges)
    phi_shell.index_add_(0, edge_i, k_sc * qc_j + k_ss * qs_j)
    phi_shell.index_add_(0, edge_j, k_cs * qc_i + k_ss * qs_i)
    # E ∋ Q_a Q_b K(|u|), u = vec + d_j (cs), vec − d_i (sc), vec + d_j − d_i (ss)
    f_cs = (qc_i * qs_j * g_cs).unsqueeze(1) * u_cs
    f_sc = (qs_i * qc_j * g_sc).unsqueeze(1) * u_sc
    f_ss = (qs_i * qs_j * g_ss).unsqueeze(1) * u_ss
    grad = torch.zeros_like(d)
    grad.index_add_(0, edge_j, f_cs + f_ss)
    grad.index_add_(0, edge_i, -(f_sc + f_ss))
    return phi_core, phi_shell, grad


def pair_energy(
    vec: torch.Tensor, exponents: torch.Tensor, edge_i: torch.Tensor, edge_j: torch.Tensor,
    core_charges: torch.Tensor, shell_charges: torch.Tensor, shell_displacements: torch.Tensor,
    method: int, beta: float, coulomb_constant: float, taper_cutoff: float, cutoff: float,
) -> torch.Tensor:
    """Real-space energy (eV) of all site pairs; differentiable (by autograd) in ``vec``,
    the charges and the shell displacements."""
    d = shell_displacements
    d_i = d.index_select(0, edge_i)
    d_j = d.index_select(0, edge_j)
    alpha = edge_screening(exponents, edge_i, edge_j)
    u_cs = vec + d_j
    qc_i, qc_j = core_charges.index_select(0, edge_i), core_charges.index_select(0, edge_j)
    qs_i, qs_j = shell_charges.index_select(0, edge_i), shell_charges.index_select(0, edge_j)
    r_cc = safe_norm(vec)
    energy = (
        qc_i * qc_j * pair_kernel(r_cc, alpha, method, beta, coulomb_constant, taper_cutoff)[0]
        + qc_i * qs_j * pair_kernel(safe_norm(u_cs), alpha, method, beta, coulomb_constant, taper_cutoff)[0]
        + qs_i * qc_j * pair_kernel(safe_norm(vec - d_i), alpha, method, beta, coulomb_constant, taper_cutoff)[0]
        + qs_i * qs_j * pair_kernel(safe_norm(u_cs - d_i), alpha, method, beta, coulomb_constant, taper_cutoff)[0]
    )
    if cutoff > 0:
        energy = torch.where(r_cc < cutoff, energy, torch.zeros_like(energy))
    return energy.sum()
