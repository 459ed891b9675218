"""Weight kernels that turn teacher similarities into CWCL soft targets.

CWCL (Srinivasa et al., 2023, arXiv:2309.14580) replaces the 0/1 targets of
contrastive learning with continuous weights ``w_ij`` derived from the frozen
teacher's own (intra-modal) similarities ``s_ij = <q_i, q_j>``. A *kernel* is the
map ``s_ij -> w_ij``. This module provides the kernels, the name table used by
the estimators (``kernel="capped-exp"``, the default), and :func:`target_matrix`, which builds the
row-normalised ``(N, N)`` target matrix for a batch of teacher embeddings.

Kernels subclass :class:`sklearn.base.BaseEstimator` only to inherit
``get_params``/``set_params``/``repr`` and compatibility with
:func:`sklearn.base.clone`, so that a kernel and its hyper-parameters can be
searched with ``GridSearchCV`` (``{"kernel__kappa": [0.05, 0.1]}``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ._embedding_batches import autocast_disabled, check_embedding_batch, compute_dtype
from ._gram import symmetric_gram

__all__ = [
    "KERNELS",
    "ExpKernel",
    "IdentityKernel",
    "LinearKernel",
    "MixtureKernel",
    "PerplexityKernel",
    "WeightKernel",
    "kernel_weights",
    "kernel_weights_with_sums",
    "label_weights",
    "resolve_kernel",
    "target_matrix",
]

KernelLike = Any  # str | WeightKernel | Callable[[Tensor], Tensor] | np.ndarray | Tensor

#: The kernel every estimator and function uses unless told otherwise: :class:`CappedExpKernel`
#: with ``kappa=0.1`` and ``max_positives=4``, chosen from the ablation in the kernels guide.
DEFAULT_KERNEL = "capped-exp"


def _check_similarity(similarity: torch.Tensor) -> None:
    if not isinstance(similarity, torch.Tensor):
        raise TypeError(
            f"similarity must be a torch.Tensor of shape (N, N), got {type(similarity).__name__}"
        )
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(
            f"similarity must be a square (N, N) tensor, got shape {tuple(similarity.shape)}"
        )


class WeightKernel(BaseEstimator):
    """Base class of CWCL weight kernels.

    A kernel maps the ``(N, N)`` matrix of teacher cosine similarities
    ``s_ij = <q_i, q_j>`` (values in ``[-1, 1]``, diagonal 1) to ``(N, N)``
    non-negative weights ``w_ij`` of the same dtype and device. The weights need
    not be normalised; :func:`target_matrix` divides each row by its sum.

    Subclasses implement :meth:`__call__`. Following the scikit-learn
    convention, ``__init__`` only stores its arguments and validation happens
    when the kernel is called, so ``set_params`` and ``clone`` behave as for any
    estimator.

    Examples
    --------
    >>> import torch
    >>> class HalfKernel(WeightKernel):
    ...     def __call__(self, similarity):
    ...         return (similarity >= 0.5).to(similarity.dtype)
    >>> HalfKernel()(torch.tensor([[1.0, 0.7], [0.7, 1.0]]))
    tensor([[1., 1.],
            [1., 1.]])
    """

    def __call__(self, similarity: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, N)`` non-negative weights for ``similarity``.

        Parameters
        ----------
        similarity : torch.Tensor of shape (N, N)
            Teacher cosine similarities, values in ``[-1, 1]``.

        Returns
        -------
        torch.Tensor of shape (N, N)
            Non-negative weights, same dtype and device as ``similarity``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(similarity)")


class LinearKernel(WeightKernel):
    """The paper's kernel: ``w_ij = (1 + s_ij) / 2``.

    Maps cosine similarity linearly from ``[-1, 1]`` to ``[0, 1]``, exactly as
    in Srinivasa et al. (2023).

    When to use it: to reproduce the paper. With modern sentence encoders it is
    usually a poor choice: unrelated sentences still score a cosine of roughly
    0 to 0.5, so their weights lie in 0.5 to 0.75, close to the weight 1 of the
    matching pair. After row normalisation the targets are then nearly uniform
    over the batch, the loss starts at its floor (about ``log N``), and the
    student receives almost no signal about which pair matches. Prefer
    :class:`ExpKernel` in that regime.

    Examples
    --------
    >>> import torch
    >>> LinearKernel()(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    tensor([[1.0000, 0.5000],
            [0.5000, 1.0000]])
    """

    def __call__(self, similarity: torch.Tensor) -> torch.Tensor:
        _check_similarity(similarity)
        return (1.0 + similarity) / 2.0  # (batch_size, batch_size)


_MIN_EXPONENT = -64.0


def _check_kappa(kappa) -> float:
    if (
        isinstance(kappa, bool)
        or not isinstance(kappa, numbers.Real)
        or not math.isfinite(kappa)
        or kappa <= 0
    ):
        raise ValueError(f"kappa must be a finite float > 0, got {kappa!r}")
    return float(kappa)


class ExpKernel(WeightKernel):
    """Sharpened kernel: ``w_ij = exp((s_ij - 1) / kappa)``.

    Identical items get weight 1; the weight decays exponentially as the
    teacher similarity drops, with sharpness ``kappa``. Row-normalised, the
    targets are ``softmax_j(s_ij / kappa)``: a teacher-temperature softmax.
    Weights are floored at ``exp(-64)`` (about 1.6e-28) to stay out of the slow
    float32 subnormal range; next to the diagonal weight 1 this is invisible.

    When to use it: to reproduce runs made before ``"capped-exp"`` became the default, or
    when the teacher's soft weight on similar classes should act as label smoothing (see
    :class:`CappedExpKernel` for when it hurts). It keeps CWCL's continuous credit for
    genuinely similar items while giving unrelated items (teacher cosine
    0 to 0.5) negligible weight, so it does not collapse to uniform targets as
    :class:`LinearKernel` does with modern encoders. Small ``kappa`` (e.g.
    0.01) approaches the identity, i.e. plain contrastive learning; large
    ``kappa`` approaches uniform targets.

    Parameters
    ----------
    kappa : float, default=0.1
        Positive, finite sharpness (a temperature on teacher similarities).
        Validated when the kernel is called.

    Examples
    --------
    >>> import torch
    >>> ExpKernel(kappa=0.1)(torch.tensor([[1.0, 0.9], [0.9, 1.0]]))
    tensor([[1.0000, 0.3679],
            [0.3679, 1.0000]])
    >>> ExpKernel().set_params(kappa=0.05)
    ExpKernel(kappa=0.05)
    """

    def __init__(self, kappa: float = 0.1) -> None:
        self.kappa = kappa

    def __call__(self, similarity: torch.Tensor) -> torch.Tensor:
        _check_similarity(similarity)
        inv_kappa = 1.0 / _check_kappa(self.kappa)
        # similarity <= 1, so the exponent is <= 0 and nothing overflows. The floor
        # keeps weights (and targets derived from them) out of the float32
        # subnormal range, where CPU arithmetic is many times slower; a weight of
        # exp(-64) ~ 1.6e-28 next to the diagonal's 1 is invisible in float32.
        exponent = (similarity * inv_kappa).sub_(inv_kappa).clamp_(min=_MIN_EXPONENT)
        return exponent.exp_()  # (batch_size, batch_size)


class IdentityKernel(WeightKernel):
    """Identity targets: ``w_ij = 1 if i == j else 0``.

    With these weights CWCL is exactly the standard contrastive loss of
    CLIP/LiT (each student matches only its own teacher). The result ignores
    the similarities entirely, so duplicate teacher rows are still treated as
    negatives, as in CL.

    When to use it: as the contrastive-learning baseline inside the same
    estimator, e.g. ``{"kernel": ["identity", ExpKernel(kappa=0.05)]}`` in a
    grid search.

    Examples
    --------
    >>> import torch
    >>> IdentityKernel()(torch.zeros(2, 2))
    tensor([[1., 0.],
            [0., 1.]])
    """

    def __call__(self, similarity: torch.Tensor) -> torch.Tensor:
        _check_similarity(similarity)
        n = similarity.shape[0]
        return torch.eye(n, dtype=similarity.dtype, device=similarity.device)


def _check_fraction(name: str, value, low: float, high: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _row_entropy(distance: torch.Tensor, log_beta: torch.Tensor) -> torch.Tensor:
    """Entropy of each row of ``softmax(distance * exp(log_beta))``, shape (N, 1)."""
    log_targets = torch.log_softmax(distance * log_beta.exp(), dim=1)
    return -(log_targets.exp() * log_targets).sum(dim=1, keepdim=True)


def _calibrate_log_beta(
    distance: torch.Tensor, target_entropy: float, low: float, high: float, n_steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bisect each row's ``log(beta)`` so that ``softmax(distance * beta)`` has a given entropy.

    ``distance`` is ``similarity - 1`` (<= 0), so a row's entropy falls as ``beta`` grows.
    Returns the final brackets ``(low, high)``, each (N, 1): the entropy at ``high`` is at
    most ``target_entropy`` unless even ``exp(high)`` is too flat (exact duplicates).
    """
    low_t = torch.full((distance.shape[0], 1), low, dtype=distance.dtype, device=distance.device)
    high_t = torch.full_like(low_t, high)
    for _ in range(n_steps):
        middle = (low_t + high_t) / 2
        too_flat = _row_entropy(distance, middle) > target_entropy
        low_t = torch.where(too_flat, middle, low_t)
        high_t = torch.where(too_flat, high_t, middle)
    return low_t, high_t


