"""Every engine kind of the compiled kernel against the pure-Python oracle (vramcore/grid/reference.py).

One sweep per example compares several engines side by side (random knob
overrides of each), over random specs, dtypes, KV dtypes, parallel layouts,
contexts, batches and GPUs (custom cards around vLLM's 70 GiB and SGLang's
memory thresholds, some named A100).  Precision, as in test_kernel_vs_reference:

- *exact* cells (one GPU, every non-integer factor a power-of-two fraction,
  byte counts small enough; see :func:`exact_denominator`) must agree bit for
  bit, block counts and ``fits`` included;
- elsewhere each byte field may carry the rounding of the double operations
  the kernel chains (:data:`ROUNDINGS`); counts (blocks, cells, tokens) are
  exact, except that a floor of a rounded quotient may land one off when the
  exact quotient sits within that rounding of an integer (a KV budget on a
  block boundary, an SGLang default fraction on a rounding tie): those cells
  are reported as a hypothesis event and their budget-dependent fields skipped.

A kernel bug this oracle finds is fixed, with a regression test below that
names it (the last two, llama.cpp offloading its *last* layers, are
``test_llamacpp_offloads_the_last_layers``); none is filtered out of the
random grids.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st

import vramcore
from vramcore import EngineSpec, GPUSpec, ModelSpec, get_dtype, get_engine
from vramcore.engines.base import TRAIN_OPTIMIZERS, TRAIN_PRECISIONS
from vramcore.grid.reference import (
    BLOCKING,
    FIELDS,
    _layer_weights,
    _sglang_mem_fraction_static,
    _Stage,
    _stages,
    _stored_part_bytes,
    _weights_bytes,
    reference_estimate,
    reference_estimate_exact,
)

U = Fraction(1, 2**53)
GiB = 2**30
MiB = 2**20
KINDS: tuple[str, ...] = tuple(vramcore.list_engines())  # engine names are their kinds
PAGED = ("vllm", "sglang", "trtllm")
DTYPES = vramcore.list_dtypes()
#: Rounded double operations allowed per field (room to spare over the chains in formulas.h).
ROUNDINGS: dict[str, int] = {"weights_bytes": 24, "kv_cache_bytes": 16, "activation_bytes": 16,
                             "overhead_bytes": 24, "total_bytes": 32, "host_bytes": 32, "gradients_bytes": 24,
                             "optimizer_bytes": 24, "master_weights_bytes": 24, "trainable_params": 0}
#: Fields that depend on the KV budget of a paged engine.
BUDGET_FIELDS = frozenset({"kv_cache_bytes", "total_bytes", "headroom_bytes", "fits", "kv_capacity_tokens",
                           "kv_blocks", "max_concurrency"})

contexts_st = st.integers(1, 2**17) | st.integers(1, 2**40) | st.sampled_from([1, 4095, 4096, 2**40])
batches_st = st.integers(1, 64) | st.integers(1, 2**30) | st.sampled_from([1, 2**30])
fraction_st = (st.sampled_from([0.5, 0.75, 0.9, 0.95, 1.0]) | st.integers(1, 1024).map(lambda k: k / 1024)
               | st.floats(0.5, 1.0) | st.floats(0.01, 1.0))
small_bytes_st = st.sampled_from([0, 2**29]) | st.integers(0, 2**34)


# ---------------------------------------------------------------------- strategies
def layout_ok(spec: ModelSpec, tp: int, pp: int) -> bool:
    """The parallel layouts vramcore.sweep accepts (documented in its ValueError)."""
    kv = spec.num_kv_heads or spec.num_heads
    rec = spec.recurrent
    mamba_ok = (rec is None or rec.groups is None or tp == 1
                or (rec.state_heads % tp == 0 and (rec.groups % tp == 0 or tp % rec.groups == 0)))
    return (spec.num_heads % tp == 0 and (spec.is_mla or kv % tp == 0 or tp % kv == 0)
            and mamba_ok and pp <= spec.num_layers)


def resolved_layout(kind: str, layout: dict[str, int]) -> tuple[int, int]:
    """(tp, pp) of `kind` for a layout: n_gpus alone means pipeline stages for transformers / llama.cpp."""
    if "tp" in layout:
        return layout["tp"], layout["pp"]
    n = layout["n_gpus"]
    return (1, n) if get_engine(kind).kind in ("transformers", "llamacpp", "train") else (n, 1)


def knobs_st(kind: str, max_layers: int, pp: int) -> st.SearchStrategy[dict[str, Any]]:
    """Random overrides of an engine's knobs (engine spellings where they exist); each knob optional."""
    common: dict[str, st.SearchStrategy[Any]] = {
        "cuda_context_bytes": small_bytes_st,
        "kv_cache_dtype": st.none() | st.sampled_from(DTYPES),
        "rope_cache": st.booleans(),
        "mla_compressed": st.booleans(),
        # transformers-only rules: the other engines must ignore them
        "allocator_reserve_fraction": st.sampled_from([0.0, 0.05, 0.125]) | st.floats(0.0, 0.99),
        "full_logits": st.booleans(),
        "sliding_cap_offset": st.integers(-1, 64),  # >= -1 keeps window + offset >= 0 for every window >= 1
        # transformers and training ("sdpa" itself: "auto", or refused where a model has none)
        "attention": st.sampled_from(["auto", "flash", "eager"]),
    }
    if kind in PAGED:
        name = {"vllm": "gpu_memory_utilization", "sglang": "mem_fraction_static",
                "trtllm": "free_gpu_memory_fraction"}[kind]
        common.update({
            name: (fraction_st | st.just(0.0)) if kind == "sglang" else fraction_st,  # SGLang: 0 = GPU default
            "tokens_per_block" if kind == "trtllm" else "block_size":
                st.sampled_from([1, 16, 32, 128]) | st.integers(1, 512),
            "max_num_batched_tokens": st.sampled_from([0, 512, 2048, 8192]) | st.integers(1, 2**15),
            "max_num_seqs": st.sampled_from([0, 1, 256, 1024]) | st.integers(1, 4096),
            "cuda_graph_bytes": small_bytes_st, "non_torch_bytes": small_bytes_st, "nccl_bytes": small_bytes_st,
            "max_model_len": st.just(0) | st.integers(1, 2**20),
            "sampler_bytes_per_logit": st.sampled_from([None, 0.0, 8.0, 38.75]) | st.floats(0.0, 1000.0),
            "sampler": st.sampled_from(["sort", "flashinfer"]),
            "profile_hidden_states": st.booleans(),
            "profile_workspace_bytes": st.sampled_from([0, 34 * 2**20]) | small_bytes_st,
            "mm_profile_padding": st.booleans(),
            "cuda_graphs_in_budget": st.booleans(),
            "enforce_eager": st.booleans(),
        })
    elif get_engine(kind).kind == "train":
        common.update({
            "optimizer": st.sampled_from(TRAIN_OPTIMIZERS), "precision": st.sampled_from(list(TRAIN_PRECISIONS)),
            "recompute": st.sampled_from(["none", "selective", "full"]),
            "zero": st.integers(0, 3),
            "dp": st.integers(2, 64) | st.sampled_from([2, 8]), "momentum": st.sampled_from([0.0, 0.9]),
            "grad_accum_fp32": st.booleans(), "offload_optimizer": st.booleans(), "offload_params": st.booleans(),
        })
        if kind != "train":
            common["lora_rank"] = st.sampled_from([1, 8, 16]) | st.integers(1, 256)
        return st.fixed_dictionaries({}, optional=common).map(_zero_rules)
    elif kind == "llamacpp":
        common.update({
            # n_gpu_layers >= 0 over several pipeline stages is not documented (the oracle refuses it)
            "n_gpu_layers": st.just(-1) | (st.integers(0, max_layers + 1) if pp == 1 else st.just(-1)),
            "ctx_pad": st.sampled_from([1, 32, 256]) | st.integers(1, 1024),
            "flash_attn": st.booleans(),
            "swa_full": st.booleans(),
            "n_ubatch": st.sampled_from([0, 1, 512, 4096]) | st.integers(1, 8192),  # 0: the default 512
            # llama.cpp's own cache types, K and V apart
            "cache_type_k": st.none() | st.sampled_from(LLAMACPP_KV),
            "cache_type_v": st.none() | st.sampled_from(LLAMACPP_KV),
        })
        # a quantized V cache needs flash attention (llama.cpp refuses it otherwise: tested apart)
        return st.fixed_dictionaries({}, optional=common).map(_flash_for_quantized_v)
    return st.fixed_dictionaries({}, optional=common)


