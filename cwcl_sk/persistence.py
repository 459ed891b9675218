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
Loading runs no code, so a saved folder from an untrusted source cannot run code, and every
record is checked as it is read (types, shapes, dtypes, finiteness, the format version): an
error names the file and the field. A folder is written whole, into a fresh temporary sibling
renamed into place (:mod:`cwcl_sk._folders`), and never through a symbolic link.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from ._folders import write_folder
from ._version import __version__
from .inputs import ImageItem
from .kernels import KERNELS, WeightKernel

__all__ = [
    "FORMAT_VERSION",
    "INPUT_KINDS",
    "CheckpointRecords",
    "SavedModel",
    "check_optimizer_state",
    "decode_parameters",
    "differing_parameters",
    "encode_parameters",
    "load_aligner",
    "load_student_weights",
    "placeholder_inputs",
    "read_checkpoint",
    "read_config",
    "read_model",
    "register_estimator",
    "restore_checkpoint",
    "save_aligner",
    "save_checkpoint",
    "write_checkpoint",
    "write_model",
]

FORMAT_VERSION = 1
INPUT_KINDS = ("features", "audio", "image", "text")


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


def _decode_parameter(encoded, where: str):
    """One parameter from its JSON form; ``where`` names the file and field in errors."""
    if isinstance(encoded, dict) and "kernel" in encoded:
        name, params = encoded["kernel"], encoded.get("params", {})
        if name not in KERNELS or not isinstance(params, dict):
            raise ValueError(
                f"{where} must name a built-in kernel ({', '.join(sorted(KERNELS))}) with a "
                f"'params' object, got {encoded!r:.120}."
            )
        try:
            return KERNELS[name](**params)
        except TypeError as error:
            raise ValueError(f"{where}: {error}") from error
    if not (isinstance(encoded, dict) and "value" in encoded):
        raise ValueError(
            f"{where} must be an object with a 'value' (or a 'kernel'), got {encoded!r:.120}."
        )
    value = encoded["value"]
    if encoded.get("tuple", False) is True:
        if not isinstance(value, list):
            raise ValueError(f"{where} is marked as a tuple but holds {value!r:.120}.")
        return tuple(_untuple(item) for item in value)
    return value


def _untuple(item):
    return tuple(item) if isinstance(item, list) else item


def decode_parameters(encoded: dict, where: str = "parameters") -> dict:
    """The parameters written by :func:`encode_parameters`.

    Parameters
    ----------
    encoded : dict
    where : str, default="parameters"
        Names the file and the field in error messages.

    Raises
    ------
    ValueError
        For a form :func:`encode_parameters` does not write, naming the parameter.
    """
    if not isinstance(encoded, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(encoded).__name__}.")
    return {name: _decode_parameter(value, f"{where}.{name}") for name, value in encoded.items()}


def _holds_images(candidates) -> bool:
    return candidates.ndim == 1 and len(candidates) > 0 and isinstance(candidates[0], ImageItem)


def _candidates_for_json(candidates):
    """Texts as a list; None for embedding rows and images (kept in candidates.safetensors)."""
    if candidates.ndim == 2 or _holds_images(candidates):
        return None
    return candidates.tolist()


def _read_json(path: Path) -> dict:
    """A JSON object from ``path``; errors name the file."""
    if not path.exists():
        raise FileNotFoundError(f"directory: {path.name} is missing in {path.parent}.")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}: not valid JSON ({error}); the file is truncated or was edited."
        ) from error
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason}).") from error
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(record).__name__}.")
    return record


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_positive_int(value) -> bool:
    return _is_int(value) and value >= 1


def _is_positive_real(value) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _is_history(value) -> bool:
    return isinstance(value, list) and all(isinstance(record, dict) for record in value)


