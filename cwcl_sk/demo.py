"""The offline demo: CL against CWCL, zero-shot, on spoken commands (or handwritten digits).

With the speech synthesiser installed, a ``mel-cnn`` student hears smart-home requests
("switch the lights on") spoken by twelve synthetic voices and is aligned to the bundled
all-MiniLM-L6-v2 teacher on their transcripts; it is then asked to classify requests by three
voices it never heard, zero-shot, among intent names ("lights on") that were never spoken.
Without the synthesiser, an MLP student on scikit-learn's 8x8 digits is aligned to captions
("a handwritten seven") and classifies the held-out 30% from unseen prompts.

Each configuration (CL, CWCL with the default kernel, CWCL with the paper's linear kernel)
gets the same data, student and budget.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .kernels import DEFAULT_KERNEL

__all__ = [
    "CONFIGURATIONS",
    "DemoData",
    "DemoReport",
    "DemoResult",
    "format_header",
    "format_row",
    "format_table",
    "run_demo",
    "write_report",
]

#: The compared losses: the library's default CWCL kernel and the paper's linear one.
CONFIGURATIONS = (
    ("CL (CLIP loss)", {"loss": "clip"}),
    (f"CWCL, default kernel ({DEFAULT_KERNEL})", {"loss": "cwcl", "kernel": DEFAULT_KERNEL}),
    ("CWCL, linear kernel (paper)", {"loss": "cwcl", "kernel": "linear"}),
)

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIGIT_CAPTIONS = [
    "a handwritten {}",
    "the digit {}",
    "a scanned {}",
    "the number {} written by hand",
]


@dataclass
class DemoData:
    """A train/test split with texts and labels, and the student that suits it."""

    description: str
    X_train: object
    texts_train: list
    y_train: np.ndarray
    X_test: object
    texts_test: list
    y_test: np.ndarray
    labels: dict
    templates: list
    aligner_options: dict


@dataclass
class DemoResult:
    """One row of the demo table.

    ``teacher_accuracy`` is the frozen teacher's own zero-shot accuracy on the test texts
    (transcripts or captions) instead of the inputs: the ceiling a perfect student reaches.
    ``teacher_name`` is the model the teacher alias resolved to.
    """

    name: str
    accuracy: float
    recall_at_1: float
    seconds: float
    warnings: list = field(default_factory=list)
    teacher_accuracy: float = float("nan")
    teacher_name: str = ""


class DemoReport(list):
    """The demo's results, one :class:`DemoResult` per configuration, and what it ran on.

    A list, so that it plots as it is: ``plot_comparison(run_demo(), metric="recall_at_1")``.

    Attributes
    ----------
    data : {"speech", "digits"}
        The data the demo ran on.
    description : str
        The task, in one sentence.
    notes : list of str
        Anything the reader should know, such as a fallback to the digits.
    """

    def __init__(self, results, data: str, description: str, notes: list):
        super().__init__(results)
        self.data = data
        self.description = description
        self.notes = notes


def synthesiser_available() -> bool:
    """Whether the speech synthesiser can be imported.

    Returns
    -------
    available : bool
        True when the ``espeakng-loader`` package (``pip install "cwcl-sk[speech]"``) imports.
    """
    try:
        importlib.import_module("espeakng_loader")
    except ImportError:
        return False
    return True


def _speech_data(quick: bool = False, random_state: int = 0, verbose: int = 0) -> DemoData:
    """Spoken commands: training voices for fitting, unseen voices for evaluation."""
    from .datasets import TEST_VOICES, TRAIN_VOICES, make_spoken_commands

    if quick:
        train_voices, test_voices, repetitions = TRAIN_VOICES[:6], TEST_VOICES[:2], 1
        student = {"student__channels": 16, "student__n_layers": 1}
    else:
        train_voices, test_voices, repetitions = TRAIN_VOICES, TEST_VOICES, 2
        student = {"student__channels": 64}
    train = make_spoken_commands(
        train_voices, repetitions, random_state=random_state, verbose=verbose
    )
    test = make_spoken_commands(test_voices, random_state=random_state + 1, verbose=verbose)
    return DemoData(
        description=(
            f"a mel-cnn student hears {len(train.clips)} synthesised requests by "
            f"{len(train_voices)} voices, paired with their transcripts, and classifies "
            f"{len(test.clips)} requests by {len(test_voices)} unseen voices zero-shot among "
            f"{len(train.intent_names)} intent names"
        ),
        X_train=train.clips,
        texts_train=train.texts,
        y_train=train.intents,
        X_test=test.clips,
        texts_test=test.texts,
        y_test=test.intents,
        labels=train.labels,
        templates=["{}"],
        aligner_options={
            "student": "mel-cnn",
            "sampling_rate": train.sampling_rate,
            "batch_size": 32,
            "max_epochs": 8 if quick else 30,
            **student,
        },
    )


def _digits_data(quick: bool = False, random_state: int = 0) -> DemoData:
    """scikit-learn's 8x8 digits with captions; the held-out 30% for evaluation."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=random_state, stratify=y
    )
    rng = np.random.default_rng(random_state)
    templates = rng.integers(0, len(DIGIT_CAPTIONS), size=len(y_train))
    return DemoData(
        description=(
            f"an MLP student on {len(y_train)} of scikit-learn's 8x8 digits, paired with "
            f"captions, classifies the {len(y_test)} held-out digits zero-shot from unseen prompts"
        ),
        X_train=X_train,
        texts_train=[
            DIGIT_CAPTIONS[template].format(DIGIT_WORDS[label])
            for template, label in zip(templates, y_train, strict=True)
        ],
        y_train=y_train,
        X_test=X_test,
        # One caption per class, so R@1 asks "which of the ten captions is it?".
        texts_test=[f"the digit {DIGIT_WORDS[label]}" for label in y_test],
        y_test=y_test,
        labels=dict(enumerate(DIGIT_WORDS)),
        templates=["a picture of the number {}", "{}"],
        aligner_options={"student": "mlp", "max_epochs": 5 if quick else 30},
    )


