"""Pieces shared by several test files (and by the distributed worker script)."""

import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from cwcl_sk.training.batches import collated_chunks, plan_steps, step_chunks
from cwcl_sk.training.stepper import Stepper


class PoisonableLinear(torch.nn.Linear):
    """A linear student that returns NaN once ``poisoned`` is set, as a diverging model does."""

    poisoned = False

    def forward(self, features):
        output = super().forward(features)
        return output * float("nan") if self.poisoned else output


def one_engine_step(state, X, teacher, batch_loss, mini_batch_size):
    """Loss of one training-engine step on the whole of ``X`` as one contrastive batch.

    With an optimiser of learning rate 0 the step leaves the weights alone and the gradients
    in ``.grad``. ``mini_batch_size`` None is a plain step; a number turns on GradCache.
    """
    grad_cache = mini_batch_size is not None
    stepper = Stepper(
        state,
        torch.from_numpy(teacher),
        batch_loss,
        torch.device("cpu"),
        "32",
        grad_cache=grad_cache,
    )
    plans = plan_steps([np.arange(len(X))], mini_batch_size)
    chunks = step_chunks(plans, grad_cache=grad_cache)
    batches = collated_chunks(
        X, lambda data, rows: torch.from_numpy(data[rows]), chunks, 0, torch.device("cpu"), 0
    )
    state.model.train()
    return stepper(plans[0], batches, {}, 1)


def load_benchmark(script: str):
    """Import ``benchmarks.<script>`` from this repository, wherever pytest was started.

    ``benchmarks`` is a package at the repository root, not an installed one: it is
    registered from its folder first, so ``python -m pytest`` and a bare ``pytest`` both find
    it, and its modules' relative imports resolve.
    """
    if "benchmarks" not in sys.modules:
        package = Path(__file__).resolve().parents[1] / "benchmarks"
        spec = importlib.util.spec_from_file_location(
            "benchmarks", package / "__init__.py", submodule_search_locations=[str(package)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["benchmarks"] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"benchmarks.{script}")


def save_tiny_whisper(folder: Path, config: dict) -> Path:
    """A randomly initialised Whisper of ``config`` saved to ``folder``, as a user's local
    checkpoint would be (weights and feature extractor); returns ``folder``."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    WhisperModel(WhisperConfig(**config)).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=40).save_pretrained(folder)
    return folder
