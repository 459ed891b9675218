"""Saved folders without pickle: plain records as JSON, tensors as safetensors.

A saved model folder holds::

    config.json          the estimator's parameters (and the library version)
    fitted.json          learned scalars: width, temperature, history, candidate texts
    student.safetensors  the student's weights
    candidates.safetensors  the teacher embeddings of the candidates

A checkpoint adds ``optimizer.pt`` (tensors only, read with ``torch.load(weights_only=True)``)
and ``training.json`` so that training resumes exactly where it stopped.

This module reads and writes those records and knows no estimator: an estimator turns itself
into records (``CWCLAligner.save``) and rebuilds itself from them (``CWCLAligner.load``).
Loading runs no code, so a saved folder from an untrusted source cannot run code.
"""

from __future__ import annotations

import json
import numbers
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from ._version import __version__
from .inputs import ImageItem
from .kernels import KERNELS, WeightKernel

__all__ = [
    "FORMAT_VERSION",
    "SavedModel",
    "decode_parameters",
    "encode_parameters",
    "load_aligner",
    "load_student_weights",
    "placeholder_inputs",
    "read_checkpoint",
    "read_model",
    "register_estimator",
    "restore_checkpoint",
    "save_aligner",
    "save_checkpoint",
    "write_checkpoint",
    "write_model",
]

FORMAT_VERSION = 1


def _jsonable(value) -> bool:
    if value is None or isinstance(value, str | bool | numbers.Real):
        return not isinstance(value, float) or np.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_jsonable(item) for item in value)
    return False


def _encode_parameter(value):
    """A JSON form of one parameter, or None for what cannot be rebuilt without code."""
    if _jsonable(value):
        is_tuple = isinstance(value, tuple)
        return {"value": list(value) if is_tuple else value, "tuple": is_tuple}
    if isinstance(value, WeightKernel) and type(value) in KERNELS.values():
        name_of = {cls: key for key, cls in KERNELS.items()}[type(value)]
        return {"kernel": name_of, "params": value.get_params()}
    if isinstance(value, torch.device | os.PathLike):
        return {"value": str(value), "tuple": False}
    return None


def encode_parameters(parameters: dict) -> tuple[dict, list]:
    """JSON forms of estimator parameters.

    Parameters
    ----------
    parameters : dict
        ``get_params(deep=False)`` of an estimator.

    Returns
    -------
    encoded : dict
        The parameters that JSON can hold (built-in kernels by name and parameters).
    skipped : list of str
        The names of those it cannot (model objects, callables, arrays).
    """
    encoded, skipped = {}, []
    for name, value in parameters.items():
        form = _encode_parameter(value)
        if form is None:
            skipped.append(name)
        else:
            encoded[name] = form
    return encoded, skipped


def _decode_parameter(encoded):
    if "kernel" in encoded:
        return KERNELS[encoded["kernel"]](**encoded["params"])
    value = encoded["value"]
    return tuple(_untuple(item) for item in value) if encoded["tuple"] else value


def _untuple(item):
    return tuple(item) if isinstance(item, list) else item


def decode_parameters(encoded: dict) -> dict:
    """The parameters written by :func:`encode_parameters`."""
    return {name: _decode_parameter(value) for name, value in encoded.items()}


def _holds_images(candidates) -> bool:
    return candidates.ndim == 1 and len(candidates) > 0 and isinstance(candidates[0], ImageItem)


def _candidates_for_json(candidates):
    """Texts as a list; None for embedding rows and images (kept in candidates.safetensors)."""
    if candidates.ndim == 2 or _holds_images(candidates):
        return None
    return candidates.tolist()


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"directory: {path.name} is missing in {path.parent}.")
    return json.loads(path.read_text())


