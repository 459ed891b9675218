"""Speech students: tiny wav2vec2, HuBERT and Whisper loaded by path, and mel-cnn."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import load_benchmark
from conftest import DIGIT_NAMES

from cwcl_sk import CWCLAligner, ZeroShotClassifier
from cwcl_sk.encoders.students.audio import MelCNN, WhisperEncoderStudent

SAMPLING_RATE = 16000
WORDS = ["low", "middle", "high"]

# Tiny architectures: a few thousand parameters, so a fit takes well under a second.
TINY_WAV2VEC2 = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 48,
    "conv_dim": (16, 16, 16, 16, 16, 16, 16),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
TINY_WHISPER = {
    "d_model": 32,
    "encoder_layers": 2,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 48,
    "decoder_layers": 1,
    "decoder_attention_heads": 2,
    "decoder_ffn_dim": 32,
    "num_mel_bins": 40,
}


def _clips(n_clips: int, seed: int = 0):
    """Tones of three pitches ("low", "middle", "high") of 0.1 to 0.5 s, with noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_clips) % 3
    clips = []
    for label in labels:
        time_axis = np.arange(rng.integers(1600, 8000)) / SAMPLING_RATE
        tone = np.sin(2 * np.pi * (200.0 * 2**label) * time_axis)
        clips.append((0.3 * tone + 0.02 * rng.normal(size=time_axis.size)).astype(np.float32))
    return clips, [WORDS[label] for label in labels]


@pytest.fixture(scope="module")
def speech_data():
    return _clips(24)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny randomly initialised checkpoints saved as a user's local folders would be."""
    from transformers import (
        HubertConfig,
        HubertModel,
        Wav2Vec2Config,
        Wav2Vec2Model,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(**TINY_WAV2VEC2)).save_pretrained(folder / "wav2vec2")
    HubertModel(HubertConfig(**TINY_WAV2VEC2)).save_pretrained(folder / "hubert")
    WhisperModel(WhisperConfig(**TINY_WHISPER)).save_pretrained(folder / "whisper")
    WhisperFeatureExtractor(feature_size=40).save_pretrained(folder / "whisper")
    return folder


def _fitted(student, data, **options):
    clips, words = data
    aligner = CWCLAligner(
        teacher="bert", student=student, max_epochs=2, batch_size=8, random_state=0, **options
    )
    return aligner.fit(clips, words)


@pytest.mark.parametrize("student", ["wav2vec2", "hubert", "whisper"])
def test_checkpoint_loaded_by_path_fits_transforms_and_predicts(student, checkpoints, speech_data):
    clips = speech_data[0]
    aligner = _fitted(student, speech_data, student__name_or_path=checkpoints / student)
    embeddings = aligner.transform(clips)
    assert embeddings.shape == (24, 384) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert set(aligner.predict(clips[:5])) <= set(WORDS)
    assert len(aligner.history_) == 2 and np.isfinite(aligner.history_[-1]["train_loss"])


@pytest.mark.parametrize(
    ("student", "options"),
    [
        ("wav2vec2", {}),  # feat_extract_norm="group": the conv encoder runs clip by clip
        ("wav2vec2", {"student__feat_extract_norm": "layer"}),
        ("hubert", {}),
        ("whisper", {}),
    ],
)
def test_padding_does_not_change_the_embedding(student, options, checkpoints, speech_data):
    clips = speech_data[0]
    aligner = _fitted(student, speech_data, student__name_or_path=checkpoints / student, **options)
    short = clips[0][:3000]
    # In a batch with a longer clip, the short one is padded with zeros beyond its mask.
    batched = aligner.transform([short, clips[1], np.concatenate([clips[2], clips[3]])])
    alone = aligner.transform([short])
    np.testing.assert_allclose(batched[0], alone[0], atol=1e-5)


