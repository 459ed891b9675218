"""scikit-learn's output API for the aligner: feature names, ``set_output`` and tags.

:meth:`get_feature_names_out` names the embedding columns as scikit-learn's own projections
do (``PCA`` gives ``pca0, pca1, ...``), which is what ``set_output(transform="pandas")`` needs
to wrap :meth:`transform` in a data frame. The tags tell scikit-learn's checks and
meta-estimators what ``X`` and ``y`` may hold for the chosen student and teacher.
"""

from __future__ import annotations

from sklearn.base import ClassNamePrefixFeaturesOutMixin
from torch import nn

from .encoders import STUDENTS
from .encoders.students.audio import speech_inputs
from .encoders.students.image import cnn_inputs, vit_inputs
from .encoders.students.text import text_inputs

__all__ = ["EmbeddingOutputMixin", "input_kind"]

# The kind of inputs each student input handler reads; handler classes say it themselves.
_HANDLER_KINDS = {
    speech_inputs: "audio",
    cnn_inputs: "image",
    vit_inputs: "image",
    text_inputs: "text",
}


def input_kind(student) -> str | None:
    """What a ``student`` value reads: "features", "audio", "image", "text" or None (unknown).

    Decided from the registry without building anything, so that tags of an unfitted
    estimator cost nothing (the transformer students' handlers read files to be built).
    """
    if isinstance(student, nn.Module):
        return "features"
    if not isinstance(student, str) or student not in STUDENTS:
        return None
    handler = STUDENTS[student].inputs
    return getattr(handler, "kind", None) or _HANDLER_KINDS.get(handler)


class EmbeddingOutputMixin(ClassNamePrefixFeaturesOutMixin):
    """Feature names of the embedding columns, and tags for pairs of student and teacher inputs.

    For :class:`~cwcl_sk.CWCLAligner`: ``get_feature_names_out()`` gives
    ``cwclaligner0 ... cwclaligner{embedding_dim_ - 1}``, and with it
    ``set_output(transform="pandas")`` makes :meth:`transform` return a data frame.
    """

    @property
    def _n_features_out(self) -> int:
        # Read by ClassNamePrefixFeaturesOutMixin; missing before fit (NotFittedError).
        return self.embedding_dim_

    def _output_tags(self, tags):
        """``tags`` completed for a transformer of the student's inputs with teacher-side y."""
        tags.target_tags.required = True
        if self.teacher == "precomputed":
            tags.target_tags.two_d_labels = True  # y: (n_samples, dim) embeddings
        elif isinstance(self.teacher, str):
            tags.target_tags.one_d_labels = True  # y: one text (or image) per sample
        # Embeddings are float32 whatever the input precision (the student computes in it).
        tags.transformer_tags.preserves_dtype = ["float32"]
        kind = input_kind(self.student)
        tags.input_tags.two_d_array = kind == "features"
        # Audio, image and text students read lists of clips, images or texts, or file paths.
        tags.input_tags.string = kind in ("audio", "image", "text")
        tags.input_tags.three_d_array = kind == "image"
        return tags
