"""Exception types of the core."""

from __future__ import annotations

__all__ = ["IndexFileError"]


class IndexFileError(ValueError):
    """An index file is truncated, corrupted, foreign, of an unsupported version or hostile.

    Raised by every loader whatever the bytes; a missing file raises ``FileNotFoundError`` instead.
    """
