"""Training on a corpus read on demand: file lists decoded per batch, bad files, memory-mapped
teacher embeddings, and the training features (GradCache, validation, early stopping,
checkpoints) on such data."""

import warnings

import numpy as np
import pytest
import soundfile
import torch

from cwcl_sk import CWCLAligner
from cwcl_sk.encoders.students.audio import speech_inputs
from cwcl_sk.inputs import AudioFiles, BadInputError, ClipSource, InputSource, Subset, load_audio
from cwcl_sk.training.targets import PairEmbeddings

RATE = 8000
CAPTIONS = ["a low hum", "a middle tone", "a high whistle", "a rising chirp"]
FAST = {
    "teacher": "bert",
    "student": "mel-cnn",
    "sampling_rate": RATE,
    "batch_size": 8,
    "max_epochs": 2,
    "device": "cpu",
    "random_state": 0,
}


def _clip(kind: int, rng: np.random.Generator) -> np.ndarray:
    seconds = rng.uniform(0.2, 0.4)
    t = np.arange(int(seconds * RATE)) / RATE
    frequency = [200, 700, 1800, 300 + 2000 * t][kind]
    tone = 0.5 * np.sin(2 * np.pi * frequency * t) + 0.01 * rng.normal(size=t.size)
    return tone.astype(np.float32)


@pytest.fixture
def corpus(tmp_path):
    """40 wav files of four kinds of sound, and their captions."""
    rng = np.random.default_rng(0)
    paths, texts = [], []
    for index in range(40):
        kind = index % 4
        path = tmp_path / f"clip{index:02d}.wav"
        soundfile.write(path, _clip(kind, rng), RATE)
        paths.append(str(path))
        texts.append(CAPTIONS[kind])
    return paths, texts


def _corrupt(path) -> None:
    with open(path, "w") as file:
        file.write("not audio at all")


def test_a_list_of_paths_is_read_on_demand(corpus):
    paths, _ = corpus
    data = speech_inputs(RATE).prepare(paths)
    assert isinstance(data, InputSource) and len(data) == len(paths)
    assert data[3].dtype == np.float32 and data[3].ndim == 1
    # The same samples as loading them all at once.
    np.testing.assert_array_equal(data[3], load_audio([paths[3]], target_sampling_rate=16000)[0])


def test_missing_file_fails_before_training_with_its_index(corpus):
    paths, texts = corpus
    with pytest.raises(FileNotFoundError, match=r"X\[2\]: no such audio file.*nowhere.wav"):
        CWCLAligner(**FAST).fit([*paths[:2], "nowhere.wav", *paths[3:]], texts)


def test_fit_on_paths_equals_fit_on_the_loaded_clips(corpus):
    paths, texts = corpus
    lazy = CWCLAligner(**FAST).fit(paths, texts)
    eager = CWCLAligner(**FAST).fit(load_audio(paths, RATE), texts)
    assert [r["train_loss"] for r in lazy.history_] == [r["train_loss"] for r in eager.history_]
    np.testing.assert_allclose(lazy.transform(paths), eager.transform(paths), atol=1e-6)


def test_workers_decode_the_files(corpus):
    paths, texts = corpus
    in_process = CWCLAligner(**FAST).fit(paths, texts)
    with_workers = CWCLAligner(**FAST, num_workers=2).fit(paths, texts)
    np.testing.assert_allclose(
        with_workers.transform(paths), in_process.transform(paths), atol=1e-6
    )


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_corrupt_file_stops_training_with_its_path_and_index(corpus, num_workers):
    paths, texts = corpus
    _corrupt(paths[17])
    aligner = CWCLAligner(**FAST, num_workers=num_workers)
    with pytest.raises(BadInputError, match=r"X\[17\] could not be decoded.*clip17.wav"):
        aligner.fit(paths, texts)
    # Nothing was completed: the estimator is not fitted.
    assert not hasattr(aligner, "student_")


def test_an_error_in_a_later_call_keeps_the_completed_epochs(corpus):
    paths, texts = corpus
    aligner = CWCLAligner(**FAST).fit(paths, texts)
    before = aligner.transform(paths[:4])
    _corrupt(paths[5])
    with pytest.raises(BadInputError, match=r"on_bad_input='skip'"):
        aligner.partial_fit(paths, texts)
    assert len(aligner.history_) == 2
    assert aligner.stop_reason_ == "error"
    np.testing.assert_array_equal(aligner.transform(paths[:4]), before)


