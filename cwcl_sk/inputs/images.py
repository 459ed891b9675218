"""Image inputs: pictures given as arrays, PIL images or files, validated and loaded in one place.

Every image encoder (student or teacher) reads its inputs through :func:`load_images`, which
accepts

- a list of images, each a PIL image, an (H, W) array (grayscale) or an (H, W, C) array with
  1, 3 or 4 channels (gray, RGB, RGBA), of dtype uint8 (0..255) or float (0..1),
- an (n_images, H, W) or (n_images, H, W, C) array, e.g. ``sklearn.datasets.load_digits()
  .images / 16``,
- a list of file paths (``str`` or :class:`pathlib.Path`), decoded with Pillow,

and returns float32 (H, W, C) arrays in [0, 1], converted to the colour mode the encoder
needs (``"RGB"``: 3 channels, ``"L"``: 1 channel; alpha is dropped). Anything else raises an
error naming the argument and the image (``X[3] has 2 dimensions ...``).

:class:`ImageInputs` turns the loaded images into an encoder's pixel tensors: resized and
normalised by the encoder's own image processor when it has one, otherwise resized to
``image_size`` (when given) and scaled by a per-channel mean and standard deviation.
"""

from __future__ import annotations

import functools
import hashlib
import numbers
import os
from pathlib import Path

import numpy as np
import torch

from .arrays import split_items
from .sources import InputSource, MappedInputs, existing_paths, files_fingerprint, is_path_list

__all__ = ["ImageFiles", "ImageInputs", "ImageItem", "load_images", "resize_images"]

_EXPECTED = (
    "a list of images (PIL images, (H, W) or (H, W, C) uint8 or float arrays), an "
    "(n_images, H, W[, C]) array, or a list of image file paths"
)
_MODES = ("RGB", "L")
# ITU-R 601-2 luma, the weights Pillow's convert("L") uses.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Floats a rounding error above 1 (e.g. 255 / 255 computed in another precision) are clipped.
_FLOAT_TOLERANCE = 1e-3


class ImageItem:
    """One decoded image, hashable by its content: a teacher-side item and a candidate.

    Teachers deduplicate and cache their inputs by value; arrays cannot be dictionary keys,
    so images travel wrapped in this small object, equal when their pixels are equal.
    ``np.asarray(item)`` gives the pixels back.

    Parameters
    ----------
    pixels : ndarray of shape (H, W, C), dtype float32, values in [0, 1]
    """

    __slots__ = ("digest", "pixels")

    def __init__(self, pixels: np.ndarray):
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        pixels.setflags(write=False)
        self.pixels = pixels
        hasher = hashlib.sha256(f"image:{pixels.shape}:".encode())
        hasher.update(pixels.tobytes())
        self.digest = hasher.hexdigest()

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other) -> bool:
        return isinstance(other, ImageItem) and other.digest == self.digest

    def __repr__(self) -> str:
        # The disk cache names items by a digest of their repr: it must identify the content.
        return f"ImageItem(shape={self.pixels.shape}, sha256={self.digest})"

    def __array__(self, dtype=None, copy=None):
        return self.pixels if dtype is None else self.pixels.astype(dtype)

    def __getstate__(self):
        return {"pixels": self.pixels, "digest": self.digest}

    def __setstate__(self, state):
        self.pixels = state["pixels"]
        self.digest = state["digest"]


