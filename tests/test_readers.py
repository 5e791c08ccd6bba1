"""Checkpoint readers: safetensors headers (single, sharded, quantized) and GGUF headers, including hostile files.

Small real files are written with the ``safetensors`` and ``gguf`` packages (the reference writers), then read
back with vramcore's own header parsers.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vramcore.ggml import FILE_TYPES, gguf_tensor_types, tensor_nbytes

import vramcore
from vramcore import ModelSpec, get_dtype, read_gguf, read_safetensors

safetensors_numpy = pytest.importorskip("safetensors.numpy")
gguf = pytest.importorskip("gguf")

TINY = ModelSpec(num_layers=2, hidden_size=256, num_heads=4, num_kv_heads=2, head_dim=64, intermediate_size=512,
                 vocab_size=1000, max_context=4096, model_type="llama")
TINY_CONFIG = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4,
               "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 512, "vocab_size": 1000,
               "max_position_embeddings": 4096, "tie_word_embeddings": False}

# llama.cpp GGUF names -> Hugging Face names (LlamaForCausalLM)
_HF = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
       "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
       "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
_NP = {"I32": np.int32, "F16": np.float16, "BF16": np.float16, "F32": np.float32, "U8": np.uint8, "I8": np.int8,
       "I64": np.int64, "F8_E4M3": np.uint8}


def hf_name(gguf_name: str) -> str:
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output.weight":
        return "lm_head.weight"
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    _, i, role, suffix = gguf_name.split(".")
    return f"model.layers.{i}.{_HF[role]}.{suffix}"


def write_checkpoint(folder: Path, fmt: str, qc: dict[str, Any] | None, shards: int = 1) -> dict[str, int]:
    """Write the tensors `fmt` stores for TINY as safetensors files (+ config.json); return {name: nbytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    for st in get_dtype(fmt).tensor_storage(TINY):
        base = hf_name(st.tensor.name)
        module = base[: -len(".weight")]
        for suffix, dtype, shape in st.components:
            if suffix in ("", "weight"):
                name = base
            elif suffix in ("qweight", "qzeros", "scales", "g_idx", "SCB") or suffix.startswith(("weight_", "input_")):
                name = f"{module}.{suffix}"  # GPTQ / AWQ buffers, LLM.int8 SCB, fp8 / NVFP4 scales
            else:
                name = f"{base}.{suffix}"  # bitsandbytes 4-bit quant state: weight.absmax ...
            tensors[name] = np.zeros(shape, dtype=_NP[dtype])
    config = dict(TINY_CONFIG)
    if qc is not None:
        config["quantization_config"] = qc
    (folder / "config.json").write_text(json.dumps(config))
    names = sorted(tensors)
    if shards == 1:
        safetensors_numpy.save_file(tensors, str(folder / "model.safetensors"))
    else:
        weight_map = {}
        for k in range(shards):
            fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[k::shards]}
            safetensors_numpy.save_file(part, str(folder / fname))
            weight_map.update(dict.fromkeys(part, fname))
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return {n: a.nbytes for n, a in tensors.items()}


# ----------------------------------------------------------------------------- safetensors
@pytest.mark.parametrize(("fmt", "qc"), [
    ("bnb-nf4-dq", {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                    "bnb_4bit_use_double_quant": True}),
    ("gptq-int4-g128", {"quant_method": "gptq", "bits": 4, "group_size": 128}),
    ("gptq-int8-pc", {"quant_method": "gptq", "bits": 8, "group_size": -1}),
    ("awq-int4-g128", {"quant_method": "awq", "bits": 4, "group_size": 128}),
    ("bnb-int8", {"quant_method": "bitsandbytes", "load_in_8bit": True}),
    ("fp8-block128", {"quant_method": "fp8", "weight_block_size": [128, 128]}),
    ("nvfp4", {"quant_method": "modelopt", "quant_algo": "NVFP4"}),
])
def test_safetensors_checkpoint_matches_the_format(tmp_path: Path, fmt: str, qc: dict | None) -> None:
    written = write_checkpoint(tmp_path, fmt, qc)
    ckpt = read_safetensors(tmp_path)
    assert ckpt.total_bytes == sum(written.values())
    assert {t.name: t.nbytes for t in ckpt.tensors} == written
    # packed integers unpacked, scales / zeros / g_idx / SCB not counted: the real parameter count
    assert ckpt.param_count == TINY.param_count
    expected = get_dtype(fmt).weight_bytes_by_part(TINY)
    assert ckpt.bytes_by_part == {k: int(v) for k, v in expected.items()}
    assert ckpt.spec is not None and ckpt.spec.quantization is not None
    e = vramcore.estimate(ckpt, context=16)
    assert e.weights_bytes == ckpt.total_bytes and e.dtype == f"safetensors:{fmt}"
    assert e.weights_bytes == vramcore.estimate(ckpt.spec.replace(quantization=None), dtype=fmt,
                                                context=16).weights_bytes


