"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


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
