// CPU (multi-threaded) implementations of the pair operators; see include/pqeq_ops.h.
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "../../include/pqeq_kernel_math.h"
#include "../../include/pqeq_ops.h"
#include "parallel.h"

namespace openmm_pqeq {

void check_pairs(const at::Tensor& vec, const at::Tensor& edge_i, const at::Tensor& edge_j, const char* op) {
    TORCH_CHECK_VALUE(vec.dim() == 2 && vec.size(1) == 3, op, ": vec must have shape (P, 3), got ", vec.sizes());
    TORCH_CHECK_VALUE(edge_i.dim() == 1 && edge_j.dim() == 1 && edge_i.size(0) == vec.size(0) &&
                          edge_j.size(0) == vec.size(0),
                      op, ": edge_i and edge_j must have shape (P,) with P = ", vec.size(0), ", got ",
                      edge_i.sizes(), " and ", edge_j.sizes());
    TORCH_CHECK_VALUE(edge_i.scalar_type() == at::kLong && edge_j.scalar_type() == at::kLong, op,
                      ": edge_i and edge_j must be int64, got ", edge_i.scalar_type(), " and ", edge_j.scalar_type());
    TORCH_CHECK_VALUE(vec.scalar_type() == at::kFloat || vec.scalar_type() == at::kDouble, op,
                      ": vec must be float32 or float64, got ", vec.scalar_type());
    TORCH_CHECK_VALUE(edge_i.device() == vec.device() && edge_j.device() == vec.device(), op,
                      ": edge_i and edge_j must be on the device of vec (", vec.device(), ")");
}

void check_atoms(const at::Tensor& values, int64_t n_atoms, const at::Tensor& like, const char* name, const char* op) {
    TORCH_CHECK_VALUE(values.size(0) == n_atoms, op, ": ", name, " must have ", n_atoms, " rows, got ", values.sizes());
    TORCH_CHECK_VALUE(values.scalar_type() == like.scalar_type(), op, ": ", name, " must have dtype ",
                      like.scalar_type(), ", got ", values.scalar_type());
    TORCH_CHECK_VALUE(values.device() == like.device(), op, ": ", name, " must be on ", like.device(), ", got ",
                      values.device());
}

namespace {

template <typename T>
void core_kernel_impl(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs, int method,
                      T beta, T coulomb, T taper, T cutoff, T* out) {
    parallel_chunks(n_pairs, worker_count(n_pairs, 20000), [&](int, int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
            out[p] = pair_core_kernel<T>(vec, a, ei, ej, p, method, beta, coulomb, taper, cutoff);
        }
    });
}

template <typename T>
void matvec_impl(const T* kernel, const int64_t* ei, const int64_t* ej, int64_t n_pairs, const T* x, int64_t n,
                 int64_t c, T* y) {
    const int threads = worker_count(n_pairs, 50000);
    std::vector<std::vector<T>> partial(threads > 1 ? threads - 1 : 0, std::vector<T>(n * c, T(0)));
    parallel_chunks(n_pairs, threads, [&](int t, int64_t begin, int64_t end) {
        T* out = t == 0 ? y : partial[t - 1].data();
        for (int64_t p = begin; p < end; ++p) pair_matvec_apply<T>(kernel[p], ei[p], ej[p], x, c, out, PlainAdd());
    });
    for (const auto& buffer : partial) {
        for (int64_t m = 0; m < n * c; ++m) y[m] += buffer[m];
    }
}

template <typename T>
void site_potentials_impl(const T* vec, const T* kcc_all, const T* a, const int64_t* ei, const int64_t* ej,
                          int64_t n_pairs, const T* qc, const T* qs, const T* d, int64_t n, int method, T beta,
                          T coulomb, T taper, T cutoff, T* phi_c, T* phi_s, T* grad) {
    const int threads = worker_count(n_pairs, 20000);
    // per extra thread: phi_core (n), phi_shell (n), grad (3n)
    std::vector<std::vector<T>> partial(threads > 1 ? threads - 1 : 0, std::vector<T>(5 * n, T(0)));
    parallel_chunks(n_pairs, threads, [&](int t, int64_t begin, int64_t end) {
        T* pc = t == 0 ? phi_c : partial[t - 1].data();
        T* ps = t == 0 ? phi_s : partial[t - 1].data() + n;
        T* g = t == 0 ? grad : partial[t - 1].data() + 2 * n;
        for (int64_t p = begin; p < end; ++p) {
            pair_site_potentials_apply<T>(vec, kcc_all, a, ei, ej, p, qc, qs, d, method, beta, coulomb, taper, cutoff,
                                          pc, ps, g, PlainAdd());
        }
    });
    for (const auto& buffer : partial) {
        for (int64_t m = 0; m < n; ++m) {
            phi_c[m] += buffer[m];
            phi_s[m] += buffer[n + m];
        }
        for (int64_t m = 0; m < 3 * n; ++m) grad[m] += buffer[2 * n + m];
    }
}

template <typename T>
void kernel_derivatives_impl(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs,
                             int method, T beta, T coulomb, T cutoff, T* k, T* ka, T* kb) {
    parallel_chunks(n_pairs, worker_count(n_pairs, 20000), [&](int, int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
            pair_kernel_derivatives<T>(vec, a, ei, ej, p, method, beta, coulomb, cutoff, k[p], ka[p], kb[p]);
        }
    });
}

