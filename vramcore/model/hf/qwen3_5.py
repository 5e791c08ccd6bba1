"""Qwen3.5 (``qwen3_5``, ``qwen3_5_moe``): gated-DeltaNet hybrid decoders with a Qwen3-VL-style vision tower."""

from __future__ import annotations

from vramcore._record import replace
from vramcore.model.hf._reader import Fields, Reader, common_fields, rotary_dim
from vramcore.model.hf.qwen3_next import deltanet_layer_types, deltanet_mixer
from vramcore.model.hf.vision_towers import _sub


def read_qwen3_5_text(r: Reader) -> Fields:
    """Fields of a ``qwen3_5_text`` config (transformers ``configuration_qwen3_5.py`` / ``modeling_qwen3_5.py``).

    Every ``full_attention_interval``-th layer (default 4) attends with per-head
    q/k norms and an output gate in ``q_proj``; the others are gated DeltaNet
    with four input projections; every layer has a dense MLP.  A config's
    ``mamba_ssm_dtype`` of ``"float32"`` asks the serving engines for an fp32
    recurrent state.  Norms scale by ``1 + weight`` in fp32 (``Qwen3_5RMSNorm``,
    zero-centred); each head's rotary width is ``partial_rotary_factor`` (default
    0.25, ``Qwen3_5TextConfig.__post_init__``) of it.
    """
    return _text_fields(r, common_fields(r, tie_default=False))


def _text_fields(r: Reader, out: Fields) -> Fields:
    """Add the fields Qwen3.5's dense and MoE decoders share to `out` (their common fields)."""
    types = deltanet_layer_types(r, out["num_layers"])
    bias = r.bool("attention_bias", False)
    state = deltanet_mixer(r, out["hidden_size"], split=True)
    ssm_dtype = r.cfg.get("mamba_ssm_dtype")
    if ssm_dtype is not None and not isinstance(ssm_dtype, str):
        raise ValueError(f"config field 'mamba_ssm_dtype' must be a dtype name, got {ssm_dtype!r}")
    if ssm_dtype in ("float32", "fp32"):
        state = replace(state, ssm_fp32=True)
    # rope_per_row: the decoder's position ids are (3, batch, seq) (multimodal rotary), so its cos / sin are per row
    out.update(layer_types=types, qkv_bias=bias, o_bias=bias, qk_norm=True, attn_output_gate=True, recurrent=state,
               norm_plus_one=True, rope_per_row=True)
    out["rotary_dim"] = rotary_dim(r, out, default=0.25)
    return out


def read_qwen3_5_moe_text(r: Reader) -> Fields:
    """Fields of a ``qwen3_5_moe_text`` config (transformers ``configuration_qwen3_5_moe.py``, ``modeling_...``).

    Qwen3.5's hybrid decoder (:func:`read_qwen3_5_text`) with a sparse MoE in
    every layer (``Qwen3_5MoeSparseMoeBlock``: ``num_experts`` routed experts of
    ``moe_intermediate_size``, a softmax top-k router, one shared expert of
    ``shared_expert_intermediate_size`` and its ``hidden -> 1`` sigmoid gate); the
    config has no dense ``intermediate_size``.
    """
    heads = r.int("num_attention_heads")
    out: Fields = {
        "num_layers": r.int("num_hidden_layers"), "hidden_size": r.int("hidden_size"), "num_heads": heads,
        "num_kv_heads": r.int("num_key_value_heads", heads), "head_dim": r.int("head_dim", None),
        "vocab_size": r.int("vocab_size"), "max_context": r.int("max_position_embeddings", None),
        "tie_embeddings": r.bool("tie_word_embeddings", False),
    }
    out = _text_fields(r, out)
    shared = r.int("shared_expert_intermediate_size", 0)
    out.update(num_experts=r.int("num_experts", minimum=1), experts_per_token=r.int("num_experts_per_tok", minimum=1),
               moe_intermediate_size=r.int("moe_intermediate_size", minimum=1),
               intermediate_size=r.int("moe_intermediate_size", minimum=1),
               mlp_layer_types=("moe",) * out["num_layers"], shared_expert_intermediate_size=shared,
               shared_expert_gate=shared > 0,
               moe_router="softmax_topk_norm")   # Qwen3_5MoeTopKRouter always renormalises the top-k weights
    return out


# Qwen3_5VisionConfig defaults (transformers configuration_qwen3_5.py)
_VISION = {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16, "in_channels": 3,
           "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 3584,
           "num_position_embeddings": 2304}


def towers_qwen3_5(r: Reader, text: Fields) -> Fields:
    """Qwen3.5's vision tower and merger; embeddings tied only when the outer config says so (default untied)."""
    from vramcore.model.vision import qwen3_vl  # loaded with the first model that has one

    vc = _sub(r, "vision_config", _VISION)
    return {"vision": qwen3_vl(vc), "tie_embeddings": r.bool("tie_word_embeddings", False)}


READERS = {"qwen3_5_text": read_qwen3_5_text, "qwen3_5_moe_text": read_qwen3_5_moe_text}

TOWERS = {"qwen3_5": towers_qwen3_5, "qwen3_5_moe": towers_qwen3_5}

# Qwen3_5TextConfig defaults (transformers configuration_qwen3_5.py): Qwen3.5-9B's text geometry
DEFAULTS = {
    "qwen3_5_text": {
        "vocab_size": 248320, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 32,
        "num_attention_heads": 16, "num_key_value_heads": 4, "max_position_embeddings": 32768, "head_dim": 256,
        "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
        "linear_num_key_heads": 16, "linear_num_value_heads": 32,
    },
    # Qwen3_5MoeTextConfig defaults (transformers configuration_qwen3_5_moe.py): Qwen3.5-35B-A3B's text geometry
    "qwen3_5_moe_text": {
        "vocab_size": 248320, "hidden_size": 2048, "num_hidden_layers": 40, "num_attention_heads": 16,
        "num_key_value_heads": 2, "max_position_embeddings": 32768, "head_dim": 256, "linear_conv_kernel_dim": 4,
        "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_num_key_heads": 16,
        "linear_num_value_heads": 32, "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512,
        "num_experts_per_tok": 8, "num_experts": 256,
    },
}
