"""Frozen image teachers: any transformers vision model or CLIP vision tower, pooled.

This is the LiT direction of the paper's image-text result: the image tower stays frozen and
a text student learns to meet it. A teacher is named by a local folder or a Hugging Face id
(see :func:`is_vision_model` for how such a name is told apart from a sentence-transformers
text teacher) and pooled as follows:

- CLIP (``model_type`` "clip" or "clip_vision_model"): ``image_embeds``, the projected
  embedding, when the checkpoint holds the visual projection; else the pooled output;
- any other model: its ``pooler_output`` when it has one, else the mean of its last hidden
  state over tokens (transformers) or positions (convolutional networks).

Images are resized and normalised by the checkpoint's image processor when it has one, else
resized to the config's ``image_size`` and scaled to [-1, 1].
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ...inputs.images import ImageItem, load_images
from .._loading import quiet_transformers
from ..shared_models import load_shared
from ..vision import load_image_processor, vision_inputs
from .frozen import FrozenTeacher, _normalise

__all__ = ["IMAGE_PREFIX", "ImageTeacher", "is_vision_model", "load_vision_model"]

IMAGE_PREFIX = "image:"
_CLIP_TYPES = ("clip", "clip_vision_model")


def _config_file(name_or_path: str) -> Path | None:
    """The ``config.json`` of a local folder or of a cached Hugging Face id, or None."""
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        if (folder / "modules.json").exists():
            return None  # a sentence-transformers model: a text teacher
        config = folder / "config.json"
        return config if config.exists() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(name_or_path, "modules.json"), str):
            return None
        cached = try_to_load_from_cache(name_or_path, "config.json")
    except Exception:  # not a valid repository id: certainly no cached vision model
        return None
    return Path(cached) if isinstance(cached, str) else None


def is_vision_model(name_or_path: str) -> bool:
    """Whether a teacher name refers to an image model rather than a text encoder.

    The rule: a name starting with ``"image:"`` is an image teacher; otherwise a local folder
    (or a Hugging Face id already in the cache) is one when it has a ``config.json``, no
    sentence-transformers ``modules.json``, and its config describes images (it has a
    ``vision_config``, as CLIP's does, or a ``num_channels`` field, as ViT, DeiT, BEiT,
    DINOv2, ConvNeXt and ResNet configs do). Everything else stays a sentence-transformers
    text teacher, as before.

    Parameters
    ----------
    name_or_path : str

    Returns
    -------
    bool
    """
    if name_or_path.startswith(IMAGE_PREFIX):
        return True
    config_file = _config_file(name_or_path)
    if config_file is None:
        return False
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        return False
    return "vision_config" in config or "num_channels" in config


def load_vision_model(name_or_path: str, device: str = "cpu"):
    """Load a frozen vision model once per process and device: (model, pooling, config).

    Parameters
    ----------
    name_or_path : str
        A local folder or Hugging Face id (without the ``"image:"`` prefix).
    device : str, default="cpu"

    Returns
    -------
    model : torch.nn.Module
        In eval mode, without gradients.
    pooling : {"image_embeds", "pooler_output", "mean"}
    config : transformers config

    Raises
    ------
    OSError
        With a message naming the alternatives when the model cannot be loaded.
    """
    return load_shared("vision", name_or_path, device, lambda: _load(name_or_path, device))


def _load(name_or_path: str, device: str):
    local = Path(name_or_path).expanduser()
    source = str(local) if local.exists() else name_or_path
    try:
        with quiet_transformers():
            model, pooling, config = _from_pretrained(source)
    except (OSError, ValueError) as error:
        raise OSError(
            f"teacher: could not load {name_or_path!r} as an image model ({error}). Use a "
            "local folder holding a transformers vision model (config.json and weights), a "
            "Hugging Face id in the local cache, a torch.nn.Module teacher on numeric y, or "
            "teacher='precomputed' with image embeddings as y."
        ) from error
    model.float().to(device).eval().requires_grad_(False)
    return model, pooling, config


def _from_pretrained(source: str):
    """(model, pooling, config) of a vision checkpoint; see the module docstring."""
    from transformers import AutoConfig, AutoModel, CLIPVisionModel, CLIPVisionModelWithProjection

    config = AutoConfig.from_pretrained(source)
    if config.model_type not in _CLIP_TYPES:
        model = AutoModel.from_pretrained(source)
        return model, "pooler_output" if getattr(model, "pooler", None) else "mean", config
    model, info = CLIPVisionModelWithProjection.from_pretrained(source, output_loading_info=True)
    if any("visual_projection" in name for name in info["missing_keys"]):
        # A vision tower saved without CLIP's projection: its pooled output instead.
        return CLIPVisionModel.from_pretrained(source), "pooler_output", config
    return model, "image_embeds", config


def _pool(output, pooling: str) -> torch.Tensor:
    """(batch, dim) embeddings from a model output, as ``pooling`` says."""
    if pooling == "image_embeds":
        return output.image_embeds
    pooled = getattr(output, "pooler_output", None) if pooling == "pooler_output" else None
    if pooled is not None:
        return pooled.flatten(1)  # convolutional poolers give (batch, channels, 1, 1)
    hidden = output.last_hidden_state
    # (batch, tokens, width) for transformers, (batch, channels, height, width) for CNNs
    return hidden.mean(dim=1) if hidden.ndim == 3 else hidden.mean(dim=(2, 3))


class ImageTeacher(FrozenTeacher):
    """A frozen transformers vision model as the teacher: images in, pooled embeddings out.

    Embeddings are cached (in memory, and on disk with ``cache_dir``) under the model's
    path and a SHA-256 digest of each image's decoded pixels, so the same picture given as a
    file, an array or a PIL image is encoded once.

    Parameters
    ----------
    name_or_path : str
        A local folder or Hugging Face id (an ``"image:"`` prefix is removed).
    batch_size : int, default=64
    device : str or torch.device, default="cpu"
    """

    input_kind = "image"

    def __init__(self, name_or_path: str, batch_size: int = 64, device="cpu"):
        super().__init__()
        name = name_or_path.removeprefix(IMAGE_PREFIX)
        path = Path(name).expanduser()
        self.name = str(path.resolve()) if path.exists() else name
        self.batch_size = batch_size
        self.device = str(device)
        self._loaded = None

    @property
    def cache_key(self):
        return ("transformers-image", self.name)

    @property
    def _model(self):
        if self._loaded is None:
            self._loaded = load_vision_model(self.name, self.device)
        return self._loaded

    @property
    def dim(self) -> int:
        """Width of the embeddings (encodes one blank image to find it)."""
        return int(self._encode_unique([ImageItem(np.zeros((8, 8, 3), np.float32))]).shape[1])

    def _inputs(self):
        _, _, config = self._model
        return vision_inputs(config, load_image_processor(self.name, True))

    def _validate(self, y, argument):
        mode = self._inputs().mode
        return [ImageItem(image) for image in load_images(y, argument, mode)]

    def _encode_unique(self, items: list) -> np.ndarray:
        model, pooling, _ = self._model
        inputs = self._inputs()
        outputs = []
        for start in range(0, len(items), self.batch_size):
            chunk = [item.pixels for item in items[start : start + self.batch_size]]
            pixels = torch.from_numpy(inputs.pixel_values(chunk, "y"))
            with torch.no_grad():
                output = model(pixel_values=pixels.to(self.device))
            outputs.append(_pool(output, pooling).float().cpu().numpy())
        return _normalise(np.concatenate(outputs), f"teacher {self.name}")

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_loaded"] = None  # reloaded from its path: the pickle stays small
        return state
