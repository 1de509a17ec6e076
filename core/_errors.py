"""Exception types of the core."""

from __future__ import annotations

__all__ = ["IndexFileError", "RowError"]


class IndexFileError(ValueError, OSError):
    """An index file is truncated, corrupted, foreign, of an unsupported version or hostile.

    Raised by every loader whatever the bytes; a missing file raises ``FileNotFoundError`` instead.
    A ``ValueError`` (the bytes are wrong) and an ``OSError``, as annoy's load raises, so code
    written for annoy with ``except OSError`` around a load still catches it.
    """


class RowError(ValueError):
    """One row of a 2-D argument is unusable (NaN or inf, beyond float32, too large a norm).

    ``argument`` names the argument, ``row`` is the row's position and ``reason`` says what is
    wrong with it, so an adapter can name the row as its user knows it (a frame's label).
    """

    def __init__(self, message: str, argument: str, row: int, reason: str):
        super().__init__(message)
        self.argument, self.row, self.reason = argument, row, reason

    def __reduce__(self) -> tuple[type[RowError], tuple[str, str, int, str]]:
        # pickled with all four arguments (``args`` holds only the message), so the error
        # crosses processes: Dask workers, multiprocessing
        return type(self), (str(self), self.argument, self.row, self.reason)
