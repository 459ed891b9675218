"""The command line, ``python -m cwcl_sk demo | fit | predict``, and the manifests it reads.

A manifest lists training pairs, one per line: the student-side input and its text.

- CSV (``.csv``, or ``.tsv`` with tabs) with a header naming the columns ``path`` and ``text``
  (other columns are ignored)::

      path,text
      clips/0001.npy,turn on the lights

- JSON Lines (``.jsonl``): one object per line, ``{"path": "clips/0001.npy", "text": "..."}``.

Instead of ``path``, a row may give ``features``: the numbers themselves (a JSON list, or in a
CSV cell separated by spaces), for feature students. Relative paths are resolved against the
manifest's folder, so a manifest and its files can be moved together.

What a path means depends on the student: for feature students (``mlp``) each path is a
``.npy`` file holding one feature vector, loaded with :func:`numpy.load`; for audio students
(``mel-cnn``, ``wav2vec2``, ``hubert``, ``whisper``) the paths are passed to the student
unchanged, and its input handler reads the audio files.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .schedules import LR_SCHEDULES

__all__ = [
    "ManifestError",
    "ManifestRow",
    "build_parser",
    "main",
    "manifest_inputs",
    "read_manifest",
    "read_manifest_rows",
    "student_kind",
]

_CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class ManifestRow:
    """One pair of a manifest.

    Parameters
    ----------
    line : int
        The line of the manifest it was read from (1-based; a CSV header is line 1).
    text : str
        The teacher-side text.
    path : str or None
        The student-side file, resolved against the manifest's folder.
    features : ndarray of shape (n_features,) or None
        The student-side numbers, for rows that give ``features`` instead of ``path``.
    """

    line: int
    text: str
    path: str | None = None
    features: np.ndarray | None = None


def _auto_or(kind):
    """An argparse type: ``"auto"`` (the student's recipe decides) or a ``kind`` number."""

    def parse(text: str):
        if text == "auto":
            return text
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected auto or {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _where(manifest: Path, line: int) -> str:
    return f"{manifest}, line {line}"


def _parse_numbers(value, manifest: Path, line: int) -> np.ndarray:
    """A 1-D float vector from a JSON list or a CSV cell of numbers."""
    if isinstance(value, str):
        # "1 2 3", "1;2;3" and "[1, 2, 3]" all mean the same row.
        value = re.sub(r"[\[\],;]", " ", value).split()
    try:
        features = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise ManifestError(
            f"{_where(manifest, line)}: 'features' must be a list of numbers, got {value!r}."
        ) from None
    if features.ndim != 1 or features.size == 0:
        raise ManifestError(
            f"{_where(manifest, line)}: 'features' must be a non-empty list of numbers, got "
            f"shape {features.shape}."
        )
    return features


def _make_row(record: dict, manifest: Path, line: int) -> ManifestRow:
    """Validate one record (column -> value) into a row."""
    where = _where(manifest, line)
    text = record.get("text")
    if text is None:
        raise ManifestError(f"{where}: missing column 'text'.")
    if not isinstance(text, str):
        raise ManifestError(f"{where}: 'text' must be a string, got {type(text).__name__}.")
    if not text.strip():
        raise ManifestError(f"{where}: empty text; every pair needs its text.")
    path, features = record.get("path"), record.get("features")
    if isinstance(path, str) and not path.strip():
        path = None
    if isinstance(features, str) and not features.strip():
        features = None
    if path is None and features is None:
        raise ManifestError(f"{where}: missing column 'path' (or 'features').")
    if path is not None and features is not None:
        raise ManifestError(f"{where}: give either 'path' or 'features', not both.")
    if features is not None:
        return ManifestRow(line, text, features=_parse_numbers(features, manifest, line))
    if not isinstance(path, str):
        raise ManifestError(f"{where}: 'path' must be a string, got {type(path).__name__}.")
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = manifest.parent / resolved
    if not resolved.is_file():
        raise ManifestError(f"{where}: file {path!r} not found (looked for {resolved}).")
    return ManifestRow(line, text, path=str(resolved))


def _csv_rows(manifest: Path, delimiter: str) -> list[ManifestRow]:
    with manifest.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise ManifestError(f"{manifest}: the manifest is empty.")
        columns = [column.strip().lower() for column in header]
        if "text" not in columns or not {"path", "features"} & set(columns):
            raise ManifestError(
                f"{_where(manifest, 1)}: the header must name the columns 'path' (or "
                f"'features') and 'text', got {header}."
            )
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(columns):
                raise ManifestError(
                    f"{_where(manifest, reader.line_num)}: {len(cells)} cells but the header "
                    f"names {len(columns)} columns; put texts that contain "
                    f"{'tabs' if delimiter == chr(9) else 'commas'} in double quotes."
                )
            # Cells missing at the end of a short row are absent, not empty.
            record = dict(zip(columns, cells, strict=False))
            rows.append(_make_row(record, manifest, reader.line_num))
    return rows


def _jsonl_rows(manifest: Path) -> list[ManifestRow]:
    rows = []
    with manifest.open(encoding="utf-8-sig") as file:
        for line, content in enumerate(file, start=1):
            if not content.strip():
                continue
            try:
                record = json.loads(content)
            except json.JSONDecodeError as error:
                raise ManifestError(f"{_where(manifest, line)}: bad JSON ({error.msg}).") from None
            if not isinstance(record, dict):
                raise ManifestError(
                    f"{_where(manifest, line)}: expected a JSON object such as "
                    f'{{"path": ..., "text": ...}}, got {type(record).__name__}.'
                )
            rows.append(_make_row(record, manifest, line))
    return rows


def read_manifest_rows(path) -> list[ManifestRow]:
    """Read and validate every row of a CSV or JSON Lines manifest.

    Parameters
    ----------
    path : str or path-like
        ``.csv``, ``.tsv``, ``.jsonl`` (or ``.ndjson``); another suffix is read as JSON Lines
        when its first character is ``{``, else as CSV.

    Returns
    -------
    rows : list of ManifestRow

    Raises
    ------
    ManifestError
        Naming the line: a missing column, empty text, a missing file, bad JSON.
    FileNotFoundError
        When the manifest itself does not exist.
    """
    manifest = Path(path)
    if not manifest.is_file():
        raise FileNotFoundError(f"Manifest {str(manifest)!r} not found.")
    suffix = manifest.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        rows = _csv_rows(manifest, _CSV_SUFFIXES[suffix])
    elif suffix in _JSONL_SUFFIXES:
        rows = _jsonl_rows(manifest)
    else:
        with manifest.open(encoding="utf-8-sig") as file:
            looks_like_json = file.read(4096).lstrip().startswith("{")
        rows = _jsonl_rows(manifest) if looks_like_json else _csv_rows(manifest, ",")
    if not rows:
        raise ManifestError(f"{manifest}: the manifest holds no pairs.")
    return rows


def _load_vector(path: str, where: str) -> np.ndarray:
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ManifestError(
            f"{where}: could not read {path!r} as a NumPy .npy file ({error})."
        ) from None
    if not isinstance(vector, np.ndarray):
        raise ManifestError(f"{where}: {path!r} holds several arrays; expected one .npy vector.")
    if vector.ndim == 2 and 1 in vector.shape:
        vector = vector.ravel()  # a (1, n) or (n, 1) row is one vector too
    if vector.ndim != 1 or vector.size == 0 or vector.dtype.kind not in "biuf":
        raise ManifestError(
            f"{where}: {path!r} must hold one non-empty numeric vector, got an array of "
            f"shape {vector.shape} and dtype {vector.dtype}."
        )
    return vector.astype(np.float32)


def student_kind(student="mlp") -> str:
    """What a student reads: ``"features"`` (numeric rows) or ``"audio"`` (clips or files).

    Parameters
    ----------
    student : str or torch.nn.Module, default="mlp"

    Returns
    -------
    kind : str
    """
    from .encoders.registry import student_inputs

    return student_inputs(student).kind


def manifest_inputs(rows: list[ManifestRow], student="mlp", source="manifest"):
    """The student-side inputs ``X`` of manifest rows, as ``fit`` and ``transform`` take them.

    Parameters
    ----------
    rows : list of ManifestRow
    student : str or torch.nn.Module, default="mlp"
        Feature students get an (n_rows, n_features) float32 array (each ``.npy`` file is
        loaded); audio students get the list of paths unchanged.
    source : str, default="manifest"
        Named in error messages.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features) or list of str
    """
    kind = student_kind(student)
    if kind != "features":
        with_features = [row.line for row in rows if row.path is None]
        if with_features:
            raise ManifestError(
                f"{_where(Path(source), with_features[0])}: 'features' rows need a feature "
                f"student such as 'mlp'; the student {student!r} reads {kind} files from 'path'."
            )
        return [row.path for row in rows]
    return _stack_vectors(
        [(_where(Path(source), row.line), row.path, row.features) for row in rows]
    )


def _stack_vectors(items) -> np.ndarray:
    """(n, n_features) from ``(where, path, features)`` items; one of path and features is set."""
    vectors = []
    for where, path, features in items:
        vector = features if path is None else _load_vector(path, where)
        if vectors and vector.shape != vectors[0].shape:
            raise ManifestError(
                f"{where}: {vector.size} features, but the first one has {vectors[0].size}; "
                "every input needs the same number."
            )
        vectors.append(vector)
    return np.stack(vectors)


def read_manifest(path, student="mlp"):
    """Read a manifest of (path or features, text) pairs into ``X`` and texts for ``fit``.

    Parameters
    ----------
    path : str or path-like
        A CSV (``path,text`` header) or JSON Lines (``{"path": ..., "text": ...}``) manifest;
        see the module docstring.
    student : str or torch.nn.Module, default="mlp"
        The student the inputs are for: ``.npy`` feature vectors are loaded for feature
        students, audio paths are kept as they are for audio students.

    Returns
    -------
    X : ndarray of shape (n_pairs, n_features) or list of str
    texts : list of str

    Raises
    ------
    ManifestError
        A row that cannot be used, naming the manifest and the line.

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> from cwcl_sk.cli import read_manifest
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(folder / "a.npy", np.array([1.0, 2.0]))
    >>> _ = (folder / "pairs.csv").write_text("path,text\\na.npy,red\\n")
    >>> X, texts = read_manifest(folder / "pairs.csv")
    >>> X.shape, texts
    ((1, 2), ['red'])
    """
    rows = read_manifest_rows(path)
    return manifest_inputs(rows, student, source=str(path)), [row.text for row in rows]


def _key_value(item: str) -> tuple[str, object]:
    """``key=value`` with the value read as a Python literal (``64``, ``(64, 32)``), else text."""
    key, separator, text = item.partition("=")
    key = key.strip()
    if not separator or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = text.strip()
    return key, value


def _make_kernel(name: str, options: dict):
    """The kernel parameter: its name, or an instance when options are given."""
    from .kernels import KERNELS

    if not options:
        return name
    known = KERNELS[name]().get_params()
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"--kernel-option {unknown} unknown for kernel {name!r}; its options are "
            f"{sorted(known) or 'none'}."
        )
    return KERNELS[name](**options)


def _add_line_numbers(error: Exception, rows: list[ManifestRow], manifest: str) -> str:
    """The error's message with the manifest line of every ``X[i]`` it names."""
    message = str(error)
    indices = sorted({int(index) for index in re.findall(r"\bX\[(\d+)\]", message)})
    lines = [f"X[{index}] is line {rows[index].line}" for index in indices if index < len(rows)]
    if lines:
        message += f" ({', '.join(lines)} of {manifest})"
    return message


def _fit_verbosity(arguments: argparse.Namespace) -> int:
    """``--verbose`` when given, 0 with ``--quiet``, else progress bars on a terminal only."""
    if arguments.quiet:
        return 0
    if arguments.verbose is not None:
        return arguments.verbose
    # The bars go to stderr: a log file or a pipe gets the summary lines only.
    return 1 if sys.stderr.isatty() else 0


def _teacher_description(teacher: str) -> str:
    """The teacher as given, with what an alias resolves to (``bert`` is MiniLM)."""
    from .encoders.registry import TEACHERS

    if teacher in TEACHERS:
        return f"{teacher!r} = {TEACHERS[teacher].description}"
    return repr(teacher)


def _fit(arguments: argparse.Namespace) -> int:
    from .aligner import CWCLAligner

    rows = read_manifest_rows(arguments.pairs)
    X = manifest_inputs(rows, arguments.student, source=arguments.pairs)
    texts = [row.text for row in rows]
    kernel = _make_kernel(arguments.kernel, dict(arguments.kernel_option or []))
    encoder_options = {
        f"{role}__{key}": value
        for role, items in (
            ("student", arguments.student_option),
            ("teacher", arguments.teacher_option),
        )
        for key, value in items or []
    }
    aligner = CWCLAligner(
        teacher=arguments.teacher,
        student=arguments.student,
        loss=arguments.loss,
        kernel=kernel,
        direction=arguments.direction,
        temperature=arguments.temperature,
        batch_size=arguments.batch_size,
        max_epochs=arguments.max_epochs,
        learning_rate=arguments.learning_rate,
        lr_schedule=arguments.lr_schedule,
        warmup_fraction=arguments.warmup_fraction,
        validation_fraction=arguments.validation_fraction,
        device=arguments.device,
        random_state=arguments.seed,
        verbose=_fit_verbosity(arguments),
        **encoder_options,
    )
    print(
        f"training on {len(texts)} pairs from {arguments.pairs}, teacher "
        f"{_teacher_description(arguments.teacher)}",
        flush=True,
    )
    try:
        aligner.fit(X, texts)
    except (ValueError, TypeError, FileNotFoundError) as error:
        message = _add_line_numbers(error, rows, arguments.pairs)
        if message == str(error):
            raise
        raise ManifestError(message) from error
    directory = aligner.save(arguments.out)
    last = aligner.history_[-1]
    numbers = "  ".join(
        f"{key}={value:.4f}"
        for key, value in last.items()
        if key in ("train_loss", "valid_loss", "valid_r1")
    )
    print(
        f"trained {len(aligner.history_)} epoch(s) ({aligner.stop_reason_}): {numbers}\n"
        f"saved to {directory}",
        flush=True,
    )
    return 0


def _labels(text: str) -> list[str]:
    labels = [label.strip() for label in text.split(",") if label.strip()]
    if len(labels) < 2:
        raise ValueError(f"--labels needs at least two comma-separated labels, got {text!r}.")
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"--labels repeats {repeated}; each label must appear once.")
    return labels


