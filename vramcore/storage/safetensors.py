"""Read safetensors headers: exact bytes per tensor and dtype, and an unpacked parameter count.

A safetensors file is an 8-byte little-endian header length ``N``, ``N`` bytes
of JSON (``{name: {"dtype", "shape", "data_offsets": [begin, end]}}`` plus an
optional ``"__metadata__"`` object of strings), then the data.  The reader
parses the header itself (huggingface/safetensors ``docs``: the format), caps
its size (:data:`MAX_HEADER_BYTES`), and checks what the format requires:
known dtypes, non-negative shapes, offsets whose span equals the tensor's
bytes, tensors that neither overlap nor leave holes, and a buffer that ends
exactly at the end of the file.  Tensor data is never read.  The same checks
hold for headers fetched without their file (:func:`read_safetensors_headers`:
the header bytes and the file's size, as a range request gives them).

Quantized checkpoints pack several values per stored element; the parameter
count unpacks them: GPTQ / AWQ ``qweight`` and compressed-tensors
``weight_packed`` int32 hold ``32 / bits`` values, 4-bit uint8 tensors
(bitsandbytes, MXFP4 ``*_blocks``, NVFP4) hold 2, and quantization metadata
(scales, zero points, ``g_idx``, ``absmax``, ``SCB`` ...) counts as no
parameter at all.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping, Sequence
from fractions import Fraction
from os import PathLike, fspath
from pathlib import Path

from vramcore._record import Record, field, record
from vramcore.model.spec import PARTS, ModelSpec
from vramcore.storage._tensorfile import TensorFile
from vramcore.storage.quant import MeasuredStorage

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MAX_HEADER_BYTES", "SafetensorsCheckpoint", "SafetensorsTensor", "header_length", "index_shards",
           "read_safetensors", "read_safetensors_headers"]

#: Largest JSON header accepted, in bytes (the reference implementation's limit).
MAX_HEADER_BYTES = 100_000_000

#: Bytes per element of each safetensors dtype (sub-byte types as fractions).
DTYPE_BYTES: dict[str, Fraction] = {
    "BOOL": Fraction(1), "U8": Fraction(1), "I8": Fraction(1), "F8_E5M2": Fraction(1), "F8_E4M3": Fraction(1),
    "F8_E8M0": Fraction(1), "I16": Fraction(2), "U16": Fraction(2), "F16": Fraction(2), "BF16": Fraction(2),
    "I32": Fraction(4), "U32": Fraction(4), "F32": Fraction(4), "I64": Fraction(8), "U64": Fraction(8),
    "F64": Fraction(8), "C64": Fraction(8), "F4": Fraction(1, 2), "F6_E2M3": Fraction(3, 4),
    "F6_E3M2": Fraction(3, 4),
}

# name endings of quantization metadata: stored bytes, no parameters
_META_SUFFIXES = (".qzeros", ".scales", ".g_idx", ".weight_scale", ".weight_scale_inv", ".weight_scale_2",
                  ".input_scale", ".output_scale", ".weight_zero_point", ".weight_g_idx", ".weight_shape",
                  ".weight_global_scale", ".input_global_scale", ".SCB", ".weight_format", ".absmax",
                  ".quant_map", ".nested_absmax", ".nested_quant_map", ".k_scale", ".v_scale", ".kv_scale")


# tensors stored beside a bitsandbytes 4-bit weight
_BNB4_SIBLINGS = (".absmax", ".quant_map", ".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4")


@record(frozen=True, slots=True, repr=False, eq=False)
class SafetensorsTensor(Record):
    """One tensor of a safetensors file.

    Attributes
    ----------
    name : str
        Tensor name (``"model.layers.0.self_attn.q_proj.qweight"``).
    dtype : str
        safetensors dtype (``"I32"``, ``"BF16"`` ...).
    shape : tuple of int
        Stored shape.
    nbytes : int
        Exact bytes.
    file : str
        The file that holds it.
    params : int
        Parameters it holds once unpacked (0 for quantization metadata).
    part : str
        The :data:`vramcore.PARTS` entry it counts in.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    file: str
    params: int
    part: str


