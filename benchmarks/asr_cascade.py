"""The ASR cascade baseline beside the aligned speech student: accuracy and time per clip.

The baseline a user would pick instead of aligning a student: Whisper tiny.en transcribes each
clip with greedy decoding, the teacher (all-MiniLM-L6-v2) embeds the transcript, and the
nearest label embedding is the prediction (:class:`cwcl_sk.cascade.TranscribeThenEmbed`).
Nothing is trained, so it is measured on every clip of a task, or every ``--every``-th one.

Run from the repository root::

    python -m benchmarks.asr_cascade --every 4   # a quarter of each task's clips, on 1 thread
    python -m benchmarks.asr_cascade --quick     # a smoke run: a few clips of each task

Tasks, with the labels and prompts of their own benchmarks:

- spoken digits: the Free Spoken Digit Dataset (``$CWCL_FSDD_DIR`` or ``shared/data/fsdd``),
  ten digit names, accuracy overall and per speaker;
- spoken intents: the 2,033 SLURP devel requests spoken by the three evaluation voices never
  heard in training, synthesised as ``benchmarks/spoken_intents.py`` synthesises them (same
  voices, rates, pitches and seed, so the same clips), 71 intent descriptions in the same
  templates.

Beside the cascade: the aligned student's accuracy from the committed result file of its
benchmark (named in the table), and the text-only limit (the teacher on the gold transcripts)
computed here on the same clips. Both systems are timed in this run on one thread over the
same clips: the cascade's ``predict`` and the transform of the default speech aligner
(``CWCLAligner(teacher="bert", student="whisper")``) fitted for one epoch on 32 other clips of
the task (its cost per clip does not depend on its weights), with the student's cache of
frozen-layer outputs emptied first. Whisper decodes 30-s windows, so the cascade's cost per
clip hardly depends on the clip's length. The result goes to
``benchmarks/results/asr_cascade.json`` (or ``--out``); ``python -m benchmarks.tables --write``
renders it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from cwcl_sk import CWCLAligner
from cwcl_sk.cascade import TranscribeThenEmbed
from cwcl_sk.datasets import synthesize_speech
from cwcl_sk.encoders.students.activation_cache import clear_activation_cache

from .publish import publish
from .results import RESULTS
from .slurp_data import INTENT_DESCRIPTIONS, INTENT_TEMPLATES, load_slurp
from .tasks.spoken_digits import DIGIT_NAMES, default_data_folder, load_fsdd
from .tasks.spoken_intents import EVAL_VOICES, PITCH, RATE, SPEECH_CACHE

#: The aligned students' results the table quotes: file, row (loss) and how to call it.
DIGITS_STUDENT = (
    "spoken_digits_whisper_top2.json",
    "CWCL capped-exp",
    "aligned Whisper tiny.en, top 2 layers, 3e-4, 8 epochs (each speaker held out)",
)
INTENTS_STUDENT = (
    "spoken_intents_whisper_v2_t012.json",
    "CWCL capped-exp",
    "aligned Whisper tiny.en, default recipe (2 voices per transcript)",
)
#: The row of a committed table that holds its text-only limit.
_LIMIT_ROW = "text-only limit (gold transcripts)"
#: Clips the timing-only student is fitted on (one epoch), never among the timed clips.
STUDENT_FIT_CLIPS = 32
#: --quick: clips measured per task, and clips the timing-only student is fitted on.
QUICK_CLIPS = 3
QUICK_FIT_CLIPS = 4


def committed_accuracy(source: str, row_name: str, results: Path = RESULTS) -> float | None:
    """The (mean) accuracy of row ``row_name`` in a committed result file's stored table, or
    None when it has no such row."""
    table = json.loads((results / source).read_text())["table"]
    accuracy_column = 1 if table["header"][0] == "loss" else 2
    for row in table["rows"]:
        if row_name in row[:2]:
            cell = row[accuracy_column]
            return float(cell["mean"] if isinstance(cell, dict) else cell)
    return None


def _classifier(labels: dict, templates: list, sampling_rate: int) -> TranscribeThenEmbed:
    classifier = TranscribeThenEmbed(
        labels=labels, templates=templates, teacher="bert", sampling_rate=sampling_rate
    )
    with warnings.catch_warnings():
        # One example per class makes scikit-learn ask whether y is continuous; fit only
        # embeds the label prompts.
        warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
        return classifier.fit(None, list(labels))


def _timed(function, count: int):
    """``function()`` and the milliseconds per item it took for ``count`` items."""
    started = time.perf_counter()
    value = function()
    return value, 1000.0 * (time.perf_counter() - started) / count


def student_milliseconds(clips, fit_clips, fit_texts, sampling_rate: int) -> float:
    """Milliseconds per clip of the default speech aligner's transform, on one thread."""
    aligner = CWCLAligner(
        teacher="bert",
        student="whisper",
        sampling_rate=sampling_rate,
        max_epochs=1,
        batch_size=len(fit_clips),
        random_state=0,
    ).fit(fit_clips, fit_texts)
    aligner.transform(clips[:2])  # warm-up: first calls allocate
    clear_activation_cache()
    return _timed(lambda: aligner.transform(clips), len(clips))[1]


