"""Frozen teachers: the bundled MiniLM, precomputed embeddings, modules, and the cache."""

import numpy as np
import pytest
import torch

from cwcl_sk import CWCLAligner, clear_teacher_cache
from cwcl_sk.encoders import bundled_minilm_path, make_teacher
from cwcl_sk.encoders.teachers.frozen import FrozenModule
from cwcl_sk.encoders.teachers.text import load_sentence_transformer


def test_minilm_and_bert_aliases_are_the_bundled_minilm():
    minilm = make_teacher("minilm", {})
    bert = make_teacher("bert", {})
    assert minilm.cache_key == bert.cache_key
    assert minilm.dim == 384
    embeddings = minilm.encode(["seven", "eight", "set an alarm for six"])
    np.testing.assert_allclose(embeddings, bert.encode(["seven", "eight", "set an alarm for six"]))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # A real sentence encoder: number words are closer to each other than to a request.
    assert embeddings[0] @ embeddings[1] > embeddings[0] @ embeddings[2]


def test_bundled_model_folder_exists():
    assert (bundled_minilm_path() / "config.json").exists()


def test_teacher_model_is_frozen():
    teacher = make_teacher("minilm", {})
    model = teacher.model
    assert not model.training
    assert not any(parameter.requires_grad for parameter in model.parameters())


def test_repeated_texts_are_encoded_once():
    clear_teacher_cache()
    teacher = make_teacher("minilm", {})
    teacher.encode(["a cat", "a dog", "a cat", "a cat"])
    assert teacher.n_encoded == 2


def test_clones_share_the_embedding_cache():
    clear_teacher_cache()
    first = make_teacher("minilm", {})
    first.encode(["the first text", "the second text"])
    second = make_teacher("minilm", {})
    second.encode(["the second text", "the third text"])
    assert second.n_encoded == 1


def test_cached_embeddings_equal_fresh_ones():
    texts = ["caching must not change results", "nor their order"]
    clear_teacher_cache()
    fresh = make_teacher("minilm", {}).encode(texts)
    cached = make_teacher("minilm", {}).encode(texts[::-1])[::-1]
    np.testing.assert_array_equal(fresh, cached)


def test_models_are_loaded_once_per_process():
    path = str(bundled_minilm_path())
    assert load_sentence_transformer(path) is load_sentence_transformer(path)


def test_sentence_transformer_instance_is_accepted():
    model = load_sentence_transformer(str(bundled_minilm_path()))
    teacher = make_teacher(model, {})
    assert teacher.cache_key is None
    np.testing.assert_allclose(
        teacher.encode(["hello"]), make_teacher("minilm", {}).encode(["hello"]), atol=1e-6
    )


def test_local_folder_path_is_a_teacher():
    X = np.random.default_rng(0).normal(size=(6, 3))
    aligner = CWCLAligner(teacher=str(bundled_minilm_path()), max_epochs=1, device="cpu")
    aligner.fit(X, ["one", "two", "three", "one", "two", "three"])
    assert aligner.embedding_dim_ == 384


def test_unknown_hub_id_offline_names_alternatives():
    with pytest.raises(OSError, match=r"teacher='minilm'.*precomputed"):
        make_teacher("no-such-org/no-such-model", {}).encode(["text"])


def test_unknown_teacher_option_is_rejected():
    with pytest.raises(ValueError, match="teacher__pooling"):
        make_teacher("minilm", {"pooling": "max"})


def test_unsupported_teacher_type_is_rejected():
    with pytest.raises(TypeError, match="teacher must be"):
        make_teacher(42, {})


def test_precomputed_teacher_normalises_rows():
    teacher = make_teacher("precomputed", {})
    embeddings = teacher.encode(np.array([[3.0, 4.0], [0.0, 2.0]]))
    np.testing.assert_allclose(embeddings, [[0.6, 0.8], [0.0, 1.0]])


def test_precomputed_teacher_rejects_other_width_after_fit():
    teacher = make_teacher("precomputed", {})
    teacher.encode(np.ones((2, 3)))
    with pytest.raises(ValueError, match="width 4, expected 3"):
        teacher.encode(np.ones((2, 4)))


def test_precomputed_teacher_rejects_non_finite_rows():
    with pytest.raises(ValueError, match="NaN or inf"):
        make_teacher("precomputed", {}).encode(np.array([[1.0, np.inf]]))


def test_precomputed_teacher_rejects_zero_rows():
    with pytest.raises(ValueError, match="row 1 is all zeros"):
        make_teacher("precomputed", {}).encode(np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_frozen_module_stays_in_eval_mode():
    frozen = FrozenModule(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)))
    frozen.train()
    assert not frozen.training
    assert not frozen.module.training
    output = frozen(torch.ones(1, 2))
    assert not output.requires_grad


def test_shared_models_load_once_per_kind_source_and_device():
    from concurrent.futures import ThreadPoolExecutor

    from cwcl_sk.encoders.shared_models import load_shared

    calls = []

    def load():
        calls.append(1)
        return object()

    name = f"test-model-{id(calls)}"
    with ThreadPoolExecutor(4) as pool:
        models = list(pool.map(lambda _: load_shared("kind-a", name, "cpu", load), range(8)))
    assert len(calls) == 1
    assert all(model is models[0] for model in models)
    assert load_shared("kind-b", name, "cpu", load) is not models[0]
    assert load_shared("kind-a", name, "meta", load) is not models[0]
    assert len(calls) == 3
