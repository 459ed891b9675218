"""The public ``fit`` under torchrun: two gloo processes train the single-process model.

Two launches of ``_torchrun_fit_worker.py`` on two CPU ranks: a full run that checkpoints
every epoch, then a run resumed from rank 0's checkpoint of its second epoch. Both are
compared with one ``fit`` of the same global batches in this process.
"""

import json
from pathlib import Path

import _torchrun_fit_worker as worker
import numpy as np
import pytest
from _torchrun import torchrun

from cwcl_sk import CWCLAligner

WORKER = Path(__file__).with_name("_torchrun_fit_worker.py")
RANKS = (0, 1)
# Two ranks sum the same products in another order than one process does (each rank's
# gradient rows, then DDP's all-reduce), so float32 results differ by rounding. Measured
# after these 12 Adam steps: at most 6e-8 in a weight and 5e-7 in a loss (losses of 3 to
# 10, where one float32 step is 5e-7 to 1e-6); the tolerance leaves a margin of 20.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The folder of both two-rank launches: ``full/`` and ``resume/``."""
    folder = tmp_path_factory.mktemp("torchrun_fit")
    torchrun(WORKER, folder, "full")
    checkpoint = folder / "full" / "checkpoints-0" / f"epoch-{worker.RESUME_EPOCH:04d}"
    torchrun(WORKER, folder, "resume", checkpoint)
    return folder


@pytest.fixture(scope="module")
def single_process():
    """The same fit in one process: every global batch embedded at once."""
    X, teacher = worker.pairs()
    return CWCLAligner(**worker.PARAMS).fit(X, teacher)


def _history(folder: Path, rank: int) -> list:
    return json.loads((folder / f"history-{rank}.json").read_text())


def _assert_same_history(history, expected, tolerance):
    assert [record["epoch"] for record in history] == [record["epoch"] for record in expected]
    for record, expected_record in zip(history, expected, strict=True):
        assert record.keys() == expected_record.keys()
        for key, value in record.items():
            assert value == pytest.approx(expected_record[key], abs=tolerance), key


def _assert_same_weights(weights, expected, tolerance):
    assert sorted(weights.files) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(weights[name], value, atol=tolerance, err_msg=name)


@pytest.mark.parametrize("rank", RANKS)
def test_each_rank_records_the_single_process_history(runs, single_process, rank):
    expected = worker.learned_history(single_process)
    assert len(expected) == worker.PARAMS["max_epochs"]
    _assert_same_history(_history(runs / "full", rank), expected, TOLERANCE)


@pytest.mark.parametrize("rank", RANKS)
def test_each_rank_ends_with_the_single_process_weights(runs, single_process, rank):
    weights = np.load(runs / "full" / f"weights-{rank}.npz")
    _assert_same_weights(weights, worker.weights(single_process), TOLERANCE)


def test_only_rank_zero_writes_checkpoints(runs):
    epochs = range(1, worker.PARAMS["max_epochs"] + 1)
    written = sorted(path.name for path in (runs / "full" / "checkpoints-0").iterdir())
    assert written == [f"epoch-{epoch:04d}" for epoch in epochs]
    assert not (runs / "full" / "checkpoints-1").exists()
    # The resumed run writes the epochs it trains, on rank 0 only.
    resumed = sorted(path.name for path in (runs / "resume" / "checkpoints-0").iterdir())
    assert resumed == [f"epoch-{epoch:04d}" for epoch in epochs if epoch > worker.RESUME_EPOCH]
    assert not (runs / "resume" / "checkpoints-1").exists()


@pytest.mark.parametrize("rank", RANKS)
def test_a_two_rank_resume_continues_as_the_uninterrupted_run(runs, rank):
    # The same processes' arithmetic from the same saved float32 state: equal to the bit.
    full = np.load(runs / "full" / f"weights-{rank}.npz")
    resumed = np.load(runs / "resume" / f"weights-{rank}.npz")
    _assert_same_weights(resumed, dict(full.items()), 0.0)
    _assert_same_history(_history(runs / "resume", rank), _history(runs / "full", rank), 0.0)
