"""How the benchmark scripts summarise, write and resume their results.

Every result file is one JSON object in the same schema, whether a script wrote it or it was
transcribed from values the repository recorded before the raw output was kept:

``schema``
    The version of this layout (:data:`SCHEMA`).
``command``
    The command line that produced the file, run from the repository root.
``settings``
    What the script was asked to do (students, seeds, budgets, threads).
``machine``, ``versions``
    Where it ran, and the versions of Python, torch and the libraries, where known.
``provenance``
    ``{"source": "run", "date": ..., "commit": ...}`` for a file a script wrote, or
    ``{"source": "transcribed", "commit": ..., "note": ...}`` for values copied from the
    repository's earlier tables and commit messages, whose raw run output is not available.
``runs``, ``summary``
    One record per fit (per seed and fold) where they exist, and the rows the tables show.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "REPOSITORY",
    "RESULTS",
    "SCHEMA",
    "command_line",
    "grid_rows",
    "machine",
    "machine_description",
    "mean_sd",
    "plus_minus",
    "run_provenance",
    "saved_results",
    "table_lines",
    "versions",
    "write_results",
]

#: The repository root: the scripts run from here, as ``python -m benchmarks.<script>``.
REPOSITORY = Path(__file__).resolve().parents[1]
#: Where the committed result files live, and where the scripts write by default.
RESULTS = REPOSITORY / "benchmarks" / "results"
#: The version of the result-file layout described in this module's docstring.
SCHEMA = 1


def mean_sd(values) -> dict:
    """``{"mean": ..., "sd": ...}`` of ``values`` (population sd, 0 for one value)."""
    return {"mean": float(np.mean(values)), "sd": float(np.std(values))}


def plus_minus(summary: dict, digits: int = 3) -> str:
    """``"0.722 ± 0.015"`` from a :func:`mean_sd` dict."""
    return f"{summary['mean']:.{digits}f} ± {summary['sd']:.{digits}f}"


def machine(threads: int) -> dict:
    """Where a run was made: torch threads, CPU architecture and count, torch version."""
    return {
        "threads": threads,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
    }


def machine_description() -> dict:
    """The machine a run was made on: operating system, CPU architecture and count."""
    return {"system": platform.system(), "cpu": f"{platform.machine()}, {os.cpu_count()} CPUs"}


def versions() -> dict:
    """Versions of Python and of the libraries that decide the numbers (None when missing)."""
    found = {"python": platform.python_version()}
    for package in ("cwcl-sk", "torch", "transformers", "sentence-transformers", "scikit-learn"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    found["torch"] = torch.__version__  # the imported build, e.g. 2.13.0+cpu
    return found


def command_line() -> str:
    """This process's command line as it was typed at the repository root."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    program = ["python", "-m", spec.name] if spec is not None else ["python", sys.argv[0]]
    return shlex.join([*program, *sys.argv[1:]])


def run_provenance() -> dict:
    """``{"source": "run", ...}`` with the date and the repository commit the run used."""
    provenance = {"source": "run", "date": time.strftime("%Y-%m-%d", time.gmtime())}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPOSITORY
        )
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=REPOSITORY,
        )
    except OSError:  # no git: the date alone
        return provenance
    if commit.returncode == 0:
        provenance["commit"] = commit.stdout.strip()
        provenance["uncommitted_changes"] = bool(changed.stdout.strip())
    return provenance


def grid_rows(records: list[dict], batch_sizes, losses, n_seeds: int, missing: str = "") -> list:
    """A kernel grid's rows: per loss, mean ± sd of the runs' accuracy at each batch size.

    A cell measured with fewer than ``n_seeds`` seeds says how many; a cell without runs
    reads ``missing``.
    """
    rows = []
    for loss in losses:
        cells = [loss]
        for batch_size in batch_sizes:
            values = [
                run["accuracy"]
                for run in records
                if run["loss"] == loss and run["batch_size"] == batch_size
            ]
            if not values:
                cells.append(missing)
                continue
            text = plus_minus(mean_sd(values))
            cells.append(
                text if len(values) >= n_seeds else f"{text} ({len(values)} of {n_seeds} seeds)"
            )
        rows.append(cells)
    return rows


def table_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def write_results(path_stem: Path, table: str, results: dict) -> None:
    """Write ``<path_stem>.md`` (the table) and ``<path_stem>.json`` (``results``).

    The JSON follows the module's schema: ``results`` (settings, runs, summary) is written
    with the command line, machine, versions and provenance of this run. The Markdown is a
    preview for the terminal; the documentation renders its tables from the JSON
    (``python -m benchmarks.tables``).
    """
    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    path_stem.parent.joinpath(f"{path_stem.name}.md").write_text(table)
    record = {
        "schema": SCHEMA,
        "command": command_line(),
        "machine": machine_description(),
        "versions": versions(),
        "provenance": run_provenance(),
        **results,
    }
    path_stem.parent.joinpath(f"{path_stem.name}.json").write_text(
        json.dumps(record, indent=1, default=str) + "\n"
    )


def saved_results(
    path_stem: Path, settings: dict, keys, normalise=None, quiet: bool = False
) -> dict | None:
    """The results saved at ``<path_stem>.json``, if their settings agree with ``settings``.

    For ``--resume``: an earlier run's measurements are reused only when every setting in
    ``keys`` is the same (after ``normalise``, applied to both sides); otherwise the run stops
    with a message naming the settings that differ, rather than mix incomparable runs.

    Returns
    -------
    results : dict or None
        The saved ``{"settings": ..., "runs": [...], ...}``; None when nothing is saved.
    """
    path = Path(path_stem).parent / f"{Path(path_stem).name}.json"
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    normalise = normalise or (lambda value: value)
    before = normalise(saved["settings"])
    current = normalise(json.loads(json.dumps(settings, default=str)))  # tuples as lists
    differing = [key for key in keys if before.get(key) != current.get(key)]
    if differing:
        raise SystemExit(f"--resume: {path} was made with other {', '.join(differing)}.")
    if not quiet:
        print(f"resuming: {len(saved['runs'])} runs from {path}", flush=True)
    return saved
