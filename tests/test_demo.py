"""The command line and the offline demo."""

import subprocess
import sys

from cwcl_sk.__main__ import build_parser
from cwcl_sk.demo import format_table, run_demo


def test_demo_trains_cl_and_cwcl_and_reports_zero_shot_accuracy():
    results = run_demo(max_epochs=3, random_state=0)
    assert [result.name for result in results][:2] == ["CL (CLIP loss)", "CWCL, exp kernel"]
    for result in results:
        assert 0.0 <= result.accuracy <= 1.0
        assert 0.0 <= result.recall_at_1 <= 1.0
    # Even 3 epochs lift CL far above chance (10%) on the held-out digits.
    assert results[0].accuracy > 0.5
    table = format_table(results)
    assert "zero-shot acc." in table
    assert "CWCL, exp kernel" in table


def test_help_explains_every_demo_option():
    help_text = build_parser()._subparsers._group_actions[0].choices["demo"].format_help()
    for option in ("--epochs", "--seed", "--verbose"):
        assert option in help_text


def test_module_entry_point_runs():
    completed = subprocess.run(
        [sys.executable, "-m", "cwcl_sk", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in completed.stdout
