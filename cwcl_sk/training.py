"""The training loop: batching, optimiser steps, validation, history, and safe stopping.

The loop knows no modality and no loss: it receives prepared data with a ``collate``
function, the teacher's embedding of every training pair, and a ``batch_loss`` callable. It
keeps what was learned when training is interrupted or diverges.

Randomness is drawn per epoch from ``(base_seed, epoch number)``: an epoch's shuffling and
dropout depend only on the seed and on how many epochs came before, so training resumed from
a checkpoint (or continued with ``partial_fit``) follows the uninterrupted run exactly.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .callbacks import StopTraining
from .metrics import recall_at_k

__all__ = [
    "TrainingState",
    "ValidationSet",
    "batch_indices",
    "embed_in_batches",
    "epoch_generators",
    "resolve_device",
    "run_epochs",
]


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


def epoch_generators(base_seed: int, epoch: int) -> tuple[np.random.Generator, int]:
    """The shuffling generator and the torch seed of one epoch (numbered from 1)."""
    sequence = np.random.SeedSequence([int(base_seed), int(epoch)])
    shuffle_sequence, torch_sequence = sequence.spawn(2)
    torch_seed = int(torch_sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    return np.random.default_rng(shuffle_sequence), torch_seed


@dataclass
class TrainingState:
    """What the loop updates: the model, its optimiser, the history, and the base seed."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: list = field(default_factory=list)
    base_seed: int = 0


@dataclass
class ValidationSet:
    """Held-out pairs scored after every epoch.

    Attributes
    ----------
    data : object
        Prepared student-side inputs.
    teacher_embeddings : torch.Tensor of shape (n_samples, dim)
    unique_embeddings : ndarray of shape (n_unique, dim)
        Distinct teacher-side items, the candidates of retrieval.
    inverse : ndarray of shape (n_samples,)
        Index of each pair's teacher-side item among ``unique_embeddings``.
    """

    data: object
    teacher_embeddings: torch.Tensor
    unique_embeddings: np.ndarray
    inverse: np.ndarray


def _snapshot(state: TrainingState) -> dict:
    return {
        "model": copy.deepcopy(state.model.state_dict()),
        "optimizer": copy.deepcopy(state.optimizer.state_dict()),
    }


def _restore(state: TrainingState, snapshot: dict) -> None:
    state.model.load_state_dict(snapshot["model"])
    state.optimizer.load_state_dict(snapshot["optimizer"])


