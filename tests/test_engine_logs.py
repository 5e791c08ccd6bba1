"""Engine figures against what real engines logged.

vLLM rows: llm-d benchmark, ``config_explorer/empirical-vllm-memory-results.md``
(https://github.com/llm-d/llm-d-benchmark; the TP=2 Qwen3-32B row from the fork
manoelmarques/llm-d-benchmark, same path): H100 80GB (CUDA-visible 79.18 GiB),
gpu_memory_utilization 0.9, max_model_len 16000, block_size 128, prefix caching,
vLLM V1 API server defaults.  Each row logs "Model loading took W GiB", the peak
activation of the profiling run, non-torch memory and "Available KV cache memory".

llama.cpp rows: ggml-org CI, build 4396 (b0d6b66b7), Tesla V100-PCIE-16GB
(https://github.com/ggml-org/ci/blob/master/llama.cpp/b0/d6b66b7d18ebbe8c6de5587cad7de3487fd813/ggml-4-x86-cuda-v100/README.md),
and issue logs named per test.
"""

from __future__ import annotations

import pytest

import vramcore
from vramcore import ModelSpec

GiB = 2**30
MiB = 2**20

VLLM_LLMD = vramcore.get_engine("vllm", block_size=128, max_model_len=16000)


def _close(got: float, logged: float) -> bool:
    # logs print two decimals of GiB; the activation model is good to ~0.06 GiB
    return abs(got - logged) <= max(0.005 * logged, 0.1)


def test_llama_3_1_8b_h100_kv_budget_within_half_percent() -> None:
    # weights 14.99 GiB, peak activation 4.76 GiB, non-torch 0.13 GiB, KV 51.38 GiB
    e = vramcore.estimate("Llama-3.1-8B", context=16000, gpu="H100", engine=VLLM_LLMD)
    assert abs(e.kv_cache_bytes / GiB - 51.38) <= 0.005 * 51.38
    assert round(e.weights_bytes / GiB, 2) == 14.99
    assert abs(e.activation_bytes / GiB - 4.76) < 0.05
    # page = 128 tokens x 8 KV heads x (128 + 128) x 2 B per layer, 32 layers: 16 MiB a block
    assert e.kv_cache_bytes == e.kv_blocks * 16 * MiB
    assert e.kv_capacity_tokens == e.kv_blocks * 128
    assert e.max_concurrency == pytest.approx(e.kv_blocks / 125)  # ceil(16000 / 128) blocks a request
    assert e.fits


@pytest.mark.parametrize(
    ("model", "dtype", "tp", "weights", "peak", "non_torch", "kv"),
    [
        ("Llama-3.1-8B", "bf16", 1, 14.99, 4.76, 0.13, 51.38),
        ("Qwen3-0.6B", "bf16", 1, 1.12, 5.56, 0.13, 64.45),
        ("Qwen3-32B", "bf16", 1, 61.03, 5.64, 0.14, 4.45),
        ("Qwen3-32B", "bf16", 2, 30.59, 5.64, 0.54, 34.49),
        ("Llama-3.1-70B", "fp8_e4m3", 2, 33.88, 4.84, 0.55, 32.0),  # Llama-3.3-70B FP8-dynamic, same geometry
    ],
)
def test_llmd_vllm_rows(model: str, dtype: str, tp: int, weights: float, peak: float, non_torch: float,
                        kv: float) -> None:
    e = vramcore.estimate(model, dtype=dtype, context=16000, gpu="H100", engine=VLLM_LLMD, tp=tp)
    assert _close(e.weights_bytes / GiB, weights)
    assert abs(e.activation_bytes / GiB - peak) <= 0.15  # one sampler constant for every model
    assert _close(e.kv_cache_bytes / GiB, kv)


def test_llmd_vllm_row_that_does_not_fit() -> None:
    # Llama-3.3-70B FP8 on one H100: 71.26 - 67.72 - 4.84 - 0.14 < 0 -> "No available memory for the cache blocks"
    e = vramcore.estimate("Llama-3.1-70B", dtype="fp8_e4m3", context=16000, gpu="H100", engine=VLLM_LLMD)
    assert e.kv_cache_bytes == 0 and e.kv_blocks == 0 and e.fits is False


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
