"""A tqdm progress bar usable as the core's build progress callback.

The core calls ``progress(done_trees, total_trees)`` as the trees of a build finish
(``total_trees`` is negative or ``None`` while unknown, as with ``n_trees=-1``).
`TreeProgress` turns those calls into a tqdm bar on stderr, quiet when stderr is not
a terminal.
"""

from __future__ import annotations

import sys
from typing import IO, Any

__all__ = ["TreeProgress"]


def _import_tqdm() -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('progress bars need tqdm: pip install "annoy-adapters[cli]"') from exc
    return tqdm


class TreeProgress:
    """Progress callback ``(done_trees, total_trees) -> None`` drawing a tqdm bar.

    Parameters
    ----------
    desc : str, default "building trees"
        Text in front of the bar.
    quiet : bool or None, default None
        ``True`` never draws, ``False`` always draws, ``None`` draws only when `file`
        is a terminal (so logs and pipes stay clean).
    file : file object, optional
        Where to draw; defaults to ``sys.stderr``.

    Notes
    -----
    The bar is created lazily on the first call, so a quiet or unused instance costs
    nothing. Use it as a context manager (or call `close`) to finish the line.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with TreeProgress(quiet=False, file=out) as progress:
    ...     for done in range(1, 4):
    ...         progress(done, 3)
    >>> progress.done
    3
    >>> "3/3" in out.getvalue()
    True
    """

    def __init__(
        self,
        desc: str = "building trees",
        *,
        quiet: bool | None = None,
        file: IO[str] | None = None,
    ) -> None:
        self.desc = desc
        self.file = file
        self.quiet = quiet
        self.done = 0
        self._bar: Any = None

    @property
    def enabled(self) -> bool:
        """Whether calls draw anything."""
        if self.quiet is not None:
            return not self.quiet
        stream = self.file if self.file is not None else sys.stderr
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())

    def __call__(self, done_trees: int, total_trees: int | None) -> None:
        self.done = int(done_trees)
        if total_trees is not None and total_trees < 0:
            total_trees = None  # n_trees=-1: the total is known only after the first tree
        if not self.enabled:
            return
        if self._bar is None:
            tqdm = _import_tqdm()
            self._bar = tqdm(
                total=total_trees,
                desc=self.desc,
                unit="tree",
                file=self.file if self.file is not None else sys.stderr,
                leave=True,
                dynamic_ncols=True,
            )
        if total_trees is not None and self._bar.total != total_trees:
            self._bar.total = total_trees
        self._bar.update(self.done - self._bar.n)

    def close(self) -> None:
        """Finish the bar (no-op when nothing was drawn)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> TreeProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
