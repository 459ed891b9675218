"""EpochProgress: a progress bar over epochs under a label, through the callback interface."""

import pickle

import numpy as np
from sklearn.base import clone

from cwcl_sk import CWCLAligner
from cwcl_sk.progress import EpochProgress


def _pairs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 4)).astype(np.float32)
    y = rng.normal(size=(12, 8)).astype(np.float32)  # teacher embeddings, precomputed
    return X, y


def _aligner(**options):
    return CWCLAligner(teacher="precomputed", student="mlp", max_epochs=3, batch_size=6, **options)


def test_bar_shows_the_description_and_counts_every_epoch(capsys):
    callback = EpochProgress("CL baseline")
    _aligner(callbacks=[("progress", callback)]).fit(*_pairs())
    error = capsys.readouterr().err
    assert "CL baseline: 100%" in error
    assert "3/3" in error
    assert "train_loss=" in error


def test_description_is_a_nested_parameter():
    aligner = _aligner(callbacks=[("progress", EpochProgress())])
    aligner.set_params(callbacks__progress__description="CWCL run")
    assert aligner.get_params()["callbacks__progress__description"] == "CWCL run"
    assert clone(aligner).get_params()["callbacks__progress__description"] == "CWCL run"


def test_fitted_aligner_with_the_callback_pickles(capsys):
    aligner = _aligner(callbacks=[("progress", EpochProgress("run"))]).fit(*_pairs())
    restored = pickle.loads(pickle.dumps(aligner))
    X, _ = _pairs()
    np.testing.assert_allclose(restored.transform(X), aligner.transform(X))
