"""Images: input loading, the cnn and vit students, and image teachers (tiny ViT and CLIP)."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone

from cwcl_sk import CWCLAligner, ZeroShotClassifier
from cwcl_sk.encoders import make_teacher
from cwcl_sk.encoders.students.image import ImageCNN, VisionTransformerStudent
from cwcl_sk.encoders.teachers.image import ImageTeacher, is_vision_model
from cwcl_sk.encoders.teachers.text import bundled_minilm_path
from cwcl_sk.inputs import ImageItem, load_images

FAST = {"max_epochs": 2, "batch_size": 8, "device": "cpu", "random_state": 0, "verbose": 0}
SHAPES = ["bar", "ring", "cross"]
TINY_VIT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 48,
    "image_size": 8,
    "patch_size": 4,
}


def shape_images(n_images: int, seed: int = 0):
    """8x8 grayscale pictures of three shapes with noise, in [0, 1], and their names."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:8, :8]
    radius = np.hypot(rows - 3.5, columns - 3.5)
    masks = {
        "bar": (columns >= 3) & (columns <= 4),
        "ring": (radius > 2) & (radius < 3.5),
        "cross": (rows == columns) | (rows == 7 - columns),
    }
    names = [SHAPES[index % 3] for index in range(n_images)]
    images = np.stack([masks[name] * 0.9 for name in names]) + 0.1 * rng.random((n_images, 8, 8))
    return np.clip(images, 0, 1).astype(np.float32), names


