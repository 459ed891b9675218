"""Run by tests/test_torchrun_fit.py under ``torchrun --nproc_per_node=2`` (gloo, CPU).

Every rank fits the same ``CWCLAligner`` on the same pairs through the public ``fit``, which
joins the process group itself from torchrun's environment. Arguments: the output folder,
then ``full`` (train every epoch) or ``resume CHECKPOINT`` (continue from rank 0's
checkpoint of the full run). Each rank writes, under ``<folder>/<phase>/``,

- ``weights-<rank>.npz``: the student's final state dict;
- ``history-<rank>.json``: ``history_``, without the timings;
- ``checkpoints-<rank>/``: the ``checkpoint_dir`` of this rank, where only rank 0 may write.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from cwcl_sk import CWCLAligner
from cwcl_sk.distributed import get_rank, get_world_size

PARAMS = {
    "teacher": "precomputed",
    "student": "mlp",
    "student__hidden_sizes": (16,),
    # 72 training pairs in 3 batches of 24, each split 12 and 12 over the ranks, and 24
    # validation pairs scored on every rank.
    "batch_size": 25,
    "max_epochs": 4,
    "learning_rate": 1e-2,
    "learn_temperature": True,
    "validation_fraction": 0.25,
    "device": "cpu",
    "random_state": 0,
}
# The full run's checkpoint that the resumed run starts from.
RESUME_EPOCH = 2


def pairs():
    """96 pairs: features linearly related to random teacher embeddings."""
    rng = np.random.default_rng(3)
    teacher = rng.normal(size=(96, 8)).astype(np.float32)
    X = teacher @ rng.normal(size=(8, 6)).astype(np.float32)
    return X, teacher


def weights(aligner) -> dict:
    """The student's state dict as NumPy arrays."""
    return {name: value.numpy() for name, value in aligner.student_.state_dict().items()}


def learned_history(aligner) -> list:
    """``history_`` without the wall-clock seconds, which no two runs share."""
    return [{k: v for k, v in record.items() if k != "seconds"} for record in aligner.history_]


def main(folder: Path, phase: str, resume_from: str | None) -> None:
    torch.set_num_threads(1)
    X, teacher = pairs()
    output = folder / phase
    output.mkdir(parents=True, exist_ok=True)
    # Each rank is given a folder of its own, so that a file written by rank 1 would show.
    # torchrun's RANK: fit has not joined the process group yet.
    checkpoints = output / f"checkpoints-{os.environ['RANK']}"
    aligner = CWCLAligner(**PARAMS, checkpoint_dir=checkpoints)
    aligner.fit(X, teacher, resume_from=resume_from)
    rank = get_rank()
    assert get_world_size() == 2, "fit did not join the two-process group"
    np.savez(output / f"weights-{rank}.npz", **weights(aligner))
    (output / f"history-{rank}.json").write_text(json.dumps(learned_history(aligner)))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
