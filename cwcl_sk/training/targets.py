"""The teacher's side of the training pairs: one embedding row per pair, gathered per batch.

Many pairs share a teacher-side item (a class caption, a transcript spoken by several
voices), so the rows are kept once per distinct item with each pair's position among them,
and a batch gathers its own. Kept in memory, the distinct rows sit on the training device;
memory-mapped from a file (a corpus larger than memory, see
:meth:`~cwcl_sk.encoders.teachers.FrozenTeacher.encode_unique_on_disk`), only a batch's rows
are read and moved to the device.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["PairEmbeddings"]


class PairEmbeddings:
    """``pairs[rows]``: the teacher's embeddings of the training pairs ``rows``.

    Parameters
    ----------
    unique : ndarray or numpy.memmap of shape (n_unique, dim)
        The embedding of every distinct teacher-side item.
    inverse : ndarray of shape (n_pairs,)
        ``unique[inverse[i]]`` is pair ``i``'s embedding.
    device : torch.device or str

    Attributes
    ----------
    on_disk : bool
        Whether the rows are read from a memory-mapped file, batch by batch.
    """

    def __init__(self, unique, inverse, device):
        self.device = torch.device(device)
        self.on_disk = isinstance(unique, np.memmap)
        inverse = torch.from_numpy(np.asarray(inverse, dtype=np.int64))
        if self.on_disk:
            self.unique, self.inverse = unique, inverse
        else:
            unique = np.asarray(unique, dtype=np.float32)
            self.unique = torch.from_numpy(unique).to(self.device)
            self.inverse = inverse.to(self.device)

    def __len__(self) -> int:
        return len(self.inverse)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.inverse), int(self.unique.shape[1]))

    def __getitem__(self, rows) -> torch.Tensor:
        """(len(rows), dim) float32 on :attr:`device`; ``rows`` an index array or tensor."""
        rows = torch.as_tensor(np.asarray(rows) if not isinstance(rows, torch.Tensor) else rows)
        if not self.on_disk:
            return self.unique[self.inverse[rows.to(self.device)]]
        positions = self.inverse[rows.cpu()].numpy()
        return torch.from_numpy(np.ascontiguousarray(self.unique[positions])).to(self.device)

    def distinct_sample(self, size: int, seed: int = 0) -> np.ndarray:
        """Up to ``size`` distinct rows (all of them when there are fewer), as an array.

        Enough for statistics of the targets (:func:`~cwcl_sk.diagnostics.warn_if_collapsed`)
        without reading a memory-mapped corpus whole.
        """
        n_unique = int(self.unique.shape[0])
        if n_unique <= size:
            chosen = np.arange(n_unique)
        else:
            chosen = np.sort(np.random.default_rng(seed).choice(n_unique, size, replace=False))
        rows = self.unique[chosen]
        rows = rows.cpu().numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)
        return rows.astype(np.float32, copy=False)
