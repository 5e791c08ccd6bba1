"""Chunked loops with an optional progress bar (tqdm) and a clear Ctrl-C.

:class:`Chunks` yields ``(start, stop)`` row bounds for a chunked kernel loop.
As a context manager it owns the progress bar: on Ctrl-C between chunks it
closes the bar and re-raises ``KeyboardInterrupt`` with how far the loop got.
tqdm is optional: without it the bar is a no-op.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import TracebackType

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["PROGRESS_MIN_CELLS", "Chunks", "check_progress", "progress_enabled"]

#: Grids of at least this many cells show a bar when ``progress=None`` (and stderr is a terminal).
PROGRESS_MIN_CELLS = 1 << 23


def check_progress(progress: Any) -> bool | None:
    """Validate a ``progress`` argument: True, False or None."""
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None, got {progress!r}")
    return progress


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


def progress_enabled(progress: bool | None, n_cells: int) -> bool:
    """Decide whether to show a bar.

    False: never.  True: always (when tqdm is installed).  None: when the grid
    has at least :data:`PROGRESS_MIN_CELLS` cells and stderr is a terminal.
    """
    check_progress(progress)
    if progress is False:
        return False
    if progress is None and (n_cells < PROGRESS_MIN_CELLS or not _stderr_is_tty()):
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


class Chunks:
    """Row bounds of a chunked loop, with a progress bar counted in cells.

    Parameters
    ----------
    n_rows : int
        Rows to cover.
    rows_per_chunk : int
        Rows per chunk (>= 1).
    cells_per_row : int
        Cells each row holds (the bar counts cells).
    progress : bool or None
        See :func:`progress_enabled`.
    desc : str
        Bar label.

    Examples
    --------
    >>> with Chunks(10, 4, 3, progress=False) as chunks:
    ...     list(chunks)
    [(0, 4), (4, 8), (8, 10)]
    """

    def __init__(self, n_rows: int, rows_per_chunk: int, cells_per_row: int, progress: bool | None,
                 desc: str = "vramcore sweep") -> None:
        self.n_rows = n_rows
        self.rows_per_chunk = max(1, rows_per_chunk)
        self.cells_per_row = cells_per_row
        self.total_cells = n_rows * cells_per_row
        self.done_cells = 0
        self._show = progress_enabled(progress, self.total_cells)
        self._desc = desc
        self._bar: Any = None

    def __enter__(self) -> Chunks:
        if self._show:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total_cells, unit="cell", unit_scale=self.total_cells >= 10**6, desc=self._desc,
                             file=sys.stderr, dynamic_ncols=True)
        return self

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for start in range(0, self.n_rows, self.rows_per_chunk):
            stop = min(self.n_rows, start + self.rows_per_chunk)
            yield start, stop
            self.advance((stop - start) * self.cells_per_row)

    def advance(self, cells: int) -> None:
        """Count `cells` more as done (the loops that do not iterate over row bounds call this)."""
        self.done_cells += cells
        if self._bar is not None:
            self._bar.update(cells)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if exc_type is KeyboardInterrupt:
            raise KeyboardInterrupt(f"{self._desc} interrupted after {self.done_cells:,} of "
                                    f"{self.total_cells:,} cells; no result") from exc
