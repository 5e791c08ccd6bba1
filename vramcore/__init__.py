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

from vramcore import _moved

__version__ = "0.1.0"
_moved.install()

_LAZY: dict[str, str] = {
    "ModelSpec": "vramcore.model.spec",
    "VisionSpec": "vramcore.model.vision",
    "PARTS": "vramcore.model.spec",
    "ModelCard": "vramcore.model.cards",
    "get_model": "vramcore.model.cards",
    "list_models": "vramcore.model.cards",
    "GPUSpec": "vramcore.hardware.gpus",
    "get_gpu": "vramcore.hardware.gpus",
    "list_gpus": "vramcore.hardware.gpus",
    "DType": "vramcore.storage.dtypes",
    "get_dtype": "vramcore.storage.resolve",
    "list_dtypes": "vramcore.storage.resolve",
    "EngineSpec": "vramcore.engines",
    "get_engine": "vramcore.engines",
    "list_engines": "vramcore.engines",
    "Estimate": "vramcore.grid.record",
    "Estimator": "vramcore.grid.cell",
    "estimate": "vramcore.grid.estimate",
    "GiB": "vramcore._units",
    "GB": "vramcore._units",
    "Sweep": "vramcore.grid.results",
    "sweep": "vramcore.grid.sweep",
    "sweep_to": "vramcore.grid.stream",
    "SUPPORTED_MODEL_TYPES": "vramcore.model.hf",
    "QuantFormat": "vramcore.storage.quant",
    "TensorInfo": "vramcore.model.tensors",
    "list_tensors": "vramcore.model.tensors",
    "GGUFModel": "vramcore.storage.gguf",
    "read_gguf": "vramcore.storage.gguf",
    "SafetensorsCheckpoint": "vramcore.storage.safetensors",
    "read_safetensors": "vramcore.storage.safetensors",
    "Solution": "vramcore.grid.solve",
    "max_context": "vramcore.grid.solve",
    "max_batch": "vramcore.grid.solve",
    "min_gpus": "vramcore.grid.solve",
    "best_dtype": "vramcore.grid.solve",
    "VramcoreWarning": "vramcore._errors",
    "UnknownModelWarning": "vramcore._errors",
}

__all__ = [
    "GB",
    "PARTS",
    "SUPPORTED_MODEL_TYPES",
    "DType",
    "EngineSpec",
    "Estimate",
    "Estimator",
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
    "UnknownModelWarning",
    "VisionSpec",
    "VramcoreWarning",
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
    "sweep_to",
]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    from vramcore._errors import UnknownModelWarning, VramcoreWarning
    from vramcore._units import GB, GiB
    from vramcore.engines import EngineSpec, get_engine, list_engines
    from vramcore.grid.cell import Estimator
    from vramcore.grid.estimate import estimate
    from vramcore.grid.record import Estimate
    from vramcore.grid.results import Sweep
    from vramcore.grid.solve import Solution, best_dtype, max_batch, max_context, min_gpus
    from vramcore.grid.stream import sweep_to
    from vramcore.grid.sweep import sweep
    from vramcore.hardware.gpus import GPUSpec, get_gpu, list_gpus
    from vramcore.model.cards import ModelCard, get_model, list_models
    from vramcore.model.hf import SUPPORTED_MODEL_TYPES
    from vramcore.model.spec import PARTS, ModelSpec
    from vramcore.model.tensors import TensorInfo, list_tensors
    from vramcore.model.vision import VisionSpec
    from vramcore.storage.dtypes import DType
    from vramcore.storage.gguf import GGUFModel, read_gguf
    from vramcore.storage.quant import QuantFormat
    from vramcore.storage.resolve import get_dtype, list_dtypes
    from vramcore.storage.safetensors import SafetensorsCheckpoint, read_safetensors


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

    import vramcore.grid._kernel as _kernel

    info = {"version": __version__, "openmp": _kernel.OPENMP, "max_threads": _kernel.max_threads(),
            "numpy": numpy.__version__}
    for key, value in info.items():
        print(f"{key}: {value}")
    return info
