"""Audio inputs: arrays and files validated and loaded in one place, batched with masks."""

import numpy as np
import pytest
import soundfile
import torch

from cwcl_sk import CWCLAligner
from cwcl_sk.encoders.students.audio import speech_inputs
from cwcl_sk.inputs import AudioInputs, LogMelInputs, load_audio, log_mel_spectrogram, pad_batch


def _tone(seconds: float, sampling_rate: int, frequency: float = 440.0) -> np.ndarray:
    time = np.arange(int(seconds * sampling_rate)) / sampling_rate
    return (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def test_list_of_clips_of_different_lengths_is_loaded_as_float32_clips():
    clips = load_audio([np.zeros(100, dtype=np.float64), [0.5] * 30, np.arange(7, dtype=np.int16)])
    assert [clip.shape for clip in clips] == [(100,), (30,), (7,)]
    assert all(clip.dtype == np.float32 for clip in clips)
    np.testing.assert_array_equal(clips[2], np.arange(7))


def test_2d_array_gives_one_clip_per_row():
    clips = load_audio(np.ones((3, 50)))
    assert len(clips) == 3 and all(clip.shape == (50,) for clip in clips)


def test_object_array_of_clips_and_array_of_paths_are_accepted(tmp_path):
    clips = np.empty(2, dtype=object)
    clips[:] = [np.ones(5), np.ones(9)]
    assert [clip.shape for clip in load_audio(clips)] == [(5,), (9,)]
    soundfile.write(tmp_path / "a.wav", _tone(0.1, 16000), 16000)
    assert load_audio(np.array([str(tmp_path / "a.wav")]))[0].shape == (1600,)


def test_arrays_are_resampled_to_the_model_rate():
    clips = load_audio([_tone(0.5, 8000)], sampling_rate=8000, target_sampling_rate=16000)
    assert clips[0].shape == (8000,)


def test_wav_files_are_decoded_resampled_and_mixed_to_mono(tmp_path):
    stereo = np.stack([_tone(0.5, 22050), -0.5 * _tone(0.5, 22050)], axis=1)  # (samples, 2)
    soundfile.write(tmp_path / "stereo.wav", stereo, 22050)
    soundfile.write(tmp_path / "mono.flac", _tone(0.25, 8000), 8000)
    clips = load_audio([tmp_path / "stereo.wav", str(tmp_path / "mono.flac")], 16000)
    assert [clip.shape for clip in clips] == [(8000,), (4000,)]
    # The mono mix of (a, -a/2) is a/4: a tone of amplitude 0.3 / 4.
    assert np.abs(clips[0]).max() == pytest.approx(0.075, abs=5e-3)


def test_files_and_arrays_give_the_same_clip(tmp_path):
    clip = _tone(0.3, 16000)
    soundfile.write(tmp_path / "tone.wav", clip, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio([tmp_path / "tone.wav"])[0], clip, atol=1e-7)


@pytest.mark.parametrize(
    ("X", "error", "message"),
    [
        ([np.ones(10), np.ones(10), np.ones(10), np.zeros(0)], ValueError, r"X\[3\] is an empty"),
        ([np.ones(10), np.array([0.0, np.nan])], ValueError, r"X\[1\] contains NaN.*sample 1"),
        ([np.array([np.inf, 0.0])], ValueError, r"X\[0\] contains NaN or inf.*first inf"),
        (np.ones((2, 3, 4)), ValueError, r"X must be .*3-D array"),
        ([np.ones(5), np.ones((2, 5))], ValueError, r"X\[1\] must be a 1-D array.*mono"),
        ([np.ones(4, dtype=complex)], ValueError, r"Complex data not supported: X\[0\]"),
        (np.ones((2, 4), dtype=complex), ValueError, r"Complex data not supported: X "),
        ([np.array(["a", "b"])], TypeError, r"X\[0\] has dtype <U1"),
        ([np.ones(4), None], TypeError, r"X\[1\] is NoneType"),
        ([np.ones(4, dtype=bool)], TypeError, r"X\[0\] has dtype bool"),
        (np.ones(16000), ValueError, r"single 1-D array of 16000 samples.*pass \[X\]"),
        ([0.1, 0.2, 0.3], ValueError, r"single list of 3 numbers.*pass \[X\]"),
        ([], ValueError, r"X is empty"),
        (np.zeros((0, 10)), ValueError, r"X is empty"),
        (None, ValueError, r"X is None"),
        ("clip.wav", TypeError, r"X is a single path"),
    ],
)
def test_bad_audio_names_the_argument_and_the_clip(X, error, message):
    with pytest.raises(error, match=message):
        load_audio(X)


def test_paths_mixed_with_arrays_are_rejected(tmp_path):
    with pytest.raises(TypeError, match=r"X mixes file paths and arrays: X\[1\] is a path"):
        load_audio([np.ones(4), tmp_path / "a.wav"])


def test_missing_file_is_reported_with_its_index(tmp_path):
    soundfile.write(tmp_path / "ok.wav", _tone(0.1, 16000), 16000)
    with pytest.raises(FileNotFoundError, match=r"X\[1\]: no such audio file.*missing.wav"):
        load_audio([tmp_path / "ok.wav", tmp_path / "missing.wav"])


def test_unreadable_file_names_the_clip(tmp_path):
    (tmp_path / "notes.wav").write_text("this is not audio")
    with pytest.raises(ValueError, match=r"X\[0\] could not be decoded as audio.*notes.wav"):
        load_audio([tmp_path / "notes.wav"])


def test_directory_is_not_an_audio_file(tmp_path):
    with pytest.raises(ValueError, match=r"X\[0\] is not a file"):
        load_audio([tmp_path])


def test_empty_audio_file_is_an_empty_clip(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match=r"X\[0\] is an empty clip"):
        load_audio([tmp_path / "empty.wav"])


def test_clips_shorter_than_the_students_receptive_field_are_rejected():
    with pytest.raises(ValueError, match=r"X\[1\] is too short: 100 samples.*at least 400"):
        speech_inputs(16000).prepare([np.ones(400), np.ones(100)])


def test_pad_batch_pads_to_the_longest_sequence_with_a_mask():
    padded, mask = pad_batch([np.ones(2), 2 * np.ones(4)])
    assert padded.dtype == torch.float32 and mask.dtype == torch.int64
    assert padded.tolist() == [[1, 1, 0, 0], [2, 2, 2, 2]]
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


def test_audio_batches_are_padded_to_the_longest_clip_of_the_batch():
    inputs = AudioInputs(16000)
    data = inputs.prepare([np.ones(10), np.ones(30), np.ones(20)])
    batch = inputs.collate(data, [0, 2])
    assert batch["input_values"].shape == (2, 20)
    assert batch["attention_mask"].sum(dim=1).tolist() == [10, 20]


def test_speech_inputs_resample_to_16_khz():
    data = speech_inputs(8000).prepare([_tone(0.5, 8000)])
    assert data[0].shape == (8000,)


def test_log_mel_frames_follow_a_10_ms_hop():
    features = log_mel_spectrogram(_tone(0.5, 8000), 8000, n_mels=20)
    assert features.shape == (1 + 4000 // 80, 20)
    assert features.dtype == np.float32 and features.max() == 0.0  # dB below the loudest bin


def test_log_mel_inputs_batch_spectrograms_with_frame_masks():
    inputs = LogMelInputs(sampling_rate=8000, n_mels=24)
    data = inputs.prepare([_tone(0.2, 8000), _tone(0.4, 8000)])
    batch = inputs.collate(data, [0, 1])
    assert batch["features"].shape == (2, 41, 24)
    assert batch["attention_mask"].sum(dim=1).tolist() == [21, 41]
    assert batch["features"][0, 21:].abs().sum() == 0


@pytest.mark.parametrize("n_mels", [0, 2.5, "40"])
def test_bad_n_mels_is_named(n_mels):
    with pytest.raises((TypeError, ValueError), match="student__n_mels"):
        LogMelInputs(8000, n_mels=n_mels).prepare([np.ones(800)])


def test_aligner_reports_bad_audio_by_index():
    clips = [_tone(0.2, 8000)] * 3 + [np.zeros(0)]
    aligner = CWCLAligner(teacher="bert", student="mel-cnn", sampling_rate=8000, max_epochs=1)
    with pytest.raises(ValueError, match=r"X\[3\] is an empty clip \(0 samples\)"):
        aligner.fit(clips, ["a tone"] * 4)


@pytest.mark.parametrize("n_channels", [1, 2])
def test_one_clip_with_channels_as_columns_is_not_read_as_many_clips(n_channels):
    with pytest.raises(ValueError, match=rf"shape \(16000, {n_channels}\).*X\.mean\(axis=1\)"):
        load_audio(np.zeros((16000, n_channels), np.float32))


def test_three_column_array_is_still_three_sample_clips():
    # Past two columns a 2-D array is (n_clips, n_samples), as documented.
    assert [clip.shape for clip in load_audio(np.ones((4, 3)))] == [(3,)] * 4


def test_log_mel_inputs_need_one_fft_window():
    inputs = LogMelInputs(8000)
    inputs.prepare([np.ones(256)])  # the 25 ms window at 8 kHz, rounded up to 2**8 samples
    with pytest.raises(ValueError, match=r"X\[0\] is too short: 255 samples.*at least 256"):
        inputs.prepare([np.ones(255)])
