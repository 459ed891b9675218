"""The training loop: batching, optimiser steps, validation, history, and safe stopping.

The loop knows no modality and no loss: it receives prepared data with a ``collate``
function, the teacher's embedding of every training pair, and a ``batch_loss`` callable. It
keeps what was learned when training is interrupted or diverges.

Randomness is drawn per epoch from ``(base_seed, epoch number)``: an epoch's shuffling and
dropout depend only on the seed and on how many epochs came before, so training resumed from
a checkpoint (or continued with ``partial_fit``) follows the uninterrupted run exactly.

One optimiser step on a contrastive batch of N pairs can run

- plainly: the student embeds the batch with graph and the loss is back-propagated;
- with GradCache (Gao et al., 2021; ``mini_batch_size``): the student embeds the batch in
  chunks without graph, the gradient of the loss with respect to those embeddings is taken,
  then every chunk is embedded again with graph (replaying its dropout) and back-propagated
  with its slice of that gradient. The gradient is the full batch's, the memory one chunk's;
- in mixed precision (``precision``: bf16 autocast, or float16 autocast with a GradScaler);
- on several processes (``torchrun``): every rank embeds its shard of the global batch and the
  shards are gathered with gradient (see :mod:`cwcl_sk.distributed`).

References
----------
.. [1] Gao, L., Zhang, Y., Han, J., & Callan, J. (2021). Scaling Deep Contrastive Learning
   Batch Size under Memory Limited Setup. RepL4NLP. arXiv:2101.06983.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .callbacks import StopTraining
from .distributed import (
    all_reduce_mean_,
    broadcast_object,
    gather_with_grad,
    get_rank,
    is_distributed,
    is_main_process,
    shard,
)
from .metrics import recall_at_k

__all__ = [
    "MAX_LOGIT_SCALE",
    "PRECISIONS",
    "StepPlan",
    "TrainingState",
    "ValidationSet",
    "autocast",
    "batch_indices",
    "check_precision",
    "embed_in_batches",
    "epoch_generators",
    "inference_precision",
    "plan_steps",
    "resolve_device",
    "run_epochs",
]

PRECISIONS = ("32", "bf16", "16-mixed")
"""Accepted values of ``precision``: float32, bfloat16 autocast, float16 autocast + GradScaler."""

MAX_LOGIT_SCALE = math.log(100.0)
"""Upper clamp of a learnable log logit scale, log(1 / temperature), as in CLIP/open_clip."""


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


def batch_indices(n_samples: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle ``range(n_samples)`` and cut it into batches of nearly equal size.

    Every sample is used once an epoch and no batch is a tiny remainder: a contrastive batch
    of 1 or 2 pairs carries almost no signal (one pair has no negatives at all), so the
    ``ceil(n / batch_size)`` batches differ in size by at most one.
    """
    n_batches = max(1, -(-n_samples // batch_size))
    return np.array_split(rng.permutation(n_samples), n_batches)


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


@dataclass
class TrainingState:
    """What the loop updates: the model, its optimiser, the history, and the base seed.

    Attributes
    ----------
    model : torch.nn.Module
    optimizer : torch.optim.Optimizer
    history : list of dict
    base_seed : int
    logit_scale : torch.nn.Parameter, optional
        A learnable log(1 / temperature), trained by ``optimizer`` and clamped to
        ``MAX_LOGIT_SCALE`` after every step; None for a fixed temperature.
    scaler : torch.amp.GradScaler, optional
        Loss scaling for ``precision="16-mixed"``, created by :func:`run_epochs`.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: list = field(default_factory=list)
    base_seed: int = 0
    logit_scale: nn.Parameter | None = None
    scaler: torch.amp.GradScaler | None = None


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
    snapshot = {
        "model": copy.deepcopy(state.model.state_dict()),
        "optimizer": copy.deepcopy(state.optimizer.state_dict()),
    }
    if state.logit_scale is not None:
        snapshot["logit_scale"] = state.logit_scale.detach().clone()
    return snapshot


def _restore(state: TrainingState, snapshot: dict) -> None:
    state.model.load_state_dict(snapshot["model"])
    state.optimizer.load_state_dict(snapshot["optimizer"])
    if state.logit_scale is not None:
        with torch.no_grad():
            state.logit_scale.copy_(snapshot["logit_scale"])


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


def _collated_chunks(
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


def _step_chunks(plans: list[StepPlan], grad_cache: bool) -> list[np.ndarray]:
    """Every chunk in the order the steps embed them: twice per step with GradCache."""
    chunks = []
    for plan in plans:
        chunks += plan.chunks * (2 if grad_cache else 1)
    return chunks


class _RandomState:
    """The random state before a chunk's first pass, replayed for its second.

    GradCache embeds every chunk twice; dropout must draw the same masks both times, or the
    cached embedding gradient would belong to a different network (sentence-transformers'
    ``RandContext`` does the same). Torch's CPU (and CUDA) generators are not enough:
    transformers draws wav2vec2 and HuBERT's SpecAugment time masks with NumPy's global
    generator, so its state is saved and replayed too.
    """

    def __init__(self, device: torch.device):
        self.devices = [device] if device.type == "cuda" else []
        self.cpu_state = torch.get_rng_state()
        self.cuda_states = [torch.cuda.get_rng_state(device) for device in self.devices]
        self.numpy_state = np.random.get_state()  # noqa: NPY002

    @contextlib.contextmanager
    def replay(self):
        """Run the body with the saved state, restoring the current one afterwards."""
        with torch.random.fork_rng(devices=self.devices), _forked_numpy_global():
            torch.set_rng_state(self.cpu_state)
            for device, state in zip(self.devices, self.cuda_states, strict=True):
                torch.cuda.set_rng_state(state, device)
            np.random.set_state(self.numpy_state)  # noqa: NPY002
            yield


@contextlib.contextmanager
def _forked_numpy_global():
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


class _Stepper:
    """Runs one optimiser step on a planned batch: plain or GradCache, any precision, any ranks.

    Parameters
    ----------
    state : TrainingState
    teacher_embeddings : torch.Tensor of shape (n_samples, dim)
    batch_loss : callable
    device : torch.device
    precision : str
    grad_cache : bool
        Two passes per step (GradCache) instead of one.
    """

    def __init__(self, state, teacher_embeddings, batch_loss, device, precision, grad_cache):
        self.state = state
        self.grad_cache = grad_cache
        self.teacher_embeddings = teacher_embeddings
        self.batch_loss = batch_loss
        self.device = device
        self.precision = precision
        self.model = state.model
        if is_distributed():
            device_ids = [device.index] if device.type == "cuda" else None
            self.model = DistributedDataParallel(state.model, device_ids=device_ids)

    def __call__(self, plan: StepPlan, batches: Iterator, snapshot: dict, epoch: int) -> float:
        """Train on ``plan``, taking its chunks' batches from ``batches``; return the loss."""
        self.state.optimizer.zero_grad(set_to_none=True)
        if self.grad_cache:
            loss = self._grad_cache_backward(plan, batches, snapshot, epoch)
        else:
            loss = self._plain_backward(plan, batches, snapshot, epoch)
        self._optimizer_step()
        return loss

    def _embed(self, batch) -> torch.Tensor:
        with autocast(self.device, self.precision):
            return self.model(_to_device(batch, self.device))  # (chunk_size, dim)

    def _loss(self, local_embeddings, plan: StepPlan, snapshot: dict, epoch: int):
        """The global batch's loss from this rank's embeddings, and its value; stops on NaN."""
        embeddings = gather_with_grad(local_embeddings, plan.sizes)  # (batch_size, dim)
        rows = torch.from_numpy(plan.indices).to(self.device)
        targets = self.teacher_embeddings[rows]  # (batch_size, dim)
        loss = self.batch_loss(embeddings, targets, plan.indices)
        # One device sync a step, which the history needs anyway.
        value = float(loss.detach())
        if not math.isfinite(value):
            _restore(self.state, snapshot)
            raise FloatingPointError(
                f"The training loss became {value} in epoch {epoch}; the weights of the "
                "last completed epoch were restored. Try a lower learning_rate or a higher "
                "temperature."
            )
        return loss, value

    def _backward_loss(self, loss: torch.Tensor) -> None:
        scaler = self.state.scaler
        (loss if scaler is None else scaler.scale(loss)).backward()

    def _plain_backward(self, plan, batches, snapshot, epoch) -> float:
        loss, value = self._loss(self._embed(next(batches)), plan, snapshot, epoch)
        self._backward_loss(loss)
        return value

    def _grad_cache_backward(self, plan, batches, snapshot, epoch) -> float:
        random_states, pieces = [], []
        with torch.no_grad():
            for _ in plan.chunks:
                random_states.append(_RandomState(self.device))
                pieces.append(self._embed(next(batches)))  # (chunk_size, dim)
        local = torch.cat(pieces).requires_grad_()  # (n_local, dim), a leaf
        loss, value = self._loss(local, plan, snapshot, epoch)
        # Fills local.grad (scaled like the loss under a GradScaler) and the logit scale's.
        self._backward_loss(loss)
        gradients = local.grad.split([len(chunk) for chunk in plan.chunks])
        last = len(plan.chunks) - 1
        for index, (random_state, gradient) in enumerate(
            zip(random_states, gradients, strict=True)
        ):
            # DDP would all-reduce after every chunk: accumulate locally, reduce on the last.
            no_sync = index < last and isinstance(self.model, DistributedDataParallel)
            accumulate = self.model.no_sync() if no_sync else contextlib.nullcontext()
            with random_state.replay(), accumulate:
                self._embed(next(batches)).backward(gradient)
        return value

    def close(self) -> None:
        """Unhook DDP from the student, so that a later fit can wrap it again."""
        if isinstance(self.model, DistributedDataParallel):
            self.model._remove_autograd_hooks()
        self.model = self.state.model

    def _optimizer_step(self) -> None:
        state = self.state
        if state.logit_scale is not None:
            # Outside the DDP module: its gradient is identical on every rank in exact
            # arithmetic; averaging keeps the ranks bit-for-bit in step.
            all_reduce_mean_([state.logit_scale.grad])
        if state.scaler is None:
            state.optimizer.step()
        else:
            state.scaler.step(state.optimizer)
            state.scaler.update()
        if state.logit_scale is not None:
            with torch.no_grad():
                state.logit_scale.clamp_(max=MAX_LOGIT_SCALE)


def _validate(state, validation: ValidationSet, collate, batch_loss, batch_size, device, precision):
    """Validation loss and paired retrieval R@1, in eval mode without gradient."""
    model = state.model
    model.eval()
    n_samples = len(validation.teacher_embeddings)
    total, embeddings = 0.0, []
    with torch.no_grad():
        for start in range(0, n_samples, batch_size):
            indices = np.arange(start, min(start + batch_size, n_samples))
            with autocast(device, precision):
                student_embeddings = model(_to_device(collate(validation.data, indices), device))
            targets = validation.teacher_embeddings[torch.from_numpy(indices).to(device)]
            total += float(batch_loss(student_embeddings, targets, None)) * len(indices)
            embeddings.append(student_embeddings.float().cpu().numpy())
    recall = recall_at_k(
        np.concatenate(embeddings), validation.unique_embeddings, validation.inverse
    )
    return {"valid_loss": total / n_samples, "valid_r1": recall}


@dataclass
class _Epoch:
    """What every epoch of one :func:`run_epochs` call shares."""

    state: TrainingState
    stepper: _Stepper
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


def _train_epoch(run: _Epoch, epoch: int, snapshot: dict) -> float:
    """One pass over the training pairs; returns the mean training loss."""
    rng, torch_seed = epoch_generators(run.state.base_seed, epoch, get_rank())
    plans = plan_steps(batch_indices(run.n_samples, run.batch_size, rng), run.mini_batch_size)
    chunks = _step_chunks(plans, grad_cache=run.mini_batch_size is not None)
    batches = _collated_chunks(
        run.data, run.collate, chunks, run.num_workers, run.device, torch_seed
    )
    bar = _progress(run.verbose - 1, len(plans), "batches", leave=False)
    total, count = 0.0, 0
    run.state.model.train()
    try:
        with torch.random.fork_rng(devices=_cuda_devices(run.device)), _forked_numpy_global():
            # NumPy's too, so that random_state makes SpecAugment's masks reproducible.
            torch.manual_seed(torch_seed)
            np.random.seed(torch_seed % 2**32)  # noqa: NPY002
            for batch_index, plan in enumerate(plans):
                if run.learning_rate is not None:
                    rate = run.learning_rate(epoch, batch_index, len(plans))
                    for group in run.state.optimizer.param_groups:
                        group["lr"] = rate
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


def _end_of_epoch_callbacks(callbacks, estimator, record) -> bool:
    """Run the epoch-end hooks on rank 0; True (on every rank) when one asked to stop."""
    stop = False
    try:
        for callback in callbacks:
            callback.on_epoch_end(estimator, record)
    except StopTraining:
        stop = True
    return bool(broadcast_object(stop))


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
        Early stopping: stop after ``patience`` epochs without a lower validation loss, and
        restore the weights of the best epoch. Needs ``validation``.
    callbacks : sequence of Callback
        Run on rank 0 only; a :class:`StopTraining` there stops every rank.
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
    check_precision(precision, device)
    if precision == "16-mixed" and state.scaler is None:
        state.scaler = torch.amp.GradScaler(device.type)
    main = is_main_process()
    run = _Epoch(
        state=state,
        stepper=_Stepper(
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
        callbacks=list(callbacks) if main else [],
        estimator=estimator,
        verbose=verbose if main else 0,
        learning_rate=learning_rate,
    )
    best = {"loss": math.inf, "snapshot": None, "epoch": 0}
    epochs_bar = _progress(run.verbose, n_epochs, "epochs")
    reason = "max_epochs"
    for callback in run.callbacks:
        callback.on_train_begin(estimator, state.history)
    try:
        for _ in range(n_epochs):
            epoch = len(state.history) + 1
            snapshot = _snapshot(state)
            started = time.perf_counter()
            try:
                train_loss = _train_epoch(run, epoch, snapshot)
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

            # The rate of the epoch's last step: with a schedule, where training stands.
            rate = state.optimizer.param_groups[0]["lr"]
            record = {"epoch": epoch, "train_loss": train_loss, "learning_rate": float(rate)}
            if temperature is not None:
                record["temperature"] = float(temperature())
            if validation is not None:
                record.update(
                    _validate(state, validation, collate, batch_loss, batch_size, device, precision)
                )
            record["seconds"] = time.perf_counter() - started
            state.history.append(record)
            if epochs_bar is not None:
                epochs_bar.set_postfix(
                    {key: f"{value:.4f}" for key, value in record.items() if key != "epoch"}
                )
                epochs_bar.update()
            if _end_of_epoch_callbacks(run.callbacks, estimator, record):
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
        run.stepper.close()
        if epochs_bar is not None:
            epochs_bar.close()
        state.model.eval()
        for callback in run.callbacks:
            callback.on_train_end(estimator, state.history)
    return reason


def _cuda_devices(device: torch.device) -> list:
    return [device] if device.type == "cuda" else []


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
            batch = _to_device(collate(data, np.arange(start, stop)), device)
            output = model(batch).float().cpu().numpy()  # (batch, dim)
            if embeddings is None:
                # Filled in place: no list of batches to concatenate (one copy less).
                embeddings = np.empty((n_samples, output.shape[1]), dtype=np.float32)
            embeddings[start:stop] = output
    return embeddings
