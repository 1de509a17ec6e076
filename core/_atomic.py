"""Atomic file replacement: write beside the target, fsync, rename, fsync the folder.

A crash or a concurrent reader never sees a half-written file, and processes that have the old
file mapped keep their (now unlinked) copy intact.
"""

from __future__ import annotations

import contextlib
import os
import socket
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
    folder = path.parent or Path(".")
    _sweep(folder, path.name)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=_prefix(path.name, os.getpid()), suffix=".tmp", dir=folder
        )
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
    fsync_folder(folder)


def _prefix(name: str, pid: int) -> str:
    """Temporary files name their writer (host and pid), so a later save can tell the ones
    a killed writer left behind (a full-size copy each) from those still being written."""
    return f".{name}.{socket.gethostname()}.{pid}."


def _sweep(folder: Path, name: str) -> None:
    """Remove the temporary files of ``name`` whose writer on this host no longer runs."""
    head = f".{name}.{socket.gethostname()}."
    try:
        entries = [e for e in os.listdir(folder) if e.startswith(head) and e.endswith(".tmp")]
    except OSError:
        return
    for entry in entries:
        pid = entry[len(head) :].split(".", 1)[0]
        if not pid.isdigit() or _running(int(pid)):
            continue
        with contextlib.suppress(OSError):
            (folder / entry).unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


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