class PerplexityKernel(WeightKernel):
    """Sharpened kernel calibrated per batch to a chosen number of effective positives.

    For each row ``i`` the sharpness ``kappa_i`` of ``exp((s_ij - 1) / kappa_i)`` is found by
    bisection so that the row-normalised targets have perplexity ``exp(H_i)`` equal to
    ``perplexity`` (as t-SNE calibrates its neighbourhoods); the result is symmetrised,
    ``w = (p + p^T) / 2``. The number of items each row treats as positives therefore stays the
    same whatever the teacher's similarity distribution and the batch size: unlike a fixed
    ``kappa``, it behaves alike at batch 64 and 4096, and for encoders whose unrelated
    sentences score cos 0.1 or 0.5.

    When to use it: when the right ``kappa`` of :class:`ExpKernel` is unclear, or when batch
    sizes differ between runs. ``perplexity=1`` approaches contrastive learning; 2 to 8 gives
    a few soft positives per row. Items with identical teacher inputs always share their
    weight, so a row can never be sharper than its number of duplicates.

    Parameters
    ----------
    perplexity : float, default=4.0
        Effective number of positives per row, >= 1 (clipped to the batch size).
    n_steps : int, default=24
        Bisection steps on ``log(1 / kappa)`` within ``[log(1e-2), log(1e4)]``.

    Examples
    --------
    >>> import torch
    >>> from cwcl_sk.diagnostics import target_statistics
    >>> teacher = torch.nn.functional.normalize(torch.randn(64, 16), dim=1)
    >>> weights = PerplexityKernel(perplexity=4.0)(teacher @ teacher.T)
    >>> targets = weights / weights.sum(dim=1, keepdim=True)
    >>> round(target_statistics(targets)["effective_positives"])
    4
    """

    def __init__(self, perplexity: float = 4.0, n_steps: int = 24) -> None:
        self.perplexity = perplexity
        self.n_steps = n_steps

    def __call__(self, similarity: torch.Tensor) -> torch.Tensor:
        _check_similarity(similarity)
        n_items = similarity.shape[0]
        perplexity = _check_fraction("perplexity", self.perplexity, 1.0, math.inf)
        target_entropy = math.log(min(perplexity, n_items))
        distance = similarity - 1.0  # (batch_size, batch_size), <= 0
        low, high = _calibrate_log_beta(
            distance, target_entropy, math.log(1e-2), math.log(1e4), int(self.n_steps)
        )
        targets = torch.softmax(distance * ((low + high) / 2).exp(), dim=1)
        return (targets + targets.T) / 2  # (batch_size, batch_size)


