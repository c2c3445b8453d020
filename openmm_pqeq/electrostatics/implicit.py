"""Implicit differentiation of the converged PQEq solution (open systems, dense KKT).

The PQEq solve runs without autograd, so the converged charges and shells x* = (q*, d*) are
constants.  The energy at x* has exact first derivatives with respect to everything (positions,
field, PQEq parameters θ) by the envelope theorem, but quantities that depend on the solution
itself — the dipole, the charges, the electrostatic potential, and the forces' dependence on θ —
need dx*/dθ.  At convergence the stationarity conditions g(x*; θ) = ∂E/∂x = C λ, Cᵀx* = Q
(C: one column per charge group, ones on that group's charges) give, by the implicit function
theorem,

    [K  C] [dx*]   [−∂g/∂θ dθ]
    [Cᵀ 0] [dλ ] = [    0    ],        K = ∂²E/∂x² at x*.

:func:`implicit_solution` returns x̃ = x* − (δ − sg(δ)) with δ the solution of the KKT system
with right-hand side g(x*; θ) (K held constant, ``sg`` = stop-gradient): x̃ equals x* and its
first derivatives are exactly dx*/dθ, dx*/dr, dx*/dF.  K is built densely by autograd, so this
is for molecules and clusters (a few hundred atoms at most).  Shells of non-polarizable atoms
are fixed at zero.

:func:`analytic_polarizability` gives α = M K_c⁻¹ Mᵀ at zero field (M = ∂μ/∂x; K_c⁻¹ the inverse
inside the charge constraints), differentiable in θ (K built with its graph, evaluated at x̃), and
:func:`analytic_apt` the atomic polar tensors ∂F/∂E from the same response.

The stationary point and α are also written for any energy of any variables
(:func:`implicit_stationary`, :func:`response_polarizability`): the split-charge model
(:mod:`.splitcharge`) uses them with the scaled split charges and shells x = (u, d), which need
no constraints.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch

from ..units import COULOMB_EV_A
from .coulomb import all_pairs
from .realspace import erf_over_r_and_derivative


def _energy(pqeq, positions: torch.Tensor, x: torch.Tensor, p: Dict[str, torch.Tensor],
            field: torch.Tensor) -> torch.Tensor:
    n = positions.shape[0]
    i, j = all_pairs(n, positions.device)
    shifts = torch.zeros((i.shape[0], 3), dtype=positions.dtype, device=positions.device)
    return pqeq.energy(positions, x[:n], x[n:].reshape(n, 3), p, None, i, j, shifts, field, positions, 0.0)


def _mask(p: Dict[str, torch.Tensor]) -> torch.Tensor:
    n = p["pol"].shape[0]
    return torch.cat([torch.ones_like(p["pol"]), (p["pol"] > 0).to(p["pol"].dtype).unsqueeze(1).expand(n, 3).reshape(-1)])


def _hessian(g: torch.Tensor, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    eye = torch.eye(x.shape[0], dtype=x.dtype, device=x.device)
    try:
        (h,) = torch.autograd.grad(g, x, grad_outputs=eye, is_grads_batched=True, retain_graph=True,
                                   create_graph=create_graph)
    except RuntimeError:  # operators without a batching rule
        rows = [torch.autograd.grad(g[k], x, retain_graph=True, create_graph=create_graph)[0] for k in range(x.shape[0])]
        h = torch.stack(rows)
    return 0.5 * (h + h.transpose(0, 1))


def constrained_solve(hessian: torch.Tensor, rhs: torch.Tensor, groups: torch.Tensor, n_groups: int,
                      mask: torch.Tensor) -> torch.Tensor:
    """δ solving ``K δ + C λ = rhs, Cᵀ δ = 0`` (rhs (nx,) or (nx, k)); entries with ``mask`` 0
    are held at zero; ``n_groups`` 0: no constraints (``groups`` unused)."""
    n = groups.shape[0]
    nx = hessian.shape[0]
    m = mask.unsqueeze(1) * mask.unsqueeze(0)
    k = hessian * m + torch.diag(1.0 - mask)
    if n_groups == 0:  # no constraints (split charges conserve the charge by construction)
        vector = rhs.dim() == 1
        r = (rhs.unsqueeze(1) if vector else rhs) * mask.unsqueeze(1)
        sol = torch.linalg.solve(k, r)
        return sol[:, 0] if vector else sol
    c = torch.zeros(nx, n_groups, dtype=hessian.dtype, device=hessian.device)
    c[torch.arange(n, device=hessian.device), groups] = 1.0
    top = torch.cat([k, c], dim=1)
    bottom = torch.cat([c.transpose(0, 1), torch.zeros(n_groups, n_groups, dtype=k.dtype, device=k.device)], dim=1)
    kkt = torch.cat([top, bottom], dim=0)
    vector = rhs.dim() == 1
    r = rhs.unsqueeze(1) if vector else rhs
    r = r * mask.unsqueeze(1)
    full = torch.cat([r, torch.zeros(n_groups, r.shape[1], dtype=r.dtype, device=r.device)], dim=0)
    sol = torch.linalg.solve(kkt, full)[:nx]
    return sol[:, 0] if vector else sol


def implicit_stationary(energy_fn: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, mask: torch.Tensor,
                        groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """x̃ equal to the stationary point ``x0`` of ``energy_fn`` (inside the group constraints;
    ``n_groups`` 0: none) whose first derivatives are dx*/dθ (see the module docstring)."""
    x0 = x0.detach().requires_grad_(True)
    with torch.enable_grad():
        energy = energy_fn(x0)
        (g,) = torch.autograd.grad(energy, x0, create_graph=True)
        hessian = _hessian(g, x0, create_graph=False).detach()
    delta = constrained_solve(hessian, g, groups, n_groups, mask)
    return x0.detach() - (delta - delta.detach())


def implicit_solution(pqeq, positions: torch.Tensor, q: torch.Tensor, d: torch.Tensor, p: Dict[str, torch.Tensor],
                      field: torch.Tensor, groups: torch.Tensor, n_groups: int, molecular: bool = False
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """(q̃, d̃): the converged values with exact first derivatives (see the module docstring)."""
    n = positions.shape[0]
    x = implicit_stationary(lambda y: _energy(pqeq, positions, y, p, field), torch.cat([q, d.reshape(-1)]),
                            _mask(p), groups, n_groups)
    return x[:n], x[n:].reshape(n, 3)


def dipole_matrix(positions: torch.Tensor, p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """M (3, 4N) with μ = M x, x = (q, d): μ = Σ q_i r_i − Z_i d_i (e·Å)."""
    n = positions.shape[0]
    eye = torch.eye(3, dtype=positions.dtype, device=positions.device)
    shells = -(p["Z"] * (p["pol"] > 0).to(positions.dtype)).reshape(n, 1, 1) * eye.unsqueeze(0)  # (n, 3, 3): [i, b, a]
    return torch.cat([positions.transpose(0, 1), shells.permute(2, 0, 1).reshape(3, 3 * n)], dim=1)


def analytic_polarizability(pqeq, positions: torch.Tensor, q: torch.Tensor, d: torch.Tensor,
                            p: Dict[str, torch.Tensor], groups: Optional[torch.Tensor] = None,
                            n_groups: int = 1, field: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Polarizability tensor (3, 3) in Å³ (dμ/dF × k_e) at the converged ``(q, d)`` (best
    given as :func:`implicit_solution` output, so its θ-derivatives include the response of
    the Hessian to the solution)."""
    n = positions.shape[0]
    if groups is None:
        groups = torch.zeros(n, dtype=torch.long, device=positions.device)
    if field is None:
        field = torch.zeros(3, dtype=positions.dtype, device=positions.device)
    return response_polarizability(lambda y: _energy(pqeq, positions, y, p, field), torch.cat([q, d.reshape(-1)]),
                                   dipole_matrix(positions, p), _mask(p), groups, n_groups)


