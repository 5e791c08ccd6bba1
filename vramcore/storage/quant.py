"""Quantized weight formats with exact storage, tensor by tensor.

A plain dtype (``int4``) says how wide a value is; a *format* says what a
checkpoint really stores: packed integers, group scales and zero points,
per-block exponents, and which tensors stay 16-bit.  Every format here is a
:class:`~vramcore.DType` (so it goes wherever a dtype goes: ``estimate``,
``sweep``) whose :meth:`QuantFormat.tensor_storage` lists the stored tensors of
a model and whose weight bytes are their exact sum (Python integers).

Formats and what they store per quantized linear weight of ``out x in``
(``G = ceil(in / group)`` groups; stacked experts repeat it per expert):

========================  ================================================================
``gptq-int{b}-g{g}``      AutoGPTQ / GPTQModel ``QuantLinear`` buffers: ``qweight`` int32
                          ``(in*b/32, out)``, ``qzeros`` int32 ``(G, out*b/32)``, ``scales``
                          fp16 ``(G, out)``, ``g_idx`` int32 ``(in,)``.  The v1 format keeps
                          ``qzeros`` and ``g_idx`` whether or not the config says ``sym`` /
                          ``desc_act`` (``-desc`` names act-order; the bytes are equal).
``awq-int4-g{g}``         AutoAWQ GEMM: ``qweight`` int32 ``(in, out*4/32)``, ``qzeros`` int32
                          ``(G, out*4/32)``, ``scales`` fp16 ``(G, out)``; no ``g_idx``.
``ct-int{b}-g{g}``        compressed-tensors ``pack-quantized`` (llm-compressor):
                          ``weight_packed`` int32 ``(out, in*b/32)``, ``weight_scale`` bf16
                          ``(out, G)``, ``weight_shape`` int64 ``(2,)``; ``-asym`` adds
                          ``weight_zero_point`` int32 ``(out*b/32, G)``, ``-desc`` (group
                          act-order) adds ``weight_g_idx`` int32 ``(in,)``.
``bnb-int8``              bitsandbytes LLM.int8: int8 weight + fp32 row scales ``SCB`` ``(out,)``.
``bnb-nf4`` / ``bnb-fp4``  bitsandbytes 4-bit: packed uint8 ``ceil(n/2)``, fp32 ``absmax`` per
                          64 values, the 16-entry fp32 code table; ``-dq`` (double quant):
                          ``absmax`` as uint8, plus fp32 ``nested_absmax`` per 256 blocks,
                          the 256-entry fp32 nested code table and the fp32 offset.
``fp8-tensor``            fp8 weight + one fp32 ``weight_scale`` per tensor.
``fp8-channel``           fp8 weight + bf16 ``weight_scale`` per output row (compressed-tensors).
``fp8-block128``          fp8 weight + fp32 ``weight_scale_inv`` per 128 x 128 block (DeepSeek-V3).
``mxfp4``                 OCP MX: 4-bit values + one E8M0 scale byte per 32 (4.25 bits); as
                          gpt-oss ships, only the MLP / expert matrices, attention stays bf16.
``nvfp4``                 NVIDIA ModelOpt: 4-bit values + fp8 scale per 16 + fp32
                          ``weight_scale_2`` and ``input_scale`` per tensor.
``Q4_K_M``, ``IQ4_XS``..  GGUF file types: llama.cpp's per-tensor recipe (:mod:`vramcore.storage.ggml`).
========================  ================================================================

The integer, bitsandbytes, fp8 and nvfp4 formats quantize the linear layers of
the decoder blocks (attention, dense MLP, routed and shared experts), as the
quantizers do by default; the embedding, norms, biases, router, attention sinks
and lm_head stay in the 16-bit checkpoint dtype (a router the engine keeps in
fp32, ``spec.router_fp32``, takes 4 bytes).  Sources: AutoGPTQ
``auto_gptq/nn_modules/qlinear``, AutoAWQ ``awq/modules/linear/gemm.py``,
compressed-tensors ``compressors/quantized_compressors/pack_quantized.py``,
bitsandbytes ``bitsandbytes/functional.py`` (``quantize_4bit``,
``QuantState``) and ``nn/modules.py`` (``Int8Params``), DeepSeek-V3
``inference/kernel.py`` (``weight_dequant``, 128 x 128 blocks), OCP
Microscaling Formats v1.0 and the gpt-oss checkpoint (``*_blocks`` /
``*_scales``), NVIDIA ModelOpt NVFP4 checkpoints.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from math import prod

from vramcore._identity import Same
from vramcore._names import normalize_name
from vramcore._record import Record, record
from vramcore.model.hf.quantization import format_from_quantization_config, int_format_name
from vramcore.model.spec import PARTS, ModelSpec
from vramcore.model.tensors import TensorInfo, list_tensors
from vramcore.storage.dtypes import LINEAR_PARTS, DType

__all__ = ["MeasuredStorage", "QuantFormat", "StoredTensor", "format_from_quantization_config",
           "list_formats", "parse_format"]

#: Bytes per element of the safetensors dtypes a format stores.
ITEMSIZE: dict[str, int] = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                            "U8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1}


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@record(frozen=True, slots=True, repr=False, eq=False)
class StoredTensor(Record):
    """How one model tensor is stored by a format.

    Attributes
    ----------
    tensor : TensorInfo
        The model tensor (see :func:`vramcore.list_tensors`).
    storage : str
        What it is stored as: a format name for quantized tensors (``"gptq-int4-g128"``),
        a GGML type (``"Q4_K"``) or a float type (``"BF16"``, ``"F32"``).
    components : tuple of (str, str, tuple of int)
        The tensors actually written, as ``(suffix, dtype, shape)``: e.g.
        ``("qweight", "I32", (512, 4096))``; dtypes are safetensors names, or
        GGML type names for GGUF.
    nbytes : int
        Exact bytes of all components.
    """

    tensor: TensorInfo
    storage: str
    components: tuple[tuple[str, str, tuple[int, ...]], ...]
    nbytes: int


def _stored(t: TensorInfo, storage: str, comps: list[tuple[str, str, tuple[int, ...]]]) -> StoredTensor:
    nbytes = sum(ITEMSIZE[dt] * prod(shape) for _, dt, shape in comps)
    return StoredTensor(t, storage, tuple(comps), nbytes)


def _float_tensor(t: TensorInfo, spec: ModelSpec, dtype: str = "BF16") -> StoredTensor:
    if t.part == "router" and spec.router_fp32:
        dtype = "F32"
    return _stored(t, dtype, [("", dtype, t.shape)])


def _hf_linears(spec: ModelSpec) -> tuple[TensorInfo, ...]:
    """Return the tensors as Hugging Face checkpoints hold them: MLA's k_b / v_b are one kv_b_proj linear."""
    out: list[TensorInfo] = []
    for t in list_tensors(spec):
        if t.role == "attn_k_b":
            nh, kvr, nope = t.shape
            assert spec.v_head_dim is not None
            out.append(TensorInfo(f"blk.{t.layer}.attn_kv_b.weight", (nh * (nope + spec.v_head_dim), kvr),
                                  t.part, t.layer, "attn_kv_b"))
        elif t.role == "attn_v_b":
            continue
        else:
            out.append(t)
    return tuple(out)


