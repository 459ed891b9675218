"""The Python examples of the README and of the documentation's front page run as written."""

import re
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
README = REPOSITORY / "README.md"


def _python_blocks(path: Path = README) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_readme_has_python_examples():
    assert _python_blocks()


@pytest.mark.slow
def test_readme_examples_run_in_order(monkeypatch, tmp_path):
    # Blocks share one namespace, as in a session that pastes them one after another; a
    # grid search would cost minutes here and is covered by test_sklearn_integration.py.
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    ran = 0
    for block in _python_blocks():
        if "GridSearchCV" in block:
            continue
        exec(compile(block, str(README), "exec"), namespace)
        ran += 1
    assert ran >= 2


@pytest.mark.slow
def test_docs_front_page_example_runs(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    index = REPOSITORY / "docs" / "index.md"
    blocks = _python_blocks(index)
    assert blocks
    namespace = {"__name__": "__docs__"}
    exec(compile(blocks[0], str(index), "exec"), namespace)
    # Measured 0.926 (10 epochs, seed 0, torch 2.13 CPU); chance is 0.10.
    assert namespace["clf"].score(namespace["X"][1200:], namespace["y"][1200:]) > 0.7