def _evaluate(name: str, data: DemoData, options: dict, random_state: int, verbose: int):
    """Fit one configuration on ``data`` and score it: zero-shot accuracy, R@1, seconds."""
    from .aligner import CWCLAligner
    from .progress import EpochProgress
    from .zero_shot import ZeroShotClassifier

    started = time.perf_counter()
    # The training loop's own bar says only "epochs"; this one names the configuration.
    callbacks = [("progress", EpochProgress(name, leave=False))] if verbose > 0 else None
    # The collapse warning of the paper's kernel is part of the story: keep it for the
    # report's notes instead of letting it interrupt the output.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        aligner = CWCLAligner(
            teacher="minilm",
            random_state=random_state,
            verbose=max(verbose - 1, 0),  # 2 adds the loop's bars over batches
            callbacks=callbacks,
            **options,
        ).fit(data.X_train, data.texts_train)
    classifier = ZeroShotClassifier(aligner, labels=data.labels, templates=data.templates)
    classifier.fit(data.X_train, data.y_train)  # zero-shot: only the classes are read from y
    # (n_test, n_classes): the teacher's similarity of each test text to each class prompt.
    text_scores = aligner.embed_teacher(data.texts_test) @ classifier.class_embeddings_.T
    teacher_predictions = classifier.classes_[text_scores.argmax(axis=1)]
    return DemoResult(
        name=name,
        teacher_name=aligner.teacher_.name,
        accuracy=float(classifier.score(data.X_test, data.y_test)),
        recall_at_1=float(aligner.score(data.X_test, data.texts_test)),
        seconds=time.perf_counter() - started,
        warnings=[str(warning.message) for warning in caught],
        teacher_accuracy=float(np.mean(teacher_predictions == data.y_test)),
    )


@contextmanager
def _one_torch_thread():
    """Run torch on one thread inside the block, and restore the thread count after it.

    The demo's students are tiny: split over threads, each operation costs more in
    synchronisation than in arithmetic, and on a busy 2-core machine threads that wait for
    each other made training several times slower than one thread.
    """
    from .threads import thread_limit

    with thread_limit(1):
        yield


