"""Qwen3-Next (``qwen3_next``): gated DeltaNet layers between gated-attention layers, over a sparse MoE."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, config_layer_types, rotary_dim
from vramcore.model.hf.qwen import read_qwen3_moe

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


def read_qwen3_next(r: Reader) -> Fields:
    """Fields of a ``qwen3_next`` config (transformers ``configuration_qwen3_next.py`` / ``modeling_qwen3_next.py``).

    Every ``full_attention_interval``-th layer (default 4) attends, the others
    are gated DeltaNet (``layer_types`` wins when the file has it); attention
    layers have per-head q/k norms and an output gate folded into ``q_proj``;
    MoE layers add one shared expert of ``shared_expert_intermediate_size``
    and its ``hidden -> 1`` gate.
    """
    out = read_qwen3_moe(r)
    out.update(
        layer_types=deltanet_layer_types(r, out["num_layers"]),
        attn_output_gate=True,
        norm_plus_one=True,   # Qwen3NextRMSNorm: x * rsqrt(...) * (1 + weight), in fp32
        # Qwen3NextTopKRouter: norm_topk_prob (Qwen3NextConfig default True) divides the top-k weights by their sum
        moe_router="softmax_topk_norm" if r.bool("norm_topk_prob", True) else "softmax_topk",
        shared_expert_intermediate_size=r.int("shared_expert_intermediate_size", 0),
        shared_expert_gate=r.int("shared_expert_intermediate_size", 0) > 0,
        recurrent=deltanet_mixer(r, out["hidden_size"]),
    )
    out.pop("sliding_window", None)
    # Qwen3NextConfig's partial_rotary_factor default 0.25 (transformers configuration_qwen3_next.py)
    out["rotary_dim"] = rotary_dim(r, out, default=0.25)
    return out


def deltanet_layer_types(r: Reader, n: int) -> tuple[str, ...]:
    """Return the layer kinds of a gated-DeltaNet hybrid.

    The config's ``layer_types``, else every ``full_attention_interval``-th
    layer (default 4) full attention and the others ``linear_attention``.
    """
    types = config_layer_types(r, n)
    if types is None:
        interval = r.int("full_attention_interval", 4, minimum=1)
        types = tuple("full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(n))
    unknown = sorted(set(types) - {"full_attention", "linear_attention"})
    if unknown:
        raise ValueError(f"config field 'layer_types' of a {r.model_type} model may hold full_attention and "
                         f"linear_attention layers, got {unknown}")
    return types


def deltanet_mixer(r: Reader, hidden: int, split: bool = False) -> Any:
    """Return the gated-DeltaNet mixer the config's ``linear_*`` fields describe (a StateSpec)."""
    from vramcore.model.recurrent import gated_deltanet  # loaded with the first model that has one

    return gated_deltanet(hidden=hidden, key_heads=r.int("linear_num_key_heads", minimum=1),
                          value_heads=r.int("linear_num_value_heads", minimum=1),
                          key_dim=r.int("linear_key_head_dim", minimum=1),
                          value_dim=r.int("linear_value_head_dim", minimum=1),
                          conv_kernel=r.int("linear_conv_kernel_dim", minimum=1), split=split)


READERS = {"qwen3_next": read_qwen3_next}

# Qwen3NextConfig defaults for fields real files may leave out (transformers configuration_qwen3_next.py)
DEFAULTS = {
    "qwen3_next": {
        "head_dim": 256, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
        "linear_num_key_heads": 16, "linear_num_value_heads": 32, "decoder_sparse_step": 1,
        "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512, "num_experts_per_tok": 10,
        "num_experts": 512,
    },
}
