"""CWCLAligner: fitting, embedding, prediction, scoring and the scikit-learn contract."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from _helpers import PoisonableLinear
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from cwcl_sk import CWCLAligner, ExpKernel

FAST = {"max_epochs": 5, "batch_size": 16, "device": "cpu", "random_state": 0}


def precomputed_aligner(**params):
    return CWCLAligner(teacher="precomputed", **{**FAST, **params})


def test_transform_returns_unit_norm_float32_in_teacher_width(paired_features):
    X, teacher_embeddings = paired_features
    embeddings = precomputed_aligner().fit(X, teacher_embeddings).transform(X)
    assert embeddings.shape == (len(X), teacher_embeddings.shape[1])
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_training_aligns_paired_features(paired_features):
    X, teacher_embeddings = paired_features
    untrained = precomputed_aligner(max_epochs=1, learning_rate=1e-6).fit(X, teacher_embeddings)
    trained = precomputed_aligner(max_epochs=60).fit(X, teacher_embeddings)
    assert trained.score(X, teacher_embeddings) >= 0.9
    assert trained.score(X, teacher_embeddings) > untrained.score(X, teacher_embeddings) + 0.3


def test_history_has_one_record_per_epoch_and_loss_decreases(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(max_epochs=20).fit(X, teacher_embeddings)
    assert [record["epoch"] for record in aligner.history_] == list(range(1, 21))
    assert aligner.history_[-1]["train_loss"] < aligner.history_[0]["train_loss"]


def test_same_random_state_gives_identical_embeddings(paired_features):
    X, teacher_embeddings = paired_features
    first = precomputed_aligner(random_state=3).fit(X, teacher_embeddings).transform(X)
    second = precomputed_aligner(random_state=3).fit(X, teacher_embeddings).transform(X)
    np.testing.assert_array_equal(first, second)


def test_different_random_state_gives_different_embeddings(paired_features):
    X, teacher_embeddings = paired_features
    first = precomputed_aligner(random_state=1).fit(X, teacher_embeddings).transform(X)
    second = precomputed_aligner(random_state=2).fit(X, teacher_embeddings).transform(X)
    assert not np.allclose(first, second)


def test_fit_does_not_change_global_torch_random_state(paired_features):
    X, teacher_embeddings = paired_features
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    precomputed_aligner().fit(X, teacher_embeddings)
    torch.testing.assert_close(torch.rand(3), expected)


def test_predict_returns_nearest_candidate_seen_in_fit():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=60)
    texts = np.array(["alpha", "beta", "gamma"])[labels]
    X = np.eye(3)[labels] * 2 + 0.1 * rng.normal(size=(60, 3))
    aligner = CWCLAligner(**{**FAST, "max_epochs": 30}).fit(X, list(texts))
    assert sorted(aligner.candidates_.tolist()) == ["alpha", "beta", "gamma"]
    assert np.mean(aligner.predict(X) == texts) >= 0.95


def test_predict_accepts_user_candidates():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=40)
    X = np.eye(2)[labels] * 2 + 0.1 * rng.normal(size=(40, 2))
    aligner = CWCLAligner(**{**FAST, "max_epochs": 30}).fit(
        X, [["a red apple", "a blue whale"][label] for label in labels]
    )
    predicted = aligner.predict(X, candidates=["red fruit", "large sea animal"])
    expected = np.array(["red fruit", "large sea animal"])[labels]
    assert np.mean(predicted == expected) >= 0.9


def test_score_counts_repeated_texts_as_one_candidate(colour_data):
    X, labels, names = colour_data
    texts = [names[label] for label in labels]
    aligner = CWCLAligner(**{**FAST, "max_epochs": 30}).fit(X, texts)
    # Three distinct texts: a perfect student retrieves its own text among three candidates.
    assert aligner.score(X, texts) == pytest.approx(np.mean(aligner.predict(X) == texts))


def test_embed_teacher_matches_candidate_embeddings(colour_data):
    X, labels, names = colour_data
    aligner = CWCLAligner(**FAST).fit(X, [names[label] for label in labels])
    embeddings = aligner.embed_teacher(list(aligner.candidates_))
    np.testing.assert_allclose(embeddings, aligner.candidate_embeddings_, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_partial_fit_continues_training(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner()
    aligner.partial_fit(X, teacher_embeddings)
    first_weights = [p.detach().clone() for p in aligner.student_.parameters()]
    aligner.partial_fit(X, teacher_embeddings)
    assert len(aligner.history_) == 2
    changed = any(
        not torch.equal(a, b)
        for a, b in zip(first_weights, aligner.student_.parameters(), strict=True)
    )
    assert changed


def test_partial_fit_adds_new_candidates(colour_data):
    X, _, _ = colour_data
    aligner = CWCLAligner(**FAST).partial_fit(X[:30], ["red"] * 30)
    aligner.partial_fit(X[30:60], ["green"] * 30)
    assert aligner.candidates_.tolist() == ["red", "green"]
    assert aligner.candidate_embeddings_.shape[0] == 2


def test_fit_restarts_from_scratch(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner()
    aligner.fit(X, teacher_embeddings)
    first = aligner.transform(X)
    aligner.fit(X, teacher_embeddings)
    assert len(aligner.history_) == FAST["max_epochs"]
    np.testing.assert_array_equal(aligner.transform(X), first)


@pytest.mark.parametrize(
    "options",
    [
        {"loss": "clip"},
        {"kernel": "identity"},
        {"kernel": ExpKernel(kappa=0.05)},
        {"kernel": lambda similarity: (similarity > 0.9).float()},
        {"direction": "student_to_teacher"},
        {"direction": "teacher_to_student"},
    ],
)
def test_every_loss_option_learns_retrieval(paired_features, options):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(max_epochs=40, **options).fit(X, teacher_embeddings)
    assert aligner.score(X, teacher_embeddings) >= 0.5


def test_linear_kernel_lowers_its_loss_but_retrieves_poorly(paired_features):
    # The paper's kernel gives every pair of random 8-d teacher vectors a weight of 0..1, so
    # the targets are broad: the loss falls while exact retrieval stays far below CL's.
    X, teacher_embeddings = paired_features
    linear = precomputed_aligner(max_epochs=40, kernel="linear").fit(X, teacher_embeddings)
    clip = precomputed_aligner(max_epochs=40, loss="clip").fit(X, teacher_embeddings)
    assert linear.history_[-1]["train_loss"] < linear.history_[0]["train_loss"]
    assert linear.score(X, teacher_embeddings) < clip.score(X, teacher_embeddings)


def test_kernel_matrix_is_sliced_per_batch(paired_features):
    X, teacher_embeddings = paired_features
    n_samples = len(X)
    aligner = precomputed_aligner(kernel=np.eye(n_samples)).fit(X, teacher_embeddings)
    reference = precomputed_aligner(kernel="identity").fit(X, teacher_embeddings)
    np.testing.assert_allclose(aligner.transform(X), reference.transform(X), atol=1e-6)


def test_kernel_matrix_of_wrong_shape_is_rejected(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match="kernel"):
        precomputed_aligner(kernel=np.eye(3)).fit(X, teacher_embeddings)


def test_module_student_gets_projection_head(paired_features):
    X, teacher_embeddings = paired_features
    student = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 32), torch.nn.ReLU())
    aligner = precomputed_aligner(student=student).fit(X, teacher_embeddings)
    assert isinstance(aligner.student_.projection, torch.nn.Linear)
    assert aligner.transform(X).shape == teacher_embeddings.shape


def test_module_student_is_not_modified_by_fit(paired_features):
    X, teacher_embeddings = paired_features
    student = torch.nn.Linear(X.shape[1], teacher_embeddings.shape[1])
    before = {name: value.clone() for name, value in student.state_dict().items()}
    precomputed_aligner(student=student).fit(X, teacher_embeddings)
    for name, value in student.state_dict().items():
        torch.testing.assert_close(value, before[name])


def test_module_teacher_is_not_modified_by_fit():
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh())
    teacher.train()
    before = {name: value.clone() for name, value in teacher.state_dict().items()}
    X = np.random.default_rng(0).normal(size=(30, 4))
    CWCLAligner(teacher=teacher, **FAST).fit(X, np.arange(30.0))
    assert teacher.training
    assert all(parameter.requires_grad for parameter in teacher.parameters())
    for name, value in teacher.state_dict().items():
        torch.testing.assert_close(value, before[name])


def test_not_fitted_error_before_fit(paired_features):
    X, _ = paired_features
    aligner = precomputed_aligner()
    for method in (aligner.transform, aligner.predict):
        with pytest.raises(NotFittedError):
            method(X)
    with pytest.raises(NotFittedError):
        aligner.embed_teacher(["text"])
    with pytest.raises(NotFittedError):
        aligner.score(X, ["text"] * len(X))


def test_pickle_round_trip_gives_identical_transform(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner().fit(X, teacher_embeddings)
    restored = pickle.loads(pickle.dumps(aligner))
    np.testing.assert_array_equal(restored.transform(X), aligner.transform(X))


def test_pickle_round_trip_with_text_teacher(colour_data):
    X, labels, names = colour_data
    texts = [names[label] for label in labels]
    aligner = CWCLAligner(**FAST).fit(X, texts)
    payload = pickle.dumps(aligner)
    restored = pickle.loads(payload)
    np.testing.assert_array_equal(restored.transform(X), aligner.transform(X))
    np.testing.assert_allclose(restored.embed_teacher(["red"]), aligner.embed_teacher(["red"]))
    # The bundled teacher is reloaded by name: its 90 MB of weights are not in the pickle.
    assert len(payload) < 5_000_000


def test_clone_keeps_nested_student_options():
    aligner = CWCLAligner(student__hidden_sizes=(32, 16), teacher__batch_size=8)
    cloned = clone(aligner)
    assert cloned.get_params()["student__hidden_sizes"] == (32, 16)
    assert cloned.get_params()["teacher__batch_size"] == 8


def test_set_params_routes_nested_options(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner().set_params(student__hidden_sizes=(12,), temperature=0.1)
    assert aligner.get_params()["student__hidden_sizes"] == (12,)
    aligner.fit(X, teacher_embeddings)
    first_layer = aligner.student_.encoder.layers[0]
    assert first_layer.out_features == 12


def test_set_params_reaches_kernel_object_parameters():
    aligner = CWCLAligner(kernel=ExpKernel(kappa=0.1))
    aligner.set_params(kernel__kappa=0.02)
    assert aligner.kernel.kappa == 0.02
    assert aligner.get_params(deep=True)["kernel__kappa"] == 0.02


def test_set_params_rejects_unknown_parameter():
    with pytest.raises(ValueError, match="tempreture"):
        CWCLAligner().set_params(tempreture=0.1)


def test_unknown_student_option_is_rejected_at_fit(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(student__hidden_layers=3)
    with pytest.raises(ValueError, match="student__hidden_layers"):
        aligner.fit(X, teacher_embeddings)


def test_unknown_keyword_is_rejected_at_fit(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match="tempreture"):
        precomputed_aligner(tempreture=0.1).fit(X, teacher_embeddings)


def test_init_stores_parameters_unchanged():
    kernel = ExpKernel(kappa=0.3)
    aligner = CWCLAligner(teacher="bert", kernel=kernel, temperature=5, batch_size=3)
    assert aligner.teacher == "bert"
    assert aligner.kernel is kernel
    assert aligner.temperature == 5
    assert not [name for name in vars(aligner) if name.endswith("_")]


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("temperature", 0.0),
        ("temperature", -1.0),
        ("temperature", float("nan")),
        ("batch_size", 0),
        ("max_epochs", 0),
        ("learning_rate", 0.0),
        ("weight_decay", -1.0),
        ("loss", "triplet"),
        ("direction", "sideways"),
        ("kernel", "gaussian"),
        ("device", "tpu"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_parameter(paired_features, parameter, value):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(**{parameter: value})
    with pytest.raises(ValueError, match=parameter if parameter != "device" else "device"):
        aligner.fit(X, teacher_embeddings)


def test_non_integer_batch_size_raises_type_error(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(TypeError, match="batch_size"):
        precomputed_aligner(batch_size=8.5).fit(X, teacher_embeddings)


def test_cuda_without_gpu_is_a_clear_error(paired_features):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match=r"device='cuda'.*no CUDA"):
        precomputed_aligner(device="cuda").fit(X, teacher_embeddings)


def test_different_lengths_of_x_and_y_are_rejected(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match="X has 60 samples and y has 59"):
        precomputed_aligner().fit(X, teacher_embeddings[:-1])


def test_nan_in_x_is_rejected(paired_features):
    X, teacher_embeddings = paired_features
    X = X.copy()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN.*\(3, 2\)"):
        precomputed_aligner().fit(X, teacher_embeddings)


def test_non_string_text_is_rejected(colour_data):
    X, labels, _ = colour_data
    with pytest.raises(TypeError, match=r"y\[0\]"):
        CWCLAligner(**FAST).fit(X, list(labels))


def test_precomputed_y_of_wrong_shape_is_rejected(paired_features):
    X, _ = paired_features
    with pytest.raises(ValueError, match="y must be a 2-D array of embeddings"):
        precomputed_aligner().fit(X, np.ones(len(X)))


def test_transform_with_wrong_number_of_features_is_rejected(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner().fit(X, teacher_embeddings)
    with pytest.raises(ValueError, match="X has 5 features, but CWCLAligner is expecting 6"):
        aligner.transform(X[:, :5])


def test_y_none_is_rejected(paired_features):
    X, _ = paired_features
    with pytest.raises(ValueError, match="requires y"):
        precomputed_aligner().fit(X, None)


def test_verbose_zero_prints_nothing(paired_features, capsys):
    X, teacher_embeddings = paired_features
    precomputed_aligner().fit(X, teacher_embeddings)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_verbose_one_shows_progress(paired_features, capsys):
    X, teacher_embeddings = paired_features
    precomputed_aligner(verbose=1).fit(X, teacher_embeddings)
    assert "epochs" in capsys.readouterr().err


def test_single_pair_trains_without_error():
    aligner = CWCLAligner(**FAST).fit(np.ones((1, 3)), ["only one"])
    assert aligner.transform(np.ones((1, 3))).shape == (1, 384)


def test_keyboard_interrupt_keeps_completed_epochs(paired_features):
    X, teacher_embeddings = paired_features

    class InterruptInThirdEpoch(torch.nn.Linear):
        """A student whose forward pass is interrupted (Ctrl-C) in its third training epoch."""

        training_batches = 0

        def forward(self, features):
            if self.training:
                self.training_batches += 1
                if self.training_batches > 2 * batches_per_epoch + 1:
                    raise KeyboardInterrupt
            return super().forward(features)

    batches_per_epoch = -(-len(X) // FAST["batch_size"])
    student = InterruptInThirdEpoch(X.shape[1], teacher_embeddings.shape[1])
    aligner = precomputed_aligner(student=student)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(KeyboardInterrupt):
        warnings.simplefilter("always")
        aligner.fit(X, teacher_embeddings)
    assert any("interrupted" in str(warning.message) for warning in caught)
    assert len(aligner.history_) == 2
    assert aligner.stop_reason_ == "interrupted"
    assert aligner.transform(X).shape == teacher_embeddings.shape


def test_non_finite_loss_raises_and_keeps_last_good_weights(paired_features):
    X, teacher_embeddings = paired_features
    student = PoisonableLinear(X.shape[1], teacher_embeddings.shape[1])
    aligner = precomputed_aligner(student=student, max_epochs=2).fit(X, teacher_embeddings)
    before = aligner.transform(X)
    aligner.student_.encoder.poisoned = True
    with pytest.raises(FloatingPointError, match=r"epoch 3.*restored"):
        aligner.partial_fit(X, teacher_embeddings)
    aligner.student_.encoder.poisoned = False
    np.testing.assert_array_equal(aligner.transform(X), before)
    assert len(aligner.history_) == 2
