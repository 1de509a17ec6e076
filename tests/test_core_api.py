"""Annoy's documented behaviour, hand-checked small cases, and every error path of the core."""

from __future__ import annotations

import math
import pickle
import threading

import numpy as np
import pytest
from conftest import data_for

from annoy_adapters import METRICS, AnnoyIndex


def small(metric: str) -> AnnoyIndex:
    index = AnnoyIndex(2, metric)
    for i, v in enumerate([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]]):
        index.add_item(i, v)
    index.build(3)
    return index


def test_hand_checked_angular() -> None:
    index = small("angular")
    ids, d = index.get_nns_by_vector([1.0, 0.1], 4, include_distances=True)
    assert ids == [0, 2, 1, 3]
    assert d[0] == pytest.approx(math.sqrt(2 - 2 * 1 / math.hypot(1, 0.1)), rel=1e-5)
    assert index.get_distance(0, 1) == pytest.approx(math.sqrt(2), rel=1e-6)


def test_hand_checked_euclidean_manhattan_dot() -> None:
    e = small("euclidean")
    assert e.get_nns_by_vector([0.9, 0.0], 2, include_distances=True) == (
        [0, 2],
        [pytest.approx(0.1, rel=1e-5), pytest.approx(math.hypot(0.1, 1), rel=1e-5)],
    )
    m = small("manhattan")
    assert m.get_distance(0, 3) == pytest.approx(2.5)
    d = small("dot")
    ids, dist = d.get_nns_by_vector([1.0, 1.0], 4, include_distances=True)
    assert ids[0] == 2 and dist[0] == pytest.approx(2.0)
    assert dist == sorted(dist, reverse=True)  # largest inner product first


def test_hand_checked_hamming() -> None:
    index = AnnoyIndex(70, "hamming")
    a = np.zeros(70)
    b = a.copy()
    b[[0, 65, 69]] = 1
    c = a.copy()
    c[64] = 1
    for i, v in enumerate([a, b, c]):
        index.add_item(i, v)
    index.build(2)
    assert index.get_distance(0, 1) == 3 and index.get_distance(1, 2) == 4
    assert index.get_nns_by_vector(b, 3, include_distances=True) == (
        [1, 2, 0],
        [0.0, 3.0, 3.0],
    ) or index.get_nns_by_vector(b, 3, include_distances=True) == ([1, 0, 2], [0.0, 3.0, 4.0])
    assert index.get_item_vector(1)[65] == 1.0 and len(index.get_item_vector(1)) == 70


def test_zero_vector_angular_is_sqrt2() -> None:
    index = AnnoyIndex(3, "angular")
    index.add_item(0, [0, 0, 0])
    index.add_item(1, [1, 0, 0])
    index.build(1)
    assert index.get_distance(0, 1) == pytest.approx(math.sqrt(2))


def test_holes_never_returned_and_n_items_counts_them(metric: str) -> None:
    index = AnnoyIndex(4, metric)
    x = data_for(metric, 30, 4)
    index.add_items(x, ids=np.arange(0, 60, 2))
    index.build(5)
    assert index.get_n_items() == 59
    ids, _ = index.query(x, 59, search_k=10_000)
    got = ids[ids >= 0]
    assert (got % 2 == 0).all()
    assert (ids >= 0).sum(axis=1).max() == 30
    with pytest.raises(IndexError, match="not an item"):
        index.get_nns_by_item(1, 3)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_indexes(metric: str, n: int) -> None:
    index = AnnoyIndex(3, metric)
    x = data_for(metric, max(n, 1), 3)[:n]
    index.add_items(x)
    index.build(4)
    assert index.get_n_items() == n and index.get_n_trees() == 4
    ids, dist = index.query(np.ones((2, 3), np.float32), 5)
    assert ids.shape == (2, 5) and (ids[:, n:] == -1).all() and (ids[:, :n] >= 0).all()
    assert np.isinf(dist[:, n:]).all()
    assert len(index.get_nns_by_vector([1, 1, 1], 5)) == n


def test_n_larger_than_index_returns_all(metric: str) -> None:
    index = AnnoyIndex(5, metric)
    index.add_items(data_for(metric, 12, 5))
    index.build(3)
    ids, d = index.get_nns_by_item(0, 100, include_distances=True)
    assert sorted(ids) == list(range(12)) and len(d) == 12


def test_return_types_are_annoys() -> None:
    index = small("euclidean")
    out = index.get_nns_by_item(0, 2)
    assert isinstance(out, list) and all(isinstance(i, int) for i in out)
    _ids, d = index.get_nns_by_item(0, 2, include_distances=True)
    assert isinstance(d, list) and all(isinstance(v, float) for v in d)
    assert isinstance(index.get_item_vector(0), list)
    assert isinstance(index.get_distance(0, 1), float)
    assert index.f == 2 and index.get_n_trees() == 3
    assert index.build  # methods exist with annoy's names
    assert index.verbose(False) is True


def test_batch_api_types() -> None:
    index = small("angular")
    ids, d = index.query(np.eye(2), 3)
    assert ids.dtype == np.int64 and d.dtype == np.float32 and ids.shape == (2, 3)
    assert (np.diff(d, axis=1) >= 0).all()


def test_int64_ids_beyond_int32() -> None:
    index = AnnoyIndex(2, "euclidean")
    big = 2**31 + 5
    index.add_items(np.array([[0.0, 0.0]]), ids=[3])
    assert index.add_items(np.array([[1.0, 1.0]]), ids=np.array([7], np.int64))[0] == 7
    index.build(1)
    assert index.get_nns_by_vector([1, 1], 1) == [7]
    assert big > np.iinfo(np.int32).max  # ids are int64 throughout (no 2**31 limit)
    assert index.query([[1, 1]], 1)[0].dtype == np.int64


def _saved_bytes(
    path,
    metric: str,
    x: np.ndarray,
    n_trees: int = 6,
    n_jobs: int = -1,
    ids: np.ndarray | None = None,
    **index_kw,
) -> tuple[AnnoyIndex, bytes]:
    """Build an index of ``x`` (seed 7 unless given), save it to ``path``: it and its bytes."""
    index = AnnoyIndex(x.shape[1], metric, **{"seed": 7, **index_kw})
    index.add_items(x, ids=ids)
    index.build(n_trees, n_jobs=n_jobs)
    index.save(path)
    return index, path.read_bytes()


def test_deterministic_bytes_whatever_n_jobs(tmp_path, metric: str) -> None:
    x = data_for(metric, 3000, 8)
    blobs = [_saved_bytes(tmp_path / f"{j}.idx", metric, x, n_jobs=j)[1] for j in (1, 2)]
    assert blobs[0] == blobs[1]
    _, other = _saved_bytes(tmp_path / "other.idx", metric, x, seed=8)
    assert other != blobs[0]


@pytest.mark.parametrize("metric", ["angular", "dot"])
def test_same_bytes_with_and_without_the_unit_row_cache(tmp_path, monkeypatch, metric) -> None:
    import annoy_adapters.core._treespace as treespace

    x = data_for(metric, 3000, 8)
    x[:20] = 0  # zero rows: unit rows are 0 both ways
    blobs = []
    for budget in (treespace.UNIT_CACHE_BYTES, 0):  # cached, then computed at every level
        monkeypatch.setattr(treespace, "UNIT_CACHE_BYTES", budget)
        blobs.append(_saved_bytes(tmp_path / f"{budget}.idx", metric, x)[1])
    assert blobs[0] == blobs[1]


