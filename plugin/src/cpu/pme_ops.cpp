// CPU (multi-threaded) smooth-PME operators: spread site charges on the mesh and interpolate a
// mesh (and its gradient) at sites, with B-spline stencils computed on the fly.
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "../../include/pqeq_bspline.h"
#include "../../include/pqeq_ops.h"
#include "parallel.h"

namespace openmm_pqeq {

void check_pme(const at::Tensor& positions, const at::Tensor& frac, at::IntArrayRef shape, int64_t order,
               const char* op) {
    TORCH_CHECK_VALUE(positions.dim() == 2 && positions.size(1) == 3, op, ": positions must have shape (n, 3), got ",
                      positions.sizes());
    TORCH_CHECK_VALUE(positions.scalar_type() == at::kFloat || positions.scalar_type() == at::kDouble, op,
                      ": positions must be float32 or float64, got ", positions.scalar_type());
    TORCH_CHECK_VALUE(frac.dim() == 2 && frac.size(0) == 3 && frac.size(1) == 3, op,
                      ": frac must have shape (3, 3), got ", frac.sizes());
    TORCH_CHECK_VALUE(frac.scalar_type() == positions.scalar_type() && frac.device() == positions.device(), op,
                      ": frac must have the dtype and device of positions");
    TORCH_CHECK_VALUE(shape.size() == 3 && shape[0] > 0 && shape[1] > 0 && shape[2] > 0, op,
                      ": shape must be three positive mesh sizes, got ", shape);
    TORCH_CHECK_VALUE(order >= 3 && order <= MAX_SPLINE_ORDER, op, ": order must be between 3 and ",
                      MAX_SPLINE_ORDER, ", got ", order);
}

namespace {

// Stencil of one site: mesh indices along each axis and weights (and derivatives by u).
template <typename T>
struct Stencil {
    int64_t index[3][MAX_SPLINE_ORDER];
    T w[3][MAX_SPLINE_ORDER];
    T dw[3][MAX_SPLINE_ORDER];
};

template <typename T>
inline void make_stencil(const T* r, const T* frac, const int64_t* shape, int order, bool derivatives, Stencil<T>& s) {
    for (int axis = 0; axis < 3; ++axis) {
        const T u = r[0] * frac[axis] + r[1] * frac[3 + axis] + r[2] * frac[6 + axis];
        const T floor_u = std::floor(u);
        bspline_weights<T>(u - floor_u, order, s.w[axis], derivatives ? s.dw[axis] : nullptr);
        const int64_t base = static_cast<int64_t>(floor_u);
        for (int j = 0; j < order; ++j) s.index[axis][j] = wrap_index(base - j, shape[axis]);
    }
}

template <typename T>
void spread_impl(const T* pos, const T* q, const T* mu, int64_t n, const T* frac, const int64_t* shape, int order,
                 T* mesh) {
    const int64_t size = shape[0] * shape[1] * shape[2];
    const int threads = worker_count(n * order * order * order, 200000);
    std::vector<std::vector<T>> partial(threads > 1 ? threads - 1 : 0, std::vector<T>(size, T(0)));
    parallel_chunks(n, threads, [&](int t, int64_t begin, int64_t end) {
        T* out = t == 0 ? mesh : partial[t - 1].data();
        Stencil<T> s;
        for (int64_t a = begin; a < end; ++a) {
            const T qa = q[a];
            if (mu == nullptr) {
                if (qa == T(0)) continue;
                make_stencil<T>(pos + 3 * a, frac, shape, order, false, s);
                for (int x = 0; x < order; ++x) {
                    const T wx = qa * s.w[0][x];
                    const int64_t ox = s.index[0][x] * shape[1];
                    for (int y = 0; y < order; ++y) {
                        const T wxy = wx * s.w[1][y];
                        const int64_t oxy = (ox + s.index[1][y]) * shape[2];
                        for (int z = 0; z < order; ++z) out[oxy + s.index[2][z]] += wxy * s.w[2][z];
                    }
                }
                continue;
            }
            // point dipole: mu . grad W = sum_axis (mu . frac[:, axis]) dW/du_axis
            const T* m = mu + 3 * a;
            T mu_u[3];
            for (int axis = 0; axis < 3; ++axis) mu_u[axis] = m[0] * frac[axis] + m[1] * frac[3 + axis] + m[2] * frac[6 + axis];
            make_stencil<T>(pos + 3 * a, frac, shape, order, true, s);
            for (int x = 0; x < order; ++x) {
                const int64_t ox = s.index[0][x] * shape[1];
                for (int y = 0; y < order; ++y) {
                    const int64_t oxy = (ox + s.index[1][y]) * shape[2];
                    const T wxy = s.w[0][x] * s.w[1][y];
                    const T c0 = qa * wxy + mu_u[0] * s.dw[0][x] * s.w[1][y] + mu_u[1] * s.w[0][x] * s.dw[1][y];
                    const T c1 = mu_u[2] * wxy;
                    for (int z = 0; z < order; ++z) out[oxy + s.index[2][z]] += c0 * s.w[2][z] + c1 * s.dw[2][z];
                }
            }
        }
    });
    for (const auto& buffer : partial) {
        for (int64_t m = 0; m < size; ++m) mesh[m] += buffer[m];
    }
}

template <typename T>
void gather_impl(const T* pos, const T* mesh, int64_t n, const T* frac, const int64_t* shape, int order, T* values,
                 T* grad) {
    parallel_chunks(n, worker_count(n * order * order * order, 200000), [&](int, int64_t begin, int64_t end) {
        Stencil<T> s;
        for (int64_t a = begin; a < end; ++a) {
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
    });
}

}  // namespace

at::Tensor pme_spread_cpu(const at::Tensor& positions_in, const at::Tensor& charges_in, const at::Tensor& frac_in,
                          at::IntArrayRef shape, int64_t order, const c10::optional<at::Tensor>& dipoles_in) {
    check_pme(positions_in, frac_in, shape, order, "pme_spread");
    TORCH_CHECK_VALUE(charges_in.dim() == 1 && charges_in.size(0) == positions_in.size(0),
                      "pme_spread: charges must have shape (n,) with n = ", positions_in.size(0), ", got ",
                      charges_in.sizes());
    TORCH_CHECK_VALUE(charges_in.scalar_type() == positions_in.scalar_type(), "pme_spread: charges must have dtype ",
                      positions_in.scalar_type(), ", got ", charges_in.scalar_type());
    at::Tensor dipoles;
    if (dipoles_in.has_value() && dipoles_in->defined()) {
        dipoles = dipoles_in->contiguous();
        TORCH_CHECK_VALUE(dipoles.dim() == 2 && dipoles.size(0) == positions_in.size(0) && dipoles.size(1) == 3 &&
                              dipoles.scalar_type() == positions_in.scalar_type(),
                          "pme_spread: dipoles must have shape (n, 3) and the dtype of positions, got ", dipoles.sizes());
    }
    auto positions = positions_in.contiguous();
    auto charges = charges_in.contiguous();
    auto frac = frac_in.contiguous();
    const int64_t dims[3] = {shape[0], shape[1], shape[2]};
    auto mesh = at::zeros({dims[0] * dims[1] * dims[2]}, positions.options());
    AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), "pme_spread", [&] {
        spread_impl<scalar_t>(positions.data_ptr<scalar_t>(), charges.data_ptr<scalar_t>(),
                              dipoles.defined() ? dipoles.data_ptr<scalar_t>() : nullptr, positions.size(0),
                              frac.data_ptr<scalar_t>(), dims, static_cast<int>(order), mesh.data_ptr<scalar_t>());
    });
    return mesh;
}