def load_images(X, argument: str = "X", mode: str = "RGB") -> list[np.ndarray]:
    """Validate images and load them as float32 (H, W, C) arrays in [0, 1].

    Parameters
    ----------
    X : list of images, ndarray of shape (n, H, W) or (n, H, W, C), or list of paths
        See the module docstring. Items of a list may have different sizes.
    argument : str, default="X"
        Name used in error messages.
    mode : {"RGB", "L"}, default="RGB"
        Colour mode of the result: 3 channels (gray is repeated) or 1 (RGB is mixed with
        Pillow's luma weights).

    Returns
    -------
    images : list of ndarray of shape (H_i, W_i, 3 or 1), dtype float32

    Raises
    ------
    ValueError
        Empty ``X``, an empty image, a wrong number of dimensions or channels, NaN or inf,
        floats outside [0, 1], an undecodable file.
    TypeError
        Other dtypes (bool, int16, strings...), objects that are not images, or paths mixed
        with arrays in one list.
    FileNotFoundError
        A path that does not exist.

    Examples
    --------
    >>> import numpy as np
    >>> from cwcl_sk.inputs import load_images
    >>> images = load_images(np.zeros((2, 8, 8)), mode="L")
    >>> [image.shape for image in images]
    [(8, 8, 1), (8, 8, 1)]
    """
    if mode not in _MODES:
        raise ValueError(f"The image colour mode must be 'RGB' or 'L', got {mode!r}.")
    items = _as_items(X, argument)
    is_path = [isinstance(item, str | os.PathLike) for item in items]
    if any(is_path) and not all(is_path):
        path_index, other_index = is_path.index(True), is_path.index(False)
        raise TypeError(
            f"{argument} mixes file paths and images: {argument}[{path_index}] is a path and "
            f"{argument}[{other_index}] is {type(items[other_index]).__name__}. Pass either "
            "paths or images."
        )
    kinds = {_item_kind(item) for item in items}
    if len(kinds) > 1:
        first = {kind: index for index, kind in reversed(list(enumerate(map(_item_kind, items))))}
        named = ", ".join(f"{argument}[{index}] is {kind}" for kind, index in first.items())
        raise TypeError(f"{argument} mixes kinds of images ({named}); pass one kind.")
    return [
        _to_mode(_load_one(item, f"{argument}[{index}]", is_path[index]), mode)
        for index, item in enumerate(items)
    ]


def _item_kind(item) -> str:
    if isinstance(item, str | os.PathLike):
        return "a path"
    if _is_pil(item):
        return "a PIL image"
    return "an array"


def _is_pil(item) -> bool:
    return any(cls.__module__.startswith("PIL.") for cls in type(item).__mro__[:-1])


def _as_items(X, argument: str) -> list:
    """Split ``X`` into one item per image, rejecting shapes that cannot be a set of images."""
    if isinstance(X, str | os.PathLike) or _is_pil(X):
        raise TypeError(
            f"{argument} is a single image ({type(X).__name__}); expected a list of images. "
            f"Pass [{argument}]."
        )

    def numeric_items(array: np.ndarray) -> list:
        if array.ndim == 2:
            raise ValueError(
                f"{argument} is a 2-D array of shape {array.shape}; expected {_EXPECTED}. If it "
                f"is one grayscale image, pass [{argument}]; if its rows are flattened images, "
                "reshape them to (n_images, H, W); if they are feature vectors, use "
                "student='mlp'."
            )
        if array.ndim not in (3, 4):
            raise ValueError(
                f"{argument} must be {_EXPECTED}; got a {array.ndim}-D array of shape "
                f"{array.shape}."
            )
        return list(array)

    return split_items(X, argument, _EXPECTED, "image", numeric_items)


def _load_one(item, name: str, is_path: bool) -> np.ndarray:
    """One image as a float32 (H, W, C) array in [0, 1], C in {1, 3, 4}."""
    if is_path:
        return _read_file(item, name)
    if _is_pil(item):
        return _from_pil(item, name)
    if item is None or isinstance(item, bytes | numbers.Number):
        raise TypeError(f"{name} is {type(item).__name__}; expected an image, an array or a path.")
    try:
        array = np.asarray(item)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} could not be read as an image array: {error}") from None
    return _check_array(array, name)


