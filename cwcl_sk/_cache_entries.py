"""Entries of the on-disk teacher-embedding cache, written with and checked against their key.

A cache folder is shared by processes and runs, and anyone can write to it: a file left by an
older version, a truncated copy, a row copied under another text's name or one holding NaN.
Each entry is therefore an ``.npz`` holding the embedding beside the format version and the
key it was written for, and :func:`read_entry` only returns an embedding that passes every
check. A failing entry is reported in a warning naming the file and the reason, and counts as
a miss, so the teacher computes the embedding again and the entry is rewritten.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["ENTRY_SUFFIX", "FORMAT_VERSION", "read_entry", "write_entry"]

# Raised whenever the layout of an entry changes, so that old entries are recomputed.
FORMAT_VERSION = 2
ENTRY_SUFFIX = ".npz"


def write_entry(file, row: np.ndarray, key: str) -> None:
    """Write the embedding ``row`` of the item ``key`` to the open binary ``file``.

    Parameters
    ----------
    file : binary file object
    row : ndarray of shape (dim,), dtype float32
    key : str
        What identifies the item (a digest of the teacher and of the input).
    """
    np.savez(
        file,
        embedding=np.asarray(row, dtype=np.float32),
        key=np.array(key),
        version=np.array(FORMAT_VERSION),
    )


def read_entry(path: Path, key: str, width: int | None = None) -> np.ndarray | None:
    """The embedding stored at ``path`` for ``key``, or None when absent or invalid.

    Parameters
    ----------
    path : Path
    key : str
        The key the entry must have been written for.
    width : int, optional
        The width the embedding must have (that of the teacher's other embeddings).

    Returns
    -------
    row : ndarray of shape (dim,), dtype float32, or None
        None for a missing file, and, with a ``UserWarning`` naming the file and the reason,
        for an entry that cannot be read or fails a check.
    """
    if not path.exists():
        return None
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return _reject(path, "it cannot be read as a cache entry (a bare array, not .npz)")
        with loaded as entry:
            version = entry["version"].item()
            stored_key = str(entry["key"])
            row = entry["embedding"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        return _reject(
            path, f"it cannot be read as a cache entry ({type(error).__name__}: {error})"
        )
    problem = _problem(row, version, stored_key, key, width)
    return row if problem is None else _reject(path, problem)


def _problem(row, version, stored_key: str, key: str, width: int | None) -> str | None:
    """What is wrong with an entry, or None."""
    if version != FORMAT_VERSION:
        return f"it has format version {version!r}, expected {FORMAT_VERSION}"
    if stored_key != key:
        return "it was written for another input or teacher (its key does not match)"
    if row.dtype != np.float32 or row.ndim != 1 or row.size == 0:
        return f"its embedding has dtype {row.dtype} and shape {row.shape}, expected float32 (dim,)"
    if width is not None and row.size != width:
        return f"its embedding has {row.size} values, the teacher's others {width}"
    if not np.isfinite(row).all():
        return "its embedding contains NaN or inf"
    return None


def _reject(path: Path, problem: str) -> None:
    warnings.warn(
        f"Ignoring the teacher-embedding cache entry {str(path)!r}: {problem}. The embedding is "
        "computed again and the entry rewritten.",
        UserWarning,
        stacklevel=4,
    )
    return None
