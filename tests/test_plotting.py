"""Plotting helpers: each draws what it says into Axes (Agg backend, no display)."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from cwcl_sk import CWCLAligner, ZeroShotClassifier  # noqa: E402
from cwcl_sk.demo import DemoResult  # noqa: E402
from cwcl_sk.kernels import DEFAULT_KERNEL  # noqa: E402
from cwcl_sk.plotting import (  # noqa: E402
    plot_comparison,
    plot_confusion,
    plot_embedding_map,
    plot_history,
    plot_weights,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def colour_aligner(colour_data):
    """An MLP aligned to the bundled MiniLM on three colour names, with validation."""
    X, labels, names = colour_data
    texts = [names[label] for label in labels]
    aligner = CWCLAligner(
        max_epochs=8,
        batch_size=32,
        validation_fraction=0.2,
        random_state=0,
        student__hidden_sizes=(16,),
    )
    return aligner.fit(X, texts)


@pytest.fixture(scope="module")
def precomputed_aligner(paired_features):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(teacher="precomputed", max_epochs=3, random_state=0)
    return aligner.fit(X, teacher_embeddings)


def _texts(colour_data, count):
    X, labels, names = colour_data
    return X[:count], [names[label] for label in labels[:count]], labels[:count]


def test_plot_weights_shows_targets_beside_student_similarity(colour_aligner, colour_data):
    X, texts, _ = _texts(colour_data, 12)
    target_axes, similarity_axes = plot_weights(colour_aligner, X, texts)
    assert target_axes.get_title().startswith(f"teacher targets, kernel={DEFAULT_KERNEL}")
    assert "effective positives of 12" in target_axes.get_title()
    assert similarity_axes.get_title().startswith("student similarity")
    targets = target_axes.get_images()[0].get_array()
    similarity = similarity_axes.get_images()[0].get_array()
    assert targets.shape == similarity.shape == (12, 12)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-5)
    expected = colour_aligner.transform(X) @ colour_aligner.embed_teacher(texts).T
    np.testing.assert_allclose(similarity, expected, rtol=1e-5)
    assert [label.get_text() for label in target_axes.get_xticklabels()] == texts


def test_plot_weights_with_identity_kernel_draws_contrastive_targets(precomputed_aligner):
    X, teacher_embeddings = _paired_batch(precomputed_aligner)
    target_axes, _ = plot_weights(precomputed_aligner, X, teacher_embeddings, kernel="identity")
    np.testing.assert_array_equal(target_axes.get_images()[0].get_array(), np.eye(len(X)))
    assert "kernel=identity" in target_axes.get_title()
    assert "1.0 effective positives" in target_axes.get_title()


def _paired_batch(aligner, count=10):
    rng = np.random.default_rng(3)
    teacher_embeddings = rng.normal(size=(count, aligner.embedding_dim_))
    X = rng.normal(size=(count, aligner.n_features_in_))
    return X, teacher_embeddings


def test_plot_weights_draws_into_the_given_axes(precomputed_aligner):
    X, teacher_embeddings = _paired_batch(precomputed_aligner)
    _, given = plt.subplots(2, 1)
    axes = plot_weights(precomputed_aligner, X, teacher_embeddings, ax=given)
    assert list(axes) == list(given)
    assert all(len(axis.get_images()) == 1 for axis in given)
    with pytest.raises(ValueError, match="two Axes"):
        plot_weights(precomputed_aligner, X, teacher_embeddings, ax=[given[0]])


def test_plot_history_draws_losses_per_epoch(colour_aligner):
    ax = plot_history(colour_aligner)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["train_loss", "valid_loss"]
    np.testing.assert_array_equal(lines["train_loss"].get_xdata(), np.arange(1, 9))
    expected = [record["train_loss"] for record in colour_aligner.history_]
    np.testing.assert_allclose(lines["train_loss"].get_ydata(), expected)
    assert lines["valid_loss"].get_linestyle() == "--"
    assert ax.get_xlabel() == "epoch"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == list(lines)


def test_plot_history_puts_retrieval_recall_on_a_second_axis():
    history = [
        {"epoch": 1, "train_loss": 3.0, "valid_loss": 3.1, "valid_r1": 0.2},
        {"epoch": 2, "train_loss": 2.0, "valid_loss": 2.4, "valid_r1": 0.5},
    ]
    ax = plot_history(history, keys=("train_loss", "valid_r1"))
    assert [line.get_label() for line in ax.get_lines()] == ["train_loss"]
    assert [line.get_label() for line in ax.right_ax.get_lines()] == ["valid_r1"]
    assert ax.right_ax.get_ylabel() == "valid_r1"
    legend = [text.get_text() for text in ax.right_ax.get_legend().get_texts()]
    assert legend == ["train_loss", "valid_r1"]


def test_plot_history_skips_absent_keys_and_rejects_when_none_is_present():
    history = [{"epoch": 1, "train_loss": 1.0}]
    assert [line.get_label() for line in plot_history(history).get_lines()] == ["train_loss"]
    with pytest.raises(ValueError, match=r"None of the keys \['valid_r1'\].*\['train_loss'\]"):
        plot_history(history, keys="valid_r1")
    with pytest.raises(ValueError, match="empty"):
        plot_history([])


def test_plot_history_of_an_unfitted_aligner_raises_not_fitted():
    with pytest.raises(NotFittedError):
        plot_history(CWCLAligner())


def test_plot_embedding_map_marks_students_and_teachers(precomputed_aligner):
    X, teacher_embeddings = _paired_batch(precomputed_aligner, count=15)
    ax = plot_embedding_map(precomputed_aligner, X, teacher_embeddings)
    collections = [item for item in ax.collections if isinstance(item, PathCollection)]
    assert [len(item.get_offsets()) for item in collections] == [15, 15]
    assert ax.get_legend_handles_labels()[1] == ["student (X)", "teacher (y)"]
    assert ax.get_title() == "shared embedding space (PCA)"
    assert ax.get_xlabel().startswith("PC1")


def test_plot_embedding_map_colours_by_label(colour_aligner, colour_data):
    X, texts, labels = _texts(colour_data, 30)
    ax = plot_embedding_map(colour_aligner, X, texts, labels=labels)
    # Students and teachers of each of the three classes.
    assert len(ax.collections) == 6
    assert len({tuple(item.get_facecolor()[0]) for item in ax.collections}) == 3
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["0", "1", "2", "student (X)", "teacher (y)"]


def test_plot_embedding_map_with_tsne(precomputed_aligner):
    X, teacher_embeddings = _paired_batch(precomputed_aligner, count=12)
    ax = plot_embedding_map(precomputed_aligner, X, teacher_embeddings, method="tsne")
    assert ax.get_title() == "shared embedding space (t-SNE)"
    assert sum(len(item.get_offsets()) for item in ax.collections) == 24
    with pytest.raises(ValueError, match="'pca' or 'tsne'"):
        plot_embedding_map(precomputed_aligner, X, teacher_embeddings, method="umap")


def test_plot_confusion_labels_ticks_with_the_label_texts(colour_aligner, colour_data):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(colour_aligner, labels=names).fit(X, labels)
    ax = plot_confusion(classifier, X, labels)
    assert [label.get_text() for label in ax.get_xticklabels()] == ["red", "green", "blue"]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["red", "green", "blue"]
    counts = ax.get_images()[0].get_array()
    assert counts.sum() == len(labels)
    accuracy = classifier.score(X, labels)
    assert ax.get_title() == f"zero-shot confusion matrix, accuracy {accuracy:.1%}"


def test_plot_confusion_normalised_rows_sum_to_one(colour_aligner, colour_data):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(colour_aligner, labels=names).fit(X, labels)
    shares = plot_confusion(classifier, X, labels, normalize="true").get_images()[0].get_array()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)


def _bars(ax):
    (bars,) = [item for item in ax.containers if isinstance(item, BarContainer)]
    return bars


def test_plot_comparison_draws_mean_and_spread_over_seeds():
    results = [
        {"name": "CL", "seed": 0, "accuracy": 0.60},
        {"name": "CWCL", "seed": 0, "accuracy": 0.70},
        {"name": "CL", "seed": 1, "accuracy": 0.64},
        {"name": "CWCL", "seed": 1, "accuracy": 0.80},
    ]
    ax = plot_comparison(results)
    assert [label.get_text() for label in ax.get_xticklabels()] == ["CL", "CWCL"]
    np.testing.assert_allclose([bar.get_height() for bar in ax.patches], [0.62, 0.75])
    error_bars = _bars(ax).errorbar
    assert error_bars is not None
    segments = error_bars.lines[2][0].get_segments()
    spreads = [segment[1][1] - segment[0][1] for segment in segments]
    np.testing.assert_allclose(spreads, 2 * np.std([[0.6, 0.64], [0.7, 0.8]], axis=1, ddof=1))
    assert ax.get_title() == "accuracy, mean ± sd over 2 runs"
    assert ax.get_ylabel() == "accuracy"


def test_plot_comparison_takes_a_mapping_or_dataclasses():
    ax = plot_comparison({"CL": 0.5, "CWCL": [0.6]})
    assert [bar.get_height() for bar in ax.patches] == [0.5, 0.6]
    assert _bars(ax).errorbar is None
    demo = [DemoResult("CL", 0.9, 0.8, 1.0), DemoResult("CWCL", 0.95, 0.85, 1.0)]
    ax = plot_comparison(demo, metric="recall_at_1")
    np.testing.assert_allclose([bar.get_height() for bar in ax.patches], [0.8, 0.85])


def test_plot_comparison_names_a_missing_metric():
    with pytest.raises(ValueError, match=r"results\[0\] has no 'f1'; its keys are"):
        plot_comparison([{"name": "CL", "accuracy": 0.5}], metric="f1")


def test_helpers_say_how_to_install_matplotlib_when_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "cwcl-sk\[plot\]"'):
        plot_comparison({"CL": 0.5})
