"""ZeroShotClassifier: classify by comparing inputs with embedded label texts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._display import ReadableReprMixin
from ._validation import HasMethods, InstanceOf, Interval, validate_parameters
from .inputs import check_same_length, count_samples

__all__ = ["ZeroShotClassifier"]


class ZeroShotClassifier(ReadableReprMixin, ClassifierMixin, BaseEstimator):
    """Zero-shot classification through an aligner's shared embedding space.

    Each class is written as text (``labels``), placed in one or more ``templates`` such as
    ``"the number {}"``, and embedded by the aligner's frozen teacher; the class embedding is
    the re-normalised mean over templates (prompt ensembling). An input is assigned the class
    whose embedding is most similar to the student's embedding of it.

    With a fitted aligner nothing is trained: ``fit`` only records ``classes_`` and embeds the
    label texts. With an unfitted aligner, ``fit`` first trains a clone of it on pairs
    (X[i], prompt of y[i]), using the first template, so that the classifier can be
    cross-validated and grid-searched on labelled data like any other (see Notes).

    Parameters
    ----------
    aligner : CWCLAligner or None, default=None
        None means ``CWCLAligner()`` with its defaults.
    labels : dict, callable or None, default=None
        The text of each class: a mapping class -> text (must cover every class in ``y``), a
        callable ``labels(class) -> text``, or None for ``str(class)``.
    templates : str or list of str, default="{}"
        Prompt templates; each contains ``{}`` once, replaced by the label text.
    temperature : float or None, default=None
        Temperature of the softmax in :meth:`predict_proba`; None uses the aligner's
        training temperature (``aligner_.temperature_``).

    Attributes
    ----------
    aligner_ : CWCLAligner
        The aligner used: the one given if it was fitted, else a fitted clone.
    classes_ : ndarray of shape (n_classes,)
    class_texts_ : list of str
        The label text of each class.
    class_embeddings_ : ndarray of shape (n_classes, dim)
        Unit-norm class embeddings in the shared space.
    n_features_in_ : int
        Present when the aligner reads feature rows.

    See Also
    --------
    CWCLAligner : learns the shared space.

    Notes
    -----
    ``sklearn.base.clone`` (used by ``cross_val_score`` and ``GridSearchCV``) returns unfitted
    copies, so a pre-trained aligner inside a cloned classifier is trained again. To keep a
    pre-trained aligner fixed across folds, wrap it: ``ZeroShotClassifier(
    sklearn.frozen.FrozenEstimator(aligner))``.

    Examples
    --------
    >>> import numpy as np
    >>> from cwcl_sk import CWCLAligner, ZeroShotClassifier
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, size=60)
    >>> X = np.eye(3)[y] + 0.1 * rng.normal(size=(60, 3))
    >>> names = {0: "red", 1: "green", 2: "blue"}
    >>> clf = ZeroShotClassifier(CWCLAligner(max_epochs=30, random_state=0), labels=names)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    """

    # What each parameter accepts, checked at the start of fit (see cwcl_sk._validation);
    # the text of templates and labels is checked where it is used, naming the class.
    _parameter_constraints: ClassVar[dict] = {
        "aligner": [None, HasMethods(["fit", "transform", "embed_teacher"])],
        "labels": [None, Mapping, InstanceOf(Callable, "a callable")],
        "templates": [InstanceOf((str, list, tuple), "a string or a list of strings")],
        "temperature": [None, Interval(Real, 0.0, None, closed="neither")],
    }

    def __init__(self, aligner=None, labels=None, templates="{}", temperature=None):
        self.aligner = aligner
        self.labels = labels
        self.templates = templates
        self.temperature = temperature

    def _templates(self) -> list[str]:
        templates = [self.templates] if isinstance(self.templates, str) else self.templates
        if not isinstance(templates, list | tuple) or not templates:
            raise ValueError(
                f"templates must be a string or a non-empty list of strings containing '{{}}', "
                f"got {self.templates!r}."
            )
        for template in templates:
            if not isinstance(template, str) or template.count("{}") != 1:
                raise ValueError(
                    f"Each of templates must be a string containing '{{}}' exactly once (where "
                    f"the label text goes), got {template!r}."
                )
        return list(templates)

    def _label_text(self, label) -> str:
        if self.labels is None:
            text = str(label)
        elif isinstance(self.labels, Mapping):
            text = self.labels[label]
        elif callable(self.labels):
            text = self.labels(label)
        else:
            raise TypeError(
                "labels must be a dict class -> text, a callable or None, got "
                f"{type(self.labels).__name__}."
            )
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"labels gave {text!r} for class {label!r}; expected non-empty text.")
        return text

    def _check_labels_cover(self, classes) -> None:
        if isinstance(self.labels, Mapping):
            missing = [label for label in classes if label not in self.labels]
            if missing:
                raise ValueError(
                    f"labels has no text for class(es) {missing}; it must map every class in "
                    "y to its text."
                )

    def fit(self, X, y):
        """Record the classes, train the aligner if needed, and embed the label texts.

        Parameters
        ----------
        X : array-like
            Student-side inputs (used only to train an unfitted aligner).
        y : array-like of shape (n_samples,)
            Class labels (ints, strings or any hashable values).

        Returns
        -------
        self : ZeroShotClassifier
        """
        validate_parameters(self)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y = _as_label_array(y)
        check_classification_targets(y)
        templates = self._templates()
        classes = np.unique(y)
        self._check_labels_cover(classes.tolist())
        texts = [self._label_text(label) for label in classes.tolist()]

        aligner = self.aligner
        if aligner is None:
            from .aligner import CWCLAligner

            aligner = CWCLAligner()
        if _is_fitted(aligner):
            # Nothing is trained, but X and y that do not pair up are a mistake all the same.
            # X may be None here: only the classes are learned (the command line does this).
            if X is not None:
                check_same_length(count_samples(X, "X"), len(y))
            self.aligner_ = aligner
        else:
            text_of = dict(zip(classes.tolist(), texts, strict=True))
            prompts = [templates[0].replace("{}", text_of[label]) for label in y.tolist()]
            self.aligner_ = clone(aligner).fit(X, prompts)

        self.classes_ = classes
        self.class_texts_ = texts
        self.class_embeddings_ = _class_embeddings(self.aligner_, texts, templates)
        if hasattr(self.aligner_, "n_features_in_"):
            self.n_features_in_ = self.aligner_.n_features_in_
        return self

    def _similarities(self, X) -> np.ndarray:
        check_is_fitted(self, "class_embeddings_")
        embeddings = self.aligner_.transform(X)
        return embeddings @ self.class_embeddings_.T  # (n_samples, n_classes)

    def decision_function(self, X):
        """Cosine similarity of each input to each class.

        Parameters
        ----------
        X : array-like

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes
            For two classes, as scikit-learn expects, the score of ``classes_[1]`` minus that
            of ``classes_[0]``.
        """
        scores = self._similarities(X)
        if len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict_proba(self, X):
        """Class probabilities: softmax of cosine similarity divided by the temperature.

        Parameters
        ----------
        X : array-like

        Returns
        -------
        probabilities : ndarray of shape (n_samples, n_classes)
            Rows sum to 1.
        """
        scores = self._similarities(X).astype(np.float64)
        temperature = self.temperature
        if temperature is None:
            temperature = getattr(self.aligner_, "temperature_", 0.07)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        logits = scores / temperature
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most similar class for each input.

        Parameters
        ----------
        X : array-like

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        similarities = self._similarities(X)
        return self.classes_[np.argmax(similarities, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        if self.aligner is not None and hasattr(self.aligner, "__sklearn_tags__"):
            tags.input_tags = self.aligner.__sklearn_tags__().input_tags
        return tags


def _as_label_array(y) -> np.ndarray:
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = column_or_1d(array, warn=True)
    if array.ndim != 1:
        raise ValueError(f"y must be a 1-D array of class labels, got shape {array.shape}.")
    if len(array) == 0:
        raise ValueError("y is empty; expected at least one class label.")
    return array


def _is_fitted(estimator) -> bool:
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _class_embeddings(aligner, texts: list[str], templates: list[str]) -> np.ndarray:
    prompts = [template.replace("{}", text) for text in texts for template in templates]
    embeddings = aligner.embed_teacher(prompts).reshape(len(texts), len(templates), -1)
    mean = embeddings.mean(axis=1)  # (n_classes, dim)
    return (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)
