"""scikit-learn's output API: feature names, set_output, tags and the notebook display."""

import copy
import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_html_repr

from cwcl_sk import CWCLAligner, ExpKernel, ZeroShotClassifier

pd = pytest.importorskip("pandas")


def _modules():
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh())
    student = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))
    return teacher, student


@pytest.fixture(scope="module")
def fitted_aligner(paired_features):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(teacher="precomputed", max_epochs=2, batch_size=16, random_state=0)
    return aligner.fit(X, teacher_embeddings), X


# -- feature names and set_output -----------------------------------------------------------


def test_feature_names_out_name_every_embedding_column(fitted_aligner):
    aligner, _ = fitted_aligner
    names = aligner.get_feature_names_out()
    assert names.tolist() == [f"cwclaligner{index}" for index in range(aligner.embedding_dim_)]


def test_feature_names_out_need_a_fit():
    with pytest.raises(NotFittedError):
        CWCLAligner().get_feature_names_out()


def test_set_output_pandas_gives_a_frame_of_the_embeddings(fitted_aligner):
    aligner, X = fitted_aligner
    frame = pd.DataFrame(X, index=[f"clip{index}" for index in range(len(X))])
    expected = aligner.transform(X)
    embeddings = copy.deepcopy(aligner).set_output(transform="pandas").transform(frame)
    assert isinstance(embeddings, pd.DataFrame)
    assert embeddings.columns.tolist() == aligner.get_feature_names_out().tolist()
    assert embeddings.index.tolist() == frame.index.tolist()
    np.testing.assert_array_equal(embeddings.to_numpy(), expected)


def test_set_output_pandas_applies_to_fit_transform(paired_features):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(teacher="precomputed", max_epochs=1, batch_size=16, random_state=0)
    embeddings = aligner.set_output(transform="pandas").fit_transform(X, teacher_embeddings)
    assert isinstance(embeddings, pd.DataFrame)
    assert embeddings.shape == (len(X), teacher_embeddings.shape[1])


def test_set_output_reaches_the_aligner_in_a_pipeline(paired_features):
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(teacher="precomputed", max_epochs=1, batch_size=16, random_state=0)
    pipeline = make_pipeline(StandardScaler(), aligner).set_output(transform="pandas")
    embeddings = pipeline.fit(X, teacher_embeddings).transform(X)
    assert embeddings.columns[0] == "cwclaligner0"
    assert pipeline.get_feature_names_out().tolist() == embeddings.columns.tolist()


def test_set_output_default_keeps_float32_arrays(fitted_aligner):
    aligner, X = fitted_aligner
    embeddings = copy.deepcopy(aligner).set_output(transform="default").transform(X)
    assert isinstance(embeddings, np.ndarray)
    assert embeddings.dtype == np.float32


# -- tags -----------------------------------------------------------------------------------


def test_tags_of_an_aligner_with_text_y():
    tags = CWCLAligner(teacher="minilm", student="mlp").__sklearn_tags__()
    # As scikit-learn's own transformers: the transformer tags mark it, not estimator_type.
    assert tags.transformer_tags is not None
    assert tags.target_tags.required
    assert tags.target_tags.one_d_labels
    assert not tags.target_tags.two_d_labels
    assert tags.transformer_tags.preserves_dtype == ["float32"]
    assert tags.input_tags.two_d_array
    assert not tags.input_tags.string


def test_tags_of_precomputed_teacher_embeddings_say_y_is_two_dimensional():
    tags = CWCLAligner(teacher="precomputed").__sklearn_tags__()
    assert tags.target_tags.two_d_labels
    assert not tags.target_tags.one_d_labels


@pytest.mark.parametrize(
    ("student", "two_d_array", "three_d_array", "string"),
    [
        ("mlp", True, False, False),
        ("mel-cnn", False, False, True),
        ("wav2vec2", False, False, True),
        ("whisper", False, False, True),
        ("cnn", False, True, True),
        ("vit", False, True, True),
        ("bert", False, False, True),
    ],
)
def test_input_tags_follow_what_the_student_reads(student, two_d_array, three_d_array, string):
    tags = CWCLAligner(student=student).__sklearn_tags__().input_tags
    assert (tags.two_d_array, tags.three_d_array, tags.string) == (
        two_d_array,
        three_d_array,
        string,
    )


