"""Batch planning: which pairs every optimiser step covers, and their collated batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..distributed import shard

__all__ = ["StepPlan", "batch_indices", "collated_chunks", "plan_steps", "step_chunks"]


def batch_indices(n_samples: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle ``range(n_samples)`` and cut it into batches of nearly equal size.

    Every sample is used once an epoch and no batch is a tiny remainder: a contrastive batch
    of 1 or 2 pairs carries almost no signal (one pair has no negatives at all), so the
    ``ceil(n / batch_size)`` batches differ in size by at most one.
    """
    n_batches = max(1, -(-n_samples // batch_size))
    return np.array_split(rng.permutation(n_samples), n_batches)


@dataclass
class StepPlan:
    """What one optimiser step covers, on this rank.

    Attributes
    ----------
    indices : ndarray of shape (batch_size,)
        The global contrastive batch: positions in the training set, the same on every rank.
    sizes : list of int
        How many of them every rank embeds, in rank order (``[batch_size]`` in one process).
    chunks : list of ndarray
        This rank's share, cut into the chunks embedded at once: one chunk without GradCache.
    """

    indices: np.ndarray
    sizes: list
    chunks: list


def plan_steps(batches: list[np.ndarray], mini_batch_size: int | None = None) -> list[StepPlan]:
    """Shard every global batch over the ranks and cut each shard into GradCache chunks.

    Every rank cuts its shard into the same number of chunks (shards differ by at most one
    sample), so that all ranks run the same number of forward passes: DistributedDataParallel
    synchronises buffers on each of them.
    """
    plans = []
    for indices in batches:
        local, sizes = shard(indices)
        n_chunks = 1 if mini_batch_size is None else -(-max(sizes) // int(mini_batch_size))
        plans.append(StepPlan(indices, sizes, np.array_split(local, n_chunks)))
    return plans


def step_chunks(plans: list[StepPlan], grad_cache: bool) -> list[np.ndarray]:
    """Every chunk in the order the steps embed them: twice per step with GradCache."""
    chunks = []
    for plan in plans:
        chunks += plan.chunks * (2 if grad_cache else 1)
    return chunks


class _ChunkDataset(torch.utils.data.Dataset):
    """Collated chunks of a list of index arrays, for DataLoader workers."""

    def __init__(self, data, collate: Callable, chunks: list[np.ndarray]):
        self.data, self.collate, self.chunks = data, collate, chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, position: int):
        return self.collate(self.data, self.chunks[position])


def _unchanged(batch):
    return batch


def collated_chunks(
    data, collate: Callable, chunks: list[np.ndarray], num_workers: int, device, seed: int
) -> Iterator:
    """The collated batch of every chunk, in order.

    With ``num_workers > 0`` the batches are collated (loaded, decoded, featurised) in
    DataLoader worker processes while the student trains, and pinned for a fast copy to a
    GPU. Otherwise they are collated lazily in this process, which costs no start-up.
    """
    if num_workers == 0:
        return (collate(data, chunk) for chunk in chunks)
    loader = torch.utils.data.DataLoader(
        _ChunkDataset(data, collate, chunks),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_unchanged,
        pin_memory=device.type == "cuda",
        # Workers are seeded from this generator, not from the global RNG: the epoch's
        # dropout stream is the same with and without workers.
        generator=torch.Generator().manual_seed(seed),
    )
    return iter(loader)
