"""Frozen models loaded once per process and device, and shared by every estimator.

Teachers are frozen, so every estimator (clones in a grid search included) can use one
instance: loading is paid once. Loading runs under a lock, so threads (joblib's threading
backend, notebooks) never load the same model twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["load_shared"]

Model = TypeVar("Model")

_SHARED: dict[tuple[str, str, str], object] = {}
_LOCK = threading.Lock()


def load_shared(kind: str, name_or_path, device, load: Callable[[], Model]) -> Model:
    """``load()`` the first time (``kind``, ``name_or_path``, ``device``) is asked for.

    Parameters
    ----------
    kind : str
        What sort of model it is (e.g. ``"sentence-transformer"``), so that one folder loaded
        two ways gives two entries.
    name_or_path : str or path-like
    device : str or torch.device
    load : callable
        Returns the model; called at most once per key (unless it raises).

    Returns
    -------
    model : object
        The shared instance.
    """
    key = (kind, str(name_or_path), str(device))
    with _LOCK:
        if key not in _SHARED:
            _SHARED[key] = load()
        return _SHARED[key]
