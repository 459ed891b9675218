"""cwcl_sk: cross-modal transfer with the Continuously Weighted Contrastive Loss.

Train a student encoder (speech, images, features) into the embedding space of a frozen
teacher (usually a text encoder), then solve any task whose classes can be written as text
zero-shot. scikit-learn estimators: :class:`CWCLAligner` and :class:`ZeroShotClassifier`,
and the ASR cascade baseline :class:`TranscribeThenEmbed`.
"""

from ._version import __version__
from .aligner import CWCLAligner
from .cascade import TranscribeThenEmbed
from .encoders import STUDENTS, TEACHERS, clear_teacher_cache
from .export import export_onnx, onnx_inputs
from .inputs import ClipStore, spool_pairs
from .kernels import (
    CappedExpKernel,
    ExpKernel,
    IdentityKernel,
    LinearKernel,
    MixtureKernel,
    PerplexityKernel,
    WeightKernel,
    label_weights,
)
from .losses import ContrastiveLoss, CWCLLoss, contrastive_loss, cwcl_loss
from .metrics import recall_at_k
from .zero_shot import ZeroShotClassifier

__all__ = [
    "STUDENTS",
    "TEACHERS",
    "CWCLAligner",
    "CWCLLoss",
    "CappedExpKernel",
    "ClipStore",
    "ContrastiveLoss",
    "ExpKernel",
    "IdentityKernel",
    "LinearKernel",
    "MixtureKernel",
    "PerplexityKernel",
    "TranscribeThenEmbed",
    "WeightKernel",
    "ZeroShotClassifier",
    "__version__",
    "clear_teacher_cache",
    "contrastive_loss",
    "cwcl_loss",
    "export_onnx",
    "label_weights",
    "onnx_inputs",
    "recall_at_k",
    "spool_pairs",
]
