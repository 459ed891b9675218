"""Run by tests/test_torchrun_files.py under ``torchrun --nproc_per_node=2`` (gloo, CPU).

Every rank fits the same ``CWCLAligner`` on the same list of audio files, one of them
corrupt and skipped (``on_bad_input="skip"``), each rank decoding only the clips of its shard
of every batch. Arguments: the folder of the clips (written by the test) and an output
folder, where each rank writes ``weights-<rank>.npz`` and ``history-<rank>.json``.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from cwcl_sk import CWCLAligner
from cwcl_sk.distributed import get_rank, get_world_size

PARAMS = {
    "teacher": "precomputed",
    "student": "mel-cnn",
    "student__augment": False,  # masks are drawn per batch: per rank, they would differ
    "student__channels": 16,
    "student__n_layers": 1,
    "student__dropout": 0.0,  # drawn per rank, as the masks are
    "sampling_rate": 8000,
    "batch_size": 12,
    "max_epochs": 2,
    "on_bad_input": "skip",
    "device": "cpu",
    "random_state": 0,
}
N_CLIPS = 36
CORRUPT = 7


def write_clips(folder: Path) -> list[str]:
    """``N_CLIPS`` wav files, clip ``CORRUPT`` not audio at all; their paths."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(N_CLIPS):
        path = folder / f"clip{index:02d}.wav"
        if index == CORRUPT:
            path.write_text("not audio")
        else:
            rng = np.random.default_rng(index)
            t = np.arange(int(rng.uniform(0.2, 0.4) * 8000)) / 8000
            soundfile.write(path, np.sin(2 * np.pi * (200 + 150 * (index % 6)) * t), 8000)
        paths.append(str(path))
    return paths


def pairs(folder: Path):
    """The paths and a random teacher embedding per clip."""
    paths = sorted(str(path) for path in folder.glob("clip*.wav"))
    teacher = np.random.default_rng(1).normal(size=(len(paths), 8)).astype(np.float32)
    return paths, teacher


def weights(aligner) -> dict:
    """The student's state dict as NumPy arrays."""
    return {name: value.numpy() for name, value in aligner.student_.state_dict().items()}


def learned_history(aligner) -> list:
    """``history_`` without the wall-clock seconds."""
    return [{k: v for k, v in record.items() if k != "seconds"} for record in aligner.history_]


def main(clips: Path, output: Path) -> None:
    torch.set_num_threads(1)
    paths, teacher = pairs(clips)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the skipped file's warning
        aligner = CWCLAligner(**PARAMS).fit(paths, teacher)
    rank = get_rank()
    assert get_world_size() == 2, "fit did not join the two-process group"
    output.mkdir(parents=True, exist_ok=True)
    np.savez(output / f"weights-{rank}.npz", **weights(aligner))
    record = {"history": learned_history(aligner), "skipped": aligner.skipped_inputs_}
    (output / f"history-{rank}.json").write_text(json.dumps(record))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
