"""Rows as the trees see them, computed from the stored rows on demand.

Angular splits only need signs of margins, which raw and unit vectors share; dot's extra
coordinate is one float per item.  So a build reads the stored rows in place: a memory-mapped
file of items larger than RAM works as well as an array.  Float16 rows are widened once into a
float32 copy while that fits in ``UNIT_CACHE_BYTES``, else at every read.  Two-means does need
unit rows (angular, dot); while they fit in ``UNIT_CACHE_BYTES`` they are computed once, not at
every level (~15% of a GloVe build), with the same operations row by row, so the trees are the
same.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._metrics import Metric, squared_norms, unpack_bits, widen
from ._threads import thread_map

BLOCK = 1 << 16  # rows per block when scanning all rows once
UNIT_CACHE_BYTES = 1 << 30  # largest copy of unit rows kept for a build


class TreeSpace:
    """Items ``0..n-1`` of a build: stored rows ``stored[ids]`` seen in the metric's tree space."""

    def __init__(
        self,
        metric: Metric,
        stored: np.ndarray,
        ids: np.ndarray,
        f: int,
        n_jobs: int = 1,
        copies: bool = True,
    ) -> None:
        # the row-wise setup below is split into blocks over ``n_jobs`` threads: it runs before
        # the trees' threads start (0.1-0.35 s of a GloVe build, mostly first touch of pages)
        # ``copies`` False (an on_disk_build: items larger than memory): no float32 or unit
        # copy of the rows in memory, every read computes them from the mapped file
        if copies and stored.dtype == np.float16 and stored.size * 4 <= UNIT_CACHE_BYTES:
            # once, not at every gather of every level (a build took 1.6x)
            half, wide = stored, np.empty(stored.shape, np.float32)
            stored = _by_blocks(wide, lambda lo, hi: widen(half[lo:hi]), n_jobs)
        self.metric, self.stored, self.f = metric, stored, f
        self.ids = np.asarray(ids, dtype=np.int64)
        self.dense = bool(len(ids) == 0 or (ids[0] == 0 and ids[-1] == len(ids) - 1))
        self.dim = 0 if metric.is_hamming else (f + 1 if metric.name == "dot" else f)
        self.extra = None
        if metric.name == "dot":  # Bachrach et al.: sqrt(M^2 - |x|^2) makes dot order angular
            sq = squared_norms(self.stored, None if self.dense else self.ids)
            self.extra = np.sqrt(np.maximum(sq.max(initial=0.0) - sq, 0.0)).astype(np.float32)
        self.unit = None
        fits = len(self.ids) * self.dim * 4 <= UNIT_CACHE_BYTES
        if copies and metric.name in ("angular", "dot") and fits:
            unit = np.empty((len(self.ids), self.dim), np.float32)
            self.unit = _by_blocks(unit, lambda lo, hi: self._rows(np.arange(lo, hi)), n_jobs)
        # every row's squared norm, once: two-means reads them for ~70 samples of every node
        # (recomputing them took ~10% of its steps); the same einsum, so the same bits
        held = self.unit if self.unit is not None else self.cell_rows()
        self.sq = None
        if held is not None and metric.name != "manhattan":
            sq = np.empty(len(held), np.float32)
            self.sq = _by_blocks(sq, lambda lo, hi: squared_norms(held[lo:hi]), n_jobs)

    def __len__(self) -> int:
        return len(self.ids)

    def cell_rows(self) -> np.ndarray | None:
        """Every item's float32 row as cells score it (unit for angular), when held already:
        saves the cells a copy of the items (and its first touch: ~2 ms/MB on some VMs)."""
        if self.metric.name == "angular":
            return self.unit
        if self.metric.name == "euclidean" and self.dense and self.stored.dtype == np.float32:
            return np.asarray(self.stored)[: len(self.ids)]
        return None

    def _raw(self, items: np.ndarray) -> np.ndarray:
        rows = items if self.dense else self.ids[items]
        return widen(np.take(self.stored, rows, axis=0))

    def rows(self, items: np.ndarray) -> np.ndarray:
        """Float32 rows of ``items`` (any shape) in tree space: unit vectors for angular/dot."""
        if self.unit is not None:
            return np.take(self.unit, items, axis=0)
        return self._rows(items)

    def squares(self, items: np.ndarray) -> np.ndarray | None:
        """Squared norms of `rows` ``(items)`` when held (else None: compute them)."""
        return None if self.sq is None else np.take(self.sq, items)

    def _rows(self, items: np.ndarray) -> np.ndarray:
        x = self._raw(items)
        if self.metric.is_hamming:
            flat = x.reshape(-1, x.shape[-1])
            return unpack_bits(flat, self.f).astype(np.float32).reshape(*items.shape, self.f)
        x = x.astype(np.float32, copy=False)
        if self.metric.name == "dot":
            x = np.concatenate([x, self.extra[items][..., None]], axis=-1)
        if self.metric.name in ("angular", "dot"):
            norm = np.sqrt(np.einsum("...i,...i->...", x, x))[..., None]
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.where(norm > 0, x / norm, 0).astype(np.float32)
        return x

    def margins(self, items: np.ndarray, normals: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Margins of ``items`` (1-D) against matching planes; only their signs split items."""
        x = self._raw(items)
        if self.metric.is_hamming:
            return self.bits(items, offsets.astype(np.int64), x).astype(np.float32)
        return self._margins(x, items, normals, offsets)

    @property
    def scannable(self) -> bool:
        """Whether `block` can read rows in item order (float rows, items = stored rows)."""
        return self.dense and not self.metric.is_hamming

    def block(self, lo: int, hi: int) -> np.ndarray:
        """Float32 rows of items ``lo..hi-1`` read in place (no gather), for a scan of all rows."""
        return np.ascontiguousarray(widen(self.stored[lo:hi]), dtype=np.float32)

    def block_margins(
        self,
        x: np.ndarray,
        lo: int,
        normals: np.ndarray,
        offsets: np.ndarray,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """`margins` of the rows ``x = block(lo, lo + len(x))``, with the same arithmetic."""
        return self._margins(x, slice(lo, lo + len(x)), normals, offsets, out)

    def _margins(
        self,
        x: np.ndarray,
        items: np.ndarray | slice,
        normals: np.ndarray,
        offsets: np.ndarray,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        # one einsum call shape for every path, so a margin has the same bits however it is read
        m = np.einsum("ij,ij->i", x, normals[:, : self.f], dtype=np.float32, out=out)
        if self.metric.name == "dot":
            m += normals[:, self.f] * self.extra[items]
        elif self.metric.has_offset:
            m += offsets
        return m

    def bits(
        self, items: np.ndarray, dims: np.ndarray, words: np.ndarray | None = None
    ) -> np.ndarray:
        """Bit ``dims`` of each item's packed row (hamming), as 0/1 uint8."""
        w = self._raw(items) if words is None else words
        word = w[np.arange(len(items)), dims // 64]
        return ((word >> (dims % 64).astype(np.uint64)) & np.uint64(1)).astype(np.uint8)


def _by_blocks(out: np.ndarray, rows: Callable[[int, int], np.ndarray], n_jobs: int) -> np.ndarray:
    """``out`` filled with ``rows(lo, hi)`` block by block, the blocks shared by ``n_jobs``
    threads (row-wise operations: the same bits for any ``n_jobs``)."""

    def fill(lo: int) -> None:
        hi = min(lo + BLOCK, len(out))
        out[lo:hi] = rows(lo, hi)

    thread_map(fill, range(0, len(out), BLOCK), n_jobs)
    return out
