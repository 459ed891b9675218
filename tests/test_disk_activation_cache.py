"""Frozen-layer outputs kept on disk: one file an entry, shared by fits and processes."""

import pickle

import numpy as np
import pytest
import torch
from _helpers import save_tiny_whisper
from test_speech_students import TINY_WHISPER, _clips

from cwcl_sk import CWCLAligner
from cwcl_sk.encoders.students.activation_cache import (
    DiskActivationCache,
    check_cache_frozen,
    clear_activation_cache,
)
from cwcl_sk.encoders.students.audio import WhisperEncoderStudent

GROUP, ITEM = bytes(range(16)), bytes(range(16, 32))


@pytest.fixture(scope="module")
def whisper_folder(tmp_path_factory):
    """A tiny randomly initialised Whisper saved as a user's local folder would be."""
    return save_tiny_whisper(tmp_path_factory.mktemp("checkpoints") / "whisper", TINY_WHISPER)


@pytest.fixture(scope="module")
def tones():
    return _clips(12)


def _fit(whisper_folder, tones, cache_frozen):
    aligner = CWCLAligner(
        teacher="bert",
        student="whisper",
        student__name_or_path=whisper_folder,
        student__trainable_layers=1,
        student__cache_frozen=cache_frozen,
        max_epochs=2,
        batch_size=6,
        random_state=0,
    )
    return aligner.fit(*tones)


def _whisper(aligner) -> WhisperEncoderStudent:
    (student,) = [m for m in aligner.student_.modules() if isinstance(m, WhisperEncoderStudent)]
    return student


def _entries(folder):
    return sorted(folder.glob("*/*/*.npy"))


def test_second_fit_reads_every_frozen_output_from_disk(whisper_folder, tones, tmp_path):
    folder = tmp_path / "frozen"
    first = _fit(whisper_folder, tones, folder)
    entries = _entries(folder)
    assert len(entries) == len(tones[0])  # one per clip, computed in the first epoch
    cache = _whisper(first).activation_cache
    assert isinstance(cache, DiskActivationCache) and cache.directory == folder
    # Each clip computed once; later epochs (and the fit's own passes) read it back.
    assert cache.misses == 12 and cache.hits >= 12
    lookups = cache.misses + cache.hits
    modified = {path: path.stat().st_mtime_ns for path in entries}
    second = _fit(whisper_folder, tones, folder)
    cache = _whisper(second).activation_cache
    assert (cache.misses, cache.hits) == (0, lookups)
    assert {path: path.stat().st_mtime_ns for path in _entries(folder)} == modified
    np.testing.assert_allclose(second.transform(tones[0]), first.transform(tones[0]), atol=1e-6)


def test_disk_cache_gives_the_memory_cache_embeddings(whisper_folder, tones, tmp_path):
    clear_activation_cache()
    on_disk = _fit(whisper_folder, tones, tmp_path / "frozen")
    in_memory = _fit(whisper_folder, tones, True)
    assert _whisper(in_memory).activation_cache.hits > 0
    np.testing.assert_allclose(
        on_disk.transform(tones[0]), in_memory.transform(tones[0]), atol=1e-5
    )


def test_corrupt_entry_is_a_miss_with_a_warning_and_is_rewritten(tmp_path):
    cache = DiskActivationCache(tmp_path / "frozen")
    row = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    cache.put((GROUP, ITEM), row)
    path = cache.path((GROUP, ITEM))
    assert path == tmp_path / "frozen" / GROUP.hex() / ITEM.hex()[:2] / f"{ITEM.hex()}.npy"
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    with pytest.warns(RuntimeWarning, match="Unreadable activation cache entry"):
        assert cache.get((GROUP, ITEM)) is None
    cache.put((GROUP, ITEM), row)
    torch.testing.assert_close(cache.get((GROUP, ITEM)), row)
    assert (cache.hits, cache.misses) == (1, 1)


