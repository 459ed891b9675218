"""Retrieval metrics in the shared embedding space."""

from __future__ import annotations

import numpy as np

__all__ = ["recall_at_k"]


def recall_at_k(query_embeddings, candidate_embeddings, target_indices, k: int = 1) -> float:
    """Fraction of queries whose correct candidate is among their ``k`` nearest.

    Similarity is the dot product, i.e. cosine similarity for unit-norm embeddings (what
    ``CWCLAligner.transform`` and ``CWCLAligner.embed_teacher`` return). Ties are broken in
    favour of the lower candidate index, as ``numpy.argsort`` does.

    Parameters
    ----------
    query_embeddings : array-like of shape (n_queries, dim)
        E.g. student embeddings of speech clips.
    candidate_embeddings : array-like of shape (n_candidates, dim)
        E.g. teacher embeddings of the distinct transcripts.
    target_indices : array-like of shape (n_queries,)
        Index of each query's correct candidate.
    k : int, default=1

    Returns
    -------
    recall : float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from cwcl_sk.metrics import recall_at_k
    >>> queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> recall_at_k(queries, queries, [0, 1])
    1.0
    >>> recall_at_k(queries, queries, [1, 1])
    0.5
    """
    queries = np.asarray(query_embeddings, dtype=np.float32)
    candidates = np.asarray(candidate_embeddings, dtype=np.float32)
    targets = np.asarray(target_indices)
    if queries.ndim != 2 or candidates.ndim != 2 or queries.shape[1] != candidates.shape[1]:
        raise ValueError(
            "query_embeddings and candidate_embeddings must be 2-D with the same width, got "
            f"{queries.shape} and {candidates.shape}."
        )
    if targets.shape != (len(queries),):
        raise ValueError(
            f"target_indices must have one entry per query ({len(queries)}), got {targets.shape}."
        )
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    similarity = queries @ candidates.T  # (n_queries, n_candidates)
    correct = similarity[np.arange(len(queries)), targets]
    # Rank of the correct candidate: how many score strictly higher, plus earlier ties.
    higher = (similarity > correct[:, None]).sum(axis=1)
    earlier_ties = np.array(
        [(similarity[row, : targets[row]] == correct[row]).sum() for row in range(len(queries))]
    )
    return float(np.mean(higher + earlier_ties < k))
