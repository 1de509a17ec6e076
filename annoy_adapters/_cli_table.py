"""Vectors and labels from the command line's input files: a 2-D .npy, or a .parquet / .csv
table; and error lines that name a refused row by its file, row, label and column."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annoy_adapters._cli_common import CLIError, UsageError, need_pandas, one_line

__all__ = [
    "TABLE_SUFFIXES",
    "Vectors",
    "check_columns_usage",
    "read_input",
    "row_message",
    "split_names",
]

TABLE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_INT64_MAX = int(np.iinfo(np.int64).max)


@dataclass
class Vectors:
    """What an input file holds: vectors ``X`` (n, f), one label per row or None, and the
    vector columns of a table (None for a .npy)."""

    path: str
    X: np.ndarray
    labels: np.ndarray | None
    columns: list[str] | None
    label_column: str | None
    vector_column: bool = False  # one column holding whole vectors (a Parquet list column)


def split_names(values: Sequence[str] | None) -> list[str] | None:
    """``--columns a,b --columns c`` -> ["a", "b", "c"].

    Examples
    --------
    >>> split_names(["a,b", "c"])
    ['a', 'b', 'c']
    """
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",")]
    if any(not name for name in names):
        raise UsageError(f"--columns has an empty column name (got {','.join(values)!r})")
    seen: set[str] = set()
    for name in names:  # a repeated column would be a repeated dimension
        if name in seen:
            raise UsageError(f"--columns repeats {name!r}")
        seen.add(name)
    return names


def check_columns_usage(columns: list[str] | None, label_column: str | None) -> None:
    """The label column cannot also be a vector column (checked before any file is read)."""
    if label_column is not None and columns and label_column.strip() in columns:
        raise UsageError(
            f"--label-column {label_column!r} is also in --columns: a column holds either "
            "the labels or vector values, not both"
        )


def check_suffix(path: str) -> str:
    """The lower-case suffix of an input file, which must be .npy, .parquet, .pq or .csv."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix != ".npy" and suffix not in TABLE_SUFFIXES:
        raise CLIError(f"unsupported input {path!r}: expected a .npy, .parquet or .csv file")
    return suffix


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds: messages show 103, not np.int64(103)."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class _Table:
    """A table's column names as stored, and those of its stored pandas index (Parquet)."""

    names: list[str]
    index_names: list[str]


def _table_columns(path: str, kind: str) -> _Table:
    pd = need_pandas()
    if kind == "parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        stored = (schema.pandas_metadata or {}).get("index_columns", [])
        # a named index (or an unnamed non-range one, '__index_level_0__') is a stored column;
        # a RangeIndex is only metadata
        return _Table(list(schema.names), [c for c in stored if isinstance(c, str)])
    return _Table([str(c) for c in pd.read_csv(path, nrows=0).columns], [])


def _resolve(name: str, present: list[str]) -> str | None:
    """The column ``name`` means: itself, else the one column that differs from it only by
    surrounding spaces (a CSV header "word, d1, d2" has the columns ' d1' and ' d2')."""
    if name in present:
        return name
    near = [c for c in present if c.strip() == name.strip()]
    return near[0] if len(near) == 1 else None


def _resolve_all(
    path: str,
    table: _Table,
    columns: list[str] | None,
    label_column: str | None,
    columns_from: str,
) -> tuple[list[str] | None, str | None]:
    """``columns`` and ``label_column`` as the table spells them, or an error naming those
    it lacks."""
    present = table.names
    label = None
    if label_column is not None:
        label = _resolve(label_column, present)
        if label is None:
            raise CLIError(f"--label-column {label_column!r} is not a column of {path!r}")
    if columns is None:
        return None, label
    found = [_resolve(c, present) for c in columns]
    missing = [c for c, real in zip(columns, found, strict=True) if real is None]
    if missing:
        raise CLIError(f"{columns_from} not found in {path!r}: {missing!r} (it has {present!r})")
    return [c for c in found if c is not None], label


def _read_table(
    path: str, columns: list[str] | None, label_column: str | None, columns_from: str
) -> tuple[Any, list[str] | None, str | None, list[str]]:
    """The table (only the columns needed), the vector and label column names as the table
    spells them, and the names of its stored index columns."""
    pd = need_pandas()
    kind = TABLE_SUFFIXES[os.path.splitext(path)[1].lower()]
    try:
        table = _table_columns(path, kind)
        columns, label_column = _resolve_all(path, table, columns, label_column, columns_from)
        wanted = None
        if columns is not None:
            wanted = columns + ([label_column] if label_column is not None else [])
        if kind == "parquet":
            import pyarrow.parquet as pq

            # the stored index as plain columns, rows numbered from 0: '--label-column rowname'
            # takes the index of a frame saved by df.to_parquet()
            arrow = pq.read_table(path, columns=wanted, use_pandas_metadata=False)
            frame = arrow.to_pandas(ignore_metadata=True)
        else:
            frame = _read_csv(pd, path, wanted, label_column)
    except CLIError:
        raise
    except Exception as exc:
        raise CLIError(f"cannot read {path!r} as {kind}: {one_line(exc)}") from exc
    return frame, columns, label_column, table.index_names


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


