"""Speech synthesis with espeak-ng: cwcl_sk.datasets.synthesize_speech and the voice lists."""

import doctest
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cwcl_sk.datasets import (
    ENGLISH_VOICES,
    _espeak,
    list_voice_variants,
    list_voices,
    speech,
    synthesize_speech,
)

SENTENCE = "turn on the lights in the kitchen"


@pytest.fixture
def espeak():
    """Skip tests that synthesise when the synthesiser is not installed."""
    pytest.importorskip("espeakng_loader")


def rms(clip):
    return float(np.sqrt(np.mean(np.square(clip, dtype=np.float64))))


def test_same_seed_gives_identical_audio(espeak):
    options = dict(voices=ENGLISH_VOICES, rate=(130, 230), pitch=(30, 70), random_state=3)
    first = synthesize_speech([SENTENCE, "seven", "what time is it"], **options)
    second = synthesize_speech([SENTENCE, "seven", "what time is it"], **options)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_with_jitter_give_different_audio(espeak):
    options = dict(voices=ENGLISH_VOICES, rate=(130, 230), pitch=(30, 70))
    first = synthesize_speech([SENTENCE], random_state=0, **options)[0]
    second = synthesize_speech([SENTENCE], random_state=1, **options)[0]
    assert first.shape != second.shape or not np.array_equal(first, second)


def test_audio_does_not_depend_on_what_was_synthesised_before(espeak):
    # libespeak-ng carries pitch and gain state across utterances unless it is reloaded.
    clips = synthesize_speech([SENTENCE, "something else entirely, and longer", SENTENCE])
    np.testing.assert_array_equal(clips[0], clips[2])


def test_clips_are_mono_float32_in_range_and_audible(espeak):
    clips = synthesize_speech([SENTENCE, "seven"])
    for clip in clips:
        assert clip.dtype == np.float32
        assert clip.ndim == 1
        assert np.abs(clip).max() <= 1.0
        assert rms(clip) > 0.02


def test_short_sentence_lasts_a_plausible_time(espeak):
    clip = synthesize_speech([SENTENCE], sampling_rate=16000)[0]
    assert 0.8 < len(clip) / 16000 < 5.0
    assert 0.2 < len(synthesize_speech(["seven"])[0]) / 16000 < 1.5


def test_longer_text_gives_longer_audio(espeak):
    short, long = synthesize_speech(["the lights", SENTENCE + " and in the living room"])
    assert len(long) > 2 * len(short)


def test_faster_rate_gives_shorter_audio(espeak):
    slow = synthesize_speech([SENTENCE], rate=120)[0]
    fast = synthesize_speech([SENTENCE], rate=300)[0]
    assert len(fast) < 0.7 * len(slow)


def test_pitch_changes_the_audio(espeak):
    low = synthesize_speech([SENTENCE], pitch=10)[0]
    high = synthesize_speech([SENTENCE], pitch=90)[0]
    assert low.shape != high.shape or not np.array_equal(low, high)


@pytest.mark.parametrize("voice", ENGLISH_VOICES)
def test_every_recommended_voice_speaks(espeak, voice):
    clip = synthesize_speech(["the number eight"], voices=voice)[0]
    assert 0.2 < len(clip) / 16000 < 3.0
    assert rms(clip) > 0.02


def test_recommended_voices_sound_different(espeak):
    clips = [synthesize_speech(["the number eight"], voices=voice)[0] for voice in ENGLISH_VOICES]
    fingerprints = {clip.tobytes() for clip in clips}
    assert len(fingerprints) == len(ENGLISH_VOICES)


def test_recommended_voices_are_listed_in_the_docstring():
    for voice in ENGLISH_VOICES:
        assert f'``"{voice}"``' in synthesize_speech.__doc__


def test_list_voices_names_english_accents(espeak):
    english = list_voices()
    assert {"en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029"} <= set(english)
    assert all(name.startswith("en") for name in english)
    assert english == sorted(english)
    assert len(list_voices(language=None)) > 50
    assert {voice.split("+")[0] for voice in ENGLISH_VOICES} <= set(english)


