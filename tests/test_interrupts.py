"""Reliability: Ctrl-C stops fits (and searches) with the estimator consistent; NaN weights raise.

Interrupts and NaNs are injected deterministically: by a callback hook, by a student whose
forward pass raises at a chosen call, or by a checkpoint writer that raises.
"""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils.validation import check_is_fitted

import cwcl_sk.persistence
from cwcl_sk import CWCLAligner, ZeroShotClassifier
from cwcl_sk.callbacks import Callback

FAST = {"max_epochs": 4, "batch_size": 16, "device": "cpu", "random_state": 0}


def precomputed_aligner(**params):
    return CWCLAligner(teacher="precomputed", **{**FAST, **params})


def interrupt(method, *args, **kwargs):
    """Call a training method that Ctrl-C interrupts: it warns, then raises KeyboardInterrupt."""
    with pytest.warns(RuntimeWarning, match="interrupted"), pytest.raises(KeyboardInterrupt):
        method(*args, **kwargs)


class InterruptAtBatch(Callback):
    """Raises KeyboardInterrupt after batch ``batch`` of epoch ``epoch`` (both from 1)."""

    def __init__(self, epoch=1, batch=1):
        self.epoch = epoch
        self.batch = batch

    def on_batch_end(self, estimator, batch_index, loss):
        if len(estimator.history_) + 1 == self.epoch and batch_index + 1 == self.batch:
            raise KeyboardInterrupt


class InterruptAtEpochEnd(Callback):
    def __init__(self, epoch=2):
        self.epoch = epoch

    def on_epoch_end(self, estimator, record):
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt


