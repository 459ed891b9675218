"""One optimiser step on a planned contrastive batch: plain or GradCache, any precision, any ranks.

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
import math
from collections.abc import Callable, Iterator

import torch
from torch.nn.parallel import DistributedDataParallel

from ..distributed import all_reduce_mean_, gather_with_grad, is_distributed
from .batches import StepPlan
from .devices import autocast, to_device
from .seeding import ReplayableRandomState
from .state import TrainingState

__all__ = ["Stepper", "diverged_error"]


def diverged_error(what: str, epoch: int) -> FloatingPointError:
    """The error of a training run that diverged in ``epoch``, after the last good state is back."""
    return FloatingPointError(
        f"The {what} in epoch {epoch}; the weights of the last completed epoch were restored. "
        "Try a lower learning_rate or a higher temperature."
    )


class Stepper:
    """Runs one optimiser step on a planned batch.

    Parameters
    ----------
    state : TrainingState
    teacher_embeddings : torch.Tensor of shape (n_samples, dim)
    batch_loss : callable
        ``batch_loss(student_embeddings, teacher_embeddings, indices) -> scalar tensor``.
    device : torch.device
    precision : str
    grad_cache : bool
        Two passes per step (GradCache) instead of one.
    """

    def __init__(
        self,
        state: TrainingState,
        teacher_embeddings: torch.Tensor,
        batch_loss: Callable,
        device: torch.device,
        precision: str,
        grad_cache: bool,
    ):
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
        """Train on ``plan``, taking its chunks' batches from ``batches``; return the loss.

        Raises
        ------
        FloatingPointError
            When the loss is NaN or infinite; ``snapshot`` is restored first.
        """
        self.state.optimizer.zero_grad(set_to_none=True)
        if self.grad_cache:
            loss = self._grad_cache_backward(plan, batches, snapshot, epoch)
        else:
            loss = self._plain_backward(plan, batches, snapshot, epoch)
        self._optimizer_step()
        return loss

    def _embed(self, batch) -> torch.Tensor:
        with autocast(self.device, self.precision):
            return self.model(to_device(batch, self.device))  # (chunk_size, dim)

    def _loss(self, local_embeddings, plan: StepPlan, snapshot: dict, epoch: int):
        """The global batch's loss from this rank's embeddings, and its value; stops on NaN."""
        embeddings = gather_with_grad(local_embeddings, plan.sizes)  # (batch_size, dim)
        rows = torch.from_numpy(plan.indices).to(self.device)
        targets = self.teacher_embeddings[rows]  # (batch_size, dim)
        loss = self.batch_loss(embeddings, targets, plan.indices)
        # One device sync a step, which the history needs anyway.
        value = float(loss.detach())
        if not math.isfinite(value):
            self.state.restore(snapshot)
            raise diverged_error(f"training loss became {value}", epoch)
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
                random_states.append(ReplayableRandomState(self.device))
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
            all_reduce_mean_([parameter.grad for parameter in state.logit_scale.parameters()])
        if state.scaler is None:
            state.optimizer.step()
        else:
            state.scaler.step(state.optimizer)
            state.scaler.update()
        if state.logit_scale is not None:
            state.logit_scale.clamp_()
