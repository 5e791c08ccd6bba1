"""Granite-4.0-H (``granitemoehybrid``): Mamba2 and attention layers over an MoE with a shared MLP, or a dense MLP."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields
from vramcore.model.hf.bamba import mamba2_mixer

__all__ = ["read_granitemoehybrid"]

#: ``layer_types`` spellings (the legacy ones of the published files, and transformers 5's) -> vramcore's kinds
_LAYER_KINDS = {"mamba": "mamba", "linear_attention": "mamba", "attention": "full_attention",
                "full_attention": "full_attention"}


def _layer_types(r: Reader, n: int) -> tuple[str, ...]:
    """Return the mixer kind of every layer from ``layer_types`` (or its alias ``layers_block_type``)."""
    key = "layer_types" if r.cfg.get("layer_types") is not None else "layers_block_type"
    listed = r.cfg.get(key)
    if listed is None:  # GraniteMoeHybridConfig: every layer Mamba2
        return ("mamba",) * n
    if not isinstance(listed, list) or len(listed) != n:
        raise ValueError(f"config field {key!r} must be a list of {n} entries (num_hidden_layers), got "
                         f"{str(listed)[:80]}")
    unknown = sorted({str(k)[:40] for k in listed if not isinstance(k, str) or k not in _LAYER_KINDS})
    if unknown:
        raise ValueError(f"config field {key!r} of a granitemoehybrid model may hold 'mamba' and 'attention' layers "
                         f"(or 'linear_attention' / 'full_attention'), got {unknown}")
    return tuple(_LAYER_KINDS[k] for k in listed)


def read_granitemoehybrid(r: Reader) -> Fields:
    """Fields of a ``granitemoehybrid`` config (transformers ``configuration_granitemoehybrid.py`` / ``modeling_*``).

    ``layer_types`` (alias ``layers_block_type``; none: every layer Mamba2)
    marks each layer ``"mamba"`` (a Mamba2 mixer, :func:`~vramcore.model.hf.bamba.mamba2_mixer`)
    or ``"attention"`` (q/k/v/o, biases when ``attention_bias``).  Every
    layer has ``shared_mlp``, a gated MLP of ``shared_intermediate_size``
    (``input_linear`` fuses gate and up), and, when ``num_local_experts`` > 0,
    a bias-free router and that many experts of ``intermediate_size`` with
    ``num_experts_per_tok`` active: the shared MLP is then the shared expert,
    else it is the dense MLP.  ``position_embedding_type`` (RoPE or none),
    ``embedding_multiplier``, ``residual_multiplier``, ``attention_multiplier``
    and ``logits_scaling`` build no parameter.  Embeddings are untied unless
    the file says so (the published Granite-4.0 files do).
    """
    out = common_fields(r, tie_default=False)
    n = out["num_layers"]
    types = _layer_types(r, n)
    bias = r.bool("attention_bias", False)
    experts = r.int("num_local_experts")
    shared = r.int("shared_intermediate_size")
    # GraniteMoeHybridModel builds its rotary embedding only for position_embedding_type "rope" (default None)
    out.update(layer_types=types, qkv_bias=bias, o_bias=bias, rope=r.cfg.get("position_embedding_type") == "rope",
               layer_positions=False)  # GraniteMoeHybridModel passes its layers no position_ids
    if experts:
        # GraniteMoeHybridTopKRouter: the top-k of the fp32 logits, then a softmax over the k
        out.update(num_experts=experts, experts_per_token=r.int("num_experts_per_tok"),
                   moe_intermediate_size=out["intermediate_size"], shared_expert_intermediate_size=shared,
                   moe_router="topk_softmax")
    elif shared < 1:
        raise ValueError("config of model_type 'granitemoehybrid' with num_local_experts 0 needs a "
                         "shared_intermediate_size >= 1: its shared MLP is the whole MLP, got 0")
    else:
        out["intermediate_size"] = shared  # no experts: the shared MLP is the dense MLP
    if "mamba" in types:
        out["recurrent"] = mamba2_mixer(r, out["hidden_size"])
    return out


READERS = {"granitemoehybrid": read_granitemoehybrid}

# GraniteMoeHybridConfig defaults for fields real files may leave out (transformers configuration_granitemoehybrid.py)
DEFAULTS = {
    "granitemoehybrid": {
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "max_position_embeddings": 2048, "num_local_experts": 8,
        "num_experts_per_tok": 2, "shared_intermediate_size": 1024, "mamba_n_heads": 128, "mamba_n_groups": 1,
        "mamba_d_state": 256, "mamba_d_head": "auto", "mamba_d_conv": 4, "mamba_expand": 2,
    },
}
