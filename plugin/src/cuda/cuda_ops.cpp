// CUDA dispatch of torch.ops.openmm_pqeq.*: argument checks, then the launchers of kernels.cu
// on the current stream.  Results match the CPU operators up to the order of the atomic sums.
#include <torch/library.h>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../../include/pqeq_ops.h"
#include "launchers.h"

namespace openmm_pqeq {

namespace {

cudaStream_t current_stream(const at::Tensor& like) {
    return c10::cuda::getCurrentCUDAStream(like.device().index()).stream();
}

at::Tensor core_kernel_cuda(const at::Tensor& vec_in, const at::Tensor& exponents_in, const at::Tensor& edge_i_in,
                            const at::Tensor& edge_j_in, int64_t method, double beta, double coulomb,
                            double taper_cutoff, double cutoff) {
    check_pairs(vec_in, edge_i_in, edge_j_in, "core_kernel");
    TORCH_CHECK_VALUE(method >= 0 && method <= 2, "core_kernel: method must be 0, 1 or 2, got ", method);
    check_atoms(exponents_in, exponents_in.size(0), vec_in, "exponents", "core_kernel");
    c10::cuda::CUDAGuard guard(vec_in.device());
    auto vec = vec_in.contiguous();
    auto exponents = exponents_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto out = at::empty({vec.size(0)}, vec.options());
    AT_DISPATCH_FLOATING_TYPES(vec.scalar_type(), "core_kernel", [&] {
        cuda::core_kernel<scalar_t>(vec.data_ptr<scalar_t>(), exponents.data_ptr<scalar_t>(),
                                    edge_i.data_ptr<int64_t>(), edge_j.data_ptr<int64_t>(), vec.size(0),
                                    static_cast<int>(method), beta, coulomb, taper_cutoff, cutoff,
                                    out.data_ptr<scalar_t>(), current_stream(vec));
    });
    return out;
}

at::Tensor pair_matvec_cuda(const at::Tensor& kernel_in, const at::Tensor& edge_i_in, const at::Tensor& edge_j_in,
                            const at::Tensor& x_in) {
    TORCH_CHECK_VALUE(kernel_in.dim() == 1, "pair_matvec: kernel must have shape (P,), got ", kernel_in.sizes());
    TORCH_CHECK_VALUE(x_in.dim() == 2, "pair_matvec: x must have shape (N, C), got ", x_in.sizes());
    TORCH_CHECK_VALUE(edge_i_in.size(0) == kernel_in.size(0) && edge_j_in.size(0) == kernel_in.size(0),
                      "pair_matvec: edge_i and edge_j must have shape (P,) with P = ", kernel_in.size(0));
    TORCH_CHECK_VALUE(kernel_in.scalar_type() == x_in.scalar_type(), "pair_matvec: kernel and x must share a dtype");
    c10::cuda::CUDAGuard guard(x_in.device());
    auto kernel = kernel_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto x = x_in.contiguous();
    auto y = at::zeros_like(x);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pair_matvec", [&] {
        cuda::pair_matvec<scalar_t>(kernel.data_ptr<scalar_t>(), edge_i.data_ptr<int64_t>(), edge_j.data_ptr<int64_t>(),
                                    kernel.size(0), x.data_ptr<scalar_t>(), x.size(1), y.data_ptr<scalar_t>(),
                                    current_stream(x));
    });
    return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> site_potentials_cuda(
    const at::Tensor& vec_in, const at::Tensor& kernel_in, const at::Tensor& exponents_in, const at::Tensor& edge_i_in,
    const at::Tensor& edge_j_in, const at::Tensor& qc_in, const at::Tensor& qs_in, const at::Tensor& d_in,
    int64_t method, double beta, double coulomb, double taper_cutoff, double cutoff) {
    check_site_args(vec_in, kernel_in, exponents_in, edge_i_in, edge_j_in, qc_in, qs_in, d_in, method,
                    "site_potentials");
    const int64_t n = exponents_in.size(0);
    c10::cuda::CUDAGuard guard(vec_in.device());
    auto vec = vec_in.contiguous();
    auto kernel = kernel_in.contiguous();
    auto exponents = exponents_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto qc = qc_in.contiguous();
    auto qs = qs_in.contiguous();
    auto d = d_in.contiguous();
    auto phi_c = at::zeros({n}, vec.options());
    auto phi_s = at::zeros({n}, vec.options());
    auto grad = at::zeros({n, 3}, vec.options());
    AT_DISPATCH_FLOATING_TYPES(vec.scalar_type(), "site_potentials", [&] {
        cuda::site_potentials<scalar_t>(vec.data_ptr<scalar_t>(), kernel.data_ptr<scalar_t>(),
                                        exponents.data_ptr<scalar_t>(), edge_i.data_ptr<int64_t>(),
                                        edge_j.data_ptr<int64_t>(), vec.size(0), qc.data_ptr<scalar_t>(),
                                        qs.data_ptr<scalar_t>(), d.data_ptr<scalar_t>(), static_cast<int>(method),
                                        beta, coulomb, taper_cutoff, cutoff, phi_c.data_ptr<scalar_t>(),
                                        phi_s.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(), current_stream(vec));
    });
    return {phi_c, phi_s, grad};
}

at::Tensor pair_energy_cuda_impl(const at::Tensor& vec_in, const at::Tensor& exponents_in, const at::Tensor& edge_i_in,
                                 const at::Tensor& edge_j_in, const at::Tensor& qc_in, const at::Tensor& qs_in,
                                 const at::Tensor& d_in, int64_t method, double beta, double coulomb,
                                 double taper_cutoff, double cutoff, bool backward) {
    const char* op = backward ? "pair_energy_backward" : "pair_energy";
    check_energy_args(vec_in, exponents_in, edge_i_in, edge_j_in, qc_in, qs_in, d_in, method, op);
    c10::cuda::CUDAGuard guard(vec_in.device());
    auto vec = vec_in.contiguous();
    auto exponents = exponents_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto qc = qc_in.contiguous();
    auto qs = qs_in.contiguous();
    auto d = d_in.contiguous();
    auto out = backward ? at::empty_like(vec) : at::empty({vec.size(0)}, vec.options());
    AT_DISPATCH_FLOATING_TYPES(vec.scalar_type(), "pair_energy", [&] {
        cuda::pair_energy<scalar_t>(vec.data_ptr<scalar_t>(), exponents.data_ptr<scalar_t>(),
                                    edge_i.data_ptr<int64_t>(), edge_j.data_ptr<int64_t>(), vec.size(0),
                                    qc.data_ptr<scalar_t>(), qs.data_ptr<scalar_t>(), d.data_ptr<scalar_t>(),
                                    static_cast<int>(method), beta, coulomb, taper_cutoff, cutoff,
                                    backward ? nullptr : out.data_ptr<scalar_t>(),
                                    backward ? out.data_ptr<scalar_t>() : nullptr, current_stream(vec));
    });
    // sum per-pair energies in float64 (a deterministic reduction)
    return backward ? out : out.sum(at::kDouble).to(vec.scalar_type());
}

at::Tensor pair_energy_cuda(const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i,
                            const at::Tensor& edge_j, const at::Tensor& qc, const at::Tensor& qs, const at::Tensor& d,
                            int64_t method, double beta, double coulomb, double taper_cutoff, double cutoff) {
    return pair_energy_cuda_impl(vec, exponents, edge_i, edge_j, qc, qs, d, method, beta, coulomb, taper_cutoff,
                                 cutoff, false);
}

at::Tensor pair_energy_backward_cuda(const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i,
                                     const at::Tensor& edge_j, const at::Tensor& qc, const at::Tensor& qs,
                                     const at::Tensor& d, int64_t method, double beta, double coulomb,
                                     double taper_cutoff, double cutoff) {
    return pair_energy_cuda_impl(vec, exponents, edge_i, edge_j, qc, qs, d, method, beta, coulomb, taper_cutoff,
                                 cutoff, true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_derivatives_cuda(
    const at::Tensor& vec_in, const at::Tensor& exponents_in, const at::Tensor& edge_i_in, const at::Tensor& edge_j_in,
    int64_t method, double beta, double coulomb, double cutoff) {
    check_pairs(vec_in, edge_i_in, edge_j_in, "kernel_derivatives");
    TORCH_CHECK_VALUE(method == 0 || method == 1, "kernel_derivatives: method must be 0 (direct) or 1 (Ewald), got ",
                      method);
    check_atoms(exponents_in, exponents_in.size(0), vec_in, "exponents", "kernel_derivatives");
    c10::cuda::CUDAGuard guard(vec_in.device());
    auto vec = vec_in.contiguous();
    auto exponents = exponents_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto k = at::empty({vec.size(0)}, vec.options());
    auto ka = at::empty_like(k);
    auto kb = at::empty_like(k);
    AT_DISPATCH_FLOATING_TYPES(vec.scalar_type(), "kernel_derivatives", [&] {
        cuda::kernel_derivatives<scalar_t>(vec.data_ptr<scalar_t>(), exponents.data_ptr<scalar_t>(),
                                           edge_i.data_ptr<int64_t>(), edge_j.data_ptr<int64_t>(), vec.size(0),
                                           static_cast<int>(method), beta, coulomb, cutoff, k.data_ptr<scalar_t>(),
                                           ka.data_ptr<scalar_t>(), kb.data_ptr<scalar_t>(), current_stream(vec));
    });
    return {k, ka, kb};
}

std::tuple<at::Tensor, at::Tensor> pair_hessian_matvec_cuda(
    const at::Tensor& vec_in, const at::Tensor& k_in, const at::Tensor& ka_in, const at::Tensor& kb_in,
    const at::Tensor& edge_i_in, const at::Tensor& edge_j_in, const at::Tensor& q_in, const at::Tensor& qs_in,
    const at::Tensor& xq_in, const at::Tensor& xd_in) {
    check_hessian_args(vec_in, k_in, ka_in, kb_in, edge_i_in, edge_j_in, q_in, qs_in, xq_in, xd_in);
    c10::cuda::CUDAGuard guard(vec_in.device());
    auto vec = vec_in.contiguous();
    auto k = k_in.contiguous();
    auto ka = ka_in.contiguous();
    auto kb = kb_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto q = q_in.contiguous();
    auto qs = qs_in.contiguous();
    auto xq = xq_in.contiguous();
    auto xd = xd_in.contiguous();
    auto yq = at::zeros_like(xq);
    auto yd = at::zeros_like(xd);
    AT_DISPATCH_FLOATING_TYPES(vec.scalar_type(), "pair_hessian_matvec", [&] {
        cuda::pair_hessian_matvec<scalar_t>(vec.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), ka.data_ptr<scalar_t>(),
                                            kb.data_ptr<scalar_t>(), edge_i.data_ptr<int64_t>(),
                                            edge_j.data_ptr<int64_t>(), vec.size(0), q.data_ptr<scalar_t>(),
                                            qs.data_ptr<scalar_t>(), xq.data_ptr<scalar_t>(), xd.data_ptr<scalar_t>(),
                                            yq.data_ptr<scalar_t>(), yd.data_ptr<scalar_t>(), current_stream(vec));
    });
    return {yq, yd};
}

at::Tensor pme_spread_cuda(const at::Tensor& positions_in, const at::Tensor& charges_in, const at::Tensor& frac_in,
                           at::IntArrayRef shape, int64_t order, const c10::optional<at::Tensor>& dipoles_in) {
    check_pme(positions_in, frac_in, shape, order, "pme_spread");
    TORCH_CHECK_VALUE(charges_in.dim() == 1 && charges_in.size(0) == positions_in.size(0) &&
                          charges_in.scalar_type() == positions_in.scalar_type(),
                      "pme_spread: charges must have shape (n,) and the dtype of positions");
    c10::cuda::CUDAGuard guard(positions_in.device());
    at::Tensor dipoles;
    if (dipoles_in.has_value() && dipoles_in->defined()) {
        dipoles = dipoles_in->contiguous();
        TORCH_CHECK_VALUE(dipoles.dim() == 2 && dipoles.size(0) == positions_in.size(0) && dipoles.size(1) == 3,
                          "pme_spread: dipoles must have shape (n, 3), got ", dipoles.sizes());
    }
    auto positions = positions_in.contiguous();
    auto charges = charges_in.contiguous();
    auto frac = frac_in.contiguous();
    const int64_t dims[3] = {shape[0], shape[1], shape[2]};
    auto mesh = at::zeros({dims[0] * dims[1] * dims[2]}, positions.options());
    AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), "pme_spread", [&] {
        cuda::pme_spread<scalar_t>(positions.data_ptr<scalar_t>(), charges.data_ptr<scalar_t>(),
                                   dipoles.defined() ? dipoles.data_ptr<scalar_t>() : nullptr, positions.size(0),
                                   frac.data_ptr<scalar_t>(), dims, static_cast<int>(order), mesh.data_ptr<scalar_t>(),
                                   current_stream(positions));
    });
    return mesh;
}