@pytest.mark.parametrize("mini_batch_size", [None, 4])
def test_spec_augment_fits_are_reproducible_and_leave_numpy_alone(
    mini_batch_size, checkpoints, speech_data
):
    # transformers draws wav2vec2's SpecAugment masks from NumPy's global generator.
    options = {
        "student__name_or_path": checkpoints / "wav2vec2",
        "student__mask_time_prob": 0.5,
        "student__mask_time_length": 2,
        "mini_batch_size": mini_batch_size,
    }
    embeddings = []
    for user_seed in (1, 2):
        np.random.seed(user_seed)  # noqa: NPY002
        expected_draw = np.random.random()  # noqa: NPY002
        np.random.seed(user_seed)  # noqa: NPY002
        aligner = _fitted("wav2vec2", speech_data, **options)
        assert np.random.random() == expected_draw  # the user's stream was not moved  # noqa: NPY002
        embeddings.append(aligner.transform(speech_data[0]))
    np.testing.assert_allclose(embeddings[0], embeddings[1], atol=1e-6)


def test_design_card_call_trains_a_random_init_wav2vec2(speech_data):
    clips, words = speech_data
    overrides = {f"student__{name}": value for name, value in TINY_WAV2VEC2.items()}
    aligner = CWCLAligner(
        teacher="bert",
        student="wav2vec2",
        student__pretrained=False,
        max_epochs=2,
        batch_size=8,
        random_state=0,
        **overrides,
    ).fit(clips, words)
    model = aligner.student_.encoder.model
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32
    # A random convolutional front end is trained ("auto" freezes only pretrained ones).
    assert all(parameter.requires_grad for parameter in model.feature_extractor.parameters())
    assert aligner.transform(clips).shape == (24, 384)


def test_random_init_does_not_read_the_hub(speech_data, monkeypatch):
    import transformers

    def no_download(*args, **kwargs):
        raise AssertionError("pretrained=False must not load a config or weights")

    monkeypatch.setattr(transformers.Wav2Vec2Config, "from_pretrained", no_download)
    monkeypatch.setattr(transformers.Wav2Vec2Model, "from_pretrained", no_download)
    _fitted(
        "wav2vec2",
        speech_data,
        student__pretrained=False,
        student__num_hidden_layers=1,
        student__hidden_size=16,
        student__num_attention_heads=2,
        student__intermediate_size=16,
        student__conv_dim=(8,) * 7,
        student__num_conv_pos_embeddings=8,
        student__num_conv_pos_embedding_groups=2,
    )


def test_pretrained_models_freeze_their_feature_encoder_by_default(checkpoints, speech_data):
    aligner = _fitted("hubert", speech_data, student__name_or_path=checkpoints / "hubert")
    model = aligner.student_.encoder.model
    assert not any(parameter.requires_grad for parameter in model.feature_extractor.parameters())
    assert all(parameter.requires_grad for parameter in model.encoder.layers.parameters())


def test_trainable_layers_trains_only_the_top_layers(checkpoints, speech_data):
    aligner = _fitted(
        "wav2vec2",
        speech_data,
        student__name_or_path=checkpoints / "wav2vec2",
        student__trainable_layers=1,
    )
    student = aligner.student_
    trainable = {name for name, parameter in student.named_parameters() if parameter.requires_grad}
    assert trainable and all(
        name.startswith(("encoder.model.encoder.layers.1.", "projection.")) for name in trainable
    )


def test_whisper_trainable_layers_keep_the_final_layer_norm(checkpoints, speech_data):
    aligner = _fitted(
        "whisper",
        speech_data,
        student__name_or_path=checkpoints / "whisper",
        student__trainable_layers=0,
    )
    trainable = {
        name for name, parameter in aligner.student_.named_parameters() if parameter.requires_grad
    }
    assert trainable == {
        "encoder.encoder.layer_norm.weight",
        "encoder.encoder.layer_norm.bias",
        "projection.weight",
    }


@pytest.mark.parametrize("value", [3, -1, 1.5])
def test_bad_trainable_layers_is_named(value, checkpoints, speech_data):
    with pytest.raises(ValueError, match=r"student__trainable_layers .*\[0, 2\]"):
        _fitted(
            "hubert",
            speech_data,
            student__name_or_path=checkpoints / "hubert",
            student__trainable_layers=value,
        )


