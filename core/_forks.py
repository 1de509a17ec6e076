"""Work items shared with forked processes, for work made of many mid-size NumPy calls.

Threads hand the GIL back and forth between such calls: a two-thread GloVe tree build ran
1.4-1.6x one thread's speed, two processes 1.7-1.9x.  Children see the parent's arrays
copy-on-write and send their results back as raw array bytes over a pipe (no pickle).  Forking
is only safe while no other thread could hold a lock the child needs, so it is used on Linux
while the calling thread is the only Python thread; otherwise the caller uses threads.  A child
that fails in any way has its items redone by the parent: nothing is lost, and an error is
raised where the parent can report it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import struct
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

_OK = b"\x01"  # first byte of a child that built its share
_ARRAY = struct.Struct("<16sq")  # dtype string, ndim


def can_fork() -> bool:
    """Whether `fork_map` may fork: Linux (fork is unsafe with macOS' system frameworks
    and absent on Windows) and no other Python thread running."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def fork_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    n_jobs: int,
    returns: type[R],
    after: Callable[[T], None] | None = None,
) -> list[R]:
    """``[fn(i) for i in items]``, the items dealt round-robin to the caller and ``n_jobs - 1``
    forked children.  ``fn`` returns a ``returns``, a dataclass whose fields are NumPy arrays.
    ``after(item)`` runs in the caller as each item's result arrives.  Check `can_fork`
    first."""
    results: list[Any] = [None] * len(items)
    n_jobs = max(1, min(n_jobs, len(items)))  # one share per worker: never more than items
    shares = [range(w, len(items), n_jobs) for w in range(n_jobs)]
    children: list[tuple[int, int, range]] = []  # pid, read end of its pipe, its items
    mine = [shares[0]]

    def take(i: int, result: R) -> None:
        results[i] = result
        if after is not None:
            after(items[i])

    def here(share: range) -> None:  # the caller's own items, or a failed child's
        for i in share:
            take(i, fn(items[i]))

    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about native threads (e.g. BLAS' pool) on fork; the child only
            # runs NumPy, whose BLAS re-creates its pool after fork, and leaves by os._exit
            warnings.simplefilter("ignore", DeprecationWarning)
            for share in filter(None, shares[1:]):
                try:
                    children.append(_fork(fn, items, share))
                except OSError:  # no process to spare: the caller does these too
                    mine.append(share)
        for share in mine:
            here(share)
        while children:
            pid, read, share = children[0]
            got = _receive(read, len(share), returns)
            children.pop(0)
            os.close(read)
            os.waitpid(pid, 0)
            if got is None:
                here(share)
            else:
                for i, result in zip(share, got, strict=True):
                    take(i, result)
    finally:
        for pid, read, _ in children:  # only after an error: stop and reap the rest
            os.close(read)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return results


def _fork(fn: Callable[[T], Any], items: Sequence[T], share: range) -> tuple[int, int, range]:
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        raise
    if pid == 0:  # pragma: no cover - the child leaves by os._exit, past coverage's hooks
        os.close(read)
        _child(fn, items, share, write)
    os.close(write)
    return pid, read, share


def _child(fn: Callable[[T], Any], items: Sequence[T], share: range, write: int) -> None:
    status = 1
    try:
        out = [fn(items[i]) for i in share]
        with os.fdopen(write, "wb") as pipe:
            pipe.write(_OK)
            for result in out:
                _send(pipe, result)
        status = 0
    finally:
        os._exit(status)  # whatever happened: the parent redoes a failed child's items


def _send(pipe: Any, result: Any) -> None:
    fields = dataclasses.fields(result)
    pipe.write(struct.pack("<q", len(fields)))
    for field in fields:
        a = np.asarray(getattr(result, field.name), order="C")  # keeps 0-d arrays 0-d
        pipe.write(_ARRAY.pack(a.dtype.str.encode(), a.ndim))
        pipe.write(struct.pack(f"<{a.ndim}q", *a.shape))
        pipe.write(a.reshape(-1).view(np.uint8).data)


def _receive(read: int, count: int, returns: type[R]) -> list[R] | None:
    """``count`` results from a child's pipe, or None if the child failed or died."""
    with os.fdopen(read, "rb", closefd=False) as pipe:
        if pipe.read(1) != _OK:
            return None
        fields = dataclasses.fields(returns)  # type: ignore[arg-type]
        try:
            return [_receive_one(pipe, returns, fields) for _ in range(count)]
        except EOFError:
            return None


def _receive_one(pipe: Any, returns: type[R], fields: tuple[dataclasses.Field, ...]) -> R:
    if _unpack(pipe, "<q")[0] != len(fields):
        raise EOFError
    arrays = {}
    for field in fields:
        dtype, ndim = _unpack(pipe, _ARRAY.format)
        shape = _unpack(pipe, f"<{ndim}q")
        a = np.empty(shape, np.dtype(dtype.rstrip(b"\0").decode()))
        _read_into(pipe, a.reshape(-1).view(np.uint8).data)
        arrays[field.name] = a
    return returns(**arrays)


def _unpack(pipe: Any, fmt: str | bytes) -> tuple[Any, ...]:
    size = struct.calcsize(fmt)
    data = pipe.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack(fmt, data)


def _read_into(pipe: Any, buf: memoryview) -> None:
    done = 0
    while done < len(buf):
        got = pipe.readinto(buf[done:])
        if not got:
            raise EOFError
        done += got