def test_module_student_reads_feature_rows():
    tags = CWCLAligner(student=_modules()[1]).__sklearn_tags__().input_tags
    assert tags.two_d_array
    assert not tags.string


def test_classifier_takes_the_input_tags_of_its_aligner():
    classifier = ZeroShotClassifier(CWCLAligner(student="mel-cnn"))
    tags = classifier.__sklearn_tags__()
    assert tags.estimator_type == "classifier"
    assert not tags.input_tags.two_d_array
    assert tags.input_tags.string


# -- text and HTML display ------------------------------------------------------------------


def _assert_readable(text: str, *summaries: str) -> None:
    """Every summary is shown, and no layer of a module's printout."""
    for summary in summaries:
        assert summary in text
    assert "Linear(" not in text
    assert "in_features" not in text


def test_repr_of_module_teacher_and_student_is_one_line_each():
    teacher, student = _modules()
    aligner = CWCLAligner(teacher=teacher, student=student, kernel=ExpKernel(kappa=0.05))
    text = repr(aligner)
    _assert_readable(
        text,
        "teacher=<Sequential: 32 parameters>",
        "student=<Sequential: 392 parameters>",
        "kernel=ExpKernel(kappa=0.05)",
    )
    assert "\n" not in text


def test_repr_of_a_classifier_summarises_its_aligner_modules():
    teacher, student = _modules()
    text = repr(ZeroShotClassifier(CWCLAligner(teacher=teacher, student=student)))
    _assert_readable(text, "student=<Sequential: 392 parameters>")


def test_repr_summarises_a_kernel_matrix():
    text = repr(CWCLAligner(teacher="precomputed", kernel=np.eye(30)))
    assert "kernel=<ndarray of shape (30, 30)>" in text


def test_repr_of_aliases_is_unchanged():
    assert repr(CWCLAligner()) == "CWCLAligner()"
    expected = "CWCLAligner(student='mel-cnn', student__n_mels=20, teacher='bert')"
    assert repr(CWCLAligner("bert", "mel-cnn", student__n_mels=20)) == expected


def test_display_leaves_the_parameters_themselves_alone():
    teacher, student = _modules()
    aligner = CWCLAligner(teacher=teacher, student=student)
    repr(aligner)
    estimator_html_repr(aligner)
    assert aligner.get_params()["teacher"] is teacher
    assert aligner.get_params()["student"] is student
    assert isinstance(clone(aligner).student, torch.nn.Sequential)


def _visible_text(html: str) -> str:
    """The text a notebook shows of an HTML diagram (the parameter table's rows included)."""
    text = re.sub(r"<[^>]+>", " ", html[html.index("</style>") :])
    text = re.sub(r"\s+", " ", text)
    return text


def test_html_diagram_shows_teacher_student_and_kernel_readably(paired_features):
    student = _modules()[1]
    X, teacher_embeddings = paired_features
    aligner = CWCLAligner(
        teacher="precomputed", student=student, kernel=ExpKernel(kappa=0.05), max_epochs=1
    )
    aligner.fit(X[:, :3], teacher_embeddings)
    _assert_readable(
        _visible_text(estimator_html_repr(aligner)),
        "teacher &#x27;precomputed&#x27;",
        "student &lt;Sequential: 392 parameters&gt;",
        "kernel ExpKernel(kappa=0.05)",
    )


def test_html_diagram_of_a_classifier_nests_a_readable_aligner():
    teacher, student = _modules()
    classifier = ZeroShotClassifier(CWCLAligner(teacher=teacher, student=student))
    _assert_readable(
        _visible_text(estimator_html_repr(classifier)),
        "CWCLAligner",
        "teacher &lt;Sequential: 32 parameters&gt;",
    )
