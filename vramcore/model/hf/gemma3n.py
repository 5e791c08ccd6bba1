"""Gemma-3n (``gemma3n_text``; the ``gemma3n`` wrapper's text decoder).

transformers ``models/gemma3n/configuration_gemma3n.py`` (``Gemma3nTextConfig``) and
``modeling_gemma3n.py`` (``Gemma3nTextModel``, ``Gemma3nTextDecoderLayer``): a Gemma-3 style decoder
(four norms per layer, q/k norms, tied and scaled embeddings, final logit soft-capping) with AltUp
(``altup_num_inputs`` copies of the residual stream), a LAuReL block per layer, per-layer embeddings
(``embed_tokens_per_layer``) and KV sharing in the last ``num_kv_shared_layers`` layers.
"""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields, set_layer_types


def _uniform_intermediate(r: Reader, n_layers: int) -> int:
    # Gemma3nTextConfig: an int, or one width per layer (MatFormer slices); a ModelSpec holds one MLP width
    value = r.cfg.get("intermediate_size")
    if not isinstance(value, list):
        return int(r.int("intermediate_size"))
    if len(value) != n_layers:
        raise ValueError(f"config field 'intermediate_size' must be an integer or a list of {n_layers} integers "
                         f"(one per layer), got {len(value)} entries")
    widths = {Reader({"intermediate_size": v}, r.model_type).int("intermediate_size", minimum=1) for v in value}
    if len(widths) != 1:
        raise ValueError(f"config field 'intermediate_size' lists different widths per layer ({sorted(widths)}): "
                         "a ModelSpec holds one MLP width, so a MatFormer slice with mixed widths is not supported")
    return int(widths.pop())


def read_gemma3n(r: Reader) -> Fields:
    """Fields of a ``gemma3n_text`` config (every fifth layer global unless ``layer_types`` says otherwise)."""
    n_layers = r.int("num_hidden_layers")
    cfg = dict(r.cfg)
    cfg["intermediate_size"] = _uniform_intermediate(r, n_layers)
    r = Reader(cfg, r.model_type)
    out = common_fields(r, tie_default=True)
    bias = r.bool("attention_bias", False)
    # Gemma3nRMSNorm scales by weight, not 1 + weight (its weight starts at ones); the embeddings are scaled by
    # sqrt(hidden) (Gemma3nTextScaledWordEmbedding); the final logits are soft-capped (final_logit_softcapping
    # 30.0 by default), the attention scores not (Gemma3nTextAttention passes no softcap)
    cap = r.cfg["final_logit_softcapping"] is not None if "final_logit_softcapping" in r.cfg else True
    out.update(qkv_bias=bias, o_bias=bias, norms_per_layer=4, qk_norm=True, embed_scale=True,
               final_softcap=cap)
    # Gemma3nTextConfig.__post_init__: layer i is full when (i + 1) % 5 == 0
    set_layer_types(r, out, lambda i: (i + 1) % 5 != 0)
    out["kv_shared_layers"] = r.int("num_kv_shared_layers", 15)
    out["altup_inputs"] = r.int("altup_num_inputs", 4, minimum=1)
    out["laurel_rank"] = r.int("laurel_rank", 64)
    out["per_layer_input_size"] = r.int("hidden_size_per_layer_input", 256)
    out["per_layer_vocab_size"] = r.int("vocab_size_per_layer_input", 262144)
    if out["per_layer_input_size"] == 0 or out["per_layer_vocab_size"] == 0:
        out["per_layer_input_size"] = out["per_layer_vocab_size"] = 0
    return out


READERS = {"gemma3n_text": read_gemma3n}

# Gemma3nTextConfig class defaults (transformers 5.24 configuration_gemma3n.py) for fields a config may leave out
DEFAULTS = {
    "gemma3n_text": {
        "vocab_size": 262400, "hidden_size": 2048, "intermediate_size": 16384, "num_hidden_layers": 35,
        "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 256, "max_position_embeddings": 32768,
        "sliding_window": 512,
    },
}
