"""Nemotron-H (``nemotron_h``): one sub-block per layer -- a Mamba2 mixer, attention, an MLP or an MoE.

transformers ``NemotronHBlock`` holds one norm and one of ``NemotronHMamba2Mixer``
(``M``), ``NemotronHAttention`` (``*``), ``NemotronHMLP`` (``-``: up and down
projections with a squared ReLU, no gate) or ``NemotronHMoE`` (``E``: routed
and shared experts of the same ungated kind, an fp32 router); the layout is
``layers_block_type`` (``layer_types``) or the older ``hybrid_override_pattern``
string.  vramcore reads a mixer block as a layer of that mixer with MLP kind
``"none"`` and an MLP block as a layer of mixer kind ``"none"``.
"""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader

__all__ = ["read_nemotron_h"]

# hybrid_override_pattern letters and layers_block_type names (NemotronHConfig._pattern_to_list; transformers 5
# spells Mamba blocks "linear_attention", older configs "mamba"), as (token mixer, MLP)
_BLOCKS = {"M": ("mamba", "none"), "*": ("full_attention", "none"), "-": ("none", "dense"), "E": ("none", "moe"),
           "mamba": ("mamba", "none"), "linear_attention": ("mamba", "none"), "attention": ("full_attention", "none"),
           "full_attention": ("full_attention", "none"), "mlp": ("none", "dense"), "moe": ("none", "moe")}


def _blocks(r: Reader) -> list[tuple[str, str]]:
    raw = r.cfg.get("layers_block_type") or r.cfg.get("layer_types")
    if raw is None:
        raw = r.cfg.get("hybrid_override_pattern", "ME*-")  # NemotronHConfig's default layers_block_type
        if not isinstance(raw, str):
            raise ValueError(f"config field 'hybrid_override_pattern' must be a string of M, *, - and E, got "
                             f"{raw!r}"[:200])
        raw = list(raw)
    if not isinstance(raw, list) or not 1 <= len(raw) <= 4096:
        raise ValueError(f"config field 'layers_block_type' must be a list of 1 to 4096 block kinds, got "
                         f"{str(raw)[:80]}")
    bad = sorted({str(k) for k in raw if not isinstance(k, str) or k not in _BLOCKS})
    if bad:
        raise ValueError(f"config field 'layers_block_type' holds kinds Nemotron-H has no block for: {bad[:5]} "
                         "(M / mamba, * / attention, - / mlp, E / moe)")
    return [_BLOCKS[k] for k in raw]


def read_nemotron_h(r: Reader) -> Fields:
    """Fields of a ``nemotron_h`` config (transformers ``configuration_nemotron_h.py`` / ``modeling_nemotron_h.py``).

    Mamba2 mixers of ``mamba_num_heads`` x ``mamba_head_dim`` with
    ``n_groups`` x ``ssm_state_size`` (conv bias ``use_conv_bias``, an fp32
    state when ``mamba_ssm_cache_dtype`` says so), attention of
    ``num_attention_heads`` x ``head_dim``, ungated MLPs of ``intermediate_size``
    and MoE blocks of ``n_routed_experts`` x ``moe_intermediate_size`` plus
    ``n_shared_experts`` x ``moe_shared_expert_intermediate_size``; one norm a block.
    """
    from vramcore._record import replace
    from vramcore.model.recurrent import mamba2  # loaded with the first model that has one

    blocks = _blocks(r)
    heads = r.int("num_attention_heads", 32, minimum=1)
    hidden = r.int("hidden_size", 4096, minimum=1)
    experts = r.int("n_routed_experts", 8)
    has_moe = any(m == "moe" for _, m in blocks)
    bias = r.bool("attention_bias", False)
    state = mamba2(hidden=hidden, heads=r.int("mamba_num_heads", 128, minimum=1),
                   head_dim=r.int("mamba_head_dim", 64, minimum=1), state_size=r.int("ssm_state_size", 128, minimum=1),
                   groups=r.int("n_groups", 8, minimum=1), conv_kernel=r.int("conv_kernel", 4, minimum=1),
                   conv_bias=r.bool("use_conv_bias", True), proj_bias=r.bool("mamba_proj_bias", False))
    ssm_dtype = r.cfg.get("mamba_ssm_cache_dtype", "float32")
    if ssm_dtype is not None and not isinstance(ssm_dtype, str):
        raise ValueError(f"config field 'mamba_ssm_cache_dtype' must be a dtype name, got {ssm_dtype!r}")
    if ssm_dtype in ("float32", "fp32"):
        state = replace(state, ssm_fp32=True)
    mixers = tuple(m for m, _ in blocks)
    out: Fields = {
        "num_layers": len(blocks), "hidden_size": hidden, "num_heads": heads,
        "num_kv_heads": r.int("num_key_value_heads", heads, minimum=1),
        "head_dim": r.int("head_dim", hidden // heads, minimum=1),
        "intermediate_size": r.int("intermediate_size", 21504, minimum=1),
        "vocab_size": r.int("vocab_size", 131072, minimum=1),
        "max_context": r.int("max_position_embeddings", None),
        "tie_embeddings": r.bool("tie_word_embeddings", False),
        "qkv_bias": bias, "o_bias": bias, "mlp_bias": r.bool("mlp_bias", False), "mlp_gated": False,
        "norms_per_layer": 1, "layer_types": mixers, "mlp_layer_types": tuple(m for _, m in blocks),
        "recurrent": state if "mamba" in mixers else None,
        # NemotronHRMSNorm: (self.weight.to(torch.float32) * hidden_states).to(input_dtype)
        "norm_weight_upcast": True,
        # NemotronHModel builds no rotary embedding and NemotronHAttention applies none
        "rope": False,
    }
    if has_moe:
        if not experts:
            raise ValueError("config of model_type 'nemotron_h' has MoE blocks (E) but n_routed_experts is 0")
        out.update(num_experts=experts, experts_per_token=r.int("num_experts_per_tok", 2, minimum=1),
                   moe_intermediate_size=r.int("moe_intermediate_size", 7688, minimum=1),
                   shared_expert_intermediate_size=r.int("n_shared_experts", 1)
                   * r.int("moe_shared_expert_intermediate_size", 7688),
                   router_fp32=True,  # NemotronHTopkRouter's weight is an fp32 Parameter
                   moe_router="sigmoid_group")  # sigmoid scores, group-limited top-k, fp32 routing weights
    return out


READERS = {"nemotron_h": read_nemotron_h}

# NemotronHConfig defaults for fields real files may leave out (transformers configuration_nemotron_h.py)
DEFAULTS = {
    "nemotron_h": {
        "vocab_size": 131072, "hidden_size": 4096, "intermediate_size": 21504, "num_attention_heads": 32,
        "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 4096, "mamba_num_heads": 128,
        "mamba_head_dim": 64, "ssm_state_size": 128, "n_groups": 8, "conv_kernel": 4, "n_routed_experts": 8,
        "num_experts_per_tok": 2, "moe_intermediate_size": 7688, "moe_shared_expert_intermediate_size": 7688,
        "n_shared_experts": 1,
    },
}