template <typename T>
void pair_hessian_impl(const T* vec, const T* k, const T* ka, const T* kb, const int64_t* ei, const int64_t* ej,
                       int64_t n_pairs, const T* q, const T* qs, const T* xq, const T* xd, int64_t n, T* yq, T* yd) {
    const int threads = worker_count(n_pairs, 20000);
    std::vector<std::vector<T>> partial(threads > 1 ? threads - 1 : 0, std::vector<T>(4 * n, T(0)));
    parallel_chunks(n_pairs, threads, [&](int t, int64_t begin, int64_t end) {
        T* oq = t == 0 ? yq : partial[t - 1].data();
        T* od = t == 0 ? yd : partial[t - 1].data() + n;
        for (int64_t p = begin; p < end; ++p) {
            if (k[p] == T(0) && ka[p] == T(0)) continue;
            pair_hessian_apply<T>(vec, k[p], ka[p], kb[p], p, ei[p], ej[p], q, qs, xq, xd, oq, od, PlainAdd());
        }
    });
    for (const auto& buffer : partial) {
        for (int64_t m = 0; m < n; ++m) yq[m] += buffer[m];
        for (int64_t m = 0; m < 3 * n; ++m) yd[m] += buffer[n + m];
    }
}

template <typename T>
T pair_energy_impl(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs, const T* qc,
                   const T* qs, const T* d, int method, T beta, T coulomb, T taper, T cutoff) {
    const int threads = worker_count(n_pairs, 20000);
    std::vector<double> partial(threads, 0.0);
    parallel_chunks(n_pairs, threads, [&](int t, int64_t begin, int64_t end) {
        double sum = 0.0;
        for (int64_t p = begin; p < end; ++p) {
            sum += pair_site_energy<T>(vec, a, ei, ej, p, qc, qs, d, method, beta, coulomb, taper, cutoff, nullptr);
        }
        partial[t] = sum;
    });
    double total = 0.0;
    for (double value : partial) total += value;
    return static_cast<T>(total);
}

template <typename T>
void pair_energy_backward_impl(const T* vec, const T* a, const int64_t* ei, const int64_t* ej, int64_t n_pairs,
                               const T* qc, const T* qs, const T* d, int method, T beta, T coulomb, T taper, T cutoff,
                               T* grad) {
    parallel_chunks(n_pairs, worker_count(n_pairs, 20000), [&](int, int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
            pair_site_energy<T>(vec, a, ei, ej, p, qc, qs, d, method, beta, coulomb, taper, cutoff, grad + 3 * p);
        }
    });
}

}  // namespace

void check_energy_args(const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i,
                       const at::Tensor& edge_j, const at::Tensor& qc, const at::Tensor& qs, const at::Tensor& d,
                       int64_t method, const char* op) {
    check_pairs(vec, edge_i, edge_j, op);
    TORCH_CHECK_VALUE(method >= 0 && method <= 2, op, ": method must be 0, 1 or 2, got ", method);
    const int64_t n = exponents.size(0);
    check_atoms(exponents, n, vec, "exponents", op);
    check_atoms(qc, n, vec, "core_charges", op);
    check_atoms(qs, n, vec, "shell_charges", op);
    check_atoms(d, n, vec, "shell_displacements", op);
    TORCH_CHECK_VALUE(d.dim() == 2 && d.size(1) == 3, op, ": shell_displacements must have shape (N, 3), got ",
                      d.sizes());
}

