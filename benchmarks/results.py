"""How the benchmark scripts summarise, write and resume their results."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "machine",
    "mean_sd",
    "plus_minus",
    "saved_results",
    "table_lines",
    "write_results",
]


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


def table_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def write_results(path_stem: Path, table: str, results: dict) -> None:
    """Write ``<path_stem>.md`` (the table) and ``<path_stem>.json`` (``results``)."""
    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    path_stem.parent.joinpath(f"{path_stem.name}.md").write_text(table)
    path_stem.parent.joinpath(f"{path_stem.name}.json").write_text(
        json.dumps(results, indent=1, default=str)
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
