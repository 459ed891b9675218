"""The result tables of the README and docs are generated from committed result files."""

import json
import math
from pathlib import Path

import pytest
from _helpers import load_benchmark

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = REPOSITORY / "benchmarks" / "results"
tables = load_benchmark("tables")


def _committed_results() -> list[Path]:
    return sorted(RESULTS.glob("*.json"))


def test_every_generated_block_matches_its_result_file():
    stale = tables.check()
    assert stale == [], f"run python -m benchmarks.tables --write: {stale}"


def test_every_table_appears_in_the_docs():
    text = "".join(path.read_text() for path in tables.DOCUMENTS)
    for name in [*tables.TABLES, "kernel-comparison"]:
        assert f"<!-- table: {name} -->" in text, name


def test_check_names_a_block_whose_numbers_were_edited_by_hand(tmp_path):
    document = tmp_path / "page.md"
    block = "<!-- table: kernel-grid-digit-images -->\n"
    document.write_text(block + tables.render("kernel-grid-digit-images") + "<!-- /table -->\n")
    assert tables.check([document]) == []
    document.write_text(document.read_text().replace("0.984 ± 0.012", "0.990 ± 0.012"))
    assert tables.check([document]) == [f"{document}: kernel-grid-digit-images"]
    tables.write([document])
    assert "0.984 ± 0.012" in document.read_text()


def test_an_unknown_table_name_is_refused():
    with pytest.raises(KeyError, match="table name must be one of"):
        tables.render("kernel-grid-nowhere")


@pytest.mark.parametrize("path", _committed_results(), ids=lambda path: path.name)
def test_every_committed_result_file_follows_the_schema(path):
    result = json.loads(path.read_text())
    assert result["schema"] == 1
    assert result["command"].startswith("python -m ")
    assert isinstance(result["settings"], dict)
    provenance = result["provenance"]
    assert provenance["source"] in {"run", "transcribed"}
    if provenance["source"] == "transcribed":
        # The commit that recorded the values, and a note that the raw output is lost.
        assert len(provenance["commit"]) == 40
        assert "not available" in provenance["note"]
    else:
        assert provenance["date"]
        assert result["versions"]["torch"]
    assert "table" in result or result.get("runs") or result.get("summary")


def test_transcribed_tables_say_so_and_measured_ones_say_where_they_ran():
    transcribed = tables.render("kernel-grid-spoken-intents-whisper-top")
    assert "*Transcribed: values recorded by commit `" in transcribed
    assert "raw run output is not available" in transcribed
    measured = tables.render("demo")
    assert "Transcribed" not in measured
    assert "*Measured " in measured and "`python -m cwcl_sk demo`" in measured


def test_readme_demo_table_shows_the_committed_demo_result():
    demo = json.loads((RESULTS / "demo.json").read_text())
    assert demo["command"] == "python -m cwcl_sk demo"  # the README's set-up command
    readme = (REPOSITORY / "README.md").read_text()
    block = readme.split("<!-- table: demo -->")[1].split("<!-- /table -->")[0]
    for run in demo["runs"]:
        assert f"| {run['configuration']} | {run['accuracy']:.1%} |" in block


def test_kernel_grid_from_runs_gives_mean_and_sd_over_seeds(tmp_path):
    runs = [
        {"loss": "CL", "batch_size": 64, "seed": 0, "accuracy": 0.5},
        {"loss": "CL", "batch_size": 64, "seed": 1, "accuracy": 0.7},
        {"loss": "CL", "batch_size": 256, "seed": 0, "accuracy": 0.9},
        {"loss": "CWCL exp", "batch_size": 64, "seed": 0, "accuracy": 0.6},
    ]
    result = {
        "schema": 1,
        "command": "python -m benchmarks.kernel_ablation --task digit-images",
        "settings": {"seeds": [0, 1]},
        "provenance": {"source": "run", "date": "2026-01-01", "commit": "0" * 40},
        "runs": runs,
    }
    (tmp_path / "kernel_ablation_digit-images.json").write_text(json.dumps(result))
    text = tables.render("kernel-grid-digit-images", tmp_path)
    assert "| loss | batch 64 | batch 256 |" in text
    assert "| CL | 0.600 ± 0.100 | 0.900 ± 0.000 (1 of 2 seeds) |" in text
    assert "| CWCL exp | 0.600 ± 0.000 (1 of 2 seeds) | not run |" in text
    assert "*Measured 2026-01-01 at commit `0000000`" in text


def test_kernel_comparison_is_each_kernel_minus_cl_in_points():
    header, rows = tables.kernel_comparison()
    assert header[1:6] == ["capped-exp", "exp", "perplexity", "mixture", "linear"]
    grid = json.loads((RESULTS / "kernel_ablation_spoken-digits.json").read_text())
    means = {row[0]: row[1]["mean"] for row in grid["table"]["rows"]}  # batch 64
    row = next(row for row in rows if row[0].startswith("spoken digits, speaker nicolas (mel"))
    expected = round(100 * (means["CWCL exp"] - means["CL"]), 1)
    assert math.isclose(float(row[2].split(" / ")[0]), expected)
    assert row[-1].startswith(f"{100 * means['CL']:.1f} / ")


def test_teacher_limits_table_shows_each_teacher_and_how_busy_the_machine_was():
    text = tables.render("teacher-limits")
    limits = json.loads((RESULTS / "teacher_limits.json").read_text())
    for row in limits["summary"]:
        cells = f"| {row['embedding_dim']} | {row['intent_accuracy']:.3f} | "
        assert f'| `"{row["teacher"]}"` (' in text and cells in text
    assert f"load average {limits['settings']['load_average_at_end']}" in text
    assert "*Measured " in text and "`python -m benchmarks.teacher_limits`" in text


def test_onnx_latency_table_names_a_students_inputs_on_its_first_row_only(tmp_path):
    row = {
        "torch_model_ms_per_input": 0.5,
        "onnx_model_ms_per_input": 0.125,
        "torch_end_to_end_ms_per_input": 1234.4,
        "onnx_end_to_end_ms_per_input": 0.00321,
        "max_abs_probability_difference": 2.5e-7,
    }
    result = {
        "schema": 1,
        "command": "python -m benchmarks.onnx_latency --repeats 3",
        "settings": {
            "inputs": {"mlp": "64 features"},
            "repeats": 3,
            "threads": 1,
            "load_average_at_end": 1.5,
        },
        "provenance": {"source": "run", "date": "2026-01-01"},
        "summary": [
            {"student": "mlp", "batch_size": 1, **row},
            {"student": "mlp", "batch_size": 32, **row},
        ],
    }
    (tmp_path / "onnx_latency.json").write_text(json.dumps(result))
    text = tables.render("onnx-latency", tmp_path)
    assert "| mlp (64 features) | 1 | 0.5 | 0.125 | 1234 | 0.00321 | 2.5e-07 |" in text
    assert "| mlp | 32 | 0.5 |" in text
    assert "median of 3 runs after a warm-up; PyTorch and onnxruntime on 1 thread each" in text
