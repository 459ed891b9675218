"""The arguments every loss takes, checked one way for the functions and the modules alike.

A loss reads a batch of ``N`` student and ``N`` teacher embeddings, a temperature and a
direction. The direction names are written here once: :data:`DIRECTIONS` lists them and
:func:`direction_terms` says which softmax terms each one uses.
"""

from __future__ import annotations

import math
import numbers

import torch

from .._embedding_batches import check_embedding_batch

__all__ = ["DIRECTIONS", "check_direction", "check_pair", "check_temperature", "direction_terms"]

DIRECTIONS: tuple[str, ...] = ("student_to_teacher", "teacher_to_student", "both")
"""Accepted values of the ``direction`` argument."""


def check_pair(student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor) -> None:
    """Raise unless both batches are (N, d) floating-point tensors of the same shape."""
    check_embedding_batch(student_embeddings, "student_embeddings")
    check_embedding_batch(teacher_embeddings, "teacher_embeddings")
    s_shape = tuple(student_embeddings.shape)
    t_shape = tuple(teacher_embeddings.shape)
    if s_shape[0] != t_shape[0]:
        raise ValueError(
            "student_embeddings and teacher_embeddings must have the same number of rows N "
            f"(one pair per item), got shapes {s_shape} and {t_shape}"
        )
    if s_shape[1] != t_shape[1]:
        raise ValueError(
            "student_embeddings and teacher_embeddings must have the same embedding dim d "
            f"(project them to a shared space first), got shapes {s_shape} and {t_shape}"
        )


def check_temperature(temperature: float | torch.Tensor) -> None:
    """Raise unless ``temperature`` is a finite float > 0 or a 0-dim tensor holding one."""
    if isinstance(temperature, torch.Tensor):
        if temperature.ndim != 0:
            raise ValueError(
                "temperature must be a float or a 0-dim tensor, got a tensor of shape "
                f"{tuple(temperature.shape)}"
            )
        value = float(temperature.detach())
    elif isinstance(temperature, numbers.Real) and not isinstance(temperature, bool):
        value = float(temperature)
    else:
        raise ValueError(
            f"temperature must be a finite float > 0 or a 0-dim tensor, got "
            f"{type(temperature).__name__}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"temperature must be finite and > 0, got {value!r}")


def check_direction(direction: str) -> None:
    """Raise unless ``direction`` is one of :data:`DIRECTIONS`."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")


def direction_terms(direction: str) -> tuple[bool, bool]:
    """``(rows, columns)``: whether ``direction`` uses the student-to-teacher softmax (rows)
    and the teacher-to-student one (columns); ``"both"`` uses the two and averages them."""
    return direction != "teacher_to_student", direction != "student_to_teacher"