@pytest.mark.parametrize(
    ("metric", "vector_dtype", "gaps"),
    [(m, "float32", False) for m in ("angular", "euclidean", "dot")]
    + [("euclidean", "float16", False), ("angular", "float32", True), ("dot", "float32", True)],
)
def test_same_bytes_whether_squared_norms_are_held_or_computed(
    tmp_path, monkeypatch, metric, vector_dtype, gaps
) -> None:
    """Two-means reads its samples' squared norms from the tree space when it holds them;
    they must be the norms of the very rows it samples (ids with gaps shift those rows)."""
    from annoy_adapters.core._treespace import TreeSpace

    x = data_for(metric, 3000, 8)
    ids = np.arange(len(x)) * (3 if gaps else 1)
    held = []
    squares = TreeSpace.squares
    monkeypatch.setattr(
        TreeSpace,
        "squares",
        lambda self, items: held.append(self.sq is not None) or squares(self, items),
    )
    blobs = []
    for computed in (False, True):
        if computed:
            monkeypatch.setattr(TreeSpace, "squares", lambda self, items: None)
        path = tmp_path / f"{computed}.idx"
        blobs.append(_saved_bytes(path, metric, x, 6, 1, ids, vector_dtype=vector_dtype)[1])
    assert held and all(held)
    assert blobs[0] == blobs[1]


@pytest.mark.parametrize(
    ("metric", "vector_dtype", "unit_cache"),
    [(m, "float32", True) for m in ("angular", "euclidean", "manhattan", "dot")]
    + [("euclidean", "float16", True), ("angular", "float16", False)],
)
def test_same_bytes_whether_margins_are_scanned_or_gathered(
    tmp_path, monkeypatch, metric, vector_dtype, unit_cache
) -> None:
    """The build reads all rows in place while most items are open and gathers the open
    items' rows later; both must split every node alike (tree parts built apart,
    as the Dask build does, take the two paths at different levels).  The scans carry their
    map of (tree, item) slots to nodes from level to level: it must match a fresh one."""
    import annoy_adapters.core._build as build
    import annoy_adapters.core._treespace as treespace

    if not unit_cache:  # float16 rows then stay half and are widened at every read
        monkeypatch.setattr(treespace, "UNIT_CACHE_BYTES", 0)
    scans, carried = [], []
    scan, carry = build._Chunk._scan_margins, build._Chunk._next_planes

    def next_planes(self, *a) -> None:  # the scans' map carried to the next level, or not
        carry(self, *a)
        carried.append(self._plane_level == self.level + 1)

    monkeypatch.setattr(
        build._Chunk, "_scan_margins", lambda self, *a: scans.append(1) or scan(self, *a)
    )
    monkeypatch.setattr(build._Chunk, "_next_planes", next_planes)
    x = data_for(metric, 3000, 8)
    x[:10] = x[10]  # duplicates: zero margins and random sides on both paths
    blobs = []
    for share in (0.0, 2.0):  # scan at every level, then never
        monkeypatch.setattr(build, "SCAN_SHARE", share)
        path = tmp_path / f"{share}.idx"
        blobs.append(_saved_bytes(path, metric, x, vector_dtype=vector_dtype)[1])
        assert bool(scans) == (share == 0.0)
        assert any(carried) == (share == 0.0)
        scans.clear()
        carried.clear()
    assert blobs[0] == blobs[1]


@pytest.mark.parametrize("metric", ["angular", "euclidean", "manhattan", "dot"])
def test_the_scans_carried_map_is_a_fresh_one(tmp_path, monkeypatch, metric) -> None:
    """The scans carry their map of (tree, item) slots to nodes from level to level, reading
    the sides in slot order; sides the scan did not give (ties, retried and random nodes)
    are patched in.  The trees must be those of a map made afresh at every level."""
    import annoy_adapters.core._build as build

    x = data_for(metric, 3000, 8)
    x[:300] = x[0]  # duplicates: unbalanced splits retried, then random sides, then ties
    carry = build._Chunk._next_planes
    patched = []

    def counting(self, side, *a) -> None:  # sides that differ from the scan's signs
        patched.append(int(np.count_nonzero(side != (self._scanned[1] > 0))))
        carry(self, side, *a)

    def fresh(self, *a) -> None:
        self._plane_level = -1

    blobs = []
    for name, next_planes in (("carried", counting), ("fresh", fresh)):
        monkeypatch.setattr(build._Chunk, "_next_planes", next_planes)
        blobs.append(_saved_bytes(tmp_path / f"{name}.idx", metric, x, 6, 1)[1])
    assert sum(patched) > 0
    assert blobs[0] == blobs[1]


