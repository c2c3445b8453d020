// Plain CUDA launchers (no torch headers, so nvcc compiles kernels.cu quickly); the torch
// wrappers are in cuda_ops.cpp.  Pointers are device pointers to contiguous arrays; outputs
// must be zeroed by the caller where the kernel accumulates (atomics).
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace openmm_pqeq {
namespace cuda {

template <typename T>
void core_kernel(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs, int method, T beta,
                 T coulomb, T taper, T cutoff, T* out, cudaStream_t stream);

template <typename T>
void pair_matvec(const T* kernel, const int64_t* ei, const int64_t* ej, int64_t n_pairs, const T* x, int64_t c, T* y,
                 cudaStream_t stream);

template <typename T>
void site_potentials(const T* vec, const T* kcc, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs,
                     const T* qc, const T* qs, const T* d, int method, T beta, T coulomb, T taper, T cutoff, T* phi_c,
                     T* phi_s, T* grad, cudaStream_t stream);

// per-pair energies (P,) when `energies` is not null, gradients by vec (P, 3) when `grad` is not null
template <typename T>
void pair_energy(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs, const T* qc,
                 const T* qs, const T* d, int method, T beta, T coulomb, T taper, T cutoff, T* energies, T* grad,
                 cudaStream_t stream);

// smooth PME with on-the-fly B-spline stencils; `frac` (3, 3) is a device pointer, `shape` a host
// array of the three mesh sizes
template <typename T>
void pme_spread(const T* pos, const T* q, const T* mu, int64_t n, const T* frac, const int64_t* shape, int order,
                T* mesh, cudaStream_t stream);

template <typename T>
void kernel_derivatives(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs, int method,
                        T beta, T coulomb, T cutoff, T* k, T* ka, T* kb, cudaStream_t stream);

template <typename T>
void pair_hessian_matvec(const T* vec, const T* k, const T* ka, const T* kb, const int64_t* ei, const int64_t* ej,
                         int64_t n_pairs, const T* q, const T* qs, const T* xq, const T* xd, T* yq, T* yd,
                         cudaStream_t stream);

template <typename T>
void pme_gather(const T* pos, const T* mesh, int64_t n, const T* frac, const int64_t* shape, int order, T* values,
                T* grad, cudaStream_t stream);

}  // namespace cuda
}  // namespace openmm_pqeq
