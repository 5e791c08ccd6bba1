"""The transformers prefill's attention: eager scores and masks, sdpa's sliding mask, and which one runs.

Measured facts: ``tests/data/prefill_peak_measured.json``, written by ``tools/measure_prefill_peak.py``
(transformers 5.24.0, torch 2.13.0, CPU, bf16; a two-layer copy of each card with a 512-wide MLP and a
256-token vocabulary).  Over a ladder of equally spaced prompt lengths the peak is a quadratic whose
second difference is the bytes per (query x key) pair; the estimate's pair term must be that figure, and
the whole estimate must stay above what was measured.
"""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vramcore
from vramcore import ModelSpec, get_dtype, get_engine
from vramcore.engines.base import resolve_attention
from vramcore.grid.reference import reference_estimate

DATA = json.loads((Path(__file__).parent / "data" / "prefill_peak_measured.json").read_text())
CARDS = Path(vramcore.__file__).parent / "model" / "data"


def _spec(card: str, changes: dict[str, Any]) -> ModelSpec:
    """The measured geometry: the card's config with the tool's changes (tools/measure_prefill_peak.py)."""
    cfg = copy.deepcopy(json.loads((CARDS / f"{card}.json").read_text())["config"])
    cfg.pop("quantization_config", None)
    cfg.update({"num_hidden_layers": DATA["layers"], "vocab_size": DATA["vocab_size"],
                "intermediate_size": DATA["intermediate_size"]})
    cfg.update(changes)
    return ModelSpec.from_hf_config(cfg, name=card)


def _groups() -> dict[tuple[str, str, str | None, str], dict[int, dict[int, dict[str, Any]]]]:
    """Runs by (card, changes, implementation asked, dtype), then batch, then context."""
    out: dict[tuple[str, str, str | None, str], dict[int, dict[int, dict[str, Any]]]] = {}
    for run in DATA["runs"]:
        key = (run["card"], json.dumps(run["changes"], sort_keys=True), run["attn_implementation"], run["dtype"])
        out.setdefault(key, {}).setdefault(run["batch"], {})[run["context"]] = run
    return out


GROUPS = _groups()
MEASURED = {k: v for k, v in GROUPS.items() if "error" not in next(iter(v[1].values()))}
DTYPES = {"bfloat16": "bf16", "float32": "fp32"}


def _engine(impl: str | None) -> vramcore.EngineSpec:
    return get_engine("transformers", attention=impl or "auto")


def _activations(spec: ModelSpec, impl: str | None, dtype: str, context: int, batch: int) -> int:
    e = vramcore.estimate(spec, dtype=DTYPES[dtype], context=context, batch=batch, engine=_engine(impl))
    return int(e.activation_bytes)


def _second_difference(peaks: dict[int, int], ladder: list[int]) -> Fraction:
    """Bytes per pair: the quadratic coefficient through three equally spaced prompt lengths."""
    s1, s2, s3 = ladder
    assert s2 - s1 == s3 - s2
    return Fraction(peaks[s3] - 2 * peaks[s2] + peaks[s1], 2 * (s2 - s1) ** 2)


def _ladders(by_context: dict[int, dict[str, Any]]) -> list[list[int]]:
    """Every three equally spaced prompt lengths of a run's ladder that share a peak operator."""
    contexts = sorted(by_context)
    out = []
    for i, a in enumerate(contexts):
        for b in contexts[i + 1:]:
            c = 2 * b - a
            if c in by_context and len({by_context[x]["peak_op"] for x in (a, b, c)}) == 1:
                out.append([a, b, c])
    return out


@pytest.mark.parametrize("key", sorted(MEASURED, key=str), ids=lambda k: f"{k[0]}-{k[2]}-{k[3]}")
def test_pair_bytes_match_the_measured_quadratic(key: tuple[str, str, str | None, str]) -> None:
    card, changes, impl, dtype = key
    spec = _spec(card, json.loads(changes))
    runs = MEASURED[key][1]
    ladders = _ladders(runs)
    assert ladders, f"{key}: no ladder of three equally spaced prompts"
    for ladder in ladders:
        measured = _second_difference({c: runs[c]["peak_bytes"] for c in ladder}, ladder)
        estimated = _second_difference({c: _activations(spec, impl, dtype, c, 1) for c in ladder}, ladder)
        window = spec.sliding_window or 0
        if resolve_attention(spec, _engine(impl)) == "sdpa" and ladder[0] >= window > 0:
            # the boolean sliding mask (1 byte a pair, measured) and, on CUDA, its additive copy in the
            # query's dtype (PyTorch's convert_boolean_attn_mask, counted from source: not on the CPU)
            assert estimated - measured == 2, (ladder, measured, estimated)
        else:
            assert estimated == measured, (ladder, measured, estimated)


#: Gemma-3-1B's narrowed copy peaks in an RMSNorm whose fp32 (1 + weight), 4.6 kB once per forward, is not
#: counted (its breakdown: test_per_token_rule_is_every_breakdown_to_the_byte), above what its 256-entry
#: logits row leaves; every other group is covered whole.
COVERED = sorted((k for k in MEASURED if k[0] != "gemma-3-1b"), key=str)
EAGER = [k for k in COVERED if all(r["peak_op"] in ("to", "sub") for b in MEASURED[k].values() for r in b.values())]


def test_the_eager_groups_are_the_eager_runs() -> None:
    assert {k[0] for k in EAGER} == {"gemma-2-2b", "gpt-oss-20b", "llama-3.2-1b"}
    for card, changes, impl, _ in EAGER:
        assert resolve_attention(_spec(card, json.loads(changes)), _engine(impl)) == "eager"


def _breakdown(card: str) -> dict[str, Any]:
    return next(b for b in DATA["breakdowns"] if b["card"] == card)


def test_breakdowns_sum_to_their_peaks() -> None:
    for b in DATA["breakdowns"]:
        assert sum(t["bytes"] for t in b["tensors"]) == b["peak_bytes"]


def _split(b: dict[str, Any]) -> tuple[int, int, int]:
    """A breakdown's bytes: per token (one axis of the prompt's length), per pair (two), and constant."""
    s, parts = b["context"], [0, 0, 0]
    for t in b["tensors"]:
        axes = t["shape"].count(s)
        parts[{1: 0, 2: 1, 0: 2}[axes]] += t["bytes"]
    return parts[0], parts[1], parts[2]


@pytest.mark.parametrize("b", DATA["breakdowns"], ids=lambda b: f"{b['card']}-{b['dtype']}-{b['peak_op']}")
def test_per_token_rule_is_every_breakdown_to_the_byte(b: dict[str, Any]) -> None:
    # the per-token tensors live at each peak -- Llama's rotary step; with fewer heads an RMSNorm (bf16) or
    # the down projection (fp32); Gemma-2's and Gemma-3's RMSNorm in a four-norm layer -- are exactly the
    # estimate's per-token rate (the embedding output, rotary tables, position ids, layer input and normed
    # copy, and the largest phase); the estimate adds the logits row, and eager's pairs apart
    spec = _spec(b["card"], b["changes"])
    s, a = b["context"], {"bfloat16": 2, "float32": 4}[b["dtype"]]
    per_token, pairs, constant = _split(b)
    flash = get_engine("transformers", attention="flash")        # the linear part alone
    est = vramcore.estimate(spec, dtype=DTYPES[b["dtype"]], context=s, engine=flash).activation_bytes
    assert est - spec.vocab_size * (a + 4) == per_token, (est, per_token)
    # what is left is eager's probabilities and masks (Gemma-2), the pairs the estimate counts at their
    # attention phase, and Gemma's fp32 (1 + weight), hidden x 4 bytes once (not counted)
    assert pairs <= s * s * _second_difference(
        {c: _activations(spec, None, b["dtype"], c, 1) for c in (s, 2 * s, 3 * s)}, [s, 2 * s, 3 * s])
    assert constant in (0, 4 * spec.hidden_size) and (constant > 0) == spec.norm_plus_one


@pytest.mark.parametrize("key", COVERED, ids=lambda k: f"{k[0]}-{k[2]}-{k[3]}")
def test_estimate_covers_every_measured_prefill(key: tuple[str, str, str | None, str]) -> None:
    # the per-token part (the held embedding output and rotary tables, the layer input and its normed copy,
    # q with its rotary temporaries, k, v) bounds what the attention phase holds beside its pairs
    card, changes, impl, dtype = key
    spec = _spec(card, json.loads(changes))
    for batch, runs in MEASURED[key].items():
        for context, run in runs.items():
            estimated = _activations(spec, impl, dtype, context, batch)
            assert estimated >= run["peak_bytes"], (batch, context, estimated, run["peak_bytes"])


@pytest.mark.parametrize("key", EAGER, ids=lambda k: f"{k[0]}-{k[2]}-{k[3]}")
def test_every_sequence_holds_its_own_scores_and_masks(key: tuple[str, str, str | None, str]) -> None:
    # generate() passes a (batch, s) attention mask: the (batch, 1, s, s) masks and the scores grow with the
    # batch, so a second sequence costs at least the pairs of the first (and no more than the whole first)
    card, changes, impl, dtype = key
    by_batch = MEASURED[key]
    assert 2 in by_batch, "measured at one batch only"
    spec = _spec(card, json.loads(changes))
    one = by_batch[1]
    ladder = _ladders(one)[-1]
    per_pair = _second_difference({c: one[c]["peak_bytes"] for c in ladder}, ladder)
    for context, run in by_batch[2].items():
        second = run["peak_bytes"] - one[context]["peak_bytes"]
        assert per_pair * context * context <= second <= one[context]["peak_bytes"]
        assert _activations(spec, impl, dtype, context, 2) >= run["peak_bytes"]


def test_sdpa_sliding_mask_appears_at_the_window() -> None:
    # Gemma-3-1B (window 512) under sdpa: no mask below 512 tokens, a boolean one of 1 byte a pair from 512 on
    # (transformers' masking_utils skips a sliding mask while the keys are fewer than the window)
    key = next(k for k in MEASURED if k[0] == "gemma-3-1b")
    runs = MEASURED[key][1]
    spec = _spec("gemma-3-1b", json.loads(key[1]))
    assert spec.sliding_window == 512 and resolve_attention(spec, _engine(key[2])) == "sdpa"
    # below the window the peak (in an RMSNorm) is a line in the prompt: through 256 and 511 tokens
    lo, hi = 256, 511
    rate = Fraction(runs[hi]["peak_bytes"] - runs[lo]["peak_bytes"], hi - lo)
    assert rate.denominator == 1
    same_op = [c for c in runs if c >= 512 and runs[c]["peak_op"] == runs[lo]["peak_op"]]
    assert 512 in same_op and len(same_op) >= 2
    for c in same_op:            # from the window on: the same line plus the mask's c^2 bytes
        assert runs[c]["peak_bytes"] == runs[lo]["peak_bytes"] + rate * (c - lo) + c * c, c
    # the estimate steps by (1 + a) bytes a pair at the window (the mask and its CUDA conversion), and
    # not at all below it
    def step(impl: str | None, at: int) -> int:
        return _activations(spec, impl, "bfloat16", at, 1) - _activations(spec, impl, "bfloat16", at - 1, 1)
    assert step(None, 512) - step("flash", 512) == 3 * 512 * 512
    assert step(None, 511) == step("flash", 511)


@pytest.mark.parametrize("key", sorted(GROUPS, key=str), ids=lambda k: f"{k[0]}-{k[2]}-{k[3]}")
def test_auto_resolves_as_transformers_resolved(key: tuple[str, str, str | None, str]) -> None:
    card, changes, impl, _ = key
    spec = _spec(card, json.loads(changes))
    run = next(iter(GROUPS[key][1].values()))
    if "error" in run:
        # transformers refuses sdpa on a class without it; so do we, naming the model and the way out
        assert impl == "sdpa" and "does not support an attention implementation" in run["error"]
        with pytest.raises(ValueError, match=r"attention 'sdpa' is refused for model .*use 'auto' or 'eager'"):
            resolve_attention(spec, _engine(impl))
        with pytest.raises(ValueError, match="sdpa_supported"):
            vramcore.estimate(spec, context=1024, engine=_engine(impl))
    else:
        assert resolve_attention(spec, _engine(impl)) == run["attn_implementation_used"]


def test_cards_that_have_no_sdpa() -> None:
    # transformers 5.24: Gemma2PreTrainedModel and GptOssPreTrainedModel set _supports_sdpa = False
    no_sdpa = {c.spec.name for c in map(vramcore.get_model, vramcore.list_models()) if not c.spec.sdpa_supported}
    assert no_sdpa == {"Gemma-2-2B", "Gemma-2-9B", "Gemma-2-27B", "gpt-oss-20b", "gpt-oss-120b"}


def test_flash_is_refused_where_transformers_refuses_it() -> None:
    # transformers 5.24: _supports_flash_attn = False on Llama4ForCausalLM, MllamaForCausalLM,
    # DeepseekV32ForCausalLM and Gemma3ForConditionalGeneration (Gemma3ForCausalLM has it); asked for
    # flash_attention_2 they raise "does not support Flash Attention 2", checked with a tiny config
    cards = {c.spec.name: c.spec for c in map(vramcore.get_model, vramcore.list_models())}
    no_flash = {name for name, spec in cards.items() if not spec.flash_supported}
    expected = {name for name, spec in cards.items()
                if spec.model_type in ("llama4_text", "mllama_text_model", "deepseek_v32")
                or (spec.model_type == "gemma3_text" and spec.vision is not None)}
    assert no_flash == expected and "Gemma-3-27B" in no_flash and "Gemma-3-1B" not in no_flash
    flash = get_engine("transformers", attention="flash")
    with pytest.raises(ValueError, match=r"attention 'flash' is refused for model 'Gemma-3-27B'"):
        vramcore.estimate("Gemma-3-27B", context=4096, engine=flash)
    vramcore.estimate("Gemma-3-1B", context=4096, engine=flash)
    assert vramcore.estimate("Gemma-3-27B", context=4096).activation_bytes > 0      # auto: sdpa