def _check_array(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == object or array.dtype.kind in "USVb" or np.iscomplexobj(array):
        raise TypeError(
            f"{name} has dtype {array.dtype}; expected uint8 (0..255) or float (0..1) pixels."
        )
    if array.dtype.kind in "iu" and array.dtype != np.uint8:
        raise TypeError(
            f"{name} has dtype {array.dtype}; expected uint8 (0..255) or float (0..1) pixels. "
            "Convert it, e.g. (image / image.max()).astype(np.float32)."
        )
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(
            f"{name} has {array.ndim} dimensions (shape {array.shape}); expected an (H, W) "
            "grayscale or (H, W, C) colour image."
        )
    if array.shape[2] not in (1, 3, 4):
        hint = " (channels first? use image.transpose(1, 2, 0))" if array.shape[0] in (1, 3) else ""
        raise ValueError(
            f"{name} has {array.shape[2]} channels (shape {array.shape}); expected 1, 3 or 4 "
            f"in the last axis{hint}."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is an empty image (shape {array.shape}).")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        position = tuple(np.argwhere(~finite)[0].tolist())
        kind = "NaN" if np.isnan(array[position]) else "inf"
        raise ValueError(f"{name} contains NaN or inf pixels (first {kind} at {position[:2]}).")
    low, high = float(array.min()), float(array.max())
    if low < -_FLOAT_TOLERANCE or high > 1 + _FLOAT_TOLERANCE:
        raise ValueError(
            f"{name} has float pixels in [{low:g}, {high:g}]; expected intensities in [0, 1]. "
            "Divide by the largest possible value (image / 255 for 8-bit data, / 16 for "
            "scikit-learn's digits), or pass uint8."
        )
    return np.clip(array, 0.0, 1.0)


def _from_pil(image, name: str) -> np.ndarray:
    if image.width == 0 or image.height == 0:
        raise ValueError(f"{name} is an empty image ({image.width}x{image.height}).")
    if image.mode not in ("L", "RGB", "RGBA"):
        # Palette, 16-bit, CMYK...: Pillow knows how to make them RGB(A).
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, -1) / np.float32(
        255
    )


def _read_file(path, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such image file: {str(path)!r}.")
    if not path.is_file():
        raise ValueError(f"{name} is not a file: {str(path)!r}.")
    try:
        with Image.open(path) as image:
            image.load()
            return _from_pil(image, name)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(
            f"{name} could not be decoded as an image: {str(path)!r} ({error})."
        ) from error


def _to_mode(image: np.ndarray, mode: str) -> np.ndarray:
    """(H, W, C) in [0, 1] -> (H, W, 3) for "RGB" or (H, W, 1) for "L"; alpha dropped."""
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if mode == "RGB" and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif mode == "L" and image.shape[2] == 3:
        image = (image @ _LUMA)[:, :, None]
    return np.ascontiguousarray(image, dtype=np.float32)


def resize_images(images: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, C) images to one size (bilinear, antialiased when shrinking).

    Parameters
    ----------
    images : list of ndarray of shape (H_i, W_i, C)
    size : (height, width)

    Returns
    -------
    pixels : ndarray of shape (n_images, C, height, width), dtype float32
    """
    height, width = size
    resized = []
    for image in images:
        # A copy: loaded images are read-only (they are cache keys), torch wants writable.
        tensor = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
        if tuple(tensor.shape[2:]) != (height, width):
            tensor = torch.nn.functional.interpolate(
                tensor, size=(height, width), mode="bilinear", align_corners=False, antialias=True
            )
        resized.append(tensor[0])
    return torch.stack(resized).numpy()  # (n_images, C, height, width)


def _check_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    values = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
    try:
        height, width = values
    except (TypeError, ValueError):
        height = width = None
    if not all(
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1
        for value in (height, width)
    ):
        raise ValueError(
            f"student__image_size must be None, a positive integer or a pair (height, width) "
            f"of them, got {image_size!r}."
        )
    return int(height), int(width)


class ImageFiles(InputSource):
    """Image files decoded when a batch needs them (what a list of image paths becomes).

    Parameters
    ----------
    paths : sequence of str or path-like
        Every path must exist (checked here).
    mode : {"RGB", "L"}, default="RGB"
        Colour mode of the decoded images.
    argument : str, default="X"
    """

    def __init__(self, paths, mode: str = "RGB", argument: str = "X"):
        self.paths = existing_paths(paths, argument, "image")
        self.mode = mode
        self.argument = argument

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> np.ndarray:
        """Image ``index`` as a float32 (H, W, C) array in [0, 1]."""
        return _to_mode(_read_file(self.paths[index], f"{self.argument}[{index}]"), self.mode)

    def describe(self, index: int) -> str:
        return repr(self.paths[index])

    def fingerprint(self) -> str:
        return files_fingerprint(f"ImageFiles:{self.mode}", self.paths)


class ImageInputs:
    """Image inputs of an encoder: loaded, resized and normalised once, batched as tensors.

    Parameters
    ----------
    sampling_rate : int, optional
        Ignored (images have none); accepted so every handler shares one signature.
    mode : {"RGB", "L"}, default="RGB"
        Colour mode the encoder reads (3 or 1 channels).
    image_size : int or (int, int), optional
        Resize every image to this size. None keeps the images' own size, which must then be
        the same for all images of one call.
    mean, std : sequence of float, optional
        Per-channel normalisation ``(pixel - mean) / std`` after scaling to [0, 1]; None
        leaves the pixels in [0, 1] (the encoder standardises them itself).
    processor : transformers image processor, optional
        The encoder's own processor (resizing, rescaling and normalisation as in its
        training); when given, ``image_size``, ``mean`` and ``std`` are not used.

    Examples
    --------
    >>> import numpy as np
    >>> from cwcl_sk.inputs import ImageInputs
    >>> inputs = ImageInputs(mode="L", image_size=16)
    >>> data = inputs.prepare(np.zeros((3, 8, 8), dtype=np.uint8))
    >>> inputs.collate(data, [0, 2])["pixel_values"].shape
    torch.Size([2, 1, 16, 16])
    """

    kind = "image"

    def __init__(
        self,
        sampling_rate: int | None = None,
        mode: str = "RGB",
        image_size=None,
        mean=None,
        std=None,
        processor=None,
    ):
        self.sampling_rate = sampling_rate
        self.mode = mode
        self.image_size = image_size
        self.mean = mean
        self.std = std
        self.processor = processor

    def prepare(self, X, argument: str = "X"):
        """Load every image (see :func:`load_images`) and make the encoder's pixel values.

        A list of file paths is not loaded: it becomes an
        :class:`~cwcl_sk.inputs.ImageFiles` whose pixel values are made when a batch needs
        them (without a fixed ``image_size``, each image must have the first one's size).

        Returns
        -------
        pixels : ndarray of shape (n_images, C, height, width), dtype float32, or InputSource
            Of (C, height, width) arrays, for a list of paths.
        """
        if is_path_list(X):
            files = ImageFiles(X, self.mode, argument)
            size = _check_size(self.image_size)
            if size is None and self.processor is None:
                size = files[0].shape[:2]  # the size every image of the set must share
            return MappedInputs(files, functools.partial(self._one_pixel_value, size=size))
        return self.pixel_values(load_images(X, argument, self.mode), argument)

    def _one_pixel_value(self, image: np.ndarray, name: str, size) -> np.ndarray:
        """(C, height, width) pixel values of one decoded image of a set read on demand."""
        if size is not None and self.processor is None and _check_size(self.image_size) is None:
            if image.shape[:2] != tuple(size):
                raise ValueError(
                    f"{name} is {image.shape[0]}x{image.shape[1]} pixels but the first image "
                    f"is {size[0]}x{size[1]}; images of one set must share a size. Set "
                    "student__image_size to resize them."
                )
        return self.pixel_values([image], name)[0]

    def pixel_values(self, images: list[np.ndarray], argument: str = "X"):
        """Pixel values of already loaded (H, W, C) images; see :meth:`prepare`."""
        if self.processor is not None:
            output = self.processor(
                images=list(images),
                do_rescale=False,  # load_images already scaled to [0, 1]
                input_data_format="channels_last",
                return_tensors="np",
            )
            return np.ascontiguousarray(output["pixel_values"], dtype=np.float32)
        size = _check_size(self.image_size) or _common_size(images, argument)
        pixels = resize_images(images, size)  # (n, C, height, width)
        if self.mean is not None:
            mean = np.asarray(self.mean, dtype=np.float32).reshape(1, -1, 1, 1)
            std = np.asarray(self.std, dtype=np.float32).reshape(1, -1, 1, 1)
            pixels = (pixels - mean) / std
        return np.ascontiguousarray(pixels, dtype=np.float32)

    def collate(self, data, indices) -> dict[str, torch.Tensor]:
        """The images ``indices`` as ``pixel_values`` of shape (batch, C, height, width)."""
        if isinstance(data, InputSource):
            return {"pixel_values": torch.from_numpy(np.stack([data[int(i)] for i in indices]))}
        return {"pixel_values": torch.from_numpy(data[np.asarray(indices)])}


def _common_size(images: list[np.ndarray], argument: str) -> tuple[int, int]:
    size = images[0].shape[:2]
    for index, image in enumerate(images):
        if image.shape[:2] != size:
            raise ValueError(
                f"{argument}[{index}] is {image.shape[0]}x{image.shape[1]} pixels but "
                f"{argument}[0] is {size[0]}x{size[1]}; images of one set must share a size. "
                "Set student__image_size to resize them."
            )
    return int(size[0]), int(size[1])