@record(frozen=True)
class SafetensorsCheckpoint(TensorFile):
    """The tensors of one or several safetensors files, read from their headers.

    Attributes
    ----------
    path : str
        What was read (a file, an index or a folder).
    files : tuple of str
        The files read.
    tensors : tuple of SafetensorsTensor
        Every tensor.
    metadata : dict of str to str
        The ``__metadata__`` of the files, merged.
    spec : ModelSpec or None
        Geometry from a ``config.json`` beside the files (None without one),
        with ``quantization`` = the measured bytes by part, so that it plugs
        into :func:`vramcore.estimate` with the default ``dtype="auto"``.
    """

    path: str
    files: tuple[str, ...]
    tensors: tuple[SafetensorsTensor, ...] = field(repr=False)
    metadata: dict[str, str] = field(repr=False)
    spec: ModelSpec | None = field(repr=False)

    @property
    def total_bytes(self) -> int:
        """Exact bytes of all tensor data."""
        return self.data_bytes()

    @property
    def param_count(self) -> int:
        """Parameters, packed integers unpacked and quantization metadata excluded."""
        return sum(t.params for t in self.tensors)

    @property
    def bytes_by_dtype(self) -> dict[str, int]:
        """Exact bytes by safetensors dtype."""
        return self.bytes_by("dtype")


def _fail(path: str, msg: str) -> ValueError:
    return ValueError(f"safetensors file {path!r}: {msg}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} appears twice")
        out[k] = v
    return out


def header_length(prefix: bytes, file_size: int, where: str) -> int:
    """Return the header length ``N`` the first 8 bytes of a safetensors file give, checked against the file.

    Parameters
    ----------
    prefix : bytes
        The file's first 8 bytes (fewer when the file is shorter).
    file_size : int
        Size of the whole file in bytes (a local file's size, or a download's ``Content-Range`` total).
    where : str
        The file, for messages.

    Returns
    -------
    int
        ``N``, at most :data:`MAX_HEADER_BYTES` and at most ``file_size - 8``.

    Raises
    ------
    ValueError
        Fewer than 8 bytes, a length over the limit, or one that runs past the end of the file.
    """
    if len(prefix) != 8:
        raise _fail(where, f"{file_size} bytes, too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", prefix)
    if n > MAX_HEADER_BYTES:
        raise _fail(where, f"header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit")
    if n > file_size - 8:
        raise _fail(where, f"header length {n} runs past the end of the file ({file_size} bytes)")
    return int(n)


