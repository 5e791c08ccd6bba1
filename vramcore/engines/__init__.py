"""Engines: the allocation rules of the program that runs the model, one module per engine.

Each module of this package (``transformers.py``, ``vllm.py``, ``sglang.py``,
``trtllm.py``, ``llamacpp.py``) defines ``ENGINE``, an
:class:`~vramcore.EngineSpec` whose fields are the engine's knobs and
defaults with their sources, and ``ALIASES``, its other spellings; its
formulas are one header, ``include/vramcore/engines/<kind>.h``.  The shared
machinery (:class:`EngineSpec`, knob aliases, validation) is
:mod:`vramcore.engines.base`; this registry lists the engine modules in the
order of their kind codes (:data:`ENGINE_KINDS`).
"""

from __future__ import annotations

import importlib
from functools import cache

from vramcore._names import lookup, normalize_name
from vramcore.engines.base import ENGINE_KINDS, EngineSpec

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    from vramcore.model.spec import ModelSpec

__all__ = ["ENGINE_KINDS", "EngineSpec", "get_engine", "list_engines", "loads_format", "needs_fp8_hardware",
           "rope_cache_fp32"]


def loads_format(engine: EngineSpec, family: str) -> bool:
    """Return True when `engine` loads weights of the storage `family` as stored (its module's ``LOADS``).

    Examples
    --------
    >>> loads_format(get_engine("llamacpp"), "gptq"), loads_format(get_engine("vllm"), "gguf")
    (False, True)
    """
    return family in importlib.import_module(f"{__name__}.{engine.kind}").LOADS


def needs_fp8_hardware(engine: EngineSpec) -> bool:
    """Return True when `engine` runs FP8 weights or KV caches only on GPUs with hardware FP8.

    Examples
    --------
    >>> needs_fp8_hardware(get_engine("transformers")), needs_fp8_hardware(get_engine("vllm"))
    (True, False)
    """
    return bool(importlib.import_module(f"{__name__}.{engine.kind}").NEEDS_FP8_HARDWARE)


def rope_cache_fp32(engine: EngineSpec, spec: ModelSpec) -> bool:
    """Return True when `engine` keeps a rotary cos/sin cache for `spec` and builds it in fp32.

    The cache (:attr:`EngineSpec.rope_cache`) is in the compute dtype unless the
    engine's implementation of the model asks for fp32: the model types in its
    module's ``ROPE_CACHE_FP32`` (vLLM: gpt-oss).

    Examples
    --------
    >>> from vramcore import get_model
    >>> spec = get_model("gpt-oss-20b").spec
    >>> rope_cache_fp32(get_engine("vllm"), spec), rope_cache_fp32(get_engine("sglang"), spec)
    (True, False)
    """
    if not engine.rope_cache:
        return False
    module = importlib.import_module(f"{__name__}.{engine.kind}")
    return spec.model_type in getattr(module, "ROPE_CACHE_FP32", frozenset())


@cache
def _engines() -> tuple[EngineSpec, ...]:
    """Return the built-in engines, one per module named after its kind, in kind-code order."""
    return tuple(importlib.import_module(f"{__name__}.{kind}").ENGINE for kind in ENGINE_KINDS)


@cache
def _table() -> dict[str, EngineSpec]:
    table: dict[str, EngineSpec] = {}
    for kind, engine in zip(ENGINE_KINDS, _engines(), strict=True):
        module = importlib.import_module(f"{__name__}.{kind}")
        for key in (engine.name, *module.ALIASES):
            table[normalize_name(key)] = engine
        for key, variant in getattr(module, "VARIANTS", {}).items():
            table[normalize_name(key)] = variant
    return table


def get_engine(name: str | EngineSpec, **knobs: Any) -> EngineSpec:
    """Return the engine called `name`, with optional knob overrides.

    Parameters
    ----------
    name : str or EngineSpec
        ``"transformers"``, ``"vllm"``, ``"sglang"``, ``"trtllm"``,
        ``"llamacpp"`` (aliases: ``"hf"``, ``"llama.cpp"``, ``"tensorrt-llm"``),
        or a training step: ``"train"`` (full fine-tuning), ``"lora"``,
        ``"qlora"``; an EngineSpec passes through.
    **knobs
        Overrides, by field or engine knob name (see :meth:`EngineSpec.with_options`).

    Returns
    -------
    EngineSpec

    Raises
    ------
    ValueError
        Unknown engine or knob (close matches listed), or a knob out of range.
    TypeError
        `name` is not a str.

    Examples
    --------
    >>> get_engine("transformers").sliding_cap_offset
    -1
    >>> get_engine("vllm", gpu_memory_utilization=0.8, block_size=32).block_size
    32
    """
    if isinstance(name, EngineSpec):
        spec = name
    elif isinstance(name, str) and normalize_name(name) in ENGINE_KINDS:
        # an engine by its own kind name loads that engine's module alone (the command line's common case)
        spec = importlib.import_module(f"{__name__}.{normalize_name(name)}").ENGINE
    else:
        spec = lookup(name, _table(), what="engine", argname="engine")
    return spec.with_options(**knobs) if knobs else spec


def list_engines() -> list[str]:
    """Names of the engines vramcore models.

    Examples
    --------
    >>> list_engines()
    ['transformers', 'vllm', 'sglang', 'trtllm', 'llamacpp', 'train', 'lora', 'qlora']
    """
    names = []
    for kind, engine in zip(ENGINE_KINDS, _engines(), strict=True):
        names.append(engine.name)
        names.extend(v.name for v in getattr(importlib.import_module(f"{__name__}.{kind}"), "VARIANTS", {}).values())
    return names
