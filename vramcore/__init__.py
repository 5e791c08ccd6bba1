"""vramcore: how much GPU memory does an LLM configuration need, and does it fit.

Specs -> packed arrays -> compiled kernel -> results.  The public names are
loaded lazily so that ``import vramcore`` stays light (numpy and the compiled
kernel load on first use).

Examples
--------
>>> import vramcore
>>> e = vramcore.estimate("DeepSeek-R1-Distill-Llama-8B", context=32768, gpu="H100")
>>> round(e.kv_cache_bytes / 2**30, 2)
4.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "ModelSpec": "vramcore.specs",
    "PARTS": "vramcore.specs",
    "ModelCard": "vramcore.models",
    "get_model": "vramcore.models",
    "list_models": "vramcore.models",
    "GPUSpec": "vramcore.gpus",
    "get_gpu": "vramcore.gpus",
    "list_gpus": "vramcore.gpus",
    "DType": "vramcore.dtypes",
    "get_dtype": "vramcore.dtypes",
    "list_dtypes": "vramcore.dtypes",
    "EngineSpec": "vramcore.engines",
    "get_engine": "vramcore.engines",
    "list_engines": "vramcore.engines",
    "Estimate": "vramcore._estimate",
    "estimate": "vramcore._estimate",
    "GiB": "vramcore._estimate",
    "GB": "vramcore._estimate",
    "Sweep": "vramcore._sweep",
    "sweep": "vramcore._sweep",
    "SUPPORTED_MODEL_TYPES": "vramcore.hf",
    "QuantFormat": "vramcore.quant",
    "TensorInfo": "vramcore.tensors",
    "list_tensors": "vramcore.tensors",
    "GGUFModel": "vramcore.io_gguf",
    "read_gguf": "vramcore.io_gguf",
    "SafetensorsCheckpoint": "vramcore.io_safetensors",
    "read_safetensors": "vramcore.io_safetensors",
    "Solution": "vramcore._solve",
    "max_context": "vramcore._solve",
    "max_batch": "vramcore._solve",
    "min_gpus": "vramcore._solve",
    "best_dtype": "vramcore._solve",
}

__all__ = [
    "GB",
    "PARTS",
    "SUPPORTED_MODEL_TYPES",
    "DType",
    "EngineSpec",
    "Estimate",
    "GGUFModel",
    "GPUSpec",
    "GiB",
    "ModelCard",
    "ModelSpec",
    "QuantFormat",
    "SafetensorsCheckpoint",
    "Solution",
    "Sweep",
    "TensorInfo",
    "__version__",
    "best_dtype",
    "estimate",
    "get_dtype",
    "get_engine",
    "get_gpu",
    "get_model",
    "list_dtypes",
    "list_engines",
    "list_gpus",
    "list_models",
    "list_tensors",
    "max_batch",
    "max_context",
    "min_gpus",
    "read_gguf",
    "read_safetensors",
    "show_config",
    "sweep",
]

if TYPE_CHECKING:
    from vramcore._estimate import GB, Estimate, GiB, estimate
    from vramcore._solve import Solution, best_dtype, max_batch, max_context, min_gpus
    from vramcore._sweep import Sweep, sweep
    from vramcore.dtypes import DType, get_dtype, list_dtypes
    from vramcore.engines import EngineSpec, get_engine, list_engines
    from vramcore.gpus import GPUSpec, get_gpu, list_gpus
    from vramcore.hf import SUPPORTED_MODEL_TYPES
    from vramcore.io_gguf import GGUFModel, read_gguf
    from vramcore.io_safetensors import SafetensorsCheckpoint, read_safetensors
    from vramcore.models import ModelCard, get_model, list_models
    from vramcore.quant import QuantFormat
    from vramcore.specs import PARTS, ModelSpec
    from vramcore.tensors import TensorInfo, list_tensors


#: Optional-dependency submodules, imported on first attribute access (``vramcore.plot``).
_SUBMODULES: tuple[str, ...] = ("plot", "dask")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"vramcore.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vramcore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


def show_config() -> dict[str, Any]:
    """Return (and print) how vramcore was built: version, OpenMP, threads, numpy.

    Returns
    -------
    dict
        ``{"version", "openmp", "max_threads", "numpy"}``.
    """
    import numpy

    from vramcore import _kernel

    info = {"version": __version__, "openmp": _kernel.OPENMP, "max_threads": _kernel.max_threads(),
            "numpy": numpy.__version__}
    for key, value in info.items():
        print(f"{key}: {value}")
    return info
