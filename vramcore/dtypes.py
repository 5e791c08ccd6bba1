"""Weight and KV-cache data types.

A plain dtype stores every linear-layer weight (attention, dense MLP, experts)
at its width.  For the integer and fp8 types the other tensors (embedding,
norms, router, lm_head) stay in the 16-bit compute dtype, as every common
quantizer leaves them (bitsandbytes, GPTQ/AWQ, vLLM fp8 all skip them), and no
scale or zero-point storage is counted: exact quantization *formats* with their
group scales are :mod:`vramcore.quant` (``get_dtype`` resolves both).  Activations run in the compute dtype:
fp32 for fp32 weights, otherwise 16-bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from vramcore._names import lookup, normalize_name
from vramcore.specs import ModelSpec

__all__ = ["LINEAR_PARTS", "DType", "get_dtype", "list_dtypes"]

#: Parts made of linear-layer weight matrices (what quantizers quantize).
LINEAR_PARTS: frozenset[str] = frozenset(
    {"attention", "mlp_dense", "mlp_routed_experts", "mlp_shared_experts"})


@dataclass(frozen=True, slots=True)
class DType:
    """A storage type for weights or for the KV cache.

    Parameters
    ----------
    name : str
        Canonical name (``"bf16"``, ``"fp8_e4m3"``, ``"int4"`` ...).
    bits : float
        Bits per element.
    compute_bits : float
        Bits of the dtype activations run in when weights use this type.
    quantized : bool
        True for integer / fp8 types: only linear-layer weights use ``bits``,
        the embedding, norms, router and lm_head keep ``compute_bits``.
    aliases : tuple of str
        Other accepted spellings.
    """

    name: str
    bits: float
    compute_bits: float
    quantized: bool
    aliases: tuple[str, ...] = ()

    @property
    def bytes_per_element(self) -> float:
        """Bytes per element (``bits / 8``; 0.5 for int4)."""
        return self.bits / 8.0

    def weight_bytes_by_part(self, spec: ModelSpec) -> dict[str, float]:
        """Return the stored bytes of each parameter part of `spec` in this dtype.

        Linear layers (attention, dense MLP, routed and shared experts) take
        ``bits``; the embedding, norms, router and lm_head take ``bits`` for
        float types and the compute dtype for quantized ones.  A router the
        engine keeps in fp32 (``spec.router_fp32``) takes 4 bytes a parameter.

        Parameters
        ----------
        spec : ModelSpec
            The model.

        Returns
        -------
        dict of str to float
            One entry per name in :data:`vramcore.PARTS`; exact (multiples of 1/2).

        Examples
        --------
        >>> from vramcore import get_model
        >>> parts = get_dtype("int4").weight_bytes_by_part(get_model("Llama-3.2-1B").spec)
        >>> parts["attention"] == get_model("Llama-3.2-1B").spec.param_breakdown()["attention"] / 2
        True
        """
        other_bits = self.compute_bits if self.quantized else self.bits
        out: dict[str, float] = {}
        for part, n in spec.param_breakdown().items():
            bits = self.bits if part in LINEAR_PARTS else other_bits
            if part == "router" and spec.router_fp32:
                bits = 32
            out[part] = n * bits / 8.0
        return out


# Widths: IEEE 754 / bfloat16 / OCP FP8 (E4M3, E5M2) formats; int8 / int4 integers.
_DTYPES: tuple[DType, ...] = (
    DType("fp32", 32, 32, False, ("float32", "f32", "float")),
    DType("fp16", 16, 16, False, ("float16", "f16", "half")),
    DType("bf16", 16, 16, False, ("bfloat16",)),
    DType("fp8_e4m3", 8, 16, True, ("fp8", "e4m3", "float8_e4m3fn", "fp8-e4m3fn")),
    DType("fp8_e5m2", 8, 16, True, ("e5m2", "float8_e5m2")),
    DType("int8", 8, 16, True, ("i8", "w8")),
    DType("int4", 4, 16, True, ("i4", "w4")),
)


@cache
def _table() -> dict[str, DType]:
    table: dict[str, DType] = {}
    for d in _DTYPES:
        for key in (d.name, *d.aliases):
            table[normalize_name(key)] = d
    return table


def get_dtype(name: str | DType, *, argname: str = "dtype", allow_formats: bool = True) -> DType:
    """Return the :class:`DType` called `name` (case-insensitive, aliases accepted).

    Besides the plain types, `name` may be a quantization format with exact
    storage (:mod:`vramcore.quant`: ``"gptq-int4-g128"``, ``"awq-int4-g128"``,
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
        plain = _table().get(normalize_name(name))
        if plain is not None:
            return plain
        from vramcore.quant import AUTO, list_formats, parse_format

        fmt = AUTO if normalize_name(name) == "auto" else parse_format(name)
        if fmt is not None:
            if not allow_formats:
                raise ValueError(f"{argname} must be a plain element type ({', '.join(list_dtypes())}), "
                                 f"got the weight format {name!r}")
            return fmt
        if allow_formats:  # suggest format names too
            table: dict[str, object] = {normalize_name(f): f for f in (*list_formats(), "auto")}
            table.update(_table())
            return lookup(name, table, what="dtype", argname=argname)  # type: ignore[return-value]
    return lookup(name, _table(), what="dtype", argname=argname)


@cache
def _plain_names() -> frozenset[str]:
    return frozenset(d.name for d in _DTYPES)


def list_dtypes(kind: str = "plain") -> list[str]:
    """Canonical dtype names.

    Parameters
    ----------
    kind : {"plain", "formats", "all"}
        ``"plain"``: element types (the ones a KV cache may use too);
        ``"formats"``: the common quantization formats with exact storage
        (:func:`vramcore.quant.list_formats`; other group sizes parse too) and
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
    plain = [d.name for d in _DTYPES]
    if kind == "plain":
        return plain
    from vramcore.quant import list_formats

    formats = [*list_formats(), "auto"]
    return formats if kind == "formats" else plain + formats