class CappedExpKernel(WeightKernel):
    """:class:`ExpKernel` whose rows never treat more than ``max_positives`` items as positives.

    Each row starts from ``exp((s_ij - 1) / kappa)``. A row whose row-normalised targets would
    have a perplexity ``exp(H_i)`` above ``max_positives`` gets a smaller ``kappa_i``, found by
    bisection, that brings it down to ``max_positives``; the other rows keep ``kappa``. The
    weights use the sharper of the two rows, ``w_ij = exp((s_ij - 1) / min(kappa_i, kappa_j))``,
    so they stay symmetric with 1 on the diagonal, and the cap only ever sharpens.

    Why: with a fixed ``kappa`` the number of soft positives grows with the batch and with how
    alike the teacher finds the captions. With all-MiniLM-L6-v2, ``kappa=0.1`` gives distinct
    voice-assistant requests about 1.5 effective positives per row at batch 128 but 9 at batch
    1024, and puts 27 % of every row on other digits' captions when the captions are bare digit
    names ("seven", "eight"): label smoothing that blurs the classes the task must separate.
    The cap leaves distinct text at ordinary batch sizes as :class:`ExpKernel` has it and
    sharpens the rest. Items with identical teacher inputs always share their weight, so a row
    with more exact duplicates than ``max_positives`` ends with its duplicates as its only
    positives. For contrastive training that is the same as CL: identical teacher rows give
    identical logits, so CL's loss already equals that of targets spread over the duplicates.

    When to use it: the default; within 0.3 points of CL on every class-captioned benchmark
    and batch size measured (see the kernels guide). Prefer :class:`ExpKernel` when the
    teacher's weight on similar classes should act as label smoothing, and
    :class:`PerplexityKernel` when every row should get the same number of soft positives.

    Parameters
    ----------
    kappa : float, default=0.1
        Positive, finite sharpness used where the cap does not bind.
    max_positives : float, default=4.0
        Largest effective number of positives of a row, >= 1.
    n_steps : int, default=24
        Bisection steps on ``log(1 / kappa_i)`` within ``[log(1 / kappa), log(1e4)]``.

    Examples
    --------
    >>> import torch
    >>> from cwcl_sk.diagnostics import target_statistics
    >>> similarity = torch.full((64, 64), 0.95).fill_diagonal_(1.0)  # near-paraphrases
    >>> def positives(kernel):
    ...     weights = kernel(similarity)
    ...     targets = weights / weights.sum(dim=1, keepdim=True)
    ...     return round(target_statistics(targets)["effective_positives"], 1)
    >>> positives(ExpKernel(kappa=0.1)), positives(CappedExpKernel(kappa=0.1, max_positives=4))
    (63.8, 4.0)
    """

    def __init__(self, kappa: float = 0.1, max_positives: float = 4.0, n_steps: int = 24) -> None:
        self.kappa = kappa
        self.max_positives = max_positives
        self.n_steps = n_steps

    def __call__(self, similarity: torch.Tensor) -> torch.Tensor:
        _check_similarity(similarity)
        kappa = _check_kappa(self.kappa)
        max_positives = _check_fraction("max_positives", self.max_positives, 1.0, math.inf)
        target_entropy = math.log(min(max_positives, similarity.shape[0]))
        distance = similarity - 1.0  # (batch_size, batch_size), <= 0
        log_beta = torch.full((similarity.shape[0], 1), -math.log(kappa),
                              dtype=similarity.dtype, device=similarity.device)  # fmt: skip
        too_flat = _row_entropy(distance, log_beta) > target_entropy  # (batch_size, 1)
        # Only the rows over the cap are bisected (rows are independent, so the result is
        # the same): at ordinary batch sizes few rows of distinct text reach it.
        rows = too_flat.squeeze(1).nonzero().squeeze(1)  # (n_capped,)
        if len(rows):
            _, sharp = _calibrate_log_beta(
                distance[rows], target_entropy, -math.log(kappa), math.log(1e4), int(self.n_steps)
            )
            log_beta[rows] = torch.maximum(sharp, log_beta[rows])
        beta = log_beta.exp()
        pair_beta = torch.maximum(beta, beta.T)  # (batch_size, batch_size): the sharper row
        return (distance * pair_beta).clamp_(min=_MIN_EXPONENT).exp_()


