"""Nemotron-H (``nemotron_h``): refused, with the reason; its blocks are mixer-only and MLP-only.

A Nemotron-H block is one of a Mamba2 mixer, an attention layer, an MLP or
an MoE (``hybrid_override_pattern`` letters ``M``, ``*``, ``-``, ``E``;
transformers ``NemotronHBlock``: one norm and one of these), and its MLP is
``up_proj`` / ``down_proj`` with a squared ReLU.  A :class:`~vramcore.ModelSpec`
layer pairs one token mixer with one MLP, and its dense MLP is the
three-projection gated one, so the model cannot be counted exactly yet: a
family module that read it anyway (or the generic reader, which would take its
``num_hidden_layers`` blocks for Llama layers) would give a wrong estimate.
"""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader

__all__ = ["read_nemotron_h"]


def read_nemotron_h(r: Reader) -> Fields:
    """Refuse a ``nemotron_h`` config with the reason (see the module docstring).

    Raises
    ------
    ValueError
        Always.
    """
    raise ValueError(
        f"model_type {r.model_type!r} (Nemotron-H) is not supported yet: each of its blocks holds one of a Mamba2 "
        "mixer, attention, an MLP or an MoE (hybrid_override_pattern 'M' / '*' / '-' / 'E') with one norm, while a "
        "ModelSpec layer pairs one token mixer with one MLP; its MLP is also a 2-projection squared-ReLU MLP, not "
        "the 3-projection gated MLP a ModelSpec counts. A ModelSpec would need mixer-only and MLP-only layers and "
        "that MLP kind")


#: Read only to be refused with the reason: not in :data:`vramcore.SUPPORTED_MODEL_TYPES`.
REFUSED = {"nemotron_h": read_nemotron_h}

READERS: dict[str, object] = {}
