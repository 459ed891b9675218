"""python -m benchmarks.teacher_limits: the text-only limit of a teacher on SLURP intents."""

import json

import pytest
from _helpers import load_benchmark

teacher_limits = load_benchmark("teacher_limits")
slurp_data = load_benchmark("slurp_data")


@pytest.mark.slow
@pytest.mark.skipif(
    not (slurp_data.default_data_dir() / "devel.jsonl").is_file(),
    reason="SLURP text not found (set CWCL_SLURP_DIR)",
)
def test_teacher_limits_writes_minilm_limit_on_slurp_devel(tmp_path):
    assert teacher_limits.main(["--teachers", "minilm", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "teacher_limits.json").read_text())
    (row,) = results["summary"]
    assert row["teacher"] == "minilm"
    assert row["embedding_dim"] == 384
    assert row["distinct_transcripts"] == 2032
    # The limit spoken_intents.py reports for MiniLM on the same requests and descriptions.
    assert row["intent_accuracy"] == pytest.approx(0.577, abs=0.005)
    assert results["settings"]["eval_requests"] == 2033
    assert results["command"].endswith("--teachers minilm --out " + str(tmp_path))
    assert results["schema"] == 1 and results["provenance"]["source"] == "run"