def test_safetensors_shards_and_index(tmp_path: Path) -> None:
    qc = {"quant_method": "gptq", "bits": 4, "group_size": 128}
    write_checkpoint(tmp_path / "one", "gptq-int4-g128", qc)
    written = write_checkpoint(tmp_path / "three", "gptq-int4-g128", qc, shards=3)
    one = read_safetensors(tmp_path / "one" / "model.safetensors")
    folder = read_safetensors(tmp_path / "three")
    index = read_safetensors(tmp_path / "three" / "model.safetensors.index.json")
    assert len(folder.files) == 3 and folder.files == index.files
    assert folder.total_bytes == index.total_bytes == one.total_bytes == sum(written.values())
    assert folder.param_count == one.param_count == TINY.param_count
    assert folder.bytes_by_dtype == one.bytes_by_dtype
    assert set(folder.bytes_by_dtype) == {"I32", "F16"}


def test_gptq_bits_inferred_without_config(tmp_path: Path) -> None:
    # qweight (in * bits / 32, out) with g_idx (in,): 3-bit is read back without any config
    f = tmp_path / "m.safetensors"
    safetensors_numpy.save_file({"l.qweight": np.zeros((1024 * 3 // 32, 64), np.int32),
                                 "l.qzeros": np.zeros((8, 64 * 3 // 32), np.int32),
                                 "l.scales": np.zeros((8, 64), np.float16),
                                 "l.g_idx": np.zeros((1024,), np.int32)}, str(f))
    ckpt = read_safetensors(f)
    assert ckpt.param_count == 1024 * 64 and ckpt.spec is None
    with pytest.raises(TypeError, match="no spec"):
        vramcore.estimate(ckpt, context=1)
    safetensors_numpy.save_file({"l.weight_packed": np.zeros((64, 128), np.int32)}, str(f))
    with pytest.raises(ValueError, match="cannot tell how many bits.*pass bits="):
        read_safetensors(f)
    assert read_safetensors(f, bits=4).param_count == 64 * 128 * 8


def test_bitsandbytes_4bit_and_mxfp4_parameters(tmp_path: Path) -> None:
    n = 256 * 512
    f = tmp_path / "m.safetensors"
    safetensors_numpy.save_file({
        "model.layers.0.self_attn.q_proj.weight": np.zeros((n // 2, 1), np.uint8),
        "model.layers.0.self_attn.q_proj.weight.absmax": np.zeros((n // 64,), np.float32),
        "model.layers.0.self_attn.q_proj.weight.quant_map": np.zeros((16,), np.float32),
        "model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4": np.zeros((100,), np.uint8),
        # gpt-oss MXFP4: (experts, rows, blocks, 16) bytes + one scale byte per 32 values
        "model.layers.0.mlp.experts.down_proj_blocks": np.zeros((4, 64, 8, 16), np.uint8),
        "model.layers.0.mlp.experts.down_proj_scales": np.zeros((4, 64, 8), np.uint8),
        "model.layers.0.mlp.router.weight": np.zeros((4, 64), np.float16),
    }, str(f))
    ckpt = read_safetensors(f)
    assert ckpt.param_count == n + 4 * 64 * 256 + 4 * 64
    parts = ckpt.bytes_by_part
    assert parts["attention"] == n // 2 + 4 * n // 64 + 64 + 100
    assert parts["mlp_routed_experts"] == 4 * 64 * 8 * 17 and parts["router"] == 512


def _raw_safetensors(path: Path, header: Any, data: bytes = b"", length: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


@pytest.mark.parametrize(("header", "data", "length", "match"), [
    (b"", b"", 0, "not valid JSON"),
    ([1, 2], b"", None, "not a JSON object"),
    ({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}}, b"xx", None, "unknown dtype 'Q4'"),
    ({"a": {"dtype": "U8", "shape": [-2], "data_offsets": [0, 2]}}, b"xx", None, "shape must be"),
    ({"a": {"dtype": "U8", "shape": [True], "data_offsets": [0, 1]}}, b"x", None, "shape must be"),
    ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [-1, 1]}}, b"xx", None, "invalid data_offsets"),
    ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [2, 0]}}, b"xx", None, "invalid data_offsets"),
    ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2**60]}}, b"xx", None, "past the end of the file"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"xxxx", None, "takes 8 bytes"),
    ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
      "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, b"xxx", None, "overlaps"),
    ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}, b"xxxx", None, "hole of 2 bytes"),
    ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}, b"xxxx", None, "cover 2 bytes of a 4-byte"),
    ({"__metadata__": {"k": 1}}, b"", None, "__metadata__ must map strings"),
    (b'{"a": {}, "a": {}}', b"", None, "appears twice"),
    (b"{}", b"", 50_000_000, "runs past the end of the file"),
    (b"{}", b"", 200_000_000, "exceeds the 100000000-byte limit"),
    (b"\xff\xfe", b"", None, "not valid JSON"),
])
def test_safetensors_rejects_corrupt_and_hostile_headers(tmp_path: Path, header: Any, data: bytes,
                                                         length: int | None, match: str) -> None:
    path = _raw_safetensors(tmp_path / "bad.safetensors", header, data, length)
    with pytest.raises(ValueError, match=match):
        read_safetensors(path)


