"""Helpers shared by the transformers students (speech, image and text): loading and freezing.

Every transformers student follows one recipe: ``student__name_or_path`` (a local folder or a
Hugging Face id) and ``student__pretrained`` choose between ``from_pretrained`` and a random
initialisation from a config (read from disk or the cache only, never downloaded); any other
``student__<field>`` overrides a config field; ``trainable_layers`` freezes all but the top
layers. The helpers here implement that recipe once.
"""

from __future__ import annotations

import numbers
import os

import numpy as np
import torch
from torch import nn

__all__ = ["masked_mean"]


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions where ``mask`` is true.

    Parameters
    ----------
    hidden : torch.Tensor of shape (batch, length, width)
    mask : torch.Tensor of shape (batch, length), bool

    Returns
    -------
    pooled : torch.Tensor of shape (batch, width)
    """
    mask = mask.unsqueeze(-1)  # (batch, length, 1)
    total = hidden.masked_fill(~mask, 0.0).sum(dim=1)  # (batch, width)
    return total / mask.sum(dim=1).clamp_min(1).to(hidden.dtype)


def _source(name_or_path, checkpoint: str) -> str:
    """Where to load from: ``name_or_path`` (``~`` expanded), else the default checkpoint."""
    if name_or_path is None:
        return checkpoint
    source = os.path.expanduser(os.fspath(name_or_path))
    looks_local = source.startswith((".", os.sep)) or os.path.isabs(source)
    if looks_local and not os.path.exists(source):
        raise FileNotFoundError(f"student__name_or_path={source!r} does not exist.")
    return source


def _load_config(config_class, student: str, checkpoint: str, name_or_path, pretrained, overrides):
    """The model config: defaults, or read from ``name_or_path``; then the overrides."""
    if name_or_path is None and not pretrained:
        config = config_class()
    else:
        source = _source(name_or_path, checkpoint)
        try:
            # Without pretrained weights only a config already on disk or in the cache is used.
            config = config_class.from_pretrained(source, local_files_only=not pretrained)
        except (OSError, ValueError) as error:
            raise OSError(
                f"student={student!r} could not load {source!r}: {error}\nPass a local folder "
                f"(student__name_or_path='path/to/{checkpoint.split('/')[-1]}'), run once with "
                "network access to fill the Hugging Face cache, or train a randomly initialised "
                "model with student__pretrained=False."
            ) from error
    fields = {name for name in type(config)().to_dict() if not name.startswith("_")}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"Unknown option(s) {', '.join(f'student__{name}' for name in unknown)} for "
            f"student={student!r}: neither an option of the student (student__name_or_path, "
            "student__pretrained, student__freeze_feature_encoder, student__trainable_layers, "
            f"...) nor a field of {config_class.__name__} (e.g. student__num_hidden_layers)."
        )
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


def _load_model(model_class, config, student: str, checkpoint: str, name_or_path, pretrained):
    if not pretrained:
        return model_class(config)
    source = _source(name_or_path, checkpoint)
    try:
        model = model_class.from_pretrained(source, config=config)
    except (OSError, ValueError) as error:
        raise OSError(
            f"student={student!r} could not load the weights of {source!r}: {error}\nPass a "
            "local folder with student__name_or_path=..., or use student__pretrained=False."
        ) from error
    return model.float()


def _check_flag(option: str, value) -> bool:
    """``value`` of the True/False option ``student__<option>``, or a TypeError naming it."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"student__{option} must be True or False, got {value!r}.")
    return bool(value)


def _freeze(
    modules_below, layers: nn.ModuleList, trainable_layers, freeze_feature_encoder, front_end
):
    """Apply ``freeze_feature_encoder`` and ``trainable_layers`` by turning off gradients.

    ``modules_below`` are the parts under the transformer layers (front end, projections,
    positional embeddings); with ``trainable_layers=N`` they and all but the top N layers are
    frozen (``N=0`` trains the projection head only: a probe of the pooled features).
    """
    if freeze_feature_encoder:
        front_end.requires_grad_(False)
    if trainable_layers is None:
        return
    if (
        isinstance(trainable_layers, bool)
        or not isinstance(trainable_layers, numbers.Integral)
        or not 0 <= trainable_layers <= len(layers)
    ):
        raise ValueError(
            f"student__trainable_layers must be None (train all) or an integer in "
            f"[0, {len(layers)}] (the model has {len(layers)} layers), got {trainable_layers!r}."
        )
    for module in [*modules_below, *layers[: len(layers) - int(trainable_layers)]]:
        module.requires_grad_(False)


def _resolve_freeze(freeze_feature_encoder, pretrained: bool) -> bool:
    if isinstance(freeze_feature_encoder, str) and freeze_feature_encoder == "auto":
        # A pretrained convolutional front end is worth keeping; a random one must learn.
        return pretrained
    if not isinstance(freeze_feature_encoder, bool | np.bool_):
        raise TypeError(
            "student__freeze_feature_encoder must be 'auto', True or False, got "
            f"{freeze_feature_encoder!r}."
        )
    return bool(freeze_feature_encoder)


def _layer_stack(model: nn.Module):
    """The stack of transformer layers (BERT, RoBERTa, DistilBERT, ViT, ... layouts), or None."""
    for path in ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "layer"):
        module = model
        for name in path.split("."):
            module = getattr(module, name, None)
        if isinstance(module, nn.ModuleList):
            return module
    return None
