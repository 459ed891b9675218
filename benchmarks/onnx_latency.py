"""Latency of an exported ZeroShotClassifier in onnxruntime beside PyTorch, on one CPU thread.

Run from the repository root::

    python -m benchmarks.onnx_latency --repeats 30    # mlp, cnn and mel-cnn (a minute or two)
    python -m benchmarks.onnx_latency --students mlp --repeats 20     # a smoke run

For each student a small classifier is trained on synthetic data (digit features, shape
images, tones of three pitches), exported with :func:`cwcl_sk.export_onnx`, and timed on
held-out inputs one at a time (batch 1) and in batches of 32, with PyTorch and onnxruntime
each limited to one thread:

- ``model``: the graph alone on ready inputs (:func:`cwcl_sk.onnx_inputs`): the student's
  forward pass and the class scores in PyTorch, ``InferenceSession.run`` in onnxruntime;
- ``end_to_end``: from raw inputs, preprocessing included: ``predict_proba`` in PyTorch,
  ``onnx_inputs`` then ``run`` for onnxruntime.

Each timing is the median over ``--repeats`` runs after a warm-up, in milliseconds per input.
The agreement of the two (largest probability difference, same predicted classes) on the
held-out inputs is reported beside them. The result is printed and written to
``benchmarks/results/onnx_latency.json`` (or the folder ``--out``), in the schema of
:mod:`benchmarks.results`; ``python -m benchmarks.tables --write`` renders it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from cwcl_sk import CWCLAligner, ZeroShotClassifier, export_onnx, onnx_inputs

from .results import RESULTS, table_lines, write_results
from .tables import TABLES

STUDENTS = ("mlp", "cnn", "mel-cnn")
BATCH_SIZES = (1, 32)
SAMPLING_RATE = 16000
#: What each student is given, for the table.
INPUTS = {
    "mlp": "64 features, 256 hidden",
    "cnn": "16x16 images",
    "mel-cnn": "clips of 0.5 to 2 s",
}


def digit_features(n_samples: int, seed: int):
    """scikit-learn's 8x8 digits as 64 features, with the word of each digit."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rows = np.random.default_rng(seed).permutation(len(X))[:n_samples]
    return X[rows].astype(np.float32), y[rows]


def shape_images(n_images: int, seed: int):
    """16x16 grayscale bars, rings and crosses with noise, in [0, 1], and their class."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:16, :16]
    radius = np.hypot(rows - 7.5, columns - 7.5)
    masks = [
        (columns >= 6) & (columns <= 9),
        (radius > 4) & (radius < 7),
        (np.abs(rows - columns) <= 1) | (np.abs(rows + columns - 15) <= 1),
    ]
    classes = np.arange(n_images) % 3
    images = np.stack([masks[label] * 0.9 for label in classes]) + 0.1 * rng.random(
        (n_images, 16, 16)
    )
    return np.clip(images, 0, 1).astype(np.float32), classes


def tones(n_clips: int, seed: int):
    """Tones of three pitches, 0.5 to 2 s long, with noise, and their class."""
    rng = np.random.default_rng(seed)
    classes = np.arange(n_clips) % 3
    clips = []
    for label in classes:
        time_axis = np.arange(rng.integers(SAMPLING_RATE // 2, 2 * SAMPLING_RATE)) / SAMPLING_RATE
        tone = np.sin(2 * np.pi * (200.0 * 2**label) * time_axis)
        clips.append((0.3 * tone + 0.02 * rng.normal(size=time_axis.size)).astype(np.float32))
    return clips, classes


CASES = {
    "mlp": (
        digit_features,
        {"student__hidden_sizes": (256,)},
        dict(enumerate("zero one two three four five six seven eight nine".split())),
    ),
    "cnn": (shape_images, {}, {0: "bar", 1: "ring", 2: "cross"}),
    "mel-cnn": (tones, {}, {0: "low", 1: "middle", 2: "high"}),
}


def train(student: str, epochs: int):
    """A classifier with ``student``, and held-out inputs."""
    make_data, options, names = CASES[student]
    X, classes = make_data(160, seed=0)
    X_held_out, _ = make_data(64, seed=1)
    aligner = CWCLAligner(
        teacher="minilm",
        student=student,
        max_epochs=epochs,
        batch_size=32,
        device="cpu",
        random_state=0,
        **options,
    )
    classifier = ZeroShotClassifier(aligner, labels=names).fit(X, classes)
    return classifier, X_held_out


def median_milliseconds(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def torch_scores(classifier, inputs: dict) -> torch.Tensor:
    """The student's forward pass and the class scores, on ready inputs, in PyTorch."""
    student = classifier.aligner_.student_
    batch = {name: torch.from_numpy(array) for name, array in inputs.items()}
    if list(batch) == ["features"]:
        batch = batch["features"]
    with torch.no_grad():
        scores = student(batch) @ torch.from_numpy(classifier.class_embeddings_).T
        return torch.softmax(scores / classifier.aligner_.temperature_, dim=1)