def test_interrupt_is_re_raised_and_keeps_the_completed_epochs(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(callbacks=[InterruptAtBatch(epoch=3, batch=2)])
    with pytest.warns(RuntimeWarning, match="keeps the weights of the 2 completed"):
        with pytest.raises(KeyboardInterrupt):
            aligner.fit(X, teacher_embeddings)
    assert aligner.stop_reason_ == "interrupted"
    assert [record["epoch"] for record in aligner.history_] == [1, 2]
    reference = precomputed_aligner(max_epochs=2).fit(X, teacher_embeddings)
    np.testing.assert_array_equal(aligner.transform(X), reference.transform(X))


def test_interrupt_in_the_first_epoch_leaves_the_estimator_unfitted(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(callbacks=[InterruptAtBatch(epoch=1, batch=1)])
    interrupt(aligner.fit, X, teacher_embeddings)
    assert aligner.stop_reason_ == "interrupted"
    with pytest.raises(NotFittedError):
        check_is_fitted(aligner)
    with pytest.raises(NotFittedError):
        aligner.transform(X)


def test_refit_interrupted_in_its_first_epoch_drops_the_old_model(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(max_epochs=2).fit(X, teacher_embeddings)
    aligner.set_params(callbacks=[InterruptAtBatch(epoch=1, batch=2)])
    interrupt(aligner.fit, X, teacher_embeddings)
    with pytest.raises(NotFittedError):
        check_is_fitted(aligner)


def test_interrupted_first_partial_fit_leaves_the_estimator_unfitted(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(callbacks=[InterruptAtBatch(epoch=1, batch=1)])
    interrupt(aligner.partial_fit, X, teacher_embeddings)
    with pytest.raises(NotFittedError):
        check_is_fitted(aligner)


def test_interrupted_warm_start_keeps_the_earlier_fit(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(max_epochs=2, warm_start=True).fit(X, teacher_embeddings)
    before = aligner.transform(X)
    aligner.set_params(callbacks=[InterruptAtBatch(epoch=3, batch=1)])
    interrupt(aligner.fit, X, teacher_embeddings)
    check_is_fitted(aligner)
    assert aligner.stop_reason_ == "interrupted"
    assert len(aligner.history_) == 2
    np.testing.assert_array_equal(aligner.transform(X), before)


class InterruptSecondValidation(torch.nn.Linear):
    """A student whose forward pass in eval mode is interrupted once two epochs have trained."""

    training_calls = 0
    steps_per_epoch = 3

    def forward(self, features):
        if self.training:
            self.training_calls += 1
        elif self.training_calls >= 2 * self.steps_per_epoch:
            self.training_calls = -(10**9)  # once: transform afterwards runs normally
            raise KeyboardInterrupt
        return super().forward(features)


def test_interrupt_during_validation_restores_the_last_completed_epoch(paired_features):
    X, teacher_embeddings = paired_features
    pairs, validation = (X[:45], teacher_embeddings[:45]), (X[45:], teacher_embeddings[45:])
    torch.manual_seed(0)
    student = InterruptSecondValidation(X.shape[1], teacher_embeddings.shape[1])
    aligner = precomputed_aligner(student=student)
    with pytest.warns(RuntimeWarning, match="during epoch 2"), pytest.raises(KeyboardInterrupt):
        aligner.fit(*pairs, validation_data=validation)
    assert [record["epoch"] for record in aligner.history_] == [1]
    assert set(aligner.history_[0]) >= {"valid_loss", "valid_r1"}
    # The student module is copied by fit: the reference starts from the same weights.
    reference = precomputed_aligner(student=student, max_epochs=1)
    reference.fit(*pairs, validation_data=validation)
    np.testing.assert_array_equal(aligner.transform(X), reference.transform(X))


def test_interrupt_in_an_epoch_end_callback_keeps_that_epoch(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(callbacks=[InterruptAtEpochEnd(epoch=2)])
    with pytest.warns(RuntimeWarning, match="end of epoch 2"), pytest.raises(KeyboardInterrupt):
        aligner.fit(X, teacher_embeddings)
    assert aligner.stop_reason_ == "interrupted"
    assert [record["epoch"] for record in aligner.history_] == [1, 2]
    reference = precomputed_aligner(max_epochs=2).fit(X, teacher_embeddings)
    np.testing.assert_array_equal(aligner.transform(X), reference.transform(X))
    assert aligner.history_[-1]["train_loss"] == reference.history_[-1]["train_loss"]


def test_interrupted_checkpoint_write_leaves_no_torn_folder(paired_features, tmp_path, monkeypatch):
    X, teacher_embeddings = paired_features
    write_checkpoint_files = cwcl_sk.persistence._write_checkpoint_files

    def interrupted_in_epoch_two(directory, checkpoint):
        if checkpoint.epochs_done == 2:
            raise KeyboardInterrupt  # after the weights were written, before the optimiser
        write_checkpoint_files(directory, checkpoint)

    monkeypatch.setattr(cwcl_sk.persistence, "_write_checkpoint_files", interrupted_in_epoch_two)
    aligner = precomputed_aligner(checkpoint_dir=tmp_path)
    with pytest.warns(RuntimeWarning, match="end of epoch 2"), pytest.raises(KeyboardInterrupt):
        aligner.fit(X, teacher_embeddings)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["epoch-0001"]
    assert len(aligner.history_) == 2
    monkeypatch.undo()
    resumed = precomputed_aligner(max_epochs=2)
    resumed.fit(X, teacher_embeddings, resume_from=tmp_path / "epoch-0001")
    np.testing.assert_array_equal(resumed.transform(X), aligner.transform(X))


class CountingInterrupt(Callback):
    """Interrupts the first batch of every fit, counting the fits started (across clones)."""

    fits_started = 0

    def on_train_begin(self, estimator, history):
        type(self).fits_started += 1

    def on_batch_end(self, estimator, batch_index, loss):
        raise KeyboardInterrupt


def test_interrupt_stops_a_grid_search_at_once(paired_features):
    X, teacher_embeddings = paired_features
    CountingInterrupt.fits_started = 0
    search = GridSearchCV(
        precomputed_aligner(callbacks=[CountingInterrupt()]),
        {"temperature": [0.05, 0.1]},
        cv=3,
    )
    interrupt(search.fit, X, teacher_embeddings)
    assert CountingInterrupt.fits_started == 1
    assert not hasattr(search, "best_params_")


def test_zero_shot_classifier_refits_an_aligner_interrupted_before_its_first_epoch(colour_data):
    X, labels, names = colour_data
    aligner = CWCLAligner(**FAST, callbacks=[InterruptAtBatch(epoch=1, batch=1)])
    interrupt(aligner.fit, X, [names[label] for label in labels])
    aligner.set_params(callbacks=None)
    classifier = ZeroShotClassifier(aligner, labels=names).fit(X, labels)
    assert classifier.aligner_ is not aligner  # unfitted, so a clone was trained


class _NaNGradient(torch.autograd.Function):
    """Identity forward; NaN gradient backward: a finite loss that poisons the weights."""

    @staticmethod
    def forward(ctx, tensor):
        return tensor.clone()

    @staticmethod
    def backward(ctx, gradient):
        return gradient * float("nan")


class NaNGradientLinear(torch.nn.Linear):
    poisoned = False

    def forward(self, features):
        output = super().forward(features)
        return _NaNGradient.apply(output) if self.poisoned else output


def test_nan_gradient_in_the_last_step_raises_and_restores_the_last_good_epoch(paired_features):
    X, teacher_embeddings = paired_features
    student = NaNGradientLinear(X.shape[1], teacher_embeddings.shape[1])
    # One step an epoch: the poisoned step is the fit's last, with no later loss to see it.
    aligner = precomputed_aligner(student=student, max_epochs=2, batch_size=len(X))
    aligner.fit(X, teacher_embeddings)
    before = aligner.transform(X)
    aligner.student_.encoder.poisoned = True
    with pytest.raises(FloatingPointError, match=r"weights became NaN.*epoch 3.*restored"):
        aligner.partial_fit(X, teacher_embeddings)
    aligner.student_.encoder.poisoned = False
    assert all(torch.isfinite(p).all() for p in aligner.student_.parameters())
    np.testing.assert_array_equal(aligner.transform(X), before)
    assert len(aligner.history_) == 2
