"""Read a GGUF file's header: the model geometry and the exact bytes of every tensor.

Only the header is read (magic, version, metadata key/values, tensor infos);
tensor data is never touched, and nothing goes over the network.  The parser
is written from the GGUF specification (ggml-org/ggml ``docs/gguf.md``):
little-endian; a ``GGUF`` magic, a u32 version (2 or 3), u64 tensor and
metadata counts; each metadata value typed (u8 ... f64, bool, string, array);
each tensor info a name, up to four u64 dimensions (``ne[0]`` first, the row
length), a ``ggml_type`` and a u64 offset into the data section, which starts
at the next multiple of ``general.alignment`` (32 by default).

Hostile or damaged files raise :class:`ValueError` before anything past the
header is read: sizes are checked against the file size and a cap
(:data:`MAX_HEADER_BYTES`), counts against the bytes that remain, tensor
offsets against alignment, overlap and the end of the file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from os import PathLike, fspath
from pathlib import Path

from vramcore._record import Record, field, record
from vramcore.model.limits import check_limit
from vramcore.model.spec import PARTS, ModelSpec
from vramcore.storage._tensorfile import TensorFile
from vramcore.storage.ggml import FILE_TYPES_BY_ID, GGML_TYPES_BY_ID, tensor_nbytes
from vramcore.storage.quant import MeasuredStorage

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, BinaryIO

__all__ = ["MAX_HEADER_BYTES", "GGUFArray", "GGUFModel", "GGUFTensor", "read_gguf"]

#: Largest header (metadata + tensor infos) read, in bytes; real files stay well below
#: (a 256k-token vocabulary with merges is about 20 MB).
MAX_HEADER_BYTES = 256 * 2**20
#: Array values longer than this are kept as a count only.
_KEEP_ARRAY = 1024
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_NAME = 256
#: Largest general.alignment accepted (llama.cpp writes 32; GGUF requires a power of two).
_MAX_ALIGNMENT = 2**20

_SCALARS: dict[int, tuple[str, str]] = {0: ("u8", "<B"), 1: ("i8", "<b"), 2: ("u16", "<H"), 3: ("i16", "<h"),
                                        4: ("u32", "<I"), 5: ("i32", "<i"), 6: ("f32", "<f"), 7: ("bool", "<?"),
                                        10: ("u64", "<Q"), 11: ("i64", "<q"), 12: ("f64", "<d")}
_STRING, _ARRAY = 8, 9


@record(frozen=True, slots=True, repr=False, eq=False)
class GGUFArray(Record):
    """A metadata array: its item type, length, and values when short (else None).

    Attributes
    ----------
    item_type : str
        ``"u32"``, ``"string"``, ``"array"`` ...
    count : int
        Number of items.
    values : tuple or None
        The items when ``count`` is at most 1024, else None (a vocabulary).
    """

    item_type: str
    count: int
    values: tuple[Any, ...] | None


@record(frozen=True, slots=True, repr=False, eq=False)
class GGUFTensor(Record):
    """One tensor info of a GGUF file.

    Attributes
    ----------
    name : str
        Tensor name (``"blk.0.attn_q.weight"``).
    shape : tuple of int
        PyTorch order (GGUF's ``ne`` reversed): the last dimension is the row.
    ggml_type : str
        GGML type name (``"Q4_K"``).
    offset : int
        Byte offset of the data from the start of the data section.
    nbytes : int
        Exact bytes of the data.
    part : str
        The :data:`vramcore.PARTS` entry the tensor counts in.
    """

    name: str
    shape: tuple[int, ...]
    ggml_type: str
    offset: int
    nbytes: int
    part: str

    @property
    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n


@record(frozen=True)
class GGUFModel(TensorFile):
    """What a GGUF file holds, read from its header; usable wherever a model is (``estimate``, ``sweep``).

    Attributes
    ----------
    path : str
        The file.
    version : int
        GGUF version (2 or 3).
    architecture : str
        ``general.architecture`` (``"llama"``, ``"qwen3moe"`` ...).
    file_type : str or None
        ``general.file_type`` as a name (``"Q4_K_M"``), if recorded.
    metadata : dict
        Every metadata key/value (long arrays as :class:`GGUFArray` with a count only).
    tensors : tuple of GGUFTensor
        Every tensor info, in file order.
    alignment : int
        Data alignment in bytes.
    data_offset : int
        Byte offset of the data section in the file.
    spec : ModelSpec
        The geometry, with ``quantization`` set to the file's measured storage,
        so that ``dtype="auto"`` (the default) uses the file's exact bytes.
    """

    path: str
    version: int
    architecture: str
    file_type: str | None
    metadata: dict[str, Any] = field(repr=False)
    tensors: tuple[GGUFTensor, ...] = field(repr=False)
    alignment: int
    data_offset: int
    spec: ModelSpec = field(repr=False)

    @property
    def weights_bytes(self) -> int:
        """Exact bytes of all tensor data."""
        return self.data_bytes()

    @property
    def param_count(self) -> int:
        """Elements of all tensors (GGML counts quantized blocks by their elements)."""
        return sum(t.numel for t in self.tensors)

    @property
    def bytes_by_type(self) -> dict[str, int]:
        """Exact bytes by GGML type."""
        return self.bytes_by("ggml_type")


class _Reader:
    """Bounded little-endian reads from the header of a file."""

    def __init__(self, f: BinaryIO, size: int, path: str) -> None:
        self.f, self.size, self.path, self.pos = f, size, path, 0

    def fail(self, msg: str) -> ValueError:
        return ValueError(f"GGUF file {self.path!r}: {msg} (at byte {self.pos})")

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise self.fail(f"{what} needs {n} bytes but the file ends at byte {self.size}")
        if self.pos + n > MAX_HEADER_BYTES:
            raise self.fail(f"header larger than {MAX_HEADER_BYTES} bytes")

    def read(self, n: int, what: str) -> bytes:
        self.need(n, what)
        data = self.f.read(n)
        if len(data) != n:
            raise self.fail(f"truncated {what}")
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> None:
        self.need(n, what)
        self.f.seek(n, os.SEEK_CUR)
        self.pos += n

    def scalar(self, fmt: str, what: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt), what))[0]

    def u32(self, what: str) -> int:
        return int(self.scalar("<I", what))

    def u64(self, what: str) -> int:
        return int(self.scalar("<Q", what))

    def string(self, what: str, limit: int | None = None) -> str:
        n = self.u64(f"length of {what}")
        if limit is not None and n > limit:
            raise self.fail(f"{what} is {n} bytes long, more than {limit}")
        raw = self.read(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not UTF-8") from None

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype][1], what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            if depth > 2:
                raise self.fail(f"{what}: arrays nested too deep")
            itype = self.u32(f"item type of {what}")
            count = self.u64(f"length of {what}")
            if itype in _SCALARS:
                size = struct.calcsize(_SCALARS[itype][1])
                self.need(count * size, f"{count} items of {what}")
                if count > _KEEP_ARRAY:
                    self.skip(count * size, what)
                    return GGUFArray(_SCALARS[itype][0], count, None)
                raw = self.read(count * size, what)
                values = struct.unpack(f"<{count}{_SCALARS[itype][1][1]}", raw)
                return GGUFArray(_SCALARS[itype][0], count, tuple(values))
            if itype not in (_STRING, _ARRAY):
                raise self.fail(f"{what}: unknown array item type {itype}")
            # every string / array item takes at least 8 bytes (its length)
            self.need(count * 8, f"{count} items of {what}")
            keep = count <= _KEEP_ARRAY
            items = []
            for k in range(count):
                if itype == _STRING and keep:
                    items.append(self.string(f"{what}[{k}]"))
                elif itype == _STRING:
                    self.skip(self.u64(f"length of {what}[{k}]"), f"{what}[{k}]")
                else:
                    items.append(self.value(_ARRAY, f"{what}[{k}]", depth + 1))
            name = "string" if itype == _STRING else "array"
            return GGUFArray(name, count, tuple(items) if keep else None)
        raise self.fail(f"{what}: unknown value type {vtype}")


def _part(name: str) -> str:
    """Return the part a GGUF tensor counts in, from llama.cpp's naming."""
    if name.startswith(("token_embd.", "per_layer_token_embd.")):
        return "embedding"
    if name.startswith("output."):
        return "lm_head"
    if name.startswith("output_norm."):
        return "norms"
    if not name.startswith("blk."):
        return "attention" if name.startswith("rope_") else "embedding"
    stem = name.split(".")[2] if name.count(".") >= 2 else name
    if stem.endswith("_norm") or "_norm_" in stem:
        return "norms"
    if stem.startswith(("ffn_gate_inp", "exp_probs")) and "shexp" not in stem:
        return "router"
    if "shexp" in stem:
        return "mlp_shared_experts"
    if "_exps" in stem:
        return "mlp_routed_experts"
    if stem.startswith("ffn_"):
        return "mlp_dense"
    return "attention"


def _meta(md: Mapping[str, Any], key: str, default: Any = None) -> Any:
    v = md.get(key, default)
    if isinstance(v, GGUFArray):
        if not v.values:
            return default
        nonzero = [x for x in v.values if x]
        return max(nonzero) if nonzero else v.values[0]
    return v


# llama.cpp architecture -> the Hugging Face model_type whose reader builds the spec
_ARCH = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "qwen3moe": "qwen3_moe", "gemma2": "gemma2",
         "gemma3": "gemma3_text", "phi3": "phi3", "deepseek2": "deepseek_v3", "gpt-oss": "gpt_oss"}