def _predict(arguments: argparse.Namespace) -> int:
    from .aligner import CWCLAligner
    from .zero_shot import ZeroShotClassifier

    labels = _labels(arguments.labels)
    if not os.path.isdir(arguments.model):
        raise FileNotFoundError(
            f"--model {arguments.model!r}: no such folder; pass a folder written by "
            "'python -m cwcl_sk fit --out FOLDER'."
        )
    aligner = CWCLAligner.load(arguments.model, device=arguments.device)
    if student_kind(aligner.student) == "features":
        X = _stack_vectors([(f"file {path}", path, None) for path in arguments.files])
    else:
        missing = [path for path in arguments.files if not os.path.isfile(path)]
        if missing:
            raise FileNotFoundError(f"File {missing[0]!r} not found.")
        X = list(arguments.files)
    templates = arguments.template or ["{}"]
    # The aligner is fitted, so fit only embeds the label texts; X is not used.
    classifier = ZeroShotClassifier(aligner, templates=templates).fit(None, labels)
    probabilities = classifier.predict_proba(X)  # (n_files, n_labels)
    best = probabilities.argmax(axis=1)
    for path, index, row in zip(arguments.files, best, probabilities, strict=True):
        print(f"{path}\t{classifier.classes_[index]}\t{row[index]:.4f}")
    return 0


