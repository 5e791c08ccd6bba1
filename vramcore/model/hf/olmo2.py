"""OLMo-2 (``olmo2``): post-branch RMSNorms and q/k norms over the whole projections."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields


def read_olmo2(r: Reader) -> Fields:
    """Fields of an ``olmo2`` config (OLMo-2 1B / 7B / 13B / 32B).

    Follows transformers 5.x ``modeling_olmo2.py``: ``Olmo2Attention`` puts
    ``attention_bias`` on q, k, v and o and normalizes q and k with one
    RMSNorm each over the whole projection (``num_attention_heads x
    head_dim`` and ``num_key_value_heads x head_dim`` weights, not one head);
    ``Olmo2DecoderLayer`` has no input norm but ``post_attention_layernorm``
    and ``post_feedforward_layernorm`` on the branch outputs (two norms per
    layer, as Llama's pre-norms); ``Olmo2RMSNorm`` returns ``(weight *
    x_fp32).to(dtype)``; ``Olmo2MLP`` has no biases.  No sliding window, no
    ``layer_types`` (``Olmo2Config`` has neither).
    """
    out = common_fields(r, tie_default=False)  # Olmo2Config.tie_word_embeddings = False
    bias = r.bool("attention_bias", False)
    out.update(qkv_bias=bias, o_bias=bias, qk_norm=True, qk_norm_full_width=True, norm_weight_fp32=True)
    return out


READERS = {"olmo2": read_olmo2}
