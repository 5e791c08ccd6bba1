"""Llama (``llama``): the reference layout every other reader starts from."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields


def read_llama(r: Reader) -> Fields:
    """Fields of a ``llama`` config (Llama 2/3.x, DeepSeek-R1-Distill-Llama)."""
    # LlamaAttention: attention_bias puts a bias on q, k, v and o; LlamaMLP: mlp_bias on all three.
    out = common_fields(r, tie_default=False)
    bias = r.bool("attention_bias", False)
    out.update(qkv_bias=bias, o_bias=bias, mlp_bias=r.bool("mlp_bias", False))
    return out


READERS = {"llama": read_llama}
