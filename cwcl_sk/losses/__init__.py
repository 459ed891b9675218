"""Contrastive objectives: CWCL and the standard contrastive (CLIP/LiT) loss.

A trainable student produces embeddings ``p_i`` and a frozen teacher produces
embeddings ``q_i`` for the same ``N`` items. With L2-normalised embeddings,
``s_ij = <p_i, q_j>`` and temperature ``tau``:

- contrastive learning (CL; CLIP, Radford et al., 2021 [2]_; LiT, Zhai et al., 2022 [3]_)
  treats ``(p_i, q_i)`` as the only positive pair,
  ``L = -1/N sum_i log softmax_j(s_ij / tau)[i]``;
- CWCL (Srinivasa et al., 2023 [1]_) gives every pair a continuous target weight
  ``w_ij`` derived from the teacher's own similarities ``<q_i, q_j>``,
  ``L = -1/N sum_i sum_j w_ij / (sum_k w_ik) * log softmax_j(s_ij / tau)``.

Each loss comes as a function (:func:`cwcl_loss`, :func:`contrastive_loss`) and as a
``torch.nn.Module`` for plain PyTorch training loops (:class:`CWCLLoss`,
:class:`ContrastiveLoss`), which compute the same values and gradients. ``direction`` is one
of ``DIRECTIONS``: ``"student_to_teacher"`` (a softmax over the teachers for each student),
``"teacher_to_student"`` (over the students for each teacher) or ``"both"`` (their mean).

References
----------
.. [1] Srinivasa, R. S., Cho, J., Yang, C., Saidutta, Y. M., Lee, C.-H.,
   Shen, Y., & Jin, H. (2023). CWCL: Cross-Modal Transfer with Continuously
   Weighted Contrastive Loss. NeurIPS 2023. arXiv:2309.14580.
.. [2] Radford, A. et al. (2021). Learning Transferable Visual Models From
   Natural Language Supervision. ICML 2021. arXiv:2103.00020.
.. [3] Zhai, X. et al. (2022). LiT: Zero-Shot Transfer with Locked-image text
   Tuning. CVPR 2022. arXiv:2111.07991.
"""

from . import _arguments
from .contrastive import ContrastiveLoss
from .cwcl import CWCLLoss
from .functional import contrastive_loss, cwcl_loss, soft_cross_entropy

DIRECTIONS: tuple[str, ...] = _arguments.DIRECTIONS
"""Accepted values of the ``direction`` argument."""

__all__ = [
    "DIRECTIONS",
    "CWCLLoss",
    "ContrastiveLoss",
    "contrastive_loss",
    "cwcl_loss",
    "soft_cross_entropy",
]

# Documented, pickled and shown under the public path, as numpy's ``set_module`` does: the
# files they are defined in are an implementation detail.
for _public in (CWCLLoss, ContrastiveLoss, contrastive_loss, cwcl_loss, soft_cross_entropy):
    _public.__module__ = __name__
del _public
