"""Tests for cwcl_sk._gram: the teacher's self-similarity, exactly symmetric."""

import pytest
import torch

from cwcl_sk import _gram
from cwcl_sk._gram import symmetric_gram


@pytest.mark.parametrize("n_rows", [1, 7, 512, 513, 1100, 2049])
def test_symmetric_gram_is_the_product_and_its_own_transpose(n_rows):
    rows = torch.randn(n_rows, 16, generator=torch.Generator().manual_seed(n_rows))
    gram = symmetric_gram(rows.double())
    assert torch.equal(gram, gram.T)
    torch.testing.assert_close(gram, rows.double() @ rows.double().T, rtol=1e-12, atol=1e-12)
    single = symmetric_gram(rows)
    assert single.dtype == torch.float32 and torch.equal(single, single.T)
    torch.testing.assert_close(single, rows @ rows.T, rtol=1e-5, atol=1e-5)


def test_symmetric_gram_builds_large_batches_from_blocks(monkeypatch):
    calls = []
    product = torch.mm
    monkeypatch.setattr(
        torch, "mm", lambda *args, **kwargs: calls.append(1) or product(*args, **kwargs)
    )
    symmetric_gram(torch.randn(4 * _gram._LEAF_ROWS, 4))
    assert len(calls) == 3  # two splits; the four diagonal blocks use the @ operator