class MixtureKernel(WeightKernel):
    """Contrastive targets mixed with soft ones: ``alpha * I + (1 - alpha) * soft``.

    ``soft`` is the row-normalised output of ``kernel``. The matching pair always keeps at
    least ``alpha`` of a row's mass, so the targets can never collapse to uniform, while the
    rest follows the teacher's similarities.

    When to use it: with a soft kernel that helps on some pairs but blurs classes the task
    must separate (MiniLM rates "seven" and "eight" 0.78 alike); ``alpha`` between 0.5 and 0.9
    keeps CL's sharpness with part of CWCL's credit for near-duplicates.

    Parameters
    ----------
    kernel : str or WeightKernel, default="linear"
        The soft part, e.g. the paper's ``"linear"`` or ``ExpKernel(kappa=0.1)``.
    alpha : float in [0, 1], default=0.5
        Mass on the identity. 1 is CL, 0 is ``kernel`` alone.

    Examples
    --------
    >>> import torch
    >>> MixtureKernel("linear", alpha=0.5)(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    tensor([[0.8333, 0.1667],
            [0.1667, 0.8333]])
    """

    def __init__(self, kernel="linear", alpha: float = 0.5) -> None:
        self.kernel = kernel
        self.alpha = alpha

    def __call__(self, similarity: torch.Tensor) -> torch.Tensor:
        _check_similarity(similarity)
        alpha = _check_fraction("alpha", self.alpha, 0.0, 1.0)
        if isinstance(self.kernel, np.ndarray | torch.Tensor):
            raise TypeError("MixtureKernel's kernel must be a name, WeightKernel or callable.")
        soft = resolve_kernel(self.kernel)(similarity)
        soft = soft / soft.sum(dim=1, keepdim=True)  # (batch_size, batch_size)
        identity = torch.eye(len(similarity), dtype=soft.dtype, device=soft.device)
        return alpha * identity + (1.0 - alpha) * soft


