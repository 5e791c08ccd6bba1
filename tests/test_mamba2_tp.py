"""Mamba2 under tensor parallelism: B and C held whole-group per rank (issue #10).

With fewer groups than TP ranks (``n_groups = 1``: Bamba, Granite-4.0-H,
Falcon-H1), the serving engines replicate each group on ``tp / n_groups``
ranks, in the conv state and in the weights of ``in_proj`` / ``conv1d``.  The
expected figures here are written from the engines' own rules, independently of
vramcore's formulas:

- vLLM ``MambaStateShapeCalculator.mamba2_state_shape`` with
  ``extra_groups_for_head_shards`` (vllm/model_executor/layers/mamba/mamba_utils.py):
  ``n_groups += 0 if n_groups % tp == 0 else tp - n_groups``; conv state
  ``(conv_kernel - 1, (intermediate + 2 x n_groups x state) / tp)``; temporal
  state ``(heads / tp, head_dim, state)``;
- vLLM ``MambaMixer2.__init__`` (mamba_mixer2.py): ``in_proj`` a column-parallel
  linear of ``intermediate + conv_dim + heads`` rows and ``conv1d`` one of
  ``conv_dim`` rows, both with the extended ``n_groups``.
"""

from __future__ import annotations

import dataclasses

import pytest

import vramcore
from vramcore import ModelSpec
from vramcore.grid.reference import _state_bytes_per_seq_layer, reference_estimate
from vramcore.model.recurrent import MixerTensor, StateSpec, mamba2

BF16 = vramcore.get_dtype("bf16")


def vllm_groups(n_groups: int, tp: int) -> int:
    """vLLM's group count after ``extra_groups_for_head_shards`` (mamba_utils.py)."""
    return n_groups + (0 if n_groups % tp == 0 else tp - n_groups)


