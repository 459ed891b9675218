"""A resume is refused when its pairs or training parameters differ from the checkpoint's."""

import json
import warnings

import numpy as np
import pytest

from cwcl_sk import CWCLAligner

FAST = {"max_epochs": 2, "batch_size": 16, "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def checkpoint(paired_features, tmp_path_factory):
    X, teacher_embeddings = paired_features
    folder = tmp_path_factory.mktemp("checkpoints")
    CWCLAligner(teacher="precomputed", checkpoint_dir=folder, **FAST).fit(X, teacher_embeddings)
    return folder / "epoch-0001"


def resume(checkpoint, X, y, resume_mismatch="raise", **params):
    aligner = CWCLAligner(teacher="precomputed", **{**FAST, **params})
    return aligner.fit(X, y, resume_from=checkpoint, resume_mismatch=resume_mismatch)


def test_resume_with_the_same_pairs_and_settings_proceeds(paired_features, checkpoint):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aligner = resume(checkpoint, *paired_features)
    assert len(aligner.history_) == 2


def test_resume_may_train_for_more_epochs(paired_features, checkpoint):
    assert len(resume(checkpoint, *paired_features, max_epochs=3).history_) == 3


def test_resume_with_other_pairs_is_refused(paired_features, checkpoint):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match=r"resume_from: .*the training pairs"):
        resume(checkpoint, X[::-1], teacher_embeddings[::-1])


@pytest.mark.parametrize(
    ("name", "value"),
    [("batch_size", 8), ("learning_rate", 0.01), ("loss", "clip"), ("kernel", "exp")],
)
def test_resume_with_other_training_parameters_is_refused(paired_features, checkpoint, name, value):
    with pytest.raises(ValueError, match=f"resume_from: .*{name}=.* there, {value!r} here"):
        resume(checkpoint, *paired_features, **{name: value})


def test_refused_resume_leaves_the_aligner_unfitted(paired_features, checkpoint):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(teacher="precomputed", **{**FAST, "batch_size": 8})
    with pytest.raises(ValueError, match="batch_size"):
        aligner.fit(X, teacher_embeddings, resume_from=checkpoint)
    assert not hasattr(aligner, "student_")


def test_resume_mismatch_warn_continues_with_a_warning(paired_features, checkpoint):
    with pytest.warns(UserWarning, match="batch_size=16 there, 8 here"):
        aligner = resume(checkpoint, *paired_features, resume_mismatch="warn", batch_size=8)
    assert len(aligner.history_) == 2


def test_resume_mismatch_allow_continues_silently(paired_features, checkpoint):
    X, teacher_embeddings = paired_features
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aligner = resume(checkpoint, X[::-1], teacher_embeddings[::-1], resume_mismatch="allow")
    assert len(aligner.history_) == 2


def test_checkpoint_without_a_fingerprint_resumes(paired_features, checkpoint, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(checkpoint, old)
    training = json.loads((old / "training.json").read_text())
    del training["pairs_fingerprint"]  # as checkpoints of earlier versions
    (old / "training.json").write_text(json.dumps(training))
    X, teacher_embeddings = paired_features
    np.testing.assert_array_equal(
        resume(old, X, teacher_embeddings).transform(X),
        resume(checkpoint, X, teacher_embeddings).transform(X),
    )


def test_unknown_resume_mismatch_is_refused(paired_features, checkpoint):
    with pytest.raises(ValueError, match="'resume_mismatch' parameter must be one of"):
        resume(checkpoint, *paired_features, resume_mismatch="maybe")
