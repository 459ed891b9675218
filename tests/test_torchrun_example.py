"""``examples/torchrun_fit.py`` runs as its docstring says, on two gloo processes."""

import importlib.util
from pathlib import Path

import pytest
from _torchrun import torchrun

from cwcl_sk import CWCLAligner

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "torchrun_fit.py"


def _example_module():
    spec = importlib.util.spec_from_file_location("torchrun_fit", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_torchrun_example_trains_on_two_ranks_and_saves_the_model(tmp_path):
    output = tmp_path / "run"
    result = torchrun(EXAMPLE, "--output", output, "--epochs", 2, "--batch-size", 64)
    # Rank 0 alone reports, once per epoch, and says it trained with both processes.
    assert result.stdout.count("epoch 1: train_loss") == 1
    assert result.stdout.count("epoch 2: train_loss") == 1
    assert "2 processes" in result.stdout
    checkpoints = sorted(path.name for path in (output / "checkpoints").iterdir())
    assert checkpoints == ["epoch-0001", "epoch-0002"]
    # The model on disk is the one the example scored after training.
    loaded = CWCLAligner.load(output / "model")
    assert len(loaded.history_) == 2
    X, teacher_embeddings = _example_module().synthetic_pairs()
    recall = loaded.score(X, teacher_embeddings)
    assert f"among all {len(X)} pairs: {recall:.3f}" in result.stdout