def response_polarizability(energy_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, m: torch.Tensor,
                            mask: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """α = M K⁻¹ Mᵀ × k_e (3, 3) Å³ for the energy ``energy_fn`` of the variables ``x`` (at its
    stationary point, inside the group constraints), with the dipole μ = M x + const (M (3, nx))."""
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        # derivatives with respect to x̃ itself (a non-leaf): the Hessian keeps its graph to θ
        # both directly and through x̃ (the shell part of K depends on the solution)
        energy = energy_fn(x)
        (g,) = torch.autograd.grad(energy, x, create_graph=True)
        hessian = _hessian(g, x, create_graph=True)
    sol = constrained_solve(hessian, m.transpose(0, 1), groups, n_groups, mask)
    alpha = m @ sol
    return 0.5 * (alpha + alpha.transpose(0, 1)) * COULOMB_EV_A


def analytic_apt(pqeq, positions: torch.Tensor, q: torch.Tensor, d: torch.Tensor, p: Dict[str, torch.Tensor],
                 groups: Optional[torch.Tensor] = None, n_groups: int = 1) -> torch.Tensor:
    """Atomic polar tensors Z*_iab = ∂F_ia/∂E_b (N, 3, 3) in e at zero field (open systems).

    With the field term −E·M x (M: :func:`dipole_matrix`), Z*_iab = q_i δ_ab − Σ_k ∂²E/∂r_ia∂x_k
    (dx*/dE_b)_k, where dx*/dE = K_c⁻¹ Mᵀ is the constrained linear response of charges and shells
    (the same solve as :func:`analytic_polarizability`).  Differentiable in the freed parameters
    when ``(q, d)`` come from :func:`implicit_solution`.  For a neutral system Σ_i Z*_i = 0."""
    return linear_response(pqeq, positions, q, d, p, groups, n_groups)[1]


def linear_response(pqeq, positions: torch.Tensor, q: torch.Tensor, d: torch.Tensor, p: Dict[str, torch.Tensor],
                    groups: Optional[torch.Tensor] = None, n_groups: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(α (3, 3) Å³, Z* (N, 3, 3) e)`` at zero field from one Hessian and one constrained solve
    (:func:`analytic_polarizability`, :func:`analytic_apt`)."""
    n = positions.shape[0]
    if groups is None:
        groups = torch.zeros(n, dtype=torch.long, device=positions.device)
    x = torch.cat([q, d.reshape(-1)])
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    r = positions.detach().clone().requires_grad_(True)
    zero = torch.zeros(3, dtype=positions.dtype, device=positions.device)
    with torch.enable_grad():
        energy = _energy(pqeq, r, x, p, zero)
        (g,) = torch.autograd.grad(energy, x, create_graph=True)
        hessian = _hessian(g, x, create_graph=True)
        eye = torch.eye(x.shape[0], dtype=x.dtype, device=x.device)
        try:
            (mixed,) = torch.autograd.grad(g, r, grad_outputs=eye, is_grads_batched=True, retain_graph=True,
                                           create_graph=True)
        except RuntimeError:  # operators without a batching rule
            mixed = torch.stack([torch.autograd.grad(g[k], r, retain_graph=True, create_graph=True)[0]
                                 for k in range(x.shape[0])])
    m = dipole_matrix(positions, p)
    response = constrained_solve(hessian, m.transpose(0, 1), groups, n_groups, _mask(p))  # (nx, 3): dx/dE_b
    coupling = torch.einsum("kia,kb->iab", mixed, response)
    eye3 = torch.eye(3, dtype=positions.dtype, device=positions.device)
    alpha = m @ response
    return 0.5 * (alpha + alpha.transpose(0, 1)) * COULOMB_EV_A, q.reshape(n, 1, 1) * eye3 - coupling


def electrostatic_potential(points: torch.Tensor, positions: torch.Tensor, q: torch.Tensor, d: torch.Tensor,
                            p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Potential (M,) in V at ``points`` (M, 3) Å of the Gaussian cores (q + Z at r) and shells
    (−Z at r + d): k_e Σ Q erf(√a |r − x|) / |r − x|."""
    sites = torch.cat([positions, positions + d], dim=0)
    charges = torch.cat([q + p["Z"], -p["Z"]])
    root_a = torch.cat([p["a"], p["a"]]).sqrt()
    dist = torch.linalg.norm(points.unsqueeze(1) - sites.unsqueeze(0), dim=2)
    kernel, _ = erf_over_r_and_derivative(root_a.expand_as(dist), dist)
    return COULOMB_EV_A * (charges * kernel).sum(1)
