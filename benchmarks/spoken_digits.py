"""Spoken digits from unseen speakers, zero-shot: CL against CWCL and its kernels.

Leave-one-speaker-out on the Free Spoken Digit Dataset (files ``{digit}_{speaker}_{index}.wav``):
for every speaker, a student is aligned to the frozen MiniLM teacher on the clips of the other
speakers paired with captions of their digit, then the held-out speaker's clips are classified
zero-shot by :class:`~cwcl_sk.ZeroShotClassifier`, whose label prompts use templates never seen
in training. Each (student, loss) configuration runs over every fold and several seeds with the
same budget (epochs, batch size, learning rate); the table gives the mean accuracy over folds,
its spread over seeds, and the mean seconds of one fit.

Run from the repository root::

    python -m benchmarks.spoken_digits                 # mel-cnn and wav2vec2-small, 3 seeds
    python -m benchmarks.spoken_digits --students mel-cnn --seeds 0
    python -m benchmarks.spoken_digits --quick         # smoke run, under a minute

Results go to ``benchmarks/results/spoken_digits.json`` and ``.md`` (or ``--out``).
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

from cwcl_sk.encoders import make_teacher

from .results import RESULTS, machine, mean_sd, plus_minus, table_lines, write_results
from .tasks import LOSSES
from .tasks.spoken_digits import (
    CAPTIONS,
    DIGIT_NAMES,
    OPTIONAL_STUDENTS,
    PROMPTS,
    QUICK_STUDENTS,
    STUDENTS,
    default_data_folder,
    load_fsdd,
    run_fold,
)

DEFAULT_LOSSES = ("CL", "CWCL exp", "CWCL linear", "CWCL identity")


def summarise(records: list[dict]) -> list[dict]:
    """One row per (student, captions, loss): accuracy over folds, mean and spread over seeds."""
    rows = []
    keys = dict.fromkeys((run["student"], run["captions"], run["loss"]) for run in records)
    for key in keys:
        runs = [run for run in records if (run["student"], run["captions"], run["loss"]) == key]
        seeds = sorted({run["seed"] for run in runs})
        speakers = sorted({run["test_speaker"] for run in runs})
        accuracy = {}
        for prompt_set in PROMPTS:
            per_seed = [
                np.mean([run["accuracy"][prompt_set] for run in runs if run["seed"] == seed])
                for seed in seeds
            ]
            accuracy[prompt_set] = mean_sd(per_seed)
        first_prompts = next(iter(PROMPTS))
        per_speaker = {
            speaker: float(
                np.mean(
                    [
                        run["accuracy"][first_prompts]
                        for run in runs
                        if run["test_speaker"] == speaker
                    ]
                )
            )
            for speaker in speakers
        }
        confusion = np.sum([run["confusion"] for run in runs], axis=0)
        rows.append(
            {
                "student": key[0],
                "captions": key[1],
                "loss": key[2],
                "accuracy": accuracy,
                "per_speaker": per_speaker,
                "seven_eight_confusions": int(confusion[7, 8] + confusion[8, 7]),
                "fit_seconds_mean": float(np.mean([run["fit_seconds"] for run in runs])),
                "configuration_seconds": float(np.sum([run["fit_seconds"] for run in runs])),
                "n_seeds": len(seeds),
                "n_folds": len(speakers),
            }
        )
    return rows


def teacher_similarities() -> np.ndarray:
    """Cosine similarity of the teacher's embeddings of the ten digit names."""
    embeddings = make_teacher("bert", {}).encode(list(DIGIT_NAMES), "labels")
    return embeddings @ embeddings.T


