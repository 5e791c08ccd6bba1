"""Names to storage rules: :func:`get_dtype` resolves a plain dtype, a quantization format or ``"auto"``.

The one place that knows both kinds (:mod:`vramcore.storage.dtypes` and
:mod:`vramcore.storage.quant`), so neither of them needs the other's table.
"""

from __future__ import annotations

from functools import cache

from vramcore._names import lookup, normalize_name
from vramcore._record import record
from vramcore.model.spec import ModelSpec
from vramcore.storage.dtypes import PLAIN_DTYPES, DType, plain_table

__all__ = ["AUTO", "AutoDType", "format_family", "get_dtype", "list_dtypes", "resolve_auto"]


@record(frozen=True, slots=True, repr=False, eq=False)
class AutoDType(DType):
    """The ``"auto"`` dtype: each model's own format (``spec.quantization``), else bf16."""

    def weight_bytes_by_part(self, spec: ModelSpec) -> dict[str, float]:
        """Bytes by part in the format :func:`resolve_auto` picks for `spec`."""
        return resolve_auto(spec).weight_bytes_by_part(spec)


AUTO = AutoDType("auto", 16, 16, False)


def get_dtype(name: str | DType, *, argname: str = "dtype", allow_formats: bool = True) -> DType:
    """Return the :class:`DType` called `name` (case-insensitive, aliases accepted).

    Besides the plain types, `name` may be a quantization format with exact
    storage (:mod:`vramcore.storage.quant`: ``"gptq-int4-g128"``, ``"awq-int4-g128"``,
    ``"bnb-nf4-dq"``, ``"fp8-block128"``, ``"mxfp4"``, ``"nvfp4"``, a GGUF file
    type such as ``"Q4_K_M"``) or ``"auto"`` (each model's own format, else bf16).

    Parameters
    ----------
    name : str or DType
        A name such as ``"bf16"``, ``"bfloat16"``, ``"fp8"``, ``"int4"``,
        ``"gptq-int4-g128"``, ``"Q4_K_M"``, ``"auto"``; a DType passes through.
    argname : str
        Argument name used in error messages.
    allow_formats : bool
        Accept quantization formats and ``"auto"``; False for the KV-cache dtype,
        which must be a plain element type.

    Returns
    -------
    DType

    Raises
    ------
    ValueError
        Unknown name (the message lists close matches), or a format where
        `allow_formats` is False.
    TypeError
        `name` is not a str.

    Examples
    --------
    >>> get_dtype("BFloat16").name
    'bf16'
    >>> get_dtype("int4").bytes_per_element
    0.5
    >>> get_dtype("q4_k_m").name, get_dtype("GPTQ-int4-g128").family
    ('Q4_K_M', 'gptq')
    """
    if isinstance(name, DType):
        if not allow_formats and name.name not in _plain_names():
            raise ValueError(f"{argname} must be a plain element type ({', '.join(list_dtypes())}), "
                             f"got the weight format {name.name!r}")
        return name
    if isinstance(name, str):
        plain = plain_table().get(normalize_name(name))
        if plain is not None:
            return plain
        if normalize_name(name) == "auto":
            fmt: DType | None = AUTO
        else:
            from vramcore.storage.quant import list_formats, parse_format  # only past the plain names and auto

            fmt = parse_format(name)
        if fmt is not None:
            if not allow_formats:
                raise ValueError(f"{argname} must be a plain element type ({', '.join(list_dtypes())}), "
                                 f"got the weight format {name!r}")
            return fmt
        if allow_formats:  # suggest format names too
            from vramcore.storage.quant import list_formats

            table: dict[str, object] = {normalize_name(f): f for f in (*list_formats(), "auto")}
            table.update(plain_table())
            return lookup(name, table, what="dtype", argname=argname)  # type: ignore[return-value]
    return lookup(name, plain_table(), what="dtype", argname=argname)


@cache
def _plain_names() -> frozenset[str]:
    return frozenset(d.name for d in PLAIN_DTYPES)


