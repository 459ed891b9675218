"""The epoch loop: epochs of planned steps, validation, history, callbacks and safe stopping.

The loop knows no modality, no loss and no estimator: it receives prepared data with a
``collate`` function, the teacher's embedding of every training pair, a ``batch_loss``
callable and the callbacks, and it keeps what was learned when training is interrupted or
diverges.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..callbacks import EarlyStopping, StopTraining
from ..distributed import broadcast_object, get_rank, is_main_process
from .batches import batch_indices, collated_chunks, plan_steps, step_chunks
from .devices import check_precision
from .progress import progress_bar
from .seeding import cuda_devices, epoch_generators, forked_numpy_global
from .state import TrainingState
from .stepper import Stepper, diverged_error
from .validation import ValidationSet, validate

__all__ = ["run_epochs"]


@dataclass
class _Run:
    """What every epoch of one :func:`run_epochs` call shares."""

    state: TrainingState
    stepper: Stepper
    data: object
    collate: Callable
    n_samples: int
    batch_size: int
    mini_batch_size: int | None
    num_workers: int
    device: torch.device
    callbacks: list
    estimator: object
    verbose: int
    learning_rate: Callable[[int, int, int], float] | None = None


def _train_epoch(run: _Run, epoch: int, snapshot: dict) -> float:
    """One pass over the training pairs; returns the mean training loss."""
    rng, torch_seed = epoch_generators(run.state.base_seed, epoch, get_rank())
    plans = plan_steps(batch_indices(run.n_samples, run.batch_size, rng), run.mini_batch_size)
    chunks = step_chunks(plans, grad_cache=run.mini_batch_size is not None)
    batches = collated_chunks(
        run.data, run.collate, chunks, run.num_workers, run.device, torch_seed
    )
    bar = progress_bar(run.verbose - 1, len(plans), "batches", leave=False)
    total, count = 0.0, 0
    run.state.model.train()
    try:
        with torch.random.fork_rng(devices=cuda_devices(run.device)), forked_numpy_global():
            # NumPy's too, so that random_state makes SpecAugment's masks reproducible.
            torch.manual_seed(torch_seed)
            np.random.seed(torch_seed % 2**32)  # noqa: NPY002
            for batch_index, plan in enumerate(plans):
                if run.learning_rate is not None:
                    rate = run.learning_rate(epoch, batch_index, len(plans))
                    for group in run.state.optimizer.param_groups:
                        group["lr"] = rate
                for callback in run.callbacks:
                    callback.on_batch_begin(run.estimator, batch_index, plan.indices)
                loss = run.stepper(plan, batches, snapshot, epoch)
                total += loss * len(plan.indices)
                count += len(plan.indices)
                for callback in run.callbacks:
                    callback.on_batch_end(run.estimator, batch_index, loss)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.4f}")
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
    return total / max(count, 1)


def _end_of_epoch_callbacks(callbacks: list, estimator, record: dict) -> str | None:
    """Run the epoch-end hooks; the reason one of them asked to stop (alike on every rank).

    Rank 0's callbacks run first and their decision is broadcast, with the record as they
    left it: the keys they add (the target statistics) reach every rank's history, so that
    every rank ends with the same fitted state. The callbacks that run on every rank (early
    stopping) run last, where no earlier one stopped.
    """
    reason = None
    try:
        for callback in callbacks:
            if not callback.runs_on_every_rank:
                callback.on_epoch_end(estimator, record)
    except StopTraining as stop:
        reason = stop.reason
    reason, main_record = broadcast_object((reason, record))
    record.update(main_record)  # in place: the record is already in the history
    if reason is None:
        try:
            for callback in callbacks:
                if callback.runs_on_every_rank:
                    callback.on_epoch_end(estimator, record)
        except StopTraining as stop:
            reason = stop.reason
    return reason


def _epoch_record(state: TrainingState, epoch: int, train_loss: float, temperature) -> dict:
    """The history record of an epoch just trained, before validation and timing."""
    # The rate of the epoch's last step: with a schedule, where training stands.
    rate = state.optimizer.param_groups[0]["lr"]
    record = {"epoch": epoch, "train_loss": train_loss, "learning_rate": float(rate)}
    if temperature is not None:
        record["temperature"] = float(temperature())
    return record


def _interrupted(state: TrainingState, when: str, completed: int) -> None:
    """Mark an interrupted run, and say which epochs the model keeps."""
    state.stop_reason = "interrupted"
    warnings.warn(
        f"Training interrupted {when}; the model keeps the weights of the {completed} "
        "completed epoch(s).",
        RuntimeWarning,
        stacklevel=4,
    )


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
    mini_batch_size: int | None = None,
    precision: str = "32",
    num_workers: int = 0,
    learning_rate: Callable[[int, int, int], float] | None = None,
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
        ``batch_size`` is the global contrastive batch, shared out over the ranks.
    device : torch.device
    verbose : int, default=0
        0 prints nothing; 1 shows a progress bar over epochs; 2 adds one over batches.
    validation : ValidationSet, optional
        Scored after every epoch: ``valid_loss`` and ``valid_r1`` in the record.
    patience : int, optional
        Early stopping (:class:`~cwcl_sk.callbacks.EarlyStopping`, run after the other
        callbacks): stop after ``patience`` epochs without a lower validation loss, and
        restore the weights of the best epoch. Needs ``validation``.
    callbacks : sequence of Callback
        Run on rank 0 only (except those that run on every rank); a :class:`StopTraining`
        there stops every rank.
    estimator : object, optional
        Passed to the callbacks' hooks.
    temperature : callable, optional
        Returns the current temperature, recorded in the history.
    mini_batch_size : int, optional
        GradCache chunk size: embed each batch in chunks of at most this many samples (per
        rank) and back-propagate chunk by chunk. None embeds a batch at once.
    precision : {"32", "bf16", "16-mixed"}, default="32"
        See :func:`check_precision`.
    num_workers : int, default=0
        DataLoader worker processes that collate batches; 0 collates in this process.
    learning_rate : callable, optional
        ``learning_rate(epoch, step, steps_per_epoch)`` gives the rate of every parameter
        group before each step (see :class:`~cwcl_sk.schedules.LearningRateSchedule`); None
        leaves the optimiser's rates alone.

    Returns
    -------
    reason : str
        Why training ended: ``"max_epochs"``, ``"early_stopping"`` or ``"callback"``; also
        left in ``state.stop_reason``.

    Raises
    ------
    FloatingPointError
        When the loss or, after an epoch's last step, a weight becomes NaN or inf; the
        weights of the last completed epoch are restored first, so nothing learned before is
        lost.
    KeyboardInterrupt
        Re-raised after the state is made consistent, so that callers (search loops,
        notebooks, scripts) stop too: interrupted during an epoch's steps or validation,
        the weights of the last completed epoch are restored; interrupted in an epoch-end
        callback (a checkpoint write, say), the epoch is complete and kept. Either way
        ``state.history`` holds one record per epoch the weights have seen and
        ``state.stop_reason`` is ``"interrupted"``.
    Exception
        Any other error during an epoch (an input that cannot be read, say) is re-raised
        after the weights of the last completed epoch are restored, with
        ``state.stop_reason`` set to ``"error"``.
    """
    check_precision(precision, device)
    if precision == "16-mixed" and state.scaler is None:
        state.scaler = torch.amp.GradScaler(device.type)
    main = is_main_process()
    callbacks = list(callbacks)
    if patience is not None and validation is not None:
        callbacks.append(EarlyStopping(state, patience))
    run = _Run(
        state=state,
        stepper=Stepper(
            state,
            teacher_embeddings,
            batch_loss,
            device,
            precision,
            grad_cache=mini_batch_size is not None,
        ),
        data=data,
        collate=collate,
        n_samples=len(teacher_embeddings),
        batch_size=batch_size,
        mini_batch_size=mini_batch_size,
        num_workers=num_workers,
        device=device,
        callbacks=[callback for callback in callbacks if main or callback.runs_on_every_rank],
        estimator=estimator,
        verbose=verbose if main else 0,
        learning_rate=learning_rate,
    )
    epochs_bar = progress_bar(run.verbose, n_epochs, "epochs")
    state.stop_reason = None
    reason = "max_epochs"
    for callback in run.callbacks:
        callback.on_train_begin(estimator, state.history)
    try:
        for _ in range(n_epochs):
            epoch = len(state.history) + 1
            snapshot = state.snapshot()
            started = time.perf_counter()
            try:
                train_loss = _train_epoch(run, epoch, snapshot)
                if not state.is_finite():
                    # A NaN gradient under a finite loss: the next step's loss would say
                    # so, but after an epoch's last step (a fit's last) nothing would.
                    state.restore(snapshot)
                    raise diverged_error("weights became NaN or infinite", epoch)
                record = _epoch_record(state, epoch, train_loss, temperature)
                if validation is not None:
                    record.update(
                        validate(
                            state, validation, collate, batch_loss, batch_size, device, precision
                        )
                    )
            except KeyboardInterrupt:
                state.restore(snapshot)
                _interrupted(state, f"during epoch {epoch}", epoch - 1)
                raise
            except Exception:
                # An unreadable input, a worker that died, a loss that diverged: the
                # half-trained epoch is dropped, the completed ones are kept.
                state.restore(snapshot)
                state.stop_reason = "error"
                raise
            record["seconds"] = time.perf_counter() - started
            state.history.append(record)
            if epochs_bar is not None:
                epochs_bar.set_postfix(
                    {key: f"{value:.4f}" for key, value in record.items() if key != "epoch"}
                )
                epochs_bar.update()
            try:
                stop = _end_of_epoch_callbacks(run.callbacks, estimator, record)
            except KeyboardInterrupt:
                _interrupted(state, f"at the end of epoch {epoch}", epoch)
                raise
            if stop is not None:
                reason = stop
                break
        state.stop_reason = reason
    finally:
        run.stepper.close()
        if epochs_bar is not None:
            epochs_bar.close()
        state.model.eval()
        for callback in run.callbacks:
            callback.on_train_end(estimator, state.history)
    return reason
