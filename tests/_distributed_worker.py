"""Run by tests/test_distributed.py under ``torchrun --nproc_per_node=2`` (gloo, CPU).

Writes, to the folder given as the only argument,

- ``step-<rank>.npz``: the loss and the gradients of one engine step over a global batch,
  plain and with GradCache, with a learnable logit scale;
- ``fit-<rank>.npz`` and ``history-<rank>.json``: a CWCLAligner fitted on 2 ranks;
- ``model/`` and ``checkpoints/``: written by rank 0 only.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from _helpers import one_engine_step

from cwcl_sk import CWCLAligner
from cwcl_sk.distributed import get_rank, get_world_size, init_from_environment
from cwcl_sk.losses import cwcl_loss
from cwcl_sk.training import LogitScale, TrainingState


def step_pairs():
    """51 pairs: the two ranks embed 26 and 25 of them."""
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(51, 6)).astype(np.float32),
        rng.normal(size=(51, 8)).astype(np.float32),
    )


def step_student():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.GELU(), torch.nn.Linear(16, 8))


def step_gradients(mini_batch_size):
    """Loss and gradients (student, then logit scale) of one step over all 51 pairs."""
    X, teacher = step_pairs()
    model = step_student()
    logit_scale = LogitScale(math.exp(-2.0))
    optimizer = torch.optim.SGD([*model.parameters(), *logit_scale.parameters()], lr=0.0)
    state = TrainingState(model, optimizer, logit_scale=logit_scale)

    def batch_loss(student_embeddings, teacher_embeddings, indices):
        return cwcl_loss(student_embeddings, teacher_embeddings, logit_scale())

    loss = one_engine_step(state, X, teacher, batch_loss, mini_batch_size)
    gradients = [parameter.grad.numpy().copy() for parameter in model.parameters()]
    return loss, [*gradients, logit_scale.log_scale.grad.numpy().copy()]


def fit_pairs():
    rng = np.random.default_rng(1)
    teacher = rng.normal(size=(64, 8)).astype(np.float32)
    X = teacher @ rng.normal(size=(8, 6)).astype(np.float32)
    return X, teacher


FIT_PARAMS = {
    "teacher": "precomputed",
    "batch_size": 16,
    "max_epochs": 3,
    "device": "cpu",
    "learn_temperature": True,
    "validation_fraction": 0.25,
}


def main(folder: Path) -> None:
    torch.set_num_threads(1)
    init_from_environment(torch.device("cpu"))
    rank = get_rank()
    assert get_world_size() == 2

    arrays = {}
    for name, mini_batch_size in (("plain", None), ("grad_cache", 7)):
        loss, gradients = step_gradients(mini_batch_size)
        arrays[f"{name}_loss"] = np.array(loss)
        arrays.update({f"{name}_grad_{i}": grad for i, grad in enumerate(gradients)})
    np.savez(folder / f"step-{rank}.npz", **arrays)

    X, teacher = fit_pairs()
    seeded = CWCLAligner(**FIT_PARAMS, random_state=0, checkpoint_dir=folder / "checkpoints")
    seeded.fit(X, teacher)
    seeded.save(folder / "model")
    unseeded = CWCLAligner(**FIT_PARAMS, random_state=None, mini_batch_size=5).fit(X, teacher)
    unseeded.partial_fit(X, teacher)  # the same student wrapped in DDP a second time
    np.savez(folder / f"fit-{rank}.npz", seeded=seeded.transform(X), unseeded=unseeded.transform(X))
    (folder / f"history-{rank}.json").write_text(json.dumps(seeded.history_))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
