"""Checks shared by the tests of model folders built once into the cache (model_cache)."""

from collections.abc import Callable
from importlib import metadata
from pathlib import Path


def assert_built_once_then_reused(make_folder: Callable[[], Path], cache: Path, name: str):
    """``make_folder()`` returns ``cache / name`` again without rewriting it, and leaves nothing
    else in ``cache`` (no staging folder, no joined source file)."""
    folder = make_folder()
    assert folder == cache / name
    weights = folder / "model.safetensors"
    written = weights.stat().st_mtime_ns
    assert make_folder() == folder
    assert weights.stat().st_mtime_ns == written
    assert [path.name for path in cache.iterdir()] == [name]


def hide_distribution(monkeypatch, name: str) -> None:
    """Make ``importlib.metadata`` report the PyPI distribution ``name`` as not installed."""
    real_distribution = metadata.distribution

    def distribution(requested):
        if requested == name:
            raise metadata.PackageNotFoundError(requested)
        return real_distribution(requested)

    monkeypatch.setattr(metadata, "distribution", distribution)