def test_unknown_config_field_is_named(speech_data):
    with pytest.raises(ValueError, match=r"student__num_hiden_layers .*Wav2Vec2Config"):
        _fitted("wav2vec2", speech_data, student__pretrained=False, student__num_hiden_layers=2)


def test_uncached_hub_id_offline_names_the_alternatives(speech_data):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(OSError, match=r"(?s)local folder.*student__pretrained=False"):
        _fitted("whisper", speech_data, student__name_or_path="cwcl-sk-tests/no-such-model")


def test_missing_local_folder_is_named(tmp_path, speech_data):
    with pytest.raises(FileNotFoundError, match=r"student__name_or_path=.*does not exist"):
        _fitted("hubert", speech_data, student__name_or_path=str(tmp_path / "missing"))


def test_whisper_log_mel_front_end_matches_the_feature_extractor(checkpoints):
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor.from_pretrained(checkpoints / "whisper")
    clip, _ = _clips(1, seed=3)
    expected = extractor(clip[0], sampling_rate=SAMPLING_RATE, padding="longest")["input_features"]
    student = WhisperEncoderStudent(torch.nn.Module(), extractor)
    computed = student.log_mel(torch.from_numpy(clip[0]))
    np.testing.assert_allclose(computed.numpy(), expected[0], atol=1e-4)


def test_whisper_rejects_clips_longer_than_its_positions(speech_data):
    overrides = {f"student__{name}": value for name, value in TINY_WHISPER.items()}
    # 50 positions = 100 mel frames = 1 s: a 1.5 s clip does not fit.
    aligner = _fitted(
        "whisper",
        speech_data,
        student__pretrained=False,
        student__max_source_positions=50,
        **overrides,
    )
    with pytest.raises(ValueError, match="longer than Whisper's encoder accepts"):
        aligner.transform([np.zeros(24000, dtype=np.float32)])


# -- mel-cnn ---------------------------------------------------------------------------------


def test_mel_cnn_fits_and_transforms(speech_data):
    clips = speech_data[0]
    aligner = _fitted("mel-cnn", speech_data, student__channels=32)
    assert isinstance(aligner.student_.encoder, MelCNN)
    assert aligner.transform(clips).shape == (24, 384)


def test_mel_cnn_default_size_is_a_few_hundred_thousand_parameters(speech_data):
    aligner = _fitted("mel-cnn", speech_data)
    n_parameters = sum(parameter.numel() for parameter in aligner.student_.encoder.parameters())
    assert 100_000 < n_parameters < 500_000


def test_mel_cnn_features_are_computed_once_per_fit(speech_data, monkeypatch):
    import cwcl_sk.inputs.audio as audio_inputs

    calls = []
    original = audio_inputs.log_mel_spectrogram

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(audio_inputs, "log_mel_spectrogram", counting)
    clips, words = speech_data
    aligner = CWCLAligner(teacher="bert", student="mel-cnn", max_epochs=3, batch_size=8)
    aligner.set_params(student__channels=16, student__n_mels=20).fit(clips, words)
    assert len(calls) == len(clips)
    assert aligner.student_.encoder.feature_mean.shape == (20,)


def test_mel_cnn_padding_does_not_change_the_embedding(speech_data):
    clips = speech_data[0]
    aligner = _fitted("mel-cnn", speech_data, student__channels=32)
    batched = aligner.transform([clips[0][:2000], clips[1], clips[2]])
    np.testing.assert_allclose(batched[0], aligner.transform([clips[0][:2000]])[0], atol=1e-5)


def test_mel_cnn_learns_pitches_it_was_trained_on():
    clips, words = _clips(90, seed=1)
    aligner = CWCLAligner(
        teacher="bert",
        student="mel-cnn",
        student__channels=32,
        max_epochs=15,
        batch_size=30,
        learning_rate=3e-3,
        random_state=0,
    ).fit(clips, words)
    test_clips, test_words = _clips(30, seed=2)
    assert np.mean(aligner.predict(test_clips) == np.array(test_words)) > 0.9