def _read_header(path: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Read one local file's header and validate it; return its tensor entries and metadata."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        n = header_length(f.read(8), size, path)
        raw = f.read(n)
    if len(raw) != n:
        raise _fail(path, "truncated header")
    return _parse_header(raw, size, path)


def _parse_header(raw: bytes, file_size: int, where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse and validate the ``N`` header bytes of a `file_size`-byte file; return its tensor entries and metadata.

    The same checks hold for a local file and for a header fetched by range request: the data buffer is
    ``file_size - 8 - N`` bytes, and the tensors must tile it exactly.
    """
    n = len(raw)
    if n > file_size - 8:
        raise _fail(where, f"header length {n} runs past the end of the file ({file_size} bytes)")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(where, f"header is not valid JSON: {exc}") from None
    except RecursionError:
        raise _fail(where, "header JSON is nested too deeply") from None
    if not isinstance(header, dict):
        raise _fail(where, "header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise _fail(where, "__metadata__ must map strings to strings")
    data_size = file_size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if not isinstance(info, dict):
            raise _fail(where, f"tensor {name!r}: entry is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise _fail(where, f"tensor {name!r}: unknown dtype {str(dtype)[:40]!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise _fail(where, f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise _fail(where, f"tensor {name!r}: data_offsets must be two integers, got {offsets!r}")
        begin, end = offsets
        if begin < 0 or end < begin:
            raise _fail(where, f"tensor {name!r}: invalid data_offsets {offsets}")
        if end > data_size:
            raise _fail(where, f"tensor {name!r}: data_offsets {offsets} run past the end of the file "
                               f"({data_size} data bytes)")
        numel = 1
        for d in shape:
            numel *= d
        nbytes = numel * DTYPE_BYTES[dtype]
        if nbytes.denominator != 1 or end - begin != nbytes:
            raise _fail(where, f"tensor {name!r}: {dtype} {shape} takes {nbytes} bytes but data_offsets "
                               f"span {end - begin}")
        spans.append((begin, end, name))
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin < pos:
            raise _fail(where, f"tensor {name!r} overlaps the tensor before it (offset {begin} < {pos})")
        if begin > pos:
            raise _fail(where, f"a hole of {begin - pos} bytes precedes tensor {name!r}")
        pos = end
    if pos != data_size:
        raise _fail(where, f"the tensors cover {pos} bytes of a {data_size}-byte data buffer")
    return header, meta


def index_shards(index: Any, where: str, *, max_shards: int | None = None) -> list[str]:
    """Return the shard file names a parsed ``model.safetensors.index.json`` maps its tensors to, in order.

    Parameters
    ----------
    index : object
        The parsed index (a dict with a ``"weight_map"`` object of tensor name -> shard file name).
    where : str
        The index, for messages.
    max_shards : int, optional
        Refuse an index naming more shards than this (a download bounds what it will fetch).

    Returns
    -------
    list of str
        Each shard once, in the order the weight map first names it.

    Raises
    ------
    ValueError
        No ``weight_map`` object, a shard that is not a plain file name in the index's folder (``../x``,
        ``a/b``), or more than `max_shards` shards.
    """
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f"safetensors index {where!r}: no 'weight_map' object")
    names: dict[str, None] = {}
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not shard or Path(shard).name != shard or shard in (".", "..") \
                or "\\" in shard:
            raise ValueError(f"safetensors index {where!r}: tensor {tensor!r} maps to {shard!r}, not a file "
                             f"name in the index's folder")
        names.setdefault(shard, None)
        if max_shards is not None and len(names) > max_shards:
            raise ValueError(f"safetensors index {where!r}: more than {max_shards} shards")
    return list(names)


def _files(path: str) -> list[str]:
    """Return the safetensors files `path` names: a file, an index, or a folder (index, else every shard)."""
    p = Path(path)
    if p.is_dir():
        index = p / "model.safetensors.index.json"
        if index.is_file():
            return _files(str(index))
        # regular files only: a FIFO or device named *.safetensors would block the read
        shards = sorted(str(f) for f in p.glob("*.safetensors") if f.is_file())
        if not shards:
            raise ValueError(f"safetensors folder {path!r}: no *.safetensors files")
        return shards
    if not p.is_file():
        raise ValueError(f"safetensors path {path!r}: no such file or folder")
    if p.name.endswith(".json"):
        try:
            index = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ValueError(f"safetensors index {path!r}: cannot read it as JSON: "
                             f"{exc if not isinstance(exc, RecursionError) else 'nested too deeply'}") from None
        files = [str(p.parent / s) for s in index_shards(index, path)]
        for f in files:
            if not os.path.isfile(f):
                raise ValueError(f"safetensors index {path!r}: shard {Path(f).name!r} is missing")
        return files
    return [str(p)]


def _part(name: str) -> str:
    """Return the part a Hugging Face tensor name counts in."""
    comps = name.lower().split(".")
    joined = "." + ".".join(comps) + "."
    in_layer = any(c.isdigit() for c in comps)
    # a multimodal checkpoint's towers (transformers names: Gemma-3 / Mistral-3 vision_tower, Qwen-VL visual
    # with its merger, Llama-4 vision_model, every family's multi_modal_projector)
    # Gemma-3n: audio_tower and its embedder embed_audio; embed_vision is the vision tower's projector
    if any(c in ("audio_tower", "embed_audio") for c in comps):
        return "audio_tower"
    if any(c in ("multi_modal_projector", "mm_projector", "merger", "deepstack_merger_list", "embed_vision")
           for c in comps):
        return "multimodal_projector"
    if any(c in ("vision_tower", "visual", "vision_model", "vision_encoder") for c in comps):
        return "vision_tower"
    if "lm_head" in comps or "output_layer" in comps:
        return "lm_head"
    if any(c in ("embed_tokens", "wte", "tok_embeddings", "word_embeddings", "embed") for c in comps):
        return "embedding"
    if any("norm" in c for c in comps[-3:]):
        return "norms"
    if "shared_expert" in joined or "shared_experts" in joined:
        return "mlp_shared_experts"
    if ".experts." in joined or any(c.startswith("experts") for c in comps):
        return "mlp_routed_experts"
    if "router" in comps or "gate" in comps or "e_score_correction_bias" in comps:
        return "router"
    if any(c in ("self_attn", "attn", "attention", "self_attention") for c in comps):
        return "attention"
    if any(c in ("mlp", "feed_forward", "ffn", "block_sparse_moe") for c in comps):
        return "mlp_dense"
    return "attention" if in_layer else "embedding"


def _params(name: str, dtype: str, shape: list[int], siblings: Mapping[str, tuple[str, list[int]]],
            bits: int | None) -> int:
    """Parameters held by one stored tensor (packed values unpacked, metadata 0)."""
    numel = 1
    for d in shape:
        numel *= d
    if name.endswith(_META_SUFFIXES) or ".quant_state." in name:
        return 0
    parent = name.rsplit(".", 1)[0]
    if parent.endswith(".weight") and siblings.get(parent, ("",))[0] == "U8":
        return 0  # bitsandbytes 4-bit quant state stored as weight.<field>
    if name.endswith("_scales") and (name[:-len("_scales")] + "_blocks") in siblings:
        return 0  # MXFP4 (gpt-oss): one E8M0 scale byte per 32 values
    if name.endswith("_blocks") and dtype == "U8":
        return 2 * numel  # MXFP4 values, two per byte
    if name.endswith((".qweight", ".weight_packed")):
        if dtype == "U8":
            return 2 * numel  # packed fp4 (compressed-tensors nvfp4)
        b = bits or _infer_bits(name, shape, siblings)
        if b is None:
            raise ValueError(f"tensor {name!r}: cannot tell how many bits its {dtype} elements pack; pass bits=")
        return int(numel * DTYPE_BYTES[dtype] * 8) // b
    if name.endswith(".weight") and dtype == "U8":
        if any(name + suffix in siblings for suffix in _BNB4_SIBLINGS) or (name + "_scale") in siblings:
            return 2 * numel  # bitsandbytes 4-bit (weight.absmax ...) or NVFP4 (weight_scale)
    return numel


def _infer_bits(name: str, shape: list[int], siblings: Mapping[str, tuple[str, list[int]]]) -> int | None:
    base = name.rsplit(".", 1)[0]
    g_idx = siblings.get(base + ".g_idx")
    scales = siblings.get(base + ".scales")
    if name.endswith(".qweight") and g_idx is not None and len(g_idx[1]) == 1 and len(shape) == 2 and g_idx[1][0]:
        b = Fraction(32 * shape[0], g_idx[1][0])  # GPTQ: qweight (in * bits / 32, out)
        return int(b) if b.denominator == 1 else None
    if name.endswith(".qweight") and scales is not None and len(shape) == 2 and scales[1] and scales[1][-1]:
        b = Fraction(32 * shape[1], scales[1][-1])  # AWQ: qweight (in, out * bits / 32), scales (G, out)
        return int(b) if b.denominator == 1 else None
    return None


def _config_bits(config: Mapping[str, Any] | None) -> int | None:
    if not config:
        return None
    qc = config.get("quantization_config")
    if not isinstance(qc, Mapping):
        return None
    if isinstance(qc.get("bits"), int):
        return int(qc["bits"])
    groups = qc.get("config_groups")
    if isinstance(groups, Mapping):
        for g in groups.values():
            w = g.get("weights") if isinstance(g, Mapping) else None
            if isinstance(w, Mapping) and isinstance(w.get("num_bits"), int):
                return int(w["num_bits"])
    return None


def read_safetensors(path: str | PathLike[str], *, bits: int | None = None,
                     name: str | None = None) -> SafetensorsCheckpoint:
    """Read the headers of a safetensors checkpoint: one file, an index, or a folder of shards.

    Parameters
    ----------
    path : str or path-like
        A ``.safetensors`` file, a ``model.safetensors.index.json``, or a folder
        holding an index or shards (and, for ``spec``, a ``config.json``).
    bits : int, optional
        Bits per value of packed integer tensors (``qweight``,
        ``weight_packed``).  None: from ``config.json``'s
        ``quantization_config``, else inferred from the shapes of ``g_idx`` /
        ``scales``.
    name : str, optional
        Label for the spec (default: the folder name).

    Returns
    -------
    SafetensorsCheckpoint

    Raises
    ------
    ValueError
        Missing files, a header that is truncated, oversized, not JSON, or
        inconsistent (unknown dtype, bad shape, offsets that overlap, leave
        holes or run past the file), an index that names files outside its
        folder, a tensor name found in two shards, or packed tensors whose bit
        width cannot be told.
    TypeError
        `path` is not a path or `bits` not an int.

    Examples
    --------
    >>> read_safetensors("no-such-folder")
    Traceback (most recent call last):
        ...
    ValueError: safetensors path 'no-such-folder': no such file or folder
    """
    if not isinstance(path, (str, PathLike)):
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
    _check_bits(bits)
    p = fspath(path)
    files = _files(p)
    folder = Path(p) if Path(p).is_dir() else Path(p).parent
    config_path = folder / "config.json"
    config: dict[str, Any] | None = None
    if config_path.is_file():
        from vramcore.model.hf import load_hf_config

        config = load_hf_config(config_path)
    return _checkpoint(p, [(f, *_read_header(f)) for f in files], config, bits, name or folder.name or None)


def read_safetensors_headers(headers: Sequence[tuple[str, bytes, int]], *,
                             config: Mapping[str, Any] | None = None, bits: int | None = None,
                             name: str | None = None, source: str = "") -> SafetensorsCheckpoint:
    """Read a checkpoint from its files' headers alone: what a download by range request gives.

    Each header gets the checks :func:`read_safetensors` makes of a local file (the same code): known dtypes,
    offsets that tile the data buffer, and a buffer that ends exactly at the end of the file, whose size is
    given instead of measured.

    Parameters
    ----------
    headers : sequence of (str, bytes, int)
        One ``(file, header, file_size)`` per file: its name (or URL), the ``N`` bytes of JSON that follow
        its 8-byte length, and the size of the whole file in bytes (e.g. the total of a ``Content-Range``).
    config : dict, optional
        The checkpoint's ``config.json``; with it, ``spec`` carries the measured bytes.
    bits : int, optional
        Bits per value of packed integer tensors, as for :func:`read_safetensors`.
    name : str, optional
        Label for the spec (default: the config's own name).
    source : str, optional
        Where the headers came from (a URL), kept as the checkpoint's ``path``.

    Returns
    -------
    SafetensorsCheckpoint

    Raises
    ------
    ValueError
        A header that is not JSON or is inconsistent with its file size, no headers, or a tensor in two files.
    TypeError
        `bits` is not an int.

    Examples
    --------
    >>> import json, struct
    >>> raw = json.dumps({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}}).encode()
    >>> ckpt = read_safetensors_headers([("model.safetensors", raw, 8 + len(raw) + 12)])
    >>> ckpt.total_bytes, ckpt.param_count
    (12, 6)
    """
    _check_bits(bits)
    if not headers:
        raise ValueError(f"safetensors checkpoint {source!r}: no files")
    parsed = []
    for file, raw, size in headers:
        if not isinstance(raw, bytes) or isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"safetensors headers: ({file!r}, header, size) needs bytes and an int size")
        parsed.append((file, *_parse_header(raw, size, file)))
    return _checkpoint(source, parsed, dict(config) if config is not None else None, bits, name)


def _check_bits(bits: int | None) -> None:
    if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int) or bits not in (2, 3, 4, 8)):
        raise (TypeError if not isinstance(bits, int) or isinstance(bits, bool) else ValueError)(
            f"bits must be 2, 3, 4 or 8, got {bits!r}")


def _checkpoint(p: str, files: list[tuple[str, dict[str, Any], dict[str, str]]], config: dict[str, Any] | None,
                bits: int | None, name: str | None) -> SafetensorsCheckpoint:
    """Build the checkpoint from validated headers: ``(file, tensor entries, metadata)`` per file."""
    entries: dict[str, tuple[str, list[int], str]] = {}
    metadata: dict[str, str] = {}
    for f, header, meta in files:
        metadata.update(meta)
        for tname, info in header.items():
            if tname in entries:
                raise ValueError(f"safetensors checkpoint {p!r}: tensor {tname!r} is in both "
                                 f"{Path(entries[tname][2]).name!r} and {Path(f).name!r}")
            entries[tname] = (info["dtype"], info["shape"], f)
    siblings = {k: (v[0], v[1]) for k, v in entries.items()}
    b = bits if bits is not None else _config_bits(config)
    tensors = []
    for tname, (dtype, shape, f) in entries.items():
        numel = 1
        for d in shape:
            numel *= d
        nbytes = int(numel * DTYPE_BYTES[dtype])
        tensors.append(SafetensorsTensor(tname, dtype, tuple(shape), nbytes, f, _params(tname, dtype, shape,
                                                                                      siblings, b), _part(tname)))
    spec = None
    if config is not None:
        spec = ModelSpec.from_hf_config(config, name=name)
        parts = dict.fromkeys(PARTS, 0)
        for t in tensors:
            parts[t.part] += t.nbytes
        total, n_params = sum(parts.values()), sum(t.params for t in tensors)
        label = f"safetensors:{spec.quantization}" if isinstance(spec.quantization, str) else "safetensors"
        storage = MeasuredStorage(label, total * 8 / max(n_params, 1), 16, True, (),
                                  bytes_by_part=tuple(parts.items()), source=p)
        spec = spec.replace(quantization=storage)
    return SafetensorsCheckpoint(path=p, files=tuple(f for f, _, _ in files), tensors=tuple(tensors),
                                 metadata=metadata, spec=spec)
