"""Encoders: frozen teachers, trainable students, and the alias registry."""

from .frozen import FrozenTeacher, clear_teacher_cache
from .generic import MLP, EmbeddingModel
from .registry import STUDENTS, TEACHERS, make_student, make_teacher, student_inputs
from .text import bundled_minilm_path

__all__ = [
    "MLP",
    "STUDENTS",
    "TEACHERS",
    "EmbeddingModel",
    "FrozenTeacher",
    "bundled_minilm_path",
    "clear_teacher_cache",
    "make_student",
    "make_teacher",
    "student_inputs",
]