def test_mel_cnn_bad_option_is_named(speech_data):
    with pytest.raises(ValueError, match="student__kernel_size must be odd"):
        _fitted("mel-cnn", speech_data, student__kernel_size=4)
    with pytest.raises(ValueError, match=r"Unknown option.*student__hidden_size"):
        _fitted("mel-cnn", speech_data, student__hidden_size=4)


def _assert_length_groups_change_nothing(student, clip_batches, monkeypatch):
    """Embeddings and gradients of a batch in groups of 2 equal the whole batch's, row by row."""
    import cwcl_sk.encoders.students.audio as audio

    batch = _concatenated(clip_batches)
    results = {}
    for group_size in (1000, 2):
        monkeypatch.setattr(audio, "LENGTH_GROUP_SIZE", group_size)
        student.zero_grad()
        embeddings = student(batch)
        (embeddings * torch.linspace(-1, 1, embeddings.shape[1])).sum().backward()
        gradients = [p.grad.clone() for p in student.parameters() if p.requires_grad]
        results[group_size] = embeddings.detach(), gradients
    (whole, whole_gradients), (grouped, grouped_gradients) = results[1000], results[2]
    torch.testing.assert_close(grouped, whole, atol=1e-5, rtol=1e-5)
    for grouped_gradient, whole_gradient in zip(grouped_gradients, whole_gradients, strict=True):
        torch.testing.assert_close(grouped_gradient, whole_gradient, atol=1e-5, rtol=1e-4)
    # Rows stay in the batch's order: row i is clip i's embedding.
    with torch.no_grad():
        alone = torch.cat([student(clip_batch) for clip_batch in clip_batches])
    torch.testing.assert_close(grouped, alone, atol=1e-5, rtol=1e-5)


def _concatenated(clip_batches):
    """One zero-padded batch from batches of one clip (the dicts of tensors a student takes)."""
    return {
        key: torch.nn.utils.rnn.pad_sequence(
            [clip_batch[key][0] for clip_batch in clip_batches], batch_first=True
        )
        for key in clip_batches[0]
    }


def test_mel_cnn_length_groups_give_the_whole_batch_embeddings_and_gradients(monkeypatch):
    torch.manual_seed(0)
    n_frames = [31, 7, 52, 18, 40, 9, 25]  # not sorted, odd and even
    clip_batches = [
        {"features": torch.randn(1, frames, 40), "attention_mask": torch.ones(1, frames)}
        for frames in n_frames
    ]
    # Dropout and augmentation draw per batch or per group, so they are off to compare.
    student = MelCNN(40, channels=16, dropout=0.0, augment=False).train()
    _assert_length_groups_change_nothing(student, clip_batches, monkeypatch)


# -- real speech: Free Spoken Digit Dataset ---------------------------------------------------


def _fsdd_folder() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"
    return Path(os.environ.get("CWCL_FSDD_DIR", default))


@pytest.mark.slow
@pytest.mark.skipif(not _fsdd_folder().is_dir(), reason="FSDD not found (set CWCL_FSDD_DIR)")
def test_mel_cnn_recognises_digits_of_an_unseen_speaker_zero_shot():
    corpus = load_benchmark("spoken_digits").load_fsdd(_fsdd_folder(), per_speaker_digit=30)
    train = corpus.speakers != "nicolas"
    aligner = CWCLAligner(
        teacher="bert",
        student="mel-cnn",
        sampling_rate=corpus.sampling_rate,
        max_epochs=10,
        random_state=0,
    ).fit(corpus.clips_where(train), [DIGIT_NAMES[digit] for digit in corpus.digits[train]])
    classifier = ZeroShotClassifier(aligner, labels=dict(enumerate(DIGIT_NAMES)))
    classifier.fit(corpus.clips_where(train), corpus.digits[train])
    accuracy = classifier.score(corpus.clips_where(~train), corpus.digits[~train])
    # Measured 0.78 (torch 2.13 CPU, one thread, about 25 s); chance is 0.10.
    assert accuracy > 0.65


