"""Compiled operators ``torch.ops.openmm_pqeq.*`` against their pure-PyTorch twins.

Tolerances are relative to the largest magnitude of each output: 1e-12 in float64, 1e-5 in
float32.  CPU always (skipped when the library is not built); CUDA only with a GPU."""

import io

import numpy as np
import pytest
import torch

from openmm_pqeq import ops
from openmm_pqeq.electrostatics import PQEq, realspace
from openmm_pqeq.electrostatics.backends import CustomOpKernels, TorchKernels
from openmm_pqeq.electrostatics.reciprocal.pme import PMEReciprocal
from openmm_pqeq.electrostatics.realspace_kernel import RealSpaceKernel
from openmm_pqeq.neighbors import NeighborList

pytestmark = pytest.mark.skipif(not ops.has_custom_ops(), reason="operators not built: " + ops.unavailable_reason())

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}
METHODS = [(realspace.METHOD_DIRECT, 0.0), (realspace.METHOD_EWALD, 0.35), (realspace.METHOD_TAPERED, 0.0)]


def _system(dtype, device, n=60, seed=0):
    """Random atoms in a small triclinic cell: pair vectors, exponents, charges, shells."""
    gen = torch.Generator().manual_seed(seed)
    cell = torch.tensor([[9.0, 0.0, 0.0], [1.0, 8.5, 0.0], [-0.5, 0.7, 9.5]], dtype=torch.float64)
    pos = torch.rand(n, 3, generator=gen, dtype=torch.float64) @ cell
    i, j, s = NeighborList(7.5)(pos, cell)
    vec = pos[j] - pos[i] + s @ cell
    keep = vec.norm(dim=1) > 0.8  # no overlapping random atoms
    i, j, vec = i[keep], j[keep], vec[keep]
    a = 0.3 + torch.rand(n, generator=gen, dtype=torch.float64)
    qc = 1.0 + 0.5 * torch.randn(n, generator=gen, dtype=torch.float64)
    qs = -torch.ones(n, dtype=torch.float64)
    d = 0.08 * torch.randn(n, 3, generator=gen, dtype=torch.float64)
    d[::7] = 0.0  # exact zeros (non-polarized shells) too
    to = dict(dtype=dtype, device=device)
    return (vec.to(**to), a.to(**to), i.to(device), j.to(device), qc.to(**to), qs.to(**to), d.to(**to))


