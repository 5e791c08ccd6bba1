"""The reader of last resort: a config of a ``model_type`` no family module reads, read as a Llama-like decoder.

Many new families are a Llama decoder with other names on the box.  Their
configs spell the geometry with the standard keys (``num_hidden_layers``,
``hidden_size``, ``num_attention_heads``, ``num_key_value_heads``,
``head_dim``, ``intermediate_size``, ``vocab_size``,
``tie_word_embeddings``, the MoE counts and a per-layer ``layer_types``
list), so an estimate is possible: :func:`read_unknown` reads them in
``LlamaForCausalLM``'s layout and says so in an
:class:`~vramcore.UnknownModelWarning` that names the model type and every
assumption made.  What the layout cannot hold is refused, not guessed: a
config missing a needed field (one ``ValueError`` naming every missing
field), or ``layer_types`` with kinds a :class:`~vramcore.ModelSpec` does
not represent yet (linear attention, Mamba, convolution, chunked
attention ...).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence

from vramcore._errors import UnknownModelWarning
from vramcore.model.hf._reader import Fields, Reader, config_layer_types

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["REPRESENTABLE_LAYER_KINDS", "read_unknown"]

#: ``layer_types`` entries a ModelSpec holds today; every other kind is refused by name.
REPRESENTABLE_LAYER_KINDS: tuple[str, ...] = ("full_attention", "sliding_attention")

# the spellings of the same count across families (Mixtral, Qwen-MoE, DeepSeek)
_EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts")
_TOP_K = ("num_experts_per_tok", "experts_per_token")
_SHARED = ("n_shared_experts", "num_shared_experts")
_QK_NORM = ("use_qk_norm", "qk_norm", "qk_layernorm")
_MLA_DIMS = ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")


def _given(cfg: Any, key: str) -> bool:
    return cfg.get(key) is not None


def _first(cfg: Any, keys: Sequence[str]) -> str | None:
    return next((k for k in keys if _given(cfg, k)), None)


def _check_layer_kinds(r: Reader) -> None:
    """Refuse ``layer_types`` entries a ModelSpec cannot hold, naming every such kind and its layer count."""
    types = r.cfg.get("layer_types")
    if not isinstance(types, list):
        return  # absent, or malformed: config_layer_types names the problem once the layer count is known
    counts: dict[str, int] = {}
    for kind in types:
        if isinstance(kind, str) and kind not in REPRESENTABLE_LAYER_KINDS:
            counts[kind] = counts.get(kind, 0) + 1
    if counts:
        listed = ", ".join(f"{k!r} ({n} layer{'s' if n > 1 else ''})" for k, n in counts.items())
        raise ValueError(f"config of model_type {r.model_type!r}: layer_types has layer kinds vramcore cannot "
                         f"estimate yet: {listed}; a ModelSpec holds {' and '.join(REPRESENTABLE_LAYER_KINDS)} "
                         "layers")


def _missing(r: Reader) -> list[str]:
    """Return the names of the fields the estimate needs and the config lacks, in reading order."""
    cfg = r.cfg
    missing = [k for k in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")
               if not _given(cfg, k)]
    experts_key = _first(cfg, _EXPERTS)
    moe = experts_key is not None and cfg.get(experts_key) not in (0, False)
    every_layer_moe = moe and not any(_given(cfg, k) for k in ("first_k_dense_replace", "mlp_only_layers",
                                                                "decoder_sparse_step", "moe_layer_freq",
                                                                "mlp_layer_types"))
    if not _given(cfg, "intermediate_size") and not (every_layer_moe and _given(cfg, "moe_intermediate_size")):
        missing.append("intermediate_size")
    if moe and _first(cfg, _TOP_K) is None:
        missing.append("num_experts_per_tok")
    if _given(cfg, "kv_lora_rank"):
        missing += [k for k in _MLA_DIMS if not _given(cfg, k)]
    elif not _given(cfg, "head_dim") and not missing:
        hidden, heads = cfg.get("hidden_size"), cfg.get("num_attention_heads")
        if isinstance(hidden, int) and isinstance(heads, int) and heads > 0 and hidden % heads:
            missing.append("head_dim")
    types = cfg.get("layer_types")
    if isinstance(types, list) and "sliding_attention" in types and not _given(cfg, "sliding_window"):
        missing.append("sliding_window")
    return missing


def _mlp_kinds(r: Reader, n: int, experts: int, said: list[str]) -> tuple[str, ...]:
    """Return the MLP kind of every layer and add the rule used to `said`."""
    if not experts:
        said.append("a dense MLP on every layer (no expert count)")
        return ("dense",) * n
    listed = r.cfg.get("mlp_layer_types")
    if listed is not None:
        if not isinstance(listed, list) or len(listed) != n or not all(k in ("dense", "sparse", "moe")
                                                                       for k in listed):
            raise ValueError(f"config field 'mlp_layer_types' must be a list of {n} entries 'dense', 'sparse' or "
                             f"'moe', got {str(listed)[:80]}")
        said.append("mlp_layer_types as given ('sparse' = MoE)")
        return tuple("dense" if k == "dense" else "moe" for k in listed)
    first = r.int("first_k_dense_replace", 0)
    step = r.int("decoder_sparse_step", 1, minimum=1)
    freq = r.int("moe_layer_freq", 1, minimum=1)
    dense_only = r.int_set("mlp_only_layers")
    rules = [f"{k}={str(r.cfg[k])[:40]}" for k in ("first_k_dense_replace", "decoder_sparse_step", "moe_layer_freq",
                                         "mlp_only_layers") if _given(r.cfg, k)]
    said.append("MoE on every layer" + (f" but where {', '.join(rules)} make it dense" if rules else "")
                + " (DeepSeek's first_k_dense_replace / moe_layer_freq and Qwen's decoder_sparse_step / "
                "mlp_only_layers rules)")
    return tuple("moe" if i >= first and (i + 1) % step == 0 and i % freq == 0 and i not in dense_only
                 else "dense" for i in range(n))


def read_unknown(r: Reader, supported: Sequence[str] = ()) -> Fields:
    """Return the ModelSpec fields of a config no family module reads, warning with every assumption made.

    Parameters
    ----------
    r : Reader
        The config (``r.model_type`` is the unknown model type).
    supported : sequence of str
        The model types the family modules read (for a "did you mean" hint).

    Returns
    -------
    dict
        ModelSpec keyword arguments.

    Raises
    ------
    ValueError
        Fields the estimate needs are missing (all of them named), a field is
        malformed, or ``layer_types`` has kinds a ModelSpec cannot hold.

    Warns
    -----
    UnknownModelWarning
        Always: the model type and the Llama-like layout assumed.

    Examples
    --------
    >>> import warnings
    >>> from vramcore.model.hf._reader import Reader
    >>> cfg = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
    ...        "intermediate_size": 128, "vocab_size": 100}
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     fields = read_unknown(Reader(cfg, "toy"))
    >>> fields["num_kv_heads"], "'toy'" in str(caught[0].message)
    (4, True)
    """
    _check_layer_kinds(r)
    missing = _missing(r)
    if missing:
        raise ValueError(f"config of model_type {r.model_type!r} (no family module reads it) is missing "
                         f"{', '.join(map(repr, missing))}: an estimate of a Llama-like decoder needs "
                         f"{'it' if len(missing) == 1 else 'them'}")
    cfg = r.cfg
    said = ["per layer q/k/v/o projections, a gated MLP of 3 projections (gate, up, down) and 2 RMSNorms of "
            "hidden_size, and a final norm (LlamaForCausalLM's layout)"]
    heads = r.int("num_attention_heads")
    out: Fields = {
        "num_layers": r.int("num_hidden_layers"),
        "hidden_size": r.int("hidden_size"),
        "num_heads": heads,
        "vocab_size": r.int("vocab_size"),
        "max_context": r.int("max_position_embeddings", None),
    }
    n = out["num_layers"]
    if _given(cfg, "num_key_value_heads"):
        out["num_kv_heads"] = r.int("num_key_value_heads")
    else:
        out["num_kv_heads"] = heads
        said.append("num_key_value_heads = num_attention_heads (absent: multi-head attention)")
    if _given(cfg, "kv_lora_rank"):
        out.update(head_dim=None, q_lora_rank=r.int("q_lora_rank", None), kv_lora_rank=r.int("kv_lora_rank"),
                   **{k: r.int(k) for k in _MLA_DIMS})
        said.append("multi-head latent attention in DeepSeek-V3's layout (kv_lora_rank is set"
                    + ("" if out["q_lora_rank"] is not None else "; no q_lora_rank: a plain query projection")
                    + ")")
    elif _given(cfg, "head_dim"):
        out["head_dim"] = r.int("head_dim")
    else:
        out["head_dim"] = None
        said.append("head_dim = hidden_size / num_attention_heads (absent)")

    attention_bias = r.bool("attention_bias", False)
    mlp_bias = r.bool("mlp_bias", False)
    out.update(qkv_bias=attention_bias, o_bias=attention_bias, mlp_bias=mlp_bias)
    said.append("biases on q, k, v and o (attention_bias)" if attention_bias
                else "no attention biases (attention_bias " + ("false)" if "attention_bias" in cfg else "absent)"))
    said.append("biases on the dense MLP (mlp_bias)" if mlp_bias
                else "no MLP biases (mlp_bias " + ("false)" if "mlp_bias" in cfg else "absent)"))
    qk_key = next((k for k in _QK_NORM if cfg.get(k) is not None), None)
    out["qk_norm"] = r.bool(qk_key, False) if qk_key else False
    said.append(f"per-head q/k RMSNorms ({qk_key})" if out["qk_norm"] else "no q/k norms")
    if _given(cfg, "tie_word_embeddings"):
        out["tie_embeddings"] = r.bool("tie_word_embeddings", False)
        said.append("lm_head tied to the embedding (tie_word_embeddings)" if out["tie_embeddings"]
                    else "lm_head untied (tie_word_embeddings false)")
    else:
        out["tie_embeddings"] = False
        said.append("lm_head untied (tie_word_embeddings absent)")

    types = config_layer_types(r, n)
    if types is not None:
        out["layer_types"] = types
        if "sliding_attention" in types:
            out["sliding_window"] = r.int("sliding_window", minimum=1)
        said.append("attention kinds from layer_types")
    elif _given(cfg, "sliding_window") and r.bool("use_sliding_window", True):
        out["sliding_window"] = r.int("sliding_window", minimum=1)
        said.append("every layer sliding (sliding_window set, no layer_types: transformers' DynamicCache rule)")
    else:
        said.append("every layer full attention (no layer_types" + (", use_sliding_window false)"
                                                                    if _given(cfg, "sliding_window") else
                                                                    ", no sliding_window)"))

    experts_key = _first(cfg, _EXPERTS)
    experts = r.int(experts_key) if experts_key else 0
    kinds = _mlp_kinds(r, n, experts, said)
    width = 0
    if experts:
        width = r.int("moe_intermediate_size" if _given(cfg, "moe_intermediate_size") else "intermediate_size")
        top_k = _first(cfg, _TOP_K)
        assert top_k is not None
        shared_key = _first(cfg, _SHARED)
        if _given(cfg, "shared_expert_intermediate_size"):
            shared = r.int("shared_expert_intermediate_size")
        else:
            shared = r.int(shared_key, 0) * width if shared_key else 0
        out.update(num_experts=experts, experts_per_token=r.int(top_k), moe_intermediate_size=width,
                   shared_expert_intermediate_size=shared, mlp_layer_types=kinds)
        said.append(f"{experts} routed experts ({experts_key}) of "
                    + ("moe_intermediate_size" if _given(cfg, "moe_intermediate_size") else "intermediate_size")
                    + " width, each a gated MLP of 3 projections without biases; a router of num_experts x "
                    "hidden_size without bias, in the weight dtype; "
                    + (f"shared experts of total width {shared}, without a gate" if shared else "no shared experts"))
    # every layer MoE and no intermediate_size: the dense width is unused (ModelSpec wants one)
    out["intermediate_size"] = r.int("intermediate_size") if _given(cfg, "intermediate_size") else width

    close = difflib.get_close_matches(r.model_type, list(supported), n=3)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    warnings.warn(f"model_type {r.model_type!r} is not one vramcore reads{hint}; estimated as a Llama-like "
                  f"decoder, assuming: {'; '.join(said)}.  Parameters and KV cache are exact only for a model "
                  "built this way", UnknownModelWarning, stacklevel=4)
    return out