@record(frozen=True, slots=True, repr=False, eq=False)
class QuantFormat(DType):
    """A quantized storage format: a :class:`~vramcore.DType` with exact per-tensor storage.

    Attributes
    ----------
    family : str
        ``"gptq"``, ``"awq"``, ``"compressed-tensors"``, ``"bitsandbytes"``,
        ``"fp8"``, ``"mxfp4"``, ``"nvfp4"`` or ``"gguf"``.
    group_size : int
        Elements per scale group along a row (``-1``: one group per row,
        per-channel); block size for block formats; 0 where not applicable.
    sym : bool
        Symmetric quantization (no zero points where the format can omit them).
    desc_act : bool
        Act-order / ``desc_act`` (GPTQ, compressed-tensors ``actorder="group"``).
    double_quant : bool
        bitsandbytes double quantization of the absmax.
    variant : str
        Family-specific detail: bitsandbytes ``"int8"``/``"nf4"``/``"fp4"``,
        fp8 ``"tensor"``/``"channel"``/``"block"``, GGUF file type.
    """

    family: str = ""
    group_size: int = 0
    sym: bool = True
    desc_act: bool = False
    double_quant: bool = False
    variant: str = ""

    def _quantizes(self, t: TensorInfo) -> bool:
        if not t.is_matrix or t.part not in LINEAR_PARTS:
            return False
        if self.family == "mxfp4":
            return t.part != "attention"
        return True

    def _linear(self, t: TensorInfo) -> StoredTensor:
        lead = t.shape[:-2]
        n_lead = prod(lead)
        out_f, in_f = t.shape[-2], t.shape[-1]
        b, fam = int(self.bits), self.family
        g = in_f if self.group_size == -1 else self.group_size
        groups = _cdiv(in_f, g) if g else 0
        c: list[tuple[str, str, tuple[int, ...]]] = []
        if fam == "gptq":
            c += [("qweight", "I32", (*lead, _cdiv(in_f * b, 32), out_f)),
                  ("qzeros", "I32", (*lead, groups, _cdiv(out_f * b, 32))),
                  ("scales", "F16", (*lead, groups, out_f)),
                  ("g_idx", "I32", (*lead, in_f))]
        elif fam == "awq":
            c += [("qweight", "I32", (*lead, in_f, _cdiv(out_f * b, 32))),
                  ("qzeros", "I32", (*lead, groups, _cdiv(out_f * b, 32))),
                  ("scales", "F16", (*lead, groups, out_f))]
        elif fam == "compressed-tensors":
            c += [("weight_packed", "I32", (*lead, out_f, _cdiv(in_f * b, 32))),
                  ("weight_scale", "BF16", (*lead, out_f, groups))]
            if not self.sym:
                c.append(("weight_zero_point", "I32", (*lead, _cdiv(out_f * b, 32), groups)))
            if self.desc_act:
                c.append(("weight_g_idx", "I32", (*lead, in_f)))
            c.append(("weight_shape", "I64", (*lead, 2)))
        elif fam == "bitsandbytes" and self.variant == "int8":
            c += [("weight", "I8", t.shape), ("SCB", "F32", (*lead, out_f))]
        elif fam == "bitsandbytes":
            n = out_f * in_f  # bitsandbytes quantizes each weight flattened, in blocks of 64
            blocks = _cdiv(n, self.group_size)
            c.append(("weight", "U8", (*lead, (n + 1) // 2, 1)))
            if self.double_quant:
                c += [("absmax", "U8", (*lead, blocks)), ("quant_map", "F32", (*lead, 16)),
                      ("nested_absmax", "F32", (*lead, _cdiv(blocks, 256))),
                      ("nested_quant_map", "F32", (*lead, 256)), ("offset", "F32", (*lead, 1))]
            else:
                c += [("absmax", "F32", (*lead, blocks)), ("quant_map", "F32", (*lead, 16))]
        elif fam == "fp8":
            c.append(("weight", "F8_E4M3", t.shape))
            if self.variant == "tensor":
                c.append(("weight_scale", "F32", (*lead, 1)))
            elif self.variant == "channel":
                c.append(("weight_scale", "BF16", (*lead, out_f, 1)))
            else:
                bs = self.group_size
                c.append(("weight_scale_inv", "F32", (*lead, _cdiv(out_f, bs), _cdiv(in_f, bs))))
        elif fam == "mxfp4":
            nb = _cdiv(in_f, 32)
            c += [("blocks", "U8", (*lead, out_f, nb, 16)), ("scales", "U8", (*lead, out_f, nb))]
        elif fam == "nvfp4":
            c += [("weight", "U8", (*lead, out_f, _cdiv(in_f, 2))),
                  ("weight_scale", "F8_E4M3", (*lead, out_f, _cdiv(in_f, 16))),
                  ("weight_scale_2", "F32", (*lead, 1)), ("input_scale", "F32", (*lead, 1))]
        else:  # pragma: no cover - every family is handled above
            raise AssertionError(fam)
        assert n_lead >= 1
        return _stored(t, self.name, c)

    def tensor_storage(self, spec: ModelSpec) -> tuple[StoredTensor, ...]:
        """Every tensor of `spec` as this format stores it.

        Parameters
        ----------
        spec : ModelSpec
            The model.

        Returns
        -------
        tuple of StoredTensor

        Raises
        ------
        ValueError
            The format cannot store a tensor of the model (a GGUF type whose
            block does not divide a row and has no fallback).

        Examples
        --------
        >>> import vramcore
        >>> st = vramcore.get_dtype("gptq-int4-g128").tensor_storage(vramcore.get_model("Llama-3.2-1B").spec)
        >>> q = next(s for s in st if s.tensor.name == "blk.0.attn_q.weight")
        >>> for c in q.components:
        ...     print(c)
        ('qweight', 'I32', (256, 2048))
        ('qzeros', 'I32', (16, 256))
        ('scales', 'F16', (16, 2048))
        ('g_idx', 'I32', (2048,))
        >>> q.nbytes
        2187264
        """
        if self.family == "gguf":
            out = []
            from vramcore.storage.ggml import gguf_tensor_types, tensor_nbytes  # GGUF only: loaded with its first use

            for t, ty in gguf_tensor_types(spec, self.variant):
                out.append(StoredTensor(t, ty, (("", ty, t.shape),), tensor_nbytes(ty, t.shape)))
            return tuple(out)
        tensors = _hf_linears(spec)
        return tuple(self._linear(t) if self._quantizes(t) else _float_tensor(t, spec) for t in tensors)

    def weight_bytes_by_part(self, spec: ModelSpec) -> dict[str, float]:
        """Exact stored bytes of each part of `spec` in this format (sums of :meth:`tensor_storage`).

        Examples
        --------
        >>> import vramcore
        >>> parts = vramcore.get_dtype("Q4_K_M").weight_bytes_by_part(vramcore.get_model("Llama-3.1-8B").spec)
        >>> int(sum(parts.values()))
        4912898048
        """
        return {p: float(n) for p, n in _bytes_by_part(self, Same(spec))}


@lru_cache(maxsize=1024)
def _bytes_by_part(fmt: QuantFormat, spec_key: Same) -> tuple[tuple[str, int], ...]:
    # keyed by the format and the spec object: a spec's equality leaves out model_type, which names its
    # tensors (phi3's fused attn_qkv takes another GGUF type than attn_q / attn_k / attn_v)
    return tuple(storage_by_part(fmt.tensor_storage(spec_key.obj)).items())


def storage_by_part(stored: tuple[StoredTensor, ...]) -> dict[str, int]:
    """Sum stored bytes by part (one entry per :data:`vramcore.PARTS` name), as exact ints."""
    out = dict.fromkeys(PARTS, 0)
    for s in stored:
        out[s.tensor.part] += s.nbytes
    return out


@record(frozen=True, slots=True, repr=False, eq=False)
class MeasuredStorage(DType):
    """Weight bytes measured from a real file (a GGUF or safetensors checkpoint), by part.

    Attributes
    ----------
    bytes_by_part : tuple of (str, int)
        Stored bytes of each part in :data:`vramcore.PARTS`.
    source : str
        The file (or folder) measured.
    """

    bytes_by_part: tuple[tuple[str, int], ...] = ()
    source: str = ""

    def weight_bytes_by_part(self, spec: ModelSpec) -> dict[str, float]:
        """Return the measured bytes by part (the same for any `spec`: they describe one file)."""
        out = dict.fromkeys(PARTS, 0.0)
        for part, n in self.bytes_by_part:
            out[part] = float(n)
        return out


# --------------------------------------------------------------------------- names
def _gguf(ftype: str) -> QuantFormat:
    from vramcore.storage.ggml import FILE_TYPES, GGML_TYPES

    bits = GGML_TYPES[FILE_TYPES[ftype][1]].bits_per_weight
    name = f"gguf-{ftype}" if ftype in ("F16", "BF16", "F32") else ftype
    return QuantFormat(name, bits, 16, True, (f"gguf-{ftype}",) if name == ftype else (), family="gguf",
                       variant=ftype)


_INT_RE = re.compile(r"^(gptq|awq|ct)-(?:int|w)?(\d)(?:bit)?(?:-g(-1|\d+)|-(pc))?(-asym|-sym)?(-desc|-actorder)?$")


def _int_format(method: str, bits: int, group: int, sym: bool, desc: bool) -> QuantFormat:
    name = int_format_name(method, bits, group, sym, desc)
    family = {"ct": "compressed-tensors"}.get(method, method)
    aliases = (f"{method}-int{bits}-g-1",) if group == -1 else ()
    return QuantFormat(name, bits, 16, True, aliases, family=family, group_size=group, sym=sym,
                       desc_act=desc and method != "awq")


@cache
def _fixed() -> dict[str, QuantFormat]:
    fmts = [
        QuantFormat("bnb-int8", 8, 16, True, ("llm.int8", "bnb-8bit", "bitsandbytes-int8"),
                    family="bitsandbytes", variant="int8"),
        QuantFormat("bnb-nf4", 4, 16, True, ("nf4", "bnb-4bit"), family="bitsandbytes", group_size=64,
                    variant="nf4"),
        QuantFormat("bnb-nf4-dq", 4, 16, True, ("nf4-dq", "bnb-nf4-double-quant"), family="bitsandbytes",
                    group_size=64, double_quant=True, variant="nf4"),
        QuantFormat("bnb-fp4", 4, 16, True, (), family="bitsandbytes", group_size=64, variant="fp4"),
        QuantFormat("bnb-fp4-dq", 4, 16, True, ("bnb-fp4-double-quant",), family="bitsandbytes", group_size=64,
                    double_quant=True, variant="fp4"),
        QuantFormat("fp8-tensor", 8, 16, True, ("fp8-per-tensor",), family="fp8", variant="tensor"),
        QuantFormat("fp8-channel", 8, 16, True, ("fp8-per-channel",), family="fp8", variant="channel"),
        QuantFormat("fp8-block128", 8, 16, True, ("fp8-block", "fp8-128x128"), family="fp8", group_size=128,
                    variant="block"),
        QuantFormat("mxfp4", 4, 16, True, ("mx-fp4",), family="mxfp4", group_size=32),
        QuantFormat("nvfp4", 4, 16, True, ("nv-fp4",), family="nvfp4", group_size=16),
    ]
    from vramcore.storage.ggml import FILE_TYPES

    fmts += [_gguf(ft) for ft in FILE_TYPES]
    table: dict[str, QuantFormat] = {}
    for f in fmts:
        for key in (f.name, *f.aliases):
            table[normalize_name(key)] = f
    return table


@lru_cache(maxsize=512)
def _parse(key: str) -> QuantFormat | None:
    fixed = _fixed()
    if key in fixed:
        return fixed[key]
    if key.startswith("gguf-") and key[5:] in fixed:
        return fixed[key[5:]]
    m = _INT_RE.match(key)
    if m is None:
        return None
    method, bits, group, pc, sym, desc = m.groups()
    gsize = -1 if pc else int(group) if group is not None else 128
    return _int_format(method, int(bits), gsize, sym != "-asym", desc is not None)


def parse_format(name: str) -> QuantFormat | None:
    """Return the quantization format called `name`, or None if `name` is not a format name.

    Names are case-insensitive; ``_`` and ``-`` are interchangeable.

    Parameters
    ----------
    name : str
        ``"gptq-int4-g128"``, ``"gptq-int8-g128-desc"``, ``"gptq-int4-pc"``
        (per-channel, group size -1), ``"awq-int4-g128"``, ``"ct-int4-g128-asym"``,
        ``"bnb-nf4-dq"``, ``"fp8-block128"``, ``"mxfp4"``, ``"Q4_K_M"``, ``"gguf-F16"`` ...

    Returns
    -------
    QuantFormat or None

    Raises
    ------
    ValueError
        A GPTQ / AWQ / compressed-tensors name with an unsupported bit width or group size.

    Examples
    --------
    >>> parse_format("GPTQ_int4_g128").name
    'gptq-int4-g128'
    >>> parse_format("q4_k_m").name, parse_format("gguf-q8_0").name
    ('Q4_K_M', 'Q8_0')
    >>> parse_format("bf16") is None
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    return _parse(normalize_name(name))


def list_formats() -> list[str]:
    """Canonical names of the common quantization formats (any group size / bit width parses too).

    Examples
    --------
    >>> names = list_formats()
    >>> "gptq-int4-g128" in names and "Q4_K_M" in names and "mxfp4" in names
    True
    """
    names: list[str] = []
    for bits in (2, 3, 4, 8):
        for g in ("g32", "g64", "g128", "pc"):
            names += [f"gptq-int{bits}-{g}", f"gptq-int{bits}-{g}-desc"]
    names += [f"awq-int4-g{g}" for g in (32, 64, 128)]
    for bits in (4, 8):
        for g in ("g32", "g64", "g128", "pc"):
            names += [f"ct-int{bits}-{g}", f"ct-int{bits}-{g}-asym", f"ct-int{bits}-{g}-desc"]
    names += ["bnb-int8", "bnb-nf4", "bnb-nf4-dq", "bnb-fp4", "bnb-fp4-dq", "fp8-tensor", "fp8-channel",
              "fp8-block128", "mxfp4", "nvfp4"]
    from vramcore.storage.ggml import FILE_TYPES

    names += [_gguf(ft).name for ft in FILE_TYPES]
    return names