void check_site_args(const at::Tensor& vec, const at::Tensor& kernel, const at::Tensor& exponents,
                     const at::Tensor& edge_i, const at::Tensor& edge_j, const at::Tensor& qc, const at::Tensor& qs,
                     const at::Tensor& d, int64_t method, const char* op) {
    check_energy_args(vec, exponents, edge_i, edge_j, qc, qs, d, method, op);
    TORCH_CHECK_VALUE(kernel.dim() == 1 && kernel.size(0) == vec.size(0), op, ": kernel must have shape (P,) with P = ",
                      vec.size(0), ", got ", kernel.sizes());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_derivatives_cpu(
    const at::Tensor& vec_in, const at::Tensor& exponents_in, const at::Tensor& edge_i_in, const at::Tensor& edge_j_in,
    int64_t method, double beta, double coulomb, double cutoff) {
    check_pairs(vec_in, edge_i_in, edge_j_in, "kernel_derivatives");
    TORCH_CHECK_VALUE(method == 0 || method == 1, "kernel_derivatives: method must be 0 (direct) or 1 (Ewald), got ",
                      method);
    check_atoms(exponents_in, exponents_in.size(0), vec_in, "exponents", "kernel_derivatives");
    auto vec = vec_in.contiguous();
    auto exponents = exponents_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto k = at::empty({vec.size(0)}, vec.options());
    auto ka = at::empty_like(k);
    auto kb = at::empty_like(k);
    AT_DISPATCH_FLOATING_TYPES(vec.scalar_type(), "kernel_derivatives", [&] {
        kernel_derivatives_impl<scalar_t>(vec.data_ptr<scalar_t>(), exponents.data_ptr<scalar_t>(),
                                          edge_i.data_ptr<int64_t>(), edge_j.data_ptr<int64_t>(), vec.size(0),
                                          static_cast<int>(method), beta, coulomb, cutoff, k.data_ptr<scalar_t>(),
                                          ka.data_ptr<scalar_t>(), kb.data_ptr<scalar_t>());
    });
    return {k, ka, kb};
}

void check_hessian_args(const at::Tensor& vec, const at::Tensor& k, const at::Tensor& ka, const at::Tensor& kb,
                        const at::Tensor& edge_i, const at::Tensor& edge_j, const at::Tensor& q, const at::Tensor& qs,
                        const at::Tensor& xq, const at::Tensor& xd) {
    const char* op = "pair_hessian_matvec";
    check_pairs(vec, edge_i, edge_j, op);
    for (const at::Tensor* t : {&k, &ka, &kb}) {
        TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == vec.size(0) && t->scalar_type() == vec.scalar_type(), op,
                          ": kernel, kernel_a and kernel_b must have shape (P,) with P = ", vec.size(0),
                          " and the dtype of vec");
    }
    const int64_t n = q.size(0);
    check_atoms(q, n, vec, "net_charges", op);
    check_atoms(qs, n, vec, "shell_charges", op);
    check_atoms(xq, n, vec, "x_charges", op);
    check_atoms(xd, n, vec, "x_shells", op);
    TORCH_CHECK_VALUE(xd.dim() == 2 && xd.size(1) == 3, op, ": x_shells must have shape (N, 3), got ", xd.sizes());
}

std::tuple<at::Tensor, at::Tensor> pair_hessian_matvec_cpu(
    const at::Tensor& vec_in, const at::Tensor& k_in, const at::Tensor& ka_in, const at::Tensor& kb_in,
    const at::Tensor& edge_i_in, const at::Tensor& edge_j_in, const at::Tensor& q_in, const at::Tensor& qs_in,
    const at::Tensor& xq_in, const at::Tensor& xd_in) {
    check_hessian_args(vec_in, k_in, ka_in, kb_in, edge_i_in, edge_j_in, q_in, qs_in, xq_in, xd_in);
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
        pair_hessian_impl<scalar_t>(vec.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), ka.data_ptr<scalar_t>(),
                                    kb.data_ptr<scalar_t>(), edge_i.data_ptr<int64_t>(), edge_j.data_ptr<int64_t>(),
                                    vec.size(0), q.data_ptr<scalar_t>(), qs.data_ptr<scalar_t>(),
                                    xq.data_ptr<scalar_t>(), xd.data_ptr<scalar_t>(), q.size(0),
                                    yq.data_ptr<scalar_t>(), yd.data_ptr<scalar_t>());
    });
    return {yq, yd};
}

