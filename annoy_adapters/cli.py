"""The ``annoy-adapters`` command line: build, query, info, convert and demo.

Every command reads and writes the same native index file as the library. Errors (bad
arguments, missing or corrupt files) print one line to stderr and exit non-zero (2 for usage
errors, 1 for the rest); they never print a traceback. The commands live in the private
``_cli_*`` modules; this one holds the parser, ``main`` and the public helpers.

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
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from annoy_adapters import _cli_args as types
from annoy_adapters._cli_build import check_build_usage, cmd_build, say
from annoy_adapters._cli_common import (
    EXIT_ERROR,
    EXIT_USAGE,
    PROG,
    CLIError,
    UsageError,
    check_output,
    one_line,
    refuse_same_file,
    save,
)
from annoy_adapters._cli_demo import DEMO_WORDS, cmd_demo
from annoy_adapters._cli_query import check_query_usage, cmd_query, load_index
from annoy_adapters._cli_table import read_input

__all__ = ["build_parser", "index_info", "main", "read_vectors"]

_OUTPUT_FORMATS = ("csv", "parquet", "jsonl")


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage block plus the error; the contract is one line.
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------------- input files


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
    vectors = read_input(path, columns, label_column)
    return vectors.X, vectors.labels, vectors.columns


# --------------------------------------------------------------------------- info, convert


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

    index = load_index(path)
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
            f"{path!r} is not a valid annoy-adapters index file ({one_line(exc)})"
        ) from exc


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def cmd_info(args: argparse.Namespace) -> int:
    """Run ``annoy-adapters info``."""
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


def _check_convert_usage(args: argparse.Namespace) -> None:
    if (args.f is None) != (args.metric is None):
        raise UsageError("reading an annoy .ann file needs both --f and --metric")


def cmd_convert(args: argparse.Namespace) -> int:
    """Run ``annoy-adapters convert``."""
    from annoy_adapters import AnnoyIndex, IndexFileError, load

    src, dst = args.input, args.output
    if not os.path.exists(src):
        raise CLIError(f"file not found: {src!r}")
    check_output(dst, "OUTPUT")
    refuse_same_file(dst, "OUTPUT", {"INPUT": src})
    if args.f is not None:
        # annoy .ann -> native: the .ann file has no header, so f and metric come from us.
        index = AnnoyIndex(args.f, args.metric)
        try:
            index.load(src)
        except IndexFileError as exc:
            raise CLIError(
                f"{src!r} is not an annoy .ann file with f={args.f}, "
                f"metric={args.metric!r}: {one_line(exc)}"
            ) from exc
        save(index, dst)
        say(args.quiet, f"wrote native index {dst}: {index.get_n_items()} items")
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
    say(args.quiet, f"wrote annoy .ann file {dst}: {index.get_n_items()} items{dropped}")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the command line (used by `main` and the docs).

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
    p.add_argument(
        "--n-trees", type=types.n_trees, default=10, help="trees (-1: about one node per item)"
    )
    p.add_argument("--n-jobs", type=types.n_jobs, default=-1, help="threads (-1: all cores)")
    p.add_argument(
        "--seed",
        type=types.seed,
        default=None,
        help="random seed in [0, 2**64) (reproducible builds)",
    )
    p.add_argument("--leaf-size", type=types.leaf_size, default=None, help="items per leaf (>= 2)")
    p.add_argument(
        "--vector-dtype",
        default="float32",
        choices=("float32", "float16"),
        help="how vectors are kept (float16: half the bytes, 11 significant bits)",
    )
    p.set_defaults(func=cmd_build, check=check_build_usage)

    p = sub.add_parser("query", parents=[quiet], help="k nearest neighbours from an index file")
    p.add_argument("index", help="the index file")
    p.add_argument("--vectors", metavar="FILE", help="query vectors (.npy, .parquet, .csv)")
    p.add_argument("--items", nargs="+", type=types.as_int, metavar="ID", help="stored item ids")
    p.add_argument("--labels", nargs="+", metavar="LABEL", help="stored item labels")
    p.add_argument(
        "--columns", action="append", metavar="A,B,...", help="vector columns of a --vectors table"
    )
    p.add_argument("--label-column", help="--vectors table column naming each query row")
    p.add_argument("-k", type=types.positive_int, default=10, help="neighbours per query (10)")
    p.add_argument(
        "--search-k", type=types.search_k, default=-1, help="nodes to inspect (-1: k * trees)"
    )
    p.add_argument(
        "--probe",
        type=types.positive_int,
        help="scan the N nearest cells instead of the trees (faster at the same recall)",
    )
    p.add_argument("-o", "--output", help="output file (default: CSV on stdout)")
    p.add_argument("--format", choices=_OUTPUT_FORMATS, help="default: from the -o suffix")
    p.set_defaults(func=cmd_query, check=check_query_usage)

    p = sub.add_parser("info", help="show an index file's metadata")
    p.add_argument("index", help="the index file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "convert", parents=[quiet], help="annoy .ann -> native (with --f/--metric) or back"
    )
    p.add_argument("input", help="a native index file, or an annoy .ann file with --f/--metric")
    p.add_argument("output", help="the file to write")
    p.add_argument("--f", type=types.positive_int, help="dimension of the .ann input")
    p.add_argument("--metric", choices=METRICS, help="metric of the .ann input")
    p.set_defaults(func=cmd_convert, check=_check_convert_usage)

    p = sub.add_parser(
        "demo", parents=[quiet], help="index the 400,000 GloVe 6B 50d words and query a few"
    )
    p.add_argument("--small", action="store_true", help="the first 20,000 words only")
    p.add_argument("--words", nargs="+", metavar="WORD", help=f"default: {' '.join(DEMO_WORDS)}")
    p.add_argument("-k", type=types.positive_int, default=8, help="neighbours shown per word (8)")
    p.add_argument(
        "--probe",
        type=types.positive_int,
        default=8,
        help="cells scanned per query (8); more is slower and nearer exact",
    )
    p.add_argument("--n-trees", type=types.tree_count, default=10)
    p.add_argument("--n-jobs", type=types.n_jobs, default=-1)
    p.add_argument("--seed", type=types.seed, default=None, help="random seed in [0, 2**64)")
    p.add_argument("-o", "--output", help="also save the index here")
    p.set_defaults(func=cmd_demo)
    return parser


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
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        check = getattr(args, "check", None)
        if check is not None:
            check(args)
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
    except UsageError as exc:
        command = getattr(args, "command", None)
        see = f"{PROG} {command}" if command else PROG
        print(f"{PROG}: error: {exc} (see '{see} --help')", file=sys.stderr)
        return EXIT_USAGE
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        name = getattr(exc, "filename", None)
        reason = exc.strerror or one_line(exc)
        print(f"{PROG}: error: {reason}" + (f": {name!r}" if name else ""), file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # never a traceback: one line, the message alone
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
