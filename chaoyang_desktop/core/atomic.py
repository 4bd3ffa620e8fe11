"""Atomic file writes: a temporary file in the target folder, fsync, then rename.

A crash, a full disk or a cancelled run leaves either the old file or the new one, never half
of one, and the error names the path and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from chaoyang_desktop.core.errors import OutputError


def _explain(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        hint = "the disk is full; free some space or choose another folder"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "the folder is not writable; choose a folder you can write to"
    elif exc.errno == errno.ENOENT:
        hint = "the folder does not exist; create it or choose another"
    else:
        hint = exc.strerror or str(exc)
    return OutputError(f"Cannot write {path}: {hint}.")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Use this for writers that want a file name (numpy, Pillow, PDF libraries). On any
    exception the temporary file is removed and the original file is untouched.
    """
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise OutputError(f"Cannot write {target}: the folder {parent} does not exist; create it or choose another.")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".part", dir=parent)
    except OSError as exc:
        raise _explain(target, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes 0600 files; outputs should get the usual permissions (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _explain(target, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (newlines are written as given)."""
    write_bytes(path, text.encode(encoding))


def write_with(path: str | os.PathLike[str], writer: Callable[[IO[str]], None], newline: str = "") -> None:
    """Open a temporary text file, let ``writer`` fill it, then move it onto ``path``."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as fh:
        writer(fh)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it takes ``path``'s place as a whole.

    A folder of outputs is then either complete or absent (an existing one is replaced only once
    the new one is complete): a full disk or a crash never leaves a folder that looks finished
    with a file missing, nor new files mixed with old ones. On any exception the temporary
    folder is removed and an existing ``path`` is untouched.
    """
    target = Path(path)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=parent))
    except OSError as exc:
        raise _explain(target, exc) from exc
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            os.replace(target, old / target.name)
            try:
                os.replace(tmp, target)
            except OSError:
                os.replace(old / target.name, target)  # put the previous results back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _explain(target, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
