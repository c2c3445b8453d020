// Pair kernels of PQEq Gaussian sites and the per-pair bodies of the operators, shared by the CPU
// (plugin/src/cpu/pair_ops.cpp) and CUDA (plugin/src/cuda/kernels.cu) implementations: each
// per-pair formula is written once here, as a __host__ __device__ inline function; the callers
// only loop over pairs (threads or CUDA blocks) and choose how sums are added (`add`: plain on the
// CPU, where every thread owns its buffers, atomic on the GPU).  PQEQ_HOST_DEVICE expands to plain
// `inline` outside nvcc, so this header compiles as ordinary C++.
//
// K(r) and K'(r)/r (k_e included) of (openmm_pqeq/electrostatics/realspace.py):
//   method 0 (direct)  k_e erf(a r)/r
//   method 1 (Ewald)   k_e [erf(a r) - erf(b r)]/r
//   method 2 (tapered) k_e erf(a r)/r * Tap(r/r_c), Tap = 1 - 35x^4 + 84x^5 - 70x^6 + 20x^7
//                      = (1-x)^4 (1 + 4x + 10x^2 + 20x^3)
// Near r = 0 (a r < 1e-3) erf(x)/x is replaced by its series, as in the PyTorch twin.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define PQEQ_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PQEQ_HOST_DEVICE inline
#endif

