"""Training you can trust: history, validation, early stopping, callbacks, checkpoints, saving."""

import json
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from cwcl_sk import CWCLAligner
from cwcl_sk.callbacks import Callback, Checkpoint, PrintLog, StopTraining
from cwcl_sk.training import batch_indices, epoch_generators

FAST = {"max_epochs": 6, "batch_size": 16, "device": "cpu", "random_state": 0}


def precomputed_aligner(**params):
    return CWCLAligner(teacher="precomputed", **{**FAST, **params})


class Recorder(Callback):
    """Counts the hooks it receives."""

    def __init__(self, tag="recorder"):
        self.tag = tag

    def on_train_begin(self, estimator, history):
        self.calls = ["begin"]

    def on_batch_end(self, estimator, batch_index, loss):
        self.calls.append("batch")

    def on_epoch_end(self, estimator, record):
        self.calls.append("epoch")

    def on_train_end(self, estimator, history):
        self.calls.append("end")


def test_batches_cover_every_sample_once_with_near_equal_sizes():
    batches = batch_indices(50, 16, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(50))
    assert {len(batch) for batch in batches} <= {12, 13}


def test_epoch_generators_depend_only_on_seed_and_epoch():
    first_rng, first_seed = epoch_generators(7, 3)
    second_rng, second_seed = epoch_generators(7, 3)
    assert first_seed == second_seed
    assert first_rng.integers(1_000_000) == second_rng.integers(1_000_000)
    assert epoch_generators(7, 4)[1] != first_seed


