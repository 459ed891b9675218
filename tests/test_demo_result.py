"""The demo writes its result in the benchmarks' schema, the source of the README's table."""

import json

from _helpers import load_benchmark

from cwcl_sk.cli import _demo_command, build_parser
from cwcl_sk.demo import DemoReport, DemoResult, write_report


def _report() -> DemoReport:
    results = [
        DemoResult("CL (CLIP loss)", 0.8, 0.967, 90.7, teacher_accuracy=0.967),
        DemoResult("CWCL, default kernel (capped-exp)", 0.822, 0.956, 139.9, [], 0.967),
        DemoResult("CWCL, linear kernel (paper)", 0.222, 0.889, 102.6, ["near-uniform"], 0.967),
    ]
    return DemoReport(results, data="speech", description="spoken commands", notes=[])


def test_write_report_records_command_settings_versions_and_every_configuration(tmp_path):
    path = tmp_path / "results" / "demo.json"
    settings = {"data": "speech", "quick": False, "max_epochs": None, "random_state": 0}
    write_report(_report(), path, "python -m cwcl_sk demo", settings)
    result = json.loads(path.read_text())
    assert result["command"] == "python -m cwcl_sk demo"
    assert result["settings"]["random_state"] == 0
    assert result["provenance"]["source"] == "run"
    assert result["versions"]["torch"] and result["versions"]["cwcl_sk"]
    assert [run["accuracy"] for run in result["runs"]] == [0.8, 0.822, 0.222]
    assert result["runs"][2]["warnings"] == ["near-uniform"]


def test_the_written_report_renders_as_the_readme_table(tmp_path):
    write_report(_report(), tmp_path / "demo.json", "python -m cwcl_sk demo", {})
    text = load_benchmark("tables").render("demo", tmp_path)
    assert "| CWCL, linear kernel (paper) | 22.2% | 88.9% | 102.6 |" in text
    assert "| teacher on the texts (limit) | 96.7% |  |  |" in text


def test_demo_out_option_and_the_recorded_command_line():
    parser = build_parser()
    arguments = parser.parse_args(["demo", "--out", "benchmarks/results/demo.json"])
    assert arguments.out == "benchmarks/results/demo.json"
    assert _demo_command(arguments) == "python -m cwcl_sk demo"
    arguments = parser.parse_args(["demo", "--quick", "--seed", "3", "--out", "x.json"])
    assert _demo_command(arguments) == "python -m cwcl_sk demo --quick --seed 3"
