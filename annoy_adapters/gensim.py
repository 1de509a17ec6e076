"""A drop-in for gensim's ``AnnoyIndexer``: approximate ``most_similar`` from one index file.

gensim's ``KeyedVectors.most_similar(..., indexer=indexer)`` hands the (unit-norm) query vector
to ``indexer.most_similar(vector, topn)`` and returns its ``[(key, similarity), ...]`` as is.
This module answers that call from an angular ``AnnoyIndex`` built over the model's normalised
vectors, with the model's keys stored in the index file itself: ``save`` writes one file (no
pickle, no ``.d``/``.dict`` sidecar) and ``load`` needs only that file, no model and no C++ build.

Replace ``from gensim.similarities.annoy import AnnoyIndexer`` with
``from annoy_adapters.gensim import AnnoyIndexer``; see ``docs/gensim.md`` for the differences.

Examples
--------
>>> from gensim.models import Word2Vec
>>> from gensim.test.utils import common_texts
>>> from annoy_adapters.gensim import AnnoyIndexer
>>> model = Word2Vec(common_texts, vector_size=16, min_count=1, seed=1, workers=1)
>>> indexer = AnnoyIndexer(model, num_trees=2, seed=1)
>>> model.wv.most_similar("graph", topn=1, indexer=indexer)[0][0]
'graph'
"""

from __future__ import annotations

import functools
import numbers
import os
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from annoy_adapters import AnnoyIndex, IndexFileError
from annoy_adapters import load as _load_index
from annoy_adapters._checks import check_probe, check_search_k, shown
from annoy_adapters._gensim_keys import decode_keys, encode_keys, plain_keys
from annoy_adapters._recorded import corrupted, decoded_labels, gensim_section
from annoy_adapters.core import RowError, file_info

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

__all__ = ["AnnoyIndexer", "UnsupportedModelError"]

#: Version of the ``metadata["gensim"]`` layout this module writes.
_FORMAT = 1
_INSTALL_HINT = 'pip install "annoy-adapters[gensim]"'

_T = TypeVar("_T", bound="AnnoyIndexer")


class UnsupportedModelError(TypeError, ValueError):
    """The ``model`` is not a KeyedVectors, Word2Vec, FastText or Doc2Vec instance.

    A ``TypeError`` (it is the wrong type) that is also a ``ValueError``, which is what
    gensim's own ``AnnoyIndexer`` raises, so existing ``except ValueError`` code keeps working.
    """


class _ClassOrInstanceMethod(Generic[_T]):
    """Descriptor: ``Cls.load(f)`` builds a new object, ``obj.load(f)`` fills ``obj`` in.

    gensim's style is ``AnnoyIndexer().load(fname)`` (an instance method returning None); the
    constructor style is ``AnnoyIndexer.load(fname)``. Both call the same function, the first
    on the given instance, the second on a fresh ``cls()``; both return the indexer.
    """

    def __init__(self, func: Callable[..., _T]) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __get__(self, obj: _T | None, cls: type[_T]) -> Callable[..., _T]:
        if obj is None:

            @functools.wraps(self.func)
            def from_class(*args: Any, **kwargs: Any) -> _T:
                return self.func(cls(), *args, **kwargs)

            return from_class
        return types.MethodType(self.func, obj)


def _require_gensim() -> types.ModuleType:
    try:
        import gensim.models
    except ImportError as exc:  # pragma: no cover - gensim is installed in the test env
        raise ImportError(
            f"building an AnnoyIndexer from a model needs gensim; install it with {_INSTALL_HINT}"
        ) from exc
    return gensim.models


def _keyed_vectors(model: Any) -> tuple[KeyedVectors, str]:
    """The KeyedVectors to index for ``model`` and a short name of where they came from."""
    models = _require_gensim()
    # Doc2Vec subclasses Word2Vec, so it is checked first (as gensim does).
    if isinstance(model, models.Doc2Vec):
        return model.dv, f"{type(model).__name__}.dv"
    if isinstance(model, models.Word2Vec):  # FastText too
        return model.wv, f"{type(model).__name__}.wv"
    if isinstance(model, models.KeyedVectors):
        return model, type(model).__name__
    raise UnsupportedModelError(
        "'model' must be a gensim KeyedVectors, Word2Vec, FastText or Doc2Vec instance "
        f"(got {type(model).__module__}.{type(model).__qualname__})"
    )


