"""Validate, load and batch the data a user passes to the estimators, per modality.

Every error raised here names the argument (``X``, ``y``, ``labels``...) and says what was
expected, so that a mistake surfaces at the call site and never as a crash deep in torch.
Each student modality has an input handler (``kind``, ``prepare``, ``collate``): the whole set
is validated and converted once per fit, and batches are cut from it by index.
"""

from .arrays import (
    FeatureInputs,
    check_embeddings,
    check_features,
    check_same_length,
    count_samples,
    is_integer,
    unique_float_rows,
    unique_rows,
)
from .audio import (
    AudioFiles,
    AudioInputs,
    LogMelInputs,
    clip_source,
    load_audio,
    log_mel_spectrogram,
    pad_batch,
)
from .clip_store import ClipStore, spool_pairs
from .images import ImageFiles, ImageInputs, ImageItem, load_images, resize_images
from .sources import (
    BadInputError,
    ClipSource,
    InputSource,
    MappedInputs,
    Subset,
    find_bad_inputs,
)
from .text import (
    TokenizedTextInputs,
    check_texts,
    count_truncated_texts,
    warn_truncated_texts,
)

__all__ = [
    "AudioFiles",
    "AudioInputs",
    "BadInputError",
    "ClipSource",
    "ClipStore",
    "FeatureInputs",
    "ImageFiles",
    "ImageInputs",
    "ImageItem",
    "InputSource",
    "LogMelInputs",
    "MappedInputs",
    "Subset",
    "TokenizedTextInputs",
    "check_embeddings",
    "check_features",
    "check_same_length",
    "check_texts",
    "clip_source",
    "count_samples",
    "count_truncated_texts",
    "find_bad_inputs",
    "is_integer",
    "load_audio",
    "load_images",
    "log_mel_spectrogram",
    "pad_batch",
    "resize_images",
    "spool_pairs",
    "unique_float_rows",
    "unique_rows",
    "warn_truncated_texts",
]
