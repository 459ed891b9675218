"""benchmarks/teacher_limits.py: the text-only limit of a teacher on SLURP intents."""

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
    out = tmp_path / "limits.json"
    assert teacher_limits.main(["--teachers", "minilm", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    (row,) = results["teachers"]
    assert row["teacher"] == "minilm"
    assert row["embedding_dim"] == 384
    assert row["distinct_transcripts"] == 2032
    # The limit spoken_intents.py reports for MiniLM on the same requests and descriptions.
    assert row["intent_accuracy"] == pytest.approx(0.577, abs=0.005)
    assert results["settings"]["eval_requests"] == 2033
    assert results["command"].endswith("--teachers minilm --out " + str(out))
