"""The offline demo, ``python -m cwcl_sk demo``, and its spoken-commands corpus."""

import doctest
import re
import subprocess
import sys

import numpy as np
import pytest

from cwcl_sk.__main__ import build_parser, main
from cwcl_sk.datasets import INTENTS, TEST_VOICES, TRAIN_VOICES, commands, make_spoken_commands
from cwcl_sk.demo import CONFIGURATIONS, DemoResult, format_row, format_table, run_demo
from cwcl_sk.kernels import DEFAULT_KERNEL


@pytest.fixture
def espeak():
    pytest.importorskip("espeakng_loader")


@pytest.fixture
def no_synthesiser(monkeypatch):
    """Make ``import espeakng_loader`` fail, as on an install without the speech extra."""
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)


def _demo_help() -> str:
    return build_parser()._subparsers._group_actions[0].choices["demo"].format_help()


def test_training_and_evaluation_voices_are_disjoint():
    assert not set(TRAIN_VOICES) & set(TEST_VOICES)


def test_intent_names_are_never_spoken_phrasings():
    phrasings = {text for texts in INTENTS.values() for text in texts}
    assert not set(INTENTS) & phrasings


def test_spoken_commands_pair_every_phrasing_with_its_intent_for_every_voice(espeak):
    corpus = make_spoken_commands(TEST_VOICES[:2], repetitions=2, random_state=0)
    n_phrasings = sum(len(texts) for texts in INTENTS.values())
    assert len(corpus.clips) == len(corpus.texts) == 2 * 2 * n_phrasings
    for text, intent in zip(corpus.texts, corpus.intents, strict=True):
        assert text in INTENTS[corpus.intent_names[intent]]
    assert sorted(set(corpus.voices)) == sorted(TEST_VOICES[:2])
    assert corpus.labels[0] == "lights on"
    # Repetitions are new utterances (their own rate and pitch), not copies.
    first, repeated = corpus.clips[0], corpus.clips[n_phrasings]
    assert corpus.texts[0] == corpus.texts[n_phrasings]
    assert first.shape != repeated.shape or not np.array_equal(first, repeated)


def test_spoken_commands_examples_run(espeak):
    results = doctest.testmod(commands)
    assert results.attempted and not results.failed


@pytest.mark.slow
def test_quick_speech_demo_trains_cl_and_cwcl_on_unseen_voices(espeak):
    report = run_demo(data="speech", quick=True, random_state=0)
    assert report.data == "speech"
    assert not report.notes
    assert "unseen voices" in report.description
    assert [result.name for result in report] == [name for name, _ in CONFIGURATIONS]
    for result in report:
        assert 0.0 <= result.accuracy <= 1.0
        assert 0.0 <= result.recall_at_1 <= 1.0
        assert result.seconds > 0
    table = format_table(report)
    assert "zero-shot acc." in table
    assert "CWCL, default kernel (capped-exp)" in table


@pytest.mark.slow
def test_demo_falls_back_to_digits_without_the_synthesiser_and_says_so(no_synthesiser, capsys):
    assert main(["demo", "--quick", "--verbose", "0"]) == 0
    output = capsys.readouterr().out
    assert "speech synthesiser is not installed" in output
    assert "digits" in output
    assert "CL (CLIP loss)" in output


@pytest.mark.slow
def test_digits_demo_learns_far_above_chance_in_a_few_epochs():
    report = run_demo(data="digits", max_epochs=3, random_state=0)
    assert report.data == "digits"
    # Even 3 epochs lift CL far above chance (10%) on the held-out digits.
    assert report[0].accuracy > 0.5


def test_report_rows_plot_like_any_list_of_results():
    results = [DemoResult("CL", 0.5, 0.6, 1.0), DemoResult("CWCL", 0.7, 0.8, 2.0, ["flat"])]
    table = format_table(results)
    assert "50.0%" in table
    assert "- CWCL: flat" in table


def test_unknown_data_is_refused():
    with pytest.raises(ValueError, match="'speech' or 'digits'"):
        run_demo(data="images")


def test_help_explains_every_demo_option():
    help_text = _demo_help()
    for option in ("--data", "--quick", "--epochs", "--seed", "--verbose"):
        assert option in help_text
    parser = build_parser()._subparsers._group_actions[0].choices["demo"]
    for action in parser._actions:
        assert action.help, f"demo {action.option_strings or action.dest} has no help"


def test_module_entry_point_runs():
    completed = subprocess.run(
        [sys.executable, "-m", "cwcl_sk", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in completed.stdout


def test_demo_labels_each_bar_and_prints_each_row_as_it_finishes(capsys):
    report = run_demo(data="digits", max_epochs=2, random_state=0, verbose=1)
    captured = capsys.readouterr()
    for number, (name, _) in enumerate(CONFIGURATIONS, start=1):
        assert f"[{number}/{len(CONFIGURATIONS)}] {name}:" in captured.out
        # Its own bar over the 2 epochs, labelled with its name (tqdm may skip the final
        # redraw of a bar it then erases, so the count shown varies).
        assert re.search(rf"{re.escape(name)}: +\d+%\|.*\| \d/2 \[", captured.err)
    assert "loading the teacher" in captured.out.split("[2/")[0]  # said before the first fit
    assert "epochs:" not in captured.err  # no anonymous bars from the loop
    rows = [line for line in captured.out.splitlines() if line.startswith(report[0].name + " ")]
    assert rows and rows[0] == format_row(report[0])
    # Each row comes out before the next configuration starts.
    assert captured.out.index(rows[0]) < captured.out.index(f"[2/{len(CONFIGURATIONS)}]")


def test_demo_names_the_resolved_teacher_and_explains_the_columns(capsys):
    assert main(["demo", "--data", "digits", "--epochs", "1", "--verbose", "0"]) == 0
    output = capsys.readouterr().out
    assert "Teacher: 'minilm' = all-MiniLM-L6-v2" in output
    assert "text R@1: paired retrieval" in output
    assert "zero-shot acc.: share of the test inputs" in output


def test_demo_help_names_the_default_kernel_correctly():
    help_text = " ".join(_demo_help().split())
    assert f"the default {DEFAULT_KERNEL} kernel" in help_text
    assert "default exp kernel" not in help_text
