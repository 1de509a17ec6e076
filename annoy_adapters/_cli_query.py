"""``annoy-adapters query``: the neighbours of stored items, labels or a file's vectors, as a
tidy table (query, rank, neighbor, distance) in CSV, Parquet or JSON lines."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from annoy_adapters import RowError
from annoy_adapters._cli_common import (
    CLIError,
    UsageError,
    check_output,
    need_pandas,
    one_line,
    refuse_same_file,
)
from annoy_adapters._cli_table import (
    TABLE_SUFFIXES,
    Vectors,
    check_columns_usage,
    read_input,
    row_message,
    split_names,
)
from annoy_adapters._recorded import decoded_labels, recorded_columns

__all__ = ["check_query_usage", "cmd_query", "k_for", "load_index"]

_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
}


def load_index(path: str) -> Any:
    """The index file at ``path``, or a one-line error naming it."""
    from annoy_adapters import IndexFileError, load

    if not os.path.exists(path):
        raise CLIError(f"file not found: {path!r}")
    if os.path.isdir(path):
        raise CLIError(f"{path!r} is a directory, not an index file")
    try:
        return load(path)
    except IndexFileError as exc:
        raise CLIError(
            f"{path!r} is not a valid annoy-adapters index file ({one_line(exc)}); "
            "an annoy .ann file needs 'convert --f F --metric M' first"
        ) from exc


def k_for(index: Any, k: int) -> int:
    """``k`` capped at the number of items: no query finds more, and the result arrays are
    (queries, k), so a huge -k would only allocate padding (search_k -1 means k * trees, but
    any k >= the items already searches exactly)."""
    return max(1, min(k, index.get_n_items()))


def _output_format(output: str | None, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    if output is None:
        return "csv"
    suffix = os.path.splitext(output)[1].lower()
    if suffix not in _SUFFIX_FORMATS:
        raise UsageError(
            f"cannot tell the output format of -o {output!r}: use a .csv, .parquet or .jsonl "
            "name or --format"
        )
    return _SUFFIX_FORMATS[suffix]


def check_query_usage(args: argparse.Namespace) -> None:
    """Options that do not go together, checked before any file is read (exit code 2)."""
    given = [
        option
        for option, value in (
            ("--vectors", args.vectors),
            ("--items", args.items),
            ("--labels", args.labels),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise UsageError(
            "give exactly one of --vectors FILE, --items ID [ID ...] or --labels LABEL [...]"
            + (f" (got {' and '.join(given)})" if given else "")
        )
    if args.vectors is None and (args.columns or args.label_column is not None):
        raise UsageError("--columns and --label-column describe a --vectors table")
    if _output_format(args.output, args.format) == "parquet" and args.output is None:
        raise UsageError("--format parquet needs an output file (-o FILE)")
    check_columns_usage(split_names(args.columns), args.label_column)


class _LabelLookup:
    """Item ids of labels typed on the command line: the text of a label as printed (the
    pandas-decoded label: a timestamp, a float, a category...), else the text read as the
    labels' type ("010" for the int 10, "2024-01-01" for a midnight timestamp)."""

    def __init__(self, labels: Any, path: str) -> None:
        self.labels, self.path = labels, path
        values = labels.tolist()
        self._by_text: dict[str, int] = {}
        self._ambiguous: dict[str, list[Any]] = {}
        for i, value in enumerate(values):
            text = str(value)
            if text in self._by_text:
                self._ambiguous.setdefault(text, [values[self._by_text[text]]]).append(value)
            else:
                self._by_text[text] = i
        self._by_value: dict[Any, int] | None = None

    def _parsed(self, text: str) -> Any:
        """``text`` as a value of the labels' type, or None."""
        pd = need_pandas()
        labels = self.labels
        kind = getattr(labels, "dtype", np.dtype(object)).kind
        try:
            if kind in "iu":
                return int(text)
            if kind == "f":
                return float(text)
            if kind == "M":
                stamp = pd.Timestamp(text)
                tz = getattr(labels, "tz", None)
                return stamp.tz_localize(tz) if tz is not None and stamp.tz is None else stamp
        except (ValueError, TypeError, OverflowError):
            return None
        return None

    def id_of(self, text: str) -> int:
        if text in self._ambiguous:
            raise CLIError(
                f"--labels {text!r} is the text of several labels of {self.path!r}: "
                f"{self._ambiguous[text]!r}; use --items with item ids"
            )
        if text in self._by_text:
            return self._by_text[text]
        value = self._parsed(text)
        if value is not None:
            if self._by_value is None:
                self._by_value = {v: i for i, v in enumerate(self.labels.tolist())}
            try:
                return self._by_value[value]
            except (KeyError, TypeError):
                pass
        raise CLIError(f"unknown label {text!r} (--labels): not a label of {self.path!r}")


