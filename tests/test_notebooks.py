"""The notebooks of ``examples/``: committed without outputs, and each runs top to bottom.

Every ``examples/*.ipynb`` is executed in a fresh kernel from the ``examples/`` folder, as a
reader would run it, with a non-interactive matplotlib backend and the Hugging Face hub offline.
"""

import os
from pathlib import Path

import pytest

import cwcl_sk

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))
# Each notebook is written to run in under 2 minutes on 2 CPU cores; the margin is for a
# machine shared with other work.
CELL_TIMEOUT = 300


def _read(path: Path):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(path, as_version=4)


def test_there_are_example_notebooks():
    assert NOTEBOOKS, "examples/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_notebook_has_no_outputs(path):
    notebook = _read(path)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert not cell.get("outputs"), f"{path.name} cell {index} has outputs: clear them"
        assert cell.get("execution_count") is None, f"{path.name} cell {index} has a count"


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = _read(path)
    # The kernel inherits this process's environment: run the package under test, offline,
    # and draw figures without a display.
    package_root = str(Path(cwcl_sk.__file__).resolve().parents[1])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
