"""Exact quantized storage: per-tensor view, GGUF recipes, GPTQ / AWQ / bitsandbytes / fp8 / MX formats, auto."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vramcore.ggml import GGML_TYPES, gguf_tensor_types, tensor_nbytes
from vramcore.quant import format_from_quantization_config, parse_format, resolve_auto

import vramcore
from vramcore import PARTS, ModelSpec, get_dtype, list_tensors

GiB = 2**30
LLAMA31_8B = "Llama-3.1-8B"


# ----------------------------------------------------------------------------- the per-tensor view
@pytest.mark.parametrize("name", vramcore.list_models())
def test_tensor_list_sums_to_param_breakdown(name: str) -> None:
    spec = vramcore.get_model(name).spec
    sums = dict.fromkeys(PARTS, 0)
    for t in list_tensors(spec):
        sums[t.part] += t.numel
    assert sums == spec.param_breakdown()
    names = [t.name for t in list_tensors(spec)]
    assert len(names) == len(set(names))


def test_tensor_shapes_follow_pytorch_order() -> None:
    ts = {t.name: t for t in list_tensors(vramcore.get_model(LLAMA31_8B).spec)}
    assert ts["token_embd.weight"].shape == (128256, 4096)
    assert ts["blk.31.ffn_down.weight"].shape == (4096, 14336) and ts["blk.31.ffn_down.weight"].row_length == 14336
    assert ts["blk.0.attn_norm.weight"].part == "norms" and not ts["blk.0.attn_norm.weight"].is_matrix
    moe = {t.name: t for t in list_tensors(vramcore.get_model("Mixtral-8x7B-v0.1").spec)}
    assert moe["blk.0.ffn_down_exps.weight"].shape == (8, 4096, 14336)
    assert moe["blk.0.ffn_gate_inp.weight"].part == "router"


def test_list_tensors_rejects_non_spec() -> None:
    with pytest.raises(TypeError, match="spec must be a ModelSpec"):
        list_tensors("Llama-3.1-8B")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- GGUF recipes
# llama.cpp tools/quantize/README.md, table "meta-llama/Llama-3.1-8B": bits/weight and size (GiB)
# of every file type, measured on real files by llama-bench.
LLAMA_CPP_TABLE = {
    "IQ1_S": (2.0042, 1.87), "IQ1_M": (2.1460, 2.01), "IQ2_XXS": (2.3824, 2.23), "IQ2_XS": (2.5882, 2.42),
    "IQ2_S": (2.7403, 2.56), "IQ2_M": (2.9294, 2.74), "IQ3_XXS": (3.2548, 3.04), "IQ3_XS": (3.4977, 3.27),
    "IQ3_S": (3.6606, 3.42), "IQ3_M": (3.7628, 3.52), "IQ4_XS": (4.4597, 4.17), "IQ4_NL": (4.6818, 4.38),
    "Q2_K_S": (2.9697, 2.78), "Q2_K": (3.1593, 2.95), "Q3_K_S": (3.6429, 3.41), "Q3_K_L": (4.2979, 4.02),
    "Q4_K_S": (4.6672, 4.36), "Q4_K_M": (4.8944, 4.58), "Q5_K_S": (5.5704, 5.21), "Q5_K_M": (5.7036, 5.33),
    "Q6_K": (6.5633, 6.14), "Q8_0": (8.5008, 7.95), "F16": (16.0005, 14.96),
}


def test_llama31_8b_q4_k_m_matches_llama_cpp() -> None:
    # llama.cpp tools/quantize/README.md: Llama-3.1-8B Q4_K_M = 4.8944 bits/weight, 4.58 GiB
    e = vramcore.estimate(LLAMA31_8B, dtype="Q4_K_M", context=1)
    assert round(e.bits_per_weight, 4) == 4.8944
    assert round(e.weights_bytes / GiB, 2) == 4.58
    assert e.weights_bytes == 4_912_898_048  # exact: the sum of the recipe's tensors


@pytest.mark.parametrize("file_type", sorted(LLAMA_CPP_TABLE))
def test_llama31_8b_every_file_type_matches_llama_cpp(file_type: str) -> None:
    spec = vramcore.get_model(LLAMA31_8B).spec
    bpw, gib = LLAMA_CPP_TABLE[file_type]
    name = f"gguf-{file_type}" if file_type == "F16" else file_type
    total = sum(get_dtype(name).weight_bytes_by_part(spec).values())
    assert round(total * 8 / spec.param_count, 4) == bpw
    assert round(total / GiB, 2) == gib


def test_q4_k_m_recipe_rules() -> None:
    spec = vramcore.get_model(LLAMA31_8B).spec
    types = {t.name: ty for t, ty in gguf_tensor_types(spec, "Q4_K_M")}
    assert types["output.weight"] == "Q6_K" and types["token_embd.weight"] == "Q4_K"
    # use_more_bits(i, 32): layers 0-3, 28-31 and every third layer from 6
    more = [i for i in range(32) if types[f"blk.{i}.attn_v.weight"] == "Q6_K"]
    assert more == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
    assert more == [i for i in range(32) if types[f"blk.{i}.ffn_down.weight"] == "Q6_K"]
    assert {types[f"blk.{i}.attn_q.weight"] for i in range(32)} == {"Q4_K"}
    assert {ty for n, ty in types.items() if n.endswith("_norm.weight")} == {"F32"}


def test_gguf_fallbacks_for_rows_that_are_not_whole_blocks() -> None:
    # Qwen2.5-0.5B: hidden 896 is not a multiple of 256, so K-quant rows fall back (Q4_K -> Q5_0),
    # and the tied embedding (the output) goes to Q8_0; ffn_down rows (4864 = 19 x 256) keep K-quants.
    spec = vramcore.get_model("Qwen2.5-0.5B").spec
    types = {t.name: ty for t, ty in gguf_tensor_types(spec, "Q4_K_M")}
    assert types["token_embd.weight"] == "Q8_0"
    assert types["blk.5.attn_q.weight"] == "Q5_0"
    assert types["blk.5.ffn_down.weight"] in ("Q4_K", "Q6_K")
    assert types["blk.0.attn_q.bias"] == "F32"


def test_gguf_moe_and_70b_rules() -> None:
    mixtral = {t.name: ty for t, ty in gguf_tensor_types(vramcore.get_model("Mixtral-8x7B-v0.1").spec, "Q4_K_M")}
    assert mixtral["blk.7.attn_v.weight"] == "Q8_0" and mixtral["blk.7.attn_k.weight"] == "Q8_0"  # 8 experts
    assert mixtral["blk.7.attn_output.weight"] == "Q5_K"
    assert mixtral["blk.7.ffn_gate_inp.weight"] == "F32"  # routers are never quantized
    llama70 = {t.name: ty for t, ty in gguf_tensor_types(vramcore.get_model("Llama-3.1-70B").spec, "Q4_K_M")}
    assert llama70["blk.10.attn_v.weight"] == "Q5_K"  # 70B: Q4_K attn_v bumped to Q5_K
    mx = {t.name: ty for t, ty in gguf_tensor_types(vramcore.get_model("gpt-oss-20b").spec, "MXFP4_MOE")}
    assert mx["blk.0.ffn_down_exps.weight"] == "MXFP4" and mx["blk.0.attn_q.weight"] == "Q8_0"
    assert mx["output.weight"] == "Q8_0"


def test_gguf_imatrix_changes_only_what_llama_cpp_says() -> None:
    spec = vramcore.get_model(LLAMA31_8B).spec
    for ft in ("Q4_K_M", "Q5_K_S", "Q6_K"):
        assert gguf_tensor_types(spec, ft, imatrix=True) == gguf_tensor_types(spec, ft, imatrix=False)
    with_im = dict((t.name, ty) for t, ty in gguf_tensor_types(spec, "IQ4_XS", imatrix=True))
    without = dict((t.name, ty) for t, ty in gguf_tensor_types(spec, "IQ4_XS", imatrix=False))
    assert without["blk.0.ffn_down.weight"] == "Q5_K" and with_im["blk.0.ffn_down.weight"] == "IQ4_XS"


def test_ggml_block_sizes() -> None:
    # llama.cpp ggml.c type_traits (the reference README's table)
    for name, (block, size) in {"Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24),
                                "Q8_0": (32, 34), "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144),
                                "Q5_K": (256, 176), "Q6_K": (256, 210), "IQ4_XS": (256, 136),
                                "IQ4_NL": (32, 18), "MXFP4": (32, 17)}.items():
        assert (GGML_TYPES[name].block_size, GGML_TYPES[name].type_size) == (block, size)
    with pytest.raises(ValueError, match="not a multiple"):
        tensor_nbytes("Q4_K", (10, 100))
    with pytest.raises(ValueError, match="ggml_type must be one of"):
        tensor_nbytes("Q9_K", (10, 256))


def test_gguf_bad_arguments() -> None:
    spec = vramcore.get_model(LLAMA31_8B).spec
    with pytest.raises(ValueError, match="file_type must be one of"):
        gguf_tensor_types(spec, "Q4_K_X")
    with pytest.raises(ValueError, match="source must be"):
        gguf_tensor_types(spec, "Q4_K_M", source="Q8_0")


def test_q8_0_without_fallback_raises() -> None:
    # a row of 100 elements fits no 32-element block: llama.cpp aborts, so do we (naming the tensor)
    spec = ModelSpec(num_layers=1, hidden_size=100, num_heads=4, intermediate_size=64, vocab_size=64)
    with pytest.raises(ValueError, match="tensor '.*': rows of 100 elements .* no fallback for Q8_0"):
        get_dtype("Q8_0").weight_bytes_by_part(spec)


# ----------------------------------------------------------------------------- GPTQ / AWQ / compressed-tensors
def _linear_bytes(fmt: str, out_f: int, in_f: int) -> int:
    spec = ModelSpec(num_layers=1, hidden_size=in_f, num_heads=1, head_dim=out_f, intermediate_size=8,
                     vocab_size=8, model_type="llama")
    st = get_dtype(fmt).tensor_storage(spec)
    return next(s.nbytes for s in st if s.tensor.name == "blk.0.attn_q.weight")


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("group", [32, 64, 128, -1])
def test_gptq_bytes_per_tensor(bits: int, group: int) -> None:
    # AutoGPTQ QuantLinear buffers: qweight int32 (in*b/32, out), qzeros int32 (G, out*b/32),
    # scales fp16 (G, out), g_idx int32 (in,)
    out_f, in_f = 512, 1024
    g = in_f if group == -1 else group
    groups = math.ceil(in_f / g)
    expected = (in_f * bits // 32) * out_f * 4 + groups * (out_f * bits // 32) * 4 + groups * out_f * 2 + in_f * 4
    name = f"gptq-int{bits}-{'pc' if group == -1 else f'g{group}'}"
    assert _linear_bytes(name, out_f, in_f) == expected
    assert _linear_bytes(name + "-desc", out_f, in_f) == expected  # act-order changes g_idx values, not bytes


def test_awq_and_compressed_tensors_bytes() -> None:
    out_f, in_f = 512, 1024
    # AutoAWQ GEMM: qweight (in, out/8), qzeros (G, out/8) int32, scales (G, out) fp16
    assert _linear_bytes("awq-int4-g128", out_f, in_f) == in_f * out_f // 2 + 8 * (out_f // 8) * 4 + 8 * out_f * 2
    # compressed-tensors pack-quantized: weight_packed (out, in/8) int32, weight_scale (out, G) bf16,
    # weight_shape int64 (2,); asym adds weight_zero_point int32 (out/8, G), act-order weight_g_idx (in,)
    sym = out_f * in_f // 2 + out_f * 8 * 2 + 16
    assert _linear_bytes("ct-int4-g128", out_f, in_f) == sym
    assert _linear_bytes("ct-int4-g128-asym", out_f, in_f) == sym + (out_f // 8) * 8 * 4
    assert _linear_bytes("ct-int4-g128-desc", out_f, in_f) == sym + in_f * 4


def test_bitsandbytes_bytes() -> None:
    out_f, in_f = 512, 1024
    n = out_f * in_f
    # LLM.int8: int8 weight + fp32 SCB per row
    assert _linear_bytes("bnb-int8", out_f, in_f) == n + 4 * out_f
    # 4-bit: n/2 bytes + fp32 absmax per 64 + 16-entry fp32 code
    assert _linear_bytes("bnb-nf4", out_f, in_f) == n // 2 + 4 * (n // 64) + 64
    assert _linear_bytes("bnb-fp4", out_f, in_f) == n // 2 + 4 * (n // 64) + 64
    # double quant: uint8 absmax, fp32 per 256 blocks, 256-entry fp32 nested code, fp32 offset
    blocks = n // 64
    assert _linear_bytes("bnb-nf4-dq", out_f, in_f) == n // 2 + blocks + 64 + 4 * math.ceil(blocks / 256) + 1024 + 4


def test_fp8_and_microscaling_bytes() -> None:
    out_f, in_f = 512, 1024
    n = out_f * in_f
    assert _linear_bytes("fp8-tensor", out_f, in_f) == n + 4
    assert _linear_bytes("fp8-channel", out_f, in_f) == n + 2 * out_f
    assert _linear_bytes("fp8-block128", out_f, in_f) == n + 4 * (out_f // 128) * (in_f // 128)  # weight_scale_inv
    assert _linear_bytes("nvfp4", out_f, in_f) == n // 2 + n // 16 + 8  # fp8 scale per 16, two fp32 scalars
    # MXFP4 keeps attention in bf16 (gpt-oss modules_to_not_convert); its MLP rows are 4.25 bits
    assert _linear_bytes("mxfp4", out_f, in_f) == 2 * n
    spec = ModelSpec(num_layers=1, hidden_size=in_f, num_heads=1, head_dim=64, intermediate_size=out_f,
                     vocab_size=8)
    mlp = get_dtype("mxfp4").weight_bytes_by_part(spec)["mlp_dense"]
    assert mlp * 8 / spec.param_breakdown()["mlp_dense"] == 4.25


def test_gpt_oss_mxfp4_checkpoint_sizes() -> None:
    # OpenAI gpt-oss model card (arXiv:2508.10925), Table 1: checkpoint size 12.8 GiB (20b), 60.8 GiB (120b)
    for name, gib in (("gpt-oss-20b", 12.8), ("gpt-oss-120b", 60.8)):
        e = vramcore.estimate(name, context=1)
        assert e.dtype == "mxfp4"  # "auto" reads the card's quantization_config
        assert round(e.weights_bytes / GiB, 1) == gib
        assert e.weights_by_part["attention"] == 2 * vramcore.get_model(name).spec.param_breakdown()["attention"]


@pytest.mark.parametrize("family", ["gptq-int{b}-g128", "ct-int{b}-g128"])
def test_bytes_grow_with_bits(family: str) -> None:
    spec = vramcore.get_model("Llama-3.2-1B").spec
    bits = (2, 4, 8)
    totals = [sum(get_dtype(family.format(b=b)).weight_bytes_by_part(spec).values()) for b in bits]
    assert totals == sorted(totals) and len(set(totals)) == 3


def test_group_overhead_shrinks_with_group_size() -> None:
    spec = vramcore.get_model("Llama-3.2-1B").spec
    totals = [sum(get_dtype(f"gptq-int4-{g}").weight_bytes_by_part(spec).values())
              for g in ("g32", "g64", "g128", "pc")]
    assert totals == sorted(totals, reverse=True)
    # the difference between two group sizes is exactly the scales (fp16) and zeros (int4) of the extra groups
    linears = [t for t in list_tensors(spec) if t.is_matrix and t.part in ("attention", "mlp_dense")]
    extra = sum((t.row_length // 64 - t.row_length // 128) * t.n_rows * (2 + 0.5) for t in linears)
    assert totals[1] - totals[2] == extra


def test_gguf_bytes_grow_with_bits() -> None:
    spec = vramcore.get_model(LLAMA31_8B).spec
    order = ["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "gguf-F16", "gguf-F32"]
    totals = [sum(get_dtype(ft).weight_bytes_by_part(spec).values()) for ft in order]
    assert totals == sorted(totals)


@pytest.mark.parametrize("fmt", ["gptq-int4-g128", "awq-int4-g128", "bnb-nf4-dq", "fp8-block128", "mxfp4",
                                 "nvfp4", "Q4_K_M", "IQ2_XXS", "ct-int4-g128-asym"])
@pytest.mark.parametrize("model", ["Qwen3-30B-A3B", "DeepSeek-V3", "gemma-3-1b", "Phi-3-mini-4k-instruct"])
def test_parts_sum_to_total_and_unquantized_parts_stay_16_bit(fmt: str, model: str) -> None:
    spec = vramcore.get_model(model).spec
    dt = get_dtype(fmt)
    stored = dt.tensor_storage(spec)
    parts = dt.weight_bytes_by_part(spec)
    assert sum(parts.values()) == sum(s.nbytes for s in stored)
    assert all(float(v).is_integer() for v in parts.values())
    if dt.family != "gguf":  # HF formats: embedding and lm_head in bf16
        p = spec.param_breakdown()
        assert parts["embedding"] == 2 * p["embedding"] and parts["lm_head"] == 2 * p["lm_head"]
    e = vramcore.estimate(model, dtype=fmt, context=1)
    # transformers (the default engine) holds an MoE's fused experts unquantized under bitsandbytes
    held = dict(parts)
    if dt.family == "bitsandbytes" and spec.is_moe:
        held["mlp_routed_experts"] = 2 * spec.param_breakdown()["mlp_routed_experts"]
    assert e.weights_bytes == sum(held.values()) and e.weights_by_part == held


def test_bitsandbytes_moe_experts_are_quantized_by_vllm_not_by_transformers() -> None:
    # transformers 5.24 quantizes Linear4bit parameters only (quantizer_bnb_4bit.param_needs_quantization) and
    # holds routed experts as fused 3-D parameters: they stay bf16; vLLM's BitsAndBytesMoEMethod quantizes them
    spec = vramcore.get_model("Qwen3-30B-A3B").spec
    stored = get_dtype("bnb-nf4").weight_bytes_by_part(spec)
    hf = vramcore.estimate(spec, dtype="bnb-nf4", context=4096, engine="transformers", gpu="H200")
    vllm = vramcore.estimate(spec, dtype="bnb-nf4", context=4096, engine="vllm", gpu="H200")
    assert hf.weights_by_part["mlp_routed_experts"] == 2 * spec.param_breakdown()["mlp_routed_experts"]
    assert vllm.weights_by_part["mlp_routed_experts"] == stored["mlp_routed_experts"]
    assert hf.weights_by_part["attention"] == vllm.weights_by_part["attention"] == stored["attention"]
    grid = vramcore.sweep(spec, ["bnb-nf4", "bf16"], 4096, 1, "H200", engine=["transformers", "vllm"])
    weights = grid.weights_bytes
    assert float(weights.reshape(-1)[0]) == hf.weights_bytes and float(weights.reshape(-1)[1]) == vllm.weights_bytes
    dense = vramcore.estimate("Qwen3-8B", dtype="bnb-nf4", context=4096)     # no experts: as stored
    assert dense.weights_bytes == sum(get_dtype("bnb-nf4").weight_bytes_by_part(
        vramcore.get_model("Qwen3-8B").spec).values())


# ----------------------------------------------------------------------------- names, auto, config
def test_format_names() -> None:
    assert parse_format("GPTQ_INT4_G128").name == "gptq-int4-g128"
    assert parse_format("gptq-int4-g-1").name == "gptq-int4-pc"
    assert parse_format("gptq-int8-g128-desc").desc_act
    assert parse_format("gguf-q4_k_m").name == "Q4_K_M"
    assert parse_format("fp16") is None
    with pytest.raises(ValueError, match="GPTQ bits must be 2, 3, 4 or 8, got 5"):
        get_dtype("gptq-int5-g128")
    with pytest.raises(ValueError, match="AWQ .* 4-bit weights only"):
        get_dtype("awq-int8-g128")
    with pytest.raises(ValueError, match="unknown dtype 'gptq-int4-g12x'.*did you mean 'gptq-int4-g128'"):
        get_dtype("gptq-int4-g12x")
    assert set(vramcore.list_dtypes()) <= set(vramcore.list_dtypes("all"))
    for name in vramcore.list_dtypes("formats"):
        assert get_dtype(name).name == name
    with pytest.raises(ValueError, match="kind must be"):
        vramcore.list_dtypes("quant")


def test_kv_dtype_rejects_weight_formats() -> None:
    with pytest.raises(ValueError, match="kv_dtype must be a plain element type.*'Q4_K_M'"):
        vramcore.estimate("Llama-3.2-1B", context=8, kv_dtype="Q4_K_M")


@pytest.mark.parametrize(("qc", "expected"), [
    ({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}, "gptq-int4-g128"),
    ({"quant_method": "gptq", "bits": 8, "group_size": -1, "desc_act": True}, "gptq-int8-pc-desc"),
    ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}, "awq-int4-g128"),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "bnb-int8"),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "fp4"}, "bnb-fp4"),
    ({"quant_method": "fp8", "activation_scheme": "dynamic", "fmt": "e4m3", "weight_block_size": [128, 128]},
     "fp8-block128"),
    ({"quant_method": "fp8", "activation_scheme": "dynamic"}, "fp8-tensor"),
    ({"quant_method": "mxfp4", "modules_to_not_convert": ["lm_head"]}, "mxfp4"),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4"}, "nvfp4"),
    ({"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"group_0": {
        "targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "symmetric": True,
                                           "strategy": "group", "group_size": 128}}}}, "ct-int4-g128"),
    ({"quant_method": "compressed-tensors", "format": "float-quantized", "config_groups": {"group_0": {
        "targets": ["Linear"], "weights": {"num_bits": 8, "type": "float", "strategy": "channel"}}}},
     "fp8-channel"),
    ({"quant_method": "hqq"}, "unsupported:hqq"),
])
def test_quantization_config_selects_format(qc: dict, expected: str) -> None:
    assert format_from_quantization_config(qc) == expected


def test_auto_dtype_follows_config() -> None:
    cfg = dict(vramcore.get_model("Llama-3.2-1B").config)
    plain = vramcore.estimate(cfg, context=1)
    assert plain.dtype == "bf16"
    assert plain.weights_bytes == vramcore.estimate(cfg, dtype="bf16", context=1).weights_bytes
    cfg["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": 128}
    spec = ModelSpec.from_hf_config(cfg)
    assert spec.quantization == "gptq-int4-g128"
    e = vramcore.estimate(cfg, context=1)
    assert e.dtype == "gptq-int4-g128"
    assert e.weights_bytes == vramcore.estimate(cfg, dtype="gptq-int4-g128", context=1).weights_bytes
    cfg["quantization_config"] = {"quant_method": "hqq"}
    with pytest.raises(ValueError, match="unknown dtype 'unsupported:hqq'"):
        vramcore.estimate(cfg, context=1)
    assert vramcore.estimate(cfg, dtype="bf16", context=1).dtype == "bf16"
    cfg["quantization_config"] = {"quant_method": "gptq", "bits": 5}
    with pytest.raises(ValueError, match="quantization_config.*GPTQ bits"):
        ModelSpec.from_hf_config(cfg)


def test_auto_is_the_default_and_changes_nothing_for_unquantized_models() -> None:
    for name in ("DeepSeek-R1-Distill-Llama-8B", "Qwen3-30B-A3B", "DeepSeek-V3"):
        assert resolve_auto(vramcore.get_model(name).spec).name == "bf16"
        a = vramcore.estimate(name, context=4096, gpu="H100")
        b = vramcore.estimate(name, dtype="bf16", context=4096, gpu="H100")
        assert a == b


def test_sweep_reports_weights_by_part() -> None:
    s = vramcore.sweep(["gpt-oss-20b", LLAMA31_8B], ["auto", "bf16", "Q4_K_M"], [4096], [1], ["H100"])
    assert s.weights_part_bytes is not None and s.weights_part_bytes.shape == (2, 3, len(PARTS))
    assert not s.weights_part_bytes.flags.writeable
    np.testing.assert_array_equal(s.weights_part_bytes.sum(axis=2), s.weights_bytes[:, :, 0, 0, 0])
    assert s.bits_per_weight[1, 2].round(4) == 4.8944 and s.bits_per_weight[1, 1] == 16.0
    assert s.cell(0, 0, 0, 0, 0).dtype == "mxfp4" and s.cell(1, 0, 0, 0, 0).dtype == "bf16"
    assert s.dtypes == ("auto", "bf16", "Q4_K_M")
    e = s.cell(1, 2, 0, 0, 0)
    assert e.weights_by_part["lm_head"] == 128256 * 4096 * 210 // 256  # output.weight in Q6_K
    assert "bits/weight" in str(e)


def test_spec_quantization_field() -> None:
    spec = vramcore.get_model("Llama-3.2-1B").spec
    q = spec.replace(quantization="Q4_K_M")
    assert q == spec  # not part of equality
    assert vramcore.estimate(q, context=1).dtype == "Q4_K_M"
    with pytest.raises(TypeError, match="ModelSpec.quantization must be"):
        spec.replace(quantization=4)


# ----------------------------------------------------------------------------- properties over random shapes
@st.composite
def block_aligned_specs(draw: st.DrawFn) -> ModelSpec:
    """Random dense / MoE specs whose rows are whole 256-element blocks (no GGUF fallback)."""
    kv = draw(st.integers(1, 4))
    fields: dict = {"num_layers": draw(st.integers(1, 9)), "hidden_size": 256 * draw(st.integers(1, 8)),
                    "num_heads": kv * draw(st.integers(1, 4)), "num_kv_heads": kv, "head_dim": 128,
                    "intermediate_size": 256 * draw(st.integers(1, 8)), "vocab_size": draw(st.integers(1, 5000)),
                    "tie_embeddings": draw(st.booleans()), "qkv_bias": draw(st.booleans()),
                    "model_type": draw(st.sampled_from(["llama", "qwen2", "phi3", None]))}
    if draw(st.booleans()):
        e = draw(st.integers(2, 8))
        fields.update(num_experts=e, experts_per_token=draw(st.integers(1, e)),
                      moe_intermediate_size=256 * draw(st.integers(1, 4)))
    return ModelSpec(**fields)


@settings(deadline=None, max_examples=40)
@given(block_aligned_specs())
def test_format_properties_on_random_models(spec: ModelSpec) -> None:
    params = spec.param_breakdown()
    for fmt in ("gptq-int4-g128", "bnb-nf4-dq", "fp8-block128", "mxfp4", "Q4_K_M", "IQ2_XS", "MXFP4_MOE"):
        dt = get_dtype(fmt)
        parts = dt.weight_bytes_by_part(spec)
        assert set(parts) == set(PARTS)
        assert sum(parts.values()) == sum(s.nbytes for s in dt.tensor_storage(spec))
        assert all(v >= 0 and float(v).is_integer() for v in parts.values())
        assert all(parts[p] == 0 for p in PARTS if params[p] == 0)
    # bytes grow with bits, family by family
    for family in (["gptq-int2-g128", "gptq-int3-g128", "gptq-int4-g128", "gptq-int8-g128", "bf16"],
                   ["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "gguf-F16"],
                   ["bnb-nf4-dq", "bnb-nf4", "bnb-int8"]):
        totals = [sum(get_dtype(f).weight_bytes_by_part(spec).values()) for f in family]
        assert totals == sorted(totals), family
