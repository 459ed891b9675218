"""Matplotlib helpers for notebooks: targets, training curves, embedding maps and comparisons.

matplotlib is an optional dependency (``pip install "cwcl-sk[plot]"``). It is imported when a
function is called, so importing this module never needs it. Every function draws into the
``ax`` it is given (a new figure otherwise) and returns the Axes, so plots compose with the
rest of a notebook's figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "plot_comparison",
    "plot_confusion",
    "plot_embedding_map",
    "plot_history",
    "plot_weights",
]

_INSTALL_HINT = 'cwcl_sk.plotting needs matplotlib: pip install "cwcl-sk[plot]" (or matplotlib).'

# Beyond this many items per axis, tick labels overlap and say nothing.
_MAX_TICK_LABELS = 30


def _pyplot():
    """matplotlib.pyplot, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(_INSTALL_HINT) from error
    return plt


def _new_axes(ax, n_axes: int = 1, figsize=(6.0, 4.5)):
    plt = _pyplot()
    if ax is not None:
        return ax
    _, axes = plt.subplots(1, n_axes, figsize=figsize, layout="constrained")
    return axes


def _check_fitted(estimator, attribute: str) -> None:
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, attribute)


def _kernel_name(kernel) -> str:
    if isinstance(kernel, str):
        return kernel
    if isinstance(kernel, np.ndarray) or hasattr(kernel, "detach"):
        return "precomputed weights"
    if hasattr(kernel, "get_params"):
        return repr(kernel)
    return getattr(kernel, "__name__", type(kernel).__name__)


def _text_ticks(y, n_items: int):
    """The texts of ``y`` as tick labels, or None when they are not texts or too many."""
    if n_items > _MAX_TICK_LABELS or (isinstance(y, np.ndarray) and y.dtype.kind not in "OUS"):
        return None
    items = list(y)
    if all(isinstance(item, str) for item in items):
        return items
    return None


