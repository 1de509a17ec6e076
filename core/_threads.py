"""Work items run in order on one thread, or shared by a pool of threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def thread_map(fn: Callable[[T], R], items: Sequence[T], n_jobs: int) -> list[R]:
    """``[fn(i) for i in items]``, on ``n_jobs`` threads when there is more than one item.

    Threads pay off because NumPy and BLAS let go of the GIL in the heavy calls.
    """
    if n_jobs == 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(fn, items))
