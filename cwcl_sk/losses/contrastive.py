"""ContrastiveLoss: the contrastive (InfoNCE) loss of CLIP and LiT as a ``torch.nn.Module``."""

from __future__ import annotations

import torch

from ._pair_loss import PairLoss
from .functional import contrastive_loss

__all__ = ["ContrastiveLoss"]


class ContrastiveLoss(PairLoss):
    """Contrastive (InfoNCE) loss of CLIP and LiT, for plain PyTorch training loops.

    Computes :func:`~cwcl_sk.losses.contrastive_loss`: for each student embedding a softmax
    over the batch's teacher embeddings (and the other way round) in which the matching pair
    is the only positive. It equals :class:`CWCLLoss` with ``kernel="identity"``.

    Parameters
    ----------
    temperature : float or 0-dim torch.Tensor, default=0.07
        Softmax temperature, finite and > 0; with ``learn_temperature=True``, its start.
    direction : {"both", "student_to_teacher", "teacher_to_student"}, default="both"
        Which softmax direction(s) to use; ``"both"`` is the symmetric CLIP loss.
    learn_temperature : bool, default=False
        Learn the temperature, as CLIP does, through the parameter ``logit_scale`` =
        log(1 / temperature); clamp it after each step (CLIP keeps it at most log(100)).

    Attributes
    ----------
    temperature, logit_scale
        As in :class:`CWCLLoss`.

    See Also
    --------
    cwcl_sk.losses.contrastive_loss : the same loss as a function.
    cwcl_sk.losses.CWCLLoss : the continuously weighted loss.

    References
    ----------
    .. [1] Radford, A. et al. (2021). Learning Transferable Visual Models From Natural
       Language Supervision. ICML 2021. arXiv:2103.00020.
    .. [2] Zhai, X. et al. (2022). LiT: Zero-Shot Transfer with Locked-image text Tuning.
       CVPR 2022. arXiv:2111.07991.

    Examples
    --------
    >>> import torch
    >>> x = torch.eye(4)
    >>> float(ContrastiveLoss(temperature=1e-3)(x, x))  # perfectly aligned
    0.0
    """

    def __init__(
        self,
        temperature: float | torch.Tensor = 0.07,
        direction: str = "both",
        learn_temperature: bool = False,
    ) -> None:
        super().__init__(temperature, direction, learn_temperature)

    def _loss(self, student_embeddings, teacher_embeddings, temperature) -> torch.Tensor:
        return contrastive_loss(student_embeddings, teacher_embeddings, temperature, self.direction)
