"""Jamba (``jamba``): Mamba1 layers with an attention layer every ``attn_layer_period``, MoE every other layer."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields

__all__ = ["read_jamba"]


def read_jamba(r: Reader) -> Fields:
    """Fields of a ``jamba`` config (transformers ``configuration_jamba.py`` / ``modeling_jamba.py``).

    Layer ``i`` attends when ``i % attn_layer_period == attn_layer_offset``
    (no biases, no position embedding), else it is a Mamba1 mixer
    (``JambaMambaMixer``: inner = ``mamba_expand x hidden``, ``mamba_d_state``,
    ``mamba_d_conv``, ``mamba_dt_rank`` (``"auto"``: ceil(hidden / 16)), RMSNorms
    on dt, B and C); its MLP is an MoE of ``num_experts`` (top
    ``num_experts_per_tok``) when ``i % expert_layer_period ==
    expert_layer_offset``, else dense.
    """
    from vramcore.model.recurrent import mamba1  # loaded with the first model that has one

    out = common_fields(r, tie_default=False)
    n, h = out["num_layers"], out["hidden_size"]
    period, offset = r.int("attn_layer_period", 8, minimum=1), r.int("attn_layer_offset", 4)
    e_period, e_offset = r.int("expert_layer_period", 2, minimum=1), r.int("expert_layer_offset", 1)
    experts = r.int("num_experts", 16)
    expand = r.int("mamba_expand", 2, minimum=1)
    rank_raw = r.cfg.get("mamba_dt_rank", "auto")
    dt_rank = -(-h // 16) if rank_raw == "auto" else r.int("mamba_dt_rank", minimum=1)
    state = mamba1(hidden=h, inner=expand * h, state_size=r.int("mamba_d_state", 16, minimum=1),
                   conv_kernel=r.int("mamba_d_conv", 4, minimum=1), dt_rank=dt_rank,
                   conv_bias=r.bool("mamba_conv_bias", True), proj_bias=r.bool("mamba_proj_bias", False))
    out.update(
        layer_types=tuple("full_attention" if i % period == offset else "mamba" for i in range(n)),
        recurrent=state,
        num_experts=experts,
        experts_per_token=r.int("num_experts_per_tok", 2) if experts else 0,
        moe_intermediate_size=out["intermediate_size"] if experts else None,
        mlp_layer_types=tuple("moe" if experts and i % e_period == e_offset else "dense" for i in range(n)),
        rope=False,   # JambaAttention applies no rotary embedding (its model builds none: no cos / sin saved)
    )
    if "mamba" not in out["layer_types"]:
        out["recurrent"] = None
    return out


READERS = {"jamba": read_jamba}

# JambaConfig defaults (transformers configuration_jamba.py): Jamba-v0.1
DEFAULTS = {
    "jamba": {
        "vocab_size": 65536, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 262144,
    },
}
