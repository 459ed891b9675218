"""The loop's pieces on their own: no estimator in the loop, callbacks, temperature, records."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import cwcl_sk
from cwcl_sk import CWCLAligner, persistence
from cwcl_sk._version import __version__
from cwcl_sk.callbacks import Callback, Checkpoint, EarlyStopping, StopTraining, TargetStatistics
from cwcl_sk.diagnostics import target_statistics
from cwcl_sk.kernels import target_matrix
from cwcl_sk.losses import cwcl_loss
from cwcl_sk.objective import BatchLoss
from cwcl_sk.training import (
    MAX_LOGIT_SCALE,
    LogitScale,
    TrainingState,
    ValidationSet,
    make_optimizer,
    run_epochs,
)

FAST = {"max_epochs": 3, "batch_size": 16, "device": "cpu", "random_state": 0}
ROOT = Path(__file__).resolve().parents[1]


def plain_run(model, X, teacher, **options):
    """``run_epochs`` on a bare module and a loss function: no estimator anywhere."""
    state = TrainingState(model, torch.optim.SGD(model.parameters(), lr=0.1), base_seed=3)
    reason = run_epochs(
        state,
        data=torch.from_numpy(X),
        collate=lambda data, rows: data[torch.from_numpy(rows)],
        teacher_embeddings=torch.from_numpy(teacher),
        batch_loss=lambda student, targets, indices: cwcl_loss(student, targets, 0.1),
        batch_size=16,
        device=torch.device("cpu"),
        **{"n_epochs": 3, **options},
    )
    return state, reason


def test_the_loop_trains_a_bare_module_without_an_estimator(paired_features):
    X, teacher = paired_features
    torch.manual_seed(0)
    state, reason = plain_run(torch.nn.Linear(6, 8), X, teacher)
    assert reason == state.stop_reason == "max_epochs"
    assert [record["epoch"] for record in state.history] == [1, 2, 3]
    assert state.history[-1]["train_loss"] < state.history[0]["train_loss"]


def test_stop_training_carries_its_reason(paired_features):
    X, teacher = paired_features

    class StopAtOnce(Callback):
        def on_epoch_end(self, estimator, record):
            raise StopTraining("enough")

    torch.manual_seed(0)
    state, reason = plain_run(torch.nn.Linear(6, 8), X, teacher, callbacks=[StopAtOnce()])
    assert reason == "enough"
    assert len(state.history) == 1


def test_batch_begin_hook_receives_every_steps_training_positions(paired_features):
    X, teacher = paired_features
    seen = []

    class Positions(Callback):
        def on_batch_begin(self, estimator, batch_index, indices):
            seen.append(np.asarray(indices))

    torch.manual_seed(0)
    plain_run(torch.nn.Linear(6, 8), X, teacher, n_epochs=1, callbacks=[Positions()])
    assert sorted(np.concatenate(seen).tolist()) == list(range(len(X)))


class _ScriptedState:
    """What EarlyStopping needs of a training state: snapshots, restore, a stop reason."""

    def __init__(self):
        self.weights, self.restored, self.stop_reason = 0, None, None

    def snapshot(self):
        return {"weights": self.weights}

    def restore(self, snapshot):
        self.restored = snapshot["weights"]


def test_early_stopping_stops_after_patience_and_restores_the_best_epoch():
    state = _ScriptedState()
    callback = EarlyStopping(state, patience=2)
    callback.on_train_begin(None, [])
    with pytest.raises(StopTraining) as stopped:
        for epoch, loss in enumerate([3.0, 1.0, 2.0, 1.5, 0.5], start=1):
            state.weights = epoch
            callback.on_epoch_end(None, {"epoch": epoch, "valid_loss": loss})
    assert stopped.value.reason == "early_stopping"
    assert epoch == 4
    state.stop_reason = "early_stopping"
    callback.on_train_end(None, [])
    assert state.restored == 2


def test_early_stopping_restores_nothing_when_training_failed():
    state = _ScriptedState()
    callback = EarlyStopping(state, patience=2)
    callback.on_train_begin(None, [])
    callback.on_epoch_end(None, {"epoch": 1, "valid_loss": 1.0})
    callback.on_train_end(None, [])  # stop_reason None: the loop raised
    assert state.restored is None


def test_target_statistics_describe_the_first_batch_of_each_epoch():
    rng = np.random.default_rng(0)
    teacher = torch.from_numpy(rng.normal(size=(20, 4)).astype(np.float32))
    callback = TargetStatistics("exp", teacher)
    callback.on_train_begin(None, [])
    first, second = np.array([3, 1, 7, 9]), np.array([0, 2, 4, 6])
    callback.on_batch_begin(None, 0, first)
    callback.on_batch_begin(None, 1, second)
    record = {"epoch": 1}
    callback.on_epoch_end(None, record)
    expected = target_statistics(target_matrix(teacher[torch.from_numpy(first)], "exp"))
    assert record["target_effective_positives"] == expected["effective_positives"]
    assert record["target_diagonal_mass"] == expected["diagonal_mass"]


def test_checkpoint_calls_the_estimators_own_save(tmp_path):
    written = []

    class AnyEstimator:
        def save_checkpoint(self, folder):
            Path(folder).mkdir()
            (Path(folder) / "weights").write_text("w")
            written.append(Path(folder).name)

    checkpoint = Checkpoint(tmp_path, every=2)
    for epoch in (1, 2, 3, 4):
        checkpoint.on_epoch_end(AnyEstimator(), {"epoch": epoch})
    assert written == ["epoch-0002.partial", "epoch-0004.partial"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["epoch-0002", "epoch-0004"]


def test_logit_scale_holds_the_temperature_and_clamps():
    scale = LogitScale(0.05)
    assert scale.temperature == pytest.approx(0.05)
    assert float(scale().detach()) == pytest.approx(0.05)
    assert [name for name, _ in scale.named_parameters()] == ["log_scale"]
    with torch.no_grad():
        scale.log_scale.fill_(10.0)
    scale.clamp_()
    assert float(scale.log_scale.detach()) == pytest.approx(MAX_LOGIT_SCALE)
    scale.set_temperature(0.2)
    assert scale.temperature == pytest.approx(0.2)


def test_learned_temperature_trains_through_the_batch_loss():
    rng = np.random.default_rng(0)
    student = torch.from_numpy(rng.normal(size=(8, 4)).astype(np.float32))
    teacher = torch.from_numpy(rng.normal(size=(8, 4)).astype(np.float32))
    scale = LogitScale(0.1)
    BatchLoss("cwcl", "exp", "both", scale)(student, teacher, np.arange(8)).backward()
    assert scale.log_scale.grad is not None and float(scale.log_scale.grad) != 0.0


def test_make_optimizer_keeps_weight_decay_off_the_temperature():
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, LogitScale(0.1), learning_rate=0.01, weight_decay=0.1)
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.1, 0.0]
    assert len(make_optimizer(model, None, 0.01, 0.1).param_groups) == 1


def test_snapshot_and_restore_put_back_model_optimizer_and_scale():
    model = torch.nn.Linear(2, 2)
    scale = LogitScale(0.1)
    state = TrainingState(model, make_optimizer(model, scale, 0.1, 0.0), logit_scale=scale)
    snapshot = state.snapshot()
    with torch.no_grad():
        model.weight.add_(1.0)
        scale.log_scale.add_(1.0)
    state.restore(snapshot)
    assert torch.equal(model.weight, snapshot["model"]["weight"])
    assert scale.temperature == pytest.approx(0.1)
    with torch.no_grad():
        model.weight[0, 0] = math.nan
    assert not state.is_finite()


def test_validation_set_is_exported_unchanged():
    names = {"data", "teacher_embeddings", "unique_embeddings", "inverse"}
    assert set(ValidationSet.__dataclass_fields__) == names


def test_version_lives_in_its_own_module_and_pyproject_reads_it():
    assert cwcl_sk.__version__ == __version__
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "cwcl_sk._version.__version__"}


def test_saved_config_records_the_library_version(paired_features, tmp_path):
    X, teacher = paired_features
    CWCLAligner(teacher="precomputed", **FAST).fit(X, teacher).save(tmp_path)
    assert persistence.read_model(tmp_path).estimator == "CWCLAligner"
    assert '"library_version": "' + __version__ in (tmp_path / "config.json").read_text()


def test_old_persistence_functions_still_work_with_a_deprecation_warning(paired_features, tmp_path):
    X, teacher = paired_features
    aligner = CWCLAligner(teacher="precomputed", **FAST).fit(X, teacher)
    with pytest.warns(DeprecationWarning, match="aligner.save"):
        persistence.save_aligner(aligner, tmp_path / "model")
    with pytest.warns(DeprecationWarning, match="CWCLAligner.load"):
        loaded = persistence.load_aligner(tmp_path / "model")
    np.testing.assert_array_equal(loaded.transform(X), aligner.transform(X))
    with pytest.warns(DeprecationWarning, match="save_checkpoint"):
        persistence.save_checkpoint(aligner, tmp_path / "checkpoint")
    with pytest.warns(DeprecationWarning, match="load_checkpoint"):
        persistence.restore_checkpoint(loaded, tmp_path / "checkpoint")
    assert loaded.history_ == aligner.history_