def markdown(rows: list[dict], similarities: np.ndarray, settings: dict) -> str:
    """The results table, the most similar digit names, and how the run was made."""
    speakers = sorted({speaker for row in rows for speaker in row["per_speaker"]})
    header = ["student", "captions", "loss"]
    header += [f"acc., prompt: {prompt_set}" for prompt_set in PROMPTS]
    header += [f"{speaker} ({next(iter(PROMPTS))})" for speaker in speakers]
    header += ["7↔8 errors", "s / fit", "folds x seeds"]
    table = []
    for row in rows:
        cells = [row["student"], row["captions"], row["loss"]]
        cells += [plus_minus(row["accuracy"][prompt_set]) for prompt_set in PROMPTS]
        cells += [f"{row['per_speaker'].get(speaker, float('nan')):.3f}" for speaker in speakers]
        cells += [
            str(row["seven_eight_confusions"]),
            f"{row['fit_seconds_mean']:.0f}",
            f"{row['n_folds']} x {row['n_seeds']}",
        ]
        table.append(cells)
    lines = table_lines(header, table)
    pairs = sorted(
        ((similarities[i, j], DIGIT_NAMES[i], DIGIT_NAMES[j]) for i in range(10) for j in range(i)),
        reverse=True,
    )[:5]
    lines += [
        "",
        "Accuracy: mean over held-out speakers, then mean ± sd over seeds. Per-speaker columns "
        "average the seeds. 7↔8 errors: sevens called eight plus eights called seven, summed "
        "over folds and seeds.",
        "",
        "Most similar digit names for the teacher (cosine): "
        + ", ".join(f"{a}/{b} {value:.2f}" for value, a, b in pairs)
        + ".",
        "",
        "Settings: " + json.dumps(settings, default=str),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_folder())
    parser.add_argument(
        "--students",
        nargs="+",
        choices=[*STUDENTS, *OPTIONAL_STUDENTS],
        default=list(STUDENTS),
    )
    parser.add_argument("--losses", nargs="+", choices=list(LOSSES), default=list(DEFAULT_LOSSES))
    parser.add_argument("--captions", nargs="+", choices=list(CAPTIONS), default=["word"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--speakers", nargs="+", help="held-out speakers (default: all)")
    parser.add_argument("--epochs", type=int, help="override every student's max_epochs")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="spoken_digits", help="stem of the result files")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"FSDD not found at {args.data}; pass --data or set CWCL_FSDD_DIR.", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    students = QUICK_STUDENTS if args.quick else STUDENTS
    corpus = load_fsdd(args.data, per_speaker_digit=10 if args.quick else None)
    speakers = args.speakers or sorted(set(corpus.speakers))
    seeds = args.seeds
    if args.quick:
        speakers, seeds = speakers[-1:], seeds[:1]
    settings_of = {
        name: students[name] if name in students else OPTIONAL_STUDENTS[name]()
        for name in args.students
    }
    settings = {
        "data": str(args.data),
        "quick": args.quick,
        "students": settings_of,
        "epochs_override": args.epochs,
        "captions": {name: CAPTIONS[name] for name in args.captions},
        "prompts": PROMPTS,
        **machine(args.threads),
    }
    similarities = teacher_similarities()
    stem = f"{args.name}_quick" if args.quick else args.name
    records = []
    grid = itertools.product(args.students, args.captions, args.losses, seeds, speakers)
    for student_name, caption_set, loss_name, seed, speaker in grid:
        student = dict(settings_of[student_name])
        if args.epochs:
            student["max_epochs"] = args.epochs
        result = run_fold(corpus, speaker, student, LOSSES[loss_name], seed, caption_set)
        records.append(
            {
                "student": student_name,
                "captions": caption_set,
                "loss": loss_name,
                "seed": seed,
                "test_speaker": speaker,
                **result,
            }
        )
        accuracies = ", ".join(f"{name} {value:.3f}" for name, value in result["accuracy"].items())
        print(
            f"{student_name} | {caption_set} | {loss_name} | seed {seed} | {speaker}: "
            f"{accuracies} ({result['fit_seconds']:.0f} s)",
            flush=True,
        )
        # Written after every fit, so an interrupted run keeps what it measured.
        settings["wall_seconds"] = round(time.perf_counter() - started, 1)
        table = save(args.out / stem, records, similarities, settings)
    print(table)
    return 0


def save(path_stem: Path, records, similarities, settings) -> str:
    """Write ``<path_stem>.json`` (every run and the summary) and ``.md``; return the table."""
    rows = summarise(records)
    table = markdown(rows, similarities, settings)
    results = {
        "settings": settings,
        "summary": rows,
        "runs": records,
        "teacher_similarities": similarities.round(4).tolist(),
    }
    write_results(path_stem, table, results)
    return table


if __name__ == "__main__":
    sys.exit(main())
