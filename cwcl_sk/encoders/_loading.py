"""How the encoders load pretrained transformers models: offline when asked, and quietly.

Teachers and students alike load checkpoints with transformers; both follow the same two rules,
written here once.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["offline", "quiet_transformers"]


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the Hugging Face hub: load from disk and cache only."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' weight-loading progress bar: ``verbose=0`` must print nothing."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()
