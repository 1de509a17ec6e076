"""``annoy-adapters build``: an index file from the vectors of a .npy, .parquet or .csv file."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from annoy_adapters import AnnoyIndex, RowError
from annoy_adapters._cli_common import (
    CLIError,
    UsageError,
    check_output,
    one_line,
    refuse_same_file,
    save,
)
from annoy_adapters._cli_table import check_columns_usage, read_input, row_message, split_names

__all__ = ["build_index", "check_build_usage", "cmd_build", "say"]


def _progress(quiet: bool) -> Any:
    from annoy_adapters._progress import TreeProgress

    return TreeProgress(quiet=True if quiet else None)


def build_index(
    X: np.ndarray,
    *,
    metric: str,
    n_trees: int,
    n_jobs: int,
    seed: int | None,
    leaf_size: int | None,
    labels: Sequence[Any] | None,
    metadata: dict[str, Any] | None,
    quiet: bool,
    vector_dtype: str = "float32",
) -> AnnoyIndex:
    """An index of the rows of ``X`` with its trees built (a progress bar unless ``quiet``)."""
    index = AnnoyIndex(
        X.shape[1], metric, leaf_size=leaf_size, seed=seed, vector_dtype=vector_dtype
    )
    index.add_items(X)
    if labels is not None:
        index.set_labels(labels)
    if metadata is not None:
        index.set_metadata(metadata)
    with _progress(quiet) as progress:
        index.build(n_trees, n_jobs=n_jobs, progress=progress)
    return index


def say(quiet: bool, message: str) -> None:
    """``message`` on stderr unless ``quiet``."""
    if not quiet:
        print(message, file=sys.stderr)


def check_build_usage(args: argparse.Namespace) -> None:
    """Options that do not go together, checked before any file is read (exit code 2)."""
    check_columns_usage(split_names(args.columns), args.label_column)
    if args.vector_dtype == "float16" and args.metric == "hamming":
        # the core refuses it too, but only after the input was read
        raise UsageError(
            "--vector-dtype float16 does not go with --metric hamming (hamming stores bits, "
            "not floats)"
        )


def cmd_build(args: argparse.Namespace) -> int:
    """Run ``annoy-adapters build``."""
    check_output(args.output, "-o/--output")
    refuse_same_file(args.output, "-o/--output", {"INPUT": args.input})
    columns = split_names(args.columns)
    vectors = read_input(args.input, columns, args.label_column, stored_labels=True)
    metadata = {
        "adapter": "cli",
        "cli": {
            "source": os.path.basename(args.input),
            "columns": vectors.columns,
            "vector_column": vectors.vector_column,
            "label_column": vectors.label_column,  # as the table spells it
        },
    }
    start = time.perf_counter()
    try:
        index = build_index(
            vectors.X,
            metric=args.metric,
            n_trees=args.n_trees,
            n_jobs=args.n_jobs,
            seed=args.seed,
            leaf_size=args.leaf_size,
            labels=vectors.labels,
            metadata=metadata,
            quiet=args.quiet,
            vector_dtype=args.vector_dtype,
        )
    except RowError as exc:
        raise CLIError(row_message(vectors, exc.row, exc.reason)) from exc
    except (ValueError, TypeError, IndexError) as exc:
        raise CLIError(f"cannot build an index from {args.input!r}: {one_line(exc)}") from exc
    seconds = time.perf_counter() - start
    save(index, args.output)
    say(
        args.quiet,
        f"wrote {args.output}: {index.get_n_items()} items, f={index.f}, {index.metric}, "
        f"{index.get_n_trees()} trees, built in {seconds:.2f} s",
    )
    return 0
