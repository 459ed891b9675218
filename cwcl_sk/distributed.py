"""The one seam for multi-process training: rank helpers and an all-gather that keeps gradients.

Everything here is a no-op in a single process, so the training loop calls it unconditionally.
Under ``torchrun`` every process runs the same script on the same data; the loop then

- draws the same contrastive batch on every rank (from ``(base_seed, epoch)``) and embeds only
  this rank's shard of it (:func:`shard`),
- gathers the shards of all ranks *with gradient* (:func:`gather_with_grad`), so that the
  negatives of every sample span the whole global batch, as open_clip's ``gather_features``,
- computes the full global loss on every rank; the all-gather's backward sums the gradient
  of every rank's loss into each rank's rows, and DistributedDataParallel's average over ranks
  then gives exactly the single-process gradient of the global batch.

Only the main process (rank 0) shows progress bars, runs callbacks and writes files.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "all_reduce_mean_",
    "barrier",
    "broadcast_object",
    "gather_with_grad",
    "get_rank",
    "get_world_size",
    "init_from_environment",
    "is_distributed",
    "is_main_process",
    "local_device",
    "main_process_first",
    "shard",
]


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank, 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """The number of processes training together, 1 when not distributed."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the process that logs and writes files."""
    return get_rank() == 0


def init_from_environment(device: torch.device) -> bool:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Does nothing when a group is already initialised, or when ``WORLD_SIZE`` is unset or 1
    (a plain ``python train.py``).

    Parameters
    ----------
    device : torch.device
        The training device: CUDA uses the NCCL backend, every other device gloo.

    Returns
    -------
    joined : bool
        True when this call initialised the process group.
    """
    if not dist.is_available() or dist.is_initialized():
        return False
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_device(device))
    dist.init_process_group(backend=backend)
    return True


def local_device(device: torch.device) -> torch.device:
    """``cuda`` without an index becomes ``cuda:LOCAL_RANK`` under torchrun: one GPU a process."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(value, source: int = 0):
    """Rank ``source``'s ``value`` on every rank (picklable objects; no-op when not distributed)."""
    if not is_distributed():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=source)
    return holder[0]


def all_reduce_mean_(tensors) -> None:
    """Average tensors over ranks, in place (no-op when not distributed).

    Used for the gradient of parameters that live outside the DistributedDataParallel
    module (the learnable logit scale), which DDP does not average.
    """
    if not is_distributed():
        return
    world_size = dist.get_world_size()
    for tensor in tensors:
        if tensor is not None:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor.div_(world_size)


@contextlib.contextmanager
def main_process_first():
    """Run the body on rank 0 first, then on the other ranks.

    For work whose result rank 0 writes to a shared place (the teacher's on-disk cache), so
    the other ranks find it there instead of computing it again.
    """
    if not is_main_process():
        barrier()
    try:
        yield
    finally:
        if is_main_process():
            barrier()


def shard(indices: np.ndarray, world_size: int | None = None, rank: int | None = None):
    """This rank's contiguous part of a global batch, and the size of every rank's part.

    Parameters
    ----------
    indices : ndarray of shape (batch_size,)
        The global batch, identical on every rank.
    world_size, rank : int, optional
        Default to the current process group (1 and 0 when not distributed).

    Returns
    -------
    local : ndarray
        ``np.array_split(indices, world_size)[rank]``: contiguous, so concatenating the
        parts in rank order gives back ``indices``.
    sizes : list of int
        The length of every rank's part, in rank order.

    Raises
    ------
    ValueError
        When a batch has fewer samples than there are ranks (a rank would get nothing).
    """
    world_size = get_world_size() if world_size is None else world_size
    rank = get_rank() if rank is None else rank
    if len(indices) < world_size:
        raise ValueError(
            f"batch_size must give every one of the {world_size} processes at least one "
            f"sample, but a batch holds {len(indices)}; raise batch_size."
        )
    parts = np.array_split(indices, world_size)
    return parts[rank], [len(part) for part in parts]


class _GatherWithGrad(torch.autograd.Function):
    """All-gather rows of possibly different counts per rank; the backward sums over ranks."""

    @staticmethod
    def forward(ctx, tensor, sizes):
        rank, largest = dist.get_rank(), max(sizes)
        # all_gather needs equal shapes: pad every part to the largest and trim afterwards.
        padded = tensor.new_zeros((largest, *tensor.shape[1:]))  # (largest, dim)
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        ctx.sizes, ctx.rank, ctx.largest = sizes, rank, largest
        return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])

    @staticmethod
    def backward(ctx, grad):
        sizes, rank, largest = ctx.sizes, ctx.rank, ctx.largest
        padded = grad.new_zeros((len(sizes), largest, *grad.shape[1:]))  # (world, largest, dim)
        for index, part in enumerate(torch.split(grad, sizes)):
            padded[index, : sizes[index]] = part
        if dist.get_backend() == dist.Backend.NCCL:
            mine = padded.new_empty(padded.shape[1:])  # (largest, dim)
            dist.reduce_scatter_tensor(mine, padded.flatten(0, 1))
        else:
            # gloo has no reduce-scatter: reduce everything and keep this rank's rows.
            dist.all_reduce(padded)
            mine = padded[rank]
        return mine[: sizes[rank]], None


def gather_with_grad(tensor: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
    """Concatenate every rank's rows, in rank order, keeping the graph to this rank's rows.

    Parameters
    ----------
    tensor : torch.Tensor of shape (n_local, dim)
        This rank's rows (``sizes[rank]`` of them).
    sizes : list of int, optional
        Every rank's number of rows; gathered first when not given.

    Returns
    -------
    gathered : torch.Tensor of shape (sum(sizes), dim)
        ``tensor`` itself when not distributed. The gradient reaching this rank's rows is
        the sum, over ranks, of the gradient of each rank's loss with respect to them (as
        ``torch.distributed.nn.functional.all_gather``): when every rank computes the same
        global loss, DistributedDataParallel's average over ranks gives back the
        single-process gradient.

    Examples
    --------
    >>> import torch
    >>> from cwcl_sk.distributed import gather_with_grad
    >>> embeddings = torch.ones(4, 2)
    >>> gather_with_grad(embeddings) is embeddings  # not distributed: a no-op
    True
    """
    if not is_distributed():
        return tensor
    if sizes is None:
        counts = [None] * dist.get_world_size()
        dist.all_gather_object(counts, int(tensor.shape[0]))
        sizes = counts
    return _GatherWithGrad.apply(tensor.contiguous(), list(sizes))
