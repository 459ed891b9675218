"""Input validation messages and the retrieval metric."""

import numpy as np
import pytest
import scipy.sparse

from cwcl_sk import recall_at_k
from cwcl_sk.inputs import check_features, check_texts, unique_rows


@pytest.mark.parametrize(
    ("X", "error", "message"),
    [
        (np.ones(5), ValueError, "2-D array.*Reshape your data"),
        (np.ones((2, 3, 4)), ValueError, "got 3-D"),
        (np.ones((0, 3)), ValueError, "0 sample"),
        (np.ones((3, 0)), ValueError, "0 feature"),
        (np.array([[1.0, np.nan]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf]]), ValueError, "inf"),
        (np.array([[1 + 2j, 0]]), ValueError, "Complex data not supported"),
        (np.array([["a", "b"]], dtype=object), TypeError, "not numbers"),
        ("not an array", TypeError, "string"),
        (None, ValueError, "None"),
        (scipy.sparse.eye(3).tocsr(), TypeError, "sparse"),
        ([[1.0, 2.0], [3.0]], ValueError, "could not be read"),
    ],
)
def test_bad_features_raise_naming_x(X, error, message):
    with pytest.raises(error, match=message) as raised:
        check_features(X)
    assert "X" in str(raised.value)


def test_features_are_float32_and_contiguous():
    features = check_features(np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)))
    assert features.dtype == np.float32
    assert features.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(
    ("y", "error", "message"),
    [
        ("one string", TypeError, "single string"),
        ([], ValueError, "empty"),
        (["ok", 3], TypeError, r"y\[1\] is int"),
        (["ok", "  "], ValueError, r"y\[1\] is an empty string"),
        (np.array([["a"], ["b"]]), ValueError, "1-D"),
        (5, TypeError, "sequence of strings"),
    ],
)
def test_bad_texts_raise_naming_y(y, error, message):
    with pytest.raises(error, match=message):
        check_texts(y)


def test_unique_rows_keeps_first_appearance_order():
    uniques, inverse = unique_rows(["b", "a", "b", "c"])
    assert uniques == ["b", "a", "c"]
    assert inverse.tolist() == [0, 1, 0, 2]


def test_unique_rows_compares_array_rows_by_value():
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    uniques, inverse = unique_rows(rows)
    assert len(uniques) == 2
    assert inverse.tolist() == [0, 1, 0]


def test_recall_at_k_counts_correct_candidates_in_top_k():
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    candidates = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert recall_at_k(queries, candidates, [0, 1, 0], k=1) == pytest.approx(2 / 3)
    assert recall_at_k(queries, candidates, [0, 1, 0], k=2) == 1.0


def test_recall_at_k_breaks_ties_against_later_candidates():
    queries = np.array([[1.0, 0.0]])
    candidates = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert recall_at_k(queries, candidates, [0]) == 1.0
    assert recall_at_k(queries, candidates, [1]) == 0.0


def test_recall_at_k_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same width"):
        recall_at_k(np.ones((2, 3)), np.ones((2, 4)), [0, 1])
    with pytest.raises(ValueError, match="one entry per query"):
        recall_at_k(np.ones((2, 3)), np.ones((2, 3)), [0])
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(np.ones((2, 3)), np.ones((2, 3)), [0, 1], k=0)