def _zero_rules(knobs: dict[str, Any]) -> dict[str, Any]:
    """Offloading needs ZeRO (the optimizer: stage >= 1, the parameters: stage 3); ZeRO needs dp >= 2."""
    zero = knobs.get("zero", 0)
    if knobs.get("offload_optimizer") and zero < 1:
        knobs["offload_optimizer"] = False
    if knobs.get("offload_params") and zero < 3:
        knobs["offload_params"] = False
    if zero >= 1:
        knobs.setdefault("dp", 2)
    return knobs


LLAMACPP_KV = ("f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl")


def _flash_for_quantized_v(knobs: dict[str, Any]) -> dict[str, Any]:
    v = knobs.get("cache_type_v") or knobs.get("cache_type_k") or knobs.get("kv_cache_dtype")
    if v is not None and v not in ("f32", "f16", "bf16", "fp32", "fp16"):
        knobs["flash_attn"] = True
    return knobs


@st.composite
def gpu_cards(draw: st.DrawFn, scale: int) -> GPUSpec:
    """Custom GPUs: any size, around the engines' memory thresholds, or near what the model needs (`scale`)."""
    thresholds = st.sampled_from([20, 35, 60, 70, 80, 141, 160, 192]).map(lambda g: g * GiB).flatmap(
        lambda b: st.sampled_from([b - 1, b, b + 1]) | st.integers(b - 2**24, b + 2**24))
    near_model = st.floats(0.5, 4.0).map(lambda f: max(1, int(f * scale)))
    total = draw(st.integers(1, 2**50) | st.integers(2**33, 2**38) | thresholds | near_model | near_model)
    visible = draw(st.none() | st.just(total) | st.integers(1, total))
    name = draw(st.sampled_from(["A100-SXM-80GB", "a100-pcie", "H100-SXM-80GB", "L40S", "card"]))
    return GPUSpec(name=f"{name}-{total}-{visible}", vendor="test", memory_total_bytes=total,
                   cuda_visible_bytes=visible)


def model_scale(specs: list[ModelSpec], engines: list[EngineSpec]) -> int:
    """About the memory the configurations need before their KV cache (GPUs of 0.5 - 4 x this fit some cells).

    fp32 weights, every fixed overhead, a rough profiling peak of the serving
    engines (a forward over the token budget, the sampler rows) and 2 GiB.
    """
    fixed = max(e.cuda_context_bytes + e.non_torch_bytes + e.nccl_bytes + e.cuda_graph_bytes
                + e.profile_workspace_bytes for e in engines)
    profile = 0
    for e in engines:
        tokens, seqs = e.max_num_batched_tokens or 8192, e.max_num_seqs or 1024
        for s in specs:
            width = 2 * s.hidden_size + 3 * max(s.intermediate_size, s.num_heads * (s.head_dim or 1))
            profile = max(profile, 4 * tokens * width, int(min(seqs, tokens) * s.vocab_size
                                                           * e.resolved_sampler_bytes_per_logit))
    return max(4 * s.param_count for s in specs) + fixed + profile + 2 * GiB


