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

template <typename T>
void spread_impl(const T* pos, const T* q, const T* mu, int64_t n, const T* frac, const int64_t* shape, int order,
                 T* mesh) {
    const int64_t size = shape[0] * shape[1] * shape[2];
    const int threads = worker_count(n * order * order * order, 200000);
    std::vector<std::vector<T>> partial(threads > 1 ? threads - 1 : 0, std::vector<T>(size, T(0)));
    parallel_chunks(n, threads, [&](int t, int64_t begin, int64_t end) {
        T* out = t == 0 ? mesh : partial[t - 1].data();
        for (int64_t a = begin; a < end; ++a) pme_spread_site<T>(pos, q, mu, a, frac, shape, order, out, PlainAdd());
    });
    for (const auto& buffer : partial) {
        for (int64_t m = 0; m < size; ++m) mesh[m] += buffer[m];
    }
}

template <typename T>
void gather_impl(const T* pos, const T* mesh, int64_t n, const T* frac, const int64_t* shape, int order, T* values,
                 T* grad) {
    parallel_chunks(n, worker_count(n * order * order * order, 200000), [&](int, int64_t begin, int64_t end) {
        for (int64_t a = begin; a < end; ++a) pme_gather_site<T>(pos, mesh, a, frac, shape, order, values, grad);
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
