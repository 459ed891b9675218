"""Sphinx configuration of the cwcl_sk user guide and API reference.

Build (warnings are errors, as in CI)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document the working tree, installed or not.
if (ROOT / "cwcl_sk").is_dir():
    sys.path.insert(0, str(ROOT))
# Importing the package must never wait on the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import cwcl_sk  # noqa: E402

project = "cwcl_sk"
author = "cwcl_sk developers"
copyright = "cwcl_sk developers"
release = cwcl_sk.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: $...$ maths, ::: fences, and #anchors for headings up to level 3.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# Members are listed per directive in api.rst: scikit-learn adds set_*_request methods to
# every estimator class, which are not this library's API.
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
autosummary_generate = False

# numpydoc: the class pages list their methods through autodoc, not numpydoc's stub tables
# (which would need a generated page per method).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False

html_theme = "furo"
html_title = f"cwcl_sk {release}"
html_static_path: list[str] = []


def benchmark_tables(root: Path = ROOT) -> str:
    """MyST text for the benchmarks page: an include per results table, or how to make them.

    The tables are included when the page is read, not copied into the sources, so a build
    always shows the results present in ``benchmarks/results/`` at that moment.
    """
    results = sorted((root / "benchmarks" / "results").glob("*.md"))
    if not results:
        return (
            "\n```{note}\nNo run of a benchmark script has left a preview in this checkout. "
            "The tables above are generated from the committed result files; a script run "
            "here writes a Markdown preview beside its JSON file in `benchmarks/results/`, "
            "and the next documentation build shows it in this section.\n```\n"
        )
    parts = []
    for path in results:
        relative = os.path.relpath(path, DOCS).replace(os.sep, "/")
        if path.read_text(encoding="utf-8").lstrip().startswith("# "):
            # The table's own title becomes a section of this page.
            parts.append(f"\n```{{include}} {relative}\n:heading-offset: 1\n```\n")
        else:
            title = path.stem.replace("_", " ").replace("-", " ")
            parts.append(f"\n## {title}\n\n```{{include}} {relative}\n:heading-offset: 2\n```\n")
    return "".join(parts)


def _add_benchmark_tables(app, docname: str, source: list[str]) -> None:
    if docname == "benchmarks":
        source[0] = source[0].replace("<!-- benchmark tables -->", benchmark_tables())


def setup(app):
    app.connect("source-read", _add_benchmark_tables)
    return {"parallel_read_safe": True}
