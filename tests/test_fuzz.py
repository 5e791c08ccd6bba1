"""Fuzz every entry point: only the documented exceptions, never a hang, never a traceback from the CLI.

Each case runs under a hang guard (``HANG_SECONDS``, far above the milliseconds
a case takes, so a loaded machine cannot trip it): a case that does not finish
raises :class:`Hang` and fails the test.  The documented exceptions are
``ValueError`` and ``TypeError`` (and their vramcore subclasses); anything else
that escapes -- ZeroDivisionError, OverflowError, RecursionError, KeyError,
MemoryError, a segfault -- is a failure.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import struct
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vramcore
from vramcore.cli import main

HANG_SECONDS = 30
DOCUMENTED = (ValueError, TypeError)
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class Hang(BaseException):
    """A case ran past the hang guard."""


@contextlib.contextmanager
def hang_guard(seconds: float = HANG_SECONDS) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def only_documented(call: Callable[[], Any]) -> Any:
    """Run `call`: return its value, or None when it raised a documented exception."""
    with hang_guard(), warnings.catch_warnings():
        warnings.simplefilter("ignore", vramcore.VramcoreWarning)
        try:
            return call()
        except DOCUMENTED:
            return None


# ----------------------------------------------------------------------------- values a file may hold
NASTY_NUMBERS = st.sampled_from([0, -1, 1, 2, 3, 7, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63, 10**9, 10**20,
                                 10**300, 10**400, 1e300, 1e20, 0.5, -0.0, math.inf, -math.inf, math.nan, 1.5, 4096.0])
LEAVES = (NASTY_NUMBERS | st.integers(-10, 10**6) | st.booleans() | st.none() | st.text(max_size=8)
          | st.floats(allow_nan=True, allow_infinity=True))
JSONISH = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                             max_size=4), max_leaves=12)

BASE_CONFIG: dict[str, Any] = {
    "model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
    "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100, "max_position_embeddings": 4096,
}
CONFIG_KEYS = [*BASE_CONFIG, "head_dim", "tie_word_embeddings", "attention_bias", "mlp_bias", "sliding_window",
               "layer_types", "sliding_window_pattern", "use_sliding_window", "max_window_layers", "num_experts",
               "num_local_experts", "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size",
               "decoder_sparse_step", "mlp_only_layers", "first_k_dense_replace", "moe_layer_freq", "q_lora_rank",
               "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "n_shared_experts",
               "quantization_config", "text_config", "use_qk_norm", "qk_norm", "no_rope_layers",
               "no_rope_layer_interval", "index_n_heads", "index_head_dim", "index_topk", "mlp_layer_types",
               "shared_expert_intermediate_size", "num_shared_experts", "num_nextn_predict_layers"]
MODEL_TYPES = sorted(vramcore.SUPPORTED_MODEL_TYPES) + ["kimi_k2", "mamba", "", "LLAMA", "nemotron_h", "falcon_h1",
                                                        "mllama"]
QUANT_CONFIGS = st.fixed_dictionaries({"quant_method": st.sampled_from(
    ["gptq", "awq", "bitsandbytes", "fp8", "mxfp4", "modelopt", "compressed-tensors", "hqq", 7])},
    optional={"bits": NASTY_NUMBERS, "group_size": NASTY_NUMBERS, "load_in_4bit": LEAVES,
              "bnb_4bit_quant_type": LEAVES, "weight_block_size": JSONISH, "quant_algo": LEAVES,
              "config_groups": JSONISH, "sym": LEAVES, "desc_act": LEAVES})


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    cfg = dict(BASE_CONFIG)
    cfg["model_type"] = draw(st.sampled_from(MODEL_TYPES))
    for key in draw(st.lists(st.sampled_from(CONFIG_KEYS), max_size=5, unique=True)):
        if key == "quantization_config":
            cfg[key] = draw(QUANT_CONFIGS | JSONISH)
        elif key == "layer_types":
            cfg[key] = draw(st.lists(st.sampled_from(["full_attention", "sliding_attention", "mamba", 3,
                                                      "linear_attention", "indexed_attention"]),
                                     max_size=4) | JSONISH)
        elif key == "text_config":
            cfg[key] = draw(st.builds(dict, st.just(BASE_CONFIG)) | JSONISH)
        else:
            cfg[key] = draw(NASTY_NUMBERS | LEAVES | JSONISH)
    return cfg


# valid small configs of the families whose readers take more than the Llama fields, for mutation below
_MOE = {"num_experts_per_tok": 2, "moe_intermediate_size": 32, "n_shared_experts": 1}
_MLA = {"kv_lora_rank": 16, "q_lora_rank": 24, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 8}
FAMILY_BASES: list[dict[str, Any]] = [
    {**BASE_CONFIG, "model_type": "glm4_moe", "n_routed_experts": 4, "first_k_dense_replace": 1, **_MOE},
    {**BASE_CONFIG, "model_type": "deepseek_v32", "n_routed_experts": 4, "first_k_dense_replace": 1,
     "index_n_heads": 2, "index_head_dim": 16, **_MOE, **_MLA},
    {**BASE_CONFIG, "model_type": "kimi_k2", "n_routed_experts": 4, **_MOE, **_MLA},
    {**BASE_CONFIG, "model_type": "smollm3", "no_rope_layers": [1, 0], "use_sliding_window": True,
     "sliding_window": 16},
    {**BASE_CONFIG, "model_type": "olmo2"},
    {**BASE_CONFIG, "model_type": "unknown_family", "num_local_experts": 4, "num_experts_per_tok": 2,
     "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 16},
    {"model_type": "unknown_wrapper", "text_config": {**BASE_CONFIG, "model_type": "olmo2"}},
    # hybrid recurrent and multimodal families: their recurrent mixers and vision towers are read too
    {**BASE_CONFIG, "model_type": "qwen3_next", "head_dim": 16, "num_experts": 4, "num_experts_per_tok": 2,
     "moe_intermediate_size": 32, "shared_expert_intermediate_size": 32, "linear_num_key_heads": 2,
     "linear_num_value_heads": 4, "linear_key_head_dim": 8, "linear_value_head_dim": 8, "linear_conv_kernel_dim": 4,
     "full_attention_interval": 2},
    {"model_type": "qwen3_5", "text_config": {**BASE_CONFIG, "model_type": "qwen3_5_text", "head_dim": 16,
                                              "linear_num_key_heads": 2, "linear_num_value_heads": 4,
                                              "linear_key_head_dim": 8, "linear_value_head_dim": 8},
     "vision_config": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "out_hidden_size": 64, "num_position_embeddings": 16}},
    {"model_type": "gemma3", "text_config": {**BASE_CONFIG, "model_type": "gemma3_text", "head_dim": 16},
     "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 56, "patch_size": 14, "vision_use_head": False}, "mm_tokens_per_image": 16},
    {"model_type": "mistral3", "text_config": {**BASE_CONFIG, "model_type": "mistral"}, "spatial_merge_size": 2,
     "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 112, "patch_size": 14}},
    {**BASE_CONFIG, "model_type": "qwen2_5_vl", "vision_config": {
        "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64}},
    {"model_type": "qwen3_vl", "text_config": {**BASE_CONFIG, "model_type": "qwen3_vl_text"},
     "vision_config": {"depth": 4, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "out_hidden_size": 64, "num_position_embeddings": 16, "deepstack_visual_indexes": [1, 2]}},
    {"model_type": "llama4", "text_config": {**BASE_CONFIG, "model_type": "llama4_text", "num_local_experts": 4,
                                             "intermediate_size_mlp": 128, "attention_chunk_size": 32},
     "vision_config": {"hidden_size": 32, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 56, "patch_size": 14, "vision_output_dim": 64,
                       "projector_input_dim": 64, "projector_output_dim": 64}},
]
VISION_KEYS = ["hidden_size", "intermediate_size", "num_hidden_layers", "depth", "num_attention_heads", "num_heads",
               "image_size", "patch_size", "spatial_merge_size", "temporal_patch_size", "out_hidden_size",
               "num_position_embeddings", "deepstack_visual_indexes", "pixel_shuffle_ratio", "vision_output_dim",
               "projector_input_dim", "projector_output_dim", "vision_use_head", "head_dim", "num_channels",
               "in_channels", "multi_modal_projector_bias"]


@st.composite
def family_configs(draw: st.DrawFn) -> dict[str, Any]:
    cfg = dict(draw(st.sampled_from(FAMILY_BASES)))
    if "text_config" in cfg:
        cfg["text_config"] = dict(cfg["text_config"])
    target = cfg.get("text_config", cfg)
    for key in draw(st.lists(st.sampled_from(sorted({*CONFIG_KEYS, *target} - {"text_config"})), max_size=4,
                             unique=True)):
        target[key] = draw(NASTY_NUMBERS | LEAVES | JSONISH | st.just(None))
    if isinstance(cfg.get("vision_config"), dict) and draw(st.booleans()):  # the tower's own fields
        vision = cfg["vision_config"] = dict(cfg["vision_config"])
        for key in draw(st.lists(st.sampled_from(VISION_KEYS), min_size=1, max_size=3, unique=True)):
            vision[key] = draw(NASTY_NUMBERS | LEAVES | JSONISH | st.just(None))
    for key in draw(st.lists(st.sampled_from(["mm_tokens_per_image", "spatial_merge_size", "vision_config",
                                              "tie_word_embeddings", "multimodal_projector_bias"]),
                             max_size=1)):
        cfg[key] = draw(NASTY_NUMBERS | LEAVES | JSONISH)
    return cfg


@FUZZ
@given(cfg=family_configs())
def test_fuzz_family_readers(cfg: dict[str, Any]) -> None:
    spec = only_documented(lambda: vramcore.ModelSpec.from_hf_config(cfg))
    if spec is not None:
        e = only_documented(lambda: vramcore.estimate(spec, context=1024, gpu="H100"))
        if e is not None:
            assert all(math.isfinite(v) for v in (e.weights_bytes, e.kv_cache_bytes, e.total_bytes))


@FUZZ
@given(cfg=configs())
def test_fuzz_from_hf_config(cfg: dict[str, Any]) -> None:
    spec = only_documented(lambda: vramcore.ModelSpec.from_hf_config(cfg))
    if spec is not None:  # what is accepted estimates to finite, whole byte counts
        e = only_documented(lambda: vramcore.estimate(spec, context=1024, gpu="H100"))
        if e is not None:
            assert all(math.isfinite(v) for v in (e.weights_bytes, e.kv_cache_bytes, e.total_bytes))


def test_fuzz_from_hf_config_deep_nesting_and_files(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "llama", "layer_types": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with hang_guard(), pytest.raises(ValueError, match="nested too deeply"):
        vramcore.ModelSpec.from_hf_config(path)
    fifo = tmp_path / "fifo" / "config.json"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    with hang_guard(), pytest.raises(ValueError, match="no such file"):
        vramcore.ModelSpec.from_hf_config(fifo)


@pytest.mark.parametrize(("key", "value", "match"), [
    ("num_hidden_layers", 10**9, "num_hidden_layers' must be <= 4096"),
    ("num_hidden_layers", 1e20, "num_hidden_layers' must be <= 4096"),
    ("hidden_size", math.inf, "hidden_size' must be an integer, got inf"),
    ("hidden_size", 1e300, "hidden_size' must be <= 262144"),
    ("head_dim", 10**300, "head_dim' must be <= 65536"),
    ("vocab_size", math.nan, "vocab_size' must be an integer, got nan"),
])
def test_config_counts_are_bounded_before_use(key: str, value: Any, match: str) -> None:
    with hang_guard(), pytest.raises(ValueError, match=match):
        vramcore.ModelSpec.from_hf_config({**BASE_CONFIG, key: value})


@pytest.mark.parametrize(("extra", "match"), [
    ({"model_type": "gemma3_text", "sliding_window_pattern": 0}, "sliding_window_pattern' must be >= 1"),
    ({"model_type": "qwen3_moe", "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
      "decoder_sparse_step": 0}, "decoder_sparse_step' must be >= 1"),
    ({"model_type": "qwen3_moe", "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
      "mlp_only_layers": [[0]]}, "mlp_only_layers' must be a list of integers"),
    ({"model_type": "deepseek_v3", "n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
      "kv_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 8, "moe_layer_freq": 0},
     "moe_layer_freq' must be >= 1"),
    ({"quantization_config": {"quant_method": "fp8", "weight_block_size": [1e400, 1e400]}},
     "weight_block_size' must be two positive integers"),
    ({"quantization_config": {"quant_method": "compressed-tensors",
                              "config_groups": {"g": {"weights": {"num_bits": math.inf}}}}}, "num_bits"),
])
def test_config_divisors_and_quantization_fields(extra: dict[str, Any], match: str) -> None:
    with hang_guard(), pytest.raises(ValueError, match=match):
        vramcore.ModelSpec.from_hf_config({**BASE_CONFIG, **extra})


# ----------------------------------------------------------------------------- GGUF headers
def _gguf_string(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def _gguf_kv(key: str, vtype: int, payload: bytes) -> bytes:
    return _gguf_string(key.encode()) + struct.pack("<I", vtype) + payload


def tiny_gguf(block_count: int = 2, n_tensors: int | None = None, alignment: int | None = None,
              dims: tuple[int, ...] = (64, 100), offset: int = 0) -> bytes:
    """A small, valid-looking llama GGUF v3 header (one F32 token_embd tensor) with fields to vary."""
    kvs = [
        _gguf_kv("general.architecture", 8, _gguf_string(b"llama")),
        _gguf_kv("llama.block_count", 10, struct.pack("<Q", block_count)),
        _gguf_kv("llama.embedding_length", 4, struct.pack("<I", 64)),
        _gguf_kv("llama.attention.head_count", 4, struct.pack("<I", 4)),
        _gguf_kv("llama.feed_forward_length", 4, struct.pack("<I", 128)),
    ]
    if alignment is not None:
        kvs.append(_gguf_kv("general.alignment", 10, struct.pack("<Q", alignment)))
    tensor = (_gguf_string(b"token_embd.weight") + struct.pack("<I", len(dims))
              + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<I", 0) + struct.pack("<Q", offset))
    head = b"GGUF" + struct.pack("<IQQ", 3, 1 if n_tensors is None else n_tensors, len(kvs)) + b"".join(kvs) + tensor
    pad = -len(head) % 32
    return head + b"\0" * pad + b"\0" * (4 * 64 * 100)


@FUZZ
@given(data=st.data())
def test_fuzz_read_gguf(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    raw = bytearray(tiny_gguf(
        block_count=data.draw(st.sampled_from([0, 1, 2, 2**31, 2**32 + 1, 2**63, 2**64 - 1])),
        n_tensors=data.draw(st.none() | st.sampled_from([0, 2, 2**40, 2**64 - 1])),
        alignment=data.draw(st.none() | st.sampled_from([0, 1, 3, 32, 2**40, 2**63])),
        dims=data.draw(st.sampled_from([(64, 100), (0, 100), (2**62, 2), (2**40, 2**40), (64,), (1, 1, 1, 1, 1)])),
        offset=data.draw(st.sampled_from([0, 32, 31, 2**63]))))
    for _ in range(data.draw(st.integers(0, 4))):  # flip bytes anywhere in the header
        pos = data.draw(st.integers(0, min(len(raw), 400) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.sampled_from([len(raw), 4, 24, 100, 300]))]
    path = tmp_path_factory.mktemp("gguf") / "f.gguf"
    path.write_bytes(bytes(raw))
    only_documented(lambda: vramcore.read_gguf(path))


def test_gguf_huge_block_count_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "f.gguf"
    path.write_bytes(tiny_gguf(block_count=2**31))
    with hang_guard(), pytest.raises(ValueError, match="block_count must be <= 4096, got 2147483648"):
        vramcore.read_gguf(path)


def test_gguf_alignment_past_the_file_is_named_not_negative(tmp_path: Path) -> None:
    path = tmp_path / "f.gguf"
    path.write_bytes(tiny_gguf(alignment=2**20))
    with pytest.raises(ValueError, match="header ends at byte 1048576 .* past the end of the file") as info:
        vramcore.read_gguf(path)
    assert "-" not in str(info.value).split("past the end")[1]


# ----------------------------------------------------------------------------- safetensors headers
@FUZZ
@given(header=JSONISH, extra=st.binary(max_size=64), length_delta=st.sampled_from([0, 0, 1, -1, 2**40]))
def test_fuzz_read_safetensors(tmp_path_factory: pytest.TempPathFactory, header: Any, extra: bytes,
                               length_delta: int) -> None:
    body = json.dumps(header).encode()
    n = max(0, len(body) + length_delta)
    path = tmp_path_factory.mktemp("st") / "model.safetensors"
    path.write_bytes(struct.pack("<Q", n) + body + extra)
    only_documented(lambda: vramcore.read_safetensors(path))


def test_safetensors_deep_header_and_fifo(tmp_path: Path) -> None:
    body = b"[" * 200_000 + b"]" * 200_000
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    with hang_guard(), pytest.raises(ValueError, match="nested too deeply"):
        vramcore.read_safetensors(path)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    os.mkfifo(folder / "model.safetensors")
    with hang_guard(), pytest.raises(ValueError, match="no \\*.safetensors files"):
        vramcore.read_safetensors(folder)


# ----------------------------------------------------------------------------- sweep / estimate arguments
ARGS = st.fixed_dictionaries({}, optional={
    "dtypes": st.sampled_from(["bf16", "int4", "Q4_K_M", "auto", "fp8", ["bf16", "bf16"], [], "nope", 4, None]),
    "contexts": st.sampled_from([1, 4096, 0, -1, 2**53, 2**53 + 1, 1.5, math.nan, math.inf, [1, 2], [], [[1]],
                                 np.int64(8), np.array(4096), np.array([1, 2]), np.zeros((2, 2)), "8k", True]),
    "batches": st.sampled_from([1, 64, 0, 2**40, np.uint8(3), np.array([1.0, 2.0]), [True], None]),
    "gpus": st.sampled_from(["H100", "RTX-4090", "no-such-gpu", ["H100", "L4"], [], 7]),
    "engine": st.sampled_from(["transformers", "vllm", "llamacpp", "sglang", "trtllm", ["vllm", "llamacpp"],
                               "train", "lora", "qlora", ["train", "lora", "qlora"], "nope", 3]),
    "n_threads": st.sampled_from([1, 2, 0, -3, 100_000, 2**31 - 1, 2**31, 2**64, 1.5, np.int32(2), None]),
    "n_gpus": st.sampled_from([1, 2, 8, 0, 3, 2**20]),
    "gpu_memory": st.sampled_from(["usable", "total", "cuda_visible", "half", 0, 2**30, 10**400]),
    "kv_dtype": st.sampled_from([None, "fp8", "int4", "gptq-int4-g128", "bf16", 8]),
})


@FUZZ
@given(kwargs=ARGS)
def test_fuzz_sweep_arguments(kwargs: dict[str, Any]) -> None:
    s = only_documented(lambda: vramcore.sweep("Qwen3-8B", **kwargs))
    if s is not None:
        assert np.isfinite(s.total_bytes).all()


@FUZZ
@given(kwargs=ARGS, suffix=st.sampled_from([".csv", ".json", ".parquet", ".txt", ""]),
       chunk=st.sampled_from([1, 3, 2**22, 0, -1, 1.5, None]))
def test_fuzz_sweep_to_arguments(tmp_path_factory: pytest.TempPathFactory, kwargs: dict[str, Any], suffix: str,
                                 chunk: Any) -> None:
    folder = tmp_path_factory.mktemp("sweep_to")
    path = folder / f"grid{suffix}"
    fmt = only_documented(lambda: vramcore.sweep_to(path, "Qwen3-8B", **kwargs, chunk_cells=chunk))
    if fmt is None:
        assert list(folder.iterdir()) == []      # refused: no file, no temporary
    else:
        assert [p.name for p in folder.iterdir()] == [path.name] and path.stat().st_size > 0


def test_n_threads_far_above_the_cores_is_clipped_with_a_warning() -> None:
    with hang_guard(), pytest.warns(vramcore.VramcoreWarning, match="n_threads=100000 clipped to"):
        s = vramcore.sweep("Qwen3-8B", contexts=[1024, 2048], n_threads=100_000)
    assert s.total_bytes.shape == (1, 1, 2, 1, 1)


def test_a_grid_larger_than_memory_says_how_big_before_allocating() -> None:
    with hang_guard(), pytest.raises(ValueError, match=r"10,000,000,000 cells .* GiB of results.*vramcore\.dask"):
        vramcore.sweep("Qwen3-8B", contexts=np.arange(1, 100_001), batches=np.arange(1, 100_001))


def test_gpu_spec_memory_is_bounded() -> None:
    with pytest.raises(ValueError, match=r"memory_total_bytes must be <= 2\*\*50"):
        vramcore.GPUSpec(name="x", vendor="y", memory_total_bytes=10**400, source="z")


# ----------------------------------------------------------------------------- the command line
FLAGS = ["--gpu", "--context", "--batch", "--dtype", "--engine", "--json", "--check", "--kv-dtype", "--tp",
         "--pp", "--n-gpus", "--gpu-memory", "-o", "--progress", "--no-progress", "--min-memory", "--family",
         "--gpu-memory-utilization", "--max-model-len", "--block-size", "--kv-cache-dtype", "-ngl", "-ctk", "-ctv",
         "--no-flash-attn", "-ub", "--enforce-eager", "--mem-fraction-static", "--train", "--lora-rank",
         "--lora-targets", "--optimizer", "--precision", "--recompute", "--attention", "--zero", "--fsdp", "--dp",
         "--offload-optimizer", "--offload-params", "--gradient-checkpointing", "--images", "--image-size"]
VALUES = ["H100", "24GiB", "8k", "1:64:x2", "0", "-1", "1e999", "nan", "bf16,int4", "vllm", "9" * 40, "", ",",
          "1:2:x0", "1:100000000", "a=b", "/dev/null/x.csv", "DeepSeek-R1-Distill-Llama-8B", "--", "x",
          "q8_0", "q4_0", "fp8_e5m2", "nvfp4", "0.95", "1.5", "llamacpp", "vllm,llamacpp", "full,lora,qlora",
          "qlora", "3", "q_proj,v_proj", "all-linear", "paged_adamw_8bit", "full_shard", "eager", "fp32",
          "1024x768", "0x5", "x", "Gemma-3-4B", "100000000x1"]


@FUZZ
@given(command=st.sampled_from(["estimate", "sweep", "fit", "models", "gpus", "card", "plot", "dtypes", "nope"]),
       sub=st.sampled_from(["", "context", "batch", "gpus", "dtype", "estimate"]),
       words=st.lists(st.sampled_from(FLAGS) | st.sampled_from(VALUES), max_size=6),
       model=st.sampled_from(["Qwen3-8B", "Gemma-3-4B"]))
def test_fuzz_cli_never_shows_a_traceback(command: str, sub: str, words: list[str], model: str) -> None:
    argv = [command] + ([sub] if sub else []) + [model] + words
    out, err = io.StringIO(), io.StringIO()
    with hang_guard(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", vramcore.VramcoreWarning)
        code = main(argv)
    assert code in (0, 1, 2), (argv, code, err.getvalue())
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue(), (argv, err.getvalue())


def test_cli_output_to_a_full_disk_is_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "vramcore", "models"], stdout=full, stderr=subprocess.PIPE,
                                text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["vramcore: error: cannot write the output: No space left on device"]


# ----------------------------------------------------------------------------- numpy values where numbers go
def test_numpy_scalars_and_0d_arrays_are_numbers() -> None:
    plain = vramcore.estimate("Qwen3-8B", context=8192, batch=2, gpu="H100")
    assert vramcore.estimate("Qwen3-8B", context=np.array(8192), batch=np.int32(2), gpu="H100") == plain
    engine = vramcore.get_engine("vllm", block_size=np.int64(32), gpu_memory_utilization=np.float32(0.5))
    assert engine.block_size == 32 and type(engine.block_size) is int and engine.mem_fraction == 0.5
    spec = vramcore.ModelSpec(num_layers=np.int64(2), hidden_size=64, num_heads=4, intermediate_size=8,
                              vocab_size=10, layer_types=np.array(["full_attention"] * 2))
    assert type(spec.num_layers) is int and spec.layer_types == ("full_attention", "full_attention")


@pytest.mark.parametrize(("knobs", "exc", "match"), [
    ({"gpu_memory_utilization": np.array([0.9, 0.8])}, TypeError, "must be one value, got ndarray"),
    ({"block_size": [16, 32]}, TypeError, "must be one value, got list"),
    ({"gpu_memory_utilization": math.inf}, ValueError, "must be a finite number, got inf"),
    ({"cuda_graph_bytes": 10**400}, ValueError, "cuda_graph_bytes must be at most 2\\*\\*53"),
])
def test_engine_knobs_take_one_finite_value(knobs: dict[str, Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        vramcore.get_engine("vllm", **knobs)


@FUZZ
@given(kind=st.sampled_from(["transformers", "vllm", "sglang", "trtllm", "llamacpp"]),
       knobs=st.dictionaries(st.sampled_from(["gpu_memory_utilization", "block_size", "max_num_seqs", "n_ubatch",
                                              "n_gpu_layers", "max_model_len", "kv_cache_dtype", "flash_attn",
                                              "sliding_cap_offset", "cuda_graph_bytes", "enforce_eager"]),
                             NASTY_NUMBERS | LEAVES | st.just(np.array([1, 2])), max_size=3))
def test_fuzz_engine_knobs(kind: str, knobs: dict[str, Any]) -> None:
    _fuzz_estimate(kind, knobs)


@FUZZ
@given(kind=st.sampled_from(["train", "lora", "qlora"]),
       model=st.sampled_from(["Qwen3-8B", "Qwen3-30B-A3B", "DeepSeek-R1", "Gemma-2-2B", "gpt-oss-20b"]),
       knobs=st.dictionaries(st.sampled_from(["lora_rank", "lora_targets", "optimizer", "precision", "recompute",
                                              "attention", "zero", "dp", "offload_optimizer", "offload_params",
                                              "momentum", "fsdp", "r", "target_modules", "backward_transient"]),
                             NASTY_NUMBERS | LEAVES | st.sampled_from(["all-linear", ["q_proj"], ["nope"], [],
                                                                       "adamw_8bit", "eager", "full", 3, "fp32",
                                                                       ["gate_proj"], "full_shard", 1, 0])
                             | st.just(np.array([1, 2])), max_size=4))
def test_fuzz_training_knobs(kind: str, model: str, knobs: dict[str, Any]) -> None:
    _fuzz_estimate(kind, knobs, model)


def _fuzz_estimate(kind: str, knobs: dict[str, Any], model: str = "Qwen3-8B") -> None:
    def run() -> Any:
        return vramcore.estimate(model, context=4096, gpu="H100", engine=vramcore.get_engine(kind, **knobs))

    e = only_documented(run)
    if e is not None:
        assert math.isfinite(e.total_bytes)
