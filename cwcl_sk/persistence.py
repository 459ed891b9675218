"""Save and load fitted aligners without pickle: JSON for settings, safetensors for tensors.

A saved folder holds::

    config.json          the estimator's parameters (and the library version)
    fitted.json          learned scalars: width, temperature, history, candidate texts
    student.safetensors  the student's weights
    candidates.safetensors  the teacher embeddings of the candidates

Loading rebuilds the student from its alias and options and loads the weights into it: no
code is unpickled, so a saved folder from an untrusted source cannot run code. A checkpoint
adds ``optimizer.pt`` (tensors only, read with ``torch.load(weights_only=True)``) and
``training.json`` so that training resumes exactly where it stopped.
"""

from __future__ import annotations

import json
import numbers
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

__all__ = ["load_aligner", "restore_checkpoint", "save_aligner", "save_checkpoint"]

FORMAT_VERSION = 1


def _jsonable(value) -> bool:
    if value is None or isinstance(value, str | bool | numbers.Real):
        return not isinstance(value, float) or np.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_jsonable(item) for item in value)
    return False


def _encode_parameter(name: str, value):
    """A JSON form of one parameter, or raise/skip for what cannot be rebuilt without code."""
    from .kernels import KERNELS, WeightKernel

    if _jsonable(value):
        is_tuple = isinstance(value, tuple)
        return {"value": list(value) if is_tuple else value, "tuple": is_tuple}
    if isinstance(value, WeightKernel) and type(value) in KERNELS.values():
        name_of = {cls: key for key, cls in KERNELS.items()}[type(value)]
        return {"kernel": name_of, "params": value.get_params()}
    if isinstance(value, torch.device | os.PathLike):
        return {"value": str(value), "tuple": False}
    return None


def _decode_parameter(encoded):
    from .kernels import KERNELS

    if "kernel" in encoded:
        return KERNELS[encoded["kernel"]](**encoded["params"])
    value = encoded["value"]
    return tuple(_untuple(item) for item in value) if encoded["tuple"] else value


def _untuple(item):
    return tuple(item) if isinstance(item, list) else item


def save_aligner(aligner, directory) -> Path:
    """Write a fitted :class:`~cwcl_sk.CWCLAligner` to ``directory`` (created if needed).

    Parameters
    ----------
    aligner : CWCLAligner
        Fitted, with ``teacher`` and ``student`` given by name (an alias, a path, or
        ``"precomputed"``): a model object cannot be rebuilt without pickling its code.
    directory : str or path-like

    Returns
    -------
    directory : pathlib.Path

    Raises
    ------
    TypeError
        When the teacher or the student is a model object; pickle the estimator instead.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(aligner, "student_")
    for role in ("teacher", "student"):
        if not isinstance(getattr(aligner, role), str):
            raise TypeError(
                f"save() needs the {role} given by name (an alias or a path), got a "
                f"{type(getattr(aligner, role)).__name__} object; pickle the estimator instead."
            )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parameters, skipped = {}, []
    for name, value in aligner.get_params(deep=False).items():
        if name == "callbacks":
            continue  # runtime hooks, not part of the model: loaded aligners have none
        encoded = _encode_parameter(name, value)
        if encoded is None:
            skipped.append(name)
        else:
            parameters[name] = encoded
    if skipped:
        warnings.warn(
            f"Parameters {skipped} cannot be written as JSON and are saved as their defaults; "
            "they only matter for further training.",
            UserWarning,
            stacklevel=3,
        )
    from . import __version__

    config = {
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "estimator": type(aligner).__name__,
        "parameters": parameters,
    }
    fitted = {
        "embedding_dim_": aligner.embedding_dim_,
        "temperature_": aligner.temperature_,
        "history_": aligner.history_,
        "n_features_in_": getattr(aligner, "n_features_in_", None),
        "input_kind": aligner._student_inputs().kind,
        "candidates_": _candidates_for_json(aligner.candidates_),
        "base_seed": aligner._base_seed,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "fitted.json").write_text(json.dumps(fitted, indent=2, default=float))
    save_model(aligner.student_, str(directory / "student.safetensors"))
    candidates = np.ascontiguousarray(aligner.candidate_embeddings_)
    tensors = {"candidate_embeddings": torch.from_numpy(candidates)}
    if _holds_images(aligner.candidates_):
        # Image candidates (an image teacher) are pixels: tensors, not JSON.
        for index, item in enumerate(aligner.candidates_):
            tensors[f"candidate_image_{index}"] = torch.from_numpy(np.array(item.pixels))
    save_file(tensors, str(directory / "candidates.safetensors"))
    return directory


def _holds_images(candidates) -> bool:
    from .inputs import ImageItem

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


def load_aligner(directory, device="cpu"):
    """Rebuild a :class:`~cwcl_sk.CWCLAligner` written by :func:`save_aligner`.

    Parameters
    ----------
    directory : str or path-like
    device : str, default="cpu"
        Where to put the student.

    Returns
    -------
    aligner : CWCLAligner
        Fitted: ``transform``, ``predict``, ``score`` and ``embed_teacher`` work, and training
        can continue with ``partial_fit``.
    """
    from .aligner import CWCLAligner

    directory = Path(directory)
    config = _read_json(directory / "config.json")
    fitted = _read_json(directory / "fitted.json")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"directory: {directory} was saved in format {config.get('format_version')}, "
            f"this library reads format {FORMAT_VERSION}."
        )
    parameters = {name: _decode_parameter(value) for name, value in config["parameters"].items()}
    parameters["device"] = device
    aligner = CWCLAligner(**parameters)
    tensors = load_file(str(directory / "candidates.safetensors"))
    if "candidate_image_0" in tensors:
        from .inputs import ImageItem

        fitted["candidates_"] = [
            ImageItem(tensors[f"candidate_image_{index}"].numpy())
            for index in range(len(tensors["candidate_embeddings"]))
        ]
    aligner._restore_fitted(
        fitted=fitted,
        candidate_embeddings=tensors["candidate_embeddings"].numpy(),
        load_student=lambda model: load_model(model, str(directory / "student.safetensors")),
    )
    return aligner


def save_checkpoint(aligner, directory) -> Path:
    """Save the aligner plus what resuming needs: the optimiser state and the epoch count.

    Parameters
    ----------
    aligner : CWCLAligner
        Being trained or fitted.
    directory : str or path-like

    Returns
    -------
    directory : pathlib.Path
    """
    directory = save_aligner(aligner, directory)
    torch.save(aligner.optimizer_.state_dict(), directory / "optimizer.pt")
    (directory / "training.json").write_text(
        json.dumps({"epochs_done": len(aligner.history_), "base_seed": aligner._base_seed})
    )
    return directory


def restore_checkpoint(aligner, directory) -> None:
    """Load a checkpoint's weights, optimiser state and history into an initialised aligner.

    Tensors are read with safetensors and ``torch.load(weights_only=True)``: no code runs.
    """
    directory = Path(directory)
    fitted = _read_json(directory / "fitted.json")
    training = _read_json(directory / "training.json")
    load_model(aligner.student_, str(directory / "student.safetensors"))
    aligner.optimizer_.load_state_dict(
        torch.load(directory / "optimizer.pt", weights_only=True, map_location=aligner.device_)
    )
    aligner.history_[:] = fitted["history_"]
    aligner._base_seed = int(training["base_seed"])
    # A learned temperature resumes from where it was (a fixed one is the same value).
    aligner._restore_temperature(float(fitted["temperature_"]))
