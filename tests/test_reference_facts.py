"""Known values for real models, checked against published facts.

Source of every number below: Hugging Face transformers 5.24.0 (torch 2.13.0), as
recorded in the steering team's reference file ``shared/reference/transformers_facts.json``:
parameters of each model built on the meta device from its config.json (tied tensors once,
split by parameter name), and the bytes of the ``DynamicCache`` that real bf16 forward passes
return (per token, per layer kind, sliding caps).  They catch bugs that the kernel and the
pure-Python oracle would share.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import pytest

import vramcore


class Fact(NamedTuple):
    total: int
    by_category: dict[str, int]
    bf16_bytes: int
    kv_per_token: int
    layer_kinds: dict[str, tuple[int, int, int | None]]  # kind -> (layers, bytes/token/layer, cap)
    kv_at_context: dict[int, int]  # batch 1, bf16 cache


FACTS: dict[str, Fact] = {
    'deepseek-ai/DeepSeek-R1-Distill-Llama-8B': Fact(
        total=8_030_261_248,
        by_category={'attention': 1_342_177_280, 'embedding': 525_336_576, 'lm_head': 525_336_576, 'mlp_dense': 5_637_144_576, 'norms': 266_240},
        bf16_bytes=16_060_522_496,
        kv_per_token=131_072,
        layer_kinds={'full_attention': (32, 4096, None)},
        kv_at_context={1024: 134_217_728, 4096: 536_870_912, 8192: 1_073_741_824, 32768: 4_294_967_296, 131072: 17_179_869_184},
    ),
    'meta-llama/Llama-3.2-1B': Fact(
        total=1_235_814_400,
        by_category={'attention': 167_772_160, 'embedding': 262_668_288, 'mlp_dense': 805_306_368, 'norms': 67_584},
        bf16_bytes=2_471_628_800,
        kv_per_token=32_768,
        layer_kinds={'full_attention': (16, 2048, None)},
        kv_at_context={1024: 33_554_432, 4096: 134_217_728, 8192: 268_435_456, 32768: 1_073_741_824, 131072: 4_294_967_296},
    ),
    'Qwen/Qwen2.5-7B': Fact(
        total=7_615_616_512,
        by_category={'attention': 822_212_608, 'embedding': 544_997_376, 'lm_head': 544_997_376, 'mlp_dense': 5_703_204_864, 'norms': 204_288},
        bf16_bytes=15_231_233_024,
        kv_per_token=57_344,
        layer_kinds={'full_attention': (28, 2048, None)},
        kv_at_context={1024: 58_720_256, 4096: 234_881_024, 8192: 469_762_048, 32768: 1_879_048_192, 131072: 7_516_192_768},
    ),
    'Qwen/Qwen3-8B': Fact(
        total=8_190_735_360,
        by_category={'attention': 1_509_949_440, 'embedding': 622_329_856, 'lm_head': 622_329_856, 'mlp_dense': 5_435_817_984, 'norms': 308_224},
        bf16_bytes=16_381_470_720,
        kv_per_token=147_456,
        layer_kinds={'full_attention': (36, 4096, None)},
        kv_at_context={1024: 150_994_944, 4096: 603_979_776, 8192: 1_207_959_552, 32768: 4_831_838_208, 131072: 19_327_352_832},
    ),
    'mistralai/Mixtral-8x7B-v0.1': Fact(
        total=46_702_792_704,
        by_category={'attention': 1_342_177_280, 'embedding': 131_072_000, 'lm_head': 131_072_000, 'mlp_routed_experts': 45_097_156_608, 'norms': 266_240, 'router': 1_048_576},
        bf16_bytes=93_405_585_408,
        kv_per_token=131_072,
        layer_kinds={'full_attention': (32, 4096, None)},
        kv_at_context={1024: 134_217_728, 4096: 536_870_912, 8192: 1_073_741_824, 32768: 4_294_967_296, 131072: 17_179_869_184},
    ),
    'google/gemma-2-9b': Fact(
        total=9_241_705_984,
        by_category={'attention': 1_849_688_064, 'embedding': 917_504_000, 'mlp_dense': 6_473_908_224, 'norms': 605_696},
        bf16_bytes=18_483_411_968,
        kv_per_token=344_064,
        layer_kinds={'sliding_attention': (21, 8192, 4095), 'full_attention': (21, 8192, None)},
        kv_at_context={1024: 352_321_536, 4096: 1_409_114_112, 8192: 2_113_757_184, 32768: 6_341_615_616, 131072: 23_253_049_344},
    ),
    'deepseek-ai/DeepSeek-V3': Fact(
        total=671_026_404_352,
        by_category={'attention': 11_413_422_080, 'embedding': 926_679_040, 'lm_head': 926_679_040, 'mlp_dense': 1_189_085_184, 'mlp_routed_experts': 653_908_770_816, 'mlp_shared_experts': 2_554_331_136, 'norms': 1_006_592, 'router': 106_430_464},
        bf16_bytes=1_342_052_808_704,
        kv_per_token=70_272,
        layer_kinds={'full_attention': (61, 1152, None)},
        kv_at_context={1024: 71_958_528, 4096: 287_834_112, 8192: 575_668_224, 32768: 2_302_672_896, 131072: 9_210_691_584},
    ),
}

REFERENCE_FILE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "transformers_facts.json"


@pytest.fixture(params=sorted(FACTS), ids=lambda r: r.split("/")[-1])
def repo(request: pytest.FixtureRequest) -> str:
    return request.param


def test_param_count_matches_transformers(repo: str) -> None:
    spec = vramcore.get_model(repo).spec
    fact = FACTS[repo]
    assert spec.param_count == fact.total
    breakdown = {k: v for k, v in spec.param_breakdown().items() if v}
    assert breakdown == fact.by_category


def test_bf16_weights_are_two_bytes_per_param(repo: str) -> None:
    spec = vramcore.get_model(repo).spec
    # transformers keeps DeepSeek-V3's router in fp32, which vramcore reproduces; the
    # reference's all-bf16 figure is params x 2, the as-built one adds 2 bytes per router param.
    est = vramcore.estimate(repo, dtype="bf16", context=1)
    extra = 2 * spec.param_breakdown()["router"] if spec.router_fp32 else 0
    assert est.weights_bytes == FACTS[repo].bf16_bytes + extra


def test_deepseek_v3_as_built_bytes() -> None:
    # "as-built bytes = 1,342,265,669,632" (router weights kept in fp32), same source
    est = vramcore.estimate("deepseek-ai/DeepSeek-V3", dtype="bf16", context=1)
    assert est.weights_bytes == 1_342_265_669_632


def test_kv_layer_kinds(repo: str) -> None:
    spec = vramcore.get_model(repo).spec
    fact = FACTS[repo]
    kinds = {k: spec.layer_types.count(k) for k in set(spec.layer_types)}
    assert kinds == {k: v[0] for k, v in fact.layer_kinds.items()}
    for _kind, (_, per_layer, cap) in fact.layer_kinds.items():
        assert spec.kv_cache_width * 2 == per_layer  # bf16
        if cap is not None:
            assert spec.sliding_window - 1 == cap
    # uncapped bytes per token: one token in every layer
    assert vramcore.estimate(repo, context=1).kv_cache_bytes == fact.kv_per_token


def test_kv_cache_equals_dynamic_cache(repo: str) -> None:
    fact = FACTS[repo]
    contexts = sorted(fact.kv_at_context)
    s = vramcore.sweep(repo, "bf16", contexts, 1, "H100")
    got = dict(zip(contexts, s.kv_cache_bytes[0, 0, :, 0, 0].tolist(), strict=True))
    assert got == fact.kv_at_context
    for ctx in contexts:  # scalar path agrees
        assert vramcore.estimate(repo, context=ctx).kv_cache_bytes == fact.kv_at_context[ctx]


def test_mla_decompressed_cache_of_transformers_4() -> None:
    # transformers 4.57 cached decompressed K/V: 81,920 B/token/layer, 4,997,120 B/token (same source)
    engine = vramcore.get_engine("transformers").with_options(mla_compressed=False)
    est = vramcore.estimate("deepseek-ai/DeepSeek-V3", context=1, engine=engine)
    assert est.kv_cache_bytes == 4_997_120


def test_kv_dtype_is_separate_from_weights() -> None:
    repo = "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
    base = vramcore.estimate(repo, context=8192)
    fp8 = vramcore.estimate(repo, context=8192, kv_dtype="fp8")
    int4w = vramcore.estimate(repo, context=8192, dtype="int4")
    assert fp8.kv_cache_bytes * 2 == base.kv_cache_bytes
    assert fp8.weights_bytes == base.weights_bytes
    assert int4w.kv_cache_bytes == base.kv_cache_bytes  # KV stays in the bf16 compute dtype


@pytest.mark.skipif(not REFERENCE_FILE.is_file(), reason="steering reference file not present")
def test_cards_hold_the_reference_configs() -> None:
    data = json.loads(REFERENCE_FILE.read_text())["models"]
    for entry in data.values():
        card = vramcore.get_model(entry["hf_repo"])
        ref = vramcore.ModelSpec.from_hf_config(entry["config"], name=card.name)
        assert card.spec == ref
