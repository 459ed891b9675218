"""Spoken intents from unseen voices, zero-shot: CL against CWCL, beside the text-only limit.

SLURP's request text (``devel.jsonl``: 2,033 requests, 71 intents; ``lm.txt``: 29,104
transcripts) is spoken offline by the espeak-ng synthesiser. A speech student is aligned to the
frozen MiniLM teacher on the ``lm.txt`` transcripts that never occur in ``devel.jsonl``, each
spoken by one of seven *training* voices with random rate and pitch; then every ``devel.jsonl``
request, spoken by one of three voices never heard in training, is classified zero-shot into its
intent by :class:`~cwcl_sk.ZeroShotClassifier` from a short description of each intent
(``alarm_set`` -> "set an alarm", see ``slurp_data.py``) in three prompt templates. Transcript
retrieval (R@1, R@5 among the 2,033 distinct requests) is reported too.

Beside every student stands the **text-only limit**: the same teacher and label embeddings
applied to the gold transcripts. A student that reproduced the teacher perfectly from speech
would reach it, and no further.

Run from the repository root::

    python -m benchmarks.spoken_intents --quick        # smoke run, about a minute
    python -m benchmarks.spoken_intents                 # Whisper tiny.en, CL and CWCL exp, 2 seeds
    python -m benchmarks.spoken_intents --students mel-cnn --losses CL "CWCL exp" --seeds 0 1

The defaults: all 11,498 training transcripts, one voice each, pretrained Whisper tiny.en
with its top layer trained at learning rate 1e-3, 4 epochs (81 % of the text-only limit).
The best configuration measured adds ``--voices-per-text 2 --temperature 0.12`` (90-91 %;
12 to 17 minutes a fit on 2 CPU cores; see ``benchmarks/README.md``). Knobs:
``--train-size`` (transcripts drawn from the 11,498; 0 for all), ``--voices-per-text``
(several voices per transcript), ``--epochs``, ``--learning-rate``, ``--lr-schedule``,
``--temperature``, ``--trainable-layers`` (Whisper layers fine-tuned; the rest are frozen and
computed once per clip), ``--batch-size``, ``--device cuda``. Results go to
``benchmarks/results/spoken_intents.json`` and ``.md`` (or ``--out``/``--name``), rewritten
after every fit; synthesised clips are cached under ``--cache-dir``.
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

from cwcl_sk.schedules import LR_SCHEDULES

from .results import (
    RESULTS,
    machine,
    mean_sd,
    plus_minus,
    saved_results,
    table_lines,
    write_results,
)
from .slurp_data import INTENT_TEMPLATES, load_slurp
from .tasks import LOSSES
from .tasks.spoken_intents import (
    EVAL_VOICES,
    PITCH,
    QUICK_STUDENTS,
    RATE,
    SPEECH_CACHE,
    STUDENTS,
    TRAIN_VOICES,
    make_corpus,
    text_only_limit,
)
from .tasks.spoken_intents import run as fit_and_evaluate


def _with_overrides(student: dict, **overrides) -> dict:
    """``student`` with the aligner parameters given on the command line (None: not given)."""
    return {**student, **{key: value for key, value in overrides.items() if value is not None}}


def summarise(records: list[dict], limit: dict) -> list[dict]:
    """One row per (student, loss): each measure's mean and spread over seeds."""
    rows = []
    for key in dict.fromkeys((record["student"], record["loss"]) for record in records):
        runs = [record for record in records if (record["student"], record["loss"]) == key]
        row = {"student": key[0], "loss": key[1], "n_seeds": len(runs)}
        for measure in ("intent_accuracy", "recall_at_1", "recall_at_5"):
            row[measure] = mean_sd([run[measure] for run in runs])
        row["fraction_of_limit"] = row["intent_accuracy"]["mean"] / limit["intent_accuracy"]
        row["fit_seconds_mean"] = float(np.mean([run["fit_seconds"] for run in runs]))
        rows.append(row)
    return rows


def markdown(rows: list[dict], limit: dict, settings: dict) -> str:
    """The results table, the text-only limit, and how the run was made."""
    header = [
        "student",
        "loss",
        "intent acc.",
        "of text limit",
        "R@1",
        "R@5",
        "s / fit",
        "seeds",
    ]
    cells = [
        [
            row["student"],
            row["loss"],
            plus_minus(row["intent_accuracy"]),
            f"{row['fraction_of_limit']:.0%}",
            plus_minus(row["recall_at_1"]),
            plus_minus(row["recall_at_5"]),
            f"{row['fit_seconds_mean']:.0f}",
            str(row["n_seeds"]),
        ]
        for row in rows
    ]
    lines = table_lines(header, cells)
    lines.append(
        f"| text-only limit (gold transcripts) | | {limit['intent_accuracy']:.3f} | 100% | "
        f"{limit['recall_at_1']:.3f} | {limit['recall_at_5']:.3f} | | |"
    )
    lines += [
        "",
        "Intent accuracy: 71-way zero-shot on requests spoken by voices never heard in "
        "training; mean ± sd over seeds. R@k: the request's transcript among the k nearest of "
        "all distinct evaluation transcripts.",
        "",
        "Settings: " + json.dumps(settings, default=str),
    ]
    return "\n".join(lines) + "\n"


def save(path_stem: Path, records: list[dict], limit: dict, settings: dict) -> str:
    """Write ``<path_stem>.json`` (every run, the summary, the limit) and ``.md``."""
    rows = summarise(records, limit)
    table = markdown(rows, limit, settings)
    results = {"settings": settings, "text_only_limit": limit, "summary": rows, "runs": records}
    write_results(path_stem, table, results)
    return table


