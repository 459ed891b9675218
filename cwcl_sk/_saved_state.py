"""An aligner's fitted state as the plain records of :mod:`cwcl_sk.persistence`, and back.

:mod:`cwcl_sk.persistence` reads and writes folders of JSON and safetensors records and knows
no estimator. This module knows the aligner's attribute names, and takes the aligner as an
argument rather than importing its class, so that saving never depends on the estimator.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._fit_session import optimizer_for, record_recipe, set_temperature
from ._pairs import as_candidates
from ._validation import check_choice
from .distributed import is_main_process
from .encoders.heads import EmbeddingModel, output_width
from .encoders.registry import make_student, make_teacher
from .persistence import (
    CheckpointRecords,
    check_optimizer_state,
    differing_parameters,
    encode_parameters,
    load_student_weights,
    placeholder_inputs,
    read_checkpoint,
    read_config,
    write_model,
)
from .training import resolve_device

RESUME_MISMATCH = ("raise", "warn", "allow")
# Settings that say how long, where and how verbosely to train, not what is learned: a resumed
# run may change them (max_epochs to train longer). random_state is here because the
# checkpoint's own seed continues; a different validation split shows in the pairs.
_RUN_SETTINGS = frozenset(
    {
        "max_epochs",
        "verbose",
        "device",
        "precision",
        "num_workers",
        "cache_dir",
        "callbacks",
        "checkpoint_dir",
        "checkpoint_every",
        "warm_start",
        "early_stopping",
        "patience",
        "random_state",
        "teacher__batch_size",
    }
)


def write_aligner(aligner, directory, checkpoint: bool) -> Path:
    """Save a fitted aligner to ``directory``, with the records resuming needs when
    ``checkpoint``; return the folder."""
    if not is_main_process():
        # Under torchrun every rank holds the same model; one writer avoids torn files.
        return Path(directory)
    check_is_fitted(aligner, "student_")
    for role in ("teacher", "student"):
        if not isinstance(getattr(aligner, role), str):
            raise TypeError(
                f"save() needs the {role} given by name (an alias or a path), got a "
                f"{type(getattr(aligner, role)).__name__} object; pickle the estimator instead."
            )
    # Callbacks are runtime hooks, not part of the model: loaded aligners have none.
    parameters = aligner.get_params(deep=False)
    parameters.pop("callbacks", None)
    encoded, skipped = encode_parameters(parameters)
    if skipped:
        warnings.warn(
            f"Parameters {skipped} cannot be written as JSON and are saved as their "
            "defaults; they only matter for further training.",
            UserWarning,
            stacklevel=3,
        )
    records = None
    if checkpoint:
        records = CheckpointRecords(
            optimizer_state=aligner.optimizer_.state_dict(),
            epochs_done=len(aligner.history_),
            base_seed=aligner._base_seed,
            pairs_fingerprint=getattr(aligner, "_pairs_fingerprint", None),
        )
    return write_model(
        directory,
        estimator=type(aligner).__name__,
        parameters=encoded,
        fitted={
            "embedding_dim_": aligner.embedding_dim_,
            "temperature_": aligner.temperature_,
            "history_": aligner.history_,
            "n_features_in_": getattr(aligner, "n_features_in_", None),
            "input_kind": aligner._student_inputs().kind,
            "base_seed": aligner._base_seed,
        },
        student=aligner.student_,
        candidates=aligner.candidates_,
        candidate_embeddings=aligner.candidate_embeddings_,
        checkpoint=records,
    )


def restore_fitted(aligner, fitted: dict, candidate_embeddings, directory) -> None:
    """Rebuild a fresh aligner's fitted state from the records of a saved folder."""
    try:
        aligner._check_parameters()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{Path(directory) / 'config.json'}: {error}") from error
    aligner.device_ = resolve_device(aligner.device)
    aligner.teacher_ = make_teacher(aligner.teacher, aligner._options("teacher__"), aligner.device_)
    inputs = aligner._student_inputs()
    placeholder = placeholder_inputs(
        fitted["input_kind"], fitted.get("n_features_in_"), aligner.sampling_rate
    )
    data = inputs.prepare(placeholder, "X")
    encoder = make_student(
        aligner.student, data, fitted["embedding_dim_"], aligner._options("student__")
    )
    width = output_width(encoder, inputs.collate(data, np.arange(len(placeholder))))
    aligner.student_ = EmbeddingModel(encoder, width, fitted["embedding_dim_"])
    load_student_weights(aligner.student_, directory)
    aligner.student_.to(aligner.device_).eval()
    record_recipe(aligner)
    set_temperature(aligner, float(fitted["temperature_"]))
    aligner.optimizer_ = optimizer_for(aligner)
    aligner.embedding_dim_ = int(fitted["embedding_dim_"])
    aligner.history_ = list(fitted["history_"])
    aligner._base_seed = int(fitted["base_seed"])
    if fitted.get("n_features_in_") is not None:
        aligner.n_features_in_ = int(fitted["n_features_in_"])
    candidates = fitted["candidates_"]
    aligner.candidates_ = (
        candidate_embeddings.copy() if candidates is None else as_candidates(candidates)
    )
    aligner.candidate_embeddings_ = candidate_embeddings
    if aligner.teacher == "precomputed":
        aligner.teacher_.dim = aligner.embedding_dim_


def load_checkpoint_into(aligner, directory, mismatch: str) -> None:
    """Check every record of a checkpoint, then load it into a fitted aligner."""
    check_is_fitted(aligner, "student_")
    check_choice("mismatch", mismatch, RESUME_MISMATCH)
    directory = Path(directory)
    config = read_config(directory)
    fitted, training, optimizer_state = read_checkpoint(directory, aligner.device_)
    _check_resume_matches(aligner, directory, config["parameters"], training, mismatch)
    groups = [group["params"] for group in aligner.optimizer_.param_groups]
    check_optimizer_state(optimizer_state, groups, directory / "optimizer.pt")
    load_student_weights(aligner.student_, directory)
    aligner.optimizer_.load_state_dict(optimizer_state)
    aligner.history_[:] = fitted["history_"]
    aligner._base_seed = int(training["base_seed"])
    # A learned temperature resumes from where it was (a fixed one is the same value).
    aligner.temperature_ = float(fitted["temperature_"])
    if getattr(aligner, "_logit_scale", None) is not None:
        aligner._logit_scale.set_temperature(aligner.temperature_)


def _check_resume_matches(aligner, directory, saved_parameters, training, mismatch) -> None:
    """Refuse (or warn about) a checkpoint of other pairs or other training parameters."""
    if mismatch == "allow":
        return
    current, _ = encode_parameters(aligner.get_params(deep=False))
    differences = [
        f"{name}={saved!r} there, {here!r} here"
        for name, (saved, here) in differing_parameters(
            saved_parameters, current, _RUN_SETTINGS
        ).items()
    ]
    saved_pairs = training["pairs_fingerprint"]
    pairs = getattr(aligner, "_pairs_fingerprint", None)
    if saved_pairs is not None and pairs is not None and saved_pairs != pairs:
        differences.append(
            "the training pairs (other pairs, another order, or another validation split "
            "from validation_fraction or random_state)"
        )
    if not differences:
        return
    message = (
        f"resume_from: {directory} was trained differently from this fit: "
        f"{'; '.join(differences)}. Resume with the checkpoint's pairs and settings, or "
        "pass resume_mismatch='allow' (or 'warn') to fit to continue anyway."
    )
    if mismatch == "raise":
        raise ValueError(message)
    # One frame deeper than the aligner's load_checkpoint: point at the caller of fit.
    warnings.warn(message, UserWarning, stacklevel=5)
