"""KV-cache element types, spelled as each engine spells them, with their exact bits per element.

==============  =====================================  ==============================================
engine          knob                                   types (bits per element)
==============  =====================================  ==============================================
llama.cpp       ``cache_type_k`` / ``cache_type_v``    f32 (32), f16 / bf16 (16), q8_0 (8.5), q5_1 (6),
                (``-ctk`` / ``-ctv``), K and V apart   q5_0 (5.5), q4_1 (5), q4_0 / iq4_nl (4.5)
vLLM            ``kv_cache_dtype``                     auto, bfloat16 / float16 (16), fp8 / fp8_e4m3 /
                                                       fp8_e5m2 (8; one fp32 scale per layer)
SGLang          ``kv_cache_dtype``                     auto, bf16 (16), fp8_e4m3 / fp8_e5m2 (8)
TensorRT-LLM    ``kv_cache_dtype``                     auto, fp8 (8), int8 (8), nvfp4 (4.5: 4-bit E2M1
                                                       + one E4M3 scale per 16)
transformers    ``kv_dtype`` of the sweep              any plain dtype
==============  =====================================  ==============================================

Every engine also takes vramcore's plain dtype names (``bf16``, ``fp8``, ``int4`` ...).

Sources: llama.cpp ``common/arg.cpp`` (``kv_cache_types``) and ggml's block sizes
(``ggml/src/ggml-common.h``: a q8_0 block is 32 values in 34 bytes, q4_0 18, q4_1 20,
q5_0 22, q5_1 24, iq4_nl 18); vLLM ``vllm/config/cache.py`` (``CacheDType``);
SGLang ``server_args.py`` (``--kv-cache-dtype`` choices); TensorRT-LLM
``llmapi`` ``KvCacheConfig.dtype`` and its NVFP4 KV cache (16-value blocks with an
FP8 scale).  Per-layer scalar scales (vLLM's ``k_scale`` / ``v_scale``) are a few
bytes per layer and are not counted.
"""

from __future__ import annotations

from functools import cache

from vramcore._names import normalize_name
from vramcore.storage.resolve import get_dtype, list_dtypes

__all__ = ["ENGINE_KV_TYPES", "kv_bits"]


def _ggml(name: str) -> float:
    from vramcore.storage.ggml import GGML_TYPES  # llama.cpp's cache types only

    t = GGML_TYPES[name]
    return t.type_size * 8 / t.block_size


TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    #: engine kind -> {type name as the engine spells it: bits per element}; "auto" is absent (the model's dtype).
    ENGINE_KV_TYPES: dict[str, dict[str, float]]


@cache
def _engine_kv_types() -> dict[str, dict[str, float]]:
    """Make :data:`ENGINE_KV_TYPES` on first use (llama.cpp's entries read the GGML block types)."""
    return {
        "llamacpp": {name.lower(): _ggml(name) for name in ("F32", "F16", "BF16", "Q8_0", "Q5_1", "Q5_0", "Q4_1",
                                                            "Q4_0", "IQ4_NL")},
        "vllm": {"bfloat16": 16.0, "float16": 16.0, "fp8": 8.0, "fp8_e4m3": 8.0, "fp8_e5m2": 8.0},
        "sglang": {"bf16": 16.0, "bfloat16": 16.0, "fp8_e4m3": 8.0, "fp8_e5m2": 8.0},
        "trtllm": {"fp8": 8.0, "int8": 8.0, "nvfp4": 4.5},
        "transformers": {},  # the plain dtypes below, by vramcore's names
        "train": {},  # no KV cache in a training step: the setting is accepted and has no effect
    }


def __getattr__(name: str) -> dict[str, dict[str, float]]:
    if name == "ENGINE_KV_TYPES":
        return _engine_kv_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def kv_bits(engine_kind: str, name: str, argname: str = "kv_cache_dtype") -> float:
    """Return the bits per cached element of the KV type `name` under an engine of `engine_kind`.

    Parameters
    ----------
    engine_kind : str
        ``"llamacpp"``, ``"vllm"``, ``"sglang"``, ``"trtllm"`` or ``"transformers"``.
    name : str
        The type as the engine spells it (case-insensitive): ``"q8_0"``, ``"fp8_e5m2"``, ``"nvfp4"`` ...
    argname : str
        The knob named in errors.

    Returns
    -------
    float
        Bits per element, block scales included (q8_0: 8.5).

    Raises
    ------
    ValueError
        A type the engine does not offer (the message lists the ones it does).

    Examples
    --------
    >>> kv_bits("llamacpp", "q4_0"), kv_bits("trtllm", "NVFP4")
    (4.5, 4.5)
    """
    table = _engine_kv_types()[engine_kind]
    if not isinstance(name, str):
        raise TypeError(f"{argname} must be a KV-cache type name, got {name!r}")
    normalized = {normalize_name(k): v for k, v in table.items()}
    if normalize_name(name) in normalized:
        return normalized[normalize_name(name)]
    try:  # a plain element type by vramcore's own names (bf16, fp8, int4 ...)
        return float(get_dtype(name, argname=argname, allow_formats=False).bits)
    except ValueError:
        offers = f"{', '.join(table)} or a plain dtype" if table else "the plain dtypes"
        raise ValueError(f"{argname}={name!r} is not a KV-cache type of {engine_kind}; it offers "
                         f"{offers} ({', '.join(list_dtypes())})") from None
