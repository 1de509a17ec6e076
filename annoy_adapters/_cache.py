"""Per-process cache of opened index files, keyed by path and the file's identity.

Dask workers and the pandas accessor open an index by path many times; each process maps a
file once and every thread shares it.  A replaced file is opened afresh: saves rename a new
file (a new inode) over the path, and the key also holds ctime, which no tool can set back
(``cp -p``, ``rsync -t`` and ``os.utime`` restore mtimes; coarse mtimes repeat).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from annoy_adapters.core import AnnoyIndex, load

__all__ = ["cache_info", "clear_cache", "open_index"]

_lock = threading.Lock()
_cache: dict[tuple[str, int, int, int, int, int], AnnoyIndex] = {}
_stats = {"opens": 0, "hits": 0}


def open_index(path: str | os.PathLike[str]) -> AnnoyIndex:
    """The index at ``path``, opened once per process and version of the file."""
    p = os.path.abspath(os.fspath(path))
    st = os.stat(p)
    key = (p, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _stats["hits"] += 1
            return hit
        index = load(p)
        for old in [k for k in _cache if k[0] == p]:  # drop stale versions of this path
            del _cache[old]
        _cache[key] = index
        _stats["opens"] += 1
        return index


def cache_info() -> dict[str, Any]:
    """Counts of file opens and cache hits in this process."""
    with _lock:
        return {**_stats, "files": len(_cache)}


def clear_cache() -> None:
    """Forget every cached index (mappings close when no one holds them)."""
    with _lock:
        _cache.clear()