def vllm_state_bytes(rec: StateSpec, tp: int, conv_bytes: int, ssm_bytes: int) -> float:
    """One sequence's conv + temporal state in one layer on one rank, from ``mamba2_state_shape``."""
    assert rec.groups is not None
    intermediate = rec.state_heads * rec.state_rows
    conv_dim = intermediate + 2 * vllm_groups(rec.groups, tp) * rec.state_cols
    assert conv_dim % tp == 0 and rec.state_heads % tp == 0  # vLLM's divide() asserts both
    conv = (rec.conv_kernel - 1) * (conv_dim // tp)
    temporal = (rec.state_heads // tp) * rec.state_rows * rec.state_cols
    return conv * conv_bytes + temporal * ssm_bytes


def vllm_replicated_params(rec: StateSpec, hidden: int, tp: int, proj_bias: bool, conv_bias: bool) -> float:
    """Parameters one rank holds beyond an even split: the extra groups' rows of in_proj and conv1d / tp."""
    assert rec.groups is not None
    extra_rows = 2 * (vllm_groups(rec.groups, tp) - rec.groups) * rec.state_cols
    return extra_rows / tp * (hidden + proj_bias + rec.conv_kernel + conv_bias)


def _nemotron_like() -> ModelSpec:
    """A Nemotron-H-8B-like geometry (8 groups): 4 Mamba2 layers, 1 attention layer, MLP blocks."""
    rec = mamba2(hidden=4096, heads=128, head_dim=64, state_size=128, groups=8, conv_kernel=4)
    kinds = ("mamba", "none", "mamba", "full_attention", "mamba", "none", "mamba")
    mlps = ("none", "dense", "none", "none", "none", "dense", "none")
    return ModelSpec(num_layers=7, hidden_size=4096, num_heads=32, num_kv_heads=8, head_dim=128,
                     intermediate_size=21504, vocab_size=131072, mlp_gated=False, norms_per_layer=1,
                     layer_types=kinds, mlp_layer_types=mlps, recurrent=rec, name="nemotron-h-like")


CASES = [  # (model, the TP degrees its attention and Mamba2 heads allow)
    ("Granite-4.0-H-Small", (1, 2, 4, 8)),
    ("Granite-4.0-H-Tiny", (1, 2, 4)),
    ("Falcon-H1-7B-Instruct", (1, 2, 4)),
    (_nemotron_like(), (1, 2, 4, 8)),
]


def _spec(model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else vramcore.get_model(model).spec


@pytest.mark.parametrize(("model", "tps"), CASES)
def test_oracle_state_matches_vllm_shapes(model: str | ModelSpec, tps: tuple[int, ...]) -> None:
    spec = _spec(model)
    rec = spec.recurrent
    assert rec is not None
    ssm_bytes = 4 if rec.ssm_fp32 else 2  # vLLM: mamba_ssm_cache_dtype from the config, else the model dtype
    for tp in tps:
        got = _state_bytes_per_seq_layer(spec, BF16, vramcore.get_engine("vllm"), tp)
        assert got == vllm_state_bytes(rec, tp, 2, ssm_bytes), (spec.name, tp)


@pytest.mark.parametrize(("model", "tps"), CASES)
def test_kernel_state_matches_vllm_shapes(model: str | ModelSpec, tps: tuple[int, ...]) -> None:
    # the kernel's per-sequence state, unpaged: the transformers engine set to vLLM's layout and widths
    spec = _spec(model)
    rec = spec.recurrent
    assert rec is not None
    engine = vramcore.get_engine("transformers").with_options(state_conv_offset=-1, state_conv_bits=16,
                                                                state_ssm_bits=16)
    for tp in tps:
        e = vramcore.estimate(spec, context=4096, batch=3, engine=engine, tp=tp)
        assert e.state_bytes == 3 * spec.n_state_layers * vllm_state_bytes(rec, tp, 2, 2), (spec.name, tp)


def test_one_group_state_grows_past_an_even_split() -> None:
    # the claim of issue #10: dividing the whole state by tp understated it for n_groups = 1
    spec = _spec("Granite-4.0-H-Small")
    rec = spec.recurrent
    assert rec is not None and rec.groups == 1
    even = (rec.conv_dim * 3 * 2 + rec.ssm_elems * 2) / 8  # bf16, 3 past inputs, everything / 8 ranks
    got = _state_bytes_per_seq_layer(spec, BF16, vramcore.get_engine("vllm"), 8)
    assert got - even == 7 * 2 * rec.state_cols * 3 * 2 / 8  # 7 replicated groups' B and C on each of 8 ranks


@pytest.mark.parametrize(("model", "tps"), CASES)
@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_kernel_matches_oracle_at_tp(model: str | ModelSpec, tps: tuple[int, ...], engine: str) -> None:
    spec = _spec(model)
    for tp in tps:
        e = vramcore.estimate(spec, context=8192, batch=2, engine=engine, n_gpus=tp, gpu="H200")
        r = reference_estimate(spec, BF16, None, vramcore.get_engine(engine), tp, 8192, 2, int(e.gpu_bytes), tp=tp,
                               pp=1, gpu_name="H200-SXM-141GB")
        for field in ("weights_bytes", "state_bytes", "kv_cache_bytes", "total_bytes", "max_concurrency"):
            assert getattr(e, field) == pytest.approx(float(r[field]), rel=1e-12, abs=1), (spec.name, tp, field)


@pytest.mark.parametrize(("model", "tps"), CASES)
def test_replicated_group_weights_match_vllm(model: str | ModelSpec, tps: tuple[int, ...]) -> None:
    spec = _spec(model)
    rec = spec.recurrent
    assert rec is not None
    ungrouped = dataclasses.replace(spec, recurrent=dataclasses.replace(rec, groups=None))  # every row split
    proj_bias = any(t.name == "ssm_in.bias" for t in rec.tensors)
    conv_bias = any(t.name == "ssm_conv1d.bias" for t in rec.tensors)
    for tp in tps:
        grouped_w = vramcore.estimate(spec, context=4096, tp=tp).weights_bytes
        even_w = vramcore.estimate(ungrouped, context=4096, tp=tp).weights_bytes
        extra = spec.n_state_layers * vllm_replicated_params(rec, spec.hidden_size, tp, proj_bias, conv_bias) * 2
        assert grouped_w - even_w == pytest.approx(extra, abs=2), (spec.name, tp)
        r = reference_estimate(spec, BF16, None, vramcore.get_engine("transformers"), tp, 4096, 1, None, tp=tp)
        assert grouped_w == pytest.approx(float(r["weights_bytes"]), rel=1e-12)


def _with_mixer(heads: int, groups: int) -> ModelSpec:
    spec = _spec("Granite-4.0-H-Small")
    rec = mamba2(hidden=spec.hidden_size, heads=heads, head_dim=64, state_size=128, groups=groups, conv_kernel=4)
    return dataclasses.replace(spec, recurrent=rec, name=f"mixer-{heads}-{groups}")


@pytest.mark.parametrize(("spec", "tp", "match"), [
    (_with_mixer(heads=12, groups=1), 8, "tp=8 does not divide the 12 Mamba2 heads"),
    (_with_mixer(heads=96, groups=3), 2, "tp=2 and the 3 Mamba2 groups.* must divide one another"),
])
def test_mamba2_layouts_the_engines_refuse_raise_in_both(spec: ModelSpec, tp: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        vramcore.estimate(spec, context=4096, tp=tp)
    with pytest.raises(ValueError, match=match):
        reference_estimate(spec, BF16, None, vramcore.get_engine("transformers"), tp, 4096, 1, None, tp=tp)


def test_more_ranks_than_groups_is_accepted() -> None:
    # TensorRT-LLM's Mamba2TpShard replicates any group over tp / n_groups ranks (mamba2_tp.py)
    spec = _with_mixer(heads=128, groups=2)
    rec = spec.recurrent
    assert rec is not None and rec.tp_groups(8) == 8 and rec.tp_groups(2) == 2
    assert vramcore.estimate(spec, context=4096, tp=8).state_bytes > 0


def test_group_fields_are_checked() -> None:
    with pytest.raises(ValueError, match=r"group_rows must be an int in \[0, 4\], got 5"):
        MixerTensor("ssm_in.weight", (4, 8), "linear", 5)
    with pytest.raises(ValueError, match="group_rows"):
        MixerTensor("ssm_in.weight", (4, 8), "linear", True)  # type: ignore[arg-type]
    rec = mamba2(hidden=64, heads=4, head_dim=8, state_size=4, groups=2, conv_kernel=4)
    with pytest.raises(ValueError, match="B and C take 2 x 9 x 4 = 72 channels, more than conv_dim = 48"):
        dataclasses.replace(rec, groups=9)
    with pytest.raises(ValueError, match=r"StateSpec.groups must be an int"):
        dataclasses.replace(rec, groups=0)
