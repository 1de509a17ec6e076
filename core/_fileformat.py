"""The native static index file: a small header, a JSON manifest, then 64-byte aligned arrays.

Layout (all little-endian)::

    0   8 bytes  magic b"ANNOYADP"
    8   u32      format version (3; 4 when the vectors are float16)
    12  u32      reserved (0)
    16  u64      manifest offset (always 64)
    24  u64      manifest length in bytes
    32  u32      CRC-32 of the manifest bytes
    36  28 bytes  zero
    64  manifest: UTF-8 JSON {"f", "metric", "n_items", "leaf_size", "seed", "n_trees",
        "labels": null | "int" | "str", "metadata": {...}, "content_hash",
        "arrays": {name: {"dtype", "shape", "offset", "nbytes"}}}
    ... arrays, each at a multiple of 64, used in place through np.frombuffer on an mmap

Loading reads the header and manifest and checks every array entry against the file size
(O(1) in the index size); the tree arrays are then checked with a few vectorized comparisons
(O(nodes), no pass over the vectors or leaf items; leaf items are range-checked as a search
reads them).  Nothing in the file is ever executed: no pickle, only JSON and raw arrays.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import mmap
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import replace_atomically
from ._errors import IndexFileError

MAGIC = b"ANNOYADP"
VERSION = 3
HALF_VERSION = 4
# version 1: every index array int64 and normals float32; 2: narrowed arrays; 3: optional cells
# (vectors stored cell by cell, row r holding item cell_rows[r]), which older readers must refuse;
# 4: float16 vectors (only such files are written as 4, so version-3 readers keep reading the rest)
READABLE = (1, 2, 3, 4)
HEADER = struct.Struct("<8sIIQQI28x")
ALIGN = 64
MAX_DIM = 1 << 48  # no real array has a dimension this long (it would need 256 TiB)
MAX_MANIFEST = 1 << 26  # 64 MiB of JSON is far beyond any real index's manifest
DTYPES = {"<f2", "<f4", "<i4", "<i8", "<u8", "|u1", "|b1"}
# arrays that version 2 writes narrower when that loses nothing: the tree arrays as int32 (any
# index below 2**31 items and nodes), the normals as float16 (the build rounds them so)
NARROWED = {
    "children": "<i4",
    "counts": "<i4",
    "leaf_ptr": "<i4",
    "leaf_items": "<i4",
    "roots": "<i4",
    "normals": "<f2",
    "cell_rows": "<i4",
    "item_rows": "<i4",
    "cell_ptr": "<i4",
}


def narrow(name: str, a: np.ndarray) -> np.ndarray:
    """The array as written: its `NARROWED` dtype when every value survives the cast."""
    to = NARROWED.get(name)
    if to is None or a.dtype.str == to:
        return a
    small = a.astype(to)
    return small if np.array_equal(small.astype(a.dtype), a) else a


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _raw(a: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array (any shape, including empty ones)."""
    return memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8))


def content_hash(arrays: Mapping[str, np.ndarray], fields: Mapping[str, Any]) -> str:
    """Digest of every array and field: identifies one index's content, whatever its path."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(fields, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(_raw(a))
    return h.hexdigest()


def write(
    path: str | os.PathLike[str], fields: dict[str, Any], arrays: Mapping[str, np.ndarray]
) -> None:
    """Write atomically: a temporary file beside ``path``, fsync, rename, fsync the folder."""
    path = Path(path)
    arrays = {k: np.ascontiguousarray(narrow(k, v)) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype.str not in DTYPES:
            raise TypeError(f"array {k!r} has unsupported dtype {v.dtype.str}")
    fields = dict(fields, content_hash=content_hash(arrays, fields))
    # the manifest holds the offsets, which depend on its own length: iterate to a fixed point
    table: dict[str, dict[str, Any]] = {}
    size = 0
    for _ in range(4):
        manifest = json.dumps({**fields, "arrays": table}, sort_keys=True).encode()
        pos = _align(ALIGN + len(manifest) + 1024)
        new: dict[str, dict[str, Any]] = {}
        for name in sorted(arrays):
            a = arrays[name]
            new[name] = {
                "dtype": a.dtype.str,
                "shape": list(a.shape),
                "offset": pos,
                "nbytes": a.nbytes,
            }
            pos = _align(pos + a.nbytes)
        size = pos
        if new == table:
            break
        table = new
    manifest = json.dumps({**fields, "arrays": table}, sort_keys=True).encode()
    half = "vectors" in arrays and arrays["vectors"].dtype.str == "<f2"
    version = HALF_VERSION if half else VERSION
    header = HEADER.pack(MAGIC, version, 0, ALIGN, len(manifest), zlib.crc32(manifest))
    with replace_atomically(path) as fh:
        fh.write(header)
        fh.write(manifest)
        for name in sorted(arrays):
            fh.seek(table[name]["offset"])
            fh.write(_raw(arrays[name]))
        fh.truncate(size)


def is_native(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts with the native magic (a missing file raises FileNotFoundError)."""
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


