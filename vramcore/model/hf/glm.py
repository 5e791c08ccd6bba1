"""GLM-4.5 / GLM-4.6 / GLM-4.5-Air (``glm4_moe``): GQA with partial rotary and a routed-plus-shared MoE."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields, rotary_dim


def read_glm4_moe(r: Reader) -> Fields:
    """Fields of a ``glm4_moe`` config.

    Follows transformers 5.x ``modeling_glm4_moe.py``: ``Glm4MoeAttention``
    puts ``attention_bias`` on q, k and v but never on o, and per-head q/k
    RMSNorms when ``use_qk_norm``; ``partial_rotary_factor`` changes no
    weight.  Layers below ``first_k_dense_replace`` (default 1) have a dense
    MLP of ``intermediate_size``, the rest ``Glm4MoeMoE``: ``n_routed_experts``
    experts of ``moe_intermediate_size``, shared experts of
    ``moe_intermediate_size x n_shared_experts`` (default 1) and a router
    weight without bias (its ``e_score_correction_bias`` is a buffer), kept
    in fp32 (transformers 5.24 ``_keep_in_fp32_modules_strict``).  The
    multi-token-prediction layers (``num_nextn_predict_layers``) are not
    built: ``Glm4MoePreTrainedModel`` ignores the checkpoint's layers past
    ``num_hidden_layers`` when loading.
    """
    out = common_fields(r, tie_default=False)
    experts = r.int("n_routed_experts")
    expert_width = r.int("moe_intermediate_size")
    first_dense = r.int("first_k_dense_replace", 1)
    bias = r.bool("attention_bias", False)
    out.update(
        qkv_bias=bias,
        o_bias=False,
        qk_norm=r.bool("use_qk_norm", False),
        num_experts=experts,
        experts_per_token=r.int("num_experts_per_tok"),
        moe_intermediate_size=expert_width,
        shared_expert_intermediate_size=r.int("n_shared_experts", 1) * expert_width,
        mlp_layer_types=tuple("moe" if experts and i >= first_dense else "dense" for i in range(out["num_layers"])),
        router_fp32=True,
    )
    # Glm4MoeConfig's partial_rotary_factor default 0.5 (transformers configuration_glm4_moe.py)
    out["rotary_dim"] = rotary_dim(r, out, default=0.5)
    return out


READERS = {"glm4_moe": read_glm4_moe}
