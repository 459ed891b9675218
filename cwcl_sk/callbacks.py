"""Callbacks: hooks into the training loop, passed to ``CWCLAligner(callbacks=...)``.

A callback subclasses :class:`Callback` and overrides the hooks it needs. Callbacks given as
``(name, callback)`` pairs are reachable through nested parameters, as in skorch:
``aligner.set_params(callbacks__log__every=5)`` sets ``every`` on the callback named ``log``.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator

__all__ = ["Callback", "Checkpoint", "PrintLog", "StopTraining"]


class StopTraining(Exception):
    """Raise from a callback hook to end training after the current epoch, keeping it."""


class Callback(BaseEstimator):
    """Base class of training callbacks.

    Every hook receives the estimator being trained; ``record`` is the history entry of the
    epoch just finished (a dict with ``epoch``, ``train_loss``, ``seconds`` and, with
    validation, ``valid_loss`` and ``valid_r1``). Hooks may add keys to ``record``; they must
    not change the estimator's parameters. Raise :class:`StopTraining` to end training early.

    Subclassing :class:`sklearn.base.BaseEstimator` gives ``get_params``/``set_params``, so a
    callback's own parameters are searchable and settable by nested name.

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

    def on_train_begin(self, estimator, history: list) -> None:
        """Called once before the first epoch of a ``fit`` or ``partial_fit`` call."""

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

    Each checkpoint is a folder ``<directory>/epoch-NNNN`` written by
    :func:`cwcl_sk.persistence.save_checkpoint`: safetensors weights, JSON settings and the
    optimiser state. Resume with ``CWCLAligner(...).fit(X, y, resume_from=folder)``.

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
            from pathlib import Path

            from .persistence import save_checkpoint

            save_checkpoint(estimator, Path(self.directory) / f"epoch-{record['epoch']:04d}")