def label_weights(labels, different: float = 0.0) -> np.ndarray:
    """Label-aware weights for every pair of training samples, for ``kernel=`` as a matrix.

    ``w_ij = 1`` when samples ``i`` and ``j`` share a class label, ``different`` otherwise:
    supervised-contrastive targets, in which other samples of the same class are positives
    rather than negatives. Pass the result as ``CWCLAligner(kernel=label_weights(labels))``;
    the aligner slices it per batch.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Class of each training pair (any hashable values).
    different : float, default=0.0
        Weight between samples of different classes (>= 0).

    Returns
    -------
    weights : ndarray of shape (n_samples, n_samples), dtype float32
        Memory grows as ``n_samples ** 2`` (40 MB at 3,000 samples).

    Examples
    --------
    >>> label_weights(["cat", "dog", "cat"])
    array([[1., 0., 1.],
           [0., 1., 0.],
           [1., 0., 1.]], dtype=float32)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    different = _check_fraction("different", different, 0.0, math.inf)
    same = labels[:, None] == labels[None, :]  # (n_samples, n_samples)
    return np.where(same, 1.0, different).astype(np.float32)


KERNELS: dict[str, type[WeightKernel]] = {
    "linear": LinearKernel,
    "exp": ExpKernel,
    "identity": IdentityKernel,
    "perplexity": PerplexityKernel,
    "capped-exp": CappedExpKernel,
    "mixture": MixtureKernel,
}
"""Kernel names accepted wherever a ``kernel`` argument is, mapped to their classes."""


class _PrecomputedWeights:
    """Callable returning a user-supplied weight matrix, ignoring the similarities."""

    def __init__(self, weights: np.ndarray | torch.Tensor) -> None:
        self.weights = weights

    def __call__(self, similarity: torch.Tensor) -> torch.Tensor:
        weights = self.weights
        if isinstance(weights, torch.Tensor):
            weights = weights.detach()
        return torch.as_tensor(weights, dtype=similarity.dtype, device=similarity.device)

    def __repr__(self) -> str:
        return f"_PrecomputedWeights(shape={tuple(self.weights.shape)})"


def resolve_kernel(kernel: KernelLike) -> Callable[[torch.Tensor], torch.Tensor]:
    """Turn any accepted ``kernel`` specification into a callable.

    Parameters
    ----------
    kernel : str, WeightKernel, callable, numpy.ndarray or torch.Tensor
        - a name in :data:`KERNELS` (``"linear"``, ``"exp"``, ``"identity"``),
          instantiated with default parameters;
        - a :class:`WeightKernel` instance (or subclass, instantiated with
          defaults);
        - any callable mapping the ``(N, N)`` similarity tensor to ``(N, N)``
          non-negative weights;
        - a precomputed ``(N, N)`` weight matrix for the batch, used as given.

    Returns
    -------
    callable
        Maps a ``(N, N)`` similarity tensor to ``(N, N)`` weights. The weights
        are validated by :func:`kernel_weights`, not here.

    Raises
    ------
    ValueError
        If ``kernel`` is an unknown name.
    TypeError
        If ``kernel`` is of any other type.

    Examples
    --------
    >>> resolve_kernel("exp")
    ExpKernel()
    >>> resolve_kernel(ExpKernel(kappa=0.05))
    ExpKernel(kappa=0.05)
    """
    if isinstance(kernel, str):
        try:
            return KERNELS[kernel]()
        except KeyError:
            raise ValueError(
                f"kernel must be one of {sorted(KERNELS)} (or a WeightKernel, a callable, "
                f"or an (N, N) weight matrix), got unknown name {kernel!r}"
            ) from None
    if isinstance(kernel, WeightKernel):
        return kernel
    if isinstance(kernel, type) and issubclass(kernel, WeightKernel):
        # The class itself is callable, but calling it would construct a kernel
        # with the similarity matrix as its first parameter.
        return kernel()
    if isinstance(kernel, (np.ndarray, torch.Tensor)):
        return _PrecomputedWeights(kernel)
    if callable(kernel):
        return kernel
    raise TypeError(
        f"kernel must be a name in {sorted(KERNELS)}, a WeightKernel, a callable "
        "similarity -> weights, or an (N, N) numpy array / torch tensor of weights, "
        f"got {type(kernel).__name__}"
    )


def kernel_weights(
    teacher_embeddings: torch.Tensor, kernel: KernelLike = DEFAULT_KERNEL
) -> torch.Tensor:
    """Validated, un-normalised ``(N, N)`` CWCL weights for a teacher batch.

    Computes ``w_ij = kernel(s)_ij`` with ``s_ij = <q_i, q_j> / (|q_i| |q_j|)``
    clamped to ``[-1, 1]`` (diagonal set to exactly 1). Runs under
    :func:`torch.no_grad`: the weights are targets, constant with respect to
    every parameter. Computed in float32 (float64 if the embeddings are
    float64), whatever the input precision, with autocast disabled.

    Parameters
    ----------
    teacher_embeddings : torch.Tensor of shape (N, d)
        Teacher embeddings; need not be normalised.
    kernel : str, WeightKernel, callable or (N, N) array, default="capped-exp"
        See :func:`resolve_kernel`.

    Returns
    -------
    torch.Tensor of shape (N, N)
        Finite, non-negative weights with every row sum > 0.

    Raises
    ------
    ValueError
        If the weights do not have shape ``(N, N)``, are not finite, are
        negative, or a row sums to 0.

    See Also
    --------
    target_matrix : the row-normalised weights.

    Examples
    --------
    >>> import torch
    >>> q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> kernel_weights(q, "linear")
    tensor([[1.0000, 0.5000],
            [0.5000, 1.0000]])
    """
    return kernel_weights_with_sums(teacher_embeddings, kernel)[0]


def kernel_weights_with_sums(
    teacher_embeddings: torch.Tensor,
    kernel: KernelLike = DEFAULT_KERNEL,
    check_columns: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`kernel_weights` with their row sums and, if asked, validated column sums.

    The losses need the sums to normalise the weights into targets; returning them saves
    summing the ``(N, N)`` matrix again. Every check is folded into one flag, read back
    once: on a GPU each read is a device synchronisation, and a training step should not
    wait for several of them.

    Parameters
    ----------
    teacher_embeddings, kernel
        As :func:`kernel_weights`.
    check_columns : bool, default=False
        Also require every column to have positive total weight, as the
        teacher-to-student direction of the loss does, and return the column sums.

    Returns
    -------
    weights : torch.Tensor of shape (N, N)
        As :func:`kernel_weights`.
    row_sums : torch.Tensor of shape (N,)
        ``weights.sum(dim=1)``, all positive.
    col_sums : torch.Tensor of shape (N,) or None
        ``weights.sum(dim=0)``, all positive, if ``check_columns``; else None.

    Raises
    ------
    ValueError
        As :func:`kernel_weights`, or if ``check_columns`` and a column sums to 0.

    Examples
    --------
    >>> import torch
    >>> q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> weights, row_sums, col_sums = kernel_weights_with_sums(q, "linear", check_columns=True)
    >>> row_sums, col_sums
    (tensor([1.5000, 1.5000]), tensor([1.5000, 1.5000]))
    """
    check_embedding_batch(teacher_embeddings, "teacher_embeddings")
    kernel_fn = resolve_kernel(kernel)
    n = teacher_embeddings.shape[0]
    dtype = compute_dtype(teacher_embeddings.dtype)
    with torch.no_grad(), autocast_disabled(teacher_embeddings.device):
        q = torch.nn.functional.normalize(teacher_embeddings.detach().to(dtype), dim=1)  # (N, d)
        similarity = symmetric_gram(q).clamp_(-1.0, 1.0)  # (batch_size, batch_size)
        # Self-similarity is 1 by definition; rounding leaves it slightly below,
        # which would let a very sharp ExpKernel underflow the diagonal to 0.
        similarity.fill_diagonal_(1.0)
        weights = kernel_fn(similarity)
        if not isinstance(weights, torch.Tensor):
            try:
                weights = torch.as_tensor(np.asarray(weights))
            except (TypeError, ValueError, RuntimeError) as exc:
                raise TypeError(
                    f"kernel must return an (N, N) tensor or array, got {type(weights).__name__}"
                ) from exc
        weights = weights.detach().to(dtype=dtype, device=similarity.device)  # (N, N)
        if tuple(weights.shape) != (n, n):
            raise ValueError(
                f"kernel must give weights of shape (N, N) = {(n, n)} for a batch of "
                f"N={n} teacher embeddings, got shape {tuple(weights.shape)}"
            )
        # min propagates nan, and an inf weight makes its row sum inf: with the sums
        # positive, these cover every failure. The checks below only explain one.
        row_sums = weights.sum(dim=1)  # (N,)
        valid = (weights.min() >= 0) & torch.isfinite(row_sums).all() & (row_sums > 0).all()
        col_sums = weights.sum(dim=0) if check_columns else None  # (N,)
        if col_sums is not None:
            valid &= (col_sums > 0).all()
        if not bool(valid):
            _explain_invalid_weights(weights, row_sums)
    return weights, row_sums, col_sums


