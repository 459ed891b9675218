"""The documentation: complete API reference, and a Sphinx build without warnings."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cwcl_sk

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOCUMENTED_MODULES = [
    "cwcl_sk.kernels",
    "cwcl_sk.losses",
    "cwcl_sk.diagnostics",
    "cwcl_sk.callbacks",
    "cwcl_sk.metrics",
    "cwcl_sk.datasets",
    "cwcl_sk.plotting",
]


def _sphinx_build(source: Path, output: Path) -> subprocess.CompletedProcess:
    for package in ("sphinx", "myst_parser", "numpydoc", "furo"):
        pytest.importorskip(package)
    environment = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    # conf.py imports the package under test, installed or not.
    package_root = str(Path(cwcl_sk.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [package_root, environment.get("PYTHONPATH")])
    )
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    command += ["-d", str(output / "doctrees"), str(source), str(output / "html")]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)


def test_api_reference_covers_every_public_name_and_module():
    api = (DOCS / "api.rst").read_text()
    for module in DOCUMENTED_MODULES:
        assert f".. automodule:: {module}\n" in api
    for name in cwcl_sk.__all__:
        documented_at_top = f"cwcl_sk.{name}" in api or f":: {name}\n" in api
        module = getattr(getattr(cwcl_sk, name), "__module__", "") or ""
        assert documented_at_top or module in DOCUMENTED_MODULES or name == "__version__", name


def test_every_page_is_in_a_toctree():
    index = (DOCS / "index.md").read_text()
    pages = [path.relative_to(DOCS).with_suffix("").as_posix() for path in DOCS.rglob("*.md")]
    pages = [page for page in pages if not page.startswith("_build") and page != "index"]
    assert pages
    for page in pages:
        assert f"\n{page}\n" in index, page


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    completed = _sphinx_build(DOCS, tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    html = tmp_path / "html"
    api = (html / "api.html").read_text()
    for name in (
        "cwcl_sk.CWCLAligner",
        "cwcl_sk.kernels.ExpKernel",
        "cwcl_sk.plotting.plot_weights",
    ):
        assert f'id="{name}"' in api
    assert "X and y of different lengths" in (html / "bad_input.html").read_text()
    assert "mel-cnn" in (html / "guide" / "encoders.html").read_text()
    # The kernel grid is written once, in benchmarks/README.md, and included by the docs.
    benchmarks = (html / "benchmarks.html").read_text()
    assert "spoken-intents-whisper-top" in benchmarks
    assert "near-paraphrases per training batch" not in benchmarks  # the include stops in time


@pytest.mark.slow
def test_benchmark_tables_in_results_are_included(tmp_path):
    shutil.copytree(DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns("_build"))
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    shutil.copy(ROOT / "benchmarks" / "README.md", tmp_path / "benchmarks")  # included by the docs
    (results / "accuracy.md").write_text(
        "# Spoken digits\n\n| loss | accuracy |\n|---|---|\n| CL | 68.0% |\n| CWCL | 74.5% |\n"
    )
    completed = _sphinx_build(tmp_path / "docs", tmp_path / "out")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    page = (tmp_path / "out" / "html" / "benchmarks.html").read_text()
    assert "Spoken digits" in page
    assert "74.5%" in page
    assert "No run of a benchmark script" not in page
