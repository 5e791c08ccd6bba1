"""Mistral, Mixtral and Phi-3 (``mistral``, ``mixtral``, ``phi3``)."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields, config_layer_types, rotary_dim


def read_mistral(r: Reader) -> Fields:
    """Fields of a ``mistral`` config: a window with no ``layer_types`` makes every layer slide."""
    out = common_fields(r, tie_default=False)
    out["sliding_window"] = r.int("sliding_window", None)
    out["layer_types"] = config_layer_types(r, out["num_layers"])
    return out


def read_mixtral(r: Reader) -> Fields:
    """Fields of a ``mixtral`` config: Mistral with ``num_local_experts`` experts of the dense width."""
    out = read_mistral(r)
    out.update(num_experts=r.int("num_local_experts"), experts_per_token=r.int("num_experts_per_tok"),
               moe_intermediate_size=out["intermediate_size"],
               # MixtralTopKRouter divides the top-k softmax weights by their sum (transformers 5 modeling_mixtral.py)
               moe_router="softmax_topk_norm")
    return out


def read_phi3(r: Reader) -> Fields:
    """Fields of a ``phi3`` config: Mistral's, with ``partial_rotary_factor`` (Phi-4-mini 0.75; default 1.0).

    Phi-3's fused qkv_proj and gate_up_proj hold the same parameters as the split layout; the factor changes
    no weight, only the rotary width (transformers ``Phi3Config``, ``Phi3RotaryEmbedding``).
    """
    out = read_mistral(r)
    out["rotary_dim"] = rotary_dim(r, out)
    return out


READERS = {"mistral": read_mistral, "mixtral": read_mixtral, "phi3": read_phi3}
