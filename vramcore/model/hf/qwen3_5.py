"""Qwen3.5 (``qwen3_5``): a gated-DeltaNet hybrid decoder (``qwen3_5_text``) with a Qwen3-VL-style vision tower."""

from __future__ import annotations

import dataclasses

from vramcore.model.hf._reader import Fields, Reader, common_fields
from vramcore.model.hf.qwen3_next import deltanet_layer_types, deltanet_mixer
from vramcore.model.hf.vision_towers import _sub


def read_qwen3_5_text(r: Reader) -> Fields:
    """Fields of a ``qwen3_5_text`` config (transformers ``configuration_qwen3_5.py`` / ``modeling_qwen3_5.py``).

    Every ``full_attention_interval``-th layer (default 4) attends with per-head
    q/k norms and an output gate in ``q_proj``; the others are gated DeltaNet
    with four input projections; every layer has a dense MLP.  A config's
    ``mamba_ssm_dtype`` of ``"float32"`` asks the serving engines for an fp32
    recurrent state.
    """
    out = common_fields(r, tie_default=False)
    types = deltanet_layer_types(r, out["num_layers"])
    bias = r.bool("attention_bias", False)
    state = deltanet_mixer(r, out["hidden_size"], split=True)
    ssm_dtype = r.cfg.get("mamba_ssm_dtype")
    if ssm_dtype is not None and not isinstance(ssm_dtype, str):
        raise ValueError(f"config field 'mamba_ssm_dtype' must be a dtype name, got {ssm_dtype!r}")
    if ssm_dtype in ("float32", "fp32"):
        state = dataclasses.replace(state, ssm_fp32=True)
    out.update(layer_types=types, qkv_bias=bias, o_bias=bias, qk_norm=True, attn_output_gate=True, recurrent=state)
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


READERS = {"qwen3_5_text": read_qwen3_5_text}

TOWERS = {"qwen3_5": towers_qwen3_5}

# Qwen3_5TextConfig defaults (transformers configuration_qwen3_5.py): Qwen3.5-9B's text geometry
DEFAULTS = {
    "qwen3_5_text": {
        "vocab_size": 248320, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 32,
        "num_attention_heads": 16, "num_key_value_heads": 4, "max_position_embeddings": 32768, "head_dim": 256,
        "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
        "linear_num_key_heads": 16, "linear_num_value_heads": 32,
    },
}