def _to_device(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch


def _progress(verbose: int, total: int, description: str, leave: bool = True):
    if verbose <= 0:
        return None
    from tqdm.auto import tqdm  # the notebook widget inside Jupyter, text elsewhere

    return tqdm(total=total, desc=description, unit=description.rstrip("es"), leave=leave)


def _validate(state, validation: ValidationSet, collate, batch_loss, batch_size, device) -> dict:
    """Validation loss and paired retrieval R@1, in eval mode without gradient."""
    model = state.model
    model.eval()
    n_samples = len(validation.teacher_embeddings)
    total, embeddings = 0.0, []
    with torch.no_grad():
        for start in range(0, n_samples, batch_size):
            indices = np.arange(start, min(start + batch_size, n_samples))
            student_embeddings = model(_to_device(collate(validation.data, indices), device))
            targets = validation.teacher_embeddings[torch.from_numpy(indices).to(device)]
            total += float(batch_loss(student_embeddings, targets, None)) * len(indices)
            embeddings.append(student_embeddings.float().cpu().numpy())
    recall = recall_at_k(
        np.concatenate(embeddings), validation.unique_embeddings, validation.inverse
    )
    return {"valid_loss": total / n_samples, "valid_r1": recall}


def run_epochs(
    state: TrainingState,
    *,
    data,
    collate: Callable,
    teacher_embeddings: torch.Tensor,
    batch_loss: Callable,
    n_epochs: int,
    batch_size: int,
    device: torch.device,
    verbose: int = 0,
    validation: ValidationSet | None = None,
    patience: int | None = None,
    callbacks: Sequence = (),
    estimator=None,
    temperature: Callable[[], float] | None = None,
) -> str:
    """Train ``state.model`` for up to ``n_epochs`` epochs, appending one record per epoch.

    Parameters
    ----------
    state : TrainingState
    data : object
        Prepared student-side inputs; ``collate(data, indices)`` makes a batch.
    collate : callable
    teacher_embeddings : torch.Tensor of shape (n_samples, dim)
        The frozen teacher's embedding of each pair's teacher side.
    batch_loss : callable
        ``batch_loss(student_embeddings, teacher_embeddings, indices) -> scalar tensor``;
        ``indices`` are positions in the training set, or None for validation batches.
    n_epochs, batch_size : int
    device : torch.device
    verbose : int, default=0
        0 prints nothing; 1 shows a progress bar over epochs; 2 adds one over batches.
    validation : ValidationSet, optional
        Scored after every epoch: ``valid_loss`` and ``valid_r1`` in the record.
    patience : int, optional
        Early stopping: stop after ``patience`` epochs without a lower validation loss, and
        restore the weights of the best epoch. Needs ``validation``.
    callbacks : sequence of Callback
    estimator : object, optional
        Passed to the callbacks' hooks.
    temperature : callable, optional
        Returns the current temperature, recorded in the history.

    Returns
    -------
    reason : str
        Why training ended: ``"max_epochs"``, ``"early_stopping"``, ``"callback"`` or
        ``"interrupted"``.

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
    best = {"loss": math.inf, "snapshot": None, "epoch": 0}
    epochs_bar = _progress(verbose, n_epochs, "epochs")
    reason = "max_epochs"
    for callback in callbacks:
        callback.on_train_begin(estimator, state.history)
    try:
        for _ in range(n_epochs):
            epoch = len(state.history) + 1
            snapshot = _snapshot(state)
            started = time.perf_counter()
            rng, torch_seed = epoch_generators(state.base_seed, epoch)
            batches = batch_indices(n_samples, batch_size, rng)
            batches_bar = _progress(verbose - 1, len(batches), "batches", leave=False)
            total, count = 0.0, 0
            model.train()
            try:
                with torch.random.fork_rng(devices=_cuda_devices(device)):
                    torch.manual_seed(torch_seed)
                    for batch_index, indices in enumerate(batches):
                        loss = _step(
                            state,
                            (data, collate, teacher_embeddings, batch_loss),
                            indices,
                            device,
                            snapshot,
                            epoch,
                        )
                        total += loss * len(indices)
                        count += len(indices)
                        for callback in callbacks:
                            callback.on_batch_end(estimator, batch_index, loss)
                        if batches_bar is not None:
                            batches_bar.set_postfix(loss=f"{loss:.4f}")
                            batches_bar.update()
            except KeyboardInterrupt:
                _restore(state, snapshot)
                warnings.warn(
                    f"Training interrupted during epoch {epoch}; the model keeps the weights "
                    f"of the {epoch - 1} completed epoch(s).",
                    RuntimeWarning,
                    stacklevel=3,
                )
                reason = "interrupted"
                break
            finally:
                if batches_bar is not None:
                    batches_bar.close()

            record = {"epoch": epoch, "train_loss": total / max(count, 1)}
            if temperature is not None:
                record["temperature"] = float(temperature())
            if validation is not None:
                record.update(_validate(state, validation, collate, batch_loss, batch_size, device))
            record["seconds"] = time.perf_counter() - started
            state.history.append(record)
            if epochs_bar is not None:
                epochs_bar.set_postfix(
                    {key: f"{value:.4f}" for key, value in record.items() if key != "epoch"}
                )
                epochs_bar.update()
            try:
                for callback in callbacks:
                    callback.on_epoch_end(estimator, record)
            except StopTraining:
                reason = "callback"
                break
            if patience is not None and validation is not None:
                if record["valid_loss"] < best["loss"]:
                    best = {
                        "loss": record["valid_loss"],
                        "snapshot": _snapshot(state),
                        "epoch": epoch,
                    }
                elif epoch - best["epoch"] >= patience:
                    reason = "early_stopping"
                    break
        if patience is not None and best["snapshot"] is not None:
            # Early stopping keeps the best epoch's weights, not the last one's.
            _restore(state, best["snapshot"])
    finally:
        if epochs_bar is not None:
            epochs_bar.close()
        model.eval()
        for callback in callbacks:
            callback.on_train_end(estimator, state.history)
    return reason


def _cuda_devices(device: torch.device) -> list:
    return [device] if device.type == "cuda" else []


def _step(state, task, indices, device, snapshot, epoch) -> float:
    """One optimiser step on one batch; returns the batch loss as a float."""
    data, collate, teacher_embeddings, batch_loss = task
    batch = _to_device(collate(data, indices), device)
    targets = teacher_embeddings[torch.from_numpy(indices).to(device)]  # (batch_size, dim)
    student_embeddings = state.model(batch)  # (batch_size, dim)
    loss = batch_loss(student_embeddings, targets, indices)
    if not torch.isfinite(loss):
        _restore(state, snapshot)
        raise FloatingPointError(
            f"The training loss became {loss.item()} in epoch {epoch}; the weights of the last "
            "completed epoch were restored. Try a lower learning_rate or a higher temperature."
        )
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    return float(loss.detach())


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
