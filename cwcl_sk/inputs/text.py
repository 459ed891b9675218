"""Text inputs: captions, transcripts and label prompts for text encoders, and their tokens."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from .audio import pad_batch

__all__ = ["TokenizedTextInputs", "check_texts", "count_truncated_texts", "warn_truncated_texts"]


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
        _check_encodable(item, f"{argument}[{index}]")
    return items


def _check_encodable(text: str, name: str) -> None:
    """Reject text that has no UTF-8 form, which tokenizers (and the cache's keys) need."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{name} cannot be encoded as UTF-8: character {error.start} is "
            f"{text[error.start]!r} ({error.reason}). A lone surrogate like this one comes "
            "from decoding bytes with errors='surrogateescape' or from a broken UTF-16 pair; "
            "decode the source text correctly, or drop the character "
            "(text.encode('utf-8', 'ignore').decode())."
        ) from None


def count_truncated_texts(tokenizer, texts: list[str], max_tokens: int) -> int:
    """How many of ``texts`` are longer than ``max_tokens`` tokens (special tokens included).

    Parameters
    ----------
    tokenizer : transformers tokenizer
    texts : list of str
    max_tokens : int

    Returns
    -------
    n_truncated : int
    """
    # Tokenising to one token past the limit tells long from short without the cost (or the
    # tokenizer's own warning) of tokenising a long text in full.
    encoded = tokenizer(list(texts), truncation=True, max_length=max_tokens + 1)
    return sum(len(ids) > max_tokens for ids in encoded["input_ids"])


def warn_truncated_texts(tokenizer, texts: list[str], max_tokens, who: str) -> int:
    """Warn, once for all of ``texts``, how many the encoder ``who`` will truncate.

    An encoder reads at most ``max_tokens`` tokens and silently drops the rest of a longer
    text, so two long texts that differ only in their ends get the same embedding.

    Parameters
    ----------
    tokenizer : transformers tokenizer or None
    texts : list of str
    max_tokens : int or None
        The encoder's limit; None (or no tokenizer) means none is known and nothing is checked.
    who : str
        The encoder, as the warning names it (``"teacher"``).

    Returns
    -------
    n_truncated : int
    """
    if tokenizer is None or max_tokens is None or not texts:
        return 0
    n_truncated = count_truncated_texts(tokenizer, texts, int(max_tokens))
    if n_truncated:
        warnings.warn(
            f"{n_truncated} of {len(texts)} distinct texts are longer than the {who}'s limit of "
            f"{int(max_tokens)} tokens and are truncated to it: the rest of each is not seen. "
            "Shorten or split them to keep all of their content.",
            UserWarning,
            stacklevel=2,
        )
    return n_truncated


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
