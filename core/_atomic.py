"""Atomic file replacement: write beside the target, fsync, rename, fsync the folder.

A crash or a concurrent reader never sees a half-written file, and processes that have the old
file mapped keep their (now unlinked) copy intact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def replace_atomically(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a file opened "r+b" beside ``path``; on success it replaces ``path`` durably."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as exc:  # name the caller's path, not the temporary one
        raise _about(exc, path) from exc
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; an index is shared like any file
        with os.fdopen(fd, "r+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            raise _about(exc, path) from exc
        raise
    fsync_folder(path.parent or Path("."))


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every OS opens folders)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _about(exc: OSError, path: Path) -> OSError:
    """``exc`` (same type and errno) naming ``path``, as in "[Errno 28] ...: '<path>'"."""
    return type(exc)(exc.errno, exc.strerror or str(exc), os.fspath(path))
