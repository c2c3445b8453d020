"""Compiled operators ``torch.ops.openmm_pqeq.*`` (from ``plugin/``) and their fallback.

Importing this module loads the operator library built for the running torch version, if
there is one (``openmm_pqeq/lib/torch-<major>.<minor>/``, written by ``setup.py build_ext``
or ``make install``).  Without it everything runs on the pure-PyTorch twins in
:mod:`openmm_pqeq.electrostatics.realspace` with the same results; :func:`has_custom_ops`
tells which, :func:`unavailable_reason` why not, and :func:`has_cuda_kernels` whether the
library also dispatches to CUDA kernels (tensors on a GPU).  Set ``OPENMM_PQEQ_DISABLE_OPS=1`` to
skip loading (e.g. to compare the two paths).

A scripted model that uses the operators needs them registered *before* it is loaded
(``torch.jit.load``, an OpenMM ``TorchForce`` or a deserialized ``System``): import
``openmm_pqeq.electrostatics`` (or this module) first.

>>> from openmm_pqeq import ops
>>> isinstance(ops.has_custom_ops(), bool)
True
"""

from __future__ import annotations

from ._c_lib import OPS_NAMESPACE, has_cuda_kernels, has_custom_ops, library_path, load_library, unavailable_reason

__all__ = ["OPS_NAMESPACE", "has_cuda_kernels", "has_custom_ops", "library_path", "load_library",
           "unavailable_reason"]

load_library()
