"""annoy_adapters.core: Annoy's random-projection forest in vectorized NumPy.

The engine behind every adapter; NumPy is its only dependency.
"""

from __future__ import annotations

import os

from ._errors import IndexFileError, RowError
from ._index import AnnoyIndex
from ._metrics import METRICS
from ._parts import TreePart, assemble, build_trees, file_info

__all__ = [
    "METRICS",
    "AnnoyIndex",
    "IndexFileError",
    "RowError",
    "TreePart",
    "assemble",
    "build_trees",
    "file_info",
    "load",
]


def load(path: str | os.PathLike[str], prefault: bool = False) -> AnnoyIndex:
    """Open a native index file; f, metric, labels and metadata all come from the file.

    Raises ``FileNotFoundError`` for a missing file and `IndexFileError` for anything
    that is not a valid index file of a supported version.  ``prefault`` asks the OS to read the
    whole file ahead (see `AnnoyIndex.load`).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from annoy_adapters import AnnoyIndex, load
    >>> index = AnnoyIndex(2, "euclidean")
    >>> _ = index.add_items(np.array([[0.0, 0.0], [1.0, 1.0]]))
    >>> _ = index.build(2)
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.annoy")
    >>> _ = index.save(path)
    >>> load(path).get_nns_by_vector([0.9, 0.9], 1)
    [1]
    """
    from ._fileformat import Mapped, is_native

    p = os.fspath(path)
    if not is_native(p):
        raise IndexFileError(
            f"{p}: not an annoy-adapters index file (for annoy .ann files use "
            "AnnoyIndex(f, metric).load(path))"
        )
    mapped = Mapped(p, prefault)
    fields = mapped.fields
    try:
        index = AnnoyIndex(fields.get("f"), fields.get("metric"))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        mapped.close()
        raise IndexFileError(f"{p}: corrupted manifest ({exc})") from None
    index._attach(mapped)
    return index
