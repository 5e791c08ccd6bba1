"""Weight and KV-cache data types.

A plain dtype stores every linear-layer weight (attention, dense MLP, experts)
at its width.  For the integer and fp8 types the other tensors (embedding,
norms, router, lm_head) stay in the 16-bit compute dtype, as every common
quantizer leaves them (bitsandbytes, GPTQ/AWQ, vLLM fp8 all skip them), and no
scale or zero-point storage is counted: exact quantization *formats* with their
group scales are :mod:`vramcore.storage.quant` (``get_dtype`` resolves both).  Activations run in the compute dtype:
fp32 for fp32 weights, otherwise 16-bit.
"""

from __future__ import annotations

from functools import cache

from vramcore._names import normalize_name
from vramcore._record import Record, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from vramcore.model.spec import ModelSpec

__all__ = ["LINEAR_PARTS", "DType", "PLAIN_DTYPES", "plain_table"]

#: Parts made of linear-layer weight matrices (what quantizers quantize).
LINEAR_PARTS: frozenset[str] = frozenset(
    {"attention", "mlp_dense", "mlp_routed_experts", "mlp_shared_experts"})


@record(frozen=True, slots=True, repr=False, eq=False)
class DType(Record):
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
        >>> from vramcore import get_dtype, get_model
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
PLAIN_DTYPES: tuple[DType, ...] = (
    DType("fp32", 32, 32, False, ("float32", "f32", "float")),
    DType("fp16", 16, 16, False, ("float16", "f16", "half")),
    DType("bf16", 16, 16, False, ("bfloat16",)),
    DType("fp8_e4m3", 8, 16, True, ("fp8", "e4m3", "float8_e4m3fn", "fp8-e4m3fn")),
    DType("fp8_e5m2", 8, 16, True, ("e5m2", "float8_e5m2")),
    DType("int8", 8, 16, True, ("i8", "w8")),
    DType("int4", 4, 16, True, ("i4", "w4")),
)


@cache
def plain_table() -> dict[str, DType]:
    """Normalised name or alias -> plain dtype."""
    table: dict[str, DType] = {}
    for d in PLAIN_DTYPES:
        for key in (d.name, *d.aliases):
            table[normalize_name(key)] = d
    return table