def list_dtypes(kind: str = "plain") -> list[str]:
    """Canonical dtype names.

    Parameters
    ----------
    kind : {"plain", "formats", "all"}
        ``"plain"``: element types (the ones a KV cache may use too);
        ``"formats"``: the common quantization formats with exact storage
        (:func:`vramcore.storage.quant.list_formats`; other group sizes parse too) and
        ``"auto"``; ``"all"``: both.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        Unknown `kind`.

    Examples
    --------
    >>> list_dtypes()[:3]
    ['fp32', 'fp16', 'bf16']
    >>> "gptq-int4-g128" in list_dtypes("all") and "Q4_K_M" in list_dtypes("formats")
    True
    """
    if kind not in ("plain", "formats", "all"):
        raise ValueError(f"kind must be 'plain', 'formats' or 'all', got {kind!r}")
    plain = [d.name for d in PLAIN_DTYPES]
    if kind == "plain":
        return plain
    from vramcore.storage.quant import list_formats

    formats = [*list_formats(), "auto"]
    return formats if kind == "formats" else plain + formats


def resolve_auto(spec: ModelSpec) -> DType:
    """Return the dtype ``"auto"`` means for `spec`: its recorded quantization format, else bf16.

    Parameters
    ----------
    spec : ModelSpec

    Returns
    -------
    DType

    Raises
    ------
    ValueError
        ``spec.quantization`` names a format vramcore does not know.

    Examples
    --------
    >>> import vramcore
    >>> resolve_auto(vramcore.get_model("gpt-oss-20b").spec).name
    'mxfp4'
    >>> resolve_auto(vramcore.get_model("Llama-3.2-1B").spec).name
    'bf16'
    """
    q = spec.quantization
    if q is None:
        return get_dtype("bf16")
    if isinstance(q, DType):
        return q
    if not isinstance(q, str):
        raise TypeError(f"model {spec.name!r}: ModelSpec.quantization must be a format name or a DType to "
                        f"resolve 'auto', got {type(q).__name__}")
    try:
        return get_dtype(q, argname="ModelSpec.quantization")
    except ValueError as exc:
        raise ValueError(f"model {spec.name!r}: {exc}") from None


def format_family(dtype: DType, spec: ModelSpec | None = None) -> str:
    """Return the storage family a weight dtype belongs to: which loaders can read it.

    ``"plain"`` (fp32 ... int4), a quantization format's family (``"gptq"``,
    ``"awq"``, ``"compressed-tensors"``, ``"bitsandbytes"``, ``"fp8"``,
    ``"mxfp4"``, ``"nvfp4"``, ``"gguf"``), or for the measured storage of a
    real file the family of what it holds; ``"auto"`` resolves for `spec`.

    Examples
    --------
    >>> format_family(get_dtype("Q4_K_M")), format_family(get_dtype("bnb-nf4")), format_family(get_dtype("bf16"))
    ('gguf', 'bitsandbytes', 'plain')
    """
    if isinstance(dtype, AutoDType):
        return format_family(resolve_auto(spec), None) if spec is not None else "plain"
    family = getattr(dtype, "family", "")
    if family:
        return str(family)
    if dtype.name.startswith("gguf"):
        return "gguf"
    if ":" in dtype.name:  # safetensors:<format> measured from a checkpoint
        from vramcore.storage.quant import parse_format

        inner = parse_format(dtype.name.split(":", 1)[1])
        return inner.family if inner is not None else "plain"
    return "plain"


def fused_expert_bytes(spec: ModelSpec, dtype: DType) -> float | None:
    """Return the bytes of `spec`'s routed experts where a bitsandbytes `dtype` leaves them unquantized, else None.

    transformers 5 quantizes ``Linear4bit`` / ``Linear8bitLt`` parameters only
    (``quantizers/quantizer_bnb_4bit.py`` ``param_needs_quantization``;
    ``integrations/bitsandbytes.py`` ``replace_with_bnb_linear`` swaps ``nn.Linear`` and ``Conv1D``), and its MoE
    classes hold the routed experts as fused 3-D parameters: they stay in the compute dtype.  vLLM's
    bitsandbytes MoE method quantizes them (engines that do: ``EngineSpec.bnb_quantizes_experts``).

    Examples
    --------
    >>> from vramcore import get_dtype, get_model
    >>> spec = get_model("Qwen3-30B-A3B").spec
    >>> fused_expert_bytes(spec, get_dtype("bnb-nf4")) == 2 * spec.param_breakdown()["mlp_routed_experts"]
    True
    >>> fused_expert_bytes(spec, get_dtype("gptq-int4-g128")) is None
    True
    """
    if not spec.is_moe or format_family(dtype, spec) != "bitsandbytes":
        return None
    return spec.param_breakdown()["mlp_routed_experts"] * dtype.compute_bits / 8.0
