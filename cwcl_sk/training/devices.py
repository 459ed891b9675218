"""Where and in what arithmetic the student runs: devices, precision, autocast."""

from __future__ import annotations

import contextlib

import torch

from ..distributed import init_from_environment, is_distributed, local_device

__all__ = [
    "PRECISIONS",
    "autocast",
    "check_precision",
    "inference_precision",
    "resolve_device",
    "to_device",
    "training_device",
]

PRECISIONS = ("32", "bf16", "16-mixed")
"""Accepted values of ``precision``: float32, bfloat16 autocast, float16 autocast + GradScaler."""


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into a ``torch.device``, checking it is usable.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device
        ``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        For an unknown name, or a device this machine does not have.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device; "
            f"got {device!r}."
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but no CUDA GPU is available here; use device='auto' or 'cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist."
            )
    elif resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device={device!r} but Apple MPS is not available here.")
    elif resolved.type != "cpu":
        raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu', 'cuda' or 'mps'.")
    return resolved


def training_device(device, precision: str) -> torch.device:
    """The device this process trains on, after joining torchrun's process group if launched so.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device
        See :func:`resolve_device`; under torchrun each process takes GPU ``LOCAL_RANK``.
    precision : {"32", "bf16", "16-mixed"}
        Checked against the device (:func:`check_precision`).

    Returns
    -------
    device : torch.device
    """
    resolved = resolve_device(device)
    init_from_environment(resolved)
    resolved = local_device(resolved) if is_distributed() else resolved
    check_precision(precision, resolved)
    return resolved


def check_precision(precision, device: torch.device) -> None:
    """Check ``precision`` and that ``device`` supports it.

    Parameters
    ----------
    precision : {"32", "bf16", "16-mixed"}
        ``"bf16"`` runs the student under bfloat16 autocast (CUDA or CPU); ``"16-mixed"``
        under float16 autocast with a GradScaler (CUDA only). The loss always computes in
        float32.
    device : torch.device

    Raises
    ------
    ValueError
        For an unknown value, or one the device cannot run.
    """
    if not isinstance(precision, str) or precision not in PRECISIONS:
        options = ", ".join(repr(option) for option in PRECISIONS)
        raise ValueError(f"The 'precision' parameter must be one of {options}; got {precision!r}.")
    if precision == "16-mixed" and device.type != "cuda":
        raise ValueError(
            f"precision='16-mixed' (float16 autocast with a GradScaler) needs a CUDA device, "
            f"but training runs on {device.type!r}; use precision='bf16' or '32'."
        )
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(
                "precision='bf16' but this GPU has no bfloat16 support; use '16-mixed' or '32'."
            )
        if device.type not in ("cuda", "cpu"):
            raise ValueError(
                f"precision='bf16' runs on CUDA or the CPU, not {device.type!r}; use '32'."
            )


def inference_precision(precision: str, device: torch.device) -> str:
    """``precision`` where ``device`` supports it, else ``"32"``.

    A model trained in ``"16-mixed"`` on a GPU and loaded on the CPU embeds in float32.
    """
    try:
        check_precision(precision, device)
    except ValueError:
        return "32"
    return precision


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` (a no-op for ``"32"``)."""
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(batch, device: torch.device):
    """A collated batch (a tensor, or a dict of them) on ``device``; anything else as is."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch
