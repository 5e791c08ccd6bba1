"""Every built-in card against what Hugging Face transformers really builds.

``tests/data/transformers_measured.json`` is the output of ``tools/measure_transformers.py``
(transformers 5.24.0, torch 2.13.0, CPU; entries merged later with ``--only`` record their own
``measured_with`` versions): parameters of each card's config built on the meta
device (tied tensors once) and the bytes of the ``DynamicCache`` that real bf16 forward passes
of a small copy return, per token and per layer kind, with the sliding-window cap.  The script
files norms inside ``self_attn`` (q/k norms, MLA latent norms) under ``attention`` and reports
them as ``attention_internal_norms``; vramcore counts them as ``norms``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

import vramcore

DATA = json.loads((Path(__file__).parent / "data" / "transformers_measured.json").read_text())
MODELS: dict[str, Any] = DATA["models"]
CARD_NAMES = [name for name in MODELS if name in set(vramcore.list_models())]
# configs of families without a card, measured by the same script (tests/data/hf_configs/*.json)
EXTRA = {d["name"]: d for d in (json.loads(p.read_text())
                                for p in sorted((Path(__file__).parent / "data" / "hf_configs").glob("*.json")))}


def test_every_extra_config_was_measured() -> None:
    assert set(EXTRA) <= set(MODELS)


def test_every_card_was_measured() -> None:
    assert set(vramcore.list_models()) <= set(MODELS)


@pytest.fixture(params=CARD_NAMES + sorted(EXTRA))
def measured(request: pytest.FixtureRequest) -> tuple[vramcore.ModelSpec, dict[str, Any]]:
    name = request.param
    if name in EXTRA:
        with warnings.catch_warnings():  # configs no family module reads warn by design (tests/test_families.py)
            warnings.simplefilter("ignore", vramcore.UnknownModelWarning)
            spec = vramcore.ModelSpec.from_hf_config(EXTRA[name]["config"], name=name)
        return spec, MODELS[name]
    return vramcore.get_model(name).spec, MODELS[name]


def test_params_match_transformers(measured: tuple[vramcore.ModelSpec, dict[str, Any]]) -> None:
    spec, m = measured
    assert spec.param_count == m["params"]["total"]
    expected = dict(m["params"]["by_category"])
    moved = m["params"].get("attention_internal_norms", 0)
    expected["attention"] -= moved
    expected["norms"] = expected.get("norms", 0) + moved
    got = {k: v for k, v in spec.param_breakdown().items() if v}
    assert got == {k: v for k, v in expected.items() if v}


def test_router_dtype_as_built(measured: tuple[vramcore.ModelSpec, dict[str, Any]]) -> None:
    spec, m = measured
    fp32 = m["params"].get("dtypes_as_built", {}).get("float32", 0)
    assert spec.router_fp32 == (fp32 > 0)
    if fp32:
        assert fp32 == spec.param_breakdown()["router"]


def test_kv_cache_layout_matches_dynamic_cache(measured: tuple[vramcore.ModelSpec, dict[str, Any]]) -> None:
    spec, m = measured
    kinds = {**m["kv_cache"]["layer_kinds"], **m["kv_cache"].get("state_kinds", {}),
             **m["kv_cache"].get("cross_kinds", {})}  # mllama's cross-attention layers: measured per image
    # blocks with no token mixer (Nemotron-H's MLP blocks) keep no cache, nor do Gemma-3n's KV-sharing layers
    # (DynamicCache's "dummy" layers); a hybrid layer (Falcon-H1) is measured among both, with the same count
    caching = [k for i, k in enumerate(spec.layer_types) if spec.owns_kv(i)]
    assert {k: caching.count(k) for k in set(caching) - {"none"}} == {k: v["layers"] for k, v in kinds.items()}
    kinds = m["kv_cache"]["layer_kinds"]
    for kind in kinds.values():
        assert spec.kv_cache_width * 2 == kind["bytes_per_token_per_layer"]  # bf16 cache
        if kind["window_cap_tokens"] is not None:
            assert kind["window_cap_rule"] == "window-1"
            assert kind["window_cap_tokens"] == spec.sliding_window - 1
    assert vramcore.estimate(spec, context=1).kv_cache_bytes == m["kv_cache"]["bytes_per_token_uncapped"]


def test_recurrent_state_matches_dynamic_cache(measured: tuple[vramcore.ModelSpec, dict[str, Any]]) -> None:
    # hybrid models: LinearAttentionLayer's conv and recurrent states of one sequence (batch 1), per layer kind;
    # models without recurrent layers keep none
    spec, m = measured
    states = m["kv_cache"].get("state_kinds", {})
    per_seq = m["kv_cache"].get("state_bytes_per_sequence", 0)
    assert (spec.recurrent is not None) == bool(states)
    for kind, entry in states.items():
        # a hybrid layer (Falcon-H1: attention and Mamba2 side by side) keeps its state beside its keys and values
        assert spec.recurrent is not None and kind in (spec.recurrent.layer_type, "hybrid")
        (conv,), (ssm,) = entry["tensors"]["conv_states"], entry["tensors"]["recurrent_states"]
        assert conv["shape"] == [1, spec.recurrent.conv_dim, spec.recurrent.conv_kernel]  # the whole kernel
        assert conv["dtype"] == "bfloat16" and ssm["dtype"] == "float32"
        shape = [spec.recurrent.state_heads, spec.recurrent.state_rows, spec.recurrent.state_cols]
        assert [d for d in ssm["shape"][1:] if d != 1] == [d for d in shape if d != 1]  # Mamba1: inner x state
    for batch in (1, 3):
        assert vramcore.estimate(spec, context=64, batch=batch).state_bytes == batch * per_seq


def test_kv_cache_totals(measured: tuple[vramcore.ModelSpec, dict[str, Any]]) -> None:
    spec, m = measured
    totals = {int(k): v for k, v in m["kv_cache"]["kv_bytes_at_context_batch1"].items()}
    contexts = sorted(totals)
    s = vramcore.sweep(spec, "bf16", contexts, 1, "H100")
    assert s.kv_cache_bytes[0, 0, :, 0, 0].tolist() == [totals[c] for c in contexts]
