"""CWCLLoss: the Continuously Weighted Contrastive Loss as a ``torch.nn.Module``."""

from __future__ import annotations

import torch

from ..kernels import DEFAULT_KERNEL, KernelLike, resolve_kernel
from ._pair_loss import PairLoss
from .functional import cwcl_loss

__all__ = ["CWCLLoss"]


class CWCLLoss(PairLoss):
    """Continuously Weighted Contrastive Loss, for plain PyTorch training loops.

    Computes :func:`~cwcl_sk.losses.cwcl_loss` of a batch of student embeddings against the
    teacher's embeddings of the same items: a softmax over the batch whose targets are the
    teacher's own similarities shaped by ``kernel``, instead of contrastive learning's
    one-hot targets. The weights come from the teacher alone and carry no gradient.

    Parameters
    ----------
    kernel : str, WeightKernel, callable or (N, N) array, default="capped-exp"
        Maps teacher similarities to target weights; see
        :func:`cwcl_sk.kernels.resolve_kernel`. A name is checked here.
    temperature : float or 0-dim torch.Tensor, default=0.07
        Softmax temperature, finite and > 0; with ``learn_temperature=True``, its start.
    direction : {"both", "student_to_teacher", "teacher_to_student"}, default="both"
        Which softmax direction(s) to use, as in :func:`~cwcl_sk.losses.cwcl_loss`.
    learn_temperature : bool, default=False
        Learn the temperature, as CLIP does: the module gets one parameter, ``logit_scale``
        = log(1 / temperature), to hand to the optimiser with the student's. Clamp it after
        each step (CLIP keeps it at most log(100)).

    Attributes
    ----------
    temperature : float or 0-dim torch.Tensor
        The temperature of the next forward pass (a tensor with gradient when learned).
    logit_scale : torch.nn.Parameter
        log(1 / temperature); only with ``learn_temperature=True``.

    See Also
    --------
    cwcl_sk.losses.cwcl_loss : the same loss as a function.
    cwcl_sk.losses.ContrastiveLoss : the contrastive (CLIP / LiT) baseline.

    References
    ----------
    .. [1] Srinivasa, R. S., Cho, J., Yang, C., Saidutta, Y. M., Lee, C.-H., Shen, Y., &
       Jin, H. (2023). CWCL: Cross-Modal Transfer with Continuously Weighted Contrastive
       Loss. NeurIPS 2023. arXiv:2309.14580.

    Examples
    --------
    >>> import torch
    >>> loss_fn = CWCLLoss(kernel="capped-exp", temperature=0.07, direction="both")
    >>> student = torch.randn(8, 16, requires_grad=True)
    >>> teacher = torch.randn(8, 16)
    >>> loss = loss_fn(student, teacher)
    >>> loss.backward()
    >>> student.grad.shape
    torch.Size([8, 16])
    """

    def __init__(
        self,
        kernel: KernelLike = DEFAULT_KERNEL,
        temperature: float | torch.Tensor = 0.07,
        direction: str = "both",
        learn_temperature: bool = False,
    ) -> None:
        super().__init__(temperature, direction, learn_temperature)
        resolve_kernel(kernel)  # an unknown name or type fails here, not at the first batch
        self.kernel = kernel

    def _loss(self, student_embeddings, teacher_embeddings, temperature) -> torch.Tensor:
        return cwcl_loss(
            student_embeddings, teacher_embeddings, temperature, self.kernel, self.direction
        )

    def extra_repr(self) -> str:
        return f"kernel={self.kernel!r}, {super().extra_repr()}"