def test_list_voice_variants_names_male_and_female_timbres(espeak):
    variants = list_voice_variants()
    assert {"m1", "m3", "f1", "f3", "klatt"} <= set(variants)
    assert {voice.split("+")[1] for voice in ENGLISH_VOICES if "+" in voice} <= set(variants)


def test_voice_names_are_case_insensitive(espeak):
    upper = synthesize_speech(["seven"], voices="EN-US+F3")[0]
    lower = synthesize_speech(["seven"], voices="en-us+f3")[0]
    np.testing.assert_array_equal(upper, lower)


def test_unknown_voice_is_rejected_with_the_valid_ones(espeak):
    with pytest.raises(ValueError, match=r"voices\[1\] is 'en-usa'.*'en-us'.*list_voices"):
        synthesize_speech(["seven"], voices=["en-gb", "en-usa"])


def test_unknown_variant_is_rejected_with_the_valid_ones(espeak):
    with pytest.raises(ValueError, match=r"voices is 'en-us\+f9'.*'f3'.*list_voice_variants"):
        synthesize_speech(["seven"], voices="en-us+f9")


@pytest.mark.parametrize(
    ("voices", "error"), [([], ValueError), (3, TypeError), (["en-us", ""], TypeError)]
)
def test_malformed_voices_are_rejected(voices, error):
    with pytest.raises(error, match="voices"):
        synthesize_speech(["seven"], voices=voices)


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        ("seven", TypeError, "single string"),
        ([], ValueError, "texts is empty"),
        (["seven", ""], ValueError, r"texts\[1\] is an empty string"),
        (["seven", "   "], ValueError, r"texts\[1\] is an empty string"),
        (["seven", 8], TypeError, r"texts\[1\] is int"),
        (42, TypeError, "texts is int"),
        ({"seven", "eight"}, TypeError, "texts is set"),
        (np.array([["a", "b"]]), ValueError, "1-D"),
    ],
)
def test_bad_texts_are_rejected(texts, error, message):
    with pytest.raises(error, match=message):
        synthesize_speech(texts)


def test_texts_may_be_any_ordered_collection(espeak):
    expected = synthesize_speech(["seven", "eight"])
    for texts in (("seven", "eight"), np.array(["seven", "eight"]), iter(["seven", "eight"])):
        for a, b in zip(expected, synthesize_speech(texts), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"rate": 40}, ValueError, "'rate'.*>= 80"),
        ({"rate": 900}, ValueError, "'rate'.*<= 450"),
        ({"rate": (220, 150)}, ValueError, "'rate'.*low > high"),
        ({"rate": (150,)}, TypeError, "'rate'.*pair"),
        ({"rate": "fast"}, TypeError, "'rate'"),
        ({"pitch": 101}, ValueError, "'pitch'.*<= 100"),
        ({"pitch": (-5, 50)}, ValueError, "'pitch'.*>= 0"),
        ({"pitch": True}, TypeError, "'pitch'"),
        ({"sampling_rate": 0}, ValueError, "'sampling_rate'"),
        ({"sampling_rate": 16000.0}, TypeError, "'sampling_rate'"),
    ],
)
def test_bad_rate_pitch_and_sampling_rate_are_rejected(options, error, message):
    with pytest.raises(error, match=message):
        synthesize_speech(["seven"], **options)


def test_sampling_rate_sets_the_number_of_samples(espeak):
    native = synthesize_speech([SENTENCE], sampling_rate=22050)[0]
    for rate in (8000, 16000, 44100):
        clip = synthesize_speech([SENTENCE], sampling_rate=rate)[0]
        assert abs(len(clip) - len(native) * rate / 22050) <= 1
        assert np.abs(clip).max() <= 1.0


def test_native_rate_is_the_synthesiser_output_unchanged(espeak):
    clip = synthesize_speech(["seven"], sampling_rate=22050)[0]
    samples = _espeak.synthesize("seven", "gmw/en-US", 175, 50)
    np.testing.assert_array_equal(clip, samples / np.float32(32768))


