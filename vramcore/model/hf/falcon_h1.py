"""Falcon-H1 (``falcon_h1``): refused, with the reason; every layer runs attention and Mamba2 side by side.

transformers ``FalconH1DecoderLayer`` feeds the same normed input to an
attention layer and a Mamba2 mixer and adds both outputs: every layer has a
KV cache and a recurrent state.  A :class:`~vramcore.ModelSpec` layer has one
token mixer (attention or a recurrent one), so the model cannot be counted
exactly yet; the generic reader would miss every Mamba2 mixer and state.
"""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader

__all__ = ["read_falcon_h1"]


def read_falcon_h1(r: Reader) -> Fields:
    """Refuse a ``falcon_h1`` config with the reason (see the module docstring).

    Raises
    ------
    ValueError
        Always.
    """
    raise ValueError(
        f"model_type {r.model_type!r} (Falcon-H1) is not supported yet: every layer runs attention and a Mamba2 mixer "
        "in parallel on the same input (a KV cache and a recurrent state in each layer), while a ModelSpec layer has "
        "one token mixer. A ModelSpec would need a layer kind with both")


#: Read only to be refused with the reason: not in :data:`vramcore.SUPPORTED_MODEL_TYPES`.
REFUSED = {"falcon_h1": read_falcon_h1}

READERS: dict[str, object] = {}