def plot_weights(aligner, X, y, kernel=None, ax=None):
    """Show a batch's CWCL targets from the teacher beside the student's similarities.

    The left image is the row-normalised target matrix the loss asks the student to match,
    ``t_ij = w_ij / sum_k w_ik`` with ``w = kernel(<q_i, q_j>)`` on the teacher's embeddings
    of ``y``; the right image is the trained student's cosine similarity ``<p_i, q_j>`` of
    each input of ``X`` to each teacher embedding. Nearly uniform rows on the left mean the
    kernel has collapsed (see :mod:`cwcl_sk.diagnostics`); its title gives the effective
    number of positives per row.

    Parameters
    ----------
    aligner : CWCLAligner
        Fitted.
    X : array-like
        Student-side inputs of one batch (keep it small: the images are N x N).
    y : sequence
        The teacher-side inputs paired with ``X``.
    kernel : str, WeightKernel, callable or array of shape (N, N), optional
        The kernel of the targets. Defaults to the aligner's ``kernel`` (``"identity"`` when
        it was trained with ``loss="clip"``).
    ax : sequence of two matplotlib Axes, optional
        Where to draw the targets and the similarities; a new figure by default.

    Returns
    -------
    axes : ndarray of two matplotlib Axes
        The targets' Axes and the similarities' Axes.

    See Also
    --------
    cwcl_sk.kernels.target_matrix : the targets drawn on the left.
    cwcl_sk.diagnostics.target_statistics : the effective number of positives.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from cwcl_sk import CWCLAligner
    >>> from cwcl_sk.plotting import plot_weights
    >>> rng = np.random.default_rng(0)
    >>> teacher_embeddings = rng.normal(size=(20, 8))
    >>> X = teacher_embeddings @ rng.normal(size=(8, 5))
    >>> aligner = CWCLAligner(teacher="precomputed", max_epochs=2, random_state=0)
    >>> axes = plot_weights(aligner.fit(X, teacher_embeddings), X, teacher_embeddings)
    >>> [axis.get_title().splitlines()[0] for axis in axes]
    ['teacher targets, kernel=exp', 'student similarity <p_i, q_j>']
    """
    import torch

    from .diagnostics import target_statistics
    from .kernels import target_matrix

    _check_fitted(aligner, "student_")
    if kernel is None:
        kernel = aligner.kernel if aligner.loss == "cwcl" else "identity"
    teacher_embeddings = aligner.embed_teacher(y)  # (N, dim)
    student_embeddings = aligner.transform(X)  # (N, dim)
    n_items = len(teacher_embeddings)
    if len(student_embeddings) != n_items:
        raise ValueError(
            f"X and y must be paired one to one, but X has {len(student_embeddings)} samples "
            f"and y has {n_items}."
        )
    if (isinstance(kernel, np.ndarray) or hasattr(kernel, "detach")) and tuple(
        np.shape(kernel)
    ) != (n_items, n_items):
        raise ValueError(
            f"kernel is a weight matrix of shape {tuple(np.shape(kernel))}, but this batch has "
            f"{n_items} pairs; pass kernel= weights for the batch or a kernel name."
        )
    targets = target_matrix(torch.from_numpy(teacher_embeddings), kernel)  # (N, N)
    statistics = target_statistics(targets)
    similarity = student_embeddings @ teacher_embeddings.T  # (N, N)

    axes = np.asarray(_new_axes(ax, 2, figsize=(10.0, 4.5)), dtype=object).ravel()
    if len(axes) != 2:
        raise ValueError(f"ax must hold two Axes (targets, similarities), got {len(axes)}.")
    target_axes, similarity_axes = axes
    figure = target_axes.figure
    image = target_axes.imshow(targets.numpy(), cmap="viridis", vmin=0.0, interpolation="nearest")
    figure.colorbar(image, ax=target_axes, shrink=0.8)
    target_axes.set_title(
        f"teacher targets, kernel={_kernel_name(kernel)}\n"
        f"{statistics['effective_positives']:.1f} effective positives of {n_items} per row"
    )
    # Centred on 0 but scaled to the batch: early in training all cosines are small.
    limit = float(np.abs(similarity).max()) or 1.0
    image = similarity_axes.imshow(
        similarity, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest"
    )
    figure.colorbar(image, ax=similarity_axes, shrink=0.8)
    similarity_axes.set_title("student similarity <p_i, q_j>\nafter training")
    ticks = _text_ticks(y, n_items)
    for axis in axes:
        axis.set_xlabel("teacher j")
        axis.set_ylabel("student i")
        if ticks is not None:
            axis.set_xticks(np.arange(n_items), ticks, rotation=90)
            axis.set_yticks(np.arange(n_items), ticks)
    return axes


def _history(history_or_aligner) -> list[dict]:
    """The list of epoch records held by an aligner, a classifier, a data frame or a list."""
    if hasattr(history_or_aligner, "to_dict"):
        return history_or_aligner.to_dict("records")
    if isinstance(history_or_aligner, Sequence) and not isinstance(history_or_aligner, str):
        history = list(history_or_aligner)
    elif hasattr(history_or_aligner, "history_"):
        history = history_or_aligner.history_
    elif hasattr(getattr(history_or_aligner, "aligner_", None), "history_"):
        history = history_or_aligner.aligner_.history_
    elif hasattr(history_or_aligner, "fit"):
        _check_fitted(history_or_aligner, "history_")
        history = []
    else:
        raise TypeError(
            "history_or_aligner must be a fitted CWCLAligner (or ZeroShotClassifier), or its "
            f"history_ (a list of dicts); got {type(history_or_aligner).__name__}."
        )
    if not all(isinstance(record, Mapping) for record in history):
        raise TypeError("history must be a list of dicts, one per epoch (as in history_).")
    return list(history)