@st.composite
def grids(draw: st.DrawFn) -> dict[str, Any]:
    """A small random grid over every sweep axis, with 1-3 engines of distinct kinds."""
    specs = draw(st.lists(st.from_type(ModelSpec), min_size=1, max_size=2))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True))
    if any(get_engine(k).kind == "train" for k in kinds):  # gated-DeltaNet hybrids have no training estimate
        specs = [_without_recurrent(s) for s in specs]
    if any(get_engine(k).kind != "transformers" for k in kinds):  # cross-attention layers: transformers only
        specs = [_without_cross(s) for s in specs]
    min_layers = min(s.num_layers for s in specs)
    tps = [t for t in (1, 2, 4, 8) if all(layout_ok(s, t, 1) for s in specs)]
    if draw(st.booleans()):
        tp, pp = draw(st.sampled_from(tps)), draw(st.just(1) | st.integers(1, min(8, min_layers)))
        layout: dict[str, int] = {"n_gpus": tp * pp, "tp": tp, "pp": pp}
    else:  # n_gpus alone: pipeline stages for some engines, tensor-parallel ranks for others
        n = draw(st.sampled_from([t for t in tps if t <= min_layers]))
        layout = {"n_gpus": n}
    engines = []
    for kind in kinds:
        knobs = draw(knobs_st(kind, min_layers, resolved_layout(kind, layout)[1]))
        engines.append(get_engine(kind, **knobs))
    scale = model_scale(specs, engines)
    return {
        "specs": specs,
        "dtypes": draw(st.lists(st.sampled_from(DTYPES), min_size=1, max_size=2, unique=True)),
        "kv_dtype": draw(st.none() | st.sampled_from(DTYPES)),
        "contexts": draw(st.lists(contexts_st, min_size=1, max_size=3)),
        "batches": draw(st.lists(batches_st, min_size=1, max_size=2)),
        "gpus": draw(st.lists(gpu_cards(scale), min_size=1, max_size=2)),
        "engines": engines,
        "layout": layout,
    }


def _without_recurrent(spec: ModelSpec) -> ModelSpec:
    """`spec` as a training engine takes it: non-Mamba2 recurrent, cross-attention layers and mixer-less layers
    beside "hybrid" ones made attention ones."""
    trainable_mixer = spec.recurrent is None or spec.recurrent.kind == "mamba2"   # Mamba2 hybrids are modelled
    kinds = set(spec.layer_types or ())
    if trainable_mixer and "cross_attention" not in kinds and not {"none", "hybrid"} <= kinds:
        return spec   # ungated MLPs and one-sub-block layers (Nemotron-H) are modelled
    return spec.replace(layer_types=None, mlp_gated=True, cross_attention_tokens=0)


def _without_cross(spec: ModelSpec) -> ModelSpec:
    """`spec` as the serving engines take it: cross-attention layers (transformers only, refused elsewhere) made
    self-attention ones."""
    if not spec.n_cross_layers:
        return spec
    kinds = tuple("full_attention" if k == "cross_attention" else k for k in spec.layer_types or ())
    return spec.replace(layer_types=kinds, cross_attention_tokens=0)


# ---------------------------------------------------------------------- known kernel bugs
def _sglang_chunk(gpu_bytes: int) -> int:
    gib = Fraction(gpu_bytes, GiB)
    return 2048 if gib < 35 else 4096 if gib < 60 else 8192 if gib < 160 else 16384


def _vllm_tokens(gpu_bytes: int, gpu_name: str) -> int:
    return 8192 if gpu_bytes >= 70 * GiB and "a100" not in gpu_name.lower() else 2048


# ---------------------------------------------------------------------- comparing one cell
def _dyadic_den(x: Fraction, limit: int) -> int | None:
    d = x.denominator
    return d if d <= limit and d & (d - 1) == 0 else None


def exact_denominator(spec: ModelSpec, engine: EngineSpec, tp: int, pp: int) -> int | None:
    """Power-of-two denominator of every intermediate of the kernel when all of them can be exact, else None.

    The non-integer factors are the allocator fraction (transformers), the
    memory fraction and the sampler bytes (paged engines) and the MoE expert
    share; llama.cpp has none on one GPU with every layer or none offloaded.
    """
    if tp * pp != 1:
        return None
    den = 1
    if spec.n_moe_layers and engine.kind != "llamacpp":
        share = Fraction(3 * spec.moe_intermediate_size * spec.experts_per_token,  # type: ignore[operator]
                         spec.num_experts)
        d = _dyadic_den(share, 2**8)
        if d is None:
            return None
        den *= d
    factors: list[float] = []
    if engine.kind in ("transformers", "train"):
        factors = [engine.allocator_reserve_fraction]
    elif engine.kind in PAGED:
        if engine.mem_fraction == 0:  # SGLang's default: thousandths
            return None
        factors = [engine.mem_fraction, engine.resolved_sampler_bytes_per_logit]
    elif engine.n_gpu_layers not in (-1, 0, 1, spec.num_layers + 1):
        return None  # a fractional layer share
    for f in factors:
        d = _dyadic_den(Fraction(f), 2**10)
        if d is None:
            return None
        den *= d
    return den


#: Byte figures are whole numbers, rounded up: the ceiling of a rounded double may land one
#: byte from the ceiling of the exact value, for each figure summed into another.
WHOLE = 4


