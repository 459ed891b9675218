"""Clip stores: a stream of (clip, text) pairs spooled once to disk and read back per clip."""

import json
import pickle
import tracemalloc

import librosa
import numpy as np
import pytest
import soundfile
from test_speech_students import _clips

from cwcl_sk import ClipStore, CWCLAligner, spool_pairs
from cwcl_sk.inputs.sources import BadInputError, ClipSource, find_bad_inputs

RATE = 16000


def _pairs(n_clips: int, seed: int = 0, rate: int = RATE):
    """A generator of (clip, text) pairs: noise of 10 to 60 ms, text "pair i"."""
    rng = np.random.default_rng(seed)
    for index in range(n_clips):
        length = int(rng.integers(rate // 100, rate * 6 // 100))
        yield rng.standard_normal(length).astype(np.float32), f"pair {index}"


def _never_read():
    """A source that fails the test if anything iterates it."""
    raise AssertionError("the source was read")
    yield  # a generator function, so that calling it reads nothing


def test_store_from_a_generator_round_trips_every_clip_exactly(tmp_path):
    expected_clips, expected_texts = zip(*_pairs(200), strict=True)
    store, texts = spool_pairs(_pairs(200), tmp_path / "store")
    assert isinstance(store, ClipSource) and len(store) == 200 and store.sampling_rate == RATE
    assert texts == list(expected_texts) and store.read_texts() == texts
    for index, clip in enumerate(expected_clips):
        np.testing.assert_array_equal(store[index], clip)
    assert store.skipped == []


def test_a_clip_read_is_a_copy_not_a_view_of_the_memory_map(tmp_path):
    store, _ = spool_pairs(_pairs(3), tmp_path / "store")
    clip = store[1]
    assert type(clip) is np.ndarray and clip.dtype == np.float32
    assert clip.flags.owndata and clip.flags.writeable


def test_spooling_does_not_hold_the_clips_in_memory(tmp_path):
    n_clips = 2000
    clip_bytes = RATE * 4  # one second of float32

    def one_second_clips():
        rng = np.random.default_rng(0)
        for index in range(n_clips):
            yield rng.standard_normal(RATE, dtype=np.float32), f"clip {index}"

    tracemalloc.start()
    try:
        store, texts = spool_pairs(one_second_clips(), tmp_path / "store")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(store) == n_clips and len(texts) == n_clips
    total = n_clips * clip_bytes  # 128 MB
    # A few clips in flight, the texts and the index: far below the corpus.
    assert peak < total / 50, f"peak {peak / 2**20:.1f} MiB for {total / 2**20:.0f} MiB of clips"
    assert (tmp_path / "store" / "samples.f32").stat().st_size == total


def test_a_bad_item_raises_with_its_position_in_the_stream(tmp_path):
    def stream():
        yield np.ones(100, dtype=np.float32), "fine"
        yield np.ones(100, dtype=np.float32), "fine too"
        yield np.array([1.0, np.nan], dtype=np.float32), "not finite"

    with pytest.raises(BadInputError, match=r"item 2 of source contains NaN") as caught:
        spool_pairs(stream(), tmp_path / "store")
    assert caught.value.index == 2
    assert "on_bad_input='skip'" in str(caught.value)
    assert not (tmp_path / "store").exists()


def test_a_corrupt_file_in_the_stream_is_named_with_its_path(tmp_path):
    good = tmp_path / "good.wav"
    soundfile.write(good, np.zeros(800, dtype=np.float32), 8000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(BadInputError, match=r"item 1 of source could not be read.*corrupt\.wav"):
        spool_pairs([(good, "good"), (corrupt, "bad")], tmp_path / "store")


def test_bad_items_are_skipped_recorded_and_warned_about_when_asked(tmp_path):
    def stream():
        for index in range(10):
            if index in (3, 7):
                yield np.zeros(0, dtype=np.float32), f"empty {index}"
            else:
                yield np.full(50, index, dtype=np.float32), f"clip {index}"

    with pytest.warns(UserWarning, match=r"left out 2 unreadable items of 10"):
        store, texts = spool_pairs(stream(), tmp_path / "store", on_bad_input="skip")
    assert len(store) == 8 and texts == [f"clip {i}" for i in range(10) if i not in (3, 7)]
    assert [int(store[i][0]) for i in range(8)] == [0, 1, 2, 4, 5, 6, 8, 9]
    assert [record["position"] for record in store.skipped] == [3, 7]
    assert "empty clip" in store.skipped[0]["error"]
    # The record lasts: a reopened store still says what was left out.
    assert ClipStore(tmp_path / "store").skipped == store.skipped


def test_a_text_that_is_not_a_string_is_a_bad_item(tmp_path):
    with pytest.raises(BadInputError, match=r"item 0 of source.*its text is NoneType"):
        spool_pairs([(np.ones(10), None)], tmp_path / "store")


def test_an_interrupted_spool_leaves_no_store_and_a_rerun_completes(tmp_path):
    def interrupted():
        for index, pair in enumerate(_pairs(100)):
            if index == 50:
                raise RuntimeError("the stream broke")
            yield pair

    with pytest.raises(RuntimeError, match=r"the stream broke"):
        spool_pairs(interrupted(), tmp_path / "store")
    assert list(tmp_path.iterdir()) == []  # neither the store nor its temporary folder
    store, texts = spool_pairs(_pairs(100), tmp_path / "store")
    assert len(store) == 100 and texts[-1] == "pair 99"


def test_reopening_a_complete_store_returns_its_texts_without_reading_the_source(tmp_path):
    first, texts = spool_pairs(_pairs(20), tmp_path / "store")
    again, texts_again = spool_pairs(_never_read(), tmp_path / "store")
    assert texts_again == texts and again.fingerprint() == first.fingerprint()
    np.testing.assert_array_equal(again[19], first[19])


def test_overwrite_reads_the_source_again_and_replaces_the_store(tmp_path):
    spool_pairs(_pairs(20), tmp_path / "store")
    store, texts = spool_pairs(_pairs(5, seed=1), tmp_path / "store", overwrite=True)
    assert len(store) == 5 and texts == [f"pair {i}" for i in range(5)]
    np.testing.assert_array_equal(store[4], list(_pairs(5, seed=1))[4][0])


def test_reopening_at_another_sampling_rate_is_refused(tmp_path):
    spool_pairs(_pairs(3), tmp_path / "store")
    with pytest.raises(ValueError, match=r"at 16000 Hz, not sampling_rate=8000.*overwrite=True"):
        spool_pairs(_never_read(), tmp_path / "store", sampling_rate=8000)


def test_spooling_refuses_a_folder_with_other_contents(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"directory: .* other contents"):
        spool_pairs(_pairs(3), tmp_path / "store")
    assert (tmp_path / "store" / "notes.txt").read_text() == "mine"


def test_rows_with_audio_dicts_are_resampled_to_the_store_rate(tmp_path):
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(800).astype(np.float32) for _ in range(3)]
    rows = [
        {"audio": {"array": clip, "sampling_rate": 8000}, "transcript": f"row {index}"}
        for index, clip in enumerate(clips)
    ]
    store, texts = spool_pairs(rows, tmp_path / "store", text="transcript")
    assert texts == ["row 0", "row 1", "row 2"]
    expected = librosa.resample(clips[2], orig_sr=8000, target_sr=RATE)
    np.testing.assert_allclose(store[2], expected, atol=1e-6)


def test_paths_and_encoded_bytes_are_decoded(tmp_path):
    samples = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    path = tmp_path / "clip.wav"
    soundfile.write(path, samples, RATE, subtype="FLOAT")
    rows = [
        {"audio": str(path), "text": "a path"},
        {"audio": {"bytes": path.read_bytes(), "path": None}, "text": "bytes"},
        {"audio": {"array": None, "path": path}, "text": "a dict with a path"},
    ]
    store, _ = spool_pairs(rows, tmp_path / "store")
    for index in range(3):
        np.testing.assert_array_equal(store[index], samples)


def test_an_item_of_the_wrong_shape_is_an_error_even_when_skipping(tmp_path):
    with pytest.raises(TypeError, match=r"item 1 of source is int; expected a \(clip, text\)"):
        spool_pairs([(np.ones(10), "fine"), 3], tmp_path / "store", on_bad_input="skip")
    with pytest.raises(ValueError, match=r"item 0 of source has no field 'audio'.*'speech'"):
        spool_pairs([{"speech": np.ones(10), "text": "x"}], tmp_path / "store")


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"source": "clips.wav"}, TypeError, "source must be an iterable"),
        ({"sampling_rate": 16000.0}, TypeError, "sampling_rate must be an integer"),
        ({"sampling_rate": 0}, ValueError, "sampling_rate must be positive"),
        ({"on_bad_input": "ignore"}, ValueError, "on_bad_input must be 'raise' or 'skip'"),
        ({"overwrite": "yes"}, TypeError, "overwrite must be True or False"),
        ({"source": []}, ValueError, "source is empty"),
    ],
)
def test_bad_spool_arguments_are_named(arguments, error, message, tmp_path):
    arguments = {"source": _pairs(2), "directory": tmp_path / "store", **arguments}
    with pytest.raises(error, match=message):
        spool_pairs(**arguments)


