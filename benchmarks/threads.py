"""Pin native thread pools (BLAS, OpenMP, numba) to a fixed size.

Environment variables only take effect if they are set before the libraries
that read them (NumPy's OpenBLAS, OpenMP runtimes, numba) are imported, so
:func:`thread_env` builds the environment for a worker *subprocess*, and
:func:`pin_current_process` is called first thing in the worker itself.
``threadpoolctl`` then enforces the limit on pools that were already loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def thread_env(threads: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a copy of ``base`` (default ``os.environ``) with every pool pinned.

    Examples
    --------
    >>> thread_env(1, {})["OPENBLAS_NUM_THREADS"]
    '1'
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"'threads' must be a positive int (got {threads!r})")
    env = dict(os.environ if base is None else base)
    for var in THREAD_VARS:
        env[var] = str(threads)
    return env


def pin_current_process(threads: int) -> None:
    """Pin this process's pools; call before importing NumPy, then again after.

    Before NumPy is imported this sets the environment variables; once NumPy
    (and friends) are loaded it also applies ``threadpoolctl`` limits, which
    reach pools whose variables were read earlier.
    """
    os.environ.update(thread_env(threads, {}))
    import sys

    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        # Kept alive for the life of the process on purpose: the worker is
        # short-lived and must stay pinned throughout.
        threadpool_limits(limits=threads)