@pytest.mark.parametrize(
    ("metric", "vector_dtype"),
    [("angular", "float16"), ("euclidean", "float16"), ("angular", "float32")],
)
def test_same_tree_space_whatever_n_jobs(monkeypatch, metric, vector_dtype) -> None:
    """The rows the trees read (widened float16, unit rows, squared norms) are prepared block
    by block on the build's threads: the arrays of a one-pass computation, on one thread or
    two."""
    import annoy_adapters.core._treespace as treespace
    from annoy_adapters.core._metrics import get_metric, squared_norms

    monkeypatch.setattr(treespace, "BLOCK", 256)  # 3,000 rows: 12 blocks
    stored = data_for(metric, 3000, 8).astype(vector_dtype)
    ids = np.arange(len(stored))
    for n_jobs in (1, 2):
        z = treespace.TreeSpace(get_metric(metric), stored, ids, 8, n_jobs)
        wide = stored.astype(np.float32)
        assert z.stored.dtype == np.float32 and z.stored.tobytes() == wide.tobytes()
        held = wide if z.unit is None else z._rows(ids)  # _rows: computed afresh, not held
        if z.unit is not None:
            assert z.unit.tobytes() == held.tobytes()
        assert z.sq.tobytes() == squared_norms(held).tobytes()


def test_same_bytes_whatever_the_chunks_of_trees(tmp_path, monkeypatch, metric) -> None:
    """Trees are built in chunks (at least one per thread); one tree per chunk, chunks of
    two and three, and one chunk of all trees must give the same file."""
    import annoy_adapters.core._build as build

    x = data_for(metric, 3000, 8)
    blobs = []
    for per_chunk, n_jobs in ((1, 1), (2, 1), (3, 2), (256, 1)):
        monkeypatch.setattr(build, "MAX_ROWS", per_chunk * len(x))
        path = tmp_path / f"{per_chunk}-{n_jobs}.idx"
        blobs.append(_saved_bytes(path, metric, x, 6, n_jobs)[1])
    assert all(b == blobs[0] for b in blobs[1:])


@pytest.mark.parametrize(
    ("n_trees", "n", "n_jobs", "sizes"),
    [
        (10, 390_000, 1, [5, 5]),  # MAX_ROWS = 2**21 rows: 5 GloVe trees
        (10, 390_000, 2, [5, 5]),
        (10, 200_000, 1, [10]),
        (10, 200_000, 2, [5, 5]),  # one chunk would leave a thread idle
        (25, 390_000, 2, [5, 4, 4, 4, 4, 4]),  # whole rounds of two threads
        (3, 390_000, 4, [1, 1, 1]),
        (7, 100, 1, [7]),
        (300, 100, 1, [150, 150]),  # at most 256 trees a chunk
        (2, 10_000_000, 1, [1, 1]),  # a tree alone beyond MAX_ROWS
        (0, 100, 2, []),
    ],
)
def test_chunks_of_trees(n_trees: int, n: int, n_jobs: int, sizes: list[int]) -> None:
    from annoy_adapters.core._build import _chunks

    chunks = _chunks(np.arange(n_trees) + 4, n, n_jobs)
    assert [len(c) for c in chunks] == sizes
    assert np.concatenate(chunks or [np.zeros(0, int)]).tolist() == list(range(4, n_trees + 4))


@pytest.mark.parametrize("metric", ["angular", "euclidean"])
def test_same_cells_whatever_n_jobs_across_assignment_blocks(tmp_path, monkeypatch, metric) -> None:
    """The cells' nearest-centroid passes run block by block on ``n_jobs`` threads."""
    import annoy_adapters.core._cells as cells

    monkeypatch.setattr(cells, "BLOCK", 256)  # 12 blocks, so both threads get some
    x = data_for(metric, 3000, 8)
    blobs = []
    for n_jobs in (1, 2):
        index, blob = _saved_bytes(tmp_path / f"{n_jobs}.idx", metric, x, 4, n_jobs)
        assert index.get_n_cells() > 1
        blobs.append(blob)
    assert blobs[0] == blobs[1]


