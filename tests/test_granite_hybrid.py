"""Mamba2 hybrids: Granite-4.0-H (``granitemoehybrid``) and Bamba (Falcon-H1: tests/test_falcon_h1.py).

Facts: the parameter counts published for the checkpoints (Granite-4.0-H-Small 32,207,337,984: its safetensors
total and the n-params llama.cpp prints for its GGUF; Granite-4.0-H-Tiny 6,939,037,248: the safetensors total of
granite-4.0-h-tiny-base; Granite-4.0-H-Micro 3,191,396,096: general.parameter_count of IBM's GGUF), and what
transformers 5.24 builds from the configs in ``tests/data/hf_configs`` (``tests/data/transformers_measured.json``,
checked part by part in ``tests/test_transformers_measured.py``).  The state figures below are written from the
config numbers: conv channels = heads x head dim + 2 x groups x state, recurrent state = heads x head dim x state.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

import vramcore
from vramcore import ModelSpec
from vramcore.grid.reference import reference_estimate
from vramcore.model.hf._reader import Reader
from vramcore.model.hf.bamba import mamba2_mixer

DATA = Path(__file__).parent / "data" / "hf_configs"
MEASURED: dict[str, Any] = json.loads((DATA.parent / "transformers_measured.json").read_text())["models"]


def _config(name: str) -> dict[str, Any]:
    return dict(json.loads((DATA / f"{name}.json").read_text())["config"])


SMALL, TINY, MICRO = (_config(f"granite-4.0-h-{size}") for size in ("small", "tiny", "micro"))
ATTENTION = (5, 15, 25, 35)
# a Granite-4.0-H-Tiny-shaped config cut to 4 layers, for the edge cases
TOY = {**TINY, "num_hidden_layers": 4, "layer_types": ["mamba", "attention", "mamba", "mamba"]}


def spec(cfg: dict[str, Any], **changes: Any) -> ModelSpec:
    return ModelSpec.from_hf_config({**cfg, **changes}, name="granite-test")


# ----------------------------------------------------------------------------- published counts


@pytest.mark.parametrize(("cfg", "published", "name"), [
    (SMALL, 32_207_337_984, "Granite-4.0-H-Small"),
    (TINY, 6_939_037_248, "Granite-4.0-H-Tiny"),
    (MICRO, 3_191_396_096, "Granite-4.0-H-Micro"),
])
def test_granite_4_h_counts_match_the_published_checkpoints(cfg: dict[str, Any], published: int, name: str) -> None:
    s = spec(cfg)
    assert s.param_count == published == MEASURED[name]["params"]["total"]
    assert s.layer_types == tuple("full_attention" if i in ATTENTION else "mamba" for i in range(40))
    assert s.kv_layers == 4 and s.n_state_layers == 36 and s.tie_embeddings
    assert s.param_count == sum(t.numel for t in vramcore.list_tensors(s))


def test_granite_moe_and_dense_mlps() -> None:
    small, micro = spec(SMALL), spec(MICRO)
    # Small: 72 experts of 768, top 10, a shared expert of 1536 and a bias-free router in every one of 40 layers
    assert (small.num_experts, small.experts_per_token, small.moe_intermediate_size) == (72, 10, 768)
    parts = small.param_breakdown()
    assert parts["mlp_routed_experts"] == 40 * 72 * 3 * 4096 * 768
    assert parts["mlp_shared_experts"] == 40 * 3 * 4096 * 1536
    assert parts["router"] == 40 * 72 * 4096 and not small.shared_expert_gate
    # Micro: num_local_experts 0, so the shared MLP of 8192 is the dense MLP
    assert micro.num_experts == 0 and micro.intermediate_size == 8192
    assert micro.param_breakdown()["mlp_dense"] == 40 * 3 * 2048 * 8192
    # 10 of the 72 experts work per token
    assert small.active_param_count == small.param_count - 40 * 62 * 3 * 4096 * 768


def test_granite_mamba2_mixer_tensors() -> None:
    rec = spec(SMALL).recurrent
    assert rec is not None and rec.kind == "mamba2" and rec.layer_type == "mamba"
    shapes = {t.name: t.shape for t in rec.tensors}
    # in_proj: gate 8192 + conv channels 8448 + 128 dt; depthwise conv with bias; A, D, dt_bias per head
    assert shapes == {"ssm_in.weight": (8192 + 8448 + 128, 4096), "ssm_conv1d.weight": (8448, 1, 4),
                      "ssm_conv1d.bias": (8448,), "ssm_dt.bias": (128,), "ssm_a": (128,), "ssm_d": (128,),
                      "ssm_norm.weight": (8192,), "ssm_out.weight": (4096, 8192)}
    assert (rec.conv_dim, rec.conv_kernel, rec.state_heads, rec.state_rows, rec.state_cols) == (8448, 4, 128, 64, 128)
    assert not rec.ssm_fp32


# ----------------------------------------------------------------------------- caches and states


def test_kv_cache_is_the_four_attention_layers() -> None:
    s = spec(SMALL)
    # 4 layers x 8 KV heads x 128 x K and V x 2 B per token, whatever the 36 Mamba2 layers do
    e = vramcore.estimate(s, context=131072, batch=1)
    assert e.kv_cache_bytes == 131072 * 4 * 8 * 128 * 2 * 2 == 131072 * MEASURED["Granite-4.0-H-Small"][
        "kv_cache"]["bytes_per_token_uncapped"]


@pytest.mark.parametrize(("cfg", "heads", "head_dim", "groups"), [(SMALL, 128, 64, 1), (TINY, 48, 64, 1),
                                                                  (MICRO, 64, 64, 1)])
def test_state_per_sequence_by_engine(cfg: dict[str, Any], heads: int, head_dim: int, groups: int) -> None:
    s = spec(cfg)
    conv = heads * head_dim + 2 * groups * 128           # channels of the depthwise conv (state size 128)
    ssm = heads * head_dim * 128                          # the recurrent matrix of one sequence
    # transformers' DynamicCache: the whole kernel (4) in bf16, the state in fp32, for each of 36 layers
    hf = 36 * (conv * 4 * 2 + ssm * 4)
    assert hf == MEASURED[f"Granite-4.0-H-{_size(cfg)}"]["kv_cache"]["state_bytes_per_sequence"]
    for context in (1, 100_000):
        assert vramcore.estimate(s, context=context, batch=3).state_bytes == 3 * hf
    # llama.cpp: the kernel's 3 past inputs and the state, both f32
    assert vramcore.estimate(s, context=4096, batch=2, engine="llamacpp").state_bytes == 2 * 36 * (conv * 3 + ssm) * 4
    # a per-sequence engine with vLLM's rules: kernel - 1 inputs, the state in the model dtype (the config asks for
    # no fp32 state)
    vllm_rules = dataclasses.replace(vramcore.get_engine("transformers"), state_conv_offset=-1, state_ssm_bits=0)
    assert vramcore.estimate(s, context=4096, batch=2, engine=vllm_rules).state_bytes == 2 * 36 * (conv * 3 + ssm) * 2


def _size(cfg: dict[str, Any]) -> str:
    return {4096: "Small", 1536: "Tiny", 2048: "Micro"}[cfg["hidden_size"]]


def test_vllm_pages_the_granite_small_state() -> None:
    # vLLM raises the attention block to hold one layer's state page: conv 3 x 8448 x 2 B + state 128 x 64 x 128 x 2 B
    # = 2,147,840 B over 4096 B per token and attention layer -> 16 x ceil(2,147,840 / 65,536) = 528 tokens; the 36
    # Mamba2 layers form 9 groups of 4 (the 4 attention layers' count), one state block each per request
    # (mamba_cache_mode "none")
    s = spec(SMALL)
    engine = dataclasses.replace(vramcore.get_engine("vllm"), mamba_cache_mode="none")
    e = vramcore.estimate(s, context=8192, batch=2, engine=engine, gpu="H200")
    page = 16 * math.ceil((3 * 8448 * 2 + 128 * 64 * 128 * 2) / (16 * 4096)) * 4096
    assert page == 528 * 4096
    assert e.state_bytes == 2 * 9 * 4 * page
    assert e.kv_capacity_tokens == e.kv_blocks // 10 * 528  # 1 attention group + 9 state groups share the blocks
    # an fp32 state request doubles the state page: 16 x ceil(4,244,992 / 65,536) = 1040-token blocks
    fp32 = spec(SMALL, mamba_ssm_cache_dtype="float32")
    assert fp32.recurrent is not None and fp32.recurrent.ssm_fp32
    e32 = vramcore.estimate(fp32, context=8192, batch=2, engine=engine, gpu="H200")
    assert e32.state_bytes == 2 * 9 * 4 * 1040 * 4096
    # transformers keeps its own fp32 state whatever the config asks
    assert vramcore.estimate(fp32, context=64).state_bytes == vramcore.estimate(spec(SMALL), context=64).state_bytes


@pytest.mark.parametrize("engine,tp", [("transformers", 1), ("llamacpp", 1), ("vllm", 2), ("sglang", 2),
                                       ("trtllm", 2)])
def test_kernel_matches_the_oracle_on_granite(engine: str, tp: int) -> None:
    for cfg in (SMALL, MICRO, _config("bamba-synthetic")):
        s = spec(cfg)
        e = vramcore.estimate(s, context=8192, batch=3, engine=engine, n_gpus=tp, gpu="H200")
        r = reference_estimate(s, vramcore.get_dtype("bf16"), None, vramcore.get_engine(engine), tp, 8192, 3,
                               int(e.gpu_bytes), tp=tp, pp=1, gpu_name="H200-SXM-141GB")
        for field in ("weights_bytes", "kv_cache_bytes", "state_bytes", "total_bytes", "kv_blocks",
                      "kv_capacity_tokens", "max_concurrency"):
            assert getattr(e, field) == pytest.approx(float(r[field]), rel=1e-12, abs=1), (cfg["model_type"], field)


# ----------------------------------------------------------------------------- reader edge cases


def test_layer_type_spellings() -> None:
    legacy = spec(TOY)
    assert legacy.layer_types == ("mamba", "full_attention", "mamba", "mamba")
    v5 = spec({k: v for k, v in TOY.items() if k != "layer_types"},
              layers_block_type=["linear_attention", "full_attention", "linear_attention", "linear_attention"])
    assert v5 == legacy
    alias = spec({k: v for k, v in TOY.items() if k != "layer_types"},
                 layers_block_type=["mamba", "attention", "mamba", "mamba"])
    assert alias == legacy
    # no layer list: GraniteMoeHybridConfig makes every layer Mamba2
    every = spec({k: v for k, v in TOY.items() if k != "layer_types"})
    assert every.n_state_layers == 4 and every.kv_layers == 0
    assert vramcore.estimate(every, context=100_000).kv_cache_bytes == 0


def test_position_embeddings_and_multipliers_build_nothing() -> None:
    base = spec(TOY)
    for changes in ({"position_embedding_type": "rope"}, {"position_embedding_type": None},
                    {"embedding_multiplier": 12, "residual_multiplier": 0.22, "attention_multiplier": 0.0078125,
                     "logits_scaling": 6}):
        assert spec(TOY, **changes).param_breakdown() == base.param_breakdown()


def test_granite_without_mamba_layers() -> None:
    # Granite-4.0-Micro (no H) is a granitemoehybrid config whose layers all attend: no mixer, no state
    s = spec(TOY, layer_types=["attention"] * 4)
    assert s.recurrent is None and s.n_state_layers == 0
    assert vramcore.estimate(s, context=64).state_bytes == 0


def test_mamba_head_geometry_checks() -> None:
    auto = spec(TOY, mamba_d_head="auto")
    assert auto == spec(TOY)  # 2 x 1536 / 48 = 64
    assert spec(TOY, mamba_n_heads=96, mamba_d_head=32).recurrent.state_heads == 96  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"mamba_d_head x mamba_n_heads \(32 x 48\) must equal .* \(3072\)"):
        spec(TOY, mamba_d_head=32)
    with pytest.raises(ValueError, match=r"mamba_n_heads \(47\) must divide .* \(3072\)"):
        spec(TOY, mamba_n_heads=47, mamba_d_head="auto")
    with pytest.raises(ValueError, match="mamba_d_head' must be an integer"):
        spec(TOY, mamba_d_head="wide")
    with pytest.raises(ValueError, match="mamba_conv_bias' must be true/false"):
        spec(TOY, mamba_conv_bias="yes")
    proj = spec(TOY, mamba_proj_bias=True, mamba_conv_bias=False).recurrent
    assert proj is not None
    names = {t.name for t in proj.tensors}
    assert {"ssm_in.bias", "ssm_out.bias"} <= names and "ssm_conv1d.bias" not in names


def test_experts_and_shared_mlp_checks() -> None:
    with pytest.raises(ValueError, match="num_local_experts 0 needs a shared_intermediate_size >= 1"):
        spec(TOY, num_local_experts=0, shared_intermediate_size=0)
    with pytest.raises(ValueError, match="experts_per_token must be in"):
        spec(TOY, num_experts_per_tok=65)
    no_shared = spec(TOY, shared_intermediate_size=0)
    assert no_shared.param_breakdown()["mlp_shared_experts"] == 0
    # class defaults where a file is silent: 8 experts top-2, a shared MLP of 1024
    bare = spec({k: v for k, v in TOY.items() if k not in ("num_local_experts", "num_experts_per_tok",
                                                           "shared_intermediate_size")})
    assert (bare.num_experts, bare.experts_per_token, bare.shared_expert_intermediate_size) == (8, 2, 1024)


@pytest.mark.parametrize(("key", "value", "match"), [
    ("layer_types", ["mamba", "moe", "mamba", "mamba"], r"'mamba' and 'attention' layers .* got \['moe'\]"),
    ("layer_types", ["mamba", "attention"], "must be a list of 4 entries"),
    ("layer_types", "mamba", "must be a list of 4 entries"),
    ("layer_types", ["mamba", 3, "mamba", "mamba"], r"got \['3'\]"),
    ("mamba_n_heads", 10**9, "mamba_n_heads' must be <= 16384"),
    ("mamba_n_groups", 0, "mamba_n_groups' must be >= 1"),
    ("mamba_d_state", 2**20, "mamba_d_state' must be <= 65536"),
    ("mamba_d_conv", 10**6, "mamba_d_conv' must be <= 1024"),
    ("mamba_expand", 1e300, "mamba_expand' must be <= 64"),
    ("mamba_d_head", math.inf, "mamba_d_head' must be an integer"),
    ("shared_intermediate_size", 2**40, "shared_intermediate_size' must be <= 1048576"),
    ("mamba_ssm_cache_dtype", 32, "mamba_ssm_cache_dtype' must be a dtype name"),
])
def test_config_values_are_checked_and_bounded(key: str, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        spec(TOY, **{key: value})


NASTY = [0, -1, 1, 2**31, 2**53 + 1, 10**300, 1e300, math.inf, math.nan, 0.5, True, None, "auto", "x", [], {}, [1, 2]]
MAMBA_KEYS = ["mamba_n_heads", "mamba_d_head", "mamba_n_groups", "mamba_d_state", "mamba_d_conv", "mamba_expand",
              "mamba_conv_bias", "mamba_proj_bias", "num_local_experts", "num_experts_per_tok",
              "shared_intermediate_size", "layer_types", "layers_block_type", "mamba_ssm_cache_dtype",
              "mamba_ssm_dtype", "attn_layer_indices"]


@pytest.mark.parametrize("model_type", ["granitemoehybrid", "bamba"])
def test_nasty_values_give_only_documented_errors(model_type: str) -> None:
    base = {**TOY, "model_type": model_type, "attn_layer_indices": [1]}
    for key in MAMBA_KEYS:
        for value in NASTY:
            try:
                s = ModelSpec.from_hf_config({**base, key: value})
            except (ValueError, TypeError):
                continue
            e = vramcore.estimate(s, context=1024, gpu="H100")
            assert all(math.isfinite(v) for v in (e.weights_bytes, e.kv_cache_bytes, e.state_bytes, e.total_bytes))


def test_ssm_dtype_requests() -> None:
    for key in ("mamba_ssm_cache_dtype", "mamba_ssm_dtype"):
        assert spec(TOY, **{key: "float32"}).recurrent.ssm_fp32  # type: ignore[union-attr]
        assert not spec(TOY, **{key: "bfloat16"}).recurrent.ssm_fp32  # type: ignore[union-attr]
    r = Reader({"mamba_n_heads": 8, "mamba_d_head": "auto", "mamba_d_state": 16, "mamba_n_groups": 2,
                "mamba_d_conv": 4, "mamba_expand": 2, "mamba_ssm_dtype": "fp32"}, "bamba")
    s = mamba2_mixer(r, 64)
    assert s.ssm_fp32 and s.conv_dim == 128 + 2 * 2 * 16 and s.state_rows == 16


# ----------------------------------------------------------------------------- bamba


def test_bamba_reads_attention_indices_and_biases() -> None:
    cfg = _config("bamba-synthetic")
    s = spec(cfg)
    assert s.param_count == MEASURED["bamba-synthetic"]["params"]["total"]
    assert s.layer_types == ("mamba", "mamba", "full_attention", "mamba")
    assert s.qkv_bias and s.o_bias and s.mlp_bias and not s.tie_embeddings
    rec = s.recurrent
    assert rec is not None and rec.conv_dim == 512 + 2 * 2 * 32 and rec.state_rows == 64  # auto: 2 x 256 / 8
    every = spec({k: v for k, v in cfg.items() if k != "attn_layer_indices"})
    assert every.n_state_layers == 4 and every.kv_layers == 0
    with pytest.raises(ValueError, match=r"attn_layer_indices' names layers outside 0..3: \[4\]"):
        spec(cfg, attn_layer_indices=[2, 4])
    with pytest.raises(ValueError, match="attn_layer_indices' must be a list of integers"):
        spec(cfg, attn_layer_indices=[1.5])


def test_bamba_defaults_are_the_config_class_defaults() -> None:
    # BambaConfig(): 32 layers x 4096, 128 Mamba2 heads of 2 x 4096 / 128 = 64, state 256, untied, vocab 128000
    s = ModelSpec.from_hf_config({"model_type": "bamba", "attn_layer_indices": [9, 18, 27]})
    assert (s.num_layers, s.hidden_size, s.num_kv_heads, s.vocab_size, s.tie_embeddings) == (32, 4096, 8, 128000,
                                                                                            False)
    rec = s.recurrent
    assert rec is not None and (rec.state_heads, rec.state_rows, rec.state_cols) == (128, 64, 256)
    assert s.kv_layers == 3 and s.max_context == 262144



@pytest.mark.parametrize("size", ["micro", "tiny", "small"])
def test_granite_4_h_cards_are_the_configs(size: str) -> None:
    # the built-in cards hold the configs above and answer to their Hugging Face ids
    card = vramcore.get_model(f"ibm-granite/granite-4.0-h-{size}")
    assert card.name == f"Granite-4.0-H-{size.capitalize()}"
    assert card.config == _config(f"granite-4.0-h-{size}")
    assert card.spec.param_count == card.published_params == MEASURED[card.name]["params"]["total"]
    assert card.context_window == card.spec.max_context == 131072
