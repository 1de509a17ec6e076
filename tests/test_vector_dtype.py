"""``vector_dtype="float16"``: vectors kept in half the bytes, searched as their float32 values.

The reference is a float32 index built on the same vectors rounded to float16: trees, cells
and answers must be identical, since every search widens the rows it reads.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import brute_force, clustered

from annoy_adapters import AnnoyIndex, IndexFileError, load
from annoy_adapters.core import _fileformat as ff
from annoy_adapters.core import assemble, build_trees
from annoy_adapters.core._metrics import HALF_SCALE, as_single, half_scaled

FLOAT_METRICS = ["angular", "euclidean", "manhattan", "dot"]
F = 16


def _pair(metric: str, n: int = 6000, trees: int = 5, **build) -> tuple:
    x = clustered(n, F, seed=1)
    half = AnnoyIndex(F, metric, seed=7, vector_dtype="float16")
    half.add_items(x)
    half.build(trees, **build)
    ref = AnnoyIndex(F, metric, seed=7)
    ref.add_items(x.astype(np.float16).astype(np.float32))
    ref.build(trees, **build)
    return half, ref, x


def _queries(n: int = 40) -> np.ndarray:
    return clustered(n, F, seed=2)


def _rounded(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).astype(np.float32)


@pytest.mark.parametrize("metric", FLOAT_METRICS)
def test_a_float16_index_answers_as_float32_on_the_rounded_vectors(metric: str) -> None:
    half, ref, x = _pair(metric)
    q = _queries()
    assert half.vector_dtype == "float16" and ref.vector_dtype == "float32"
    assert half._store.dtype == np.float16 and half._store.nbytes * 2 == ref._store.nbytes
    np.testing.assert_array_equal(half.get_item_vectors(), x.astype(np.float16).astype(np.float32))
    assert half.get_item_vector(3) == x[3].astype(np.float16).astype(np.float32).tolist()
    searches = [{"search_k": s} for s in (-1, 200, 5000, 10**9)]
    if metric in ("angular", "euclidean"):
        searches += [{"probe": p} for p in (1, 6, 10**6)]
    # queries are rounded as the vectors are: an item's own vector finds it at distance 0
    for how in searches:
        for a, b in zip(half.query(q, 10, **how), ref.query(_rounded(q), 10, **how), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=str(how))
        assert half.get_nns_by_vector(q[0], 7, include_distances=True, **how) == (
            ref.get_nns_by_vector(_rounded(q[0]), 7, include_distances=True, **how)
        )
    if metric != "dot":  # (dot's best match is the longest vector, not itself)
        own_ids, own_d = half.query(x[:50], 1, search_k=10**9)
        assert own_ids[:, 0].tolist() == list(range(50)) and not own_d.any()
    assert half.get_nns_by_item(5, 6) == ref.get_nns_by_item(5, 6)
    assert half.get_distance(1, 2) == ref.get_distance(1, 2)


def test_widening_gives_astypes_bits_for_every_half_and_scaled_rows_the_same_products() -> None:
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    want = every.astype(np.float32)
    assert np.array_equal(as_single(every).view(np.uint32), want.view(np.uint32))  # NaNs too
    grid = every.reshape(256, 256)[::3, 1::2]  # strided, as slices of a store arrive
    assert np.array_equal(as_single(grid).view(np.uint32), grid.astype(np.float32).view(np.uint32))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(half_scaled(every)[finite] * HALF_SCALE, want[finite])
    rows = clustered(300, F, seed=3).astype(np.float16)
    q = _rounded(_queries(5))
    np.testing.assert_array_equal(
        (q * HALF_SCALE) @ half_scaled(rows).T, q @ rows.astype(np.float32).T
    )


@pytest.mark.parametrize("metric", ["angular", "euclidean"])
def test_exact_recall_over_float16_against_the_float64_oracle(metric: str) -> None:
    half, _, x = _pair(metric, n=8000)
    q = _queries(100)
    want = np.argsort(brute_force(metric, x, q), axis=1)[:, :10]
    got, _ = half.query(q, 10, search_k=10**9)
    hits = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want, strict=True)])
    assert hits >= 0.99, hits  # rounding to 11 bits only swaps near-ties (measured 1.0)


def test_the_file_keeps_float16_vectors_and_half_their_bytes(tmp_path) -> None:
    half, ref, _ = _pair("euclidean")
    half.save(tmp_path / "half.annoy")
    ref.save(tmp_path / "ref.annoy")
    a, b = ff.Mapped(tmp_path / "half.annoy"), ff.Mapped(tmp_path / "ref.annoy")
    assert a.arrays["vectors"].dtype.str == "<f2" and b.arrays["vectors"].dtype.str == "<f4"
    saved = b.arrays["vectors"].nbytes - a.arrays["vectors"].nbytes
    assert saved == 6000 * F * 2 and b.size - a.size >= saved - 128
    # every other array is the same: the trees were built from the same values
    for name in b.arrays:
        if name != "vectors":
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name], err_msg=name)
    a.close()
    b.close()
    q = _queries()
    plain = AnnoyIndex(F, "euclidean")  # a float32 index object takes the file's dtype
    plain.load(tmp_path / "half.annoy")
    assert plain.vector_dtype == "float16" and "vector_dtype='float16'" in repr(plain)
    for how in ({"search_k": 300}, {"probe": 4}):
        want = ref.query(_rounded(q), 5, **how)[0]
        np.testing.assert_array_equal(plain.query(q, 5, **how)[0], want)
    plain.unload()
    assert plain.vector_dtype == "float32"


def test_pickles_keep_the_dtype_and_the_answers(tmp_path) -> None:
    half, ref, _ = _pair("angular")
    q = _queries()
    memory = pickle.loads(pickle.dumps(half))
    assert memory.vector_dtype == "float16"
    want = ref.query(_rounded(q), 5, probe=3)[0]
    np.testing.assert_array_equal(memory.query(q, 5, probe=3)[0], want)
    half.save(tmp_path / "h.annoy")
    mapped = pickle.loads(pickle.dumps(half))
    assert mapped.path == half.path and mapped.vector_dtype == "float16"
    memory.unbuild()  # back to adding: new items are rounded too, the store stays float16
    memory.add_item(6000, np.full(F, 1 / 3))
    assert memory.get_item_vector(6000)[0] == float(np.float16(1 / 3))
    memory.build(3)
    assert memory.vector_dtype == "float16" and memory.get_nns_by_item(6000, 1) == [6000]


def test_same_bytes_whatever_n_jobs_and_on_disk(tmp_path) -> None:
    x = clustered(3000, F, seed=4)
    paths = []
    for jobs in (1, 2):
        index = AnnoyIndex(F, "euclidean", seed=3, vector_dtype="float16")
        index.add_items(x)
        index.build(6, n_jobs=jobs)
        paths.append(tmp_path / f"j{jobs}.annoy")
        index.save(paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    disk = AnnoyIndex(F, "euclidean", seed=3, vector_dtype="float16")
    disk.on_disk_build(str(tmp_path / "disk.annoy"))
    disk.add_items(x)
    assert (tmp_path / "disk.annoy.items").stat().st_size >= len(x) * F * 2
    disk.build(6)
    mem = load(paths[0])
    q = _queries()
    assert disk.vector_dtype == "float16" and disk.get_n_cells() == 0  # on-disk: no cells
    np.testing.assert_array_equal(disk.query(q, 5, search_k=500)[0], mem.query(q, 5, 500)[0])


def test_tree_parts_assemble_to_the_local_bytes(tmp_path) -> None:
    x = clustered(2000, F, seed=5)
    np.save(tmp_path / "x.npy", x)
    parts = [
        build_trees(tmp_path / "x.npy", "angular", t, seed=9, vector_dtype="float16")
        for t in ([0, 2], [1])
    ]
    built = assemble(
        tmp_path / "x.npy", "angular", parts, tmp_path / "parts.annoy", seed=9,
        vector_dtype="float16",
    )  # fmt: skip
    local = AnnoyIndex(F, "angular", seed=9, vector_dtype="float16")
    local.add_items(x)
    local.build(3)
    local.save(tmp_path / "local.annoy")
    assert built.vector_dtype == "float16"
    assert (tmp_path / "parts.annoy").read_bytes() == (tmp_path / "local.annoy").read_bytes()
    with pytest.raises(ValueError, match="vector_dtype"):
        assemble(tmp_path / "x.npy", "angular", parts, tmp_path / "mixed.annoy", seed=9)


def test_bad_vector_dtype_values_and_vectors_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"'vector_dtype' must be 'float32' or 'float16' \(got"):
        AnnoyIndex(4, "angular", vector_dtype="float64")
    with pytest.raises(ValueError, match="'vector_dtype' must be 'float32' or 'float16'"):
        AnnoyIndex(4, "angular", vector_dtype=np.float16)
    with pytest.raises(ValueError, match="'vector_dtype' must be 'float32' for hamming"):
        AnnoyIndex(4, "hamming", vector_dtype="float16")
    index = AnnoyIndex(2, "euclidean", vector_dtype="float16")
    index.add_items([[1.0, 65504.0]])  # the largest float16 is kept exactly
    with pytest.raises(ValueError, match=r"'X' must lie within \+-65504.*row 1 holds 70000"):
        index.add_items([[0.0, 1.0], [70000.0, 0.0]])
    assert index.get_n_items() == 1  # nothing of the refused batch was added
    index.build(1)
    with pytest.raises(ValueError, match=r"'X' must lie within \+-65504.*row 0 holds 1e\+06"):
        index.query([[1e6, 0.0]], 1)


def test_a_float16_hamming_file_is_refused(tmp_path) -> None:
    index = AnnoyIndex(64, "hamming", seed=1)
    index.add_items((clustered(300, 64) > 0).astype(np.float32))
    index.build(2)
    fields, arrays = index._fields_and_arrays()
    arrays["vectors"] = np.zeros(arrays["vectors"].shape, np.float16)
    ff.write(tmp_path / "bad.annoy", fields, arrays)
    with pytest.raises(IndexFileError, match=r"corrupted \(float16 vectors in a hamming index"):
        load(tmp_path / "bad.annoy")


def test_float16_files_are_version_4_and_version_3_never_holds_them(tmp_path) -> None:
    half, ref, _ = _pair("angular", n=300)
    half.save(tmp_path / "half.annoy")
    ref.save(tmp_path / "ref.annoy")
    assert ff.Mapped(tmp_path / "half.annoy").version == 4  # older readers: "unsupported"
    assert ff.Mapped(tmp_path / "ref.annoy").version == 3  # float32 files stay readable
    raw = bytearray((tmp_path / "half.annoy").read_bytes())
    raw[8:12] = (3).to_bytes(4, "little")
    (tmp_path / "v3.annoy").write_bytes(bytes(raw))
    with pytest.raises(IndexFileError, match=r"array 'vectors' is <f2\(300, 16\), expected <f4"):
        load(tmp_path / "v3.annoy")


def test_float16_export_to_annoy_reads_back_the_rounded_vectors(tmp_path) -> None:
    annoy = pytest.importorskip("annoy")
    half, ref, _ = _pair("angular", n=500)
    half.export_annoy(tmp_path / "h.ann")
    theirs = annoy.AnnoyIndex(F, "angular")
    theirs.load(str(tmp_path / "h.ann"))
    for i in (0, 17, 499):
        assert theirs.get_item_vector(i) == ref.get_item_vector(i)
    q = _queries(5)
    for v in q:  # annoy's own search of our trees, over every leaf: the exact answer
        assert theirs.get_nns_by_vector(_rounded(v).tolist(), 5, search_k=10**6) == (
            ref.get_nns_by_vector(_rounded(v), 5, search_k=10**9)
        )