def within(got: float, exact: Fraction, roundings: int, extra: Fraction = Fraction(0)) -> bool:
    """|got - exact| <= ((k + 1) u + extra) |exact| + WHOLE: k rounded operations, the final one, the ceilings."""
    return abs(Fraction(got) - exact) <= ((roundings + 1) * U + extra) * abs(exact) + WHOLE


def cells_slack(engine: EngineSpec, exact: dict[str, Any]) -> Fraction:
    """Relative error of llama.cpp's cell count once context x batch passes 2**52.

    ``ceil(x / pad) * pad`` of a rounded product may move by a whole pad: up to
    ``(pad + 1) / cells`` relative, which carries into every figure that
    scales with the cells (beyond the documented exact range of 2**53).
    """
    if engine.kind != "llamacpp" or exact["kv_capacity_tokens"] < 2**52:
        return Fraction(0)
    return Fraction(engine.ctx_pad + 2, int(exact["kv_capacity_tokens"]))


def _fits_slack(exact: dict[str, Any], extra: Fraction = Fraction(0)) -> Fraction:
    return ((ROUNDINGS["total_bytes"] + 1) * U + extra) * abs(exact["total_bytes"]) + WHOLE


def budget_boundary(exact: dict[str, Any]) -> tuple[bool, range]:
    """Whether a paged cell's block count is decided within the kernel's rounding, and the counts allowed."""
    if exact["mem_fraction_margin"] is not None and exact["mem_fraction_margin"] < Fraction(1, 10**6):
        return True, range(0, 2**62)  # an SGLang default fraction on a rounding tie
    memory = exact["gpu_bytes"]
    magnitude = (exact["mem_fraction"] * memory + memory + exact["weights_bytes"] + exact["activation_bytes"]
                 + exact["overhead_bytes"])
    err = 64 * U * magnitude
    budget, unit = exact["budget_bytes"], exact["block_bytes"]
    if not unit:  # a model of recurrent layers only under SGLang / TensorRT-LLM: no KV block at all
        return False, range(0, 1)
    q = budget / unit
    dq = err / unit + 64 * U * abs(q)
    lo, hi = max(math.floor(q - dq), 0), max(math.floor(q + dq), 0)
    return abs(budget) <= err or lo != hi, range(lo, hi + 1)


def verdict(exact: dict[str, Any], context: int, batch: int, extra: Fraction = Fraction(0)) -> bool | None:
    """The oracle's fit, or None when the kernel's rounding may decide it either way."""
    memory_close = abs(exact["headroom_bytes"]) <= _fits_slack(exact, extra)
    if exact["budget_bytes"] is None:  # transformers, llama.cpp
        return None if memory_close else bool(exact["fits"])
    boundary, _ = budget_boundary(exact)
    if boundary:
        return None
    if not exact["fits"] and (exact["kv_blocks"] < batch * exact["blocks_per_request"] or exact["budget_bytes"] <= 0):
        return False
    return None if memory_close else bool(exact["fits"])


#: The figures of a pipeline that are not one stage's own: every stage's reasons, the smallest of the others.
COMBINED = ("reasons", "fits", "headroom_bytes", "max_concurrency", "kv_capacity_tokens", "gpu_bytes")


def assert_cell(got: dict[str, Any], exact: dict[str, Any], engine: EngineSpec, strict: bool, context: int,
                batch: int, skip: frozenset[str]) -> None:
    """Check one cell of the kernel's results against the exact oracle.

    Under pipeline stages the breakdown is the binding stage's.  Outside the
    exact regime two stages whose totals or block counts the doubles cannot
    tell apart may bind either way: the cell then holds one of those stages'
    figures, with the pipeline's combined fields.
    """
    stages = exact.get("stages") or []
    try:
        _assert_one_cell(got, exact, engine, strict, context, batch, skip)
    except AssertionError:
        if strict or len(stages) < 2:
            raise
        slack = (ROUNDINGS["total_bytes"] + 1) * U * max(abs(c["total_bytes"]) for c in stages) + 1
        for cell in stages:
            if abs(cell["total_bytes"] - exact["total_bytes"]) <= slack or abs(cell["kv_blocks"]
                                                                             - exact["kv_blocks"]) <= 1:
                try:
                    _assert_one_cell(got, {**cell, **{f: exact[f] for f in COMBINED}}, engine, strict, context,
                                     batch, skip)
                    return
                except AssertionError:
                    continue
        raise