def measure(student: str, epochs: int, repeats: int) -> list[dict]:
    import onnxruntime

    classifier, held_out = train(student, epochs)
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(classifier, Path(folder) / f"{student}.onnx", held_out[:4])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    _, probabilities = session.run(None, onnx_inputs(classifier, held_out))
    expected = classifier.predict_proba(held_out)
    agreement = {
        "max_abs_probability_difference": float(np.abs(probabilities - expected).max()),
        "same_classes": bool(np.array_equal(probabilities.argmax(axis=1), expected.argmax(axis=1))),
    }
    rows = []
    for batch_size in BATCH_SIZES:
        timings = time_batch(classifier, session, held_out[:batch_size], repeats)
        row = {"student": student, "batch_size": batch_size}
        row.update({f"{key}_ms_per_input": value / batch_size for key, value in timings.items()})
        row["model_speedup"] = timings["torch_model"] / timings["onnx_model"]
        row["end_to_end_speedup"] = timings["torch_end_to_end"] / timings["onnx_end_to_end"]
        row.update(agreement)
        rows.append(row)
    return rows


def time_batch(classifier, session, batch, repeats: int) -> dict:
    """Median milliseconds of one batch: the graph alone and from raw inputs, in both."""
    inputs = onnx_inputs(classifier, batch)
    return {
        "torch_model": median_milliseconds(lambda: torch_scores(classifier, inputs), repeats),
        "onnx_model": median_milliseconds(lambda: session.run(None, inputs), repeats),
        "torch_end_to_end": median_milliseconds(lambda: classifier.predict_proba(batch), repeats),
        "onnx_end_to_end": median_milliseconds(
            lambda: session.run(None, onnx_inputs(classifier, batch)), repeats
        ),
    }


def main(argv=None) -> dict:
    """Measure, write the result files and return what was written after the common fields.

    Returns
    -------
    results : dict
        ``{"command", "settings", "summary"}``: the settings of the run and one row per
        student and batch size.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", nargs="+", choices=STUDENTS, default=list(STUDENTS))
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per measurement")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per student")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result files")
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(arguments)
    if args.repeats < 1 or args.epochs < 1:
        parser.error(
            f"--repeats and --epochs must be at least 1, got {args.repeats} and {args.epochs}"
        )

    import onnxruntime

    torch.set_num_threads(1)
    rows = [row for student in args.students for row in measure(student, args.epochs, args.repeats)]
    results = {
        # The arguments given to main, which are sys.argv's only when run as a script.
        "command": shlex.join(["python", "-m", __spec__.name, *arguments]),
        "settings": {
            "students": args.students,
            "inputs": {student: INPUTS[student] for student in args.students},
            "batch_sizes": list(BATCH_SIZES),
            "threads": 1,
            "repeats": args.repeats,
            "epochs": args.epochs,
            "onnxruntime": onnxruntime.__version__,
            # Other jobs sharing the cores slow the timings: the load says how many there were.
            "load_average_at_end": round(os.getloadavg()[0], 2),
        },
        "summary": rows,
    }
    table = "\n".join(table_lines(*TABLES["onnx-latency"].layout(results))) + "\n"
    write_results(args.out / "onnx_latency", table, results)
    print(table)
    print(f"wrote {args.out / 'onnx_latency.json'}")
    return results


if __name__ == "__main__":
    main()
