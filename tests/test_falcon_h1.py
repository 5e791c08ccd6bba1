"""Falcon-H1 (``falcon_h1``): attention and a Mamba2 mixer side by side in every layer (layer kind ``"hybrid"``).

Facts: what transformers 5.24 builds from ``tests/data/hf_configs/falcon-h1-*.json`` (the FalconH1Config defaults
and a synthetic config that turns every tensor-shaping switch; ``tests/data/transformers_measured.json``, checked
part by part in ``tests/test_transformers_measured.py``); the engines' rules from their sources: vLLM registers
each layer's mixer as its own cache layer (vllm/model_executor/models/falcon_h1.py, ``FalconH1ParallelHybrid``),
llama.cpp's hybrid memory gives every Falcon-H1 layer a KV cache and a recurrent cell (src/llama-model.cpp,
``LLM_ARCH_FALCON_H1``: both layer filters true).  The figures below are written from the config numbers.
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
from vramcore.model.recurrent import mamba2

DATA = Path(__file__).parent / "data" / "hf_configs"
MEASURED: dict[str, Any] = json.loads((DATA.parent / "transformers_measured.json").read_text())["models"]
SYNTHETIC: dict[str, Any] = json.loads((DATA / "falcon-h1-synthetic.json").read_text())["config"]
DEFAULTS = ModelSpec.from_hf_config({"model_type": "falcon_h1"}, name="falcon-h1-defaults")
CARD = vramcore.get_model("tiiuae/Falcon-H1-7B-Instruct").spec


def test_every_layer_attends_and_keeps_a_state() -> None:
    s = DEFAULTS
    assert s.layer_types == ("hybrid",) * 32
    assert s.n_full_layers == s.kv_layers == s.n_state_layers == s.num_layers == 32
    assert (s.num_kv_heads, s.head_dim, s.vocab_size, s.tie_embeddings) == (8, 128, 128000, False)
    assert s.param_count == MEASURED["Falcon-H1-defaults"]["params"]["total"]
    assert s.param_count == sum(t.numel for t in vramcore.list_tensors(s))


def test_mixer_tensors_follow_the_switches() -> None:
    # defaults: mamba_d_ssm 1024 = 128 heads x 8, state 256, conv bias, no gated norm, no projection biases
    rec = DEFAULTS.recurrent
    assert rec is not None and rec.kind == "mamba2"
    shapes = {t.name: t.shape for t in rec.tensors}
    assert shapes == {"ssm_in.weight": (2 * 1024 + 2 * 256 + 128, 4096), "ssm_conv1d.weight": (1536, 1, 4),
                      "ssm_conv1d.bias": (1536,), "ssm_dt.bias": (128,), "ssm_a": (128,), "ssm_d": (128,),
                      "ssm_out.weight": (4096, 1024)}
    # synthetic: mamba_d_ssm null -> 2 x 128 inner, 8 heads of 32, 2 groups of 16; a gated norm, in_proj bias
    # (mamba_proj_bias), out_proj bias (projectors_bias), no conv bias
    syn = ModelSpec.from_hf_config(SYNTHETIC)
    rec = syn.recurrent
    assert rec is not None
    shapes = {t.name: t.shape for t in rec.tensors}
    assert shapes == {"ssm_in.weight": (2 * 256 + 2 * 2 * 16 + 8, 128), "ssm_in.bias": (584,),
                      "ssm_conv1d.weight": (320, 1, 4), "ssm_dt.bias": (8,), "ssm_a": (8,), "ssm_d": (8,),
                      "ssm_norm.weight": (256,), "ssm_out.weight": (128, 256), "ssm_out.bias": (128,)}
    assert rec.norm_params == 256 and syn.tie_embeddings and syn.qkv_bias and syn.o_bias and syn.mlp_bias
    # every block holds its attention and its mixer, each once
    names = [t.name for t in vramcore.list_tensors(syn) if t.layer == 1]
    assert {"blk.1.attn_q.weight", "blk.1.attn_output.bias", "blk.1.ssm_in.weight", "blk.1.ssm_out.bias"} <= set(names)
    assert len(names) == len(set(names))
    assert syn.param_count == MEASURED["falcon-h1-synthetic"]["params"]["total"]


def test_the_out_bias_apart_from_the_in_bias() -> None:
    both = mamba2(hidden=64, heads=4, head_dim=8, state_size=4, groups=1, conv_kernel=4, proj_bias=True)
    only_in = mamba2(hidden=64, heads=4, head_dim=8, state_size=4, groups=1, conv_kernel=4, proj_bias=True,
                     out_bias=False)
    only_out = mamba2(hidden=64, heads=4, head_dim=8, state_size=4, groups=1, conv_kernel=4, out_bias=True)
    assert both.params - only_in.params == 64 == only_out.params - (only_in.params - (2 * 32 + 8 + 4))


# ----------------------------------------------------------------------------- caches and states, by engine


def test_transformers_caches_every_layer_twice() -> None:
    m = MEASURED["Falcon-H1-defaults"]["kv_cache"]
    # 32 layers x 8 KV heads x 128 x K and V x 2 B per token
    assert m["bytes_per_token_uncapped"] == 32 * 8 * 128 * 2 * 2
    # the whole conv kernel (4) of 1024 + 2 x 256 channels in bf16, the 128 x 8 x 256 state in fp32, every layer
    assert m["state_bytes_per_sequence"] == 32 * (1536 * 4 * 2 + 128 * 8 * 256 * 4)
    e = vramcore.estimate(DEFAULTS, context=4096, batch=3)
    assert e.kv_cache_bytes == 3 * 4096 * m["bytes_per_token_uncapped"]
    assert e.state_bytes == 3 * m["state_bytes_per_sequence"]


def test_llamacpp_gives_every_layer_kv_cells_and_a_recurrent_cell() -> None:
    # n_ctx = 4096 x 2 cells in all 32 layers (f16), and per sequence the conv's 3 past inputs and the state in f32
    e = vramcore.estimate(DEFAULTS, context=4096, batch=2, engine="llamacpp", gpu="H200")
    assert e.kv_cache_bytes == 8192 * 32 * 8 * 128 * 2 * 2
    assert e.state_bytes == 2 * 32 * (1536 * 3 + 128 * 8 * 256) * 4


def test_vllm_pages_attention_and_mixers_as_two_groups() -> None:
    # the mixer's state page (conv 3 x 1536 x 2 B + state 128 x 8 x 256 x 2 B = 533,504 B) raises the attention
    # block to 16 x ceil(533,504 / (16 x 4096 B per token and layer)) = 144 tokens; the 32 attention layers and the
    # 32 mixers are two groups of 32, one block id a page in each layer of a group
    engine = dataclasses.replace(vramcore.get_engine("vllm"), mamba_cache_mode="none")
    e = vramcore.estimate(DEFAULTS, context=8192, batch=2, engine=engine, gpu="H200")
    block = 16 * math.ceil((3 * 1536 * 2 + 128 * 8 * 256 * 2) / (16 * 4096))
    assert block == 144
    unit = 32 * block * 4096
    assert e.kv_cache_bytes == e.kv_blocks * unit
    assert e.kv_capacity_tokens == e.kv_blocks // 2 * block
    assert e.state_bytes == 2 * 1 * unit               # one state block a request in the one mixer group
    assert e.max_concurrency == e.kv_blocks / (math.ceil(8192 / block) + 1)


@pytest.mark.parametrize("engine,tp,pp", [("transformers", 1, 1), ("transformers", 1, 2), ("llamacpp", 1, 1),
                                          ("llamacpp", 1, 3), ("vllm", 2, 1), ("vllm", 1, 3), ("sglang", 2, 1),
                                          ("trtllm", 2, 1), ("trtllm", 1, 2)])
def test_kernel_matches_the_oracle_on_falcon_h1(engine: str, tp: int, pp: int) -> None:
    for s in (DEFAULTS, CARD, ModelSpec.from_hf_config(SYNTHETIC)):
        n = tp * pp
        e = vramcore.estimate(s, context=8192, batch=3, engine=engine, n_gpus=n, tp=tp, pp=pp, gpu="H200")
        r = reference_estimate(s, vramcore.get_dtype("bf16"), None, vramcore.get_engine(engine), n, 8192, 3,
                               int(e.gpu_bytes), tp=tp, pp=pp, gpu_name="H200-SXM-141GB")
        for field in ("weights_bytes", "kv_cache_bytes", "state_bytes", "total_bytes", "kv_blocks",
                      "kv_capacity_tokens", "max_concurrency", "host_bytes"):
            assert getattr(e, field) == pytest.approx(float(r[field]), rel=1e-12, abs=1), (s.name, field)


def test_pipeline_stages_hold_their_share_of_the_layers() -> None:
    # each layer kind counts once among the stage's layers: two stages of 16 hold the whole decoder's layer weights
    one = vramcore.estimate(DEFAULTS, context=1024, n_gpus=1, gpu="H200")
    two = vramcore.estimate(DEFAULTS, context=1024, n_gpus=2, pp=2, gpu="H200")
    parts = DEFAULTS.param_breakdown()
    layers = 2 * (parts["attention"] + parts["mlp_dense"] + parts["norms"])   # bf16 bytes of every decoder layer
    assert two.weights_bytes == pytest.approx(layers / 2 + 2 * parts["embedding"], abs=2)
    assert one.weights_bytes == layers + 2 * (parts["embedding"] + parts["lm_head"])


# ----------------------------------------------------------------------------- reader edge cases


@pytest.mark.parametrize(("changes", "match"), [
    ({"layers_block_type": ["hybrid", "attention"]}, r"'layers_block_type' of a falcon_h1 model holds \['attention'\]"),
    ({"layer_types": ["hybrid"]}, r"'layer_types' of a falcon_h1 model must be a list of 2 entries"),
    ({"attn_layer_indices": [0]}, r"'attn_layer_indices' of a falcon_h1 model is \[0\]"),
    ({"mamba_d_head": 48}, r"mamba_d_head x mamba_n_heads \(48 x 8\) must equal .* \(256\)"),
    ({"mamba_n_heads": 7}, r"mamba_n_heads \(7\) must divide .* \(256\)"),
    ({"mamba_d_ssm": 2**21}, r"config field 'mamba_d_ssm' must be <= 1048576, got 2097152"),
    ({"mamba_d_conv": 0}, r"config field 'mamba_d_conv' must be >= 1, got 0"),
    ({"mamba_rms_norm": "yes"}, r"config field 'mamba_rms_norm' must be true/false, got 'yes'"),
])
def test_bad_configs_are_refused_by_field(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ModelSpec.from_hf_config({**SYNTHETIC, "num_hidden_layers": 2, **changes})


def test_config_class_defaults_and_nulls() -> None:
    # an absent mamba_d_ssm is FalconH1Config's 1024, a null one mamba_expand x hidden_size; a null
    # num_key_value_heads one KV head a query head, an absent one 8
    assert DEFAULTS.recurrent is not None and DEFAULTS.recurrent.conv_dim == 1024 + 2 * 256
    null = ModelSpec.from_hf_config({"model_type": "falcon_h1", "mamba_d_ssm": None, "num_key_value_heads": None})
    assert null.recurrent is not None and null.recurrent.conv_dim == 2 * 4096 + 2 * 256
    assert null.num_kv_heads == 32
    listed = {"model_type": "falcon_h1", "layers_block_type": ["hybrid"] * 32}
    assert ModelSpec.from_hf_config(listed, name="falcon-h1-defaults") == DEFAULTS


def test_hybrid_layers_need_a_mixer() -> None:
    with pytest.raises(ValueError, match=r"layer_types has \['hybrid'\] layers: a recurrent mixer"):
        DEFAULTS.replace(recurrent=None)
    # a recurrent mixer of any kind may run beside attention; but the spec's own recurrent layers name its kind
    with pytest.raises(ValueError, match=r"whose layers are 'mamba' \(or 'hybrid', beside attention\)"):
        DEFAULTS.replace(layer_types=("hybrid",) * 31 + ("linear_attention",))
    assert DEFAULTS.replace(layer_types=("hybrid",) * 16 + ("full_attention",) * 16).n_state_layers == 16


def test_the_7b_card() -> None:
    # 44 hybrid layers: 2 KV heads x 128 x K and V x 2 B = 1,024 B a token in every layer, and a Mamba2 state of
    # 24 heads x 128 x 256 beside the conv's 3072 + 2 x 256 channels
    m = MEASURED["Falcon-H1-7B-Instruct"]
    assert CARD.param_count == m["params"]["total"]
    assert CARD.layer_types == ("hybrid",) * 44
    assert m["kv_cache"]["bytes_per_token_uncapped"] == 44 * 2 * 128 * 2 * 2
    assert m["kv_cache"]["state_bytes_per_sequence"] == 44 * (3584 * 4 * 2 + 24 * 128 * 256 * 4)
    e = vramcore.estimate("Falcon-H1-7B-Instruct", context=262144, engine="llamacpp", gpu="H200")
    assert e.kv_cache_bytes == 262144 * 44 * 1024 and e.state_bytes == 44 * (3584 * 3 + 24 * 128 * 256) * 4
