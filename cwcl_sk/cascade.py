"""The ASR cascade: the baseline a user would pick instead of an aligned speech student.

Whisper transcribes each clip with greedy decoding, the teacher embeds the transcript, and the
nearest label embedding is the prediction. Nothing is trained, so the cascade is what the
aligned student must beat (or match at lower cost) to be worth its fit.

- :func:`transcribe`: clips to text;
- :class:`TranscriptEmbedder`: clips to the teacher's embedding of their transcript, with the
  ``fit`` / ``transform`` / ``embed_teacher`` of an aligner, so that
  :class:`~cwcl_sk.ZeroShotClassifier` classifies with it as with a fitted aligner;
- :class:`TranscribeThenEmbed`: that classifier, with the cascade's settings as parameters.

Importing this module is cheap: transformers and the models are loaded on first use.
"""

from __future__ import annotations

import contextlib
import functools
import os
from numbers import Integral
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._validation import InstanceOf, Interval, validate_parameters
from .zero_shot import ZeroShotClassifier

__all__ = ["TranscribeThenEmbed", "TranscriptEmbedder", "transcribe"]

# Whisper's encoder has positions for 30 s of audio; longer clips would need long-form
# decoding, which a short-command baseline does not need, so they are refused rather than cut.
_MAX_SECONDS = 30.0


@functools.lru_cache(maxsize=2)
def _whisper_for_generation(name_or_path: str, device: str):
    """The checkpoint's processor and model, loaded once per process and device."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from .encoders._loading import quiet_transformers

    with quiet_transformers():
        processor = WhisperProcessor.from_pretrained(name_or_path, local_files_only=True)
        model = WhisperForConditionalGeneration.from_pretrained(name_or_path, local_files_only=True)
    return processor, model.to(device).eval()


@contextlib.contextmanager
def _generation_warnings_silenced():
    """Hide transformers' notes about its own Whisper generation defaults, which it emits on
    every call and which say nothing about the caller's input."""
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)


def _check_positive_int(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument} must be a positive integer, got {value!r}.")
    return int(value)


def transcribe(
    clips,
    name_or_path=None,
    *,
    sampling_rate=16000,
    batch_size=16,
    max_new_tokens=64,
    device="cpu",
) -> list[str]:
    """Transcribe speech clips with Whisper, greedy decoding, English, no timestamps.

    Parameters
    ----------
    clips : list of array-like, ndarray of shape (n_clips, n_samples), or list of paths
        Anything :func:`cwcl_sk.inputs.load_audio` accepts; resampled to 16 kHz. Each clip
        must be at most 30 s long.
    name_or_path : str or path-like, optional
        A local folder holding a transformers ``WhisperForConditionalGeneration`` checkpoint
        with its processor. Defaults to Whisper tiny.en from
        :func:`cwcl_sk.encoders.convert.whisper.whisper_tiny_en_path` (offline).
    sampling_rate : int, default=16000
        Sampling rate (Hz) of clips given as arrays.
    batch_size : int, default=16
        Clips decoded together.
    max_new_tokens : int, default=64
        Most tokens generated per clip (a short command needs about 10).
    device : str, default="cpu"
        The torch device to decode on.

    Returns
    -------
    transcripts : list of str
        One stripped transcript per clip, in order.

    Raises
    ------
    ValueError
        Bad clips (see ``load_audio``), a clip longer than 30 s, or a non-positive
        ``batch_size`` / ``max_new_tokens``.
    ImportError
        When ``name_or_path`` is omitted and the package that ships Whisper tiny.en is missing.

    See Also
    --------
    TranscribeThenEmbed : Transcribe, embed with the teacher, nearest label.

    Examples
    --------
    >>> import numpy as np
    >>> from cwcl_sk.cascade import transcribe
    >>> transcribe([np.zeros(16000, dtype=np.float32)])  # doctest: +SKIP
    ['']
    """
    import torch

    from .inputs import load_audio

    batch_size = _check_positive_int(batch_size, "batch_size")
    max_new_tokens = _check_positive_int(max_new_tokens, "max_new_tokens")
    if name_or_path is None:
        from .encoders.convert.whisper import whisper_tiny_en_path

        name_or_path = whisper_tiny_en_path()
    processor, model = _whisper_for_generation(os.fspath(Path(name_or_path).expanduser()), device)
    target_rate = processor.feature_extractor.sampling_rate
    waveforms = load_audio(clips, sampling_rate, "clips", target_sampling_rate=target_rate)
    for index, waveform in enumerate(waveforms):
        if len(waveform) > _MAX_SECONDS * target_rate:
            raise ValueError(
                f"clips[{index}] is {len(waveform) / target_rate:.1f} s long; transcribe takes "
                f"clips of at most {_MAX_SECONDS:.0f} s (Whisper's window)."
            )
    # English, no timestamps, greedy: multilingual checkpoints are told the language, while
    # English-only ones refuse a language argument.
    multilingual = getattr(model.generation_config, "is_multilingual", False)
    language = {"language": "en", "task": "transcribe"} if multilingual else {}
    transcripts: list[str] = []
    with torch.inference_mode(), _generation_warnings_silenced():
        for start in range(0, len(waveforms), batch_size):
            batch = waveforms[start : start + batch_size]
            features = processor.feature_extractor(
                batch, sampling_rate=target_rate, return_tensors="pt"
            ).input_features.to(device)  # (batch, n_mels, 3000)
            # Every frame counts: Whisper was trained on clips padded to 30 s, padding included.
            frames = torch.ones(features.shape[0], features.shape[-1], dtype=torch.long)
            tokens = model.generate(
                features,
                attention_mask=frames.to(device),
                do_sample=False,
                num_beams=1,
                max_new_tokens=max_new_tokens,
                return_timestamps=False,
                **language,
            )
            decoded = processor.batch_decode(tokens, skip_special_tokens=True)
            transcripts.extend(text.strip() for text in decoded)
    return transcripts


