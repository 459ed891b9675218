"""One training call of an aligner: its pairs, its temperature, and the run of its epochs.

An aligner's ``fit`` and ``partial_fit`` hand themselves to these functions, which read the
estimator's parameters and set its learned state, and build what
:func:`cwcl_sk.training.run_epochs` needs. The estimator class is never imported here: the
functions take it as an argument, so the estimator depends on this module and not the
other way round.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._fingerprint import pairs_fingerprint
from ._kernel_matrix import check_kernel_matrix
from ._pairs import as_candidates, merge_candidates, split_pairs, take_rows
from .callbacks import Callback, Checkpoint, SkippedInputs, TargetStatistics
from .diagnostics import check_pairs_learnable, looks_collapsed, warn_if_collapsed
from .diagnostics import warn_if_degenerate as warn_if_degenerate_records
from .distributed import broadcast_object, is_distributed, is_main_process, main_process_first
from .encoders.heads import EmbeddingModel, output_width
from .encoders.recipes import SETTINGS, resolve_settings, student_defaults
from .encoders.registry import make_student, make_teacher
from .inputs import check_same_length, count_samples
from .inputs.sources import InputSource, Subset, find_bad_inputs
from .objective import BatchLoss
from .schedules import LearningRateSchedule
from .training import (
    LogitScale,
    TrainingState,
    ValidationSet,
    check_precision,
    embed_in_batches,
    inference_precision,
    make_optimizer,
    run_epochs,
    training_device,
)
from .training.state import logit_scale_group
from .training.targets import PairEmbeddings

# Distinct teacher rows whose CWCL targets are measured before training: all of a set this
# small, a sample of a larger corpus (the statistics come from a few batches anyway).
_DIAGNOSED_ROWS = 16384

# Private state of a fit that does not end in "_" and goes with the learned attributes.
_PRIVATE_FIT_STATE = ("_logit_scale", "_base_seed", "_training_data", "_pairs_fingerprint")


# -- the estimator's fitted state ------------------------------------------------------------


@contextlib.contextmanager
def interruptible(aligner, fresh: bool):
    """Leave the aligner consistent when Ctrl-C interrupts a training call, and re-raise.

    The loop has already restored the last completed epoch. A ``fresh`` call (one that
    starts a new model) interrupted before its first epoch completed leaves the estimator
    unfitted, not holding an untrained model that looks fitted.
    """
    history_before = aligner.__dict__.get("history_")
    try:
        yield
    except KeyboardInterrupt:
        aligner.__dict__.pop("_training_data", None)
        history = aligner.__dict__.get("history_")
        if fresh and (history is history_before or not history):
            forget_fit(aligner)
        aligner.stop_reason_ = "interrupted"
        raise
    except Exception:
        # An error during training (an unreadable input, a diverged loss): the loop has
        # restored the last completed epoch. A new model with no completed epoch is not a
        # fitted one. Errors before training (bad arguments) leave the estimator as it was.
        aligner.__dict__.pop("_training_data", None)
        history = aligner.__dict__.get("history_")
        if fresh and history is not history_before and not history:
            forget_fit(aligner)
        raise


def forget_fit(aligner) -> None:
    """Drop everything learned (attributes ending in ``_``, and private training state)."""
    for name in list(vars(aligner)):
        learned = name.endswith("_") and not name.startswith("__")
        if learned or name in _PRIVATE_FIT_STATE:
            delattr(aligner, name)


def resolved_settings(aligner) -> dict:
    """The aligner's ``learning_rate``, ``max_epochs`` and ``temperature``, with every
    ``"auto"`` replaced by the value of its student's recipe."""
    return resolve_settings(aligner.student, {name: getattr(aligner, name) for name in SETTINGS})


def record_recipe(aligner) -> dict:
    """Set ``recipe_``: the settings this training call uses, and the student options its
    recipe added to the user's; return it."""
    options = aligner._options("student__")
    added = {
        name: value
        for name, value in student_defaults(aligner.student, options).items()
        if name not in options
    }
    aligner.recipe_ = {**resolved_settings(aligner), "student_options": added}
    return aligner.recipe_


def set_temperature(aligner, temperature: float) -> None:
    """Set ``temperature_`` and, when it is learned, a fresh logit scale holding it."""
    aligner.temperature_ = float(temperature)
    aligner._logit_scale = None
    if aligner.learn_temperature:
        aligner._logit_scale = LogitScale(aligner.temperature_).to(aligner.device_)


def sync_temperature(aligner) -> float:
    """Update ``temperature_`` from the learned logit scale; return it."""
    if getattr(aligner, "_logit_scale", None) is not None:
        aligner.temperature_ = aligner._logit_scale.temperature
    return aligner.temperature_


