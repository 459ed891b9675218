"""Text inputs: captions, transcripts and label prompts for text encoders, and their tokens."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .audio import pad_batch

__all__ = ["TokenizedTextInputs", "check_texts"]


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


class TokenizedTextInputs:
    """Texts for a trainable text encoder: tokenised once by its tokenizer, batched with masks.

    Parameters
    ----------
    tokenizer : transformers tokenizer
        The student's own tokenizer.
    max_length : int, default=128
        Longer texts are truncated to this many tokens (special tokens included).
    sampling_rate : int, optional
        Ignored (texts have none); accepted so every handler shares one signature.

    Examples
    --------
    >>> from transformers import AutoTokenizer
    >>> from cwcl_sk.encoders.teachers.text import bundled_minilm_path
    >>> from cwcl_sk.inputs import TokenizedTextInputs
    >>> inputs = TokenizedTextInputs(AutoTokenizer.from_pretrained(bundled_minilm_path()))
    >>> data = inputs.prepare(["a cat", "a small black dog"])
    >>> inputs.collate(data, [0, 1])["attention_mask"].tolist()
    [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]
    """

    kind = "text"

    def __init__(self, tokenizer, max_length: int = 128, sampling_rate: int | None = None):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.sampling_rate = sampling_rate

    def prepare(self, X, argument: str = "X") -> list[np.ndarray]:
        """Validate the texts (see :func:`check_texts`) and tokenise each.

        Returns
        -------
        token_ids : list of ndarray of shape (n_tokens_i,), dtype int64
        """
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int):
            raise TypeError(
                f"student__max_length must be an integer >= 2, got {self.max_length!r}."
            )
        if self.max_length < 2:
            raise ValueError(
                f"student__max_length must be an integer >= 2, got {self.max_length!r}."
            )
        texts = check_texts(X, argument)
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        return [np.asarray(ids, dtype=np.int64) for ids in encoded["input_ids"]]

    def collate(self, data: list[np.ndarray], indices) -> dict[str, torch.Tensor]:
        """The texts ``indices`` as ``input_ids`` (batch, max_tokens) and ``attention_mask``."""
        sequences = [data[index] for index in indices]
        pad_id = self.tokenizer.pad_token_id or 0
        input_ids, attention_mask = pad_batch(sequences, pad_value=pad_id, dtype=np.int64)
        return {"input_ids": input_ids, "attention_mask": attention_mask}