def plot_history(history_or_aligner, keys=("train_loss", "valid_loss"), ax=None):
    """Training curves: the numbers of ``history_`` against the epoch.

    Losses share the left axis; other numbers (``valid_r1``, ``temperature``) get a second
    y-axis on the right when drawn together with a loss, since their scales differ. Validation
    curves are dashed.

    Parameters
    ----------
    history_or_aligner : CWCLAligner, ZeroShotClassifier, list of dict or DataFrame
        A fitted estimator, or its ``history_``: one dict per epoch with ``epoch``,
        ``train_loss`` and optionally ``valid_loss``, ``valid_r1``, ``temperature``.
    keys : str or sequence of str, default=("train_loss", "valid_loss")
        The numbers to draw. Keys absent from every record are skipped (training without
        validation has no ``valid_loss``), but at least one must be present.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    ax : matplotlib Axes
        The Axes of the losses. A second y-axis, if any, is ``ax.right_ax`` (as in pandas)
        and holds the legend.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from cwcl_sk.plotting import plot_history
    >>> history = [{"epoch": 1, "train_loss": 2.0, "valid_loss": 2.2},
    ...            {"epoch": 2, "train_loss": 1.5, "valid_loss": 1.9}]
    >>> [line.get_label() for line in plot_history(history).get_lines()]
    ['train_loss', 'valid_loss']
    """
    history = _history(history_or_aligner)
    if not history:
        raise ValueError("The history is empty: nothing has been trained yet.")
    keys = [keys] if isinstance(keys, str) else list(keys)
    available = sorted({key for record in history for key in record} - {"epoch"})
    present = [key for key in keys if any(key in record for record in history)]
    if not present:
        raise ValueError(
            f"None of the keys {keys} is in the history; its records hold {available}."
        )
    epochs = [record.get("epoch", index + 1) for index, record in enumerate(history)]
    losses = [key for key in present if "loss" in key]
    others = [key for key in present if "loss" not in key]

    ax = _new_axes(ax)
    right = ax.twinx() if losses and others else None
    for key in present:
        axis = right if right is not None and key in others else ax
        values = [float(record.get(key, np.nan)) for record in history]
        axis.plot(
            epochs,
            values,
            marker="o" if len(history) <= _MAX_TICK_LABELS else None,
            linestyle="--" if key.startswith("valid") else "-",
            color=f"C{present.index(key)}",
            label=key,
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss" if losses else ", ".join(others))
    handles, labels = ax.get_legend_handles_labels()
    if right is None:
        ax.legend(handles, labels)
    else:
        right.set_ylabel(", ".join(others))
        more_handles, more_labels = right.get_legend_handles_labels()
        # The twin Axes is drawn over ax: a legend on ax would sit under its lines.
        right.legend(handles + more_handles, labels + more_labels)
        ax.right_ax = right
    ax.set_title("training history")
    return ax


def _reduce(points: np.ndarray, method: str, random_state):
    """2-D coordinates of ``points`` and the axis names."""
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=random_state)
        coordinates = pca.fit_transform(points)
        shares = pca.explained_variance_ratio_
        return coordinates, [f"PC{index + 1} ({share:.0%})" for index, share in enumerate(shares)]
    if method == "tsne":
        from sklearn.manifold import TSNE

        # t-SNE needs a perplexity below the number of points; 30 is its usual default.
        perplexity = float(min(30.0, max(1.0, (len(points) - 1) / 3)))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state)
        return tsne.fit_transform(points), ["t-SNE 1", "t-SNE 2"]
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}.")