def _assert_one_cell(got: dict[str, Any], exact: dict[str, Any], engine: EngineSpec, strict: bool, context: int,
                     batch: int, skip: frozenset[str]) -> None:
    """Check one cell against one exact cell (:func:`assert_cell`)."""
    kind, extra = engine.kind, cells_slack(engine, exact)
    rounded = {f: v if v is None or isinstance(v, bool) else float(v) for f, v in exact.items() if f in FIELDS}
    if kind in PAGED:
        boundary, allowed = budget_boundary(exact)
        if boundary:
            event("paged: KV budget on a block boundary")
            assert int(got["kv_blocks"]) in allowed, ("kv_blocks", got["kv_blocks"], allowed)
            skip = skip | BUDGET_FIELDS
    if strict:
        differ = {f: (got[f], rounded[f]) for f in FIELDS if f not in skip and got[f] != rounded[f]}
        assert not differ, differ
        return
    assert got["gpu_bytes"] == rounded["gpu_bytes"]
    for field, k in ROUNDINGS.items():
        if field not in skip:
            # a sum of integer knobs, except the allocator slack of transformers and training
            k = 0 if field == "overhead_bytes" and kind not in ("transformers", "train") else k
            assert within(got[field], exact[field], k, extra), (field, got[field], rounded[field])
    # counts
    if "kv_blocks" not in skip:
        assert got["kv_blocks"] == rounded["kv_blocks"], ("kv_blocks", got["kv_blocks"], rounded["kv_blocks"])
    capacity, concurrency = exact["kv_capacity_tokens"], exact["max_concurrency"]
    if "kv_capacity_tokens" not in skip:
        k = 0 if kind in PAGED or capacity < 2**52 else 4  # a padded product of huge counts rounds
        assert within(got["kv_capacity_tokens"], capacity, k, extra), \
            ("kv_capacity_tokens", got["kv_capacity_tokens"], rounded["kv_capacity_tokens"])
    if "max_concurrency" not in skip:
        if kind in PAGED:  # blocks / blocks per request, one division
            assert within(got["max_concurrency"], concurrency, 0), ("max_concurrency", got["max_concurrency"],
                                                                    rounded["max_concurrency"])
        else:  # a floor of a rounded quotient may land one off an integer the exact quotient just misses
            slack = 1 + ((ROUNDINGS["total_bytes"] + 1) * U + extra) * concurrency
            assert abs(Fraction(got["max_concurrency"]) - concurrency) <= slack, \
                ("max_concurrency", got["max_concurrency"], rounded["max_concurrency"])
    if "headroom_bytes" not in skip:
        headroom = exact["headroom_bytes"]
        slack = _fits_slack(exact, extra) + U * abs(headroom)
        if kind in PAGED:  # the pool's spare blocks: (blocks - batch x need) x block bytes, three roundings
            slack += 4 * U * (abs(headroom) + exact["kv_blocks"] * exact["block_bytes"])
        assert abs(Fraction(got["headroom_bytes"]) - headroom) <= slack, \
            ("headroom_bytes", got["headroom_bytes"], rounded["headroom_bytes"])
    # advice is decided by integers; the blocking reasons agree with fits
    assert got["reasons"] & ~BLOCKING == exact["reasons"] & ~BLOCKING, ("reasons", got["reasons"], exact["reasons"])
    assert bool(got["reasons"] & BLOCKING) == (not got["fits"]), ("reasons", got["reasons"], got["fits"])
    if "fits" not in skip:
        expected = verdict(exact, context, batch, extra)
        if expected is None:
            event("fit decided within rounding")
        else:
            assert got["fits"] == expected, ("fits", got["fits"], exact["fits"])


def oracle(spec: ModelSpec, dtype: str, kv_dtype: str | None, engine: EngineSpec, layout: dict[str, int],
           context: int, batch: int, gpu: GPUSpec) -> dict[str, Any]:
    return reference_estimate_exact(spec, get_dtype(dtype), get_dtype(kv_dtype) if kv_dtype else None, engine,
                                    layout["n_gpus"], context, batch, gpu.usable_bytes, tp=layout.get("tp"),
                                    pp=layout.get("pp"), gpu_name=gpu.name, details=True)


# ---------------------------------------------------------------------- the grids
@settings(deadline=None)  # the exact oracle is slow on purpose
@given(grids())
def test_engine_sweep_equals_oracle_cell_for_cell(grid: dict[str, Any]) -> None:
    s = vramcore.sweep(grid["specs"], grid["dtypes"], grid["contexts"], grid["batches"], grid["gpus"],
                       kv_dtype=grid["kv_dtype"], engine=grid["engines"], **grid["layout"])
    assert s.shape == (len(grid["specs"]), len(grid["dtypes"]), len(grid["contexts"]), len(grid["batches"]),
                       len(grid["gpus"]), len(grid["engines"]))
    strict_cells = 0
    for idx in np.ndindex(*s.shape):
        i, j, k, b, m, e = idx
        spec, engine, gpu = grid["specs"][i], grid["engines"][e], grid["gpus"][m]
        context, batch = grid["contexts"][k], grid["batches"][b]
        tp, pp = resolved_layout(engine.kind, grid["layout"])
        exact = oracle(spec, grid["dtypes"][j], grid["kv_dtype"], engine, grid["layout"], context, batch, gpu)
        got = {f: getattr(s, f)[idx].item() for f in FIELDS}
        den = exact_denominator(spec, engine, tp, pp)
        # the headroom too: a paged engine's is the pool's spare beyond the request, which may exceed the total
        scale = max(exact["total_bytes"], exact["host_bytes"], exact["gpu_bytes"], exact["weights_bytes"],
                    abs(exact["headroom_bytes"]))
        strict = den is not None and 8 * 4 * scale * den < 2**53 and context * batch < 2**40
        strict_cells += strict
        event(f"{engine.kind}: {'bit-exact' if strict else 'rounded'}{', fits' if exact['fits'] else ''}")
        note(f"cell {idx}: {engine} tp={tp} pp={pp} strict={strict}")
        assert_cell(got, exact, engine, strict, context, batch, frozenset())
    event(f"bit-exact cells: {'all' if strict_cells == s.size else 'some' if strict_cells else 'none'}")
    for engine in grid["engines"]:
        event(f"engine {engine.kind}")