def run_demo(
    data: str = "speech",
    quick: bool = False,
    max_epochs: int | None = None,
    random_state: int = 0,
    verbose: int = 0,
) -> DemoReport:
    """Train CL and CWCL students offline and score them zero-shot.

    Parameters
    ----------
    data : {"speech", "digits"}, default="speech"
        Spoken commands synthesised with espeak-ng, or scikit-learn's digits. Without the
        synthesiser (``pip install "cwcl-sk[speech]"``) ``"speech"`` falls back to the
        digits, and the report's notes say so.
    quick : bool, default=False
        Fewer voices, a smaller student and a few epochs: checks that everything runs
        (well under a minute), the accuracies mean little.
    max_epochs : int, optional
        Training epochs of every configuration; by default 30 for speech and for digits
        (8 and 5 when ``quick``).
    random_state : int, default=0
    verbose : int, default=0
        When positive: progress bars for synthesis and for each configuration's training
        (labelled with its name), a line before each fit and its table row after it; 2
        adds bars over batches.

    Returns
    -------
    report : DemoReport
        One :class:`DemoResult` per entry of :data:`CONFIGURATIONS`, in that order.
    """
    if data not in ("speech", "digits"):
        raise ValueError(f"data must be 'speech' or 'digits', got {data!r}.")
    notes = []
    if data == "speech" and not synthesiser_available():
        notes.append(
            'The speech synthesiser is not installed (pip install "cwcl-sk[speech]"), so '
            "the demo runs on scikit-learn's digits instead."
        )
        data = "digits"
    if data == "speech":
        demo_data = _speech_data(quick, random_state, verbose)
    else:
        demo_data = _digits_data(quick, random_state)
    options = dict(demo_data.aligner_options)
    if max_epochs is not None:
        options["max_epochs"] = max_epochs
    results = []
    with _one_torch_thread():
        for number, (name, configuration) in enumerate(CONFIGURATIONS, start=1):
            if verbose > 0:
                # The first fit loads the teacher and embeds the texts before its first epoch.
                preparing = "loading the teacher, " if number == 1 else ""
                print(
                    f"[{number}/{len(CONFIGURATIONS)}] {name}: {preparing}preparing the "
                    "inputs and the teacher's embeddings...",
                    flush=True,
                )
            result = _evaluate(name, demo_data, {**options, **configuration}, random_state, verbose)
            results.append(result)
            if verbose > 0:
                # Each row as soon as it is known, not only in the table at the end.
                print(f"{format_header()}\n{format_row(result)}\n", flush=True)
    return DemoReport(results, data=data, description=demo_data.description, notes=notes)


def format_header() -> str:
    """The two header lines of the demo table: column names and a rule."""
    header = f"{'configuration':<33} {'zero-shot acc.':>14} {'text R@1':>9} {'seconds':>8}"
    return f"{header}\n{'-' * len(header)}"


def format_row(result) -> str:
    """One line of the demo table for a :class:`DemoResult`, aligned with its header."""
    return (
        f"{result.name:<33} {result.accuracy:>14.1%} {result.recall_at_1:>9.1%} "
        f"{result.seconds:>8.1f}"
    )


def format_table(results) -> str:
    """A plain-text table of demo results, with the training warnings below it."""
    lines = [format_header(), *(format_row(result) for result in results)]
    if results and not np.isnan(results[0].teacher_accuracy):
        lines.append(f"{'teacher on the texts (limit)':<33} {results[0].teacher_accuracy:>14.1%}")
    notes = [f"{result.name}: {text}" for result in results for text in result.warnings]
    if notes:
        lines += ["", "Warnings during training:", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


def write_report(report: DemoReport, path, command: str, settings: dict) -> None:
    """Write ``report`` as a benchmark result file (JSON), the source of the README's table.

    Parameters
    ----------
    report : DemoReport
        What :func:`run_demo` returned.
    path : str or path-like
        The JSON file to write; its folder is created when missing.
    command : str
        The command line that produced ``report``, recorded so the numbers can be re-made.
    settings : dict
        The arguments :func:`run_demo` was called with.
    """
    import sklearn
    import torch

    from ._version import __version__

    record = {
        "schema": 1,  # the layout of the benchmarks' result files (benchmarks/results.py)
        "name": "demo",
        "command": command,
        "settings": {**settings, "data": report.data},
        "description": report.description,
        "notes": list(report.notes),
        "machine": {
            "system": platform.system(),
            "cpu": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "threads": 1,  # run_demo trains on one torch thread
        },
        "versions": {
            "cwcl_sk": __version__,
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "python": platform.python_version(),
        },
        "provenance": {"source": "run", "date": time.strftime("%Y-%m-%d", time.gmtime())},
        # One seed: each configuration's values are that seed's.
        "runs": [
            {
                "configuration": result.name,
                "seed": settings.get("random_state", 0),
                "accuracy": result.accuracy,
                "recall_at_1": result.recall_at_1,
                "seconds": result.seconds,
                "teacher_accuracy": result.teacher_accuracy,
                "warnings": result.warnings,
            }
            for result in report
        ],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
