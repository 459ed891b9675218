"""The encoders' old flat module paths still import, warning and naming the new path."""

import importlib
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from cwcl_sk.encoders._moved import MOVED_MODULES
from cwcl_sk.encoders.students.audio import MelCNN

ROOT = Path(__file__).resolve().parents[1]


def _import_afresh(name, monkeypatch):
    """``import name`` as a statement does it (importlib.import_module would add a frame)."""
    monkeypatch.delitem(sys.modules, name, raising=False)
    __import__(name)
    return sys.modules[name]


@pytest.mark.parametrize("old_path", sorted(MOVED_MODULES))
def test_old_path_imports_with_a_warning_naming_the_new_path(old_path, monkeypatch):
    new_paths = MOVED_MODULES[old_path]
    with pytest.warns(DeprecationWarning, match=new_paths[0].replace(".", r"\.")) as record:
        module = _import_afresh(old_path, monkeypatch)
    # Attributed to the importing line, so that library code still importing an old path
    # fails the test suite (pyproject turns DeprecationWarnings of cwcl_sk.* into errors).
    assert record[0].filename == __file__
    for new_path in new_paths:
        new_module = importlib.import_module(new_path)
        for name in new_module.__all__:
            assert getattr(module, name) is getattr(new_module, name), name
            assert name in module.__all__


def test_old_path_refuses_a_name_its_new_modules_lack(monkeypatch):
    with pytest.warns(DeprecationWarning):
        module = _import_afresh("cwcl_sk.encoders.audio", monkeypatch)
    with pytest.raises(AttributeError, match=r"cwcl_sk\.encoders\.audio.*no_such_name"):
        module.no_such_name  # noqa: B018


def test_pickle_naming_an_old_path_still_loads(monkeypatch):
    monkeypatch.delitem(sys.modules, "cwcl_sk.encoders.audio", raising=False)
    # What pickle wrote before the move; protocol 2 names a class as text, so it can be edited.
    data = pickle.dumps(MelCNN, protocol=2).replace(
        b"cwcl_sk.encoders.students.audio", b"cwcl_sk.encoders.audio"
    )
    assert b"cwcl_sk.encoders.audio" in data
    with pytest.warns(DeprecationWarning, match="students.audio"):
        assert pickle.loads(data) is MelCNN


def test_every_library_module_imports_without_an_old_path():
    # A fresh interpreter: in this one the old paths may be cached already, and warn no more.
    code = (
        "import importlib, pkgutil, cwcl_sk\n"
        "for info in pkgutil.walk_packages(cwcl_sk.__path__, 'cwcl_sk.'):\n"
        "    if not info.name.startswith('cwcl_sk.__main__'):\n"
        "        importlib.import_module(info.name)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr
