"""Qwen2, Qwen3 and Qwen3-MoE (``qwen2``, ``qwen3``, ``qwen3_moe``)."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields, set_layer_types


def _sliding(r: Reader, out: Fields) -> None:
    # Qwen2/Qwen3: layers at index >= max_window_layers slide when use_sliding_window is true.
    start = out["num_layers"]
    if r.bool("use_sliding_window", False) and r.cfg.get("layer_types") is None:
        out["sliding_window"] = r.int("sliding_window")
        start = r.int("max_window_layers", out["num_layers"])
    set_layer_types(r, out, lambda i: i >= start)


def read_qwen2(r: Reader) -> Fields:
    """Fields of a ``qwen2`` config: q/k/v biases."""
    out = common_fields(r, tie_default=False)
    out.update(qkv_bias=True)
    _sliding(r, out)
    return out


def read_qwen3(r: Reader) -> Fields:
    """Fields of a ``qwen3`` config: per-head q/k norms, optional attention biases."""
    out = common_fields(r, tie_default=False)
    bias = r.bool("attention_bias", False)
    out.update(qkv_bias=bias, o_bias=bias, qk_norm=True)
    _sliding(r, out)
    return out


def read_qwen3_moe(r: Reader) -> Fields:
    """Fields of a ``qwen3_moe`` config: every ``decoder_sparse_step``-th layer is MoE unless listed dense."""
    out = read_qwen3(r)
    experts = r.int("num_experts")
    step = r.int("decoder_sparse_step", 1, minimum=1)
    dense_only = r.int_set("mlp_only_layers")
    out.update(
        num_experts=experts,
        experts_per_token=r.int("num_experts_per_tok"),
        moe_intermediate_size=r.int("moe_intermediate_size"),
        # Qwen3MoeTopKRouter: with norm_topk_prob (config default False) the top-k weights are divided by their sum
        moe_router="softmax_topk_norm" if r.bool("norm_topk_prob", False) else "softmax_topk",
        mlp_layer_types=tuple(
            "moe" if experts > 0 and i not in dense_only and (i + 1) % step == 0 else "dense"
            for i in range(out["num_layers"])),
    )
    return out


READERS = {"qwen2": read_qwen2, "qwen3": read_qwen3, "qwen3_moe": read_qwen3_moe}
