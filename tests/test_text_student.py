"""Text students, the LiT direction: a trainable text model aligned to a frozen image teacher."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from test_images import TINY_VIT, shape_images

from cwcl_sk import CWCLAligner
from cwcl_sk.encoders.registry import make_student, student_inputs
from cwcl_sk.encoders.students.text import TransformerTextStudent
from cwcl_sk.encoders.teachers.text import bundled_minilm_path
from cwcl_sk.inputs import ImageItem

# loss="clip": a random tiny ViT rates all images alike, so CWCL targets would be uniform.
FAST = {"max_epochs": 2, "batch_size": 6, "loss": "clip", "device": "cpu", "random_state": 0}
TINY_BERT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 48,
    "max_position_embeddings": 64,
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny ViT (the image teacher) and a tiny BERT with MiniLM's tokenizer, by path."""
    from transformers import AutoTokenizer, BertConfig, BertModel, ViTConfig, ViTModel

    torch.manual_seed(0)
    vit = tmp_path_factory.mktemp("tiny-vit-teacher")
    ViTModel(ViTConfig(**TINY_VIT)).save_pretrained(vit)
    bert = tmp_path_factory.mktemp("tiny-bert")
    BertModel(BertConfig(**TINY_BERT)).save_pretrained(bert)
    AutoTokenizer.from_pretrained(bundled_minilm_path()).save_pretrained(bert)
    return {"vit": str(vit), "bert": str(bert)}


@pytest.fixture(scope="module")
def pairs():
    images, names = shape_images(12)
    return [f"a picture of a {name}" for name in names], images


def test_text_student_fits_captions_to_an_image_teacher(folders, pairs):
    captions, images = pairs
    aligner = CWCLAligner(
        teacher=folders["vit"], student="bert", student__name_or_path=folders["bert"], **FAST
    ).fit(captions, images)
    assert isinstance(aligner.student_.encoder, TransformerTextStudent)
    embeddings = aligner.transform(captions)
    assert embeddings.shape == (12, 32) and embeddings.dtype == np.float32
    predicted = aligner.predict(captions[:3])
    assert predicted.shape == (3,) and isinstance(predicted[0], ImageItem)
    assert np.asarray(predicted[0]).shape == (8, 8, 3)
    assert 0.0 <= aligner.score(captions, images) <= 1.0


def test_text_student_random_init_takes_config_overrides(folders, pairs):
    captions, images = pairs
    aligner = CWCLAligner(
        teacher=folders["vit"],
        student="text",
        student__pretrained=False,
        student__max_length=8,
        **{f"student__{name}": value for name, value in TINY_BERT.items()},
        **FAST,
    ).fit(captions, images)
    config = aligner.student_.encoder.model.config
    assert (config.hidden_size, config.num_hidden_layers) == (32, 2)
    # the encoder's width equals the teacher's: no projection head is needed
    assert isinstance(aligner.student_.projection, torch.nn.Identity)


def test_fitted_text_student_aligner_clones_and_pickles(folders, pairs):
    captions, images = pairs
    aligner = CWCLAligner(
        teacher=folders["vit"],
        student="bert",
        student__name_or_path=folders["bert"],
        student__trainable_layers=1,
        **FAST,
    ).fit(captions, images)
    assert clone(aligner).get_params()["student__trainable_layers"] == 1
    restored = pickle.loads(pickle.dumps(aligner))
    np.testing.assert_allclose(restored.transform(captions), aligner.transform(captions), atol=1e-6)


def test_bert_student_defaults_to_the_bundled_minilm():
    inputs = student_inputs("bert")
    data = inputs.prepare(["a red square", "a blue circle"])
    encoder = make_student("bert", data, 16, {})
    assert encoder.model.config.num_hidden_layers == 6
    assert encoder(inputs.collate(data, [0, 1])).shape == (2, 384)


def test_text_student_rejects_bad_texts_by_index(folders, pairs):
    captions, images = pairs
    aligner = CWCLAligner(
        teacher=folders["vit"], student="bert", student__name_or_path=folders["bert"], **FAST
    )
    with pytest.raises(TypeError, match=r"X\[1\]"):
        aligner.fit([captions[0], 3, *captions[2:]], images)
    with pytest.raises(ValueError, match=r"y\[0\] has float pixels"):
        aligner.fit(captions, images * 255)


def test_text_student_aligner_saves_and_loads_with_its_image_candidates(folders, pairs, tmp_path):
    captions, images = pairs
    aligner = CWCLAligner(
        teacher=folders["vit"], student="bert", student__name_or_path=folders["bert"], **FAST
    ).fit(captions, images)
    loaded = CWCLAligner.load(aligner.save(tmp_path / "saved"))
    np.testing.assert_allclose(loaded.transform(captions), aligner.transform(captions), atol=1e-6)
    assert list(loaded.predict(captions)) == list(aligner.predict(captions))


@pytest.mark.parametrize(("trainable_layers", "has_head"), [(0, True), (1, False)])
def test_fully_frozen_student_as_wide_as_the_teacher_gets_a_trained_head(
    folders, pairs, trainable_layers, has_head
):
    # The tiny ViT teacher and the tiny BERT student are both 32 wide: without the head, a
    # student with every layer frozen would have next to nothing left to train.
    captions, images = pairs
    aligner = CWCLAligner(
        teacher=folders["vit"],
        student="bert",
        student__name_or_path=folders["bert"],
        student__trainable_layers=trainable_layers,
        **FAST,
    ).fit(captions, images)
    trainable = {
        name for name, parameter in aligner.student_.named_parameters() if parameter.requires_grad
    }
    assert ("projection.weight" in trainable) is has_head
    if has_head:
        assert not any(".layer." in name for name in trainable)
        assert aligner.history_[-1]["train_loss"] < aligner.history_[0]["train_loss"]
