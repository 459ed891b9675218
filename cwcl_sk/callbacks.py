"""Callbacks: hooks into the training loop, passed to ``CWCLAligner(callbacks=...)``.

A callback subclasses :class:`Callback` and overrides the hooks it needs. Callbacks given as
``(name, callback)`` pairs are reachable through nested parameters, as in skorch:
``aligner.set_params(callbacks__log__every=5)`` sets ``every`` on the callback named ``log``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sklearn.base import BaseEstimator

from ._folders import check_writable_folder, move_into_place, remove_entry
from .diagnostics import batch_target_statistics

__all__ = [
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "PrintLog",
    "SkippedInputs",
    "StopTraining",
    "TargetStatistics",
]


class StopTraining(Exception):
    """Raise from a callback hook to end training after the current epoch, keeping it.

    Parameters
    ----------
    reason : str, default="callback"
        What the estimator's ``stop_reason_`` says.
    """

    def __init__(self, reason: str = "callback"):
        super().__init__(reason)
        self.reason = reason


class Callback(BaseEstimator):
    """Base class of training callbacks.

    Every hook receives the estimator being trained; ``record`` is the history entry of the
    epoch just finished (a dict with ``epoch``, ``train_loss``, ``seconds`` and, with
    validation, ``valid_loss`` and ``valid_r1``). Hooks may add keys to ``record``; they must
    not change the estimator's parameters. Raise :class:`StopTraining` to end training early.

    Subclassing :class:`sklearn.base.BaseEstimator` gives ``get_params``/``set_params``, so a
    callback's own parameters are searchable and settable by nested name.

    Under ``torchrun`` callbacks run on rank 0 only, unless ``runs_on_every_rank`` is True:
    such callbacks (early stopping, which restores weights) run on every rank, after the
    others, and must decide alike on every rank.

    Examples
    --------
    >>> from cwcl_sk.callbacks import Callback, StopTraining
    >>> class StopBelow(Callback):
    ...     def __init__(self, loss=1.0):
    ...         self.loss = loss
    ...     def on_epoch_end(self, estimator, record):
    ...         if record["train_loss"] < self.loss:
    ...             raise StopTraining
    """

    runs_on_every_rank = False

    def on_train_begin(self, estimator, history: list) -> None:
        """Called once before the first epoch of a ``fit`` or ``partial_fit`` call."""

    def on_batch_begin(self, estimator, batch_index: int, indices) -> None:
        """Called before every optimiser step with the positions of its training pairs."""

    def on_batch_end(self, estimator, batch_index: int, loss: float) -> None:
        """Called after every optimiser step with the batch's loss."""

    def on_epoch_end(self, estimator, record: dict) -> None:
        """Called after every epoch (and after validation) with the epoch's record."""

    def on_train_end(self, estimator, history: list) -> None:
        """Called once when training ends, however it ends."""


class PrintLog(Callback):
    """Print one line per epoch with the record's numbers.

    Parameters
    ----------
    every : int, default=1
        Print every ``every`` epochs.
    """

    def __init__(self, every: int = 1):
        self.every = every

    def on_epoch_end(self, estimator, record: dict) -> None:
        """Print the record of every ``every``-th epoch."""
        if record["epoch"] % self.every == 0:
            numbers = "  ".join(
                f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
                for key, value in record.items()
            )
            print(numbers, flush=True)


class Checkpoint(Callback):
    """Save a resumable checkpoint every ``every`` epochs.

    Each checkpoint is a folder ``<directory>/epoch-NNNN`` written by the estimator's own
    ``save_checkpoint(folder)`` (:meth:`cwcl_sk.CWCLAligner.save_checkpoint`: safetensors
    weights, JSON settings and the optimiser state), as skorch's ``Checkpoint`` calls
    ``net.save_params``. A folder is written under a temporary name and renamed when
    complete, so an interrupted write leaves no torn checkpoint. Resume with
    ``CWCLAligner(...).fit(X, y, resume_from=folder)``.

    Parameters
    ----------
    directory : str or path-like
    every : int, default=1
    """

    def __init__(self, directory, every: int = 1):
        self.directory = directory
        self.every = every

    def on_epoch_end(self, estimator, record: dict) -> None:
        """Write a checkpoint after every ``every``-th epoch."""
        if record["epoch"] % self.every == 0:
            _write_whole(
                estimator.save_checkpoint, Path(self.directory) / f"epoch-{record['epoch']:04d}"
            )


