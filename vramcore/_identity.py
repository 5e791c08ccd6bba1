"""Cache keys by identity, for caches of values whose equality leaves fields out.

A :class:`~vramcore.ModelSpec` compares equal to another that differs in
``quantization`` or ``model_type`` (both ``compare=False``), yet those fields
change what is stored and what LoRA adapts.  A cache that keys such values by
equality could answer for the wrong one; :class:`Same` keys them by identity
(and holds the object, so its id is not reused while the entry lives).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


__all__ = ["Same", "key", "unkey"]


class Same:
    """A cache key holding an object by identity."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj


def key(x: Any) -> Any:
    """Return `x` itself for None, str and int (equal means the same), else a :class:`Same` of it."""
    return x if x is None or type(x) in (str, int) else Same(x)


def unkey(x: Any) -> Any:
    """Return the object a :func:`key` stands for."""
    return x.obj if isinstance(x, Same) else x
