"""Checks and arithmetic precision for batches of embeddings, shared by the kernels and the losses.

Both the weight kernels (which read the teacher's batch) and the losses (which read both
towers' batches) accept the same ``(N, d)`` floating-point tensors, compute in float32 (float64
when an input is float64) whatever the input precision, and turn autocast off while they do.
These rules live here once, so that neither module reaches into the other's private helpers.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

__all__ = ["autocast_disabled", "check_embedding_batch", "compute_dtype"]


def check_embedding_batch(embeddings: Any, name: str) -> None:
    """Raise if ``embeddings`` is not a non-empty 2-D floating-point tensor.

    Parameters
    ----------
    embeddings : object
        The value to check, expected to be a ``torch.Tensor`` of shape (N, d).
    name : str
        The argument's name, used in the error message.

    Raises
    ------
    TypeError
        If ``embeddings`` is not a tensor, or not of a floating-point dtype.
    ValueError
        If it is not 2-D with ``N >= 1`` rows and ``d >= 1`` columns.
    """
    if not isinstance(embeddings, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (N, d), got {type(embeddings).__name__}"
        )
    if embeddings.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (N, d), got shape {tuple(embeddings.shape)}")
    if not embeddings.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {embeddings.dtype}")
    if embeddings.shape[0] < 1 or embeddings.shape[1] < 1:
        raise ValueError(
            f"{name} must have N >= 1 rows and d >= 1 columns, got shape {tuple(embeddings.shape)}"
        )


def autocast_disabled(device: torch.device) -> contextlib.AbstractContextManager:
    """Context that turns off autocast on ``device``, whose matmuls would drop to 16 bits.

    Parameters
    ----------
    device : torch.device
        The device the computation runs on.

    Returns
    -------
    contextlib.AbstractContextManager
        ``torch.autocast(..., enabled=False)``, or a null context for device types that have
        no autocast.
    """
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:  # device types without autocast support
        return contextlib.nullcontext()


def compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """float32 for half-precision and float32 inputs, float64 if any input is float64.

    Parameters
    ----------
    *dtypes : torch.dtype
        The dtypes of the inputs.

    Returns
    -------
    torch.dtype
    """
    result = torch.float32
    for dtype in dtypes:
        result = torch.promote_types(result, dtype)
    return result