def test_a_stream_of_only_bad_items_is_an_error_when_skipping(tmp_path):
    with pytest.raises(ValueError, match=r"all 2 items were unreadable.*empty clip"):
        spool_pairs([(np.zeros(0), "a"), (np.zeros(0), "b")], tmp_path / "s", on_bad_input="skip")


def test_store_pickles_as_its_folder_and_reads_in_dataloader_workers(tmp_path):
    store, _ = spool_pairs(_pairs(10), tmp_path / "store")
    store[0]  # maps the samples: the pickle must still leave them out
    payload = pickle.dumps(store)
    assert len(payload) < 500
    copy = pickle.loads(payload)
    assert copy.fingerprint() == store.fingerprint()
    np.testing.assert_array_equal(copy[9], store[9])
    assert find_bad_inputs(store, num_workers=1) == []


def test_store_describes_its_clips_and_names_them_in_errors(tmp_path):
    store, _ = spool_pairs(_pairs(3), tmp_path / "store")
    assert store.describe(2) == f"clip 2 of store '{tmp_path / 'store'}'"
    with pytest.raises(IndexError, match=r"index 3 out of range for 3 items"):
        store[3]


def test_fingerprint_follows_the_samples(tmp_path):
    first, _ = spool_pairs(_pairs(5), tmp_path / "first")
    same, _ = spool_pairs(_pairs(5), tmp_path / "same")
    other, _ = spool_pairs(_pairs(5, seed=1), tmp_path / "other")
    assert first.fingerprint() == same.fingerprint() != other.fingerprint()


