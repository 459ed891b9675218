"""Per-clip outputs of a student's frozen lower layers, computed once per process.

A pretrained speech student is often fine-tuned with its front end and lower layers frozen
(``student__trainable_layers``). Those layers are deterministic functions of the clip, so
running them again every epoch repeats work: on a CPU it is most of the cost of a step.
:class:`ActivationCache` keeps their output per clip, keyed by a digest of the frozen part's
weights (:func:`module_digest`) and a digest of the clip's samples (:func:`clip_digest`).

One cache serves the whole process (:func:`shared_activation_cache`): every fit of a grid
search, a cross-validation or a benchmark that freezes the same layers of the same checkpoint
reads the clips the first fit computed. Because the key holds the weights' digest, a model
whose frozen part differs never reads another's entries. The cache is working memory, not
learned state: it is never pickled or saved with a model; :func:`clear_activation_cache`
frees it.

That cache lives in memory, up to a bound, so a corpus larger than the bound computes the
excess every epoch. :class:`DiskActivationCache` keeps the entries in a folder instead, one
file each: it holds nothing in memory, lasts across processes, and serves every process that
shares the folder (the ranks of a distributed fit, the jobs of a grid search).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "ActivationCache",
    "DiskActivationCache",
    "check_cache_frozen",
    "clear_activation_cache",
    "clip_digest",
    "module_digest",
    "shared_activation_cache",
]

# 4 GiB holds the frozen outputs of about 30 hours of speech for Whisper tiny (width 384,
# 50 frames per second, float32).
DEFAULT_CACHE_BYTES = 4 * 2**30


def _update(hasher, tensor: torch.Tensor) -> None:
    """Feed a tensor's dtype, shape and values to ``hasher``."""
    array = tensor.detach().to("cpu").contiguous().numpy()
    hasher.update(f"{array.dtype.str}:{array.shape}:".encode())
    hasher.update(array.tobytes())


def clip_digest(clip: torch.Tensor) -> bytes:
    """A 16-byte digest of a clip's samples (dtype and length included).

    Parameters
    ----------
    clip : torch.Tensor
        One unpadded clip, on any device.

    Returns
    -------
    digest : bytes
    """
    hasher = hashlib.blake2b(digest_size=16)
    _update(hasher, clip)
    return hasher.digest()


def module_digest(*parts) -> bytes:
    """A 16-byte digest of the parameters and buffers of ``parts`` (modules or tensors).

    Parameters
    ----------
    *parts : torch.nn.Module, torch.Tensor or str
        What the cached computation depends on; strings stand for settings (e.g. a hop).

    Returns
    -------
    digest : bytes
    """
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, torch.nn.Module):
            tensors = [*part.parameters(), *part.buffers()]
        elif isinstance(part, torch.Tensor):
            tensors = [part]
        else:
            hasher.update(f"<{part}>".encode())
            continue
        for tensor in tensors:
            _update(hasher, tensor)
    return hasher.digest()