def _explain_invalid_weights(weights: torch.Tensor, row_sums: torch.Tensor) -> None:
    """Raise the error that says what is wrong with weights that failed validation."""
    if not bool(torch.isfinite(weights).all()):
        raise ValueError("kernel produced non-finite (nan or inf) weights")
    if not bool(weights.min() >= 0):
        raise ValueError(
            f"kernel produced negative weights (min {float(weights.min()):.4g}); "
            "weights must be >= 0"
        )
    if bool((row_sums <= 0).any()):
        bad = int(torch.nonzero(row_sums <= 0)[0, 0])
        raise ValueError(
            f"kernel produced a row of weights summing to 0 (row {bad}); every row "
            "needs positive total weight to be normalised into targets"
        )
    raise ValueError(
        "kernel produced a column of weights summing to 0; the teacher-to-student direction "
        "needs every column to have positive total weight"
    )


def target_matrix(
    teacher_embeddings: torch.Tensor, kernel: KernelLike = DEFAULT_KERNEL
) -> torch.Tensor:
    """Row-normalised ``(N, N)`` CWCL targets for a teacher batch.

    ``t_ij = w_ij / sum_k w_ik`` with ``w`` from :func:`kernel_weights`: row
    ``i`` is the target distribution over teachers ``j`` for student ``i``.
    With ``kernel="identity"`` it is the identity matrix (plain contrastive
    learning). Computed under :func:`torch.no_grad` in float32 (float64 for
    float64 input).

    Parameters
    ----------
    teacher_embeddings : torch.Tensor of shape (N, d)
        Teacher embeddings; need not be normalised.
    kernel : str, WeightKernel, callable or (N, N) array, default="capped-exp"
        See :func:`resolve_kernel`.

    Returns
    -------
    torch.Tensor of shape (N, N)
        Non-negative targets whose rows sum to 1.

    Raises
    ------
    ValueError
        As :func:`kernel_weights`.

    Examples
    --------
    >>> import torch
    >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> target_matrix(q, "linear")
    tensor([[0.6667, 0.3333],
            [0.3333, 0.6667]])
    >>> target_matrix(q, "identity")
    tensor([[1., 0.],
            [0., 1.]])
    """
    weights = kernel_weights(teacher_embeddings, kernel)  # (batch_size, batch_size)
    return weights / weights.sum(dim=1, keepdim=True)  # (batch_size, batch_size)