def _check_num_trees(num_trees: Any) -> int:
    if num_trees is None:
        return -1
    if (
        not isinstance(num_trees, numbers.Integral)
        or isinstance(num_trees, bool)
        or (num_trees < 1 and num_trees != -1)
    ):
        raise ValueError(
            f"'num_trees' must be a positive int, or -1/None for automatic (got {num_trees!r})"
        )
    return int(num_trees)


def _query_vector(vector: Any, f: int) -> np.ndarray:
    """``vector`` as a numeric 1-D array of length ``f`` (any real dtype; the core casts it).

    Checked here, before NumPy's float conversion: that one turns ``None`` into NaN and a word
    into "could not convert string to float", neither naming the argument.
    """
    expected = f"'vector' must be a numeric 1-D vector of length {f}"
    if isinstance(vector, (str, bytes)):
        raise TypeError(
            f"{expected} (got {shown(vector)}); to look up a key, pass it to gensim: "
            f"KeyedVectors.most_similar({vector!r}, topn=..., indexer=indexer)"
        )
    try:
        query = np.asarray(vector)
    except (TypeError, ValueError):  # ragged nesting, objects NumPy cannot size
        query = None
    if query is None or query.dtype.kind not in "biuf":  # object, str, complex, datetime...
        raise TypeError(f"{expected} (got {shown(vector)})")
    if query.shape != (f,):
        raise ValueError(f"{expected} (got shape {query.shape})")
    return query


