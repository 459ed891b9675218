"""Grid search and cross-validation across processes with joblib's Dask backend.

A local cluster of two worker processes stands in for machines: every task is pickled to a
worker, as it would be sent over the network.
"""

import os
import pickle

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from cwcl_sk import CWCLAligner, ZeroShotClassifier

distributed = pytest.importorskip("distributed")
_dask_probes = pytest.importorskip("_dask_probes")

FAST = {
    "max_epochs": 3,
    "batch_size": 16,
    "device": "cpu",
    "random_state": 0,
    "student__hidden_sizes": (16,),
}
GRID = {"temperature": [0.05, 0.1, 0.2, 0.5]}


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes, without dashboard, counting teacher loads."""
    environment = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    environment["TOKENIZERS_PARALLELISM"] = "false"
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=environment,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(_dask_probes.install_counters)
        yield client


@pytest.fixture(scope="module")
def colour_texts(colour_data):
    X, labels, names = colour_data
    return X[:48], [names[label] for label in labels[:48]]


def _on_dask(function):
    with parallel_config(backend="dask"):
        return function()


def _worker_counts(client) -> list:
    return list(client.run(_dask_probes.counts).values())


def test_grid_search_on_dask_equals_the_serial_search(client, colour_texts):
    X, texts = colour_texts
    search = GridSearchCV(CWCLAligner(**FAST), GRID, cv=2, refit=False)
    serial = clone(search).fit(X, texts)
    spread = _on_dask(lambda: clone(search).set_params(n_jobs=-1).fit(X, texts))
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_array_equal(spread.cv_results_[key], serial.cv_results_[key])
    assert spread.best_params_ == serial.best_params_
    # Both workers trained students, each loading the teacher once for all its fits.
    assert [count["loads"] for count in _worker_counts(client)] == [1, 1]


def test_cross_val_score_of_classifier_on_dask_equals_serial(client, colour_data):
    X, labels, names = colour_data
    classifier = ZeroShotClassifier(CWCLAligner(**FAST), labels=names)
    serial = cross_val_score(classifier, X, labels, cv=3)
    spread = _on_dask(lambda: cross_val_score(classifier, X, labels, cv=3, n_jobs=-1))
    np.testing.assert_array_equal(spread, serial)
    assert serial.mean() > 0.5


def test_a_search_reads_the_teacher_embeddings_cached_by_an_earlier_one(
    client, colour_texts, tmp_path
):
    X, texts = colour_texts
    search = GridSearchCV(CWCLAligner(**FAST, cache_dir=tmp_path), GRID, cv=2, refit=False)
    client.run(_dask_probes.forget_embeddings)
    first = _on_dask(lambda: clone(search).set_params(n_jobs=-1).fit(X, texts))
    assert sum(count["encoded"] for count in _worker_counts(client)) >= len(set(texts))
    assert len(list(tmp_path.rglob("*.npz"))) == len(set(texts))

    client.run(_dask_probes.forget_embeddings)  # as fresh workers would start
    second = _on_dask(lambda: clone(search).set_params(n_jobs=-1).fit(X, texts))
    counts = _worker_counts(client)
    assert sum(count["encoded"] for count in counts) == 0
    assert sum(count["disk_hits"] for count in counts) >= len(set(texts))
    np.testing.assert_array_equal(
        second.cv_results_["mean_test_score"], first.cv_results_["mean_test_score"]
    )


def test_a_task_carries_the_parameters_not_the_teacher(colour_texts):
    X, texts = colour_texts
    unfitted = CWCLAligner(**FAST)
    assert len(pickle.dumps(clone(unfitted))) < 10_000
    fitted = clone(unfitted).fit(X, texts)
    payload = pickle.dumps(fitted)
    # The 90 MB teacher stays behind and is reloaded by name; the small student travels.
    assert len(payload) < 1_000_000
    restored = pickle.loads(payload)
    assert restored.teacher_._model is None
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))
    assert restored.predict(X[:5]).tolist() == fitted.predict(X[:5]).tolist()


def test_workers_import_this_checkout_of_the_library(client):
    import cwcl_sk

    locations = client.run(lambda: __import__("cwcl_sk").__file__)
    assert set(locations.values()) == {cwcl_sk.__file__}
    assert os.path.exists(cwcl_sk.__file__)