def test_safetensors_truncated_and_missing(tmp_path: Path) -> None:
    (tmp_path / "short.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="too short"):
        read_safetensors(tmp_path / "short.safetensors")
    with pytest.raises(ValueError, match="no such file or folder"):
        read_safetensors(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no \\*.safetensors files"):
        read_safetensors(tmp_path / "empty")
    with pytest.raises(TypeError, match="path must be"):
        read_safetensors(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bits must be 2, 3, 4 or 8"):
        read_safetensors(tmp_path, bits=5)


def test_safetensors_hostile_index(tmp_path: Path) -> None:
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": "../../etc/passwd"}}))
    with pytest.raises(ValueError, match="not a file name in the index's folder"):
        read_safetensors(tmp_path)
    index.write_text(json.dumps({"weight_map": {"a": "missing.safetensors"}}))
    with pytest.raises(ValueError, match="shard 'missing.safetensors' is missing"):
        read_safetensors(tmp_path)
    index.write_text("[1]")
    with pytest.raises(ValueError, match="no 'weight_map'"):
        read_safetensors(index)
    for k in (1, 2):
        safetensors_numpy.save_file({"same": np.zeros(2, np.uint8)}, str(tmp_path / f"s{k}.safetensors"))
    index.write_text(json.dumps({"weight_map": {"same": "s1.safetensors", "x": "s2.safetensors"}}))
    with pytest.raises(ValueError, match="tensor 'same' is in both"):
        read_safetensors(tmp_path)


def test_safetensors_reads_only_the_header(tmp_path: Path) -> None:
    # a 64 GiB tensor in a sparse file: read in no time, because the data is never touched
    size = 64 * 2**30
    path = _raw_safetensors(tmp_path / "big.safetensors",
                            {"w": {"dtype": "BF16", "shape": [2**20, 2**15], "data_offsets": [0, size]}})
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size + size)
    ckpt = read_safetensors(path)
    assert ckpt.total_bytes == size and ckpt.param_count == 2**35


# ----------------------------------------------------------------------------- GGUF
def write_gguf(path: Path, spec: ModelSpec, file_type: str, arch: str, extra: dict[str, Any] | None = None) -> int:
    """Write `spec` as llama.cpp would quantize it to `file_type` (zeros as data); return the tensor bytes."""
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(spec.num_layers)
    w.add_embedding_length(spec.hidden_size)
    w.add_head_count(spec.num_heads)
    w.add_head_count_kv(spec.num_kv_heads)
    w.add_context_length(spec.max_context or 4096)
    w.add_key_length(spec.head_dim)
    w.add_value_length(spec.head_dim)
    w.add_file_type(FILE_TYPES[file_type][0])
    w.add_name("tiny")
    w.add_token_list([f"t{i}" for i in range(spec.vocab_size)])
    if spec.num_experts:
        w.add_expert_count(spec.num_experts)
        w.add_expert_used_count(spec.experts_per_token)
        w.add_expert_feed_forward_length(spec.moe_intermediate_size)
    if spec.n_dense_mlp_layers:
        w.add_feed_forward_length(spec.intermediate_size)
    if spec.sliding_window:
        w.add_sliding_window(spec.sliding_window)
    for key, value in (extra or {}).items():
        w.add_uint32(key, value)
    total = 0
    for t, ty in gguf_tensor_types(spec, file_type):
        nbytes = tensor_nbytes(ty, t.shape)
        total += nbytes
        if ty == "F32":
            w.add_tensor(t.name, np.zeros(t.shape, np.float32))
        elif ty == "F16":
            w.add_tensor(t.name, np.zeros(t.shape, np.float16))
        else:
            w.add_tensor(t.name, np.zeros((*t.shape[:-1], nbytes // t.n_rows), np.uint8),
                         raw_dtype=gguf.GGMLQuantizationType[ty])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return total


@pytest.mark.parametrize("file_type", ["Q4_K_M", "Q8_0", "IQ4_NL", "F16"])
def test_gguf_round_trip_dense(tmp_path: Path, file_type: str) -> None:
    path = tmp_path / "tiny.gguf"
    total = write_gguf(path, TINY, file_type, "llama")
    m = read_gguf(path)
    assert m.architecture == "llama" and m.version == 3 and m.file_type == file_type
    assert m.spec == TINY.replace(name="tiny")
    assert m.weights_bytes == total
    expected = get_dtype(file_type if file_type != "F16" else "gguf-F16").weight_bytes_by_part(TINY)
    assert m.bytes_by_part == {k: int(v) for k, v in expected.items()}
    assert m.param_count == TINY.param_count
    assert m.metadata["tokenizer.ggml.tokens"].count == 1000
    # plugs into estimate / sweep: a GGUFModel, or the path itself
    e = vramcore.estimate(m, context=64)
    assert e.weights_bytes == total and e.dtype == f"gguf:{file_type}"
    assert vramcore.estimate(str(path), context=64) == e
    assert round(e.bits_per_weight, 6) == round(m.bits_per_weight, 6)
    s = vramcore.sweep([m, TINY], ["auto", file_type if file_type != "F16" else "gguf-F16"], [64], [1], ["L4"])
    assert s.weights_bytes[0, 0, 0, 0, 0] == s.weights_bytes[1, 1, 0, 0, 0] == total


def test_gguf_round_trip_moe_and_gpt_oss(tmp_path: Path) -> None:
    moe = ModelSpec(num_layers=2, hidden_size=256, num_heads=4, num_kv_heads=2, head_dim=64, intermediate_size=256,
                    vocab_size=512, max_context=4096, num_experts=4, experts_per_token=2, moe_intermediate_size=256,
                    qk_norm=True, model_type="qwen3_moe")
    total = write_gguf(tmp_path / "moe.gguf", moe, "Q4_K_M", "qwen3moe")
    m = read_gguf(tmp_path / "moe.gguf")
    assert m.spec == moe.replace(name="tiny") and m.weights_bytes == total
    assert m.bytes_by_part["router"] == 4 * 256 * 4 * 2  # F32 routers, two layers
    oss = vramcore.get_model("gpt-oss-20b").spec.replace(
        num_layers=2, vocab_size=512, num_experts=4, experts_per_token=2, name="tiny",
        layer_types=("sliding_attention", "full_attention"))
    total = write_gguf(tmp_path / "oss.gguf", oss, "MXFP4_MOE", "gpt-oss")
    m = read_gguf(tmp_path / "oss.gguf")
    assert m.spec == oss and m.weights_bytes == total
    assert m.bytes_by_type["MXFP4"] == m.bytes_by_part["mlp_routed_experts"] - 2 * 4 * (2 * 2880 + 2880) * 4


def _kv_string(key: str, value: str) -> bytes:
    k, v = key.encode(), value.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", 8) + struct.pack("<Q", len(v)) + v


def _raw_gguf(path: Path, body: bytes, version: int = 3, n_tensors: int = 0, n_kv: int = 1,
              magic: bytes = b"GGUF") -> Path:
    path.write_bytes(magic + struct.pack("<IQQ", version, n_tensors, n_kv) + body)
    return path


def _tensor_info(name: str, ne: tuple[int, ...], type_id: int, offset: int) -> bytes:
    n = name.encode()
    return (struct.pack("<Q", len(n)) + n + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
            + struct.pack("<IQ", type_id, offset))


ARCH = _kv_string("general.architecture", "llama")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"body": ARCH, "magic": b"GGML"}, "not a GGUF file"),
    ({"body": ARCH, "version": 1}, "unsupported GGUF version 1"),
    ({"body": ARCH, "version": 3 << 24}, "big-endian"),
    ({"body": ARCH, "n_tensors": 2**60}, "cannot fit"),
    ({"body": ARCH, "n_kv": 2**40}, "cannot fit"),
    ({"body": struct.pack("<Q", 2**50) + b"key"}, "1125899906842624 bytes long, more than 65535"),
    ({"body": struct.pack("<Q", 1) + b"k" + struct.pack("<IQ", 8, 2**50)}, "needs 1125899906842624 bytes"),
    ({"body": ARCH[:-3]}, "file ends"),
    ({"body": struct.pack("<Q", 1) + b"k" + struct.pack("<I", 42)}, "unknown value type 42"),
    ({"body": struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 4, 2**61)}, "items of metadata 'k'"),
    ({"body": struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 8, 2**40)}, "items of metadata 'k'"),
    ({"body": struct.pack("<Q", 1) + b"k" + struct.pack("<II", 9, 77) + struct.pack("<Q", 1)},
     "unknown array item type 77"),
    ({"body": ARCH + ARCH, "n_kv": 2}, "appears twice"),
    ({"body": _kv_string("general.alignment", "x")}, "alignment must be a power of two"),
    ({"body": ARCH + _tensor_info("t", (32,) * 5, 0, 0), "n_tensors": 1}, "5 dimensions"),
    ({"body": ARCH + _tensor_info("t", (32,), 99, 0) + bytes(200), "n_tensors": 1}, "unknown ggml_type 99"),
    ({"body": ARCH + _tensor_info("t", (32,), 0, 4) + bytes(200), "n_tensors": 1}, "not a multiple of the alignment"),
    ({"body": ARCH + _tensor_info("t", (2**40,), 0, 0) + bytes(200), "n_tensors": 1}, "runs past the end"),
    ({"body": ARCH + _tensor_info("t", (0,), 0, 0) + bytes(200), "n_tensors": 1}, "has dimensions"),
    ({"body": ARCH + _tensor_info("t", (100,), 2, 0) + bytes(200), "n_tensors": 1}, "not a multiple of the 32"),
    ({"body": ARCH + _tensor_info("a", (32,), 0, 0) + _tensor_info("b", (32,), 0, 64) + bytes(300),
      "n_tensors": 2}, "overlap"),
    ({"body": ARCH + _tensor_info("a", (8,), 0, 0) + _tensor_info("a", (8,), 0, 32) + bytes(300),
      "n_tensors": 2}, "appears twice"),
    ({"body": ARCH + _tensor_info("x" * 300, (8,), 0, 0), "n_tensors": 1}, "more than 256"),
    ({"body": _kv_string("general.name", "x") + _tensor_info("a", (8,), 0, 0) + bytes(64), "n_tensors": 1},
     "'general.architecture' is missing"),
    ({"body": _kv_string("general.architecture", "mamba")}, "architecture 'mamba' is not supported"),
    ({"body": ARCH}, "block_count must be a positive integer"),
])
def test_gguf_rejects_corrupt_and_hostile_headers(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    path = _raw_gguf(tmp_path / "bad.gguf", **kwargs)
    with pytest.raises(ValueError, match=match):
        read_gguf(path)


def test_gguf_missing_file_and_bad_argument(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        read_gguf(tmp_path / "none.gguf")
    with pytest.raises(TypeError, match="path must be"):
        read_gguf(1.5)  # type: ignore[arg-type]


def test_gguf_reads_only_the_header(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    total = write_gguf(path, TINY, "Q4_K_M", "llama")
    data = path.read_bytes()
    m = read_gguf(path)
    # the data section is never read: garbage there changes nothing
    path.write_bytes(data[: m.data_offset] + b"\xff" * (len(data) - m.data_offset))
    assert read_gguf(path).weights_bytes == total
    # but a file cut inside the data is caught from the header's offsets alone
    path.write_bytes(data[:-64])
    with pytest.raises(ValueError, match="runs past the end of the file"):
        read_gguf(path)