def text_limit(classifier: TranscribeThenEmbed, transcripts: list, truth: np.ndarray) -> float:
    """Accuracy of the teacher on the gold transcripts, with the classifier's label embeddings."""
    embeddings = classifier.aligner_.embed_teacher(transcripts)
    predicted = classifier.classes_[np.argmax(embeddings @ classifier.class_embeddings_.T, axis=1)]
    return float(np.mean(predicted == truth))


def measure_task(name, clips, truth, transcripts, classifier, student, fit_set, rate) -> dict:
    """The cascade's accuracy and both systems' milliseconds per clip on ``clips``."""
    classifier.predict(clips[:1])  # warm-up: loads Whisper
    predicted, cascade_ms = _timed(lambda: classifier.predict(clips), len(clips))
    source, loss, label = student
    # The student's share of the text limit is taken against the limit of its own file (the
    # digits' transcripts are the label words: the teacher's limit there is 1).
    student_limit = committed_accuracy(source, _LIMIT_ROW) or 1.0
    return {
        "task": name,
        "clips": len(clips),
        "cascade_accuracy": float(np.mean(predicted == truth)),
        "cascade_ms_per_clip": cascade_ms,
        "student_ms_per_clip": student_milliseconds(clips, *fit_set, rate),
        "student_accuracy": committed_accuracy(source, loss),
        "student_label": label,
        "student_source": f"`{source}`, {loss}",
        "student_text_limit": student_limit,
        "text_limit": text_limit(classifier, transcripts, truth),
        "predicted": predicted.tolist(),
    }


def _split(total: int, every: int, quick: bool) -> tuple[np.ndarray, np.ndarray]:
    """The measured clips (every ``every``-th), and the few the timing student fits on."""
    chosen = np.arange(0, total, every)[: QUICK_CLIPS if quick else None]
    others = np.setdiff1d(np.arange(total), chosen)
    if len(others) < 2:  # every clip is measured: the student fits on the first few
        others = chosen
    return chosen, others[: QUICK_FIT_CLIPS if quick else STUDENT_FIT_CLIPS]


