"""``__repr__``, ``__eq__`` and ``__hash__`` for the frozen dataclasses, written once.

``@dataclass`` writes and compiles these three methods for every class it
decorates, and with ``slots=True`` it builds the class twice: for the
50-field ModelSpec and EngineSpec that is about a millisecond each at import,
half of everything the command line spends importing vramcore
(``benchmarks/bench_cli.py``).  A class that is
``@dataclass(frozen=True, slots=True, repr=False, eq=False)`` and derives from
:class:`Record` gets the same three methods from here instead, with the same
behaviour as the generated ones: the repr lists the ``repr=True`` fields as
``Name(field=value, ...)``; two records are equal when they are of the same
class and their ``compare=True`` fields are equal (another class gives
``NotImplemented``); the hash is that of the compared fields' tuple.  The
field tuple is read with one :func:`operator.attrgetter` per class, as fast as
the generated code (``tests/test_record.py`` holds the three to
``dataclasses``' own).
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Record"]

_KEYS: dict[type, Any] = {}
_REPRS: dict[type, tuple[str, ...]] = {}


def _key_getter(cls: type) -> Any:
    """Return the attrgetter of `cls`'s compared fields (always a tuple), made once per class."""
    getter = _KEYS.get(cls)
    if getter is None:
        names = [f.name for f in fields(cls) if f.compare]
        # attrgetter of one name returns the value itself: pad with a constant so that it is always a tuple
        getter = attrgetter(*names, "__class__") if len(names) < 2 else attrgetter(*names)
        _KEYS[cls] = getter
    return getter


class Record:
    """Mixin of the frozen dataclasses: repr, equality and hash over their fields (see the module)."""

    __slots__ = ()

    def __repr__(self) -> str:
        cls = type(self)
        names = _REPRS.get(cls)
        if names is None:
            names = _REPRS[cls] = tuple(f.name for f in fields(self) if f.repr)  # type: ignore[arg-type]
        body = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{cls.__qualname__}({body})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        getter = _key_getter(self.__class__)
        return bool(getter(self) == getter(other))

    def __hash__(self) -> int:
        return hash(_key_getter(self.__class__)(self))
