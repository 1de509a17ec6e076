"""Code written for annoy runs unchanged on annoy_adapters and returns what annoy returns."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import data_for

annoy = pytest.importorskip("annoy", reason="the real annoy package is needed to compare against")

from annoy_adapters import AnnoyIndex  # noqa: E402


def user_code(cls: type, metric: str, x: np.ndarray) -> dict[str, object]:
    """A typical annoy script, written once, run with either class."""
    f = x.shape[1]
    t = cls(f, metric)
    for i, v in enumerate(x.tolist()):
        t.add_item(i, v)
    t.build(10)
    n = t.get_n_items()
    exhaustive = n * 10
    return {
        "n_items": n,
        "n_trees": t.get_n_trees(),
        "by_item": [t.get_nns_by_item(i, 8, exhaustive, True) for i in range(0, n, 37)],
        "by_vector": [t.get_nns_by_vector(v, 8, exhaustive, True) for v in x[5:200:41].tolist()],
        "vector": t.get_item_vector(3),
        "distance": t.get_distance(1, 2),
    }


def test_same_answers_as_annoy(metric: str) -> None:
    x = data_for(metric, 400, 12, seed=5)
    ours, theirs = user_code(AnnoyIndex, metric, x), user_code(annoy.AnnoyIndex, metric, x)
    assert ours["n_items"] == theirs["n_items"] and ours["n_trees"] == theirs["n_trees"]
    np.testing.assert_allclose(ours["vector"], theirs["vector"], rtol=1e-6)
    assert ours["distance"] == pytest.approx(theirs["distance"], rel=1e-4, abs=1e-4)
    for (oi, od), (ti, td) in zip(
        ours["by_item"] + ours["by_vector"], theirs["by_item"] + theirs["by_vector"], strict=True
    ):
        np.testing.assert_allclose(od, td, rtol=1e-4, atol=1e-4)
        if metric != "hamming":  # hamming distances tie often; ties may be ordered differently
            assert oi == ti


def test_same_error_types_as_annoy() -> None:
    for cls in (AnnoyIndex, annoy.AnnoyIndex):
        t = cls(3, "angular")
        with pytest.raises(IndexError):
            t.add_item(0, [1.0, 2.0])
        with pytest.raises(TypeError):
            t.add_item(0, ["a", "b", "c"])
        t.add_item(0, [1.0, 2.0, 3.0])
        t.build(2)
        with pytest.raises(IndexError):
            t.get_nns_by_item(5, 1)
    with pytest.raises(ValueError):
        AnnoyIndex(3, "nope")
    with pytest.raises(ValueError):
        annoy.AnnoyIndex(3, "nope")
