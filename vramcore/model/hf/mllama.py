"""Llama-3.2-Vision (``mllama``): refused, with the reason; its cross-attention layers have a cache of their own.

Every layer listed in ``text_config.cross_attention_layers`` (8 of 40 in the
11B model, 20 of 100 in the 90B) attends to the image's vision tokens instead
of the sequence: its K and V are computed from the vision encoder's output
(``MllamaTextCrossAttention``: q/k/v/o, per-head q/k norms, tanh gates) and
cached once per image, not per token.  The vision model is a 32-layer local
plus an 8-layer gated global encoder over up to 4 tiles with tile and gated
positional embeddings.  A :class:`~vramcore.ModelSpec` has no cross-attention
layer kind yet, and the generic reader would count the cross-attention layers
as ordinary self-attention ones (a wrong parameter count and cache), so the
model is refused rather than guessed.
"""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader

__all__ = ["read_mllama"]


def read_mllama(r: Reader) -> Fields:
    """Refuse an ``mllama`` config with the reason (see the module docstring).

    Raises
    ------
    ValueError
        Always.
    """
    raise ValueError(
        f"model_type {r.model_type!r} (Llama-3.2-Vision) is not supported yet: its cross_attention_layers attend "
        "to the image's vision tokens, with K and V cached once per image rather than per token, and its vision "
        "model is a tiled local + gated global encoder; a ModelSpec has no cross-attention layer kind, and reading "
        "those layers as self-attention would give a wrong count and cache")


#: Read only to be refused with the reason: not in :data:`vramcore.SUPPORTED_MODEL_TYPES`.
REFUSED = {"mllama": read_mllama, "mllama_text_model": read_mllama}

READERS: dict[str, object] = {}
