"""DeepSeek-V3 / R1 / V3.1, Kimi-K2 and DeepSeek-V3.2 (``deepseek_v3``, ``kimi_k2``, ``deepseek_v32``).

Multi-head latent attention and a routed-plus-shared MoE.  ``kimi_k2`` is
Moonshot's name for the DeepSeek-V3 architecture (Kimi-K2's ``config.json``
loads ``configuration_deepseek.DeepseekV3Config`` through ``auto_map``, and
transformers' own ``Kimi_K25Config`` rewrites a ``kimi_k2`` text config to
``deepseek_v3``): it is read as ``deepseek_v3`` and the spec says so.
"""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields, config_layer_types


def _mla_moe(r: Reader) -> Fields:
    """Return the fields V3 and V3.2 share: MLA head dims, experts, the fp32 router."""
    out = common_fields(r, tie_default=False)
    bias = r.bool("attention_bias", False)
    out.update(
        head_dim=None,
        qkv_bias=bias,
        o_bias=bias,
        q_lora_rank=r.int("q_lora_rank", None),
        kv_lora_rank=r.int("kv_lora_rank"),
        qk_rope_head_dim=r.int("qk_rope_head_dim"),
        qk_nope_head_dim=r.int("qk_nope_head_dim"),
        v_head_dim=r.int("v_head_dim"),
        num_experts=r.int("n_routed_experts"),
        experts_per_token=r.int("num_experts_per_tok"),
        moe_intermediate_size=r.int("moe_intermediate_size"),
        shared_expert_intermediate_size=r.int("n_shared_experts", 0) * r.int("moe_intermediate_size"),
        # transformers keeps the router ("gate") weight in fp32 (see reference facts)
        router_fp32=True,
    )
    return out


def read_deepseek_v3(r: Reader) -> Fields:
    """Fields of a ``deepseek_v3`` config: MLA head dims, ``first_k_dense_replace`` dense layers."""
    out = _mla_moe(r)
    experts = out["num_experts"]
    first_dense = r.int("first_k_dense_replace", 0)
    freq = r.int("moe_layer_freq", 1, minimum=1)
    out["mlp_layer_types"] = tuple("moe" if experts and i >= first_dense and i % freq == 0 else "dense"
                                   for i in range(out["num_layers"]))
    return out


def read_kimi_k2(r: Reader) -> Fields:
    """Fields of a ``kimi_k2`` config (Kimi-K2): the DeepSeek-V3 architecture, read as ``deepseek_v3``."""
    return {**read_deepseek_v3(r), "model_type": "deepseek_v3"}


def read_deepseek_v32(r: Reader) -> Fields:
    """Fields of a ``deepseek_v32`` config (DeepSeek-V3.2): V3's MLA and MoE plus the sparse-attention indexer.

    Follows transformers 5.23/5.24 ``configuration_deepseek_v32.py`` and
    ``modeling_deepseek_v32.py``: the q latent is required (``q_lora_rank``,
    default 1536: "Qlora rank formulation is dropped"), ``mlp_layer_types``
    (``"dense"`` / ``"sparse"``) or else ``first_k_dense_replace`` (default 3)
    dense layers then MoE (``moe_layer_freq`` is not read), and per layer a
    ``DeepseekV32Indexer`` of ``index_n_heads`` (64) x ``index_head_dim``
    (128), selecting ``index_topk`` (2048) tokens.  Every layer caches the MLA
    latent (``layer_types`` is ``"indexed_attention"`` throughout).  The
    indexer also caches one key of ``index_head_dim`` per token and layer
    (transformers ``DynamicIndexedLayer.indexer_keys``, bf16; vLLM and SGLang
    store it in fp8 with a scale per 128: ``EngineSpec.index_cache_bits``),
    counted in the KV cache.
    """
    out = _mla_moe(r)
    n = out["num_layers"]
    out["q_lora_rank"] = r.int("q_lora_rank", 1536)
    mlp = r.cfg.get("mlp_layer_types")
    if mlp is None:
        first_dense = r.int("first_k_dense_replace", 3)
        kinds = tuple("dense" if i < first_dense else "moe" for i in range(n))
    else:
        if not isinstance(mlp, list) or len(mlp) != n or not all(k in ("dense", "sparse") for k in mlp):
            raise ValueError(f"config field 'mlp_layer_types' must be a list of {n} entries 'dense' or 'sparse', "
                             f"got {str(mlp)[:80]}")
        kinds = tuple("moe" if k == "sparse" else "dense" for k in mlp)
    out["mlp_layer_types"] = kinds if out["num_experts"] else ("dense",) * n
    for i, kind in enumerate(config_layer_types(r, n) or ()):
        if kind not in ("indexed_attention", "full_attention"):
            raise ValueError(f"config field 'layer_types'[{i}] = {kind!r}: deepseek_v32 layers are "
                             "'indexed_attention'")
    out.update(index_n_heads=r.int("index_n_heads", 64), index_head_dim=r.int("index_head_dim", 128),
               index_topk=r.int("index_topk", 2048))
    # DeepseekV32ForCausalLM._supports_flash_attn = False (transformers 5.24): flash_attention_2 is refused
    out["flash_supported"] = False
    return out


READERS = {"deepseek_v3": read_deepseek_v3, "kimi_k2": read_kimi_k2, "deepseek_v32": read_deepseek_v32}
