"""Counter-based random numbers: the draws of a node depend only on (seed, tree, node, purpose).

Hashing the coordinates instead of drawing from a stream makes every tree independent of how
trees are grouped into vectorized chunks or threads, so ``n_jobs`` never changes the index bytes.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, element-wise on uint64 (wrap-around is intended)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def keyed(*parts: np.ndarray | int) -> np.ndarray:
    """Hash broadcastable integer arrays into one uint64 array."""
    acc = np.uint64(0x243F6A8885A308D3)
    with np.errstate(over="ignore"):
        for p in parts:
            acc = mix(np.asarray(acc, dtype=np.uint64) ^ np.asarray(p).astype(np.uint64))
    return np.asarray(acc, dtype=np.uint64)


def uniform(h: np.ndarray) -> np.ndarray:
    """Map uint64 hashes to floats in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def below(h: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """Map uint64 hashes to ints in [0, n) (n >= 1)."""
    return np.minimum((uniform(h) * np.asarray(n)).astype(np.int64), np.asarray(n) - 1)
