"""Texts the teacher cannot read whole, and teacher-cache entries that cannot be trusted."""

import warnings

import numpy as np
import pytest
from transformers import AutoTokenizer

from cwcl_sk import CWCLAligner, clear_teacher_cache
from cwcl_sk._cache_entries import FORMAT_VERSION, read_entry, write_entry
from cwcl_sk.encoders import bundled_minilm_path
from cwcl_sk.inputs import check_texts, count_truncated_texts, warn_truncated_texts

FAST = {"max_epochs": 1, "batch_size": 8, "device": "cpu", "random_state": 0}
FEATURES = np.random.default_rng(0).normal(size=(6, 4))
TEXTS = ["red", "green", "blue"] * 2
LONG_TEXT = " ".join(["word"] * 400)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(bundled_minilm_path())


def _unit_row(width=8, seed=0):
    row = np.random.default_rng(seed).normal(size=width).astype(np.float32)
    return row / np.linalg.norm(row)


def _save_bare_array(path, row):
    """An entry in the layout of earlier versions: the row alone, as .npy bytes."""
    with path.open("wb") as file:
        np.save(file, row)


def _write(path, row, key="teacher/item", version=FORMAT_VERSION):
    with path.open("wb") as file:
        np.savez(file, embedding=row, key=np.array(key), version=np.array(version))


def test_lone_surrogate_is_rejected_naming_the_index():
    with pytest.raises(ValueError, match=r"texts\[1\] cannot be encoded as UTF-8: character 2"):
        check_texts(["fine", "ab\udc80cd"], "texts")


def test_counting_truncated_texts_counts_only_those_over_the_limit(tokenizer):
    texts = ["short", LONG_TEXT, "a " * 10]
    # "a a ... a" is 10 tokens plus the two special tokens: exactly at a limit of 12.
    assert count_truncated_texts(tokenizer, texts, 12) == 1
    assert count_truncated_texts(tokenizer, texts, 11) == 2
    assert count_truncated_texts(tokenizer, texts, 512) == 0


def test_truncation_warning_says_how_many_and_the_limit(tokenizer):
    with pytest.warns(UserWarning, match=r"2 of 3 distinct texts.*limit of 8 tokens"):
        assert warn_truncated_texts(tokenizer, [LONG_TEXT, "hi", LONG_TEXT + "!"], 8, "x") == 2


def test_no_truncation_warning_without_a_known_limit(tokenizer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_truncated_texts(tokenizer, [LONG_TEXT], None, "teacher") == 0
        assert warn_truncated_texts(None, [LONG_TEXT], 8, "teacher") == 0


def test_fit_warns_once_about_texts_over_the_teachers_limit():
    clear_teacher_cache()
    with pytest.warns(UserWarning) as record:
        CWCLAligner(**FAST).fit(FEATURES, [*TEXTS[:-2], LONG_TEXT, LONG_TEXT + " again"])
    truncation = [str(item.message) for item in record if "truncated" in str(item.message)]
    assert len(truncation) == 1
    assert "2 of 5 distinct texts" in truncation[0] and "256 tokens" in truncation[0]


def test_written_entry_reads_back(tmp_path):
    row = _unit_row()
    with (tmp_path / "entry.npz").open("wb") as file:
        write_entry(file, row, "teacher/item")
    np.testing.assert_array_equal(read_entry(tmp_path / "entry.npz", "teacher/item"), row)


def test_missing_entry_is_a_silent_miss(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_entry(tmp_path / "absent.npz", "teacher/item") is None


@pytest.mark.parametrize(
    ("make_entry", "reason"),
    [
        (lambda path: path.write_text("not an archive"), "cannot be read"),
        (lambda path: np.save(path.open("wb"), _unit_row()), "cannot be read"),
        (lambda path: _write(path, _unit_row(), version=1), "format version 1"),
        (lambda path: _write(path, _unit_row(), key="teacher/other"), "key does not match"),
        (lambda path: _write(path, _unit_row().astype(np.float64)), "dtype float64"),
        (lambda path: _write(path, np.ones((2, 4), np.float32) / 8**0.5), "shape (2, 4)"),
        (lambda path: _write(path, np.full(8, np.nan, np.float32)), "NaN or inf"),
        (lambda path: _write(path, _unit_row(width=5)), "5 values, the teacher's others 8"),
    ],
)
def test_invalid_entry_is_ignored_with_a_warning_naming_the_file(tmp_path, make_entry, reason):
    path = tmp_path / "entry.npz"
    make_entry(path)
    with pytest.warns(UserWarning, match="computed again") as record:
        assert read_entry(path, "teacher/item", width=8) is None
    assert str(path) in str(record[0].message) and reason in str(record[0].message)


def test_poisoned_cache_entry_is_recomputed_and_rewritten(tmp_path):
    clear_teacher_cache()
    reference = CWCLAligner(**FAST, cache_dir=tmp_path).fit(FEATURES, TEXTS)
    entries = sorted(tmp_path.glob("*/*/*.npz"))
    assert len(entries) == 3
    _write(entries[0], np.full(reference.embedding_dim_, np.nan, np.float32))
    clear_teacher_cache()
    with pytest.warns(UserWarning, match="key does not match"):
        refit = CWCLAligner(**FAST, cache_dir=tmp_path).fit(FEATURES, TEXTS)
    # Encoded in a batch of another size: equal up to float32 rounding.
    np.testing.assert_allclose(
        refit.candidate_embeddings_, reference.candidate_embeddings_, atol=1e-6
    )
    clear_teacher_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert refit.teacher_.encode(TEXTS).shape == (6, reference.embedding_dim_)
