"""Work items run in order on one thread, or shared by a pool of threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def thread_map(fn: Callable[[T], R], items: Sequence[T], n_jobs: int) -> list[R]:
    """``[fn(i) for i in items]``, on ``n_jobs`` threads when there is more than one item.

    Threads pay off because NumPy and BLAS let go of the GIL in the heavy calls.  No more
    threads than items: any n_jobs, however large, costs at most one thread per item.
    """
    n_jobs = min(n_jobs, len(items))
    if n_jobs <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(fn, items))