def test_cache_serves_the_second_call_from_disk(espeak, tmp_path, monkeypatch):
    options = dict(voices=ENGLISH_VOICES, rate=(150, 200), random_state=0, cache_dir=tmp_path)
    first = synthesize_speech([SENTENCE, "seven"], **options)
    assert len(list(tmp_path.glob("*.npy"))) == 2

    def fail(*args, **kwargs):
        raise AssertionError("synthesised although the clip is cached")

    monkeypatch.setattr(speech, "_speak", fail)
    second = synthesize_speech([SENTENCE, "seven"], **options)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_cache_keeps_clips_of_other_settings_apart(espeak, tmp_path):
    synthesize_speech(["seven"], cache_dir=tmp_path)
    synthesize_speech(["seven"], cache_dir=tmp_path, rate=200)
    synthesize_speech(["seven"], cache_dir=tmp_path, sampling_rate=8000)
    synthesize_speech(["seven"], cache_dir=tmp_path, voices="en-gb")
    assert len(list(tmp_path.glob("*.npy"))) == 4


def test_unreadable_cache_file_is_synthesised_again(espeak, tmp_path):
    expected = synthesize_speech(["seven"], cache_dir=tmp_path)[0]
    (cached,) = tmp_path.glob("*.npy")
    cached.write_bytes(b"not a numpy file")
    np.testing.assert_array_equal(synthesize_speech(["seven"], cache_dir=tmp_path)[0], expected)
    np.testing.assert_array_equal(np.load(cached), expected)


def test_cache_dir_that_is_a_file_is_rejected(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(ValueError, match="cache_dir"):
        synthesize_speech(["seven"], cache_dir=path)


def test_voices_are_drawn_per_text_from_random_state(espeak, monkeypatch):
    spoken = []

    def record(text, identifier, rate, pitch):
        spoken.append((identifier, rate, pitch))
        return np.ones(100, dtype=np.int16)

    monkeypatch.setattr(_espeak, "synthesize", record)
    texts = [f"text {index}" for index in range(40)]
    synthesize_speech(texts, voices=["en-us", "en-gb+f3"], rate=(100, 300), random_state=0)
    assert {identifier for identifier, _, _ in spoken} == {"gmw/en-US", "gmw/en+f3"}
    assert all(100 <= rate <= 300 for _, rate, _ in spoken)
    assert len({rate for _, rate, _ in spoken}) > 20
    assert {pitch for _, _, pitch in spoken} == {50}

    # A text's draws do not depend on how many texts follow it.
    first_ten = spoken[:10]
    spoken.clear()
    synthesize_speech(texts[:10], voices=["en-us", "en-gb+f3"], rate=(100, 300), random_state=0)
    assert spoken == first_ten


def test_text_with_nothing_to_pronounce_warns(espeak):
    with pytest.warns(UserWarning, match=r"texts\[0\].*silence"):
        synthesize_speech(["..."])


def test_progress_bar_is_shown_when_verbose(espeak, capsys):
    synthesize_speech(["seven", "eight"], verbose=1)
    assert "synthesising speech" in capsys.readouterr().err
    synthesize_speech(["seven", "eight"], verbose=0)
    assert "synthesising speech" not in capsys.readouterr().err


def test_concurrent_calls_give_the_same_audio_as_sequential_ones(espeak):
    texts = [SENTENCE, "seven", "what time is it", "the number eight"]
    expected = synthesize_speech(texts, voices=ENGLISH_VOICES, random_state=0)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda _: synthesize_speech(texts, voices=ENGLISH_VOICES, random_state=0),
                range(4),
            )
        )
    for clips in results:
        for a, b in zip(expected, clips, strict=True):
            np.testing.assert_array_equal(a, b)


def test_missing_synthesiser_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # makes the import fail
    monkeypatch.setattr(_espeak, "_private_library", None)
    monkeypatch.setattr(_espeak, "_catalogue", None)
    with pytest.raises(ImportError, match=r"pip install espeakng-loader.*cwcl-sk\[speech\]"):
        synthesize_speech(["seven"])
    with pytest.raises(ImportError, match="pip install espeakng-loader"):
        list_voices()


def test_docstring_examples_run(espeak):
    results = doctest.testmod(speech, optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0
    assert results.failed == 0