def _is_text_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _field(record: dict, name: str, path: Path, expected: str, accept: Callable, optional=False):
    """``record[name]``, checked by ``accept``; errors name the file, the field and the form."""
    if name not in record:
        if optional:
            return None
        raise ValueError(f"{path}: field {name!r} is missing; expected {expected}.")
    value = record[name]
    if not accept(value):
        raise ValueError(f"{path}: field {name!r} must be {expected}, got {value!r:.80}.")
    return value


def _check_fitted_record(fitted: dict, path: Path) -> None:
    """The learned values of ``fitted.json``, as :func:`write_model` writes them."""
    _field(fitted, "embedding_dim_", path, "a positive integer", _is_positive_int)
    _field(fitted, "temperature_", path, "a finite number > 0", _is_positive_real)
    _field(fitted, "history_", path, "a list of per-epoch objects", _is_history)
    kind = _field(fitted, "input_kind", path, f"one of {INPUT_KINDS}", INPUT_KINDS.__contains__)
    _field(fitted, "base_seed", path, "an integer", _is_int)
    _field(
        fitted,
        "n_features_in_",
        path,
        "a positive integer" + ("" if kind == "features" else " or null"),
        lambda value: _is_positive_int(value) or (value is None and kind != "features"),
        optional=kind != "features",
    )
    _field(
        fitted,
        "candidates_",
        path,
        "a list of texts, or null",
        lambda value: value is None or _is_text_list(value),
    )


def _read_tensors(path: Path) -> dict:
    """Every tensor of a safetensors file; errors name the file."""
    if not path.exists():
        raise FileNotFoundError(f"directory: {path.name} is missing in {path.parent}.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(
            f"{path}: not a readable safetensors file ({error}); it is truncated or was edited."
        ) from error


def _check_finite(tensor: torch.Tensor, path: Path, name: str) -> None:
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{path}: tensor {name!r} holds NaN or infinite values.")


def _read_candidates(directory: Path, fitted: dict) -> np.ndarray:
    """The candidate embeddings (and image candidates) of ``candidates.safetensors``."""
    path = directory / "candidates.safetensors"
    tensors = _read_tensors(path)
    if "candidate_embeddings" not in tensors:
        raise ValueError(f"{path}: tensor 'candidate_embeddings' is missing.")
    embeddings = tensors["candidate_embeddings"]
    dim = fitted["embedding_dim_"]
    if embeddings.dtype != torch.float32 or embeddings.ndim != 2 or embeddings.shape[1] != dim:
        raise ValueError(
            f"{path}: tensor 'candidate_embeddings' must be float32 of shape (n_candidates, "
            f"{dim}) (embedding_dim_ in fitted.json), got {str(embeddings.dtype)[6:]} of shape "
            f"{tuple(embeddings.shape)}."
        )
    _check_finite(embeddings, path, "candidate_embeddings")
    n_candidates = len(embeddings)
    texts = fitted["candidates_"]
    if texts is not None and len(texts) != n_candidates:
        raise ValueError(
            f"{directory / 'fitted.json'}: field 'candidates_' holds {len(texts)} texts, but "
            f"{path.name} holds {n_candidates} candidate embeddings."
        )
    if "candidate_image_0" in tensors:
        missing = [i for i in range(n_candidates) if f"candidate_image_{i}" not in tensors]
        if missing:
            raise ValueError(f"{path}: tensor 'candidate_image_{missing[0]}' is missing.")
        fitted["candidates_"] = [
            ImageItem(tensors[f"candidate_image_{index}"].numpy()) for index in range(n_candidates)
        ]
    return embeddings.numpy()


@dataclass
class CheckpointRecords:
    """What a checkpoint adds to a saved model so that training resumes where it stopped.

    Attributes
    ----------
    optimizer_state : dict
        ``optimizer.state_dict()``: tensors and numbers only.
    epochs_done : int
    base_seed : int
        The seed from which every epoch draws its randomness.
    pairs_fingerprint : str or None
        :func:`cwcl_sk._fingerprint.pairs_fingerprint` of the training pairs, so that a
        resume can tell other data; None when unknown.
    """

    optimizer_state: dict
    epochs_done: int
    base_seed: int
    pairs_fingerprint: str | None = None


