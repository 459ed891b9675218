"""Diagnostics: see a configuration that cannot learn before training, and say so after.

When soft targets spread over most of a batch, the loss starts at its floor (about log N)
and the student can learn nothing: the paper's linear kernel does this with modern sentence
encoders. These statistics describe a target matrix in three numbers. After training,
:func:`degenerate_training_messages` names a run that learned nothing or went backwards.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from .inputs import unique_float_rows
from .kernels import DEFAULT_KERNEL, target_matrix
from .objective import batch_targets, is_kernel_matrix

__all__ = [
    "batch_target_statistics",
    "check_pairs_learnable",
    "degenerate_training_messages",
    "kernel_diagnostics",
    "looks_collapsed",
    "target_statistics",
    "warn_if_collapsed",
    "warn_if_degenerate",
]


def target_statistics(targets: torch.Tensor) -> dict:
    """Summarise a row-normalised (N, N) target matrix.

    Parameters
    ----------
    targets : torch.Tensor of shape (N, N)
        Rows sum to 1 (e.g. :func:`cwcl_sk.kernels.target_matrix`).

    Returns
    -------
    statistics : dict
        ``diagonal_mass``: mean target on the matching pair (1 for CL);
        ``effective_positives``: mean over rows of ``exp(entropy)``, the number of items a
        row effectively treats as positives (1 for CL, N for uniform targets);
        ``relative_entropy``: mean entropy divided by ``log N`` (0 for CL, 1 for uniform;
        0 when N = 1); ``batch_size``: N.

    Examples
    --------
    >>> import torch
    >>> target_statistics(torch.eye(4))["effective_positives"]
    1.0
    >>> round(target_statistics(torch.full((4, 4), 0.25))["relative_entropy"], 3)
    1.0
    """
    targets = targets.detach().double()
    n_items = targets.shape[0]
    log_targets = torch.log(targets.clamp_min(1e-300))
    entropy = -(targets * log_targets).sum(dim=1)  # (N,)
    return {
        "diagonal_mass": float(torch.diagonal(targets).mean()),
        "effective_positives": float(entropy.exp().mean()),
        "relative_entropy": float(entropy.mean() / math.log(n_items)) if n_items > 1 else 0.0,
        "batch_size": int(n_items),
    }


def kernel_diagnostics(
    teacher_embeddings,
    kernel=DEFAULT_KERNEL,
    batch_size: int = 128,
    n_batches: int = 8,
    random_state=0,
) -> dict:
    """Average :func:`target_statistics` over random batches of distinct teacher embeddings.

    Repeated teacher items (many clips of one transcript) are legitimate positives of each
    other under any kernel; they are a property of the data, not of the kernel. So batches are
    drawn from the distinct rows: the statistics say how the kernel treats *different* items,
    which is what decides whether its targets collapse.

    Parameters
    ----------
    teacher_embeddings : array-like of shape (n_samples, dim)
        The teacher's embeddings of the training pairs; repeated rows are counted once.
    kernel : str, WeightKernel or callable, default="capped-exp"
    batch_size : int, default=128
    n_batches : int, default=8
    random_state : int or None, default=0

    Returns
    -------
    statistics : dict
        The averaged statistics.
    """
    distinct, _ = unique_float_rows(np.asarray(teacher_embeddings, dtype=np.float32))
    embeddings = torch.as_tensor(distinct)
    rng = np.random.default_rng(random_state)
    size = min(batch_size, len(embeddings))
    rows = []
    for _ in range(n_batches):
        indices = torch.from_numpy(rng.choice(len(embeddings), size=size, replace=False))
        rows.append(target_statistics(target_matrix(embeddings[indices], kernel)))
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def looks_collapsed(statistics: dict) -> bool:
    """True when targets are so flat that contrastive training will barely move.

    The rule: rows treat more than three quarters of the batch as positives, or the targets'
    entropy is above 95% of a uniform distribution's. The paper's linear kernel with
    all-MiniLM-L6-v2 on spoken requests gives 127 of 128 and 99.9%.
    """
    batch_size = statistics["batch_size"]
    if batch_size < 4:
        return False
    return (
        statistics["effective_positives"] > 0.75 * batch_size
        or statistics["relative_entropy"] > 0.95
    )


def batch_target_statistics(teacher_embeddings: torch.Tensor, indices, kernel) -> dict:
    """:func:`target_statistics` of :func:`cwcl_sk.objective.batch_targets` (same arguments).

    Used once an epoch by :class:`cwcl_sk.callbacks.TargetStatistics`.
    """
    return target_statistics(batch_targets(teacher_embeddings, indices, kernel))


def warn_if_collapsed(
    teacher_embeddings: np.ndarray,
    kernel,
    batch_size: int,
    random: np.random.RandomState,
    warn: bool = True,
) -> dict | None:
    """Measure the CWCL targets of a few batches and warn when they are near uniform.

    A kernel that spreads each row's target over most of the batch leaves the loss at its
    floor (about log N) and the student learns nothing; better to say so before training.

    Parameters
    ----------
    teacher_embeddings : ndarray of shape (n_samples, dim)
    kernel : str, WeightKernel or callable
        A matrix of weights is not measured.
    batch_size : int
    random : numpy.random.RandomState
        Draws the seed of the batches, only when they are measured.
    warn : bool, default=True
        False measures without warning (the processes of a distributed run but one).

    Returns
    -------
    statistics : dict or None
        :func:`kernel_diagnostics` over 4 batches; None for a kernel matrix or fewer than
        4 pairs.
    """
    if is_kernel_matrix(kernel) or len(teacher_embeddings) < 4:
        return None
    statistics = kernel_diagnostics(
        teacher_embeddings,
        kernel,
        batch_size=min(int(batch_size), len(teacher_embeddings)),
        n_batches=4,
        random_state=int(random.randint(2**31 - 1)),
    )
    if warn and looks_collapsed(statistics):
        warnings.warn(
            f"kernel={kernel!r} gives near-uniform CWCL targets on these teacher "
            f"embeddings: each row treats {statistics['effective_positives']:.1f} of "
            f"{statistics['batch_size']:.0f} distinct items as positives (entropy "
            f"{statistics['relative_entropy']:.0%} of uniform), so the loss starts at its "
            f"floor and the student may learn little. Try {_sharper_options(kernel)}.",
            UserWarning,
            stacklevel=3,
        )
    return statistics


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


def check_pairs_learnable(n_pairs: int, batch_size: int) -> None:
    """Refuse ``batch_size=1``, and warn about a single pair: neither can learn anything.

    A batch of one pair has no negatives, so its loss is 0 whatever the weights are.
    ``batch_size=1`` is a setting that never learns, so it raises; a single pair is data (a
    tiny fold, the last scrap of a stream), so it warns and training goes ahead.

    Parameters
    ----------
    n_pairs : int
        Training pairs (after any validation pairs are held out).
    batch_size : int

    Raises
    ------
    ValueError
        For ``batch_size`` below 2, saying what to change.
    """
    if int(batch_size) < 2:
        raise ValueError(
            f"batch_size={batch_size}: a contrastive batch of 1 pair has no negatives, so "
            "the loss is 0 and the student learns nothing. Use batch_size >= 2 (32 to 256 "
            "is typical)."
        )
    if n_pairs < 2:
        warnings.warn(
            f"X and y hold {n_pairs} sample pair(s) to train on (after any validation pairs "
            "are held out): a pair learns by being told apart from the others, so the loss "
            "is 0 and the student learns nothing. Train on at least 2 pairs (many more in "
            "practice).",
            UserWarning,
            stacklevel=4,
        )


def _training_loss_floor(n_pairs: int, batch_size: int) -> float:
    """The loss of a student that tells no pair of a batch apart: log of the batch size."""
    n_batches = math.ceil(n_pairs / batch_size)
    return math.log(n_pairs / n_batches)  # batches are of near-equal sizes


def degenerate_training_messages(
    records: list,
    embeddings: np.ndarray,
    *,
    n_pairs: int,
    batch_size: int,
    learning_rate: float,
    input_magnitude: float | None = None,
    targets_collapsed: bool = False,
) -> list[str]:
    """What went wrong in a training run that learned nothing or went backwards.

    Parameters
    ----------
    records : list of dict
        The history records of the run (``train_loss`` each).
    embeddings : ndarray of shape (n_sampled, dim)
        The trained student's embeddings of some training inputs.
    n_pairs, batch_size : int
        Training pairs and the contrastive batch size.
    learning_rate : float
    input_magnitude : float, optional
        The largest absolute input value, for feature rows.
    targets_collapsed : bool, default=False
        The CWCL targets were already found near uniform (and warned about) before training:
        a loss at its floor is then the kernel's doing.

    Returns
    -------
    messages : list of str
        Empty for a run that looks healthy. Checked: the student maps every input to nearly
        one point; the loss ends at its floor, log of the batch size (the loss of a student
        that tells no pair apart), to within 0.1%; the loss ends above where it began.
    """
    messages = []
    rows = embeddings.astype(np.float64)
    spread = float(np.linalg.norm(rows - rows.mean(axis=0), axis=1).mean()) if len(rows) else 1.0
    if len(rows) >= 2 and not spread > 1e-3:
        advice = (
            f"Try a lower learning_rate (now {learning_rate:g}), and check that the inputs "
            "are scaled to values around 1."
        )
        if input_magnitude is not None and not 1e-6 < input_magnitude < 1e6:
            advice = (
                f"Its inputs reach {input_magnitude:.1e} in magnitude: scale them to values "
                "around 1 (e.g. sklearn.preprocessing.StandardScaler)."
            )
        messages.append(
            f"The trained student maps all {len(rows)} training inputs it was checked on to "
            f"nearly one embedding (mean distance to their mean {spread:.1e}), so it tells "
            f"nothing apart. {advice}"
        )
    losses = [record["train_loss"] for record in records]
    if not losses:
        return messages
    floor = _training_loss_floor(n_pairs, min(int(batch_size), n_pairs))
    # Pinned to the floor, not near it: a short run of a small model that has barely
    # started to learn ends within a percent of it, a collapsed one within rounding.
    if floor > 0 and not targets_collapsed and abs(losses[-1] - floor) <= 1e-3 * floor:
        messages.append(
            f"The training loss ended at {losses[-1]:.4f}, the loss of a student that tells no "
            f"pair of a batch apart (log of the batch size, {floor:.4f}): the model collapsed, "
            "or its pairs cannot be told apart (all teacher-side items alike). "
            f"Try a lower learning_rate (now {learning_rate:g}), warmup_fraction=0.1, or "
            "lr_schedule='cosine'."
        )
    if len(losses) >= 2 and losses[-1] > losses[0]:
        messages.append(
            f"The training loss rose over the run, from {losses[0]:.4f} (epoch "
            f"{records[0]['epoch']}) to {losses[-1]:.4f} (epoch {records[-1]['epoch']}). Try a "
            f"lower learning_rate (now {learning_rate:g}), warmup_fraction=0.1 or "
            "lr_schedule='cosine'; for a pretrained student, a smaller rate still (1e-5)."
        )
    return messages


def warn_if_degenerate(records: list, embeddings: np.ndarray, **context) -> list[str]:
    """Warn with each of :func:`degenerate_training_messages` (same arguments); return them."""
    messages = degenerate_training_messages(records, embeddings, **context)
    for message in messages:
        # Above: the estimator's _warn_if_degenerate, its _train and fit; then the caller.
        warnings.warn(message, UserWarning, stacklevel=5)
    return messages
