"""Saved folders are written whole, and never through a symbolic link."""

import os
import sys

import numpy as np
import pytest

import cwcl_sk._folders
import cwcl_sk.persistence
from cwcl_sk import CWCLAligner
from cwcl_sk.callbacks import Checkpoint

FAST = {"max_epochs": 2, "batch_size": 16, "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def fitted(paired_features):
    X, teacher_embeddings = paired_features
    return CWCLAligner(teacher="precomputed", **FAST).fit(X, teacher_embeddings)


def test_save_leaves_no_temporary_folder_beside_the_model(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


def test_interrupted_save_leaves_no_folder_under_the_name(fitted, tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cwcl_sk.persistence, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fitted.save(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_over_a_model_keeps_the_old_model_whole(fitted, tmp_path, monkeypatch):
    X = np.random.default_rng(1).normal(size=(5, 6))
    fitted.save(tmp_path / "model")
    before = CWCLAligner.load(tmp_path / "model").transform(X)

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cwcl_sk.persistence, "save_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        fitted.save(tmp_path / "model")
    assert [path.name for path in tmp_path.iterdir()] == ["model"]
    np.testing.assert_array_equal(CWCLAligner.load(tmp_path / "model").transform(X), before)


def test_save_over_a_saved_model_replaces_it(paired_features, fitted, tmp_path):
    X, teacher_embeddings = paired_features
    other = CWCLAligner(teacher="precomputed", **{**FAST, "random_state": 1})
    other.fit(X, teacher_embeddings).save(tmp_path / "model")
    fitted.save(tmp_path / "model")
    loaded = CWCLAligner.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


def test_save_does_not_write_through_a_link_planted_in_the_target(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    (tmp_path / "model" / "student.safetensors").unlink()
    (tmp_path / "model" / "student.safetensors").symlink_to(outside)
    fitted.save(tmp_path / "model")
    assert outside.read_text() == "not yours"
    assert not (tmp_path / "model" / "student.safetensors").is_symlink()
    CWCLAligner.load(tmp_path / "model")


def test_save_refuses_a_target_that_is_a_link(fitted, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(ValueError, match=r"directory: .*link is a symbolic link"):
        fitted.save(tmp_path / "link")
    assert list(real.iterdir()) == []


def test_save_refuses_to_replace_a_folder_of_other_files(fitted, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="other contents"):
        fitted.save(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_save_into_an_empty_existing_folder_works(fitted, tmp_path):
    fitted.save(tmp_path)
    assert (tmp_path / "config.json").is_file()


def test_saved_folder_gets_the_mode_of_a_plain_folder(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert (tmp_path / "model").stat().st_mode == plain.stat().st_mode


def test_checkpoint_does_not_write_through_a_planted_partial_link(fitted, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "epoch-0002.partial").symlink_to(outside, target_is_directory=True)
    Checkpoint(checkpoints).on_epoch_end(fitted, {"epoch": 2})
    assert list(outside.iterdir()) == []
    assert sorted(path.name for path in checkpoints.iterdir()) == ["epoch-0002"]
    assert (checkpoints / "epoch-0002" / "optimizer.pt").is_file()


def test_checkpoint_refuses_an_epoch_folder_that_is_a_link(fitted, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "epoch-0002").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match=r"checkpoint_dir: .*epoch-0002 is a symbolic link"):
        Checkpoint(tmp_path).on_epoch_end(fitted, {"epoch": 2})
    assert list(outside.iterdir()) == []
    assert not os.path.lexists(tmp_path / "epoch-0002.partial")


def test_save_checkpoint_writes_model_and_resume_records_in_one_folder(fitted, tmp_path):
    fitted.save_checkpoint(tmp_path / "checkpoint")
    assert sorted(path.name for path in (tmp_path / "checkpoint").iterdir()) == [
        "candidates.safetensors",
        "config.json",
        "fitted.json",
        "optimizer.pt",
        "student.safetensors",
        "training.json",
    ]
    assert [path.name for path in tmp_path.iterdir()] == ["checkpoint"]


def test_replacing_without_an_atomic_exchange_moves_the_old_model_aside(
    paired_features, fitted, tmp_path, monkeypatch
):
    X, teacher_embeddings = paired_features
    CWCLAligner(teacher="precomputed", **{**FAST, "random_state": 1}).fit(
        X, teacher_embeddings
    ).save(tmp_path / "model")
    monkeypatch.setattr(cwcl_sk._folders, "_exchange", lambda first, second: False)
    fitted.save(tmp_path / "model")
    loaded = CWCLAligner.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_folders_are_exchanged_atomically_on_linux(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "a").write_text("first")
    assert cwcl_sk._folders._exchange(first, second)
    assert (second / "a").read_text() == "first"
    assert list(first.iterdir()) == []
