"""The documentation's result tables, rendered from the committed files in ``benchmarks/results/``.

Each table sits in a Markdown file between two markers::

    <!-- table: kernel-grid-digit-images -->
    ... generated: the table, its command and where its numbers come from ...
    <!-- /table -->

Run from the repository root::

    python -m benchmarks.tables --write   # fill every block from the result files
    python -m benchmarks.tables --check   # exit 1, naming each block that differs

Tables whose values were transcribed from the repository's earlier prose (their raw run output
is lost) say so under the table; re-running the command beside a table replaces its file with
a measured one, and ``--write`` then renders that.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import recipe_tables
from .results import REPOSITORY, RESULTS, grid_rows, plus_minus, table_lines

__all__ = [
    "COMPARISONS",
    "DOCUMENTS",
    "TABLES",
    "Table",
    "check",
    "kernel_comparison",
    "render",
    "render_document",
    "write",
]

#: The Markdown files whose ``<!-- table: ... -->`` blocks are generated.
DOCUMENTS = (
    REPOSITORY / "README.md",
    REPOSITORY / "benchmarks" / "README.md",
    REPOSITORY / "docs" / "benchmarks.md",
    REPOSITORY / "docs" / "guide" / "kernels.md",
    REPOSITORY / "docs" / "guide" / "export.md",
    REPOSITORY / "docs" / "guide" / "offline.md",
    REPOSITORY / "docs" / "guide" / "out_of_core.md",
)

_BLOCK = re.compile(r"(<!-- table: ([\w.-]+) -->\n)(.*?)(<!-- /table -->)", flags=re.DOTALL)


def _cell(value) -> str:
    """A stored cell as text: a {"mean", "sd"} dict as ``mean ± sd``, text as it is."""
    if value is None:
        return ""
    if isinstance(value, dict):
        text = plus_minus(value)
        return f"{text} ({value['seeds']} seeds)" if "seeds" in value else text
    return str(value)


def _stored_table(result: dict) -> tuple[list[str], list[list[str]]]:
    """The header and rows a result file holds as ``{"table": {"header", "rows"}}``."""
    table = result["table"]
    return table["header"], [[_cell(value) for value in row] for row in table["rows"]]


def _kernel_grid(result: dict) -> tuple[list[str], list[list[str]]]:
    """One row per loss, one column per batch size: mean ± sd of the runs' accuracies."""
    if "table" in result:
        return _stored_table(result)
    runs = result["runs"]
    batch_sizes = sorted({run["batch_size"] for run in runs})
    losses = list(dict.fromkeys(run["loss"] for run in runs))
    rows = grid_rows(runs, batch_sizes, losses, len(result["settings"]["seeds"]), "not run")
    return ["loss", *(f"batch {size}" for size in batch_sizes)], rows


def _digit_images(result: dict) -> tuple[list[str], list[list[str]]]:
    """The digit-images summary: accuracy per prompt set, seconds a fit, seeds."""
    if "table" in result:
        return _stored_table(result)
    prompts = list(result["settings"]["prompts"])
    header = ["student", "loss", *(f"acc., prompt: {name}" for name in prompts)]
    rows = [
        [
            result["settings"]["student"]["student"],
            row["loss"],
            *(plus_minus(row["accuracy"][name]) for name in prompts),
            f"{row['fit_seconds_mean']:.0f}",
            str(row["n_seeds"]),
        ]
        for row in result["summary"]
    ]
    return [*header, "s / fit", "seeds"], rows


def _batch_neighbours(result: dict) -> tuple[list[str], list[list[str]]]:
    """Per batch size: rows with a near neighbour, and each kernel's target statistics."""
    thresholds = result["settings"]["thresholds"]
    kernels = result["settings"]["kernels"]
    header = ["batch", *(f"rows with a neighbour > {t}" for t in thresholds)]
    for kernel in kernels:
        header += [f"{kernel}: matching-pair mass", f"{kernel}: effective positives"]
    rows = []
    for row in result["summary"]:
        cells = [str(row["batch_size"]), *(f"{row[str(t)]:.1%}" for t in thresholds)]
        for kernel in kernels:
            cells += [
                f"{row[kernel]['diagonal_mass']:.3f}",
                f"{row[kernel]['effective_positives']:.2f}",
            ]
        rows.append(cells)
    return header, rows


