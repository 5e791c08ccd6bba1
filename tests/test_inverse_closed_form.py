"""Inverse questions answered from the closed form alone, held to the forward verdict (issue #12 item 6).

The budgeted engines' pool does not change with the context or the batch, so
one estimate gives the answer (vramcore/solve.h, vc_paged_answer); transformers'
total is a line but for whole-byte roundings, so away from them the guess is
the answer.  Real models with full, sliding and mixed layers, on either side of
the sliding groups' saturation, must give an answer that fits while one more
does not.
"""

from __future__ import annotations

import numpy as np
import pytest

import vramcore

MODELS = ["Llama-3.1-8B", "Gemma-3-12B", "Phi-4-mini-instruct", "Qwen3-14B"]
GPUS = ["L4", "RTX-4090", "A100-80GB", "H100", "H200"]


def assert_answers_exact(model: str, engine: object, batches: list[int], contexts: list[int], gpus: list[str],
                         cap: int | None = None) -> None:
    """Every max_context / max_batch answer of `model` fits (when above 0) and one more does not (below the cap)."""
    if cap is None:
        cap = vramcore.get_model(model).spec.max_context or 2**53
    ctx = vramcore.max_context(model, "bf16", batches, gpus, engine=engine)
    bat = vramcore.max_batch(model, "bf16", contexts, gpus, engine=engine)
    for (b, g), c in np.ndenumerate(ctx.values[0, 0]):
        kw = dict(batch=batches[b], gpu=gpus[g], engine=engine)
        assert bool(c > 0) is vramcore.estimate(model, context=max(int(c), 1), **kw).fits, (b, g, c)
        assert c == cap or not vramcore.estimate(model, context=int(c) + 1, **kw).fits, (b, g, c)
    for (k, g), n in np.ndenumerate(bat.values[0, 0]):
        kw = dict(context=contexts[k], gpu=gpus[g], engine=engine)
        assert n == 0 or vramcore.estimate(model, batch=int(n), **kw).fits, (k, g, n)
        assert not vramcore.estimate(model, batch=int(n) + 1, **kw).fits, (k, g, n)


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm", "transformers", "train", "lora", "qlora"])
@pytest.mark.parametrize("model", MODELS)
def test_max_context_is_the_last_that_fits(engine: str, model: str) -> None:
    batches = [1, 3, 17, 256]
    sol = vramcore.max_context(model, "bf16", batches, GPUS, engine=engine)
    cap = vramcore.get_model(model).spec.max_context or 2**53
    for (b, g), c in np.ndenumerate(sol.values[0, 0]):
        at = vramcore.estimate(model, context=max(int(c), 1), batch=batches[b], gpu=GPUS[g], engine=engine)
        assert at.fits is bool(c > 0), (b, g, c)
        if c < cap:
            above = vramcore.estimate(model, context=int(c) + 1, batch=batches[b], gpu=GPUS[g], engine=engine)
            assert not above.fits, (b, g, c)


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm", "transformers", "train", "lora", "qlora"])
@pytest.mark.parametrize("model", MODELS)
def test_max_batch_is_the_last_that_fits(engine: str, model: str) -> None:
    contexts = [512, 4096, 32768]
    sol = vramcore.max_batch(model, "bf16", contexts, GPUS, engine=engine)
    for (k, g), n in np.ndenumerate(sol.values[0, 0]):
        if n > 0:
            assert vramcore.estimate(model, context=contexts[k], batch=int(n), gpu=GPUS[g], engine=engine).fits
        assert not vramcore.estimate(model, context=contexts[k], batch=int(n) + 1, gpu=GPUS[g],
                                     engine=engine).fits, (k, g, n)


TRAIN_VARIANTS = [("train", {"recompute": "full"}), ("lora", {"attention": "eager"}),
                  ("train", {"recompute": "selective", "allocator_reserve_fraction": 0.1}), ("qlora", {})]


@pytest.mark.parametrize(("method", "knobs"), TRAIN_VARIANTS)
@pytest.mark.parametrize("model", MODELS)
def test_training_answers_are_exact(method: str, knobs: dict, model: str) -> None:
    """Training answers from its two-branch closed form (loss transient, layer backward) alone, away from the
    roundings (vc_train_exact): the answer fits and one more does not, for contexts and micro-batches."""
    assert_answers_exact(model, vramcore.get_engine(method, **knobs), [1, 2, 7, 64], [1, 1000, 4096, 32768], GPUS)


