"""Write a benchmark's result files and show its table: the last step of a script's main."""

from __future__ import annotations

from pathlib import Path

from .results import table_lines, write_results
from .tables import TABLES

__all__ = ["publish"]


def publish(results: dict, folder: Path, stem: str, table_name: str) -> dict:
    """Write ``<folder>/<stem>.json`` and ``.md`` with the layout of table ``table_name``,
    print the table and the path, and return ``results``."""
    table = "\n".join(table_lines(*TABLES[table_name].layout(results))) + "\n"
    write_results(folder / stem, table, results)
    print(table)
    print(f"wrote {folder / f'{stem}.json'}")
    return results
