"""The losses as functions of two batches of embeddings: CWCL, CL and soft cross-entropy.

:class:`~cwcl_sk.losses.CWCLLoss` and :class:`~cwcl_sk.losses.ContrastiveLoss` wrap
:func:`cwcl_loss` and :func:`contrastive_loss` as ``torch.nn.Module`` objects.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._embedding_batches import autocast_disabled, compute_dtype
from ..kernels import DEFAULT_KERNEL, KernelLike, kernel_weights_with_sums
from ._arguments import check_direction, check_pair, check_temperature, direction_terms
from ._two_way import TwoWaySoftCrossEntropy

__all__ = ["contrastive_loss", "cwcl_loss", "soft_cross_entropy"]


def _logits(
    student_embeddings: torch.Tensor,
    teacher_embeddings: torch.Tensor,
    temperature: float | torch.Tensor,
) -> torch.Tensor:
    """``(N, N)`` cosine-similarity logits ``<p_i, q_j> / tau`` in the compute dtype."""
    # Half-precision log-softmax over a batch loses the small differences that
    # carry the signal; upcasting here still sends gradients back in the input dtype.
    dtype = compute_dtype(student_embeddings.dtype, teacher_embeddings.dtype)
    p = F.normalize(student_embeddings.to(dtype), dim=1)  # (N, d)
    q = F.normalize(teacher_embeddings.to(dtype), dim=1)  # (N, d)
    if isinstance(temperature, torch.Tensor):
        temperature = temperature.to(dtype=dtype, device=p.device)
    # Scaling the (N, d) factor instead of the (N, N) product saves a pass over
    # the batch matrix, forward and backward.
    return (p / temperature) @ q.T  # (batch_size, batch_size)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of row-wise soft targets, averaged over rows.

    ``-1/N sum_i sum_j targets_ij * log softmax_j(logits_ij)``, i.e.
    ``-(targets * log_softmax(logits, dim=1)).sum(1).mean()``. Uses
    :func:`torch.log_softmax`, so it is stable for large logits.

    Parameters
    ----------
    logits : torch.Tensor of shape (N, M)
        Unnormalised scores; row ``i`` is a distribution over ``M`` classes.
    targets : torch.Tensor of shape (N, M)
        Target distributions; each row should sum to 1.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> logits = torch.zeros(2, 4)
    >>> round(float(soft_cross_entropy(logits, torch.full((2, 4), 0.25))), 4)  # log 4
    1.3863
    """
    log_probs = torch.log_softmax(logits, dim=1)  # (N, M)
    return -(targets * log_probs).sum(dim=1).mean()


def cwcl_loss(
    student_embeddings: torch.Tensor,
    teacher_embeddings: torch.Tensor,
    temperature: float | torch.Tensor = 0.07,
    kernel: KernelLike = DEFAULT_KERNEL,
    direction: str = "both",
) -> torch.Tensor:
    """Continuously Weighted Contrastive Loss (Srinivasa et al., 2023).

    Both inputs are L2-normalised internally, so the loss depends only on
    cosine similarities. With ``s_ij = <p_i, q_j> / tau`` and kernel weights
    ``w_ij = kernel(<q_i, q_j>)`` (see :func:`cwcl_sk.kernels.kernel_weights`):

    - ``"student_to_teacher"`` (rows): for each student ``i``, a softmax over
      teachers ``j`` against row-normalised targets,
      ``L_s2t = -1/N sum_i sum_j (w_ij / sum_k w_ik) log softmax_j(s_ij)``;
    - ``"teacher_to_student"`` (columns): for each teacher ``j``, a softmax over
      students ``i`` against column-normalised targets,
      ``L_t2s = -1/N sum_j sum_i (w_ij / sum_k w_kj) log softmax_i(s_ij)``;
    - ``"both"``: ``(L_s2t + L_t2s) / 2``.

    For symmetric kernels (every built-in one but ``"mixture"``, whose soft part
    is row-normalised) the row- and column-normalised targets are transposes of
    each other. With ``kernel="identity"`` the loss
    equals :func:`contrastive_loss`. The weights are computed once, under
    :func:`torch.no_grad`, from the teacher only: no gradient flows through
    them, although gradients do flow to ``teacher_embeddings`` through the
    logits if it requires grad.

    Logits are computed in float32 (float64 if an input is float64), with
    autocast disabled, so bfloat16/float16 inputs give a stable float32 loss;
    gradients reach the inputs in their own dtype. The backward pass uses the
    closed form ``(softmax - targets) / N`` (second derivatives, with
    ``create_graph=True``, are supported too).

    Parameters
    ----------
    student_embeddings : torch.Tensor of shape (N, d)
        Trainable student embeddings ``p``, floating point.
    teacher_embeddings : torch.Tensor of shape (N, d)
        Teacher embeddings ``q`` for the same items, floating point.
    temperature : float or 0-dim torch.Tensor, default=0.07
        Softmax temperature ``tau``, finite and > 0. A tensor requiring grad
        makes the temperature learnable.
    kernel : str, WeightKernel, callable or (N, N) array, default="capped-exp"
        Maps teacher similarities to weights; see
        :func:`cwcl_sk.kernels.resolve_kernel`. ``"capped-exp"``
        (:class:`~cwcl_sk.kernels.CappedExpKernel`) is the default because the
        paper's ``"linear"`` kernel yields near-uniform targets with modern
        encoders, and a fixed-``kappa`` ``"exp"`` blurs classes whose captions the
        teacher finds alike.
    direction : {"both", "student_to_teacher", "teacher_to_student"}, default="both"
        Which softmax direction(s) to use.

    Returns
    -------
    torch.Tensor
        Non-negative scalar loss, float32 (float64 for float64 inputs).

    Raises
    ------
    TypeError
        If an embedding argument is not a floating-point tensor.
    ValueError
        If the embeddings are not 2-D with matching ``N >= 1`` and ``d``, the
        temperature is not finite and positive, ``direction`` is unknown, or
        the kernel gives invalid weights.

    See Also
    --------
    contrastive_loss : the CL/CLIP/LiT baseline.
    cwcl_sk.kernels.target_matrix : the row-normalised targets.

    References
    ----------
    .. [1] Srinivasa, R. S. et al. (2023). CWCL: Cross-Modal Transfer with
       Continuously Weighted Contrastive Loss. NeurIPS 2023. arXiv:2309.14580.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> student = torch.randn(8, 16, requires_grad=True)
    >>> teacher = torch.randn(8, 16)
    >>> loss = cwcl_loss(student, teacher, temperature=0.07, kernel="exp")
    >>> loss.shape, loss.dtype
    (torch.Size([]), torch.float32)
    >>> loss.backward()
    >>> student.grad.shape
    torch.Size([8, 16])
    >>> same = cwcl_loss(student, teacher, kernel="identity")
    >>> torch.allclose(same, contrastive_loss(student, teacher))
    True
    """
    check_pair(student_embeddings, teacher_embeddings)
    check_temperature(temperature)
    check_direction(direction)

    with autocast_disabled(student_embeddings.device):
        return _cwcl_loss(student_embeddings, teacher_embeddings, temperature, kernel, direction)


