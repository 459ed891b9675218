"""Offline speech synthesis with espeak-ng, for spoken corpora made from text.

:func:`synthesize_speech` turns transcripts into mono float32 clips that any audio student
accepts, with voice, speaking rate and pitch varied per utterance from a ``random_state``, and
an optional on-disk cache. espeak-ng is a formant synthesiser: robotic, but fast (hundreds of
times real time), fully offline and deterministic, which makes it a good source of unseen-speaker
test sets and of smoke-test data. It comes with ``pip install "cwcl-sk[speech]"`` (the PyPI
package ``espeakng-loader``, which bundles the library and its voices).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import numbers
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence, Set
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

from .._validation import check_int, check_real
from . import _espeak

__all__ = ["ENGLISH_VOICES", "list_voice_variants", "list_voices", "synthesize_speech"]

#: English voices that sound clearly different from each other: five accents, and male and
#: female variants of them. Pass it as ``voices`` for a corpus with several "speakers".
ENGLISH_VOICES = (
    "en-us",
    "en-us+f2",
    "en-us+m3",
    "en-us+f4",
    "en-gb",
    "en-gb+f3",
    "en-gb-x-rp+m2",
    "en-gb-scotland",
    "en-029+f1",
    "en-us-nyc+m5",
)

# espeak's documented ranges (speak_lib.h): words per minute, and 0-100 around the voice's pitch.
_RATE_RANGE = (80, 450)
_PITCH_RANGE = (0, 100)
# Bump when what a cache file holds changes, so that old files are not read as new ones.
_CACHE_FORMAT = 1


def list_voices(language: str | None = "en") -> list[str]:
    """Names of the espeak-ng language voices available for :func:`synthesize_speech`.

    A voice is named by its language tag in lower case (``"en-us"``, ``"en-gb-scotland"``).
    Append ``"+"`` and a variant from :func:`list_voice_variants` to change its timbre
    (``"en-us+f3"``, a female voice with an American accent).

    Parameters
    ----------
    language : str or None, default="en"
        Keep the voices of this language (the tag itself and its regional forms: ``"en"``
        keeps ``"en-us"`` and ``"en-gb-x-rp"``). None lists all of them (over a hundred).

    Returns
    -------
    voices : list of str
        Sorted voice names.

    Raises
    ------
    ImportError
        If ``espeakng-loader`` is not installed.

    See Also
    --------
    list_voice_variants : the timbres that can be added to a voice.
    synthesize_speech : speak texts with these voices.

    Examples
    --------
    These need the synthesiser (``pip install espeakng-loader``).

    >>> from cwcl_sk.datasets import list_voices
    >>> "en-us" in list_voices()
    True
    >>> "fr-fr" in list_voices(language=None)
    True
    """
    names = list(_espeak.catalogue().languages)
    if language is None:
        return names
    if not isinstance(language, str) or not language.strip():
        raise TypeError(f"language must be a language tag such as 'en' or None, got {language!r}.")
    prefix = language.strip().lower()
    return [name for name in names if name == prefix or name.startswith(prefix + "-")]


def list_voice_variants() -> list[str]:
    """Names of the espeak-ng voice variants, the timbres added to a voice after ``"+"``.

    ``"m1"`` to ``"m8"`` and ``"f1"`` to ``"f5"`` are the classic male and female variants;
    ``"klatt"`` to ``"klatt6"`` use a different (Klatt) synthesiser; others are character
    voices (``"whisper"``, ``"croak"``, ``"grandma"``) contributed by users.

    Returns
    -------
    variants : list of str
        Sorted variant names, in lower case.

    Raises
    ------
    ImportError
        If ``espeakng-loader`` is not installed.

    See Also
    --------
    list_voices : the language voices that variants apply to.

    Examples
    --------
    This needs the synthesiser (``pip install espeakng-loader``).

    >>> from cwcl_sk.datasets import list_voice_variants
    >>> {"f3", "m3", "klatt"} <= set(list_voice_variants())
    True
    """
    return list(_espeak.catalogue().variants)


def synthesize_speech(
    texts,
    *,
    voices="en-us",
    rate=175,
    pitch=50,
    sampling_rate: int = 16000,
    random_state=None,
    cache_dir=None,
    verbose: int = 0,
) -> list[np.ndarray]:
    """Speak texts with the espeak-ng synthesiser: one mono float32 clip per text.

    Each text gets a voice, a speaking rate and a pitch drawn from ``random_state`` (when
    ``voices`` is a list and ``rate`` / ``pitch`` are ranges), so a list of transcripts becomes
    a corpus with varied "speakers". Given those, the audio is fully determined: espeak-ng is
    reloaded for every utterance, so no synthesiser state carries over from one text to the
    next, and the same call gives identical arrays in any process.

    Parameters
    ----------
    texts : sequence of str
        The texts to speak, each non-empty. Digits, abbreviations and punctuation are read as
        espeak's English rules read them (``"7"`` is "seven").
    voices : str or sequence of str, default="en-us"
        A voice, or voices to choose from: each text gets one drawn uniformly from the list.
        A voice is a language voice from :func:`list_voices` (``"en-us"``, ``"en-gb"``,
        ``"en-gb-x-rp"``, ``"en-gb-scotland"``, ``"en-029"``, ``"en-us-nyc"``, ...), optionally
        followed by ``"+"`` and a variant from :func:`list_voice_variants` (``"en-us+f3"``).
        Names are case-insensitive, and a bare language (``"en"``, ``"fr"``) picks espeak's
        preferred voice for it. The recommended English set, :data:`ENGLISH_VOICES`, is
        ``"en-us"``, ``"en-us+f2"``, ``"en-us+m3"``, ``"en-us+f4"``, ``"en-gb"``,
        ``"en-gb+f3"``, ``"en-gb-x-rp+m2"``, ``"en-gb-scotland"``, ``"en-029+f1"`` and
        ``"en-us-nyc+m5"``.
    rate : float or (float, float), default=175
        Speaking rate in words per minute, between 80 and 450; a (low, high) pair draws one
        rate per text uniformly from that range. Rounded to whole words per minute.
    pitch : float or (float, float), default=50
        Pitch from 0 (lowest) to 100 (highest), relative to the voice's own (50 keeps it);
        a (low, high) pair draws one per text. Rounded to a whole number.
    sampling_rate : int, default=16000
        Sampling rate (Hz) of the returned clips. espeak-ng produces 22050 Hz; other rates are
        resampled with soxr (high quality), the resampler librosa uses.
    random_state : int, RandomState instance or None, default=None
        Draws the voice, rate and pitch of every text, three uniform numbers per text in the
        order of ``texts``, so the first texts get the same draws whatever follows them.
        It matters only when ``voices`` has several entries or ``rate`` / ``pitch`` are ranges.
    cache_dir : str or path-like, optional
        A folder for synthesised clips, created if missing. Each clip is stored as a ``.npy``
        file named by a hash of (text, voice, rate, pitch, sampling rate, espeak-ng and
        resampler versions) and read back, not synthesised again, by later calls. Safe to share
        between processes: files are written to a temporary name and renamed into place.
    verbose : int, default=0
        Show a progress bar over the texts when positive.

    Returns
    -------
    clips : list of ndarray of shape (n_samples,), dtype float32
        One clip per text, mono, in [-1, 1], at ``sampling_rate``, with espeak's short
        silences at both ends kept.

    Raises
    ------
    ImportError
        If ``espeakng-loader`` is not installed (``pip install "cwcl-sk[speech]"``).
    ValueError
        For an unknown voice (the message lists the closest valid ones), empty texts, or
        rates, pitches or sampling rate out of range.
    TypeError
        For arguments of the wrong type, e.g. a single string as ``texts``.

    See Also
    --------
    list_voices, list_voice_variants : the names accepted in ``voices``.
    cwcl_sk.CWCLAligner : fit an audio student on the clips and their texts.

    Notes
    -----
    Synthesis runs one text at a time behind a lock (the C library has global state) at a few
    hundred times real time on one CPU core, including about 4 ms per text to reload the
    library. Formant speech is intelligible but far from natural: a student trained only on it
    will not transfer to human speech as well as one trained on recordings.

    Examples
    --------
    These need the synthesiser (``pip install espeakng-loader``).

    >>> from cwcl_sk.datasets import ENGLISH_VOICES, synthesize_speech
    >>> clips = synthesize_speech(["seven", "the number eight"], sampling_rate=16000)
    >>> [clip.dtype.name for clip in clips]
    ['float32', 'float32']
    >>> 0.2 < len(clips[0]) / 16000 < len(clips[1]) / 16000 < 3.0
    True

    Several speakers, with rate and pitch varied per text:

    >>> corpus = synthesize_speech(
    ...     ["turn on the lights", "what time is it"], voices=ENGLISH_VOICES,
    ...     rate=(140, 210), pitch=(35, 65), random_state=0)
    >>> len(corpus)
    2
    """
    texts = _check_texts(texts)
    voice_names = _check_voice_names(voices)
    rate_range = _check_range("rate", rate, *_RATE_RANGE)
    pitch_range = _check_range("pitch", pitch, *_PITCH_RANGE)
    sampling_rate = check_int("sampling_rate", sampling_rate, low=1)
    cache_folder = _check_cache_dir(cache_dir)

    catalogue = _espeak.catalogue()
    resolved = [
        _resolve_voice(name, catalogue, _voice_argument(voices, index))
        for index, name in enumerate(voice_names)
    ]

    # Three uniform draws per text, row by row: text i always uses draws 3i..3i+2, so fixing
    # one setting (a single voice, a fixed rate) leaves the draws of the others unchanged, and
    # a text's settings do not depend on how many texts follow it.
    random = check_random_state(random_state)
    draws = random.random_sample((len(texts), 3))

    from tqdm.auto import tqdm

    clips = []
    for index in tqdm(
        range(len(texts)), desc="synthesising speech", unit="text", disable=not verbose
    ):
        text = texts[index]
        voice_draw, rate_draw, pitch_draw = draws[index]
        voice, identifier = resolved[min(int(voice_draw * len(resolved)), len(resolved) - 1)]
        utterance_rate = _draw_in(rate_range, rate_draw)
        utterance_pitch = _draw_in(pitch_range, pitch_draw)
        clip = None
        if cache_folder is not None:
            key = _cache_key(text, voice, utterance_rate, utterance_pitch, sampling_rate, catalogue)
            path = cache_folder / f"{key}.npy"
            clip = _read_cached(path)
        if clip is None:
            clip = _speak(text, identifier, utterance_rate, utterance_pitch, sampling_rate)
            if cache_folder is not None:
                _write_cached(path, clip)
        if not np.any(clip):
            warnings.warn(
                f"texts[{index}] ({text[:40]!r}) gave silence: espeak-ng found nothing to "
                "pronounce in it.",
                UserWarning,
                stacklevel=2,
            )
        clips.append(clip)
    return clips


def _speak(text: str, identifier: str, rate: int, pitch: int, sampling_rate: int) -> np.ndarray:
    """One utterance as float32 in [-1, 1] at ``sampling_rate``."""
    samples = _espeak.synthesize(text, identifier, rate, pitch)
    clip = samples.astype(np.float32) / 32768.0
    native_rate = _espeak.catalogue().sample_rate
    if sampling_rate != native_rate:
        # soxr directly, not librosa.resample (which calls the same soxr_hq): importing
        # librosa costs seconds, and soxr is a dependency of librosa so it is always there.
        import soxr

        clip = soxr.resample(clip, native_rate, sampling_rate, quality="HQ").astype(np.float32)
        # The resampling filter rings, which can push a full-scale sample a little past 1.
        np.clip(clip, -1.0, 1.0, out=clip)
    return clip


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str | bytes):
        raise TypeError(
            f"texts is a single string ({texts[:40]!r}); pass a list of strings, e.g. [text]."
        )
    if isinstance(texts, np.ndarray) and texts.ndim != 1:
        raise ValueError(f"texts must be a 1-D sequence of strings, got shape {texts.shape}.")
    # Any ordered collection will do (list, tuple, array, pandas Series); not a mapping or set,
    # whose order would make the voice draws depend on hashing.
    if isinstance(texts, Mapping | Set) or not isinstance(texts, Iterable):
        raise TypeError(f"texts is {type(texts).__name__}; expected a sequence of strings.")
    items = list(texts)
    if not items:
        raise ValueError("texts is empty; expected at least one string to speak.")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(
                f"texts[{index}] is {type(item).__name__} ({item!r}); every item must be a string."
            )
        if not item.strip():
            raise ValueError(f"texts[{index}] is an empty string; there is nothing to speak.")
        if "\0" in item:
            # The C library reads up to the first NUL, so the rest would be silently dropped.
            raise ValueError(f"texts[{index}] contains a NUL character.")
    return items


def _check_voice_names(voices) -> list[str]:
    if isinstance(voices, str):
        names = [voices]
    elif isinstance(voices, Sequence | np.ndarray):
        names = list(voices)
        if not names:
            raise ValueError("voices is empty; expected a voice name or a list of them.")
    else:
        raise TypeError(
            f"voices is {type(voices).__name__}; expected a voice name such as 'en-us' or a "
            "list of them."
        )
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            where = _voice_argument(voices, index)
            raise TypeError(f"{where} is {name!r}; expected a voice name such as 'en-us'.")
    return names


def _voice_argument(voices, index: int) -> str:
    return "voices" if isinstance(voices, str) else f"voices[{index}]"


def _resolve_voice(name: str, catalogue: _espeak.Catalogue, argument: str) -> tuple[str, str]:
    """Map a user's voice name to (canonical name, espeak identifier), or explain the error."""
    language, plus, variant = name.strip().lower().partition("+")
    language = catalogue.aliases.get(language, language)
    if language not in catalogue.languages:
        suggestions = _closest(language, list(catalogue.languages), prefer_prefix=True)
        raise ValueError(
            f"{argument} is {name!r}, which is not an espeak-ng voice. Valid voices include "
            f"{_quoted(suggestions)}; list_voices() names them all, and a variant may follow a "
            f"'+' (e.g. 'en-us+f3')."
        )
    identifier = catalogue.languages[language]
    if not plus:
        return language, identifier
    if variant not in catalogue.variants:
        suggestions = _closest(variant, list(catalogue.variants), prefer_prefix=False)
        raise ValueError(
            f"{argument} is {name!r}, but {variant!r} is not an espeak-ng voice variant. Valid "
            f"variants include {_quoted(suggestions)} (the classic ones are 'm1' to 'm8' and 'f1' "
            "to 'f5'); list_voice_variants() names them all."
        )
    return f"{language}+{variant}", f"{identifier}+{catalogue.variants[variant]}"


