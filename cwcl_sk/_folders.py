"""Folders written whole: into a fresh temporary sibling, then renamed into place.

A saved model or checkpoint is several files that only make sense together. Writing them in
place leaves a mixed folder when the write is interrupted, and follows any symbolic link
planted under a file's name. Here a folder is written into a fresh temporary sibling (made by
:func:`tempfile.mkdtemp`, so nothing can be planted in it beforehand) and renamed onto its
name; rename never follows links. An existing folder is swapped out in one atomic exchange
where the system offers one (Linux ``renameat2(RENAME_EXCHANGE)``), so readers see the old
folder or the new one, never neither and never a mix; elsewhere the old folder is moved
aside first, which leaves a moment without one but never a mixed one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["check_writable_folder", "move_into_place", "remove_entry", "write_folder"]

# From <fcntl.h> and <linux/fs.h>.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths atomically; False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    return result == 0


def remove_entry(path: Path) -> None:
    """Remove a file, a folder tree or a link (the link only: never what it points to)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        # rmtree removes links inside the tree without following them.
        shutil.rmtree(path)


def check_writable_folder(target: Path, argument: str, replaceable: Callable[[Path], bool]):
    """Refuse a ``target`` that writing would follow or that holds something else.

    Parameters
    ----------
    target : pathlib.Path
    argument : str
        The name the error messages give the path.
    replaceable : callable
        ``replaceable(target)`` says whether an existing folder may be replaced (it holds
        what this library wrote there).

    Raises
    ------
    ValueError
        When ``target`` is a symbolic link, a file, or a folder with other contents.
    """
    if target.is_symlink():
        raise ValueError(
            f"{argument}: {target} is a symbolic link; the library never writes through "
            "links. Pass the real folder, or remove the link."
        )
    if target.exists() and not target.is_dir():
        raise ValueError(f"{argument}: {target} exists and is not a folder.")
    if target.is_dir() and any(target.iterdir()) and not replaceable(target):
        raise ValueError(
            f"{argument}: {target} is a folder with other contents; refusing to replace "
            "them. Choose a new or empty folder, or one this library saved."
        )


def move_into_place(source: Path, target: Path) -> None:
    """Rename the folder ``source`` onto ``target``, replacing what is there without a mix.

    ``target`` must have passed :func:`check_writable_folder`; it is renamed, never
    followed: a link or file planted there since makes the rename fail.
    """
    if os.path.lexists(target) and target.is_dir() and not target.is_symlink():
        if _exchange(source, target):
            remove_entry(source)  # now the old folder
            return
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rename(target, aside / target.name)
        try:
            os.rename(source, target)
        except BaseException:
            os.rename(aside / target.name, target)
            raise
        finally:
            remove_entry(aside)
        return
    # os.rename onto a link or a file fails for a folder (ENOTDIR); onto nothing it creates.
    os.rename(source, target)


def write_folder(target, write: Callable[[Path], None], *, argument: str, replaceable) -> Path:
    """``write(folder)`` into a fresh temporary sibling of ``target``, then move it there.

    Parameters
    ----------
    target : str or path-like
    write : callable
        Writes every file of the folder into the folder it is given.
    argument : str
        The name error messages give the path.
    replaceable : callable
        See :func:`check_writable_folder`.

    Returns
    -------
    target : pathlib.Path
    """
    target = Path(target)
    check_writable_folder(target, argument, replaceable)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        write(temporary)
        # Reads then see the mode a plain mkdir would give, not mkdtemp's private 0700.
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o777 & ~umask)
        move_into_place(temporary, target)
    except BaseException:
        if os.path.lexists(temporary):
            remove_entry(temporary)
        raise
    return target
