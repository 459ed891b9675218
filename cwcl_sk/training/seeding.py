"""Randomness of training: per-epoch generators, and random states replayed by GradCache.

Randomness is drawn per epoch from ``(base_seed, epoch number)``: an epoch's shuffling and
dropout depend only on the seed and on how many epochs came before, so training resumed from
a checkpoint (or continued with ``partial_fit``) follows the uninterrupted run exactly.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

__all__ = ["ReplayableRandomState", "cuda_devices", "epoch_generators", "forked_numpy_global"]


def epoch_generators(base_seed: int, epoch: int, rank: int = 0) -> tuple[np.random.Generator, int]:
    """The shuffling generator and the torch seed of one epoch (numbered from 1).

    The shuffling generator is the same on every rank, so all ranks cut the same global
    batches; the torch seed (dropout) differs by rank, rank 0 keeping the single-process one.
    """
    sequence = np.random.SeedSequence([int(base_seed), int(epoch)])
    # spawn(k) extends spawn(k - 1) with one more child, so rank 0's seed does not depend on
    # the number of ranks.
    shuffle_sequence, *torch_sequences = sequence.spawn(2 + int(rank))
    torch_seed = int(torch_sequences[-1].generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    return np.random.default_rng(shuffle_sequence), torch_seed


def cuda_devices(device: torch.device) -> list:
    """The devices whose generators :func:`torch.random.fork_rng` must fork for ``device``."""
    return [device] if device.type == "cuda" else []


@contextlib.contextmanager
def forked_numpy_global():
    """NumPy's global generator as :func:`torch.random.fork_rng` treats torch's: whatever
    the body draws or seeds, the caller's state is given back afterwards.

    Some students draw from it while training: transformers' SpecAugment time masks for
    wav2vec2 and HuBERT.
    """
    saved = np.random.get_state()  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(saved)  # noqa: NPY002


class ReplayableRandomState:
    """The random state before a chunk's first pass, replayed for its second.

    GradCache embeds every chunk twice; dropout must draw the same masks both times, or the
    cached embedding gradient would belong to a different network (sentence-transformers'
    ``RandContext`` does the same). Torch's CPU (and CUDA) generators are not enough:
    transformers draws wav2vec2 and HuBERT's SpecAugment time masks with NumPy's global
    generator, so its state is saved and replayed too.
    """

    def __init__(self, device: torch.device):
        self.devices = cuda_devices(device)
        self.cpu_state = torch.get_rng_state()
        self.cuda_states = [torch.cuda.get_rng_state(device) for device in self.devices]
        self.numpy_state = np.random.get_state()  # noqa: NPY002

    @contextlib.contextmanager
    def replay(self):
        """Run the body with the saved state, restoring the current one afterwards."""
        with torch.random.fork_rng(devices=self.devices), forked_numpy_global():
            torch.set_rng_state(self.cpu_state)
            for device, state in zip(self.devices, self.cuda_states, strict=True):
                torch.cuda.set_rng_state(state, device)
            np.random.set_state(self.numpy_state)  # noqa: NPY002
            yield
