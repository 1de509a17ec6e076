"""scikit-learn adapter: an approximate, drop-in `KNeighborsTransformer`.

`AnnoyTransformer` turns samples into the sparse k-neighbours graph that estimators
with ``metric='precomputed'`` consume (``KNeighborsClassifier``, ``KNeighborsRegressor``,
``TSNE``, ``Isomap``, ``DBSCAN``, ``SpectralClustering``), with the neighbours found by the
annoy-adapters random-projection forest instead of an exact search.

The fitted estimator persists through the project's one static index file
(`AnnoyTransformer.save`, `AnnoyTransformer.load`), so an index built by any
adapter (or by `annoy_adapters.AnnoyIndex` directly) can serve a scikit-learn pipeline.
"""

from __future__ import annotations

import math
import os
from numbers import Integral
from typing import Any, ClassVar

import numpy as np

try:
    import sklearn
    from sklearn.base import (
        BaseEstimator,
        ClassNamePrefixFeaturesOutMixin,
        TransformerMixin,
        _fit_context,
    )
    from sklearn.utils import check_random_state
    from sklearn.utils._param_validation import (
        Interval,
        InvalidParameterError,
        Options,
        StrOptions,
        make_constraint,
        validate_parameter_constraints,
    )
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        'annoy_adapters.sklearn needs scikit-learn and SciPy: pip install "annoy-adapters[sklearn]"'
    ) from exc

from ._recorded import corrupted, metadata_section
from ._sklearn_graph import (
    CORE_METRIC,
    DEFAULT_METRIC_FOR_CORE,
    convert_distances,
    knn_graph,
    put_self_first,
    rows_equal_to_items,
)

__all__ = ["AnnoyTransformer"]

# Keys of metadata["sklearn"] that are fitted state rather than constructor parameters.
_FITTED_KEYS = ("feature_names_in_", "max_sq_norm_")

# Fitted attributes that validate_data(reset=True) sets before the index is built.
_RESET_BY_VALIDATE_DATA = ("n_features_in_", "feature_names_in_")


class AnnoyTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Transform X into a (weighted) graph of approximate k nearest neighbors.

    A drop-in replacement for `sklearn.neighbors.KNeighborsTransformer`: the output
    has the same layout (CSR, ``n_neighbors + 1`` entries per row in ``'distance'`` mode,
    rows sorted by increasing distance, float64), but the neighbours come from a forest of
    random-projection trees (annoy's algorithm), so they may occasionally miss a true
    neighbour. When X is the data the transformer was fitted on, row ``i`` always starts
    with sample ``i`` itself at an explicit distance ``0.0``, as in the exact transformer.
    With ``metric='dot'``, where a sample need not be its own nearest neighbour, and
    ``metric='hamming'``, where equal rows are common, each row is answered from its values
    alone: sample ``i`` is listed, at its true distance, only if it is among the row's
    nearest (with 'hamming', among the rows equal to it when there are more of them than
    neighbours asked for).

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbors for each sample in the transformed sparse graph. As each sample
        is considered its own neighbor, one extra neighbor is computed when
        ``mode == 'distance'``; the graph then holds ``n_neighbors + 1`` entries per row.

    mode : {'distance', 'connectivity'}, default='distance'
        Type of returned matrix: 'connectivity' stores ones, 'distance' stores the
        distances between neighbors according to `metric`.

    metric : {'euclidean', 'sqeuclidean', 'manhattan', 'cosine', 'angular', 'hamming', \
'dot'}, default='euclidean'
        Distance used to search and reported in the graph. Names scikit-learn knows keep
        scikit-learn's meaning: 'cosine' is ``1 - cos`` (searched with annoy's angular
        index), 'hamming' is the fraction of differing features (X must then hold only 0
        and 1, or bools: the index stores bits), 'sqeuclidean' the squared Euclidean
        distance. 'angular' is annoy's ``sqrt(2 - 2 cos)``. 'dot' searches by largest
        inner product and reports
        ``sqrt(|q|**2 + M**2 - 2 q.x)`` (M the largest norm among the fitted samples), a
        non-negative distance that increases as the inner product decreases.

    n_trees : int, default=10
        Number of random-projection trees built in `fit`; more trees give better
        recall and a larger index. -1 keeps adding trees until the forest has about twice
        as many nodes as samples.

    search_k : int, default=None
        Number of candidates inspected per query (``k`` being the number of neighbours
        asked for); larger values give better recall and slower queries. ``None`` means
        ``n_trees * max(k, leaf_size)`` so that every tree contributes about one full leaf:
        annoy's default ``n_trees * k`` (``-1``) stops after a single leaf of a single tree
        when k is small, which misses ~9% of the 5 nearest neighbours on digits and costs a
        KNN classifier up to 2 accuracy points.

    probe : int, default=None
        Instead of walking the trees, scan the ``probe`` cells (groups of about
        ``sqrt(n_samples)`` similar samples, stored side by side) nearest each query;
        ``search_k`` is then unused. Usually several times faster than the trees at the same
        recall. Only for the metrics searched with annoy's angular or euclidean index
        ('cosine', 'angular', 'euclidean', 'sqeuclidean'); other metrics raise in
        `fit`.

    vector_dtype : {'float32', 'float16'}, default='float32'
        How the index keeps the samples. 'float16' halves their bytes in memory and in the
        saved file, rounding each value to 11 significant bits (values must lie within
        +-65504); searches run at about 0.75x of float32's speed. Not for 'hamming'
        (raises in `fit`).

    n_jobs : int, default=None
        Number of threads used to build the trees and to search. ``None`` means 1, ``-1``
        all cores.

    random_state : int, RandomState instance or None, default=None
        Seeds the tree building. Pass an int for a reproducible forest.

    Attributes
    ----------
    index_ : annoy_adapters.AnnoyIndex
        The fitted index. It is held in memory after `fit` and memory-mapped from its
        file after `save` or `load`.

    effective_metric_ : str
        The metric of the index ('angular', 'euclidean', 'manhattan', 'dot' or 'hamming').

    metric_ : str
        The `metric` fixed at `fit` (or `load`): the distance the graph reports.
        Changing `metric` afterwards (``set_params``) takes effect at the next fit.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X` has feature names
        that are all strings.

    n_samples_fit_ : int
        Number of samples in the fitted data.

    See Also
    --------
    sklearn.neighbors.KNeighborsTransformer : The exact transformer this one replaces.
    annoy_adapters.AnnoyIndex : The index behind the estimator.

    Notes
    -----
    Whether a query row "is" fitted sample ``i`` is decided by position and content: row
    ``i`` of X is treated as sample ``i`` when its values equal the stored ones (after
    float32 rounding). That covers ``fit_transform(X)`` and ``transform(X_train)`` (which
    return the same graph) without keeping a reference to the training data. Not with
    'dot' and 'hamming', whose rows are answered from their values alone.

    A `fit` that raises leaves a previously fitted estimator as it was: parameters
    are checked before the data, and the fitted attributes are set only once the index is
    built.

    Examples
    --------
    >>> from sklearn.datasets import load_wine
    >>> from annoy_adapters.sklearn import AnnoyTransformer
    >>> X, _ = load_wine(return_X_y=True)
    >>> transformer = AnnoyTransformer(n_neighbors=5, random_state=0)
    >>> X_dist_graph = transformer.fit_transform(X)
    >>> X_dist_graph.shape
    (178, 178)
    >>> int(X_dist_graph.getnnz(axis=1).min()), float(X_dist_graph[0, 0])
    (6, 0.0)
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "mode": [StrOptions({"distance", "connectivity"})],
        "metric": [StrOptions(set(CORE_METRIC))],
        "n_trees": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
        "search_k": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1}), None],
        "probe": [Interval(Integral, 1, None, closed="left"), None],
        "vector_dtype": [StrOptions({"float32", "float16"})],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        n_neighbors=5,
        mode="distance",
        metric="euclidean",
        n_trees=10,
        search_k=None,
        probe=None,
        vector_dtype="float32",
        n_jobs=None,
        random_state=None,
    ):
        self.n_neighbors = n_neighbors
        self.mode = mode
        self.metric = metric
        self.n_trees = n_trees
        self.search_k = search_k
        self.probe = probe
        self.vector_dtype = vector_dtype
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the approximate k-nearest neighbors transformer from the training dataset.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : AnnoyTransformer
            The fitted transformer.
        """
        from joblib import effective_n_jobs

        from . import AnnoyIndex

        # Every parameter and combination first: nothing is built, and self is untouched,
        # when they are wrong.
        _refuse_bools(self)
        _check_parameter_combinations(self)
        core_metric = CORE_METRIC[self.metric]
        # validate_data(reset=True) sets n_features_in_ and feature_names_in_ on self; a fit
        # that fails afterwards puts back those of the previous fit, whose index stays in use.
        previous = {key: vars(self)[key] for key in _RESET_BY_VALIDATE_DATA if key in vars(self)}
        try:
            X = validate_data(self, X, dtype=[np.float64, np.float32], order="C")
            if core_metric == "hamming":
                _check_binary(X)
            rng = check_random_state(self.random_state)
            # Drawn here, not in __init__, so that fit is repeatable for an int random_state.
            seed = int(rng.randint(np.iinfo(np.int32).max))

            index = AnnoyIndex(X.shape[1], core_metric, seed=seed, vector_dtype=self.vector_dtype)
            index.add_items(X)
            index.build(self.n_trees, n_jobs=effective_n_jobs(self.n_jobs))
            _check_probe(self.probe, index, f"metric={self.metric!r}")
            # Norms of the vectors the index holds (rounded as stored), as a restored
            # estimator sees them.
            max_sq_norm = _max_sq_norm_of_items(index) if core_metric == "dot" else None
        except BaseException:
            for key in _RESET_BY_VALIDATE_DATA:
                vars(self).pop(key, None)
            vars(self).update(previous)
            raise

        self.index_ = index
        self.metric_ = self.metric
        self.effective_metric_ = core_metric
        self.n_samples_fit_ = X.shape[0]
        self._n_features_out = self.n_samples_fit_
        self._max_sq_norm = max_sq_norm
        return self

    def transform(self, X):
        """Compute the (weighted) graph of approximate neighbors for points in X.

        Parameters
        ----------
        X : array-like of shape (n_samples_transform, n_features)
            Sample data.

        Returns
        -------
        Xt : sparse matrix of shape (n_samples_transform, n_samples_fit)
            Xt[i, j] is assigned the weight of edge that connects i to j. Only the
            neighbors have an explicit value. When X is the fitted data the diagonal is
            always explicit, except with ``metric='dot'`` or ``'hamming'``: a row's
            neighbours then depend on its values only, and sample i is listed (at its true
            distance) only if it is among them. The matrix is of CSR format.
        """
        check_is_fitted(self)
        add_one = self.mode == "distance"
        return self.kneighbors_graph(X, mode=self.mode, n_neighbors=self.n_neighbors + add_one)

    def fit_transform(self, X, y=None):
        """Fit to data, then transform it; equal to ``fit(X).transform(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training set.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        Xt : sparse matrix of shape (n_samples, n_samples)
            Xt[i, j] is assigned the weight of edge that connects i to j. Only the
            neighbors have an explicit value. The diagonal is always explicit, except with
            ``metric='dot'`` or ``'hamming'`` (see `transform`).
            The matrix is of CSR format.
        """
        return self.fit(X).transform(X)

    # ------------------------------------------------------------------ queries

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Find the approximate K-neighbors of a point.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            The query point or points. If not provided, neighbors of each indexed point
            are returned; in this case the query point is not considered its own neighbor.

        n_neighbors : int, default=None
            Number of neighbors required for each sample. The default is the value passed
            to the constructor.

        return_distance : bool, default=True
            Whether or not to return the distances.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors)
            Distances to the neighbors, increasing along each row; only present if
            ``return_distance=True``.

        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Indices of the nearest points in the population matrix.

        Examples
        --------
        >>> import numpy as np
        >>> from annoy_adapters.sklearn import AnnoyTransformer
        >>> samples = np.array([[0.0, 0.0, 0.0], [0.0, 0.5, 0.0], [1.0, 1.0, 0.5]])
        >>> neigh = AnnoyTransformer(n_neighbors=1, random_state=0).fit(samples)
        >>> dist, ind = neigh.kneighbors([[1.0, 1.0, 1.0]])
        >>> ind.tolist(), np.round(dist, 6).tolist()
        ([[2]], [[0.5]])
        """
        check_is_fitted(self)
        if n_neighbors is None:
            n_neighbors = self.n_neighbors
        elif not isinstance(n_neighbors, Integral) or isinstance(n_neighbors, bool):
            raise TypeError(
                f"n_neighbors does not take {type(n_neighbors)} value, enter integer value"
            )
        elif n_neighbors <= 0:
            raise ValueError(f"Expected n_neighbors > 0. Got {n_neighbors}")
        n_neighbors = int(n_neighbors)

        query_is_train = X is None
        if query_is_train:
            # One extra neighbour for the sample itself, removed below.
            n_neighbors += 1
        else:
            X = validate_data(self, X, dtype=[np.float64, np.float32], order="C", reset=False)
            if self.effective_metric_ == "hamming":
                _check_binary(X)

        n_samples_fit = self.n_samples_fit_
        if n_neighbors > n_samples_fit:
            if query_is_train:
                n_neighbors -= 1
                inequality_str = "n_neighbors < n_samples_fit"
            else:
                inequality_str = "n_neighbors <= n_samples_fit"
            n_samples = n_samples_fit if query_is_train else X.shape[0]
            raise ValueError(
                f"Expected {inequality_str}, but "
                f"n_neighbors = {n_neighbors}, n_samples_fit = {n_samples_fit}, "
                f"n_samples = {n_samples}"
            )

        neigh_dist, neigh_ind = self._search(X, n_neighbors)
        if query_is_train:
            neigh_dist, neigh_ind = neigh_dist[:, 1:], neigh_ind[:, 1:]
        if return_distance:
            return neigh_dist, neigh_ind
        return neigh_ind

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Compute the (weighted) graph of approximate k-neighbors for points in X.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            The query point or points. If not provided, neighbors of each indexed point
            are returned; in this case the query point is not considered its own neighbor.

        n_neighbors : int, default=None
            Number of neighbors for each sample. The default is the value passed to the
            constructor.

        mode : {'connectivity', 'distance'}, default='connectivity'
            Type of returned matrix: 'connectivity' stores ones, 'distance' the distances.

        Returns
        -------
        A : sparse matrix of shape (n_queries, n_samples_fit)
            `A[i, j]` gives the weight of the edge connecting `i` to `j`. The matrix is of
            CSR format (``csr_array`` under ``sklearn.set_config(sparse_interface="sparray")``).
        """
        check_is_fitted(self)
        if n_neighbors is None:
            n_neighbors = self.n_neighbors
        if mode == "connectivity":
            ind = self.kneighbors(X, n_neighbors, return_distance=False)
            data = np.ones(ind.shape, dtype=np.float64)
        elif mode == "distance":
            data, ind = self.kneighbors(X, n_neighbors, return_distance=True)
        else:
            raise ValueError(
                'Unsupported mode, must be one of "connectivity", '
                f'or "distance" but got "{mode}" instead'
            )
        interface = sklearn.get_config().get("sparse_interface", "spmatrix")
        return knn_graph(ind, data, self.n_samples_fit_, interface)

    def _search(self, X, k):
        """Approximate k nearest neighbours, ``X=None`` meaning the stored samples.

        Every row when X is None, and rows of X equal to the fitted sample at the same
        position, start with that sample at distance 0.0 -- except rows of X with 'dot' and
        'hamming', where forcing it by position would make a row's answer depend on where it
        sits in X: with 'dot' a sample is not its own nearest neighbour, and 0/1 rows repeat
        so often under 'hamming' that the duplicates at distance 0.0 would be ranked by
        position.
        """
        from sklearn.utils import gen_batches

        n_fit = self.n_samples_fit_
        n_queries = n_fit if X is None else X.shape[0]
        neigh_ind = np.empty((n_queries, k), dtype=np.intp)
        neigh_dist = np.empty((n_queries, k), dtype=np.float64)
        for rows in gen_batches(n_queries, self._batch_rows(k)):
            if X is None:
                self_ids = np.arange(rows.start, rows.stop, dtype=np.int64)
                ind, raw = self._query(None, self_ids, k)
                is_self = np.ones(len(self_ids), dtype=bool)
                sq_norms = None
                if self.effective_metric_ == "dot":
                    sq_norms = self._sq_norms(self.index_.get_item_vectors(self_ids))
            else:
                Xc = X[rows]
                ind, raw = self._query(Xc, None, k)
                self_ids = np.arange(rows.start, rows.start + len(Xc), dtype=np.int64)
                is_self = np.zeros(len(Xc), dtype=bool)
                n_overlap = max(0, min(rows.stop, n_fit) - rows.start)
                if self.effective_metric_ in ("dot", "hamming"):
                    n_overlap = 0  # values alone decide (see the docstring)
                if n_overlap:
                    stored = self.index_.get_item_vectors(self_ids[:n_overlap])
                    is_self[:n_overlap] = rows_equal_to_items(
                        Xc[:n_overlap], stored, self.effective_metric_, self.index_.vector_dtype
                    )
                sq_norms = self._sq_norms(Xc)
            dist = convert_distances(
                raw,
                self.metric_,  # the index answers the fitted metric, whatever metric is now
                n_features=self.n_features_in_,
                query_sq_norms=sq_norms,
                max_sq_norm=self._max_sq_norm,
            )
            if is_self.any():
                ind[is_self], dist[is_self] = put_self_first(
                    ind[is_self], dist[is_self], self_ids[is_self]
                )
            neigh_ind[rows] = ind
            neigh_dist[rows] = dist
        return neigh_dist, neigh_ind

    def _query(self, X_chunk, item_ids, k):
        """Ask the core for k neighbours, widening the search for rows that came up short.

        The forest returns fewer than k ids (padded with -1) when the inspected leaves hold
        fewer distinct samples (the cells, when the probed cells do); those rows are asked
        again with 4x the candidates (cells), up to every leaf of every tree (every cell), so
        each row of the graph has exactly k entries.
        """
        from joblib import effective_n_jobs

        index = self.index_
        n_jobs = effective_n_jobs(self.n_jobs)
        by_cells = self.probe is not None

        def ask(sel, amount):
            how = {"probe": amount} if by_cells else {"search_k": amount}
            if item_ids is None:
                return index.query(X_chunk[sel], k, n_jobs=n_jobs, **how)
            return index.query_items(item_ids[sel], k, n_jobs=n_jobs, **how)

        n_rows = len(item_ids) if X_chunk is None else len(X_chunk)
        n_trees = max(1, index.get_n_trees())
        amount = self.search_k  # candidates, or cells with probe
        if by_cells:
            amount = self.probe
        elif amount is None:
            amount = n_trees * max(k, int(index.leaf_size))
        elif amount == -1:
            amount = n_trees * k
        ind, dist = ask(slice(None), amount)
        ind = np.asarray(ind, dtype=np.intp)
        short = ind[:, -1] < 0
        amount *= 4
        everything = index.get_n_cells() if by_cells else n_trees * max(self.n_samples_fit_, k)
        while short.any():
            rows = np.flatnonzero(short)
            ind_r, dist_r = ask(rows, min(amount, everything))
            ind[rows], dist[rows] = ind_r, dist_r
            short[rows] = ind_r[:, -1] < 0
            if amount >= everything and short.any():
                raise ValueError(
                    f"The index returned fewer than n_neighbors = {k} neighbors for "
                    f"{int(short.sum())} of {n_rows} queries even when searching every "
                    f"leaf; it holds fewer than {k} reachable samples."
                )
            amount *= 4
        return ind, dist

    def _sq_norms(self, V):
        if self.effective_metric_ != "dot":
            return None
        V = np.asarray(V, dtype=np.float32)
        return np.einsum("ij,ij->i", V, V, dtype=np.float64)

    def _batch_rows(self, k):
        # Bytes per query row: the query copy, the stored vectors compared with it, ids and
        # distances at each stage (core answer, converted, re-ordered).
        row_bytes = 8 * self.n_features_in_ + 48 * k
        working_memory = sklearn.get_config()["working_memory"] * 2**20
        return int(max(1, min(working_memory // row_bytes, 65536)))

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike, *, prefault: bool = False) -> None:
        """Write the fitted index to `path`, with the estimator's parameters in its metadata.

        The file is the project's one static index format: `annoy_adapters.load`, the
        other adapters and `load` read it. Afterwards ``index_`` is memory-mapped from
        `path`, so pickling the estimator (``joblib.dump``, ``Pipeline(memory=...)``) stores
        the path and a checksum instead of a copy of the index.

        Parameters
        ----------
        path : str or os.PathLike
            Destination; replaced atomically if it exists.
        prefault : bool, default=False
            Read the whole file into the page cache when mapping it.

        Examples
        --------
        >>> import tempfile, os
        >>> from sklearn.datasets import load_iris
        >>> from annoy_adapters.sklearn import AnnoyTransformer
        >>> X, _ = load_iris(return_X_y=True)
        >>> est = AnnoyTransformer(n_neighbors=3, random_state=0).fit(X)
        >>> path = os.path.join(tempfile.mkdtemp(), "iris.annoy")
        >>> est.save(path)
        >>> AnnoyTransformer.load(path).n_neighbors
        3
        """
        check_is_fitted(self)
        metadata = self.index_.metadata
        params = self.get_params(deep=False)
        # The file holds the index fitted for metric_; a later set_params(metric=...) would
        # store a metric the file can't answer.
        params["metric"] = self.metric_
        if not isinstance(params["random_state"], (Integral, type(None))):
            # A RandomState instance is not JSON; the forest it seeded is in the file.
            params["random_state"] = None
        stored: dict[str, Any] = {
            key: (int(v) if isinstance(v, Integral) and not isinstance(v, bool) else v)
            for key, v in params.items()
        }
        if hasattr(self, "feature_names_in_"):
            stored["feature_names_in_"] = [str(name) for name in self.feature_names_in_]
        if self._max_sq_norm is not None:
            stored["max_sq_norm_"] = self._max_sq_norm
        current = self.index_.metadata
        metadata["adapter"] = "sklearn"
        metadata["sklearn"] = stored
        if metadata != current:
            # Other adapters' sections and the labels are kept; only ours is replaced.
            self.index_.set_metadata(metadata)
        self.index_.save(os.fspath(path), prefault=prefault)

    @classmethod
    def load(cls, path: str | os.PathLike, **params) -> AnnoyTransformer:
        """Restore a fitted transformer from an index file, without refitting.

        Any file in the project's format works: one written by `save`, by another
        adapter or by `annoy_adapters.AnnoyIndex`. Parameters come from the file's
        ``metadata["sklearn"]`` when present, otherwise from the defaults with the metric
        and number of trees of the index; keyword arguments override both.

        Parameters
        ----------
        path : str or os.PathLike
            The index file; it is memory-mapped, not copied.
        **params
            Estimator parameters to override, e.g. ``n_neighbors=15`` or
            ``metric='cosine'`` for an angular index. `metric` must be one the index
            answers (`effective_metric_`).

        Returns
        -------
        AnnoyTransformer
            A fitted estimator whose ``index_`` is backed by `path`. Its number of features
            and samples are the index's; ``feature_names_in_`` comes from the saved
            estimator, else from the column names the pandas accessor or the CLI recorded
            (when they are str, one per dimension; a column of whole vectors names none).

        Raises
        ------
        FileNotFoundError
            If `path` does not exist.
        annoy_adapters.IndexFileError
            If `path` is not a valid index file.
        ValueError
            If `metric` does not match the metric of the index.

        Examples
        --------
        >>> import tempfile, os
        >>> import numpy as np
        >>> from annoy_adapters import AnnoyIndex
        >>> from annoy_adapters.sklearn import AnnoyTransformer
        >>> index = AnnoyIndex(8, "angular", seed=0)
        >>> _ = index.add_items(np.random.default_rng(0).normal(size=(50, 8)))
        >>> _ = index.build(5)
        >>> path = os.path.join(tempfile.mkdtemp(), "plain.annoy")
        >>> _ = index.save(path)
        >>> est = AnnoyTransformer.load(path, metric="cosine", n_neighbors=4)
        >>> est.transform(np.zeros((2, 8)) + 1).shape
        (2, 50)
        """
        from . import load as load_index

        index = load_index(os.fspath(path))
        stored, fitted = _stored_section(cls, index, set(params))

        merged: dict[str, Any] = {
            "metric": DEFAULT_METRIC_FOR_CORE.get(index.metric, index.metric),
            "n_trees": int(index.get_n_trees()),
        }
        merged.update(stored)
        merged.update(params)
        # the file says how it keeps its vectors; a refit should keep them the same way
        if params.get("vector_dtype", index.vector_dtype) != index.vector_dtype:
            raise ValueError(
                f"vector_dtype={params['vector_dtype']!r} does not match the index in "
                f"{os.fspath(path)!r}, which keeps {index.vector_dtype!r} vectors"
            )
        merged["vector_dtype"] = index.vector_dtype
        est = cls(**merged)
        est._validate_params()
        _refuse_bools(est)
        _check_probe(est.probe, index, f"the index in {os.fspath(path)!r}")
        if CORE_METRIC[est.metric] != index.metric:
            raise ValueError(
                f"metric={est.metric!r} cannot be answered by the index in {os.fspath(path)!r}, "
                f"whose metric is {index.metric!r}; use one of "
                f"{sorted(m for m, c in CORE_METRIC.items() if c == index.metric)}"
            )

        holes = index.get_n_holes()
        if holes:  # the graph's columns are training samples 0..n-1, each an item
            raise ValueError(
                f"the index in {os.fspath(path)!r} has {holes} holes (ids never added) among its "
                f"{index.get_n_items()} ids; AnnoyTransformer needs items 0..n-1, one per "
                "training sample"
            )
        est.index_ = index
        est.metric_ = est.metric
        est.effective_metric_ = index.metric
        est.n_features_in_ = int(index.f)
        est.n_samples_fit_ = int(index.get_n_items())
        est._n_features_out = est.n_samples_fit_
        names = fitted.get("feature_names_in_")
        if names is None:
            names = _recorded_feature_names(index)
        if names is not None:
            est.feature_names_in_ = np.asarray(names, dtype=object)
        est._max_sq_norm = None
        if index.metric == "dot":
            est._max_sq_norm = fitted.get("max_sq_norm_")
            if est._max_sq_norm is None:
                est._max_sq_norm = _max_sq_norm_of_items(index)
        return est

    # ------------------------------------------------------------------ tags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Dense numeric input only; sparse input is rejected with scikit-learn's TypeError.
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        # The graph is float64 whatever the input dtype, as KNeighborsTransformer's.
        tags.transformer_tags.preserves_dtype = ["float64"]
        # Same random_state, same data -> same forest -> same graph.
        tags.non_deterministic = False
        return tags


def _stored_section(
    cls: type[AnnoyTransformer], index: Any, overridden: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameters and fitted state ``metadata["sklearn"]`` holds, checked as `fit`
    checks them: values no saved estimator has make the file corrupted (IndexFileError), not
    the parameters wrong. Parameters the caller overrides are not read."""
    section = metadata_section(index, "sklearn") or {}

    def bad(key: str, expected: str) -> Exception:
        return corrupted(index, "sklearn", key, expected, section[key])

    params = {
        k: v for k, v in section.items() if k in cls._get_param_names() and k not in overridden
    }
    for key, value in params.items():
        constraints = cls._parameter_constraints[key]
        expected = " or ".join(str(make_constraint(c)) for c in constraints)
        if key in _INT_PARAMS and isinstance(value, bool):
            raise bad(key, expected)
        try:
            validate_parameter_constraints({key: constraints}, {key: value}, cls.__name__)
        except InvalidParameterError:
            raise bad(key, expected) from None
    if params.get("n_jobs") == 0:  # joblib has no meaning for it: it would fail at transform
        raise bad("n_jobs", "None or a nonzero int")
    if "metric" in params and CORE_METRIC[params["metric"]] != index.metric:
        answered = sorted(m for m, c in CORE_METRIC.items() if c == index.metric)
        raise bad("metric", f"one of {answered}, for its {index.metric!r} index")
    if params.get("probe") is not None and not index.get_n_cells():
        raise bad("probe", "null, for an index without cells")

    fitted = {key: section[key] for key in _FITTED_KEYS if key in section}
    names = fitted.get("feature_names_in_")
    if names is not None and not (
        isinstance(names, list)
        and len(names) == index.f
        and all(isinstance(name, str) for name in names)
    ):
        raise bad("feature_names_in_", f"a list of {index.f} str names (one per feature)")
    if fitted.get("max_sq_norm_") is not None and not _is_sq_norm(fitted["max_sq_norm_"]):
        raise bad("max_sq_norm_", "a finite number >= 0")
    return params, fitted


def _is_sq_norm(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value)) and value >= 0
    except OverflowError:  # an int beyond float
        return False


def _recorded_feature_names(index: Any) -> list[str] | None:
    """The str column names (one per dimension) another adapter recorded, or None.

    The pandas accessor and the CLI record the table columns a file was built from; as
    ``feature_names_in_`` they let scikit-learn check a DataFrame's columns (names and order)
    as it does for any estimator fitted on one. A column holding whole vectors, or names
    that are not all str (scikit-learn's rule for feature names), name no features.
    """
    from ._recorded import recorded_columns

    try:
        recorded = recorded_columns(index)
    except ImportError:  # names JSON-encoded by pandas, so not all str: none to take
        return None
    if recorded is None:
        return None
    names, vector_column = recorded
    if vector_column or len(names) != index.f or not all(isinstance(c, str) for c in names):
        return None
    return list(names)


def _max_sq_norm_of_items(index) -> float:
    """Largest squared norm among the stored vectors, read in chunks of the mapped file."""
    n = index.get_n_items()
    best = 0.0
    step = max(1, 2**22 // max(1, index.f))
    for start in range(0, n, step):
        V = index.get_item_vectors(np.arange(start, min(n, start + step), dtype=np.int64))
        if len(V):
            best = max(best, float(np.max(np.einsum("ij,ij->i", V, V, dtype=np.float64))))
    return best


#: Integer parameters: scikit-learn's Interval(Integral) lets bools through, and True would
#: silently mean 1 (or fail only at transform in the core).
_INT_PARAMS = ("n_neighbors", "n_trees", "search_k", "probe")


def _refuse_bools(est: AnnoyTransformer) -> None:
    for name in _INT_PARAMS:
        value = getattr(est, name)
        if isinstance(value, (bool, np.bool_)):
            raise InvalidParameterError(
                f"The {name!r} parameter of {type(est).__name__} must be an int, not a bool. "
                f"Got {value!r} instead."
            )


def _check_probe(probe: int | None, index: Any, what: str) -> None:
    """``probe`` scans cells, which only angular and euclidean indexes have: say so at fit or
    load, not at the first transform."""
    if probe is not None and not index.get_n_cells():
        raise ValueError(
            f"probe={probe} needs an index with cells, which {what} does not have (only "
            "'cosine', 'angular', 'euclidean' and 'sqeuclidean' do); use search_k"
        )


#: Core metrics whose indexes have cells, which ``probe`` scans.
_METRICS_WITH_CELLS = sorted(
    m for m, core in CORE_METRIC.items() if core in ("angular", "euclidean")
)


def _check_parameter_combinations(est: AnnoyTransformer) -> None:
    """Refuse parameters that are valid one by one but not together, before any data is seen."""
    name = type(est).__name__
    if est.probe is not None and est.metric not in _METRICS_WITH_CELLS:
        raise ValueError(
            f"The 'probe' parameter of {name} needs an index with cells, which "
            f"metric={est.metric!r} does not have: probe must be None unless metric is one "
            f"of {_METRICS_WITH_CELLS}. Got probe={est.probe!r} with metric={est.metric!r}; "
            "use search_k instead."
        )
    if CORE_METRIC[est.metric] == "hamming" and est.vector_dtype != "float32":
        raise ValueError(
            f"The 'vector_dtype' parameter of {name} must be 'float32' with "
            f"metric='hamming' (a hamming index stores bits). Got {est.vector_dtype!r} instead."
        )


def _check_binary(X: np.ndarray) -> None:
    """metric='hamming' compares bits: refuse values other than 0 and 1 instead of silently
    binarising them, which would report distance 0 between different categories."""
    step = max(1, 2**22 // max(1, X.shape[1]))  # bounded temporaries on large X
    for start in range(0, X.shape[0], step):
        chunk = X[start : start + step]
        bad = (chunk != 0) & (chunk != 1)
        rows = np.flatnonzero(bad.any(axis=1))
        if len(rows):
            row = int(rows[0])
            col = int(np.flatnonzero(bad[row])[0])
            raise ValueError(
                "X must hold only 0 and 1 (or bool) features with metric='hamming', as the "
                f"index stores bits; got X[{start + row}, {col}] = {float(chunk[row, col])!r}. "
                "One-hot encode categorical features (sklearn.preprocessing.OneHotEncoder) "
                "or binarise them (sklearn.preprocessing.Binarizer) first."
            )
