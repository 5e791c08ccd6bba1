"""Gemma-2 and Gemma-3 (``gemma2``, ``gemma3``, ``gemma3_text``)."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields, set_layer_types


def _gemma_common(r: Reader, capped: bool) -> Fields:
    # Gemma: four norms per layer, tied embeddings by default.
    out = common_fields(r, tie_default=True)
    bias = r.bool("attention_bias", False)
    # Gemma's RMSNorm scales by (1 + weight) and the embeddings by sqrt(hidden) (modeling_gemma2/3.py);
    # Gemma-2 soft-caps attention scores and logits with tanh when the config sets a cap
    out.update(qkv_bias=bias, o_bias=bias, norms_per_layer=4, norm_plus_one=True, embed_scale=True,
               attn_softcap=_capped(r, "attn_logit_softcapping", capped),
               final_softcap=_capped(r, "final_logit_softcapping", capped))
    return out


def _capped(r: Reader, key: str, default: bool) -> bool:
    # a key left out takes the config class's default: 50.0 / 30.0 in Gemma2Config, None in Gemma3TextConfig
    return r.cfg[key] is not None if key in r.cfg else default


def read_gemma2(r: Reader) -> Fields:
    """Fields of a ``gemma2`` config: even-indexed layers slide."""
    out = _gemma_common(r, capped=True)
    # Gemma2PreTrainedModel._supports_sdpa = False (transformers 5.24): attention soft-capping needs eager
    out["sdpa_supported"] = False
    set_layer_types(r, out, lambda i: (i + 1) % 2 != 0)
    return out


def read_gemma3(r: Reader) -> Fields:
    """Fields of a ``gemma3_text`` config: q/k norms; every ``sliding_window_pattern``-th layer is global."""
    out = _gemma_common(r, capped=False)
    out["qk_norm"] = True
    # Gemma3TextModel builds a global and a local rotary embedding (rope_local_base_freq) and keeps both
    # (cos, sin) pairs through the layers (measured: tools/measure_prefill_peak.py --breakdown)
    out["rotary_tables"] = 2
    pattern = r.int("sliding_window_pattern", 6, minimum=1) if r.cfg.get("layer_types") is None else 1
    set_layer_types(r, out, lambda i: (i + 1) % pattern != 0)
    return out


READERS = {"gemma2": read_gemma2, "gemma3": read_gemma3, "gemma3_text": read_gemma3}

# Config-class defaults for fields that real config.json files leave out
# (transformers/models/gemma3/configuration_gemma3.py, Gemma3TextConfig.__init__).
DEFAULTS = {
    "gemma3_text": {
        "vocab_size": 262208, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
        "max_position_embeddings": 131072, "sliding_window": 4096, "sliding_window_pattern": 6,
    },
}
