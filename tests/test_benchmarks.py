"""Smoke runs of the benchmark scripts' ``--quick`` modes (the real runs take hours)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


def _slurp_folder() -> Path:
    default = REPOSITORY.parent / "shared" / "data" / "slurp"
    return Path(os.environ.get("CWCL_SLURP_DIR", default))


@pytest.mark.slow
@pytest.mark.skipif(
    not (_slurp_folder() / "devel.jsonl").exists(), reason="SLURP text not found (CWCL_SLURP_DIR)"
)
def test_spoken_intents_quick_mode_writes_its_table(tmp_path):
    pytest.importorskip("espeakng_loader")
    command = [
        sys.executable,
        str(REPOSITORY / "benchmarks" / "spoken_intents.py"),
        "--quick",
        "--data",
        str(_slurp_folder()),
        "--out",
        str(tmp_path),
        "--cache-dir",
        str(tmp_path / "speech"),
        "--threads",
        "1",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=280)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "spoken_intents_quick.json").read_text())
    assert [row["loss"] for row in results["summary"]] == ["CL", "CWCL exp"]
    for row in results["summary"]:
        for measure in ("intent_accuracy", "recall_at_1", "recall_at_5"):
            assert 0.0 <= row[measure]["mean"] <= 1.0
        assert row["recall_at_1"]["mean"] <= row["recall_at_5"]["mean"]
    # The teacher on the gold transcripts: about 0.56 on this 100-request sample (71 intents).
    assert results["text_only_limit"]["intent_accuracy"] > 0.35
    assert results["text_only_limit"]["recall_at_1"] > 0.95
    table = (tmp_path / "spoken_intents_quick.md").read_text()
    assert "text-only limit" in table and "| mel-cnn | CL |" in table
