"""Array helpers behind `annoy_adapters.sklearn.AnnoyTransformer`.

Pure NumPy/SciPy functions, kept apart from the estimator so each step of turning the
core's ``(ids, distances)`` answer into a scikit-learn k-neighbours graph can be read and
tested on its own: metric names, distance conversion, putting a sample first as its own
neighbour, and the CSR container that ``sklearn.set_config(sparse_interface=...)`` asks for.
"""

from __future__ import annotations

import numpy as np

#: scikit-learn metric name -> the core metric that answers it.
CORE_METRIC = {
    "angular": "angular",
    "cosine": "angular",
    "euclidean": "euclidean",
    "sqeuclidean": "euclidean",
    "manhattan": "manhattan",
    "dot": "dot",
    "hamming": "hamming",
}

#: core metric (as stored in an index file) -> the metric name a restored estimator reports.
DEFAULT_METRIC_FOR_CORE = {
    "angular": "angular",
    "euclidean": "euclidean",
    "manhattan": "manhattan",
    "dot": "dot",
    "hamming": "hamming",
}


def convert_distances(
    dist: np.ndarray,
    metric: str,
    *,
    n_features: int,
    query_sq_norms: np.ndarray | None = None,
    max_sq_norm: float | None = None,
) -> np.ndarray:
    """Turn the core's float32 distances into the float64 values the graph stores.

    Parameters
    ----------
    dist : ndarray of shape (n_queries, k)
        Distances as returned by ``AnnoyIndex.query`` for the core metric of `metric`.
    metric : str
        The estimator's metric (a key of `CORE_METRIC`).
    n_features : int
        Number of features (bits for hamming), to turn a bit count into a fraction.
    query_sq_norms : ndarray of shape (n_queries,), optional
        Squared norms of the queries; required for ``metric='dot'``.
    max_sq_norm : float, optional
        Largest squared norm among the fitted samples; required for ``metric='dot'``.

    Returns
    -------
    ndarray of shape (n_queries, k), float64
        Non-negative distances, increasing along each row when `dist` is ordered best first.

    Examples
    --------
    >>> import numpy as np
    >>> convert_distances(np.array([[0.0, 1.0]], np.float32), "cosine", n_features=3)
    array([[0. , 0.5]])
    """
    out = np.asarray(dist, dtype=np.float64)
    if metric == "cosine":
        # annoy's angular distance is |u - v| for unit vectors, so 1 - cos = d**2 / 2.
        out = np.clip(out * out / 2.0, 0.0, 2.0)
    elif metric == "sqeuclidean":
        out = out * out
    elif metric == "hamming":
        # scikit-learn's hamming distance is the fraction of differing features.
        out = out / float(n_features)
    elif metric == "dot":
        if query_sq_norms is None or max_sq_norm is None:
            raise ValueError("metric='dot' needs query_sq_norms and max_sq_norm")
        # Euclidean distance in annoy's augmented space (Bachrach et al. 2014): every
        # fitted x gets the extra coordinate sqrt(M**2 - |x|**2), a query gets 0, so
        # |q' - x'|**2 = |q|**2 + M**2 - 2 q.x >= (|q| - M)**2 >= 0 and decreasing in q.x.
        sq = query_sq_norms[:, None] + max_sq_norm - 2.0 * out
        out = np.sqrt(np.maximum(sq, 0.0))
    else:
        out = out.copy() if out is dist else out
    return out


