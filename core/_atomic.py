"""Atomic file replacement: write beside the target, fsync, rename, fsync the folder.

A crash or a concurrent reader never sees a half-written file, and processes that have the old
file mapped keep their (now unlinked) copy intact.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # not on Windows: temporary files a killed save left stay there
    fcntl = None  # type: ignore[assignment]

STALE_SECONDS = 60.0


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
        fd, tmp = tempfile.mkstemp(prefix=_prefix(path.name), suffix=".tmp", dir=folder)
    except OSError as exc:  # name the caller's path, not the temporary one
        raise _about(exc, path) from exc
    _hold(fd)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; an index is shared like any file
        with os.fdopen(fd, "r+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, path)  # while the lock is held: a sweep cannot take it first
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        # name the caller's path on a failed write, not on an error about another file (an
        # IndexFileError met reading the index, also an OSError, keeps its own message)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, tmp):
            raise _about(exc, path) from exc
        raise
    fsync_folder(folder)


def _prefix(name: str) -> str:
    """Temporary files name their host, so a save only ever sweeps its own host's."""
    return f".{name}.{socket.gethostname()}."


def _hold(fd: int) -> None:
    """Lock the temporary file while it is written: the kernel lets go when the writer dies,
    whatever PID namespace it ran in, which tells a killed writer's file from a live one."""
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _sweep(folder: Path, name: str) -> None:
    """Remove this host's temporary files of ``name`` that no writer holds and that have not
    changed for `STALE_SECONDS` (a killed save left a full-size copy each time)."""
    if fcntl is None:
        return
    head = _prefix(name)
    try:
        entries = [e for e in os.listdir(folder) if e.startswith(head) and e.endswith(".tmp")]
    except OSError:
        return
    for entry in entries:
        path = folder / entry
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime < STALE_SECONDS:
                continue  # just created: its writer may not hold the lock yet
            fd = os.open(path, os.O_RDWR)  # NFS emulates flock with locks that need writing
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while a writer holds it
                path.unlink()
            finally:
                os.close(fd)


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
