"""Embedding with a trained model: eval mode, no gradient, the training precision."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .devices import autocast, to_device

__all__ = ["embed_in_batches"]


def embed_in_batches(
    model: nn.Module,
    data,
    collate: Callable,
    n_samples: int,
    batch_size: int,
    device,
    precision: str = "32",
) -> np.ndarray:
    """Run ``model`` in eval mode over all samples, without gradient.

    Parameters
    ----------
    model : torch.nn.Module
    data : object
        Prepared inputs; ``collate(data, indices)`` makes a batch.
    collate : callable
    n_samples, batch_size : int
    device : torch.device
    precision : {"32", "bf16", "16-mixed"}, default="32"
        Autocast of the forward passes, as in training.

    Returns
    -------
    embeddings : ndarray of shape (n_samples, dim), dtype float32
    """
    model.eval()
    embeddings = None
    with torch.inference_mode(), autocast(torch.device(device), precision):
        for start in range(0, n_samples, batch_size):
            stop = min(start + batch_size, n_samples)
            batch = to_device(collate(data, np.arange(start, stop)), device)
            output = model(batch).float().cpu().numpy()  # (batch, dim)
            if embeddings is None:
                # Filled in place: no list of batches to concatenate (one copy less).
                embeddings = np.empty((n_samples, output.shape[1]), dtype=np.float32)
            embeddings[start:stop] = output
    return embeddings