def _mean_leaf_depth(index: AnnoyIndex) -> float:
    """Average depth of the items' leaves over all trees (root: 0)."""
    forest = index._forest
    sizes = np.diff(np.asarray(forest.leaf_ptr))
    refs, depth, total = np.asarray(forest.roots), 0, 0
    while len(refs):
        total += depth * sizes[-1 - refs[refs < 0]].sum()
        refs = np.asarray(forest.children)[refs[refs >= 0]].ravel()
        depth += 1
    return total / sizes.sum()


@pytest.mark.parametrize("metric", ["angular", "euclidean", "manhattan", "dot"])
def test_two_means_weighs_by_count_so_trees_stay_shallow(metric: str) -> None:
    """Annoy weighs a centroid's distance by its count, which balances the splits.  On data
    with heavy-tailed norms plain two-means cuts off a few far points at a time: without the
    weights these trees are 18-19 levels deep on average (euclidean, manhattan, dot)."""
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.standard_normal((n, 16)) * np.exp(rng.standard_normal((n, 1)))
    index = AnnoyIndex(16, metric, seed=0, leaf_size=18)
    index.add_items(x.astype(np.float32))
    index.build(4, cells=False)
    assert _mean_leaf_depth(index) < math.log2(n / 18) + 3.5  # 10.1 for a perfect split


def test_n_trees_minus_one_adds_trees_until_twice_the_items() -> None:
    index = AnnoyIndex(8, "angular", leaf_size=16)
    index.add_items(data_for("angular", 2000, 8))
    index.build(-1)
    assert index.get_n_trees() >= 1
    forest = index._forest
    assert 2000 + forest.n_splits + forest.n_leaves >= 2 * 2000


def test_unbuild_then_add_and_rebuild() -> None:
    index = small("euclidean")
    assert index.unbuild()
    index.add_item(4, [5.0, 5.0])
    index.build(2)
    assert index.get_nns_by_vector([5, 5], 1) == [4]


def test_thread_safe_concurrent_queries() -> None:
    x = data_for("angular", 3000, 16)
    index = AnnoyIndex(16, "angular")
    index.add_items(x)
    index.build(8)
    want = index.query(x[:300], 10)[0]
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(index.query(x[:300], 10)[0])

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all((r == want).all() for r in results)
    ids, _ = index.query(x[:300], 10, n_jobs=2)
    assert (ids == want).all()


def test_pickle_in_memory_index_keeps_content(metric: str) -> None:
    index = AnnoyIndex(6, metric)
    x = data_for(metric, 500, 6)
    index.add_items(x)
    index.build(3)
    index.set_labels([f"k{i}" for i in range(500)])
    index.set_metadata({"a": 1})
    copy = pickle.loads(pickle.dumps(index))
    assert (copy.query(x[:20], 4)[0] == index.query(x[:20], 4)[0]).all()
    assert copy.labels[7] == "k7" and copy.metadata == {"a": 1}


def test_labels_and_metadata() -> None:
    index = small("angular")
    index.set_labels(["a", "b", "c", "d"])
    assert index.ids_for(["c", "a"]).tolist() == [2, 0]
    with pytest.raises(KeyError, match="'zz'"):
        index.ids_for(["zz"])
    with pytest.raises(ValueError, match="unique"):
        index.set_labels(["a", "a", "b", "c"])
    with pytest.raises(TypeError, match="all str or all int"):
        index.set_labels(["a", 1, "b", "c"])
    with pytest.raises(ValueError, match="get_n_items"):
        index.set_labels(["a"])
    with pytest.raises(ValueError, match="JSON"):
        index.set_metadata({"x": object()})
    index.set_labels(np.array([10, 20, 30, 40]))
    assert index.ids_for([30]).tolist() == [2]