def _config(arch: str, md: Mapping[str, Any], tensors: Mapping[str, GGUFTensor], path: str) -> dict[str, Any]:
    """Build an HF-style config from GGUF metadata (keys as llama.cpp's convert_hf_to_gguf.py writes them)."""
    model_type = _ARCH.get(arch)
    if model_type is None:
        raise ValueError(f"GGUF file {path!r}: architecture {arch!r} is not supported "
                         f"(supported: {', '.join(sorted(_ARCH))})")

    def key(k: str, default: Any = None) -> Any:
        return _meta(md, f"{arch}.{k}", default)

    layers, hidden, heads = key("block_count"), key("embedding_length"), key("attention.head_count")
    for k, v in (("block_count", layers), ("embedding_length", hidden), ("attention.head_count", heads)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"GGUF file {path!r}: metadata {arch}.{k} must be a positive integer, got {v!r}")
    # bounded before the loops over layers below
    check_limit("num_layers", layers, f"GGUF file {path!r}: metadata {arch}.block_count")
    embd = tensors.get("token_embd.weight")
    if embd is None or len(embd.shape) != 2:
        raise ValueError(f"GGUF file {path!r}: no 2-D tensor 'token_embd.weight'")
    cfg: dict[str, Any] = {
        "model_type": model_type, "num_hidden_layers": layers, "hidden_size": hidden,
        "num_attention_heads": heads, "num_key_value_heads": key("attention.head_count_kv", heads),
        "vocab_size": embd.shape[0], "max_position_embeddings": key("context_length"),
        "tie_word_embeddings": "output.weight" not in tensors,
        "intermediate_size": key("feed_forward_length") or key("expert_feed_forward_length"),
    }
    if key("attention.key_length") is not None and model_type != "deepseek_v3":
        cfg["head_dim"] = key("attention.key_length")
    bias = "blk.0.attn_q.bias" in tensors or "blk.0.attn_qkv.bias" in tensors
    cfg["attention_bias"] = bias
    if key("attention.sliding_window"):
        cfg["sliding_window"] = key("attention.sliding_window")
    experts = key("expert_count", 0) or 0
    moe_layers = [i for i in range(layers) if f"blk.{i}.ffn_gate_inp.weight" in tensors]
    if model_type == "llama":
        cfg["mlp_bias"] = "blk.0.ffn_gate.bias" in tensors
        if experts:
            cfg.update(model_type="mixtral", num_local_experts=experts, num_experts_per_tok=key("expert_used_count"))
    elif model_type == "qwen3_moe":
        cfg.update(num_experts=experts, num_experts_per_tok=key("expert_used_count"),
                   moe_intermediate_size=key("expert_feed_forward_length"),
                   mlp_only_layers=[i for i in range(layers) if i not in moe_layers])
    elif model_type == "deepseek_v3":
        rope = key("rope.dimension_count")
        k_len = key("attention.key_length_mla") or key("attention.key_length")
        cfg.update(num_key_value_heads=heads, q_lora_rank=key("attention.q_lora_rank") or None,
                   kv_lora_rank=key("attention.kv_lora_rank"), qk_rope_head_dim=rope,
                   qk_nope_head_dim=(k_len - rope) if isinstance(k_len, int) and isinstance(rope, int) else None,
                   v_head_dim=key("attention.value_length_mla") or key("attention.value_length"),
                   n_routed_experts=experts, num_experts_per_tok=key("expert_used_count"),
                   moe_intermediate_size=key("expert_feed_forward_length"),
                   n_shared_experts=key("expert_shared_count", 0),
                   first_k_dense_replace=key("leading_dense_block_count", 0))
    elif model_type == "gpt_oss":
        cfg.update(num_local_experts=experts, num_experts_per_tok=key("expert_used_count"),
                   intermediate_size=key("expert_feed_forward_length"), attention_bias=bias)
    return cfg