# -- Whisper: the frozen part computed once per clip --------------------------------------------


def _whisper_student(checkpoints, **options):
    from cwcl_sk.encoders.students.audio import build_whisper

    torch.manual_seed(0)
    return build_whisper(None, 384, name_or_path=checkpoints / "whisper", **options)


def _batch(clips):
    from cwcl_sk.encoders.students.audio import speech_inputs

    inputs = speech_inputs()
    return inputs.collate(inputs.prepare(clips), np.arange(len(clips)))


@pytest.mark.parametrize("trainable_layers", [None, 0, 1, 2])
def test_whisper_cached_frozen_part_gives_the_uncached_embeddings(
    trainable_layers, checkpoints, speech_data
):
    from cwcl_sk.encoders.students.activation_cache import clear_activation_cache

    clear_activation_cache()
    clips = speech_data[0][:6]
    cached = _whisper_student(
        checkpoints, trainable_layers=trainable_layers, freeze_feature_encoder=True
    )
    uncached = _whisper_student(
        checkpoints,
        trainable_layers=trainable_layers,
        freeze_feature_encoder=True,
        cache_frozen=False,
    )
    uncached.load_state_dict(cached.state_dict())
    expected = uncached(_batch(clips))
    first = cached(_batch(clips))
    # Second pass in another batch composition and order: read from the cache.
    again = cached(_batch(clips[::-1]))
    torch.testing.assert_close(first, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again, expected.flip(0), atol=1e-5, rtol=1e-5)
    assert cached.activation_cache.hits == 6 and len(cached.activation_cache) == 6


@pytest.mark.parametrize("trainable_layers", [None, 1])
def test_whisper_length_groups_give_the_whole_batch_embeddings_and_gradients(
    trainable_layers, checkpoints, speech_data, monkeypatch
):
    clips = speech_data[0][:7]  # 0.1 to 0.5 s, not sorted by length
    assert sorted(map(len, clips)) != list(map(len, clips))
    student = _whisper_student(checkpoints, trainable_layers=trainable_layers)
    _assert_length_groups_change_nothing(student, [_batch([clip]) for clip in clips], monkeypatch)


def test_whisper_cache_keeps_gradients_of_the_trainable_layers(checkpoints, speech_data):
    from cwcl_sk.encoders.students.activation_cache import clear_activation_cache

    clear_activation_cache()
    student = _whisper_student(checkpoints, trainable_layers=1)
    student.train()
    for _ in range(2):  # the second pass reads the frozen part from the cache
        student.zero_grad()
        student(_batch(speech_data[0][:4])).sum().backward()
        top_layer = student.encoder.layers[1]
        assert all(parameter.grad is not None for parameter in top_layer.parameters())
        assert all(parameter.grad is None for parameter in student.encoder.layers[0].parameters())
    assert student.frozen_depth() == 1 and student.activation_cache.hits == 4


def test_whisper_cache_is_off_while_the_front_end_trains(checkpoints, speech_data):
    from cwcl_sk.encoders.students.activation_cache import clear_activation_cache

    clear_activation_cache()
    student = _whisper_student(checkpoints, freeze_feature_encoder=False)
    assert student.frozen_depth() is None
    student(_batch(speech_data[0][:3]))
    assert len(student.activation_cache) == 0


def test_whisper_cache_is_not_pickled_or_saved(checkpoints, speech_data):
    import copy
    import pickle

    student = _whisper_student(checkpoints, trainable_layers=1)
    student(_batch(speech_data[0][:3]))
    assert len(pickle.dumps(student)) < len(pickle.dumps(student.encoder)) + 100_000
    torch.testing.assert_close(
        pickle.loads(pickle.dumps(student))(_batch(speech_data[0][:3])),
        copy.deepcopy(student)(_batch(speech_data[0][:3])),
    )
    assert not any("activation_cache" in key for key in student.state_dict())


