"""Configurations per second of vramcore.sweep, beside the same formulas done other ways.

One run measures, on the same grid (models x dtypes x contexts x batches x GPUs,
transformers engine, one GPU per configuration):

- the compiled kernel through the public API, ``vramcore.sweep`` (validation,
  packing and allocation included), on 1 thread and on ``--threads`` threads;
- the same formulas as a NumPy float64 broadcast
  (``vramcore.grid.reference.reference_grid_numpy``), writing the same outputs;
- a plain Python loop of the scalar oracle (``reference_estimate``, exact
  arithmetic) over a random sample of cells, extrapolated per configuration;
- the floor: allocating and ``ndarray.fill``-ing the arrays the kernel writes
  (same shapes and dtypes), i.e. the cost of the output bytes alone.

Every figure is the best of ``--repeats`` runs timed with ``time.perf_counter``.
Nothing is asserted about times.

Usage::

    python benchmarks/bench_sweep.py            # about 10**7 configurations
    python benchmarks/bench_sweep.py --quick    # about 10**5, a few seconds (CI)
    python benchmarks/bench_sweep.py --threads 8 --json
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import vramcore
import vramcore.grid._kernel as _kernel
from vramcore.grid.reference import reference_estimate, reference_grid_numpy
from vramcore.grid.results import REASONS


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """Smallest wall time of `repeats` calls (the result of each call is dropped before the next)."""
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        del result
    return min(times)


#: Engines timed side by side: the inference kinds and the training engines (full, LoRA, QLoRA).
BENCH_ENGINES: tuple[str, ...] = ("transformers", "vllm", "llamacpp", "train", "lora", "qlora")


def _runs_under_every_engine(name: str) -> bool:
    """True when every engine of :data:`BENCH_ENGINES` estimates card `name` (training refuses hybrid models)."""
    try:
        for engine in BENCH_ENGINES:
            vramcore.estimate(name, context=128, gpu="H100", engine=engine)
    except ValueError:
        return False
    return True


def build_grid(quick: bool) -> dict[str, Any]:
    """Axes of the benchmark grid: built-in cards every engine runs, spread over the catalog; every dtype."""
    names = [n for n in vramcore.list_models() if _runs_under_every_engine(n)]
    n_models, n_ctx, n_batch, n_gpu = (5, 24, 12, 8) if quick else (10, 80, 72, 24)
    step = max(1, len(names) // n_models)
    specs = [vramcore.get_model(n).spec for n in names[::step][:n_models]]
    contexts = np.unique(np.geomspace(128, 2**20, n_ctx).astype(np.int64))
    batches = np.unique(np.geomspace(1, 512, 4 * n_batch).astype(np.int64))[:n_batch]
    gpus = [vramcore.get_gpu(g) for g in vramcore.list_gpus()[:n_gpu]]
    return {"specs": specs, "dtypes": vramcore.list_dtypes(), "contexts": contexts, "batches": batches,
            "gpus": gpus}


def warm(sweep: Callable[[], Any], threads: int, repeats: int) -> dict[str, float]:
    """Seconds of the kernel alone writing into outputs already touched, beside filling the same arrays.

    ``vramcore.sweep`` allocates its outputs anew, so the first write of every
    page is a page fault inside the kernel's time (and the cold floor's).  Here
    the kernel's own calls of one sweep are recorded and replayed into the
    same, now warm, arrays: what the formulas cost beyond the memory, and the
    thread scaling without the page faults.
    """
    calls: list[list[Any]] = []
    grid = _kernel.grid

    def record(*args: Any) -> None:
        calls.append(list(args))
        grid(*args)

    _kernel.grid = record
    try:
        sweep()
    finally:
        _kernel.grid = grid

    def replay(n: int) -> Callable[[], None]:
        def go() -> None:
            for c in calls:
                grid(*c[:15], n, *c[16:])
        return go

    # _kernel.grid's outputs by position, each with its field selection: out, out1 (not per GPU), out2 (plan
    # constants), out3 (per plan and GPU), out4 (not per batch); fits (with write_fits) and reasons
    pairs = ((11, 16), (18, 19), (20, 21), (24, 25), (26, 27))
    chosen = [c[i] for c in calls for i, k in pairs if isinstance(c[k], np.ndarray) and c[k].size]
    chosen += [c[12] for c in calls if c[17]] + [c[22] for c in calls if isinstance(c[22], np.ndarray)]
    written = list({id(a): a for a in chosen}.values())

    def fill() -> None:
        for a in written:
            a.fill(1)

    return {"kernel_1_thread": best_of(repeats, replay(1)),
            f"kernel_{threads}_threads": best_of(repeats, replay(threads)),
            "floor_fill": best_of(repeats, fill), "bytes": float(sum(a.nbytes for a in written))}


def run(quick: bool, threads: int, repeats: int, sample: int) -> dict[str, Any]:
    g = build_grid(quick)
    engine = vramcore.get_engine("transformers")
    dtypes = [vramcore.get_dtype(d) for d in g["dtypes"]]
    usable = [gpu.usable_bytes for gpu in g["gpus"]]
    shape = (len(g["specs"]), len(dtypes), g["contexts"].size, g["batches"].size, len(usable))
    cells = int(np.prod(shape))

    def kernel(n: int) -> Callable[[], Any]:
        return lambda: vramcore.sweep(g["specs"], g["dtypes"], g["contexts"], g["batches"], g["gpus"],
                                      engine=engine, n_threads=n, progress=False)

    def numpy_broadcast() -> dict[str, np.ndarray]:
        return reference_grid_numpy(g["specs"], dtypes, None, engine, 1, g["contexts"], g["batches"], usable)

    # what the kernel writes: every result array that is not a broadcast view
    s = kernel(1)()
    written = [(a.shape, a.dtype) for a in (getattr(s, f.name) for f in dataclasses.fields(s))
               if isinstance(a, np.ndarray) and a.shape == shape and 0 not in a.strides]
    ref = numpy_broadcast()
    max_rel = max(float(np.max(np.abs(ref[f] - getattr(s, f)) / np.maximum(np.abs(getattr(s, f)), 1.0)))
                  for f in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "total_bytes"))
    # the NumPy broadcast carries the kernel's formulas only: the verdicts set in Python (a format the engine
    # does not load, FP8 on a GPU without it) are left out of the comparison
    python_set = (s.reasons & ((1 << REASONS.index("format_not_runnable_on_engine"))
                               | (1 << REASONS.index("dtype_unsupported_on_gpu")))) != 0
    fits_agree = bool(np.array_equal(ref["fits"][~python_set], s.fits[~python_set]))
    del s, ref

    def floor() -> list[np.ndarray]:
        out = []
        for arr_shape, dtype in written:
            a = np.empty(arr_shape, dtype=dtype)
            a.fill(1)
            out.append(a)
        return out

    rng = random.Random(0)
    picks = [tuple(rng.randrange(n) for n in shape) for _ in range(sample)]

    def python_loop() -> None:
        for i, j, k, b, m in picks:
            reference_estimate(g["specs"][i], dtypes[j], None, engine, 1, int(g["contexts"][k]),
                               int(g["batches"][b]), usable[m])

    seconds = {
        "kernel_1_thread": best_of(repeats, kernel(1)),
        f"kernel_{threads}_threads": best_of(repeats, kernel(threads)),
        "numpy_broadcast": best_of(repeats, numpy_broadcast),
        "python_loop_per_config": best_of(repeats, python_loop) / sample,
        "floor_fill": best_of(repeats, floor),
    }
    w = warm(kernel(1), threads, repeats)
    k1, kn = seconds["kernel_1_thread"], seconds[f"kernel_{threads}_threads"]
    per_s = {name: (1.0 / t if name == "python_loop_per_config" else cells / t) for name, t in seconds.items()}
    return {
        "grid": {"models": [sp.name for sp in g["specs"]], "dtypes": g["dtypes"],
                 "contexts": int(g["contexts"].size), "batches": int(g["batches"].size),
                 "gpus": [gpu.name for gpu in g["gpus"]], "shape": list(shape), "engine": engine.name},
        "configs": cells,
        "output_bytes": int(sum(np.prod(sh) * np.dtype(dt).itemsize for sh, dt in written)),
        "output_arrays": len(written),
        "threads": threads,
        "openmp": bool(_kernel.OPENMP),
        "cpu_count": os.cpu_count(),
        "python_sample": sample,
        "repeats": repeats,
        "seconds": seconds,
        "configs_per_s": per_s,
        "ratios": {
            "kernel_over_floor": k1 / seconds["floor_fill"],
            "numpy_over_kernel": seconds["numpy_broadcast"] / k1,
            "python_over_kernel": seconds["python_loop_per_config"] / (k1 / cells),
            f"speedup_{threads}_threads": k1 / kn,
        },
        "warm": {**w, "kernel_over_floor": w["kernel_1_thread"] / w["floor_fill"],
                 f"speedup_{threads}_threads": w["kernel_1_thread"] / w[f"kernel_{threads}_threads"]},
        "numpy_vs_kernel_max_rel_diff": max_rel,
        "numpy_vs_kernel_fits_agree": fits_agree,
    }


#: Fields on demand timed beside the full sweep: a verdict only, and the total with its verdict.
FIELD_SETS: tuple[tuple[str, ...], ...] = (("fits",), ("total_bytes", "fits"))


def _one_thread_sweep(g: dict[str, Any], repeats: int, **options: Any) -> tuple[int, float]:
    """(cells, best seconds) of ``vramcore.sweep`` over grid `g` on one thread with `options`."""
    cells = len(g["specs"]) * len(g["dtypes"]) * g["contexts"].size * g["batches"].size * len(g["gpus"])
    t = best_of(repeats, lambda: vramcore.sweep(g["specs"], g["dtypes"], g["contexts"], g["batches"], g["gpus"],
                                                n_threads=1, progress=False, **options))
    return cells, t


def run_fields(quick: bool, repeats: int) -> dict[str, Any]:
    """The forward sweep writing only some fields (``fields=``), one thread, with the fill floor of those bytes."""
    g = build_grid(quick)
    out: dict[str, Any] = {}
    for chosen in FIELD_SETS:
        cells, t = _one_thread_sweep(g, repeats, fields=chosen)

        def floor(chosen: tuple[str, ...] = chosen, cells: int = cells) -> list[np.ndarray]:
            arrays = [np.empty(cells, dtype=np.bool_ if f == "fits" else np.float64) for f in chosen]
            for a in arrays:
                a.fill(1)
            return arrays

        f = best_of(repeats, floor)
        out["+".join(chosen)] = {"cells": cells, "seconds": t, "cells_per_s": cells / t, "floor_seconds": f,
                                 "over_floor": t / f}
    return out


def run_engines(quick: bool, repeats: int) -> dict[str, Any]:
    """The forward sweep of the same grid under each engine, on one thread (packing included)."""
    g = build_grid(quick)
    out: dict[str, Any] = {}
    for engine in BENCH_ENGINES:
        cells, t = _one_thread_sweep(g, repeats, engine=engine)
        out[engine] = {"cells": cells, "seconds": t, "cells_per_s": cells / t}
    return out


def run_inverse(quick: bool, repeats: int) -> dict[str, Any]:
    """Inverse questions (max_context, max_batch) per engine on one thread, beside the forward sweep."""
    g = build_grid(quick)
    n_fixed = 200 if quick else 20_000
    batches = np.arange(1, n_fixed + 1)
    contexts = np.arange(1, n_fixed + 1) * 64
    out: dict[str, Any] = {}
    for engine in BENCH_ENGINES:
        for name, fn, fixed in (("max_context", vramcore.max_context, batches),
                                ("max_batch", vramcore.max_batch, contexts)):
            cells = len(g["specs"]) * len(g["dtypes"]) * fixed.size * len(g["gpus"])
            t = best_of(repeats, lambda fn=fn, fixed=fixed, engine=engine: fn(
                g["specs"], g["dtypes"], fixed, g["gpus"], engine=engine, n_threads=1))
            out[f"{name}/{engine}"] = {"cells": cells, "seconds": t, "cells_per_s": cells / t}
    return out


def report(r: dict[str, Any]) -> str:
    t, ps, ratio = r["seconds"], r["configs_per_s"], r["ratios"]
    n = r["threads"]
    shape = " x ".join(map(str, r["grid"]["shape"]))
    rows = [
        ("kernel (vramcore.sweep), 1 thread", "kernel_1_thread", ""),
        (f"kernel (vramcore.sweep), {n} threads", f"kernel_{n}_threads", ""),
        ("NumPy broadcast, same formulas", "numpy_broadcast", ""),
        (f"Python loop ({r['python_sample']} sampled)", "python_loop_per_config", "  (extrapolated)"),
        ("floor: ndarray.fill of the outputs", "floor_fill", ""),
    ]
    lines = [
        f"grid {shape} (models x dtypes x contexts x batches x GPUs) = {r['configs']:,} configurations, "
        f"engine {r['grid']['engine']}; output {r['output_arrays']} arrays, {r['output_bytes'] / 2**20:,.0f} MiB",
        f"best of {r['repeats']}; OpenMP {'on' if r['openmp'] else 'off'}, {r['cpu_count']} CPUs",
        "",
        f"  {'method':<38}{'configs/s':>16}{'seconds':>12}",
    ]
    for label, key, note in rows:
        seconds = t[key] * (r["configs"] if key == "python_loop_per_config" else 1)
        lines.append(f"  {label:<38}{ps[key]:>16,.0f}{seconds:>12.4f}{note}")
    lines += [
        "",
        f"  kernel / floor (time, 1 thread)       {ratio['kernel_over_floor']:10.2f}x",
        f"  NumPy / kernel (time, 1 thread)       {ratio['numpy_over_kernel']:10.2f}x",
        f"  Python / kernel (time per config)     {ratio['python_over_kernel']:10,.0f}x",
        f"  {n}-thread speedup                      {ratio[f'speedup_{n}_threads']:10.2f}x",
        "",
        f"  warm outputs (the kernel's calls replayed into arrays already touched: no page faults), "
        f"{r['warm']['bytes'] / 2**20:,.0f} MiB",
        f"  kernel, 1 thread {r['warm']['kernel_1_thread']:.4f} s; {n} threads "
        f"{r['warm'][f'kernel_{n}_threads']:.4f} s ({r['warm'][f'speedup_{n}_threads']:.2f}x); "
        f"fill {r['warm']['floor_fill']:.4f} s; kernel / fill {r['warm']['kernel_over_floor']:.2f}x",
        "",
        f"  NumPy vs kernel: max relative difference {r['numpy_vs_kernel_max_rel_diff']:.1e}, "
        f"fits agree: {r['numpy_vs_kernel_fits_agree']}",
    ]
    if "fields" in r:
        lines += ["", "  fields on demand (sweep(..., fields=...)), 1 thread",
                  f"  {'fields':<38}{'configs/s':>16}{'seconds':>12}{'x floor':>10}"]
        for key, v in r["fields"].items():
            lines.append(f"  {key:<38}{v['cells_per_s']:>16,.0f}{v['seconds']:>12.4f}{v['over_floor']:>10.2f}")
    if "engines" in r:
        lines += ["", "  forward sweep per engine, 1 thread (vramcore.sweep, packing included)",
                  f"  {'engine':<38}{'configs/s':>16}{'seconds':>12}"]
        for key, v in r["engines"].items():
            lines.append(f"  {key:<38}{v['cells_per_s']:>16,.0f}{v['seconds']:>12.4f}")
    if "inverse" in r:
        lines += ["", "  inverse questions, 1 thread (closed form + exact check per cell)",
                  f"  {'question / engine':<38}{'cells/s':>16}{'seconds':>12}"]
        for key, v in r["inverse"].items():
            lines.append(f"  {key:<38}{v['cells_per_s']:>16,.0f}{v['seconds']:>12.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 10**5 configurations (CI)")
    parser.add_argument("--threads", type=int, default=2, help="threads of the multi-threaded kernel run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the best is kept")
    parser.add_argument("--sample", type=int, default=None, help="cells of the Python loop")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be >= 1")
    sample = args.sample or (200 if args.quick else 2000)
    result = run(args.quick, args.threads, args.repeats, sample)
    result["fields"] = run_fields(args.quick, args.repeats)
    result["engines"] = run_engines(args.quick, args.repeats)
    result["inverse"] = run_inverse(args.quick, args.repeats)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
