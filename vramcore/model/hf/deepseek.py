"""DeepSeek-V3 / R1 (``deepseek_v3``): multi-head latent attention and a routed-plus-shared MoE."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields


def read_deepseek_v3(r: Reader) -> Fields:
    """Fields of a ``deepseek_v3`` config: MLA head dims, ``first_k_dense_replace`` dense layers."""
    out = common_fields(r, tie_default=False)
    experts = r.int("n_routed_experts")
    first_dense = r.int("first_k_dense_replace", 0)
    freq = r.int("moe_layer_freq", 1, minimum=1)
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
        num_experts=experts,
        experts_per_token=r.int("num_experts_per_tok"),
        moe_intermediate_size=r.int("moe_intermediate_size"),
        shared_expert_intermediate_size=r.int("n_shared_experts", 0) * r.int("moe_intermediate_size"),
        mlp_layer_types=tuple("moe" if experts and i >= first_dense and i % freq == 0 else "dense"
                              for i in range(out["num_layers"])),
        # transformers keeps the router ("gate") weight in fp32 (see reference facts)
        router_fp32=True,
    )
    return out


READERS = {"deepseek_v3": read_deepseek_v3}