def _speed(result: dict) -> tuple[list[str], list[list[str]]]:
    """speed.py's rows: each ratio (or count), its target and whether it was met."""
    if "table" in result:
        return _stored_table(result)
    header = ["row", "value", "target", "met", "what"]
    rows = [
        [
            row["name"],
            f"{row['value']:.3f}",
            str(row["target"]),
            "yes" if row["met"] else "no",
            row["unit"],
        ]
        for row in result["summary"]
    ]
    return header, rows


def _demo(result: dict) -> tuple[list[str], list[list[str]]]:
    """The demo's configurations: zero-shot accuracy, text R@1, seconds; the teacher's limit."""
    header = ["configuration", "zero-shot acc.", "text R@1", "seconds"]
    rows = [
        [
            run["configuration"],
            f"{run['accuracy']:.1%}",
            f"{run['recall_at_1']:.1%}",
            f"{run['seconds']:.1f}",
        ]
        for run in result["runs"]
    ]
    limit = result["runs"][0]["teacher_accuracy"]
    if not np.isnan(limit):
        rows.append(["teacher on the texts (limit)", f"{limit:.1%}", "", ""])
    return header, rows


#: The teachers' names in the teacher-limits table, by alias.
_TEACHER_NAMES = {"minilm": "all-MiniLM-L6-v2", "mpnet": "all-mpnet-base-v2"}


def _teacher_limits(result: dict) -> tuple[list[str], list[list[str]]]:
    """Per teacher: embedding size, text-only limit on the intents, seconds to embed."""
    rows = result["summary"]
    distinct = {row["distinct_transcripts"] for row in rows}
    requests = f"the {distinct.pop():,} distinct requests" if len(distinct) == 1 else "requests"
    header = [
        "teacher",
        "dim",
        "text-only limit",
        f"seconds to embed {requests}",
        "texts / s",
    ]
    table = [
        [
            f'`"{row["teacher"]}"` ({_TEACHER_NAMES.get(row["teacher"], row["teacher"])})',
            str(row["embedding_dim"]),
            f"{row['intent_accuracy']:.3f}",
            f"{row['embed_seconds']:.1f}",
            f"{row['transcripts_per_second']:.1f}",
        ]
        for row in rows
    ]
    return header, table


def _threads(count: int) -> str:
    return f"{count} thread" if count == 1 else f"{count} threads"


def _teacher_limits_note(result: dict) -> str:
    """How the timings were taken: threads, and how busy the machine was."""
    settings = result["settings"]
    return (
        f"*{settings['eval_requests']:,} SLURP devel requests, {settings['intents']} intents; "
        f"{_threads(settings['threads'])}, load average {settings['load_average_at_end']} "
        "when the run ended: other jobs shared the cores, so the seconds are indicative.*"
    )


def _milliseconds(value: float) -> str:
    """Three significant digits: the timings vary by more than that between runs."""
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _onnx_latency(result: dict) -> tuple[list[str], list[list[str]]]:
    """Per student and batch size: milliseconds per input in PyTorch and onnxruntime."""
    inputs = result["settings"]["inputs"]
    header = [
        "student",
        "batch",
        "PyTorch graph",
        "onnxruntime graph",
        "PyTorch from raw inputs",
        "onnxruntime from raw inputs",
        "largest probability difference",
    ]
    rows, named = [], set()
    for row in result["summary"]:
        student = row["student"]
        # The first row of a student says what it was given, the next ones only its name.
        label = student if student in named else f"{student} ({inputs[student]})"
        named.add(student)
        rows.append(
            [
                label,
                str(row["batch_size"]),
                _milliseconds(row["torch_model_ms_per_input"]),
                _milliseconds(row["onnx_model_ms_per_input"]),
                _milliseconds(row["torch_end_to_end_ms_per_input"]),
                _milliseconds(row["onnx_end_to_end_ms_per_input"]),
                f"{row['max_abs_probability_difference']:.1e}",
            ]
        )
    return header, rows


