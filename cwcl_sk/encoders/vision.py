"""Preprocessing of transformers vision models, shared by the ViT student and image teachers.

A checkpoint's own image processor resizes and normalises its inputs when the checkpoint has
one; otherwise images are resized to the config's ``image_size`` and scaled to [-1, 1].
"""

from __future__ import annotations

import functools

import numpy as np

from ..inputs.images import ImageInputs

__all__ = ["load_image_processor", "vision_inputs"]

# ViT checkpoints normalise every channel with mean 0.5 and standard deviation 0.5.
_VIT_MEAN = 0.5
_VIT_STD = 0.5


@functools.lru_cache(maxsize=16)
def load_image_processor(source: str, local_files_only: bool = True):
    """The image processor saved with a checkpoint, or None when it has none.

    Processors are small and stateless, so one instance per source is shared.

    Parameters
    ----------
    source : str
        A local folder or Hugging Face id.
    local_files_only : bool, default=True
        Look only on disk and in the Hugging Face cache.

    Returns
    -------
    processor : transformers image processor or None
    """
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(source, local_files_only=local_files_only)
    except (OSError, ValueError, KeyError):
        return None


def vision_inputs(config, processor=None, image_size=None, num_channels=None) -> ImageInputs:
    """The input handler of a transformers vision model.

    Parameters
    ----------
    config : transformers config or None
        The model's config (or a CLIP-style config with a ``vision_config``); None: defaults.
    processor : transformers image processor, optional
        Used as is when given and no ``image_size`` overrides the config's.
    image_size : int, optional
        Overrides the size of the config (and so bypasses the processor's resizing).
    num_channels : int, optional
        Overrides the config's channel count (1 reads grayscale).

    Returns
    -------
    inputs : ImageInputs
    """
    vision = getattr(config, "vision_config", None) or config
    channels = num_channels or getattr(vision, "num_channels", 3)
    mode = "L" if channels == 1 else "RGB"
    if processor is not None and image_size is None and channels == 3:
        return ImageInputs(mode=mode, processor=processor)
    size = image_size or getattr(vision, "image_size", 224)
    mean = getattr(processor, "image_mean", None) or [_VIT_MEAN] * 3
    std = getattr(processor, "image_std", None) or [_VIT_STD] * 3
    if channels == 1:
        # A grayscale model: one channel, the mean of the processor's per-channel values.
        mean, std = [float(np.mean(mean))], [float(np.mean(std))]
    return ImageInputs(mode=mode, image_size=size, mean=mean, std=std)