def test_whisper_students_with_the_same_frozen_weights_share_the_cache(checkpoints, speech_data):
    from cwcl_sk.encoders.students.activation_cache import clear_activation_cache

    clear_activation_cache()
    clips = speech_data[0][:4]
    first = _whisper_student(checkpoints, trainable_layers=1)
    first(_batch(clips))
    cache = first.activation_cache
    assert (cache.hits, cache.misses, len(cache)) == (0, 4, 4)
    # A fresh student of the same checkpoint (a clone in a grid search) reads those entries.
    second = _whisper_student(checkpoints, trainable_layers=1)
    second(_batch(clips))
    assert (cache.hits, len(cache)) == (4, 4)
    # Freezing another depth is another computation: new entries.
    _whisper_student(checkpoints, trainable_layers=0)(_batch(clips))
    assert len(cache) == 8


def test_whisper_cache_follows_frozen_weights_loaded_in_place(checkpoints, speech_data):
    from cwcl_sk.encoders.students.activation_cache import clear_activation_cache

    clear_activation_cache()
    clips = speech_data[0][:3]
    student = _whisper_student(checkpoints, trainable_layers=1)
    before = student(_batch(clips))
    state = student.state_dict()
    state["encoder.layers.0.fc2.weight"] = 3.0 * state["encoder.layers.0.fc2.weight"]
    student.load_state_dict(state)
    uncached = _whisper_student(checkpoints, trainable_layers=1, cache_frozen=False)
    uncached.load_state_dict(state)
    after = student(_batch(clips))
    torch.testing.assert_close(after, uncached(_batch(clips)), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(after, before, atol=1e-3)


def test_whisper_fit_with_cache_matches_fit_without(checkpoints, speech_data):
    options = {"student__name_or_path": checkpoints / "whisper", "student__trainable_layers": 1}
    cached = _fitted("whisper", speech_data, **options)
    uncached = _fitted("whisper", speech_data, student__cache_frozen=False, **options)
    np.testing.assert_allclose(
        cached.transform(speech_data[0]), uncached.transform(speech_data[0]), atol=1e-5
    )


def test_whisper_bad_cache_frozen_is_named(checkpoints, speech_data):
    with pytest.raises(TypeError, match="student__cache_frozen must be True or False"):
        _fitted(
            "whisper",
            speech_data,
            student__name_or_path=checkpoints / "whisper",
            student__cache_frozen="yes",
        )


def test_activation_cache_stops_filling_at_its_bound():
    from cwcl_sk.encoders.students.activation_cache import ActivationCache

    cache = ActivationCache(max_bytes=3 * 4 * 10)  # three rows of 10 float32
    for item in range(5):
        cache.put(("model", item), torch.full((10,), float(item)))
    assert len(cache) == 3 and cache.n_bytes == 120
    assert cache.get(("model", 4)) is None
    assert torch.equal(cache.get(("model", 2)), torch.full((10,), 2.0))
    cache.clear()
    assert len(cache) == 0 and cache.n_bytes == 0 and cache.hits == 0


def test_activation_cache_drops_other_models_when_full():
    from cwcl_sk.encoders.students.activation_cache import ActivationCache

    cache = ActivationCache(max_bytes=3 * 4 * 10)
    for item in range(2):
        cache.put(("old", item), torch.zeros(10))
    cache.put(("new", 0), torch.ones(10))
    assert len(cache) == 3
    cache.put(("new", 1), torch.ones(10))  # does not fit: the old model's entries go
    assert cache.get(("old", 0)) is None and cache.get(("new", 1)) is not None
    assert len(cache) == 2 and cache.n_bytes == 80


def test_module_digest_sees_weights_and_settings():
    from cwcl_sk.encoders.students.activation_cache import module_digest

    layer = torch.nn.Linear(3, 2)
    digest = module_digest("depth 1", layer)
    assert module_digest("depth 1", layer) == digest
    assert module_digest("depth 2", layer) != digest
    with torch.no_grad():
        layer.bias.add_(1e-6)
    assert module_digest("depth 1", layer) != digest
