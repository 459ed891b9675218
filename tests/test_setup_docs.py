"""README set-up: the command line CI runs stays as it is; the CPU build is offered apart."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def _test_command_line() -> str:
    # The line .ci/run executes verbatim: grep -m1 -E '^python3? -m venv .* python -m pytest'.
    lines = re.findall(r"^python3? -m venv .* python -m pytest.*$", README.read_text(), re.M)
    assert lines, "README.md lost the test command line that CI runs"
    return lines[0]


def test_ci_test_command_installs_torch_from_pypi():
    # CI reaches only PyPI, so the command it runs must not name another index.
    command = _test_command_line()
    assert "pip install torch==2.13.0 &&" in command
    assert "--index-url" not in command


def test_readme_offers_the_cpu_build_separately():
    text = README.read_text()
    assert f"pip install torch==2.13.0 {CPU_INDEX}" in text
    assert "CUDA build" in text