def put_self_first(
    ind: np.ndarray, dist: np.ndarray, self_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Make ``self_ids[r]`` the first neighbour of row ``r`` with distance exactly 0.0.

    If the id is among the row's neighbours it is moved to the front; if the approximate
    search missed it, it is inserted at the front and the row's last neighbour is dropped.
    Either way each row keeps its length, has no duplicate ids and stays sorted (the other
    distances are non-negative and already increasing).

    Parameters
    ----------
    ind : ndarray of shape (n_rows, k), int
        Neighbour ids, best first, without duplicates within a row.
    dist : ndarray of shape (n_rows, k), float64
        Matching non-negative distances.
    self_ids : ndarray of shape (n_rows,), int
        The id each row must start with.

    Returns
    -------
    ind, dist : ndarrays of shape (n_rows, k)
        New arrays.

    Examples
    --------
    >>> import numpy as np
    >>> ind, dist = put_self_first(
    ...     np.array([[4, 2, 7], [1, 3, 5]]), np.array([[0.0, 0.1, 0.2], [0.3, 0.4, 0.5]]),
    ...     np.array([2, 9]))
    >>> ind.tolist(), dist.tolist()
    ([[2, 4, 7], [9, 1, 3]], [[0.0, 0.0, 0.2], [0.0, 0.3, 0.4]])
    """
    n_rows, k = ind.shape
    keep = ind != self_ids[:, None]
    missed = keep.all(axis=1)
    # A row that missed its sample gives up its last (farthest) neighbour instead.
    keep[missed, -1] = False
    new_ind = np.empty_like(ind)
    new_dist = np.empty_like(dist)
    new_ind[:, 0] = self_ids
    new_dist[:, 0] = 0.0
    new_ind[:, 1:] = ind[keep].reshape(n_rows, k - 1)
    new_dist[:, 1:] = dist[keep].reshape(n_rows, k - 1)
    return new_ind, new_dist


def rows_equal_to_items(
    X_chunk: np.ndarray, item_vectors: np.ndarray, metric: str, vector_dtype: str = "float32"
) -> np.ndarray:
    """Which query rows are the very samples stored under the same position.

    Parameters
    ----------
    X_chunk : ndarray of shape (n, n_features)
        Query rows ``start .. start + n``.
    item_vectors : ndarray of shape (n, n_features)
        Stored vectors of items ``start .. start + n``.
    metric : str
        Core metric, not hamming: hamming rows are answered from their values alone (0/1
        rows repeat, so "the sample at this position" would pick among equal rows by place).
    vector_dtype : {"float32", "float16"}
        How the index keeps its vectors: rows are rounded the same way before comparing.

    Returns
    -------
    ndarray of shape (n,), bool

    Examples
    --------
    >>> import numpy as np
    >>> rows_equal_to_items(np.array([[1.0, 2.0], [3.0, 4.0]]),
    ...                     np.array([[1.0, 2.0], [3.0, 5.0]], np.float32), "euclidean")
    array([ True, False])
    """
    # A query equal to a stored sample after the index's rounding is that sample.
    with np.errstate(over="ignore"):  # beyond float16's range: inf, never equal
        rounded = np.asarray(X_chunk, dtype=vector_dtype).astype(np.float32)
    return np.all(rounded == item_vectors, axis=1)


def knn_graph(
    ind: np.ndarray, data: np.ndarray, n_samples_fit: int, sparse_interface: str = "spmatrix"
):
    """Build the CSR k-neighbours graph exactly as ``KNeighborsMixin.kneighbors_graph``.

    Stored entries are never dropped: an explicit 0.0 (a sample as its own neighbour) must
    stay, because consumers given the graph as their training data skip that entry.

    Parameters
    ----------
    ind : ndarray of shape (n_queries, k), int
        Column (fitted sample) of each entry, in row order.
    data : ndarray of shape (n_queries, k), float64
        Value of each entry.
    n_samples_fit : int
        Number of columns.
    sparse_interface : {"spmatrix", "sparray"}, default="spmatrix"
        scikit-learn's ``sparse_interface`` setting: ``csr_matrix`` or ``csr_array``.

    Returns
    -------
    scipy.sparse.csr_matrix or scipy.sparse.csr_array of shape (n_queries, n_samples_fit)

    Examples
    --------
    >>> import numpy as np
    >>> g = knn_graph(np.array([[0, 1], [1, 0]]), np.array([[0.0, 1.0], [0.0, 1.0]]), 2)
    >>> g.nnz, g.indptr.tolist()
    (4, [0, 2, 4])
    """
    from scipy import sparse

    n_queries, k = ind.shape
    indptr = np.arange(0, n_queries * k + 1, k)
    args = ((np.ascontiguousarray(data, dtype=np.float64).ravel(), ind.ravel(), indptr),)
    shape = (n_queries, n_samples_fit)
    if sparse_interface == "sparray":
        return sparse.csr_array(*args, shape=shape)
    if sparse_interface == "spmatrix":
        return sparse.csr_matrix(*args, shape=shape)
    raise ValueError(
        f'Config "sparse_interface" is {sparse_interface}. '
        'It should be either "sparray" or "spmatrix".'
    )