def test_skip_leaves_corrupt_files_out_and_counts_them(corpus):
    paths, texts = corpus
    for index in (3, 11, 30):
        _corrupt(paths[index])
    aligner = CWCLAligner(**FAST, on_bad_input="skip")
    with pytest.warns(UserWarning, match=r"3 of 40 training inputs could not be read"):
        aligner.fit(paths, texts)
    assert [record["index"] for record in aligner.skipped_inputs_] == [3, 11, 30]
    assert aligner.skipped_inputs_[0]["source"].endswith("clip03.wav'")
    assert all(record["skipped_inputs"] == 3 for record in aligner.history_)
    # The clean fit on the 37 readable pairs is the same model.
    keep = [index for index in range(40) if index not in (3, 11, 30)]
    clean = CWCLAligner(**FAST).fit([paths[i] for i in keep], [texts[i] for i in keep])
    good = [paths[i] for i in keep[:5]]
    np.testing.assert_allclose(aligner.transform(good), clean.transform(good), atol=1e-6)


def test_skip_with_no_readable_input_is_an_error(corpus):
    paths, texts = corpus
    for path in paths[:8]:
        _corrupt(path)
    with pytest.raises(ValueError, match=r"None of the 8 inputs of X could be read"):
        CWCLAligner(**FAST, on_bad_input="skip").fit(paths[:8], texts[:8])


def test_a_clean_fit_records_no_skipped_inputs(corpus):
    paths, texts = corpus
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        aligner = CWCLAligner(**{**FAST, "max_epochs": 1}, on_bad_input="skip").fit(paths, texts)
    assert aligner.skipped_inputs_ == [] and aligner.history_[0]["skipped_inputs"] == 0


def test_on_bad_input_is_validated():
    with pytest.raises(ValueError, match=r"on_bad_input.*'raise'.*'skip'|on_bad_input.*skip"):
        CWCLAligner(on_bad_input="ignore").fit(np.ones((4, 2)), ["a", "b", "c", "d"])


def test_cache_dir_memory_maps_the_pair_embeddings(corpus, tmp_path):
    paths, texts = corpus
    in_memory = CWCLAligner(**FAST).fit(paths, texts)
    on_disk = CWCLAligner(**FAST, cache_dir=tmp_path / "cache").fit(paths, texts)
    assert isinstance(on_disk.candidate_embeddings_, np.memmap)
    assert list((tmp_path / "cache").glob("*/pairs/*.npy"))
    np.testing.assert_array_equal(on_disk.candidate_embeddings_, in_memory.candidate_embeddings_)
    np.testing.assert_allclose(on_disk.transform(paths), in_memory.transform(paths), atol=1e-6)
    assert on_disk.predict(paths[:4]).tolist() == in_memory.predict(paths[:4]).tolist()


def test_pair_embeddings_gather_the_same_rows_from_memory_and_from_disk(tmp_path):
    unique = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.save(tmp_path / "rows.npy", unique)
    inverse = np.array([4, 0, 0, 2, 1, 3, 4])
    in_memory = PairEmbeddings(unique, inverse, "cpu")
    on_disk = PairEmbeddings(np.load(tmp_path / "rows.npy", mmap_mode="r"), inverse, "cpu")
    rows = torch.tensor([6, 0, 3, 3])
    assert on_disk.on_disk and not in_memory.on_disk
    assert len(on_disk) == 7 and on_disk.shape == (7, 3)
    torch.testing.assert_close(on_disk[rows], in_memory[rows])
    torch.testing.assert_close(in_memory[rows], torch.from_numpy(unique[inverse[[6, 0, 3, 3]]]))
    np.testing.assert_array_equal(on_disk.distinct_sample(10), unique)
    assert on_disk.distinct_sample(2).shape == (2, 3)


def test_grad_cache_validation_early_stopping_and_resume_on_files(corpus, tmp_path):
    paths, texts = corpus
    settings = {
        **FAST,
        "max_epochs": 3,
        "mini_batch_size": 3,
        "validation_fraction": 0.25,
        "early_stopping": True,
        "patience": 5,
        "checkpoint_dir": tmp_path / "checkpoints",
        "cache_dir": tmp_path / "cache",
    }
    stopped = CWCLAligner(**{**settings, "patience": 1, "max_epochs": 4}).fit(paths, texts)
    assert stopped.stop_reason_ in ("early_stopping", "max_epochs")
    assert "valid_loss" in stopped.history_[-1]
    # Early stopping keeps the best epoch's weights, which a checkpoint of a later epoch does
    # not hold: the resume below is compared without it.
    settings["early_stopping"] = False
    full = CWCLAligner(**settings).fit(paths, texts)
    assert len(full.history_) == 3 and "valid_loss" in full.history_[-1]
    # Stopped after two epochs, then resumed from the checkpoint: the same run.
    two = CWCLAligner(**{**settings, "max_epochs": 2, "checkpoint_dir": tmp_path / "two"})
    two.fit(paths, texts)
    resumed = CWCLAligner(**settings).fit(paths, texts, resume_from=tmp_path / "two" / "epoch-0002")
    assert len(resumed.history_) == 3
    np.testing.assert_allclose(resumed.transform(paths[:6]), full.transform(paths[:6]), atol=1e-5)


