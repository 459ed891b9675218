"""A clip store: a corpus of audio clips in one file on disk, and a stream spooled into it.

A stream of (clip, text) pairs (a generator, a Hugging Face ``datasets`` dataset, any
iterable) can be read once only, and a corpus larger than memory cannot be held whole.
:func:`spool_pairs` reads such a stream once, writing every clip to a :class:`ClipStore` as
it comes and keeping only the texts, which are small. The store is then a
:class:`~cwcl_sk.inputs.sources.ClipSource` like any other: ``fit`` reads the clips of each
batch from it, in any order and as many epochs as it likes.

A store is a folder of four files:

- ``samples.f32``: every clip's float32 samples, one after the other, read through
  :class:`numpy.memmap` (the operating system pages in what a batch reads, never the file);
- ``index.npy``: one ``(offset, length)`` row per clip, in samples;
- ``texts.jsonl``: the text of each clip, one JSON string a line;
- ``header.json``: format and version, sampling rate, number of clips, a fingerprint of the
  samples, and the items of the stream that were skipped as unreadable.

The folder is written into a temporary sibling and renamed into place when complete, so an
interrupted spool leaves no half store under the name and running it again starts over.
"""

from __future__ import annotations

import hashlib
import io
import json
import numbers
import os
import warnings
from array import array
from collections.abc import Iterable, Mapping
from pathlib import Path

import librosa
import numpy as np
import soundfile

from .._folders import write_folder
from .._version import __version__
from .audio import _check_clip, _read_file
from .sources import BadInputError, ClipSource

__all__ = ["ClipStore", "spool_pairs"]

_FORMAT = "cwcl_sk clip store"
_VERSION = 1
_HEADER = "header.json"
_SAMPLES = "samples.f32"
_INDEX = "index.npy"
_TEXTS = "texts.jsonl"
_SAMPLE_DTYPE = np.dtype("<f4")


class ClipStore(ClipSource):
    """Clips on disk, read one at a time: the folder :func:`spool_pairs` writes.

    Parameters
    ----------
    directory : str or path-like
        A folder holding a complete store.
    argument : str, default="X"
        The name error messages give the clips.

    Attributes
    ----------
    directory : pathlib.Path
    sampling_rate : int
        The rate of every clip, in Hz.
    skipped : list of dict
        The items of the stream left out as unreadable when the store was written
        (``on_bad_input="skip"``): ``{"position", "error"}`` each, ``position`` counting the
        stream's items from 0.

    Raises
    ------
    FileNotFoundError
        When ``directory`` does not exist.
    ValueError
        When it is not a clip store, or an incomplete one.

    Notes
    -----
    ``store[i]`` returns a copy of clip ``i``, never a view of the memory map, so a batch holds
    its own samples and no page of the file stays pinned after it. A store pickles as its
    folder (DataLoader workers reopen it) and its :meth:`fingerprint` is read from the header.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from cwcl_sk.inputs import spool_pairs
    >>> pairs = ((np.full(100 + i, i, dtype=np.float32), f"clip {i}") for i in range(3))
    >>> store, texts = spool_pairs(pairs, os.path.join(tempfile.mkdtemp(), "store"))
    >>> len(store), store[2].shape, texts[2]
    (3, (102,), 'clip 2')
    """

    def __init__(self, directory, argument: str = "X"):
        self.directory = Path(directory)
        self.argument = argument
        header = _read_header(self.directory)
        self.sampling_rate = int(header["sampling_rate"])
        self.skipped = list(header.get("skipped", []))
        self._count = int(header["count"])
        self._fingerprint = str(header["fingerprint"])
        self._index = _open_index(self.directory, self._count, int(header["total_samples"]))
        self._samples = None  # mapped on the first read, in each process that reads

    def __len__(self) -> int:
        return self._count

    def read(self, index: int) -> np.ndarray:
        offset, length = (int(value) for value in self._index[index])
        if self._samples is None:
            self._samples = np.memmap(self.directory / _SAMPLES, dtype=_SAMPLE_DTYPE, mode="r")
        return np.array(self._samples[offset : offset + length], dtype=np.float32)

    def describe(self, index: int) -> str:
        return f"clip {index} of store '{self.directory}'"

    def fingerprint(self) -> str:
        return self._fingerprint

    def read_texts(self) -> list[str]:
        """The text stored with each clip, in order (what :func:`spool_pairs` returned)."""
        try:
            with open(self.directory / _TEXTS, encoding="utf-8") as file:
                texts = [json.loads(line) for line in file]
        except FileNotFoundError:
            texts = None
        if texts is None or len(texts) != self._count:
            held = "is missing" if texts is None else f"holds {len(texts)} texts"
            raise ValueError(
                f"The clip store {self.directory} is incomplete: {_TEXTS} {held} for "
                f"{self._count} clips. Spool it again with overwrite=True."
            )
        return texts

    def __reduce__(self):
        # The folder only: the memory map and the index are reopened where it is unpickled.
        return type(self), (os.fspath(self.directory), self.argument)

    def __repr__(self) -> str:
        return (
            f"ClipStore({os.fspath(self.directory)!r}, n={self._count}, "
            f"sampling_rate={self.sampling_rate})"
        )