def plot_embedding_map(aligner, X, y, method="pca", labels=None, ax=None, random_state=0):
    """A 2-D map of both modalities in the shared space.

    Student embeddings of ``X`` (circles) and teacher embeddings of ``y`` (triangles) are
    projected together, so a well-aligned student puts each circle near its triangle.

    Parameters
    ----------
    aligner : CWCLAligner
        Fitted.
    X : array-like
        Student-side inputs.
    y : sequence
        Teacher-side inputs paired with ``X``.
    method : {"pca", "tsne"}, default="pca"
        The projection: scikit-learn's :class:`~sklearn.decomposition.PCA` (linear, fast) or
        :class:`~sklearn.manifold.TSNE` (keeps neighbourhoods, slower).
    labels : array-like of shape (n_samples,), optional
        A class per pair: both points of a pair get the class's colour. Without labels the
        two modalities get one colour each.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    random_state : int or None, default=0
        Seed of the projection.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from cwcl_sk import CWCLAligner
    >>> from cwcl_sk.plotting import plot_embedding_map
    >>> rng = np.random.default_rng(0)
    >>> teacher_embeddings = rng.normal(size=(20, 8))
    >>> X = teacher_embeddings @ rng.normal(size=(8, 5))
    >>> aligner = CWCLAligner(teacher="precomputed", max_epochs=2, random_state=0)
    >>> ax = plot_embedding_map(aligner.fit(X, teacher_embeddings), X, teacher_embeddings)
    >>> ax.get_legend_handles_labels()[1]
    ['student (X)', 'teacher (y)']
    """
    _check_fitted(aligner, "student_")
    student_embeddings = aligner.transform(X)  # (n_samples, dim)
    teacher_embeddings = aligner.embed_teacher(y)  # (n_samples, dim)
    n_samples = len(student_embeddings)
    if len(teacher_embeddings) != n_samples:
        raise ValueError(
            f"X and y must be paired one to one, but X has {n_samples} samples and y has "
            f"{len(teacher_embeddings)}."
        )
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n_samples,):
            raise ValueError(
                f"labels must hold one class per pair, shape ({n_samples},); got {labels.shape}."
            )
    if n_samples < 2:
        raise ValueError("A map needs at least 2 pairs.")
    coordinates, axis_names = _reduce(
        np.vstack([student_embeddings, teacher_embeddings]), method, random_state
    )
    students, teachers = coordinates[:n_samples], coordinates[n_samples:]

    ax = _new_axes(ax)
    if labels is None:
        ax.scatter(*students.T, marker="o", s=24, color="C0", label="student (X)")
        ax.scatter(*teachers.T, marker="^", s=48, color="C1", label="teacher (y)")
    else:
        from matplotlib import colormaps
        from matplotlib.lines import Line2D

        classes = np.unique(labels)
        colours = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for index, label in enumerate(classes):
            colour = colours(index % colours.N)
            chosen = labels == label
            ax.scatter(*students[chosen].T, marker="o", s=24, color=colour, label=str(label))
            ax.scatter(
                *teachers[chosen].T,
                marker="^",
                s=48,
                color=colour,
                edgecolor="black",
                linewidth=0.5,
            )
        handles, names = ax.get_legend_handles_labels()
        markers = [
            Line2D([], [], marker=marker, linestyle="", color="grey", label=name)
            for marker, name in (("o", "student (X)"), ("^", "teacher (y)"))
        ]
        ax.legend(
            handles + markers,
            names + [marker.get_label() for marker in markers],
            fontsize="small",
            ncol=2 if len(classes) > 10 else 1,
        )
    if labels is None:
        ax.legend()
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(f"shared embedding space ({'PCA' if method == 'pca' else 't-SNE'})")
    return ax


