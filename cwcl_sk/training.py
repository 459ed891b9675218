"""The training loop: batching, optimiser steps, history, and safe stopping.

The loop knows no modality and no loss: it receives prepared data with a ``collate``
function, the teacher's embeddings of every training pair, and a ``batch_loss`` callable. It
keeps what was learned when training is interrupted or diverges.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = ["TrainingState", "batch_indices", "embed_in_batches", "resolve_device", "run_epochs"]


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


def batch_indices(n_samples: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle ``range(n_samples)`` and cut it into batches of nearly equal size.

    Every sample is used once an epoch and no batch is a tiny remainder: a contrastive batch
    of 1 or 2 pairs carries almost no signal (one pair has no negatives at all), so the
    ``ceil(n / batch_size)`` batches differ in size by at most one.
    """
    n_batches = max(1, -(-n_samples // batch_size))
    return np.array_split(rng.permutation(n_samples), n_batches)


@dataclass
class TrainingState:
    """What the loop updates: the model, its optimiser and the per-epoch history."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: list = field(default_factory=list)


def _snapshot(state: TrainingState) -> dict:
    return {
        "model": copy.deepcopy(state.model.state_dict()),
        "optimizer": copy.deepcopy(state.optimizer.state_dict()),
    }


def _restore(state: TrainingState, snapshot: dict) -> None:
    state.model.load_state_dict(snapshot["model"])
    state.optimizer.load_state_dict(snapshot["optimizer"])


def run_epochs(
    state: TrainingState,
    *,
    data,
    collate: Callable,
    teacher_embeddings: torch.Tensor,
    batch_loss: Callable,
    n_epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
    verbose: int = 0,
) -> None:
    """Train ``state.model`` for ``n_epochs`` epochs, appending one record per epoch.

    Parameters
    ----------
    state : TrainingState
    data : object
        Prepared student-side inputs; ``collate(data, indices)`` makes a batch.
    collate : callable
    teacher_embeddings : torch.Tensor of shape (n_samples, dim)
        The frozen teacher's embedding of each pair's teacher side.
    batch_loss : callable
        ``batch_loss(student_embeddings, teacher_embeddings, indices) -> scalar tensor``.
    n_epochs, batch_size : int
    rng : numpy.random.Generator
        Drives the shuffling.
    device : torch.device
    verbose : int, default=0
        0 prints nothing; 1 or more shows a progress bar over epochs.

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or inf; the weights of the last completed epoch are restored
        first, so nothing learned before is lost.

    Notes
    -----
    ``KeyboardInterrupt`` stops training with a warning and restores the last completed
    epoch; it is not re-raised, so the estimator stays fitted and usable.
    """
    n_samples = len(teacher_embeddings)
    model = state.model
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=n_epochs, desc="epochs", unit="epoch")
    try:
        for _ in range(n_epochs):
            snapshot = _snapshot(state)
            started = time.perf_counter()
            model.train()
            total, count = 0.0, 0
            try:
                for indices in batch_indices(n_samples, batch_size, rng):
                    batch = _to_device(collate(data, indices), device)
                    targets = teacher_embeddings[torch.from_numpy(indices).to(device)]
                    student_embeddings = model(batch)  # (batch_size, dim)
                    loss = batch_loss(student_embeddings, targets, indices)
                    if not torch.isfinite(loss):
                        _restore(state, snapshot)
                        raise FloatingPointError(
                            f"The training loss became {loss.item()} in epoch "
                            f"{len(state.history) + 1}; the weights of the last completed epoch "
                            "were restored. Try a lower learning_rate or a higher temperature."
                        )
                    state.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    state.optimizer.step()
                    total += float(loss.detach()) * len(indices)
                    count += len(indices)
            except KeyboardInterrupt:
                _restore(state, snapshot)
                warnings.warn(
                    f"Training interrupted during epoch {len(state.history) + 1}; the model "
                    f"keeps the weights of the {len(state.history)} completed epoch(s).",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return
            record = {
                "epoch": len(state.history) + 1,
                "train_loss": total / max(count, 1),
                "seconds": time.perf_counter() - started,
            }
            state.history.append(record)
            if progress is not None:
                progress.set_postfix(loss=f"{record['train_loss']:.4f}")
                progress.update()
    finally:
        if progress is not None:
            progress.close()
        model.eval()


def _to_device(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch


def embed_in_batches(
    model: nn.Module, data, collate: Callable, n_samples: int, batch_size: int, device
) -> np.ndarray:
    """Run ``model`` in eval mode over all samples, without gradient.

    Returns
    -------
    embeddings : ndarray of shape (n_samples, dim), dtype float32
    """
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, n_samples, batch_size):
            indices = np.arange(start, min(start + batch_size, n_samples))
            batch = _to_device(collate(data, indices), device)
            outputs.append(model(batch).float().cpu().numpy())
    return np.concatenate(outputs).astype(np.float32, copy=False)