def optimizer_for(aligner) -> torch.optim.AdamW:
    """AdamW over the aligner's student (and its learned logit scale, if any)."""
    return make_optimizer(
        aligner.student_,
        aligner._logit_scale,
        aligner.recipe_["learning_rate"],
        aligner.weight_decay,
    )


def _match_temperature_mode(aligner) -> None:
    """Follow a ``learn_temperature`` changed since the last fit (warm start, partial_fit)."""
    logit_scale = getattr(aligner, "_logit_scale", None)
    if aligner.learn_temperature and logit_scale is None:
        set_temperature(aligner, aligner.temperature_)
        aligner.optimizer_.add_param_group(logit_scale_group(aligner._logit_scale))
    elif not aligner.learn_temperature and logit_scale is not None:
        # Without gradient, AdamW leaves the old logit scale alone.
        aligner._logit_scale = None


# -- the pairs -------------------------------------------------------------------------------


def _encode_pairs(aligner, teacher, y, argument: str):
    """``teacher.encode_unique(y)``; under torchrun with a ``cache_dir``, rank 0 first.

    With a ``cache_dir``, the training pairs' embeddings are memory-mapped from a file there
    (:meth:`~cwcl_sk.encoders.teachers.FrozenTeacher.encode_unique_on_disk`): memory then
    holds the batches' rows, not the corpus's.
    """
    if aligner.cache_dir is None:
        return teacher.encode_unique(y, argument)
    if not is_distributed():
        return teacher.encode_unique_on_disk(y, aligner.cache_dir, argument)
    # The other ranks then read rank 0's embeddings from the disk cache.
    with main_process_first():
        return teacher.encode_unique_on_disk(y, aligner.cache_dir, argument)


def _readable_pairs(aligner, data, y, argument: str = "X"):
    """The pairs whose inputs can be read, and a record of the others.

    Only inputs read on demand (an :class:`~cwcl_sk.inputs.InputSource`: files, a clip
    store) are checked, and only with ``on_bad_input="skip"``: every input is read once (in
    ``num_workers`` DataLoader workers), and the pairs of those that fail are left out, with
    a warning. With ``"raise"``, a bad input stops training when its batch reads it.
    """
    if aligner.on_bad_input != "skip" or not isinstance(data, InputSource):
        return data, y, []
    # Pairs of other lengths are reported as such, not as the skipped inputs they would shift.
    check_same_length(len(data), count_samples(y, "y"))
    bad = find_bad_inputs(data, aligner.num_workers)
    skipped = [{key: record[key] for key in ("index", "source", "error")} for record in bad]
    if not bad:
        return data, y, skipped
    if len(bad) == len(data):
        raise ValueError(
            f"None of the {len(data)} inputs of {argument} could be read "
            f"(on_bad_input='skip'); the first error: {bad[0]['error']}"
        )
    keep = np.setdiff1d(np.arange(len(data)), [record["position"] for record in bad])
    first = "; ".join(record["error"].split(". Pass on_bad_input")[0] for record in bad[:3])
    warnings.warn(
        f"{len(bad)} of {len(data)} training inputs could not be read and were left out "
        f"(on_bad_input='skip'; listed in skipped_inputs_): {first}"
        + ("; ..." if len(bad) > 3 else "."),
        UserWarning,
        stacklevel=4,
    )
    return Subset(data, keep), take_rows(y, keep), skipped


def _split(aligner, X, y, validation_data, allow_split: bool, random: np.random.RandomState):
    """Training pairs and validation pairs (or None) from the arguments of fit."""
    return split_pairs(
        X,
        y,
        validation_data,
        aligner.validation_fraction,
        allow_split,
        random,
        type(aligner).__name__,
    )


