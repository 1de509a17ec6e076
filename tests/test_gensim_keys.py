"""Encoding gensim keys as core labels and back (annoy_adapters._gensim_keys)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from annoy_adapters._gensim_keys import decode_keys, encode_keys, key_kind


def test_kinds() -> None:
    assert key_kind(["a", np.str_("b")]) == "str"
    assert key_kind([0, np.int64(5)]) == "int"
    assert key_kind([0, "x"]) == "mixed"
    assert key_kind([]) == "str"


@pytest.mark.parametrize("bad", [1.5, ("a", 1), True, None, b"bytes"])
def test_unsupported_key_type_names_it(bad: object) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        key_kind(["ok", bad])


def test_int_keys_become_int64_labels() -> None:
    labels, meta = encode_keys([3, 1, 2])
    assert isinstance(labels, np.ndarray) and labels.dtype == np.int64
    assert meta == {"key_type": "int"}
    keys = decode_keys(labels, meta)
    assert keys == [3, 1, 2] and all(type(k) is int for k in keys)


def test_mixed_records_int_runs() -> None:
    keys = [0, 1, 2, "a", "b", 7, "c"]
    labels, meta = encode_keys(keys)
    assert labels == ["0", "1", "2", "a", "b", "7", "c"]
    assert meta == {"key_type": "mixed", "int_key_runs": [[0, 3], [5, 6]], "label_ends": ["0", "c"]}
    assert decode_keys(np.asarray(labels, dtype=object), meta) == keys


def test_mixed_collision_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"str\(k\)"):
        encode_keys([3, "3"])


@pytest.mark.parametrize(
    ("keys", "pair"),
    [
        ([0, 1, 2, "doc", "1"], "1 and '1'"),
        (["7", "a", 3, 7], "7 and '7'"),
        ([np.int64(5), "x", "5", "y"], "5 and '5'"),
    ],
)
def test_mixed_collision_names_the_first_conflicting_pair(keys: list[object], pair: str) -> None:
    with pytest.raises(ValueError, match=r"str\(k\)") as err:
        encode_keys(keys)
    assert pair in str(err.value)


def test_no_labels_means_ids() -> None:
    assert decode_keys(None, None, n_items=4) == [0, 1, 2, 3]


_key = st.one_of(st.integers(-(2**62), 2**62), st.text(min_size=1, max_size=8))


@given(st.lists(_key, max_size=40, unique_by=lambda k: str(k)))
def test_round_trip_keeps_values_and_types(keys: list[object]) -> None:
    labels, meta = encode_keys(keys)
    back = decode_keys(labels, meta, n_items=len(keys))
    assert back == keys
    assert [type(k) for k in back] == [type(k) for k in keys]


@pytest.mark.parametrize(
    "new_labels, want",
    [
        (["10", "11", "12", "13", "14"], ["10", "11", "12", "13", "14"]),  # ints once, not now
        (["x", "y", "z", "u", "v"], ["x", "y", "z", "u", "v"]),  # not even numbers
    ],
)
def test_runs_of_replaced_labels_are_not_applied(new_labels: list[str], want: list) -> None:
    """Another adapter may replace the labels and keep the gensim section: its runs describe
    the old labels, so the new ones are read as they are."""
    _, meta = encode_keys([0, 1, "a", "b", "c"])
    assert decode_keys(np.asarray(new_labels, dtype=object), meta) == want


def test_runs_marking_non_canonical_ints_are_not_applied() -> None:
    """A file without the fingerprint (written before it) whose runs point at "007"."""
    meta = {"key_type": "mixed", "int_key_runs": [[0, 1]]}
    assert decode_keys(np.asarray(["007", "a"], dtype=object), meta) == ["007", "a"]
    assert decode_keys(np.asarray(["7", "a"], dtype=object), meta) == [7, "a"]


@pytest.mark.parametrize(
    "keys",
    [
        [2**63, 1],  # int only: int64 labels cannot hold 2**63
        [-(2**63) - 1, 2**70, 0],
        [np.uint64(2**63), 7],
        [2**63, 5, "a"],  # mixed: 5 must stay the int 5
        ["a", 5, 2**63, "b"],
    ],
)
def test_int_keys_beyond_int64_round_trip_exactly(keys: list[object]) -> None:
    labels, meta = encode_keys(keys)
    back = decode_keys(np.asarray(labels, dtype=object), meta, n_items=len(keys))
    assert back == [int(k) if isinstance(k, np.integer) else k for k in keys]
    assert [type(k) for k in back] == [int if isinstance(k, np.integer) else type(k) for k in keys]


def test_int_keys_beyond_int64_keep_the_int_key_type() -> None:
    labels, meta = encode_keys([2**63, 1])
    assert labels == [str(2**63), "1"]
    assert meta["key_type"] == "int" and meta["int_key_runs"] == [[0, 2]]


@given(
    st.lists(
        st.one_of(st.integers(-(2**80), 2**80), st.text(min_size=1, max_size=8)),
        max_size=40,
        unique_by=lambda k: str(k),
    )
)
def test_round_trip_keeps_values_and_types_for_any_int(keys: list[object]) -> None:
    labels, meta = encode_keys(keys)
    back = decode_keys(
        np.asarray(labels, dtype=object) if isinstance(labels, list) else labels,
        meta,
        n_items=len(keys),
    )
    assert back == keys
    assert [type(k) for k in back] == [type(k) for k in keys]


@pytest.mark.parametrize("keys", [[2**63, 5, "a"], [2**63, 1]])
def test_indexer_save_load_keeps_int_keys_beyond_int64(tmp_path, keys: list[object]) -> None:
    """User report: ``5`` came back as ``"5"`` next to ``2**63``, and int-only keys with
    ``2**63`` failed to save with a bare OverflowError."""
    from gensim.models import KeyedVectors

    from annoy_adapters.gensim import AnnoyIndexer

    kv = KeyedVectors(vector_size=4)
    kv.add_vectors(keys, np.eye(len(keys), 4, dtype=np.float32))
    path = tmp_path / "big.idx"
    AnnoyIndexer(kv, num_trees=2, seed=1).save(path)
    loaded = AnnoyIndexer.load(path)
    assert loaded.labels == keys
    assert [type(k) for k in loaded.labels] == [type(k) for k in keys]
    assert loaded.most_similar(kv[keys[1]], 1)[0][0] == keys[1]