def _close(actual, expected, dtype, scale=None):
    scale = float(expected.abs().max()) if scale is None else scale
    error = float((actual.cpu().double() - expected.cpu().double()).abs().max()) / scale
    assert error < TOLERANCE[dtype], f"relative error {error:.2e}"
    return error


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method,beta", METHODS)
def test_core_kernel_and_matvec(device, dtype, method, beta):
    vec, a, i, j, qc, qs, d = _system(dtype, device)
    args = (vec, a, i, j, RealSpaceKernel(method, beta, 14.4, 7.0, 6.5))
    k_op, k_ref = CustomOpKernels().core_kernel(*args), TorchKernels().core_kernel(*args)
    _close(k_op, k_ref, dtype)
    x = torch.randn(qc.shape[0], 3, dtype=dtype, device=device)
    _close(CustomOpKernels().matvec(k_ref, i, j, x), TorchKernels().matvec(k_ref, i, j, x), dtype)
    _close(CustomOpKernels().matvec(k_ref, i, j, x[:, 0]), TorchKernels().matvec(k_ref, i, j, x[:, 0]), dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method,beta", METHODS[:2])
@pytest.mark.parametrize("cutoff", [0.0, 6.5])
def test_kernel_derivatives_and_hessian_matvec(device, dtype, method, beta, cutoff):
    vec, a, i, j, qc, qs, d = _system(dtype, device)
    args = (vec, a, i, j, RealSpaceKernel(method, beta, 14.4, 0.0, cutoff))
    got, want = CustomOpKernels().kernel_derivatives(*args), TorchKernels().kernel_derivatives(*args)
    for g, w in zip(got, want):
        _close(g, w, dtype)
    xq = torch.randn(qc.shape[0], dtype=dtype, device=device)
    xd = torch.randn(qc.shape[0], 3, dtype=dtype, device=device)
    hargs = (vec, *want, i, j, qc + qs, qs, xq, xd)
    for g, w in zip(CustomOpKernels().hessian_matvec(*hargs), TorchKernels().hessian_matvec(*hargs)):
        _close(g, w, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method,beta", METHODS)
@pytest.mark.parametrize("cutoff", [0.0, 6.5])
def test_site_potentials(device, dtype, method, beta, cutoff):
    vec, a, i, j, qc, qs, d = _system(dtype, device)
    settings = RealSpaceKernel(method, beta, 14.4, 7.0, cutoff)
    kernel = TorchKernels().core_kernel(vec, a, i, j, settings)
    args = (vec, kernel, a, i, j, qc, qs, d, settings)
    for got, want in zip(CustomOpKernels().site_potentials(*args), TorchKernels().site_potentials(*args)):
        _close(got, want, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("order", [6, 8])
def test_pme_operators(device, dtype, order):
    gen = torch.Generator().manual_seed(4)
    cell = torch.tensor([[9.0, 0.0, 0.0], [1.0, 8.5, 0.0], [-0.5, 0.7, 9.5]], dtype=torch.float64)
    pos = torch.rand(40, 3, generator=gen, dtype=torch.float64) @ cell - 3.0  # outside the cell too
    pme = PMEReciprocal(0.35, 14.4, 1e-6, order=order)
    shape = pme.mesh_shape(cell)
    frac = pme.frac_matrix(cell, shape).to(dtype=dtype, device=device)
    pos = pos.to(dtype=dtype, device=device)
    q = torch.randn(40, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
    torch_k, op_k = TorchKernels(), CustomOpKernels()
    none = torch.zeros(0, 0, dtype=torch.long, device=device)
    mesh = torch_k.pme_spread(pos, q, frac, shape, order, none, none.to(dtype))
    _close(op_k.pme_spread(pos, q, frac, shape, order, none, none.to(dtype)), mesh, dtype)
    mu = torch.randn(40, 3, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
    _close(op_k.pme_spread(pos, q, frac, shape, order, none, none.to(dtype), mu),
           torch_k.pme_spread(pos, q, frac, shape, order, none, none.to(dtype), mu), dtype)
    for gradient in (False, True):
        got = op_k.pme_gather(pos, mesh, frac, shape, order, gradient, none, none.to(dtype))
        want = torch_k.pme_gather(pos, mesh, frac, shape, order, gradient, none, none.to(dtype))
        _close(got[0], want[0], dtype)
        if gradient:
            _close(got[1], want[1], dtype)


def test_errors_name_the_argument():
    vec, a, i, j, qc, qs, d = _system(torch.float64, "cpu")
    with pytest.raises(ValueError, match=r"core_kernel: vec must have shape \(P, 3\)"):
        torch.ops.openmm_pqeq.core_kernel(vec[:, :2], a, i, j, 1, 0.3, 14.4, 7.0, 0.0)
    with pytest.raises(ValueError, match="site_potentials: core_charges must have dtype Double"):
        kernel = torch.zeros(vec.shape[0], dtype=torch.float64)
        torch.ops.openmm_pqeq.site_potentials(vec, kernel, a, i, j, qc.float(), qs, d, 1, 0.3, 14.4, 7.0, 0.0)


def _li2po2n_like(n_cells=2, seed=1):
    """A small periodic Li-P-O-N structure (jittered rock-salt-like lattice, 8 atoms per cell)."""
    gen = np.random.default_rng(seed)
    a0 = 4.3
    base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    frac = np.concatenate([base, base + [0.5, 0, 0]]) % 1.0
    cells = np.array([[x, y, z] for x in range(n_cells) for y in range(n_cells) for z in range(n_cells)])
    pos = (frac[None, :, :] + cells[:, None, :]).reshape(-1, 3) * a0 + gen.normal(scale=0.05, size=(8 * len(cells), 3))
    numbers = np.tile([3, 3, 3, 15, 8, 8, 7, 8], len(cells))
    return torch.tensor(pos), torch.tensor(numbers), torch.eye(3, dtype=torch.float64) * a0 * n_cells


@pytest.mark.parametrize("reciprocal", ["ewald", "pme"])
def test_pqeq_solve_identical_with_and_without_operators(reciprocal):
    pos, num, cell = _li2po2n_like()
    field = torch.tensor([0.02, 0.0, -0.01], dtype=torch.float64)
    kwargs = dict(reciprocal=reciprocal, charge_tolerance=1e-9, shell_tolerance=1e-8)
    with_ops = PQEq(["Li", "P", "N", "O"], use_custom_ops=True, **kwargs)
    without = PQEq(["Li", "P", "N", "O"], use_custom_ops=False, **kwargs)
    assert with_ops.uses_custom_ops and not without.uses_custom_ops
    a, b = with_ops(pos, num, cell, field), without(pos, num, cell, field)
    assert torch.allclose(a["charges"], b["charges"], atol=1e-8)
    assert torch.allclose(a["shell_displacements"], b["shell_displacements"], atol=1e-8)
    assert float(a["energy"]) == pytest.approx(float(b["energy"]), abs=1e-8)


def test_scripted_model_with_operators_round_trip():
    pos, num, cell = _li2po2n_like()
    module = PQEq(["Li", "P", "N", "O"], use_custom_ops=True)
    eager = module(pos, num, cell, torch.zeros(3, dtype=torch.float64))
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(PQEq(["Li", "P", "N", "O"], use_custom_ops=True)), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    assert loaded.uses_custom_ops
    out = loaded(pos, num, cell, torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(out["charges"], eager["charges"], atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method,beta", METHODS)
@pytest.mark.parametrize("cutoff", [0.0, 6.5])
def test_pair_energy_and_its_gradient(device, dtype, method, beta, cutoff):
    vec, a, i, j, qc, qs, d = _system(dtype, device)
    settings = RealSpaceKernel(method, beta, 14.4, 7.0, cutoff)
    args = (a, i, j, qc, qs, d, settings)
    x_op = vec.clone().requires_grad_(True)
    x_ref = vec.clone().requires_grad_(True)
    e_op = CustomOpKernels().pair_energy(x_op, *args)
    e_ref = TorchKernels().pair_energy(x_ref, *args)
    # a sum of terms of both signs: errors relative to the sum of their magnitudes
    scale = float(TorchKernels().pair_energy(vec.double(), a.double(), i, j, qc.double().abs(), qs.double().abs(),
                                             d.double(), settings).abs())
    _close(e_op.detach(), e_ref.detach(), dtype, scale)
    (g_op,) = torch.autograd.grad((e_op * 1.5,), (x_op,))
    (g_ref,) = torch.autograd.grad((e_ref * 1.5,), (x_ref,))
    _close(g_op, g_ref, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method,beta", METHODS)
def test_pair_energy_known_returns_the_value_and_the_pair_energy_gradient(device, dtype, method, beta):
    vec, a, i, j, qc, qs, d = _system(dtype, device)
    args = (a, i, j, qc, qs, d, RealSpaceKernel(method, beta, 14.4, 7.0, 6.5))
    value = TorchKernels().pair_energy(vec, *args)
    x_op = vec.clone().requires_grad_(True)
    x_ref = vec.clone().requires_grad_(True)
    e_op = CustomOpKernels().pair_energy_known(value, x_op, *args)
    e_ref = TorchKernels().pair_energy_known(value, x_ref, *args)
    assert float(e_op.detach()) == float(value)  # the given value, not recomputed
    (g_op,) = torch.autograd.grad((e_op * 1.5,), (x_op,))
    (g_ref,) = torch.autograd.grad((e_ref * 1.5,), (x_ref,))
    _close(g_op, g_ref, dtype)


def test_pair_energy_refuses_gradients_by_charges():
    vec, a, i, j, qc, qs, d = _system(torch.float64, "cpu")
    with pytest.raises(ValueError, match="gradients by exponents, charges or shell displacements"):
        torch.ops.openmm_pqeq.pair_energy(vec, a, i, j, qc.requires_grad_(True), qs, d, 1, 0.3, 14.4, 7.0, 0.0)


# --------------------------------------------------------------------------- CUDA against CPU
# Only where a GPU is present (the one-shot check, benchmarks/gpu/check.sh); skipped elsewhere.

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU (torch.cuda.is_available() is False)")


@needs_gpu
def test_library_has_cuda_kernels():
    assert ops.has_cuda_kernels(), "the operator library was built without CUDA kernels (no nvcc at build time?)"


def _on(tensors, device):
    return tuple(t.to(device) for t in tensors)


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method,beta", METHODS)
@pytest.mark.parametrize("cutoff", [0.0, 6.5])
def test_cuda_pair_operators_match_their_cpu_twins(dtype, method, beta, cutoff):
    cpu = _system(dtype, "cpu", n=80, seed=3)
    gpu = _on(cpu, "cuda")
    op = torch.ops.openmm_pqeq

    def compare(fn, scale=None):
        got, want = fn(*gpu), fn(*cpu)
        for g, w in zip(got if isinstance(got, (tuple, list)) else [got], want if isinstance(want, (tuple, list)) else [want]):
            _close(g, w, dtype, scale)

    compare(lambda vec, a, i, j, qc, qs, d: op.core_kernel(vec, a, i, j, method, beta, 14.4, 7.0, cutoff))
    compare(lambda vec, a, i, j, qc, qs, d: op.pair_matvec(
        op.core_kernel(vec, a, i, j, method, beta, 14.4, 7.0, cutoff), i, j, torch.stack([qc, qs, d[:, 0]], 1)))
    compare(lambda vec, a, i, j, qc, qs, d: op.site_potentials(
        vec, op.core_kernel(vec, a, i, j, method, beta, 14.4, 7.0, cutoff), a, i, j, qc, qs, d, method, beta, 14.4,
        7.0, cutoff))
    if method != realspace.METHOD_TAPERED:
        compare(lambda vec, a, i, j, qc, qs, d: op.kernel_derivatives(vec, a, i, j, method, beta, 14.4, cutoff))
        compare(lambda vec, a, i, j, qc, qs, d: op.pair_hessian_matvec(
            vec, *op.kernel_derivatives(vec, a, i, j, method, beta, 14.4, cutoff), i, j, qc + qs, qs, qc * 0.3 - 0.1,
            d * 2.0 + 0.05))
    vec, a, i, j, qc, qs, d = cpu
    scale = float(op.pair_energy(vec.double(), a.double(), i, j, qc.double().abs(), qs.double().abs(), d.double(),
                                 method, beta, 14.4, 7.0, cutoff).abs())
    compare(lambda vec, a, i, j, qc, qs, d: op.pair_energy(vec, a, i, j, qc, qs, d, method, beta, 14.4, 7.0, cutoff),
            scale)
    compare(lambda vec, a, i, j, qc, qs, d: op.pair_energy_backward(vec, a, i, j, qc, qs, d, method, beta, 14.4, 7.0,
                                                                    cutoff))

    def gradient_of_known(vec, a, i, j, qc, qs, d):
        x = vec.clone().requires_grad_(True)
        energy = op.pair_energy_known(torch.zeros((), dtype=vec.dtype, device=vec.device), x, a, i, j, qc, qs, d,
                                      method, beta, 14.4, 7.0, cutoff)
        return torch.autograd.grad(2.0 * energy, x)[0]

    compare(gradient_of_known)


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("order", [6, 8])
def test_cuda_pme_operators_match_their_cpu_twins(dtype, order):
    gen = torch.Generator().manual_seed(5)
    cell = torch.tensor([[9.0, 0.0, 0.0], [1.0, 8.5, 0.0], [-0.5, 0.7, 9.5]], dtype=torch.float64)
    pos = torch.rand(50, 3, generator=gen, dtype=torch.float64) @ cell - 3.0
    pme = PMEReciprocal(0.35, 14.4, 1e-6, order=order)
    shape = pme.mesh_shape(cell)
    frac = pme.frac_matrix(cell, shape).to(dtype)
    q = torch.randn(50, generator=gen, dtype=torch.float64).to(dtype)
    mu = torch.randn(50, 3, generator=gen, dtype=torch.float64).to(dtype)
    cpu = (pos.to(dtype), q, mu, frac)
    gpu = _on(cpu, "cuda")
    op = torch.ops.openmm_pqeq
    for dipoles in (False, True):
        mesh = [op.pme_spread(p, c, f, shape, order, m if dipoles else None) for p, c, m, f in (cpu, gpu)]
        _close(mesh[1], mesh[0], dtype)
    for gradient in (False, True):
        got = op.pme_gather(gpu[0], mesh[0].cuda(), gpu[3], shape, order, gradient)
        want = op.pme_gather(cpu[0], mesh[0], cpu[3], shape, order, gradient)
        _close(got[0], want[0], dtype)
        if gradient:
            _close(got[1], want[1], dtype)


def _full_model():
    from openmm_pqeq.model import build_model
    from openmm_pqeq.runtime import set_precision

    model = build_model({"elements": ["Li", "P", "N", "O"], "e0": {"preset": "small"},
                         "pqeq": {"reciprocal": "pme", "charge_tolerance": 1e-9, "shell_tolerance": 1e-8},
                         "d3": {}})
    return set_precision(model, "double")


@needs_gpu
def test_full_model_on_the_gpu_matches_the_cpu():
    """E0 + PQEq (PME) + D3: energies, forces, stress and charges on the GPU against the CPU."""
    from openmm_pqeq.model import energy_forces_stress

    pos, num, cell = _li2po2n_like()
    field = torch.tensor([0.02, 0.0, -0.01], dtype=torch.float64)
    model = _full_model()
    cpu = energy_forces_stress(model, pos, num, cell, field)
    model.pqeq.reset()
    gpu_model = model.to("cuda")
    gpu = energy_forces_stress(gpu_model, *_on((pos, num, cell, field), "cuda"))
    assert gpu["forces"].device.type == "cuda"
    for key in ("energy_e0", "energy_pqeq", "energy_d3"):
        assert float(gpu[key]) == pytest.approx(float(cpu[key]), rel=1e-9, abs=1e-9)
    assert torch.allclose(gpu["forces"].cpu(), cpu["forces"], atol=1e-6)
    assert torch.allclose(gpu["stress"].cpu(), cpu["stress"], atol=1e-7)
    assert torch.allclose(gpu["charges"].cpu(), cpu["charges"], atol=1e-7)


@needs_gpu
def test_scripted_frozen_model_moved_to_the_gpu_like_openmm_torch():
    """openmm-torch loads the scripted module, moves it to the GPU, freezes it and calls it with
    positions on the GPU: every buffer and warm-start state must follow."""
    pos, num, cell = _li2po2n_like()
    field = torch.zeros(3, dtype=torch.float64)
    model = _full_model()
    expected = float(model(pos, num, cell, field)["energy"])
    model.pqeq.reset()
    from openmm_pqeq.model import script_model

    scripted = script_model(model)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    loaded.to(torch.device("cuda"))
    frozen = torch.jit.freeze(loaded.eval())
    for step in range(3):
        x = (pos + 0.002 * step).cuda().requires_grad_(True)
        out = frozen(x, num.cuda(), cell.cuda(), field.cuda())
        out["energy"].backward()
        assert x.grad.device.type == "cuda" and bool(torch.isfinite(x.grad).all())
        if step == 0:
            assert float(out["energy"]) == pytest.approx(expected, rel=1e-9)
