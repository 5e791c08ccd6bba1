"""gpt-oss (``gpt_oss``): biases everywhere, attention sinks, alternating sliding layers."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields, set_layer_types


def read_gpt_oss(r: Reader) -> Fields:
    """Fields of a ``gpt_oss`` config: biases on q/k/v/o, router and experts; one sink logit per head."""
    out = common_fields(r, tie_default=False)
    out.update(
        qkv_bias=r.bool("attention_bias", True),
        o_bias=r.bool("attention_bias", True),
        attention_sinks=True,
        # GptOssPreTrainedModel._supports_sdpa = False (transformers 5.24): the sinks need the eager path
        sdpa_supported=False,
        num_experts=r.int("num_local_experts"),
        experts_per_token=r.int("num_experts_per_tok", None) or r.int("experts_per_token"),
        moe_intermediate_size=out["intermediate_size"],
        router_bias=True,
        expert_bias=True,
    )
    set_layer_types(r, out, lambda i: i % 2 == 0)
    return out


READERS = {"gpt_oss": read_gpt_oss}
