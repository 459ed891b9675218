"""Saved folders and checkpoints are checked as they are read: errors name the file and field."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cwcl_sk import CWCLAligner

FAST = {"max_epochs": 2, "batch_size": 16, "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def saved(paired_features, tmp_path_factory):
    """A saved checkpoint of a fitted aligner, copied afresh for every test to tamper with."""
    X, teacher_embeddings = paired_features
    folder = tmp_path_factory.mktemp("saved") / "checkpoint"
    CWCLAligner(teacher="precomputed", **FAST).fit(X, teacher_embeddings).save_checkpoint(folder)
    return folder


@pytest.fixture
def folder(saved, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(saved, copy)
    return copy


def edit_json(path, edit):
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))


def edit_tensors(path, edit):
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


def resume(folder, paired_features, resume_mismatch="raise", **params):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(teacher="precomputed", **{**FAST, "max_epochs": 3, **params})
    return aligner.fit(X, teacher_embeddings, resume_from=folder, resume_mismatch=resume_mismatch)


def test_untampered_folder_loads(folder):
    CWCLAligner.load(folder)


def truncate(path, n_bytes):
    path.write_bytes(path.read_bytes()[:n_bytes])


def test_truncated_json_names_the_file(folder):
    truncate(folder / "fitted.json", 40)
    with pytest.raises(ValueError, match=r"fitted\.json: not valid JSON .* line \d"):
        CWCLAligner.load(folder)


def test_json_that_is_not_an_object_names_the_file(folder):
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"config\.json: expected a JSON object, got list"):
        CWCLAligner.load(folder)


def test_missing_field_names_the_file_and_the_field(folder):
    edit_json(folder / "fitted.json", lambda record: record.pop("embedding_dim_"))
    with pytest.raises(ValueError, match=r"fitted\.json: field 'embedding_dim_' is missing"):
        CWCLAligner.load(folder)


def test_field_of_the_wrong_type_names_the_file_and_the_field(folder):
    edit_json(folder / "fitted.json", lambda record: record.update(temperature_="hot"))
    with pytest.raises(ValueError, match=r"fitted\.json: field 'temperature_' must be a finite"):
        CWCLAligner.load(folder)


def test_unknown_input_kind_names_the_field(folder):
    edit_json(folder / "fitted.json", lambda record: record.update(input_kind="smell"))
    with pytest.raises(ValueError, match=r"field 'input_kind' must be one of"):
        CWCLAligner.load(folder)


def test_other_format_version_names_the_field(folder):
    edit_json(folder / "config.json", lambda record: record.update(format_version=99))
    with pytest.raises(ValueError, match=r"format 99 \(field 'format_version' of config\.json"):
        CWCLAligner.load(folder)


def test_parameter_of_a_broken_form_names_it(folder):
    edit_json(folder / "config.json", lambda record: record["parameters"].update(loss=["cwcl"]))
    with pytest.raises(ValueError, match=r"config\.json: field 'parameters'\.loss must be"):
        CWCLAligner.load(folder)


def test_invalid_parameter_value_names_the_config_file(folder):
    edit_json(
        folder / "config.json",
        lambda record: record["parameters"].update(temperature={"value": -1, "tuple": False}),
    )
    with pytest.raises(ValueError, match=r"config\.json: .*'temperature'"):
        CWCLAligner.load(folder)


def test_config_that_does_not_match_the_weights_names_the_tensor(folder):
    edit_json(
        folder / "config.json",
        lambda record: record["parameters"].update(
            student__hidden_sizes={"value": [64], "tuple": True}
        ),
    )
    with pytest.raises(ValueError, match=r"student\.safetensors: tensor '.*' is float32 of shape"):
        CWCLAligner.load(folder)


def test_weights_of_the_wrong_shape_name_the_tensor(folder):
    def swap_first(tensors):
        name = next(iter(tensors))
        tensors[name] = torch.zeros(tensors[name].shape[0] + 1, *tensors[name].shape[1:])

    edit_tensors(folder / "student.safetensors", swap_first)
    with pytest.raises(ValueError, match=r"student\.safetensors: tensor .* of shape"):
        CWCLAligner.load(folder)


def test_nan_weights_name_the_tensor(folder):
    def poison(tensors):
        name = next(name for name, tensor in tensors.items() if tensor.is_floating_point())
        tensors[name] = torch.full_like(tensors[name], float("nan"))

    edit_tensors(folder / "student.safetensors", poison)
    with pytest.raises(ValueError, match=r"student\.safetensors: tensor .* NaN"):
        CWCLAligner.load(folder)


def test_truncated_weights_file_names_the_file(folder):
    truncate(folder / "student.safetensors", 100)
    with pytest.raises(ValueError, match=r"student\.safetensors: not a readable safetensors"):
        CWCLAligner.load(folder)


def test_missing_weights_file_names_it(folder):
    (folder / "student.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"student\.safetensors is missing"):
        CWCLAligner.load(folder)


def test_nan_candidate_embeddings_name_the_tensor(folder):
    def poison(tensors):
        tensors["candidate_embeddings"][0, 0] = float("nan")

    edit_tensors(folder / "candidates.safetensors", poison)
    with pytest.raises(ValueError, match=r"candidates\.safetensors: tensor 'candidate_embe"):
        CWCLAligner.load(folder)


def test_candidate_embeddings_of_another_width_name_the_field(folder):
    def widen(tensors):
        tensors["candidate_embeddings"] = torch.zeros(4, 9)

    edit_tensors(folder / "candidates.safetensors", widen)
    with pytest.raises(ValueError, match=r"candidate_embeddings' must be float32 of shape"):
        CWCLAligner.load(folder)


def test_shortened_candidate_texts_name_the_field(colour_data, tmp_path):
    X, labels, names = colour_data
    aligner = CWCLAligner(**FAST).fit(X, [names[label] for label in labels])
    aligner.save(tmp_path)
    edit_json(tmp_path / "fitted.json", lambda record: record["candidates_"].pop())
    with pytest.raises(ValueError, match=r"field 'candidates_' holds 2 texts, but"):
        CWCLAligner.load(tmp_path)


def test_damaged_load_of_checkpoint_leaves_the_aligner_unchanged(paired_features, folder):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(teacher="precomputed", **FAST).fit(X, teacher_embeddings)
    before = aligner.transform(X)
    edit_json(folder / "training.json", lambda record: record.update(base_seed="seven"))
    with pytest.raises(ValueError, match=r"training\.json: field 'base_seed' must be an int"):
        aligner.load_checkpoint(folder)
    np.testing.assert_array_equal(aligner.transform(X), before)
    assert len(aligner.history_) == FAST["max_epochs"]


def test_resume_from_a_checkpoint_with_a_missing_key_names_it(paired_features, folder):
    edit_json(folder / "training.json", lambda record: record.pop("epochs_done"))
    with pytest.raises(ValueError, match=r"training\.json: field 'epochs_done' is missing"):
        resume(folder, paired_features)


def test_failed_resume_leaves_the_aligner_unfitted(paired_features, folder):
    X, teacher_embeddings = paired_features
    (folder / "training.json").write_text("{")
    aligner = CWCLAligner(teacher="precomputed", **FAST)
    with pytest.raises(ValueError, match=r"training\.json: not valid JSON"):
        aligner.fit(X, teacher_embeddings, resume_from=folder)
    assert not hasattr(aligner, "student_")


def test_epoch_count_that_disagrees_with_the_history_names_both(paired_features, folder):
    edit_json(folder / "training.json", lambda record: record.update(epochs_done=5))
    with pytest.raises(ValueError, match=r"'epochs_done' is 5, but field 'history_'"):
        resume(folder, paired_features)


def test_optimizer_state_of_the_wrong_shape_names_the_field(paired_features, folder):
    state = torch.load(folder / "optimizer.pt", weights_only=True)
    state["state"][0]["exp_avg"] = torch.zeros(3)
    torch.save(state, folder / "optimizer.pt")
    with pytest.raises(ValueError, match=r"optimizer\.pt: field 'state\.0\.exp_avg' has shape"):
        resume(folder, paired_features)


def test_optimizer_state_with_nan_names_the_field(paired_features, folder):
    state = torch.load(folder / "optimizer.pt", weights_only=True)
    state["state"][0]["exp_avg_sq"].fill_(float("nan"))
    torch.save(state, folder / "optimizer.pt")
    with pytest.raises(ValueError, match=r"optimizer\.pt: tensor 'state\.0\.exp_avg_sq' .*NaN"):
        resume(folder, paired_features)


def test_optimizer_state_of_another_temperature_setting_names_the_groups(paired_features, folder):
    with pytest.raises(ValueError, match=r"optimizer\.pt: field 'param_groups'"):
        resume(folder, paired_features, learn_temperature=True, resume_mismatch="allow")


def test_unreadable_optimizer_state_names_the_file(paired_features, folder):
    (folder / "optimizer.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"optimizer\.pt: not a readable optimiser state"):
        resume(folder, paired_features)
