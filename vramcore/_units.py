"""Text <-> numbers at the edges: token counts, count ranges and byte sizes with explicit units.

Pure Python (no numpy), so the command line parses its arguments before any
heavy import.  Two conventions, spelled out everywhere:

* counts (tokens, sequences): ``8192``, ``8k`` (8 x 1024), ``1m`` (2**20);
  ranges ``START:STOP`` (arithmetic, step 1), ``START:STOP:STEP`` or
  ``START:STOP:+STEP`` (arithmetic), ``START:STOP:xFACTOR`` (geometric);
  lists join items with commas, e.g. ``1,2,4:64:x2``;
* sizes: a number and a unit, binary ``KiB MiB GiB TiB`` (2**10, 2**20,
  2**30, 2**40 bytes) or decimal ``KB MB GB TB`` (10**3 ... 10**12 bytes),
  or ``B``; a bare number is refused, because "80" could mean either.
"""

from __future__ import annotations

import re

__all__ = ["GB", "GiB", "MAX_RANGE_ITEMS", "format_bytes", "is_size", "parse_count", "parse_counts",
           "parse_size"]

GiB = 2**30  #: bytes in a gibibyte
GB = 10**9  #: bytes in a gigabyte

#: Most values a single range may expand to (a guard against typos such as ``1:10m``).
MAX_RANGE_ITEMS = 1_000_000

_COUNT_SUFFIX = {"k": 1024, "m": 1024**2}
_SIZE_UNITS = {
    "b": 1,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]+)\s*$")


def parse_count(text: str) -> int:
    """Parse one positive count: ``8192``, ``8k`` (8 x 1024) or ``1m`` (2**20).

    Parameters
    ----------
    text : str
        The count as typed; ``_`` separators are allowed (``131_072``).

    Returns
    -------
    int
        The count, >= 1.

    Raises
    ------
    ValueError
        Not a positive whole number with an optional ``k`` / ``m`` suffix.

    Examples
    --------
    >>> parse_count("32k"), parse_count("1m"), parse_count("8_192")
    (32768, 1048576, 8192)
    >>> parse_count("0")
    Traceback (most recent call last):
        ...
    ValueError: not a positive integer: '0'
    """
    t = text.strip().lower().replace("_", "")
    mult = 1
    if t and t[-1] in _COUNT_SUFFIX:
        mult, t = _COUNT_SUFFIX[t[-1]], t[:-1]
    if not t.isdigit() or int(t) == 0:
        raise ValueError(f"not a positive integer: {text!r}")
    return int(t) * mult


def _parse_range(item: str) -> list[int]:
    parts = item.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"a range is START:STOP or START:STOP:STEP, got {item!r}")
    start, stop = parse_count(parts[0]), parse_count(parts[1])
    if stop < start:
        raise ValueError(f"range {item!r} ends before it starts")
    step_text = parts[2].strip().lower() if len(parts) == 3 else "1"
    if step_text.startswith("x"):
        factor_text = step_text[1:]
        if not factor_text.isdigit() or int(factor_text) < 2:
            raise ValueError(f"geometric step must be x2 or more (an integer factor), got {parts[2]!r} in {item!r}")
        factor = int(factor_text)
        out = [start]
        while out[-1] * factor <= stop:
            out.append(out[-1] * factor)
        return out
    step = parse_count(step_text[1:] if step_text.startswith("+") else step_text)
    n = (stop - start) // step + 1
    if n > MAX_RANGE_ITEMS:
        raise ValueError(f"range {item!r} has {n:,} values, more than {MAX_RANGE_ITEMS:,}")
    return list(range(start, stop + 1, step))


def parse_counts(text: str) -> list[int]:
    """Parse a comma list of counts and ranges into distinct counts, in the order given.

    Parameters
    ----------
    text : str
        Items joined by commas; each item is a count (see :func:`parse_count`)
        or a range: ``START:STOP`` (step 1), ``START:STOP:STEP`` /
        ``START:STOP:+STEP`` (arithmetic) or ``START:STOP:xFACTOR``
        (geometric: START, START x FACTOR, ... while <= STOP).  STOP is
        included when the steps reach it.

    Returns
    -------
    list of int
        The values, duplicates dropped (first occurrence kept).

    Raises
    ------
    ValueError
        Empty text, a malformed item, a range that ends before it starts, a
        geometric factor below 2, or a range of more than
        :data:`MAX_RANGE_ITEMS` values.

    Examples
    --------
    >>> parse_counts("4k,8k,32k,128k")
    [4096, 8192, 32768, 131072]
    >>> parse_counts("1:64:x2")
    [1, 2, 4, 8, 16, 32, 64]
    >>> parse_counts("1:8")
    [1, 2, 3, 4, 5, 6, 7, 8]
    >>> parse_counts("1k:4k:+1k,1k")
    [1024, 2048, 3072, 4096]
    >>> parse_counts("1:64:x1")
    Traceback (most recent call last):
        ...
    ValueError: geometric step must be x2 or more (an integer factor), got 'x1' in '1:64:x1'
    """
    items = [t for t in (s.strip() for s in text.split(",")) if t]
    if not items:
        raise ValueError(f"no values in {text!r}")
    seen: dict[int, None] = {}
    for item in items:
        for v in (_parse_range(item) if ":" in item else [parse_count(item)]):
            seen.setdefault(v, None)
    return list(seen)


def is_size(text: str) -> bool:
    """Return True when `text` looks like a size with a unit (``24GiB``, ``80 GB``).

    Examples
    --------
    >>> is_size("24GiB"), is_size("H100"), is_size("80")
    (True, False, False)
    """
    m = _SIZE_RE.match(text)
    return m is not None and m.group(2).lower() in _SIZE_UNITS


def parse_size(text: str) -> int:
    """Parse a size with an explicit unit into bytes.

    Parameters
    ----------
    text : str
        A number and a unit: ``B``, binary ``KiB MiB GiB TiB`` (powers of
        2**10) or decimal ``KB MB GB TB`` (powers of 10**3); case-insensitive,
        so ``gib`` and ``GiB`` agree.

    Returns
    -------
    int
        Bytes (rounded to the nearest byte), > 0.

    Raises
    ------
    ValueError
        No unit, an unknown unit, or not a positive number.

    Examples
    --------
    >>> parse_size("24GiB"), parse_size("80GB"), parse_size("1.5 MiB")
    (25769803776, 80000000000, 1572864)
    >>> parse_size("80")
    Traceback (most recent call last):
        ...
    ValueError: size '80' needs a unit: GiB (2**30 bytes), GB (10**9 bytes), MiB, MB, TiB, TB, KiB, KB or B
    """
    m = _SIZE_RE.match(text)
    if m is None or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"size {text!r} needs a unit: GiB (2**30 bytes), GB (10**9 bytes), MiB, MB, TiB, TB, "
                         "KiB, KB or B")
    n = round(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
    if n <= 0:
        raise ValueError(f"size must be positive, got {text!r}")
    return n


def format_bytes(n: float) -> str:
    """Format a byte count with both units: ``"79.18 GiB (85.02 GB)"``.

    Examples
    --------
    >>> format_bytes(85017755648)
    '79.18 GiB (85.02 GB)'
    """
    return f"{n / GiB:.2f} GiB ({n / GB:.2f} GB)"