def _normed_vectors(kv: KeyedVectors) -> np.ndarray:
    """``kv.get_normed_vectors()`` as float32, with all-zero vectors kept at zero (not NaN).

    A vector holding NaN or inf is an error (naming its key), not a zero vector.
    """
    finite = np.isfinite(np.asarray(kv.vectors)).all(axis=1)
    if not finite.all():
        at = int(np.argmin(finite))
        raise ValueError(
            f"the model's vectors must be finite: the vector of key {kv.index_to_key[at]!r} "
            "holds NaN or inf"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        vectors = np.asarray(kv.get_normed_vectors(), dtype=np.float32)
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        # Zero vectors normalise to NaN; annoy treats them as distance sqrt(2) from everything.
        vectors = vectors.copy()
        vectors[bad] = 0.0
    return vectors


def _is_native_file(path: str) -> bool:
    """Whether ``path`` is an annoy-adapters index file (header and manifest read only)."""
    try:
        file_info(path)
    except IndexFileError:  # an annoy .ann file, or no index at all
        return False
    return True


def _file_keys(index: AnnoyIndex) -> list[Any]:
    """The keys of a loaded file's items, in item-id order, as Python str / int objects.

    gensim's own section decodes the labels it wrote (int tags among str ones). A file another
    adapter wrote has its labels as that adapter knew them: pandas' encoded index labels
    (categories, an object index mixing str and int...) come back decoded, and must then be
    str or int; a file without labels has the item ids as keys.

    Raises
    ------
    ValueError
        If pandas' labels are not all str or int (floats, timestamps, tuples, missing...).
    """
    meta = gensim_section(index)
    if meta is not None:
        return decode_keys(index.labels, meta, index.get_n_items())
    labels = decoded_labels(index)
    if labels is None or isinstance(labels, np.ndarray):  # the core's own str / int labels
        return decode_keys(labels, None, index.get_n_items())
    return plain_keys(labels, index.path or "the index")


#: The settings `AnnoyIndexer.save` records: their checks and defaults.
_SETTINGS: dict[str, tuple[Callable[[Any], Any], str, Any]] = {
    "search_k": (check_search_k, "-1 or a positive int", -1),
    "probe": (check_probe, "null or a positive int", None),
}


def _file_settings(index: AnnoyIndex) -> dict[str, Any]:
    """``search_k``, ``probe`` and ``source`` from the file's gensim section (defaults when
    there is none), as an IndexFileError when the file holds values no indexer saves."""
    meta = gensim_section(index) or {}
    out = {}
    for name, (check, expected, default) in _SETTINGS.items():
        value = meta.get(name, default)
        try:
            out[name] = check(value)
        except ValueError:
            raise corrupted(index, "gensim", name, expected, value) from None
    source = meta.get("source")
    if source is not None and not isinstance(source, str):
        raise corrupted(index, "gensim", "source", "null or a str", source)
    out["source"] = source
    return out


class AnnoyIndexer:
    """Approximate nearest neighbours for gensim's ``most_similar(..., indexer=...)``.

    A drop-in for ``gensim.similarities.annoy.AnnoyIndexer`` backed by
    `annoy_adapters.AnnoyIndex` (angular metric) instead of the annoy C++ package.

    Parameters
    ----------
    model : KeyedVectors, Word2Vec, FastText or Doc2Vec, optional
        The vectors to index: KeyedVectors as is, Word2Vec/FastText their ``.wv``, Doc2Vec its
        ``.dv``. None makes an empty indexer to `load` a file into.
    num_trees : int, optional
        Number of trees; more trees, better recall, bigger file. None or -1 adds trees until the
        index has about twice as many nodes as items (gensim builds nothing without
        ``num_trees``; this builds with the automatic count).
    search_k : int, default -1
        Nodes to inspect per query; -1 means ``num_neighbors * num_trees``. Larger is more
        accurate and slower. Stored in the file and restored by `load`.
    probe : int, optional
        Scan the ``probe`` cells (groups of about sqrt(n) similar vectors, stored together)
        nearest the query instead of walking the trees; ``search_k`` is then unused. Several
        times faster than the trees at the same recall: on the 400,000 GloVe words, ``probe=24``
        agrees with gensim's exact top-10 on ~9 of 10 neighbours. A starting width: a query
        whose ``probe`` cells hold fewer than ``topn`` items is scanned again with twice the
        cells, until ``topn`` neighbours are found (at most all cells, an exact search).
        Stored in the file and restored by `load`.
    seed : int, optional
        Seed of the tree build; the same seed gives the same index (for any ``n_jobs``).
    n_jobs : int, default -1
        Threads for the build; -1 uses all cores.
    vector_dtype : {"float32", "float16"}, default "float32"
        How the index keeps the (unit) vectors: ``"float16"`` halves their bytes in memory and
        in the file, and answers as a float32 index of the rounded vectors would.

    Attributes
    ----------
    index : AnnoyIndex or None
        The core index (``index.f`` is the vector size).
    labels : list or None
        The keys in item-id order: words (str), document tags (int or str).
    num_trees : int or None
        Number of trees in the index (the actual count once built or loaded).
    model : object or None
        The model given to the constructor; not needed by ``most_similar``, ``save`` or ``load``.

    Raises
    ------
    UnsupportedModelError
        If ``model`` is of another type (a subclass of TypeError and ValueError).
    ValueError
        If ``num_trees``/``search_k`` are invalid or the model has no vectors.

    Examples
    --------
    >>> from gensim.models import Word2Vec
    >>> from gensim.test.utils import common_texts
    >>> model = Word2Vec(common_texts, vector_size=16, min_count=1, seed=1, workers=1)
    >>> indexer = AnnoyIndexer(model, num_trees=2, seed=1)
    >>> word, sim = indexer.most_similar(model.wv.get_vector("human", norm=True), 1)[0]
    >>> word, round(sim, 3)
    ('human', 1.0)
    """

    def __init__(
        self,
        model: Any = None,
        num_trees: int | None = None,
        *,
        search_k: int = -1,
        probe: int | None = None,
        seed: int | None = None,
        n_jobs: int = -1,
        vector_dtype: str = "float32",
    ) -> None:
        self.index: AnnoyIndex | None = None
        self.labels: list[Any] | None = None
        self.model = model
        self.num_trees: int | None = num_trees
        self.search_k = search_k
        self.probe = probe
        self.seed = seed
        self.n_jobs = n_jobs
        self.vector_dtype = vector_dtype
        self._keys: np.ndarray | None = None
        self._source: str | None = None
        # True when the keys are exactly what index's file holds (after save/load): pickles
        # then carry only the file's path, not the key list.
        self._keys_in_file = False
        if model is not None:
            n_trees = _check_num_trees(num_trees)
            kv, source = _keyed_vectors(model)
            self._build(kv, n_trees, source)

    # -- settings ------------------------------------------------------------------------------
    @property
    def search_k(self) -> int:
        """Nodes inspected per query (-1: ``num_neighbors * num_trees``)."""
        return self._search_k

    @search_k.setter
    def search_k(self, value: int) -> None:
        self._search_k = check_search_k(value)

    @property
    def probe(self) -> int | None:
        """Cells scanned first per query instead of the trees (None: walk the trees); doubled
        while they hold fewer than the neighbours asked for."""
        return self._probe

    @probe.setter
    def probe(self, value: int | None) -> None:
        self._probe = check_probe(value)

    @property
    def vector_size(self) -> int | None:
        """Dimension of the indexed vectors (None before build/load)."""
        return None if self.index is None else self.index.f

    @property
    def path(self) -> str | None:
        """The index file backing this indexer, if it was saved or loaded."""
        return None if self.index is None else self.index.path

    def __len__(self) -> int:
        return 0 if self.labels is None else len(self.labels)

    def __repr__(self) -> str:
        if self.index is None:
            return f"{type(self).__name__}(empty)"
        return (
            f"{type(self).__name__}(n_keys={len(self)}, vector_size={self.index.f}, "
            f"num_trees={self.num_trees}, search_k={self.search_k}, probe={self.probe}, "
            f"path={self.path!r})"
        )

    # -- build -----------------------------------------------------------------------------------
    def _build(self, kv: KeyedVectors, n_trees: int, source: str) -> None:
        keys = list(kv.index_to_key)
        if not keys:
            raise ValueError(f"'model' has no vectors to index (its {source} is empty)")
        vectors = _normed_vectors(kv)
        if vectors.shape[0] != len(keys):  # pragma: no cover - gensim keeps these in step
            raise ValueError(
                f"'model' has {len(keys)} keys but {vectors.shape[0]} vectors in its {source}"
            )
        index = AnnoyIndex(
            kv.vector_size, "angular", seed=self.seed, vector_dtype=self.vector_dtype
        )
        index.add_items(vectors)
        index.build(n_trees, n_jobs=self.n_jobs)
        self.index = index
        self.num_trees = index.get_n_trees()
        self.seed = index.seed
        self.vector_dtype = index.vector_dtype
        self._source = source
        self._set_keys(keys, in_file=False)

    def _set_keys(self, keys: list[Any], *, in_file: bool) -> None:
        self.labels = keys
        # An object array makes the id -> key lookup of each query one fancy-indexing step.
        self._keys = np.empty(len(keys), dtype=object)
        self._keys[:] = keys
        self._keys_in_file = in_file

    # -- query -----------------------------------------------------------------------------------
    def most_similar(self, vector: Any, num_neighbors: int) -> list[tuple[Any, float]]:
        """The ``num_neighbors`` keys nearest to ``vector``, best first.

        This is the method gensim calls from ``KeyedVectors.most_similar(..., indexer=self)``.

        Parameters
        ----------
        vector : array-like of shape (vector_size,)
            Query vector (gensim passes a unit-norm float32 vector).
        num_neighbors : int
            How many neighbours to return: all of the index's items if it holds fewer (a
            larger number is capped at the number of items, as gensim's exact search does).
            With `probe`, the scan starts with ``probe`` cells and doubles their number
            until ``num_neighbors`` neighbours are found (or every cell is scanned).

        Returns
        -------
        list of (key, float)
            ``(key, cosine similarity)`` pairs, the similarity being ``1 - d**2 / 2`` for
            annoy's angular distance ``d``.

        Raises
        ------
        RuntimeError
            If the indexer is empty (no model given and nothing loaded).
        TypeError
            If ``vector`` is not numeric (a key such as a word: pass it to gensim's
            ``KeyedVectors.most_similar`` instead; a dict, a ragged or object sequence...).
        ValueError
            If ``vector`` has the wrong shape, holds NaN or inf or has too large a norm, or
            ``num_neighbors`` is not a non-negative int.

        Examples
        --------
        >>> from gensim.models import KeyedVectors
        >>> kv = KeyedVectors(vector_size=2)
        >>> kv.add_vectors(["east", "north", "west"], [[1, 0], [0, 1], [-1, 0]])
        >>> indexer = AnnoyIndexer(kv, num_trees=1, seed=1)
        >>> [(k, round(s, 3)) for k, s in indexer.most_similar([1.0, 0.1], 2)]
        [('east', 0.995), ('north', 0.1)]
        """
        index, keys = self._require_index()
        if (
            not isinstance(num_neighbors, numbers.Integral)
            or isinstance(num_neighbors, bool)
            or num_neighbors < 0
        ):
            raise ValueError(f"'num_neighbors' must be a non-negative int (got {num_neighbors!r})")
        query = _query_vector(vector, index.f)
        # No answer holds more than the items; the core pads its (rows, k) arrays to k, so a
        # huge num_neighbors (gensim passes topn as is) would only cost time and memory.
        k = min(int(num_neighbors), index.get_n_items())
        if k == 0:
            return []
        probe = self.probe
        n_cells = index.get_n_cells() if probe is not None else 0
        while True:
            try:
                ids, dist = index.query(query[None, :], k, search_k=self.search_k, probe=probe)
            except RowError as exc:  # the core names its 2-D argument; this one is 'vector'
                raise ValueError(f"'vector' {exc.reason}") from None
            found = ids[0] >= 0  # rows are padded with -1 when fewer items are found
            # The probed cells may hold fewer than k items: widen the scan (doubling, so at
            # most log2(n_cells) more scans) until k are found or every cell is scanned.
            if probe is None or probe >= n_cells or int(found.sum()) >= k:
                break
            probe = min(2 * probe, n_cells)
        d = dist[0][found].astype(np.float64)
        sims = 1.0 - d * d / 2.0
        return list(zip(keys[ids[0][found]].tolist(), sims.tolist(), strict=True))

    def _require_index(self) -> tuple[AnnoyIndex, np.ndarray]:
        if self.index is None or self._keys is None:
            raise RuntimeError(
                "this AnnoyIndexer is empty: build it with AnnoyIndexer(model, num_trees) "
                "or load a file with AnnoyIndexer.load(fname)"
            )
        return self.index, self._keys

    # -- persistence -----------------------------------------------------------------------------
    def save(self, fname: str | os.PathLike[str], protocol: int | None = None) -> None:
        """Write the index, its keys and settings to the single file ``fname``.

        The file is the project's static index file: it loads with `load`, with
        `annoy_adapters.load` and in the other adapters. Afterwards this indexer is
        backed by (memory-mapped from) ``fname``. No model is needed, also after `load`.

        Parameters
        ----------
        fname : str or os.PathLike
            Output path (local file). Written atomically.
        protocol : int, optional
            Accepted for compatibility with gensim's signature and ignored: nothing is pickled.

        Raises
        ------
        RuntimeError
            If the indexer is empty.
        TypeError
            If a key is neither str nor int (the file stores only those).

        Examples
        --------
        >>> import os, tempfile
        >>> from gensim.models import KeyedVectors
        >>> kv = KeyedVectors(vector_size=2)
        >>> kv.add_vectors(["east", "north"], [[1, 0], [0, 1]])
        >>> path = os.path.join(tempfile.mkdtemp(), "words.idx")
        >>> AnnoyIndexer(kv, num_trees=1, seed=1).save(path)
        >>> AnnoyIndexer.load(path).labels
        ['east', 'north']
        """
        del protocol  # gensim pickled a sidecar with it; this file holds everything
        index, _ = self._require_index()
        assert self.labels is not None
        labels, key_meta = encode_keys(self.labels)
        metadata = index.metadata
        metadata["adapter"] = "gensim"
        metadata["gensim"] = {
            "format": _FORMAT,
            "num_trees": self.num_trees,
            "search_k": self.search_k,
            "probe": self.probe,
            "seed": self.seed,
            "vector_size": index.f,
            "source": self._source,
            **key_meta,
        }
        index.set_labels(labels)
        index.set_metadata(metadata)
        index.save(os.fspath(fname))
        self._keys_in_file = True

    @_ClassOrInstanceMethod
    def load(self, fname: str | os.PathLike[str]) -> AnnoyIndexer:
        """Load an index file; works as ``AnnoyIndexer().load(f)`` and ``AnnoyIndexer.load(f)``.

        Called on an instance (gensim's style) it fills that instance in; called on the class it
        makes a new indexer. Both return the indexer. The keys come from the file's labels (the
        item ids for a file without labels, e.g. one written by ``AnnoyIndex.save``; the
        frame's index labels, decoded, for one written by the pandas accessor); ``num_trees``
        and ``search_k`` come from the file. ``model`` is left as it is: it is not needed.

        Parameters
        ----------
        fname : str or os.PathLike
            A file written by `save`, by ``AnnoyIndex.save`` or by another adapter, with
            the angular metric. It is memory-mapped: processes loading it share one copy.

        Returns
        -------
        AnnoyIndexer

        Raises
        ------
        FileNotFoundError
            If ``fname`` does not exist (an ``OSError``, i.e. gensim's ``IOError``).
        annoy_adapters.IndexFileError
            If ``fname`` is not a valid index file (a ``ValueError``); files saved by gensim's
            own AnnoyIndexer need `from_annoy_file`.
        ValueError
            If the index's metric is not angular, or its labels are pandas index labels that
            are not all str or int (floats, timestamps, tuples, missing labels...).

        Examples
        --------
        >>> AnnoyIndexer.load("no-such-file.idx")
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...
        """
        path = os.fspath(fname)
        try:
            index = _load_index(path)
        except IndexFileError as exc:
            if os.path.exists(path + ".dict") or os.path.exists(path + ".d"):
                raise IndexFileError(
                    f"{exc}; '{path}' looks like a file saved by gensim's own AnnoyIndexer "
                    "(annoy .ann plus pickled '.dict'): convert it with "
                    "AnnoyIndexer.from_annoy_file(fname, model)"
                ) from exc
            raise
        settings = _file_settings(index)  # checked before self changes
        keys = _file_keys(index)
        self._adopt(index, keys, in_file=True, source=settings["source"])
        self.search_k = settings["search_k"]
        self.probe = settings["probe"]
        return self

    @classmethod
    def from_file(cls, fname: str | os.PathLike[str]) -> AnnoyIndexer:
        """Constructor-style `load`: ``AnnoyIndexer.from_file(fname)``.

        Examples
        --------
        >>> AnnoyIndexer.from_file("no-such-file.idx")
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...
        """
        return cls().load(fname)

    @classmethod
    def from_annoy_file(cls, fname: str | os.PathLike[str], model: Any) -> AnnoyIndexer:
        """Wrap an annoy ``.ann`` file (e.g. saved by gensim's AnnoyIndexer) with ``model``'s keys.

        gensim's ``AnnoyIndexer.save`` writes an annoy index plus a pickled ``.dict``; this reads
        only the annoy file (never the pickle) and takes the keys and the vector size from the
        model the index was built from. `save` then writes the one-file format.

        Parameters
        ----------
        fname : str or os.PathLike
            An angular annoy 1.17 ``.ann`` file.
        model : KeyedVectors, Word2Vec, FastText or Doc2Vec
            The model whose ``index_to_key`` the file was built from.

        Returns
        -------
        AnnoyIndexer

        Raises
        ------
        FileNotFoundError
            If ``fname`` does not exist.
        annoy_adapters.IndexFileError
            If ``fname`` is an annoy-adapters index file (written by `save`,
            ``AnnoyIndex.save`` or another adapter): it holds its own keys (or none, then the
            item ids are the keys), so it is refused rather than relabelled with the model's
            keys; load it with `load`. Also if it is not an annoy ``.ann`` file.
        ValueError
            If the file's item count does not match the model's number of keys.
        """
        kv, source = _keyed_vectors(model)
        path = os.fspath(fname)
        if not os.path.exists(path):
            raise FileNotFoundError(f"annoy index file not found: '{path}'")
        if _is_native_file(path):
            raise IndexFileError(
                f"'{path}' is an annoy-adapters index file, which holds its own keys: load it "
                "with AnnoyIndexer.load(fname); from_annoy_file(fname, model) is for annoy "
                ".ann files (such as gensim's AnnoyIndexer saves), which hold no keys"
            )
        index = AnnoyIndex(kv.vector_size, "angular")
        index.load(path)
        keys = list(kv.index_to_key)
        if index.get_n_items() != len(keys):
            raise ValueError(
                f"'{path}' holds {index.get_n_items()} items but 'model' has {len(keys)} keys "
                f"in its {source}: pass the model the index was built from"
            )
        indexer = cls()
        indexer.model = model
        indexer._adopt(index, keys, in_file=False, source=source)
        return indexer

    def _adopt(self, index: AnnoyIndex, keys: list[Any], *, in_file: bool, source: Any) -> None:
        if index.metric != "angular":
            raise ValueError(
                "AnnoyIndexer answers with cosine similarities and needs an index with "
                f"metric 'angular' (got '{index.metric}' from '{index.path}')"
            )
        self.index = index
        self.num_trees = index.get_n_trees()
        self.seed = index.seed
        self.vector_dtype = index.vector_dtype
        self._source = source
        self._set_keys(keys, in_file=in_file)

    # -- pickling --------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # The model is not needed to answer queries and can be huge; it is not pickled.
        state["model"] = None
        state["_keys"] = None
        if self._keys_in_file and self.index is not None and self.index.path is not None:
            # The core pickles a file-backed index as its path; the keys are in that file.
            state["labels"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # pickles made before probe and vector_dtype existed
        self.__dict__.update({"_probe": None, "vector_dtype": "float32", **state})
        if self.index is None:
            return
        if self.labels is None:
            self.labels = _file_keys(self.index)
        self._set_keys(self.labels, in_file=self._keys_in_file)
