// Schemas of torch.ops.openmm_pqeq.* (implementations: cpu/*.cpp, cuda/*.cpp).
#include <torch/library.h>

TORCH_LIBRARY(openmm_pqeq, m) {
    m.def("core_kernel(Tensor vec, Tensor exponents, Tensor edge_i, Tensor edge_j, int method, float beta, "
          "float coulomb_constant, float taper_cutoff, float cutoff) -> Tensor");
    m.def("pair_matvec(Tensor kernel, Tensor edge_i, Tensor edge_j, Tensor x) -> Tensor");
    m.def("site_potentials(Tensor vec, Tensor kernel, Tensor exponents, Tensor edge_i, Tensor edge_j, Tensor core_charges, "
          "Tensor shell_charges, Tensor shell_displacements, int method, float beta, float coulomb_constant, "
          "float taper_cutoff, float cutoff) -> (Tensor, Tensor, Tensor)");
    m.def("kernel_derivatives(Tensor vec, Tensor exponents, Tensor edge_i, Tensor edge_j, int method, float beta, "
          "float coulomb_constant, float cutoff) -> (Tensor, Tensor, Tensor)");
    m.def("pair_hessian_matvec(Tensor vec, Tensor kernel, Tensor kernel_a, Tensor kernel_b, Tensor edge_i, "
          "Tensor edge_j, Tensor net_charges, Tensor shell_charges, Tensor x_charges, Tensor x_shells) "
          "-> (Tensor, Tensor)");
    m.def("pair_energy(Tensor vec, Tensor exponents, Tensor edge_i, Tensor edge_j, Tensor core_charges, "
          "Tensor shell_charges, Tensor shell_displacements, int method, float beta, float coulomb_constant, "
          "float taper_cutoff, float cutoff) -> Tensor");
    m.def("pair_energy_backward(Tensor vec, Tensor exponents, Tensor edge_i, Tensor edge_j, Tensor core_charges, "
          "Tensor shell_charges, Tensor shell_displacements, int method, float beta, float coulomb_constant, "
          "float taper_cutoff, float cutoff) -> Tensor");
    m.def("pair_energy_known(Tensor energy, Tensor vec, Tensor exponents, Tensor edge_i, Tensor edge_j, "
          "Tensor core_charges, Tensor shell_charges, Tensor shell_displacements, int method, float beta, "
          "float coulomb_constant, float taper_cutoff, float cutoff) -> Tensor");
    m.def("pme_spread(Tensor positions, Tensor charges, Tensor frac, int[] shape, int order, Tensor? dipoles=None) "
          "-> Tensor");
    m.def("pme_gather(Tensor positions, Tensor mesh, Tensor frac, int[] shape, int order, bool gradient) "
          "-> (Tensor, Tensor)");
}

// pair_energy_known returns the real-space energy it is given (computed already, e.g. from the site
// potentials of the last solver iteration) on every device; its gradient by vec is in autograd.cpp.
TORCH_LIBRARY_IMPL(openmm_pqeq, CompositeExplicitAutograd, m) {
    m.impl("pair_energy_known",
           [](const at::Tensor& energy, const at::Tensor& vec, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, double, double, double, double) {
               TORCH_CHECK_VALUE(energy.dim() == 0, "pair_energy_known: energy must be a scalar, got shape ",
                                 energy.sizes());
               return energy.to(vec.options()).clone();
           });
}