class ActivationCache:
    """A bounded map from ``(group, item)`` keys to CPU tensors.

    The group names the computation (for a student, the digest of its frozen part) and the
    item its input. Within a group entries are never evicted: a training set is read in a new
    order every epoch, and with least-recently-used eviction a set larger than the bound would
    miss on every read. When an entry does not fit, the entries of *other* groups (models no
    longer trained) are dropped first; if it still does not fit, the cache keeps what it has
    and further entries are computed every time.

    Parameters
    ----------
    max_bytes : int, default=DEFAULT_CACHE_BYTES
        Bound on the total size of the stored tensors.

    Attributes
    ----------
    n_bytes : int
        Size of the stored tensors.
    hits, misses : int
        Lookups answered from the cache and not, since creation or :meth:`clear`.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.max_bytes = int(max_bytes)
        self._rows: dict = {}
        self._lock = threading.Lock()
        self.n_bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: tuple) -> torch.Tensor | None:
        """The stored tensor of ``key``, or None."""
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                self.misses += 1
            else:
                self.hits += 1
            return row

    def put(self, key: tuple, row: torch.Tensor) -> None:
        """Store a detached CPU copy of ``row`` under ``key`` = ``(group, item)`` if it fits."""
        size = row.numel() * row.element_size()
        with self._lock:
            if key in self._rows:
                return
            if self.n_bytes + size > self.max_bytes:
                self._drop_other_groups(key[0])
            if self.n_bytes + size > self.max_bytes:
                return
            self._rows[key] = row.detach().to("cpu", copy=True)
            self.n_bytes += size

    def _drop_other_groups(self, group: Hashable) -> None:
        for key in [key for key in self._rows if key[0] != group]:
            row = self._rows.pop(key)
            self.n_bytes -= row.numel() * row.element_size()

    def clear(self) -> None:
        """Forget every entry and reset the counters."""
        with self._lock:
            self._rows.clear()
            self.n_bytes = self.hits = self.misses = 0

    # Working memory only: copies and pickles start empty.
    def __getstate__(self) -> dict:
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_bytes"])

    def __deepcopy__(self, memo) -> ActivationCache:
        return ActivationCache(self.max_bytes)


_SHARED = ActivationCache()


def shared_activation_cache() -> ActivationCache:
    """The process-wide cache the students use (bounded by :data:`DEFAULT_CACHE_BYTES`)."""
    return _SHARED


def clear_activation_cache() -> None:
    """Free every cached activation of this process."""
    _SHARED.clear()


class DiskActivationCache:
    """A map from ``(group, item)`` digest keys to CPU tensors, one ``.npy`` file an entry.

    Entry ``(group, item)`` is the file ``directory/<group hex>/<item hex[:2]>/<item hex>.npy``
    (the middle level keeps folders small). Nothing is held in memory and nothing is ever
    evicted: the folder grows until it is removed, which is the user's to do.

    Several processes may share the folder: each entry is written to a temporary file beside
    its name and renamed onto it, so a reader sees a whole entry or none. A file that cannot
    be read (truncated, corrupted) counts as a miss, with a warning, and is replaced when the
    entry is computed again. A failed write (a full disk) warns once and leaves the entry to
    be computed again next time.

    Parameters
    ----------
    directory : str or path-like
        Created when the first entry is written.

    Attributes
    ----------
    directory : pathlib.Path
    hits, misses : int
        Lookups of this object answered from the folder and not.

    Notes
    -----
    bfloat16 tensors, which numpy lacks, are stored as their 16-bit patterns (``uint16``
    files) and come back as bfloat16; other dtypes are stored as they are. The cache pickles
    as its folder, with fresh counters.
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0
        self._warned_write = False

    def path(self, key: tuple) -> Path:
        """The file of entry ``key`` = ``(group digest, item digest)`` (bytes each)."""
        group, item = (part.hex() for part in key)
        return self.directory / group / item[:2] / f"{item}.npy"

    def get(self, key: tuple) -> torch.Tensor | None:
        """The stored tensor of ``key``, or None."""
        path = self.path(key)
        try:
            array = np.load(path, allow_pickle=False)
        except (FileNotFoundError, NotADirectoryError):
            self.misses += 1
            return None
        except (OSError, ValueError, EOFError) as error:
            warnings.warn(
                f"Unreadable activation cache entry {path} ({type(error).__name__}: {error}); "
                "computing it again.",
                RuntimeWarning,
                stacklevel=2,
            )
            self.misses += 1
            return None
        self.hits += 1
        return _tensor_of(array)

    def put(self, key: tuple, row: torch.Tensor) -> None:
        """Write a copy of ``row`` under ``key``, replacing what the file held."""
        path = self.path(key)
        temporary = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(handle, "wb") as file:
                np.save(file, _array_of(row), allow_pickle=False)
            os.replace(temporary, path)
        except OSError as error:
            if temporary is not None and os.path.lexists(temporary):
                os.unlink(temporary)
            if not self._warned_write:
                self._warned_write = True
                warnings.warn(
                    f"Cannot write to the activation cache in {self.directory} "
                    f"({type(error).__name__}: {error}); entries that fail to write are "
                    "computed again when next needed.",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def __len__(self) -> int:
        """The number of entries in the folder (walks it: slow for large caches)."""
        return sum(1 for _ in self.directory.glob("*/*/*.npy"))

    def __reduce__(self):
        return type(self), (os.fspath(self.directory),)

    def __repr__(self) -> str:
        return f"DiskActivationCache({os.fspath(self.directory)!r})"


def _array_of(row: torch.Tensor) -> np.ndarray:
    row = row.detach().to("cpu")
    if row.dtype == torch.bfloat16:
        return row.contiguous().view(torch.int16).numpy().view(np.uint16)
    return row.contiguous().numpy()


def _tensor_of(array: np.ndarray) -> torch.Tensor:
    if array.dtype == np.uint16:  # activations are never integers: bfloat16 bits
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


# Strings a user writes for a flag; as folder names they are almost certainly a mistake.
_FLAG_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "1", "0", ""}


def check_cache_frozen(value, option: str = "student__cache_frozen") -> bool | str:
    """Validate a student's ``cache_frozen``: True (memory), False, or a folder path.

    Parameters
    ----------
    value : bool, str or path-like
    option : str, default="student__cache_frozen"
        The name error messages give the option.

    Returns
    -------
    cache_frozen : bool or str
        The flag, or the folder as a string.

    Raises
    ------
    TypeError
        For anything else, including a string that spells a flag (``"yes"``, ``"false"``):
        pass such a folder as ``pathlib.Path`` or ``"./yes"``.
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, os.PathLike) or (
        isinstance(value, str) and value.strip().lower() not in _FLAG_WORDS
    ):
        return os.fspath(value)
    raise TypeError(
        f"{option} must be True or False, or a folder path (str or path-like) for a cache on "
        f"disk, got {value!r}."
    )
