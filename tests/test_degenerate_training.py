"""Training that cannot learn raises; training that learned nothing or went backwards warns."""

import math
import warnings

import numpy as np
import pytest

from cwcl_sk import CWCLAligner
from cwcl_sk.diagnostics import degenerate_training_messages

FAST = {"max_epochs": 3, "batch_size": 16, "device": "cpu", "random_state": 0}
SPREAD = np.eye(4)  # four embeddings that are far apart


def precomputed_aligner(**params):
    return CWCLAligner(teacher="precomputed", **{**FAST, **params})


def test_batch_size_one_is_refused_before_training(paired_features):
    aligner = precomputed_aligner(batch_size=1)
    with pytest.raises(ValueError, match=r"batch_size=1: .*no negatives.*batch_size >= 2"):
        aligner.fit(*paired_features)
    assert not hasattr(aligner, "student_")


def test_a_single_pair_warns_that_nothing_is_learned(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.warns(UserWarning, match="X and y hold 1 sample pair.*learns nothing") as caught:
        aligner = precomputed_aligner().fit(X[:1], teacher_embeddings[:1])
    assert [record["train_loss"] for record in aligner.history_] == [0.0] * 3
    assert caught[0].filename == __file__  # points at the caller's fit


def test_partial_fit_on_a_single_pair_warns(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner().fit(X, teacher_embeddings)
    with pytest.warns(UserWarning, match="X and y hold 1 sample pair"):
        aligner.partial_fit(X[:1], teacher_embeddings[:1])


def test_healthy_training_does_not_warn(paired_features):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precomputed_aligner().fit(*paired_features)


def test_huge_inputs_that_collapse_the_outputs_warn_to_scale_them(paired_features):
    X, teacher_embeddings = paired_features
    with (
        warnings.catch_warnings(),
        pytest.warns(UserWarning, match=r"nearly one embedding.*reach 1\.1e\+31.*StandardScaler"),
    ):
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow on the way
        aligner = precomputed_aligner().fit(X * 1e30, teacher_embeddings)
    embeddings = aligner.transform(X * 1e30)
    assert np.abs(embeddings - embeddings[0]).max() < 1e-3  # the warning tells the truth


def test_learning_rate_that_collapses_the_model_warns(paired_features):
    aligner = precomputed_aligner(max_epochs=4, learning_rate=10.0, learn_temperature=True)
    with pytest.warns(UserWarning, match=r"ended at 2\.708.*log of the batch size.*lower learn"):
        aligner.fit(*paired_features)
    assert aligner.history_[-1]["train_loss"] == pytest.approx(math.log(15), rel=1e-3)


def test_training_loss_that_rose_warns(paired_features):
    aligner = precomputed_aligner(learning_rate=1e-7, random_state=1)
    with pytest.warns(UserWarning, match=r"loss rose over the run, from .* \(epoch 1\)") as caught:
        aligner.fit(*paired_features)
    assert caught[0].filename == __file__
    assert aligner.history_[-1]["train_loss"] > aligner.history_[0]["train_loss"]


def records(*losses):
    return [{"epoch": epoch, "train_loss": loss} for epoch, loss in enumerate(losses, 1)]


def messages(losses, embeddings=SPREAD, **context):
    context = {"n_pairs": 64, "batch_size": 16, "learning_rate": 1e-3, **context}
    return degenerate_training_messages(records(*losses), embeddings, **context)


def test_falling_loss_above_its_floor_gives_no_message():
    assert messages([6.0, 4.0, 3.0]) == []


def test_loss_at_the_floor_of_its_batch_size_is_named():
    (message,) = messages([5.0, math.log(16)])
    assert "log of the batch size, 2.7726" in message


def test_loss_at_the_floor_is_not_blamed_on_training_when_the_targets_were_flat():
    assert messages([5.0, math.log(16)], targets_collapsed=True) == []


def test_loss_that_ends_above_its_start_is_named():
    (message,) = messages([3.0, 2.0, 3.5])
    assert "from 3.0000 (epoch 1) to 3.5000 (epoch 3)" in message


def test_one_epoch_cannot_have_risen():
    assert messages([3.0]) == []


def test_identical_embeddings_are_named_with_the_learning_rate_when_inputs_are_scaled():
    (message,) = messages([6.0, 5.0], embeddings=np.ones((4, 3)), input_magnitude=3.0)
    assert "nearly one embedding" in message
    assert "learning_rate (now 0.001)" in message


def test_loss_near_but_not_at_the_floor_is_not_called_a_collapse():
    assert messages([5.0, math.log(16) * 1.005]) == []
