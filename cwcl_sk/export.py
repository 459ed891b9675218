"""Export a fitted estimator's student to ONNX, for serving without PyTorch or this library.

The graph starts at the student's input features, the tensors that the student's input
handler makes from raw inputs (:func:`onnx_inputs` makes them), and ends at the estimator's
output: unit-norm embeddings for a :class:`~cwcl_sk.CWCLAligner` (``transform``), or, for a
:class:`~cwcl_sk.ZeroShotClassifier`, the cosine similarity of each input to each class and
the class probabilities, with the label embeddings stored in the graph as constants.

Loading, resampling, log-mel spectrograms, image resizing and tokenisation stay outside the
graph (they run in NumPy, librosa, Pillow or a tokenizer); standardisation with the training
statistics, the network and the projection are inside it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .encoders import EmbeddingModel
from .encoders.students._transformers import masked_mean
from .encoders.students.audio import MelCNN

__all__ = ["export_onnx", "onnx_inputs"]

# Axis 1 of these inputs is a length that varies between batches: samples of a waveform,
# frames of a spectrogram, tokens of a text.
_LENGTH_INPUTS = ("input_values", "attention_mask", "input_ids")
_FRAME_INPUTS = ("features",)

# Students whose forward pass depends on the values of its inputs (clip lengths read to the
# host), which torch.export cannot trace into one graph: refused before tracing.
_NOT_EXPORTABLE = {
    "whisper": (
        "its forward pass cuts every clip to its own length and computes the log-mel "
        "spectrogram clip by clip on the host (and may read frozen activations from a cache), "
        "so the graph would depend on the values of the input, not only on its shape"
    ),
}
# Why the exporter fails on students it is still given a try on (a later version of the
# student may trace): said beside the exporter's own reason.
_KNOWN_OBSTACLES = {
    name: (
        "with feat_extract_norm='group' (wav2vec2-base) its forward pass runs the feature "
        "encoder clip by clip; feat_extract_norm='layer' exports"
    )
    for name in ("wav2vec2", "hubert")
}


def onnx_inputs(estimator, X) -> dict[str, np.ndarray]:
    """The inputs of an exported graph for raw inputs ``X``: the preprocessing outside it.

    Runs the student's own input handler (loading, resampling, log-mel spectrograms, image
    resizing or tokenisation, as in ``transform``) and pads the batch as the student does.

    Parameters
    ----------
    estimator : CWCLAligner or ZeroShotClassifier
        Fitted.
    X : array-like
        Inputs of the student's modality, as for ``transform`` or ``predict``.

    Returns
    -------
    inputs : dict of str to ndarray
        One array per graph input, by name: ``"features"`` for feature rows (and the
        log-mel spectrograms of ``"mel-cnn"``, with ``"attention_mask"``),
        ``"pixel_values"`` for images, ``"input_values"`` and ``"attention_mask"`` for
        waveforms. Pass it to ``onnxruntime.InferenceSession.run``.

    Examples
    --------
    >>> import numpy as np
    >>> from cwcl_sk import CWCLAligner, onnx_inputs
    >>> rng = np.random.default_rng(0)
    >>> aligner = CWCLAligner(teacher="precomputed", max_epochs=1, random_state=0)
    >>> aligner = aligner.fit(rng.normal(size=(8, 3)), rng.normal(size=(8, 4)))
    >>> {name: array.shape for name, array in onnx_inputs(aligner, np.ones((2, 3))).items()}
    {'features': (2, 3)}
    """
    aligner = _fitted_aligner(estimator)
    inputs = aligner._student_inputs()
    data = inputs.prepare(X, "X")
    aligner._check_n_features(data, inputs)
    batch = _as_named_tensors(inputs.collate(data, np.arange(len(data))))
    return {name: tensor.numpy() for name, tensor in batch.items()}


def export_onnx(estimator, path, X, *, dynamic_length: bool = True, opset_version=None):
    """Write a fitted aligner's ``transform`` or classifier's scores as one ONNX graph.

    Like ``torch.onnx.export`` (or skl2onnx's ``to_onnx(model, X)``), the graph is traced on
    example inputs ``X``; the batch size is a free dimension of every input and output.

    Parameters
    ----------
    estimator : CWCLAligner or ZeroShotClassifier
        Fitted. An aligner's graph outputs ``"embeddings"`` (n_samples, embedding_dim), unit
        norm, as :meth:`CWCLAligner.transform`. A classifier's graph outputs ``"scores"``
        (n_samples, n_classes), the cosine similarity of each input to each class (the
        predicted class is ``classes_[argmax]``; for two classes ``decision_function`` is
        their difference) and ``"probabilities"``, as :meth:`ZeroShotClassifier.predict_proba`.
        The class embeddings and the temperature are constants of the graph.
    path : str or path-like
        The ``.onnx`` file to write (weights included).
    X : array-like
        A few raw inputs of the student's modality to trace the graph with (at least one;
        clips of different lengths for audio students).
    dynamic_length : bool, default=True
        For waveforms, spectrograms and token ids, make the length (axis 1) a free
        dimension too, so that clips of any length can be scored; False fixes it to the
        padded length of ``X``. Images always keep the size of the training images.
    opset_version : int, optional
        ONNX opset; None lets the exporter choose.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When the estimator is not fitted.
    TypeError
        When ``estimator`` is not a CWCLAligner or ZeroShotClassifier.
    ValueError
        When the student cannot be exported, naming it and why (the ``"whisper"`` student;
        a module whose forward pass the exporter cannot trace).

    See Also
    --------
    onnx_inputs : the graph's inputs for raw inputs.

    Examples
    --------
    >>> import numpy as np, onnxruntime, tempfile, os
    >>> from cwcl_sk import CWCLAligner, export_onnx, onnx_inputs
    >>> rng = np.random.default_rng(0)
    >>> X, embeddings = rng.normal(size=(16, 3)), rng.normal(size=(16, 4))
    >>> aligner = CWCLAligner(teacher="precomputed", max_epochs=1, random_state=0).fit(
    ...     X, embeddings)
    >>> path = export_onnx(aligner, os.path.join(tempfile.mkdtemp(), "aligner.onnx"), X[:2])
    >>> session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    >>> (embedding,) = session.run(None, onnx_inputs(aligner, X))
    >>> bool(np.allclose(embedding, aligner.transform(X), atol=1e-5))
    True
    """
    aligner = _fitted_aligner(estimator)
    student_name = _student_name(aligner)
    if student_name in _NOT_EXPORTABLE:
        raise ValueError(
            f"Cannot export student={student_name!r} to ONNX: {_NOT_EXPORTABLE[student_name]}. "
            "Exportable students: 'mlp', 'mel-cnn', 'cnn', 'vit', 'bert' and 'text', and "
            "modules that the exporter can trace."
        )
    if not isinstance(dynamic_length, bool | np.bool_):
        raise TypeError(f"dynamic_length must be True or False, got {dynamic_length!r}.")
    example = onnx_inputs(estimator, X)
    names = list(example)
    # A copy on the CPU: the fitted student stays on its device, in its mode.
    student = copy.deepcopy(aligner.student_).cpu().eval()
    graph = _ScoringGraph(student, names, _head(estimator))
    args = tuple(_tracing_batch(torch.from_numpy(example[name])) for name in names)
    path = Path(path)
    try:
        program = _run_exporter(graph, args, names, dynamic_length, opset_version)
    except Exception as error:
        obstacle = _KNOWN_OBSTACLES.get(
            student_name, "the exporter could not trace its forward pass"
        )
        raise ValueError(
            f"Cannot export student={student_name!r} to ONNX: {obstacle} "
            f"(torch.onnx.export: {_first_line(error)})."
        ) from error
    program.save(str(path))
    return path


class _ScoringGraph(nn.Module):
    """Named input tensors -> the student's embeddings -> the estimator's head."""

    def __init__(self, student: EmbeddingModel, input_names: list[str], head: nn.Module):
        super().__init__()
        self.student = student
        self.input_names = list(input_names)
        self.head = head
        self.output_names = head.output_names

    def forward(self, *tensors):
        batch = dict(zip(self.input_names, tensors, strict=True))
        if self.input_names == ["features"]:
            batch = tensors[0]  # feature students read a bare tensor
        return self.head(_embed(self.student, batch))


def _embed(student: EmbeddingModel, batch) -> torch.Tensor:
    """The student's eval-mode embeddings of a batch, in operations the exporter can trace."""
    if not isinstance(student.encoder, MelCNN):
        return student(batch)
    # MelCNN.forward reads the clip lengths to the host to encode length-sorted groups; padded
    # at once, the batch gives the same embeddings (padded frames are masked in every layer).
    encoder = student.encoder
    mask = batch["attention_mask"].bool()  # (batch, frames)
    features = (batch["features"] - encoder.feature_mean) / encoder.feature_scale
    if encoder.normalize == "utterance":
        features = features - masked_mean(features, mask).unsqueeze(1)
    features = features * mask.unsqueeze(-1)  # (batch, frames, n_mels)
    pooled = encoder._encode(features, mask.sum(dim=1))  # (batch, channels)
    return nn.functional.normalize(student.projection(pooled).float(), dim=-1)


