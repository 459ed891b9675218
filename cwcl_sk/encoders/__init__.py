"""Encoders: frozen teachers, trainable students, their projection head, and the alias registry.

- ``teachers/``: frozen encoders of the teacher side (text, images, precomputed embeddings);
- ``students/``: trainable encoders of the student side (audio, images, text, numeric
  features);
- ``heads.py``: the projection head and L2 normalisation every student ends in;
- ``vision.py``: image preprocessing shared by the ViT student and image teachers;
- ``convert/``: converters of pretrained checkpoints into loadable folders (Whisper);
- ``registry.py``: the aliases, the one place that knows names.
"""

from . import _moved
from .convert.whisper import convert_ctranslate2_whisper, whisper_tiny_en_path
from .heads import EmbeddingModel
from .registry import STUDENTS, TEACHERS, make_student, make_teacher, student_inputs
from .students.generic import MLP
from .teachers.frozen import FrozenTeacher, clear_teacher_cache
from .teachers.text import bundled_minilm_path

_moved.install()

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