def _onnx_latency_note(result: dict) -> str:
    """What the timings are: medians per input, threads, and how busy the machine was."""
    settings = result["settings"]
    return (
        f"*Milliseconds per input, median of {settings['repeats']} runs after a warm-up; "
        f"PyTorch and onnxruntime on {_threads(settings['threads'])} each; load average "
        f"{settings['load_average_at_end']} when the run ended.*"
    )


def _whisper_encoders(result: dict) -> tuple[list[str], list[list[str]]]:
    """Per clip length: milliseconds of one forward of each encoder, and their ratio."""
    rows = result["summary"]
    encoders = list(dict.fromkeys(row["encoder"] for row in rows))
    shape = {row["encoder"]: f"{row['layers']} layers of width {row['width']}" for row in rows}
    header = ["clip", *(f"{name} ({shape[name]})" for name in encoders)]
    # The ratio is the reading of the table: what the larger encoder costs per clip.
    compared = len(encoders) == 2
    if compared:
        header.append(f"{encoders[1]} / {encoders[0]}")
    table = []
    for seconds in dict.fromkeys(row["clip_seconds"] for row in rows):
        timings = {
            row["encoder"]: row["ms_per_clip"] for row in rows if row["clip_seconds"] == seconds
        }
        cells = [f"{seconds:g} s", *(f"{_milliseconds(timings[name])} ms" for name in encoders)]
        if compared:
            cells.append(f"{timings[encoders[1]] / timings[encoders[0]]:.1f}")
        table.append(cells)
    return header, table


def _whisper_encoders_note(result: dict) -> str:
    """What the timings are: one clip, median of repeats, threads, how busy the machine was."""
    settings = result["settings"]
    parts = [
        f'One encoder forward of the `"whisper"` student on one clip ({settings["clips"]}; '
        "no padding to 30 s)",
        f"median of {settings['repeats']} calls after a warm-up, {_threads(settings['threads'])}",
        f"load average {settings['load_average_at_end']} when the run ended",
    ]
    return f"*{'; '.join(parts)}.*"


def _load(source: str, results: Path) -> dict:
    path = Path(results) / source
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run the command of its table, or restore it from git."
        )
    return json.loads(path.read_text())


def _means_by_loss(result: dict, columns: list[str]) -> dict[str, list[float | None]]:
    """Per loss, the mean accuracy in each of ``columns`` (None where not measured).

    Reads a kernel grid's runs, a digit-images or demo run's summary, or a stored table.
    """
    if result.get("name") == "demo":
        # The demo's configurations in order: CL, the default kernel, the paper's linear one.
        losses = ["CL", "CWCL capped-exp", "CWCL linear"]
        return {loss: [run["accuracy"]] for loss, run in zip(losses, result["runs"], strict=True)}
    if "table" in result:
        header = result["table"]["header"]
        indices = [header.index(column) for column in columns]
        loss = header.index("loss")
        means = {}
        for row in result["table"]["rows"]:
            # A plain number is a one-seed value; a {"mean", "sd"} dict a mean over seeds.
            values = [_mean_of(row[i]) for i in indices]
            means.setdefault(row[loss], values)  # a table's first row of a loss
        return means
    if "summary" in result:  # digit_images.py: the first prompt set
        prompts = next(iter(result["settings"]["prompts"]))
        return {row["loss"]: [row["accuracy"][prompts]["mean"]] for row in result["summary"]}
    means = {}
    for loss in dict.fromkeys(run["loss"] for run in result["runs"]):
        means[loss] = []
        for column in columns:
            batch_size = int(column.removeprefix("batch "))
            values = [
                run["accuracy"]
                for run in result["runs"]
                if run["loss"] == loss and run["batch_size"] == batch_size
            ]
            means[loss].append(float(np.mean(values)) if values else None)
    return means


def _mean_of(cell) -> float | None:
    if isinstance(cell, dict):
        return cell["mean"]
    try:
        return float(cell)
    except (TypeError, ValueError):  # "not run", or an empty cell
        return None