# ---------------------------------------------------------------------- inverse questions
@st.composite
def questions(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(st.from_type(ModelSpec))
    trainable = _without_recurrent(spec) is spec
    kinds = [k for k in KINDS if trainable or get_engine(k).kind != "train"]
    if spec.n_cross_layers:  # cross-attention layers: transformers only (the others refuse them)
        kinds = [k for k in kinds if get_engine(k).kind == "transformers"]
    engines = [get_engine(kind, **draw(knobs_st(kind, spec.num_layers, 1))) for kind in kinds]
    gpu = draw(gpu_cards(model_scale([spec], engines)))
    return {"spec": spec, "dtype": draw(st.sampled_from(DTYPES)), "engines": engines, "gpu": gpu}


def _fits_per_oracle(q: dict[str, Any], engine: EngineSpec, context: int, batch: int) -> bool | None:
    exact = oracle(q["spec"], q["dtype"], None, engine, {"n_gpus": 1}, context, batch, q["gpu"])
    return verdict(exact, context, batch, cells_slack(engine, exact))


@settings(deadline=None)
@given(questions(), st.integers(1, 64) | batches_st)
def test_max_context_fits_per_oracle_and_one_more_does_not(q: dict[str, Any], batch: int) -> None:
    sol = vramcore.max_context(q["spec"], q["dtype"], batch, q["gpu"], engine=q["engines"])
    cap = q["spec"].max_context or 2**53
    for e, engine in enumerate(q["engines"]):
        c = int(sol.values[0, 0, 0, 0, e])
        assert 0 <= c <= cap
        if c > 0:
            assert _fits_per_oracle(q, engine, c, batch) in (True, None), (engine.kind, c)
        if c < cap:
            assert _fits_per_oracle(q, engine, c + 1, batch) in (False, None), (engine.kind, c + 1)
        event(f"{engine.kind}: {'none' if c == 0 else 'cap' if c == cap else 'some'} context fits")


@settings(deadline=None)
@given(questions(), contexts_st)
def test_max_batch_fits_per_oracle_and_one_more_does_not(q: dict[str, Any], context: int) -> None:
    sol = vramcore.max_batch(q["spec"], q["dtype"], context, q["gpu"], engine=q["engines"])
    for e, engine in enumerate(q["engines"]):
        b = int(sol.values[0, 0, 0, 0, e])
        assert 0 <= b <= 2**53
        if b > 0:
            assert _fits_per_oracle(q, engine, context, b) in (True, None), (engine.kind, b)
        if b < 2**53:
            assert _fits_per_oracle(q, engine, context, b + 1) in (False, None), (engine.kind, b + 1)
        event(f"{engine.kind}: {'none' if b == 0 else 'some'} sequences fit")


# ---------------------------------------------------------------------- invalid input, every engine
@st.composite
def layouts_any(draw: st.DrawFn) -> dict[str, Any]:
    """Layouts and llama.cpp offloads, valid or not."""
    spec = draw(st.from_type(ModelSpec))
    kind = draw(st.sampled_from(KINDS))
    layout: dict[str, Any] = {"n_gpus": draw(st.integers(1, 16))}
    if draw(st.booleans()):
        layout["tp"] = draw(st.none() | st.integers(1, 16))
        layout["pp"] = draw(st.none() | st.integers(1, 16))
        if draw(st.booleans()) and layout["tp"] and layout["pp"]:
            layout["n_gpus"] = layout["tp"] * layout["pp"]
    knobs = {"n_gpu_layers": draw(st.integers(-1, spec.num_layers + 3))} if kind == "llamacpp" else {}
    return {"spec": spec, "engine": get_engine(kind, **knobs), "layout": layout}


@given(layouts_any())
def test_layouts_raise_in_both_or_neither(case: dict[str, Any]) -> None:
    spec, engine, layout = case["spec"], case["engine"], case["layout"]
    gpu = GPUSpec(name="g", vendor="test", memory_total_bytes=80 * GiB)
    try:
        want: Any = reference_estimate(spec, get_dtype("bf16"), None, engine, layout["n_gpus"], 4096, 1,
                                       gpu.usable_bytes, tp=layout.get("tp"), pp=layout.get("pp"), gpu_name="g")
    except ValueError as exc:
        want = exc
    if isinstance(want, ValueError):
        with pytest.raises(ValueError) as api:
            vramcore.sweep(spec, "bf16", 4096, 1, gpu, engine=engine, **layout)
        note(f"oracle: {want}; api: {api.value}")
        event("invalid layout")
    else:
        vramcore.sweep(spec, "bf16", 4096, 1, gpu, engine=engine, **layout)
        event("valid layout")


LLAMA_1B = "Llama-3.2-1B"  # 16 layers, 32 heads, 8 KV heads


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("layout", "match"),
    [
        ({"tp": 3}, "tp=3 does not divide the 32 attention heads"),
        ({"tp": 16, "pp": 1}, None),
        ({"pp": 17}, "pp=17 exceeds the 16 layers"),
        ({"n_gpus": 3, "tp": 2}, r"n_gpus \(3\) must equal tp x pp \(2 x 1\)"),
    ],
)
def test_invalid_layouts_raise_in_both_for_every_engine(kind: str, layout: dict[str, Any], match: str | None) -> None:
    spec = vramcore.get_model(LLAMA_1B).spec
    n_gpus = layout.get("n_gpus", 1)
    rest: dict[str, Any] = {k: v for k, v in layout.items() if k != "n_gpus"}
    if match is None:  # tp 16 > 8 KV heads replicates them: valid everywhere
        vramcore.estimate(spec, context=4096, gpu="H100", engine=kind, **layout)
        reference_estimate(spec, get_dtype("bf16"), None, get_engine(kind), n_gpus, 4096, 1, 2**36, **rest)
        return
    with pytest.raises(ValueError, match=match):
        vramcore.estimate(spec, context=4096, gpu="H100", engine=kind, **layout)
    with pytest.raises(ValueError, match=match):
        reference_estimate(spec, get_dtype("bf16"), None, get_engine(kind), n_gpus, 4096, 1, 2**36, **rest)


