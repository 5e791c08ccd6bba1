"""The warnings vramcore gives when it changes or doubts what it was asked (base layer)."""

from __future__ import annotations

__all__ = ["UnknownModelWarning", "VramcoreWarning"]


class VramcoreWarning(UserWarning):
    """An argument was adjusted (``n_threads`` clipped) or a figure rests on an assumption worth knowing."""


class UnknownModelWarning(VramcoreWarning):
    """A config of a ``model_type`` no family module reads was estimated anyway.

    Either as a Llama-like decoder (the message names the model type and every
    assumption made), or, for an unknown multimodal wrapper, from its
    ``text_config`` alone (the vision / audio towers are not counted).
    """
