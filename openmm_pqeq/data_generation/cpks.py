"""Static polarizability by coupled-perturbed Kohn-Sham (analytic linear response).

For a closed-shell Kohn-Sham ground state (PySCF ``RKS``, with or without density fitting) the
static dipole polarizability is the exact second derivative of the energy with respect to a
uniform field, computed from one converged SCF instead of six finite-field SCFs:

- the perturbation of the one-electron Hamiltonian by the field component b is h¹_b = r_b (the
  dipole integrals, origin (0, 0, 0), the convention of
  :func:`~openmm_pqeq.data_generation.labelling.make_scf`);
- the first-order orbital rotations U_b (virtual × occupied) solve

      (ε_a − ε_i) U_b,ai + [v¹(D¹_b)]_ai = −h¹_b,ai,    D¹_b = 2 (C_v U_b C_oᵀ + C_o U_bᵀ C_vᵀ),

  where v¹(D) is the response of the Kohn-Sham potential to a change D of the total density
  matrix (Coulomb plus the exchange-correlation kernel; ``mf.gen_response(singlet=None, hermi=1)``),
  solved for the three field directions together by a Krylov method (``pyscf.lib.krylov``)
  with the orbital-energy differences as the preconditioner;
- with μ_a = Σ_A Z_A R_A,a − tr(D r_a), the polarizability is
  α_ab = ∂μ_a/∂F_b = −tr(D¹_b r_a) = −4 Σ_ai h¹_a,ai U_b,ai  (bohr³, atomic units).

This is the limit F → 0 of the finite-field derivative of
:func:`~openmm_pqeq.data_generation.response.label_response` for the same functional, basis,
grid and density fitting, without its O(F²γ) truncation error.  Open-shell (UKS) structures are
not handled here (use the finite-field route).
"""

from __future__ import annotations

import numpy as np


def cpks_polarizability(mf, tol: float = 1e-9, max_cycle: int = 60) -> np.ndarray:
    """Static polarizability (3, 3) bohr³ of a converged closed-shell Kohn-Sham (or Hartree-Fock)
    object ``mf`` by coupled-perturbed Kohn-Sham (module docstring).

    ``tol``: convergence of the Krylov solve (relative residual); ``max_cycle``: its iterations.
    Raises ValueError for an unconverged or open-shell ``mf`` and RuntimeError when the linear
    solve does not reach ``tol``."""
    from pyscf import lib

    if not getattr(mf, "converged", False):
        raise ValueError("the coupled-perturbed polarizability needs a converged SCF (mf.converged is False)")
    mo_occ = np.asarray(mf.mo_occ)
    if mo_occ.ndim != 1 or mf.mol.spin != 0:
        raise ValueError("the coupled-perturbed polarizability here is for closed-shell (restricted) "
                         f"Kohn-Sham; this structure has spin {mf.mol.spin} (use the finite-field route)")
    mol = mf.mol
    mo_coeff = np.asarray(mf.mo_coeff)
    mo_energy = np.asarray(mf.mo_energy)
    occupied = mo_occ > 0
    orb_o = mo_coeff[:, occupied]
    orb_v = mo_coeff[:, ~occupied]
    n_v, n_o = orb_v.shape[1], orb_o.shape[1]
    with mol.with_common_orig((0.0, 0.0, 0.0)):
        r_ints = mol.intor_symmetric("int1e_r", comp=3)
    h1 = np.einsum("xpq,pa,qi->xai", r_ints, orb_v, orb_o)  # (3, n_v, n_o)
    gap = mo_energy[~occupied][:, None] - mo_energy[occupied][None, :]  # ε_a − ε_i > 0
    response = mf.gen_response(singlet=None, hermi=1)

    def coupling(vectors):
        """D⁻¹ v¹(D¹(U)) for a stack of rotations (k, n_v n_o)."""
        u = np.asarray(vectors).reshape(-1, n_v, n_o)
        dm = np.einsum("pa,kai,qi->kpq", orb_v, u, orb_o) * 2.0
        dm = dm + dm.transpose(0, 2, 1)
        v1 = response(dm)
        return (np.einsum("pa,kpq,qi->kai", orb_v, v1, orb_o) / gap).reshape(len(u), -1)

    rhs = -(h1 / gap).reshape(3, -1)
    rotations = lib.krylov(coupling, rhs, tol=tol, max_cycle=max_cycle, hermi=False)
    rotations = np.asarray(rotations).reshape(3, -1)
    residual = rotations + coupling(rotations) - rhs
    relative = float(np.linalg.norm(residual) / np.linalg.norm(rhs))
    if not relative < 100.0 * tol + 1e-7:
        raise RuntimeError(f"the coupled-perturbed Kohn-Sham solve did not converge (relative residual {relative:.2e} "
                           f"after {max_cycle} Krylov iterations)")
    alpha = -4.0 * np.einsum("xk,yk->xy", h1.reshape(3, -1), rotations)
    return 0.5 * (alpha + alpha.T)
