"""The compiled kernel against the pure-Python oracle (vramcore/grid/reference.py), over whole grids.

The oracle computes the exact value of every field (integers and Fractions);
the kernel computes in double precision.  Two regimes:

- *exact*: one GPU (tp = pp = 1), an allocator fraction with a power-of-two
  denominator <= 2**10, MoE expert shares ``3 x width x top-k / n_experts``
  with a power-of-two denominator <= 2**8, and a total small enough for both
  (see :func:`exact_regime`).  Then every intermediate value of the kernel is a
  representable double, and the kernel must equal the correctly rounded exact
  value bit for bit, ``fits`` included (``max_concurrency``, a floor of a
  quotient, up to the rounding of that quotient).
- *rounded* (huge contexts and batches, a fraction such as 0.05, odd expert
  shares, tp / pp shares such as ceil(7 / 3) / 7): each field may carry the
  rounding of the double operations the kernel chains to compute it.  A field
  computed through k rounded operations on non-negative exact inputs is off by
  at most about ``k * 2**-53`` relative (Higham, Accuracy and Stability of
  Numerical Algorithms, sec. 3.1); :data:`ROUNDINGS` gives each field a k with
  room to spare over the chains in include/vramcore/formulas.h.  A wrong
  formula misses by far more (an off-by-one token in a 4096 window is 2**-12).
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
from vramcore.grid.reference import FIELDS, reference_estimate, reference_estimate_exact, reference_grid_numpy

U = Fraction(1, 2**53)

#: Rounded double operations allowed per field (see the module docstring).
ROUNDINGS: dict[str, int] = {"weights_bytes": 24, "kv_cache_bytes": 16, "activation_bytes": 16,
                             "overhead_bytes": 24, "total_bytes": 32, "kv_capacity_tokens": 1,
                             "kv_blocks": 0, "host_bytes": 0}
EXACT_LIMIT = 2**42

DTYPES = vramcore.list_dtypes()
contexts_st = st.integers(1, 2**17) | st.integers(1, 2**40) | st.sampled_from([1, 4095, 4096, 2**40])
batches_st = st.integers(1, 64) | st.integers(1, 2**30) | st.sampled_from([1, 2**30])


def layout_ok(spec: ModelSpec, tp: int, pp: int) -> bool:
    """The parallel layouts vramcore.sweep accepts (documented in its ValueError)."""
    kv = spec.num_kv_heads or spec.num_heads
    rec = spec.recurrent
    mamba_ok = (rec is None or rec.groups is None or tp == 1
                or (rec.state_heads % tp == 0 and (rec.groups % tp == 0 or tp % rec.groups == 0)))
    return (spec.num_heads % tp == 0 and (spec.is_mla or kv % tp == 0 or tp % kv == 0)
            and mamba_ok and pp <= spec.num_layers)


@st.composite
def grids(draw: st.DrawFn) -> dict[str, Any]:
    """A small random grid: every axis of :func:`vramcore.sweep`, the engine and the GPU layout."""
    specs = draw(st.lists(st.from_type(ModelSpec), min_size=1, max_size=2))
    tp = draw(st.just(1) | st.sampled_from([t for t in (1, 2, 4, 8)
                                            if all(layout_ok(s, t, 1) for s in specs)]))
    pp = draw(st.just(1) | st.integers(1, min(8, *(s.num_layers for s in specs))))
    if tp == 1 and draw(st.booleans()):
        layout: dict[str, Any] = {"n_gpus": pp}  # transformers: n_gpus means pipeline stages
    else:
        layout = {"n_gpus": tp * pp, "tp": tp, "pp": pp}
    return {
        "specs": specs,
        "dtypes": draw(st.lists(st.sampled_from(DTYPES), min_size=1, max_size=2, unique=True)),
        "kv_dtype": draw(st.none() | st.sampled_from(DTYPES)),
        "contexts": draw(st.lists(contexts_st, min_size=1, max_size=3)),
        "batches": draw(st.lists(batches_st, min_size=1, max_size=2)),
        "gpus": draw(st.lists(st.from_type(GPUSpec), min_size=1, max_size=2)),
        "engine": draw(st.from_type(EngineSpec)),
        "layout": layout,
        # pipeline stages hold whole layers: their figures are as exact as one GPU's; TP splits are not
        "whole_tensors": tp == 1,
    }


def _dyadic(x: Fraction, max_denominator: int) -> bool:
    d = x.denominator
    return d <= max_denominator and d & (d - 1) == 0


def exact_regime(spec: ModelSpec, engine: EngineSpec, whole_tensors: bool, exact: dict[str, Any]) -> bool:
    """True when every intermediate of the kernel is an exactly representable double.

    The non-integer factors are the allocator fraction and the MoE expert share;
    with power-of-two denominators whose product is `den`, every intermediate is
    a multiple of 1 / den no larger than 8 x the total (bits before bytes), so it
    is exact while 8 x total x den < 2**53.
    """
    reserve = Fraction(engine.allocator_reserve_fraction)
    if not whole_tensors or not _dyadic(reserve, 2**10):
        return False
    den = reserve.denominator
    if spec.n_moe_layers:
        share = Fraction(3 * spec.moe_intermediate_size * spec.experts_per_token,  # type: ignore[operator]
                         spec.num_experts)
        if not _dyadic(share, 2**8):
            return False
        den *= share.denominator
    return bool(8 * exact["total_bytes"] * den < 2**53)


def within(got: float, exact: Fraction, roundings: int) -> bool:
    """|got - exact| <= (k + 1) u |exact|: k rounded operations plus the final one."""
    return abs(Fraction(got) - exact) <= (roundings + 1) * U * abs(exact)


#: The figures of a pipeline that are not one stage's own: every stage's reasons, the smallest of the others.
COMBINED = ("reasons", "fits", "headroom_bytes", "max_concurrency", "kv_capacity_tokens", "gpu_bytes")


def assert_cell(got: dict[str, Any], exact: dict[str, Any], strict: bool) -> None:
    """Check one cell of kernel (or NumPy) results against the exact oracle.

    Under pipeline stages the breakdown is the binding stage's.  Outside the
    exact regime, two stages whose totals (or block counts) the doubles cannot
    tell apart may bind either way: the kernel's cell then holds the figures
    of one of those stages, with the pipeline's combined fields.
    """
    stages = exact.get("stages") or []
    try:
        _assert_one_cell(got, exact, strict)
    except AssertionError:
        if strict or len(stages) < 2:
            raise
        slack = (ROUNDINGS["total_bytes"] + 1) * U * max(abs(c["total_bytes"]) for c in stages) + 1
        ties = [c for c in stages if abs(c["total_bytes"] - exact["total_bytes"]) <= slack
                or abs(c["kv_blocks"] - exact["kv_blocks"]) <= 1]
        for cell in ties:
            try:
                _assert_one_cell(got, {**cell, **{f: exact[f] for f in COMBINED}}, strict)
                return
            except AssertionError:
                continue
        raise


def _assert_one_cell(got: dict[str, Any], exact: dict[str, Any], strict: bool) -> None:
    rounded = {k: v if v is None or isinstance(v, bool) else float(v) for k, v in exact.items() if k in FIELDS}
    # a floor of a rounded quotient may land one off an integer the exact quotient just misses
    concurrency = exact["max_concurrency"]
    k = 0 if strict else ROUNDINGS["total_bytes"]
    assert abs(Fraction(got["max_concurrency"]) - concurrency) <= 1 + (k + 1) * U * concurrency, \
        ("max_concurrency", got["max_concurrency"], rounded["max_concurrency"])
    if strict:
        differ = {f: (got[f], rounded[f]) for f in FIELDS if f != "max_concurrency" and got[f] != rounded[f]}
        assert not differ, differ
        return
    for field, k in ROUNDINGS.items():
        # byte counts are rounded up to whole bytes: where the exact value lies within float noise of an integer
        # (a fraction under 0.25 at 2**48 and up, vc_whole in common.h) the ceiling may land one byte either side
        # (the total sums two such ceilings: the activations' and the allocator slack made from them)
        byte = (2 if field == "total_bytes" else 1) if field.endswith("_bytes") else 0
        assert within(got[field], exact[field], k) or abs(Fraction(got[field]) - exact[field]) <= byte + \
            (k + 1) * U * abs(exact[field]), (field, got[field], rounded[field])
    assert got["gpu_bytes"] == rounded["gpu_bytes"]
    # headroom = gpu - total: the error of the total, plus its own rounding
    # plus two bytes: the total's whole-byte ceilings (activations, slack) may land either side of an exact value
    slack = (ROUNDINGS["total_bytes"] + 1) * U * exact["total_bytes"] + 2
    headroom = exact["headroom_bytes"]
    assert abs(Fraction(got["headroom_bytes"]) - headroom) <= slack + U * abs(headroom), \
        ("headroom_bytes", got["headroom_bytes"], rounded["headroom_bytes"])
    if abs(headroom) > slack:  # away from the boundary the verdicts agree
        assert got["fits"] == exact["fits"]


def oracle_cell(grid: dict[str, Any], i: int, j: int, k: int, b: int, gpu_bytes: int) -> dict[str, Any]:
    kv = get_dtype(grid["kv_dtype"]) if grid["kv_dtype"] is not None else None
    layout = grid["layout"]
    return reference_estimate_exact(grid["specs"][i], get_dtype(grid["dtypes"][j]), kv, grid["engine"],
                                    layout["n_gpus"], grid["contexts"][k], grid["batches"][b], gpu_bytes,
                                    tp=layout.get("tp"), pp=layout.get("pp"), details=True)


@settings(deadline=None)  # the exact oracle is slow on purpose
@given(grids())
def test_sweep_equals_oracle_cell_for_cell(grid: dict[str, Any]) -> None:
    s = vramcore.sweep(grid["specs"], grid["dtypes"], grid["contexts"], grid["batches"], grid["gpus"],
                       kv_dtype=grid["kv_dtype"], engine=grid["engine"], **grid["layout"])
    assert s.shape == (len(grid["specs"]), len(grid["dtypes"]), len(grid["contexts"]),
                       len(grid["batches"]), len(grid["gpus"]))
    strict_cells = 0
    for idx in np.ndindex(*s.shape):
        i, j, k, b, m = idx
        exact = oracle_cell(grid, i, j, k, b, grid["gpus"][m].usable_bytes)
        got = {f: getattr(s, f)[idx].item() for f in FIELDS}
        strict = exact_regime(grid["specs"][i], grid["engine"], grid["whole_tensors"], exact)
        strict_cells += strict
        note(f"cell {idx}: strict={strict}")
        assert_cell(got, exact, strict)
    event(f"bit-exact cells: {'all' if strict_cells == s.size else 'some' if strict_cells else 'none'}")


@settings(deadline=None)
@given(grids())
def test_numpy_broadcast_equals_scalar_oracle(grid: dict[str, Any]) -> None:
    layout = grid["layout"]
    assume(layout["n_gpus"] == layout.get("tp", 1))  # one pipeline stage: the broadcast's model
    dtypes = [get_dtype(d) for d in grid["dtypes"]]
    kv = get_dtype(grid["kv_dtype"]) if grid["kv_dtype"] is not None else None
    usable = [g.usable_bytes for g in grid["gpus"]]
    layout = grid["layout"]
    g = reference_grid_numpy(grid["specs"], dtypes, kv, grid["engine"], layout["n_gpus"],
                             grid["contexts"], grid["batches"], usable, tp=layout.get("tp"),
                             pp=layout.get("pp"))
    shape = (len(grid["specs"]), len(dtypes), len(grid["contexts"]), len(grid["batches"]), len(usable))
    assert {f: g[f].shape for f in FIELDS} == dict.fromkeys(FIELDS, shape)
    assert g["fits"].dtype == np.bool_
    for idx in np.ndindex(*shape):
        i, j, k, b, m = idx
        exact = oracle_cell(grid, i, j, k, b, usable[m])
        got = {f: g[f][idx].item() for f in FIELDS}
        assert_cell(got, exact, exact_regime(grid["specs"][i], grid["engine"], grid["whole_tensors"], exact))


@given(st.from_type(ModelSpec), st.sampled_from(DTYPES), st.integers(1, 2**16), st.integers(1, 16),
       st.sampled_from([0, -1]))
def test_fit_boundary_is_exact(spec: ModelSpec, dtype: str, context: int, batch: int, spare: int) -> None:
    """A GPU holding exactly the total fits with zero headroom; one byte less does not."""
    engine = get_engine("transformers").with_options(allocator_reserve_fraction=0.0)
    d = get_dtype(dtype)
    total = reference_estimate_exact(spec, d, None, engine, 1, context, batch, None)["total_bytes"]
    if total.denominator != 1 or total >= EXACT_LIMIT:  # int4 weights may end in half a byte
        event("boundary: total not a whole number of bytes")
        return
    memory = int(total) + spare
    if memory < 1:
        return
    card = GPUSpec(name="edge", vendor="test", memory_total_bytes=memory)
    e = vramcore.estimate(spec, dtype=dtype, context=context, batch=batch, gpu=card, engine=engine)
    r = reference_estimate(spec, d, None, engine, 1, context, batch, memory)
    assert e.fits is r["fits"] is (spare == 0)
    assert e.headroom_bytes == r["headroom_bytes"] == spare
    assert e.total_bytes == r["total_bytes"] == total


@pytest.mark.parametrize("n_gpus", [1, 2, 3])
def test_builtin_models_match(n_gpus: int) -> None:
    """Every built-in card and dtype at realistic sizes: integer parts bit for bit on one GPU."""
    engine = get_engine("transformers")
    names = vramcore.list_models()
    contexts, batches, gpus = [1, 4095, 4096, 4097, 131072], [1, 7], ["H100", "L4"]
    usable = [vramcore.get_gpu(g).usable_bytes for g in gpus]
    specs = [vramcore.get_model(n).spec for n in names]
    ok = [n for n, s in zip(names, specs, strict=True) if layout_ok(s, 1, n_gpus)]
    s = vramcore.sweep(ok, DTYPES, contexts, batches, gpus, engine=engine, n_gpus=n_gpus)
    for idx in np.ndindex(*s.shape):
        i, j, k, b, m = idx
        exact = reference_estimate_exact(s.specs[i], get_dtype(DTYPES[j]), None, engine, n_gpus, contexts[k],
                                         batches[b], usable[m])
        got = {f: getattr(s, f)[idx].item() for f in FIELDS}
        assert_cell(got, exact, False)
        if n_gpus == 1:
            for f in ("weights_bytes", "kv_cache_bytes", "activation_bytes"):
                assert got[f] == float(exact[f]), (s.models[i], DTYPES[j], f)


# ---------------------------------------------------------------------- invalid input
def _is_valid_count(x: Any) -> bool:
    return (not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)
            and float(x).is_integer() and 1 <= x <= 2**53)


bad_counts = (st.integers(max_value=0) | st.integers(min_value=2**53 + 1)
              | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.text(max_size=3)
              | st.none()).filter(lambda x: not _is_valid_count(x))
LLAMA_1B = "Llama-3.2-1B"  # 16 layers, 32 heads, 8 KV heads


@given(st.sampled_from(["context", "batch", "n_gpus"]), bad_counts)
def test_invalid_counts_raise_in_both(arg: str, bad: Any) -> None:
    spec = vramcore.get_model(LLAMA_1B).spec
    args = {"context": 4096, "batch": 1, "n_gpus": 1, arg: bad}
    with pytest.raises((TypeError, ValueError), match=arg) as api:
        vramcore.estimate(spec, context=args["context"], batch=args["batch"], n_gpus=args["n_gpus"],
                          gpu="H100")
    with pytest.raises((TypeError, ValueError), match=arg) as oracle:
        reference_estimate(spec, get_dtype("bf16"), None, get_engine("transformers"), args["n_gpus"],
                           args["context"], args["batch"], 2**30)
    assert oracle.type is api.type


@given(st.sampled_from(["contexts", "batches"]), bad_counts.filter(lambda x: not isinstance(x, bool)))
def test_invalid_axis_values_raise_in_both(axis: str, bad: Any) -> None:
    spec = vramcore.get_model(LLAMA_1B).spec
    axes: dict[str, Any] = {"contexts": 4096, "batches": 1, axis: [4096, bad]}
    singular = axis[:-2] if axis == "batches" else axis[:-1]
    with pytest.raises((TypeError, ValueError), match=singular):
        vramcore.sweep(spec, "bf16", axes["contexts"], axes["batches"], "H100")
    with pytest.raises((TypeError, ValueError), match=singular):
        reference_grid_numpy([spec], [get_dtype("bf16")], None, get_engine("transformers"), 1,
                             axes["contexts"], axes["batches"], [2**30])


SIX_HEAD_GROUPS = ModelSpec(num_layers=4, hidden_size=768, num_heads=12, num_kv_heads=4,
                            intermediate_size=2048, vocab_size=1000, name="twelve-heads")


@pytest.mark.parametrize(
    ("model", "layout", "match"),
    [
        (LLAMA_1B, {"tp": 3}, "tp=3 does not divide the 32 attention heads"),
        (SIX_HEAD_GROUPS, {"tp": 6}, "tp=6 and the 4 KV heads.* must divide one another"),
        (LLAMA_1B, {"pp": 17}, "pp=17 exceeds the 16 layers"),
        (LLAMA_1B, {"n_gpus": 3, "tp": 2}, r"n_gpus \(3\) must equal tp x pp \(2 x 1\)"),
        (LLAMA_1B, {"n_gpus": 17}, "pp=17 exceeds the 16 layers"),
    ],
)
def test_invalid_layouts_raise_in_both(model: str | ModelSpec, layout: dict[str, int], match: str) -> None:
    spec = model if isinstance(model, ModelSpec) else vramcore.get_model(model).spec
    with pytest.raises(ValueError, match=match):
        vramcore.estimate(spec, context=4096, **layout)
    n_gpus = layout.pop("n_gpus", 1)
    with pytest.raises(ValueError, match=match):
        reference_estimate(spec, get_dtype("bf16"), None, get_engine("transformers"), n_gpus, 4096, 1,
                           None, **layout)


@pytest.mark.parametrize("bad", [0, -(2**30)])
def test_gpu_without_memory_raises_in_both(bad: int) -> None:
    spec = vramcore.get_model(LLAMA_1B).spec
    with pytest.raises(ValueError, match="memory_total_bytes must be positive"):
        GPUSpec(name="x", vendor="x", memory_total_bytes=bad)
    with pytest.raises(ValueError, match="gpu_memory must be in"):
        vramcore.estimate(spec, context=1, gpu="H100", gpu_memory=bad)
    with pytest.raises(ValueError, match="gpu_bytes must be positive"):
        reference_estimate(spec, get_dtype("bf16"), None, get_engine("transformers"), 1, 1, 1, bad)


def test_oracle_rejects_wrong_types_and_other_engines() -> None:
    spec = vramcore.get_model(LLAMA_1B).spec
    engine = get_engine("transformers")
    bf16 = get_dtype("bf16")
    with pytest.raises(TypeError, match="dtype must be a DType"):
        reference_estimate(spec, "bf16", None, engine, 1, 1, 1, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="spec must be a ModelSpec"):
        reference_estimate(LLAMA_1B, bf16, None, engine, 1, 1, 1, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="engine must be an EngineSpec"):
        reference_estimate(spec, bf16, None, "transformers", 1, 1, 1, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sizes its KV cache from the GPU's memory"):
        reference_estimate(spec, bf16, None, get_engine("vllm"), 1, 1, 1, None)
    with pytest.raises(NotImplementedError, match="'transformers' engine kind only, got 'vllm'"):
        reference_grid_numpy([spec], [bf16], None, get_engine("vllm"), 1, 1, 1, [2**30])


GEMMA = "Gemma-2-9B"  # sliding window 4096


def test_oracle_rejects_negative_sliding_tokens() -> None:
    engine = get_engine("transformers").with_options(sliding_cap_offset=-5000)
    with pytest.raises(ValueError, match="negative token count"):
        reference_estimate(vramcore.get_model(GEMMA).spec, get_dtype("bf16"), None, engine, 1, 8192, 1, None)


def test_api_rejects_negative_sliding_tokens() -> None:
    engine = get_engine("transformers").with_options(sliding_cap_offset=-5000)
    with pytest.raises(ValueError, match="sliding"):
        vramcore.estimate(GEMMA, context=8192, engine=engine)


@pytest.mark.parametrize(("model", "tp"), [("DeepSeek-V3", 8), ("Llama-3.1-8B", 16), ("Qwen3-235B-A22B", 8)])
def test_tp_attention_split_matches_oracle(model: str, tp: int) -> None:
    spec = vramcore.get_model(model).spec
    e = vramcore.estimate(spec, context=4096, tp=tp)
    r = reference_estimate(spec, get_dtype("bf16"), None, get_engine("transformers"), tp, 4096, 1, None, tp=tp)
    assert e.weights_bytes == pytest.approx(r["weights_bytes"], rel=1e-12)


def test_oracle_rejects_bool_among_axis_values() -> None:
    spec = vramcore.get_model(LLAMA_1B).spec
    with pytest.raises(TypeError, match="contexts must be a positive integer, got True"):
        reference_grid_numpy([spec], [get_dtype("bf16")], None, get_engine("transformers"), 1, [4096, True], 1,
                             [2**30])


def test_api_rejects_bool_among_axis_values() -> None:
    with pytest.raises(TypeError, match="contexts"):
        vramcore.sweep(LLAMA_1B, "bf16", [4096, True], 1, "H100")
