"""Learning-rate schedules: how the AdamW learning rate moves over one call to ``fit``.

A schedule is a pure function of how far training has gone, so that an interrupted run
resumed from a checkpoint takes exactly the learning rates the uninterrupted run would have,
with no scheduler state to save.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LR_SCHEDULES", "LearningRateSchedule"]

#: The shapes :class:`LearningRateSchedule` knows.
LR_SCHEDULES = ("constant", "cosine", "linear")


@dataclass(frozen=True)
class LearningRateSchedule:
    """The learning rate of every optimiser step of a planned run of ``n_epochs`` epochs.

    After ``warmup`` (a fraction of the run's steps) during which the rate climbs linearly
    from ``learning_rate / warmup_steps`` to ``learning_rate``, the rate

    - ``"constant"``: stays at ``learning_rate``;
    - ``"cosine"``: follows half a cosine towards 0 at the end of the run (CLIP, LiT);
    - ``"linear"``: falls linearly towards 0 at the end of the run (BERT fine-tuning).

    Parameters
    ----------
    shape : {"constant", "cosine", "linear"}
    learning_rate : float
        The peak rate.
    warmup : float in [0, 1)
        Fraction of the run's steps spent warming up.
    first_epoch : int
        Number (from 1, as in ``history_``) of the run's first epoch: a resumed run starts
        part-way through its schedule.
    n_epochs : int
        Epochs the schedule spans.

    Examples
    --------
    >>> schedule = LearningRateSchedule("cosine", 1e-3, warmup=0.0, first_epoch=1, n_epochs=2)
    >>> [round(schedule(epoch, step, 2), 6) for epoch in (1, 2) for step in (0, 1)]
    [0.001, 0.000854, 0.0005, 0.000146]
    """

    shape: str
    learning_rate: float
    warmup: float
    first_epoch: int
    n_epochs: int

    def __call__(self, epoch: int, step: int, steps_per_epoch: int) -> float:
        """The rate of step ``step`` (from 0) of epoch ``epoch`` (from 1)."""
        total = max(1, self.n_epochs * steps_per_epoch)
        done = (epoch - self.first_epoch) * steps_per_epoch + step  # steps before this one
        done = min(max(done, 0), total - 1)
        warmup_steps = self.warmup * total
        if done < warmup_steps:
            # Climb to the peak by the end of warm-up; never 0, so the first step moves.
            return self.learning_rate * (done + 1) / math.ceil(warmup_steps)
        if self.shape == "constant":
            return self.learning_rate
        decay_steps = total - warmup_steps
        progress = (done - warmup_steps) / decay_steps if decay_steps > 0 else 0.0
        if self.shape == "cosine":
            return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.learning_rate * (1.0 - progress)
