"""Name the weight format a config's ``quantization_config`` describes.

This is reading a config, not modelling storage: the result is a format
*name* (``"gptq-int4-g128"``, ``"bnb-nf4-dq"``, ``"fp8-block128"`` ...) that
:mod:`vramcore.storage` parses into an exact storage rule.  The grammar of the
integer-format names lives here, once (:func:`int_format_name`), and
:mod:`vramcore.storage.quant` builds its formats from it.
"""

from __future__ import annotations

from collections.abc import Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["format_from_quantization_config", "int_format_name"]

#: Bits each packed-integer method stores (AutoGPTQ QuantLinear, AutoAWQ GEMM,
#: compressed-tensors pack-quantized).
INT_BITS: dict[str, tuple[int, ...]] = {"gptq": (2, 3, 4, 8), "awq": (4,), "ct": (2, 4, 8)}
_METHOD_NAMES = {"gptq": "GPTQ", "awq": "AWQ (AutoAWQ GEMM)", "ct": "compressed-tensors pack-quantized"}


def _whole(scheme: Mapping[str, Any], key: str, default: int) -> int:
    """Return the integer field `key` of a weights scheme, refusing floats, bools and huge values."""
    v = scheme.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or not -1 <= v <= 2**31:
        raise ValueError(f"quantization_config weights field {key!r} must be an integer, got {str(v)[:80]}")
    return v


def int_format_name(method: str, bits: int, group: int, sym: bool, desc: bool) -> str:
    """Return the canonical name of a packed-integer format (``"gptq-int4-g128-desc"``).

    Parameters
    ----------
    method : {"gptq", "awq", "ct"}
        Packing method.
    bits : int
        Bits per weight.
    group : int
        Group size, -1 for one group per output channel (``-pc``).
    sym : bool
        Symmetric quantization (compressed-tensors names the asymmetric one ``-asym``).
    desc : bool
        Activation order (``-desc``); AWQ has none.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        Bits the method does not store, or a group size that is neither -1 nor positive.

    Examples
    --------
    >>> int_format_name("ct", 4, -1, False, False)
    'ct-int4-pc-asym'
    """
    allowed = INT_BITS[method]
    if bits not in allowed:
        if len(allowed) == 1:
            raise ValueError(f"{_METHOD_NAMES[method]} stores {allowed[0]}-bit weights only, got {bits} bits")
        spelled = ", ".join(map(str, allowed[:-1])) + f" or {allowed[-1]}"
        raise ValueError(f"{_METHOD_NAMES[method]} bits must be {spelled}, got {bits}")
    if group != -1 and group < 1:
        raise ValueError(f"group size must be a positive integer or -1, got {group}")
    name = f"{method}-int{bits}-{'pc' if group == -1 else f'g{group}'}"
    if method == "ct" and not sym:
        name += "-asym"
    if desc and method != "awq":
        name += "-desc"
    return name


def _first_weights_scheme(qc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    groups = qc.get("config_groups")
    if not isinstance(groups, Mapping):
        return None
    for group in groups.values():
        if isinstance(group, Mapping) and isinstance(group.get("weights"), Mapping):
            return group["weights"]
    return None


def format_from_quantization_config(qc: Mapping[str, Any]) -> str:
    """Name the storage format a Hugging Face ``quantization_config`` describes.

    Parameters
    ----------
    qc : Mapping
        The ``quantization_config`` of a ``config.json``.

    Returns
    -------
    str
        A format name for :func:`vramcore.get_dtype` (``"gptq-int4-g128"``,
        ``"awq-int4-g128"``, ``"bnb-nf4-dq"``, ``"fp8-block128"``, ``"mxfp4"`` ...),
        or ``"unsupported:<quant_method>"`` for methods vramcore does not model.

    Raises
    ------
    TypeError
        `qc` is not a mapping.
    ValueError
        A known method with fields out of range (say ``bits: 5`` for GPTQ).

    Examples
    --------
    >>> format_from_quantization_config({"quant_method": "gptq", "bits": 4, "group_size": 128,
    ...                                  "desc_act": True, "sym": True})
    'gptq-int4-g128-desc'
    >>> format_from_quantization_config({"quant_method": "bitsandbytes", "load_in_4bit": True,
    ...     "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True})
    'bnb-nf4-dq'
    >>> format_from_quantization_config({"quant_method": "fp8", "weight_block_size": [128, 128]})
    'fp8-block128'
    """
    if not isinstance(qc, Mapping):
        raise TypeError(f"quantization_config must be a dict, got {type(qc).__name__}")
    method = str(qc.get("quant_method", "")).lower().replace("_", "-")

    def ival(key: str, default: int) -> int:
        v = qc.get(key, default)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"quantization_config field {key!r} must be an integer, got {v!r}")
        return v

    if method in ("gptq", "awq"):
        return int_format_name(method, ival("bits", 4), ival("group_size", 128), bool(qc.get("sym", True)),
                               bool(qc.get("desc_act", False)))
    if method == "bitsandbytes":
        if qc.get("load_in_4bit"):
            kind = str(qc.get("bnb_4bit_quant_type", "fp4")).lower()
            if kind not in ("nf4", "fp4"):
                raise ValueError(f"quantization_config field 'bnb_4bit_quant_type' must be 'nf4' or 'fp4', "
                                 f"got {kind!r}")
            return f"bnb-{kind}" + ("-dq" if qc.get("bnb_4bit_use_double_quant") else "")
        if qc.get("load_in_8bit"):
            return "bnb-int8"
        raise ValueError("quantization_config of method 'bitsandbytes' sets neither load_in_4bit nor load_in_8bit")
    if method == "fp8":
        block = qc.get("weight_block_size")
        if block:
            if (not isinstance(block, list) or len(block) != 2
                    or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in block)):
                raise ValueError(f"quantization_config field 'weight_block_size' must be two positive integers, "
                                 f"got {str(block)[:80]}")
            if block[0] != block[1]:
                raise ValueError(f"quantization_config field 'weight_block_size' must be square, got {block!r}")
            return "fp8-block128" if block[0] == 128 else f"unsupported:fp8-block{block[0]}"
        return "fp8-tensor"
    if method == "mxfp4":
        return "mxfp4"
    if method == "modelopt":
        algo = str(qc.get("quant_algo", "")).upper()
        return {"NVFP4": "nvfp4", "FP8": "fp8-tensor"}.get(algo, f"unsupported:modelopt-{algo.lower()}")
    if method == "compressed-tensors":
        w = _first_weights_scheme(qc)
        fmt_name = str(qc.get("format", ""))
        if w is None:
            return "unsupported:compressed-tensors"
        num_bits = _whole(w, "num_bits", 8)
        kind = str(w.get("type", "int"))
        strategy = str(w.get("strategy", "tensor"))
        if kind == "float" and num_bits == 4:
            return "nvfp4"
        if kind == "float" and num_bits == 8:
            if strategy == "block":
                return "fp8-block128"
            return "fp8-channel" if strategy == "channel" else "fp8-tensor"
        if kind == "int" and fmt_name in ("pack-quantized", ""):
            group = (_whole(w, "group_size", -1) or -1) if strategy == "group" else -1
            actorder = w.get("actorder") in ("group", True)
            return int_format_name("ct", num_bits, group, bool(w.get("symmetric", True)), actorder)
        return f"unsupported:compressed-tensors-{fmt_name or kind}"
    return f"unsupported:{method or 'unknown'}"
