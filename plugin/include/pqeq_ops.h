// Operators torch.ops.openmm_pqeq.* : the hot loops of the PQEq charge/shell solve.
//
// Conventions (openmm_pqeq/electrostatics/realspace.py, the PyTorch twin of every operator):
// a half pair list (edge_i, edge_j) int64 with pair vectors vec = r_j - r_i + shift (P, 3) in
// Angstrom; per-atom Gaussian exponents a (N,) 1/Angstrom^2; atom i has a core at r_i with
// charge qc_i and a shell at r_i + d_i with charge qs_i; pairs with |vec| >= cutoff are
// skipped (cutoff <= 0: none).  Kernels are in V/e (k_e included).  All tensors of one call
// share a floating dtype (float32 or float64) and a device (CPU or CUDA).
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace openmm_pqeq {

// Pair weights K(|vec|) of the charge-Hessian mat-vec, zero beyond the cutoff: (P,).
at::Tensor core_kernel_cpu(const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i,
                           const at::Tensor& edge_j, int64_t method, double beta, double coulomb,
                           double taper_cutoff, double cutoff);

// y_i = sum_j K_ij x_j over both directions of each pair; x (N, C) -> y (N, C).
at::Tensor pair_matvec_cpu(const at::Tensor& kernel, const at::Tensor& edge_i, const at::Tensor& edge_j,
                           const at::Tensor& x);

// Real-space potentials at cores (N,) and shells (N,) and dE_real/dd (N, 3); `kernel` (P,) is the
// core-core kernel from core_kernel (reused, not recomputed).
std::tuple<at::Tensor, at::Tensor, at::Tensor> site_potentials_cpu(
    const at::Tensor& vec, const at::Tensor& kernel, const at::Tensor& exponents, const at::Tensor& edge_i, const at::Tensor& edge_j,
    const at::Tensor& core_charges, const at::Tensor& shell_charges, const at::Tensor& shell_displacements,
    int64_t method, double beta, double coulomb, double taper_cutoff, double cutoff);

// K, K'/r and (K'' - K'/r)/r^2 per pair (methods 0 and 1), zero beyond the cutoff: three (P,).
std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_derivatives_cpu(
    const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i, const at::Tensor& edge_j,
    int64_t method, double beta, double coulomb, double cutoff);

// Real-space (charge, shell) Hessian at zero shell displacement times (x_charges (N,), x_shells (N, 3)),
// with net charges q (N,) and shell charges qs (N,): returns (y_charges (N,), y_shells (N, 3)).
std::tuple<at::Tensor, at::Tensor> pair_hessian_matvec_cpu(
    const at::Tensor& vec, const at::Tensor& kernel, const at::Tensor& kernel_a, const at::Tensor& kernel_b,
    const at::Tensor& edge_i, const at::Tensor& edge_j, const at::Tensor& net_charges, const at::Tensor& shell_charges,
    const at::Tensor& x_charges, const at::Tensor& x_shells);

// Real-space energy of all site pairs (a 0-d tensor) and its gradient by the pair vectors (P, 3).
// The autograd-aware operator pair_energy differentiates by vec only (charges and shells are
// constants of the converged solve).
at::Tensor pair_energy_cpu(const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i,
                           const at::Tensor& edge_j, const at::Tensor& core_charges, const at::Tensor& shell_charges,
                           const at::Tensor& shell_displacements, int64_t method, double beta, double coulomb,
                           double taper_cutoff, double cutoff);
at::Tensor pair_energy_backward_cpu(const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i,
                                    const at::Tensor& edge_j, const at::Tensor& core_charges,
                                    const at::Tensor& shell_charges, const at::Tensor& shell_displacements,
                                    int64_t method, double beta, double coulomb, double taper_cutoff, double cutoff);

// Smooth PME with B-spline stencils of order `order` computed on the fly: mesh coordinates of a
// site are u = r @ frac (frac = inv(cell) scaled by the mesh sizes, (3, 3)); the mesh (K1*K2*K3,)
// is flattened as ((i * K2) + j) * K3 + k.  pme_spread: site charges (n,) -> mesh;
// with optional point dipoles (n, 3) at the sites (spread with the stencil derivatives);
// pme_gather: interpolated mesh values (n,) and, when `gradient`, their gradient by the site
// positions (n, 3) (else an empty (0, 3) tensor).
at::Tensor pme_spread_cpu(const at::Tensor& positions, const at::Tensor& charges, const at::Tensor& frac,
                          at::IntArrayRef shape, int64_t order, const c10::optional<at::Tensor>& dipoles);
std::tuple<at::Tensor, at::Tensor> pme_gather_cpu(const at::Tensor& positions, const at::Tensor& mesh,
                                                  const at::Tensor& frac, at::IntArrayRef shape, int64_t order,
                                                  bool gradient);
void check_pme(const at::Tensor& positions, const at::Tensor& frac, at::IntArrayRef shape, int64_t order,
               const char* op);

// Argument checks shared by the CPU and CUDA implementations (ValueError on failure).
void check_pairs(const at::Tensor& vec, const at::Tensor& edge_i, const at::Tensor& edge_j, const char* op);
void check_atoms(const at::Tensor& values, int64_t n_atoms, const at::Tensor& like, const char* name, const char* op);
// pair_energy / pair_energy_backward, site_potentials (also the cached kernel (P,)), pair_hessian_matvec
void check_energy_args(const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i,
                       const at::Tensor& edge_j, const at::Tensor& qc, const at::Tensor& qs, const at::Tensor& d,
                       int64_t method, const char* op);
void check_site_args(const at::Tensor& vec, const at::Tensor& kernel, const at::Tensor& exponents,
                     const at::Tensor& edge_i, const at::Tensor& edge_j, const at::Tensor& qc, const at::Tensor& qs,
                     const at::Tensor& d, int64_t method, const char* op);
void check_hessian_args(const at::Tensor& vec, const at::Tensor& k, const at::Tensor& ka, const at::Tensor& kb,
                        const at::Tensor& edge_i, const at::Tensor& edge_j, const at::Tensor& q, const at::Tensor& qs,
                        const at::Tensor& xq, const at::Tensor& xd);

}  // namespace openmm_pqeq