class Mapped:
    """An open native file: its manifest fields and zero-copy array views on one mmap."""

    def __init__(self, path: str | os.PathLike[str], prefault: bool = False):
        # absolute: a pickle of the index holds this path, and may be loaded after a chdir
        self.path = os.path.abspath(os.fspath(path))
        with open(self.path, "rb") as fh:
            st = os.fstat(fh.fileno())
            self.size, self.mtime_ns = st.st_size, st.st_mtime_ns
            head = fh.read(HEADER.size)
            if len(head) < HEADER.size:
                raise IndexFileError(
                    f"{self.path}: truncated (only {len(head)} bytes; not an index file)"
                )
            magic, version, _, moff, mlen, crc = HEADER.unpack(head)
            self.version = version
            if magic != MAGIC:
                raise IndexFileError(
                    f"{self.path}: not an annoy-adapters index (bad magic {magic!r})"
                )
            if version not in READABLE:
                raise IndexFileError(
                    f"{self.path}: unsupported format version {version} "
                    f"(this release reads {', '.join(map(str, READABLE))})"
                )
            if moff != ALIGN or mlen > MAX_MANIFEST or moff + mlen > self.size:
                raise IndexFileError(
                    f"{self.path}: corrupted header (manifest at {moff}+{mlen}, "
                    f"file has {self.size} bytes)"
                )
            fh.seek(moff)
            raw = fh.read(mlen)
            if len(raw) != mlen or zlib.crc32(raw) != crc:
                raise IndexFileError(f"{self.path}: corrupted manifest (checksum mismatch)")
            try:
                self.fields = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise IndexFileError(f"{self.path}: corrupted manifest ({exc})") from None
            if not isinstance(self.fields, dict) or not isinstance(self.fields.get("arrays"), dict):
                raise IndexFileError(f"{self.path}: corrupted manifest (no array table)")
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        if prefault and self._mm is not None and hasattr(self._mm, "madvise"):
            self._mm.madvise(mmap.MADV_WILLNEED)
        self.arrays = {name: self._view(name, e) for name, e in self.fields["arrays"].items()}
        self._check_apart()

    def _check_apart(self) -> None:
        """No two arrays share bytes: one pointed at another's (a norm table read from the
        cell order, say) would load and answer wrongly without a word."""
        spans = sorted(
            (e["offset"], e["offset"] + e["nbytes"], name)
            for name, e in self.fields["arrays"].items()
            if e["nbytes"]
        )
        for (_, end, first), (start, _, second) in itertools.pairwise(spans):
            if start < end:
                raise IndexFileError(
                    f"{self.path}: corrupted array table (arrays {first!r} and {second!r} overlap)"
                )

    def _view(self, name: str, e: Any) -> np.ndarray:
        bad = IndexFileError(f"{self.path}: corrupted array table entry {name!r}")
        if not isinstance(e, dict):
            raise bad
        dtype, shape, off, nbytes = e.get("dtype"), e.get("shape"), e.get("offset"), e.get("nbytes")
        if (
            not isinstance(dtype, str)
            or dtype not in DTYPES
            or not isinstance(shape, list)
            or not 1 <= len(shape) <= 2  # every array has rows; a 0-d one has no len()
        ):
            raise bad
        if not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in [*shape, off, nbytes]
        ):
            raise bad
        if max(shape) >= MAX_DIM:  # an empty array may not claim 2**62 columns either
            raise bad
        count = int(np.prod(shape, dtype=object))
        if count * np.dtype(dtype).itemsize != nbytes or off % ALIGN or off + nbytes > self.size:
            raise IndexFileError(
                f"{self.path}: array {name!r} lies outside the file "
                f"(offset {off}, {nbytes} bytes, file {self.size} bytes)"
            )
        if count == 0 or self._mm is None:
            return np.zeros(shape, dtype=dtype)
        return np.frombuffer(self._mm, dtype=dtype, count=count, offset=off).reshape(shape)

    def close(self) -> None:
        self.arrays = {}
        close_map(self._mm)
        self._mm = None


def close_map(mm: mmap.mmap | None) -> None:
    """Close a map unless array views still use it (then it closes when they go)."""
    if mm is not None:
        try:
            mm.close()
        except BufferError:
            pass