def test_history_records_loss_temperature_and_time(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner().fit(X, teacher_embeddings)
    record = aligner.history_[-1]
    assert set(record) == {
        "epoch",
        "train_loss",
        "learning_rate",
        "temperature",
        "seconds",
        "target_diagonal_mass",
        "target_effective_positives",
        "target_relative_entropy",
    }
    assert record["temperature"] == pytest.approx(0.07)
    assert aligner.stop_reason_ == "max_epochs"


def test_validation_fraction_adds_validation_metrics(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(validation_fraction=0.25).fit(X, teacher_embeddings)
    for record in aligner.history_:
        assert np.isfinite(record["valid_loss"])
        assert 0.0 <= record["valid_r1"] <= 1.0


def test_validation_split_is_reproducible_with_random_state(paired_features):
    X, teacher_embeddings = paired_features
    first = precomputed_aligner(validation_fraction=0.25).fit(X, teacher_embeddings)
    second = precomputed_aligner(validation_fraction=0.25).fit(X, teacher_embeddings)
    assert [r["valid_loss"] for r in first.history_] == [r["valid_loss"] for r in second.history_]


def test_validation_fraction_that_leaves_no_training_pairs_is_rejected(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match="validation_fraction"):
        precomputed_aligner(validation_fraction=0.99).fit(X[:3], teacher_embeddings[:3])


def test_explicit_validation_data_is_scored(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(max_epochs=40)
    aligner.fit(X[:45], teacher_embeddings[:45], validation_data=(X[45:], teacher_embeddings[45:]))
    assert aligner.history_[-1]["valid_r1"] >= 0.8
    assert aligner.history_[-1]["valid_loss"] < aligner.history_[0]["valid_loss"]


def test_validation_data_must_be_a_pair(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        precomputed_aligner().fit(X, teacher_embeddings, validation_data=X)


def test_early_stopping_stops_and_restores_the_best_epoch(paired_features):
    X, teacher_embeddings = paired_features
    # A high learning rate makes the validation loss worsen after a few epochs.
    aligner = precomputed_aligner(
        max_epochs=60, learning_rate=0.05, early_stopping=True, patience=3
    )
    aligner.fit(X[:40], teacher_embeddings[:40], validation_data=(X[40:], teacher_embeddings[40:]))
    losses = [record["valid_loss"] for record in aligner.history_]
    best_epoch = int(np.argmin(losses)) + 1
    assert aligner.stop_reason_ == "early_stopping"
    assert len(losses) == best_epoch + 3
    reference = precomputed_aligner(max_epochs=best_epoch, learning_rate=0.05)
    reference.fit(X[:40], teacher_embeddings[:40])
    np.testing.assert_allclose(aligner.transform(X), reference.transform(X), atol=1e-6)


def test_early_stopping_without_validation_is_rejected(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match="early_stopping=True needs validation"):
        precomputed_aligner(early_stopping=True).fit(X, teacher_embeddings)


def test_callbacks_receive_every_hook_in_order(paired_features):
    X, teacher_embeddings = paired_features
    recorder = Recorder()
    aligner = precomputed_aligner(max_epochs=2, callbacks=[recorder]).fit(X, teacher_embeddings)
    fitted_recorder = aligner.callbacks[0]
    batches = len(batch_indices(len(X), FAST["batch_size"], np.random.default_rng(0)))
    expected = ["begin", *(["batch"] * batches + ["epoch"]) * 2, "end"]
    assert fitted_recorder.calls == expected


def test_callback_can_stop_training(paired_features):
    X, teacher_embeddings = paired_features

    class StopAfterTwo(Callback):
        def on_epoch_end(self, estimator, record):
            if record["epoch"] == 2:
                raise StopTraining

    aligner = precomputed_aligner(callbacks=[StopAfterTwo()]).fit(X, teacher_embeddings)
    assert len(aligner.history_) == 2
    assert aligner.stop_reason_ == "callback"


def test_named_callback_parameters_are_nested_parameters():
    aligner = CWCLAligner(callbacks=[("log", PrintLog(every=1))])
    assert aligner.get_params()["callbacks__log__every"] == 1
    aligner.set_params(callbacks__log__every=5)
    assert aligner.callbacks[0][1].every == 5
    cloned = clone(aligner)
    assert cloned.get_params()["callbacks__log__every"] == 5
    assert cloned.callbacks[0][1] is not aligner.callbacks[0][1]


def test_named_callback_can_be_replaced_by_name():
    aligner = CWCLAligner(callbacks=[("log", PrintLog())])
    replacement = PrintLog(every=3)
    aligner.set_params(callbacks__log=replacement)
    assert aligner.callbacks[0][1] is replacement


def test_unknown_callback_name_is_rejected():
    with pytest.raises(ValueError, match="no callback named 'missing'"):
        CWCLAligner(callbacks=[("log", PrintLog())]).set_params(callbacks__missing__every=2)


def test_print_log_prints_a_line_per_epoch(paired_features, capsys):
    X, teacher_embeddings = paired_features
    precomputed_aligner(max_epochs=3, callbacks=[PrintLog()]).fit(X, teacher_embeddings)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("epoch=1")


def test_non_callback_in_callbacks_is_rejected(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(TypeError, match="callbacks must be Callback"):
        precomputed_aligner(callbacks=[print]).fit(X, teacher_embeddings)


def test_partial_fit_epochs_equal_one_fit(paired_features):
    X, teacher_embeddings = paired_features
    fitted = precomputed_aligner(max_epochs=4).fit(X, teacher_embeddings)
    stepwise = precomputed_aligner(max_epochs=4)
    for _ in range(4):
        stepwise.partial_fit(X, teacher_embeddings)
    np.testing.assert_allclose(stepwise.transform(X), fitted.transform(X), atol=1e-6)


def test_warm_start_continues_from_current_weights(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(max_epochs=3, warm_start=True)
    aligner.fit(X, teacher_embeddings).fit(X, teacher_embeddings)
    assert len(aligner.history_) == 6
    reference = precomputed_aligner(max_epochs=6).fit(X, teacher_embeddings)
    np.testing.assert_allclose(aligner.transform(X), reference.transform(X), atol=1e-6)


def test_checkpoints_are_written_every_n_epochs(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    precomputed_aligner(checkpoint_dir=tmp_path, checkpoint_every=2).fit(X, teacher_embeddings)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "epoch-0002",
        "epoch-0004",
        "epoch-0006",
    ]
    assert (tmp_path / "epoch-0004" / "optimizer.pt").exists()


def test_resuming_from_a_checkpoint_equals_the_uninterrupted_run(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    uninterrupted = precomputed_aligner(max_epochs=6, checkpoint_dir=tmp_path)
    uninterrupted.fit(X, teacher_embeddings)
    resumed = precomputed_aligner(max_epochs=6)
    resumed.fit(X, teacher_embeddings, resume_from=tmp_path / "epoch-0003")
    assert len(resumed.history_) == 6
    np.testing.assert_allclose(resumed.transform(X), uninterrupted.transform(X), atol=1e-6)
    assert [r["train_loss"] for r in resumed.history_] == pytest.approx(
        [r["train_loss"] for r in uninterrupted.history_], rel=1e-5
    )


def test_checkpoint_callback_can_be_passed_directly(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    callback = Checkpoint(tmp_path, every=3)
    precomputed_aligner(callbacks=[callback]).fit(X, teacher_embeddings)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["epoch-0003", "epoch-0006"]


def test_save_and_load_round_trip_with_text_teacher(colour_data, tmp_path):
    X, labels, names = colour_data
    texts = [names[label] for label in labels]
    aligner = CWCLAligner(**FAST, student__hidden_sizes=(32, 16)).fit(X, texts)
    aligner.save(tmp_path / "model")
    loaded = CWCLAligner.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.transform(X), aligner.transform(X))
    np.testing.assert_array_equal(loaded.predict(X), aligner.predict(X))
    assert loaded.get_params()["student__hidden_sizes"] == (32, 16)
    assert loaded.history_ == aligner.history_


def test_save_and_load_round_trip_with_precomputed_teacher(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner().fit(X, teacher_embeddings)
    aligner.save(tmp_path)
    loaded = CWCLAligner.load(tmp_path)
    np.testing.assert_array_equal(loaded.transform(X), aligner.transform(X))
    assert loaded.score(X, teacher_embeddings) == aligner.score(X, teacher_embeddings)


def test_saved_folder_holds_only_json_and_safetensors(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    precomputed_aligner().fit(X, teacher_embeddings).save(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "candidates.safetensors",
        "config.json",
        "fitted.json",
        "student.safetensors",
    ]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["parameters"]["teacher"]["value"] == "precomputed"


def test_loaded_aligner_can_keep_training(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    precomputed_aligner().fit(X, teacher_embeddings).save(tmp_path)
    loaded = CWCLAligner.load(tmp_path)
    loaded.partial_fit(X, teacher_embeddings)
    assert len(loaded.history_) == FAST["max_epochs"] + 1


def test_save_refuses_model_objects(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    student = torch.nn.Linear(X.shape[1], teacher_embeddings.shape[1])
    aligner = precomputed_aligner(student=student).fit(X, teacher_embeddings)
    with pytest.raises(TypeError, match="save\\(\\) needs the student given by name"):
        aligner.save(tmp_path)


def test_load_of_missing_folder_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        CWCLAligner.load(tmp_path)


def test_pickled_fitted_aligner_keeps_history_and_candidates(colour_data):
    X, labels, names = colour_data
    aligner = CWCLAligner(**FAST).fit(X, [names[label] for label in labels])
    restored = pickle.loads(pickle.dumps(aligner))
    assert restored.history_ == aligner.history_
    np.testing.assert_array_equal(restored.predict(X), aligner.predict(X))