std::tuple<at::Tensor, at::Tensor> pme_gather_cpu(const at::Tensor& positions_in, const at::Tensor& mesh_in,
                                                  const at::Tensor& frac_in, at::IntArrayRef shape, int64_t order,
                                                  bool gradient) {
    check_pme(positions_in, frac_in, shape, order, "pme_gather");
    TORCH_CHECK_VALUE(mesh_in.dim() == 1 && mesh_in.size(0) == shape[0] * shape[1] * shape[2],
                      "pme_gather: mesh must have shape (", shape[0] * shape[1] * shape[2], ",), got ", mesh_in.sizes());
    TORCH_CHECK_VALUE(mesh_in.scalar_type() == positions_in.scalar_type(), "pme_gather: mesh must have dtype ",
                      positions_in.scalar_type(), ", got ", mesh_in.scalar_type());
    auto positions = positions_in.contiguous();
    auto mesh = mesh_in.contiguous();
    auto frac = frac_in.contiguous();
    const int64_t dims[3] = {shape[0], shape[1], shape[2]};
    auto values = at::empty({positions.size(0)}, positions.options());
    auto grad = gradient ? at::empty({positions.size(0), 3}, positions.options()) : at::empty({0, 3}, positions.options());
    AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), "pme_gather", [&] {
        gather_impl<scalar_t>(positions.data_ptr<scalar_t>(), mesh.data_ptr<scalar_t>(), positions.size(0),
                              frac.data_ptr<scalar_t>(), dims, static_cast<int>(order), values.data_ptr<scalar_t>(),
                              gradient ? grad.data_ptr<scalar_t>() : nullptr);
    });
    return {values, grad};
}

}  // namespace openmm_pqeq

TORCH_LIBRARY_IMPL(openmm_pqeq, CPU, m) {
    m.impl("pme_spread", &openmm_pqeq::pme_spread_cpu);
    m.impl("pme_gather", &openmm_pqeq::pme_gather_cpu);
}
