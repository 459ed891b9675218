"""How long the default speech student takes: fit on the spoken digits, predict one clip.

Run from the repository root::

    python -m benchmarks.default_speed                          # fit on all 2,000 FSDD clips
    python -m benchmarks.default_speed --unseen-speakers george # + one held-out-speaker fold
    python -m benchmarks.default_speed --quick                  # a smoke run: 40 clips

The aligner is the library's default for speech, ``CWCLAligner(teacher="bert",
student="whisper")`` with nothing else set but the seed: pretrained Whisper tiny.en with the
recipe of :mod:`cwcl_sk.encoders.recipes`. It is fitted on every clip of the Free Spoken Digit
Dataset (``$CWCL_FSDD_DIR`` or ``shared/data/fsdd`` beside the repository), each captioned
with its digit's name, on ``--threads`` torch threads (2 by default, the targets' budget).
Then ``ZeroShotClassifier(aligner, labels=digit names).predict`` is timed on one thread over
``--predict-clips`` clips spread over every speaker and digit, after a warm-up call and with
the student's cache of frozen-layer outputs emptied, so that every clip costs what a new
recording costs.

The targets: ``fit`` in at most 10 minutes on 2 cores, ``predict`` at most 20 ms a clip on
one core. This is a benchmark, not a timed test: other jobs on the machine slow it, so the
result records the 1-minute load average before and after, and times measured under load are
upper bounds. ``--unseen-speakers`` adds, for each speaker named, a fit of the same default on
the other speakers and its zero-shot accuracy on the one held out (what the recipe gives on a
voice never heard, beside the benchmarked numbers). The result is written to
``benchmarks/results/default_speed.json`` (or ``--out``); ``python -m benchmarks.tables
--write`` renders it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from cwcl_sk import CWCLAligner, ZeroShotClassifier
from cwcl_sk.encoders.students.activation_cache import clear_activation_cache

from .publish import publish
from .results import RESULTS
from .tasks.spoken_digits import DIGIT_NAMES, default_data_folder, load_fsdd

#: The targets of the default speech student, in seconds per fit and milliseconds per clip.
FIT_TARGET_SECONDS = 600.0
PREDICT_TARGET_MS = 20.0


def _load_average() -> float:
    return round(os.getloadavg()[0], 2)


def default_aligner(sampling_rate: int, seed: int) -> CWCLAligner:
    """The library's default speech aligner, with only the data's rate and a seed set."""
    return CWCLAligner(
        teacher="bert", student="whisper", sampling_rate=sampling_rate, random_state=seed
    )


def _digit_classifier(aligner) -> ZeroShotClassifier:
    labels = dict(enumerate(DIGIT_NAMES))
    return ZeroShotClassifier(aligner, labels=labels).fit(None, list(labels))


def spread(count: int, total: int) -> np.ndarray:
    """``count`` indices spread evenly over ``range(total)`` (every speaker and digit)."""
    return np.unique(np.linspace(0, total - 1, num=min(count, total)).round().astype(int))


def time_fit(corpus, selected: np.ndarray, threads: int, seed: int) -> tuple:
    """Fit the default aligner on the clips where ``selected``.

    Returns the aligner, the wall seconds, and the CPU seconds of this process over the fit
    (every thread's): on a busy machine the wall time grows with the other jobs, while the
    CPU time divided by the threads is about what the fit would take with the cores to itself.
    """
    torch.set_num_threads(threads)
    aligner = default_aligner(corpus.sampling_rate, seed)
    captions = [DIGIT_NAMES[digit] for digit in corpus.digits[selected]]
    started, cpu_started = time.perf_counter(), time.process_time()
    aligner.fit(corpus.clips_where(selected), captions)
    return aligner, time.perf_counter() - started, time.process_time() - cpu_started


def time_predict(aligner, clips: list) -> tuple[float, float]:
    """Milliseconds per clip of the digit classifier's ``predict`` on one thread: wall, CPU.

    The student keeps the frozen layers' output of every clip it has seen; the cache is
    emptied before the timed call, so that each clip costs what a new recording costs.
    """
    torch.set_num_threads(1)
    classifier = _digit_classifier(aligner)
    classifier.predict(clips[:2])  # warm-up: first calls allocate
    clear_activation_cache()
    started, cpu_started = time.perf_counter(), time.process_time()
    classifier.predict(clips)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return 1000.0 * wall / len(clips), 1000.0 * cpu / len(clips)


def unseen_speaker_accuracy(corpus, speaker: str, threads: int, seed: int) -> dict:
    """Fit the default on every other speaker; zero-shot accuracy on ``speaker``."""
    held_out = corpus.speakers == speaker
    aligner, seconds, _ = time_fit(corpus, ~held_out, threads, seed)
    predicted = _digit_classifier(aligner).predict(corpus.clips_where(held_out))
    return {
        "speaker": speaker,
        "clips": int(held_out.sum()),
        "accuracy": float(np.mean(predicted == corpus.digits[held_out])),
        "fit_seconds": seconds,
    }


def main(argv=None) -> dict:
    """Run the measurements, write the result files and return the results.

    Returns
    -------
    results : dict
        What was written after the common fields: ``command``, ``settings`` and ``summary``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="FSDD folder (default: shared/data/fsdd)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for fit")
    parser.add_argument("--predict-clips", type=int, default=200, help="clips predict is timed on")
    parser.add_argument(
        "--unseen-speakers", nargs="*", default=[], help="speakers held out, one fit each"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: one clip per digit")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result files")
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(arguments)
    if args.threads < 1 or args.predict_clips < 1:
        parser.error("--threads and --predict-clips must be at least 1")

    load_before = _load_average()
    corpus = load_fsdd(args.data or default_data_folder(), 1 if args.quick else None)
    if args.quick:
        args.predict_clips = min(args.predict_clips, 8)
    unknown = sorted(set(args.unseen_speakers) - set(corpus.speakers.tolist()))
    if unknown:
        parser.error(f"--unseen-speakers {unknown}: not in {sorted(set(corpus.speakers))}")
    everything = np.ones(len(corpus.clips), dtype=bool)
    aligner, fit_seconds, fit_cpu_seconds = time_fit(corpus, everything, args.threads, args.seed)
    predicted_clips = [corpus.clips[index] for index in spread(args.predict_clips, len(everything))]
    predict_ms, predict_cpu_ms = time_predict(aligner, predicted_clips)
    print(
        f"fit {fit_seconds:.0f} s ({fit_cpu_seconds:.0f} CPU s), predict {predict_ms:.1f} ms "
        f"per clip ({predict_cpu_ms:.1f} CPU ms)",
        flush=True,
    )
    folds = [
        unseen_speaker_accuracy(corpus, speaker, args.threads, args.seed)
        for speaker in args.unseen_speakers
    ]
    results = {
        "command": shlex.join(["python", "-m", __spec__.name, *arguments]),
        "settings": {
            "aligner": 'CWCLAligner(teacher="bert", student="whisper", random_state=seed)',
            "recipe": aligner.recipe_,
            "fit_clips": len(corpus.clips),
            "fit_threads": args.threads,
            "predict_clips": len(predicted_clips),
            "predict_threads": 1,
            "seed": args.seed,
            "quick": args.quick,
            # Other jobs sharing the cores slow the timings: the load says how many there were.
            "load_average_before": load_before,
            "load_average_after": _load_average(),
        },
        "summary": {
            "fit_seconds": fit_seconds,
            "fit_cpu_seconds": fit_cpu_seconds,
            "fit_target_seconds": FIT_TARGET_SECONDS,
            "epochs": len(aligner.history_),
            "final_train_loss": aligner.history_[-1]["train_loss"],
            "predict_ms_per_clip": predict_ms,
            "predict_cpu_ms_per_clip": predict_cpu_ms,
            "predict_target_ms": PREDICT_TARGET_MS,
            "unseen_speakers": folds,
        },
    }
    stem = "default_speed_quick" if args.quick else "default_speed"
    return publish(results, args.out, stem, "default-speed")


if __name__ == "__main__":
    main()
