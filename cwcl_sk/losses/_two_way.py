"""The soft cross-entropy of a square logits matrix along its rows, its columns or both.

CWCL's two directions are one logits matrix read two ways: a softmax over each row (for each
student, over the teachers) and over each column (for each teacher, over the students). This
module computes both terms in one autograd function whose backward pass is the closed form.
"""

from __future__ import annotations

import torch

__all__ = ["TwoWaySoftCrossEntropy"]


def _log_softmax_parts(
    logits: torch.Tensor, dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``log_softmax(logits, dim)``, with the exponentials and sums that give ``softmax``.

    The same steps as PyTorch's log-softmax (shift by the maximum, exponentiate, sum, log), in
    elementwise passes and plain reductions that run at the same speed along either dim: on
    the CPU, PyTorch's own log-softmax along dim 0 takes twice its time along dim 1. The
    backward pass divides the kept exponentials by their sums instead of exponentiating the
    log-probabilities again.
    """
    shifted = logits - logits.amax(dim=dim, keepdim=True)  # (batch_size, batch_size)
    exps = shifted.exp()  # (batch_size, batch_size)
    sums = exps.sum(dim=dim, keepdim=True)  # (batch_size, 1) or (1, batch_size)
    return shifted.sub_(sums.log()), exps, sums


class TwoWaySoftCrossEntropy(torch.autograd.Function):
    """``scale * (L_rows + L_cols)`` on one square logits matrix, with a fused backward.

    With weights ``w``, ``L_rows = -1/N sum_ij (w_ij / r_i) log_softmax(logits, dim=1)_ij``
    and ``L_cols = -1/N sum_ij (w_ij / c_j) log_softmax(logits, dim=0)_ij``, where ``1 / r``
    and ``1 / c`` arrive as ``inv_row_sums`` and ``inv_col_sums``; ``None`` drops that term.
    The targets ``w / r`` and ``w / c`` are never built: each term scales the weights on the
    fly, which saves two (N, N) divisions and two (N, N) tensors.

    Autograd through log_softmax, a product and a sum makes about twice the passes over the
    (N, N) matrix that the closed-form gradient ``scale * (softmax - targets) / N`` needs,
    and at large N those passes decide whether CWCL costs noticeably more than plain
    contrastive learning.
    """

    @staticmethod
    def forward(ctx, logits, weights, inv_row_sums, inv_col_sums, scale):
        total = logits.new_zeros(())
        softmax_parts = []  # (exps, sums) per direction, None for a dropped one
        for dim, inv_sums in ((1, inv_row_sums), (0, inv_col_sums)):
            if inv_sums is None:
                softmax_parts += [None, None]
                continue
            log_probs, exps, sums = _log_softmax_parts(logits, dim)
            per_item = log_probs.mul_(weights).sum(dim=dim)  # (batch_size,)
            total = total + torch.dot(per_item, inv_sums)
            softmax_parts += [exps, sums]
        ctx.save_for_backward(logits, weights, inv_row_sums, inv_col_sums, *softmax_parts)
        ctx.scale = scale
        return total * (-scale / logits.shape[0])

    @staticmethod
    def backward(ctx, grad_output):
        logits, weights, inv_row_sums, inv_col_sums, *softmax_parts = ctx.saved_tensors
        scale = grad_output * (ctx.scale / logits.shape[0])
        directions = ((1, inv_row_sums, *softmax_parts[:2]), (0, inv_col_sums, *softmax_parts[2:]))
        if torch.is_grad_enabled():
            # create_graph=True: rebuild the gradient from the logits with
            # differentiable ops so that second derivatives are right too.
            grad = torch.zeros_like(logits)
            for dim, inv_sums, _, _ in directions:
                if inv_sums is not None:
                    targets = weights * inv_sums.unsqueeze(dim)  # (batch_size, batch_size)
                    grad = grad + (torch.softmax(logits, dim=dim) - targets)
            return grad * scale, None, None, None, None
        # d/dx of -<t, log_softmax(x)> is softmax(x) * sum(t) - t, and sum(t) = 1; the
        # scale rides on the (N,) vectors, so each direction costs two passes.
        grad = None
        for dim, inv_sums, exps, sums in directions:
            if inv_sums is None:
                continue
            if grad is None:
                grad = exps * (scale / sums)  # (batch_size, batch_size)
            else:
                grad.addcmul_(exps, scale / sums)
            grad.addcmul_(weights, (scale * inv_sums).unsqueeze(dim), value=-1.0)
        return grad, None, None, None, None