def _demo(arguments: argparse.Namespace) -> int:
    # The demo's teacher ships with the package: never wait on the network for it.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import time

    from .demo import format_table, run_demo, write_report

    print(
        "cwcl_sk demo: training CL and CWCL students against the bundled all-MiniLM-L6-v2 text "
        f"teacher, offline ({'under a minute' if arguments.quick else 'about 2 minutes'} on 2 "
        "CPU cores).",
        flush=True,
    )
    started = time.perf_counter()
    report = run_demo(
        data=arguments.data,
        quick=arguments.quick,
        max_epochs=arguments.epochs,
        random_state=arguments.seed,
        verbose=arguments.verbose,
    )
    for note in report.notes:
        print(f"Note: {note}")
    print(f"\nData ({report.data}{', quick' if arguments.quick else ''}): {report.description}.")
    if report and report[0].teacher_name:
        print(f"Teacher: 'minilm' = {report[0].teacher_name}, frozen.")
    print()
    print(format_table(report))
    print(
        "\nzero-shot acc.: share of the test inputs whose nearest class prompt (an intent\n"
        "  name or digit word, never trained on) is their class.\n"
        "text R@1: paired retrieval, recall at 1: share of the test inputs whose nearest\n"
        "  text among the distinct test transcripts (or captions) is their own.\n"
        "seconds: training and scoring time of the configuration."
    )
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")
    if arguments.out is not None:
        settings = {
            "data": arguments.data,
            "quick": arguments.quick,
            "max_epochs": arguments.epochs,
            "random_state": arguments.seed,
        }
        write_report(report, arguments.out, _demo_command(arguments), settings)
        print(f"Result written to {arguments.out}.")
    return 0


