"""The loaders under attack: damaged or hostile bytes give IndexFileError, never anything else.

Every example writes a mutated copy of a small valid file, loads it AND queries it (vectors,
search_k small and large, labels, metadata).  Allowed outcomes: a clean result, or
IndexFileError (also raised by a query that meets a corrupted leaf).  Any other exception fails,
and an alarm turns a hang into a failure.  Runs are derandomized so CI is reproducible.
"""

from __future__ import annotations

import json
import signal
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annoy_adapters import AnnoyIndex, IndexFileError, load
from annoy_adapters.core import _fileformat as ff

DATA = Path(__file__).parent / "data"
HANG_SECONDS = 10
FUZZ = settings(
    max_examples=80,
    deadline=5000,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    """Turn a hang into a TimeoutError (main thread, POSIX)."""

    def ring(signum: int, frame: object) -> None:
        raise TimeoutError(f"load or query did not finish within {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _exercise(open_index: Callable[[Path], AnnoyIndex], path: Path, f: int) -> None:
    q = np.random.default_rng(0).normal(size=(3, f)).astype(np.float32)
    with _alarm(HANG_SECONDS):
        try:
            index = open_index(path)
        except (IndexFileError, FileNotFoundError):
            return
        try:
            for sk in (-1, 3, 10**6):
                index.get_nns_by_vector(q[0], 5, search_k=sk, include_distances=True)
            index.query(q, 4, search_k=7)
            _ = index.labels, index.metadata, index.get_n_items(), index.get_n_trees()
        except IndexFileError:
            return
        finally:
            index.unload()


@pytest.fixture(scope="module")
def native_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    x = np.random.default_rng(3).normal(size=(30, 4)).astype(np.float32)
    index = AnnoyIndex(4, "euclidean", leaf_size=3, seed=2)
    index.add_items(x[1:], ids=np.arange(1, 30))  # id 0 is a hole
    index.build(2)
    index.set_labels([f"w{i}" for i in range(30)])
    index.set_metadata({"adapter": "fuzz", "fuzz": {"k": [1, 2]}})
    path = tmp_path_factory.mktemp("fuzz") / "small.annoy"
    index.save(path)
    return path.read_bytes()


def _native(path: Path) -> AnnoyIndex:
    return load(path)


ANN = {  # golden annoy files: (f, metric)
    "annoy_angular.ann": (8, "angular"),
    "annoy_dot.ann": (8, "dot"),
    "annoy_hamming.ann": (20, "hamming"),
}


def _ann(f: int, metric: str) -> Callable[[Path], AnnoyIndex]:
    def open_index(path: Path) -> AnnoyIndex:
        index = AnnoyIndex(f, metric)
        index.load(path)
        return index

    return open_index


def _flip(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, bit in flips:
        out[pos % len(out)] ^= 1 << bit
    return bytes(out)


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "case.bin"
    path.write_bytes(data)
    return path


flips = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1, max_size=8)


# -- native files ------------------------------------------------------------------------------
@FUZZ
@given(cut=st.integers(0, 10**6))
def test_native_truncations(tmp_path: Path, native_bytes: bytes, cut: int) -> None:
    _exercise(_native, _write(tmp_path, native_bytes[: cut % len(native_bytes)]), 4)


@FUZZ
@given(flips=flips)
def test_native_bit_flips(
    tmp_path: Path, native_bytes: bytes, flips: list[tuple[int, int]]
) -> None:
    _exercise(_native, _write(tmp_path, _flip(native_bytes, flips)), 4)


@FUZZ
@given(at=st.integers(0, 10**6), junk=st.binary(min_size=1, max_size=64))
def test_native_overwritten_bytes(
    tmp_path: Path, native_bytes: bytes, at: int, junk: bytes
) -> None:
    at %= len(native_bytes)
    data = native_bytes[:at] + junk + native_bytes[at + len(junk) :]
    _exercise(_native, _write(tmp_path, data[: len(native_bytes)]), 4)


@FUZZ
@given(body=st.binary(max_size=3000), magic=st.booleans())
def test_random_bytes(tmp_path: Path, body: bytes, magic: bool) -> None:
    data = (ff.MAGIC + body) if magic else body
    _exercise(_native, _write(tmp_path, data), 4)
    _exercise(_ann(8, "angular"), _write(tmp_path, data), 8)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


@FUZZ
@given(data=st.data())
def test_hostile_manifests(tmp_path: Path, native_bytes: bytes, data: st.DataObject) -> None:
    # a crafted file whose manifest checksum is right: only validation stands in the way
    raw = native_bytes
    magic, version, res, moff, mlen, _ = ff.HEADER.unpack(raw[: ff.HEADER.size])
    fields = json.loads(raw[moff : moff + mlen])
    names = sorted(fields["arrays"])
    for _ in range(data.draw(st.integers(1, 3))):
        arrays = fields.get("arrays")
        if data.draw(st.booleans()) and isinstance(arrays, dict):
            entry = arrays.setdefault(data.draw(st.sampled_from(names)), {})
            key = data.draw(st.sampled_from(["offset", "shape", "nbytes", "dtype"]))
            entry[key] = data.draw(
                st.integers(-(2**40), 2**40)
                | st.lists(st.integers(-5, 10**4), max_size=3)
                | st.sampled_from(["<f4", "<i8", "|u1", "<u8", "|b1"])
                | json_values
            )
        else:
            key = data.draw(
                st.sampled_from(
                    [
                        "f",
                        "metric",
                        "n_items",
                        "n_trees",
                        "labels",
                        "metadata",
                        "leaf_size",
                        "seed",
                        "arrays",
                    ]
                )
            )
            fields[key] = data.draw(
                json_values
                | st.integers(-3, 40)
                | st.sampled_from(["angular", "dot", "hamming", "str"])
            )
    text = json.dumps(fields).encode()
    head = ff.HEADER.pack(magic, version, res, moff, len(text), zlib.crc32(text))
    body = raw[ff.HEADER.size : moff] + text
    _exercise(_native, _write(tmp_path, head + body + raw[len(head) + len(body) :]), 4)


# -- annoy .ann files ----------------------------------------------------------------------------
@FUZZ
@given(name=st.sampled_from(sorted(ANN)), cut=st.integers(0, 10**6))
def test_ann_truncations(tmp_path: Path, name: str, cut: int) -> None:
    raw = (DATA / name).read_bytes()
    _exercise(_ann(*ANN[name]), _write(tmp_path, raw[: cut % len(raw)]), ANN[name][0])


@FUZZ
@given(name=st.sampled_from(sorted(ANN)), flips=flips)
def test_ann_bit_flips(tmp_path: Path, name: str, flips: list[tuple[int, int]]) -> None:
    raw = (DATA / name).read_bytes()
    _exercise(_ann(*ANN[name]), _write(tmp_path, _flip(raw, flips)), ANN[name][0])


@FUZZ
@given(
    name=st.sampled_from(sorted(ANN)),
    at=st.integers(0, 10**6),
    word=st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31), 7, 1000, 61, 62, 0x7FC00000]),
)
def test_ann_hostile_words(tmp_path: Path, name: str, at: int, word: int) -> None:
    # annoy#702: crafted counts and child pointers; every 4-byte field is a target
    raw = bytearray((DATA / name).read_bytes())
    at = (at % (len(raw) // 4)) * 4
    raw[at : at + 4] = np.array([word], "<i8").astype("<i4").tobytes()
    _exercise(_ann(*ANN[name]), _write(tmp_path, bytes(raw)), ANN[name][0])


# -- regressions -----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.nan, np.inf, 3e38])
def test_non_finite_planes_never_hang_a_query(
    tmp_path: Path, native_bytes: bytes, value: float
) -> None:
    # NaN or overflowing margins drop leaves from the search; it must still end
    raw = bytearray(native_bytes)
    *_, moff, mlen, _ = ff.HEADER.unpack(raw[: ff.HEADER.size])
    e = json.loads(raw[moff : moff + mlen])["arrays"]["normals"]
    raw[e["offset"] : e["offset"] + e["nbytes"]] = np.full(e["nbytes"] // 4, value, "<f4").tobytes()
    _exercise(_native, _write(tmp_path, bytes(raw)), 4)
    ann = bytearray((DATA / "annoy_euclidean.ann").read_bytes())
    nodes = np.frombuffer(ann, np.uint8).reshape(-1, 48).copy()
    nd = nodes[:, :4].copy().view("<i4")[:, 0]
    nodes[nd > 10, 16:] = np.frombuffer(np.full(8, value, "<f4").tobytes(), np.uint8)
    _exercise(_ann(8, "euclidean"), _write(tmp_path, nodes.tobytes()), 8)
