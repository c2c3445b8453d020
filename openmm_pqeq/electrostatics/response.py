"""Born effective charges Z*_{i,αβ} = ∂F_{iα}/∂E_β (e) of a converged PQEq solution.

The field E enters the energy only through PQEq (E0 and D3 do not see it).  At the converged
charges and shells x* = (q*, d*) the force is F = −∂E/∂r at fixed x (Hellmann–Feynman), so

    Z*_{:,:,β} = −∂/∂r [ ∂E/∂E_β + (∂E/∂x) · δ_β ],     δ_β = dx*/dE_β,

where the first term is the rigid-charge part (q_i δ_αβ: the field pulls on each core charge)
and the second the response of the charges and shells to the field.  δ_β solves the
stationarity conditions differentiated inside the charge constraints (one total charge, or
one per group, C the group indicator):

    K δ_β − C λ = −∂²E/∂x∂E_β = ∂μ_β/∂x,    Cᵀ δ_β = 0,    K = ∂²E/∂x²  at x*.

It is solved matrix-free by conjugate gradients in the constraint subspace (Jacobi
preconditioner 1/J, 1/K_s), one solve per field direction, with Hessian–vector products by
double backward through the PQEq energy: open systems, Ewald and PME alike, so water boxes and
crystals work.  Shells of non-polarizable atoms stay fixed.

The split-charge model (``charge_transfer="split"``) has other variables (split charges on
bonds); its Born charges are central differences of the forces in the field instead
(:data:`SPLIT_FIELD_STEP`).

Sum rule (translation invariance): moving every atom by R at fixed x leaves every Coulomb and
on-site term unchanged and changes the field energy by −Q E·R (Q the total charge; with one
group per molecule, whole molecules move by R too).  So the total force is Q E at every
field and Σ_i Z*_i = Q · I exactly, for open and periodic systems and for either constraint
rule.  Per molecule the sum is Q_m · I only for isolated molecules: in a liquid the field
polarizes the neighbours, and their induced charges push on the molecule.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

from .constraints import group_sum, project_out_group_means, project_preconditioned


def born_charges(pqeq, positions: torch.Tensor, numbers: torch.Tensor, cell: Optional[torch.Tensor] = None,
                 field: Optional[torch.Tensor] = None, total_charge: float = 0.0,
                 groups: Optional[torch.Tensor] = None, group_charges: Optional[torch.Tensor] = None,
                 tolerance: float = 1e-10, max_iterations: int = 1000) -> Dict[str, torch.Tensor]:
    """Born effective charges of a :class:`~openmm_pqeq.electrostatics.PQEq` solution.

    Parameters
    ----------
    pqeq : a PQEq module in ``"physical"`` mode, or a :class:`~openmm_pqeq.model.PQEqModel`
        (its PQEq term is used: E0 and D3 do not depend on the field).
    positions : (N, 3) Å.  numbers : (N,) int64.  cell : (3, 3) Å (rows) or None.
    field : (3,) V/Å (default zero).  total_charge, groups, group_charges : the charge
        constraints, as for :meth:`PQEq.forward`.
    tolerance : relative residual (2-norm) at which each CG solve stops.

    Returns
    -------
    dict with ``born_charges`` (N, 3, 3) e, indexed [atom, force component α, field
    component β]; ``charges`` (N,) e and ``shell_displacements`` (N, 3) Å of the solution;
    ``charge_response`` (3, N) e/(V/Å) and ``shell_response`` (3, N, 3) Å/(V/Å), the δ_β;
    ``cg_iterations`` (3,).
    """
    from ..model import PQEqModel

    if isinstance(pqeq, PQEqModel):
        if pqeq.pqeq is None:
            raise ValueError("this model has no PQEq term, so nothing in it responds to a field: Born charges are zero")
        pqeq = pqeq.pqeq
    if getattr(pqeq, "mode", None) != "physical":
        raise ValueError("Born charges need a PQEq module in 'physical' mode (a converged, variational solve); "
                         f"got mode {getattr(pqeq, 'mode', None)!r}")
    dtype = positions.dtype
    device = positions.device
    n = positions.shape[0]
    positions = positions.detach()
    field = torch.zeros(3, dtype=dtype, device=device) if field is None else field.detach().to(dtype)
    if getattr(pqeq, "charge_transfer", "global") == "split":
        return _split_born_charges(pqeq, positions, numbers, cell, field, total_charge, groups, group_charges)
    with torch.no_grad():
        solved = pqeq(positions, numbers, cell, field, total_charge, groups, group_charges)
    molecular = groups is not None
    groups_t = torch.zeros(n, dtype=torch.long, device=device) if groups is None else groups.to(torch.long)
    n_groups = int(groups_t.max()) + 1
    p = pqeq.atom_parameters(numbers, dtype)
    i, j, shifts, cutoff = pqeq.pairs(positions, cell)

    r = positions.clone().requires_grad_(True)
    e = field.clone().requires_grad_(True)
    x = torch.cat([solved["charges"].detach(), solved["shell_displacements"].detach().reshape(-1)]).requires_grad_(True)
    with torch.enable_grad():
        field_positions = pqeq.field_coordinates(r, cell, groups_t, n_groups, molecular)
        energy = pqeq.energy(r, x[:n], x[n:].reshape(n, 3), p, cell, i, j, shifts, e, field_positions, cutoff)
        gradient_x, gradient_e = torch.autograd.grad(energy, (x, e), create_graph=True)

    shell_mask = (p["pol"] > 0).to(dtype).unsqueeze(1).expand(n, 3).reshape(-1)
    counts = group_sum(torch.ones(n, dtype=dtype, device=device), groups_t, n_groups)
    inverse_j = 1.0 / p["J"]
    inverse_ks = shell_mask / p["Ks"].unsqueeze(1).expand(n, 3).reshape(-1).clamp_min(1e-12)
    weight_sums = group_sum(inverse_j, groups_t, n_groups)

    def project(v: torch.Tensor) -> torch.Tensor:
        return torch.cat([project_out_group_means(v[:n], groups_t, counts), v[n:] * shell_mask])

    def precondition(v: torch.Tensor) -> torch.Tensor:
        return torch.cat([project_preconditioned(v[:n], inverse_j, groups_t, weight_sums), v[n:] * inverse_ks])

    def hessian_times(v: torch.Tensor) -> torch.Tensor:
        (hv,) = torch.autograd.grad(gradient_x, x, grad_outputs=v, retain_graph=True)
        return project(hv)

    responses, iterations, born = [], [], []
    for beta in range(3):
        (dmu,) = torch.autograd.grad(gradient_e[beta], x, retain_graph=True)  # ∂²E/∂x∂E_β = −∂μ_β/∂x
        delta, steps = _projected_cg(hessian_times, precondition, project(-dmu.detach()), tolerance, max_iterations)
        responses.append(delta)
        iterations.append(steps)
        (dz,) = torch.autograd.grad(gradient_e[beta] + (gradient_x * delta).sum(), r, retain_graph=True)
        born.append(-dz.detach())
    response = torch.stack(responses)
    return {
        "born_charges": torch.stack(born, dim=2),
        "charges": solved["charges"].detach(),
        "shell_displacements": solved["shell_displacements"].detach(),
        "charge_response": response[:, :n],
        "shell_response": response[:, n:].reshape(3, n, 3),
        "cg_iterations": torch.tensor(iterations),
    }


#: Field step (V/Å) of the central differences of the split-charge Born charges.
SPLIT_FIELD_STEP = 1e-3


def _split_born_charges(pqeq, positions: torch.Tensor, numbers: torch.Tensor, cell: Optional[torch.Tensor],
                        field: torch.Tensor, total_charge: float, groups: Optional[torch.Tensor],
                        group_charges: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Born charges of the split-charge model by central differences of the forces in the field,
    Z*_{:,:,β} = [F(E + h e_β) − F(E − h e_β)] / 2h with h = :data:`SPLIT_FIELD_STEP` (the
    energy is quadratic in the field at fixed geometry, so the difference is exact up to the
    solve tolerance divided by 2h); the same keys as :func:`born_charges`, with the summed CG
    iterations of each direction's two solves."""
    n = positions.shape[0]
    with torch.no_grad():
        solved = pqeq(positions, numbers, cell, field, total_charge, groups, group_charges)

    def solve(f: torch.Tensor):
        r = positions.clone().requires_grad_(True)
        with torch.enable_grad():
            out = pqeq(r, numbers, cell, f, total_charge, groups, group_charges)
            (gradient,) = torch.autograd.grad(out["energy"], r)
        return -gradient, out["charges"].detach(), out["shell_displacements"].detach(), int(out["cg_iterations"])

    born, charge_response, shell_response, iterations = [], [], [], []
    for beta in range(3):
        step = torch.zeros(3, dtype=positions.dtype, device=positions.device)
        step[beta] = SPLIT_FIELD_STEP
        f_plus, q_plus, d_plus, it_plus = solve(field + step)
        f_minus, q_minus, d_minus, it_minus = solve(field - step)
        born.append((f_plus - f_minus) / (2 * SPLIT_FIELD_STEP))
        charge_response.append((q_plus - q_minus) / (2 * SPLIT_FIELD_STEP))
        shell_response.append((d_plus - d_minus) / (2 * SPLIT_FIELD_STEP))
        iterations.append(it_plus + it_minus)
    return {
        "born_charges": torch.stack(born, dim=2),
        "charges": solved["charges"].detach(),
        "shell_displacements": solved["shell_displacements"].detach(),
        "charge_response": torch.stack(charge_response),
        "shell_response": torch.stack(shell_response).reshape(3, n, 3),
        "cg_iterations": torch.tensor(iterations),
    }