def _demo_command(arguments: argparse.Namespace) -> str:
    """The demo's command line with the options that change its result (not --out)."""
    words = ["python -m cwcl_sk demo"]
    if arguments.data != "speech":
        words.append(f"--data {arguments.data}")
    if arguments.quick:
        words.append("--quick")
    if arguments.epochs is not None:
        words.append(f"--epochs {arguments.epochs}")
    if arguments.seed != 0:
        words.append(f"--seed {arguments.seed}")
    return " ".join(words)


def _add_demo(commands) -> None:
    from .kernels import DEFAULT_KERNEL

    demo = commands.add_parser(
        "demo",
        help="train CL and CWCL students offline and print zero-shot accuracy",
        description="Align a student to the bundled MiniLM text teacher with the CLIP loss and "
        f"with CWCL (the default {DEFAULT_KERNEL} kernel and the paper's linear kernel), then "
        "print its "
        "zero-shot accuracy on unseen data, text retrieval R@1 and the seconds each took. "
        "The default data are spoken commands synthesised offline with espeak-ng, evaluated "
        "on voices never heard in training; without the synthesiser the demo falls back to "
        "scikit-learn's handwritten digits and says so.",
        epilog="example: python -m cwcl_sk demo --quick (under a minute)",
    )
    demo.add_argument(
        "--data",
        choices=["speech", "digits"],
        default="speech",
        help="speech: a mel-cnn student on synthesised spoken commands (needs espeakng-loader, "
        "falls back to digits without it); digits: an MLP student on scikit-learn's 8x8 "
        "digits (default: speech)",
    )
    demo.add_argument(
        "--quick",
        action="store_true",
        help="fewer voices, a smaller student and a few epochs: checks that everything runs "
        "in well under a minute; the accuracies mean little",
    )
    demo.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs of every configuration (default: 30; with --quick 8 for speech, "
        "5 for digits)",
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument(
        "--verbose",
        type=int,
        default=1,
        help="1 shows progress bars for synthesis and for each configuration's training, "
        "and each table row as it finishes; 0 hides them; 2 adds bars over batches (default: 1)",
    )
    demo.add_argument(
        "--out",
        default=None,
        help="also write the result as JSON to this file, e.g. benchmarks/results/demo.json",
    )
    demo.set_defaults(handler=_demo)


def _add_fit(commands) -> None:
    from .kernels import DEFAULT_KERNEL, KERNELS

    fit = commands.add_parser(
        "fit",
        help="train a student on a manifest of (file, text) pairs and save it",
        description="Train a student encoder into a frozen teacher's space on the pairs of a "
        "manifest, and save the fitted CWCLAligner to a folder (CWCLAligner.save). The "
        "manifest is a CSV with a 'path,text' header or JSON Lines with one "
        '{"path": ..., "text": ...} object per line; a row may give "features" (numbers) '
        "instead of a path. Relative paths are read from the manifest's folder. For the 'mlp' "
        "student each path is a .npy file holding one feature vector; for audio students "
        "('mel-cnn', 'wav2vec2', 'hubert', 'whisper') it is an audio file.",
        epilog="example: python -m cwcl_sk fit --pairs pairs.csv --out model/ --max-epochs 20 "
        "--student-option hidden_sizes=(256,)",
    )
    fit.add_argument(
        "--pairs", required=True, metavar="MANIFEST", help="the CSV or JSONL manifest of pairs"
    )
    fit.add_argument("--out", required=True, metavar="FOLDER", help="folder to save the model to")
    fit.add_argument(
        "--teacher",
        default="minilm",
        help="frozen text teacher: an alias (minilm, bert, mpnet), a local folder or a "
        "Hugging Face id (default: minilm, bundled, works offline)",
    )
    fit.add_argument(
        "--student",
        default="mlp",
        help="trained student: mlp (numeric .npy features), or an audio student such as "
        "mel-cnn or wav2vec2 (default: mlp)",
    )
    fit.add_argument(
        "--loss",
        default="cwcl",
        choices=["cwcl", "clip"],
        help="cwcl (soft targets from the teacher) or clip (0/1 targets) (default: cwcl)",
    )
    fit.add_argument(
        "--kernel",
        default=DEFAULT_KERNEL,
        choices=sorted(KERNELS),
        help=f"how teacher similarity becomes CWCL targets (default: {DEFAULT_KERNEL})",
    )
    fit.add_argument(
        "--kernel-option",
        action="append",
        type=_key_value,
        metavar="KEY=VALUE",
        help="a parameter of the kernel, e.g. kappa=0.05 for exp; repeatable",
    )
    fit.add_argument(
        "--direction",
        default="both",
        choices=["both", "student_to_teacher", "teacher_to_student"],
        help="softmax over teachers per student, over students per teacher, or the average "
        "of both (default: both)",
    )
    fit.add_argument(
        "--temperature",
        type=_auto_or(float),
        default="auto",
        help="softmax temperature, or auto: the student's recipe (default: auto)",
    )
    fit.add_argument(
        "--batch-size", type=int, default=128, help="pairs per contrastive batch (default: 128)"
    )
    fit.add_argument(
        "--max-epochs",
        type=_auto_or(int),
        default="auto",
        help="training epochs, or auto: the student's recipe (default: auto)",
    )
    fit.add_argument(
        "--learning-rate",
        type=_auto_or(float),
        default="auto",
        help="AdamW learning rate, or auto: the student's recipe (default: auto)",
    )
    fit.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default="constant",
        help="how the rate moves over the fit (default: constant)",
    )
    fit.add_argument(
        "--warmup-fraction",
        type=float,
        default=0.0,
        help="share of the steps spent warming up to the learning rate (default: 0)",
    )
    fit.add_argument(
        "--validation-fraction",
        type=float,
        default=0.0,
        help="share of the pairs held out and scored every epoch (default: 0)",
    )
    fit.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    fit.add_argument(
        "--student-option",
        action="append",
        type=_key_value,
        metavar="KEY=VALUE",
        help="a student option, read as a Python literal when it is one, e.g. "
        "hidden_sizes=(64,) or dropout=0.1 (becomes student__KEY); repeatable",
    )
    fit.add_argument(
        "--teacher-option",
        action="append",
        type=_key_value,
        metavar="KEY=VALUE",
        help="a teacher option, e.g. batch_size=32 (becomes teacher__KEY); repeatable",
    )
    fit.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1, mps... (default: auto)"
    )
    fit.add_argument(
        "--verbose",
        type=int,
        default=None,
        help="0 hides the progress bars, 1 shows one over epochs, 2 adds batches (default: 1 "
        "when stderr is a terminal, else 0)",
    )
    fit.add_argument(
        "--quiet", action="store_true", help="no progress bars, only the summary lines"
    )
    fit.set_defaults(handler=_fit)


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="classify files zero-shot with a saved model and label texts",
        description="Load a model saved by 'fit' and classify each file zero-shot among the "
        "label texts: prints one line per file, 'path<TAB>label<TAB>probability'. Files are "
        ".npy feature vectors for an 'mlp' student, audio files for an audio student.",
        epilog='example: python -m cwcl_sk predict --model model/ --labels "yes,no" '
        '--template "the word {}" clip1.npy clip2.npy',
    )
    predict.add_argument(
        "--model", required=True, metavar="FOLDER", help="a folder written by 'fit'"
    )
    predict.add_argument(
        "--labels",
        required=True,
        help='the classes as comma-separated texts, e.g. "yes,no,up,down"',
    )
    predict.add_argument(
        "--template",
        action="append",
        help='a prompt template with {} where the label goes, e.g. "the word {}"; '
        "repeatable, class embeddings average over templates (default: {})",
    )
    predict.add_argument("--device", default="cpu", help="cpu, cuda, mps... (default: cpu)")
    predict.add_argument("files", nargs="+", help="the files to classify")
    predict.set_defaults(handler=_predict)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m cwcl_sk``.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="python -m cwcl_sk",
        description="Cross-modal transfer with the Continuously Weighted Contrastive Loss.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_demo(commands)
    _add_fit(commands)
    _add_predict(commands)
    return parser


def main(argv=None) -> int:
    """Entry point of ``python -m cwcl_sk`` and the ``cwcl-sk`` script.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    status : int
        0 on success, 1 when the command failed on its input (the reason goes to stderr).
        Malformed options exit with status 2, as argparse does.
    """
    arguments = build_parser().parse_args(argv)
    if arguments.command == "demo":
        return arguments.handler(arguments)
    try:
        return arguments.handler(arguments)
    except (ValueError, TypeError, OSError) as error:
        # Mistakes in the input are reported as one line, not a traceback.
        print(f"python -m cwcl_sk {arguments.command}: error: {error}", file=sys.stderr)
        return 1
