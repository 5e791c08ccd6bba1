"""SmolLM3 (``smollm3``): a Llama layout whose every fourth layer has no rotary embedding (NoPE)."""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, common_fields, config_layer_types


def _no_rope_layers(r: Reader, n: int) -> list[int]:
    # SmolLM3Config.__post_init__: a 1 marks a RoPE layer, a 0 a NoPE layer; without the list, every
    # no_rope_layer_interval-th layer (default 4) is NoPE
    value = r.cfg.get("no_rope_layers")
    if value is None:
        interval = r.int("no_rope_layer_interval", 4, minimum=1)
        return [int((i + 1) % interval != 0) for i in range(n)]
    if (not isinstance(value, list) or len(value) < n
            or not all(isinstance(v, int) and not isinstance(v, bool) and v in (0, 1) for v in value)):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise ValueError(f"config field 'no_rope_layers' must be a list of at least {n} entries 0 or 1, "
                         f"got {shown}")
    return value


def read_smollm3(r: Reader) -> Fields:
    """Fields of a ``smollm3`` config (SmolLM3-3B).

    Follows transformers 5.x ``modeling_smollm3.py``: ``attention_bias`` on
    q, k, v and o, ``mlp_bias`` on the MLP, embeddings tied by default
    (``SmolLM3Config.tie_word_embeddings = True``).  A NoPE layer only skips
    the rotary embedding: its weights and its cache are those of any other
    layer.  ``layer_types`` is the config's, or built as ``SmolLM3Config``
    builds it: a layer slides when ``use_sliding_window`` and
    ``sliding_window`` are set and it is a NoPE layer.
    """
    out = common_fields(r, tie_default=True)
    bias = r.bool("attention_bias", False)
    out.update(qkv_bias=bias, o_bias=bias, mlp_bias=r.bool("mlp_bias", False))
    n = out["num_layers"]
    no_rope = _no_rope_layers(r, n)
    types = config_layer_types(r, n)
    if types is None:
        window = r.int("sliding_window", None, minimum=1)
        slides = r.bool("use_sliding_window", False) and window is not None
        types = tuple("sliding_attention" if slides and not no_rope[i] else "full_attention" for i in range(n))
    out["layer_types"] = types
    if "sliding_attention" in types:
        out["sliding_window"] = r.int("sliding_window", minimum=1)
    return out


READERS = {"smollm3": read_smollm3}
