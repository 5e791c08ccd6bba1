"""Engines, parallelism and the inverse questions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vramcore
from vramcore import GPUSpec, ModelSpec

SEED = "DeepSeek-R1-Distill-Llama-8B"
ENGINES = vramcore.list_engines()
INFERENCE = [e for e in ENGINES if vramcore.get_engine(e).kind != "train"]


def test_engine_catalog_and_knobs() -> None:
    assert ENGINES == ["transformers", "vllm", "sglang", "trtllm", "llamacpp", "train", "lora", "qlora"]
    assert vramcore.get_engine("llama.cpp").name == "llamacpp"
    v = vramcore.get_engine("vllm", gpu_memory_utilization=0.8, block_size=32, enforce_eager=True)
    assert (v.mem_fraction, v.block_size, v.cuda_graph_bytes) == (0.8, 32, 0)
    assert vramcore.get_engine("llamacpp", flash_attn=False).flash_attn is False
    assert vramcore.get_engine("llamacpp").ctx_pad == 256
    assert vramcore.get_engine("trtllm", tokens_per_block=64, free_gpu_memory_fraction=0.5).block_size == 64
    assert vramcore.get_engine("sglang", mem_fraction_static=0.7).mem_fraction == 0.7


@pytest.mark.parametrize(
    ("engine", "knobs", "match"),
    [
        ("vllm", {"gpu_memory_utilization": 0.0}, r"mem_fraction must be in \(0, 1\], got 0.0"),
        ("vllm", {"gpu_memory_utilization": 1.5}, r"mem_fraction must be in \(0, 1\], got 1.5"),
        ("vllm", {"gpu_memory_utilization": -0.1}, "mem_fraction"),
        ("vllm", {"block_size": 0}, "block_size must be an int >= 1, got 0"),
        ("trtllm", {"tokens_per_block": 0}, "block_size must be an int >= 1"),
        ("llamacpp", {"n_gpu_layers": -2}, "n_gpu_layers must be an int >= -1"),
        ("vllm", {"gpu_memory_utilisation": 0.9}, "unknown engine option 'gpu_memory_utilisation'.*did you mean"),
        ("vlm", {}, "unknown engine 'vlm'.*did you mean 'vllm'"),
    ],
)
def test_engine_knob_errors(engine: str, knobs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        vramcore.get_engine(engine, **knobs)


def test_parallelism_errors() -> None:
    with pytest.raises(ValueError, match="tp=3 does not divide the 32 attention heads"):
        vramcore.estimate(SEED, context=1024, engine="vllm", tp=3, gpu="H100")
    with pytest.raises(ValueError, match="n_gpus .3. must equal tp x pp .2 x 1."):
        vramcore.estimate(SEED, context=1024, engine="vllm", tp=2, n_gpus=3, gpu="H100")
    with pytest.raises(ValueError, match="pp=64 exceeds the 32 layers"):
        vramcore.estimate(SEED, context=1024, pp=64)
    eng = vramcore.get_engine("llamacpp", n_gpu_layers=40)
    with pytest.raises(ValueError, match="n_gpu_layers=40 exceeds the 32 layers"):
        vramcore.estimate(SEED, context=1024, engine=eng)
    with pytest.raises(ValueError, match="gpu_memory"):
        vramcore.estimate(SEED, context=1024, gpu="H100", gpu_memory="free")
    with pytest.raises(ValueError, match="sizes its KV cache from the GPU's memory; pass gpu="):
        vramcore.estimate(SEED, context=1024, engine="sglang")
    with pytest.raises(TypeError, match="EngineSpec.mla_compressed must be a bool"):
        vramcore.get_engine("vllm", mla_compressed="no")
    with pytest.raises(ValueError, match="leaves the sliding layers of 'Gemma-2-9B' .window 4096. a negative number"):
        vramcore.estimate("Gemma-2-9B", context=1024, engine=vramcore.get_engine("transformers",
                                                                                sliding_cap_offset=-5000))
    assert vramcore.estimate(SEED, context=1024).max_concurrency is None  # no GPU, no concurrency
    with pytest.raises(ValueError, match="CUDA-visible memory of 'L4' is not known"):
        vramcore.estimate(SEED, context=1024, gpu="L4", gpu_memory="cuda_visible")


def test_gpu_memory_semantics() -> None:
    h100 = vramcore.get_gpu("H100")
    usable = vramcore.estimate(SEED, context=1024, gpu=h100)
    total = vramcore.estimate(SEED, context=1024, gpu=h100, gpu_memory="total")
    fixed = vramcore.estimate(SEED, context=1024, gpu=h100, gpu_memory=80 * 10**9)
    assert usable.gpu_bytes == h100.cuda_visible_bytes
    assert total.gpu_bytes == h100.memory_total_bytes == 81559 * 2**20
    assert fixed.gpu_bytes == 80e9


def test_engine_axis_compares_engines_side_by_side() -> None:
    s = vramcore.sweep(SEED, ["bf16", "int4"], [4096, 32768], [1, 16], ["H100", "L40S"], engine=ENGINES)
    assert s.shape == (1, 2, 2, 2, 2, len(ENGINES)) and s.dims[-1] == "engine" and s.engines == tuple(ENGINES)
    for e, name in enumerate(ENGINES):
        single = vramcore.sweep(SEED, ["bf16", "int4"], [4096, 32768], [1, 16], ["H100", "L40S"], engine=name)
        for field in ("total_bytes", "kv_cache_bytes", "fits", "max_concurrency", "host_bytes"):
            np.testing.assert_array_equal(getattr(s, field)[..., e], getattr(single, field))
    cell = s.cell(0, 0, 1, 1, 0, 1)
    assert cell.engine == "vllm"
    assert cell == vramcore.estimate(SEED, context=32768, batch=16, gpu="H100", engine="vllm")


def test_budgeted_engines_report_capacity() -> None:
    for name in ("vllm", "sglang", "trtllm"):
        e = vramcore.estimate(SEED, context=8192, gpu="H100", engine=name)
        eng = vramcore.get_engine(name)
        per_token = 32 * 8 * 128 * 2 * 2  # layers x kv heads x head dim x K,V x bf16
        assert e.kv_blocks > 0 and e.kv_capacity_tokens == e.kv_blocks * eng.block_size
        assert e.kv_cache_bytes == e.kv_capacity_tokens * per_token
        assert e.max_concurrency == pytest.approx(e.kv_blocks / math.ceil(8192 / eng.block_size))
        assert e.fits


def test_vllm_tensor_parallel_replicates_kv_heads() -> None:
    # 8 KV heads: tp=8 gives each rank one head; tp=16 would replicate (heads 32 allow tp 16)
    spec = vramcore.get_model(SEED).spec
    per_rank = {}
    for tp in (1, 2, 4, 8, 16):
        e = vramcore.estimate(spec, context=1, engine="transformers", tp=tp)
        per_rank[tp] = e.kv_cache_bytes
    assert per_rank[2] * 2 == per_rank[1] and per_rank[8] * 8 == per_rank[1]
    assert per_rank[16] == per_rank[8]  # max(1, kv_heads // tp) heads per rank


def test_mla_latent_is_replicated_across_tp() -> None:
    v3 = "deepseek-ai/DeepSeek-V3"
    one = vramcore.estimate(v3, context=1024, dtype="fp8", engine="vllm", gpu="H200", tp=8)
    assert one.kv_cache_bytes > 0
    a = vramcore.estimate(v3, context=1, engine="transformers", tp=1)
    b = vramcore.estimate(v3, context=1, engine="transformers", tp=8)
    assert a.kv_cache_bytes == b.kv_cache_bytes == 61 * 576 * 2


def test_pipeline_parallel_weights() -> None:
    spec = vramcore.get_model("Llama-3.2-1B").spec  # tied embeddings
    parts = spec.param_breakdown()
    e = vramcore.estimate(spec, context=1, engine="transformers", gpu="H100", pp=2)
    layers = (parts["attention"] + parts["mlp_dense"] + parts["norms"]) * 2
    # the last stage holds half the layers and its own copy of the tied lm_head
    assert e.weights_bytes == layers / 2 + parts["embedding"] * 2


def test_llamacpp_offload_splits_weights_and_kv() -> None:
    # -ngl 17 offloads the output layer and the last 16 of 32 repeating layers
    full = vramcore.estimate(SEED, context=8192, engine="llamacpp", gpu="RTX-4090")
    half = vramcore.estimate(SEED, context=8192, engine=vramcore.get_engine("llamacpp", n_gpu_layers=17),
                             gpu="RTX-4090")
    none = vramcore.estimate(SEED, context=8192, engine=vramcore.get_engine("llamacpp", n_gpu_layers=0),
                             gpu="RTX-4090")
    assert half.kv_cache_bytes * 2 == full.kv_cache_bytes and none.kv_cache_bytes == 0
    assert none.weights_bytes == 0 < half.weights_bytes < full.weights_bytes
    spec = vramcore.get_model(SEED).spec
    parts = spec.param_breakdown()
    all_weights = sum(parts.values()) * 2
    # host: token embeddings always, the layers left behind, their cache, the f32 logits
    # buffer (n_vocab x n_seq) and the host compute buffer (input embeddings + KQ mask of a ubatch)
    host_fixed = spec.vocab_size * 4 + 512 * (spec.hidden_size + 8192) * 4
    assert full.host_bytes == parts["embedding"] * 2 + host_fixed
    for e in (full, half, none):
        host_kv = full.kv_cache_bytes - e.kv_cache_bytes
        assert e.weights_bytes + e.host_bytes - host_kv - host_fixed == all_weights


def test_llamacpp_context_padding() -> None:
    # n_ctx is padded to 256 (src/llama-context.cpp: GGML_PAD(n_ctx, 256))
    e = vramcore.estimate(SEED, context=1000, engine="llamacpp")
    assert e.kv_capacity_tokens == 1024
    e = vramcore.estimate(SEED, context=1000, batch=3, engine="llamacpp")
    assert e.kv_capacity_tokens == 3072


# ---------------------------------------------------------------- inverse questions

def _fits(spec: ModelSpec, engine: str, context: int, batch: int, gpu: GPUSpec) -> bool:
    return bool(vramcore.estimate(spec, context=context, batch=batch, gpu=gpu, engine=engine).fits)


def _trainable(spec: ModelSpec, engine: str) -> ModelSpec:
    """`spec`, its recurrent layers made attention layers under a training engine (which refuses them), and its
    cross-attention layers under every engine but transformers (the others refuse them)."""
    kind = vramcore.get_engine(engine).kind
    if kind == "train" and (spec.recurrent is not None or not spec.mlp_gated or "none" in (spec.layer_types or ())):
        return spec.replace(layer_types=None, mlp_gated=True)
    if kind != "transformers" and spec.n_cross_layers:
        return spec.replace(layer_types=tuple("full_attention" if k == "cross_attention" else k
                                              for k in spec.layer_types or ()))
    return spec


@settings(max_examples=30)
@given(spec=st.from_type(ModelSpec), engine=st.sampled_from(ENGINES), batch=st.integers(1, 64),
       gib=st.integers(1, 200))
def test_max_context_is_exact(spec: ModelSpec, engine: str, batch: int, gib: int) -> None:
    spec = _trainable(spec, engine)
    gpu = GPUSpec(name="g", vendor="x", memory_total_bytes=gib * 2**30)
    c = int(vramcore.max_context(spec, "bf16", batch, gpu, engine=engine).values[0, 0, 0, 0])
    cap = spec.max_context or 2**53
    assert 0 <= c <= cap
    if c > 0:
        assert _fits(spec, engine, c, batch, gpu)
    if c < cap:
        assert not _fits(spec, engine, c + 1, batch, gpu)


@settings(max_examples=30)
@given(spec=st.from_type(ModelSpec), engine=st.sampled_from(ENGINES), context=st.integers(1, 2**17),
       gib=st.integers(1, 200))
def test_max_batch_is_exact(spec: ModelSpec, engine: str, context: int, gib: int) -> None:
    spec = _trainable(spec, engine)
    gpu = GPUSpec(name="g", vendor="x", memory_total_bytes=gib * 2**30)
    b = int(vramcore.max_batch(spec, "bf16", context, gpu, engine=engine).values[0, 0, 0, 0])
    if b > 0:
        assert _fits(spec, engine, context, b, gpu)
    assert not _fits(spec, engine, context, b + 1, gpu)


def test_inverse_answers_on_real_models() -> None:
    sol = vramcore.max_context([SEED, "Qwen3-8B"], ["bf16", "int4"], [1, 8], ["H100", "RTX-4090"],
                               engine=INFERENCE)
    assert sol.dims == ("model", "dtype", "batch", "gpu", "engine")
    assert sol.values.shape == (2, 2, 2, 2, 5)
    # the seed fits its whole 128K window on an H100 at batch 1 under transformers
    assert sol.values[0, 0, 0, 0, 0] == 131072
    assert (sol.values[:, 1] >= sol.values[:, 0]).all()  # int4 weights leave more room
    assert (sol.values[:, :, 0] >= sol.values[:, :, 1]).all()  # bigger batch, shorter context
    df = sol.to_pandas()
    assert len(df) == sol.values.size and set(df.columns) >= {"model", "engine", "max_context"}


def test_min_gpus_and_best_dtype() -> None:
    sol = vramcore.min_gpus("Llama-3.1-70B", ["bf16", "int4"], [8192], [1], "H100", candidates=[1, 2, 4, 8])
    bf16, int4 = sol.values[0, :, 0, 0]
    assert int4 <= bf16
    for dtype, n in (("bf16", bf16), ("int4", int4)):
        assert vramcore.estimate("Llama-3.1-70B", dtype=dtype, context=8192, gpu="H100", engine="vllm", tp=n).fits
        smaller = [c for c in (1, 2, 4, 8) if c < n]
        for c in smaller:
            assert not vramcore.estimate("Llama-3.1-70B", dtype=dtype, context=8192, gpu="H100", engine="vllm",
                                         tp=c).fits
    best = vramcore.best_dtype(SEED, [4096, 131072], [1, 64], ["H100", "RTX-4090", "T4"])
    order = ["fp32", "bf16", "fp16", "fp8_e4m3", "int8", "int4"]
    for idx in np.ndindex(best.values.shape):
        name = best.values[idx]
        _, k, b, g = idx
        ctx, bat, gpu = best.coords["context"][k], best.coords["batch"][b], best.coords["gpu"][g]
        fits = [vramcore.estimate(SEED, dtype=d, context=ctx, batch=bat, gpu=gpu).fits for d in order]
        assert name == (order[fits.index(True)] if any(fits) else "")


def test_engine_by_kind_is_the_table_entry() -> None:
    """The shortcut by kind name (one module imported) returns the very engine the full alias table holds."""
    from vramcore._names import normalize_name
    from vramcore.engines import ENGINE_KINDS, _table

    for kind in ENGINE_KINDS:
        for spelling in (kind, kind.upper(), f" {kind} "):
            assert vramcore.get_engine(spelling) is _table()[normalize_name(kind)]
