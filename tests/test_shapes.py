"""Each result field written once, at the shape it really has (issue #12 item 3).

A field that does not depend on an axis is a read-only broadcast view of one
smaller array: plan constants (weights, gradients, optimizer and master
states, trainable parameters) per (model, dtype, engine); under the engines
that do not size their cache from the GPU, every figure but the verdict per
(model, dtype, context, batch, engine); under budgeted engines alone, the
pool, profile and overhead per (model, dtype, GPU, engine).  The values are
those of the scalar path, cell for cell.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import vramcore
from vramcore.grid.record import reason_names
from vramcore.grid.run import GPU_FREE, PLAN_CONSTANTS, REQUEST_FREE

GRID = dict(models=["DeepSeek-R1-Distill-Llama-8B", "Gemma-3-27B"], dtypes=["bf16", "Q4_K_M"],
            contexts=[1024, 32768], batches=[1, 8], gpus=["H100", "RTX-4090", "L4"])


def _stride_free_axes(a: np.ndarray) -> tuple[int, ...]:
    return tuple(i for i, s in enumerate(a.strides) if s == 0 and a.shape[i] > 1)


def _cells_equal_estimates(s: vramcore.Sweep, engines: list[str], **layout: int) -> None:
    for (i, m), (j, d), (k, c), (b, n), (g, gpu) in itertools.product(
            *(enumerate(GRID[a]) for a in ("models", "dtypes", "contexts", "batches", "gpus"))):
        for e, engine in enumerate(engines):
            est = vramcore.estimate(m, dtype=d, context=c, batch=n, gpu=gpu, engine=engine, **layout)
            for name in (*GPU_FREE, *PLAN_CONSTANTS, "max_concurrency", "headroom_bytes"):
                assert getattr(s, name)[i, j, k, b, g, e] == getattr(est, name), (name, m, d, c, n, gpu, engine)
            assert bool(s.fits[i, j, k, b, g, e]) is est.fits


def test_unbudgeted_engines_write_gpu_free_fields_once() -> None:
    engines = ["transformers", "llamacpp", "lora"]
    s = vramcore.sweep(**GRID, engine=engines)
    for name in PLAN_CONSTANTS:
        a = getattr(s, name)
        assert _stride_free_axes(a) == (2, 3, 4) and not a.flags.writeable, name
    for name in GPU_FREE:
        assert _stride_free_axes(getattr(s, name)) == (4,), name
    # transformers' concurrency is the sequences each GPU's memory holds; the verdicts are per GPU
    for name in ("max_concurrency", "headroom_bytes", "reasons", "fits"):
        assert _stride_free_axes(getattr(s, name)) == (), name
    _cells_equal_estimates(s, engines)


def test_transformers_concurrency_once_per_context() -> None:
    """transformers' concurrency is the memory left after the constant part over one sequence's bytes: per
    (model, dtype, context, GPU), the same for every batch; written once there when every engine is
    transformers (and with pipeline stages, where the binding stage decides it, per cell)."""
    engines = ["transformers", vramcore.get_engine("transformers", allocator_reserve_fraction=0.1)]
    s = vramcore.sweep(**GRID, engine=engines)
    a = s.max_concurrency
    assert _stride_free_axes(a) == (3,) and not a.flags.writeable
    for name in ("headroom_bytes", "reasons", "fits"):
        assert _stride_free_axes(getattr(s, name)) == (), name
    _cells_equal_estimates(s, engines)
    # a chunk that starts inside a (model, dtype, context) run of batches writes the same figures
    many = vramcore.sweep("Qwen3-0.6B", "bf16", [512, 4096], list(range(1, 8001)), ["H100", "L4"] * 200)
    assert _stride_free_axes(many.max_concurrency) == (3,)      # 16,000 rows of 400 cells: two chunks
    for k, c in enumerate([512, 4096]):
        for g, gpu in enumerate(["H100", "L4"]):
            assert many.max_concurrency[0, 0, k, 0, g] == vramcore.estimate("Qwen3-0.6B", context=c, batch=8000,
                                                                             gpu=gpu).max_concurrency
    staged = vramcore.sweep(**GRID, engine=["transformers"], pp=2, tp=1, n_gpus=2)
    assert _stride_free_axes(staged.max_concurrency) == ()


def test_budgeted_engines_keep_every_figure_per_gpu() -> None:
    engines = ["llamacpp", "vllm"]
    s = vramcore.sweep(**GRID, engine=engines)
    for name in PLAN_CONSTANTS:
        assert _stride_free_axes(getattr(s, name)) == (2, 3, 4), name
    for name in GPU_FREE:
        assert _stride_free_axes(getattr(s, name)) == (), name     # the cache is what each GPU's budget holds
    _cells_equal_estimates(s, engines)


def test_budgeted_engines_alone_write_their_pools_once_per_gpu() -> None:
    # vLLM, SGLang and TensorRT-LLM cut each GPU the same for every request: the cache, profile peak, overhead
    # and total per (model, dtype, GPU, engine); what a request changes (headroom, concurrency, states, the
    # verdict) per cell
    engines = ["vllm", "sglang", "trtllm"]
    s = vramcore.sweep(**GRID, engine=engines)
    for name in REQUEST_FREE:
        a = getattr(s, name)
        assert _stride_free_axes(a) == (2, 3) and not a.flags.writeable, name
    for name in ("max_concurrency", "headroom_bytes", "state_bytes", "reasons", "fits"):
        assert _stride_free_axes(getattr(s, name)) == (), name
    _cells_equal_estimates(s, engines)
    mixed = vramcore.sweep(**GRID, engine=["vllm", "transformers"])     # vLLM's pools per cell there
    for name in REQUEST_FREE:
        assert np.array_equal(getattr(mixed, name)[..., 0], getattr(s, name)[..., 0]), name


@pytest.mark.parametrize("engine", ["transformers", "vllm"])
def test_pipeline_stages_move_the_binding_stage(engine: str) -> None:
    # with several stages the binding one may change with context, batch (and the GPU, under vLLM): the weights
    # are not a plan constant there
    s = vramcore.sweep(**GRID, engine=[engine], pp=2, tp=1, n_gpus=2)
    want = (4,) if engine == "transformers" else ()
    assert _stride_free_axes(s.weights_bytes) == want
    _cells_equal_estimates(s, [engine], pp=2, tp=1, n_gpus=2)


def test_broadcast_fields_export_whole(tmp_path: object) -> None:
    s = vramcore.sweep(**GRID, engine=["transformers"])
    df = s.to_pandas()
    assert len(df) == s.weights_bytes.size
    assert np.array_equal(df["weights_bytes"].to_numpy(), s.weights_bytes.reshape(-1))
    assert np.array_equal(df["kv_cache_bytes"].to_numpy(), s.kv_cache_bytes.reshape(-1))


@pytest.mark.parametrize("n_gpus", [7, 8, 9, 16, 19])
def test_gpu_free_verdicts_over_runs_of_gpus(n_gpus: int) -> None:
    """Each GPU's reasons and fits of a one-engine sweep (the kernel's contiguous run, eight GPUs a step and the
    tail one at a time) are the scalar path's: GPUs too small for the weights, for the total, and large enough."""
    gpus = [g for g in vramcore.list_gpus() if g != "H100"][:n_gpus - 1] + ["H100"]
    models, contexts, batches = ["Qwen3-14B", "Llama-3.1-70B-Instruct"], [1024, 131072], [1, 64]
    for engine in ("transformers", "llamacpp", "lora"):
        s = vramcore.sweep(models, "bf16", contexts, batches, gpus, engine=engine)
        bits = set()
        for (i, k, b, g), why in np.ndenumerate(s.reasons[:, 0]):
            est = vramcore.estimate(models[i], context=contexts[k], batch=batches[b], gpu=gpus[g], engine=engine)
            assert reason_names(int(why)) == est.reasons, (engine, i, k, b, gpus[g])
            assert bool(s.fits[i, 0, k, b, g]) is est.fits, (engine, i, k, b, gpus[g])
            bits.add(int(why) & 3)
        assert bits == {0, 2, 3}, bits     # fits; the total over; the weights and the total over
        verdict = vramcore.sweep(models, "bf16", contexts, batches, gpus, engine=engine, fields=("fits",))
        assert np.array_equal(verdict.fits, s.fits)        # the run without the reasons array
