"""Inputs read on demand: a corpus that is decoded per batch instead of held in memory.

An :class:`InputSource` is a sequence that reads item ``i`` only when asked for it. A
:class:`ClipSource` holds audio clips: read from files
(:class:`~cwcl_sk.inputs.AudioFiles`, what a list of audio paths becomes), from a clip store
on disk (:class:`~cwcl_sk.inputs.ClipStore`), or from anything a user wraps;
:class:`~cwcl_sk.inputs.ImageFiles` (what a list of image paths becomes) holds images. The
input handlers keep such a source as it is and collate batches from it, so that ``fit``
holds the batches in flight (and the DataLoader workers' prefetch), never the corpus.

A clip that cannot be read raises :class:`BadInputError`, which names the argument, the index
and where the clip came from. The aligner either stops on it or, with
``on_bad_input="skip"``, leaves the clip out and counts it (see
:func:`find_bad_inputs`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "BadInputError",
    "ClipSource",
    "InputSource",
    "MappedInputs",
    "Subset",
    "existing_paths",
    "files_fingerprint",
    "find_bad_inputs",
    "is_path_list",
    "statistics_sample",
]


class BadInputError(ValueError):
    """A clip (or image) that could not be read, with its index and where it came from.

    Parameters
    ----------
    message : str
    index : int, optional
        The position in the argument (``X[index]``).
    source : str, optional
        Where the item came from (a file path, a store entry).
    """

    def __init__(self, message: str, index: int | None = None, source: str | None = None):
        # The extra arguments are optional: a DataLoader re-raises a worker's error as
        # ``type(error)(message)``.
        super().__init__(message)
        self.index = None if index is None else int(index)
        self.source = source

    def __reduce__(self):
        # DataLoader workers pickle exceptions back to the main process.
        return type(self), (str(self), self.index, self.source)


class InputSource(Sequence):
    """A sequence of inputs read on demand (the interface; see the module docstring).

    Subclasses implement ``__len__``, :meth:`read` and :meth:`describe`; ``source[i]`` calls
    ``read(i)`` and turns any failure into a :class:`BadInputError` naming the item.
    Sources must pickle (DataLoader workers receive them) without their items.
    """

    #: The rate, in Hz, of the clips :meth:`read` returns; None for inputs that are not audio.
    sampling_rate: int | None = None
    #: The argument name used in error messages (``X``, ``X_valid``).
    argument: str = "X"

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, index: int) -> np.ndarray:
        """Item ``index`` (a clip: a 1-D float32 array at :attr:`sampling_rate`)."""
        raise NotImplementedError

    def describe(self, index: int) -> str:
        """Where item ``index`` comes from, for error messages (a path, a store entry)."""
        return f"item {index}"

    def fingerprint(self) -> str:
        """A digest of what the source holds, for resume checks (cheap: not the samples)."""
        hasher = hashlib.sha256(f"{type(self).__name__}:{len(self)}".encode())
        for index in range(len(self)):
            hasher.update(self.describe(index).encode("utf-8", "surrogatepass") + b"\0")
        return hasher.hexdigest()[:32]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Subset(self, np.arange(len(self))[index])
        index = _position(index, len(self))
        try:
            return self.read(index)
        except BadInputError:
            raise
        except Exception as error:
            source = self.describe(index)
            name = f"{self.argument}[{index}]"
            # Decoders name the clip already (``X[3] could not be decoded as audio: ...``).
            message = str(error).rstrip(".")
            if not message.startswith(name):
                message = f"{name} could not be read ({source}): {type(error).__name__}: {message}"
            raise BadInputError(
                f"{message}. Pass on_bad_input='skip' to leave unreadable inputs out of training.",
                index,
                source,
            ) from error

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)})"


class ClipSource(InputSource):
    """An :class:`InputSource` of audio clips: ``read(i)`` returns a 1-D float32 array at
    ``sampling_rate`` Hz.

    Subclass it to train on clips from anywhere (a database, an archive): implement
    ``__len__``, ``read`` and ``describe``, set ``sampling_rate``, and pass an instance as
    ``X``; override :meth:`fingerprint` when ``describe`` does not identify the clips.
    """

    sampling_rate: int = 16000

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, sampling_rate={self.sampling_rate})"


def _position(index, length: int) -> int:
    if not isinstance(index, int | np.integer):
        raise TypeError(f"clip indices must be integers, got {type(index).__name__}.")
    index = int(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for {length} items.")
    return index


class MappedInputs(InputSource):
    """Another source's items passed through a function when read (resampling, features).

    Parameters
    ----------
    source : InputSource
    function : callable
        ``function(item, name) -> array``; ``name`` is ``"X[i]"`` for error messages.
    sampling_rate : int, optional
        The rate of the clips ``function`` returns (default: the source's).
    """

    def __init__(self, source: InputSource, function: Callable, sampling_rate: int | None = None):
        self.source = source
        self.function = function
        self.sampling_rate = sampling_rate or source.sampling_rate
        self.argument = source.argument

    def __len__(self) -> int:
        return len(self.source)

    def read(self, index: int) -> np.ndarray:
        return self.function(self.source[index], f"{self.argument}[{index}]")

    def describe(self, index: int) -> str:
        return self.source.describe(index)

    def fingerprint(self) -> str:
        name = getattr(self.function, "__qualname__", type(self.function).__name__)
        return hashlib.sha256(f"{self.source.fingerprint()}:{name}".encode()).hexdigest()[:32]


class Subset(InputSource):
    """The items ``indices`` of a source, in that order (a validation split, skipped items).

    Errors keep naming the item's position in the *original* argument.
    """

    def __init__(self, source: InputSource, indices):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.sampling_rate = source.sampling_rate
        self.argument = source.argument

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Subset(self.source, self.indices[index])
        return self.source[int(self.indices[_position(index, len(self))])]

    def read(self, index: int) -> np.ndarray:
        return self.source[int(self.indices[index])]

    def describe(self, index: int) -> str:
        return self.source.describe(int(self.indices[index]))

    def fingerprint(self) -> str:
        hasher = hashlib.sha256(self.source.fingerprint().encode())
        hasher.update(self.indices.tobytes())
        return hasher.hexdigest()[:32]


# Items of a corpus read on demand that a student's input statistics (a mean and a scale per
# mel band or colour channel) are taken from: a few hundred estimate them well, and reading
# every item would decode the whole corpus before training starts.
STATISTICS_ITEMS = 512


def statistics_sample(data) -> list:
    """The items statistics are computed from: all of an in-memory set, or evenly spaced
    :data:`STATISTICS_ITEMS` of a source read on demand."""
    if isinstance(data, InputSource) and len(data) > STATISTICS_ITEMS:
        positions = np.linspace(0, len(data) - 1, STATISTICS_ITEMS).round().astype(int)
        return [data[int(position)] for position in positions]
    return list(data)


def is_path_list(X) -> bool:
    """Whether ``X`` is a non-empty list, tuple or 1-D array of paths and nothing else."""
    if isinstance(X, np.ndarray):
        if X.ndim != 1 or X.dtype.kind not in "UO":
            return False
        X = X.tolist()
    elif hasattr(X, "tolist") and hasattr(X, "iloc"):  # a pandas Series of paths
        X = X.tolist()
    if not isinstance(X, list | tuple) or not X:
        return False
    return all(isinstance(item, str | os.PathLike) for item in X)


def existing_paths(paths, argument: str, kind: str) -> list[str]:
    """``paths`` as strings, each checked to be a file (errors name the index)."""
    paths = [os.fspath(path) for path in paths]
    for index, path in enumerate(paths):
        if not os.path.isfile(path):
            what = "is not a file" if os.path.exists(path) else f"no such {kind} file"
            raise FileNotFoundError(f"{argument}[{index}]: {what}: {path!r}.")
    return paths


def files_fingerprint(kind: str, paths: list[str]) -> str:
    """Paths and sizes: a file replaced by another of a different size is other data."""
    hasher = hashlib.sha256(f"{kind}:{len(paths)}".encode())
    for path in paths:
        size = os.stat(path).st_size if os.path.exists(path) else -1
        hasher.update(f"{path}\0{size}\0".encode("utf-8", "surrogatepass"))
    return hasher.hexdigest()[:32]


def find_bad_inputs(source: Sequence, num_workers: int = 0) -> list[dict]:
    """Read every item of ``source`` once; the ones that fail, with their errors.

    Parameters
    ----------
    source : InputSource
    num_workers : int, default=0
        DataLoader worker processes that read in parallel; 0 reads in this process.

    Returns
    -------
    bad : list of dict
        ``{"position", "index", "source", "error"}`` per unreadable item, in order:
        ``position`` in ``source``, ``index`` in the argument the user passed (they differ for
        a :class:`Subset`).
    """
    import torch

    reader = _Reader(source)
    if num_workers == 0:
        results = (reader[index] for index in range(len(source)))
    else:
        results = torch.utils.data.DataLoader(
            reader, batch_size=None, num_workers=num_workers, collate_fn=_unchanged
        )
    return [result for result in results if result is not None]


def _unchanged(item):
    return item


class _Reader:
    """``reader[i]`` reads item ``i`` and returns None, or a record of why it failed."""

    def __init__(self, source):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        try:
            self.source[index]
        except BadInputError as error:
            return {
                "position": int(index),
                "index": error.index,
                "source": error.source,
                "error": str(error),
            }
        return None
