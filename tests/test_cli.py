"""The fit and predict commands of ``python -m cwcl_sk`` and the manifests they read."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cwcl_sk
from cwcl_sk import CWCLAligner
from cwcl_sk.__main__ import build_parser, main
from cwcl_sk.cli import ManifestError, read_manifest, read_manifest_rows
from cwcl_sk.encoders import STUDENTS

COLOURS = ["red", "green", "blue"]


def _subcommand_parser(name: str):
    return build_parser()._subparsers._group_actions[0].choices[name]


@pytest.fixture(scope="module")
def numeric_pairs(tmp_path_factory):
    """45 .npy feature vectors in three well-separated classes, and a CSV manifest of them."""
    folder = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(1)
    lines = ["path,text"]
    for index in range(45):
        label = index % 3
        vector = np.eye(3)[label] * 3 + 0.2 * rng.normal(size=3)
        np.save(folder / f"item{index}.npy", vector.astype(np.float32))
        lines.append(f"item{index}.npy,{COLOURS[label]}")
    (folder / "pairs.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def trained_model(numeric_pairs):
    """The folder written by one ``fit`` command on the numeric manifest."""
    out = numeric_pairs / "model"
    status = main(
        [
            "fit",
            "--pairs",
            str(numeric_pairs / "pairs.csv"),
            "--out",
            str(out),
            "--max-epochs",
            "30",
            "--batch-size",
            "45",
            "--kernel-option",
            "kappa=0.05",
            "--student-option",
            "hidden_sizes=(16,)",
            "--lr-schedule",
            "cosine",
            "--warmup-fraction",
            "0.1",
        ]
    )
    assert status == 0
    return out


def test_fit_saves_a_model_trained_with_the_given_options(trained_model):
    aligner = CWCLAligner.load(trained_model)
    assert len(aligner.history_) == 30
    assert aligner.get_params()["student__hidden_sizes"] == (16,)
    assert aligner.kernel.kappa == 0.05
    assert (aligner.lr_schedule, aligner.warmup_fraction) == ("cosine", 0.1)
    rates = [record["learning_rate"] for record in aligner.history_]
    assert rates[2] == pytest.approx(1e-3) and rates[-1] < 1e-5
    assert sorted(aligner.candidates_) == sorted(COLOURS)


def test_predict_prints_path_label_and_probability_per_file(trained_model, numeric_pairs, capsys):
    files = [str(numeric_pairs / f"item{index}.npy") for index in range(9)]
    status = main(["predict", "--model", str(trained_model), "--labels", "red, green,blue", *files])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(files)
    fields = [line.split("\t") for line in lines]
    assert [field[0] for field in fields] == files
    assert all(0.0 < float(field[2]) <= 1.0 for field in fields)
    # The classes are easy: a trained student names nearly all of them.
    correct = sum(field[1] == COLOURS[index % 3] for index, field in enumerate(fields))
    assert correct >= 8


def test_predict_accepts_repeated_templates(trained_model, numeric_pairs, capsys):
    file = str(numeric_pairs / "item0.npy")
    arguments = ["predict", "--model", str(trained_model), "--labels", "red,green,blue"]
    templates = ["--template", "the colour {}", "--template", "{}"]
    assert main([*arguments, *templates, file]) == 0
    assert capsys.readouterr().out.strip().split("\t")[:2] == [file, "red"]


def test_predict_rejects_a_single_label(trained_model, numeric_pairs, capsys):
    file = str(numeric_pairs / "item0.npy")
    assert main(["predict", "--model", str(trained_model), "--labels", "red", file]) == 1
    assert "at least two comma-separated labels" in capsys.readouterr().err


def test_predict_rejects_a_file_with_the_wrong_number_of_features(trained_model, tmp_path, capsys):
    np.save(tmp_path / "wide.npy", np.ones(5, dtype=np.float32))
    arguments = ["predict", "--model", str(trained_model), "--labels", "red,blue"]
    assert main([*arguments, str(tmp_path / "wide.npy")]) == 1
    assert "5 features" in capsys.readouterr().err


def test_module_entry_point_runs_predict_in_a_subprocess(trained_model, numeric_pairs):
    environment = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    # Run the package under test even when it is not installed.
    package_root = str(Path(cwcl_sk.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [package_root, environment.get("PYTHONPATH")])
    )
    file = str(numeric_pairs / "item1.npy")
    command = ["predict", "--model", str(trained_model), "--labels", "red,green,blue", file]
    completed = subprocess.run(
        [sys.executable, "-m", "cwcl_sk", *command],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().split("\t")[:2] == [file, "green"]


def test_jsonl_manifest_with_paths_or_inline_features_reads_like_csv(numeric_pairs, tmp_path):
    X_csv, texts_csv = read_manifest(numeric_pairs / "pairs.csv")
    manifest = tmp_path / "pairs.jsonl"
    records = [
        {"path": str(numeric_pairs / "item0.npy"), "text": "red"},
        {"features": X_csv[1].tolist(), "text": "green"},
    ]
    manifest.write_text("\n".join(json.dumps(record) for record in records) + "\n\n")
    X, texts = read_manifest(manifest)
    np.testing.assert_allclose(X, X_csv[:2])
    assert texts == texts_csv[:2] == ["red", "green"]


def test_csv_features_column_holds_numbers_separated_by_spaces(tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text('features,text\n"1 2 3",one\n4 5 6,two\n')
    X, texts = read_manifest(manifest)
    np.testing.assert_array_equal(X, [[1, 2, 3], [4, 5, 6]])
    assert X.dtype == np.float32
    assert texts == ["one", "two"]


@pytest.mark.skipif("mel-cnn" not in STUDENTS, reason="no audio student registered")
def test_audio_student_gets_the_paths_unchanged(tmp_path):
    (tmp_path / "clips").mkdir()
    for name in ("a.wav", "b.wav"):
        (tmp_path / "clips" / name).write_bytes(b"not read while the manifest is read")
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(f"path,text\nclips/a.wav,yes\n{tmp_path / 'clips' / 'b.wav'},no\n")
    X, texts = read_manifest(manifest, student="mel-cnn")
    assert X == [str(tmp_path / "clips" / "a.wav"), str(tmp_path / "clips" / "b.wav")]
    assert texts == ["yes", "no"]


@pytest.mark.skipif("mel-cnn" not in STUDENTS, reason="no audio student registered")
def test_audio_errors_name_the_manifest_line_of_the_clip(tmp_path, capsys):
    import soundfile

    soundfile.write(tmp_path / "good.wav", np.zeros(1600, dtype=np.float32), 16000)
    (tmp_path / "broken.wav").write_bytes(b"this is not audio")
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("path,text\ngood.wav,yes\n\nbroken.wav,no\n")
    arguments = ["fit", "--pairs", str(manifest), "--out", str(tmp_path / "model")]
    assert main([*arguments, "--student", "mel-cnn", "--max-epochs", "1"]) == 1
    error = capsys.readouterr().err
    assert "X[1]" in error
    assert f"X[1] is line 4 of {manifest}" in error


@pytest.mark.skipif("mel-cnn" not in STUDENTS, reason="no audio student registered")
def test_fit_and_predict_read_audio_files_for_an_audio_student(tmp_path, capsys):
    import soundfile

    # Two "words": a low and a high tone, 0.25 s each.
    rng = np.random.default_rng(0)
    time = np.arange(4000) / 16000
    records = []
    for index in range(8):
        frequency = 300 if index % 2 else 900
        clip = 0.3 * np.sin(2 * np.pi * frequency * time) + 0.01 * rng.normal(size=time.size)
        soundfile.write(tmp_path / f"clip{index}.wav", clip.astype(np.float32), 16000)
        records.append({"path": f"clip{index}.wav", "text": ["yes", "no"][index % 2]})
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text("\n".join(json.dumps(record) for record in records))
    options = ["--student-option", "channels=16", "--student-option", "n_layers=1"]
    arguments = ["fit", "--pairs", str(manifest), "--out", str(tmp_path / "model")]
    settings = ["--max-epochs", "15", "--batch-size", "8", "--learning-rate", "3e-3"]
    assert main([*arguments, "--student", "mel-cnn", *settings, *options]) == 0
    assert CWCLAligner.load(tmp_path / "model").student == "mel-cnn"
    capsys.readouterr()
    files = [str(tmp_path / f"clip{index}.wav") for index in range(4)]
    assert main(["predict", "--model", str(tmp_path / "model"), "--labels", "yes,no", *files]) == 0
    labels = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
    assert labels == ["yes", "no", "yes", "no"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("pairs.csv", "file,caption\nitem0.npy,red\n", "line 1: the header must name"),
        ("pairs.csv", "path,text\nitem0.npy,red\nitem1.npy\n", "line 3: missing column 'text'"),
        ("pairs.csv", "path,text\nitem0.npy,red\nitem1.npy,  \n", "line 3: empty text"),
        ("pairs.csv", "path,text\n\nmissing.npy,red\n", "line 3: file 'missing.npy' not found"),
        ("pairs.csv", "path,text\n,red\n", "line 2: missing column 'path'"),
        ("pairs.csv", "path,text\nitem0.npy,red, dark\n", "line 2: 3 cells but the header"),
        ("pairs.csv", "path,text\n", "holds no pairs"),
        ("pairs.jsonl", '{"path": "item0.npy", "text": "red"}\n{"path": ', "line 2: bad JSON"),
        ("pairs.jsonl", '["item0.npy", "red"]\n', "line 1: expected a JSON object"),
        ("pairs.jsonl", '{"path": "item0.npy", "text": 3}\n', "line 1: 'text' must be a string"),
        ("pairs.jsonl", '{"features": ["a"], "text": "red"}\n', "line 1: 'features' must be"),
        (
            "pairs.jsonl",
            '{"path": "item0.npy", "features": [1], "text": "red"}\n',
            "line 1: give either 'path' or 'features'",
        ),
    ],
)
def test_manifest_errors_name_the_line(numeric_pairs, tmp_path, name, content, message):
    manifest = numeric_pairs / "errors" / name
    manifest.parent.mkdir(exist_ok=True)
    # Relative paths resolve against the manifest's folder: point them at the .npy files.
    content = content.replace("item0.npy", str(numeric_pairs / "item0.npy"))
    manifest.write_text(content.replace("item1.npy", str(numeric_pairs / "item1.npy")))
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")):
        read_manifest(manifest)


def test_feature_rows_of_different_widths_name_the_line(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(3))
    np.save(tmp_path / "b.npy", np.ones(4))
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("path,text\na.npy,red\nb.npy,blue\n")
    with pytest.raises(ManifestError, match="line 3: 4 features, but the first one has 3"):
        read_manifest(manifest)


def test_a_file_that_is_not_npy_names_the_line(tmp_path):
    (tmp_path / "a.npy").write_text("text, not an array")
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("path,text\na.npy,red\n")
    with pytest.raises(ManifestError, match=r"line 2: could not read .* as a NumPy \.npy file"):
        read_manifest(manifest)


def test_rows_keep_their_line_numbers_across_blank_lines(numeric_pairs, tmp_path):
    manifest = tmp_path / "pairs.csv"
    path = numeric_pairs / "item0.npy"
    manifest.write_text(f"path,text\n\n{path},red\n\n\n{path},blue\n")
    assert [row.line for row in read_manifest_rows(manifest)] == [3, 6]


def test_fit_reports_manifest_errors_on_stderr_with_status_1(tmp_path, capsys):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("path,text\nmissing.npy,red\n")
    status = main(["fit", "--pairs", str(manifest), "--out", str(tmp_path / "model")])
    assert status == 1
    error = capsys.readouterr().err
    assert error.startswith("python -m cwcl_sk fit: error:")
    assert "line 2" in error
    assert not (tmp_path / "model").exists()


def test_malformed_student_option_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--pairs", "p.csv", "--out", str(tmp_path), "--student-option", "64"])
    assert exit_info.value.code == 2


def test_student_option_values_are_read_as_python_literals():
    options = ["--student-option", "hidden_sizes=(64, 32)", "--student-option", "activation=relu"]
    arguments = build_parser().parse_args(["fit", "--pairs", "p.csv", "--out", "m", *options])
    assert arguments.student_option == [("hidden_sizes", (64, 32)), ("activation", "relu")]


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_help_explains_every_option(command):
    parser = _subcommand_parser(command)
    for action in parser._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
    help_text = parser.format_help()
    expected = {
        "fit": [
            "--pairs",
            "--out",
            "--teacher",
            "--student",
            "--loss",
            "--kernel",
            "--temperature",
            "--batch-size",
            "--max-epochs",
            "--learning-rate",
            "--lr-schedule",
            "--warmup-fraction",
            "--seed",
            "--student-option",
        ],
        "predict": ["--model", "--labels", "--template", "files"],
    }[command]
    for option in expected:
        assert option in help_text


def _fit_arguments(numeric_pairs, out, *extra):
    pairs = str(numeric_pairs / "pairs.csv")
    return ["fit", "--pairs", pairs, "--out", str(out), "--max-epochs", "2", *extra]


def test_fit_shows_progress_on_a_terminal_by_default(numeric_pairs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(_fit_arguments(numeric_pairs, tmp_path / "model")) == 0
    assert "2/2" in capsys.readouterr().err  # the bar over epochs, finished


def test_fit_quiet_shows_no_progress_even_on_a_terminal(
    numeric_pairs, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(_fit_arguments(numeric_pairs, tmp_path / "model", "--quiet")) == 0
    captured = capsys.readouterr()
    assert "2/2" not in captured.err
    assert "saved to" in captured.out  # the summary lines stay


def test_fit_into_a_pipe_shows_no_progress_by_default(numeric_pairs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert main(_fit_arguments(numeric_pairs, tmp_path / "model")) == 0
    assert "2/2" not in capsys.readouterr().err


def test_fit_says_what_the_bert_alias_resolves_to(numeric_pairs, tmp_path, capsys):
    arguments = _fit_arguments(numeric_pairs, tmp_path / "model", "--teacher", "bert", "--quiet")
    assert main(arguments) == 0
    assert "teacher 'bert' = all-MiniLM-L6-v2" in capsys.readouterr().out


def test_predict_with_a_missing_model_folder_says_no_such_folder(numeric_pairs, tmp_path, capsys):
    file = str(numeric_pairs / "item0.npy")
    missing = str(tmp_path / "no-model-here")
    assert main(["predict", "--model", missing, "--labels", "red,green", file]) == 1
    error = capsys.readouterr().err
    assert f"--model {missing!r}: no such folder" in error
    assert "nowhere" not in error
