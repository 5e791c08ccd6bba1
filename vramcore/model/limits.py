"""Bounds on every count a model is described with, checked before anything loops over them.

A config or file header can say anything (``num_hidden_layers: 1e9``); these
bounds are far above any real model (the largest public configs of 2025-26 have
at most ~160 layers, 32k hidden, 128 heads, 512 experts, 256k vocabulary and
10M tokens of context) and keep every loop short and every byte count finite.
"""

from __future__ import annotations

import numbers

__all__ = ["LIMITS", "MAX_INT", "MAX_TENSOR_ELEMS", "check_count", "check_limit", "check_tensor"]

#: Largest integer any count may take before its own bound applies (byte counts stay exact doubles).
MAX_INT = 2**53

#: ModelSpec field -> largest accepted value.
LIMITS: dict[str, int] = {
    "num_layers": 2**12,
    "rotary_tables": 2**4,
    "hidden_size": 2**18,
    "num_heads": 2**14,
    "num_kv_heads": 2**14,
    "head_dim": 2**16,
    "intermediate_size": 2**20,
    "vocab_size": 2**24,
    "embedding_rows": 2**24 + 2**10,
    # vision tokens a cross-attention layer caches per sequence: 2**16 images (estimate's bound) x 1024 tiles x
    # a 2**14-patch tile at most
    "cross_attention_tokens": 2**40,
    # patches and embeddings of one sequence's images: 2**16 images x 2**24 patches (Qwen-VL's pixel bound)
    "image_patches": 2**40,
    "image_features": 2**40,
    "image_count": 2**16,
    "max_context": 2**32,
    "sliding_window": 2**32,
    "q_lora_rank": 2**16,
    "kv_lora_rank": 2**16,
    "qk_rope_head_dim": 2**16,
    "qk_nope_head_dim": 2**16,
    "v_head_dim": 2**16,
    "moe_intermediate_size": 2**20,
    "num_experts": 2**14,
    "experts_per_token": 2**14,
    "shared_expert_intermediate_size": 2**22,
    "first_dense_layers": 2**12,
    "norms_per_layer": 64,
    "index_n_heads": 2**14,
    "index_head_dim": 2**16,
    "index_topk": 2**32,
    # recurrent mixers (StateSpec): a convolution kernel (Mamba d_conv is 4 in every public model), the inner-width
    # factor of a Mamba mixer (2)
    "conv_kernel": 2**10,
    # tiles one image may take (VisionSpec.max_tiles)
    "max_tiles": 2**10,
    "mamba_expand": 2**6,
}

#: Hugging Face config key -> the ModelSpec field whose bound it takes.
CONFIG_KEYS: dict[str, str] = {
    "num_hidden_layers": "num_layers",
    "hidden_size": "hidden_size",
    "num_attention_heads": "num_heads",
    "num_key_value_heads": "num_kv_heads",
    "head_dim": "head_dim",
    "intermediate_size": "intermediate_size",
    "vocab_size": "vocab_size",
    "max_position_embeddings": "max_context",
    "sliding_window": "sliding_window",
    "q_lora_rank": "q_lora_rank",
    "kv_lora_rank": "kv_lora_rank",
    "qk_rope_head_dim": "qk_rope_head_dim",
    "qk_nope_head_dim": "qk_nope_head_dim",
    "v_head_dim": "v_head_dim",
    "moe_intermediate_size": "moe_intermediate_size",
    "num_experts": "num_experts",
    "num_local_experts": "num_experts",
    "n_routed_experts": "num_experts",
    "num_experts_per_tok": "experts_per_token",
    "experts_per_token": "experts_per_token",
    "n_shared_experts": "num_experts",
    "first_k_dense_replace": "first_dense_layers",
    "max_window_layers": "num_layers",
    "sliding_window_pattern": "num_layers",
    "decoder_sparse_step": "num_layers",
    "moe_layer_freq": "num_layers",
    "index_n_heads": "index_n_heads",
    "index_head_dim": "index_head_dim",
    "index_topk": "index_topk",
    "shared_expert_intermediate_size": "shared_expert_intermediate_size",
    "num_shared_experts": "num_experts",
    # Mamba2 mixers (bamba, granitemoehybrid): heads and groups bounded like attention heads, head and state widths
    # like head_dim; Granite's shared MLP like an MLP
    "mamba_n_heads": "num_heads",
    "mamba_n_groups": "num_heads",
    "mamba_d_head": "head_dim",
    "mamba_d_state": "head_dim",
    "mamba_d_conv": "conv_kernel",
    "mamba_expand": "mamba_expand",
    "shared_intermediate_size": "intermediate_size",
    # Llama-3.2-Vision (mllama): its tiles per image
    "max_num_tiles": "max_tiles",
    "mamba_d_ssm": "intermediate_size",  # Falcon-H1: the mixer's inner width
}


