"""The ASR cascade: the baseline a user would pick instead of an aligned speech student.

Whisper transcribes each clip with greedy decoding, the teacher embeds the transcript, and the
nearest label embedding is the prediction. Nothing is trained, so the cascade is what the
aligned student must beat (or match at lower cost) to be worth its fit.

Importing this module is cheap: transformers and the model are loaded on first use.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import numpy as np

__all__ = ["transcribe"]

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
