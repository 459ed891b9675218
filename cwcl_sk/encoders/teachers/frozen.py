"""The frozen teacher: eval-locked, gradient-free, with an embedding cache.

A teacher turns teacher-side inputs (texts, precomputed vectors or numeric features) into
L2-normalised float32 embeddings. It never trains, so its output for a given input never
changes: embeddings of named teachers are cached per process, keyed by (teacher, input), which
makes repeated fits (cross-validation, grid search over the loss) encode each text only once.

With a ``cache_dir`` the embeddings are also kept on disk, one ``.npz`` file per (teacher,
input), so that other processes (``GridSearchCV(n_jobs=4)``, ``torchrun`` ranks, tomorrow's
rerun) find them there instead of encoding them again.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..._cache_entries import ENTRY_SUFFIX, read_entry, write_entry
from ...inputs import (
    check_embeddings,
    check_features,
    check_texts,
    unique_float_rows,
    unique_rows,
    warn_truncated_texts,
)

__all__ = [
    "FrozenModule",
    "FrozenTeacher",
    "ModuleTeacher",
    "PrecomputedTeacher",
    "SentenceTransformerTeacher",
    "clear_teacher_cache",
]


class FrozenModule(nn.Module):
    """Wrap a module so that it stays in eval mode and never receives gradients.

    ``train()`` is overridden (as open_clip does for locked towers) so that putting a parent
    module into training mode cannot switch dropout or batch-norm updates back on.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.module.requires_grad_(False)
        self.module.eval()

    def train(self, mode: bool = True):
        """Keep the wrapped module in eval mode whatever ``mode`` says."""
        self.training = False
        self.module.eval()
        return self

    def forward(self, *args, **kwargs):
        with torch.no_grad():
            return self.module(*args, **kwargs)


class _EmbeddingCache:
    """A bounded, thread-safe map from (teacher key, input) to an embedding row."""

    def __init__(self, max_items: int = 500_000):
        self.max_items = max_items
        self._rows: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            row = self._rows.get(key)
            if row is not None:
                self._rows.move_to_end(key)
            return row

    def put(self, key, row: np.ndarray) -> None:
        with self._lock:
            self._rows[key] = row
            self._rows.move_to_end(key)
            while len(self._rows) > self.max_items:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)


_EMBEDDINGS = _EmbeddingCache()


def clear_teacher_cache() -> None:
    """Forget every cached teacher embedding in this process.

    Teachers are frozen, so the cache is never stale for the same teacher weights; clear it to
    free memory, or after changing a teacher's files on disk under the same path. An on-disk
    cache (``cache_dir``) is left alone: delete its folder to forget it.
    """
    _EMBEDDINGS.clear()


def _digest(value) -> str:
    """A stable SHA-256 hex digest of a text, a NumPy row or (for cache keys) any repr."""
    hasher = hashlib.sha256()
    if isinstance(value, str):
        hasher.update(b"str:" + value.encode("utf-8"))
    elif isinstance(value, np.ndarray):
        hasher.update(f"array:{value.dtype.str}:{value.shape}:".encode())
        hasher.update(np.ascontiguousarray(value).tobytes())
    else:
        hasher.update(b"repr:" + repr(value).encode("utf-8"))
    return hasher.hexdigest()


class _DiskCache:
    """One teacher's embeddings on disk: ``<directory>/<teacher digest>/<ab>/<item digest>.npz``.

    Files are written to a temporary name in the same folder and renamed into place, which is
    atomic: concurrent writers (processes of a grid search, ranks of a torchrun) may write the
    same item, and readers see a whole file or none. Each entry carries its key and format
    version; one that is unreadable or fails a check (see :mod:`cwcl_sk._cache_entries`) is
    reported in a warning and counts as a miss.

    Parameters
    ----------
    directory : str or path-like
    teacher_key : hashable
        The teacher's ``cache_key``; its repr names the folder (and is written to
        ``teacher.txt`` in it, for people browsing the cache).
    """

    def __init__(self, directory, teacher_key):
        self.folder = Path(directory) / _digest(teacher_key)[:32]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.width = None  # of the stored rows, once one is read or written
        label = self.folder / "teacher.txt"
        if not label.exists():
            _write_atomically(label, lambda file: file.write(repr(teacher_key).encode()))

    def _path(self, item) -> Path:
        digest = _digest(item)
        # 256 sub-folders keep directories small for corpora of millions of texts.
        return self.folder / digest[:2] / f"{digest}{ENTRY_SUFFIX}"

    def _entry_key(self, item) -> str:
        """What an entry must have been written for: this teacher and this item."""
        return f"{self.folder.name}/{_digest(item)}"

    def get(self, item) -> np.ndarray | None:
        """The stored row of ``item``, or None (missing, or invalid with a warning)."""
        row = read_entry(self._path(item), self._entry_key(item), width=self.width)
        if row is not None:
            self.width = row.size
        return row

    def put(self, item, row: np.ndarray) -> None:
        """Store the float32 row of ``item``."""
        path, key = self._path(item), self._entry_key(item)
        path.parent.mkdir(exist_ok=True)
        self.width = row.size
        _write_atomically(path, lambda file: write_entry(file, row, key))