@pytest.fixture(scope="module")
def images():
    return shape_images(18)


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    """A tiny randomly initialised ViT with its image processor, saved as a user's folder."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(0)
    ViTModel(ViTConfig(**TINY_VIT)).save_pretrained(folder)
    ViTImageProcessor(size={"height": 8, "width": 8}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A tiny CLIP vision tower with its projection, without an image processor."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    config = CLIPVisionConfig(**TINY_VIT, projection_dim=16)
    CLIPVisionModelWithProjection(config).save_pretrained(folder)
    return folder


# -- inputs ---------------------------------------------------------------------------------


def test_arrays_pil_images_and_files_load_to_the_same_pixels(tmp_path):
    pixels = (np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5).astype(np.uint8)
    path = tmp_path / "picture.png"
    Image.fromarray(pixels).save(path)
    from_array, from_pil, from_file = (
        load_images(X)[0] for X in ([pixels], [Image.fromarray(pixels)], [str(path)])
    )
    np.testing.assert_allclose(from_array, pixels / 255.0, atol=1e-6)
    np.testing.assert_array_equal(from_array, from_pil)
    np.testing.assert_array_equal(from_array, from_file)


def test_images_are_converted_to_the_mode_the_encoder_reads():
    gray = np.full((5, 6), 0.5)
    assert load_images([gray], mode="RGB")[0].shape == (5, 6, 3)
    rgba = np.zeros((5, 6, 4), dtype=np.uint8)
    assert load_images([rgba], mode="L")[0].shape == (5, 6, 1)
    assert [image.shape for image in load_images(np.zeros((3, 8, 8)), mode="L")] == [(8, 8, 1)] * 3


def test_image_items_are_equal_by_content_whatever_their_source(tmp_path):
    pixels = np.full((4, 4, 3), 255, dtype=np.uint8)
    first = ImageItem(load_images([pixels])[0])
    second = ImageItem(load_images([Image.fromarray(pixels)])[0])
    assert first == second and hash(first) == hash(second)
    assert np.asarray(first).shape == (4, 4, 3)


# -- cnn student ----------------------------------------------------------------------------


def test_cnn_student_fits_transforms_predicts_and_scores(images):
    X, names = images
    aligner = CWCLAligner(
        teacher="minilm", student="cnn", student__color_mode="L", student__widths=(8, 16), **FAST
    ).fit(X, names)
    assert isinstance(aligner.student_.encoder, ImageCNN)
    embeddings = aligner.transform(X)
    assert embeddings.shape == (18, 384) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert set(aligner.predict(X)) <= set(SHAPES)
    assert 0.0 <= aligner.score(X, names) <= 1.0
    classifier = ZeroShotClassifier(aligner, labels=dict(enumerate(SHAPES))).fit(X, [0, 1, 2] * 6)
    assert classifier.predict_proba(X).shape == (18, 3)


def test_cnn_student_resizes_images_of_different_sizes_when_asked(images):
    X, names = images
    mixed = [*X[:9], *np.kron(X[9:], np.ones((2, 2)))]  # half of them 16x16
    aligner = CWCLAligner(
        teacher="minilm", student="cnn", student__image_size=8, student__widths=(8,), **FAST
    ).fit(mixed, names)
    assert aligner.transform(mixed).shape == (18, 384)
    with pytest.raises(ValueError, match=r"X\[9\] is 16x16.*student__image_size"):
        CWCLAligner(teacher="minilm", student="cnn", **FAST).fit(mixed, names)


def test_fitted_cnn_aligner_clones_and_pickles(images):
    X, names = images
    aligner = CWCLAligner(
        teacher="minilm", student="cnn", student__widths=(8,), student__color_mode="L", **FAST
    ).fit(X, names)
    assert clone(aligner).get_params()["student__color_mode"] == "L"
    restored = pickle.loads(pickle.dumps(aligner))
    np.testing.assert_allclose(restored.transform(X), aligner.transform(X), atol=1e-6)


# -- vit student ----------------------------------------------------------------------------


def test_vit_student_loads_a_local_folder_with_its_processor(images, vit_folder):
    X, names = images
    aligner = CWCLAligner(
        teacher="minilm", student="vit", student__name_or_path=str(vit_folder), **FAST
    ).fit(X, names)
    assert isinstance(aligner.student_.encoder, VisionTransformerStudent)
    assert aligner.transform(X[:5]).shape == (5, 384)


def test_vit_student_random_init_takes_config_overrides(images):
    X, names = images
    aligner = CWCLAligner(
        teacher="minilm",
        student="vit",
        student__pretrained=False,
        student__num_channels=1,
        **{f"student__{name}": value for name, value in TINY_VIT.items()},
        **FAST,
    ).fit(X, names)
    config = aligner.student_.encoder.model.config
    assert (config.hidden_size, config.num_channels, config.image_size) == (32, 1, 8)
    assert aligner.transform(X).shape == (18, 384)


def test_vit_student_names_the_alternatives_for_an_uncached_hub_id(images):
    X, names = images
    aligner = CWCLAligner(
        teacher="minilm",
        student="vit",
        student__name_or_path="no-such-org/no-such-vit",
        student__pretrained=False,
        **FAST,
    )
    with pytest.raises(OSError, match="student__pretrained=False") as raised:
        aligner.fit(X, names)
    assert "student__name_or_path" in str(raised.value)


# -- image teachers -------------------------------------------------------------------------


def test_vision_folders_are_image_teachers_and_sentence_transformers_stay_text(
    vit_folder, clip_folder
):
    assert is_vision_model(str(vit_folder)) and is_vision_model(str(clip_folder))
    assert is_vision_model("image:some-org/some-vit")
    assert not is_vision_model(str(bundled_minilm_path()))
    assert not is_vision_model("some-org/some-text-model")


def test_image_teacher_embeds_and_caches_by_pixels(vit_folder, images):
    X, _ = images
    teacher = make_teacher(str(vit_folder), {})
    assert isinstance(teacher, ImageTeacher) and teacher.input_kind == "image"
    first = teacher.encode(X[:6])
    assert first.shape == (6, 32)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    encoded = teacher.n_encoded
    as_files = [Image.fromarray((image * 255).round().astype(np.uint8)) for image in X[:2]]
    again = make_teacher(str(vit_folder), {}).encode(X[:6])
    np.testing.assert_allclose(again, first, atol=1e-6)
    assert teacher.cache_key[1] == str(vit_folder.resolve())
    assert teacher.encode(as_files).shape == (2, 32) and teacher.n_encoded == encoded + 2


def test_clip_vision_teacher_uses_its_projection(clip_folder, images):
    X, _ = images
    teacher = make_teacher(str(clip_folder), {})
    assert teacher.encode(X[:3]).shape == (3, 16)  # projection_dim, not hidden_size


def test_image_student_against_an_image_teacher(vit_folder, images):
    X, _ = images
    # loss="clip": a random tiny ViT rates all images alike, so CWCL targets would be uniform.
    aligner = CWCLAligner(
        teacher=str(vit_folder), student="cnn", student__widths=(8,), **{**FAST, "loss": "clip"}
    ).fit(X, X)
    assert aligner.transform(X).shape == (18, 32)
    assert isinstance(aligner.predict(X[:2])[0], ImageItem)


def test_cnn_aligner_saves_and_loads(images, tmp_path):
    X, names = images
    aligner = CWCLAligner(
        teacher="minilm", student="cnn", student__widths=(8, 16), student__color_mode="L", **FAST
    ).fit(X, names)
    loaded = CWCLAligner.load(aligner.save(tmp_path / "saved"))
    np.testing.assert_allclose(loaded.transform(X), aligner.transform(X), atol=1e-6)
