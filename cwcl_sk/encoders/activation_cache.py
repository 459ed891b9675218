"""Per-clip outputs of a student's frozen lower layers, computed once per fit.

A pretrained speech student is often fine-tuned with its front end and lower layers frozen
(``student__trainable_layers``). Those layers are deterministic functions of the clip, so
running them again every epoch repeats work: on a CPU it is most of the cost of a step.
:class:`ActivationCache` keeps their output per clip, keyed by a digest of the clip's samples
and the depth of the frozen part, so each clip passes through the frozen layers once.

The cache is working memory, not learned state: it is never pickled, deep-copied or saved
with the model, and a fresh or unpickled student starts with an empty one.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Hashable

import torch

__all__ = ["DEFAULT_CACHE_BYTES", "ActivationCache", "clip_digest"]

# 4 GiB holds the frozen outputs of about 30 hours of speech for Whisper tiny (width 384,
# 50 frames per second, float32).
DEFAULT_CACHE_BYTES = 4 * 2**30


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
    array = clip.detach().to("cpu").contiguous().numpy()
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(f"{array.dtype.str}:{array.shape}:".encode())
    hasher.update(array.tobytes())
    return hasher.digest()


class ActivationCache:
    """A bounded map from a key to a CPU tensor, filled until it is full.

    Entries are never evicted: a training set is read in a new order every epoch, and with
    least-recently-used eviction a set larger than the bound would miss on every read. When
    full, the cache keeps what it has and further entries are computed every time.

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

    def get(self, key: Hashable) -> torch.Tensor | None:
        """The stored tensor of ``key``, or None."""
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                self.misses += 1
            else:
                self.hits += 1
            return row

    def put(self, key: Hashable, row: torch.Tensor) -> None:
        """Store a detached CPU copy of ``row`` under ``key`` if it fits in the bound."""
        size = row.numel() * row.element_size()
        with self._lock:
            if key in self._rows or self.n_bytes + size > self.max_bytes:
                return
            self._rows[key] = row.detach().to("cpu", copy=True)
            self.n_bytes += size

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