class _Embeddings(nn.Module):
    """The aligner's head: the embeddings themselves."""

    output_names = ("embeddings",)

    def forward(self, embeddings):
        return embeddings


class _ClassScores(nn.Module):
    """The classifier's head: cosine similarities to the class embeddings and the softmax."""

    output_names = ("scores", "probabilities")

    def __init__(self, class_embeddings: np.ndarray, temperature: float):
        super().__init__()
        # (n_classes, dim) unit rows: constants of the graph
        self.register_buffer("class_embeddings", torch.as_tensor(class_embeddings).float())
        self.temperature = float(temperature)

    def forward(self, embeddings):
        scores = embeddings @ self.class_embeddings.T  # (batch, n_classes)
        return scores, torch.softmax(scores / self.temperature, dim=1)


def _head(estimator) -> nn.Module:
    if not hasattr(estimator, "class_embeddings_"):
        return _Embeddings()
    temperature = estimator.temperature
    if temperature is None:
        temperature = getattr(estimator.aligner_, "temperature_", 0.07)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}.")
    return _ClassScores(estimator.class_embeddings_, temperature)


def _fitted_aligner(estimator):
    """The fitted aligner behind ``estimator``, with a clear error for anything else."""
    from .aligner import CWCLAligner
    from .zero_shot import ZeroShotClassifier

    if isinstance(estimator, ZeroShotClassifier):
        check_is_fitted(estimator, "class_embeddings_")
        return estimator.aligner_
    if isinstance(estimator, CWCLAligner):
        check_is_fitted(estimator, "student_")
        return estimator
    raise TypeError(
        "estimator must be a fitted CWCLAligner or ZeroShotClassifier, got "
        f"{type(estimator).__name__}."
    )