namespace openmm_pqeq {

#if !defined(__CUDACC__)
// plain C++: the float overloads of std:: (nvcc provides them for host and device code)
using std::erf;
using std::exp;
using std::floor;
using std::sqrt;
#endif

constexpr int METHOD_DIRECT = 0;
constexpr int METHOD_EWALD = 1;
constexpr int METHOD_TAPERED = 2;

template <typename T>
PQEQ_HOST_DEVICE void erf_over_r(T alpha, T r, T& f, T& df_over_r) {
    const T two_over_sqrt_pi = T(1.1283791670955126);
    const T x = alpha * r;
    if (x < T(1e-3)) {
        const T x2 = x * x;
        f = two_over_sqrt_pi * alpha * (T(1) - x2 / T(3) + x2 * x2 / T(10));
        df_over_r = two_over_sqrt_pi * alpha * alpha * alpha * (T(-2) / T(3) + T(0.4) * x2);
    } else {
        f = erf(x) / r;
        df_over_r = (two_over_sqrt_pi * alpha * exp(-x * x) - f) / (r * r);
    }
}

// K(r) and K'(r)/r for distance r and screening alpha.
template <typename T>
PQEQ_HOST_DEVICE void pair_kernel(T r, T alpha, int method, T beta, T coulomb, T taper_cutoff, T& k, T& dk_over_r) {
    T f, df;
    erf_over_r(alpha, r, f, df);
    if (method == METHOD_EWALD) {
        T fb, dfb;
        erf_over_r(beta, r, fb, dfb);
        f -= fb;
        df -= dfb;
    } else if (method == METHOD_TAPERED) {
        // factored forms (no cancellation near the cutoff): Tap = (1-x)^4 (1 + 4x + 10x^2 + 20x^3),
        // dTap/dx = -140 x^3 (1-x)^3
        const T x = r / taper_cutoff;
        const T y = T(1) - x;
        const T y3 = y * y * y;
        const T taper = y3 * y * (T(1) + x * (T(4) + x * (T(10) + T(20) * x)));
        const T dtaper_over_r = T(-140) * x * x * y3 / (taper_cutoff * taper_cutoff);
        df = df * taper + f * dtaper_over_r;
        f = f * taper;
    }
    k = coulomb * f;
    dk_over_r = coulomb * df;
}

// f = erf(a r)/r, f'/r and (f'' - f'/r)/r^2 (series below a r = 1e-3).
template <typename T>
PQEQ_HOST_DEVICE void erf_over_r_second(T alpha, T r, T& f, T& a, T& b) {
    const T two_over_sqrt_pi = T(1.1283791670955126);
    erf_over_r(alpha, r, f, a);
    if (alpha * r < T(1e-3)) {
        const T a2 = alpha * alpha;
        b = two_over_sqrt_pi * T(0.8) * a2 * a2 * alpha;
    } else {
        const T gauss = two_over_sqrt_pi * alpha * exp(-(alpha * r) * (alpha * r));
        b = (T(-2) * alpha * alpha * gauss - T(3) * a) / (r * r);
    }
}

// K, K'/r and (K'' - K'/r)/r^2 for methods 0 (direct) and 1 (Ewald real space).
template <typename T>
PQEQ_HOST_DEVICE void pair_kernel_second(T r, T alpha, int method, T beta, T coulomb, T& k, T& a, T& b) {
    erf_over_r_second(alpha, r, k, a, b);
    if (method == METHOD_EWALD) {
        T kb, ab, bb;
        erf_over_r_second(beta, r, kb, ab, bb);
        k -= kb;
        a -= ab;
        b -= bb;
    }
    k *= coulomb;
    a *= coulomb;
    b *= coulomb;
}

template <typename T>
PQEQ_HOST_DEVICE T screening(T a_i, T a_j) {
    return sqrt(a_i * a_j / (a_i + a_j));
}

// Real-space (charge, shell) Hessian at zero shell displacement applied to (xq, xd) for pair p;
// adds to yq[i], yq[j] and yd[i], yd[j] through `add` (plain or atomic).  See realspace.py.
template <typename T, typename Add>
PQEQ_HOST_DEVICE void pair_hessian_apply(const T* vec, T k, T a, T b, int64_t p, int64_t i, int64_t j, const T* q,
                                         const T* qs, const T* xq, const T* xd, T* yq, T* yd, Add add) {
    const T vx = vec[3 * p], vy = vec[3 * p + 1], vz = vec[3 * p + 2];
    const T dix = xd[3 * i], diy = xd[3 * i + 1], diz = xd[3 * i + 2];
    const T djx = xd[3 * j], djy = xd[3 * j + 1], djz = xd[3 * j + 2];
    const T vdi = vx * dix + vy * diy + vz * diz;
    const T vdj = vx * djx + vy * djy + vz * djz;
    const T si = qs[i], sj = qs[j], qi = q[i], qj = q[j];
    add(yq + i, k * xq[j] + sj * a * vdj);
    add(yq + j, k * xq[i] - si * a * vdi);
    // T x = a x + b v (v . x)
    const T tix = a * dix + b * vdi * vx, tiy = a * diy + b * vdi * vy, tiz = a * diz + b * vdi * vz;
    const T tjx = a * djx + b * vdj * vx, tjy = a * djy + b * vdj * vy, tjz = a * djz + b * vdj * vz;
    const T cj = sj * a * xq[i], ci = si * a * xq[j], sij = si * sj;
    add(yd + 3 * j, cj * vx + sj * qi * tjx - sij * tix);
    add(yd + 3 * j + 1, cj * vy + sj * qi * tjy - sij * tiy);
    add(yd + 3 * j + 2, cj * vz + sj * qi * tjz - sij * tiz);
    add(yd + 3 * i, -ci * vx + si * qj * tix - sij * tjx);
    add(yd + 3 * i + 1, -ci * vy + si * qj * tiy - sij * tjy);
    add(yd + 3 * i + 2, -ci * vz + si * qj * tiz - sij * tjz);
}

// Energy of the four site pairs of pair p (grad == nullptr) or its gradient by vec (grad != nullptr).
template <typename T>
PQEQ_HOST_DEVICE T pair_site_energy(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t p, const T* qc,
                          const T* qs, const T* d, int method, T beta, T coulomb, T taper, T cutoff, T* grad) {
    const T vx = vec[3 * p], vy = vec[3 * p + 1], vz = vec[3 * p + 2];
    const T r = sqrt(vx * vx + vy * vy + vz * vz);
    if (cutoff > 0 && !(r < cutoff)) {
        if (grad) grad[0] = grad[1] = grad[2] = T(0);
        return T(0);
    }
    const int64_t i = ei[p], j = ej[p];
    const T alpha = screening<T>(a[i], a[j]);
    const T dix = d[3 * i], diy = d[3 * i + 1], diz = d[3 * i + 2];
    const T djx = d[3 * j], djy = d[3 * j + 1], djz = d[3 * j + 2];
    const T u[4][3] = {{vx, vy, vz},
                       {vx + djx, vy + djy, vz + djz},
                       {vx - dix, vy - diy, vz - diz},
                       {vx + djx - dix, vy + djy - diy, vz + djz - diz}};
    const T w[4] = {qc[i] * qc[j], qc[i] * qs[j], qs[i] * qc[j], qs[i] * qs[j]};
    T energy = T(0), gx = T(0), gy = T(0), gz = T(0);
    for (int s = 0; s < 4; ++s) {
        const T rs = s == 0 ? r : sqrt(u[s][0] * u[s][0] + u[s][1] * u[s][1] + u[s][2] * u[s][2]);
        T k, dk;
        pair_kernel<T>(rs, alpha, method, beta, coulomb, taper, k, dk);
        energy += w[s] * k;
        gx += w[s] * dk * u[s][0];
        gy += w[s] * dk * u[s][1];
        gz += w[s] * dk * u[s][2];
    }
    if (grad) {
        grad[0] = gx;
        grad[1] = gy;
        grad[2] = gz;
    }
    return energy;
}


// Core-core kernel K(|vec_p|) of pair p (0 beyond the cutoff; cutoff <= 0: none).
template <typename T>
PQEQ_HOST_DEVICE T pair_core_kernel(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t p,
                                    int method, T beta, T coulomb, T taper, T cutoff) {
    const T x = vec[3 * p], y = vec[3 * p + 1], z = vec[3 * p + 2];
    const T r = sqrt(x * x + y * y + z * z);
    if (cutoff > 0 && !(r < cutoff)) return T(0);
    T k, dk;
    pair_kernel<T>(r, screening<T>(a[ei[p]], a[ej[p]]), method, beta, coulomb, taper, k, dk);
    return k;
}

// K, K'/r and (K'' - K'/r)/r^2 of pair p (methods 0 and 1; all 0 beyond the cutoff).
template <typename T>
PQEQ_HOST_DEVICE void pair_kernel_derivatives(const T* vec, const T* a, const int64_t* ei, const int64_t* ej,
                                              int64_t p, int method, T beta, T coulomb, T cutoff, T& k, T& ka,
                                              T& kb) {
    const T x = vec[3 * p], y = vec[3 * p + 1], z = vec[3 * p + 2];
    const T r = sqrt(x * x + y * y + z * z);
    if (cutoff > 0 && !(r < cutoff)) {
        k = ka = kb = T(0);
        return;
    }
    pair_kernel_second<T>(r, screening<T>(a[ei[p]], a[ej[p]]), method, beta, coulomb, k, ka, kb);
}

// y_i += K_p x_j and y_j += K_p x_i for the c channels of pair p = (i, j) with kernel value k.
template <typename T, typename Add>
PQEQ_HOST_DEVICE void pair_matvec_apply(T k, int64_t i, int64_t j, const T* x, int64_t c, T* y, Add add) {
    if (k == T(0)) return;
    for (int64_t ch = 0; ch < c; ++ch) {
        add(y + i * c + ch, k * x[j * c + ch]);
        add(y + j * c + ch, k * x[i * c + ch]);
    }
}

// Pair p's contributions to the real-space potentials at the cores (pc) and shells (ps) and to
// dE_real/dd (g, (N, 3)): core i - shell j, shell i - core j, shell i - shell j from the kernel,
// core-core from the cached kernel kcc_all[p].
template <typename T, typename Add>
PQEQ_HOST_DEVICE void pair_site_potentials_apply(const T* vec, const T* kcc_all, const T* a, const int64_t* ei,
                                                 const int64_t* ej, int64_t p, const T* qc, const T* qs, const T* d,
                                                 int method, T beta, T coulomb, T taper, T cutoff, T* pc, T* ps,
                                                 T* g, Add add) {
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
    add(pc + i, kcc * qcj + kcs * qsj);
    add(pc + j, kcc * qci + ksc * qsi);
    add(ps + i, ksc * qcj + kss * qsj);
    add(ps + j, kcs * qci + kss * qsi);
    const T wcs = qci * qsj * gcs, wsc = qsi * qcj * gsc, wss = qsi * qsj * gss;
    add(g + 3 * j, wcs * csx + wss * ssx);
    add(g + 3 * j + 1, wcs * csy + wss * ssy);
    add(g + 3 * j + 2, wcs * csz + wss * ssz);
    add(g + 3 * i, -(wsc * scx + wss * ssx));
    add(g + 3 * i + 1, -(wsc * scy + wss * ssy));
    add(g + 3 * i + 2, -(wsc * scz + wss * ssz));
}

}  // namespace openmm_pqeq
