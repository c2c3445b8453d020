// CUDA kernels of the PQEq operators: one thread per pair (or site), atomics for the sums.  The
// per-pair and per-site bodies are the ones the CPU operators call (include/pqeq_kernel_math.h,
// include/pqeq_bspline.h); only the loop and the atomic add are CUDA's.
#include "../../include/pqeq_bspline.h"
#include "../../include/pqeq_kernel_math.h"
#include "launchers.h"

namespace openmm_pqeq {
namespace cuda {

namespace {

constexpr int BLOCK = 256;

inline unsigned int blocks_for(int64_t n) {
    return static_cast<unsigned int>((n + BLOCK - 1) / BLOCK);
}

template <typename T>
struct AtomicAdd {
    __device__ void operator()(T* target, T value) const { atomicAdd(target, value); }
};

template <typename T>
__global__ void core_kernel_k(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs,
                              int method, T beta, T coulomb, T taper, T cutoff, T* out) {
    const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    out[p] = pair_core_kernel<T>(vec, a, ei, ej, p, method, beta, coulomb, taper, cutoff);
}

template <typename T>
__global__ void pair_matvec_k(const T* kernel, const int64_t* ei, const int64_t* ej, int64_t n_pairs, const T* x,
                              int64_t c, T* y) {
    const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    pair_matvec_apply<T>(kernel[p], ei[p], ej[p], x, c, y, AtomicAdd<T>());
}

template <typename T>
__global__ void site_potentials_k(const T* vec, const T* kcc_all, const T* a, const int64_t* ei, const int64_t* ej,
                                  int64_t n_pairs, const T* qc, const T* qs, const T* d, int method, T beta, T coulomb,
                                  T taper, T cutoff, T* pc, T* ps, T* g) {
    const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    pair_site_potentials_apply<T>(vec, kcc_all, a, ei, ej, p, qc, qs, d, method, beta, coulomb, taper, cutoff, pc, ps,
                                  g, AtomicAdd<T>());
}

template <typename T>
__global__ void kernel_derivatives_k(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs,
                                     int method, T beta, T coulomb, T cutoff, T* k, T* ka, T* kb) {
    const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    pair_kernel_derivatives<T>(vec, a, ei, ej, p, method, beta, coulomb, cutoff, k[p], ka[p], kb[p]);
}

template <typename T>
__global__ void pair_hessian_k(const T* vec, const T* k, const T* ka, const T* kb, const int64_t* ei, const int64_t* ej,
                               int64_t n_pairs, const T* q, const T* qs, const T* xq, const T* xd, T* yq, T* yd) {
    const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    if (k[p] == T(0) && ka[p] == T(0)) return;
    pair_hessian_apply<T>(vec, k[p], ka[p], kb[p], p, ei[p], ej[p], q, qs, xq, xd, yq, yd, AtomicAdd<T>());
}

template <typename T>
__global__ void pair_energy_k(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs,
                              const T* qc, const T* qs, const T* d, int method, T beta, T coulomb, T taper, T cutoff,
                              T* energies, T* grad) {
    const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    const T e = pair_site_energy<T>(vec, a, ei, ej, p, qc, qs, d, method, beta, coulomb, taper, cutoff,
                                    grad == nullptr ? nullptr : grad + 3 * p);
    if (energies != nullptr) energies[p] = e;
}

template <typename T>
__global__ void pme_spread_k(const T* pos, const T* q, const T* mu, int64_t n, const T* frac, int64_t k0, int64_t k1,
                             int64_t k2, int order, T* mesh) {
    const int64_t a = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (a >= n) return;
    const int64_t shape[3] = {k0, k1, k2};
    pme_spread_site<T>(pos, q, mu, a, frac, shape, order, mesh, AtomicAdd<T>());
}

template <typename T>
__global__ void pme_gather_k(const T* pos, const T* mesh, int64_t n, const T* frac, int64_t k0, int64_t k1, int64_t k2,
                             int order, T* values, T* grad) {
    const int64_t a = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (a >= n) return;
    const int64_t shape[3] = {k0, k1, k2};
    pme_gather_site<T>(pos, mesh, a, frac, shape, order, values, grad);
}

}  // namespace

template <typename T>
void core_kernel(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs, int method, T beta,
                 T coulomb, T taper, T cutoff, T* out, cudaStream_t stream) {
    if (n_pairs == 0) return;
    core_kernel_k<T><<<blocks_for(n_pairs), BLOCK, 0, stream>>>(vec, a, ei, ej, n_pairs, method, beta, coulomb, taper,
                                                                  cutoff, out);
}

template <typename T>
void pair_matvec(const T* kernel, const int64_t* ei, const int64_t* ej, int64_t n_pairs, const T* x, int64_t c, T* y,
                 cudaStream_t stream) {
    if (n_pairs == 0) return;
    pair_matvec_k<T><<<blocks_for(n_pairs), BLOCK, 0, stream>>>(kernel, ei, ej, n_pairs, x, c, y);
}

template <typename T>
void site_potentials(const T* vec, const T* kcc, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs,
                     const T* qc, const T* qs, const T* d, int method, T beta, T coulomb, T taper, T cutoff, T* phi_c,
                     T* phi_s, T* grad, cudaStream_t stream) {
    if (n_pairs == 0) return;
    site_potentials_k<T><<<blocks_for(n_pairs), BLOCK, 0, stream>>>(vec, kcc, a, ei, ej, n_pairs, qc, qs, d, method,
                                                                      beta, coulomb, taper, cutoff, phi_c, phi_s, grad);
}

template <typename T>
void pair_energy(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs, const T* qc,
                 const T* qs, const T* d, int method, T beta, T coulomb, T taper, T cutoff, T* energies, T* grad,
                 cudaStream_t stream) {
    if (n_pairs == 0) return;
    pair_energy_k<T><<<blocks_for(n_pairs), BLOCK, 0, stream>>>(vec, a, ei, ej, n_pairs, qc, qs, d, method, beta,
                                                                  coulomb, taper, cutoff, energies, grad);
}

template <typename T>
void pme_spread(const T* pos, const T* q, const T* mu, int64_t n, const T* frac, const int64_t* shape, int order,
                T* mesh, cudaStream_t stream) {
    if (n == 0) return;
    pme_spread_k<T><<<blocks_for(n), BLOCK, 0, stream>>>(pos, q, mu, n, frac, shape[0], shape[1], shape[2], order,
                                                          mesh);
}

template <typename T>
void kernel_derivatives(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs, int method,
                        T beta, T coulomb, T cutoff, T* k, T* ka, T* kb, cudaStream_t stream) {
    if (n_pairs == 0) return;
    kernel_derivatives_k<T><<<blocks_for(n_pairs), BLOCK, 0, stream>>>(vec, a, ei, ej, n_pairs, method, beta, coulomb,
                                                                         cutoff, k, ka, kb);
}

template <typename T>
void pair_hessian_matvec(const T* vec, const T* k, const T* ka, const T* kb, const int64_t* ei, const int64_t* ej,
                         int64_t n_pairs, const T* q, const T* qs, const T* xq, const T* xd, T* yq, T* yd,
                         cudaStream_t stream) {
    if (n_pairs == 0) return;
    pair_hessian_k<T><<<blocks_for(n_pairs), BLOCK, 0, stream>>>(vec, k, ka, kb, ei, ej, n_pairs, q, qs, xq, xd, yq, yd);
}

template <typename T>
void pme_gather(const T* pos, const T* mesh, int64_t n, const T* frac, const int64_t* shape, int order, T* values,
                T* grad, cudaStream_t stream) {
    if (n == 0) return;
    pme_gather_k<T><<<blocks_for(n), BLOCK, 0, stream>>>(pos, mesh, n, frac, shape[0], shape[1], shape[2], order,
                                                          values, grad);
}

#define PQEQ_INSTANTIATE(T)                                                                                          \
    template void core_kernel<T>(const T*, const T*, const int64_t*, const int64_t*, int64_t, int, T, T, T, T, T*,     \
                                 cudaStream_t);                                                                       \
    template void pair_matvec<T>(const T*, const int64_t*, const int64_t*, int64_t, const T*, int64_t, T*,             \
                                 cudaStream_t);                                                                       \
    template void site_potentials<T>(const T*, const T*, const T*, const int64_t*, const int64_t*, int64_t, const T*,  \
                                     const T*, const T*, int, T, T, T, T, T*, T*, T*, cudaStream_t);                  \
    template void pair_energy<T>(const T*, const T*, const int64_t*, const int64_t*, int64_t, const T*, const T*,    \
                                 const T*, int, T, T, T, T, T*, T*, cudaStream_t);                                  \
    template void pme_spread<T>(const T*, const T*, const T*, int64_t, const T*, const int64_t*, int, T*,          \
                                cudaStream_t);                                                                     \
    template void kernel_derivatives<T>(const T*, const T*, const int64_t*, const int64_t*, int64_t, int, T, T, T, \
                                        T*, T*, T*, cudaStream_t);                                                 \
    template void pair_hessian_matvec<T>(const T*, const T*, const T*, const T*, const int64_t*, const int64_t*,  \
                                         int64_t, const T*, const T*, const T*, const T*, T*, T*, cudaStream_t);    \
    template void pme_gather<T>(const T*, const T*, int64_t, const T*, const int64_t*, int, T*, T*, cudaStream_t);

PQEQ_INSTANTIATE(float)
PQEQ_INSTANTIATE(double)

}  // namespace cuda
}  // namespace openmm_pqeq