def _is_saved_folder(directory: Path) -> bool:
    """A folder this module wrote (which saving may replace)."""
    return (directory / "config.json").is_file()


def _write_model_files(
    directory: Path, config: dict, fitted: dict, student, candidates, embeddings
):
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "fitted.json").write_text(json.dumps(fitted, indent=2, default=float))
    save_model(student, str(directory / "student.safetensors"))
    tensors = {"candidate_embeddings": torch.from_numpy(np.array(embeddings, dtype=np.float32))}
    if _holds_images(candidates):
        # Image candidates (an image teacher) are pixels: tensors, not JSON.
        for index, item in enumerate(candidates):
            tensors[f"candidate_image_{index}"] = torch.from_numpy(np.array(item.pixels))
    save_file(tensors, str(directory / "candidates.safetensors"))


def _write_checkpoint_files(directory: Path, checkpoint: CheckpointRecords) -> None:
    torch.save(checkpoint.optimizer_state, directory / "optimizer.pt")
    training = {
        "epochs_done": int(checkpoint.epochs_done),
        "base_seed": int(checkpoint.base_seed),
        "pairs_fingerprint": checkpoint.pairs_fingerprint,
    }
    (directory / "training.json").write_text(json.dumps(training))


def write_model(
    directory,
    *,
    estimator: str,
    parameters: dict,
    fitted: dict,
    student: torch.nn.Module,
    candidates: np.ndarray,
    candidate_embeddings: np.ndarray,
    checkpoint: CheckpointRecords | None = None,
) -> Path:
    """Write a fitted model's records to ``directory``, whole and without following links.

    The files are written into a fresh temporary sibling folder, which then takes the name
    ``directory``: an interrupted write leaves no partial folder under that name, and an
    earlier saved model there is replaced in one step (see :mod:`cwcl_sk._folders`).

    Parameters
    ----------
    directory : str or path-like
        A new folder, an empty one, or one this module wrote (it is replaced).
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
    checkpoint : CheckpointRecords, optional
        Also write ``optimizer.pt`` and ``training.json``: a resumable checkpoint.

    Returns
    -------
    directory : pathlib.Path

    Raises
    ------
    ValueError
        When ``directory`` is a symbolic link, a file, or a folder holding other files.
    """
    config = {
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "estimator": estimator,
        "parameters": parameters,
    }
    fitted = {**fitted, "candidates_": _candidates_for_json(candidates)}

    def write(folder: Path) -> None:
        _write_model_files(folder, config, fitted, student, candidates, candidate_embeddings)
        if checkpoint is not None:
            _write_checkpoint_files(folder, checkpoint)

    return write_folder(directory, write, argument="directory", replaceable=_is_saved_folder)


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


def read_config(directory) -> dict:
    """``config.json`` of a saved folder, checked: format version, estimator, parameters.

    Returns
    -------
    config : dict
        As written; ``parameters`` still in their JSON forms.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    ValueError
        For a folder written in another format version, or a field of the wrong form,
        naming the file and the field.
    """
    path = Path(directory) / "config.json"
    config = _read_json(path)
    version = config.get("format_version")
    if version != FORMAT_VERSION or not _is_int(version):
        raise ValueError(
            f"directory: {path.parent} was saved in format {version!r} (field "
            f"'format_version' of {path.name}), this library reads format {FORMAT_VERSION}."
        )
    _field(
        config, "library_version", path, "a version string", lambda value: isinstance(value, str)
    )
    _field(config, "estimator", path, "a class name", lambda value: isinstance(value, str))
    _field(config, "parameters", path, "an object", lambda value: isinstance(value, dict))
    return config