def _cwcl_loss(
    student_embeddings: torch.Tensor,
    teacher_embeddings: torch.Tensor,
    temperature: float | torch.Tensor,
    kernel: KernelLike,
    direction: str,
) -> torch.Tensor:
    """:func:`cwcl_loss` on validated arguments."""
    logits = _logits(student_embeddings, teacher_embeddings, temperature)  # (N, N)
    rows, columns = direction_terms(direction)
    weights, row_sums, col_sums = kernel_weights_with_sums(teacher_embeddings, kernel, columns)
    if weights.dtype != logits.dtype:  # float64 students: sum the upcast weights again
        weights = weights.to(logits.dtype)  # (N, N)
        row_sums = weights.sum(dim=1)
        col_sums = weights.sum(dim=0) if columns else None
    inv_row_sums = row_sums.reciprocal() if rows else None
    inv_col_sums = col_sums.reciprocal() if columns else None
    scale = 0.5 if rows and columns else 1.0
    return TwoWaySoftCrossEntropy.apply(logits, weights, inv_row_sums, inv_col_sums, scale)


def contrastive_loss(
    student_embeddings: torch.Tensor,
    teacher_embeddings: torch.Tensor,
    temperature: float | torch.Tensor = 0.07,
    direction: str = "both",
) -> torch.Tensor:
    """Standard contrastive (InfoNCE) loss of CLIP and LiT.

    Both inputs are L2-normalised internally, so the loss depends only on
    cosine similarities. With ``s_ij = <p_i, q_j> / tau``, pair ``(i, i)`` is
    the only positive:

    - ``"student_to_teacher"``: ``L_s2t = -1/N sum_i log softmax_j(s_ij)[i]``;
    - ``"teacher_to_student"``: ``L_t2s = -1/N sum_j log softmax_i(s_ij)[j]``;
    - ``"both"``: ``(L_s2t + L_t2s) / 2`` (the symmetric CLIP loss).

    This is :func:`cwcl_loss` with ``kernel="identity"``, computed via
    :func:`torch.nn.functional.cross_entropy` with ``arange`` labels. With
    a frozen teacher it is LiT (Zhai et al., 2022); with both towers trained
    it is CLIP (Radford et al., 2021). Logits are computed in float32 (float64
    for float64 inputs), with autocast disabled.

    Parameters
    ----------
    student_embeddings : torch.Tensor of shape (N, d)
        Student embeddings ``p``, floating point.
    teacher_embeddings : torch.Tensor of shape (N, d)
        Teacher embeddings ``q`` for the same items, floating point.
    temperature : float or 0-dim torch.Tensor, default=0.07
        Softmax temperature ``tau``, finite and > 0; a tensor requiring grad
        makes it learnable.
    direction : {"both", "student_to_teacher", "teacher_to_student"}, default="both"
        Which softmax direction(s) to use.

    Returns
    -------
    torch.Tensor
        Non-negative scalar loss, float32 (float64 for float64 inputs).

    Raises
    ------
    TypeError, ValueError
        As :func:`cwcl_loss`.

    References
    ----------
    .. [1] Radford, A. et al. (2021). Learning Transferable Visual Models From
       Natural Language Supervision. ICML 2021. arXiv:2103.00020.
    .. [2] Zhai, X. et al. (2022). LiT: Zero-Shot Transfer with Locked-image
       text Tuning. CVPR 2022. arXiv:2111.07991.

    Examples
    --------
    >>> import torch
    >>> x = torch.eye(4)
    >>> float(contrastive_loss(x, x, temperature=1e-3))  # perfectly aligned
    0.0
    """
    check_pair(student_embeddings, teacher_embeddings)
    check_temperature(temperature)
    check_direction(direction)

    with autocast_disabled(student_embeddings.device):
        logits = _logits(student_embeddings, teacher_embeddings, temperature)  # (N, N)
        labels = torch.arange(logits.shape[0], device=logits.device)  # (N,)
        rows, columns = direction_terms(direction)
        if not columns:
            return F.cross_entropy(logits, labels)
        if not rows:
            return F.cross_entropy(logits.T, labels)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
