"""Encoders: frozen teachers, trainable students, and the alias registry."""

from .frozen import FrozenTeacher, clear_teacher_cache
from .generic import MLP, EmbeddingModel
from .registry import STUDENTS, TEACHERS, make_student, make_teacher, student_inputs
from .text import bundled_minilm_path
from .whisper_convert import convert_ctranslate2_whisper, whisper_tiny_en_path

__all__ = [
    "MLP",
    "STUDENTS",
    "TEACHERS",
    "EmbeddingModel",
    "FrozenTeacher",
    "bundled_minilm_path",
    "clear_teacher_cache",
    "convert_ctranslate2_whisper",
    "make_student",
    "make_teacher",
    "student_inputs",
    "whisper_tiny_en_path",
]
