"""The training loop: batching, optimiser steps, GradCache, precision, validation, history.

One concept a module:

- :mod:`~cwcl_sk.training.devices`: devices, precision and autocast;
- :mod:`~cwcl_sk.training.batches`: which pairs every step covers, and their batches;
- :mod:`~cwcl_sk.training.seeding`: per-epoch randomness and GradCache's replayed states;
- :mod:`~cwcl_sk.training.temperature`: the learnable temperature (a log logit scale);
- :mod:`~cwcl_sk.training.state`: what the loop updates, its snapshots, the optimiser;
- :mod:`~cwcl_sk.training.stepper`: one optimiser step, plain or GradCache, on any ranks;
- :mod:`~cwcl_sk.training.validation`: held-out pairs scored after every epoch;
- :mod:`~cwcl_sk.training.progress`: progress bars;
- :mod:`~cwcl_sk.training.loop`: the epoch loop, callbacks and safe stopping;
- :mod:`~cwcl_sk.training.inference`: embedding with a trained model.

The loop knows no modality, no loss and no estimator.
"""

from .batches import StepPlan, batch_indices, plan_steps
from .devices import (
    PRECISIONS,
    autocast,
    check_precision,
    inference_precision,
    resolve_device,
    training_device,
)
from .inference import embed_in_batches
from .loop import run_epochs
from .seeding import epoch_generators
from .state import TrainingState, make_optimizer
from .temperature import MAX_LOGIT_SCALE, LogitScale
from .validation import ValidationSet

__all__ = [
    "MAX_LOGIT_SCALE",
    "PRECISIONS",
    "LogitScale",
    "StepPlan",
    "TrainingState",
    "ValidationSet",
    "autocast",
    "batch_indices",
    "check_precision",
    "embed_in_batches",
    "epoch_generators",
    "inference_precision",
    "make_optimizer",
    "plan_steps",
    "resolve_device",
    "run_epochs",
    "training_device",
]
