"""Image students: a small CNN and a vision transformer (ViT), and their input handlers.

``"cnn"``
    :class:`ImageCNN`: three stages of two 3x3 convolutions (batch norm, GELU) and a 2x2 max
    pool, then the mean over positions. Built for small images (8x8 digits to 64x64), fast on a
    CPU; larger images are best resized with ``student__image_size``. Pixels are standardised
    per channel with statistics of the training set (stored in the model), and training
    batches are lightly augmented (small rotations, scalings and shifts; no flips, which would
    change what a digit or a letter means).
``"vit"``
    :class:`VisionTransformerStudent`: ``transformers.ViTModel`` with the mean of its last
    hidden states as the embedding. The loading options are those of the speech transformer
    students (``student__name_or_path``, ``student__pretrained``, ``student__trainable_layers``
    and ``ViTConfig`` fields as overrides). Images are resized and normalised by the
    checkpoint's image processor when its folder (or the cache) holds one, else resized to
    the config's ``image_size`` and scaled to [-1, 1] as ViT checkpoints expect.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import nn

from ...inputs.images import ImageInputs
from ...inputs.sources import InputSource, statistics_sample
from ..vision import load_image_processor, vision_inputs
from ._transformers import (
    _check_flag,
    _freeze,
    _layer_stack,
    _load_config,
    _load_model,
    _source,
)
from .generic import standardization_statistics

__all__ = [
    "VIT_CHECKPOINT",
    "ImageCNN",
    "VisionTransformerStudent",
    "build_cnn",
    "build_vit",
    "cnn_inputs",
    "load_image_processor",
    "vision_inputs",
    "vit_inputs",
]

VIT_CHECKPOINT = "google/vit-base-patch16-224-in21k"


# -- cnn ------------------------------------------------------------------------------------


def cnn_inputs(sampling_rate=None, color_mode: str = "RGB", image_size=None) -> ImageInputs:
    """The input handler of ``student="cnn"``: images in [0, 1], optionally resized.

    Parameters
    ----------
    sampling_rate : ignored
    color_mode : {"RGB", "L"}, default="RGB"
        ``student__color_mode``: "L" reads grayscale images (digits, scans) with one channel.
    image_size : int or (int, int), optional
        ``student__image_size``: resize every image to it; None keeps their (common) size.

    Returns
    -------
    inputs : ImageInputs
    """
    return ImageInputs(sampling_rate, mode=color_mode, image_size=image_size)


class _ConvStage(nn.Sequential):
    """Two 3x3 convolutions with batch norm and GELU, then a 2x2 max pool (if there is room)."""

    def __init__(self, in_channels: int, out_channels: int, pool: bool):
        layers = []
        for channels in (in_channels, out_channels):
            layers += [
                nn.Conv2d(channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.GELU(),
            ]
        if pool:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        super().__init__(*layers)


class ImageCNN(nn.Module):
    """A small convolutional encoder of images, pooled by the mean over positions.

    Parameters
    ----------
    in_channels : int
        1 (grayscale) or 3 (RGB).
    widths : sequence of int, default=(32, 64, 128)
        Channels of each stage; the output width is the last.
    dropout : float, default=0.1
        Dropout on the pooled vector.
    augment : bool, default=True
        In training mode, warp each image by a random rotation (up to 10 degrees), scaling
        (up to 10 %) and shift (up to 10 % of its size).
    pixel_mean, pixel_scale : ndarray of shape (in_channels,), optional
        Standardisation statistics; see :func:`build_cnn`.
    image_size : (int, int), optional
        Size of the training images; stages stop pooling once a side reaches 1 pixel.

    Examples
    --------
    >>> import torch
    >>> from cwcl_sk.encoders.students.image import ImageCNN
    >>> ImageCNN(1, widths=(8, 16))({"pixel_values": torch.zeros(2, 1, 8, 8)}).shape
    torch.Size([2, 16])
    """

    def __init__(
        self,
        in_channels: int,
        widths=(32, 64, 128),
        dropout: float = 0.1,
        augment: bool = True,
        pixel_mean=None,
        pixel_scale=None,
        image_size=(32, 32),
    ):
        super().__init__()
        mean = np.zeros(in_channels) if pixel_mean is None else pixel_mean
        scale = np.ones(in_channels) if pixel_scale is None else pixel_scale
        # (1, channels, 1, 1): broadcast over a (batch, channels, height, width) batch
        self.register_buffer(
            "pixel_mean", torch.as_tensor(mean, dtype=torch.float32)[None, :, None, None]
        )
        self.register_buffer(
            "pixel_scale", torch.as_tensor(scale, dtype=torch.float32)[None, :, None, None]
        )
        self.augment = bool(augment)
        stages, channels, side = [], in_channels, min(image_size)
        for width in widths:
            stages.append(_ConvStage(channels, int(width), pool=side > 1))
            channels, side = int(width), math.ceil(side / 2)
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        pixels = batch["pixel_values"]  # (batch, channels, height, width), in [0, 1]
        if self.training and self.augment:
            pixels = _random_affine(pixels)
        hidden = self.stages((pixels - self.pixel_mean) / self.pixel_scale)
        return self.dropout(hidden.mean(dim=(2, 3)))  # (batch, width)


_MAX_ROTATION = math.radians(10.0)
_MAX_SCALE = 0.1
_MAX_SHIFT = 0.1


def _random_affine(pixels: torch.Tensor) -> torch.Tensor:
    """Warp each image of (batch, channels, height, width) by a small random affine map."""
    batch = pixels.shape[0]
    device = pixels.device

    def uniform(limit: float) -> torch.Tensor:
        return limit * (2 * torch.rand(batch, device=device) - 1)

    angle, scale = uniform(_MAX_ROTATION), 1.0 + uniform(_MAX_SCALE)
    cosine, sine = torch.cos(angle) / scale, torch.sin(angle) / scale
    # (batch, 2, 3): rows map output coordinates in [-1, 1] to input coordinates
    theta = torch.stack(
        [
            torch.stack([cosine, -sine, 2 * uniform(_MAX_SHIFT)], dim=1),
            torch.stack([sine, cosine, 2 * uniform(_MAX_SHIFT)], dim=1),
        ],
        dim=1,
    )
    grid = nn.functional.affine_grid(theta, list(pixels.shape), align_corners=False)
    # "border" repeats the edge pixels: the background of a digit or a photo, not black bars.
    return nn.functional.grid_sample(pixels, grid, padding_mode="border", align_corners=False)


def build_cnn(
    data: np.ndarray,
    output_dim: int,
    widths=(32, 64, 128),
    dropout: float = 0.1,
    augment: bool = True,
) -> ImageCNN:
    """Build an :class:`ImageCNN` for prepared images.

    The per-channel mean and standard deviation of the training pixels are stored in the
    model, so transform-time images are scaled the same way with nothing to remember.

    Parameters
    ----------
    data : ndarray of shape (n_images, channels, height, width)
        Prepared by the ``"cnn"`` input handler (:func:`cnn_inputs`).
    output_dim : int
        The teacher's width (the projection head is added by the aligner).
    widths, dropout, augment
        See :class:`ImageCNN`; given as ``student__<name>``.

    Returns
    -------
    encoder : ImageCNN
    """
    if isinstance(widths, numbers.Integral):
        widths = (widths,)
    if not widths or not all(
        isinstance(width, numbers.Integral) and not isinstance(width, bool) and width >= 1
        for width in widths
    ):
        raise ValueError(
            f"student__widths must be a non-empty sequence of positive integers, got {widths!r}."
        )
    if not isinstance(dropout, numbers.Real) or not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"student__dropout must be in [0, 1), got {dropout!r}.")
    if isinstance(data, InputSource):  # files read on demand: statistics from a sample
        data = np.stack(statistics_sample(data))
    # (n_pixels, channels): every pixel of every training image
    pixels = np.moveaxis(data, 1, -1).reshape(-1, data.shape[1])
    mean, scale = standardization_statistics(pixels, min_scale=1e-3)
    return ImageCNN(
        data.shape[1],
        widths=tuple(int(width) for width in widths),
        dropout=float(dropout),
        augment=augment,
        pixel_mean=mean,
        pixel_scale=scale,
        image_size=data.shape[2:],
    )


# -- vit ------------------------------------------------------------------------------------


def _read_config(source: str, local_files_only: bool):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, local_files_only=local_files_only)
    except (OSError, ValueError, KeyError):
        return None


def vit_inputs(
    sampling_rate=None, name_or_path=None, pretrained=True, image_size=None, num_channels=None
) -> ImageInputs:
    """The input handler of ``student="vit"``: the checkpoint's own preprocessing.

    Parameters
    ----------
    sampling_rate : ignored
    name_or_path, pretrained, image_size, num_channels
        The student's options (see :func:`build_vit`); the processor and config of
        ``name_or_path`` are read from disk or the cache only when not ``pretrained``.

    Returns
    -------
    inputs : ImageInputs
    """
    config = processor = None
    if name_or_path is not None or pretrained:
        source = _source(name_or_path, VIT_CHECKPOINT)
        local_files_only = not pretrained
        config = _read_config(source, local_files_only)
        processor = load_image_processor(source, local_files_only)
    return vision_inputs(config, processor, image_size=image_size, num_channels=num_channels)


class VisionTransformerStudent(nn.Module):
    """A transformers vision transformer pooled by the mean of its last hidden states.

    Parameters
    ----------
    model : transformers.ViTModel
        Or any model taking ``pixel_values`` and returning ``last_hidden_state`` of shape
        (batch, tokens, hidden_size).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> torch.Tensor:
        output = self.model(pixel_values=batch["pixel_values"])
        return output.last_hidden_state.mean(dim=1)  # (batch, hidden_size)


