"""A fingerprint of training pairs, so that a resumed run can tell it is given the same data.

The student side is hashed as prepared (arrays, clips, file paths), the teacher side as given
(texts, embedding rows, images): never the teacher's embeddings, whose last bits may differ
from one device or thread count to another and would make the same data look different.
"""

from __future__ import annotations

import hashlib
import numbers

import numpy as np
import torch

__all__ = ["pairs_fingerprint"]


def _update(digest, value) -> None:
    """Feed ``value`` into ``digest``, with its type and shape, so that no two forms collide."""
    if hasattr(value, "fingerprint") and callable(value.fingerprint):
        # A clip source read on demand: its own cheap digest (paths and sizes, a store's
        # header), never a pass that decodes the corpus.
        digest.update(f"source {type(value).__name__} {value.fingerprint()};".encode())
        return
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.dtype != object:
        array = np.ascontiguousarray(value)
        digest.update(f"array {array.dtype.str} {array.shape};".encode())
        digest.update(array.data)
    elif isinstance(value, str):
        encoded = value.encode("utf-8", "surrogatepass")
        digest.update(f"str {len(encoded)};".encode() + encoded)
    elif isinstance(value, bytes):
        digest.update(f"bytes {len(value)};".encode() + value)
    elif value is None or isinstance(value, numbers.Number):
        digest.update(f"scalar {value!r};".encode())
    elif isinstance(value, list | tuple | np.ndarray):
        digest.update(f"sequence {len(value)};".encode())
        for item in value:
            _update(digest, item)
    elif hasattr(value, "pixels"):
        _update(digest, np.asarray(value.pixels))  # an ImageItem
    else:
        # A PIL image, a pandas Series, ...: their array form.
        _update(digest, np.asarray(value))


def pairs_fingerprint(student_inputs, teacher_inputs) -> str:
    """A short hex digest of training pairs, order included.

    Parameters
    ----------
    student_inputs : object
        The prepared student-side inputs.
    teacher_inputs : object
        The teacher-side inputs as given (texts, arrays, images).

    Returns
    -------
    fingerprint : str
        32 hex digits of SHA-256.
    """
    digest = hashlib.sha256()
    _update(digest, student_inputs)
    _update(digest, teacher_inputs)
    return digest.hexdigest()[:32]
