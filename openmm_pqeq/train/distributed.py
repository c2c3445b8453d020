"""Multi-process data-parallel training with torch.distributed.

Launch any training command under ``torchrun``::

    torchrun --nproc_per_node 2 -m openmm_pqeq.cli.main train config.yaml

Each process reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from the environment that
torchrun sets, joins a process group (``gloo`` on CPU, ``nccl`` on CUDA, one GPU per local
rank), starts from rank 0's weights, trains on its own share of every epoch's batches and
averages gradients over all ranks after each backward pass, so all ranks hold the same
weights at all times.  Validation errors are summed over ranks.  Only rank 0 writes files
and shows progress bars.

The gradient average is one ``all_reduce`` of all trainable gradients flattened together:
what ``DistributedDataParallel`` does, without wrapping the model (the training step calls
the E0 network per batch graph and differentiates twice, for forces and then for the loss).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Optional

import torch


@dataclass
class Distributed:
    """This process's place in the job (``world_size`` 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (moved to the communication device and back)."""
        if self.enabled:
            buffer = tensor.to(self.device)
            torch.distributed.all_reduce(buffer, op=torch.distributed.ReduceOp.SUM)
            tensor.copy_(buffer.to(tensor.device))
        return tensor

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if self.enabled:
            for value in list(module.parameters()) + list(module.buffers()):
                if value.numel():
                    torch.distributed.broadcast(value.data, src=0)

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Replace each gradient by its mean over ranks (missing gradients count as zero)."""
        if not self.enabled:
            return
        params = list(parameters)
        if not params:
            return
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def max_parameter_difference(self, module: torch.nn.Module) -> float:
        """Largest |θ_rank − θ_rank0| over all parameters and ranks (0 when consistent)."""
        if not self.enabled:
            return 0.0
        worst = torch.zeros((), dtype=torch.float64, device=self.device)
        for p in module.parameters():
            reference = p.detach().clone()
            torch.distributed.broadcast(reference, src=0)
            worst = torch.maximum(worst, (p.detach() - reference).abs().max().to(worst))
        torch.distributed.all_reduce(worst, op=torch.distributed.ReduceOp.MAX)
        return float(worst)


def init_distributed(device: str = "auto") -> Distributed:
    """Join the torchrun process group if ``WORLD_SIZE`` > 1; pick this rank's device.

    ``device``: "auto" (CUDA if available), "cpu", "cuda" or "cuda:N" (single process).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"`device` is {device!r} but CUDA is not available; use 'cpu' or 'auto'")
    if device.startswith("cuda") and world_size > 1:
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    if world_size <= 1:
        return Distributed(device=dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return Distributed(rank=rank, world_size=world_size, local_rank=local_rank, device=dev, backend=backend)


def shutdown(dist: Distributed) -> None:
    if dist.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
