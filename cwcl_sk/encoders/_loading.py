"""How the encoders load pretrained transformers models: offline when asked, and quietly.

Teachers and students alike load checkpoints with transformers; both follow the same rules,
written here once: use the Hugging Face hub only when it can answer, and print nothing at
``verbose=0``.

Without a network, huggingface_hub retries every file it asks for (five times, with back-off),
so a hub id that is not in the cache used to print some 20 seconds of retry messages before
the library's own error. The hub is therefore probed once per process (one TCP connection,
a two-second limit), and when it cannot be reached the library behaves as under
``HF_HUB_OFFLINE=1``: the cache answers, or the library's error comes at once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import urllib.parse
import urllib.request
from pathlib import Path

__all__ = [
    "hub_offline_when_unreachable",
    "offline",
    "offline_hint",
    "quiet_transformers",
    "require_cached_when_offline",
]

#: Seconds the one reachability probe of the hub may take.
PROBE_TIMEOUT = 2.0


def _env_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "0"
    return value.strip().lower() in {"1", "true", "yes", "on"}


@functools.cache
def _hub_reachable(endpoint: str) -> bool:
    """Whether a TCP connection to the hub (or the HTTPS proxy in front of it) opens."""
    proxy = urllib.request.getproxies().get("https")
    address = urllib.parse.urlsplit(proxy or endpoint)
    port = address.port or (443 if address.scheme == "https" else 80)
    try:
        with socket.create_connection((address.hostname, port), timeout=PROBE_TIMEOUT):
            return True
    except (OSError, TypeError, ValueError):
        return False


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def offline() -> bool:
    """Whether to load from disk and the Hugging Face cache only.

    True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids the hub, or when the
    hub cannot be reached (probed once per process): asking it would only retry for seconds.

    Returns
    -------
    offline : bool
    """
    return _env_offline() or not _hub_reachable(_endpoint())


def offline_hint() -> str:
    """Why the hub was not asked, for error messages: the variable or the failed probe."""
    if _env_offline():
        return "HF_HUB_OFFLINE is set, so the Hugging Face hub was not asked"
    return (
        f"the Hugging Face hub ({_endpoint()}) cannot be reached, so it was not asked "
        "(set HF_HUB_OFFLINE=1 to skip this check)"
    )


def _is_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return any(
            isinstance(try_to_load_from_cache(repo_id, filename), str)
            for filename in ("modules.json", "config.json")
        )
    except Exception:  # not a valid repository id: nothing of it can be cached
        return False


def require_cached_when_offline(name_or_path: str, argument: str, alternatives: str) -> None:
    """Fail at once when ``name_or_path`` is a hub id that cannot be loaded offline.

    Parameters
    ----------
    name_or_path : str
        A local folder or a Hugging Face id.
    argument : str
        The parameter it came from, e.g. ``"teacher"``, for the message.
    alternatives : str
        What works offline instead, a sentence for the message.

    Raises
    ------
    OSError
        When the name is no local folder, the hub is not usable (see :func:`offline`) and the
        Hugging Face cache does not hold it.
    """
    if Path(name_or_path).expanduser().exists() or not offline() or _is_cached(name_or_path):
        return
    raise OSError(
        f"{argument}={name_or_path!r} is not a local folder and not in the Hugging Face cache, "
        f"and {offline_hint()}. {alternatives}"
    )


@contextlib.contextmanager
def hub_offline_when_unreachable():
    """Inside the block, treat an unreachable hub as ``HF_HUB_OFFLINE=1``.

    huggingface_hub reads ``HF_HUB_OFFLINE`` once, at import; its ``constants.HF_HUB_OFFLINE``
    is what every download consults, so setting it for the block makes a cache miss fail at
    once instead of after minutes of retries.
    """
    from huggingface_hub import constants

    if not offline() or constants.HF_HUB_OFFLINE:
        yield
        return
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = False


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
