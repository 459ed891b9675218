"""What the loss modules share: a temperature, fixed or learned, and a direction."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._arguments import check_direction, check_temperature

__all__ = ["PairLoss"]


class PairLoss(nn.Module):
    """Base of the loss modules: a loss of two ``(N, d)`` batches at a temperature.

    Subclasses implement ``_loss(student_embeddings, teacher_embeddings, temperature)``.

    Parameters
    ----------
    temperature : float or 0-dim torch.Tensor
        Softmax temperature, finite and > 0; with ``learn_temperature=True`` its start.
    direction : {"both", "student_to_teacher", "teacher_to_student"}
        Which softmax direction(s) the loss uses.
    learn_temperature : bool
        Learn the temperature as CLIP does.
    """

    def __init__(self, temperature, direction: str, learn_temperature: bool) -> None:
        super().__init__()
        check_temperature(temperature)
        check_direction(direction)
        if not isinstance(learn_temperature, bool):
            raise TypeError(
                f"learn_temperature must be True or False, got {type(learn_temperature).__name__}"
            )
        self.direction = direction
        self.learn_temperature = learn_temperature
        if learn_temperature:
            # CLIP's parametrisation: the optimiser steps log(1 / temperature), so no step
            # can make the temperature negative; clamp it in the loop as open_clip does.
            start = float(temperature.detach()) if torch.is_tensor(temperature) else temperature
            self.logit_scale = nn.Parameter(torch.tensor(-math.log(float(start))))
            self.fixed_temperature = None
        else:
            self.fixed_temperature = temperature

    def forward(
        self, student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor
    ) -> torch.Tensor:
        """The loss of one batch of pairs.

        Parameters
        ----------
        student_embeddings : torch.Tensor of shape (N, d)
            Trainable student embeddings; normalised inside.
        teacher_embeddings : torch.Tensor of shape (N, d)
            The teacher's embeddings of the same ``N`` items; normalised inside.

        Returns
        -------
        torch.Tensor
            Non-negative scalar loss, float32 (float64 for float64 inputs).
        """
        # student_embeddings: (batch_size, embedding_dim), teacher_embeddings: the same
        return self._loss(student_embeddings, teacher_embeddings, self.temperature)

    def _loss(self, student_embeddings, teacher_embeddings, temperature) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _loss")

    @property
    def temperature(self) -> float | torch.Tensor:
        """The temperature of the next forward pass: ``exp(-logit_scale)`` when learned."""
        if self.learn_temperature:
            return self.logit_scale.neg().exp()
        return self.fixed_temperature

    def extra_repr(self) -> str:
        if self.learn_temperature:
            temperature = f"temperature={float(self.temperature.detach()):.4g} (learned)"
        else:
            temperature = f"temperature={self.fixed_temperature!r}"
        return f"{temperature}, direction={self.direction!r}"