def _take(labels: Any, ids: np.ndarray) -> Any:
    """``labels`` at ``ids``: a pandas Index (one flat column, tuples for a MultiIndex) or an
    array."""
    if hasattr(labels, "take"):
        if hasattr(labels, "to_flat_index"):
            labels = labels.to_flat_index()
        return labels.take(ids)
    return labels[ids]


def _query_targets(args: argparse.Namespace, index: Any, labels: Any) -> tuple[str, Any, Any]:
    """('vectors', queries, X) or ('items', queries, item ids) from the chosen source."""
    if args.items is not None:
        n = index.get_n_items()
        bad = [i for i in args.items if not 0 <= i < n]  # before int64: huge ids overflow it
        if bad:
            raise CLIError(f"--items must be item ids in [0, {n}) (got {bad[0]})")
        return "items", list(args.items), np.asarray(args.items, dtype=np.int64)
    if args.labels is not None:
        if labels is None:
            raise CLIError(f"{args.index!r} has no labels; use --items with item ids")
        lookup = _LabelLookup(labels, args.index)
        ids = np.asarray([lookup.id_of(text) for text in args.labels], dtype=np.int64)
        return "items", _take(labels, ids), ids
    vectors = _query_vectors(args, index)
    queries = vectors.labels if vectors.labels is not None else np.arange(vectors.X.shape[0])
    return "vectors", queries, vectors


def _query_vectors(args: argparse.Namespace, index: Any) -> Vectors:
    """The --vectors file's rows, from the columns the index was built from unless --columns
    says otherwise."""
    path = args.vectors
    columns = split_names(args.columns)
    columns_from = "--columns"
    if columns is None and os.path.splitext(path)[1].lower() in TABLE_SUFFIXES:
        recorded = recorded_columns(index)
        if recorded is not None:
            columns = [str(c) for c in recorded[0]]
            kind = "vector column" if recorded[1] else "columns"
            columns_from = (
                f"the {kind} {args.index!r} was built from (choose others with --columns)"
            )
    vectors = read_input(path, columns, args.label_column, columns_from=columns_from)
    if vectors.X.shape[1] != index.f:
        raise CLIError(
            f"{path!r} has vectors of length {vectors.X.shape[1]}; {args.index!r} has f={index.f}"
        )
    return vectors


def _query_frame(queries: Any, ids: np.ndarray, dist: np.ndarray, labels: Any) -> Any:
    """Tidy rows: query, rank, neighbor, distance (padding -1 dropped)."""
    pd = need_pandas()
    n, k = ids.shape
    keep = ids.reshape(-1) >= 0
    found = ids.reshape(-1)[keep]
    rows = np.repeat(np.arange(n), k)[keep]
    query = queries.take(rows) if isinstance(queries, pd.Index) else np.asarray(queries)[rows]
    return pd.DataFrame(
        {
            "query": query,
            "rank": np.tile(np.arange(k), n)[keep],
            "neighbor": _take(labels, found) if labels is not None else found,
            "distance": dist.reshape(-1)[keep],
        }
    )


def _write_frame(frame: Any, output: str | None, fmt: str, index_path: str) -> None:
    if fmt == "parquet":
        import pyarrow as pa

        try:
            frame.to_parquet(output, index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise CLIError(
                f"cannot write {output!r} as Parquet: the labels of {index_path!r} are not of "
                f"one Parquet type ({one_line(exc)}); use --format csv or jsonl"
            ) from exc
        return
    if fmt == "csv":
        frame.to_csv(output if output is not None else sys.stdout, index=False)
        return
    text = frame.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    text = text if text.endswith("\n") or not text else text + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)


def cmd_query(args: argparse.Namespace) -> int:
    """Run ``annoy-adapters query``."""
    fmt = _output_format(args.output, args.format)
    if args.output is not None:
        check_output(args.output, "-o/--output")
        refuse_same_file(
            args.output, "-o/--output", {"INDEX": args.index, "--vectors": args.vectors}
        )
    index = load_index(args.index)
    try:
        labels = decoded_labels(index)
    except ImportError as exc:
        raise CLIError(one_line(exc)) from exc
    source, queries, targets = _query_targets(args, index, labels)
    k = k_for(index, args.k)
    if source == "items":
        ids, dist = index.query_items(targets, k, search_k=args.search_k, probe=args.probe)
    else:
        try:
            ids, dist = index.query(targets.X, k, search_k=args.search_k, probe=args.probe)
        except RowError as exc:
            raise CLIError(row_message(targets, exc.row, exc.reason)) from exc
    frame = _query_frame(queries, ids, dist, labels)
    _write_frame(frame, args.output, fmt, args.index)
    if args.output is not None and not args.quiet:
        print(f"wrote {len(frame)} rows to {args.output}", file=sys.stderr)
    return 0
