"""Argument types of the command line: a value the core would refuse is a usage error (exit
code 2) when the arguments are parsed, before any file is read."""

from __future__ import annotations

import argparse

__all__ = [
    "MAX_TREES",
    "SEED_LIMIT",
    "as_int",
    "leaf_size",
    "n_jobs",
    "n_trees",
    "positive_int",
    "search_k",
    "seed",
    "tree_count",
]

# More trees than this is no useful forest; bigger numbers fail late (MemoryError, overflow).
MAX_TREES = 1_000_000
#: Seeds are ints in [0, 2**64), as the core takes them.
SEED_LIMIT = 2**64


def positive_int(text: str) -> int:
    """``text`` as an int >= 1.

    Examples
    --------
    >>> positive_int("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int (got {text!r})")
    return value


def _ranged_int(text: str, *, low: int, allow_minus_one: bool, high: int | None = None) -> int:
    """``text`` as an int in [low, high] (or -1 when allowed), else a usage error (exit 2): the
    core would refuse it too, but only after the input was read, as a failed command."""
    expected = f"an int from {low} to {high:,}" if high is not None else f"an int >= {low}"
    expected = f"-1 or {expected}" if allow_minus_one else expected
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected} (got {text!r})") from None
    in_range = value >= low and (high is None or value <= high)
    if not in_range and not (allow_minus_one and value == -1):
        raise argparse.ArgumentTypeError(f"expected {expected} (got {text!r})")
    return value


def n_trees(text: str) -> int:
    """Trees to build: -1 (until the trees have about one node per item) or 1 to `MAX_TREES`."""
    return _ranged_int(text, low=1, high=MAX_TREES, allow_minus_one=True)


def tree_count(text: str) -> int:
    """Trees to build: 1 to `MAX_TREES`."""
    return _ranged_int(text, low=1, high=MAX_TREES, allow_minus_one=False)


def n_jobs(text: str) -> int:
    """Threads: -1 (all cores) or a positive int."""
    return _ranged_int(text, low=1, allow_minus_one=True)


def search_k(text: str) -> int:
    """Nodes to inspect: -1 (k * trees) or a positive int."""
    return _ranged_int(text, low=1, allow_minus_one=True)


def leaf_size(text: str) -> int:
    """Items per leaf: at least 2."""
    return _ranged_int(text, low=2, allow_minus_one=False)


def seed(text: str) -> int:
    """A random seed: an int in [0, 2**64).

    Examples
    --------
    >>> seed("0"), seed(str(2**64 - 1))
    (0, 18446744073709551615)
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int in [0, 2**64) (got {text!r})") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an int in [0, 2**64) (got {text!r})")
    return value


def as_int(text: str) -> int:
    """``text`` as an int (any sign)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int (got {text!r})") from None