def read_gguf(path: str | PathLike[str], *, name: str | None = None) -> GGUFModel:
    """Read a GGUF file's header into a model usable by :func:`vramcore.estimate` and :func:`vramcore.sweep`.

    Parameters
    ----------
    path : str or path-like
        A local ``.gguf`` file (one shard of a split file is read as the
        tensors it holds).
    name : str, optional
        Label for the spec; defaults to ``general.name`` or the file name.

    Returns
    -------
    GGUFModel
        Metadata, tensor infos with exact bytes, and ``spec`` (geometry from
        the metadata, ``quantization`` = the file's measured bytes by part).

    Raises
    ------
    ValueError
        Not a GGUF file, an unsupported version or architecture, a truncated,
        corrupt or hostile header (sizes beyond the file, counts too large,
        unknown types, misaligned / overlapping / out-of-file tensor data).
    TypeError
        `path` is not a path.

    Examples
    --------
    >>> import vramcore
    >>> read_gguf("no-such-file.gguf")
    Traceback (most recent call last):
        ...
    ValueError: GGUF file 'no-such-file.gguf': no such file
    """
    if not isinstance(path, (str, PathLike)):
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
    p = fspath(path)
    if not os.path.isfile(p):
        raise ValueError(f"GGUF file {p!r}: no such file")
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        r = _Reader(f, size, p)
        if r.read(4, "magic") != b"GGUF":
            raise r.fail("not a GGUF file (magic is not 'GGUF')")
        version = r.u32("version")
        if version not in (2, 3):
            hint = " (a big-endian file?)" if version > 0xFFFF else ""
            raise r.fail(f"unsupported GGUF version {version}{hint}; versions 2 and 3 are read")
        n_tensors = r.u64("tensor count")
        n_kv = r.u64("metadata count")
        # each tensor info takes at least 8 + 4 + 4 + 8 bytes, each key/value at least 8 + 4 + 1
        if n_tensors * 24 > size or n_kv * 13 > size:
            raise r.fail(f"{n_tensors} tensors / {n_kv} metadata entries cannot fit in {size} bytes")
        md: dict[str, Any] = {}
        for k in range(n_kv):
            key = r.string(f"metadata key #{k}", limit=65535)
            vtype = r.u32(f"type of {key!r}")
            if key in md:
                raise r.fail(f"metadata key {key!r} appears twice")
            md[key] = r.value(vtype, f"metadata {key!r}")
        alignment = md.get("general.alignment", 32)
        if (not isinstance(alignment, int) or isinstance(alignment, bool) or alignment < 1
                or alignment & (alignment - 1) or alignment > _MAX_ALIGNMENT):
            raise r.fail(f"general.alignment must be a power of two <= {_MAX_ALIGNMENT}, got {alignment!r}")
        infos: list[tuple[str, tuple[int, ...], int, int]] = []
        for k in range(n_tensors):
            tname = r.string(f"name of tensor #{k}", limit=_MAX_NAME)
            n_dims = r.u32(f"dimension count of {tname!r}")
            if not 1 <= n_dims <= _MAX_DIMS:
                raise r.fail(f"tensor {tname!r} has {n_dims} dimensions (1 to {_MAX_DIMS} allowed)")
            ne = tuple(r.u64(f"dimension of {tname!r}") for _ in range(n_dims))
            type_id = r.u32(f"type of {tname!r}")
            offset = r.u64(f"offset of {tname!r}")
            infos.append((tname, ne, type_id, offset))
        data_offset = -(-r.pos // alignment) * alignment

    if infos and data_offset > size:
        raise ValueError(f"GGUF file {p!r}: the header ends at byte {data_offset} (aligned to {alignment}), "
                         f"past the end of the file ({size} bytes)")
    tensors: list[GGUFTensor] = []
    seen: set[str] = set()
    data_size = size - data_offset
    for tname, ne, type_id, offset in infos:
        if tname in seen:
            raise ValueError(f"GGUF file {p!r}: tensor {tname!r} appears twice")
        seen.add(tname)
        gtype = GGML_TYPES_BY_ID.get(type_id)
        if gtype is None:
            raise ValueError(f"GGUF file {p!r}: tensor {tname!r} has unknown ggml_type {type_id}")
        if any(d == 0 for d in ne) or any(d >= 2**62 for d in ne):
            raise ValueError(f"GGUF file {p!r}: tensor {tname!r} has dimensions {list(ne)}")
        shape = tuple(reversed(ne))
        try:
            nbytes = tensor_nbytes(gtype.name, shape)
        except ValueError as exc:
            raise ValueError(f"GGUF file {p!r}: tensor {tname!r}: {exc}") from None
        if offset % alignment:
            raise ValueError(f"GGUF file {p!r}: tensor {tname!r} offset {offset} is not a multiple of the "
                             f"alignment {alignment}")
        if offset + nbytes > data_size:
            raise ValueError(f"GGUF file {p!r}: tensor {tname!r} data ({nbytes} bytes at offset {offset}) runs "
                             f"past the end of the file ({data_size} data bytes)")
        tensors.append(GGUFTensor(tname, shape, gtype.name, offset, nbytes, _part(tname)))
    by_offset = sorted(tensors, key=lambda t: t.offset)
    for a, b in zip(by_offset, by_offset[1:], strict=False):
        if a.offset + a.nbytes > b.offset:
            raise ValueError(f"GGUF file {p!r}: tensors {a.name!r} and {b.name!r} overlap")

    arch = md.get("general.architecture")
    if not isinstance(arch, str):
        raise ValueError(f"GGUF file {p!r}: metadata 'general.architecture' is missing")
    ftype_id = md.get("general.file_type")
    file_type = FILE_TYPES_BY_ID.get(ftype_id) if isinstance(ftype_id, int) else None
    by_name = {t.name: t for t in tensors}
    cfg = _config(arch, md, by_name, p)
    label = name or md.get("general.name") or Path(p).stem
    try:
        spec = ModelSpec.from_hf_config(cfg, name=str(label))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"GGUF file {p!r}: metadata does not describe a valid model: {exc}") from None
    parts = dict.fromkeys(PARTS, 0)
    for t in tensors:
        parts[t.part] += t.nbytes
    weights = sum(parts.values())
    n_params = sum(t.numel for t in tensors)
    storage = MeasuredStorage(f"gguf:{file_type}" if file_type else "gguf", weights * 8 / max(n_params, 1), 16,
                              True, (), bytes_by_part=tuple(parts.items()), source=p)
    spec = spec.replace(quantization=storage)
    return GGUFModel(path=p, version=version, architecture=arch, file_type=file_type, metadata=md,
                     tensors=tuple(tensors), alignment=alignment, data_offset=data_offset, spec=spec)