@pytest.mark.parametrize("kind", KINDS)
def test_n_gpus_alone_means_stages_or_ranks_in_both(kind: str) -> None:
    # 3 GPUs: 3 pipeline stages of 16 layers for transformers / llama.cpp; tp=3 (32 heads) for the others
    spec = vramcore.get_model(LLAMA_1B).spec
    if get_engine(kind).kind in ("transformers", "llamacpp", "train"):
        e = vramcore.estimate(spec, context=4096, gpu="H100", engine=kind, n_gpus=3)
        r = reference_estimate(spec, get_dtype("bf16"), None, get_engine(kind), 3, 4096, 1,
                               vramcore.get_gpu("H100").usable_bytes)
        assert (e.tp, e.pp) == (1, 3)
        assert e.weights_bytes == pytest.approx(r["weights_bytes"], rel=1e-14)
        return
    with pytest.raises(ValueError, match="tp=3 does not divide the 32 attention heads"):
        vramcore.estimate(spec, context=4096, gpu="H100", engine=kind, n_gpus=3)
    with pytest.raises(ValueError, match="tp=3 does not divide the 32 attention heads"):
        reference_estimate(spec, get_dtype("bf16"), None, get_engine(kind), 3, 4096, 1, 2**36)


bad_counts = st.sampled_from([0, -1, 2**53 + 1, 1.5, float("nan"), float("inf"), True, "8", None])


@given(st.sampled_from(KINDS), st.sampled_from(["context", "batch", "n_gpus"]), bad_counts)
def test_invalid_counts_raise_in_both_for_every_engine(kind: str, arg: str, bad: Any) -> None:
    spec = vramcore.get_model(LLAMA_1B).spec
    args = {"context": 4096, "batch": 1, "n_gpus": 1, arg: bad}
    with pytest.raises((TypeError, ValueError), match=arg) as api:
        vramcore.estimate(spec, context=args["context"], batch=args["batch"], n_gpus=args["n_gpus"], gpu="H100",
                          engine=kind)
    with pytest.raises((TypeError, ValueError), match=arg) as ref:
        reference_estimate(spec, get_dtype("bf16"), None, get_engine(kind), args["n_gpus"], args["context"],
                           args["batch"], 2**36)
    assert ref.type is api.type


@pytest.mark.parametrize("kind", PAGED)
def test_serving_engines_need_a_gpu_in_both(kind: str) -> None:
    spec = vramcore.get_model(LLAMA_1B).spec
    with pytest.raises(ValueError, match="sizes its KV cache from the GPU's memory"):
        vramcore.estimate(spec, context=4096, engine=kind)
    with pytest.raises(ValueError, match="sizes its KV cache from the GPU's memory"):
        reference_estimate(spec, get_dtype("bf16"), None, get_engine(kind), 1, 4096, 1, None)


def test_llamacpp_offload_beyond_the_layers_raises_in_both() -> None:
    spec = vramcore.get_model(LLAMA_1B).spec
    engine = get_engine("llamacpp", n_gpu_layers=18)
    with pytest.raises(ValueError, match="n_gpu_layers=18 exceeds the 16 layers"):
        vramcore.estimate(spec, context=4096, engine=engine)
    with pytest.raises(ValueError, match="n_gpu_layers=18 exceeds the 16 layers"):
        reference_estimate(spec, get_dtype("bf16"), None, engine, 1, 4096, 1, None)
    # 17 = every layer plus the output: valid
    assert reference_estimate(spec, get_dtype("bf16"), None, get_engine("llamacpp", n_gpu_layers=17), 1, 4096, 1,
                              None)["host_bytes"] > 0


# ---------------------------------------------------------------------- the oracle's own facts
@given(st.from_type(ModelSpec), st.sampled_from(DTYPES), st.sampled_from([1, 2, 4, 8]))
def test_oracle_layer_by_layer_weights_sum_to_the_part_by_part_weights(spec: ModelSpec, dtype: str, tp: int) -> None:
    assume(layout_ok(spec, tp, 1))
    d = get_dtype(dtype)
    parts = _stored_part_bytes(spec, d)
    by_layer = sum(_layer_weights(spec, d, tp), Fraction(0))
    whole = _Stage(tuple(range(spec.num_layers)), first=True, last=True)
    towers = (parts["vision_tower"] + parts["multimodal_projector"] + parts["audio_tower"]) / tp
    assert by_layer + (parts["embedding"] + parts["lm_head"]) / tp + towers == _weights_bytes(spec, d, tp, whole)
    # the stages of a pipeline hold every layer once: each one's layers sum to the whole model's
    stages = _stages(spec, get_engine("vllm"), min(4, spec.num_layers))
    assert sorted(i for st_ in stages for i in st_.layers) == list(range(spec.num_layers))
    layers_only = [_Stage(st_.layers, first=False, last=False) for st_ in stages]
    assert sum(_weights_bytes(spec, d, tp, st_) for st_ in layers_only) == by_layer
    assert {k: float(v) for k, v in parts.items()} == d.weight_bytes_by_part(spec)  # the package agrees


def test_sglang_default_fraction_known_values() -> None:
    # server_args.py: H100 80GB (81559 MiB), TP 1 -> reserved 13440 MiB -> 0.835 (tests/test_engine_logs.py)
    fraction, margin = _sglang_mem_fraction_static(81559 * MiB, 8192, 256, 1)
    assert fraction == Fraction(835, 1000) and margin > 0
    # a 24 GiB card: reserved 512 + 3072 + 48 + 128 = 3760 MiB of 24576 -> 0.847
    assert _sglang_mem_fraction_static(24 * GiB, 2048, 24, 1)[0] == Fraction(847, 1000)
    # tiny memory: never below 0.05
    assert _sglang_mem_fraction_static(1 * GiB, 2048, 8, 1)[0] == Fraction(1, 20)


