"""Jamba (``jamba``): refused, with the reason; its recurrent layers are Mamba1, which vramcore has no mixer for.

Jamba's layer plan fits a :class:`~vramcore.ModelSpec` (an attention or Mamba
mixer and a dense or MoE MLP per layer, from ``attn_layer_period`` /
``attn_layer_offset`` and ``expert_layer_period`` / ``expert_layer_offset``),
but its mixer is Mamba1 (transformers ``JambaMambaMixer``: ``in_proj`` to two
inner widths, ``x_proj`` to ``dt_rank + 2 x state``, ``dt_proj``, ``A_log`` of
inner x state, ``D`` per channel, RMSNorms on dt, B and C; a recurrent state
of inner x state per sequence), and :mod:`vramcore.model.recurrent` describes
Mamba2 and gated DeltaNet only.  A ``mamba1`` StateSpec kind, with its LoRA
module names beside the Mamba2 ones (``vramcore/engines/train.py``), would
make it readable; until then it is refused rather than read as a Llama.
"""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader

__all__ = ["read_jamba"]


def read_jamba(r: Reader) -> Fields:
    """Refuse a ``jamba`` config with the reason (see the module docstring).

    Raises
    ------
    ValueError
        Always.
    """
    raise ValueError(
        f"model_type {r.model_type!r} (Jamba) is not supported yet: its recurrent layers are Mamba1 mixers (x_proj, "
        "dt_proj, A of inner x state, D per channel, dt/B/C norms; a state of inner x state per sequence), and "
        "vramcore describes Mamba2 and gated DeltaNet mixers only. Its attention / Mamba and dense / MoE interleave "
        "fits a ModelSpec; a mamba1 recurrent mixer kind would make it readable")


#: Read only to be refused with the reason: not in :data:`vramcore.SUPPORTED_MODEL_TYPES`.
REFUSED = {"jamba": read_jamba}

READERS: dict[str, object] = {}
