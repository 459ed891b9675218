"""Audio inputs: clips given as arrays or files, validated and loaded in one place.

Every audio student reads its ``X`` through :func:`load_audio`, which accepts

- a list of 1-D float arrays (clips of any lengths) at the aligner's ``sampling_rate``,
- a 2-D float array of shape (n_clips, n_samples),
- a list of file paths (``str`` or :class:`pathlib.Path`; wav, flac, ogg, mp3: whatever
  soundfile or librosa decode), resampled to the target rate and mixed down to mono,

and raises an error naming the argument and the clip (``X[3] is an empty clip (0 samples)``)
for anything else. Two handlers cut batches from the loaded clips, padded to the longest clip
of the batch with an attention mask (1 = real sample or frame, 0 = padding):

- :class:`AudioInputs` gives waveforms (speech transformers: wav2vec2, HuBERT, Whisper);
- :class:`LogMelInputs` gives log-mel spectrograms, computed once per ``prepare`` (mel-cnn).
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import warnings
from pathlib import Path

import librosa
import numpy as np
import soundfile
import torch

from .arrays import split_items
from .sources import (
    ClipSource,
    InputSource,
    MappedInputs,
    existing_paths,
    files_fingerprint,
    is_path_list,
)

__all__ = [
    "AudioFiles",
    "AudioInputs",
    "LogMelInputs",
    "clip_source",
    "load_audio",
    "log_mel_spectrogram",
    "pad_batch",
]

# A 2-D array with this many columns or fewer is a clip with channels as columns (mono or
# stereo), never a set of clips: no clip is 1 or 2 samples long.
_MAX_CHANNELS_MISREAD = 2

_EXPECTED = (
    "a list of 1-D float arrays (one clip each), a 2-D float array (n_clips, n_samples) or a "
    "list of audio file paths"
)


def load_audio(
    X,
    sampling_rate: int = 16000,
    argument: str = "X",
    *,
    target_sampling_rate: int | None = None,
    min_samples: int = 1,
) -> list[np.ndarray]:
    """Validate audio clips and load them as mono float32 arrays at one sampling rate.

    Parameters
    ----------
    X : list of array-like, ndarray of shape (n_clips, n_samples), or list of paths
        Arrays are taken to be sampled at ``sampling_rate``; files are decoded at their own
        rate. Every clip ends up at ``target_sampling_rate``.
    sampling_rate : int, default=16000
        Sampling rate (Hz) of clips given as arrays.
    argument : str, default="X"
        Name used in error messages.
    target_sampling_rate : int, optional
        The rate the clips are returned at (a pretrained model's rate); defaults to
        ``sampling_rate``. Arrays at another rate and all files are resampled with librosa.
    min_samples : int, default=1
        The shortest clip accepted, in samples at ``target_sampling_rate`` (a model's
        receptive field).

    Returns
    -------
    clips : list of ndarray of shape (n_samples_i,), dtype float32
        Integer arrays are converted to float unscaled (divide 16-bit PCM by 32768 first if
        you want it in [-1, 1]).

    Raises
    ------
    ValueError
        Empty ``X``, an empty or too short clip, NaN or inf samples, arrays of the wrong
        dimensionality (with a hint for a single 1-D clip), complex samples, an undecodable
        file.
    TypeError
        Non-numeric samples, or paths mixed with arrays in one list.
    FileNotFoundError
        A path that does not exist.

    Examples
    --------
    >>> import numpy as np
    >>> from cwcl_sk.inputs import load_audio
    >>> clips = load_audio([np.zeros(800), np.ones(400)], sampling_rate=8000,
    ...                    target_sampling_rate=16000)
    >>> [clip.shape for clip in clips]
    [(1600,), (800,)]
    """
    target = int(target_sampling_rate or sampling_rate)
    items = _as_items(X, argument)
    is_path = [isinstance(item, str | os.PathLike) for item in items]
    if any(is_path) and not all(is_path):
        path_index = is_path.index(True)
        other_index = is_path.index(False)
        raise TypeError(
            f"{argument} mixes file paths and arrays: {argument}[{path_index}] is a path and "
            f"{argument}[{other_index}] is {type(items[other_index]).__name__}. Pass either "
            "paths or arrays."
        )
    clips = []
    for index, item in enumerate(items):
        name = f"{argument}[{index}]"
        if is_path[index]:
            clip, rate = _read_file(item, target, name), target
        else:
            clip, rate = _check_clip(item, name), int(sampling_rate)
        clips.append(_at_rate(clip, name, rate, target, min_samples))
    return clips


def _at_rate(clip, name: str, rate: int, target: int, min_samples: int) -> np.ndarray:
    """A checked clip at ``rate`` Hz resampled to ``target``, rejected if too short."""
    if rate != target:
        clip = librosa.resample(clip, orig_sr=rate, target_sr=target)
    if clip.size < min_samples:
        raise ValueError(
            f"{name} is too short: {clip.size} samples at {target} Hz "
            f"({1000 * clip.size / target:.1f} ms); this student needs at least "
            f"{min_samples} ({1000 * min_samples / target:.1f} ms)."
        )
    return np.ascontiguousarray(clip, dtype=np.float32)


def clip_source(X, sampling_rate: int, argument: str = "X", min_samples: int = 1):
    """``X`` as an :class:`~cwcl_sk.inputs.InputSource` read on demand, or None to load it now.

    A clip source is kept as it is (resampled on reading when its rate is not
    ``sampling_rate``), and a list of file paths becomes :class:`~cwcl_sk.inputs.AudioFiles`:
    the files are decoded when a batch needs them, so that memory holds batches, never the
    corpus. Every other form (arrays, lists of arrays) returns None: those clips are already
    in memory and are checked once by :func:`load_audio`.

    Parameters
    ----------
    X : object
        What the user passed.
    sampling_rate : int
        The rate the student reads clips at.
    argument : str, default="X"
    min_samples : int, default=1
        Shorter clips are rejected, by index, when they are read.

    Returns
    -------
    source : InputSource or None
    """
    if isinstance(X, InputSource) and X.sampling_rate is not None:
        source = X
    elif is_path_list(X):
        source = AudioFiles(X, sampling_rate, argument)
    else:
        return None
    return MappedInputs(
        source,
        functools.partial(
            _check_read_clip,
            rate=int(source.sampling_rate),
            target=int(sampling_rate),
            min_samples=int(min_samples),
        ),
        sampling_rate,
    )


def _check_read_clip(clip, name: str, *, rate: int, target: int, min_samples: int):
    """The checks of :func:`load_audio`, applied to one clip as a source returns it."""
    return _at_rate(_check_clip(clip, name), name, rate, target, min_samples)


def _as_items(X, argument: str) -> list:
    """Split ``X`` into one item per clip, rejecting the shapes that cannot be a set of clips."""
    if isinstance(X, str | os.PathLike):
        raise TypeError(
            f"{argument} is a single path ({X!r}); expected a list of clips. Pass [{argument}]."
        )

    def numeric_items(array: np.ndarray) -> list:
        _check_dtype(array, argument)
        if array.ndim == 1:
            raise ValueError(
                f"{argument} is a single 1-D array of {array.shape[0]} samples; expected a list "
                f"of clips. If it is one clip, pass [{argument}]; if it holds one number per "
                "sample, it is not audio."
            )
        if array.ndim != 2:
            raise ValueError(
                f"{argument} must be {_EXPECTED}; got a {array.ndim}-D array of shape "
                f"{array.shape}. Mix multi-channel audio down to mono first."
            )
        if array.shape[1] <= _MAX_CHANNELS_MISREAD:
            # (n_samples, 2) is how soundfile returns a stereo clip, and (n_samples, 1) a
            # mono one: read as rows, either would silently become n clips of 1 or 2 samples.
            raise ValueError(
                f"{argument} has shape {array.shape}: one clip with channels as columns, not "
                f"{array.shape[0]} clips of {array.shape[1]} sample(s). Pass a list of 1-D "
                f"clips: [{argument}.mean(axis=1)] (stereo mixed to mono) or "
                f"[{argument}[:, 0]] (a mono column); a set of clips is (n_clips, n_samples)."
            )
        return list(array)

    items = split_items(X, argument, _EXPECTED, "clip", numeric_items)
    if all(isinstance(item, numbers.Number) for item in items):
        raise ValueError(
            f"{argument} is a single list of {len(items)} numbers; expected a list of clips. "
            f"If it is one clip, pass [{argument}]."
        )
    return items


def _check_dtype(array: np.ndarray, name: str) -> None:
    if np.iscomplexobj(array):
        raise ValueError(
            f"Complex data not supported: {name} has dtype {array.dtype}; expected real samples."
        )
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} has dtype {array.dtype}; expected real numbers (float samples), or a path."
        )


def _check_clip(item, name: str) -> np.ndarray:
    """One clip given as an array: 1-D, real, finite, not empty."""
    if isinstance(item, bytes) or item is None or isinstance(item, numbers.Number):
        raise TypeError(
            f"{name} is {type(item).__name__}; expected a 1-D float array (a clip) or a path."
        )
    try:
        clip = np.asarray(item)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} could not be read as an array of samples: {error}") from None
    if clip.dtype == object or clip.dtype.kind in "USV":
        raise TypeError(
            f"{name} has dtype {clip.dtype}; expected a 1-D float array (a clip) or a path."
        )
    _check_dtype(clip, name)
    if clip.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of samples, got shape {clip.shape}. Mix multi-channel "
            "audio down to mono first (e.g. clip.mean(axis=0) for (channels, samples))."
        )
    clip = clip.astype(np.float32, copy=False)
    if clip.size == 0:
        raise ValueError(f"{name} is an empty clip (0 samples).")
    finite = np.isfinite(clip)
    if not finite.all():
        position = int(np.flatnonzero(~finite)[0])
        kind = "NaN" if np.isnan(clip[position]) else "inf"
        raise ValueError(f"{name} contains NaN or inf samples (first {kind} at sample {position}).")
    return clip


def _read_file(path, target_sampling_rate: int, name: str) -> np.ndarray:
    """Decode one file to mono float32 at ``target_sampling_rate``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such audio file: {str(path)!r}.")
    if not path.is_file():
        raise ValueError(f"{name} is not a file: {str(path)!r}.")
    try:
        # (n_frames, n_channels): soundfile reads wav, flac, ogg and (libsndfile >= 1.1) mp3.
        samples, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
        clip = samples.mean(axis=1)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as soundfile_error:
        clip, file_rate = _read_with_librosa(path, name, soundfile_error)
    if clip.size == 0:
        raise ValueError(f"{name} is an empty clip (0 samples): {str(path)!r}.")
    if file_rate != target_sampling_rate:
        clip = librosa.resample(clip, orig_sr=file_rate, target_sr=target_sampling_rate)
    if not np.isfinite(clip).all():
        raise ValueError(f"{name} contains NaN or inf samples after decoding {str(path)!r}.")
    return clip.astype(np.float32, copy=False)


def _read_with_librosa(path: Path, name: str, soundfile_error: Exception):
    """Fallback for formats libsndfile lacks: librosa's audioread backend."""
    try:
        with warnings.catch_warnings():
            # librosa warns that it falls back from soundfile; the fallback is deliberate.
            warnings.simplefilter("ignore")
            clip, file_rate = librosa.load(path, sr=None, mono=True)
    except Exception as error:
        raise ValueError(
            f"{name} could not be decoded as audio: {str(path)!r} ({soundfile_error}; "
            f"{type(error).__name__}: {error})."
        ) from error
    return clip, int(file_rate)


class AudioFiles(ClipSource):
    """Audio files decoded when a batch needs them (what a list of paths passed to ``fit`` is).

    Parameters
    ----------
    paths : sequence of str or path-like
        Every path must exist (checked here, so a typo fails before training starts);
        whether a file decodes is found when it is read.
    sampling_rate : int, default=16000
        Every file is resampled to this rate and mixed down to mono.
    argument : str, default="X"
        Name used in error messages.

    Examples
    --------
    >>> import numpy as np, soundfile, tempfile, os
    >>> from cwcl_sk.inputs import AudioFiles
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "clip.wav")
    >>> soundfile.write(path, np.zeros(800, dtype=np.float32), 8000)
    >>> clips = AudioFiles([path], sampling_rate=16000)
    >>> clips[0].shape
    (1600,)
    """

    def __init__(self, paths, sampling_rate: int = 16000, argument: str = "X"):
        self.paths = existing_paths(paths, argument, "audio")
        self.sampling_rate = int(sampling_rate)
        self.argument = argument

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> np.ndarray:
        return _read_file(Path(self.paths[index]), self.sampling_rate, f"{self.argument}[{index}]")

    def describe(self, index: int) -> str:
        return repr(self.paths[index])

    def fingerprint(self) -> str:
        return files_fingerprint(f"AudioFiles:{self.sampling_rate}", self.paths)


def pad_batch(sequences, pad_value=0, dtype=np.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack arrays of different lengths along a new batch axis, padding to the longest.

    Parameters
    ----------
    sequences : list of ndarray of shape (length_i, ...)
        Same trailing shape; lengths may differ.
    pad_value : scalar, default=0
        What fills the padding (zeros for audio, the tokenizer's pad id for token ids).
    dtype : NumPy dtype, default=np.float32
        Of the padded batch.

    Returns
    -------
    padded : torch.Tensor of shape (batch, max_length, ...), of ``dtype``
        Each sequence followed by ``pad_value`` up to the longest of the batch.
    attention_mask : torch.Tensor of shape (batch, max_length), dtype int64
        1 on real positions, 0 on padding.
    """
    lengths = [len(sequence) for sequence in sequences]
    trailing = sequences[0].shape[1:]
    padded = np.full((len(sequences), max(lengths), *trailing), pad_value, dtype=dtype)
    attention_mask = np.zeros((len(sequences), max(lengths)), dtype=np.int64)
    for row, (sequence, length) in enumerate(zip(sequences, lengths, strict=True)):
        padded[row, :length] = sequence
        attention_mask[row, :length] = 1
    return torch.from_numpy(padded), torch.from_numpy(attention_mask)


class AudioInputs:
    """Waveform inputs for speech transformers: clips loaded once, batched with masks.

    Parameters
    ----------
    sampling_rate : int, default=16000
        The aligner's ``sampling_rate``: the rate of clips given as arrays.
    model_sampling_rate : int, optional
        The rate the student expects (16 kHz for wav2vec2, HuBERT and Whisper); clips are
        resampled to it. Defaults to ``sampling_rate``.
    min_samples : int, default=1
        The student's receptive field in samples: shorter clips are rejected by index.

    Examples
    --------
    >>> import numpy as np
    >>> from cwcl_sk.inputs import AudioInputs
    >>> inputs = AudioInputs(sampling_rate=16000)
    >>> data = inputs.prepare([np.ones(3), np.ones(5)])
    >>> batch = inputs.collate(data, [0, 1])
    >>> batch["input_values"].shape, batch["attention_mask"].tolist()
    (torch.Size([2, 5]), [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    """

    kind = "audio"

    def __init__(
        self,
        sampling_rate: int = 16000,
        model_sampling_rate: int | None = None,
        min_samples: int = 1,
    ):
        self.sampling_rate = sampling_rate
        self.model_sampling_rate = model_sampling_rate
        self.min_samples = min_samples

    def prepare(self, X, argument: str = "X"):
        """Validate and load every clip (see :func:`load_audio`); called once per fit.

        A list of file paths, or a :class:`~cwcl_sk.inputs.ClipSource`, is not loaded: it is
        kept as a source that reads each clip when a batch needs it (see
        :func:`clip_source`).
        """
        target = self.model_sampling_rate or self.sampling_rate
        source = clip_source(X, target, argument, self.min_samples)
        if source is not None:
            return source
        return load_audio(
            X,
            self.sampling_rate,
            argument,
            target_sampling_rate=self.model_sampling_rate,
            min_samples=self.min_samples,
        )

    def collate(self, data: list[np.ndarray], indices) -> dict[str, torch.Tensor]:
        """The clips ``indices`` as ``input_values`` (batch, max_samples) and their mask."""
        input_values, attention_mask = pad_batch([data[index] for index in indices])
        return {"input_values": input_values, "attention_mask": attention_mask}


def _log_mel_of(clip, name, *, sampling_rate: int, n_mels: int, top_db: float) -> np.ndarray:
    """:func:`log_mel_spectrogram` with a source's ``(clip, name)`` signature (it pickles)."""
    return log_mel_spectrogram(clip, sampling_rate, n_mels, top_db)


def _fft_size(sampling_rate: int) -> int:
    """Samples in one FFT of a log-mel frame: the 25 ms window rounded up to a power of 2."""
    return 1 << math.ceil(math.log2(max(1, round(0.025 * sampling_rate))))


def log_mel_spectrogram(
    clip: np.ndarray, sampling_rate: int, n_mels: int = 40, top_db: float = 40.0
) -> np.ndarray:
    """Log-mel spectrogram of one clip: 25 ms windows every 10 ms, in dB below its loudest bin.

    Referring the decibels to the clip's own maximum (floored ``top_db`` below it) removes
    the recording gain, which differs between speakers and microphones but says nothing
    about what was said.

    Parameters
    ----------
    clip : ndarray of shape (n_samples,)
    sampling_rate : int
    n_mels : int, default=40
    top_db : float, default=40.0
        Bins more than ``top_db`` below the loudest are raised to that floor.

    Returns
    -------
    features : ndarray of shape (n_frames, n_mels), dtype float32
        ``n_frames = 1 + n_samples // hop``, with a hop of 10 ms.
    """
    win_length = max(1, round(0.025 * sampling_rate))
    hop_length = max(1, round(0.010 * sampling_rate))
    n_fft = _fft_size(sampling_rate)
    power = librosa.feature.melspectrogram(
        y=clip,
        sr=sampling_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        n_mels=n_mels,
        pad_mode="constant",
    )  # (n_mels, n_frames)
    decibels = librosa.power_to_db(power, ref=np.max, top_db=top_db)
    return np.ascontiguousarray(decibels.T, dtype=np.float32)


class LogMelInputs:
    """Log-mel spectrogram inputs: computed once per ``prepare``, batched with frame masks.

    Parameters
    ----------
    sampling_rate : int, default=16000
        The aligner's ``sampling_rate``; clips given as arrays are at this rate, files are
        resampled to it, and the mel bands span 0 Hz to half of it.
    n_mels : int, default=40
        Number of mel bands (the ``student__n_mels`` option).
    top_db : float, default=40.0
        Dynamic range kept below each clip's loudest bin (the ``student__top_db`` option):
        quieter bins are raised to it. Recordings differ most in their background (one
        speaker's pauses 65 dB below the speech, another's 40 dB); a common floor hides it.

    Clips shorter than one FFT of the 25 ms window (rounded up to a power of 2 samples: 32 ms
    at 8 or 16 kHz) are rejected by index.

    Examples
    --------
    >>> import numpy as np
    >>> from cwcl_sk.inputs import LogMelInputs
    >>> inputs = LogMelInputs(sampling_rate=8000, n_mels=20)
    >>> data = inputs.prepare([np.random.default_rng(0).normal(size=800)])
    >>> inputs.collate(data, [0])["features"].shape
    torch.Size([1, 11, 20])
    """

    kind = "audio"

    def __init__(self, sampling_rate: int = 16000, n_mels: int = 40, top_db: float = 40.0):
        self.sampling_rate = sampling_rate
        self.n_mels = n_mels
        self.top_db = top_db

    def prepare(self, X, argument: str = "X") -> list[np.ndarray]:
        """Load every clip (see :func:`load_audio`) and compute its log-mel spectrogram."""
        if isinstance(self.n_mels, bool) or not isinstance(self.n_mels, numbers.Integral):
            raise TypeError(f"student__n_mels must be a positive integer, got {self.n_mels!r}.")
        if self.n_mels < 1:
            raise ValueError(f"student__n_mels must be a positive integer, got {self.n_mels!r}.")
        if isinstance(self.top_db, bool) or not isinstance(self.top_db, numbers.Real):
            raise TypeError(f"student__top_db must be a positive number, got {self.top_db!r}.")
        if not self.top_db > 0:
            raise ValueError(f"student__top_db must be a positive number, got {self.top_db!r}.")
        # A clip shorter than one FFT (32 ms at 8 or 16 kHz) fills no frame; in practice it is
        # a mistake (a clip of a few samples), since a spoken word lasts 100 ms or more.
        min_samples = _fft_size(int(self.sampling_rate))
        spectrogram = functools.partial(
            _log_mel_of,
            sampling_rate=int(self.sampling_rate),
            n_mels=self.n_mels,
            top_db=float(self.top_db),
        )
        source = clip_source(X, self.sampling_rate, argument, min_samples)
        if source is not None:
            # Files and sources: each spectrogram is computed when its batch is collated.
            return MappedInputs(source, spectrogram)
        clips = load_audio(X, self.sampling_rate, argument, min_samples=min_samples)
        return [spectrogram(clip, None) for clip in clips]

    def collate(self, data: list[np.ndarray], indices) -> dict[str, torch.Tensor]:
        """The spectrograms ``indices`` as ``features`` (batch, max_frames, n_mels) and mask."""
        features, attention_mask = pad_batch([data[index] for index in indices])
        return {"features": features, "attention_mask": attention_mask}