def _text_cells(series: Any) -> tuple[Any, Any] | None:
    """For a column of text: which cells hold text (not empty) and which of those are
    numbers; None for other columns (lists of a vector column, mixed objects)."""
    pd = need_pandas()
    if pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        return None
    text = series.notna() & (series.astype(str).str.strip() != "")
    numbers = text & pd.to_numeric(series.where(text), errors="coerce").notna()
    return text.to_numpy(dtype=bool), numbers.to_numpy(dtype=bool)


def _not_a_number(frame: Any, column: str, label_column: str | None, path: str) -> str:
    """The error line for a text column used as vector values: the first cell that is not a
    number (or, in a column of numbers stored as text, the first cell)."""
    series = frame[column]
    cells = _text_cells(series)
    row = 0
    if cells is not None:
        text, numbers = cells
        rows = np.flatnonzero(text & ~numbers)
        rows = rows if len(rows) else np.flatnonzero(text)
        row = int(rows[0]) if len(rows) else 0
    where = f"{path!r} row {row}"
    if label_column is not None:
        where += f" ({label_column} {_plain(frame[label_column].iloc[row])!r})"
    value = _plain(series.iloc[row])
    as_text = cells is not None and cells[1][row]
    return (
        f"{where}: column {column!r} holds {value!r}{' as text' if as_text else ''}, not a "
        "number; vector columns must be numeric (leave the column out with --columns, or make "
        "it the labels with --label-column)"
    )


def _default_columns(
    frame: Any, label_column: str | None, index_columns: list[str], path: str
) -> list[str]:
    """Every numeric column (bools as 0/1) but the label and stored index columns. A text
    column is left out, unless most of its cells are numbers: then the others are typos
    ("1.2.3", a decimal comma "1,5") that would silently drop a dimension."""
    pd = need_pandas()
    candidates = [c for c in frame.columns if c != label_column and c not in index_columns]
    columns = [c for c in candidates if pd.api.types.is_numeric_dtype(frame[c])]
    for c in candidates:
        cells = None if c in columns else _text_cells(frame[c])
        if cells is not None and cells[0].any() and 2 * cells[1].sum() >= cells[0].sum():
            raise CLIError(_not_a_number(frame, c, label_column, path))
    if not columns:
        # no numeric columns: one column of whole vectors (a Parquet list column) will do
        lists = [c for c in candidates if pd.api.types.is_object_dtype(frame[c])]
        columns = lists if len(lists) == 1 else []
    if not columns:
        raise CLIError(f"{path!r} has no numeric columns; choose them with --columns")
    return columns


def _frame_vectors(
    frame: Any,
    columns: list[str] | None,
    label_column: str | None,
    index_columns: list[str],
    path: str,
) -> tuple[np.ndarray, list[str]]:
    """The (n, f) float array and the column names used from a DataFrame."""
    pd = need_pandas()
    if columns is None:
        columns = _default_columns(frame, label_column, index_columns, path)
    if len(columns) == 1 and frame[columns[0]].dtype == object:
        return _list_column(frame[columns[0]], path), columns
    for c in columns:
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise CLIError(_not_a_number(frame, c, label_column, path))
    # a missing cell of a nullable column becomes NaN, refused with its row later
    return frame[columns].to_numpy(dtype=np.float64, na_value=np.nan), columns


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
            f"lists ({one_line(exc)})"
        ) from exc
    return values.reshape(len(series), int(lengths[0]))


def _labels_of(frame: Any, label_column: str, path: str, *, stored: bool) -> np.ndarray:
    """The label column as str or int labels; ``stored`` labels (an index's) must also be
    unique and fit the file's int64 labels."""
    pd = need_pandas()
    series = frame[label_column]
    where = f"--label-column {label_column!r} of {path!r}"
    missing = np.flatnonzero(series.isna().to_numpy())
    if len(missing):
        raise CLIError(f"{where} has missing values (first at row {int(missing[0])})")
    if stored and pd.api.types.is_float_dtype(series):
        # the index stores int or text labels; text "100.0" would not be found by --labels 100
        raise CLIError(
            f"{where} holds floats ({_plain(series.iloc[0])!r} at row 0); labels must be "
            "ints or text: convert the column before writing the file, e.g. "
            f"df[{label_column!r}] = df[{label_column!r}].astype('int64') (or .astype(str))"
        )
    if pd.api.types.is_integer_dtype(series):
        if pd.api.types.is_unsigned_integer_dtype(series):
            values = series.to_numpy(dtype=np.uint64)
            too_big = np.flatnonzero(values > np.uint64(_INT64_MAX))
            if len(too_big) and stored:  # never wrapped to a negative label
                row = int(too_big[0])
                raise CLIError(
                    f"{where} holds {int(values[row])} at row {row}: int labels must fit in "
                    f"int64 (at most 2**63 - 1 = {_INT64_MAX})"
                )
            labels = values if len(too_big) else values.astype(np.int64)
        else:
            labels = series.to_numpy(dtype=np.int64)
    else:
        labels = series.astype(str).to_numpy(dtype=object)
    if stored:
        _check_unique(labels, where)
    return labels


