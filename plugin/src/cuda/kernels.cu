// CUDA kernels of the PQEq operators: one thread per pair (or site), atomics for the sums.
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
__global__ void core_kernel_k(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs,
                              int method, T beta, T coulomb, T taper, T cutoff, T* out) {
    const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    const T x = vec[3 * p], y = vec[3 * p + 1], z = vec[3 * p + 2];
    const T r = sqrt(x * x + y * y + z * z);
    if (cutoff > 0 && !(r < cutoff)) {
        out[p] = T(0);
        return;
    }
    T k, dk;
    pair_kernel<T>(r, screening<T>(a[ei[p]], a[ej[p]]), method, beta, coulomb, taper, k, dk);
    out[p] = k;
}

template <typename T>
__global__ void pair_matvec_k(const T* kernel, const int64_t* ei, const int64_t* ej, int64_t n_pairs, const T* x,
                              int64_t c, T* y) {
    const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    const T k = kernel[p];
    if (k == T(0)) return;
    const int64_t i = ei[p], j = ej[p];
    for (int64_t ch = 0; ch < c; ++ch) {
        atomicAdd(y + i * c + ch, k * x[j * c + ch]);
        atomicAdd(y + j * c + ch, k * x[i * c + ch]);
    }
}

template <typename T>
__global__ void site_potentials_k(const T* vec, const T* kcc_all, const T* a, const int64_t* ei, const int64_t* ej,
                                  int64_t n_pairs, const T* qc, const T* qs, const T* d, int method, T beta, T coulomb,
                                  T taper, T cutoff, T* pc, T* ps, T* g) {
    const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    const T vx = vec[3 * p], vy = vec[3 * p + 1], vz = vec[3 * p + 2];
    if (cutoff > 0) {
        const T r = sqrt(vx * vx + vy * vy + vz * vz);
        if (!(r < cutoff)) return;
    }
    const int64_t i = ei[p], j = ej[p];
    const T alpha = screening<T>(a[i], a[j]);
    const T dix = d[3 * i], diy = d[3 * i + 1], diz = d[3 * i + 2];
    const T djx = d[3 * j], djy = d[3 * j + 1], djz = d[3 * j + 2];
    const T csx = vx + djx, csy = vy + djy, csz = vz + djz;
    const T scx = vx - dix, scy = vy - diy, scz = vz - diz;
    const T ssx = csx - dix, ssy = csy - diy, ssz = csz - diz;
    T kcs, gcs, ksc, gsc, kss, gss;
    pair_kernel<T>(sqrt(csx * csx + csy * csy + csz * csz), alpha, method, beta, coulomb, taper, kcs, gcs);
    pair_kernel<T>(sqrt(scx * scx + scy * scy + scz * scz), alpha, method, beta, coulomb, taper, ksc, gsc);
    pair_kernel<T>(sqrt(ssx * ssx + ssy * ssy + ssz * ssz), alpha, method, beta, coulomb, taper, kss, gss);
    const T kcc = kcc_all[p];
    const T qci = qc[i], qcj = qc[j], qsi = qs[i], qsj = qs[j];
    atomicAdd(pc + i, kcc * qcj + kcs * qsj);
    atomicAdd(pc + j, kcc * qci + ksc * qsi);
    atomicAdd(ps + i, ksc * qcj + kss * qsj);
    atomicAdd(ps + j, kcs * qci + kss * qsi);
    const T wcs = qci * qsj * gcs, wsc = qsi * qcj * gsc, wss = qsi * qsj * gss;
    atomicAdd(g + 3 * j, wcs * csx + wss * ssx);
    atomicAdd(g + 3 * j + 1, wcs * csy + wss * ssy);
    atomicAdd(g + 3 * j + 2, wcs * csz + wss * ssz);
    atomicAdd(g + 3 * i, -(wsc * scx + wss * ssx));
    atomicAdd(g + 3 * i + 1, -(wsc * scy + wss * ssy));
    atomicAdd(g + 3 * i + 2, -(wsc * scz + wss * ssz));
}

template <typename T>
__global__ void kernel_derivatives_k(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs,
                                     int method, T beta, T coulomb, T cutoff, T* k, T* ka, T* kb) {
    const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    const T x = vec[3 * p], y = vec[3 * p + 1], z = vec[3 * p + 2];
    const T r = sqrt(x * x + y * y + z * z);
    if (cutoff > 0 && !(r < cutoff)) {
        k[p] = ka[p] = kb[p] = T(0);
        return;
    }
    pair_kernel_second<T>(r, screening<T>(a[ei[p]], a[ej[p]]), method, beta, coulomb, k[p], ka[p], kb[p]);
}

