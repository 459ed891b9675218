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

from .results import RESULTS, machine, mean_sd, plus_minus, table_lines, write_results
from .tasks import LOSSES
from .tasks.digit_images import (
    CAPTION_TEMPLATES,
    PROMPTS,
    QUICK_STUDENT,
    SPLIT_SEED,
    STUDENT,
    load_split,
)
from .tasks.digit_images import run as fit_and_classify

DEFAULT_LOSSES = ("CL", "CWCL exp", "CWCL linear", "CWCL perplexity", "CWCL mixture")


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
    parser.add_argument("--out", type=Path, default=RESULTS)
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
        result = fit_and_classify(split, student, LOSSES[loss_name], seed)
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
