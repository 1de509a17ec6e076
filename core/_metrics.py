"""The five metrics: how vectors are stored, split, searched and measured.

Each metric answers four questions for the build and the search:
the space the trees split (``tree_space``), the margin of a query against a split
(``margins``), the priority a child inherits (``child_edges``) and the distance that ranks
candidates (``rank``) and is returned (``returned``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METRICS = ("angular", "euclidean", "manhattan", "dot", "hamming")

# every float16 bit pattern's float32 value: as_single() looks up the inf and NaN halves
_HALF_TO_SINGLE = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
_HALF_TO_SINGLE = _HALF_TO_SINGLE.astype(np.float32)
HALF_SCALE = np.float32(2.0**112)  # half_scaled() rows times this are the float16 values
_HALF_WILD = np.float32(65536.0)  # above every finite half (65504)


# how an index may keep its vectors: float16 halves the file and memory, rounding each value to
# 11 significant bits (GloVe: exact top-10 recall 0.9996 against float32)
VECTOR_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}
HALF_MAX = float(np.finfo(np.float16).max)


NORM_BLOCK = 1 << 16  # rows per block of squared_norms()


def vector_dtype_name(dtype: np.dtype) -> str:
    """``"float16"`` for half-precision stores, else ``"float32"`` (hamming's bits included)."""
    return "float16" if dtype == np.float16 else "float32"


def as_single(a: np.ndarray) -> np.ndarray:
    """``a`` as float32, bit for bit what ``astype`` gives; float16 (stored normals or
    vectors) in a few SIMD passes, ~4x faster than NumPy's scalar conversion."""
    if a.dtype != np.float16:
        return a.astype(np.float32, copy=False)
    out = half_scaled(a)
    out *= HALF_SCALE
    if out.size and (out.max() >= _HALF_WILD or out.min() <= -_HALF_WILD):
        wild = np.abs(out) >= _HALF_WILD  # inf and NaN halves (exponent 31) land here
        out[wild] = _HALF_TO_SINGLE.take(a.view(np.uint16)[wild])
    return out


def half_scaled(a: np.ndarray) -> np.ndarray:
    """Float16 ``a`` as float32 times ``2**-112``, exactly for finite values (inf and NaN
    come out large but finite): three passes.  Products with ``HALF_SCALE * q`` are then the
    products with ``q``, bit for bit, so scoring skips the widening's last pass.
    """
    return scale_half_bits(a.view(np.int16).astype(np.int32))


def scale_half_bits(bits: np.ndarray) -> np.ndarray:
    """`half_scaled` of float16 values whose bits ``bits`` holds sign-extended to int32
    (e.g. copied in by ``np.copyto(bits, a.view(np.int16))``), computed in place."""
    # shifted, the half's exponent and mantissa sit where single's do (biased by 15 instead
    # of 127); the mask clears the extended sign bits
    bits <<= 13
    word = bits.view(np.uint32)
    word &= np.uint32(0x8FFFE000)
    return word.view(np.float32)


def widen(a: np.ndarray) -> np.ndarray:
    """Float16 stored rows as float32; any other rows (float32, hamming's words) unchanged."""
    return as_single(a) if a.dtype == np.float16 else a


def squared_norms(store: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Float32 squared norms of ``store[rows]`` (every row if None), a block of rows at a time
    (float16 rows are widened per block, not all at once)."""
    n = len(store) if rows is None else len(rows)
    out = np.empty(n, np.float32)
    for lo in range(0, n, NORM_BLOCK):
        block = (
            store[lo : lo + NORM_BLOCK]
            if rows is None
            else store.take(rows[lo : lo + NORM_BLOCK], axis=0)
        )
        x = widen(block)
        out[lo : lo + len(x)] = np.einsum("ij,ij->i", x, x, dtype=np.float32)
    return out


def words_for_bits(f: int) -> int:
    """Number of uint64 words that hold ``f`` bits."""
    return (f + 63) // 64


def pack_bits(x: np.ndarray) -> np.ndarray:
    """Pack 0/1 rows (value > 0.5 is a set bit) into uint64 words, LSB first as annoy does."""
    n, f = x.shape
    w = words_for_bits(f)
    bits = np.zeros((n, w * 64), dtype=np.uint8)
    bits[:, :f] = x > 0.5
    packed = np.packbits(bits.reshape(n, w, 8, 8), axis=-1, bitorder="little")
    return np.ascontiguousarray(packed.reshape(n, w * 8)).view("<u8")


def unpack_bits(words: np.ndarray, f: int) -> np.ndarray:
    """Inverse of `pack_bits`: uint8 0/1 rows of length ``f``."""
    n, w = words.shape
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8).reshape(n, w * 8)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :f]


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float32))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = x / norms[:, None]
    out[norms == 0] = 0
    return out.astype(np.float32, copy=False)


@dataclass(frozen=True)
class Metric:
    """Behaviour of one metric; instances are the module constants in `BY_NAME`."""

    name: str

    @property
    def is_hamming(self) -> bool:
        return self.name == "hamming"

    @property
    def has_offset(self) -> bool:
        """Euclidean and manhattan splits are affine planes; angular and dot pass through 0."""
        return self.name in ("euclidean", "manhattan")

    @property
    def larger_is_better(self) -> bool:
        return self.name == "dot"

    def normal_dim(self, f: int) -> int:
        """Width of a split's normal vector: dot adds Bachrach's extra coordinate."""
        return {"dot": f + 1, "hamming": 0}.get(self.name, f)

    def stored_dtype(self, vectors: np.dtype = VECTOR_DTYPES["float32"]) -> np.dtype:
        """Dtype of the stored rows: packed words for hamming, else the vectors' dtype."""
        return np.dtype("<u8") if self.is_hamming else np.dtype(vectors)

    def stored_width(self, f: int) -> int:
        return words_for_bits(f) if self.is_hamming else f

    def store(self, x: np.ndarray) -> np.ndarray:
        """Float32 rows as the index keeps them."""
        return pack_bits(x) if self.is_hamming else np.ascontiguousarray(x, dtype="<f4")

    def unstore(self, stored: np.ndarray, f: int) -> np.ndarray:
        """Stored rows back to float32 vectors (hamming: 0/1)."""
        if self.is_hamming:
            return unpack_bits(stored, f).astype(np.float32)
        return np.array(stored, dtype=np.float32)

    def tree_space(self, stored: np.ndarray, f: int) -> np.ndarray:
        """Rows in the space the trees split: unit vectors for angular, augmented for dot."""
        if self.is_hamming:
            return unpack_bits(stored, f)
        x = np.asarray(stored, dtype=np.float32)
        if self.name == "angular":
            return _normalize(x)
        if self.name == "dot":
            # Bachrach et al.: append sqrt(M^2 - |x|^2): inner-product order becomes angular order
            sq = np.einsum("ij,ij->i", x, x, dtype=np.float32)
            extra = np.sqrt(np.maximum(sq.max(initial=0.0) - sq, 0.0)).astype(np.float32)
            return _normalize(np.hstack([x, extra[:, None]]))
        return np.ascontiguousarray(x)

    def query_space(self, q: np.ndarray, f: int) -> np.ndarray:
        """Queries in the space margins are taken in (hamming: 0/1 bits as uint8)."""
        if self.is_hamming:
            return (q > 0.5).astype(np.uint8)
        return q

    # -- splits -----------------------------------------------------------------------------
    def centroid_distance(self, x: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Distance used by two-means: L1 for manhattan, squared L2 otherwise (last axis)."""
        d = x - c
        if self.name == "manhattan":
            return np.abs(d).sum(axis=-1)
        return np.einsum("...i,...i->...", d, d)

    def plane(self, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normal and offset of the plane midway between centroids ``p`` and ``q`` (rows).

        The normal is rounded to float16 precision, so the file stores it in half the bytes and
        the saved index splits exactly as the built one (a unit normal loses nothing of note).
        """
        v = _normalize((p - q).astype(np.float32)).astype(np.float16).astype(np.float32)
        if self.has_offset:
            a = -np.einsum("ij,ij->i", v, (p + q) * 0.5)
        else:
            a = np.zeros(len(v), dtype=np.float32)
        return v, a.astype(np.float32)

    def margins(self, x: np.ndarray, normals: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Signed margins of rows ``x`` (..., d) against matching planes (..., normal_dim).

        For hamming the margin is the bit at the split's dimension (stored in ``offsets``); a
        dimension beyond ``f`` (annoy may split on a padding bit) reads 0.  Dot queries have 0 in
        the extra coordinate, so only the first ``d`` weights count; its offsets are 0 for native
        forests and annoy 1.17.3's ``dot_factor ** 2`` for forests read from ``.ann`` files.
        """
        if self.is_hamming:
            dims = offsets.astype(np.int64)
            inside = dims < x.shape[-1]
            bits = np.take_along_axis(x, np.where(inside, dims, 0)[..., None], axis=-1)[..., 0]
            return np.where(inside, bits, 0).astype(np.float32)
        d = x.shape[-1]
        w = as_single(normals[..., :d])  # stored as float16: einsum's mixed types take a slow
        m = np.einsum("...i,...i->...", x, w, dtype=np.float32)  # loop
        if self.has_offset or self.name == "dot":
            m = m + offsets
        return m

    def child_edges(self, margin: np.ndarray) -> np.ndarray:
        """What children 0 and 1 of each split add to its priority (annoy's pq_distance).

        ``margin`` is (n, w); the result is (n, 2w) with the two children of a split side by
        side, so a block of a tree laid out breadth first stays in heap order.  A child's
        priority is ``path_combine(parent priority, edge)``.  A NaN margin (a hostile plane, or
        no split at that position) gives -inf: nothing below it is ever visited.
        """
        edges = np.empty((*margin.shape, 2), np.float32)
        np.negative(margin, out=edges[..., 0])
        if self.is_hamming:  # margins are the split bit, 0 or 1: pay 1 for the other side
            np.subtract(margin, 1, out=edges[..., 1])
        else:
            edges[..., 1] = margin
        np.fmax(edges, -np.inf, out=edges)  # fmax picks the number over NaN: NaN -> -inf
        return edges.reshape(len(margin), -1)

    @property
    def path_combine(self) -> np.ufunc:
        """How an edge folds into the parent's priority: annoy takes the minimum margin along
        the path, and for hamming subtracts one per bit that goes the other way."""
        return np.add if self.is_hamming else np.minimum

    @property
    def root_priority(self) -> float:
        return 0.0 if self.is_hamming else np.inf

    # -- distances ----------------------------------------------------------------------------
    def rank(
        self,
        q: np.ndarray,
        cand: np.ndarray,
        q_sqnorm: np.ndarray | None,
        cand_sqnorm: np.ndarray | None,
    ) -> np.ndarray:
        """Distance that orders candidates (smaller is better).

        ``q`` is (B, w) and ``cand`` (B, M, w) stored rows; squared norms are given for
        angular and euclidean so the inner product can do the work.
        """
        if self.is_hamming:
            return (
                np.bitwise_count(cand ^ q[:, None, :])
                .sum(axis=-1, dtype=np.int64)
                .astype(np.float32)
            )
        if self.name == "manhattan":
            return np.abs(cand - q[:, None, :]).sum(axis=-1, dtype=np.float32)
        # einsum, not matmul: stacked gemv in matmul takes a slow non-BLAS loop here
        dots = np.einsum("bmi,bi->bm", cand, q, dtype=np.float32)
        if self.name == "dot":
            return -dots
        if self.name == "euclidean":
            return np.maximum(q_sqnorm[:, None] + cand_sqnorm - 2 * dots, 0)
        # the norms' product, not the squares': that overflows float32 from norms of ~4e9
        pq = np.sqrt(q_sqnorm)[:, None] * np.sqrt(cand_sqnorm)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # hostile files
            d = 2 - 2 * dots / pq
        return np.where(pq > 0, np.maximum(d, 0), np.float32(2)).astype(np.float32)

    def rank_error(self, f: int, q_sqnorm: np.ndarray, cand_sqnorm_max: np.ndarray) -> np.ndarray:
        """Bound on how far `rank`'s float32 distances of queries with squared norms
        ``q_sqnorm`` (B,) can be off, for rows of squared norm at most ``cand_sqnorm_max``.

        The inner-product expansion cancels: euclidean loses ~eps (|q| + |x|)^2 absolutely,
        all of the distance for points far from the origin and close together (GPS
        coordinates), so finalists are picked within twice this of the boundary.  Twice the
        worst case of ``f`` roundings per term; zero for metrics that compute directly.
        """
        eps = float(np.finfo(np.float32).eps)
        if self.name == "euclidean":
            qn = np.sqrt(np.asarray(q_sqnorm, np.float64))
            cn = np.sqrt(np.asarray(cand_sqnorm_max, np.float64))
            return 2 * (f + 4) * eps * (qn + cn) ** 2
        if self.name == "angular":  # 2 - 2 cos: the cosine's rounding, relative to 1
            return np.full(len(q_sqnorm), 4 * (2 * f + 8) * eps)
        return np.zeros(len(q_sqnorm))

    def score_error(self, f: int, q_norm: np.ndarray, row_sqnorm_max: float) -> np.ndarray:
        """Bound on the rounding of a cell scan's float32 scores (see ``_cells``): q.x -
        |x|^2 / 2 (euclidean) or cos times |q| (angular), for rows of squared norm at most
        ``row_sqnorm_max``; like `rank_error`, twice the worst case."""
        eps = float(np.finfo(np.float32).eps)
        q_norm = np.asarray(q_norm, np.float64)
        if self.name == "euclidean":
            r = math.sqrt(max(row_sqnorm_max, 0.0))
            return 2 * (f + 4) * eps * (q_norm * r + r * r / 2)
        return 2 * (2 * f + 8) * eps * q_norm

    def exact(self, q: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Rank distance recomputed directly (no norm expansion) for the few finalists."""
        if self.name == "euclidean":
            d = cand - q[:, None, :]
            return np.einsum("bmi,bmi->bm", d, d, dtype=np.float32)
        if self.name == "angular":
            # float64 so a vector's distance to itself comes out 0, as annoy's does
            q64, c64 = q.astype(np.float64), cand.astype(np.float64)
            qq = np.einsum("bi,bi->b", q64, q64)
            cc = np.einsum("bmi,bmi->bm", c64, c64)
            dots = np.einsum("bmi,bi->bm", c64, q64)
            pq = qq[:, None] * cc
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                d = 2 - 2 * dots / np.sqrt(pq)
            return np.where(pq > 0, np.maximum(d, 0), 2.0).astype(np.float32)
        return self.rank(q, cand, None, None)

    def returned(self, rank: np.ndarray) -> np.ndarray:
        """Annoy's reported distance from the rank distance."""
        if self.name in ("angular", "euclidean"):
            return np.sqrt(np.maximum(rank, 0))
        if self.name == "dot":
            return -rank
        return rank

    @property
    def needs_sqnorm(self) -> bool:
        return self.name in ("angular", "euclidean")


BY_NAME = {name: Metric(name) for name in METRICS}


def get_metric(name: object) -> Metric:
    """Look up a metric by name, with a clear error listing the valid ones."""
    if not isinstance(name, str) or name not in BY_NAME:
        valid = ", ".join(repr(m) for m in METRICS)
        raise ValueError(f"'metric' must be one of {valid} (got {name!r})")
    return BY_NAME[name]