def read_model(directory) -> SavedModel:
    """Read and check the records written by :func:`write_model`.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    ValueError
        For a folder written in another format version, a truncated or edited file, a field
        of the wrong type, or tensors of the wrong dtype or shape, or holding NaN: naming the
        file and the field.
    """
    directory = Path(directory)
    config = read_config(directory)
    fitted = _read_json(directory / "fitted.json")
    _check_fitted_record(fitted, directory / "fitted.json")
    candidate_embeddings = _read_candidates(directory, fitted)
    return SavedModel(
        estimator=config["estimator"],
        parameters=decode_parameters(
            config["parameters"], f"{directory / 'config.json'}: field 'parameters'"
        ),
        fitted=fitted,
        candidate_embeddings=candidate_embeddings,
        directory=directory,
    )


def load_student_weights(student: torch.nn.Module, directory) -> None:
    """Load ``student.safetensors`` of a saved folder into ``student`` (same architecture).

    Every tensor is checked against the student first (name, shape, dtype, finiteness), so a
    file that does not belong to the architecture fails here, naming the tensor, and leaves
    ``student`` unchanged.

    Raises
    ------
    FileNotFoundError
        When the file is missing.
    ValueError
        When it is unreadable, or a tensor is unexpected, of another shape or dtype, or
        holds NaN or infinite values.
    """
    path = Path(directory) / "student.safetensors"
    tensors = _read_tensors(path)
    expected = student.state_dict()
    for name, tensor in tensors.items():
        if name not in expected:
            raise ValueError(
                f"{path}: tensor {name!r} has no place in the student that config.json "
                "describes: the settings and the weights do not belong together."
            )
        wanted = expected[name]
        if tensor.shape != wanted.shape or tensor.dtype != wanted.dtype:
            raise ValueError(
                f"{path}: tensor {name!r} is {str(tensor.dtype)[6:]} of shape "
                f"{tuple(tensor.shape)}, but the student that config.json and fitted.json "
                f"describe needs {str(wanted.dtype)[6:]} of shape {tuple(wanted.shape)}: the "
                "settings and the weights do not belong together."
            )
        _check_finite(tensor, path, name)
    try:
        load_model(student, str(path))
    except RuntimeError as error:  # missing tensors (shared ones are accounted for)
        raise ValueError(f"{path}: {error}") from error


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


def check_optimizer_state(state, parameter_groups: list[list[torch.Tensor]], path) -> None:
    """Check an ``optimizer.state_dict()`` read from ``path`` against the parameters it is for.

    Parameters
    ----------
    state : object
        What ``optimizer.pt`` held.
    parameter_groups : list of list of torch.Tensor
        The parameters of each group of the optimiser that will load it.
    path : path-like
        Named in errors.

    Raises
    ------
    ValueError
        When the groups, their sizes, or the per-parameter tensors (shape, finiteness)
        do not match.
    """
    if not (
        isinstance(state, dict)
        and isinstance(state.get("state"), dict)
        and isinstance(state.get("param_groups"), list)
        and all(isinstance(group, dict) for group in state["param_groups"])
    ):
        raise ValueError(f"{path}: expected an optimiser state with 'state' and 'param_groups'.")
    sizes = [len(group.get("params", ())) for group in state["param_groups"]]
    wanted = [len(group) for group in parameter_groups]
    if sizes != wanted:
        raise ValueError(
            f"{path}: field 'param_groups' holds groups of {sizes} parameters, but the student "
            f"needs {wanted}: the checkpoint belongs to another architecture or temperature "
            "setting."
        )
    for group, parameters in zip(state["param_groups"], parameter_groups, strict=True):
        for index, parameter in zip(group["params"], parameters, strict=True):
            for key, tensor in state["state"].get(index, {}).items():
                if not isinstance(tensor, torch.Tensor) or key == "step":
                    continue
                if tensor.shape != parameter.shape:
                    raise ValueError(
                        f"{path}: field 'state.{index}.{key}' has shape {tuple(tensor.shape)}, "
                        f"but its parameter has shape {tuple(parameter.shape)}."
                    )
                _check_finite(tensor, Path(path), f"state.{index}.{key}")