def check_count(owner: str, name: str, value: object, minimum: int = 1, maximum: int = 2**40) -> int:
    """Return `value` as an int when it is one in [minimum, maximum].

    Parameters
    ----------
    owner : str
        The class whose field it is, for the message (``"VisionSpec"``).
    name : str
        The field.
    value : object
        What the field was given.
    minimum, maximum : int
        The bounds, both included.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        `value` is not an integer (a bool neither).
    ValueError
        `value` is out of bounds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}.{name} must be an int, got {value!r} ({type(value).__name__})")
    if not minimum <= int(value) <= maximum:
        raise ValueError(f"{owner}.{name} must be in [{minimum}, {maximum if maximum != 2**40 else '2**40'}], "
                         f"got {value!r}")
    return int(value)


def check_limit(field: str, value: int, where: str) -> None:
    """Raise ValueError when `value` exceeds the bound of `field`; `where` names the field in the message.

    Examples
    --------
    >>> check_limit("num_layers", 32, "ModelSpec.num_layers")
    >>> check_limit("num_layers", 10**9, "config field 'num_hidden_layers'")
    Traceback (most recent call last):
    ...
    ValueError: config field 'num_hidden_layers' must be <= 4096, got 1000000000
    """
    bound = LIMITS.get(field, MAX_INT)
    if value > bound:
        raise ValueError(f"{where} must be <= {bound}, got {value}")


#: Most elements one tensor of a vision tower or recurrent mixer may hold (far above any real tensor's ~2**30).
MAX_TENSOR_ELEMS = 2**40


def check_tensor(where: str, name: object, shape: object, role: object, roles: tuple[str, ...]) -> tuple[int, ...]:
    """Check one hand-written tensor (a name, a shape of 1-5 positive ints, a known role); return the shape.

    Raises
    ------
    TypeError
        `name` or `role` is not a str, or `shape` not a sequence of ints.
    ValueError
        An empty shape or one of more than 5 dims (a Conv3d weight has 5), a dim below 1, more than
        :data:`MAX_TENSOR_ELEMS` elements, or a role outside `roles`.

    Examples
    --------
    >>> check_tensor("VisionTensor", "v.blk.0.attn_q.weight", [8, 8], "linear", ("linear",))
    (8, 8)
    >>> check_tensor("VisionTensor", "w", (0, 8), "linear", ("linear",))
    Traceback (most recent call last):
    ...
    ValueError: VisionTensor 'w': shape dims must be >= 1, got (0, 8)
    """
    if not isinstance(name, str):
        raise TypeError(f"{where}.name must be a str, got {name!r}")
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"{where} {name!r}: shape must be a tuple of ints, got {shape!r}")
    dims = tuple(shape)
    if any(isinstance(d, bool) or not isinstance(d, int) for d in dims):
        raise TypeError(f"{where} {name!r}: shape must be a tuple of ints, got {shape!r}")
    if not 1 <= len(dims) <= 5:
        raise ValueError(f"{where} {name!r}: shape must have 1 to 5 dims, got {dims!r}")
    if min(dims) < 1:
        raise ValueError(f"{where} {name!r}: shape dims must be >= 1, got {dims!r}")
    elems = 1
    for d in dims:
        elems *= min(d, MAX_TENSOR_ELEMS + 1)  # capped so that a huge dim cannot build a huge int
        if elems > MAX_TENSOR_ELEMS:
            raise ValueError(f"{where} {name!r}: shape {dims!r} holds more than {MAX_TENSOR_ELEMS} elements")
    if role not in roles:
        raise ValueError(f"{where} {name!r}: role must be one of {roles}, got {role!r}")
    return dims
