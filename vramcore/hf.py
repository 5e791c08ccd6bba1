"""Read Hugging Face ``config.json`` files into :class:`~vramcore.ModelSpec`.

Only reads metadata; never touches the network or tensor data.  Each supported
``model_type`` maps its config keys onto the spec's fields following the
corresponding ``configuration_<type>.py`` / ``modeling_<type>.py`` of
transformers 5.x (defaults included, e.g. Gemma ties embeddings by default).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from os import PathLike, fspath
from pathlib import Path
from typing import Any

from vramcore.specs import ModelSpec

__all__ = ["SUPPORTED_MODEL_TYPES", "load_hf_config", "spec_from_hf_config"]


def load_hf_config(source: Mapping[str, Any] | str | PathLike[str]) -> dict[str, Any]:
    """Return the config dict of `source` (a dict, a ``config.json`` path, or a folder holding one).

    Raises
    ------
    TypeError
        `source` is neither a mapping nor a path.
    ValueError
        The file is missing or is not a JSON object.
    """
    if isinstance(source, Mapping):
        return dict(source)
    if not isinstance(source, (str, PathLike)):
        raise TypeError(f"config must be a dict, a path to config.json or a folder, got "
                        f"{type(source).__name__}")
    path = Path(fspath(source))
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ValueError(f"config: no such file {str(path)!r}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"config: cannot read {str(path)!r} as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config: {str(path)!r} does not hold a JSON object")
    return data


class _Reader:
    """Typed access to a config dict with errors that name the missing key."""

    def __init__(self, cfg: Mapping[str, Any], model_type: str) -> None:
        self.cfg = cfg
        self.model_type = model_type

    def int(self, key: str, default: Any = ...) -> Any:
        value = self.cfg.get(key, None)
        if value is None:
            if default is ...:
                raise ValueError(f"config of model_type {self.model_type!r} is missing field {key!r}")
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ValueError(f"config field {key!r} must be an integer, got {value!r}")
        return int(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.cfg.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ValueError(f"config field {key!r} must be true/false, got {value!r}")
        return value


def _common(r: _Reader, *, tie_default: bool) -> dict[str, Any]:
    heads = r.int("num_attention_heads")
    return {
        "num_layers": r.int("num_hidden_layers"),
        "hidden_size": r.int("hidden_size"),
        "num_heads": heads,
        "num_kv_heads": r.int("num_key_value_heads", heads),
        "head_dim": r.int("head_dim", None),
        "intermediate_size": r.int("intermediate_size"),
        "vocab_size": r.int("vocab_size"),
        "max_context": r.int("max_position_embeddings", None),
        "tie_embeddings": r.bool("tie_word_embeddings", tie_default),
    }


def _layer_types(r: _Reader, n_layers: int) -> tuple[str, ...] | None:
    types = r.cfg.get("layer_types")
    if types is None:
        return None
    if not isinstance(types, list) or len(types) != n_layers:
        raise ValueError(f"config field 'layer_types' must be a list of {n_layers} entries, got {types!r}")
    return tuple(types)


def _llama(r: _Reader) -> dict[str, Any]:
    # LlamaAttention: attention_bias puts a bias on q, k, v and o; LlamaMLP: mlp_bias on all three.
    out = _common(r, tie_default=False)
    bias = r.bool("attention_bias", False)
    out.update(qkv_bias=bias, o_bias=bias, mlp_bias=r.bool("mlp_bias", False))
    return out


def _mistral(r: _Reader) -> dict[str, Any]:
    # A window with no layer_types makes every layer sliding (transformers' cache rule).
    out = _common(r, tie_default=False)
    out["sliding_window"] = r.int("sliding_window", None)
    out["layer_types"] = _layer_types(r, out["num_layers"])
    return out


def _qwen_sliding(r: _Reader, out: dict[str, Any]) -> None:
    # Qwen2/Qwen3: layers at index >= max_window_layers slide when use_sliding_window is true.
    layer_types = _layer_types(r, out["num_layers"])
    if layer_types is None:
        if r.bool("use_sliding_window", False):
            window = r.int("sliding_window")
            start = r.int("max_window_layers", out["num_layers"])
            layer_types = tuple("sliding_attention" if i >= start else "full_attention"
                                for i in range(out["num_layers"]))
            out["sliding_window"] = window
        else:
            layer_types = ("full_attention",) * out["num_layers"]
    if "sliding_attention" in layer_types:
        out["sliding_window"] = r.int("sliding_window")
    out["layer_types"] = layer_types


def _qwen2(r: _Reader) -> dict[str, Any]:
    out = _common(r, tie_default=False)
    out.update(qkv_bias=True)
    _qwen_sliding(r, out)
    return out


def _qwen3(r: _Reader) -> dict[str, Any]:
    out = _common(r, tie_default=False)
    bias = r.bool("attention_bias", False)
    out.update(qkv_bias=bias, o_bias=bias, qk_norm=True)
    _qwen_sliding(r, out)
    return out


def _qwen3_moe(r: _Reader) -> dict[str, Any]:
    out = _qwen3(r)
    n = out["num_layers"]
    experts = r.int("num_experts")
    step = r.int("decoder_sparse_step", 1)
    dense_only = set(r.cfg.get("mlp_only_layers") or ())
    out.update(
        num_experts=experts,
        experts_per_token=r.int("num_experts_per_tok"),
        moe_intermediate_size=r.int("moe_intermediate_size"),
        mlp_layer_types=tuple(
            "moe" if experts > 0 and i not in dense_only and (i + 1) % step == 0 else "dense"
            for i in range(n)),
    )
    return out


def _mixtral(r: _Reader) -> dict[str, Any]:
    out = _mistral(r)
    out.update(num_experts=r.int("num_local_experts"), experts_per_token=r.int("num_experts_per_tok"),
               moe_intermediate_size=out["intermediate_size"])
    return out


def _gemma2(r: _Reader) -> dict[str, Any]:
    # Gemma-2: four norms per layer, tied embeddings, even-indexed layers slide.
    out = _common(r, tie_default=True)
    bias = r.bool("attention_bias", False)
    out.update(qkv_bias=bias, o_bias=bias, norms_per_layer=4)
    layer_types = _layer_types(r, out["num_layers"])
    if layer_types is None:
        layer_types = tuple("sliding_attention" if (i + 1) % 2 else "full_attention"
                            for i in range(out["num_layers"]))
    out["layer_types"] = layer_types
    if "sliding_attention" in layer_types:
        out["sliding_window"] = r.int("sliding_window")
    return out


def _gemma3(r: _Reader) -> dict[str, Any]:
    # Gemma-3: as Gemma-2 plus q/k norms; every `sliding_window_pattern`-th layer is global.
    out = _common(r, tie_default=True)
    bias = r.bool("attention_bias", False)
    out.update(qkv_bias=bias, o_bias=bias, norms_per_layer=4, qk_norm=True)
    layer_types = _layer_types(r, out["num_layers"])
    if layer_types is None:
        pattern = r.int("sliding_window_pattern", 6)
        layer_types = tuple("sliding_attention" if (i + 1) % pattern else "full_attention"
                            for i in range(out["num_layers"]))
    out["layer_types"] = layer_types
    if "sliding_attention" in layer_types:
        out["sliding_window"] = r.int("sliding_window")
    return out


def _phi3(r: _Reader) -> dict[str, Any]:
    # Fused qkv_proj and gate_up_proj hold the same parameters as the split layout.
    out = _mistral(r)
    return out


def _deepseek_v3(r: _Reader) -> dict[str, Any]:
    out = _common(r, tie_default=False)
    n = out["num_layers"]
    experts = r.int("n_routed_experts")
    first_dense = r.int("first_k_dense_replace", 0)
    freq = r.int("moe_layer_freq", 1)
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
                              for i in range(n)),
        # transformers keeps the router ("gate") weight in fp32 (see reference facts)
        router_fp32=True,
    )
    return out


def _gpt_oss(r: _Reader) -> dict[str, Any]:
    # gpt-oss: biases on q/k/v/o, router and experts; one sink logit per head; alternating layers.
    out = _common(r, tie_default=False)
    out.update(
        qkv_bias=r.bool("attention_bias", True),
        o_bias=r.bool("attention_bias", True),
        attention_sinks=True,
        num_experts=r.int("num_local_experts"),
        experts_per_token=r.int("num_experts_per_tok", None) or r.int("experts_per_token"),
        moe_intermediate_size=out["intermediate_size"],
        router_bias=True,
        expert_bias=True,
    )
    layer_types = _layer_types(r, out["num_layers"])
    if layer_types is None:
        layer_types = tuple("sliding_attention" if i % 2 == 0 else "full_attention"
                            for i in range(out["num_layers"]))
    out["layer_types"] = layer_types
    if "sliding_attention" in layer_types:
        out["sliding_window"] = r.int("sliding_window")
    return out


_READERS: dict[str, Callable[[_Reader], dict[str, Any]]] = {
    "llama": _llama,
    "mistral": _mistral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "qwen3_moe": _qwen3_moe,
    "mixtral": _mixtral,
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "gemma3_text": _gemma3,
    "phi3": _phi3,
    "deepseek_v3": _deepseek_v3,
    "gpt_oss": _gpt_oss,
}

# Config-class defaults for fields that real config.json files leave out
# (transformers/models/gemma3/configuration_gemma3.py, Gemma3TextConfig.__init__).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {
        "vocab_size": 262208, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
        "max_position_embeddings": 131072, "sliding_window": 4096, "sliding_window_pattern": 6,
    },
}

#: The ``model_type`` values :func:`spec_from_hf_config` reads.
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_READERS))


def spec_from_hf_config(source: Mapping[str, Any] | str | PathLike[str], *,
                        name: str | None = None) -> ModelSpec:
    """Build a :class:`~vramcore.ModelSpec` from a Hugging Face config.

    Multimodal configs with a ``text_config`` (Gemma-3 4B and up) describe the
    text decoder only; the vision tower is not part of the estimate.  A
    ``quantization_config`` (GPTQ, AWQ, bitsandbytes, fp8, compressed-tensors,
    ModelOpt, mxfp4) is recorded as ``spec.quantization``, the format the dtype
    ``"auto"`` resolves to.

    Parameters
    ----------
    source : dict, str or path-like
        The config, a ``config.json`` path or a folder holding one.
    name : str, optional
        Label for the spec.

    Returns
    -------
    ModelSpec

    Raises
    ------
    ValueError
        Unsupported ``model_type`` or a missing / malformed field.
    TypeError
        `source` is of another type.
    """
    cfg = load_hf_config(source)
    quantization = _quantization(cfg)
    model_type = cfg.get("model_type")
    text = cfg.get("text_config")
    if isinstance(text, Mapping):
        merged = dict(text)
        merged.setdefault("model_type", f"{model_type}_text" if model_type else None)
        if model_type == "gemma3":
            merged["model_type"] = "gemma3_text"
        cfg, model_type = merged, merged.get("model_type")
    if model_type is None:
        raise ValueError("config is missing field 'model_type'")
    defaults = _DEFAULTS.get(str(model_type))
    if defaults:
        cfg = {**defaults, **{k: v for k, v in cfg.items() if v is not None}}
    reader = _READERS.get(model_type)
    if reader is None:
        import difflib

        close = difflib.get_close_matches(str(model_type), SUPPORTED_MODEL_TYPES, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unsupported model_type {model_type!r}{hint} (supported: "
                         f"{', '.join(SUPPORTED_MODEL_TYPES)})")
    fields = reader(_Reader(cfg, model_type))
    if name is None:
        if isinstance(source, (str, PathLike)):
            p = Path(fspath(source))
            name = (p if p.is_dir() else p.parent).name or model_type
        else:
            name = cfg.get("_name_or_path") or model_type
    return ModelSpec(name=str(name), model_type=model_type, quantization=quantization, **fields)


def _quantization(cfg: Mapping[str, Any]) -> str | None:
    """Return the storage format the config's ``quantization_config`` names (top level or ``text_config``)."""
    qc = cfg.get("quantization_config")
    if qc is None and isinstance(cfg.get("text_config"), Mapping):
        qc = cfg["text_config"].get("quantization_config")
    if qc is None:
        return None
    if not isinstance(qc, Mapping):
        raise ValueError(f"config field 'quantization_config' must be an object, got {qc!r}")
    from vramcore.quant import format_from_quantization_config

    try:
        return format_from_quantization_config(qc)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config field 'quantization_config': {exc}") from None