def spoken_digits(every: int, quick: bool) -> dict:
    """The cascade on FSDD, with accuracy per speaker."""
    corpus = load_fsdd(default_data_folder(), 1 if quick else None)
    chosen, others = _split(len(corpus.clips), every, quick)
    clips = [corpus.clips[index] for index in chosen]
    truth = corpus.digits[chosen]
    classifier = _classifier(dict(enumerate(DIGIT_NAMES)), ["{}"], corpus.sampling_rate)
    fit_set = ([corpus.clips[i] for i in others], [DIGIT_NAMES[d] for d in corpus.digits[others]])
    words = [DIGIT_NAMES[digit] for digit in truth]
    task = measure_task(
        "spoken digits", clips, truth, words, classifier, DIGITS_STUDENT, fit_set,
        corpus.sampling_rate,
    )  # fmt: skip
    speakers = corpus.speakers[chosen]
    correct = np.asarray(task.pop("predicted")) == truth
    task["per_speaker"] = {
        speaker: float(np.mean(correct[speakers == speaker])) for speaker in np.unique(speakers)
    }
    return task


def spoken_intents(every: int, quick: bool, cache_dir: Path) -> dict:
    """The cascade on the spoken-intents evaluation clips (unseen voices)."""
    slurp = load_slurp()
    if quick:  # a few requests and their neighbours, not the benchmark's 2,033 clips
        keep = slice(0, QUICK_CLIPS * every + QUICK_FIT_CLIPS)
        slurp = {key: slurp[key][keep] for key in ("eval_texts", "eval_intents")}
    # As benchmarks/tasks/spoken_intents.make_corpus speaks the evaluation requests (seed 0).
    clips = synthesize_speech(
        slurp["eval_texts"], voices=list(EVAL_VOICES), random_state=1, rate=RATE, pitch=PITCH,
        cache_dir=cache_dir, verbose=1,
    )  # fmt: skip
    chosen, others = _split(len(clips), every, quick)
    truth = np.asarray(slurp["eval_intents"])[chosen]
    transcripts = [slurp["eval_texts"][index] for index in chosen]
    classifier = _classifier(INTENT_DESCRIPTIONS, list(INTENT_TEMPLATES), 16000)
    fit_set = ([clips[index] for index in others], [slurp["eval_texts"][i] for i in others])
    task = measure_task(
        "spoken intents", [clips[index] for index in chosen], truth, transcripts, classifier,
        INTENTS_STUDENT, fit_set, 16000,
    )  # fmt: skip
    task.pop("predicted")
    return task


def main(argv=None) -> dict:
    """Measure both tasks, write the result files and return the results.

    Returns
    -------
    results : dict
        What was written after the common fields: ``command``, ``settings`` and ``summary``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=1, help="measure every N-th clip")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few clips a task")
    parser.add_argument("--cache-dir", type=Path, default=SPEECH_CACHE, help="synthesised clips")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result files")
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(arguments)
    if args.every < 1:
        parser.error(f"--every must be at least 1, got {args.every}")
    if args.quick:
        args.every = max(args.every, 5)

    torch.set_num_threads(1)
    load_before = round(os.getloadavg()[0], 2)
    summary = [
        spoken_digits(args.every, args.quick),
        spoken_intents(args.every, args.quick, args.cache_dir),
    ]
    for task in summary:
        print(
            f"{task['task']}: cascade {task['cascade_accuracy']:.3f} "
            f"({task['cascade_ms_per_clip']:.0f} ms / clip), student "
            f"{task['student_ms_per_clip']:.1f} ms / clip",
            flush=True,
        )
    selection = "every clip" if args.every == 1 else f"every {args.every}th clip, in file order"
    results = {
        "command": shlex.join(["python", "-m", __spec__.name, *arguments]),
        "settings": {
            "whisper": "tiny.en (whisper_tiny_en_path()), greedy, English, no timestamps",
            "teacher": "bert (all-MiniLM-L6-v2)",
            "every": args.every,
            "selection": selection,
            "threads": 1,
            "quick": args.quick,
            "load_average_before": load_before,
            "load_average_after": round(os.getloadavg()[0], 2),
        },
        "summary": summary,
    }
    stem = "asr_cascade_quick" if args.quick else "asr_cascade"
    return publish(results, args.out, stem, "asr-cascade")


if __name__ == "__main__":
    main()