def _write_atomically(path: Path, write: Callable) -> None:
    """``write(file)`` to a temporary file next to ``path``, then rename it to ``path``."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class FrozenTeacher:
    """Base class of teachers: validated inputs in, unit-norm float32 embeddings out.

    Subclasses implement :meth:`_validate` (argument checking and conversion) and
    :meth:`_encode_unique` (embed distinct items). The base class removes duplicates, so a
    corpus where many clips share one transcript encodes each transcript once.

    Attributes
    ----------
    input_kind : str
        What the teacher reads: ``"text"``, ``"embeddings"`` or ``"features"``.
    n_encoded : int
        Items actually passed through the model so far (cache hits excluded).
    cache_dir : str, path-like or None
        Folder of the on-disk cache shared by processes; None keeps the cache in memory.
        Only teachers with a ``cache_key`` use either cache.
    """

    input_kind = "text"

    def __init__(self):
        self.n_encoded = 0
        self.cache_dir = None

    @property
    def cache_key(self):
        """Identity under which embeddings are cached across instances, or None (no cache)."""
        return None

    def encode(self, y, argument: str = "y") -> np.ndarray:
        """Embed teacher-side inputs.

        Parameters
        ----------
        y : sequence
            Inputs the teacher reads (see ``input_kind``).
        argument : str, default="y"
            Name used in error messages.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, dim), dtype float32, rows of unit norm
        """
        items = self._validate(y, argument)
        uniques, inverse = unique_rows(items)
        unique_embeddings = self._encode_cached(uniques)
        return unique_embeddings[inverse]

    def encode_unique(self, y, argument: str = "y") -> tuple[list, np.ndarray, np.ndarray]:
        """Like :meth:`encode`, but return (unique items, their embeddings, inverse index)."""
        items = self._validate(y, argument)
        uniques, inverse = unique_rows(items)
        return uniques, self._encode_cached(uniques), inverse

    def encode_unique_on_disk(
        self, y, directory, argument: str = "y", chunk_size: int = 4096
    ) -> tuple[list, np.ndarray, np.ndarray]:
        """Like :meth:`encode_unique`, with the embeddings in a memory-mapped ``.npy`` file.

        For a corpus whose embeddings should not sit in memory: the distinct items are
        encoded ``chunk_size`` at a time through the per-item disk cache (so an interrupted
        run resumes, a later one runs the teacher on new items only, and every stored entry
        is checked as it is read) and written into
        ``<directory>/<teacher>/pairs/<digest of the items>.npy``, which is then
        memory-mapped. The process-wide cache is left alone, so that memory does not grow
        with the corpus.

        Parameters
        ----------
        y : sequence
        directory : str or path-like
            The cache folder (an aligner's ``cache_dir``).
        argument : str, default="y"
        chunk_size : int, default=4096

        Returns
        -------
        uniques : list
        embeddings : numpy.memmap of shape (n_unique, dim), read-only
            Teachers without a ``cache_key`` return an in-memory array instead.
        inverse : ndarray of shape (n_samples,)
        """
        key = self.cache_key
        if key is None:
            return self.encode_unique(y, argument)
        items = self._validate(y, argument)
        uniques, inverse = unique_rows(items)
        folder = Path(directory) / _digest(key)[:32] / "pairs"
        hasher = hashlib.sha256()
        for item in uniques:
            hasher.update(_digest(item).encode())
        path = folder / f"{hasher.hexdigest()[:32]}.npy"
        folder.mkdir(parents=True, exist_ok=True)
        self._write_rows(uniques, path, int(chunk_size))
        return uniques, np.load(path, mmap_mode="r"), inverse

    def _write_rows(self, uniques: list, path: Path, chunk_size: int) -> None:
        """Encode ``uniques`` chunk by chunk into ``path``, renamed into place when complete."""
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npy")
        rows = None
        try:
            for start in range(0, len(uniques), chunk_size):
                chunk = self._encode_cached(uniques[start : start + chunk_size], remember=False)
                if rows is None:
                    shape = (len(uniques), chunk.shape[1])
                    rows = np.lib.format.open_memmap(partial, "w+", np.float32, shape)
                rows[start : start + len(chunk)] = chunk
            rows.flush()
            del rows
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def _encode_cached(self, uniques: list, remember: bool = True) -> np.ndarray:
        key = self.cache_key
        if key is None:
            embeddings = self._encode_unique(uniques)
            self.n_encoded += len(uniques)
            return embeddings
        # getattr: teachers pickled before cache_dir existed have no such attribute.
        cache_dir = getattr(self, "cache_dir", None)
        disk = None if cache_dir is None else _DiskCache(cache_dir, key)
        cached = [_EMBEDDINGS.get((key, item)) for item in uniques]
        missing = [index for index, row in enumerate(cached) if row is None]
        if disk is not None:
            missing = self._read_from_disk(disk, key, uniques, cached, missing, remember)
        if missing:
            fresh = self._encode_unique([uniques[index] for index in missing])
            self.n_encoded += len(missing)
            for index, row in zip(missing, fresh, strict=True):
                cached[index] = _remember(key, uniques[index], row, remember)
                if disk is not None:
                    disk.put(uniques[index], cached[index])
        return np.stack(cached).astype(np.float32, copy=False)

    @staticmethod
    def _read_from_disk(disk: _DiskCache, key, uniques, cached, missing, remember=True) -> list:
        """Fill ``cached`` from disk where possible; return the indices still missing."""
        still_missing = []
        for index in missing:
            row = disk.get(uniques[index])
            if row is None:
                still_missing.append(index)
            else:
                cached[index] = _remember(key, uniques[index], row, remember)
        return still_missing

    def _validate(self, y, argument):
        raise NotImplementedError

    def _encode_unique(self, items: list) -> np.ndarray:
        raise NotImplementedError


def _remember(key, item, row, remember: bool = True) -> np.ndarray:
    """A read-only float32 copy of ``row``, put in the process cache when ``remember``."""
    row = np.array(row, dtype=np.float32)
    row.setflags(write=False)
    if remember:
        _EMBEDDINGS.put((key, item), row)
    return row


def _normalise(embeddings: np.ndarray, who: str) -> np.ndarray:
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if not np.isfinite(embeddings).all():
        raise FloatingPointError(f"The {who} produced NaN or inf embeddings.")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, 1e-12)


class PrecomputedTeacher(FrozenTeacher):
    """Teacher whose embeddings the user computed beforehand: ``y`` is (n_samples, dim).

    Parameters
    ----------
    dim : int, optional
        Width the embeddings must have; set after the first fit so that later calls are checked.
    """

    input_kind = "embeddings"

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def _validate(self, y, argument):
        embeddings = check_embeddings(y, argument, n_dims=self.dim)
        if self.dim is None:
            self.dim = embeddings.shape[1]
        return embeddings

    def encode(self, y, argument: str = "y") -> np.ndarray:
        """Validate and L2-normalise ``y``: the embeddings are the input rows."""
        return self._validate(y, argument)

    def encode_unique(self, y, argument: str = "y") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(unique rows, the same rows as embeddings, inverse index), vectorised.

        The unique rows come as one (n_unique, dim) array rather than a list of rows: a
        corpus of precomputed embeddings can hold millions of them.
        """
        embeddings = self._validate(y, argument)
        uniques, inverse = unique_float_rows(embeddings)
        self.n_encoded += len(uniques)
        return uniques, uniques, inverse

    def _encode_unique(self, items: list) -> np.ndarray:
        return np.stack(items).astype(np.float32, copy=False)


class ModuleTeacher(FrozenTeacher):
    """Any frozen ``torch.nn.Module`` applied to numeric teacher-side features.

    A 1-D ``y`` is read as one feature per sample. The module must map a float32 tensor of
    shape (batch, n_features) to (batch, dim).

    Parameters
    ----------
    module : torch.nn.Module
    batch_size : int, default=256
    device : str or torch.device, default="cpu"
    """

    input_kind = "features"

    def __init__(self, module: nn.Module, batch_size: int = 256, device="cpu"):
        super().__init__()
        # A private copy: freezing must not alter the user's module, and later changes to
        # that module must not alter a fitted estimator.
        self.module = FrozenModule(copy.deepcopy(module))
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.n_features = None

    def _validate(self, y, argument):
        array = np.asarray(y) if not isinstance(y, np.ndarray) else y
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        features = check_features(array, argument)
        if self.n_features is not None and features.shape[1] != self.n_features:
            raise ValueError(
                f"{argument} has {features.shape[1]} features, but the teacher was used with "
                f"{self.n_features} in fit."
            )
        self.n_features = features.shape[1]
        return features

    def _encode_unique(self, items: list) -> np.ndarray:
        features = torch.from_numpy(np.stack(items))
        self.module.to(self.device)
        outputs = []
        for start in range(0, len(features), self.batch_size):
            chunk = features[start : start + self.batch_size].to(self.device)
            output = self.module(chunk)
            if not isinstance(output, torch.Tensor) or output.ndim != 2:
                raise TypeError(
                    "teacher module must return a 2-D tensor (batch, dim), got "
                    f"{type(output).__name__} {getattr(output, 'shape', '')}."
                )
            outputs.append(output.float().cpu().numpy())
        return _normalise(np.concatenate(outputs), "teacher module")


class SentenceTransformerTeacher(FrozenTeacher):
    """A sentence-transformers text encoder, frozen.

    Parameters
    ----------
    loader : callable or None
        ``loader()`` returns the ``SentenceTransformer``. Named teachers are reloaded through it
        after unpickling instead of carrying their weights inside the pickle. None when
        ``model`` is given.
    name : str or None
        Alias or path the model came from. None for a model object the user passed in; such a
        model is pickled with its weights and its embeddings are not shared across instances.
    batch_size : int, default=64
    device : str or torch.device, default="cpu"
    model : SentenceTransformer, optional
        An already loaded model.
    """

    input_kind = "text"

    def __init__(
        self,
        loader: Callable | None,
        name: str | None,
        batch_size: int = 64,
        device="cpu",
        model=None,
    ):
        super().__init__()
        self.loader = loader
        self.name = name
        self.batch_size = batch_size
        self.device = str(device)
        self._model = model

    @property
    def cache_key(self):
        return None if self.name is None else ("sentence-transformers", self.name)

    @property
    def model(self):
        """The underlying ``SentenceTransformer``, loaded on first use."""
        if self._model is None:
            self._model = self.loader()
            self._model.requires_grad_(False)
            self._model.eval()
        return self._model

    @property
    def dim(self) -> int:
        """Width of the embeddings."""
        model = self.model
        # sentence-transformers renamed the method; support both spellings.
        getter = getattr(model, "get_embedding_dimension", None)
        getter = getter or model.get_sentence_embedding_dimension
        return int(getter())

    def _validate(self, y, argument):
        return check_texts(y, argument)

    def _encode_unique(self, items: list) -> np.ndarray:
        model = self.model
        model.eval()
        # Counts the texts encoded now: a cached text was warned about when it was encoded.
        # A model without a text tokenizer or a length limit (an image model) has no limit.
        limit = getattr(model, "max_seq_length", None)
        warn_truncated_texts(getattr(model, "tokenizer", None), items, limit, "teacher")
        with torch.no_grad():
            embeddings = model.encode(
                items,
                batch_size=self.batch_size,
                device=self.device,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return _normalise(embeddings, f"teacher {self.name or 'model'}")

    def __getstate__(self):
        state = self.__dict__.copy()
        if self.name is not None:
            # Named teachers are reloaded from their alias or path: the pickle stays small.
            state["_model"] = None
        return state
