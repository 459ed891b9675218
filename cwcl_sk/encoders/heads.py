"""The projection head every student ends in, and the probe of a student's output width.

:class:`EmbeddingModel` adds a trainable linear projection when the student's width differs
from the teacher's and L2-normalises the output, so the rest of the library sees one interface
whatever the student: a batch in, unit vectors of the teacher's width out.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EmbeddingModel", "output_width"]


def output_width(module: nn.Module, sample_batch, argument: str = "student") -> int:
    """Run one batch through ``module`` without gradient and return its output width."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            output = module(sample_batch)
    except Exception as error:
        raise ValueError(
            f"{argument} could not encode a batch of the training inputs: "
            f"{type(error).__name__}: {error}"
        ) from error
    finally:
        module.train(was_training)
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        raise TypeError(
            f"{argument} must return a 2-D tensor (batch, width); got "
            f"{type(output).__name__} with shape {tuple(getattr(output, 'shape', ()))}."
        )
    return int(output.shape[1])


class EmbeddingModel(nn.Module):
    """A student encoder followed by an optional projection head and L2 normalisation.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps a batch to (batch, width).
    encoder_width : int
        The encoder's output width.
    output_dim : int
        The teacher's embedding width. When it differs from ``encoder_width``, or when the
        encoder sets ``needs_projection = True`` (a pretrained model with every layer frozen,
        ``student__trainable_layers=0``), a trainable
        ``nn.Linear(encoder_width, output_dim, bias=False)`` is added.
    """

    def __init__(self, encoder: nn.Module, encoder_width: int, output_dim: int):
        super().__init__()
        self.encoder = encoder
        needs_projection = getattr(encoder, "needs_projection", False)
        self.projection = (
            nn.Linear(encoder_width, output_dim, bias=False)
            if encoder_width != output_dim or needs_projection
            else nn.Identity()
        )
        self.output_dim = output_dim

    def forward(self, batch) -> torch.Tensor:
        # (batch, encoder_width) -> (batch, output_dim), unit norm
        embeddings = self.projection(self.encoder(batch))
        return nn.functional.normalize(embeddings.float(), dim=-1)
