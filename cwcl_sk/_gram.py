"""The teacher's self-similarity ``q @ q.T``, exactly symmetric, at a fraction of a product's cost.

CWCL multiplies one matrix more per step than contrastive learning: the teacher's ``(N, N)``
similarity matrix, from which the targets come. It is symmetric, so half of a general matrix
product computes numbers the other half already has. PyTorch has no symmetric rank-k update
(BLAS ``syrk``), so on the CPU the product is assembled from blocks instead: split the rows in
two, compute the two diagonal blocks the same way, the lower off-diagonal block as one product,
and copy its transpose into the upper. Every block is an ordinary matrix product, so PyTorch's
BLAS still does the work.
"""

from __future__ import annotations

import torch

#: Rows below which a diagonal block is one matrix product. Smaller blocks save multiplies
#: but run BLAS at lower efficiency and add copies; at N=2048, d=384 on one CPU thread, 512
#: took 0.77 of a full product's time, 256 and 1024 more.
_LEAF_ROWS = 512


def _symmetrised(square: torch.Tensor) -> torch.Tensor:
    """``(square + square.T) / 2``: floating-point addition commutes, so the result is exact."""
    return (square + square.T).mul_(0.5)


def symmetric_gram(rows: torch.Tensor) -> torch.Tensor:
    """``rows @ rows.T``, equal to its own transpose bit for bit.

    On the CPU, built from blocks: the upper off-diagonal block of each split is a copy of the
    lower one, so at N=2048 it takes about 5/8 of a full product's multiplies. On other devices
    one full product, averaged with its transpose: there the product is cheap next to a kernel
    launch, so several small ones would cost more than they save.

    Parameters
    ----------
    rows : torch.Tensor of shape (N, d)
        Floating-point rows, typically L2-normalised teacher embeddings.

    Returns
    -------
    torch.Tensor of shape (N, N)
        The Gram matrix, in the dtype and on the device of ``rows``.

    Examples
    --------
    >>> import torch
    >>> rows = torch.randn(1500, 8, dtype=torch.float64)
    >>> gram = symmetric_gram(rows)
    >>> torch.equal(gram, gram.T), torch.allclose(gram, rows @ rows.T)
    (True, True)
    """
    n_rows = rows.shape[0]
    if rows.device.type != "cpu" or n_rows <= _LEAF_ROWS:
        return _symmetrised(rows @ rows.T)
    gram = rows.new_empty((n_rows, n_rows))
    pending = [(0, n_rows)]  # row ranges whose diagonal block is still to fill
    while pending:
        low, high = pending.pop()
        if high - low <= _LEAF_ROWS:
            block = rows[low:high]  # (n_block, d)
            gram[low:high, low:high] = _symmetrised(block @ block.T)
            continue
        middle = (low + high) // 2
        lower = gram[middle:high, low:middle]  # (n_high, n_low), a view
        torch.mm(rows[middle:high], rows[low:middle].T, out=lower)
        gram[low:middle, middle:high] = lower.T
        pending += [(low, middle), (middle, high)]
    return gram
