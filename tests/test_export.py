"""ONNX export: one graph from the student's input features to embeddings or class scores."""

import doctest
import json

import numpy as np
import pytest
import torch
from _helpers import load_benchmark
from sklearn.exceptions import NotFittedError
from test_images import TINY_VIT, shape_images
from test_speech_students import TINY_WAV2VEC2, TINY_WHISPER, _clips

import cwcl_sk.export
from cwcl_sk import CWCLAligner, ZeroShotClassifier, export_onnx, onnx_inputs

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOLERANCE = 1e-4


def _session(path):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _classifier(student, X, words, **options):
    aligner = CWCLAligner(
        teacher="bert", student=student, max_epochs=2, batch_size=8, random_state=0, **options
    )
    labels = {word: word for word in sorted(set(words))}
    return ZeroShotClassifier(aligner, labels=labels).fit(X, words)


def _colour_features(n_samples, seed):
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, size=n_samples)
    X = np.eye(3)[classes] * 3 + 0.2 * rng.normal(size=(n_samples, 3))
    return X.astype(np.float32), [["red", "green", "blue"][index] for index in classes]


# Per student: its options, (training inputs, words) and held-out inputs, all small.
CASES = {
    "mlp": ({"student__hidden_sizes": (16,)}, _colour_features(30, 0), _colour_features(7, 1)[0]),
    "cnn": ({"student__widths": (8, 16)}, shape_images(18), shape_images(5, seed=1)[0]),
    "mel-cnn": ({"student__channels": 16}, _clips(12), _clips(5, seed=1)[0]),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def exported_classifier(request, tmp_path_factory):
    """A fitted classifier of each student, its ONNX file, and held-out inputs."""
    options, (X, words), held_out = CASES[request.param]
    classifier = _classifier(request.param, X, words, **options)
    path = tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx"
    return classifier, export_onnx(classifier, path, X[:3]), held_out


def test_exported_classifier_gives_the_classes_and_scores_of_predict(exported_classifier):
    classifier, path, held_out = exported_classifier
    scores, probabilities = _session(path).run(None, onnx_inputs(classifier, held_out))
    expected_scores = classifier.aligner_.transform(held_out) @ classifier.class_embeddings_.T
    np.testing.assert_allclose(scores, expected_scores, atol=TOLERANCE)
    np.testing.assert_allclose(probabilities, classifier.predict_proba(held_out), atol=TOLERANCE)
    predicted = classifier.classes_[np.argmax(scores, axis=1)]
    np.testing.assert_array_equal(predicted, classifier.predict(held_out))


def test_exported_classifier_takes_any_batch_size(exported_classifier):
    classifier, path, held_out = exported_classifier
    session = _session(path)
    for batch in (held_out[:1], held_out[:4]):
        _, probabilities = session.run(None, onnx_inputs(classifier, batch))
        np.testing.assert_allclose(probabilities, classifier.predict_proba(batch), atol=TOLERANCE)


def test_graph_names_its_inputs_and_outputs_with_a_free_batch_size(exported_classifier):
    classifier, path, held_out = exported_classifier
    session = _session(path)
    inputs = onnx_inputs(classifier, held_out)
    assert [node.name for node in session.get_inputs()] == list(inputs)
    assert [node.name for node in session.get_outputs()] == ["scores", "probabilities"]
    for node in [*session.get_inputs(), *session.get_outputs()]:
        assert isinstance(node.shape[0], str), (node.name, node.shape)
    assert session.get_outputs()[0].shape[1] == len(classifier.classes_)


def test_mel_cnn_graph_scores_clips_longer_than_the_traced_ones(tmp_path):
    options, (X, words), _ = CASES["mel-cnn"]
    classifier = _classifier("mel-cnn", X, words, **options)
    short_clips = [clip[:2000] for clip in X[:2]]
    path = export_onnx(classifier, tmp_path / "mel-cnn.onnx", short_clips)
    long_clips = [np.tile(clip, 3) for clip in X[:3]]  # 0.3 to 1.5 s, several times longer
    inputs = onnx_inputs(classifier, long_clips)
    assert inputs["features"].shape[1] > onnx_inputs(classifier, short_clips)["features"].shape[1]
    _, probabilities = _session(path).run(None, inputs)
    np.testing.assert_allclose(probabilities, classifier.predict_proba(long_clips), atol=TOLERANCE)


@pytest.fixture(scope="module")
def precomputed_aligner(paired_features):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(teacher="precomputed", max_epochs=3, batch_size=16, random_state=0)
    return aligner.fit(X[:40], teacher_embeddings[:40]), X[40:]


def test_exported_aligner_gives_the_embeddings_of_transform(precomputed_aligner, tmp_path):
    aligner, held_out = precomputed_aligner
    path = export_onnx(aligner, tmp_path / "aligner.onnx", held_out[:2])
    session = _session(path)
    assert [node.name for node in session.get_outputs()] == ["embeddings"]
    (embeddings,) = session.run(None, onnx_inputs(aligner, held_out))
    np.testing.assert_allclose(embeddings, aligner.transform(held_out), atol=TOLERANCE)


def test_export_leaves_the_fitted_student_alone(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(teacher="precomputed", max_epochs=1, random_state=0)
    aligner.fit(X, teacher_embeddings)
    student = aligner.student_.train()
    weights = {name: value.clone() for name, value in student.state_dict().items()}
    export_onnx(aligner, tmp_path / "aligner.onnx", X[:2])
    assert aligner.student_ is student
    assert student.training
    for name, value in student.state_dict().items():
        torch.testing.assert_close(value, weights[name], rtol=0, atol=0)


def test_onnx_inputs_are_the_features_the_student_reads(precomputed_aligner):
    aligner, held_out = precomputed_aligner
    inputs = onnx_inputs(aligner, held_out)
    assert list(inputs) == ["features"]
    np.testing.assert_array_equal(inputs["features"], held_out.astype(np.float32))


def test_onnx_inputs_check_the_number_of_features(precomputed_aligner):
    aligner, held_out = precomputed_aligner
    with pytest.raises(ValueError, match="X has 2 features, but CWCLAligner is expecting 6"):
        onnx_inputs(aligner, held_out[:, :2])


def test_mel_cnn_spectrograms_are_computed_outside_the_graph():
    options, (X, words), _ = CASES["mel-cnn"]
    aligner = _classifier("mel-cnn", X, words, **options).aligner_
    inputs = onnx_inputs(aligner, X[:2])
    assert list(inputs) == ["features", "attention_mask"]
    assert inputs["features"].shape[2] == 40  # log-mel bands, padded to the longer clip
    frames = [1 + len(clip) // 160 for clip in X[:2]]  # a frame every 10 ms at 16 kHz
    np.testing.assert_array_equal(inputs["attention_mask"].sum(axis=1), frames)


def test_fixed_length_graph_keeps_the_traced_length(tmp_path):
    options, (X, words), _ = CASES["mel-cnn"]
    classifier = _classifier("mel-cnn", X, words, **options)
    path = export_onnx(classifier, tmp_path / "fixed.onnx", X[:2], dynamic_length=False)
    features = _session(path).get_inputs()[0]
    assert isinstance(features.shape[0], str)
    assert features.shape[1:] == list(onnx_inputs(classifier, X[:2])["features"].shape[1:])


TINY_TEXT_MODEL = {
    "student__pretrained": False,
    "student__num_hidden_layers": 1,
    "student__hidden_size": 32,
    "student__num_attention_heads": 2,
    "student__intermediate_size": 48,
}


@pytest.mark.slow
def test_tiny_vit_and_text_students_export_too(tmp_path):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    ViTModel(ViTConfig(**TINY_VIT)).save_pretrained(tmp_path / "vit")
    ViTImageProcessor(size={"height": 8, "width": 8}).save_pretrained(tmp_path / "vit")
    images, shapes = shape_images(12)
    captions = ["a red car", "a small dog", "blue sky at noon"] * 4
    cases = [
        (
            "vit",
            images,
            shapes,
            shape_images(4, seed=1)[0],
            {"student__name_or_path": tmp_path / "vit"},
        ),
        ("bert", captions, ["car", "dog", "sky"] * 4, ["one red car", "a dog"], TINY_TEXT_MODEL),
    ]
    for student, X, words, held_out, options in cases:
        classifier = _classifier(student, X, words, **options)
        path = export_onnx(classifier, tmp_path / f"{student}.onnx", X[:3])
        _, probabilities = _session(path).run(None, onnx_inputs(classifier, held_out))
        np.testing.assert_allclose(
            probabilities, classifier.predict_proba(held_out), atol=TOLERANCE, err_msg=student
        )


def test_whisper_student_is_refused_with_the_reason(tmp_path):
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    WhisperModel(WhisperConfig(**TINY_WHISPER)).save_pretrained(tmp_path / "whisper")
    WhisperFeatureExtractor(feature_size=40).save_pretrained(tmp_path / "whisper")
    clips, words = _clips(6)
    classifier = _classifier("whisper", clips, words, student__name_or_path=tmp_path / "whisper")
    with pytest.raises(ValueError, match=r"Cannot export student='whisper' to ONNX: .*clip by"):
        export_onnx(classifier, tmp_path / "whisper.onnx", clips[:2])
    assert not (tmp_path / "whisper.onnx").exists()


def test_wav2vec2_student_export_failure_names_the_student_and_why(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(**TINY_WAV2VEC2)).save_pretrained(tmp_path / "wav2vec2")
    clips, words = _clips(6)
    classifier = _classifier("wav2vec2", clips, words, student__name_or_path=tmp_path / "wav2vec2")
    with pytest.raises(ValueError, match=r"student='wav2vec2' to ONNX: .*clip by clip"):
        export_onnx(classifier, tmp_path / "wav2vec2.onnx", clips[:2])


def test_wav2vec2_student_with_layer_norm_exports(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    # Layer norm runs the feature encoder on the padded batch; group norm (wav2vec2-base)
    # runs it clip by clip and is refused above. One layer keeps the export short.
    config = Wav2Vec2Config(
        **{**TINY_WAV2VEC2, "num_hidden_layers": 1},
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    torch.manual_seed(0)
    Wav2Vec2Model(config).save_pretrained(tmp_path / "wav2vec2")
    clips, words = _clips(6)
    classifier = _classifier("wav2vec2", clips, words, student__name_or_path=tmp_path / "wav2vec2")
    path = export_onnx(classifier, tmp_path / "wav2vec2.onnx", clips[:2])
    held_out, _ = _clips(5, seed=1)  # other lengths than the traced clips
    _, probabilities = _session(path).run(None, onnx_inputs(classifier, held_out))
    np.testing.assert_allclose(probabilities, classifier.predict_proba(held_out), atol=TOLERANCE)


def test_unfitted_estimator_is_refused(tmp_path):
    with pytest.raises(NotFittedError):
        export_onnx(ZeroShotClassifier(CWCLAligner()), tmp_path / "model.onnx", np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        onnx_inputs(CWCLAligner(), np.zeros((2, 3)))


def test_other_estimators_are_refused_by_name(tmp_path):
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="CWCLAligner or ZeroShotClassifier, got LogisticRegr"):
        export_onnx(LogisticRegression(), tmp_path / "model.onnx", np.zeros((2, 3)))


def test_bad_dynamic_length_is_named(precomputed_aligner, tmp_path):
    aligner, held_out = precomputed_aligner
    with pytest.raises(TypeError, match="dynamic_length must be True or False, got 'yes'"):
        export_onnx(aligner, tmp_path / "aligner.onnx", held_out, dynamic_length="yes")


def test_docstring_examples_run():
    results = doctest.testmod(cwcl_sk.export)
    assert results.attempted > 0
    assert results.failed == 0


def test_latency_benchmark_writes_its_json(tmp_path):
    benchmark = load_benchmark("onnx_latency")
    arguments = ["--students", "mlp", "--repeats", "1", "--epochs", "1", "--out", str(tmp_path)]
    result = benchmark.main(arguments)
    written = json.loads((tmp_path / "onnx_latency.json").read_text())
    assert {key: written[key] for key in result} == json.loads(json.dumps(result))
    assert written["schema"] == 1 and written["provenance"]["source"] == "run"
    assert written["command"] == "python -m benchmarks.onnx_latency " + " ".join(arguments)
    assert [row["batch_size"] for row in written["summary"]] == [1, 32]
    for row in written["summary"]:
        assert row["onnx_model_ms_per_input"] > 0
        assert row["torch_model_ms_per_input"] > 0
        assert row["same_classes"]
        assert row["max_abs_probability_difference"] < TOLERANCE
