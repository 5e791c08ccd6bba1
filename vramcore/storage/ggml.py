"""GGML tensor types, GGUF file types and llama.cpp's per-tensor quantization recipe.

A GGUF "file type" such as Q4_K_M is not one storage type: llama.cpp's
quantizer (``src/llama-quant.cpp``: ``llama_tensor_get_type`` and its helpers,
read at ggml-org/llama.cpp, 2025) picks a type for every tensor.  The rules
are re-expressed here from that file, in the order it applies them:

1. Only weights may be quantized: tensors with at least two dimensions whose
   name ends in ``weight``, except norms and the MoE router
   (``ffn_gate_inp``).  The others keep the type ``convert_hf_to_gguf.py``
   gave them: F32 for 1-D tensors, norms, biases and routers.
2. The output matrix (and a tied token embedding, which doubles as output) gets
   Q6_K (Q5_K for the 1-2 bit i-quants, Q8_0 for MXFP4_MOE or when its rows
   are not a multiple of the block size).
3. ``attn_v`` (and fused ``attn_qkv``) and ``ffn_down`` get more bits on the
   layers ``use_more_bits(i, n)`` selects (the first and last eighth and every
   third layer between), or on the first ones, depending on the file type;
   GQA models (``n_head / n_head_kv >= 4``), 8-expert models and 70B Llama /
   Qwen2 models have their own bumps.
4. A tensor whose rows are not a multiple of the chosen type's block falls back
   to a 32-element type (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K
   -> Q4_0, 256-element i-quants -> IQ4_NL), or F16 when even that fails.

Byte counts are exact: a row of ``n`` elements of a type with block ``b`` and
``s`` bytes per block takes ``n / b * s`` bytes (``ggml_row_size``).
"""

from __future__ import annotations

from collections.abc import Iterable

from vramcore._record import Record, record
from vramcore.model.spec import ModelSpec
from vramcore.model.tensors import TensorInfo, list_tensors

__all__ = ["FILE_TYPES", "GGML_TYPES", "GGMLType", "gguf_tensor_types", "tensor_nbytes"]


@record(frozen=True, slots=True, repr=False, eq=False)
class GGMLType(Record):
    """A GGML storage type: ``block_size`` elements take ``type_size`` bytes.

    Attributes
    ----------
    name : str
        GGML name (``"Q4_K"``).
    type_id : int
        ``ggml_type`` enum value, as written in GGUF tensor infos.
    block_size, type_size : int
        Elements per block and bytes per block.
    """

    name: str
    type_id: int
    block_size: int
    type_size: int

    @property
    def bits_per_weight(self) -> float:
        """Bits per element, block overhead included (Q4_K: 4.5)."""
        return self.type_size * 8 / self.block_size


# ggml/include/ggml.h (enum ggml_type) and ggml/src/ggml.c (type_traits: blck_size, type_size);
# the same figures as GGML_QUANT_SIZES in gguf-py/gguf/constants.py.
_TYPES: tuple[tuple[str, int, int, int], ...] = (
    ("F32", 0, 1, 4), ("F16", 1, 1, 2), ("Q4_0", 2, 32, 18), ("Q4_1", 3, 32, 20),
    ("Q5_0", 6, 32, 22), ("Q5_1", 7, 32, 24), ("Q8_0", 8, 32, 34), ("Q8_1", 9, 32, 40),
    ("Q2_K", 10, 256, 84), ("Q3_K", 11, 256, 110), ("Q4_K", 12, 256, 144), ("Q5_K", 13, 256, 176),
    ("Q6_K", 14, 256, 210), ("Q8_K", 15, 256, 292), ("IQ2_XXS", 16, 256, 66), ("IQ2_XS", 17, 256, 74),
    ("IQ3_XXS", 18, 256, 98), ("IQ1_S", 19, 256, 50), ("IQ4_NL", 20, 32, 18), ("IQ3_S", 21, 256, 110),
    ("IQ2_S", 22, 256, 82), ("IQ4_XS", 23, 256, 136), ("I8", 24, 1, 1), ("I16", 25, 1, 2),
    ("I32", 26, 1, 4), ("I64", 27, 1, 8), ("F64", 28, 1, 8), ("IQ1_M", 29, 256, 56),
    ("BF16", 30, 1, 2), ("TQ1_0", 34, 256, 54), ("TQ2_0", 35, 256, 66), ("MXFP4", 39, 32, 17),
    ("NVFP4", 40, 64, 36), ("Q1_0", 41, 128, 18),
)

