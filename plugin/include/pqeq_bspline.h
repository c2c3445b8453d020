// Cardinal B-spline stencils of smooth PME (Essmann et al., J. Chem. Phys. 103, 8577 (1995)),
// shared by the CPU and CUDA operators (the per-site spreading and interpolation are written once
// here; the callers loop over sites and choose plain or atomic adds); the PyTorch twin is
// openmm_pqeq/electrostatics/pme.py.
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

// Stencil of one site: mesh indices along each axis and weights (and derivatives by u).
template <typename T>
struct Stencil {
    int64_t index[3][MAX_SPLINE_ORDER];
    T w[3][MAX_SPLINE_ORDER];
    T dw[3][MAX_SPLINE_ORDER];
};

// Stencil of the site at r (3,) with mesh coordinates u = r @ frac; `shape` the three mesh sizes.
template <typename T>
PQEQ_HOST_DEVICE void make_stencil(const T* r, const T* frac, const int64_t* shape, int order, bool derivatives,
                                   Stencil<T>& s) {
    for (int axis = 0; axis < 3; ++axis) {
        const T u = r[0] * frac[axis] + r[1] * frac[3 + axis] + r[2] * frac[6 + axis];
        const T floor_u = floor(u);
        bspline_weights<T>(u - floor_u, order, s.w[axis], derivatives ? s.dw[axis] : nullptr);
        const int64_t base = static_cast<int64_t>(floor_u);
        for (int j = 0; j < order; ++j) s.index[axis][j] = wrap_index(base - j, shape[axis]);
    }
}

// Spread site a (charge q[a] and, when mu != nullptr, point dipole mu[3a..3a+2]) on the mesh
// (flattened ((i K2) + j) K3 + k) through `add`.  Point dipole: mu . grad W =
// sum_axis (mu . frac[:, axis]) dW/du_axis.
template <typename T, typename Add>
PQEQ_HOST_DEVICE void pme_spread_site(const T* pos, const T* q, const T* mu, int64_t a, const T* frac,
                                      const int64_t* shape, int order, T* mesh, Add add) {
    const T qa = q[a];
    if (mu == nullptr && qa == T(0)) return;
    Stencil<T> s;
    make_stencil<T>(pos + 3 * a, frac, shape, order, mu != nullptr, s);
    if (mu == nullptr) {
        for (int x = 0; x < order; ++x) {
            const T wx = qa * s.w[0][x];
            const int64_t ox = s.index[0][x] * shape[1];
            for (int y = 0; y < order; ++y) {
                const T wxy = wx * s.w[1][y];
                const int64_t oxy = (ox + s.index[1][y]) * shape[2];
                for (int z = 0; z < order; ++z) add(mesh + oxy + s.index[2][z], wxy * s.w[2][z]);
            }
        }
        return;
    }
    const T* m = mu + 3 * a;
    T mu_u[3];
    for (int axis = 0; axis < 3; ++axis) mu_u[axis] = m[0] * frac[axis] + m[1] * frac[3 + axis] + m[2] * frac[6 + axis];
    for (int x = 0; x < order; ++x) {
        const int64_t ox = s.index[0][x] * shape[1];
        for (int y = 0; y < order; ++y) {
            const int64_t oxy = (ox + s.index[1][y]) * shape[2];
            const T wxy = s.w[0][x] * s.w[1][y];
            const T c0 = qa * wxy + mu_u[0] * s.dw[0][x] * s.w[1][y] + mu_u[1] * s.w[0][x] * s.dw[1][y];
            const T c1 = mu_u[2] * wxy;
            for (int z = 0; z < order; ++z) add(mesh + oxy + s.index[2][z], c0 * s.w[2][z] + c1 * s.dw[2][z]);
        }
    }
}

// Interpolated mesh value at site a (values[a]) and, when grad != nullptr, its gradient by the
// site position (grad[3a..3a+2]).
template <typename T>
PQEQ_HOST_DEVICE void pme_gather_site(const T* pos, const T* mesh, int64_t a, const T* frac, const int64_t* shape,
                                      int order, T* values, T* grad) {
    Stencil<T> s;
    make_stencil<T>(pos + 3 * a, frac, shape, order, grad != nullptr, s);
    T v = T(0), gu0 = T(0), gu1 = T(0), gu2 = T(0);
    for (int x = 0; x < order; ++x) {
        const int64_t ox = s.index[0][x] * shape[1];
        for (int y = 0; y < order; ++y) {
            const int64_t oxy = (ox + s.index[1][y]) * shape[2];
            T row = T(0), drow = T(0);
            for (int z = 0; z < order; ++z) {
                const T m = mesh[oxy + s.index[2][z]];
                row += s.w[2][z] * m;
                if (grad != nullptr) drow += s.dw[2][z] * m;
            }
            v += s.w[0][x] * s.w[1][y] * row;
            if (grad != nullptr) {
                gu0 += s.dw[0][x] * s.w[1][y] * row;
                gu1 += s.w[0][x] * s.dw[1][y] * row;
                gu2 += s.w[0][x] * s.w[1][y] * drow;
            }
        }
    }
    values[a] = v;
    if (grad != nullptr) {
        // d/dr_c = sum_i d/du_i * du_i/dr_c, du_i/dr_c = frac[c][i]
        for (int c = 0; c < 3; ++c) grad[3 * a + c] = gu0 * frac[3 * c] + gu1 * frac[3 * c + 1] + gu2 * frac[3 * c + 2];
    }
}

}  // namespace openmm_pqeq
