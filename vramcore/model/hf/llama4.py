"""Llama-4 (``llama4`` / ``llama4_text``): chunked local attention with NoPE global layers, MoE, a vision tower."""

from __future__ import annotations

import math

from vramcore.model.hf._reader import Fields, Reader, common_fields, config_layer_types
from vramcore.model.hf.vision_towers import _sub


def read_llama4_text(r: Reader) -> Fields:
    """Fields of a ``llama4_text`` config (transformers ``configuration_llama4.py`` / ``modeling_llama4.py``).

    Layers with RoPE attend within chunks of ``attention_chunk_size`` tokens
    (``"chunked_attention"``, cached like a window of that size); every
    ``no_rope_layer_interval``-th layer (default 4; ``no_rope_layers`` flags
    them) is a NoPE layer with full attention.  MoE layers (``moe_layers``, or
    every ``interleave_moe_layer_step``-th) hold ``num_local_experts`` experts of
    ``intermediate_size``, a router and one shared expert of the same width;
    the other layers a dense MLP of ``intermediate_size_mlp``.  ``use_qk_norm``
    is an L2 norm without weights.
    """
    out = common_fields(r, tie_default=False)
    n = out["num_layers"]
    experts_width = out["intermediate_size"]
    out["intermediate_size"] = r.int("intermediate_size_mlp", 16384)
    chunk = r.int("attention_chunk_size", None)
    types = config_layer_types(r, n)
    if types is None:
        nope = r.cfg.get("no_rope_layers")
        if nope is not None:
            if not isinstance(nope, list) or len(nope) != n or any(
                    isinstance(v, bool) or not isinstance(v, int) or v not in (0, 1) for v in nope):
                raise ValueError(f"config field 'no_rope_layers' must be a list of {n} 0/1 flags")
            rope = [bool(v) for v in nope]
        else:
            interval = r.int("no_rope_layer_interval", 4, minimum=1)
            rope = [(i + 1) % interval != 0 for i in range(n)]
        types = tuple("chunked_attention" if use and chunk is not None else "full_attention" for use in rope)
    unknown = sorted(set(types) - {"full_attention", "chunked_attention"})
    if unknown:
        raise ValueError(f"config field 'layer_types' of a llama4 model may hold full_attention and "
                         f"chunked_attention layers, got {unknown}")
    if "chunked_attention" in types and chunk is None:
        raise ValueError("config of model_type 'llama4_text' has chunked_attention layers but no "
                         "'attention_chunk_size'")
    experts = r.int("num_local_experts", 16)
    moe_layers = r.cfg.get("moe_layers")
    if moe_layers is not None:
        moe = r.int_set("moe_layers")
        if any(not 0 <= i < n for i in moe):
            raise ValueError(f"config field 'moe_layers' holds layer indices outside [0, {n})")
    else:
        step = r.int("interleave_moe_layer_step", 1, minimum=1)
        moe = set(range(step - 1, n, step))
    bias = r.bool("attention_bias", False)
    out.update(
        layer_types=types, sliding_window=chunk if "chunked_attention" in types else None,
        qkv_bias=bias, o_bias=bias,
        num_experts=experts, experts_per_token=r.int("num_experts_per_tok", 1),
        moe_intermediate_size=experts_width, shared_expert_intermediate_size=experts_width if experts else 0,
        mlp_layer_types=tuple("moe" if experts and i in moe else "dense" for i in range(n)),
    )
    # Llama4ForCausalLM._supports_flash_attn = False (transformers 5.24): flash_attention_2 is refused
    out["flash_supported"] = False
    return out


# Llama4VisionConfig defaults (transformers configuration_llama4.py)
_VISION = {"hidden_size": 768, "num_hidden_layers": 34, "num_attention_heads": 16, "num_channels": 3,
           "intermediate_size": 5632, "vision_output_dim": 7680, "image_size": 448, "patch_size": 14,
           "projector_input_dim": 4096, "projector_output_dim": 4096, "multi_modal_projector_bias": False}


def towers_llama4(r: Reader, text: Fields) -> Fields:
    """Llama-4's vision encoder, pixel-shuffle adapter and projector (embeddings untied unless the config ties)."""
    from vramcore.model.vision import llama4  # loaded with the first model that has one

    vc = _sub(r, "vision_config", _VISION)
    raw = r.cfg.get("vision_config") or {}
    ratio = raw.get("pixel_shuffle_ratio", 0.5)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) \
            or not 0 < ratio <= 1 or round(1 / (ratio * ratio)) < 1:
        raise ValueError(f"config field 'vision_config.pixel_shuffle_ratio' must be in (0, 1], got {ratio!r}")
    vc["pixel_shuffle_ratio"] = float(ratio)
    return {"vision": llama4(vc, text["hidden_size"]), "tie_embeddings": r.bool("tie_word_embeddings", False)}


READERS = {"llama4_text": read_llama4_text}

TOWERS = {"llama4": towers_llama4}

# Llama4TextConfig defaults (transformers configuration_llama4.py): Llama-4-Scout's text geometry
DEFAULTS = {
    "llama4_text": {
        "vocab_size": 202048, "hidden_size": 5120, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
        "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
        "max_position_embeddings": 131072, "num_experts_per_tok": 1, "num_local_experts": 16,
        "attention_chunk_size": 8192,
    },
}
