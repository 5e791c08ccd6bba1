"""Arguments to specs: model, GPU, engine and parallel-layout resolution shared by every entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from os import PathLike

import vramcore.grid._kernel as _kernel
import vramcore.grid.pack as _pack
import vramcore.grid.validation as _validation
from vramcore.engines import EngineSpec, get_engine
from vramcore.hardware.gpus import GPUSpec, get_gpu
from vramcore.model.cards import ModelCard, get_model, is_model_name
from vramcore.model.spec import ModelSpec

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    import numpy as np

__all__ = ["Counts", "ModelLike", "check_parallelism", "label", "gpu_memory_bytes", "prepare_engines", "resolve_gpu",
           "resolve_model", "resolve_parallelism"]

ModelLike = str | ModelSpec | ModelCard | Mapping[str, object] | PathLike[str]
#: Contexts / batches: one count, a sequence of counts, or a 1-D array.
if TYPE_CHECKING:
    Counts = int | Sequence[int] | np.ndarray  # numpy loads lazily: the alias is for type checkers
else:  # annotations are strings: at run time the alias needs only to exist
    Counts = object


def resolve_model(model: Any, argname: str = "model") -> ModelSpec:
    """Turn a built-in name, a card, a spec, a config dict or a config path into a :class:`ModelSpec`.

    Also accepted: a ``.gguf`` file path (read with :func:`vramcore.read_gguf`),
    any object with a ``spec`` attribute holding a ModelSpec (a
    :class:`vramcore.GGUFModel`, a :class:`vramcore.SafetensorsCheckpoint`), and a
    Hugging Face id ``"org/name"`` or ``"org/name@revision"`` that is neither a card
    nor an existing path: its cached snapshot, else its files on the Hub, with the
    bytes measured from the safetensors headers
    (:func:`vramcore.storage.pretrained.pretrained_spec`, once per process).

    Raises
    ------
    ValueError
        Unknown name (close matches listed), unreadable config, or a Hugging Face
        id that is neither cached nor downloadable (the message says what was tried).
    TypeError
        Any other type.
    """
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, ModelCard):
        return model.spec
    if isinstance(model, Mapping):
        return ModelSpec.from_hf_config(model)
    if isinstance(model, (str, PathLike)) and os.fspath(model).lower().endswith(".gguf"):
        from vramcore.storage.gguf import read_gguf

        return read_gguf(model).spec
    if isinstance(model, PathLike):
        return ModelSpec.from_hf_config(model)
    if isinstance(model, str):
        if is_model_name(model):
            return get_model(model).spec
        if os.path.exists(model):
            return ModelSpec.from_hf_config(model)
        if model.endswith(".json"):
            raise ValueError(f"config: no such file {model!r}")
        if "/" in model or "@" in model:  # a Hugging Face id: the local HF cache, then the Hub (once per process)
            from vramcore.storage.pretrained import pretrained_spec

            return pretrained_spec(model)
        return get_model(model).spec  # raises with close matches
    if isinstance(getattr(model, "spec", None), ModelSpec):
        return model.spec
    if hasattr(model, "spec"):  # a safetensors checkpoint read without its config.json
        raise TypeError(f"{argname}: {type(model).__name__} has no spec (no config.json beside the files)")
    raise TypeError(f"{argname} must be a model name, ModelSpec, ModelCard, config dict or path, "
                    f"got {type(model).__name__}")


def label(value: Any, resolved: Any) -> str:
    """Return the axis label of an argument: the caller's own spelling of a name (``"H100"``), else its name.

    ``ds.sel(gpu="H100")``, ``df[df.gpu == "H100"]`` and ``select={"dtype": "fp8"}`` then all
    find what the caller asked for; the canonical names stay on the result beside the labels.
    """
    return value if isinstance(value, str) else str(resolved.name)


def resolve_gpu(gpu: Any) -> GPUSpec:
    """Return `gpu` as a :class:`~vramcore.GPUSpec` (a spec passes through; a name is looked up)."""
    if isinstance(gpu, GPUSpec):
        return gpu
    return get_gpu(gpu)


def gpu_memory_bytes(gpu: GPUSpec, gpu_memory: str | int) -> float:
    """Per-GPU memory a result is checked against.

    ``"usable"``: CUDA-visible bytes where known, else the nvidia-smi total;
    ``"cuda_visible"``: CUDA-visible bytes (error when unknown); ``"total"``:
    the nvidia-smi total; an int: that many bytes.
    """
    if isinstance(gpu_memory, str):
        if gpu_memory == "usable":
            return float(gpu.usable_bytes)
        if gpu_memory == "total":
            return float(gpu.memory_total_bytes)
        if gpu_memory == "cuda_visible":
            if gpu.cuda_visible_bytes is None:
                raise ValueError(f"gpu_memory='cuda_visible' but the CUDA-visible memory of {gpu.name!r} is "
                                 "not known; use 'total', 'usable' or a number of bytes")
            return float(gpu.cuda_visible_bytes)
        raise ValueError(f"gpu_memory must be 'usable', 'cuda_visible', 'total' or a number of bytes, "
                         f"got {gpu_memory!r}")
    return float(_validation.positive_int("gpu_memory", gpu_memory))


def resolve_parallelism(engine: EngineSpec, n_gpus: int, tp: int | None, pp: int | None) -> tuple[int, int]:
    """Return (tp, pp) for `engine`.

    With neither given, `n_gpus` GPUs mean pipeline stages for engines that
    split layers (transformers ``device_map``, llama.cpp, training; data-parallel GPUs are the training
    engine's ``dp``) and tensor
    parallelism for the serving engines (vLLM, SGLang, TensorRT-LLM).
    """
    if tp is None and pp is None:
        return (1, n_gpus) if engine.kind in ("transformers", "llamacpp", "train") else (n_gpus, 1)
    tp_ = _validation.positive_int("tp", tp) if tp is not None else 1
    pp_ = _validation.positive_int("pp", pp) if pp is not None else 1
    if n_gpus != 1 and n_gpus != tp_ * pp_:
        raise ValueError(f"n_gpus ({n_gpus}) must equal tp x pp ({tp_} x {pp_}) when both are given")
    return tp_, pp_


def check_engine(engine: EngineSpec) -> None:
    """Raise ValueError for KV-cache types the engine does not offer or cannot run.

    llama.cpp quantizes the V cache only with flash attention (src/llama-context.cpp:
    "V cache quantization requires flash_attn").
    """
    k, v = _pack.engine_kv_bits(engine)
    if engine.kind == "llamacpp" and not engine.flash_attn and v and v not in (16.0, 32.0):
        raise ValueError(f"llama.cpp quantizes the V cache only with flash attention: cache_type_v="
                         f"{engine.cache_type_v or engine.kv_cache_dtype!r} needs flash_attn=True (-fa), or use f16")


def check_parallelism(spec: ModelSpec, engine: EngineSpec, tp: int, pp: int) -> None:
    """Raise ValueError when `spec` cannot run with `tp` x `pp` under `engine`."""
    if spec.num_heads % tp:
        raise ValueError(f"tp={tp} does not divide the {spec.num_heads} attention heads of {spec.name!r}")
    kv = spec.num_kv_heads or spec.num_heads
    if not spec.is_mla and kv % tp and tp % kv:
        raise ValueError(f"tp={tp} and the {kv} KV heads of {spec.name!r} must divide one another")
    rec = spec.recurrent
    if rec is not None and rec.groups is not None and tp > 1:
        # every engine splits Mamba2 heads evenly and holds whole groups per rank (StateSpec.tp_groups):
        # TensorRT-LLM validate_mamba2_tp (_torch/modules/mamba/mamba2_tp.py); vLLM and SGLang MambaMixer2
        # assert the narrower n_groups % tp == 0 or n_groups == 1
        if rec.state_heads % tp:
            raise ValueError(f"tp={tp} does not divide the {rec.state_heads} Mamba2 heads of {spec.name!r}")
        if rec.groups % tp and tp % rec.groups:
            raise ValueError(f"tp={tp} and the {rec.groups} Mamba2 groups of {spec.name!r} must divide one another")
    if pp > spec.num_layers:
        raise ValueError(f"pp={pp} exceeds the {spec.num_layers} layers of {spec.name!r}")
    if spec.n_sliding_layers and spec.sliding_window + engine.sliding_cap_offset < 0:  # type: ignore[operator]
        raise ValueError(f"sliding_cap_offset={engine.sliding_cap_offset} leaves the sliding layers of "
                         f"{spec.name!r} (window {spec.sliding_window}) a negative number of tokens")
    if engine.kind == "llamacpp" and engine.n_gpu_layers > spec.num_layers + 1:
        raise ValueError(f"n_gpu_layers={engine.n_gpu_layers} exceeds the {spec.num_layers} layers (+1 output) "
                         f"of {spec.name!r}")


def prepare_engines(engine: Any, specs: Sequence[ModelSpec], n_gpus: int, tp: int | None,
                    pp: int | None) -> tuple[list[EngineSpec], list[tuple[EngineSpec, int, int]], int, int]:
    """Resolve the engine argument (one or several) with its parallelism, checked against every model."""
    many = isinstance(engine, (list, tuple))
    engine_list = [get_engine(e) for e in _validation.as_list("engine", engine)] if many else [get_engine(engine)]
    if len(engine_list) > _kernel.MAX_ENGINES:
        raise ValueError(f"engine: at most {_kernel.MAX_ENGINES} engines per sweep, got {len(engine_list)}")
    n = _validation.positive_int("n_gpus", n_gpus)
    rows: list[tuple[EngineSpec, int, int]] = []
    tp_ = pp_ = 1
    for eng in engine_list:
        check_engine(eng)
        tp_, pp_ = resolve_parallelism(eng, n, tp, pp)
        for spec in specs:
            check_parallelism(spec, eng, tp_, pp_)
        rows.append((eng, tp_, pp_))
    return engine_list, rows, tp_, pp_
