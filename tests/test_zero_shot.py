"""ZeroShotClassifier: label texts, templates, probabilities and the aligner it uses."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator

from cwcl_sk import CWCLAligner, ZeroShotClassifier

FAST = {"max_epochs": 30, "batch_size": 32, "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def fitted_colour_aligner(colour_data):
    X, labels, names = colour_data
    return CWCLAligner(**FAST).fit(X, [names[label] for label in labels])


def test_fitted_aligner_is_used_as_is(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(fitted_colour_aligner, labels=names).fit(X, labels)
    assert classifier.aligner_ is fitted_colour_aligner
    assert classifier.score(X, labels) >= 0.95


def test_fit_reads_only_the_classes_from_y_when_aligner_is_fitted(
    colour_data, fitted_colour_aligner
):
    X, labels, names = colour_data
    # Labels shuffled against X: a zero-shot classifier must not learn from them.
    shuffled = np.random.default_rng(0).permutation(labels)
    classifier = ZeroShotClassifier(fitted_colour_aligner, labels=names).fit(X, shuffled)
    assert classifier.score(X, labels) >= 0.95


def test_fitted_aligner_rejects_inputs_that_do_not_pair_with_y(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    with pytest.raises(ValueError, match=rf"X has {len(X) - 1} samples and y has {len(X)}"):
        ZeroShotClassifier(fitted_colour_aligner, labels=names).fit(X[:-1], labels)


def test_fitted_aligner_learns_the_classes_without_inputs(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(fitted_colour_aligner, labels=names).fit(None, labels)
    assert classifier.score(X, labels) >= 0.95


def test_classes_can_be_strings(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    text_labels = np.array([names[label] for label in labels])
    classifier = ZeroShotClassifier(fitted_colour_aligner).fit(X, text_labels)
    assert classifier.classes_.tolist() == ["blue", "green", "red"]
    assert np.mean(classifier.predict(X) == text_labels) >= 0.95


def test_labels_callable_gives_class_texts(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(fitted_colour_aligner, labels=names.get).fit(X, labels)
    assert classifier.class_texts_ == ["red", "green", "blue"]


def test_labels_missing_a_class_is_rejected(colour_data, fitted_colour_aligner):
    X, labels, _ = colour_data
    with pytest.raises(ValueError, match=r"labels has no text for class\(es\) \[2\]"):
        ZeroShotClassifier(fitted_colour_aligner, labels={0: "red", 1: "green"}).fit(X, labels)


def test_template_without_placeholder_is_rejected(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    with pytest.raises(ValueError, match="templates"):
        ZeroShotClassifier(fitted_colour_aligner, labels=names, templates="a colour").fit(X, labels)


def test_templates_are_ensembled(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    templates = ["{}", "the colour {}"]
    classifier = ZeroShotClassifier(fitted_colour_aligner, labels=names, templates=templates)
    classifier.fit(X, labels)
    per_template = fitted_colour_aligner.embed_teacher(
        [template.format(names[label]) for label in (0, 1, 2) for template in templates]
    ).reshape(3, 2, -1)
    mean = per_template.mean(axis=1)
    expected = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    np.testing.assert_allclose(classifier.class_embeddings_, expected, atol=1e-6)


def test_predict_proba_rows_sum_to_one_and_agree_with_predict(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(fitted_colour_aligner, labels=names).fit(X, labels)
    probabilities = classifier.predict_proba(X)
    assert probabilities.shape == (len(X), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    predicted = classifier.classes_[probabilities.argmax(axis=1)]
    np.testing.assert_array_equal(predicted, classifier.predict(X))


def test_lower_temperature_gives_sharper_probabilities(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    sharp = ZeroShotClassifier(fitted_colour_aligner, labels=names, temperature=0.01)
    soft = ZeroShotClassifier(fitted_colour_aligner, labels=names, temperature=1.0)
    sharp_max = sharp.fit(X, labels).predict_proba(X).max(axis=1).mean()
    soft_max = soft.fit(X, labels).predict_proba(X).max(axis=1).mean()
    assert sharp_max > soft_max


def test_decision_function_is_cosine_similarity(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(fitted_colour_aligner, labels=names).fit(X, labels)
    scores = classifier.decision_function(X)
    assert scores.shape == (len(X), 3)
    assert np.all(scores <= 1 + 1e-5)
    assert np.all(scores >= -1 - 1e-5)


def test_binary_decision_function_is_one_dimensional(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    mask = labels < 2
    classifier = ZeroShotClassifier(fitted_colour_aligner, labels=names).fit(X[mask], labels[mask])
    scores = classifier.decision_function(X[mask])
    assert scores.shape == (mask.sum(),)
    np.testing.assert_array_equal(
        classifier.classes_[(scores > 0).astype(int)], classifier.predict(X[mask])
    )


def test_unfitted_aligner_is_cloned_and_trained_on_prompts(colour_data):
    X, labels, names = colour_data
    aligner = CWCLAligner(**FAST)
    classifier = ZeroShotClassifier(aligner, labels=names, templates="the colour {}")
    classifier.fit(X, labels)
    assert classifier.aligner_ is not aligner
    assert not hasattr(aligner, "student_")
    assert sorted(classifier.aligner_.candidates_.tolist()) == [
        "the colour blue",
        "the colour green",
        "the colour red",
    ]
    assert classifier.score(X, labels) >= 0.95


def test_default_aligner_is_used_when_none_is_given(colour_data):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(labels=names).fit(X, labels)
    assert isinstance(classifier.aligner_, CWCLAligner)


def test_frozen_aligner_is_not_retrained(colour_data, fitted_colour_aligner):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(FrozenEstimator(fitted_colour_aligner), labels=names)
    classifier.fit(X, labels)
    np.testing.assert_array_equal(
        classifier.aligner_.transform(X), fitted_colour_aligner.transform(X)
    )


def test_predict_before_fit_raises_not_fitted(colour_data):
    X, _, _ = colour_data
    with pytest.raises(NotFittedError):
        ZeroShotClassifier(CWCLAligner()).predict(X)


def test_y_none_is_rejected(colour_data, fitted_colour_aligner):
    X, _, _ = colour_data
    with pytest.raises(ValueError, match="requires y"):
        ZeroShotClassifier(fitted_colour_aligner).fit(X, None)


def test_continuous_y_is_rejected(colour_data, fitted_colour_aligner):
    X, _, _ = colour_data
    with pytest.raises(ValueError, match="Unknown label type"):
        ZeroShotClassifier(fitted_colour_aligner).fit(X, np.linspace(0, 1, len(X)))