def initialise(aligner, X, y, validation_data, allow_split: bool = True) -> None:
    """Start a new model on the pairs ``(X, y)``: teacher, student, optimiser, candidates."""
    aligner._check_parameters()
    record_recipe(aligner)
    aligner.device_ = training_device(aligner.device, aligner.precision)
    # Every rank must split, initialise and shuffle alike: rank 0's generator decides.
    random = broadcast_object(check_random_state(aligner.random_state))
    X, y, validation = _split(aligner, X, y, validation_data, allow_split, random)
    teacher = make_teacher(aligner.teacher, aligner._options("teacher__"), aligner.device_)
    teacher.cache_dir = aligner.cache_dir
    inputs = aligner._student_inputs()
    data = inputs.prepare(X, "X")
    data, y, skipped = _readable_pairs(aligner, data, y)
    uniques, unique_embeddings, inverse = _encode_pairs(aligner, teacher, y, "y")
    check_same_length(count_samples(data, "X"), len(inverse))
    # Called from here, not a helper: its warning points at the caller of fit.
    check_pairs_learnable(len(inverse), aligner.batch_size)
    check_kernel_matrix(aligner.kernel, aligner.loss, len(inverse))

    init_seed, aligner._base_seed = (int(seed) for seed in random.randint(2**31 - 1, size=2))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        encoder = make_student(
            aligner.student, data, unique_embeddings.shape[1], aligner._options("student__")
        )
        sample = inputs.collate(data, np.arange(min(2, len(inverse))))
        width = output_width(encoder, sample)
        model = EmbeddingModel(encoder, width, unique_embeddings.shape[1]).to(aligner.device_)

    aligner.teacher_ = teacher
    aligner.embedding_dim_ = int(unique_embeddings.shape[1])
    aligner.student_ = model
    set_temperature(aligner, float(aligner.recipe_["temperature"]))
    aligner.optimizer_ = optimizer_for(aligner)
    aligner.history_ = []
    if inputs.kind == "features":
        aligner.n_features_in_ = inputs.n_features(data)
    aligner.candidates_ = as_candidates(uniques)
    aligner.candidate_embeddings_ = unique_embeddings
    aligner.skipped_inputs_ = skipped
    teacher_embeddings = PairEmbeddings(unique_embeddings, inverse, aligner.device_)
    # Measured before training: a kernel whose targets are near uniform learns nothing.
    aligner.target_statistics_ = None
    if aligner.loss == "cwcl":
        aligner.target_statistics_ = warn_if_collapsed(
            teacher_embeddings.distinct_sample(_DIAGNOSED_ROWS),
            aligner.kernel,
            aligner.batch_size,
            random,
            warn=is_main_process(),
        )
    aligner._training_data = (data, teacher_embeddings, _validation_set(aligner, validation))
    # Recorded in checkpoints, so that a resume can tell other pairs.
    aligner._pairs_fingerprint = pairs_fingerprint(data, y)


def set_training_data(aligner, X, y, validation_data, allow_split: bool = True) -> None:
    """Take the pairs ``(X, y)`` for more training of a fitted aligner."""
    record_recipe(aligner)
    random = check_random_state(aligner._base_seed)
    X, y, validation = _split(aligner, X, y, validation_data, allow_split, random)
    inputs = aligner._student_inputs()
    data = inputs.prepare(X, "X")
    aligner._check_n_features(data, inputs)
    data, y, aligner.skipped_inputs_ = _readable_pairs(aligner, data, y)
    aligner.teacher_.cache_dir = aligner.cache_dir
    uniques, unique_embeddings, inverse = _encode_pairs(aligner, aligner.teacher_, y, "y")
    check_same_length(count_samples(data, "X"), len(inverse))
    # Called from here, not a helper: its warning points at the caller of fit.
    check_pairs_learnable(len(inverse), aligner.batch_size)
    check_kernel_matrix(aligner.kernel, aligner.loss, len(inverse))
    aligner.candidates_, aligner.candidate_embeddings_ = merge_candidates(
        aligner.candidates_, aligner.candidate_embeddings_, uniques, unique_embeddings
    )
    validation_set = _validation_set(aligner, validation)
    teacher_embeddings = PairEmbeddings(unique_embeddings, inverse, aligner.device_)
    aligner._training_data = (data, teacher_embeddings, validation_set)
    aligner._pairs_fingerprint = pairs_fingerprint(data, y)


def _validation_set(aligner, validation) -> ValidationSet | None:
    if validation is None:
        return None
    X_valid, y_valid = validation
    inputs = aligner._student_inputs()
    data = inputs.prepare(X_valid, "X_valid")
    aligner._check_n_features(data, inputs, argument="X_valid")
    _, unique_embeddings, inverse = _encode_pairs(aligner, aligner.teacher_, y_valid, "y_valid")
    check_same_length(count_samples(data, "X_valid"), len(inverse), "X_valid", "y_valid")
    return ValidationSet(
        data=data,
        teacher_embeddings=torch.from_numpy(unique_embeddings[inverse]).to(aligner.device_),
        unique_embeddings=unique_embeddings,
        inverse=inverse,
    )


# -- the run ---------------------------------------------------------------------------------