def _closest(query: str, names: list[str], *, prefer_prefix: bool, limit: int = 12) -> list[str]:
    """The names worth showing for a misspelt one: same language family first, then lookalikes."""
    if len(names) <= limit:
        return names
    family = query.split("-", 1)[0]
    same_family = [name for name in names if name.split("-", 1)[0] == family]
    if prefer_prefix and same_family:
        return same_family[:limit]
    lookalikes = difflib.get_close_matches(query, names, n=limit, cutoff=0.5)
    if lookalikes:
        return lookalikes
    english = [name for name in names if name.split("-", 1)[0] == "en"]
    return (english or names)[:limit]


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _check_range(name: str, value, low: float, high: float) -> tuple[float, float]:
    """A number or a (low, high) pair inside [low, high], as a (low, high) pair."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = check_real(name, value, low=low, high=high, low_inclusive=True)
        return number, number
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str) and len(value) == 2:
        bottom = check_real(name, value[0], low=low, high=high, low_inclusive=True)
        top = check_real(name, value[1], low=low, high=high, low_inclusive=True)
        if bottom > top:
            raise ValueError(
                f"The '{name}' parameter is a range (low, high) with low > high: {tuple(value)!r}."
            )
        return bottom, top
    raise TypeError(
        f"The '{name}' parameter must be a number or a (low, high) pair of numbers between "
        f"{low} and {high}, got {value!r}."
    )


def _draw_in(bounds: tuple[float, float], draw: float) -> int:
    # espeak takes whole numbers; rounding keeps the ends of the range reachable.
    low, high = bounds
    return round(low + draw * (high - low))


def _check_cache_dir(cache_dir) -> Path | None:
    if cache_dir is None:
        return None
    if not isinstance(cache_dir, str | os.PathLike):
        raise TypeError(f"cache_dir must be a folder path or None, got {cache_dir!r}.")
    folder = Path(cache_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"cache_dir {str(folder)!r} exists and is not a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _cache_key(
    text: str,
    voice: str,
    rate: int,
    pitch: int,
    sampling_rate: int,
    catalogue: _espeak.Catalogue,
) -> str:
    resampler = None
    if sampling_rate != catalogue.sample_rate:
        import soxr

        resampler = f"soxr {soxr.__version__} HQ"
    description = {
        "format": _CACHE_FORMAT,
        "text": text,
        "voice": voice,
        "rate": rate,
        "pitch": pitch,
        "sampling_rate": sampling_rate,
        "espeak_ng": catalogue.version,
        "resampler": resampler,
    }
    encoded = json.dumps(description, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def _read_cached(path: Path) -> np.ndarray | None:
    """The cached clip, or None when it is missing or unreadable (then it is rewritten)."""
    if not path.is_file():
        return None
    try:
        clip = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if clip.dtype != np.float32 or clip.ndim != 1:
        return None
    return clip


def _write_cached(path: Path, clip: np.ndarray) -> None:
    # Write under a temporary name and rename: a reader in another process never sees a
    # half-written file, and concurrent writers of the same key leave one complete file.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(handle, "wb") as file:
            np.save(file, clip, allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