def test_eager_costs_follow_the_dtype_and_the_heads() -> None:
    llama = vramcore.get_model("Llama-3.2-1B").spec     # 32 heads, full attention only: one mask
    def pairs(spec: ModelSpec, dtype: str, tp: int = 1) -> int:
        eng = get_engine("transformers", attention="eager")
        at = [vramcore.estimate(spec, dtype=dtype, context=c, engine=eng, tp=tp).activation_bytes
              for c in (1000, 2000, 3000)]
        return int((at[2] - 2 * at[1] + at[0]) // (2 * 1000 ** 2))
    assert pairs(llama, "bf16") == 32 * (2 + 4 + 2) + 2
    assert pairs(llama, "fp32") == 32 * (4 + 4) + 4
    assert pairs(llama, "bf16", tp=2) == 16 * (2 + 4 + 2) + 2       # heads split by the tp_plan, the mask not
    oss = vramcore.get_model("gpt-oss-20b").spec         # 64 heads, sinks, full and sliding layers: two masks
    assert pairs(oss, "bf16") == 64 * 3 * 2 + 2 * 2


def test_max_context_under_eager_is_the_largest_that_fits() -> None:
    # the inverse question solves the quadratic, then the exact step: n fits, n + 1 does not
    spec = vramcore.get_model("Gemma-2-2B").spec
    for gpu, batch in (("L4", 4), ("L4", 7), ("H100-SXM-80GB", 29)):
        e = _engine(None)
        n = int(vramcore.max_context(spec, "bf16", [batch], [gpu], engine=e).values[0, 0, 0, 0])
        assert 0 < n < spec.max_context             # the memory, not the trained context, decides
        assert vramcore.estimate(spec, context=n, batch=batch, gpu=gpu, engine=e).fits
        assert not vramcore.estimate(spec, context=n + 1, batch=batch, gpu=gpu, engine=e).fits
        flash = int(vramcore.max_context(spec, "bf16", [batch], [gpu], engine=_engine("flash")).values[0, 0, 0, 0])
        assert n < flash


@settings(max_examples=20, deadline=None)
@given(model=st.sampled_from(["Gemma-2-2B", "gpt-oss-20b", "Gemma-3-1B", "Mistral-7B-v0.1", "Llama-3.2-1B"]),
       impl=st.sampled_from(["auto", "eager", "flash"]), context=st.integers(1, 2**15), batch=st.integers(1, 4),
       dtype=st.sampled_from(["bf16", "fp32"]))
def test_kernel_matches_the_oracle_for_each_attention(model: str, impl: str, context: int, batch: int,
                                                      dtype: str) -> None:
    spec, engine = vramcore.get_model(model).spec, get_engine("transformers", attention=impl)
    e = vramcore.estimate(spec, dtype=dtype, context=context, batch=batch, engine=engine)
    ref = reference_estimate(spec, get_dtype(dtype), None, engine, 1, context, batch, None)
    assert e.activation_bytes == ref["activation_bytes"]
    assert e.total_bytes == ref["total_bytes"]


def test_estimates_name_the_attention_they_assume() -> None:
    gemma = vramcore.estimate("Gemma-2-2B", context=8192)
    assert gemma.attention == "eager" and "engine transformers, eager attention" in str(gemma)
    llama = vramcore.estimate("Llama-3.2-1B", context=8192)
    assert llama.attention == "sdpa" and "attention" not in str(llama).splitlines()[0]
    assert vramcore.estimate("Gemma-2-2B", context=8192, gpu="H100", engine="vllm").attention is None
    assert vramcore.estimate("Gemma-2-2B", context=1024, engine="lora").attention == "eager"
    # the sweep's cells say the same
    cell = vramcore.sweep(["Gemma-2-2B"], ["bf16"], [8192], [1], ["H100"]).cell(0, 0, 0, 0, 0)
    assert cell.attention == "eager"
    assert cell == vramcore.estimate("Gemma-2-2B", dtype="bf16", context=8192, gpu="H100")


def test_cli_refuses_sdpa_for_gemma2_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    from vramcore.cli import main

    assert main(["estimate", "Gemma-2-2B", "--context", "8k", "--attention", "sdpa"]) == 2
    err = capsys.readouterr().err
    assert "attention 'sdpa' is refused for model 'Gemma-2-2B'" in err and "Traceback" not in err
    assert main(["estimate", "Gemma-2-2B", "--context", "8k", "--attention", "eager"]) == 0
    assert "eager attention" in capsys.readouterr().out