#: The kernel guide's comparison: (task, result file, columns), each column a batch size or
#: the accuracy column of a stored table.
_GRID = ["batch 64", "batch 256", "batch 1024"]
COMPARISONS = (
    ("digit images (cnn, 64; 8 seeds)", "digit_images.json", ["acc., prompt: word"]),
    (
        "digit images (cnn, 256 / 1024, equal steps; 2 seeds)",
        "kernel_ablation_digit-images.json",
        ["batch 256", "batch 1024"],
    ),
    (
        "spoken digits, unseen speaker (mel-cnn, 128; 4 folds x 3 seeds)",
        "spoken_digits_mel_cnn.json",
        ["word prompt"],
    ),
    (
        "spoken digits, speaker nicolas (mel-cnn, 64 / 256 / 1024, equal steps; 2 seeds)",
        "kernel_ablation_spoken-digits.json",
        _GRID,
    ),
    (
        "spoken digits, unseen speaker (pretrained Whisper tiny.en, all layers trained, 128; "
        "4 folds x 2 seeds)",
        "spoken_digits_whisper_all_layers.json",
        ["word prompt"],
    ),
    (
        "spoken digits, unseen speaker (pretrained Whisper tiny.en, top two layers trained, 128; "
        "4 folds x 3 seeds)",
        "spoken_digits_whisper_top2.json",
        ["word prompt"],
    ),
    (
        "spoken digits, speaker nicolas (pretrained Whisper tiny.en frozen, linear head; "
        "64 / 256 / 1024, equal steps; 2 seeds)",
        "kernel_ablation_spoken-digits-whisper.json",
        _GRID,
    ),
    (
        "spoken intents, unseen voices (pretrained Whisper tiny.en, top layer trained at learning "
        "rate 3e-4, 4,000 clips, 128; 2 seeds, perplexity 1)",
        "spoken_intents_whisper_4k.json",
        ["intent acc."],
    ),
    (
        "spoken intents, unseen voices (the same, 8,000 clips, 3 epochs; 2 seeds)",
        "spoken_intents_whisper_8k.json",
        ["intent acc."],
    ),
    (
        "spoken intents, unseen voices (the same at learning rate 1e-3, all 11,498 clips, "
        "4 epochs; 2 seeds)",
        "spoken_intents_whisper.json",
        ["intent acc."],
    ),
    (
        "spoken intents, unseen voices (pretrained Whisper tiny.en, top layer trained at learning "
        "rate 1e-3, 4,000 clips; 64 / 256 / 1024, equal steps; 2 seeds)",
        "kernel_ablation_spoken-intents-whisper-top.json",
        _GRID,
    ),
    (
        "spoken intents, unseen voices (the same with two voices per transcript, 22,996 clips, "
        "temperature 0.12; 2 seeds)",
        "spoken_intents_whisper_v2_t012.json",
        ["intent acc."],
    ),
    (
        "spoken intents, unseen voices (pretrained Whisper tiny.en frozen, linear head, 4,000 "
        "clips; 64 / 256 / 1024, equal steps; 2 seeds)",
        "kernel_ablation_spoken-intents-whisper.json",
        _GRID,
    ),
    (
        "spoken intents, unseen voices (mel-cnn from scratch, 4,000 clips; 64 / 256 / 1024, "
        "equal steps; 2 seeds)",
        "kernel_ablation_spoken-intents.json",
        _GRID,
    ),
    ("spoken commands demo (mel-cnn, 32; 1 seed, 90 clips)", "demo.json", ["accuracy"]),
)
_COMPARED = ("CWCL capped-exp", "CWCL exp", "CWCL perplexity", "CWCL mixture", "CWCL linear")


def _points(value: float | None, reference: float | None) -> str:
    if value is None or reference is None:
        return "not run"
    difference = round(100 * (value - reference), 1) + 0.0  # no "-0.0"
    return f"{difference:+.1f}" if difference else "0.0"