def _read_header(directory: Path) -> dict:
    """The header of the store in ``directory``, or an error saying why it is not one."""
    if not directory.exists():
        raise FileNotFoundError(f"No clip store at {directory}: the folder does not exist.")
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a clip store: it is not a folder.")
    path = directory / _HEADER
    if not path.is_file():
        raise ValueError(
            f"{directory} is not a clip store: it has no {_HEADER} (stores are written by "
            "cwcl_sk.spool_pairs)."
        )
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{directory} is not a clip store: {path} is not JSON ({error})."
        ) from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{directory} is not a clip store: {path} is another file's header.")
    if header.get("version") != _VERSION:
        raise ValueError(
            f"The clip store {directory} has format version {header.get('version')!r}; this "
            f"version of cwcl_sk reads version {_VERSION}. Spool the stream again."
        )
    required = ("sampling_rate", "count", "total_samples", "fingerprint")
    missing = [key for key in required if key not in header]
    if missing:
        raise ValueError(f"The clip store {directory} is incomplete: {path} lacks {missing}.")
    return header


def _open_index(directory: Path, count: int, total_samples: int) -> np.ndarray:
    """The (count, 2) index, memory-mapped, after checking it against the samples file."""

    def incomplete(what: str) -> ValueError:
        return ValueError(
            f"The clip store {directory} is incomplete: {what}. Spool it again with overwrite=True."
        )

    samples = directory / _SAMPLES
    if not samples.is_file():
        raise incomplete(f"{_SAMPLES} is missing")
    if samples.stat().st_size != total_samples * _SAMPLE_DTYPE.itemsize:
        raise incomplete(
            f"{_SAMPLES} holds {samples.stat().st_size} bytes, the header says "
            f"{total_samples} float32 samples"
        )
    try:
        index = np.load(directory / _INDEX, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise incomplete(f"{_INDEX} cannot be read ({error})") from None
    if index.shape != (count, 2) or index.dtype.kind != "i":
        raise incomplete(f"{_INDEX} has shape {index.shape}, expected ({count}, 2) integers")
    if count and (int(index[:, 1].min()) < 1 or int(index[-1].sum()) != total_samples):
        raise incomplete(f"{_INDEX} does not describe {_SAMPLES}")
    return index


def _is_store(directory: Path) -> bool:
    """Whether ``directory`` holds what a spool wrote (complete or not)."""
    try:
        header = json.loads((directory / _HEADER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(header, dict) and header.get("format") == _FORMAT


class _StoreWriter:
    """Appends clips to the files of a store being written; :meth:`finish` completes it.

    Each clip goes to the samples file as it comes; what stays in memory is two integers a
    clip (the index), so memory does not grow with the clips' sizes.
    """

    def __init__(self, folder: Path, sampling_rate: int):
        self.folder = folder
        self.sampling_rate = sampling_rate
        self._samples = open(folder / _SAMPLES, "wb")
        self._texts = open(folder / _TEXTS, "w", encoding="utf-8")
        self._offsets = array("q")
        self._lengths = array("q")
        self._total = 0
        self._hasher = hashlib.blake2b(f"{_FORMAT}:{sampling_rate}".encode(), digest_size=16)

    def append(self, clip: np.ndarray, text: str) -> None:
        samples = np.ascontiguousarray(clip, dtype=_SAMPLE_DTYPE)
        self._samples.write(memoryview(samples).cast("B"))
        self._texts.write(json.dumps(text, ensure_ascii=False) + "\n")
        self._hasher.update(f"{samples.size}:".encode())
        self._hasher.update(memoryview(samples).cast("B"))
        self._offsets.append(self._total)
        self._lengths.append(samples.size)
        self._total += samples.size

    def finish(self, skipped: list[dict]) -> None:
        for file in (self._samples, self._texts):
            _close_durably(file)
        index = np.stack(
            [np.frombuffer(self._offsets, np.int64), np.frombuffer(self._lengths, np.int64)], 1
        )
        np.save(self.folder / _INDEX, index, allow_pickle=False)
        header = {
            "format": _FORMAT,
            "version": _VERSION,
            "sampling_rate": self.sampling_rate,
            "count": len(self._lengths),
            "total_samples": self._total,
            "fingerprint": self._hasher.hexdigest(),
            "written_by": f"cwcl_sk {__version__}",
            "skipped": skipped,
        }
        # Last, so that a folder with a header has all the other files.
        with open(self.folder / _HEADER, "w", encoding="utf-8") as file:
            json.dump(header, file, indent=1)
            _close_durably(file)

    def abandon(self) -> None:
        self._samples.close()
        self._texts.close()


def _close_durably(file) -> None:
    """Flush ``file`` to the disk and close it: a store renamed into place is on disk whole."""
    file.flush()
    os.fsync(file.fileno())
    file.close()


_ON_BAD_INPUT = ("raise", "skip")


def spool_pairs(
    source,
    directory,
    *,
    audio="audio",
    text="text",
    sampling_rate: int = 16000,
    on_bad_input: str = "raise",
    overwrite: bool = False,
) -> tuple[ClipStore, list[str]]:
    """Read a stream of (clip, text) pairs once into a clip store on disk.

    The clips go to disk as they come and only the texts are kept, so memory does not grow
    with the stream. When ``directory`` already holds a complete store, it is opened and its
    texts returned without reading ``source`` (a rerun of a script costs nothing), unless
    ``overwrite=True``.

    Parameters
    ----------
    source : iterable
        Read once, in order. Each item is a ``(clip, text)`` pair, or a mapping (a row of a
        Hugging Face ``datasets.Dataset`` or ``IterableDataset``, a dict) whose ``audio`` and
        ``text`` fields hold them. A clip is a 1-D array of samples at ``sampling_rate``, a
        dict ``{"array": samples, "sampling_rate": rate}`` (the decoded form of a Hugging
        Face ``Audio`` column), a dict with ``"bytes"`` (an encoded file, the ``Audio``
        column's ``decode=False`` form) or ``"path"``, or the path of an audio file.
    directory : str or path-like
        The store's folder: new, empty, or a store written before. It is written into a
        temporary sibling folder and renamed into place when complete.
    audio, text : str, default="audio" and "text"
        The fields of mapping items that hold the clip and its text.
    sampling_rate : int, default=16000
        The rate of the store, in Hz. Clips at another rate (files, and dicts that say so)
        are resampled to it with librosa.
    on_bad_input : {"raise", "skip"}, default="raise"
        What to do with an item whose clip cannot be read (an undecodable file, an empty or
        non-finite clip, a text that is not a string): stop with an error naming its position
        in the stream, or leave it out, warn with the count, and record it in the store's
        :attr:`ClipStore.skipped`.
    overwrite : bool, default=False
        Read ``source`` and replace the store in ``directory`` even when it is complete.

    Returns
    -------
    store : ClipStore
        The clips, in the stream's order (the skipped items left out).
    texts : list of str
        ``texts[i]`` is the text of ``store[i]``.

    Raises
    ------
    BadInputError
        With ``on_bad_input="raise"``, for the first unreadable item; ``error.index`` is its
        position in the stream.
    ValueError
        Bad arguments; a ``directory`` holding something else, or an existing store at another
        sampling rate; a stream with no readable item.
    TypeError
        An item that is neither a pair nor a mapping.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from cwcl_sk.inputs import spool_pairs
    >>> rows = [{"audio": {"array": np.zeros(8000), "sampling_rate": 8000}, "text": "zero"},
    ...         {"audio": {"array": np.ones(4000), "sampling_rate": 8000}, "text": "one"}]
    >>> store, texts = spool_pairs(rows, os.path.join(tempfile.mkdtemp(), "corpus"))
    >>> [store[i].shape for i in range(len(store))], texts
    ([(16000,), (8000,)], ['zero', 'one'])
    """
    sampling_rate = _check_spool_arguments(source, sampling_rate, on_bad_input, overwrite)
    directory = Path(directory)
    if not overwrite and _is_store(directory):
        store = ClipStore(directory)
        if store.sampling_rate != sampling_rate:
            raise ValueError(
                f"directory {directory} holds a clip store at {store.sampling_rate} Hz, not "
                f"sampling_rate={sampling_rate}. Pass overwrite=True to spool it again."
            )
        return store, store.read_texts()
    texts: list[str] = []
    skipped: list[dict] = []

    def write(folder: Path) -> None:
        writer = _StoreWriter(folder, sampling_rate)
        try:
            for position, item in enumerate(source):
                try:
                    clip, transcript = _read_pair(item, position, audio, text, sampling_rate)
                except BadInputError as error:
                    if on_bad_input == "raise":
                        raise
                    skipped.append({"position": position, "error": str(error)})
                    continue
                writer.append(clip, transcript)
                texts.append(transcript)
        except BaseException:
            writer.abandon()
            raise
        if not texts:
            writer.abandon()
            if not skipped:
                raise ValueError("source is empty: it gave no (clip, text) pair.")
            raise ValueError(
                f"source gave no readable pair: all {len(skipped)} items were unreadable. "
                f"The first: {skipped[0]['error']}"
            )
        writer.finish(skipped)

    write_folder(directory, write, argument="directory", replaceable=_is_store)
    if skipped:
        warnings.warn(
            f"spool_pairs left out {len(skipped)} unreadable items of {len(texts) + len(skipped)}"
            f" (on_bad_input='skip'); their positions and errors are in store.skipped.",
            UserWarning,
            stacklevel=2,
        )
    return ClipStore(directory), texts


def _check_spool_arguments(source, sampling_rate, on_bad_input, overwrite) -> int:
    if isinstance(source, str | bytes | os.PathLike) or not isinstance(source, Iterable):
        raise TypeError(
            f"source must be an iterable of (clip, text) pairs or of rows with audio and text "
            f"fields, got {type(source).__name__}."
        )
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, numbers.Integral):
        raise TypeError(f"sampling_rate must be an integer (Hz), got {sampling_rate!r}.")
    if sampling_rate <= 0:
        raise ValueError(f"sampling_rate must be positive, got {sampling_rate}.")
    if on_bad_input not in _ON_BAD_INPUT:
        raise ValueError(f"on_bad_input must be 'raise' or 'skip', got {on_bad_input!r}.")
    if not isinstance(overwrite, bool | np.bool_):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}.")
    return int(sampling_rate)


def _read_pair(item, position: int, audio, text, sampling_rate: int) -> tuple[np.ndarray, str]:
    """Item ``position`` of the stream as (clip at ``sampling_rate``, text).

    An item of the wrong shape (not a pair, a missing field) is a mistake in the call and
    raises as it is; a clip or text that cannot be read raises :class:`BadInputError`.
    """
    name = f"item {position} of source"
    if isinstance(item, Mapping):
        missing = [field for field in (audio, text) if field not in item]
        if missing:
            raise ValueError(
                f"{name} has no field {missing[0]!r} (its fields: {sorted(map(str, item))}); "
                "pass audio= and text= to name the fields that hold the clip and its text."
            )
        clip, transcript = item[audio], item[text]
    elif isinstance(item, tuple | list) and len(item) == 2:
        clip, transcript = item
    else:
        raise TypeError(
            f"{name} is {type(item).__name__}; expected a (clip, text) pair or a mapping with "
            f"fields {audio!r} and {text!r}."
        )
    where = _where(clip)
    try:
        if not isinstance(transcript, str):
            raise TypeError(f"its text is {type(transcript).__name__}; expected a string")
        return _read_clip(clip, name, sampling_rate), str(transcript)
    except Exception as error:
        reason = str(error) if name in str(error) else f"{type(error).__name__}: {error}"
        raise BadInputError(
            f"{name} could not be read{f' ({where})' if where else ''}: {reason}. Pass "
            "on_bad_input='skip' to leave unreadable items out (they are recorded in "
            "store.skipped).",
            position,
            where,
        ) from error


def _where(clip) -> str | None:
    """The file a clip comes from, if it names one."""
    if isinstance(clip, Mapping):
        clip = clip.get("path")
    return repr(os.fspath(clip)) if isinstance(clip, str | os.PathLike) else None


def _read_clip(clip, name: str, sampling_rate: int) -> np.ndarray:
    """A clip in any of the forms :func:`spool_pairs` accepts, mono float32 at ``sampling_rate``."""
    if isinstance(clip, str | os.PathLike):
        return _read_file(clip, sampling_rate, name)
    rate = sampling_rate
    if isinstance(clip, Mapping):
        if clip.get("array") is not None:
            rate = clip.get("sampling_rate") or sampling_rate
            clip = clip["array"]
        elif clip.get("bytes") is not None:
            clip, rate = _decode_bytes(clip["bytes"])
        elif clip.get("path") is not None:
            return _read_file(clip["path"], sampling_rate, name)
        else:
            raise ValueError(
                f"{name} has an audio dict without 'array', 'bytes' or 'path' (keys: "
                f"{sorted(map(str, clip))})"
            )
    if isinstance(rate, bool) or not isinstance(rate, numbers.Integral) or rate <= 0:
        raise ValueError(f"{name} says its sampling rate is {rate!r}; expected a positive integer")
    clip = _check_clip(clip, name)
    if rate != sampling_rate:
        clip = librosa.resample(clip, orig_sr=int(rate), target_sr=sampling_rate)
    return clip.astype(np.float32, copy=False)


def _decode_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """An encoded audio file held in memory -> (mono samples, its rate)."""
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.mean(axis=1), int(rate)
