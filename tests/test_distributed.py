"""torch.distributed: 2 CPU processes (gloo) under torchrun equal one process on the full batch."""

import json
from pathlib import Path

import _distributed_worker as worker
import numpy as np
import pytest
import torch
from _torchrun import torchrun

from cwcl_sk import CWCLAligner
from cwcl_sk.distributed import (
    gather_with_grad,
    get_rank,
    get_world_size,
    is_distributed,
    is_main_process,
    shard,
)

WORKER = Path(__file__).with_name("_distributed_worker.py")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The worker's outputs after one ``torchrun --nproc_per_node=2`` launch."""
    folder = tmp_path_factory.mktemp("distributed")
    torchrun(WORKER, folder)
    return folder


def test_helpers_are_no_ops_in_one_process():
    tensor = torch.randn(4, 3, requires_grad=True)
    assert not is_distributed()
    assert (get_rank(), get_world_size(), is_main_process()) == (0, 1, True)
    assert gather_with_grad(tensor) is tensor
    local, sizes = shard(np.arange(5))
    np.testing.assert_array_equal(local, np.arange(5))
    assert sizes == [5]


def test_shards_are_contiguous_and_cover_the_batch():
    parts = [shard(np.arange(7), world_size=3, rank=rank) for rank in range(3)]
    np.testing.assert_array_equal(np.concatenate([part for part, _ in parts]), np.arange(7))
    assert parts[0][1] == [3, 2, 2]


def test_a_batch_smaller_than_the_world_is_rejected():
    with pytest.raises(ValueError, match="batch_size"):
        shard(np.arange(1), world_size=2, rank=0)


@pytest.mark.parametrize("name, mini_batch_size", [("plain", None), ("grad_cache", 7)])
def test_two_ranks_give_the_single_process_loss_and_gradients(two_ranks, name, mini_batch_size):
    expected_loss, expected = worker.step_gradients(mini_batch_size)
    for rank in (0, 1):
        arrays = np.load(two_ranks / f"step-{rank}.npz")
        assert float(arrays[f"{name}_loss"]) == pytest.approx(expected_loss, abs=1e-5)
        for index, gradient in enumerate(expected):
            np.testing.assert_allclose(arrays[f"{name}_grad_{index}"], gradient, atol=1e-5)


def test_two_rank_fit_equals_the_single_process_fit(two_ranks):
    X, teacher = worker.fit_pairs()
    single = CWCLAligner(**worker.FIT_PARAMS, random_state=0).fit(X, teacher)
    for rank in (0, 1):
        fitted = np.load(two_ranks / f"fit-{rank}.npz")
        np.testing.assert_allclose(fitted["seeded"], single.transform(X), atol=1e-5)
        history = json.loads((two_ranks / f"history-{rank}.json").read_text())
        assert [record["train_loss"] for record in history] == pytest.approx(
            [record["train_loss"] for record in single.history_], abs=1e-5
        )
        assert [record["temperature"] for record in history] == pytest.approx(
            [record["temperature"] for record in single.history_], abs=1e-6
        )


def test_ranks_agree_without_a_random_state(two_ranks):
    first, second = (np.load(two_ranks / f"fit-{rank}.npz")["unseeded"] for rank in (0, 1))
    np.testing.assert_array_equal(first, second)


def test_only_rank_zero_writes_files(two_ranks):
    assert sorted(path.name for path in (two_ranks / "checkpoints").iterdir()) == [
        "epoch-0001",
        "epoch-0002",
        "epoch-0003",
    ]
    loaded = CWCLAligner.load(two_ranks / "model")
    X, _ = worker.fit_pairs()
    np.testing.assert_allclose(
        loaded.transform(X), np.load(two_ranks / "fit-0.npz")["seeded"], atol=1e-6
    )
