"""Qwen3-VL (``qwen3_vl``, ``qwen3_vl_moe``): a Qwen3 / Qwen3-MoE decoder with a deepstack vision tower."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader
from vramcore.model.hf.qwen import read_qwen3, read_qwen3_moe
from vramcore.model.hf.vision_towers import _sub

# Qwen3VLVisionConfig defaults (transformers configuration_qwen3_vl.py)
_VISION = {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16, "in_channels": 3,
           "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 3584,
           "num_position_embeddings": 2304}


def towers_qwen3_vl(r: Reader, text: Fields) -> Fields:
    """Qwen3-VL's tower, merger and one deepstack merger per ``deepstack_visual_indexes`` entry (default 3).

    Embeddings are tied as the outer config says (``Qwen3VLConfig`` default untied).
    """
    from vramcore.model.vision import qwen3_vl  # loaded with the first model that has one

    vc = _sub(r, "vision_config", _VISION)
    raw = r.cfg.get("vision_config") or {}
    indexes = raw.get("deepstack_visual_indexes", [8, 16, 24])
    if not isinstance(indexes, list) or len(indexes) > 1024 or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vc["depth"] for i in indexes):
        raise ValueError(f"config field 'vision_config.deepstack_visual_indexes' must list encoder layers below "
                         f"depth {vc['depth']}, got {indexes!r}"[:300])
    return {"vision": qwen3_vl(vc, deepstack=len(indexes)), "tie_embeddings": r.bool("tie_word_embeddings", False)}


READERS = {"qwen3_vl_text": read_qwen3, "qwen3_vl_moe_text": read_qwen3_moe}

TOWERS = {"qwen3_vl": towers_qwen3_vl, "qwen3_vl_moe": towers_qwen3_vl}

# the text config classes' defaults (transformers configuration_qwen3_vl.py / configuration_qwen3_vl_moe.py)
DEFAULTS = {
    "qwen3_vl_text": {"vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
                      "num_attention_heads": 32, "num_key_value_heads": 32, "head_dim": 128,
                      "max_position_embeddings": 128000},
    "qwen3_vl_moe_text": {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 5632,
                          "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 16,
                          "max_position_embeddings": 128000, "decoder_sparse_step": 1, "moe_intermediate_size": 1408,
                          "num_experts_per_tok": 4, "num_experts": 60},
}