# -- errors ----------------------------------------------------------------------------------
def test_unknown_metric_names_the_valid_ones() -> None:
    with pytest.raises(
        ValueError, match=r"'metric' must be one of .*'angular'.*'hamming'.*got 'cos'"
    ):
        AnnoyIndex(3, "cos")
    assert set(METRICS) == {"angular", "euclidean", "manhattan", "dot", "hamming"}


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda i: i.add_item(9, [1.0]), IndexError, r"wrong length \(expected 2, got 1\)"),
        (lambda i: i.add_item(-1, [1.0, 2.0]), IndexError, "negative"),
        (lambda i: i.add_item(9, ["a", "b"]), TypeError, "numeric"),
        (lambda i: i.add_item(9, 3.0), TypeError, "sequence"),
        (lambda i: i.add_item(9, [np.nan, 1.0]), ValueError, "finite"),
        (lambda i: i.add_items(np.ones((3, 2)), ids=[1, 2]), ValueError, "'ids'"),
        (lambda i: i.add_items(np.ones((2, 2, 2))), ValueError, "2-D"),
        (
            lambda i: i.query(np.ones((1, 2)), 0),
            ValueError,
            r"'k' must be a positive int \(got 0\)",
        ),
        (lambda i: i.query(np.ones((1, 2)), -3), ValueError, r"\(got -3\)"),
        (lambda i: i.query(np.ones((1, 3)), 1), IndexError, "expected 2, got 3"),
        (lambda i: i.query([[np.inf, 0]], 1), ValueError, "'X' must be finite: row 0"),
        (lambda i: i.query(np.ones((1, 2)), 1, search_k=0), ValueError, "'search_k'"),
        (lambda i: i.get_nns_by_item(99, 1), IndexError, "99"),
        (lambda i: i.get_nns_by_vector([1.0, 2.0, 3.0], 1), IndexError, "wrong length"),
        (lambda i: i.get_distance(0, 99), IndexError, "'j'"),
        (lambda i: i.query_items([1.5], 1), TypeError, "ids"),
    ],
)
def test_error_messages(call, exc, match) -> None:
    with pytest.raises(exc, match=match):
        call(small("euclidean"))


def test_adding_after_build_and_building_twice_raise() -> None:
    index = small("euclidean")
    with pytest.raises(RuntimeError, match="already built; call unbuild"):
        index.add_item(5, [1.0, 1.0])
    with pytest.raises(RuntimeError, match="already built"):
        index.build(2)
    with pytest.raises(ValueError, match="'n_trees'"):
        AnnoyIndex(2).build(0)
    with pytest.raises(RuntimeError, match="not built"):
        AnnoyIndex(2).query(np.ones((1, 2)), 1)
    with pytest.raises(ValueError, match="'f' must be a positive int"):
        AnnoyIndex(-2)


def test_on_disk_build_reads_items_from_a_mapped_file(tmp_path, metric: str) -> None:
    x = data_for(metric, 3000, 10)
    target = tmp_path / "disk.annoy"
    index = AnnoyIndex(10, metric, seed=3)
    assert index.on_disk_build(target)
    for lo in range(0, 3000, 700):  # grows the items file several times
        index.add_items(x[lo : lo + 700])
    assert isinstance(index._store, np.memmap)  # items are not held in memory
    index.build(4)
    assert index.path == str(target) and not (tmp_path / "disk.annoy.items").exists()
    in_memory = AnnoyIndex(10, metric, seed=3)
    in_memory.add_items(x)
    in_memory.build(4, cells=False)  # an on-disk build never reorders its items into cells
    in_memory.save(tmp_path / "memory.annoy")
    assert target.read_bytes() == (tmp_path / "memory.annoy").read_bytes()
    late = AnnoyIndex(10, metric)
    late.add_items(x[:5])
    with pytest.raises(RuntimeError, match="before adding items"):
        late.on_disk_build(tmp_path / "late.annoy")