def _student_name(aligner) -> str:
    student = aligner.student
    return student if isinstance(student, str) else type(student).__name__


def _as_named_tensors(batch) -> dict[str, torch.Tensor]:
    """A collated batch (a tensor for feature rows, else a dict) as named tensors."""
    if isinstance(batch, torch.Tensor):
        return {"features": batch}
    return dict(batch)


def _tracing_batch(tensor: torch.Tensor) -> torch.Tensor:
    """At least two rows: the exporter would fix a batch dimension of size 1 to 1."""
    return tensor if len(tensor) > 1 else torch.cat([tensor, tensor])


def _dynamic_shapes(args, names, dynamic_length: bool) -> tuple:
    batch = torch.export.Dim.DYNAMIC
    shapes = []
    for name, tensor in zip(names, args, strict=True):
        shape = {0: batch}
        variable_length = name in _LENGTH_INPUTS or (name in _FRAME_INPUTS and tensor.ndim == 3)
        if dynamic_length and variable_length:
            shape[1] = torch.export.Dim.DYNAMIC
        shapes.append(shape)
    return tuple(shapes)


def _run_exporter(graph, args, names, dynamic_length: bool, opset_version):
    # The exporter reports its progress on stdout and warns about operators of packages that
    # are not installed (torchvision); neither concerns the user of a finished export.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return torch.onnx.export(
            graph,
            args,
            dynamo=True,
            input_names=names,
            output_names=list(graph.output_names),
            opset_version=opset_version,
            # forward(*tensors): the shapes of the one variadic argument
            dynamic_shapes=(_dynamic_shapes(args, names, dynamic_length),),
            verbose=False,
        )


def _first_line(error: Exception) -> str:
    """The first line of the innermost cause: the exporter wraps the reason in its steps."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"
