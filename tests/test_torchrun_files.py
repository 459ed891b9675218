"""Audio files read on demand under torchrun: two gloo ranks decode their own shards of each
batch, skip the same corrupt file, and train the single-process model."""

import json
import warnings

import _torchrun_files_worker as worker
import numpy as np
import pytest
from _torchrun import torchrun

from cwcl_sk import CWCLAligner

WORKER = worker.__file__
# Two ranks sum the gradient in another order than one process: float32 rounding only.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("torchrun_files")
    worker.write_clips(folder / "clips")
    torchrun(WORKER, folder / "clips", folder / "out")
    return folder


@pytest.fixture(scope="module")
def single_process(launched):
    paths, teacher = worker.pairs(launched / "clips")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return CWCLAligner(**worker.PARAMS).fit(paths, teacher)


@pytest.mark.parametrize("rank", [0, 1])
def test_each_rank_skips_the_corrupt_file_and_trains_the_single_process_model(
    launched, single_process, rank
):
    record = json.loads((launched / "out" / f"history-{rank}.json").read_text())
    assert [skipped["index"] for skipped in record["skipped"]] == [worker.CORRUPT]
    expected = worker.learned_history(single_process)
    assert [r["skipped_inputs"] for r in record["history"]] == [1] * worker.PARAMS["max_epochs"]
    for got, want in zip(record["history"], expected, strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], abs=TOLERANCE)
    weights = np.load(launched / "out" / f"weights-{rank}.npz")
    for name, value in worker.weights(single_process).items():
        if name == "encoder.attention.bias":
            # A shift of every frame's pooling score: the softmax ignores it, so its gradient
            # is rounding noise, which Adam scales up to full steps. Nothing depends on it.
            continue
        np.testing.assert_allclose(weights[name], value, atol=TOLERANCE, err_msg=name)
