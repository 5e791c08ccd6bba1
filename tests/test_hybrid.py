"""Hybrid models: recurrent layers keep a fixed state per sequence, each engine as it allocates it.

Facts: transformers' DynamicCache states and Qwen3-Next's parameters are in
``tests/data/transformers_measured.json`` (``tools/measure_transformers.py``);
engine logs are cited per test.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import vramcore
from vramcore import ModelSpec
from vramcore.engines.train import lora_modules
from vramcore.grid.reference import reference_estimate
from vramcore.model.recurrent import MixerTensor, StateSpec, gated_deltanet, mamba2

MiB, GiB = 2**20, 2**30
DATA = Path(__file__).parent / "data"
QWEN3_NEXT = vramcore.get_model("Qwen3-Next-80B-A3B-Instruct").spec
MEASURED = json.loads((DATA / "transformers_measured.json").read_text())["models"]["Qwen3-Next-80B-A3B-Instruct"]


def _qwen35_9b_like() -> ModelSpec:
    # transformers' Qwen3_5Config defaults: Qwen3.5-9B's text model (8.95 B parameters, as llama-bench prints for
    # its GGUF): 32 layers, every 4th full attention (4 KV heads x 256), the other 24 gated DeltaNet (16 key heads
    # x 128, 32 value heads x 128, kernel 4); the GGUF holds the text model alone
    config = json.loads((DATA / "hf_configs" / "qwen3.5-defaults.json").read_text())["config"]
    return ModelSpec.from_hf_config(config, name="qwen3.5-defaults").text_only


def test_qwen3_next_counts_like_transformers() -> None:
    assert QWEN3_NEXT.param_count == MEASURED["params"]["total"] == 79_674_391_296
    assert QWEN3_NEXT.kv_layers == 12 and QWEN3_NEXT.n_state_layers == 36
    e = vramcore.estimate(QWEN3_NEXT, context=4096, batch=2)
    # 12 full layers x 2 KV heads x 256 x K and V x 2 B per token; 36 x 2,162,688 B of state per sequence
    assert e.kv_cache_bytes == 2 * 4096 * MEASURED["kv_cache"]["bytes_per_token_uncapped"]
    assert e.state_bytes == 2 * MEASURED["kv_cache"]["state_bytes_per_sequence"] == 2 * 36 * 2_162_688
    assert e.total_bytes == e.weights_bytes + e.kv_cache_bytes + e.state_bytes + e.activation_bytes \
        + e.overhead_bytes


def test_state_does_not_grow_with_the_context() -> None:
    short = vramcore.estimate(QWEN3_NEXT, context=1024, batch=4, engine="llamacpp")
    long = vramcore.estimate(QWEN3_NEXT, context=65536, batch=4, engine="llamacpp")
    assert short.state_bytes == long.state_bytes > 0
    assert long.kv_cache_bytes == 64 * short.kv_cache_bytes
    assert vramcore.estimate(QWEN3_NEXT, context=1024, batch=8, engine="llamacpp").state_bytes == 2 * short.state_bytes


def test_llamacpp_recurrent_cells_qwen35_9b_log() -> None:
    # llama.cpp b8999 (Metal), Qwen3.5-9B, --ctx-size 262144 --parallel 1 -ctk q8_0 -ctv q8_0 -fa on
    # (also https://github.com/JamePeng/llama-cpp-python/issues/78):
    #   llama_kv_cache: size = 4352.00 MiB (262144 cells, 8 layers, 1/1 seqs), K (q8_0): 2176.00 MiB, V (q8_0): ...
    #   llama_memory_recurrent: size = 50.25 MiB (1 cells, 32 layers, 1 seqs), R (f32): 2.25 MiB, S (f32): 48.00 MiB
    engine = vramcore.get_engine("llamacpp", cache_type_k="q8_0", cache_type_v="q8_0", flash_attn=True)
    e = vramcore.estimate(_qwen35_9b_like(), context=262144, batch=1, engine=engine)
    assert e.kv_cache_bytes == 4352 * MiB
    assert e.state_bytes == 50.25 * MiB          # R: 24 x 3 x 8192 f32, S: 24 x 32 x 128 x 128 f32
    two = vramcore.estimate(_qwen35_9b_like(), context=131072, batch=2, engine=engine)
    assert two.state_bytes == 2 * 50.25 * MiB    # one cell per sequence (n_seq_max)
    assert two.kv_cache_bytes == e.kv_cache_bytes  # the same 262144 cells shared


def test_vllm_hybrid_pages_qwen3_next_tp2_log() -> None:
    # vLLM 0.10.2, Qwen3-Next-80B-A3B-Instruct, --tensor-parallel-size 2 on H200 (a public server log, GitHub
    # code corpus): "Setting attention block size to 544 tokens", "Padding mamba page size by 1.49%",
    # "Available KV cache memory: 44.59 GiB", "GPU KV cache size: 973,760 tokens",
    # "Maximum concurrency for 262,144 tokens per request: 14.77x" (prefix caching off: one state block per group)
    engine = dataclasses.replace(vramcore.get_engine("vllm"), mamba_cache_mode="none")
    probe = vramcore.estimate(QWEN3_NEXT, context=262144, engine=engine, n_gpus=2, gpu="H200")
    block_bytes = probe.kv_cache_bytes / probe.kv_blocks
    # one block id: a 544-token page (544 x 1024 B at one KV head per rank) in each of 12 layers
    assert block_bytes == 544 * 1024 * 12
    gpu = vramcore.get_gpu("H200")
    # the GPU whose budget is the logged one: budget = 0.9 x memory - weights - profile peak - non-torch
    budget = 44.59 * GiB
    fixed = probe.weights_bytes + probe.activation_bytes + engine.non_torch_bytes + engine.nccl_bytes
    sized = dataclasses.replace(gpu, name="H200-budget", memory_total_bytes=int((budget + fixed) / 0.9),
                                cuda_visible_bytes=None)
    e = vramcore.estimate(QWEN3_NEXT, context=262144, engine=engine, n_gpus=2, gpu=sized)
    assert e.kv_blocks == 7162
    assert e.kv_capacity_tokens == 973_760        # 7162 // 4 groups x 544
    assert round(e.max_concurrency, 2) == 14.77   # 7162 / (482 attention blocks + 3 state blocks)
    # prefix caching's aligned mode keeps two state blocks per recurrent group
    aligned = vramcore.estimate(QWEN3_NEXT, context=262144, engine="vllm", n_gpus=2, gpu=sized)
    assert aligned.max_concurrency == pytest.approx(7162 / (482 + 6))
    assert aligned.state_bytes == 6 * block_bytes and aligned.state_bytes < aligned.kv_cache_bytes


@pytest.mark.parametrize("engine,tp", [("transformers", 1), ("llamacpp", 1), ("vllm", 2), ("vllm", 4),
                                       ("sglang", 2), ("trtllm", 2)])
@pytest.mark.parametrize("batch", [1, 7])
def test_kernel_matches_the_oracle_on_hybrid_models(engine: str, tp: int, batch: int) -> None:
    for spec in (QWEN3_NEXT, _qwen35_9b_like()):
        e = vramcore.estimate(spec, context=8192, batch=batch, engine=engine, n_gpus=tp, gpu="H200")
        r = reference_estimate(spec, vramcore.get_dtype("bf16"), None, vramcore.get_engine(engine), tp, 8192, batch,
                               int(e.gpu_bytes), tp=tp, pp=1, gpu_name="H200-SXM-141GB")
        for field in ("weights_bytes", "kv_cache_bytes", "state_bytes", "total_bytes", "kv_blocks",
                      "kv_capacity_tokens", "max_concurrency"):
            assert getattr(e, field) == pytest.approx(float(r[field]), rel=1e-12, abs=1), (spec.name, field)
        assert e.fits == r["fits"]


def test_sglang_mamba_pool_and_trtllm_slots() -> None:
    sg = vramcore.estimate(QWEN3_NEXT, context=8192, batch=4, engine="sglang", n_gpus=2, gpu="H200")
    per_seq = 36 * (3 * 8192 * 2 + 32 * 128 * 128 * 4) / 2     # conv bf16 (kernel - 1), state fp32, over TP 2
    slots = sg.state_bytes / per_seq - 1
    assert slots == int(slots) > 0
    assert sg.max_concurrency <= slots // 5
    trt = vramcore.estimate(QWEN3_NEXT, context=8192, batch=4, engine="trtllm", n_gpus=2, gpu="H200")
    assert trt.state_bytes % (36 * (3 * 8192 * 2 + 32 * 128 * 128 * 2) / 2) == 0


def test_inverse_questions_see_the_state() -> None:
    for engine in ("transformers", "llamacpp"):
        best = vramcore.max_batch(QWEN3_NEXT, "fp8", contexts=4096, gpus="H200", engine=engine)
        b = int(best.values.ravel()[0])
        assert b > 0
        assert vramcore.estimate(QWEN3_NEXT, dtype="fp8", context=4096, batch=b, gpu="H200", engine=engine).fits
        assert not vramcore.estimate(QWEN3_NEXT, dtype="fp8", context=4096, batch=b + 1, gpu="H200",
                                     engine=engine).fits


def test_mamba2_mixer_and_spec_checks() -> None:
    m = mamba2(hidden=1536, heads=48, head_dim=64, state_size=128, groups=1, conv_kernel=4)
    # in_proj 1536 x (2 x 3072 + 2 x 128 + 48), conv 3328 x 4 + bias, A, D, dt, norm 3072, out_proj 3072 x 1536
    assert m.params == 1536 * (6144 + 256 + 48) + 3328 * 4 + 3328 + 3 * 48 + 3072 * 1536
    assert m.norm_params == 3072 and m.layer_type == "mamba"
    spec = ModelSpec(num_layers=4, hidden_size=1536, num_heads=12, intermediate_size=4096, vocab_size=1000,
                     layer_types=("mamba", "mamba", "full_attention", "mamba"), recurrent=m)
    assert spec.n_state_layers == 3 and spec.kv_layers == 1
    assert spec.param_count == sum(t.numel for t in vramcore.list_tensors(spec))
    with pytest.raises(ValueError, match="recurrent mixer"):
        ModelSpec(num_layers=2, hidden_size=64, num_heads=4, intermediate_size=64, vocab_size=10,
                  layer_types=("mamba", "full_attention"))
    with pytest.raises(ValueError, match="linear_attention"):
        ModelSpec(num_layers=2, hidden_size=64, num_heads=4, intermediate_size=64, vocab_size=10,
                  layer_types=("mamba", "full_attention"),
                  recurrent=gated_deltanet(hidden=64, key_heads=1, value_heads=1, key_dim=8, value_dim=8,
                                           conv_kernel=4))
    with pytest.raises(ValueError, match="kind"):
        StateSpec(kind="rwkv", tensors=(), conv_dim=1, conv_kernel=1, state_heads=1, state_rows=1, state_cols=1)
    with pytest.raises(ValueError, match="mamba_cache_mode"):
        dataclasses.replace(vramcore.get_engine("vllm"), mamba_cache_mode="some")


def test_a_model_of_recurrent_layers_only() -> None:
    m = mamba2(hidden=256, heads=8, head_dim=32, state_size=16, groups=1, conv_kernel=4)
    spec = ModelSpec(num_layers=4, hidden_size=256, num_heads=8, intermediate_size=512, vocab_size=1000,
                     layer_types=("mamba",) * 4, recurrent=m)
    for engine in ("transformers", "llamacpp", "vllm", "sglang", "trtllm"):
        e = vramcore.estimate(spec, context=100_000, batch=2, engine=engine, gpu="L4")
        assert e.kv_cache_bytes == 0 or engine in ("vllm", "sglang", "trtllm")
        assert e.state_bytes > 0 and e.fits


def test_qwen3_5_reads_split_projections_and_the_fp32_state_request() -> None:
    spec = _qwen35_9b_like()
    assert spec.param_count == 8_953_803_264  # llama-bench: "qwen35 9B Q4_K - Small | 8.95 B"
    names = {t.name.split(".", 2)[2] for t in vramcore.list_tensors(spec) if t.layer == 0}
    assert {"ssm_in_qkv.weight", "ssm_in_z.weight", "ssm_in_b.weight", "ssm_in_a.weight"} <= names
    # peft's all-linear would adapt the four input projections and out_proj of the DeltaNet layers too
    assert {"in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a", "out_proj"} <= {m.name for m in lora_modules(spec)}
    cfg = json.loads((DATA / "hf_configs" / "qwen3.5-defaults.json").read_text())["config"]
    fp32 = ModelSpec.from_hf_config({**cfg, "text_config": {"mamba_ssm_dtype": "float32"}})
    assert fp32.recurrent is not None and fp32.recurrent.ssm_fp32
    vllm16 = vramcore.estimate(spec, context=1024, engine="vllm", gpu="H100")
    vllm32 = vramcore.estimate(fp32.text_only, context=1024, engine="vllm", gpu="H100")
    assert vllm32.kv_blocks < vllm16.kv_blocks  # a larger state page raises the block size
    with pytest.raises(ValueError, match="mamba_ssm_dtype"):
        ModelSpec.from_hf_config({**cfg, "text_config": {"mamba_ssm_dtype": 32}})


def test_jamba_mamba1_layers() -> None:
    # transformers' JambaConfig defaults are Jamba-v0.1 (52B): 28 Mamba1 layers (inner 8192, state 16, kernel 4)
    # and 4 attention layers; measured: 51,570,323,328 parameters, 589,824 B of state per sequence and layer
    spec = ModelSpec.from_hf_config({"model_type": "jamba"})
    assert spec.param_count == 51_570_323_328 and spec.n_state_layers == 28 and spec.kv_layers == 4
    assert spec.recurrent is not None and spec.recurrent.kind == "mamba1"
    assert vramcore.estimate(spec, context=1024, batch=2).state_bytes == 2 * 28 * (8192 * 4 * 2 + 8192 * 16 * 4)
    # vLLM: conv (kernel - 1) x inner and the inner x state recurrent matrix, in the model dtype, over TP
    e = vramcore.estimate(spec, context=1024, engine=vramcore.get_engine("vllm", mamba_cache_mode="none"),
                          n_gpus=2, gpu="H100")
    assert e.state_bytes > 0 and e.kv_blocks > 0
    names = {m.name for m in lora_modules(spec)}  # peft's nn.Linear modules of a Mamba1 mixer
    assert {"in_proj", "x_proj", "dt_proj", "out_proj"} <= names


def test_every_recurrent_mixer_kind_trains() -> None:
    # Mamba2, gated DeltaNet and Mamba1 layers each have measured training formulas (tests/test_training_hybrid.py);
    # the kernel and the oracle agree on them
    from vramcore.engines.train import TRAINABLE_MIXERS
    from vramcore.model.recurrent import STATE_KINDS

    assert set(STATE_KINDS) == TRAINABLE_MIXERS
    jamba = ModelSpec.from_hf_config({"model_type": "jamba"})
    for spec in (jamba, QWEN3_NEXT):
        for engine in ("train", "lora", "qlora"):
            got = vramcore.estimate(spec, context=4096, batch=2, engine=engine)
            want = reference_estimate(spec, vramcore.get_dtype("bf16"), None, vramcore.get_engine(engine), 1, 4096, 2,
                                      None)
            assert got.activation_bytes == want["activation_bytes"] > 0


def test_nemotron_h_one_sub_block_layers() -> None:
    # transformers' NemotronHConfig defaults: blocks Mamba2, MoE, attention, MLP (one norm and one sub-block each);
    # measured: 1,968,355,712 parameters, one Mamba2 state and one attention layer's cache
    spec = ModelSpec.from_hf_config({"model_type": "nemotron_h"})
    assert spec.param_count == 1_968_355_712
    assert spec.layer_types == ("mamba", "none", "full_attention", "none")
    assert spec.mlp_layer_types == ("none", "moe", "none", "dense")
    assert not spec.mlp_gated and spec.norms_per_layer == 1 and spec.router_fp32
    names = {t.name.split(".", 2)[2] for t in vramcore.list_tensors(spec) if t.layer is not None}
    assert "ffn_gate.weight" not in names and {"ffn_up.weight", "ffn_down.weight", "ffn_up_exps.weight"} <= names
    # the pattern string of older configs reads the same
    older = ModelSpec.from_hf_config({"model_type": "nemotron_h", "hybrid_override_pattern": "ME*-"})
    assert older == spec
    # state: 128 heads x 64 x 128 fp32 and (4 - 1) x 10240 conv channels under vLLM, over TP 2
    e = vramcore.estimate(spec, context=1024, engine=vramcore.get_engine("vllm", mamba_cache_mode="none"),
                          n_gpus=2, gpu="H100")
    assert e.state_bytes >= (128 * 64 * 128 * 4 + 3 * 10240 * 2) // 2  # one state page, padded to the block
    assert e.kv_blocks > 0
    assert vramcore.estimate(spec, context=1024, batch=3).state_bytes == 3 * (128 * 64 * 128 * 4 + 10240 * 4 * 2)
    # pipeline stages share the blocks, MLP-only ones included: 2 of 4 on the busier stage
    two = vramcore.estimate(spec, context=1024, engine="llamacpp", n_gpus=2)
    one = vramcore.estimate(spec, context=1024, engine="llamacpp")
    assert two.weights_bytes < one.weights_bytes
    # training estimates the one-sub-block layers (measured: tests/test_training_hybrid.py), not mixer-less
    # layers beside Falcon-H1-style "hybrid" ones
    trained = vramcore.estimate(spec, context=64, engine="train")
    assert trained.activation_bytes > 0 and trained.trainable_params == spec.param_count
    hybrid = tuple("hybrid" if k == "full_attention" else k for k in spec.layer_types or ())
    with pytest.raises(ValueError, match="mixer-less layers beside Falcon-H1-style hybrid layers"):
        vramcore.estimate(spec.replace(layer_types=hybrid), context=64, engine="train")
    with pytest.raises(ValueError, match="layers_block_type"):
        ModelSpec.from_hf_config({"model_type": "nemotron_h", "layers_block_type": ["mamba", "rnn"]})


@pytest.mark.parametrize("args,error,match", [
    (("ssm_in.weight", (-4, 8), "linear"), ValueError, r"'ssm_in.weight': shape dims must be >= 1, got \(-4, 8\)"),
    (("ssm_in.weight", (4, "8"), "linear"), TypeError, "shape must be a tuple of ints"),
    (("ssm_in.weight", (4, True), "linear"), TypeError, "shape must be a tuple of ints"),
    (("ssm_in.weight", (), "linear"), ValueError, "1 to 5 dims"),
    (("ssm_in.weight", (2**21,) * 2, "linear"), ValueError, "more than 1099511627776 elements"),
    (("ssm_in.weight", (4, 8), "matrix"), ValueError, "role must be one of"),
    ((None, (4, 8), "linear"), TypeError, "MixerTensor.name must be a str"),
])
def test_hand_written_mixer_tensors_are_checked(args: tuple[Any, ...], error: type[Exception], match: str) -> None:
    # a negative or huge dim would otherwise become a negative or absurd parameter count without a word
    with pytest.raises(error, match=match):
        MixerTensor(*args)
    assert MixerTensor("ssm_in.weight", [4, 8], "linear").shape == (4, 8)  # a list is taken as the tuple