HYBRIDS = ["Granite-4.0-H-Tiny", "Falcon-H1-7B-Instruct", "Granite-4.0-H-Micro"]
PAGED_HYBRID = [("vllm", {}), ("vllm", {"mamba_cache_mode": "all"}), ("vllm", {"mamba_cache_mode": "none"}),
                ("vllm", {"max_model_len": 20000}), ("sglang", {}), ("trtllm", {})]


@pytest.mark.parametrize(("name", "knobs"), PAGED_HYBRID)
@pytest.mark.parametrize("model", HYBRIDS)
def test_hybrid_answers_from_the_pool(name: str, knobs: dict, model: str) -> None:
    """Hybrid models under the budgeted engines answer from the pool too: vLLM's state blocks in every request,
    SGLang's and TensorRT-LLM's state slots bounding the batch (vc_paged_answer, vc_paged_seq_cap)."""
    cap = min(vramcore.get_model(model).spec.max_context or 2**53, knobs.get("max_model_len", 2**53))
    assert_answers_exact(model, vramcore.get_engine(name, **knobs), [1, 3, 17, 256, 4000],
                         [1, 512, 4096, 32768, 200000], ["L4", "A100-40GB", "H100", "H200"], cap)


LLAMACPP = [{}, {"flash_attn": False}, {"swa_full": True}, {"n_ubatch": 2048, "flash_attn": False},
            {"n_gpu_layers": 10}, {"cache_type_k": "q8_0", "cache_type_v": "q8_0"}]


@pytest.mark.parametrize("knobs", LLAMACPP)
@pytest.mark.parametrize("model", [*MODELS, "Phi-3-mini-4k-instruct", "Granite-4.0-H-Tiny", "Gemma-3-4B"])
def test_llamacpp_answers_are_exact(knobs: dict, model: str) -> None:
    """llama.cpp answers from its cells' pieces (a fixed batch: the total is a function of the padded cells) and
    from its lines in the batch (a fixed context, below the paddings' bytes), held to the forward verdict."""
    assert_answers_exact(model, vramcore.get_engine("llamacpp", **knobs), [1, 2, 7, 64, 300, 5000],
                         [1, 100, 512, 4096, 32768, 131072], GPUS)


@pytest.mark.parametrize("model", ["Phi-3-mini-4k-instruct", "Gemma-3-12B"])
def test_llamacpp_batch_within_one_sliding_padding(model: str) -> None:
    """A padded sliding window's gap (up to pad cells of the sliding layers' bytes, once) is an eighth of a
    sequence's bytes for Phi-3-mini (every layer sliding: a sequence costs its window), so the lines leave the
    answer between n and n + 1 on many GPUs and contexts; one evaluation at n + 1 decides it.  Dense contexts
    and every catalog GPU make those cells certain to occur; each answer is held to the forward verdict."""
    gpus = vramcore.list_gpus()
    assert_answers_exact(model, vramcore.get_engine("llamacpp"), [1], list(range(3000, 200_000, 9973)), gpus)


@pytest.mark.parametrize(("method", "knobs"), [("lora", {}), ("qlora", {}), ("train", {"recompute": "full"})])
@pytest.mark.parametrize("config", ["jamba-v0.1-defaults", "qwen3.5-defaults"])
def test_training_answers_of_recurrent_hybrids_are_exact(method: str, knobs: dict, config: str) -> None:
    """Jamba's scan states step every 2048 tokens (ceil): the closed form bounds them and the search decides;
    Qwen3.5's per-row rotary tables are a line in the batch."""
    import json
    from pathlib import Path

    raw = json.loads((Path(__file__).parent / "data" / "hf_configs" / f"{config}.json").read_text())["config"]
    spec = vramcore.ModelSpec.from_hf_config(raw, name=config).text_only
    engine, gpus = vramcore.get_engine(method, **knobs), ["A100-80GB", "H200", "B200"]
    assert_answers_exact(spec, engine, [1, 2, 7], [1, 2047, 2048, 2049, 6000], gpus, cap=spec.max_context or 2**53)
    if method != "train":   # answers past the first scan chunk (52B Jamba trains in full only beyond one GPU)
        assert vramcore.max_context(spec, "bf16", [1], gpus, engine=engine).values.max() > 2048