def test_opening_a_folder_that_is_not_a_store_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No clip store at .*does not exist"):
        ClipStore(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match=r"is not a clip store: it has no header.json"):
        ClipStore(tmp_path / "plain")
    (tmp_path / "plain" / "header.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match=r"is not a clip store: .* another file's header"):
        ClipStore(tmp_path / "plain")


@pytest.mark.parametrize(
    "damage", ["truncate samples", "remove index", "drop a text", "remove texts"]
)
def test_opening_an_incomplete_store_says_so(damage, tmp_path):
    folder = tmp_path / "store"
    spool_pairs(_pairs(5), folder)
    if damage == "truncate samples":
        with open(folder / "samples.f32", "r+b") as file:
            file.truncate(100)
    elif damage == "remove index":
        (folder / "index.npy").unlink()
    elif damage == "remove texts":
        (folder / "texts.jsonl").unlink()
    else:
        lines = (folder / "texts.jsonl").read_text().splitlines()
        (folder / "texts.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"is incomplete: .*overwrite=True"):
        ClipStore(folder).read_texts()
    with pytest.raises(ValueError, match=r"is incomplete"):
        spool_pairs(_never_read(), folder)


def test_hugging_face_datasets_spool_as_they_are(tmp_path):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(400 + 40 * index).astype(np.float32) for index in range(6)]
    table = datasets.Dataset.from_dict(
        {
            # Plain float lists with their rate: the decoded form of an Audio column, without
            # the decoding libraries an Audio feature needs.
            "audio": [{"array": clip.tolist(), "sampling_rate": 8000} for clip in clips],
            "text": [f"utterance {index}" for index in range(6)],
        }
    )
    for name, rows in [("table", table), ("stream", table.to_iterable_dataset())]:
        store, texts = spool_pairs(rows, tmp_path / name)
        assert texts == [f"utterance {index}" for index in range(6)]
        expected = librosa.resample(clips[5], orig_sr=8000, target_sr=RATE)
        np.testing.assert_allclose(store[5], expected, atol=1e-6)


def test_aligner_fits_on_a_spooled_store(tmp_path):
    from cwcl_sk.inputs import InputSource, clip_source

    clips, words = _clips(24)
    store, texts = spool_pairs(zip(clips, words, strict=True), tmp_path / "store")
    # Kept as a source read per batch, not loaded.
    assert isinstance(clip_source(store, RATE), InputSource)
    options = {"student__channels": 16, "max_epochs": 3, "learning_rate": 3e-3}
    aligner = CWCLAligner(student="mel-cnn", batch_size=8, random_state=0, **options)
    aligner.fit(store, texts)
    embeddings = aligner.transform(store)
    assert embeddings.shape == (24, 384) and np.isfinite(embeddings).all()
    in_memory = CWCLAligner(**aligner.get_params()).fit(clips, words)
    np.testing.assert_allclose(embeddings, in_memory.transform(clips), atol=1e-5)