def build_vit(
    data,
    output_dim: int,
    name_or_path=None,
    pretrained: bool = True,
    trainable_layers=None,
    **config_overrides,
) -> VisionTransformerStudent:
    """A ViT student (default checkpoint: google/vit-base-patch16-224-in21k, 86 M parameters).

    Parameters
    ----------
    data : ndarray of shape (n_images, channels, height, width)
        Prepared training images (unused: the architecture does not depend on the data).
    output_dim : int
        The teacher's width (the projection head is added by the aligner).
    name_or_path : str or path-like, optional
        A local folder or Hugging Face id; defaults to ``VIT_CHECKPOINT``. With
        ``pretrained=False`` only its config is used (from disk or the cache).
    pretrained : bool, default=True
        False builds a randomly initialised model from ``ViTConfig()`` defaults (or the
        config of ``name_or_path``) and the overrides; nothing is downloaded.
    trainable_layers : int or None, default=None
        Train only the top N transformer layers (None: all; 0: only the projection head).
    **config_overrides
        Fields of ``ViTConfig``, e.g. ``hidden_size=32, num_hidden_layers=2, image_size=8,
        patch_size=4``; ``image_size`` and ``num_channels`` also set the input resizing.

    Returns
    -------
    encoder : VisionTransformerStudent
    """
    from transformers import ViTConfig, ViTModel

    pretrained = _check_flag("pretrained", pretrained)
    config = _load_config(
        ViTConfig, "vit", VIT_CHECKPOINT, name_or_path, pretrained, config_overrides
    )
    model = _load_model(ViTModel, config, "vit", VIT_CHECKPOINT, name_or_path, pretrained)
    # transformers 5 keeps ViT's layers in model.layers, earlier versions in model.encoder.layer
    _freeze([model.embeddings], _layer_stack(model), trainable_layers, False, model.embeddings)
    return VisionTransformerStudent(model)