at::Tensor pair_energy_cpu(const at::Tensor& vec_in, const at::Tensor& exponents_in, const at::Tensor& edge_i_in,
                           const at::Tensor& edge_j_in, const at::Tensor& qc_in, const at::Tensor& qs_in,
                           const at::Tensor& d_in, int64_t method, double beta, double coulomb, double taper_cutoff,
                           double cutoff) {
    check_energy_args(vec_in, exponents_in, edge_i_in, edge_j_in, qc_in, qs_in, d_in, method, "pair_energy");
    auto vec = vec_in.contiguous();
    auto exponents = exponents_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto qc = qc_in.contiguous();
    auto qs = qs_in.contiguous();
    auto d = d_in.contiguous();
    auto out = at::zeros({}, vec.options());
    AT_DISPATCH_FLOATING_TYPES(vec.scalar_type(), "pair_energy", [&] {
        out.fill_(pair_energy_impl<scalar_t>(vec.data_ptr<scalar_t>(), exponents.data_ptr<scalar_t>(),
                                             edge_i.data_ptr<int64_t>(), edge_j.data_ptr<int64_t>(), vec.size(0),
                                             qc.data_ptr<scalar_t>(), qs.data_ptr<scalar_t>(), d.data_ptr<scalar_t>(),
                                             static_cast<int>(method), beta, coulomb, taper_cutoff, cutoff));
    });
    return out;
}

at::Tensor pair_energy_backward_cpu(const at::Tensor& vec_in, const at::Tensor& exponents_in,
                                    const at::Tensor& edge_i_in, const at::Tensor& edge_j_in, const at::Tensor& qc_in,
                                    const at::Tensor& qs_in, const at::Tensor& d_in, int64_t method, double beta,
                                    double coulomb, double taper_cutoff, double cutoff) {
    check_energy_args(vec_in, exponents_in, edge_i_in, edge_j_in, qc_in, qs_in, d_in, method, "pair_energy_backward");
    auto vec = vec_in.contiguous();
    auto exponents = exponents_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto qc = qc_in.contiguous();
    auto qs = qs_in.contiguous();
    auto d = d_in.contiguous();
    auto grad = at::empty_like(vec);
    AT_DISPATCH_FLOATING_TYPES(vec.scalar_type(), "pair_energy_backward", [&] {
        pair_energy_backward_impl<scalar_t>(vec.data_ptr<scalar_t>(), exponents.data_ptr<scalar_t>(),
                                            edge_i.data_ptr<int64_t>(), edge_j.data_ptr<int64_t>(), vec.size(0),
                                            qc.data_ptr<scalar_t>(), qs.data_ptr<scalar_t>(), d.data_ptr<scalar_t>(),
                                            static_cast<int>(method), beta, coulomb, taper_cutoff, cutoff,
                                            grad.data_ptr<scalar_t>());
    });
    return grad;
}

at::Tensor core_kernel_cpu(const at::Tensor& vec_in, const at::Tensor& exponents_in, const at::Tensor& edge_i_in,
                           const at::Tensor& edge_j_in, int64_t method, double beta, double coulomb,
                           double taper_cutoff, double cutoff) {
    check_pairs(vec_in, edge_i_in, edge_j_in, "core_kernel");
    TORCH_CHECK_VALUE(method >= 0 && method <= 2, "core_kernel: method must be 0, 1 or 2, got ", method);
    TORCH_CHECK_VALUE(exponents_in.dim() == 1, "core_kernel: exponents must have shape (N,), got ",
                      exponents_in.sizes());
    check_atoms(exponents_in, exponents_in.size(0), vec_in, "exponents", "core_kernel");
    auto vec = vec_in.contiguous();
    auto exponents = exponents_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto out = at::empty({vec.size(0)}, vec.options());
    AT_DISPATCH_FLOATING_TYPES(vec.scalar_type(), "core_kernel", [&] {
        core_kernel_impl<scalar_t>(vec.data_ptr<scalar_t>(), exponents.data_ptr<scalar_t>(),
                                   edge_i.data_ptr<int64_t>(), edge_j.data_ptr<int64_t>(), vec.size(0),
                                   static_cast<int>(method), beta, coulomb, taper_cutoff, cutoff,
                                   out.data_ptr<scalar_t>());
    });
    return out;
}

