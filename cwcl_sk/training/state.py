"""What the training loop updates, and how it is snapshot and restored."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from .temperature import LogitScale

__all__ = ["TrainingState", "logit_scale_group", "make_optimizer"]


@dataclass
class TrainingState:
    """What the loop updates: the model, its optimiser, the history, and the base seed.

    Attributes
    ----------
    model : torch.nn.Module
    optimizer : torch.optim.Optimizer
    history : list of dict
    base_seed : int
    logit_scale : LogitScale, optional
        A learnable temperature, trained by ``optimizer`` and clamped after every step;
        None for a fixed temperature.
    scaler : torch.amp.GradScaler, optional
        Loss scaling for ``precision="16-mixed"``, created by :func:`run_epochs`.
    stop_reason : str or None
        Why the last :func:`run_epochs` call ended; None while it runs, or when it failed
        with an error.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: list = field(default_factory=list)
    base_seed: int = 0
    logit_scale: LogitScale | None = None
    scaler: torch.amp.GradScaler | None = None
    stop_reason: str | None = None

    def trained_parameters(self) -> list[torch.Tensor]:
        """The model's parameters and the logit scale's, if it is learned."""
        parameters = list(self.model.parameters())
        if self.logit_scale is not None:
            parameters += list(self.logit_scale.parameters())
        return parameters

    def is_finite(self) -> bool:
        """True when no trained parameter holds a NaN or an infinity."""
        # One device sync for all parameters: a single reduction over per-tensor flags.
        flags = [
            torch.isfinite(parameter.detach()).all() for parameter in self.trained_parameters()
        ]
        return bool(torch.stack(flags).all()) if flags else True

    def snapshot(self) -> dict:
        """Copies of everything :meth:`restore` puts back."""
        snapshot = {
            "model": copy.deepcopy(self.model.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }
        if self.logit_scale is not None:
            snapshot["logit_scale"] = copy.deepcopy(self.logit_scale.state_dict())
        return snapshot

    def restore(self, snapshot: dict) -> None:
        """Put a :meth:`snapshot` back, in place: the optimiser keeps its parameters."""
        self.model.load_state_dict(snapshot["model"])
        self.optimizer.load_state_dict(snapshot["optimizer"])
        if self.logit_scale is not None:
            self.logit_scale.load_state_dict(snapshot["logit_scale"])


def make_optimizer(
    model: nn.Module,
    logit_scale: LogitScale | None,
    learning_rate: float,
    weight_decay: float,
) -> torch.optim.AdamW:
    """AdamW over ``model`` and, in a group without weight decay, the logit scale.

    Parameters
    ----------
    model : torch.nn.Module
    logit_scale : LogitScale or None
    learning_rate, weight_decay : float

    Returns
    -------
    optimizer : torch.optim.AdamW
    """
    groups = [{"params": list(model.parameters())}]
    if logit_scale is not None:
        groups.append(logit_scale_group(logit_scale))
    return torch.optim.AdamW(groups, lr=float(learning_rate), weight_decay=weight_decay)


def logit_scale_group(logit_scale: LogitScale) -> dict:
    """The optimiser parameter group of a learned temperature."""
    # Weight decay would pull the temperature towards 1 (as CLIP, no decay on it).
    return {"params": list(logit_scale.parameters()), "weight_decay": 0.0}
