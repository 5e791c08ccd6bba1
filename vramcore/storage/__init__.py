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

__all__ = ["LINEAR_PARTS", "AutoDType", "DType", "MeasuredStorage", "QuantFormat", "StoredTensor",
           "format_from_quantization_config", "get_dtype", "list_dtypes", "list_formats", "parse_format",
           "resolve_auto"]