# The parameters shared by the embedder and the classifier, and what each accepts.
_CASCADE_CONSTRAINTS = {
    "teacher": ["no_validation"],  # resolved by the registry, which lists the aliases
    "name_or_path": [None, InstanceOf((str, os.PathLike), "a folder path (str or path-like)")],
    "sampling_rate": [Interval(Integral, 1000, 384_000, closed="both")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "max_new_tokens": [Interval(Integral, 1, None, closed="left")],
    "device": [InstanceOf(str, "a torch device name such as 'cpu' or 'cuda'")],
}


class TranscriptEmbedder(TransformerMixin, BaseEstimator):
    """Embed speech as the teacher's embedding of its Whisper transcript.

    The first two stages of the ASR cascade, shaped as an aligner that needs no training:
    ``fit`` only loads the teacher, :meth:`transform` transcribes the clips (see
    :func:`transcribe`) and embeds the transcripts, and :meth:`embed_teacher` embeds label
    texts in the same space, so :class:`~cwcl_sk.ZeroShotClassifier` takes it as its aligner.

    Parameters
    ----------
    teacher : str or SentenceTransformer, default="minilm"
        The text encoder, as :class:`~cwcl_sk.CWCLAligner`'s ``teacher`` (``"minilm"`` and
        ``"bert"`` are the bundled all-MiniLM-L6-v2).
    name_or_path : str or path-like, optional
        The Whisper checkpoint folder; None is Whisper tiny.en (offline).
    sampling_rate : int, default=16000
        Sampling rate (Hz) of clips given as arrays.
    batch_size : int, default=16
        Clips decoded together.
    max_new_tokens : int, default=64
        Most tokens generated per clip.
    device : str, default="cpu"
        Where Whisper and the teacher run.

    Attributes
    ----------
    teacher_ : FrozenTeacher
        The loaded teacher.

    See Also
    --------
    TranscribeThenEmbed : The whole cascade as a classifier.

    Examples
    --------
    >>> from cwcl_sk import ZeroShotClassifier
    >>> from cwcl_sk.cascade import TranscriptEmbedder
    >>> clf = ZeroShotClassifier(TranscriptEmbedder(), labels={0: "zero", 1: "one"})
    >>> clf.fit(clips, digits).predict(clips)  # doctest: +SKIP
    """

    _parameter_constraints: ClassVar[dict] = _CASCADE_CONSTRAINTS

    def __init__(
        self,
        teacher="minilm",
        name_or_path=None,
        *,
        sampling_rate=16000,
        batch_size=16,
        max_new_tokens=64,
        device="cpu",
    ):
        self.teacher = teacher
        self.name_or_path = name_or_path
        self.sampling_rate = sampling_rate
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.device = device

    def fit(self, X=None, y=None):
        """Load the teacher; nothing is trained.

        Parameters
        ----------
        X, y : ignored
            Accepted so that the embedder fits wherever an aligner does.

        Returns
        -------
        self : TranscriptEmbedder
        """
        from .encoders.registry import make_teacher

        validate_parameters(self)
        self.teacher_ = make_teacher(self.teacher, {}, self.device)
        return self

    def transcribe(self, X) -> list[str]:
        """The Whisper transcript of each clip (:func:`transcribe` with these settings).

        Parameters
        ----------
        X : list of array-like, ndarray of shape (n_clips, n_samples), or list of paths

        Returns
        -------
        transcripts : list of str
        """
        return transcribe(
            X,
            self.name_or_path,
            sampling_rate=self.sampling_rate,
            batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens,
            device=self.device,
        )

    def transform(self, X) -> np.ndarray:
        """Transcribe the clips and embed the transcripts with the teacher.

        Parameters
        ----------
        X : list of array-like, ndarray of shape (n_clips, n_samples), or list of paths

        Returns
        -------
        embeddings : ndarray of shape (n_clips, dim), dtype float32
            Unit-norm rows.
        """
        check_is_fitted(self, "teacher_")
        return self.teacher_.encode(self.transcribe(X), "transcripts of X")

    def embed_teacher(self, y) -> np.ndarray:
        """Embed texts (label prompts) with the teacher.

        Parameters
        ----------
        y : sequence of str

        Returns
        -------
        embeddings : ndarray of shape (n_samples, dim), dtype float32
        """
        check_is_fitted(self, "teacher_")
        return self.teacher_.encode(y, "y")


class TranscribeThenEmbed(ZeroShotClassifier):
    """The ASR cascade as a classifier: transcribe, embed the transcript, nearest label.

    A :class:`~cwcl_sk.ZeroShotClassifier` whose aligner is a :class:`TranscriptEmbedder`
    built from this estimator's parameters: labels, templates (prompt ensembling) and
    probabilities work as they do there. Nothing is trained: ``fit`` records the classes and
    embeds the label prompts. It is the baseline a user would pick instead of aligning a
    speech student (``benchmarks/asr_cascade.py`` compares the two).

    Parameters
    ----------
    labels : dict, callable or None, default=None
        The text of each class, as :class:`~cwcl_sk.ZeroShotClassifier` takes it.
    templates : str or list of str, default="{}"
        Prompt templates, each containing ``{}`` once.
    teacher : str or SentenceTransformer, default="minilm"
        The text encoder.
    name_or_path : str or path-like, optional
        The Whisper checkpoint folder; None is Whisper tiny.en (offline).
    sampling_rate : int, default=16000
    batch_size : int, default=16
    max_new_tokens : int, default=64
    device : str, default="cpu"
    temperature : float, default=0.07
        Temperature of the softmax in ``predict_proba`` (the cascade has no training
        temperature to inherit).

    Attributes
    ----------
    aligner_ : TranscriptEmbedder
    classes_ : ndarray of shape (n_classes,)
    class_texts_ : list of str
    class_embeddings_ : ndarray of shape (n_classes, dim)

    See Also
    --------
    transcribe : The first stage alone.
    cwcl_sk.ZeroShotClassifier : The same classification through an aligned student.

    Examples
    --------
    >>> from cwcl_sk.cascade import TranscribeThenEmbed
    >>> clf = TranscribeThenEmbed(labels={0: "zero", 1: "one"}, templates=["{}", "the number {}"])
    >>> clf.fit(None, [0, 1]).predict(clips)  # doctest: +SKIP
    """

    _parameter_constraints: ClassVar[dict] = {
        **{
            name: constraint
            for name, constraint in ZeroShotClassifier._parameter_constraints.items()
            if name != "aligner"
        },
        **_CASCADE_CONSTRAINTS,
    }

    def __init__(
        self,
        labels=None,
        templates="{}",
        *,
        teacher="minilm",
        name_or_path=None,
        sampling_rate=16000,
        batch_size=16,
        max_new_tokens=64,
        device="cpu",
        temperature=0.07,
    ):
        self.labels = labels
        self.templates = templates
        self.teacher = teacher
        self.name_or_path = name_or_path
        self.sampling_rate = sampling_rate
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.temperature = temperature

    @property
    def aligner(self) -> TranscriptEmbedder:
        """The unfitted embedder that ``fit`` fits, from this estimator's parameters."""
        return TranscriptEmbedder(**{name: getattr(self, name) for name in _CASCADE_CONSTRAINTS})