def schedule(aligner, first_epoch: int) -> LearningRateSchedule:
    """The learning rates of a fit whose schedule starts at epoch ``first_epoch``."""
    return LearningRateSchedule(
        aligner.lr_schedule,
        float(aligner.recipe_["learning_rate"]),
        float(aligner.warmup_fraction),
        first_epoch=first_epoch,
        n_epochs=aligner.recipe_["max_epochs"],
    )


def constant_rate(aligner) -> LearningRateSchedule:
    """partial_fit's rates: ``learning_rate``, whatever the schedule, without warm-up."""
    return LearningRateSchedule("constant", float(aligner.recipe_["learning_rate"]), 0.0, 1, 1)


def _callbacks(aligner, teacher_embeddings: torch.Tensor) -> list:
    callbacks = [item[1] if isinstance(item, tuple) else item for item in (aligner.callbacks or [])]
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(
                "callbacks must be Callback instances or (name, Callback) pairs, got "
                f"{type(callback).__name__}."
            )
    if aligner.checkpoint_dir is not None:
        callbacks.append(Checkpoint(aligner.checkpoint_dir, every=aligner.checkpoint_every))
    if aligner.loss == "cwcl":
        # First, so that user callbacks see the target statistics in the record.
        callbacks.insert(0, TargetStatistics(aligner.kernel, teacher_embeddings))
    if aligner.on_bad_input == "skip":
        callbacks.insert(0, SkippedInputs(len(aligner.skipped_inputs_)))
    return callbacks


def train(aligner, n_epochs: int, learning_rate: LearningRateSchedule):
    """Run ``n_epochs`` epochs on the pairs set by :func:`initialise` or
    :func:`set_training_data`, then drop them; return the aligner."""
    data, teacher_embeddings, validation = aligner._training_data
    inputs = aligner._student_inputs()
    if aligner.early_stopping and validation is None:
        del aligner._training_data
        raise ValueError(
            "early_stopping=True needs validation pairs: set validation_fraction > 0 or "
            "pass validation_data to fit."
        )
    check_precision(aligner.precision, aligner.device_)
    _match_temperature_mode(aligner)
    state = TrainingState(
        aligner.student_,
        aligner.optimizer_,
        aligner.history_,
        aligner._base_seed,
        logit_scale=aligner._logit_scale,
    )
    batch_loss = BatchLoss(
        aligner.loss,
        aligner.kernel,
        aligner.direction,
        aligner.temperature_ if aligner._logit_scale is None else aligner._logit_scale,
    )
    epochs_before = len(aligner.history_)
    try:
        aligner.stop_reason_ = "error"  # unless run_epochs returns
        aligner.stop_reason_ = run_epochs(
            state,
            data=data,
            collate=inputs.collate,
            teacher_embeddings=teacher_embeddings,
            batch_loss=batch_loss,
            n_epochs=n_epochs,
            batch_size=aligner.batch_size,
            device=aligner.device_,
            verbose=aligner.verbose,
            validation=validation,
            patience=aligner.patience if aligner.early_stopping else None,
            callbacks=_callbacks(aligner, teacher_embeddings),
            estimator=aligner,
            temperature=functools.partial(sync_temperature, aligner),
            mini_batch_size=aligner.mini_batch_size,
            precision=aligner.precision,
            num_workers=aligner.num_workers,
            learning_rate=learning_rate,
        )
        if is_main_process():
            _warn_if_degenerate(aligner, data, inputs, aligner.history_[epochs_before:])
    finally:
        # The training pairs are not part of the fitted state (pickles stay small).
        del aligner._training_data
        # Early stopping or a NaN may have restored an earlier logit scale.
        sync_temperature(aligner)
    return aligner


def _warn_if_degenerate(aligner, data, inputs, records: list) -> None:
    """Warn when the training just ended learned nothing or went backwards."""
    n_pairs = count_samples(data, "X")
    n_sampled = min(n_pairs, 64)  # a few inputs tell whether outputs collapsed
    embeddings = embed_in_batches(
        aligner.student_,
        data,
        inputs.collate,
        n_sampled,
        n_sampled,
        aligner.device_,
        precision=inference_precision(aligner.precision, aligner.device_),
    )
    statistics = getattr(aligner, "target_statistics_", None)
    warn_if_degenerate_records(
        records,
        embeddings,
        n_pairs=n_pairs,
        batch_size=aligner.batch_size,
        learning_rate=aligner.recipe_["learning_rate"],
        input_magnitude=_magnitude(data) if inputs.kind == "features" else None,
        targets_collapsed=statistics is not None and looks_collapsed(statistics),
    )


def _magnitude(features) -> float:
    """The largest absolute value of prepared feature rows (for the degenerate-fit warning)."""
    return float(np.max(np.abs(features))) if np.size(features) else 0.0
