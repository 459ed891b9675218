"""Text inputs: captions, transcripts and label prompts for text encoders."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["check_texts"]


def check_texts(y, argument: str = "y") -> list[str]:
    """Validate a sequence of non-empty strings (captions, transcripts, label prompts).

    Parameters
    ----------
    y : sequence of str or array of str
    argument : str, default="y"

    Returns
    -------
    texts : list of str
    """
    if isinstance(y, str):
        raise TypeError(f"{argument} is a single string; expected a sequence of strings.")
    if isinstance(y, np.ndarray):
        if y.ndim != 1:
            raise ValueError(f"{argument} must be a 1-D sequence of strings, got shape {y.shape}.")
        items = y.tolist()
    elif isinstance(y, Sequence) or hasattr(y, "__iter__"):
        items = list(y)
    else:
        raise TypeError(f"{argument} is {type(y).__name__}; expected a sequence of strings.")
    if not items:
        raise ValueError(f"{argument} is empty; expected at least one string.")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(
                f"{argument}[{index}] is {type(item).__name__} ({item!r}); the teacher encodes "
                "text, so every item must be a string."
            )
        if not item.strip():
            raise ValueError(f"{argument}[{index}] is an empty string; expected text.")
    return items
