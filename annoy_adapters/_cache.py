"""Per-process cache of opened index files, keyed by path and the file's identity.

Dask workers and the pandas accessor open an index by path many times; each process maps a
file once and every thread shares it.  A replaced file is opened afresh: saves rename a new
file (a new inode) over the path, and the identity also holds ctime, which no tool can set back
(``cp -p``, ``rsync -t`` and ``os.utime`` restore mtimes; coarse mtimes repeat).

The cache lets go of old files: when it opens a file (or a new version of one), and on a hit at
most once every `SWEEP_SECONDS`, it stats the other cached files and drops those gone or
replaced; any other hit stats only its own file (every task thread passes here, and on a
network filesystem a stat may be a round trip to the server).  At most `MAX_FILES` files
stay cached (least recently used dropped first).  Dropping only forgets the cache's reference:
a query still using that index keeps it, and its mapping, alive until it finishes; the file is
unmapped when the last user lets go.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import Any

from annoy_adapters.core import AnnoyIndex, load

__all__ = [
    "MAX_FILES",
    "SWEEP_SECONDS",
    "FileIdentity",
    "cache_info",
    "clear_cache",
    "file_identity",
    "open_index",
    "open_with_identity",
]

#: (device, inode, mtime_ns, ctime_ns, size): a different value means a different file
FileIdentity = tuple[int, int, int, int, int]

#: most files one process keeps open through the cache
MAX_FILES = 16

#: longest a run of cache hits goes without checking the other cached files
SWEEP_SECONDS = 5.0

_lock = threading.Lock()
_cache: OrderedDict[str, tuple[FileIdentity, AnnoyIndex]] = OrderedDict()  # oldest use first
_stats = {"opens": 0, "hits": 0}
_last_sweep = -float("inf")  # time.monotonic() of the last check of the cached files


def file_identity(path: str | os.PathLike[str]) -> FileIdentity:
    """The identity of the file at ``path`` now (FileNotFoundError if there is none)."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _current(path: str) -> FileIdentity | None:
    try:
        return file_identity(path)
    except OSError:
        return None


def open_with_identity(path: str | os.PathLike[str]) -> tuple[AnnoyIndex, FileIdentity]:
    """The index at ``path``, opened once per process and version of the file, and that
    version's identity (what a Dask task key holds so a replaced file gives new keys)."""
    p = os.path.abspath(os.fspath(path))
    identity = file_identity(p)
    with _lock:
        entry = _cache.get(p)
        cached = entry[1] if entry is not None and entry[0] == identity else None
        if cached is not None:
            _cache.move_to_end(p)
            _stats["hits"] += 1
        others = _due_for_sweep(p, opening=cached is None)
    # Outside the lock: a slow stat must not hold up the threads whose file is cached.
    _drop_retired(others)
    if cached is not None:
        return cached, identity
    with _lock:
        entry = _cache.get(p)
        if entry is not None and entry[0] == identity:  # another thread opened it meanwhile
            _cache.move_to_end(p)
            _stats["hits"] += 1
            return entry[1], identity
        index = load(p)
        _cache[p] = (identity, index)  # replaces a stale version of this path
        _cache.move_to_end(p)
        while len(_cache) > MAX_FILES:
            _cache.popitem(last=False)
        _stats["opens"] += 1
        return index, identity


def _due_for_sweep(path: str, opening: bool) -> list[tuple[str, FileIdentity]]:
    """The other cached files and the identities held for them, when a check is due (a file
    is being opened, or SWEEP_SECONDS have passed since the last check); else none.

    Called with the lock held.
    """
    global _last_sweep
    now = time.monotonic()
    if not opening and now - _last_sweep < SWEEP_SECONDS:
        return []
    _last_sweep = now
    return [(other, held) for other, (held, _) in _cache.items() if other != path]


def _drop_retired(entries: list[tuple[str, FileIdentity]]) -> None:
    """Drop the entries whose file is gone or was replaced: a retired or replaced file must
    not stay mapped for ever."""
    for other, held in entries:
        if _current(other) == held:
            continue
        with _lock:
            entry = _cache.get(other)
            if entry is not None and entry[0] == held:  # not reopened since the stat
                del _cache[other]


def open_index(path: str | os.PathLike[str]) -> AnnoyIndex:
    """The index at ``path``, opened once per process and version of the file."""
    return open_with_identity(path)[0]


def cache_info() -> dict[str, Any]:
    """Counts of file opens and cache hits in this process, and the files cached now."""
    with _lock:
        return {**_stats, "files": len(_cache)}


def clear_cache() -> int:
    """Forget every cached index (mappings close when no one holds them); how many there were."""
    with _lock:
        count = len(_cache)
        _cache.clear()
        return count
