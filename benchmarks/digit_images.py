"""Handwritten digit images, zero-shot: CL against CWCL and its kernels, with the cnn student.

scikit-learn's bundled digits (1,797 grayscale images of 8x8 pixels, ten classes) are passed
as images ((8, 8) arrays scaled to [0, 1], not flattened features). A fixed, stratified 70 %
is paired with captions of its digit ("a handwritten seven") and a ``cnn`` student is aligned
to the frozen MiniLM teacher; the other 30 % is classified zero-shot by
:class:`~cwcl_sk.ZeroShotClassifier`, whose label prompts are the bare digit names and an
ensemble of templates never seen in training. Every loss runs with the same budget (epochs,
batch size, learning rate) over several seeds; the table gives the mean accuracy ± its
standard deviation over seeds and the mean seconds of one fit.

Run from the repository root::

    python -m benchmarks.digit_images                  # every loss, 3 seeds
    python -m benchmarks.digit_images --losses CL "CWCL exp" --seeds 0
    python -m benchmarks.digit_images --quick          # smoke run, under a minute

Results go to ``benchmarks/results/digit_images.json`` and ``.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from cwcl_sk import CWCLAligner, ZeroShotClassifier

from .results import machine, mean_sd, plus_minus, table_lines, write_results
from .tasks import LOSSES

REPOSITORY = Path(__file__).resolve().parents[1]

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# One training caption per image, drawn at random from these templates.
CAPTION_TEMPLATES = ("a handwritten {}", "the digit {}", "{}")
# Label prompts at evaluation: the bare word, and an ensemble of templates never used in training.
PROMPTS = {
    "word": ("{}",),
    "unseen templates": ("a scanned image of the number {}", "a small picture of a {}"),
}

DEFAULT_LOSSES = ("CL", "CWCL exp", "CWCL linear", "CWCL perplexity", "CWCL mixture")

STUDENT = {
    "teacher": "minilm",
    "student": "cnn",
    "student__color_mode": "L",
    "max_epochs": 12,
    "batch_size": 64,
    "learning_rate": 3e-3,
}
QUICK_STUDENT = {**STUDENT, "max_epochs": 2, "student__widths": (16, 32)}
TEST_FRACTION = 0.3
SPLIT_SEED = 0


def captions(digits, rng: np.random.Generator) -> list[str]:
    """One caption per image: its digit's name in a template drawn at random."""
    choice = rng.integers(len(CAPTION_TEMPLATES), size=len(digits))
    return [
        CAPTION_TEMPLATES[t].format(DIGIT_NAMES[d]) for t, d in zip(choice, digits, strict=True)
    ]


def load_split(quick: bool):
    """(train images, train digits, test images, test digits): a fixed stratified split."""
    digits = load_digits()
    images = digits.images / 16.0  # (1797, 8, 8): intensities 0..16 scaled to [0, 1]
    target = digits.target
    if quick:
        images, target = images[:300], target[:300]
    train_images, test_images, train_digits, test_digits = train_test_split(
        images, target, test_size=TEST_FRACTION, stratify=target, random_state=SPLIT_SEED
    )
    return train_images, train_digits, test_images, test_digits


def run(split, student: dict, loss: dict, seed: int) -> dict:
    """Fit on the training images; classify the test images zero-shot with each prompt set."""
    train_images, train_digits, test_images, test_digits = split
    aligner = CWCLAligner(random_state=seed, **student, **loss)
    started = time.perf_counter()
    aligner.fit(train_images, captions(train_digits, np.random.default_rng(seed)))
    seconds = time.perf_counter() - started
    accuracy = {}
    for prompt_set, templates in PROMPTS.items():
        classifier = ZeroShotClassifier(
            aligner, labels=dict(enumerate(DIGIT_NAMES)), templates=list(templates)
        ).fit(train_images, train_digits)
        accuracy[prompt_set] = float(classifier.score(test_images, test_digits))
    return {
        "accuracy": accuracy,
        "fit_seconds": seconds,
        "final_train_loss": aligner.history_[-1]["train_loss"],
    }


def summarise(records: list[dict]) -> list[dict]:
    """One row per loss: accuracy mean and spread over seeds, mean fit time."""
    rows = []
    for loss in dict.fromkeys(run["loss"] for run in records):
        runs = [run for run in records if run["loss"] == loss]
        accuracy = {
            prompt_set: mean_sd([run["accuracy"][prompt_set] for run in runs])
            for prompt_set in PROMPTS
        }
        rows.append(
            {
                "loss": loss,
                "accuracy": accuracy,
                "fit_seconds_mean": float(np.mean([run["fit_seconds"] for run in runs])),
                "n_seeds": len(runs),
            }
        )
    return rows


def markdown(rows: list[dict], settings: dict) -> str:
    """The results table and how the run was made."""
    header = ["student", "loss", *(f"acc., prompt: {name}" for name in PROMPTS)]
    header += ["s / fit", "seeds"]
    cells = [
        [
            settings["student"]["student"],
            row["loss"],
            *(plus_minus(row["accuracy"][name]) for name in PROMPTS),
            f"{row['fit_seconds_mean']:.0f}",
            str(row["n_seeds"]),
        ]
        for row in rows
    ]
    lines = table_lines(header, cells)
    lines += [
        "",
        f"Accuracy on the {settings['n_test']} held-out images (chance 0.100): mean ± sd over "
        "seeds. Training captions: " + ", ".join(repr(t) for t in CAPTION_TEMPLATES) + ".",
        "",
        "Settings: " + json.dumps(settings, default=str),
    ]
    return "\n".join(lines) + "\n"


def save(path_stem: Path, records, settings) -> str:
    """Write ``<path_stem>.json`` (every run and the summary) and ``.md``; return the table."""
    rows = summarise(records)
    table = markdown(rows, settings)
    write_results(path_stem, table, {"settings": settings, "summary": rows, "runs": records})
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--losses", nargs="+", choices=list(LOSSES), default=list(DEFAULT_LOSSES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="override the student's max_epochs")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1: the CNN's batches are too small to gain from more)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "benchmarks" / "results")
    parser.add_argument("--name", default="digit_images", help="stem of the result files")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    student = dict(QUICK_STUDENT if args.quick else STUDENT)
    if args.epochs:
        student["max_epochs"] = args.epochs
    seeds = args.seeds[:1] if args.quick else args.seeds
    split = load_split(args.quick)
    settings = {
        "quick": args.quick,
        "student": student,
        "n_train": len(split[0]),
        "n_test": len(split[2]),
        "split_seed": SPLIT_SEED,
        "caption_templates": CAPTION_TEMPLATES,
        "prompts": PROMPTS,
        **machine(args.threads),
    }
    stem = f"{args.name}_quick" if args.quick else args.name
    records = []
    for loss_name, seed in itertools.product(args.losses, seeds):
        result = run(split, student, LOSSES[loss_name], seed)
        records.append({"loss": loss_name, "seed": seed, **result})
        accuracies = ", ".join(f"{name} {value:.3f}" for name, value in result["accuracy"].items())
        print(
            f"{loss_name} | seed {seed}: {accuracies} ({result['fit_seconds']:.0f} s)", flush=True
        )
        # Written after every fit, so an interrupted run keeps what it measured.
        settings["wall_seconds"] = round(time.perf_counter() - started, 1)
        table = save(args.out / stem, records, settings)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
