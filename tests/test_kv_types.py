"""KV-cache types as each engine names them, K and V apart for llama.cpp, against logged sizes.

Logged: llama.cpp PR ggml-org/llama.cpp#21551 ("common : only warn when using
unsupported kv cache types"), llama-perplexity runs with the KV cache size of each
-ctk/-ctv pair: Bonsai 8B (Qwen3-8B geometry: 36 layers, 8 KV heads of 128) f16
360.00 MiB, q8_0 191.25 MiB, q4_0 101.25 MiB, iq4_nl 101.25 MiB; Magidonia 24B v4.3
(Mistral-Small-3.2-24B geometry: 40 layers, 8 KV heads of 128) f16 1040.00 MiB,
q8_0 552.50 MiB, q4_0 292.50 MiB.  The f16 sizes give the cells: 360 MiB / (36 x
2 x 8 x 128 x 2 B) = 2560 cells and 1040 MiB / (40 x 4096 B) = 6656 cells.
"""

from __future__ import annotations

import pytest

import vramcore
from vramcore.cli import main

MiB = 2**20
# mistralai/Mistral-Small-3.2-24B-Instruct-2506 text config (the Magidonia base)
MISTRAL_SMALL_24B = vramcore.ModelSpec(name="Mistral-Small-24B", num_layers=40, hidden_size=5120, num_heads=32,
                                       num_kv_heads=8, head_dim=128, intermediate_size=32768, vocab_size=131072,
                                       max_context=131072)


def llamacpp_kv(model: object, cells: int, k: str, v: str | None = None) -> float:
    engine = vramcore.get_engine("llamacpp", cache_type_k=k, cache_type_v=v or k)
    return vramcore.estimate(model, dtype="Q4_K_M", context=cells, engine=engine).kv_cache_bytes


@pytest.mark.parametrize(("k", "mib"), [("f16", 360.0), ("q8_0", 191.25), ("q4_0", 101.25), ("iq4_nl", 101.25)])
def test_llamacpp_cache_types_match_the_logged_bonsai_8b(k: str, mib: float) -> None:
    assert llamacpp_kv("Qwen3-8B", 2560, k) == mib * MiB


@pytest.mark.parametrize(("k", "mib"), [("f16", 1040.0), ("q8_0", 552.5), ("q4_0", 292.5)])
def test_llamacpp_cache_types_match_the_logged_mistral_small_24b(k: str, mib: float) -> None:
    assert llamacpp_kv(MISTRAL_SMALL_24B, 6656, k) == mib * MiB


def test_llamacpp_k_and_v_apart() -> None:
    # half of the cache is K, half V: each at its own type (q8_0: 34 B per 32 values, q4_0: 18 B)
    mixed = llamacpp_kv("Qwen3-8B", 2560, "q8_0", "q4_0")
    assert mixed == (191.25 + 101.25) / 2 * MiB
    assert llamacpp_kv("Qwen3-8B", 2560, "q8_0", "f16") == (191.25 + 360.0) / 2 * MiB
    # kv_cache_dtype sets both; cache_type_v alone leaves K at the compute dtype
    both = vramcore.get_engine("llamacpp", kv_cache_dtype="q8_0")
    assert vramcore.estimate("Qwen3-8B", dtype="Q4_K_M", context=2560, engine=both).kv_cache_bytes == 191.25 * MiB
    v_only = vramcore.get_engine("llamacpp", cache_type_v="q4_0")
    assert vramcore.estimate("Qwen3-8B", dtype="Q4_K_M", context=2560,
                             engine=v_only).kv_cache_bytes == (360.0 + 101.25) / 2 * MiB


def test_llamacpp_quantized_v_needs_flash_attention() -> None:
    engine = vramcore.get_engine("llamacpp", cache_type_v="q4_0", flash_attn=False)
    with pytest.raises(ValueError, match="quantizes the V cache only with flash attention"):
        vramcore.estimate("Qwen3-8B", context=4096, engine=engine)
    k_only = vramcore.get_engine("llamacpp", cache_type_k="q8_0", cache_type_v="f16", flash_attn=False)
    assert vramcore.estimate("Qwen3-8B", dtype="Q4_K_M", context=2560,
                             engine=k_only).kv_cache_bytes == (191.25 + 360.0) / 2 * MiB


@pytest.mark.parametrize(("kind", "name", "bits"), [("vllm", "fp8_e5m2", 8), ("vllm", "fp8", 8),
                                                    ("sglang", "fp8_e4m3", 8), ("trtllm", "nvfp4", 4.5),
                                                    ("trtllm", "int8", 8), ("vllm", "bfloat16", 16)])
def test_serving_engines_kv_types_by_their_names(kind: str, name: str, bits: float) -> None:
    plain = vramcore.get_engine(kind)
    typed = vramcore.get_engine(kind, kv_cache_dtype=name)
    a = vramcore.estimate("Llama-3.1-8B", context=8192, gpu="H100", engine=plain)
    b = vramcore.estimate("Llama-3.1-8B", context=8192, gpu="H100", engine=typed)
    # the same budget holds 16 / bits times the tokens (to the block)
    assert b.kv_capacity_tokens == pytest.approx(a.kv_capacity_tokens * 16 / bits, rel=2e-3)


@pytest.mark.parametrize(("knobs", "match"), [
    ({"kind": "vllm", "kv_cache_dtype": "q8_0"}, "not a KV-cache type of vllm; it offers bfloat16, float16, fp8"),
    ({"kind": "trtllm", "kv_cache_dtype": "q8_0"}, "not a KV-cache type of trtllm; it offers fp8, int8, nvfp4"),
    ({"kind": "llamacpp", "cache_type_k": "q3_k"}, "cache_type_k='q3_k' is not a KV-cache type of llamacpp"),
])
def test_unknown_kv_types_list_what_the_engine_offers(knobs: dict[str, str], match: str) -> None:
    kind = knobs.pop("kind")
    with pytest.raises(ValueError, match=match):
        vramcore.estimate("Llama-3.1-8B", context=4096, gpu="H100", engine=vramcore.get_engine(kind, **knobs))


def test_cache_type_knobs_belong_to_llamacpp() -> None:
    with pytest.raises(ValueError, match="cache_type_k / cache_type_v are llama.cpp's knobs"):
        vramcore.get_engine("vllm", cache_type_k="q8_0")


def test_cli_cache_type_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "Qwen3-8B", "--dtype", "Q4_K_M", "--engine", "llamacpp", "--context", "2560",
                 "--cache-type-k", "q8_0", "--cache-type-v", "q4_0", "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["kv_cache_bytes"] == (191.25 + 101.25) / 2 * MiB
    assert main(["estimate", "Qwen3-8B", "--engine", "llamacpp", "--context", "4k", "-ctv", "q4_0",
                 "--no-flash-attn"]) == 2
    assert "flash attention" in capsys.readouterr().err