def plot_confusion(classifier, X, y, ax=None, normalize=None):
    """The zero-shot confusion matrix, with the label texts as tick labels.

    Parameters
    ----------
    classifier : ZeroShotClassifier
        Fitted (any fitted classifier with ``classes_`` works; ``class_texts_``, when present,
        names the classes).
    X : array-like
        Inputs to classify.
    y : array-like of shape (n_samples,)
        Their true classes.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    normalize : {"true", "pred", "all"} or None, default=None
        As in :func:`sklearn.metrics.confusion_matrix`: counts, or shares over the true
        classes (rows), the predictions (columns) or everything.

    Returns
    -------
    ax : matplotlib Axes
        Titled with the accuracy.

    See Also
    --------
    sklearn.metrics.ConfusionMatrixDisplay : draws the matrix.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    _check_fitted(classifier, "classes_")
    _pyplot()
    classes = classifier.classes_
    texts = list(getattr(classifier, "class_texts_", [str(label) for label in classes]))
    y = np.asarray(y)
    predictions = classifier.predict(X)
    if len(predictions) != len(y):
        raise ValueError(
            f"X and y must have the same length, but X has {len(predictions)} samples and y "
            f"has {len(y)}."
        )
    long_texts = max(len(text) for text in texts) > 6
    display = ConfusionMatrixDisplay.from_predictions(
        y,
        predictions,
        labels=classes,
        display_labels=texts,
        normalize=normalize,
        ax=ax,
        include_values=len(classes) <= 20,
        values_format=".2f" if normalize else "d",
        xticks_rotation="vertical" if long_texts else "horizontal",
        colorbar=True,
    )
    accuracy = float(np.mean(predictions == y))
    display.ax_.set_title(f"zero-shot confusion matrix, accuracy {accuracy:.1%}")
    return display.ax_


def _record(item, index: int) -> Mapping:
    if isinstance(item, Mapping):
        return item
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    raise TypeError(
        f"results[{index}] is {type(item).__name__}; expected a dict (or dataclass) with the "
        "configuration's name and its scores."
    )


def _group_scores(results, metric: str, by: str) -> dict[str, list[float]]:
    """Scores per configuration, in the order configurations first appear."""
    if hasattr(results, "to_dict") and not isinstance(results, Mapping):
        results = results.to_dict("records")
    scores: dict[str, list[float]] = {}
    if isinstance(results, Mapping):
        for name, values in results.items():
            values = np.atleast_1d(np.asarray(values, dtype=float)).tolist()
            if not values:
                raise ValueError(f"results[{name!r}] is empty; expected at least one score.")
            scores[str(name)] = values
    elif isinstance(results, Sequence) and not isinstance(results, str):
        for index, item in enumerate(results):
            record = _record(item, index)
            for key in (by, metric):
                if key not in record:
                    raise ValueError(
                        f"results[{index}] has no {key!r}; its keys are {sorted(record)}."
                    )
            scores.setdefault(str(record[by]), []).append(float(record[metric]))
    else:
        raise TypeError(
            "results must be a list of dicts or a mapping name -> scores, got "
            f"{type(results).__name__}."
        )
    if not scores:
        raise ValueError("results is empty; nothing to compare.")
    return scores


def plot_comparison(results, metric="accuracy", ax=None, by="name"):
    """Bars comparing configurations (e.g. CL against CWCL), with error bars over seeds.

    Each bar is the mean score of a configuration; with several scores (seeds) it gets an
    error bar of one standard deviation and the individual scores as dots.

    Parameters
    ----------
    results : list of dict, mapping or DataFrame
        Either records such as ``{"name": "CWCL, exp", "seed": 0, "accuracy": 0.91}`` (one per
        run; dataclasses such as :class:`cwcl_sk.demo.DemoResult` work too), or a mapping
        ``name -> score`` or ``name -> list of scores``.
    metric : str, default="accuracy"
        The record key to draw (ignored for a mapping).
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    by : str, default="name"
        The record key naming the configuration.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from cwcl_sk.plotting import plot_comparison
    >>> ax = plot_comparison({"CL": [0.68, 0.70], "CWCL": [0.74, 0.77]})
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['CL', 'CWCL']
    """
    scores = _group_scores(results, metric, by)
    names = list(scores)
    means = np.array([np.mean(values) for values in scores.values()])
    several = any(len(values) > 1 for values in scores.values())
    deviations = np.array(
        [np.std(values, ddof=1) if len(values) > 1 else 0.0 for values in scores.values()]
    )
    positions = np.arange(len(names))

    ax = _new_axes(ax)
    bars = ax.bar(
        positions,
        means,
        yerr=deviations if several else None,
        capsize=4,
        color=[f"C{index % 10}" for index in positions],
        alpha=0.85,
    )
    for position, values in zip(positions, scores.values(), strict=True):
        if len(values) > 1:
            ax.scatter(np.full(len(values), position), values, s=12, color="black", zorder=3)
    ax.bar_label(bars, labels=[f"{mean:.3g}" for mean in means], padding=2)
    rotation = 30 if max(len(name) for name in names) > 10 else 0
    ax.set_xticks(positions, names, rotation=rotation, ha="right" if rotation else "center")
    ax.set_ylabel(metric)
    every_score = [score for values in scores.values() for score in values]
    if min(every_score) >= 0 and max(every_score) <= 1:
        ax.set_ylim(0, 1.08)
    counts = sorted({len(values) for values in scores.values()})
    runs = f", mean ± sd over {counts[-1]} runs" if several and len(counts) == 1 else ""
    if several and len(counts) > 1:
        runs = ", mean ± sd over runs"
    ax.set_title(f"{metric}{runs}")
    return ax