# Settings that must agree for runs from an earlier invocation to be reused by --resume.
_RESUME_KEYS = ("students", "epochs_override", "train_clips", "eval_clips", "batch_size")


def previous_runs(stem: Path, settings: dict) -> tuple[list[dict], dict | None, float]:
    """Runs, text-only limit and wall seconds saved at ``stem`` (same data and students)."""
    saved = saved_results(stem, settings, _RESUME_KEYS, normalise=_effective)
    if saved is None:
        return [], None, 0.0
    return saved["runs"], saved["text_only_limit"], saved["settings"].get("wall_seconds", 0.0)


def _effective(settings: dict) -> dict:
    """``settings`` with ``--epochs`` written into every student's ``max_epochs``.

    Runs made with ``--epochs 3`` train 3 epochs whatever a student's default was then.
    """
    override = settings.get("epochs_override")
    if override:
        settings = dict(settings)
        settings["students"] = {
            name: {**student, "max_epochs": override}
            for name, student in settings["students"].items()
        }
    return settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, help="SLURP text folder (default: shared/data/slurp)")
    parser.add_argument(
        "--students", nargs="+", choices=list(STUDENTS), default=["whisper-tiny.en"]
    )
    parser.add_argument("--losses", nargs="+", choices=list(LOSSES), default=["CL", "CWCL exp"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument(
        "--train-size",
        type=int,
        default=0,
        help="training transcripts drawn from the 11,498 (default: 0, all of them)",
    )
    parser.add_argument("--voices-per-text", type=int, default=1, help="clips per transcript")
    parser.add_argument("--eval-size", type=int, help="evaluation requests (default: all 2,033)")
    parser.add_argument("--epochs", type=int, help="override the student's max_epochs")
    parser.add_argument("--learning-rate", type=float, help="override the student's learning rate")
    parser.add_argument(
        "--lr-schedule", choices=LR_SCHEDULES, help="learning-rate schedule (default: constant)"
    )
    parser.add_argument(
        "--temperature", type=float, help="override the softmax temperature (default: 0.07)"
    )
    parser.add_argument(
        "--trainable-layers", type=int, default=1, help="Whisper layers fine-tuned (of 4)"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data and student")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="spoken_intents", help="stem of the result files")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=SPEECH_CACHE,
        help="synthesised clips are kept here",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs already in the result file (same data and students) and add the rest",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    students = QUICK_STUDENTS if args.quick else STUDENTS
    if args.quick:
        args.students, args.seeds = list(QUICK_STUDENTS), args.seeds[:1]
        args.losses = args.losses[:2]
        args.train_size, args.eval_size = 300, 100
    slurp = load_slurp(args.data)
    corpus = make_corpus(
        slurp, args.train_size, args.voices_per_text, args.eval_size, args.cache_dir
    )
    settings = {
        "quick": args.quick,
        "students": {
            name: _with_overrides(
                students[name](args.trainable_layers),
                learning_rate=args.learning_rate,
                lr_schedule=args.lr_schedule,
                temperature=args.temperature,
            )
            for name in args.students
        },
        "epochs_override": args.epochs,
        "train_clips": len(corpus["train_clips"]),
        "train_voices": TRAIN_VOICES,
        "eval_clips": len(corpus["eval_clips"]),
        "eval_voices": EVAL_VOICES,
        "rate": RATE,
        "pitch": PITCH,
        "prompt_templates": INTENT_TEMPLATES,
        "batch_size": args.batch_size,
        **machine(args.threads),
    }
    print(
        f"{len(corpus['train_clips'])} training clips, {len(corpus['eval_clips'])} evaluation "
        f"clips ({time.perf_counter() - started:.0f} s to synthesise or read)",
        flush=True,
    )
    stem = args.out / (f"{args.name}_quick" if args.quick else args.name)
    records, limit, table, earlier_seconds = [], None, "", 0.0
    if args.resume:
        records, limit, earlier_seconds = previous_runs(stem, settings)
    done = {(record["student"], record["loss"], record["seed"]) for record in records}

    def save_all() -> str:
        """Write every run so far, with the wall time of this and any resumed invocation."""
        settings["wall_seconds"] = round(earlier_seconds + time.perf_counter() - started, 1)
        return save(stem, records, limit, settings)

    for student_name, loss_name, seed in itertools.product(args.students, args.losses, args.seeds):
        if (student_name, loss_name, seed) in done:
            continue
        student = dict(settings["students"][student_name])
        if args.epochs:
            student["max_epochs"] = args.epochs
        result, aligner = fit_and_evaluate(
            corpus, student, LOSSES[loss_name], seed, args.batch_size, args.device
        )
        if limit is None:
            limit = text_only_limit(aligner, corpus)
            print(f"text-only limit: intent accuracy {limit['intent_accuracy']:.3f}", flush=True)
        records.append({"student": student_name, "loss": loss_name, "seed": seed, **result})
        print(
            f"{student_name} | {loss_name} | seed {seed}: intent {result['intent_accuracy']:.3f}, "
            f"R@1 {result['recall_at_1']:.3f}, R@5 {result['recall_at_5']:.3f} "
            f"({result['fit_seconds']:.0f} s fit)",
            flush=True,
        )
        # Written after every fit, so an interrupted run keeps what it measured.
        table = save_all()
    if records and not table:  # --resume found every run done: rewrite the table anyway
        table = save_all()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
