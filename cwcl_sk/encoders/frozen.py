"""The frozen teacher: eval-locked, gradient-free, with an embedding cache.

A teacher turns teacher-side inputs (texts, precomputed vectors or numeric features) into
L2-normalised float32 embeddings. It never trains, so its output for a given input never
changes: embeddings of named teachers are cached per process, keyed by (teacher, input), which
makes repeated fits (cross-validation, grid search over the loss) encode each text only once.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..inputs import check_embeddings, check_features, check_texts, unique_rows

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
    free memory, or after changing a teacher's files on disk under the same path.
    """
    _EMBEDDINGS.clear()


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
    """

    input_kind = "text"

    def __init__(self):
        self.n_encoded = 0

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

    def _encode_cached(self, uniques: list) -> np.ndarray:
        key = self.cache_key
        if key is None:
            embeddings = self._encode_unique(uniques)
            self.n_encoded += len(uniques)
            return embeddings
        cached = [_EMBEDDINGS.get((key, item)) for item in uniques]
        missing = [index for index, row in enumerate(cached) if row is None]
        if missing:
            fresh = self._encode_unique([uniques[index] for index in missing])
            self.n_encoded += len(missing)
            for index, row in zip(missing, fresh, strict=True):
                row = np.array(row, dtype=np.float32)
                row.setflags(write=False)
                _EMBEDDINGS.put((key, uniques[index]), row)
                cached[index] = row
        return np.stack(cached).astype(np.float32, copy=False)

    def _validate(self, y, argument):
        raise NotImplementedError

    def _encode_unique(self, items: list) -> np.ndarray:
        raise NotImplementedError


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