def test_a_resume_on_other_files_is_refused(corpus, tmp_path):
    paths, texts = corpus
    CWCLAligner(**FAST, checkpoint_dir=tmp_path / "run").fit(paths, texts)
    other = [*paths[1:], paths[0]]
    with pytest.raises(ValueError, match="resume"):
        CWCLAligner(**{**FAST, "max_epochs": 3}).fit(
            other, [*texts[1:], texts[0]], resume_from=tmp_path / "run" / "epoch-0002"
        )


class _Generated(ClipSource):
    """Clips made on demand; clip ``bad`` raises."""

    sampling_rate = RATE

    def __init__(self, n, bad=None):
        self.n, self.bad = n, bad

    def __len__(self):
        return self.n

    def read(self, index):
        if index == self.bad:
            raise OSError("the disk said no")
        return _clip(index % 4, np.random.default_rng(index))

    def describe(self, index):
        return f"generated clip {index}"


def test_any_clip_source_trains_and_names_its_bad_items():
    texts = [CAPTIONS[index % 4] for index in range(24)]
    aligner = CWCLAligner(**FAST).fit(_Generated(24), texts)
    assert aligner.transform(_Generated(24)).shape == (24, 384)
    with pytest.raises(BadInputError, match=r"X\[7\] could not be read \(generated clip 7\)"):
        CWCLAligner(**FAST).fit(_Generated(24, bad=7), texts)


def test_subsets_keep_the_original_index_in_errors():
    subset = Subset(_Generated(10, bad=6), [1, 6, 8])
    assert len(subset) == 3
    with pytest.raises(BadInputError, match=r"X\[6\]") as error:
        subset[1]
    assert error.value.index == 6
    assert isinstance(subset[0:2], Subset)


def test_audio_files_pickle_without_their_clips(corpus):
    import pickle

    files = AudioFiles(corpus[0], sampling_rate=16000)
    restored = pickle.loads(pickle.dumps(files))
    assert len(pickle.dumps(files)) < 10_000
    np.testing.assert_array_equal(restored[0], files[0])


def test_image_files_are_read_on_demand_and_train(tmp_path):
    from PIL import Image

    from cwcl_sk.inputs import ImageFiles, load_images

    rng = np.random.default_rng(0)
    paths, texts = [], []
    for index in range(16):
        pixels = np.full((12, 12, 3), 40 + 50 * (index % 4), dtype=np.uint8)
        pixels[rng.integers(0, 12), :] = 255
        path = tmp_path / f"image{index:02d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
        texts.append(["dark", "dim", "light", "bright"][index % 4])
    settings = {
        "teacher": "bert",
        "student": "cnn",
        "batch_size": 8,
        "max_epochs": 1,
        "device": "cpu",
        "random_state": 0,
    }
    lazy = CWCLAligner(**settings).fit(paths, texts)
    eager = CWCLAligner(**settings).fit(load_images(paths), texts)
    np.testing.assert_allclose(lazy.transform(paths), eager.transform(paths), atol=1e-6)
    assert isinstance(ImageFiles(paths)[0], np.ndarray)
    Image.fromarray(np.zeros((10, 12, 3), dtype=np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(ValueError, match=r"X\[16\] is 10x12 pixels but the first image is 12x12"):
        CWCLAligner(**settings).fit([*paths, str(tmp_path / "odd.png")], [*texts, "dark"])
    with open(paths[2], "w") as file:
        file.write("no image")
    with pytest.warns(UserWarning, match="1 of 16 training inputs could not be read"):
        CWCLAligner(**settings, on_bad_input="skip").fit(paths, texts)


def test_the_memory_benchmark_summarises_peaks_and_ratios():
    from benchmarks.out_of_core import caption, summarise, table

    runs = [
        {"configuration": c, "n_clips": n, "peak_rss_mb": peak, "fit_seconds": 1.0}
        for c, n, peak in [("files", 10, 700.0), ("files", 50, 770.0), ("in memory", 10, 800.0)]
    ]
    summary = summarise(runs, (10, 50))
    assert [row["configuration"] for row in summary] == ["files"]  # one size missing: no row
    assert summary[0]["ratio"] == pytest.approx(1.1)
    _, rows = table(summary, (10, 50))
    assert rows == [["files", "700 MB", "770 MB", "1.10", "1", "1"]]
    assert len({caption(index) for index in range(1000)}) == 1000