#: GGML types by name.
GGML_TYPES: dict[str, GGMLType] = {n: GGMLType(n, i, b, s) for n, i, b, s in _TYPES}
#: GGML types by ``ggml_type`` id.
GGML_TYPES_BY_ID: dict[int, GGMLType] = {t.type_id: t for t in GGML_TYPES.values()}

# include/llama.h (enum llama_ftype) -> (value, default tensor type of llama_ftype_get_default_type)
_FTYPES: tuple[tuple[str, int, str], ...] = (
    ("F32", 0, "F32"), ("F16", 1, "F16"), ("Q4_0", 2, "Q4_0"), ("Q4_1", 3, "Q4_1"),
    ("Q8_0", 7, "Q8_0"), ("Q5_0", 8, "Q5_0"), ("Q5_1", 9, "Q5_1"), ("Q2_K", 10, "Q2_K"),
    ("Q3_K_S", 11, "Q3_K"), ("Q3_K_M", 12, "Q3_K"), ("Q3_K_L", 13, "Q3_K"), ("Q4_K_S", 14, "Q4_K"),
    ("Q4_K_M", 15, "Q4_K"), ("Q5_K_S", 16, "Q5_K"), ("Q5_K_M", 17, "Q5_K"), ("Q6_K", 18, "Q6_K"),
    ("IQ2_XXS", 19, "IQ2_XXS"), ("IQ2_XS", 20, "IQ2_XS"), ("Q2_K_S", 21, "Q2_K"),
    ("IQ3_XS", 22, "IQ3_S"), ("IQ3_XXS", 23, "IQ3_XXS"), ("IQ1_S", 24, "IQ1_S"),
    ("IQ4_NL", 25, "IQ4_NL"), ("IQ3_S", 26, "IQ3_S"), ("IQ3_M", 27, "IQ3_S"), ("IQ2_S", 28, "IQ2_XS"),
    ("IQ2_M", 29, "IQ2_S"), ("IQ4_XS", 30, "IQ4_XS"), ("IQ1_M", 31, "IQ1_M"), ("BF16", 32, "BF16"),
    ("TQ1_0", 36, "TQ1_0"), ("TQ2_0", 37, "TQ2_0"), ("MXFP4_MOE", 38, "MXFP4"),
)

#: GGUF file types (``general.file_type``) by name: (llama_ftype value, default tensor type).
FILE_TYPES: dict[str, tuple[int, str]] = {n: (v, d) for n, v, d in _FTYPES}
#: GGUF file-type names by ``llama_ftype`` value.
FILE_TYPES_BY_ID: dict[int, str] = {v: n for n, (v, _) in FILE_TYPES.items()}

# ftypes whose tensors need an importance matrix (llama-quant.cpp, tensor_requires_imatrix):
# the quantizer refuses them without one, so their recipes assume it.
_NEED_IMATRIX = frozenset({"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS",
                           "Q2_K_S"})
_IQ12 = frozenset({"IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"})
_FLOAT_FTYPES = frozenset({"F32", "F16", "BF16"})


