"""The encoders' old flat module paths, still importable, with a DeprecationWarning.

The encoders are arranged by role: ``teachers/`` (frozen), ``students/`` (trained), ``heads.py``
(the projection every student ends in) and ``convert/`` (checkpoint converters). The modules
that used to sit directly in ``cwcl_sk/encoders/`` keep working for code and pickles that
name them: importing one warns, naming its new path, and gives a module that forwards every
attribute to the new one.

They are not files: an old path kept as a file of its own would turn each move into a new
file in the history, and a change made meanwhile to the old file would not follow the move.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

__all__ = ["MOVED_MODULES", "install"]

MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "cwcl_sk.encoders.activation_cache": ("cwcl_sk.encoders.students.activation_cache",),
    "cwcl_sk.encoders.audio": ("cwcl_sk.encoders.students.audio",),
    "cwcl_sk.encoders.frozen": ("cwcl_sk.encoders.teachers.frozen",),
    "cwcl_sk.encoders.generic": ("cwcl_sk.encoders.students.generic", "cwcl_sk.encoders.heads"),
    "cwcl_sk.encoders.image": ("cwcl_sk.encoders.students.image", "cwcl_sk.encoders.vision"),
    "cwcl_sk.encoders.image_teacher": ("cwcl_sk.encoders.teachers.image",),
    "cwcl_sk.encoders.text": ("cwcl_sk.encoders.teachers.text",),
    "cwcl_sk.encoders.text_student": ("cwcl_sk.encoders.students.text",),
    "cwcl_sk.encoders.whisper_convert": ("cwcl_sk.encoders.convert.whisper",),
    "cwcl_sk.encoders._transformers": ("cwcl_sk.encoders.students._transformers",),
}
"""Each old module path, mapped to the module(s) now holding what it held."""


class _MovedModule(types.ModuleType):
    """An old module path: every attribute is read from the module(s) that now hold it."""

    def __init__(self, name: str, targets: tuple[str, ...]) -> None:
        super().__init__(name)
        self._targets = [importlib.import_module(target) for target in targets]
        self.__all__ = [name for target in self._targets for name in getattr(target, "__all__", ())]

    def __getattr__(self, attribute: str):
        for target in self._targets:
            try:
                return getattr(target, attribute)
            except AttributeError:
                continue
        raise AttributeError(f"module {self.__name__!r} has no attribute {attribute!r}")

    def __dir__(self) -> list[str]:
        return sorted({name for target in self._targets for name in dir(target)})


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module paths of :data:`MOVED_MODULES` and loads them as forwarders."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return _MovedModule(spec.name, MOVED_MODULES[spec.name])

    def exec_module(self, module) -> None:
        new_paths = " and ".join(MOVED_MODULES[module.__name__])
        # stacklevel=2 names the importing line: warnings skips the import machinery's frames.
        warnings.warn(
            f"{module.__name__} is deprecated and will be removed; import from {new_paths} "
            "instead.",
            DeprecationWarning,
            stacklevel=2,
        )


def install() -> None:
    """Make the old module paths importable; installing twice changes nothing."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
