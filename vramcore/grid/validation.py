"""Every argument check, in one place.

Each function either returns a clean value or raises a ``TypeError`` /
``ValueError`` whose message names the argument and the offending value.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings

from vramcore._errors import VramcoreWarning
from vramcore.engines.base import np_generic_types

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    import numpy as np

#: Largest count accepted for contexts and batches: byte counts stay exact doubles
#: well beyond any real configuration, and products never overflow.
MAX_COUNT = 2**53


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def positive_counts(name: str, values: Any) -> np.ndarray:
    """Return `values` (an int or a 1-D sequence of ints) as a float64 array of exact counts.

    Raises
    ------
    TypeError
        Not a number / sequence of numbers, or a bool.
    ValueError
        Empty, not 1-D, non-integer, NaN, infinite, <= 0 or above 2**53.
    """
    import numpy as np

    if isinstance(values, (bool, np.bool_)):
        raise TypeError(f"{name} must be a positive integer, got {values!r}")
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a positive integer or a sequence of them, got {values!r}")
    if isinstance(values, numbers.Number):
        values = [values]
    elif isinstance(values, (list, tuple)):
        for v in values:
            if isinstance(v, (bool, np.bool_)):
                raise TypeError(f"{name} must be a positive integer, got {v!r}")
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a positive integer or a sequence of them, got "
                        f"{_show(values)}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if arr.dtype == object:
        for v in arr:
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must hold integers, got {v!r}")
            if isinstance(v, int) and not 0 < v <= MAX_COUNT:
                raise ValueError(f"{name} must be in [1, 2**53], got {v!r}")
        arr = np.asarray([float(v) for v in arr])
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype} ({_show(values)})")
    out = arr.astype(np.float64)
    bad = ~np.isfinite(out) | (out <= 0) | (out != np.floor(out)) | (out > MAX_COUNT)
    if arr.dtype.kind in "iu":
        # compare in the integer domain too: int64 values above 2**53 round when cast
        bad |= (arr <= 0) | (arr > MAX_COUNT)
    if bad.any():
        v = arr[np.argmax(bad)]
        what = ("NaN" if isinstance(v, float) and math.isnan(v) else _show(v.item()))
        raise ValueError(f"{name} must be positive integers <= 2**53, got {what}")
    return np.ascontiguousarray(out)


def positive_int(name: str, value: Any) -> int:
    """Return `value` as an int >= 1; reject bools, floats with a fraction, NaN and infinities.

    numpy integer and float scalars and 0-d arrays are accepted as the number they hold.
    """
    numpy_types = np_generic_types()        # () until numpy is loaded: then no value is a numpy one
    if numpy_types and isinstance(value, numpy_types) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # type: ignore[union-attr, attr-defined, unused-ignore]  # a numpy scalar
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, float)):
        raise TypeError(f"{name} must be a positive integer, got {_show(value)}")
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if int(value) < 1 or int(value) > MAX_COUNT:
        raise ValueError(f"{name} must be in [1, 2**53], got {value!r}")
    return int(value)


#: Most kernel threads ever started, whatever is asked: more than the cores only adds overhead,
#: and OpenMP aborts the process when it cannot create the threads it is told to.
MAX_THREADS_PER_CORE = 4


def n_threads(value: Any, n_cells: int) -> int:
    """Resolve the ``n_threads`` argument: None means all cores for big grids, 1 for small ones.

    A request above ``MAX_THREADS_PER_CORE`` x the cores is clipped to that,
    with a :class:`vramcore.VramcoreWarning`.
    """
    cores = max(1, os.cpu_count() or 1)
    if value is None:
        if n_cells < 1 << 18:
            return 1
        return cores
    n = positive_int("n_threads", value)
    limit = MAX_THREADS_PER_CORE * cores
    if n > limit:
        warnings.warn(f"n_threads={n} clipped to {limit} ({MAX_THREADS_PER_CORE} per core on {cores} cores)",
                      VramcoreWarning, stacklevel=4)
        return limit
    return n


#: Largest output a grid may allocate, as a share of the machine's physical memory.
MAX_MEMORY_SHARE = 0.8


def physical_memory_bytes() -> int | None:
    """Return this machine's physical memory in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def check_grid_size(shape: tuple[int, ...], bytes_per_cell: int) -> None:
    """Raise ValueError, saying how big and what to do, when a grid's outputs cannot fit in memory."""
    cells = 1
    for n in shape:
        cells *= n
    need = cells * bytes_per_cell
    memory = physical_memory_bytes() or 2**36
    if need > MAX_MEMORY_SHARE * memory:
        raise ValueError(
            f"a grid of {cells:,} cells (shape {shape}) needs {need / 2**30:,.1f} GiB of results, more than "
            f"{MAX_MEMORY_SHARE:.0%} of this machine's {memory / 2**30:,.1f} GiB; sweep fewer values per axis, "
            f"split the sweep, or use vramcore.dask.sweep_dask (lazy blocks written as they are computed)")


def as_list(name: str, values: Any) -> list[Any]:
    """Return a sweep axis argument as a non-empty list (a single item becomes a list of one)."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        values = [values]
    out = list(values)
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out