def kernel_comparison(results: Path = RESULTS) -> tuple[list[str], list[list[str]]]:
    """Every task side by side: each kernel's accuracy minus CL's, in points, and CL's.

    Differences are taken between the recorded means (rounded to three decimals where they
    were transcribed), so they can differ in the last digit from ones taken between runs.
    """
    header = ["task (student, batch)", *(loss.removeprefix("CWCL ") for loss in _COMPARED)]
    rows = []
    for task, source, columns in COMPARISONS:
        means = _means_by_loss(_load(source, results), columns)
        reference = means["CL"]
        cells = [task]
        for loss in _COMPARED:
            if loss not in means:
                cells.append("")
                continue
            cells.append(
                " / ".join(
                    _points(value, cl) for value, cl in zip(means[loss], reference, strict=True)
                )
            )
        cells.append(" / ".join(f"{100 * value:.1f}" for value in reference) + " %")
        rows.append(cells)
    return [*header, "CL accuracy"], rows


def _out_of_core(result: dict) -> tuple[list[str], list[list[str]]]:
    """Per way of giving the corpus: peak memory at both sizes, their ratio, epoch times."""
    from .out_of_core import table

    return table(result["summary"], result["settings"]["sizes"])


def _out_of_core_note(result: dict) -> str:
    """What was fitted, and what the memory is."""
    settings = result["settings"]
    low, high = settings["clip_seconds"]
    return (
        f"*Peak resident memory (`ru_maxrss`) of each fit's own process: {settings['student']}, "
        f"{settings['epochs']} epoch, batch {settings['batch_size']}, "
        f"{_threads(settings['threads'])}, clips of {low}-{high} s at "
        f"{settings['sampling_rate'] // 1000} kHz with a distinct caption each; the teacher "
        "encoded the captions beforehand, in a process of its own, into the cache every fit "
        "reads. The seconds include reading the teacher's cache.*"
    )


@dataclass(frozen=True)
class Table:
    """A generated table: the result file it reads, how it lays that file out, and a note.

    ``note``, when given, makes the line printed under the table from the result (how the
    numbers were taken).
    """

    source: str
    layout: Callable[[dict], tuple[list[str], list[list[str]]]] = _stored_table
    note: Callable[[dict], str] | None = None


TABLES = {
    "demo": Table("demo.json", _demo),
    "speed": Table("speed.json", _speed),
    "gpu-check": Table("gpu_check.json"),
    "digit-images": Table("digit_images.json", _digit_images),
    "spoken-digits-mel-cnn": Table("spoken_digits_mel_cnn.json"),
    "spoken-digits-subsets": Table("spoken_digits_subsets.json"),
    "spoken-digits-whisper-top2": Table("spoken_digits_whisper_top2.json"),
    "spoken-intents-defaults": Table("spoken_intents_whisper.json"),
    "spoken-intents-learning-rate": Table("spoken_intents_proxy_learning_rate.json"),
    "spoken-intents-levers": Table("spoken_intents_proxy_levers.json"),
    "spoken-intents-best": Table("spoken_intents_whisper_v2_t012.json"),
    "spoken-intents-4k": Table("spoken_intents_whisper_4k.json"),
    "spoken-intents-8k": Table("spoken_intents_whisper_8k.json"),
    "batch-neighbours": Table("batch_neighbours.json", _batch_neighbours),
    "teacher-limits": Table("teacher_limits.json", _teacher_limits, _teacher_limits_note),
    "onnx-latency": Table("onnx_latency.json", _onnx_latency, _onnx_latency_note),
    "whisper-encoders": Table("whisper_encoders.json", _whisper_encoders, _whisper_encoders_note),
    "out-of-core": Table("out_of_core.json", _out_of_core, _out_of_core_note),
    "default-speed": Table(
        "default_speed.json", recipe_tables.default_speed, recipe_tables.default_speed_note
    ),
    "asr-cascade": Table(
        "asr_cascade.json", recipe_tables.asr_cascade, recipe_tables.asr_cascade_note
    ),
    **{
        f"kernel-grid-{task}": Table(f"kernel_ablation_{task}.json", _kernel_grid)
        for task in (
            "digit-images",
            "spoken-digits",
            "spoken-digits-whisper",
            "spoken-intents-whisper",
            "spoken-intents",
            "spoken-intents-whisper-top",
        )
    },
}