def test_paged_oracle_known_values_llama_8b_h100() -> None:
    # vLLM defaults on an H100 (79.18 GiB, large): 8192 tokens / 1024 sequences; 16-token pages of
    # 32 layers x 8 heads x 256 x 2 bytes = 2 MiB a block id
    spec = vramcore.get_model("Llama-3.1-8B").spec
    h100 = vramcore.get_gpu("H100")
    r = reference_estimate_exact(spec, get_dtype("bf16"), None, get_engine("vllm"), 1, 8192, 1, h100.usable_bytes,
                                 gpu_name=h100.name, details=True)
    assert (r["profile_tokens"], r["profile_seqs"], r["block_bytes"]) == (8192, 1024, 2 * MiB)
    assert r["kv_capacity_tokens"] == r["kv_blocks"] * 16 and r["max_concurrency"] == r["kv_blocks"] / 512
    a100 = reference_estimate_exact(spec, get_dtype("bf16"), None, get_engine("vllm"), 1, 8192, 1,
                                    h100.usable_bytes, gpu_name="A100-SXM-80GB", details=True)
    assert (a100["profile_tokens"], a100["profile_seqs"]) == (2048, 256)


# ---------------------------------------------------------------------- kernel bugs found by the oracle
GEMMA3 = "Gemma-3-12B"  # 48 layers: 40 sliding + 8 full -> vLLM KV groups of 8 layers, 6 groups


def test_hybrid_kv_capacity_is_what_vllm_logs() -> None:
    spec = vramcore.get_model(GEMMA3).spec
    h100 = vramcore.get_gpu("H100")
    e = vramcore.estimate(spec, context=1000, gpu=h100, engine="vllm")
    r = reference_estimate(spec, get_dtype("bf16"), None, get_engine("vllm"), 1, 1000, 1, h100.usable_bytes,
                           gpu_name=h100.name)
    assert e.kv_blocks == r["kv_blocks"]  # the pool itself agrees
    assert e.kv_capacity_tokens == r["kv_capacity_tokens"]


def test_sglang_auto_chunked_prefill_follows_the_gpu_memory() -> None:
    spec = vramcore.get_model("Llama-3.1-8B").spec
    gpu = vramcore.get_gpu("L40S")
    engine = get_engine("sglang", mem_fraction_static=0.8)
    e = vramcore.estimate(spec, context=4096, gpu=gpu, engine=engine)
    r = reference_estimate(spec, get_dtype("bf16"), None, engine, 1, 4096, 1, gpu.usable_bytes, gpu_name=gpu.name)
    assert e.activation_bytes == pytest.approx(r["activation_bytes"], rel=1e-12)


def test_sglang_default_fraction_reserves_the_configured_chunk() -> None:
    spec = vramcore.get_model("Llama-3.1-8B").spec
    h100 = vramcore.get_gpu("H100")
    engine = get_engine("sglang", max_num_batched_tokens=16384)
    e = vramcore.estimate(spec, context=4096, gpu=h100, engine=engine)
    r = reference_estimate(spec, get_dtype("bf16"), None, engine, 1, 4096, 1, h100.usable_bytes,
                           gpu_name=h100.name)
    assert e.kv_blocks == r["kv_blocks"]


@pytest.mark.parametrize(("model", "ngl", "field"), [("DeepSeek-V3", 4, "weights_bytes"),
                                                     ("Gemma-2-9B", 2, "kv_cache_bytes")])
def test_llamacpp_offloads_the_last_layers(model: str, ngl: int, field: str) -> None:
    # llama.cpp n_gpu_layers offloads the output layer and the LAST n - 1 layers (src/llama-model.cpp,
    # load_tensors), so the kinds on the GPU are those layers' own, not a proportional sample: DeepSeek-V3
    # -ngl 4 offloads three MoE layers (66.04 GiB; averaging in the 3 dense layers said 63.04); Gemma-2-9B -ngl 2
    # at 16384 tokens keeps its last layer, a full-attention one, on the GPU: 128 MiB of cache (averaging a full
    # and a sliding layer said 82 MiB)
    spec = vramcore.get_model(model).spec
    engine = get_engine("llamacpp", n_gpu_layers=ngl)
    e = vramcore.estimate(spec, context=16384, engine=engine, dtype="bf16")
    r = reference_estimate(spec, get_dtype("bf16"), None, engine, 1, 16384, 1, None)
    assert getattr(e, field) == pytest.approx(r[field], rel=1e-12)


def test_llamacpp_pipeline_keeps_no_layers_on_the_host() -> None:
    spec = vramcore.get_model("Llama-3.1-8B").spec
    e = vramcore.estimate(spec, context=8192, engine="llamacpp", n_gpus=2)
    r = reference_estimate(spec, get_dtype("bf16"), None, get_engine("llamacpp"), 2, 8192, 1, None)
    assert e.host_bytes == r["host_bytes"]


def test_llamacpp_host_layers_keep_their_whole_cache() -> None:
    spec = vramcore.get_model("Llama-3.1-8B").spec
    engine = get_engine("llamacpp", n_gpu_layers=17)
    e = vramcore.estimate(spec, context=8192, engine=engine, tp=2)
    r = reference_estimate(spec, get_dtype("bf16"), None, engine, 2, 8192, 1, None, tp=2)
    assert e.host_bytes == r["host_bytes"]


def test_llamacpp_auto_ubatch_is_the_default_512() -> None:
    spec = vramcore.get_model("Llama-3.1-8B").spec
    e = vramcore.estimate(spec, context=8192, engine=get_engine("llamacpp", n_ubatch=0))
    r = reference_estimate(spec, get_dtype("bf16"), None, get_engine("llamacpp", n_ubatch=0), 1, 8192, 1, None)
    assert r["activation_bytes"] == vramcore.estimate(spec, context=8192, engine="llamacpp").activation_bytes
    assert e.activation_bytes == r["activation_bytes"]
