"""Students on numeric features: a small MLP, and the input standardisation students share.

The aligner ends every student, these and a user's own module alike, in the projection head
of :mod:`cwcl_sk.encoders.heads`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["MLP", "standardization_statistics"]

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class MLP(nn.Module):
    """A multi-layer perceptron student for numeric feature vectors.

    Parameters
    ----------
    in_features : int
        Width of the input rows.
    out_features : int
        Width of the output (the teacher's embedding width, so no extra head is needed).
    hidden_sizes : tuple of int, default=(256,)
        Widths of the hidden layers; ``()`` gives a linear map.
    activation : {"gelu", "relu", "tanh", "silu"}, default="gelu"
    dropout : float, default=0.0
        Dropout after every hidden layer (training only).
    feature_mean, feature_scale : ndarray of shape (in_features,), optional
        Per-feature standardisation applied before the first layer. Stored as buffers so they
        travel with the weights; see ``standardize`` in :func:`build_mlp`.

    Examples
    --------
    >>> import torch
    >>> from cwcl_sk.encoders.students.generic import MLP
    >>> MLP(4, 8, hidden_sizes=(16,))(torch.zeros(2, 4)).shape
    torch.Size([2, 8])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_sizes=(256,),
        activation: str = "gelu",
        dropout: float = 0.0,
        feature_mean=None,
        feature_scale=None,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"student__activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}."
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"student__dropout must be in [0, 1), got {dropout!r}.")
        mean = np.zeros(in_features) if feature_mean is None else feature_mean
        scale = np.ones(in_features) if feature_scale is None else feature_scale
        self.register_buffer("feature_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("feature_scale", torch.as_tensor(scale, dtype=torch.float32))
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, int(hidden)), _ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(float(dropout)))
            width = int(hidden)
        layers.append(nn.Linear(width, out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # (batch, in_features) -> (batch, out_features)
        return self.layers((features - self.feature_mean) / self.feature_scale)


def build_mlp(
    features: np.ndarray,
    output_dim: int,
    hidden_sizes=(256,),
    activation: str = "gelu",
    dropout: float = 0.0,
    standardize: bool = True,
) -> MLP:
    """Build an :class:`MLP` for the training features.

    With ``standardize=True`` (default) the features are centred and scaled by statistics of
    the training set, stored inside the model: raw features of very different ranges then
    train as well as standardised ones, with no preprocessing step to forget at predict time.
    """
    hidden_sizes = _check_hidden_sizes(hidden_sizes)
    mean = scale = None
    if standardize:
        mean, scale = standardization_statistics(features, min_scale=1e-8)
    return MLP(
        features.shape[1],
        output_dim,
        hidden_sizes=hidden_sizes,
        activation=activation,
        dropout=dropout,
        feature_mean=mean,
        feature_scale=scale,
    )


def standardization_statistics(rows: np.ndarray, min_scale: float) -> tuple:
    """Per-column mean and standard deviation of training rows, for a model's buffers.

    Columns whose deviation is at most ``min_scale`` (constant features, mel bands above a
    file's Nyquist rate) get scale 1, so that dividing by it cannot blow up to inf.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_columns)
    min_scale : float

    Returns
    -------
    mean, scale : ndarray of shape (n_columns,)
    """
    scale = rows.std(axis=0)
    return rows.mean(axis=0), np.where(scale > min_scale, scale, 1.0)


def _check_hidden_sizes(hidden_sizes) -> tuple[int, ...]:
    if isinstance(hidden_sizes, int | np.integer):
        hidden_sizes = (hidden_sizes,)
    try:
        sizes = tuple(int(size) for size in hidden_sizes)
    except (TypeError, ValueError):
        raise TypeError(
            f"student__hidden_sizes must be a tuple of positive ints, got {hidden_sizes!r}."
        ) from None
    if any(size < 1 for size in sizes):
        raise ValueError(f"student__hidden_sizes must be positive ints, got {hidden_sizes!r}.")
    return sizes