def write_checkpoint(directory, optimizer_state: dict, epochs_done: int, base_seed: int) -> None:
    """Add what resuming needs to a saved model folder: the optimiser state and the epoch count.

    :func:`write_model` with ``checkpoint=`` writes a checkpoint whole; this adds the files to
    a folder that exists.

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
    for name in ("optimizer.pt", "training.json"):
        if (directory / name).is_symlink():
            raise ValueError(f"directory: {directory / name} is a symbolic link; not written.")
    _write_checkpoint_files(directory, CheckpointRecords(optimizer_state, epochs_done, base_seed))


def read_checkpoint(directory, map_location) -> tuple[dict, dict, dict]:
    """The checked records of a checkpoint folder.

    Tensors are read with ``torch.load(weights_only=True)``: no code runs.

    Returns
    -------
    fitted : dict
        As in ``fitted.json``.
    training : dict
        ``epochs_done``, ``base_seed`` and ``pairs_fingerprint`` (None for checkpoints of
        earlier versions, which did not record it).
    optimizer_state : dict
        Not yet checked against an optimiser: see :func:`check_optimizer_state`.

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the file and the field.
    """
    directory = Path(directory)
    fitted = _read_json(directory / "fitted.json")
    _check_fitted_record(fitted, directory / "fitted.json")
    path = directory / "training.json"
    training = _read_json(path)
    epochs = _field(
        training, "epochs_done", path, "a non-negative integer", lambda v: _is_int(v) and v >= 0
    )
    _field(training, "base_seed", path, "an integer", _is_int)
    training.setdefault("pairs_fingerprint", None)
    _field(
        training,
        "pairs_fingerprint",
        path,
        "a hex string or null",
        lambda v: v is None or isinstance(v, str),
    )
    if epochs != len(fitted["history_"]):
        raise ValueError(
            f"{path}: field 'epochs_done' is {epochs}, but field 'history_' of fitted.json "
            f"holds {len(fitted['history_'])} epochs."
        )
    optimizer_path = directory / "optimizer.pt"
    if not optimizer_path.exists():
        raise FileNotFoundError(f"directory: optimizer.pt is missing in {directory}.")
    try:
        optimizer_state = torch.load(optimizer_path, weights_only=True, map_location=map_location)
    except Exception as error:  # torch raises many kinds for a damaged or foreign file
        raise ValueError(
            f"{optimizer_path}: not a readable optimiser state ({type(error).__name__}: "
            f"{str(error)[:200]})."
        ) from error
    return fitted, training, optimizer_state


def differing_parameters(saved: dict, current: dict, ignored=()) -> dict:
    """The parameters whose JSON forms differ between a saved config and current settings.

    Parameters
    ----------
    saved : dict
        ``parameters`` of ``config.json``.
    current : dict
        :func:`encode_parameters` of the current settings.
    ignored : collection of str
        Names that may differ (run settings such as ``max_epochs`` or ``device``).

    Returns
    -------
    differences : dict
        Name -> (saved value, current value), decoded; only names both record (callables
        and arrays, which JSON does not hold, cannot be compared).
    """
    current = json.loads(json.dumps(current))
    return {
        name: (_decode_parameter(saved[name], name), _decode_parameter(current[name], name))
        for name in sorted(set(saved) & set(current) - set(ignored))
        if saved[name] != current[name]
    }


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
    estimator = read_config(directory)["estimator"]
    return _ESTIMATORS[estimator].load(directory, device=device)


def save_checkpoint(aligner, directory) -> Path:
    """Deprecated: use ``aligner.save_checkpoint(directory)``."""
    _deprecated("save_checkpoint(aligner, directory)", "aligner.save_checkpoint(directory)")
    return aligner.save_checkpoint(directory)


def restore_checkpoint(aligner, directory) -> None:
    """Deprecated: use ``aligner.load_checkpoint(directory)``."""
    _deprecated("restore_checkpoint(aligner, directory)", "aligner.load_checkpoint(directory)")
    aligner.load_checkpoint(directory)