def _write_whole(save, folder: Path) -> None:
    """``save(folder)``, written beside it first and renamed into place when complete.

    An interrupted or failed write (Ctrl-C, a full disk) leaves no torn checkpoint that a
    resume would trust: only complete folders ever carry the final name. A checkpoint of the
    same epoch from an earlier run is swapped out, and links are removed, never followed.
    """
    partial = folder.with_name(folder.name + ".partial")
    if os.path.lexists(partial):
        remove_entry(partial)  # left by a write that was killed
    check_writable_folder(folder, "checkpoint_dir", lambda _: True)
    try:
        save(partial)
        move_into_place(partial, folder)
    except BaseException:
        if os.path.lexists(partial):
            remove_entry(partial)
        raise


class EarlyStopping(Callback):
    """Stop when the validation loss has not improved for ``patience`` epochs.

    The weights of the best epoch are restored when training ends (unless it failed with an
    error). The training loop builds this callback from its ``patience`` argument and
    hands it the training state to snapshot; it runs on every rank, so that all ranks
    restore the same epoch.

    Parameters
    ----------
    state : TrainingState
        What is snapshot at the best epoch and restored at the end
        (:class:`cwcl_sk.training.TrainingState`).
    patience : int
        Epochs without a lower ``valid_loss`` before training stops.
    """

    runs_on_every_rank = True

    def __init__(self, state, patience: int):
        self.state = state
        self.patience = patience

    def on_train_begin(self, estimator, history: list) -> None:
        """Forget the best epoch of an earlier training call."""
        self.best_loss_, self.best_epoch_, self.best_snapshot_ = float("inf"), 0, None

    def on_epoch_end(self, estimator, record: dict) -> None:
        """Snapshot a new best epoch, or stop after ``patience`` epochs without one."""
        if record["valid_loss"] < self.best_loss_:
            self.best_loss_, self.best_epoch_ = record["valid_loss"], record["epoch"]
            self.best_snapshot_ = self.state.snapshot()
        elif record["epoch"] - self.best_epoch_ >= self.patience:
            raise StopTraining("early_stopping")

    def on_train_end(self, estimator, history: list) -> None:
        """Restore the best epoch's weights, unless training failed with an error."""
        if self.best_snapshot_ is not None and self.state.stop_reason is not None:
            self.state.restore(self.best_snapshot_)
        self.best_snapshot_ = None  # a fitted estimator keeps no second copy of the model


class SkippedInputs(Callback):
    """Record in every epoch how many training inputs were left out as unreadable.

    Added by the aligner when ``on_bad_input="skip"``; the record gains ``skipped_inputs``
    (the inputs themselves are in the estimator's ``skipped_inputs_``).

    Parameters
    ----------
    count : int
    """

    def __init__(self, count: int):
        self.count = int(count)

    def on_epoch_end(self, estimator, record: dict) -> None:
        """Write the count into the epoch's record."""
        record["skipped_inputs"] = self.count


class TargetStatistics(Callback):
    """Add the CWCL target statistics of the first batch of every epoch to its record.

    The record gains ``target_diagonal_mass``, ``target_effective_positives`` and
    ``target_relative_entropy`` (see :func:`cwcl_sk.diagnostics.target_statistics`). Targets
    depend on the teacher only, so one batch an epoch is representative and costs one
    extra kernel evaluation.

    Parameters
    ----------
    kernel : str, WeightKernel, callable or array of shape (n_samples, n_samples)
        The loss's kernel; a matrix is sliced to each batch.
    teacher_embeddings : torch.Tensor of shape (n_samples, dim)
        The teacher's embedding of every training pair.
    """

    def __init__(self, kernel, teacher_embeddings):
        self.kernel = kernel
        self.teacher_embeddings = teacher_embeddings

    def on_train_begin(self, estimator, history: list) -> None:
        """Start without statistics."""
        self.statistics_ = None

    def on_batch_begin(self, estimator, batch_index: int, indices) -> None:
        """Measure the targets of the epoch's first batch."""
        if self.statistics_ is None:
            self.statistics_ = batch_target_statistics(
                self.teacher_embeddings, indices, self.kernel
            )

    def on_epoch_end(self, estimator, record: dict) -> None:
        """Write the epoch's statistics into its record."""
        if self.statistics_ is not None:
            for key in ("diagonal_mass", "effective_positives", "relative_entropy"):
                record[f"target_{key}"] = self.statistics_[key]
        self.statistics_ = None
