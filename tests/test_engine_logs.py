"""Engine figures against what real engines logged.

vLLM rows: llm-d benchmark, ``config_explorer/empirical-vllm-memory-results.md``
(https://github.com/llm-d/llm-d-benchmark, 2026-01-26 to 2026-02-26, removed in April 2026; the TP=2
Qwen3-32B row also in the fork manoelmarques/llm-d-benchmark, same path): H100 80GB (CUDA-visible
79.18 GiB), gpu_memory_utilization 0.9, max_model_len 16000 unless a row says 32000, block_size 128,
prefix caching, vLLM V1 API server defaults.  Each row logs "Model loading took W GiB", the peak
activation of the profiling run, non-torch memory and "Available KV cache memory".

llama.cpp rows: ggml-org CI, build 4396 (b0d6b66b7), Tesla V100-PCIE-16GB
(https://github.com/ggml-org/ci/blob/master/llama.cpp/b0/d6b66b7d18ebbe8c6de5587cad7de3487fd813/ggml-4-x86-cuda-v100/README.md),
and issue logs named per test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vramcore
from vramcore import ModelSpec

GiB = 2**30
MiB = 2**20
#: Peak activations within the rounding of the log's two decimals
PEAK_TOLERANCE = 0.005

VLLM_LLMD = vramcore.get_engine("vllm", block_size=128, max_model_len=16000)


def _close(got: float, logged: float) -> bool:
    # issue #11: within 0.5 % of the logged figure, or 0.01 GiB where the log's two decimals are coarser
    return abs(got - logged) <= max(0.005 * abs(logged), 0.01)


def test_llama_3_1_8b_h100_kv_budget_within_half_percent() -> None:
    # weights 14.99 GiB, peak activation 4.76 GiB, non-torch 0.13 GiB, KV 51.38 GiB
    e = vramcore.estimate("Llama-3.1-8B", context=16000, gpu="H100", engine=VLLM_LLMD)
    assert abs(e.kv_cache_bytes / GiB - 51.38) <= 0.005 * 51.38
    assert round(e.weights_bytes / GiB, 2) == 14.99
    assert abs(e.activation_bytes / GiB - 4.76) <= PEAK_TOLERANCE
    # page = 128 tokens x 8 KV heads x (128 + 128) x 2 B per layer, 32 layers: 16 MiB a block
    assert e.kv_cache_bytes == e.kv_blocks * 16 * MiB
    assert e.kv_capacity_tokens == e.kv_blocks * 128
    assert e.max_concurrency == pytest.approx(e.kv_blocks / 125)  # ceil(16000 / 128) blocks a request
    assert e.fits


# Every row of the llm-d table (all versions of config_explorer/empirical-vllm-memory-results.md, 2026-01-26 to
# 2026-02-26, and the fork's TP=2 row) is held here.  The profiling peak is vLLM's sampler rule (vramcore/engines/
# vllm.py): 38 B per logit on the sort path the 0.11.1 rows ran, 14 B on FlashInfer's path, which vLLM 0.11.0
# still took by default (test_llmd_vllm_mistral_small_row), beside (T + 2N) hidden states and a 34 MiB workspace;
# it lands within 0.005 GiB of every logged peak (the log's rounding).
# The gpt-oss rows hold with the MXFP4 layout of the vLLM they ran, its fp32 rotary cache and the caching
# allocator's blocks for the experts' tensors (test_llmd_vllm_gpt_oss_rows), the 120b row's small KV figure included.
@pytest.mark.parametrize(
    ("model", "dtype", "tp", "max_model_len", "weights", "peak", "non_torch", "kv"),
    [
        # | Llama-3.1-8B | SUCCESS | 14.99 | 4.76 | 0.13 | -0.45 | 51.38 | 1 | 16000 |
        ("Llama-3.1-8B", "bf16", 1, 16000, 14.99, 4.76, 0.13, 51.38),
        # | Qwen3-0.6B | SUCCESS | 1.12 | 5.56 | 0.13 | 0.10 | 64.45 | 1 | 16000 |
        ("Qwen3-0.6B", "bf16", 1, 16000, 1.12, 5.56, 0.13, 64.45),
        # | Qwen3-0.6B | SUCCESS | 1.12 | 5.56 | 0.13 | 0.10 | 64.45 | 1 | 32000 | (the profile run and the
        # budget do not depend on max_model_len)
        ("Qwen3-0.6B", "bf16", 1, 32000, 1.12, 5.56, 0.13, 64.45),
        # | Qwen3-32B | SUCCESS | 61.03 | 5.64 | 0.14 | -0.88 | 4.45 | 1 | 16000 |
        ("Qwen3-32B", "bf16", 1, 16000, 61.03, 5.64, 0.14, 4.45),
        # (llm-d from 745f62f, and the fork): | Qwen3-32B | SUCCESS | 30.59 | 5.64 | 0.54 | -0.33 | 34.49 | 2 | 16000 |
        ("Qwen3-32B", "bf16", 2, 16000, 30.59, 5.64, 0.54, 34.49),
        # | Llama-3.3-70B-FP8 (TP=2) | SUCCESS | 33.88 | 4.84 | 0.55 | -0.42 | 32.0 | 2 | 16000 |
        # (RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic, Llama-3.1-70B geometry)
        ("Llama-3.1-70B", "fp8_e4m3", 2, 16000, 33.88, 4.84, 0.55, 32.0),
        # the same row in the checkpoint's own format (compressed-tensors FP8, one scale per output channel)
        ("Llama-3.1-70B", "fp8-channel", 2, 16000, 33.88, 4.84, 0.55, 32.0),
    ],
)
def test_llmd_vllm_rows(model: str, dtype: str, tp: int, max_model_len: int, weights: float, peak: float,
                        non_torch: float, kv: float) -> None:
    engine = vramcore.get_engine("vllm", block_size=128, max_model_len=max_model_len)
    e = vramcore.estimate(model, dtype=dtype, context=max_model_len, gpu="H100", engine=engine, tp=tp)
    assert _close(e.weights_bytes / GiB, weights)
    assert abs(e.activation_bytes / GiB - peak) <= PEAK_TOLERANCE
    assert _close(e.kv_cache_bytes / GiB, kv)
    assert e.fits


@pytest.mark.parametrize("dtype", ["fp8_e4m3", "fp8-channel"])
def test_llmd_vllm_row_that_does_not_fit(dtype: str) -> None:
    # | Llama-3.3-70B-FP8 (TP=1) | FAILED | 67.72 | N/A | N/A | N/A | -1.44 | 1 | 16000 |; its detailed section:
    # peak activation 4.84 GiB, non-torch 0.14 GiB, 71.26 - 67.72 - 4.84 - 0.14 < 0 -> "No available memory
    # for the cache blocks"
    e = vramcore.estimate("Llama-3.1-70B", dtype=dtype, context=16000, gpu="H100", engine=VLLM_LLMD)
    assert _close(e.weights_bytes / GiB, 67.72)
    assert abs(e.activation_bytes / GiB - 4.84) <= PEAK_TOLERANCE
    assert e.kv_cache_bytes == 0 and e.kv_blocks == 0 and e.fits is False
    assert "no_kv_budget" in e.reasons


def test_llmd_vllm_qwen3_32b_at_32000_does_not_start() -> None:
    # | Qwen3-32B | FAILED | 61.03 | 5.64 | 0.14 | N/A | N/A | 1 | 32000 |: the same 4.45 GiB budget as at 16000
    # (71.26 - 61.03 - 5.64 - 0.14), short of one 32000-token request (250 blocks of 128 x 64 layers x 8 KV
    # heads x 256 x 2 B = 7.81 GiB), so vLLM refuses to start
    engine = vramcore.get_engine("vllm", block_size=128, max_model_len=32000)
    e = vramcore.estimate("Qwen3-32B", dtype="bf16", context=32000, gpu="H100", engine=engine)
    assert _close(e.weights_bytes / GiB, 61.03)
    assert abs(e.activation_bytes / GiB - 5.64) <= PEAK_TOLERANCE
    assert _close(e.kv_cache_bytes / GiB, 4.45)
    assert e.kv_capacity_tokens < 32000 and e.fits is False
    assert "kv_below_max_model_len" in e.reasons


def test_llmd_vllm_mistral_small_row() -> None:
    # | Mistral-Small-3.2-24B | SUCCESS | 44.76 | 2.12 | 0.14 | -0.76 | 28.20 | 1 | 16000 | (llm-d 4f4d449):
    # mistralai/Mistral-Small-3.2-24B-Instruct-2506 (Mistral3ForConditionalGeneration, the 3.1 geometry), vLLM
    # 0.11.0, gpu_memory_utilization 0.95, --tokenizer-mode / --config-format / --load-format mistral, "GPU KV cache
    # size: 184,832 tokens" (1,444 blocks of 128), "Maximum concurrency for 16,000 tokens per request: 11.55x".
    # vLLM 0.11.0 sampled with FlashInfer (14 B a logit: 1024 x 131072 x 14 B = 1.75 GiB), held 10240 hidden states
    # (0.10 GiB) and the 34 MiB workspace, and its multimodal profile held 2 dummy images (8192 // 3025
    # embeddings each) as embeddings padded to the 8192-row encoder budget (160 MiB) beside the unpadded ones
    # (59 MiB), the images in bf16 (27 MiB) and Pixtral's rotary table (3 MiB): 2.124 GiB
    config = json.loads((Path(__file__).parent / "data" / "hf_configs" / "mistral-small-3.1-24b.json").read_text())
    spec = ModelSpec.from_hf_config(config["config"], name="Mistral-Small-3.2-24B")
    v0110 = vramcore.get_engine("vllm", block_size=128, max_model_len=16000, gpu_memory_utilization=0.95,
                                sampler="flashinfer", mm_profile_padding=True)
    e = vramcore.estimate(spec, dtype="bf16", context=16000, gpu="H100", engine=v0110)
    assert _close(e.weights_bytes / GiB, 44.76)
    assert abs(e.activation_bytes / GiB - 2.12) <= PEAK_TOLERANCE
    assert _close(e.kv_cache_bytes / GiB, 28.20)
    assert e.kv_blocks == 1444 and e.kv_capacity_tokens == 184832
    assert round(e.max_concurrency, 2) == 11.55
    assert e.fits
    # the sort path of later vLLM (38 B a logit) would have left 25.39 GiB; without the 0.11.0 multimodal
    # profile FlashInfer's path alone leaves 28.38 GiB (+0.6 %)
    sort = vramcore.estimate(spec, dtype="bf16", context=16000, gpu="H100",
                             engine=v0110.with_options(sampler="sort"))
    assert sort.activation_bytes - e.activation_bytes == 1024 * 131072 * (38 - 14)
    unpadded = vramcore.estimate(spec, dtype="bf16", context=16000, gpu="H100",
                                 engine=v0110.with_options(mm_profile_padding=False))
    assert e.activation_bytes - unpadded.activation_bytes == 2 * (8192 * 5120 * 2 + 3 * 1540 * 1540 * 2) + 3097600
    assert not _close(sort.kv_cache_bytes / GiB, 28.20) and not _close(unpadded.kv_cache_bytes / GiB, 28.20)


def test_sampler_knobs() -> None:
    # the sampler path's rule unless sampler_bytes_per_logit overrides it; SGLang and TensorRT-LLM keep 8 B
    assert vramcore.get_engine("vllm").sampler == "sort"
    assert vramcore.get_engine("vllm").sampler_bytes_per_logit is None
    assert vramcore.get_engine("vllm", sampler="flashinfer").resolved_sampler_bytes_per_logit == 14.0
    assert vramcore.get_engine("vllm", sampler="flashinfer",
                               sampler_bytes_per_logit=20).resolved_sampler_bytes_per_logit == 20.0
    for kind in ("sglang", "trtllm"):
        assert vramcore.get_engine(kind).resolved_sampler_bytes_per_logit == 8.0
    with pytest.raises(ValueError, match="EngineSpec.sampler must be one of 'sort', 'flashinfer', got 'topk'"):
        vramcore.get_engine("vllm", sampler="topk")
    with pytest.raises(ValueError, match="EngineSpec.sampler_bytes_per_logit must be >= 0"):
        vramcore.get_engine("vllm", sampler_bytes_per_logit=-1.0)
    with pytest.raises(ValueError, match="EngineSpec.profile_workspace_bytes must be an int >= 0, got -1"):
        vramcore.get_engine("vllm", profile_workspace_bytes=-1)
    with pytest.raises(TypeError, match="EngineSpec.mm_profile_padding must be a bool"):
        vramcore.get_engine("vllm", mm_profile_padding="yes")
    # Llama-3.1-8B on an H100 (T = 8192, N = 1024): 1024 x 128256 x 38 B of sort buffers, 10240 hidden states
    # of 4096 x 2 B and the 34 MiB workspace; a text model's peak does not depend on mm_profile_padding
    e = vramcore.estimate("Llama-3.1-8B", context=16000, gpu="H100", engine=VLLM_LLMD)
    assert e.activation_bytes == 1024 * 128256 * 38 + 10240 * 4096 * 2 + 34 * MiB
    padded = vramcore.estimate("Llama-3.1-8B", context=16000, gpu="H100",
                               engine=VLLM_LLMD.with_options(mm_profile_padding=True))
    assert padded.activation_bytes == e.activation_bytes


def test_llmd_vllm_deepseek_r1_does_not_load_on_one_h100() -> None:
    # | Deepseek-R1 | FAILED | N/A | N/A | N/A | N/A | N/A | 1 | 16000 | (FP8 checkpoint, 128 x 128 block scales):
    # out of memory while loading, "Tried to allocate 3.50 GiB" (one MoE layer's FP8 down_proj, 256 experts x
    # 7168 x 2048 B) with 75.16 GiB already held by PyTorch
    e = vramcore.estimate("DeepSeek-R1", dtype="fp8-block128", context=16000, gpu="H100", engine=VLLM_LLMD)
    spec = vramcore.get_model("DeepSeek-R1").spec
    assert spec.num_experts * spec.hidden_size * (spec.moe_intermediate_size or 0) == 3.5 * GiB
    assert e.weights_bytes > 80 * GiB and e.fits is False  # about 627 GiB
    assert "weights_exceed_gpu" in e.reasons


# vLLM's Triton MoE path for MXFP4 on Hopper, as the llm-d runs had it (vLLM 0.11.1 until vllm-project/vllm#46549:
# triton_kernels v3.5 swizzles each expert's scales into a copy whose output rows are padded to 256 and keeps the
# checkpoint's scales; the expert biases become fp32; mxfp4.py, Mxfp4MoEMethod.process_weights_after_loading)
LLMD_MXFP4 = "triton-keep-scales"


@pytest.mark.parametrize(
    ("model", "utilization", "weights", "peak", "kv"),
    [
        # | gpt-oss-20b | SUCCESS | 13.47 | 7.38 | 0.13 | 0.39 | 50.28 | 1 | 16000 | ("Model loading took: 13.47 GiB")
        ("gpt-oss-20b", 0.9, 13.47, 7.38, 50.28),
        # | gpt-oss-120b | SUCCESS | 64.38 | 7.38 | 0.13 | 1.03 | 3.33 | 1 | 16000 |: the figures add up to
        # 0.95 x 79.18 GiB (64.38 + 7.38 + 0.13 + 3.33 = 75.22), so it ran at gpu_memory_utilization 0.95; the
        # KV budget is what is left, so 0.01 GiB of weights is 0.3 % of its 3.33 GiB
        ("gpt-oss-120b", 0.95, 64.38, 7.38, 3.33),
    ],
)
def test_llmd_vllm_gpt_oss_rows(model: str, utilization: float, weights: float, peak: float, kv: float) -> None:
    # 20b: 13.461 GiB (13.47 logged, -0.06 %), KV 50.29 (+0.03 %); 120b: 64.380 GiB, KV 3.331 GiB
    engine = vramcore.get_engine("vllm", block_size=128, max_model_len=16000, gpu_memory_utilization=utilization,
                                 mxfp4_layout=LLMD_MXFP4)
    e = vramcore.estimate(model, context=16000, gpu="H100", engine=engine)
    assert e.dtype == "mxfp4"
    assert _close(e.weights_bytes / GiB, weights)
    assert abs(e.activation_bytes / GiB - peak) <= PEAK_TOLERANCE
    assert _close(e.kv_cache_bytes / GiB, kv)
    assert e.fits
    # as stored, the weights are 5 % short of the log: the layout is what closes the gap
    stored = vramcore.estimate(model, context=16000, gpu="H100",
                               engine=vramcore.get_engine("vllm", block_size=128, max_model_len=16000,
                                                          gpu_memory_utilization=utilization, mxfp4_layout="stored"))
    assert not _close(stored.weights_bytes / GiB, weights)


def test_gpt_oss_rope_cache_is_fp32_in_vllm() -> None:
    # vLLM's gpt_oss.py asks get_rope for an fp32 YaRN cache (4096 x 32 = 131072 positions x 64): 32 MiB, once
    # for the model (get_rope's cache); SGLang's and every other model's stay in the compute dtype
    from vramcore.engines import rope_cache_fp32
    from vramcore.grid.reference import _rope_cache_bytes

    spec = vramcore.get_model("gpt-oss-20b").spec
    bf16 = vramcore.get_dtype("bf16")
    assert rope_cache_fp32(vramcore.get_engine("vllm"), spec)
    assert not rope_cache_fp32(vramcore.get_engine("sglang"), spec)
    assert not rope_cache_fp32(vramcore.get_engine("vllm"), vramcore.get_model("Llama-3.1-8B").spec)
    assert _rope_cache_bytes(spec, bf16, vramcore.get_engine("vllm")) == 32 * MiB
    assert _rope_cache_bytes(spec, bf16, vramcore.get_engine("sglang")) == 16 * MiB
    vllm = vramcore.estimate(spec, context=4096, gpu="H100", engine=vramcore.get_engine("vllm", mxfp4_layout="stored"))
    sglang = vramcore.estimate(spec, context=4096, gpu="H100", engine="sglang")
    assert vllm.weights_bytes - sglang.weights_bytes == 16 * MiB


def test_cuda_block_bytes() -> None:
    from vramcore.engines.vllm import cuda_block_bytes

    assert cuda_block_bytes(1) == 512 and cuda_block_bytes(737280) == 737280          # small pool
    assert cuda_block_bytes(8294400) == 8294400                                       # cut from a 20 MiB block
    assert cuda_block_bytes(265420800) == 254 * MiB                                   # 0.875 MiB left: kept whole
    assert cuda_block_bytes(132710400) == 132710400                                   # 1.4375 MiB left: split
    assert cuda_block_bytes(31 * MiB) == 32 * MiB                                     # 1 MiB left: not split
    assert cuda_block_bytes(31 * MiB - 512) == 31 * MiB - 512                         # more than 1 MiB: split


def test_mxfp4_triton_layout_per_tensor() -> None:
    # gpt-oss-20b, one MoE layer of 32 experts (hidden = intermediate = 2880), each tensor one allocation held
    # at the caching allocator's block: values 32 x 5760 x 1440 B (253.125 MiB, in a 254 MiB block) and
    # 32 x 2880 x 1440 B (126.5625 MiB, split); stored scales 32 x 5760 x 90 B (15.82 MiB, in a 16 MiB block) and
    # 32 x 2880 x 90 B; the swizzled copy pads the rows to 256: 32 x 5888 x 90 (16.17 MiB, split) and
    # 32 x 3072 x 90 B; biases 32 x (5760 + 2880) x 2 B more in fp32; 24 layers
    from vramcore.engines.vllm import mxfp4_loaded_extra

    spec = vramcore.get_model("gpt-oss-20b").spec
    stored_scales = 32 * (5760 * 90 + 2880 * 90)
    swizzled = 32 * (5888 * 90 + 3072 * 90)
    biases = 32 * (5760 + 2880) * 2
    w13_values = 254 * MiB - 32 * 5760 * 1440
    w13_scales = 16 * MiB - 32 * 5760 * 90
    assert mxfp4_loaded_extra(spec, "triton-keep-scales") == 24 * (swizzled + biases + w13_values + w13_scales)
    assert mxfp4_loaded_extra(spec, "triton") == 24 * (swizzled - stored_scales + biases + w13_values)
    assert mxfp4_loaded_extra(spec, "stored") == 0
    # gpt-oss-120b (128 experts, 36 layers): the stored scales (63.28, 31.64 MiB) sit in 64 and 32 MiB blocks, the
    # swizzled w2 scales (33.75 MiB) in 34 MiB ones
    big = vramcore.get_model("gpt-oss-120b").spec
    blocks = (64 * MiB - 128 * 5760 * 90) + (32 * MiB - 128 * 2880 * 90) + (34 * MiB - 128 * 3072 * 90)
    assert mxfp4_loaded_extra(big, "triton-keep-scales") == 36 * (128 * (5888 * 90 + 3072 * 90 + (5760 + 2880) * 2)
                                                                  + blocks)
    # the default vLLM engine (current vLLM frees the checkpoint's scales) holds the experts a little above
    # storage; the other engines hold them as stored; the estimate's parts say where the bytes are
    loaded = vramcore.estimate(spec, context=4096, gpu="H100", engine="vllm")
    as_stored = vramcore.estimate(spec, context=4096, gpu="H100", engine=vramcore.get_engine("vllm",
                                                                                             mxfp4_layout="stored"))
    assert loaded.weights_bytes - as_stored.weights_bytes == mxfp4_loaded_extra(spec, "triton")
    extra = loaded.weights_by_part["mlp_routed_experts"] - as_stored.weights_by_part["mlp_routed_experts"]
    assert extra == mxfp4_loaded_extra(spec, "triton")
    for kind in ("sglang", "transformers", "trtllm"):
        assert vramcore.get_engine(kind).mxfp4_layout == "stored"
    # a sweep cell equals the estimate under the loaded layout, and a bf16 model is untouched by it
    s = vramcore.sweep(spec, "auto", 4096, 1, "H100", engine=["vllm", "sglang"])
    assert s.weights_bytes[0, 0, 0, 0, 0, 0] == loaded.weights_bytes
    bf16 = vramcore.estimate(spec, dtype="bf16", context=4096, gpu="H100", engine="vllm")
    plain = vramcore.estimate(spec, dtype="bf16", context=4096, gpu="H100",
                              engine=vramcore.get_engine("vllm", mxfp4_layout="stored"))
    assert bf16.weights_bytes == plain.weights_bytes


def test_mxfp4_layout_is_checked() -> None:
    with pytest.raises(ValueError, match="mxfp4_layout must be one of 'stored', 'triton', 'triton-keep-scales'"):
        vramcore.get_engine("vllm", mxfp4_layout="marlin")


def test_vllm_needed_kv_for_qwen3_coder_480b() -> None:
    # vllm-project/recipes#12 (Qwen3-Coder-480B-A35B, DP 8 + expert parallel: all 8 KV heads per rank):
    # "62.00 GiB KV cache is needed" for max_model_len 262144
    spec = ModelSpec(name="Qwen3-Coder-480B-A35B", num_layers=62, hidden_size=6144, num_heads=96, num_kv_heads=8,
                     head_dim=128, intermediate_size=8192, vocab_size=151936, qk_norm=True, num_experts=160,
                     experts_per_token=8, moe_intermediate_size=2560, max_context=262144)
    e = vramcore.estimate(spec, context=262144, dtype="fp8_e4m3", engine="transformers")
    assert e.kv_cache_bytes == 62 * GiB


# ------------------------------------------------------------------ llama.cpp

# Pythia-2.8B (GPT-NeoX): 32 layers, n_embd 2560, 32 heads of 80, n_ff 10240, n_vocab 50304
PYTHIA = ModelSpec(name="pythia-2.8b", num_layers=32, hidden_size=2560, num_heads=32, intermediate_size=10240,
                   vocab_size=50304, max_context=2048)


def test_llamacpp_ci_pythia_buffers() -> None:
    fa = vramcore.estimate(PYTHIA, context=2048, engine="llamacpp", dtype="fp16")
    assert fa.kv_cache_bytes == 640 * MiB                    # "CUDA0 KV buffer size = 640.00 MiB"
    assert fa.activation_bytes == pytest.approx(103.25 * MiB)  # "CUDA0 compute buffer size = 103.25 MiB" (-fa)
    no_fa = vramcore.estimate(PYTHIA, context=2048, engine=vramcore.get_engine("llamacpp", flash_attn=False),
                              dtype="fp16")
    assert no_fa.activation_bytes / MiB == pytest.approx(162.00, rel=0.01)  # "compute buffer size = 162.00 MiB"
    # host: token_embd f16 ("CPU_Mapped model buffer size = 245.62 MiB"), output buffer 0.19 MiB,
    # host compute buffer 9.01 MiB
    assert fa.host_bytes / MiB == pytest.approx(245.62 + 0.19 + 9.01, abs=0.02)


@pytest.mark.parametrize(
    ("model", "n_ctx", "kv_mib", "compute_mib"),
    [
        # SciSharp/LLamaSharp#1099: "CUDA0 KV buffer size = 144.00 MiB", "compute buffer size = 300.75 MiB"
        ("Qwen2.5-3B", 4096, 144.00, 300.75),
        # JamePeng/llama-cpp-python#1: "CUDA0 KV buffer size = 112.00 MiB", compute 304.00 MiB
        ("Qwen2.5-7B", 2048, 112.00, 304.00),
    ],
)
def test_llamacpp_issue_logs(model: str, n_ctx: int, kv_mib: float, compute_mib: float) -> None:
    e = vramcore.estimate(model, context=n_ctx, engine="llamacpp", dtype="int4")
    assert e.kv_cache_bytes == kv_mib * MiB
    assert e.activation_bytes == pytest.approx(compute_mib * MiB)


# ------------------------------------------------------------------ SGLang

def test_sglang_token_pool_geometry_qwen3_235b_tp4() -> None:
    # vllm-project/vllm#21348 (SGLang side of the comparison), Qwen3-235B-A22B-FP8, --tp 4, H100:
    # "KV Cache is allocated. #tokens: 367404, K size: 8.23 GB, V size: 8.23 GB" (GB printed as GiB)
    e = vramcore.estimate("Qwen3-235B-A22B", dtype="fp8_e4m3", context=4096, gpu="H100", engine="sglang", tp=4)
    per_token = e.kv_cache_bytes / e.kv_capacity_tokens
    assert per_token == 94 * 1 * 128 * 2 * 2  # layers x KV heads per rank (4 // 4) x head dim x K,V x bf16
    assert round(367404 * per_token / 2 / GiB, 2) == 8.23


def test_sglang_default_mem_fraction_static_on_h100() -> None:
    # server_args.py _handle_gpu_memory_settings: H100 80GB, TP 1 -> chunked prefill 8192, cuda graph bs 256,
    # reserved 512 + 8192 x 1.5 + 256 x 2 + 1/8 x 1024 = 13440 MiB -> mem_fraction_static 0.835 (81559 MiB)
    gpu = vramcore.get_gpu("H100")
    e = vramcore.estimate("Llama-3.1-8B", context=4096, gpu=gpu, engine="sglang", gpu_memory="total")
    auto_kv = e.kv_cache_bytes
    fixed = vramcore.estimate("Llama-3.1-8B", context=4096, gpu=gpu, gpu_memory="total",
                              engine=vramcore.get_engine("sglang", mem_fraction_static=0.835))
    assert auto_kv == fixed.kv_cache_bytes
