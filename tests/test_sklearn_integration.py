"""The estimators inside scikit-learn's tools: grid search, cross-validation, pipelines."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cwcl_sk import CWCLAligner, ExpKernel, ZeroShotClassifier

FAST = {"max_epochs": 15, "batch_size": 32, "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def colour_texts(colour_data):
    X, labels, names = colour_data
    return X, [names[label] for label in labels]


def test_grid_search_over_temperature_uses_default_scorer(colour_texts):
    X, texts = colour_texts
    search = GridSearchCV(CWCLAligner(**FAST), {"temperature": [0.05, 0.5]}, cv=3)
    search.fit(X, texts)
    assert search.best_params_["temperature"] in (0.05, 0.5)
    assert 0.0 <= search.best_score_ <= 1.0
    assert search.best_estimator_.transform(X).shape == (len(X), 384)


def test_grid_search_over_kernels_and_nested_options(colour_texts):
    X, texts = colour_texts
    grid = {
        "kernel": ["identity", ExpKernel(kappa=0.05)],
        "student__hidden_sizes": [(16,), (64,)],
    }
    search = GridSearchCV(CWCLAligner(**FAST), grid, cv=2).fit(X, texts)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.get_params()["student__hidden_sizes"] in ((16,), (64,))


def test_grid_search_over_classifier_and_its_aligner(colour_data):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(CWCLAligner(**FAST), labels=names)
    grid = {"aligner__temperature": [0.05, 0.2], "templates": ["{}", ["{}", "the colour {}"]]}
    search = GridSearchCV(classifier, grid, cv=3).fit(X, labels)
    assert search.best_score_ >= 0.9
    assert search.predict(X).shape == labels.shape


def test_cross_val_score_of_classifier(colour_data):
    X, labels, names = colour_data
    scores = cross_val_score(ZeroShotClassifier(CWCLAligner(**FAST), labels=names), X, labels, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() >= 0.9


def test_cross_val_score_of_aligner(colour_texts):
    X, texts = colour_texts
    scores = cross_val_score(CWCLAligner(**FAST), X, texts, cv=3)
    assert np.all((scores >= 0) & (scores <= 1))


def test_pipeline_with_preprocessing_before_aligner(colour_texts):
    X, texts = colour_texts
    pipeline = make_pipeline(StandardScaler(), CWCLAligner(**FAST, student__standardize=False))
    embeddings = pipeline.fit(X, texts).transform(X)
    assert embeddings.shape == (len(X), 384)
    assert pipeline.score(X, texts) >= 0.9


def test_pipeline_ending_in_classifier(colour_data):
    X, labels, names = colour_data
    pipeline = make_pipeline(
        StandardScaler(), ZeroShotClassifier(CWCLAligner(**FAST), labels=names)
    )
    pipeline.fit(X, labels)
    assert pipeline.score(X, labels) >= 0.9
    assert pipeline.predict_proba(X).shape == (len(X), 3)


def test_sklearn_metrics_on_predictions(colour_data):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(CWCLAligner(**FAST), labels=names).fit(X, labels)
    predicted = classifier.predict(X)
    assert accuracy_score(labels, predicted) == classifier.score(X, labels)
    assert confusion_matrix(labels, predicted).trace() == (predicted == labels).sum()
    assert "precision" in classification_report(labels, predicted)
