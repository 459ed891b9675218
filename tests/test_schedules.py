"""Learning-rate schedules: their shapes, and how fit, resume and partial_fit follow them."""

import numpy as np
import pytest

from cwcl_sk import CWCLAligner
from cwcl_sk.callbacks import Callback
from cwcl_sk.schedules import LR_SCHEDULES, LearningRateSchedule

FAST = {"max_epochs": 4, "batch_size": 16, "device": "cpu", "random_state": 0}


def rates(schedule: LearningRateSchedule, steps_per_epoch: int) -> list[float]:
    return [
        schedule(epoch, step, steps_per_epoch)
        for epoch in range(schedule.first_epoch, schedule.first_epoch + schedule.n_epochs)
        for step in range(steps_per_epoch)
    ]


class RateRecorder(Callback):
    """The optimiser's rate at every step."""

    def __init__(self):
        self.rates = []

    def on_batch_end(self, estimator, batch_index, loss):
        self.rates.append(estimator.optimizer_.param_groups[0]["lr"])


def test_constant_schedule_keeps_the_rate():
    schedule = LearningRateSchedule("constant", 0.01, 0.0, first_epoch=1, n_epochs=3)
    assert rates(schedule, 5) == [0.01] * 15


@pytest.mark.parametrize("shape", ["cosine", "linear"])
def test_decaying_schedules_start_at_the_peak_and_fall_towards_zero(shape):
    schedule = LearningRateSchedule(shape, 0.01, 0.0, first_epoch=1, n_epochs=4)
    values = rates(schedule, 25)
    assert values[0] == pytest.approx(0.01)
    assert np.all(np.diff(values) < 0)
    assert values[-1] < 0.0005
    # Half-way through, both shapes are at half the peak.
    assert values[50] == pytest.approx(0.005)


@pytest.mark.parametrize("shape", LR_SCHEDULES)
def test_warmup_climbs_linearly_to_the_peak(shape):
    schedule = LearningRateSchedule(shape, 0.01, 0.1, first_epoch=1, n_epochs=10)
    values = rates(schedule, 10)  # 100 steps, 10 of warm-up
    np.testing.assert_allclose(values[:10], 0.001 * np.arange(1, 11))
    assert max(values) == pytest.approx(0.01)


def test_a_schedule_starting_later_is_the_same_schedule_shifted():
    first = LearningRateSchedule("cosine", 0.01, 0.2, first_epoch=1, n_epochs=5)
    later = LearningRateSchedule("cosine", 0.01, 0.2, first_epoch=7, n_epochs=5)
    assert rates(first, 3) == rates(later, 3)


def recording_cosine_aligner(warmup_fraction: float) -> tuple[CWCLAligner, RateRecorder]:
    """An unfitted cosine-scheduled aligner (peak 0.01) and the recorder of its rates."""
    recorder = RateRecorder()
    aligner = CWCLAligner(
        teacher="precomputed",
        lr_schedule="cosine",
        warmup_fraction=warmup_fraction,
        learning_rate=0.01,
        callbacks=[recorder],
        **FAST,
    )
    return aligner, recorder


def test_fit_follows_the_schedule_step_by_step(paired_features):
    X, teacher_embeddings = paired_features
    aligner, recorder = recording_cosine_aligner(warmup_fraction=0.25)
    aligner.fit(X, teacher_embeddings)
    expected = rates(LearningRateSchedule("cosine", 0.01, 0.25, first_epoch=1, n_epochs=4), 4)
    assert recorder.rates == pytest.approx(expected)  # 60 pairs in batches of 16: 4 steps
    assert [record["learning_rate"] for record in aligner.history_] == pytest.approx(expected[3::4])


def test_resumed_fit_continues_the_schedule(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    params = {"teacher": "precomputed", "lr_schedule": "cosine", "warmup_fraction": 0.2, **FAST}
    uninterrupted = CWCLAligner(checkpoint_dir=tmp_path, **params).fit(X, teacher_embeddings)
    resumed = CWCLAligner(**params).fit(X, teacher_embeddings, resume_from=tmp_path / "epoch-0002")
    assert [record["learning_rate"] for record in resumed.history_] == pytest.approx(
        [record["learning_rate"] for record in uninterrupted.history_]
    )
    np.testing.assert_allclose(resumed.transform(X), uninterrupted.transform(X), atol=1e-6)


def test_warm_start_runs_a_fresh_schedule(paired_features):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(
        teacher="precomputed", lr_schedule="linear", warm_start=True, learning_rate=0.01, **FAST
    )
    aligner.fit(X, teacher_embeddings)
    recorder = RateRecorder()
    aligner.set_params(callbacks=[recorder]).fit(X, teacher_embeddings)
    assert recorder.rates[0] == pytest.approx(0.01)
    assert recorder.rates[-1] < 0.001


def test_partial_fit_trains_at_the_constant_rate(paired_features):
    X, teacher_embeddings = paired_features
    aligner, recorder = recording_cosine_aligner(warmup_fraction=0.5)
    aligner.partial_fit(X, teacher_embeddings).partial_fit(X, teacher_embeddings)
    assert recorder.rates == pytest.approx([0.01] * 8)


def test_a_changed_learning_rate_reaches_the_optimiser_on_warm_start(paired_features):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(teacher="precomputed", warm_start=True, learning_rate=0.01, **FAST)
    aligner.fit(X, teacher_embeddings)
    aligner.set_params(learning_rate=0.002).fit(X, teacher_embeddings)
    assert aligner.history_[-1]["learning_rate"] == pytest.approx(0.002)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"lr_schedule": "step"}, ValueError, "'lr_schedule'.*'constant', 'cosine', 'linear'"),
        ({"lr_schedule": None}, ValueError, "'lr_schedule'"),
        ({"warmup_fraction": 1.0}, ValueError, "'warmup_fraction'.*<= 0.99"),
        ({"warmup_fraction": -0.1}, ValueError, "'warmup_fraction'.*>= 0.0"),
        ({"warmup_fraction": "10%"}, TypeError, "'warmup_fraction'.*real number"),
    ],
)
def test_bad_schedule_parameters_are_named(paired_features, params, error, match):
    X, teacher_embeddings = paired_features
    with pytest.raises(error, match=match):
        CWCLAligner(teacher="precomputed", **{**FAST, **params}).fit(X, teacher_embeddings)
