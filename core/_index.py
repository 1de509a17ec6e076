"""AnnoyIndex: annoy's API over the vectorized forest, plus batch queries, labels and metadata."""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _fileformat as ff
from . import _labels
from . import _validate as check
from ._annoy_format import layout, read_ann, write_ann
from ._build import build_trees
from ._cells import Cells, build_cells, chunk_size, probe_candidates
from ._errors import IndexFileError, RowError
from ._exact import exact_candidates
from ._forest import Forest
from ._loader import check_forest, check_values, unpack
from ._metrics import (
    HALF_MAX,
    VECTOR_DTYPES,
    Metric,
    get_metric,
    squared_norms,
    vector_dtype_name,
    widen,
)
from ._search import SHARE as SEARCH_SHARE
from ._search import candidates, collect_leaves, rank
from ._threads import thread_map
from ._treespace import TreeSpace

DEFAULT_SEED = 1234567890987654321  # annoy's default seed
EXACT_MIN = 4096  # below this many items, every item is ranked directly (exact ties by id)
QUERY_CHUNK = 256  # queries searched together: large enough to vectorize, small enough for cache
FIRST_CUT_QUANTILE = 0.2  # first threshold: this quantile of earlier cuts (a little low: one pass)
# Largest vector norm of the metrics that square it: 2**63 keeps |x|^2 at a quarter of float32's
# largest value, so |q|^2 + |x|^2 - 2 q.x (and dot's |x|^2, q.x) stay finite.
MAX_NORM = 2.0**63
NORM_METRICS = ("angular", "euclidean", "dot")
# Below this, every coordinate's square is a subnormal float32 of under 13 significant bits, and
# euclidean and dot lose the precision to rank (normal data at scale 1e-22: 5% of the top-10
# change; 1e-20: none); angular rescales its rows, manhattan squares nothing
SQUARE_MIN = 2.0**-68
SQUARING_METRICS = ("euclidean", "dot")
MAX_PADDED = 1 << 31  # (query, column) entries a k beyond the items may pad the result to


def default_leaf_size(f: int, metric: str) -> int:
    """Most items a leaf holds by default: annoy's ``K``, the ids that fit in one of its nodes.

    That is about ``f + 2`` (``f`` words + 3 for hamming): 12 for ``f=10``, 52 for GloVe's 50
    dimensions.  With annoy's leaf size a ``search_k`` means what it means in annoy (the same
    number of leaves is visited), trees export to ``.ann`` unchanged, and answers at annoy's
    small default ``search_k = n_trees * n`` are as good as annoy's: on gensim's
    ``lee_fasttext.vec`` (1,762 x 10, 10 trees, top-5 of the first word equal to the exact
    top-5), 39 of 50 seeds passed against annoy's 31, where leaves of 64 items passed 13.
    """
    return max(layout(metric, f).K, 2)


def _vector_dtype(name: Any, metric: Metric) -> np.dtype:
    if not isinstance(name, str) or name not in VECTOR_DTYPES:
        raise ValueError(f"'vector_dtype' must be 'float32' or 'float16' (got {name!r})")
    if metric.is_hamming and name != "float32":
        raise ValueError("'vector_dtype' must be 'float32' for hamming (it stores bits)")
    return VECTOR_DTYPES[name]


@dataclass(frozen=True)
class _Served:
    """What a search reads, taken from one state of the index (see ``AnnoyIndex._served``)."""

    forest: Forest  # None only in a snapshot of an unbuilt index (``_snapshot``)
    path: str | None
    cells: Cells | None
    store: np.ndarray
    sqnorm: np.ndarray | None
    present: np.ndarray
    n: int
    n_present: int


def _n_jobs(n_jobs: Any) -> int:
    n = check.integer("n_jobs", n_jobs)
    if n == -1:
        return os.cpu_count() or 1
    if n < 1:
        raise ValueError(f"'n_jobs' must be -1 or a positive int (got {n})")
    return n