at::Tensor pair_matvec_cpu(const at::Tensor& kernel_in, const at::Tensor& edge_i_in, const at::Tensor& edge_j_in,
                           const at::Tensor& x_in) {
    TORCH_CHECK_VALUE(kernel_in.dim() == 1, "pair_matvec: kernel must have shape (P,), got ", kernel_in.sizes());
    TORCH_CHECK_VALUE(x_in.dim() == 2, "pair_matvec: x must have shape (N, C), got ", x_in.sizes());
    TORCH_CHECK_VALUE(edge_i_in.size(0) == kernel_in.size(0) && edge_j_in.size(0) == kernel_in.size(0),
                      "pair_matvec: edge_i and edge_j must have shape (P,) with P = ", kernel_in.size(0));
    TORCH_CHECK_VALUE(kernel_in.scalar_type() == x_in.scalar_type(), "pair_matvec: kernel and x must share a dtype, got ",
                      kernel_in.scalar_type(), " and ", x_in.scalar_type());
    auto kernel = kernel_in.contiguous();
    auto edge_i = edge_i_in.contiguous();
    auto edge_j = edge_j_in.contiguous();
    auto x = x_in.contiguous();
    auto y = at::zeros_like(x);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pair_matvec", [&] {
        matvec_impl<scalar_t>(kernel.data_ptr<scalar_t>(), edge_i.data_ptr<int64_t>(), edge_j.data_ptr<int64_t>(),
                              kernel.size(0), x.data_ptr<scalar_t>(), x.size(0), x.size(1), y.data_ptr<scalar_t>());
    });
    return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> site_potentials_cpu(
    const at::Tensor& vec_in, const at::Tensor& kernel_in, const at::Tensor& exponents_in, const at::Tensor& edge_i_in,
    const at::Tensor& edge_j_in, const at::Tensor& qc_in, const at::Tensor& qs_in, const at::Tensor& d_in,
    int64_t method, double beta, double coulomb, double taper_cutoff, double cutoff) {
    check_site_args(vec_in, kernel_in, exponents_in, edge_i_in, edge_j_in, qc_in, qs_in, d_in, method,
                    "site_potentials");
    const int64_t n = exponents_in.size(0);
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
        site_potentials_impl<scalar_t>(vec.data_ptr<scalar_t>(), kernel.data_ptr<scalar_t>(),
                                       exponents.data_ptr<scalar_t>(), edge_i.data_ptr<int64_t>(),
                                       edge_j.data_ptr<int64_t>(), vec.size(0), qc.data_ptr<scalar_t>(),
                                       qs.data_ptr<scalar_t>(), d.data_ptr<scalar_t>(), n, static_cast<int>(method),
                                       beta, coulomb, taper_cutoff, cutoff, phi_c.data_ptr<scalar_t>(),
                                       phi_s.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>());
    });
    return {phi_c, phi_s, grad};
}

}  // namespace openmm_pqeq

TORCH_LIBRARY_IMPL(openmm_pqeq, CPU, m) {
    m.impl("core_kernel", &openmm_pqeq::core_kernel_cpu);
    m.impl("pair_matvec", &openmm_pqeq::pair_matvec_cpu);
    m.impl("site_potentials", &openmm_pqeq::site_potentials_cpu);
    m.impl("kernel_derivatives", &openmm_pqeq::kernel_derivatives_cpu);
    m.impl("pair_hessian_matvec", &openmm_pqeq::pair_hessian_matvec_cpu);
    m.impl("pair_energy", &openmm_pqeq::pair_energy_cpu);
    m.impl("pair_energy_backward", &openmm_pqeq::pair_energy_backward_cpu);
}
