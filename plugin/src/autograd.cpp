// Autograd of torch.ops.openmm_pqeq.pair_energy and pair_energy_known: the gradient by the pair vectors, so forces
// and the virial reach positions and cell through vec = r_j - r_i + shifts @ cell.  Charges and
// shell displacements are constants of the converged solve (Hellmann-Feynman, docs/method/solver.md):
// asking for their gradient is an error.  The backward is not itself differentiable.
#include <torch/autograd.h>
#include <torch/library.h>

namespace openmm_pqeq {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor call_energy(const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i,
                       const at::Tensor& edge_j, const at::Tensor& qc, const at::Tensor& qs, const at::Tensor& d,
                       int64_t method, double beta, double coulomb, double taper, double cutoff) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmm_pqeq::pair_energy", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, double,
                                           double, double, double)>();
    return op.call(vec, exponents, edge_i, edge_j, qc, qs, d, method, beta, coulomb, taper, cutoff);
}

at::Tensor call_backward(const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i,
                         const at::Tensor& edge_j, const at::Tensor& qc, const at::Tensor& qs, const at::Tensor& d,
                         int64_t method, double beta, double coulomb, double taper, double cutoff) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("openmm_pqeq::pair_energy_backward", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, double,
                                           double, double, double)>();
    return op.call(vec, exponents, edge_i, edge_j, qc, qs, d, method, beta, coulomb, taper, cutoff);
}

// What both backward passes need: the pair inputs and the kernel settings.
void save_pair_inputs(AutogradContext* ctx, const at::Tensor& vec, const at::Tensor& exponents,
                      const at::Tensor& edge_i, const at::Tensor& edge_j, const at::Tensor& qc, const at::Tensor& qs,
                      const at::Tensor& d, int64_t method, double beta, double coulomb, double taper, double cutoff) {
    ctx->save_for_backward({vec, exponents, edge_i, edge_j, qc, qs, d});
    ctx->saved_data["method"] = method;
    ctx->saved_data["beta"] = beta;
    ctx->saved_data["coulomb"] = coulomb;
    ctx->saved_data["taper"] = taper;
    ctx->saved_data["cutoff"] = cutoff;
}

// dE/dvec (P, 3) times the incoming gradient, from the inputs saved by save_pair_inputs.
at::Tensor vec_gradient(AutogradContext* ctx, const variable_list& grad_outputs) {
    auto saved = ctx->get_saved_variables();
    auto grad_vec = call_backward(saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], saved[6],
                                  ctx->saved_data["method"].toInt(), ctx->saved_data["beta"].toDouble(),
                                  ctx->saved_data["coulomb"].toDouble(), ctx->saved_data["taper"].toDouble(),
                                  ctx->saved_data["cutoff"].toDouble());
    return grad_vec.mul(grad_outputs[0]);
}

class PairEnergy : public torch::autograd::Function<PairEnergy> {
   public:
    static variable_list forward(AutogradContext* ctx, const at::Tensor& vec, const at::Tensor& exponents,
                                 const at::Tensor& edge_i, const at::Tensor& edge_j, const at::Tensor& qc,
                                 const at::Tensor& qs, const at::Tensor& d, int64_t method, double beta,
                                 double coulomb, double taper, double cutoff) {
        TORCH_CHECK_VALUE(!exponents.requires_grad() && !qc.requires_grad() && !qs.requires_grad() &&
                              !d.requires_grad(),
                          "pair_energy: gradients by exponents, charges or shell displacements are not implemented "
                          "(only by vec); pass constants");
        at::AutoDispatchBelowADInplaceOrView guard;
        save_pair_inputs(ctx, vec, exponents, edge_i, edge_j, qc, qs, d, method, beta, coulomb, taper, cutoff);
        return {call_energy(vec, exponents, edge_i, edge_j, qc, qs, d, method, beta, coulomb, taper, cutoff)};
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        auto grad_vec = vec_gradient(ctx, grad_outputs);
        return {grad_vec, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
                at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

// The real-space energy with its value given (no pair loop in the forward) and the gradient by vec of
// pair_energy in the backward: the energy after a solve whose last iteration computed the site
// potentials at the same charges and shells (E_real = ½ Σ (Q_core φ_core + Q_shell φ_shell)).
class PairEnergyKnown : public torch::autograd::Function<PairEnergyKnown> {
   public:
    static variable_list forward(AutogradContext* ctx, const at::Tensor& energy, const at::Tensor& vec,
                                 const at::Tensor& exponents, const at::Tensor& edge_i, const at::Tensor& edge_j,
                                 const at::Tensor& qc, const at::Tensor& qs, const at::Tensor& d, int64_t method,
                                 double beta, double coulomb, double taper, double cutoff) {
        TORCH_CHECK_VALUE(!energy.requires_grad() && !exponents.requires_grad() && !qc.requires_grad() &&
                              !qs.requires_grad() && !d.requires_grad(),
                          "pair_energy_known: gradients by energy, exponents, charges or shell displacements are not "
                          "implemented (only by vec); pass constants");
        at::AutoDispatchBelowADInplaceOrView guard;
        save_pair_inputs(ctx, vec, exponents, edge_i, edge_j, qc, qs, d, method, beta, coulomb, taper, cutoff);
        static auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("openmm_pqeq::pair_energy_known", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                               const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                               const at::Tensor&, const at::Tensor&, int64_t, double, double, double,
                                               double)>();
        return {op.call(energy, vec, exponents, edge_i, edge_j, qc, qs, d, method, beta, coulomb, taper, cutoff)};
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        auto grad_vec = vec_gradient(ctx, grad_outputs);
        return {at::Tensor(), grad_vec, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
                at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

at::Tensor pair_energy_known_autograd(const at::Tensor& energy, const at::Tensor& vec, const at::Tensor& exponents,
                                      const at::Tensor& edge_i, const at::Tensor& edge_j, const at::Tensor& qc,
                                      const at::Tensor& qs, const at::Tensor& d, int64_t method, double beta,
                                      double coulomb, double taper, double cutoff) {
    return PairEnergyKnown::apply(energy, vec, exponents, edge_i, edge_j, qc, qs, d, method, beta, coulomb, taper,
                                  cutoff)[0];
}

at::Tensor pair_energy_autograd(const at::Tensor& vec, const at::Tensor& exponents, const at::Tensor& edge_i,
                                const at::Tensor& edge_j, const at::Tensor& qc, const at::Tensor& qs,
                                const at::Tensor& d, int64_t method, double beta, double coulomb, double taper,
                                double cutoff) {
    return PairEnergy::apply(vec, exponents, edge_i, edge_j, qc, qs, d, method, beta, coulomb, taper, cutoff)[0];
}

}  // namespace

}  // namespace openmm_pqeq

TORCH_LIBRARY_IMPL(openmm_pqeq, Autograd, m) {
    m.impl("pair_energy", &openmm_pqeq::pair_energy_autograd);
    m.impl("pair_energy_known", &openmm_pqeq::pair_energy_known_autograd);
}
