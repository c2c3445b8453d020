"""TorchScript helpers shared by the scripted modules."""

import torch


def constant(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` outside autograd.

    Use instead of ``x.detach()`` in code that runs inside an OpenMM TorchForce:
    ``torch.jit.freeze`` (which openmm-torch applies) deletes every ``aten::detach``, so a
    detached tensor would keep its graph there, and state carried between MD steps (warm
    starts) would make the next backward pass fail.  A copy made under ``no_grad`` survives.
    """
    with torch.no_grad():
        y = x.clone()
    return y