template <typename T>
struct AtomicAdd {
    __device__ void operator()(T* target, T value) const { atomicAdd(target, value); }
};

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
__device__ void site_stencil(const T* r, const T* frac, const int64_t* shape, int order, bool derivatives,
                             int64_t index[3][MAX_SPLINE_ORDER], T w[3][MAX_SPLINE_ORDER], T dw[3][MAX_SPLINE_ORDER]) {
    for (int axis = 0; axis < 3; ++axis) {
        const T u = r[0] * frac[axis] + r[1] * frac[3 + axis] + r[2] * frac[6 + axis];
        const T floor_u = floor(u);
        bspline_weights<T>(u - floor_u, order, w[axis], derivatives ? dw[axis] : nullptr);
        const int64_t base = static_cast<int64_t>(floor_u);
        for (int j = 0; j < order; ++j) index[axis][j] = wrap_index(base - j, shape[axis]);
    }
}

template <typename T>
__global__ void pme_spread_k(const T* pos, const T* q, const T* mu, int64_t n, const T* frac, int64_t k0, int64_t k1,
                             int64_t k2, int order, T* mesh) {
    const int64_t a = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (a >= n || (mu == nullptr && q[a] == T(0))) return;
    const int64_t shape[3] = {k0, k1, k2};
    int64_t index[3][MAX_SPLINE_ORDER];
    T w[3][MAX_SPLINE_ORDER], dw[3][MAX_SPLINE_ORDER];
    site_stencil<T>(pos + 3 * a, frac, shape, order, mu != nullptr, index, w, dw);
    T mu_u[3] = {T(0), T(0), T(0)};
    if (mu != nullptr)
        for (int axis = 0; axis < 3; ++axis)
            mu_u[axis] = mu[3 * a] * frac[axis] + mu[3 * a + 1] * frac[3 + axis] + mu[3 * a + 2] * frac[6 + axis];
    for (int x = 0; x < order; ++x)
        for (int y = 0; y < order; ++y) {
            const T wxy = w[0][x] * w[1][y];
            T c0 = q[a] * wxy, c1 = T(0);
            if (mu != nullptr) {
                c0 += mu_u[0] * dw[0][x] * w[1][y] + mu_u[1] * w[0][x] * dw[1][y];
                c1 = mu_u[2] * wxy;
            }
            const int64_t oxy = (index[0][x] * k1 + index[1][y]) * k2;
            for (int z = 0; z < order; ++z)
                atomicAdd(mesh + oxy + index[2][z], c0 * w[2][z] + (mu != nullptr ? c1 * dw[2][z] : T(0)));
        }
}

template <typename T>
__global__ void pme_gather_k(const T* pos, const T* mesh, int64_t n, const T* frac, int64_t k0, int64_t k1, int64_t k2,
                             int order, T* values, T* grad) {
    const int64_t a = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (a >= n) return;
    const int64_t shape[3] = {k0, k1, k2};
    int64_t index[3][MAX_SPLINE_ORDER];
    T w[3][MAX_SPLINE_ORDER], dw[3][MAX_SPLINE_ORDER];
    site_stencil<T>(pos + 3 * a, frac, shape, order, grad != nullptr, index, w, dw);
    T v = T(0), g0 = T(0), g1 = T(0), g2 = T(0);
    for (int x = 0; x < order; ++x)
        for (int y = 0; y < order; ++y) {
            const int64_t oxy = (index[0][x] * k1 + index[1][y]) * k2;
            T row = T(0), drow = T(0);
            for (int z = 0; z < order; ++z) {
                const T m = mesh[oxy + index[2][z]];
                row += w[2][z] * m;
                if (grad != nullptr) drow += dw[2][z] * m;
            }
            v += w[0][x] * w[1][y] * row;
            if (grad != nullptr) {
                g0 += dw[0][x] * w[1][y] * row;
                g1 += w[0][x] * dw[1][y] * row;
                g2 += w[0][x] * w[1][y] * drow;
            }
        }
    values[a] = v;
    if (grad != nullptr)
        for (int c = 0; c < 3; ++c) grad[3 * a + c] = g0 * frac[3 * c] + g1 * frac[3 * c + 1] + g2 * frac[3 * c + 2];
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