class AnnoyIndex:
    """Annoy's index: a forest of random-projection trees over vectors of length ``f``.

    A drop-in for ``annoy.AnnoyIndex``: the same methods, arguments, defaults and return types,
    plus batch `add_items`, `query` and `query_items`, labels and metadata
    stored in the file, and safe loading.

    Parameters
    ----------
    f : int
        Length of the vectors.
    metric : str
        One of ``"angular"``, ``"euclidean"``, ``"manhattan"``, ``"dot"``, ``"hamming"``.
    leaf_size : int, optional
        Most items per leaf (default: annoy's ``K``, the ids that fit in one of its nodes: about
        ``f + 2``, so 52 for 50 dimensions; with it a ``search_k`` means what it means in annoy).
    seed : int, optional
        Seed of the build, an int in [0, 2**64) (default: annoy's, 1234567890987654321); the
        same data, parameters and seed give the same index bytes, whatever ``n_jobs``.
    vector_dtype : {"float32", "float16"}, default "float32"
        How the vectors are kept, in memory and in the file.  ``"float16"`` halves their bytes
        (GloVe 6B 50d, 10 trees with cells: 74.7 MB against 113.7 MB) and rounds every value to
        11 significant bits; values must lie within +-65504.  Searches widen the rows they
        read: on GloVe (benchmark run 27, ``probe`` at recall 0.90) a batch runs at ~0.89x of
        float32 and one query per call at ~0.68x.  Angular, euclidean, manhattan and dot;
        hamming keeps bits.

    Attributes
    ----------
    f : int
        Length of the vectors.
    leaf_size : int
        Most items per leaf.
    seed : int
        Seed of the next build (of the file's build, once loaded).

    Examples
    --------
    >>> import numpy as np
    >>> from annoy_adapters import AnnoyIndex
    >>> index = AnnoyIndex(3, "euclidean")
    >>> index.add_items(np.eye(3))
    array([0, 1, 2])
    >>> index.build(10)
    True
    >>> index.get_nns_by_vector([0.9, 0.1, 0.0], 2)
    [0, 1]
    """

    def __init__(
        self,
        f: int,
        metric: str = "angular",
        *,
        leaf_size: int | None = None,
        seed: int | None = None,
        vector_dtype: str = "float32",
    ) -> None:
        self.f = check.positive_int("f", f) if not (isinstance(f, int) and f == 0) else 0
        self._metric: Metric = get_metric(metric)
        self._vectors = _vector_dtype(vector_dtype, self._metric)
        self.leaf_size = (
            default_leaf_size(self.f, metric)
            if leaf_size is None
            else check.positive_int("leaf_size", leaf_size)
        )
        if self.leaf_size < 2:
            raise ValueError(f"'leaf_size' must be at least 2 (got {self.leaf_size})")
        self.seed = DEFAULT_SEED if seed is None else check.seed(seed)
        self._verbose = False
        self._on_disk: str | None = None
        self._lock = threading.RLock()  # one writer at a time: builds, loads, saves, swaps
        self._labels_lock = threading.Lock()
        self._reset()

    # -- state ------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._set_state(self._empty_state())

    def _empty_state(self) -> dict[str, Any]:
        """Every attribute of the index's content, as an empty, unbuilt index has them."""
        width = self._metric.stored_width(self.f)
        return {
            "_store": np.zeros((0, width), self._metric.stored_dtype(self._vectors)),
            "_present": np.zeros(0, bool),
            "_n": 0,
            "_sqnorm": None,
            "_forest": None,  # Forest | None
            "_cells": None,  # Cells | None; when set, store row r holds item cells.row_ids[r]
            "_mapped": None,  # ff.Mapped | None
            "_disk_built": None,  # the file an on_disk_build() wrote and serves (unbuild reopens)
            "_labels": None,
            "_label_arrays": None,
            "_label_index": None,
            "_metadata": {},
            "_n_present": 0,
            # learned search state, speed only: share of a reopened subtree a lower threshold
            # brings in, and recent cuts, both per search_k (one value learned at a small
            # search_k made large ones take several times the memory)
            "_shares": {},
            "_cuts": {},
        }

    # Even while no swap is under way: a load(), build() or unbuild() in another thread sets
    # the attributes a search reads one by one, and a search must not mix two states of them.
    # Writers take ``_lock``, so one swap at a time moves the count.
    _generation = 0
    _swapper: int | None = None

    @contextmanager
    def _swapping(self) -> Iterator[None]:
        with self._lock:
            try:
                self._generation += 1
                self._swapper = threading.get_ident()
                yield
            finally:
                self._swapper = None
                if self._generation % 2:
                    self._generation += 1

    def _set_state(self, state: dict[str, Any]) -> None:
        with self._swapping():
            for k, v in state.items():
                setattr(self, k, v)

    def _snapshot(self) -> tuple[_Served, bool]:
        """The attributes a search reads, all of one state of the index, and whether its
        forest still awaits `check_forest`.  A thread swapping in another file, or
        rebuilding, made searches mix two indexes (wrong answers) or meet a half-built one
        (TypeError).  Swaps are a few attribute sets, so waiting is brief."""
        while True:
            gen = self._generation
            if not gen % 2 or self._swapper == threading.get_ident():
                served = _Served(
                    self._forest,  # type: ignore[arg-type]
                    None if self._mapped is None else self._mapped.path,
                    self._cells,
                    self._store,
                    self._sqnorm,
                    self._present,
                    self._n,
                    self._n_present,
                )
                unchecked = served.forest is not None and not served.forest.checked
                if gen == self._generation:
                    return served, unchecked
            with self._lock:  # a swap is under way, and its writer holds the lock: wait for it
                pass

    def _served(self, what: str) -> _Served:
        """`_snapshot` of a built index, its forest's pointers checked (once)."""
        served, unchecked = self._snapshot()
        if served.forest is None:
            raise RuntimeError(
                f"cannot {what}: the index is not built; call build() or load() first"
            )
        if unchecked:  # the snapshot's own forest: another may be swapped in meanwhile
            path = str(served.path)
            check_forest(path, served.forest, self._metric, self.f, served.n, served.present)
            check_values(path, self._metric, self.f, served.store, served.sqnorm)
            # vouches for this forest (and the rows loaded with it) only; no lock on the
            # read path, which a save holding the lock for its whole write would stall
            served.forest.checked = True
        return served

    @property
    def metric(self) -> str:
        """Name of the metric."""
        return self._metric.name

    @property
    def vector_dtype(self) -> str:
        """How the vectors are kept: ``"float32"`` or ``"float16"`` (a loaded file's own)."""
        return vector_dtype_name(self._store.dtype)

    @property
    def built(self) -> bool:
        """Whether the trees exist (built here or loaded)."""
        return self._forest is not None

    @property
    def path(self) -> str | None:
        """The file this index is memory-mapped from (an absolute path), if any."""
        return self._mapped.path if self._mapped is not None else None

    def __repr__(self) -> str:
        where = f", path={self.path!r}" if self.path else ""
        half = ", vector_dtype='float16'" if self.vector_dtype == "float16" else ""
        return (
            f"AnnoyIndex(f={self.f}, metric={self.metric!r}, n_items={self._n}, "
            f"n_trees={self.get_n_trees()}{half}{where})"
        )

    def _require_built(self, what: str) -> Forest:
        return self._served(what).forest

    def _require_mutable(self, what: str) -> None:
        if self._mapped is not None:
            raise RuntimeError(
                f"cannot {what}: the index is loaded from {self.path!r}; "
                "loaded indexes are read-only"
            )
        if self._forest is not None:
            raise RuntimeError(f"cannot {what}: the index is already built; call unbuild() first")

    # -- adding items -----------------------------------------------------------------------
    def _grow(self, n: int) -> None:
        if n <= len(self._store):
            return
        cap = max(n, 2 * len(self._store), 16)
        width, dtype = self._store.shape[1], self._store.dtype
        if self._on_disk is not None:
            # items live in a file beside the target, so they need not fit in memory
            buf = self._on_disk + ".items"
            if isinstance(self._store, np.memmap):
                self._store.flush()
            with open(buf, "ab") as fh:
                fh.truncate(cap * width * dtype.itemsize)
            store = np.memmap(buf, dtype=dtype, mode="r+", shape=(cap, width))
        else:
            try:
                store = np.zeros((cap, width), dtype)
            except MemoryError:
                need = n * width * dtype.itemsize
                raise MemoryError(
                    f"id {n - 1} needs a store of {n} rows ({need / 2**30:.3g} GiB): ids index "
                    "rows, so use ids 0..n-1 and keep sparse or large keys as labels "
                    "(set_labels)"
                ) from None
            store[: self._n] = self._store[: self._n]
        present = np.zeros(cap, bool)
        present[: self._n] = self._present[: self._n]
        self._store, self._present = store, present

    def _trim(self) -> None:
        """Drop the spare capacity of the store: the file holds exactly ``n`` rows."""
        self._store = self._store[: self._n]
        self._present = self._present[: self._n]

    def _in_precision(self, name: str, x: np.ndarray) -> np.ndarray:
        """Float32 rows rounded as the store keeps vectors: float16 stores round queries too,
        so an item's own vector finds it at distance 0, wherever the query came from."""
        if self._store.dtype != np.float16:
            return x
        if x.size and np.abs(x).max() > HALF_MAX:
            row = int(np.flatnonzero((np.abs(x) > HALF_MAX).any(axis=1))[0])
            held = float(np.abs(x[row]).max())
            raise RowError(
                f"'{name}' must lie within +-{HALF_MAX:g} for vector_dtype='float16' "
                f"(row {row} holds {held:g}); use 'float32'",
                name,
                row,
                f"holds {held:g}, beyond vector_dtype='float16' (+-{HALF_MAX:g}); use 'float32'",
            )
        return x.astype(np.float16).astype(np.float32)

    def _rows(self, name: str, data: Any) -> np.ndarray:
        """``data`` checked as float32 rows of length f (norms within `MAX_NORM` for the
        metrics that square them) and rounded as the store keeps vectors."""
        max_norm = MAX_NORM if self._metric.name in NORM_METRICS else None
        return self._in_precision(name, check.float_matrix(name, data, self.f, max_norm))

    def _one_vector(self, vector: Any) -> np.ndarray:
        """The argument ``vector`` of annoy's single-vector methods as one checked row."""
        if isinstance(vector, (str, bytes)) or not hasattr(vector, "__len__"):
            raise TypeError(f"'vector' must be a sequence of numbers (got {type(vector).__name__})")
        v = self._rows("vector", vector)
        if len(v) != 1:
            shape = np.shape(vector)
            raise ValueError(f"'vector' must be one vector of {self.f} floats (got shape {shape})")
        return v

    def add_item(self, i: int, vector: Sequence[float] | np.ndarray) -> None:
        """Add ``vector`` as item ``i`` (annoy: ids need not be contiguous)."""
        i = check.integer("i", i)
        if i < 0:
            raise IndexError(f"Item index can not be negative (got {i})")
        if i > np.iinfo(np.int64).max:
            raise ValueError(f"'i' must fit in int64 (got {i})")
        with self._lock:
            self._add(self._one_vector(vector), np.array([i], np.int64))

    def add_items(self, X: Any, ids: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Add the rows of ``X``; ``ids`` default to the next free ids. Returns the int64 ids."""
        with self._lock:
            x = self._rows("X", X)
            if ids is None:
                idx = self._n + np.arange(len(x), dtype=np.int64)
            else:
                idx = np.asarray(ids)
                if idx.ndim != 1 or len(idx) != len(x) or not check.is_integer_array(idx):
                    raise ValueError(
                        f"'ids' must be {len(x)} ints, one per row of X "
                        f"(got shape {idx.shape}, dtype {idx.dtype})"
                    )
                idx = check.as_int64("ids", idx)  # uint64 from 2**63 up would wrap negative
                if len(idx) and idx.min() < 0:
                    raise IndexError(f"Item index can not be negative (got {int(idx.min())})")
            return self._add(x, idx)

    def _add(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Store checked rows ``x`` as items ``idx`` (int64, none negative); the lock is held."""
        self._require_mutable("add items")
        if not len(idx):
            return idx
        top = int(idx.max()) + 1
        if self._labels is not None and top > self._n:  # overwriting ids keeps their labels
            raise ValueError(
                f"'ids' holds {top - 1}, beyond the ids 0..{self._n - 1} the labels cover, so "
                "it would have no label: call set_labels(None) to drop the labels, add the "
                "items, then set_labels() for all of them"
            )
        self._grow(top)
        self._store[idx] = self._metric.store(x)
        self._present[idx] = True
        self._n = max(self._n, top)
        return idx

    # -- building ---------------------------------------------------------------------------
    def set_seed(self, seed: int) -> None:
        """Seed of the next build."""
        self.seed = check.seed(seed)

    def verbose(self, v: bool) -> bool:
        """Print build progress to stderr, as annoy does."""
        self._verbose = bool(v)
        return True

    def build(
        self,
        n_trees: int,
        n_jobs: int = -1,
        *,
        cells: bool = True,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> bool:
        """Build ``n_trees`` trees (-1: add trees until their nodes about equal the items, annoy's
        rule: annoy counts the items as nodes too, so it says twice the items).

        ``n_jobs`` workers share the work; the result is the same for any ``n_jobs``.  On Linux,
        while no other Python thread runs (a script, not Jupyter or a Dask worker), the trees
        are built in forked processes, which scale better than threads (two cores: 1.7-1.9x one
        against 1.4-1.6x); otherwise in threads.
        ``cells`` (angular, euclidean): also group the items into about sqrt(n) cells and store
        them cell by cell, for ``probe`` searches (a few seconds per million items; an
        `on_disk_build` never does, as reordering would copy the items into memory).
        ``progress(done, total)`` is called as trees finish.
        """
        n_trees = check.integer("n_trees", n_trees)
        if n_trees < 1 and n_trees != -1:
            raise ValueError(f"'n_trees' must be -1 or a positive int (got {n_trees})")
        jobs = _n_jobs(n_jobs)
        with self._lock:
            self._require_mutable("build")
            self._trim()
            present = np.flatnonzero(self._present)
            self._check_scale()
            z = TreeSpace(
                self._metric, self._store, present, self.f, jobs, copies=self._on_disk is None
            )
            done = [0]

            def tick(k: int, total: int) -> None:
                done[0] += k
                if self._verbose:
                    print(f"pass {done[0]}/{total} trees", file=sys.stderr)
                if progress is not None:
                    progress(done[0], total if total > 0 else None)

            def grow(trees: range, total: int) -> Forest:
                return build_trees(
                    z,
                    self._metric,
                    trees,
                    self.seed,
                    self.leaf_size,
                    n_jobs=jobs,
                    progress=lambda k: tick(k, total),
                )

            if n_trees == -1:
                first = grow(range(1), -1)
                per_tree = max(first.n_splits + first.n_leaves, 1)
                total = max(1, math.ceil(len(present) / per_tree))
                rest = grow(range(1, total), total)
                from ._forest import concat

                forest = concat([first, rest], first.normals.shape[1])
            else:
                forest = grow(range(n_trees), n_trees)
            self._finish_build(
                forest, cells=cells and self._on_disk is None, n_jobs=jobs, rows=z.cell_rows()
            )
            if self._verbose:
                print(f"has {forest.n_splits + forest.n_leaves} nodes", file=sys.stderr)
        if self._on_disk is not None:
            target, self._on_disk = self._on_disk, None
            self.save(target)  # streams the mapped items into the file, then maps the file
            Path(target + ".items").unlink(missing_ok=True)
            self._disk_built = self.path
        return True

    def _check_scale(self) -> None:
        """Refuse items whose every coordinate squares to a subnormal float32 (see SQUARE_MIN)."""
        store = self._store
        if self._metric.name not in SQUARING_METRICS or store.size == 0:
            return
        top = max(float(store.max()), -float(store.min()))
        if 0 < top < SQUARE_MIN:
            raise ValueError(
                f"the items must not all lie within +-{SQUARE_MIN:.3g} for metric "
                f"{self._metric.name!r} (the largest coordinate is {top:.3g}): float32 cannot "
                "square them precisely, so distances would rank wrongly; multiply the vectors "
                "and queries by a constant (e.g. 1e20), which keeps the neighbours"
            )

    def _finish_build(
        self,
        forest: Forest,
        cells: bool = True,
        n_jobs: int = 1,
        rows: np.ndarray | None = None,
    ) -> None:
        """Take a new forest; then cells (angular, euclidean) reorder the stored rows.
        ``rows``: the present items' rows as the cells score them, if the build has them.
        Everything is computed first, then swapped in at once (see `_served`)."""
        grouped = None
        if cells and self.f > 0:  # zero-length vectors have nothing to group by
            grouped = build_cells(self._metric, self._store, self._present, forest, n_jobs, rows)
        store = self._store if grouped is None else self._store.take(grouped.row_ids, axis=0)
        sqnorm = self._compute_sqnorm(store)
        n_present = int(np.count_nonzero(self._present[: self._n]))
        with self._swapping():
            self._forest, self._cells, self._store = forest, grouped, store
            self._sqnorm, self._n_present = sqnorm, n_present

    def _stored(self, ids: np.ndarray, s: _Served | None = None) -> np.ndarray:
        """Stored rows of ``ids`` (a copy; float16 widened), whatever order the store keeps;
        of the state ``s`` (default: a snapshot now)."""
        s = self._snapshot()[0] if s is None else s
        ids = np.asarray(ids, np.int64)
        rows = ids if s.cells is None else s.cells.id_rows.take(ids)
        return widen(s.store.take(rows, axis=0))

    def get_n_cells(self) -> int:
        """Cells a ``probe`` search chooses from (0: none; see `query`)."""
        return 0 if self._cells is None else self._cells.n_cells

    def _compute_sqnorm(self, store: np.ndarray) -> np.ndarray | None:
        return squared_norms(store) if self._metric.needs_sqnorm else None

    def unbuild(self) -> bool:
        """Drop the trees so items can be added again.

        An index an `on_disk_build` built goes back to adding items beside its file, as
        annoy's does; the next ``build()`` rewrites the file.  Other loaded indexes refuse.
        """
        with self._lock:
            if self._mapped is not None:
                if self._disk_built is None or self._disk_built != self.path:
                    raise RuntimeError("You can't unbuild a loaded index")
                self._reopen_on_disk()
                return True
            store = self._store
            if self._cells is not None:  # back to id order, where add_item writes
                store = self._store.take(self._cells.id_rows, axis=0)
            with self._swapping():
                self._store, self._cells, self._sqnorm, self._forest = store, None, None, None
        return True

    def _reopen_on_disk(self) -> None:
        """Items of the file an on_disk_build() wrote copied back to ``fn + ".items"`` (never
        into memory), labels and metadata kept, no trees: on_disk_build's state before build."""
        path, n, mapped = self._disk_built, self._n, self._mapped
        assert path is not None and mapped is not None
        labels, metadata = self.labels, self.metadata
        present = np.array(self._present[:n], bool)
        items = path + ".items"
        with open(items, "wb") as fh:  # block by block: the items need not fit in memory
            for lo in range(0, n, 1 << 16):
                fh.write(np.ascontiguousarray(self._store[lo : lo + (1 << 16)]).tobytes())
        state = self._empty_state()
        if n:
            shape = (n, self._store.shape[1])
            state["_store"] = np.memmap(items, dtype=self._store.dtype, mode="r+", shape=shape)
        state.update(_present=present, _n=n, _metadata=metadata)
        self._set_state(state)
        self._labels = None if labels is None else np.array(labels, copy=True)
        self._on_disk = path
        mapped.close()

    def on_disk_build(self, fn: str | os.PathLike[str]) -> bool:
        """Build straight into ``fn``, for indexes larger than memory (call before adding items).

        Added items go to ``fn + ".items"``, memory-mapped, and the build reads them in place;
        ``build()`` then writes ``fn`` (atomically), removes the items file and serves the
        index from ``fn``.
        """
        if self._n or self._forest is not None or self._mapped is not None:
            raise RuntimeError("on_disk_build() must be called before adding items")
        path = os.path.abspath(os.fspath(fn))  # build() saves here, even after a chdir
        open(path + ".items", "wb").close()  # fail now, not after adding items, if unwritable
        self._on_disk = path
        return True

    # -- querying ---------------------------------------------------------------------------
    def _cut_scale(self, qt: np.ndarray) -> np.ndarray:
        """Angular and dot margins grow with the query's norm; other metrics' do not."""
        if self._metric.name in ("angular", "dot"):
            return np.sqrt(np.einsum("ij,ij->i", qt, qt, dtype=np.float64))
        return np.ones(len(qt))

    def _query_block(
        self, s: _Served, q: np.ndarray, k: int, search_k: int, probe: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        forest, cells = s.forest, s.cells
        m = self._metric
        q_stored = m.store(q)
        rows = None if cells is None else cells.id_rows  # checks a loaded file's order first
        if probe is not None:
            assert cells is not None and s.sqnorm is not None
            cand = probe_candidates(m, q_stored, s.store, s.sqnorm, cells, probe, k)
        elif search_k >= s.n_present * max(forest.n_trees, 1):
            # the search would collect every item: exact search, blockwise
            if m.name in ("angular", "euclidean", "dot") and s.n_present > EXACT_MIN:
                scan = np.flatnonzero(s.present) if cells is None else np.arange(cells.ptr[-1])
                cand = exact_candidates(
                    m,
                    q_stored,
                    s.store,
                    s.sqnorm,
                    scan,
                    k,
                    None if cells is None else cells.row_ids,
                )
            else:
                cand = np.broadcast_to(np.flatnonzero(s.present), (len(q), s.n_present))
        else:
            qt = m.query_space(q, self.f)
            scale = self._cut_scale(qt)
            seen = self._cuts.get(search_k)
            # a first threshold from the cuts of earlier queries, a little low so one pass
            # usually suffices; speed only: the result never depends on it
            if seen is None:
                tau0 = None
            else:  # np.partition: np.quantile's overhead is ~5% of a one-query call
                at = int(FIRST_CUT_QUANTILE * (len(seen) - 1))
                tau0 = np.partition(seen, at)[at] * scale
            was = self._shares.get(search_k, SEARCH_SHARE)
            qid, leaf, share, cut = collect_leaves(forest, m, qt, search_k, was, tau0)
            self._shares[search_k] = float(np.exp(0.7 * np.log(was) + 0.3 * np.log(share)))
            ok = np.isfinite(cut) & (scale > 0)
            if ok.any():
                recent = np.concatenate([seen if seen is not None else [], cut[ok] / scale[ok]])
                self._cuts[search_k] = recent[-256:]
            cand = candidates(forest, qid, leaf, len(q), s.n)
        ids, d = rank(m, q_stored, cand, s.store, s.sqnorm, k, rows)
        return ids, m.returned(d)

    def query(
        self, X: Any, k: int, search_k: int = -1, *, probe: int | None = None, n_jobs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items of every row of ``X``.

        Returns ``(ids, distances)``: int64 and float32 arrays of shape (n_queries, k), best
        first, padded with -1 and inf (-inf for dot) where fewer than ``k`` items are found.
        Row ``i`` equals ``get_nns_by_vector(X[i], k, search_k, include_distances=True)``.

        ``search_k`` is annoy's: how many candidate items the walk through the trees collects
        before ranking them (-1: ``k * n_trees``, annoy's default; larger is slower and finds
        more true neighbours).  A ``search_k`` of at least ``get_n_items() * get_n_trees()``
        (every item of every tree) searches exactly, by blocks of matrix products: for high
        recall on a large batch it is often the fastest setting.

        ``probe`` scans, instead of walking the trees, every item of the ``probe`` cells whose
        centroids are nearest the query (angular and euclidean indexes built in memory have
        about sqrt(n) cells, see `get_n_cells`); ``search_k`` is then unused.  The items
        of a cell are stored together, so this is one matrix product per cell: at the same
        recall usually several times faster than the trees, for one query as for a batch.

        A ``k`` beyond the number of items searches as ``k`` = the number of items would; the
        columns beyond it are padding (they still take their (n_queries, k) bytes).

        ``n_jobs`` threads share the query chunks (-1: every core); the answers are the same
        for any ``n_jobs``.
        """
        s = self._served("query")  # one state for the whole batch
        k = check.positive_int("k", k)
        search_k = check.search_k(search_k)
        return self._query(self._rows("X", X), k, search_k, probe, n_jobs, s)

    def _query(
        self,
        x: np.ndarray,
        k: int,
        search_k: int,
        probe: int | None,
        n_jobs: int = 1,
        s: _Served | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`query` of rows ``x`` already checked and rounded as the store keeps them
        (``get_nns_by_vector`` and ``query_items`` would otherwise check them twice), in the
        state ``s`` the rows were read from (default: a snapshot now)."""
        s = self._served("query") if s is None else s
        k = check.positive_int("k", k)
        search_k = check.search_k(search_k)
        if self._metric.is_hamming:
            x = (x > 0.5).astype(np.float32)
        sk = k * s.forest.n_trees if search_k == -1 else search_k
        if probe is not None:
            probe = check.positive_int("probe", probe)
            if s.cells is None:
                raise ValueError(
                    f"'probe' needs an index with cells (angular or euclidean, not built with "
                    f"on_disk_build); this {self.metric} index has none: use search_k"
                )
        if s.n_present == 0 or not len(x):
            ids = np.full((len(x), k), -1, np.int64)
            return ids, self._pad(np.full((len(x), k), np.inf, np.float32))
        # no answer holds more than the items: search for those, pad the rest (a huge k must
        # not size the search's work arrays); sk, from the k asked, keeps its meaning
        kk = min(k, s.n_present)
        if kk < k and len(x) * k > MAX_PADDED:
            raise ValueError(
                f"'k' must be at most {s.n_present} here, the number of items, or small "
                f"enough to pad {len(x)} rows to k columns (got {k})"
            )
        step = QUERY_CHUNK if probe is None else chunk_size(s.cells, probe, kk)
        chunks = range(0, len(x), step)
        work = lambda lo: self._query_block(s, x[lo : lo + step], kk, sk, probe)  # noqa: E731
        parts = thread_map(work, chunks, _n_jobs(n_jobs))
        ids = np.concatenate([p[0] for p in parts])
        d = np.concatenate([p[1] for p in parts])
        if kk < k:
            ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
            d = np.pad(d, ((0, 0), (0, k - kk)))
        return ids, self._pad(d, ids)

    def _pad(self, d: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        d = d.astype(np.float32, copy=False)
        if ids is not None:
            d[ids < 0] = -np.inf if self._metric.larger_is_better else np.inf
        elif self._metric.larger_is_better:
            d = -d
        return d

    def _item_ids(self, name: str, ids: Any, s: _Served) -> np.ndarray:
        """``ids`` (a 1-D sequence, or one id) as int64 ids of present items of state ``s``."""
        arr = np.atleast_1d(np.asarray(ids))
        if arr.ndim != 1:
            raise ValueError(f"'{name}' must be a 1-D sequence of item ids (got shape {arr.shape})")
        if not check.is_integer_array(arr):
            raise TypeError(f"'{name}' must be item ids (ints) (got dtype {arr.dtype})")
        arr = check.as_int64(name, arr)  # uint64 from 2**63 up would wrap negative
        bad = (arr < 0) | (arr >= s.n)
        if not bad.any():
            bad = ~s.present[arr]
        if bad.any():
            what = "is not an item" if np.ndim(ids) == 0 else "holds an id that is not an item"
            raise IndexError(
                f"'{name}' {what}: {int(arr[bad][0])} (items are 0..{s.n - 1}, holes excluded)"
            )
        return arr

    def _vectors_of(self, ids: np.ndarray, s: _Served) -> np.ndarray:
        """Float32 vectors of checked item ids (stored rows: no need to check them again)."""
        return self._metric.unstore(self._stored(ids, s), self.f)

    def query_items(
        self, ids: Any, k: int, search_k: int = -1, *, probe: int | None = None, n_jobs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """`query` for stored items (each item is normally its own first neighbour);
        ``search_k``, ``probe`` and ``n_jobs`` as there."""
        s = self._served("query")
        k = check.positive_int("k", k)
        x = self._vectors_of(self._item_ids("ids", ids, s), s)
        return self._query(x, k, search_k, probe, n_jobs, s)

    def _as_lists(self, ids: np.ndarray, d: np.ndarray, include: bool) -> Any:
        ok = ids[0] >= 0
        out = ids[0][ok].tolist()
        return (out, d[0][ok].tolist()) if include else out

    def get_nns_by_vector(
        self,
        vector: Any,
        n: int,
        search_k: int = -1,
        include_distances: bool = False,
        *,
        probe: int | None = None,
    ) -> Any:
        """The ``n`` nearest items of ``vector``: a list, or (ids, distances).

        ``probe``: scan the nearest cells instead of walking the trees (see `query`).
        """
        v = self._one_vector(vector)
        ids, d = self._query(v, self._list_size(n), search_k, probe)
        return self._as_lists(ids, d, include_distances)

    def get_nns_by_item(
        self,
        i: int,
        n: int,
        search_k: int = -1,
        include_distances: bool = False,
        *,
        probe: int | None = None,
    ) -> Any:
        """The ``n`` nearest items of item ``i``: a list, or (ids, distances).

        ``probe``: scan the nearest cells instead of walking the trees (see `query`).
        """
        i = check.integer("i", i)
        s = self._served("query")
        n = self._list_size(n)
        x = self._vectors_of(self._item_ids("i", i, s), s)
        ids, d = self._query(x, n, search_k, probe, 1, s)
        return self._as_lists(ids, d, include_distances)

    def _list_size(self, n: Any) -> int:
        """Annoy's ``n``, capped at the items: a list holds at most all of them, and a huge ``n``
        (``2**31 - 1`` for "all") must not size the search's arrays."""
        return min(check.positive_int("n", n), max(self._n_present, 1))

    def leaf_of(self, X: Any, tree: int = 0) -> np.ndarray:
        """Leaf of tree ``tree`` that each row of ``X`` falls in, following its margins.

        For diagnostics and figures: one vectorized descent of all rows, level by level.
        A margin of exactly 0 goes to side 0.  Rows descend as queries do, so a stored item's
        row falls in the leaf holding it, except with ``dot``: its trees split items extended
        by a coordinate that queries have as 0.
        """
        forest = self._require_built("find leaves")
        t = check.integer("tree", tree)
        if not 0 <= t < forest.n_trees:
            raise IndexError(f"'tree' must be in [0, {forest.n_trees}) (got {t})")
        # rounded as queries are (float16 stores): a stored item's row falls in its own leaf
        # (dot aside, see above)
        x = self._metric.query_space(self._rows("X", X), self.f)
        ref = np.full(len(x), forest.roots[t], np.int64)
        rows = np.arange(len(x))
        while True:
            inner = np.flatnonzero(ref >= 0)
            if not len(inner):
                return -1 - ref
            s = ref[inner]
            m = self._metric.margins(x[rows[inner]], forest.normals[s], forest.offsets[s])
            ref[inner] = forest.children[s, (m > 0).astype(np.int64)]

    # -- items ------------------------------------------------------------------------------
    def get_item_vector(self, i: int) -> list[float]:
        """The vector of item ``i`` (hamming: 0/1 values)."""
        i = check.integer("i", i)
        s = self._snapshot()[0]
        return self._vectors_of(self._item_ids("i", i, s), s)[0].tolist()

    def get_item_vectors(self, ids: Any = None) -> np.ndarray:
        """Vectors of ``ids`` (default: all ids 0..get_n_items()-1) as a float32 (n, f) copy."""
        s = self._snapshot()[0]
        idx = np.arange(s.n) if ids is None else self._item_ids("ids", ids, s)
        return self._vectors_of(idx, s)

    def get_distance(self, i: int, j: int) -> float:
        """Annoy's distance between items ``i`` and ``j``."""
        s = self._snapshot()[0]
        a = self._item_ids("i", check.integer("i", i), s)
        b = self._item_ids("j", check.integer("j", j), s)
        q = self._stored(a, s)
        c = self._stored(b, s)[None]
        if self._metric.name in ("angular", "euclidean"):
            d = self._metric.exact(q.astype(np.float32), c.astype(np.float32))
        else:
            d = self._metric.rank(q, c, None, None)
        return float(self._metric.returned(d)[0, 0])

    def get_n_items(self) -> int:
        """Largest item id + 1 (holes included), as annoy."""
        return self._n

    def verify(self) -> bool:
        """Run now the checks a loaded file otherwise defers to its first use: tree and leaf
        pointers and leaf ids in range, cell row maps inverse permutations (O(nodes + items),
        no search), squared norms finite and hamming bits within ``f``.  Raises
        `IndexFileError` for a corrupted file; other vector values are not checked."""
        if self._forest is not None:
            self._require_built("verify")
        if self._cells is not None:
            self._cells.id_rows  # noqa: B018 - the property checks the maps once
        return True

    def get_n_holes(self) -> int:
        """Ids below `get_n_items` that were never added (one pass over the flags)."""
        return self._n - int(np.count_nonzero(self._present[: self._n]))

    def get_n_trees(self) -> int:
        """Number of trees (0 before build)."""
        return 0 if self._forest is None else self._forest.n_trees

    # -- labels and metadata --------------------------------------------------------------------
    def set_labels(self, labels: Sequence[Any] | np.ndarray | None) -> None:
        """Attach one unique str or int label per id 0..get_n_items()-1 (stored in the file);
        None drops them.

        Items may be added afterwards only under ids the labels cover (overwriting an item
        keeps its label); a new id beyond them raises, since it would have no label.
        On a loaded index the labels change in memory and are written by the next save();
        until then a pickle of the index carries them beside the file's path.
        """
        new = None if labels is None else _labels.normalize(labels, self._n)
        with self._labels_lock:  # not undone by a thread decoding the file's labels meanwhile
            self._labels, self._label_arrays, self._label_index = new, None, None

    @property
    def labels(self) -> np.ndarray | None:
        """Labels of ids 0..get_n_items()-1 (object array of str, or int64), or None."""
        held, stored = self._labels, self._label_arrays
        if held is None and stored is not None:
            held, lookup = _labels.decode(*stored, self._n, str(self.path))
            with self._labels_lock:  # kept unless set_labels() changed them while decoding
                if self._label_arrays is stored and self._labels is None:
                    self._labels = held
                    if lookup is not None:
                        self._label_index = (held, lookup)
        return held

    def ids_for(self, labels: Any) -> np.ndarray:
        """Int64 ids of a sequence of ``labels`` (KeyError naming the first unknown label).

        One label (a str or an int) gives one id: ``ids_for("king")`` is ``ids_for(["king"])``,
        not a lookup of each character.
        """
        if labels is None:
            raise TypeError("'labels' must be a label or a sequence of labels (got None)")
        lab = self.labels
        if lab is None:
            raise KeyError("this index has no labels; use item ids")
        cached = self._label_index  # (labels, their lookup): built for these labels only
        if cached is not None and cached[0] is lab:
            index = cached[1]
        else:
            index = {v: i for i, v in enumerate(lab.tolist())}
            with self._labels_lock:
                if self._labels is lab:
                    self._label_index = (lab, index)
        if isinstance(labels, np.ndarray) and labels.ndim == 0:
            labels = labels.item()
        if isinstance(labels, (str, bytes, np.generic)) or not hasattr(labels, "__iter__"):
            # one label, also of a type no label has (20.0): reported as unknown, not iterated
            keys = [labels.item() if isinstance(labels, np.generic) else labels]
        else:
            keys = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)
        out = np.empty(len(keys), np.int64)
        for pos, key in enumerate(keys):  # a dict lookup per label: no array form for hashing
            try:
                out[pos] = index[key]
            except (KeyError, TypeError):
                raise KeyError(f"unknown label {key!r}") from None
        return out

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Attach a small JSON-serialisable dict (stored in the file).

        On a loaded index the metadata changes in memory and is written by the next save();
        until then a pickle of the index carries them beside the file's path.
        """
        if not isinstance(metadata, Mapping):
            raise TypeError(f"'metadata' must be a dict (got {type(metadata).__name__})")
        try:
            text = json.dumps(dict(metadata), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"'metadata' must be JSON-serialisable ({exc})") from None
        self._metadata = json.loads(text)

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of the metadata dict."""
        return json.loads(json.dumps(self._metadata))

    # -- files ------------------------------------------------------------------------------
    def _fields_and_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        forest = self._require_built("save")
        arrays: dict[str, np.ndarray] = {
            "vectors": self._store,
            "present": self._present.view(np.uint8),
            "normals": forest.normals,
            "offsets": forest.offsets,
            "children": forest.children,
            "counts": forest.counts,
            "leaf_ptr": forest.leaf_ptr,
            "leaf_items": forest.leaf_items,
            "roots": forest.roots,
        }
        if self._sqnorm is not None:
            arrays["sqnorm"] = self._sqnorm
        if self._cells is not None:
            arrays.update(self._cells.arrays())
        kind = None
        lab = self.labels
        if lab is not None:
            kind, extra = _labels.to_arrays(lab)
            arrays.update(extra)
        fields = {
            "f": self.f,
            "metric": self.metric,
            "n_items": self._n,
            "n_trees": forest.n_trees,
            "leaf_size": self.leaf_size,
            "seed": self.seed,
            "labels": kind,
            "metadata": self._metadata,
            "format": "annoy-adapters",
        }
        return fields, arrays

    def save(self, fn: str | os.PathLike[str], prefault: bool = False) -> bool:
        """Write the index atomically to ``fn``; afterwards it is served from that file.

        ``prefault``: as in `load`, for the new mapping.
        """
        with self._lock:  # what is written is what is then served, whatever other threads do
            fields, arrays = self._fields_and_arrays()
            ff.write(fn, fields, arrays)
            disk_built = self._disk_built
            self._attach(ff.Mapped(fn, prefault))
            if disk_built is not None and self.path == disk_built:  # still on_disk_build's file
                self._disk_built = disk_built
        return True

    def load(self, fn: str | os.PathLike[str], prefault: bool = False) -> bool:
        """Memory-map ``fn``: a native file, or an annoy ``.ann`` file (of this f and metric).

        ``prefault``: ask the OS to read the whole file ahead (``madvise(MADV_WILLNEED)``,
        annoy's ``MAP_POPULATE`` in spirit), so the first queries wait less for the disk; by
        default pages are read as searches touch them.  Loading takes about a millisecond
        whatever the size.
        """
        path = os.path.abspath(os.fspath(fn))  # what path and a pickle hold, whatever the cwd
        with self._lock:
            self._load(path, prefault)
        return True

    def _load(self, path: str, prefault: bool) -> None:
        if ff.is_native(path):
            mapped = ff.Mapped(path, prefault)
            got_f, got_metric = mapped.fields.get("f"), mapped.fields.get("metric")
            if got_f != self.f or got_metric != self.metric:
                mapped.close()
                raise IndexFileError(
                    f"{path} holds f={got_f}, metric={got_metric!r} but this index "
                    f"has f={self.f}, metric={self.metric!r}"
                )
            self._attach(mapped)
        else:
            # read whole before the swap: a file that is not a valid .ann leaves the index as
            # it was, and a querying thread never sees an empty index in between
            old = self._mapped
            self._set_state({**self._empty_state(), **read_ann(self, path, prefault)})
            if old is not None:
                old.close()

    def _attach(self, mapped: ff.Mapped) -> None:
        """Serve the index from an open native file, validating it first.

        The new content replaces the old attribute by attribute, never passing through an
        empty index, so a thread querying during a load() or save() of the same content does
        not see "not built"; the old map closes once no array views it.
        """
        old = self._mapped
        self._set_state({**self._empty_state(), **unpack(mapped, self)})
        if old is not None and old is not mapped:
            old.close()

    def unload(self) -> bool:
        """Forget the trees and items (and unmap any file)."""
        with self._lock:
            mapped = self._mapped
            self._reset()
        if mapped is not None:
            mapped.close()
        return True

    def export_annoy(self, fn: str | os.PathLike[str]) -> bool:
        """Write an annoy 1.17.3 ``.ann`` file of this index (ids only; labels are not kept)."""
        with self._lock:  # one state written whole, though other threads load or swap
            write_ann(self, os.fspath(fn))
        return True

    # -- pickling ---------------------------------------------------------------------------
    def __copy__(self) -> AnnoyIndex:
        """An independent copy: a shallow one would share the item store, which adding items
        writes in place (the copy's changes would show in the original under its trees)."""
        return copy.deepcopy(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> AnnoyIndex:
        """An independent copy.  A file-backed index shares its read-only map with the copy
        rather than reopening the path like a pickle does: the file may have been replaced or
        deleted since loading, and the index still answers from what it mapped."""
        with self._lock:  # not in the middle of another thread's load or swap
            return self._copied(memo)

    def _copied(self, memo: dict[int, Any]) -> AnnoyIndex:
        new = type(self).__new__(type(self))
        if self._mapped is None:
            new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
            return new
        # the content hash a pickle of the copy names the file by: read now, while the map
        # is open (an .ann file's is computed lazily, and the original may unload first)
        self._mapped.fields  # noqa: B018
        new.__dict__.update(self.__dict__)
        new.__dict__.pop("_generation", None)
        new._lock, new._labels_lock = threading.RLock(), threading.Lock()
        new._labels = None if self._labels is None else self._labels.copy()
        new._label_index, new._disk_built = None, None
        new._metadata = copy.deepcopy(self._metadata, memo)
        new._shares, new._cuts = dict(self._shares), dict(self._cuts)
        return new

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:  # not in the middle of another thread's load or swap
            return self._state_to_pickle()

    def _state_to_pickle(self) -> dict[str, Any]:
        base = {
            "f": self.f,
            "metric": self.metric,
            "leaf_size": self.leaf_size,
            "seed": self.seed,
            "verbose": self._verbose,
            "vector_dtype": self.vector_dtype,
        }
        if self._mapped is not None:
            return {**base, **self._file_state()}
        state = {
            **base,
            "n": self._n,
            "store": self._store[: self._n],
            "present": self._present[: self._n],
            "labels": self.labels,
            "metadata": self._metadata,
        }
        if self._forest is not None:
            state["forest"] = self._forest.__dict__
        if self._cells is not None:
            state["cells"] = self._cells.arrays()
        return state

    def _file_state(self) -> dict[str, Any]:
        """A file-backed index's pickle: the path and content hash, plus the labels and
        metadata set since loading (they live in memory until the next save())."""
        assert self._mapped is not None
        fields = self._mapped.fields
        state: dict[str, Any] = {"path": self.path, "content_hash": fields.get("content_hash")}
        if self._label_arrays is None and self._labels is not None:  # set_labels() since
            state["labels"] = _labels.to_arrays(self._labels)  # plain arrays, as in the file
        elif self._label_arrays is None and fields.get("labels"):  # set_labels(None) since
            state["labels"] = None
        if self._metadata != fields.get("metadata", {}):
            state["metadata"] = self._metadata
        return state

    def _restore_unsaved(self, state: dict[str, Any]) -> None:
        """Reapply the labels and metadata a file-backed pickle carries beside its path."""
        if "labels" in state:
            held = state["labels"]
            self._labels = None if held is None else _labels.from_arrays(*held, self._n)
            self._label_arrays, self._label_index = None, None
        if "metadata" in state:
            self.set_metadata(state["metadata"])

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(
            state["f"],
            state["metric"],
            leaf_size=state["leaf_size"],
            seed=state["seed"],
            vector_dtype=state.get("vector_dtype", "float32"),
        )
        self._verbose = state["verbose"]
        if "path" in state:
            self.load(state["path"])
            if self._mapped is not None and (
                self._mapped.fields.get("content_hash") != state["content_hash"]
            ):
                path = state["path"]
                self.unload()
                raise IndexFileError(
                    f"{path} changed since this index was pickled (content hash differs)"
                )
            self._restore_unsaved(state)
            return
        self._n, self._store, self._present = state["n"], state["store"], state["present"]
        self._n_present = int(self._present.sum())
        self._metadata = state["metadata"]
        if state["labels"] is not None:
            self._labels = state["labels"]
        if state.get("cells") is not None:
            self._cells = Cells.from_arrays("pickle", state["cells"], self._present, self.f)
        if "forest" in state:
            self._forest = Forest(**state["forest"])
            self._sqnorm = self._compute_sqnorm(self._store)
