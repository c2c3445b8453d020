// Cardinal B-spline stencils of smooth PME (Essmann et al., J. Chem. Phys. 103, 8577 (1995)),
// shared by the CPU and CUDA operators; the PyTorch twin is openmm_pqeq/electrostatics/pme.py.
//
// A site with mesh coordinate u (along one axis) has weights M_n(t + j), t = u - floor(u), at
// the mesh points floor(u) - j, j = 0..n-1, and derivatives dM_n/du there.
#pragma once

#include <cmath>
#include <cstdint>

#include "pqeq_kernel_math.h"

namespace openmm_pqeq {

constexpr int MAX_SPLINE_ORDER = 12;

template <typename T>
PQEQ_HOST_DEVICE void bspline_weights(T t, int order, T* w, T* dw) {
    // order 2: M_2(t) = t, M_2(t + 1) = 1 - t
    T prev[MAX_SPLINE_ORDER];
    w[0] = t;
    w[1] = T(1) - t;
    for (int j = 2; j < order; ++j) w[j] = T(0);
    for (int n = 3; n <= order; ++n) {
        for (int j = 0; j < n - 1; ++j) prev[j] = w[j];
        // M_n(t + j) = ((t + j) M_{n-1}(t + j) + (n - t - j) M_{n-1}(t + j - 1)) / (n - 1)
        for (int j = n - 1; j >= 0; --j) {
            const T x = t + T(j);
            const T hi = j < n - 1 ? prev[j] : T(0);
            const T lo = j > 0 ? prev[j - 1] : T(0);
            w[j] = (x * hi + (T(n) - x) * lo) / T(n - 1);
        }
    }
    if (dw != nullptr) {
        // dM_n(x)/dx = M_{n-1}(x) - M_{n-1}(x - 1); prev holds M_{n-1} (order >= 3)
        for (int j = 0; j < order; ++j) {
            const T hi = j < order - 1 ? prev[j] : T(0);
            const T lo = j > 0 ? prev[j - 1] : T(0);
            dw[j] = hi - lo;
        }
    }
}

PQEQ_HOST_DEVICE int64_t wrap_index(int64_t i, int64_t n) {
    const int64_t r = i % n;
    return r < 0 ? r + n : r;
}

}  // namespace openmm_pqeq
