"""What every command of the command line shares: its error types and checks of file paths."""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "EXIT_ERROR",
    "EXIT_USAGE",
    "PROG",
    "CLIError",
    "UsageError",
    "check_output",
    "need_pandas",
    "one_line",
    "refuse_same_file",
    "save",
]

PROG = "annoy-adapters"
EXIT_ERROR = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """An error reported to the user as one line (no traceback); exit code 1."""


class UsageError(CLIError):
    """Options that do not go together (or a required one missing); exit code 2."""


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line, without the quotes a KeyError adds."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(text.split())
    return text or type(exc).__name__


def need_pandas() -> Any:
    """The pandas module, or a CLIError naming the extra to install."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CLIError(
            f'reading tables needs pandas and pyarrow: pip install "annoy-adapters[cli]" ({exc})'
        ) from exc
    return pd


def check_output(path: str, option: str) -> None:
    """Fail before any work when ``path`` cannot be created: its folder must exist."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"{option} {path!r}: folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise CLIError(f"{option} {path!r} is a directory, not a file")


def _same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name one file: by inode when both exist (hard links,
    symbolic links, other spellings), else by their resolved absolute paths."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_same_file(output: str, option: str, inputs: dict[str, str | None]) -> None:
    """Refuse to write ``output`` over one of the ``inputs`` (option -> path): the command
    would destroy the data it reads.

    Examples
    --------
    >>> refuse_same_file("a.annoy", "-o/--output", {"INPUT": "./a.annoy"})
    Traceback (most recent call last):
    ...
    annoy_adapters._cli_common.CLIError: input and output must be different files: ...
    """
    for name, path in inputs.items():
        if path is not None and _same_file(output, path):
            raise CLIError(
                f"input and output must be different files: {option} {output!r} is {name} {path!r}"
            )


def save(index: Any, path: str) -> None:
    """``index.save(path)``, reporting the user's path: the OS error names the temporary file
    the atomic save writes beside it."""
    try:
        index.save(path)
    except OSError as exc:
        raise CLIError(f"cannot write {path!r}: {exc.strerror or one_line(exc)}") from exc
