"""How weights are stored: plain dtypes, quantization formats, GGML recipes and the readers of real files.

Storage sits on the model layer: the bytes of a :class:`~vramcore.ModelSpec`
under a storage rule are computed here (``DType.weight_bytes_by_part``), never
in the spec.  Modules, bottom up:

- :mod:`~vramcore.storage.dtypes`: plain element types (fp32 ... int4);
- :mod:`~vramcore.storage.ggml`: GGML block types and llama.cpp's per-tensor recipes;
- :mod:`~vramcore.storage.quant`: exact formats (GPTQ, AWQ, bitsandbytes, fp8, MXFP4, NVFP4, GGUF);
- :mod:`~vramcore.storage.resolve`: a name to either (:func:`get_dtype`), ``"auto"``;
- :mod:`~vramcore.storage.gguf`, :mod:`~vramcore.storage.safetensors`: header readers of real files.
"""

from __future__ import annotations

import importlib

#: Public names and the module each comes from, imported on first use: a plain
#: dtype needs neither the quantization formats nor the tensor lists (start-up).
_LAZY: dict[str, str] = {
    "LINEAR_PARTS": "vramcore.storage.dtypes", "DType": "vramcore.storage.dtypes",
    "MeasuredStorage": "vramcore.storage.quant", "QuantFormat": "vramcore.storage.quant",
    "StoredTensor": "vramcore.storage.quant", "format_from_quantization_config": "vramcore.storage.quant",
    "list_formats": "vramcore.storage.quant", "parse_format": "vramcore.storage.quant",
    "AutoDType": "vramcore.storage.resolve", "get_dtype": "vramcore.storage.resolve",
    "list_dtypes": "vramcore.storage.resolve", "resolve_auto": "vramcore.storage.resolve",
}

__all__ = ["LINEAR_PARTS", "AutoDType", "DType", "MeasuredStorage", "QuantFormat", "StoredTensor",
           "format_from_quantization_config", "get_dtype", "list_dtypes", "list_formats", "parse_format",
           "resolve_auto"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    from vramcore.storage.dtypes import LINEAR_PARTS, DType
    from vramcore.storage.quant import (
        MeasuredStorage,
        QuantFormat,
        StoredTensor,
        format_from_quantization_config,
        list_formats,
        parse_format,
    )
    from vramcore.storage.resolve import AutoDType, get_dtype, list_dtypes, resolve_auto


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
