"""The warning vramcore gives when it changes or doubts what it was asked (base layer)."""

from __future__ import annotations

__all__ = ["VramcoreWarning"]


class VramcoreWarning(UserWarning):
    """An argument was adjusted (``n_threads`` clipped) or a figure rests on an assumption worth knowing."""
