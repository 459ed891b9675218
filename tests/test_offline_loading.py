"""Offline, a hub id that is not cached fails at once with the library's message, no retries."""

import time

import numpy as np
import pytest
from huggingface_hub import constants

from cwcl_sk import CWCLAligner
from cwcl_sk.encoders import _loading
from cwcl_sk.encoders.registry import make_student

# No organisation of that name exists on the hub, so no cache or network can hold it.
MISSING_ID = "cwcl-sk-tests-no-such-org/no-such-model"
FAST = 5.0  # seconds; the retries it replaces took about 20


def _fit_with_teacher(teacher):
    X = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    return CWCLAligner(teacher=teacher, student="mlp", max_epochs=1).fit(X, ["a"] * 6)


@pytest.fixture
def hub_unset(monkeypatch):
    """HF_HUB_OFFLINE unset, as for a user who never heard of it."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub_unreachable(hub_unset, monkeypatch):
    monkeypatch.setattr(_loading, "_hub_reachable", lambda endpoint: False)


def _message_of_fast_failure(call, match: str, seconds: float = FAST) -> str:
    """Run ``call``, check it raises an OSError matching ``match`` within ``seconds``."""
    started = time.perf_counter()
    with pytest.raises(OSError, match=match) as error:
        call()
    assert time.perf_counter() - started < seconds
    return str(error.value)


def test_missing_teacher_id_fails_at_once_naming_hf_hub_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = _message_of_fast_failure(lambda: _fit_with_teacher(MISSING_ID), "HF_HUB_OFFLINE")
    assert "teacher='minilm'" in message
    assert "precomputed" in message


def test_missing_teacher_id_on_unreachable_hub_fails_at_once(hub_unreachable):
    message = _message_of_fast_failure(lambda: _fit_with_teacher(MISSING_ID), "cannot be reached")
    assert "HF_HUB_OFFLINE=1" in message
    assert "teacher='minilm'" in message


def test_missing_student_id_on_unreachable_hub_fails_at_once(hub_unreachable):
    from transformers import Wav2Vec2Model  # noqa: F401  (import time is not load time)

    message = _message_of_fast_failure(
        lambda: make_student("wav2vec2", None, 8, {"name_or_path": MISSING_ID}),
        "cannot be reached",
    )
    assert "student__pretrained=False" in message
    assert constants.HF_HUB_OFFLINE is False  # the guard restores huggingface_hub's setting


def test_missing_student_id_with_hf_hub_offline_names_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="HF_HUB_OFFLINE is set"):
        make_student("wav2vec2", None, 8, {"name_or_path": MISSING_ID})


def test_unreachable_hub_counts_as_offline(hub_unreachable):
    assert _loading.offline()


def test_reachable_hub_without_the_variable_is_online(hub_unset, monkeypatch):
    monkeypatch.setattr(_loading, "_hub_reachable", lambda endpoint: True)
    assert not _loading.offline()


def test_probe_of_a_closed_port_says_unreachable():
    _loading._hub_reachable.cache_clear()
    try:
        # Port 9 on the loopback (discard) is closed on test machines: the connect is refused.
        assert _loading._hub_reachable("http://127.0.0.1:9") is False
    finally:
        _loading._hub_reachable.cache_clear()
