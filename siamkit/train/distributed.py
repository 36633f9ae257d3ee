"""torchrun / DDP helpers: process-group set-up from the environment, rank queries, and an
``all_gather`` that keeps the gradient for losses that need the whole (global) batch.

On CPU the backend is gloo, on CUDA nccl. Nothing here does anything in a single process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from siamkit.utils.device import resolve_device


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: str | None = None) -> bool:
    """Initialise the default process group when launched by torchrun (``WORLD_SIZE`` > 1)."""
    if is_distributed() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return is_distributed()
    use_cuda = resolve_device(device).type == "cuda"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return True


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shard(indices: list[int]) -> list[int]:
    """This rank's slice of a global batch (rank r takes items r, r+W, …)."""
    return list(indices)[rank() :: world_size()] if is_distributed() else list(indices)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
        dist.all_gather(sizes, torch.tensor([x.shape[0]], device=x.device))
        sizes_list = [int(s.item()) for s in sizes]
        longest = max(sizes_list)
        padded = torch.zeros((longest, *x.shape[1:]), dtype=x.dtype, device=x.device)
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in sizes_list]
        dist.all_gather(parts, padded.contiguous())
        ctx.sizes = sizes_list
        ctx.rank = dist.get_rank()
        return torch.cat([p[:n] for p, n in zip(parts, sizes_list, strict=True)], dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # Every rank's loss may depend on every rank's embeddings: sum the gradients of all
        # ranks, then keep this rank's rows. Combined with DDP's gradient averaging this gives
        # exactly the single-process gradient of the (identical) global loss.
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank (rank order) keeping the autograd graph to the local rows.

    Rows may differ in number between ranks. Single process: returns ``x`` unchanged.
    """
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)


def all_gather_nograd(x: torch.Tensor) -> torch.Tensor:
    """Concatenate equal-shaped tensors from every rank (no gradient), e.g. labels."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)
