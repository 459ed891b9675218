"""The learnable temperature: a module holding CLIP's log logit scale."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MAX_LOGIT_SCALE", "LogitScale"]

MAX_LOGIT_SCALE = math.log(100.0)
"""Upper clamp of a learnable log logit scale, log(1 / temperature), as in CLIP/open_clip."""


class LogitScale(nn.Module):
    """A learnable softmax temperature, trained as its log logit scale log(1 / temperature).

    As open_clip's ``logit_scale``: the optimiser trains :attr:`log_scale` (without weight
    decay, which would pull the temperature towards 1) and the training loop calls
    :meth:`clamp_` after every step, so that the temperature never falls below
    ``exp(-maximum)`` (0.01 by default).

    Parameters
    ----------
    temperature : float
        The starting temperature, > 0.
    maximum : float, default=MAX_LOGIT_SCALE
        Upper clamp of the log logit scale.

    Attributes
    ----------
    log_scale : torch.nn.Parameter of shape ()
        log(1 / temperature), in float32.

    Examples
    --------
    >>> scale = LogitScale(0.07)
    >>> round(scale.temperature, 6)
    0.07
    >>> float(scale()) == scale.temperature  # the temperature tensor the loss divides by
    True
    """

    def __init__(self, temperature: float, maximum: float = MAX_LOGIT_SCALE):
        super().__init__()
        self.maximum = float(maximum)
        # float64 log, then float32: exp(-scale) in float64 maps back to the same float32,
        # so a temperature saved as JSON resumes the exact logit scale.
        self.log_scale = nn.Parameter(torch.tensor(-math.log(temperature), dtype=torch.float32))

    def forward(self) -> torch.Tensor:
        """The temperature exp(-log_scale), differentiable with respect to the scale."""
        return torch.exp(-self.log_scale)

    @property
    def temperature(self) -> float:
        """The current temperature as a float."""
        return math.exp(-float(self.log_scale.detach()))

    def set_temperature(self, temperature: float) -> None:
        """Set the scale in place (an optimiser holding it keeps its reference)."""
        with torch.no_grad():
            self.log_scale.fill_(-math.log(temperature))

    def clamp_(self) -> None:
        """Clamp the scale to at most :attr:`maximum`, after an optimiser step."""
        with torch.no_grad():
            self.log_scale.clamp_(max=self.maximum)