def _projected_cg(matvec, precondition, rhs: torch.Tensor, tolerance: float, max_iterations: int):
    """Solve ``A δ = rhs`` for SPD ``A`` on the constraint subspace (``matvec`` and
    ``precondition`` map into it; ``rhs`` lies in it).  Returns (δ, iterations); a solve that
    does not reach ``tolerance`` (relative residual) is an error."""
    solution = torch.zeros_like(rhs)
    scale = float(rhs.norm())
    if scale == 0.0:
        return solution, 0
    residual = rhs.clone()
    z = precondition(residual)
    direction = z.clone()
    rz = float(residual @ z)
    for iteration in range(1, max_iterations + 1):
        product = matvec(direction).detach()
        curvature = float(direction @ product)
        if curvature <= 0.0:
            raise RuntimeError(f"the PQEq Hessian is not positive definite in the constraint subspace (curvature "
                               f"{curvature:.3g} at CG iteration {iteration}): is the solution a minimum?")
        step = rz / curvature
        solution = solution + step * direction
        residual = residual - step * product
        if float(residual.norm()) <= tolerance * scale:
            return solution, iteration
        z = precondition(residual)
        rz_new = float(residual @ z)
        direction = z + (rz_new / rz) * direction
        rz = rz_new
    raise RuntimeError(f"the Born-charge linear solve did not reach a relative residual of {tolerance:g} in "
                       f"{max_iterations} CG iterations (reached {float(residual.norm()) / scale:.3g})")