def _provenance_line(result: dict) -> str:
    """Where the numbers come from: the run's date, commit and machine, or the transcription."""
    provenance = result["provenance"]
    commit = provenance.get("commit", "")[:7]
    if provenance["source"] == "transcribed":
        return (
            f"*Transcribed: values recorded by commit `{commit}`; the raw run output is not "
            "available, and a re-run of the command replaces them.*"
        )
    machine = (result.get("machine") or {}).get("cpu", "an unrecorded machine")
    torch_version = (result.get("versions") or {}).get("torch", "unrecorded")
    where = f" at commit `{commit}`" if commit else ""
    if provenance.get("uncommitted_changes"):
        where += " (with uncommitted changes)"
    return f"*Measured {provenance['date']}{where} on {machine}, torch {torch_version}.*"


def render(name: str, results: Path = RESULTS) -> str:
    """The generated text of the block ``name``: its table, command and provenance.

    Parameters
    ----------
    name : str
        A key of :data:`TABLES`.
    results : path-like, default=benchmarks/results
        The folder of the result files.

    Returns
    -------
    text : str
        The block's content, ending with a newline.
    """
    if name not in TABLES and name != "kernel-comparison":
        raise KeyError(f"table name must be one of {sorted(TABLES)}, got {name!r}.")
    if name == "kernel-comparison":
        header, rows = kernel_comparison(results)
        transcribed = sorted(
            {
                _load(source, results)["provenance"].get("commit", "")[:7]
                for _, source, _ in COMPARISONS
                if _load(source, results)["provenance"]["source"] == "transcribed"
            }
        )
        lines = [*table_lines(header, rows), ""]
        lines.append(
            "*Computed from the result files of the tables in the benchmarks page; rows from "
            f"transcribed values (recorded by commits {', '.join(f'`{c}`' for c in transcribed)})"
            " use their recorded means.*"
        )
        return "\n".join(lines) + "\n"
    table = TABLES[name]
    result = _load(table.source, results)
    header, rows = table.layout(result)
    lines = [*table_lines(header, rows), ""]
    if table.note is not None:
        lines += [table.note(result), ""]
    lines += [f"`{result['command']}`", ""]
    lines.append(_provenance_line(result))
    return "\n".join(lines) + "\n"


def render_document(text: str, results: Path = RESULTS) -> str:
    """``text`` with every ``<!-- table: name -->`` block filled from the result files."""

    def fill(match: re.Match) -> str:
        return f"{match.group(1)}{render(match.group(2), results)}{match.group(4)}"

    return _BLOCK.sub(fill, text)


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    try:
        return str(path.resolve().relative_to(REPOSITORY))
    except ValueError:
        return str(path)


def check(documents=DOCUMENTS, results: Path = RESULTS) -> list[str]:
    """The ``document: block`` names whose text differs from what the result files render."""
    stale = []
    for path in documents:
        text = Path(path).read_text()
        for match in _BLOCK.finditer(text):
            if match.group(3) != render(match.group(2), results):
                stale.append(f"{_shown(Path(path))}: {match.group(2)}")
    return stale


def write(documents=DOCUMENTS, results: Path = RESULTS) -> list[Path]:
    """Fill every block of ``documents``; return the files that changed."""
    changed = []
    for path in documents:
        text = Path(path).read_text()
        rendered = render_document(text, results)
        if rendered != text:
            Path(path).write_text(rendered)
            changed.append(Path(path))
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="fill every block")
    action.add_argument("--check", action="store_true", help="exit 1 if a block is stale")
    args = parser.parse_args(argv)
    if args.write:
        for path in write():
            print(f"rewrote {_shown(path)}")
        return 0
    stale = check()
    for name in stale:
        print(f"stale: {name} (run python -m benchmarks.tables --write)", file=sys.stderr)
    return int(bool(stale))


if __name__ == "__main__":
    sys.exit(main())