std::tuple<at::Tensor, at::Tensor> pme_gather_cuda(const at::Tensor& positions_in, const at::Tensor& mesh_in,
                                                   const at::Tensor& frac_in, at::IntArrayRef shape, int64_t order,
                                                   bool gradient) {
    check_pme(positions_in, frac_in, shape, order, "pme_gather");
    TORCH_CHECK_VALUE(mesh_in.dim() == 1 && mesh_in.size(0) == shape[0] * shape[1] * shape[2] &&
                          mesh_in.scalar_type() == positions_in.scalar_type(),
                      "pme_gather: mesh must have shape (K1*K2*K3,) and the dtype of positions");
    c10::cuda::CUDAGuard guard(positions_in.device());
    auto positions = positions_in.contiguous();
    auto mesh = mesh_in.contiguous();
    auto frac = frac_in.contiguous();
    const int64_t dims[3] = {shape[0], shape[1], shape[2]};
    auto values = at::empty({positions.size(0)}, positions.options());
    auto grad = gradient ? at::empty({positions.size(0), 3}, positions.options()) : at::empty({0, 3}, positions.options());
    AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), "pme_gather", [&] {
        cuda::pme_gather<scalar_t>(positions.data_ptr<scalar_t>(), mesh.data_ptr<scalar_t>(), positions.size(0),
                                   frac.data_ptr<scalar_t>(), dims, static_cast<int>(order), values.data_ptr<scalar_t>(),
                                   gradient ? grad.data_ptr<scalar_t>() : nullptr, current_stream(positions));
    });
    return {values, grad};
}

}  // namespace

}  // namespace openmm_pqeq

TORCH_LIBRARY_IMPL(openmm_pqeq, CUDA, m) {
    m.impl("core_kernel", &openmm_pqeq::core_kernel_cuda);
    m.impl("pair_matvec", &openmm_pqeq::pair_matvec_cuda);
    m.impl("site_potentials", &openmm_pqeq::site_potentials_cuda);
    m.impl("kernel_derivatives", &openmm_pqeq::kernel_derivatives_cuda);
    m.impl("pair_hessian_matvec", &openmm_pqeq::pair_hessian_matvec_cuda);
    m.impl("pair_energy", &openmm_pqeq::pair_energy_cuda);
    m.impl("pair_energy_backward", &openmm_pqeq::pair_energy_backward_cuda);
    m.impl("pme_spread", &openmm_pqeq::pme_spread_cuda);
    m.impl("pme_gather", &openmm_pqeq::pme_gather_cuda);
}