def write_model(
    directory,
    *,
    estimator: str,
    parameters: dict,
    fitted: dict,
    student: torch.nn.Module,
    candidates: np.ndarray,
    candidate_embeddings: np.ndarray,
) -> Path:
    """Write a fitted model's records to ``directory`` (created if needed).

    Parameters
    ----------
    directory : str or path-like
    estimator : str
        The estimator's class name, recorded in ``config.json``.
    parameters : dict
        Encoded parameters (:func:`encode_parameters`).
    fitted : dict
        Learned values that JSON can hold; ``candidates_`` is added here.
    student : torch.nn.Module
        Its weights go to ``student.safetensors``.
    candidates : ndarray
        Texts, embedding rows or :class:`~cwcl_sk.inputs.ImageItem` objects.
    candidate_embeddings : ndarray of shape (n_candidates, dim)

    Returns
    -------
    directory : pathlib.Path
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "estimator": estimator,
        "parameters": parameters,
    }
    fitted = {**fitted, "candidates_": _candidates_for_json(candidates)}
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "fitted.json").write_text(json.dumps(fitted, indent=2, default=float))
    save_model(student, str(directory / "student.safetensors"))
    tensors = {"candidate_embeddings": torch.from_numpy(np.ascontiguousarray(candidate_embeddings))}
    if _holds_images(candidates):
        # Image candidates (an image teacher) are pixels: tensors, not JSON.
        for index, item in enumerate(candidates):
            tensors[f"candidate_image_{index}"] = torch.from_numpy(np.array(item.pixels))
    save_file(tensors, str(directory / "candidates.safetensors"))
    return directory


@dataclass
class SavedModel:
    """The records of a saved model folder, as :func:`read_model` returns them.

    Attributes
    ----------
    estimator : str
        The class name of the estimator that wrote it.
    parameters : dict
        Its decoded parameters.
    fitted : dict
        Learned values; ``candidates_`` is a list of texts or of ``ImageItem`` objects, or
        None when the candidates are the embedding rows themselves.
    candidate_embeddings : ndarray of shape (n_candidates, dim)
    directory : pathlib.Path
    """

    estimator: str
    parameters: dict
    fitted: dict
    candidate_embeddings: np.ndarray
    directory: Path


def read_model(directory) -> SavedModel:
    """Read the records written by :func:`write_model`.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    ValueError
        For a folder written in another format version.
    """
    directory = Path(directory)
    config = _read_json(directory / "config.json")
    fitted = _read_json(directory / "fitted.json")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"directory: {directory} was saved in format {config.get('format_version')}, "
            f"this library reads format {FORMAT_VERSION}."
        )
    tensors = load_file(str(directory / "candidates.safetensors"))
    candidate_embeddings = tensors["candidate_embeddings"].numpy()
    if "candidate_image_0" in tensors:
        fitted["candidates_"] = [
            ImageItem(tensors[f"candidate_image_{index}"].numpy())
            for index in range(len(candidate_embeddings))
        ]
    return SavedModel(
        estimator=config.get("estimator", ""),
        parameters=decode_parameters(config["parameters"]),
        fitted=fitted,
        candidate_embeddings=candidate_embeddings,
        directory=directory,
    )


def load_student_weights(student: torch.nn.Module, directory) -> None:
    """Load ``student.safetensors`` of a saved folder into ``student`` (same architecture)."""
    load_model(student, str(Path(directory) / "student.safetensors"))


def placeholder_inputs(kind: str, n_features: int | None, sampling_rate: int):
    """Two dummy inputs of a student's modality, to rebuild its architecture on load.

    Parameters
    ----------
    kind : {"features", "audio", "image", "text"}
        The student's input kind, as saved in ``fitted.json``.
    n_features : int or None
        Width of feature rows, for ``"features"``.
    sampling_rate : int
        For ``"audio"``: one second of silence at this rate.
    """
    if kind == "features":
        return np.zeros((2, n_features), dtype=np.float32)
    if kind == "audio":
        return [np.zeros(sampling_rate, dtype=np.float32) for _ in range(2)]
    if kind == "image":
        # Large enough that every stage of the cnn student pools, as it does in training.
        return np.zeros((2, 64, 64, 3), dtype=np.uint8)
    if kind == "text":
        return ["placeholder", "placeholder"]
    raise ValueError(f"Cannot rebuild a student whose inputs are of kind {kind!r}.")


def write_checkpoint(directory, optimizer_state: dict, epochs_done: int, base_seed: int) -> None:
    """Add what resuming needs to a saved model folder: the optimiser state and the epoch count.

    Parameters
    ----------
    directory : str or path-like
        A folder written by :func:`write_model`.
    optimizer_state : dict
        ``optimizer.state_dict()``: tensors and numbers only.
    epochs_done : int
    base_seed : int
        The seed from which every epoch draws its randomness.
    """
    directory = Path(directory)
    torch.save(optimizer_state, directory / "optimizer.pt")
    (directory / "training.json").write_text(
        json.dumps({"epochs_done": int(epochs_done), "base_seed": int(base_seed)})
    )


def read_checkpoint(directory, map_location) -> tuple[dict, dict, dict]:
    """The records of a checkpoint folder written by :func:`write_checkpoint`.

    Tensors are read with ``torch.load(weights_only=True)``: no code runs.

    Returns
    -------
    fitted : dict
        As in ``fitted.json``.
    training : dict
        ``epochs_done`` and ``base_seed``.
    optimizer_state : dict
    """
    directory = Path(directory)
    fitted = _read_json(directory / "fitted.json")
    training = _read_json(directory / "training.json")
    optimizer_state = torch.load(
        directory / "optimizer.pt", weights_only=True, map_location=map_location
    )
    return fitted, training, optimizer_state


# -- the estimator-level functions of earlier versions -------------------------------------

_ESTIMATORS: dict[str, type] = {}


def register_estimator(cls: type) -> type:
    """Record an estimator class by name, so that :func:`load_aligner` can rebuild it.

    The estimator module registers itself: this module never imports it.
    """
    _ESTIMATORS[cls.__name__] = cls
    return cls


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"cwcl_sk.persistence.{old} is deprecated; use {new}.", DeprecationWarning, stacklevel=3
    )


def save_aligner(aligner, directory) -> Path:
    """Deprecated: use ``aligner.save(directory)``."""
    _deprecated("save_aligner(aligner, directory)", "aligner.save(directory)")
    return aligner.save(directory)


def load_aligner(directory, device="cpu"):
    """Deprecated: use ``CWCLAligner.load(directory, device)``."""
    _deprecated("load_aligner(directory)", "CWCLAligner.load(directory)")
    estimator = _read_json(Path(directory) / "config.json").get("estimator", "CWCLAligner")
    return _ESTIMATORS[estimator].load(directory, device=device)


def save_checkpoint(aligner, directory) -> Path:
    """Deprecated: use ``aligner.save_checkpoint(directory)``."""
    _deprecated("save_checkpoint(aligner, directory)", "aligner.save_checkpoint(directory)")
    return aligner.save_checkpoint(directory)


def restore_checkpoint(aligner, directory) -> None:
    """Deprecated: use ``aligner.load_checkpoint(directory)``."""
    _deprecated("restore_checkpoint(aligner, directory)", "aligner.load_checkpoint(directory)")
    aligner.load_checkpoint(directory)