def test_corrupt_entry_during_a_fit_is_recomputed(whisper_folder, tones, tmp_path):
    folder = tmp_path / "frozen"
    first = _fit(whisper_folder, tones, folder)
    _entries(folder)[0].write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match="Unreadable activation cache entry"):
        second = _fit(whisper_folder, tones, folder)
    assert _whisper(second).activation_cache.misses == 1
    # The recomputed entry's frames come from a batch of other clips than the first time:
    # float32 rounding of the padded matrix products, about 1e-6.
    np.testing.assert_allclose(second.transform(tones[0]), first.transform(tones[0]), atol=1e-5)


def test_missing_entry_is_a_silent_miss_and_nothing_is_held_in_memory(tmp_path):
    cache = DiskActivationCache(tmp_path / "frozen")
    assert cache.get((GROUP, ITEM)) is None and cache.misses == 1
    assert not (tmp_path / "frozen").exists()
    cache.put((GROUP, ITEM), torch.ones(2, 3))
    assert len(cache) == 1 and vars(cache).keys() == {
        "directory",
        "hits",
        "misses",
        "_warned_write",
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_entries_keep_their_dtype(dtype, tmp_path):
    cache = DiskActivationCache(tmp_path)
    row = torch.linspace(-3, 3, 10).reshape(2, 5).to(dtype)
    cache.put((GROUP, ITEM), row)
    stored = cache.get((GROUP, ITEM))
    assert stored.dtype == dtype
    torch.testing.assert_close(stored, row, rtol=0, atol=0)


def test_entries_are_written_whole_with_no_temporary_file_left(tmp_path):
    cache = DiskActivationCache(tmp_path)
    for item in range(5):
        cache.put((GROUP, bytes([item]) * 16), torch.zeros(4))
    assert sorted(path.suffix for path in tmp_path.rglob("*") if path.is_file()) == [".npy"] * 5


def test_a_failed_write_warns_once_and_training_goes_on(tmp_path):
    blocker = tmp_path / "frozen"
    blocker.write_text("a file where the folder should be")
    cache = DiskActivationCache(blocker)
    with pytest.warns(RuntimeWarning, match="Cannot write to the activation cache") as caught:
        cache.put((GROUP, ITEM), torch.zeros(4))
        cache.put((GROUP, bytes(16)), torch.zeros(4))
    assert len(caught) == 1 and cache.get((GROUP, ITEM)) is None


def test_disk_cache_pickles_as_its_folder(tmp_path):
    cache = DiskActivationCache(tmp_path / "frozen")
    cache.put((GROUP, ITEM), torch.ones(3))
    cache.get((GROUP, ITEM))
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.directory == cache.directory and (copy.hits, copy.misses) == (0, 0)
    torch.testing.assert_close(copy.get((GROUP, ITEM)), torch.ones(3))


def test_student_with_a_disk_cache_pickles_without_entries(whisper_folder, tmp_path):
    from cwcl_sk.encoders.students.audio import build_whisper

    student = build_whisper(
        None, 384, name_or_path=whisper_folder, trainable_layers=1, cache_frozen=tmp_path
    )
    copy = pickle.loads(pickle.dumps(student))
    assert copy.activation_cache.directory == tmp_path and copy.cache_frozen is True


@pytest.mark.parametrize("value", [True, False])
def test_cache_frozen_flags_keep_their_meaning(value):
    assert check_cache_frozen(value) is value


def test_cache_frozen_accepts_folder_paths(tmp_path):
    assert check_cache_frozen(tmp_path / "frozen") == str(tmp_path / "frozen")
    assert check_cache_frozen("frozen-layers") == "frozen-layers"


@pytest.mark.parametrize("value", ["yes", "False", "", 1, None])
def test_cache_frozen_rejects_flag_words_and_other_types(value):
    with pytest.raises(TypeError, match="cache_frozen must be True or False, or a folder path"):
        check_cache_frozen(value)
