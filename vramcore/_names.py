"""Name normalisation and catalog lookup shared by every vramcore catalog.

Every catalog (GPUs, models, dtypes) keys its lookup table by
:func:`normalize_name` of each canonical name and alias, and resolves user
input with :func:`lookup`, so that all catalogs accept the same spellings and
fail with the same kind of message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

__all__ = ["build_table", "lookup", "normalize_name"]

_SEPARATORS = re.compile(r"[\s_\-]+")

#: How many suggestions an error message shows at most.
_MAX_SUGGESTIONS = 4
#: Shortest input for which names starting with it are suggested.
_MIN_PREFIX = 2
#: How many valid names an error message lists when nothing is close.
_MAX_LISTED = 5
#: ``difflib.get_close_matches`` similarity cutoff.
_CUTOFF = 0.6


def normalize_name(name: str) -> str:
    """Return the lookup key for a catalog name.

    The key is case-folded and stripped, and every run of separators
    (whitespace, ``_`` and ``-``) becomes a single ``-``; separators at either
    end are dropped. Other characters (``.``, ``/``, digits) are kept, so
    ``"Qwen2.5-7B"`` and ``"meta-llama/Llama-3.2-1B"`` stay distinct from
    look-alikes.

    Parameters
    ----------
    name : str
        A name as a user may type it.

    Returns
    -------
    str
        The normalised key.

    Raises
    ------
    TypeError
        If `name` is not a str.

    Examples
    --------
    >>> normalize_name("  H100 80GB  HBM3 ")
    'h100-80gb-hbm3'
    >>> normalize_name("rtx_6000__Ada")
    'rtx-6000-ada'
    >>> normalize_name("Qwen2.5-7B")
    'qwen2.5-7b'
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__}")
    return _SEPARATORS.sub("-", name.casefold().strip()).strip("-")


def _display_name(key: str, value: object) -> str:
    """Return the name to show for a table entry (its canonical name if it has one)."""
    canonical = getattr(value, "name", None)
    if isinstance(canonical, str) and canonical:
        return canonical
    if isinstance(value, str) and value:
        return value
    return key


def _unique(names: Iterable[str]) -> list[str]:
    """Return `names` without repeats, keeping the first occurrence's order."""
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name, None)
    return list(seen)


def lookup(
    name: object,
    table: Mapping[str, T],
    *,
    what: str,
    argname: str,
    display: Callable[[T], str] | None = None,
) -> T:
    """Resolve a user-supplied name in a catalog table.

    Parameters
    ----------
    name : object
        The name to resolve; anything but a str is rejected.
    table : Mapping[str, T]
        The catalog, keyed by :func:`normalize_name` of every canonical name
        and alias (see :func:`build_table`).
    what : str
        The noun for the catalog's items (``"gpu"``, ``"model"``,
        ``"dtype"``); error messages name ``vramcore.list_{what}s()``.
    argname : str
        The name of the public argument that received `name`, for messages.
    display : Callable[[T], str], optional
        Gives the canonical name to show for a value in suggestions. By
        default a value's ``name`` attribute is used if it is a str, then the
        value itself if it is a str, else the table key.

    Returns
    -------
    T
        The table value for `name`.

    Raises
    ------
    TypeError
        If `name` is not a str; the message names `argname` and the type.
    ValueError
        If `name` is not in the table; the message suggests names that
        start with it and close matches (``difflib``), showing canonical
        names where known, or, failing those, lists a few valid names; it
        points to ``vramcore.list_{what}s()``.

    Examples
    --------
    >>> table = {"h100": "H100", "h200": "H200"}
    >>> lookup(" H100 ", table, what="gpu", argname="gpu")
    'H100'
    >>> lookup("h10", table, what="gpu", argname="gpu")
    Traceback (most recent call last):
        ...
    ValueError: unknown gpu 'h10' for argument 'gpu'; did you mean 'H100'? (see vramcore.list_gpus())
    >>> lookup(100, table, what="gpu", argname="gpu")
    Traceback (most recent call last):
        ...
    TypeError: argument 'gpu' must be a str naming a gpu, not int
    """
    if not isinstance(name, str):
        raise TypeError(
            f"argument {argname!r} must be a str naming a {what}, "
            f"not {type(name).__name__}"
        )
    key = normalize_name(name)
    try:
        return table[key]
    except KeyError:
        pass

    def shown(k: str) -> str:
        value = table[k]
        return display(value) if display is not None else _display_name(k, value)

    hint = f"(see vramcore.list_{what}s())"
    # Names that extend what was typed ("a100" -> "a100-80gb") come first,
    # then difflib's close matches, best first.
    extended = sorted(
        _unique(shown(k) for k in table if len(key) >= _MIN_PREFIX and k.startswith(key)),
        key=str.casefold,
    )
    import difflib  # only when a name is not found

    close = difflib.get_close_matches(key, list(table), n=10, cutoff=_CUTOFF) if key else []
    names = _unique([*extended, *(shown(k) for k in close)])[:_MAX_SUGGESTIONS]
    if names:
        listed = ", ".join(repr(n) for n in names)
        raise ValueError(
            f"unknown {what} {name!r} for argument {argname!r}; did you mean {listed}? {hint}"
        )
    valid = sorted(_unique(shown(k) for k in table), key=str.casefold)
    if valid:
        listed = ", ".join(repr(n) for n in valid[:_MAX_LISTED])
        more = ", ..." if len(valid) > _MAX_LISTED else ""
        detail = f"; valid names include {listed}{more}"
    else:
        detail = f"; no {what}s are known"
    raise ValueError(f"unknown {what} {name!r} for argument {argname!r}{detail} {hint}")


def build_table(
    entries: Iterable[tuple[str, Iterable[str], T]],
    *,
    what: str,
) -> dict[str, T]:
    """Build a lookup table from canonical names, aliases and values.

    Parameters
    ----------
    entries : Iterable[tuple[str, Iterable[str], T]]
        ``(canonical_name, aliases, value)`` for each catalog item.
    what : str
        The noun for the catalog's items, for error messages.

    Returns
    -------
    dict[str, T]
        The table keyed by :func:`normalize_name` of every canonical name and
        alias, ready for :func:`lookup`.

    Raises
    ------
    ValueError
        If a name or alias is empty once normalised, or if two names or
        aliases (of the same or of different items) normalise to the same key.

    Examples
    --------
    >>> table = build_table([("H100-SXM", ["h100"], 1), ("H200", [], 2)], what="gpu")
    >>> sorted(table.items())
    [('h100', 1), ('h100-sxm', 1), ('h200', 2)]
    >>> build_table([("A", ["b"], 1), ("B", [], 2)], what="gpu")
    Traceback (most recent call last):
        ...
    ValueError: gpu name 'B' (of 'B') normalises to 'b', already used by 'b' (of 'A')
    """
    table: dict[str, T] = {}
    owner: dict[str, tuple[str, str]] = {}
    for canonical, aliases, value in entries:
        for spelling in (canonical, *aliases):
            key = normalize_name(spelling)
            if not key:
                raise ValueError(f"{what} name {spelling!r} (of {canonical!r}) is empty")
            if key in owner:
                prev_spelling, prev_canonical = owner[key]
                raise ValueError(
                    f"{what} name {spelling!r} (of {canonical!r}) normalises to {key!r}, "
                    f"already used by {prev_spelling!r} (of {prev_canonical!r})"
                )
            owner[key] = (spelling, canonical)
            table[key] = value
    return table