def tensor_nbytes(ggml_type: str, shape: Iterable[int]) -> int:
    """Bytes of a tensor of `shape` (PyTorch order) stored as `ggml_type`.

    Parameters
    ----------
    ggml_type : str
        A GGML type name (``"Q4_K"``, ``"F16"`` ...).
    shape : iterable of int
        The tensor shape; the last dimension is the row.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Unknown type, or a row that is not a multiple of the type's block.

    Examples
    --------
    >>> tensor_nbytes("Q4_K", (4096, 4096))  # 144 bytes per 256 elements
    9437184
    >>> tensor_nbytes("F32", (4096,))
    16384
    """
    t = GGML_TYPES.get(ggml_type)
    if t is None:
        raise ValueError(f"ggml_type must be one of {sorted(GGML_TYPES)}, got {ggml_type!r}")
    dims = tuple(shape)
    if not dims:
        return t.type_size
    row = dims[-1]
    if row % t.block_size:
        raise ValueError(f"a row of {row} elements is not a multiple of the {t.block_size}-element "
                         f"blocks of {ggml_type}")
    n_rows = 1
    for d in dims[:-1]:
        n_rows *= d
    return n_rows * (row // t.block_size) * t.type_size


# --------------------------------------------------------------------------- the recipe
def _category(name: str) -> str:
    # llama-quant.cpp, tensor_get_category: first match wins
    if name == "output.weight":
        return "output"
    if name == "token_embd.weight":
        return "token_embd"
    for key, cat in (("attn_qkv.weight", "attn_qkv"), ("attn_kv_b.weight", "attn_kv_b"),
                     ("attn_v.weight", "attn_v"), ("attn_k.weight", "attn_k"), ("attn_q.weight", "attn_q"),
                     ("attn_output.weight", "attn_output"), ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"),
                     ("ffn_down", "ffn_down")):
        if key in name:
            return cat
    return "other"


def _allows_quantization(t: TensorInfo) -> bool:
    # llama-quant.cpp, tensor_allows_quantization (the rules that apply to decoder LLMs)
    return (len(t.shape) >= 2 and t.name.endswith("weight") and "_norm.weight" not in t.name
            and "ffn_gate_inp.weight" not in t.name)


def _source_type(t: TensorInfo, source: str) -> str:
    # convert_hf_to_gguf.py, prepare_tensors: 1-D tensors, norms, biases and routers in F32
    if len(t.shape) <= 1 or t.name.endswith("_norm.weight") or not t.name.endswith(".weight"):
        return "F32"
    if "ffn_gate_inp" in t.name:
        return "F32"
    return source


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


@record(frozen=True, repr=False, eq=False)
class _Model(Record):
    n_layer: int
    n_expert: int
    n_gqa: int
    is_70b: bool
    tied: bool


def _model_facts(spec: ModelSpec) -> _Model:
    # llama.cpp reads n_gqa = n_head / n_head_kv and the model "type"; only LLM_TYPE_70B changes a
    # quantization choice (llama-quant.cpp): Llama-family (llama, mistral, mixtral) GQA models with
    # 80 layers and Qwen2 models with 80 layers (src/models/qwen2.cpp, load_arch_hparams).
    kv = spec.num_kv_heads or spec.num_heads
    llama_like = spec.model_type in (None, "llama", "mistral", "mixtral")
    is_70b = spec.num_layers == 80 and ((llama_like and spec.num_heads != kv) or spec.model_type == "qwen2")
    return _Model(spec.num_layers, spec.num_experts, spec.num_heads // kv, is_70b, spec.tie_embeddings)


def _pick(ft: str, default: str, t: TensorInfo, cat: str, m: _Model, imatrix: bool,
          i_attn_v: int, n_attn_v: int) -> str:
    """Return the target type of a quantizable tensor (llama_tensor_get_type_impl, re-expressed)."""
    new = default
    layer = t.layer if t.layer is not None else 0
    n = m.n_layer
    if cat == "output" or (m.tied and cat == "token_embd"):
        if ft == "MXFP4_MOE" or t.row_length % GGML_TYPES[new].block_size:
            return "Q8_0"
        if ft in ("IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"):
            return "Q5_K"
        return new if new == "Q8_0" else "Q6_K"
    if ft == "MXFP4_MOE":
        return "MXFP4" if len(t.shape) == 3 and t.shape[0] > 1 else "Q8_0"
    if cat == "token_embd":
        if ft in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            return "Q2_K"
        if ft in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
            return "IQ3_S"
        if ft in ("TQ1_0", "TQ2_0"):
            return "Q4_K"
        return new
    attn_v_like = cat in ("attn_v", "attn_qkv", "attn_kv_b")
    if ft in _IQ12 and ft != "IQ3_XXS":
        # the 1-2 bit i-quants (IQ3_XXS is handled below with the other types)
        if attn_v_like:
            if m.n_gqa >= 4 or m.n_expert >= 4:
                return "Q4_K"
            return "IQ3_S" if ft in ("IQ2_S", "IQ2_M") else "Q2_K"
        if m.n_expert == 8 and cat == "attn_k":
            return "Q4_K"
        if cat == "ffn_down":
            if layer < n // 8:
                return "IQ3_S" if ft in ("IQ2_S", "IQ2_M") else "Q2_K"
            return new
        if cat == "attn_output":
            if m.n_expert == 8:
                return "Q5_K"
            if ft in ("IQ1_S", "IQ1_M"):
                return "IQ2_XXS"
            if ft in ("IQ2_S", "IQ2_M"):
                return "IQ3_S"
        return new
    if attn_v_like:
        if ft == "Q2_K":
            new = "Q4_K" if m.n_gqa >= 4 else "Q3_K"
        elif ft == "Q2_K_S" and m.n_gqa >= 4:
            new = "Q4_K"
        elif ft == "IQ3_XXS":
            new = "Q4_K" if m.n_gqa >= 4 else ("IQ3_S" if not imatrix else "IQ3_XXS")
        elif ft in ("IQ3_XS", "IQ3_S") and m.n_gqa >= 4:
            new = "Q4_K"
        elif ft == "IQ3_M":
            new = "Q4_K"
        elif ft == "Q3_K_M":
            new = "Q5_K" if i_attn_v < 2 else "Q4_K"
        elif ft == "Q3_K_L":
            new = "Q5_K"
        elif ft in ("IQ4_NL", "IQ4_XS") and m.n_gqa >= 4:
            new = "Q5_K"
        elif ft in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i_attn_v, n_attn_v):
            new = "Q6_K"
        elif ft == "Q4_K_S" and i_attn_v < 4:
            new = "Q5_K"
        if m.is_70b and new in ("Q3_K", "Q4_K"):
            new = "Q5_K"  # 8 query heads share each attn_v row: more bits cost little
        if m.n_expert == 8:
            new = "Q8_0"
        return new
    if cat == "attn_k":
        if m.n_expert == 8:
            return "Q8_0"
        if ft == "IQ3_XS":
            return "IQ3_XXS"
        if ft == "IQ3_XXS":
            return "IQ2_S"
        return new
    if cat == "attn_q":
        if ft == "IQ3_XS":
            return "IQ3_XXS"
        if ft == "IQ3_XXS":
            return "IQ2_S"
        return new
    if cat == "ffn_down":
        if ft == "Q2_K":
            return "Q3_K"
        if ft == "Q2_K_S":
            return "Q4_K" if layer < n // 8 else new
        if ft == "IQ3_XXS" and not imatrix:
            return "Q4_K" if layer < n // 8 else "Q3_K"
        if ft == "Q3_K_M":
            return "Q5_K" if layer < n // 16 else "Q4_K"  # (Falcon alone keeps Q3_K off use_more_bits)
        if ft == "IQ3_M" and (layer < n // 8 or (m.n_expert == 8 and _use_more_bits(layer, n))):
            return "Q4_K"
        if ft == "Q3_K_L":
            return "Q5_K"
        if ft == "Q4_K_M":
            return "Q6_K" if _use_more_bits(layer, n) else new
        if layer < n // 8 and ft in ("IQ4_NL", "IQ4_XS") and not imatrix:
            return "Q5_K"
        if ft == "Q5_K_M" and _use_more_bits(layer, n):
            return "Q6_K"
        if ft == "Q4_K_S" and layer < n // 8:
            return "Q5_K"
        if ft in ("Q4_0", "Q5_0") and imatrix and layer < n // 8:
            return "Q4_1" if ft == "Q4_0" else "Q5_1"
        return new
    if cat == "attn_output":
        if m.n_expert == 8:
            if ft in ("Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M",
                      "IQ3_S", "IQ3_M", "IQ4_XS"):
                return "Q5_K"
            return new
        return {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K",
                "IQ3_M": "Q4_K"}.get(ft, new)
    if cat == "attn_qkv":  # unreachable (attn_v-like above); kept for symmetry with llama.cpp
        return new
    if cat in ("ffn_gate", "ffn_up"):
        if ft == "IQ3_XS" and n // 8 <= layer < 7 * n // 8:
            return "IQ3_XXS"
        return new
    return new


# tensor_type_fallback: a row that is not a multiple of the block takes a 32-element type
_FALLBACK = {"IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL", "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL",
             "IQ2_S": "IQ4_NL", "IQ3_XXS": "IQ4_NL", "IQ3_S": "IQ4_NL", "IQ4_XS": "IQ4_NL",
             "Q2_K": "Q4_0", "Q3_K": "Q4_0", "TQ1_0": "Q4_0", "TQ2_0": "Q4_0", "Q4_K": "Q5_0",
             "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


def _fallback(t: TensorInfo, new: str) -> str:
    if t.row_length % GGML_TYPES[new].block_size == 0:
        return new
    alt = _FALLBACK.get(new)
    if alt is None:
        raise ValueError(f"tensor {t.name!r}: rows of {t.row_length} elements do not fit the "
                         f"{GGML_TYPES[new].block_size}-element blocks of {new}, and llama.cpp defines "
                         f"no fallback for {new}")
    if t.row_length % GGML_TYPES[alt].block_size:
        return "F16"
    return alt


def gguf_tensor_types(spec: ModelSpec, file_type: str, *, imatrix: bool | None = None,
                      source: str = "F16") -> tuple[tuple[TensorInfo, str], ...]:
    """Return the GGML type llama.cpp's quantizer gives every tensor of `spec` for `file_type`.

    Parameters
    ----------
    spec : ModelSpec
        The model (its tensors come from :func:`vramcore.list_tensors`).
    file_type : str
        A GGUF file type: ``"Q4_K_M"``, ``"Q8_0"``, ``"IQ4_XS"``, ``"F16"`` ...
        (see :data:`FILE_TYPES`).
    imatrix : bool, optional
        Whether an importance matrix is used (it changes a few choices).  None:
        True for the file types that require one (1-2 bit i-quants, IQ3_XXS,
        IQ3_XS, Q2_K_S), else False.
    source : str
        Type of the 2-D weights in the unquantized GGUF the quantizer reads
        (``"F16"``, the converter's default, or ``"BF16"``); kept by the tensors
        that are never quantized.

    Returns
    -------
    tuple of (TensorInfo, str)
        Each tensor with its GGML type name.

    Raises
    ------
    ValueError
        Unknown file type or source type, or a tensor llama.cpp cannot store in
        the chosen type.

    Examples
    --------
    >>> import vramcore
    >>> types = dict((t.name, ty) for t, ty in gguf_tensor_types(vramcore.get_model("Llama-3.1-8B").spec,
    ...                                                          "Q4_K_M"))
    >>> types["output.weight"], types["blk.0.attn_v.weight"], types["blk.4.attn_v.weight"]
    ('Q6_K', 'Q6_K', 'Q4_K')
    >>> types["blk.0.attn_norm.weight"]
    'F32'
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec, got {type(spec).__name__}")
    if file_type not in FILE_TYPES:
        raise ValueError(f"file_type must be one of {list(FILE_TYPES)}, got {file_type!r}")
    if source not in ("F16", "BF16", "F32"):
        raise ValueError(f"source must be 'F16', 'BF16' or 'F32', got {source!r}")
    default = FILE_TYPES[file_type][1]
    if imatrix is None:
        imatrix = file_type in _NEED_IMATRIX
    tensors = list_tensors(spec)
    m = _model_facts(spec)
    cats = [_category(t.name) for t in tensors]
    n_attn_v = sum(c in ("attn_v", "attn_qkv", "attn_kv_b") for c in cats)
    # llama.cpp visits tensors sorted by layer, then name; attn_v-like tensors are counted in that order
    order = sorted(range(len(tensors)), key=lambda k: (tensors[k].layer if tensors[k].layer is not None
                                                       else -1, tensors[k].name))
    i_attn_v = 0
    out: list[str] = [""] * len(tensors)
    quantized_default = file_type not in _FLOAT_FTYPES
    for k in order:
        t, cat = tensors[k], cats[k]
        if not _allows_quantization(t):
            out[k] = _source_type(t, source)
            continue
        if not quantized_default:
            out[k] = default
            continue
        new = _pick(file_type, default, t, cat, m, imatrix, i_attn_v, n_attn_v)
        if cat in ("attn_v", "attn_qkv", "attn_kv_b"):
            i_attn_v += 1
        out[k] = _fallback(t, new)
    return tuple(zip(tensors, out, strict=True))