def _check_unique(labels: np.ndarray, where: str) -> None:
    pd = need_pandas()
    repeated = pd.Series(labels).duplicated(keep=False).to_numpy()
    if repeated.any():
        rows = np.flatnonzero(repeated)
        first = labels[rows[0]]
        same = [int(r) for r in rows if labels[r] == first]
        n_labels = len(set(labels[rows].tolist()))
        more = f"; {n_labels - 1} more labels repeat" if n_labels > 1 else ""
        raise CLIError(
            f"{where} must hold unique labels: {_plain(first)!r} is on rows "
            f"{', '.join(map(str, same[:5]))}{' ...' if len(same) > 5 else ''}{more}"
        )


def read_input(
    path: str,
    columns: list[str] | None = None,
    label_column: str | None = None,
    *,
    stored_labels: bool = False,
    columns_from: str = "--columns",
) -> Vectors:
    """Vectors, labels and the vector columns of ``path`` (.npy, .parquet or .csv).

    ``stored_labels``: the labels go into an index (unique, int64); ``columns_from`` names
    where ``columns`` came from, for the error when the table lacks them.
    """
    suffix = check_suffix(path)
    if not os.path.exists(path):
        raise CLIError(f"file not found: {path!r}")
    if suffix == ".npy":
        if columns is not None or label_column is not None:
            raise UsageError("--columns and --label-column apply to .parquet and .csv input only")
        try:
            X = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CLIError(f"cannot read {path!r} as .npy: {one_line(exc)}") from exc
        if X.ndim != 2 or X.dtype.kind not in "iufb":
            raise CLIError(
                f"{path!r} must hold a 2-D numeric array (got shape {X.shape}, dtype {X.dtype})"
            )
        if X.shape[0] == 0:  # as for a table: an index of nothing is no answer
            raise CLIError(f"{path!r} has no rows")
        return Vectors(path, X, None, None, None)
    frame, columns, label_column, index_columns = _read_table(
        path, columns, label_column, columns_from
    )
    if len(frame) == 0:
        raise CLIError(f"{path!r} has no rows")
    X, used = _frame_vectors(frame, columns, label_column, index_columns, path)
    labels = None
    if label_column is not None:
        labels = _labels_of(frame, label_column, path, stored=stored_labels)
    whole = len(used) == 1 and frame[used[0]].dtype == object
    return Vectors(path, X, labels, [str(c) for c in used], label_column, whole)


def _column_name(vectors: Vectors, j: int) -> str:
    columns = vectors.columns
    if columns is None:
        return f"column {j}"
    if len(columns) == vectors.X.shape[1]:
        return f"column {columns[j]!r}"
    return f"column {columns[0]!r} entry {j}"  # one column of whole vectors


def row_message(vectors: Vectors, row: int, reason: str) -> str:
    """One line naming a refused row of ``vectors``: its file, position, label and columns.

    ``reason`` is the core's (`annoy_adapters.RowError`): NaN or inf, a value beyond
    the stored float type (the row's largest), or too large a norm.

    Examples
    --------
    >>> v = Vectors("t.csv", np.array([[1.0, np.nan]]), np.array(["w0"], dtype=object),
    ...             ["a", "b"], "word")
    >>> row_message(v, 0, "holds NaN or inf")
    "'t.csv' row 0 (word 'w0'): column 'b' holds NaN; vectors must be finite numbers"
    """
    where = f"{vectors.path!r} row {row}"
    if vectors.labels is not None:
        where += f" ({vectors.label_column} {_plain(vectors.labels[row])!r})"
    values = np.asarray(vectors.X[row], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        cells = ", ".join(
            f"{_column_name(vectors, j)} holds {'NaN' if np.isnan(values[j]) else values[j]}"
            for j in bad[:3]
        )
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        return f"{where}: {cells}{more}; vectors must be finite numbers"
    if reason.startswith("holds") and len(values):  # the row's largest value is out of range
        return f"{where}, {_column_name(vectors, int(np.argmax(np.abs(values))))}: {reason}"
    return f"{where} {reason}"
