"""Per-call cost of one estimate, the way tools that ``import vramcore`` use it, beside a pure-Python anchor.

One run times, on the same configurations (DeepSeek-R1-Distill-Llama-8B, contexts cycling over 64 values,
an H100, the transformers engine unless ``--engine``):

- ``vramcore.estimate`` by name (model, GPU and engine as strings);
- ``vramcore.estimate`` with resolved objects (a ModelSpec, a GPUSpec, an EngineSpec);
- a bound :class:`vramcore.Estimator` (model, dtype and engine fixed), called with (context, batch, gpu);
- the anchor: the pure-Python oracle, ``vramcore.grid.reference.reference_estimate`` (exact arithmetic over
  the same rules), per configuration.

Each figure is the median and the range over ``--repeats`` runs of ``--calls`` calls (``time.perf_counter``),
so the spread of the shared machine shows.  Nothing is asserted about times.

Usage::

    python benchmarks/bench_scalar.py            # 5 runs of 20,000 calls
    python benchmarks/bench_scalar.py --quick    # a few thousand calls (CI: never rots)
    python benchmarks/bench_scalar.py --engine vllm --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import vramcore
from vramcore.grid.reference import reference_estimate

MODEL = "DeepSeek-R1-Distill-Llama-8B"
CONTEXTS = [1024 * (k + 1) for k in range(64)]


def per_call(fn: Callable[[int], Any], calls: int, repeats: int) -> dict[str, float]:
    """Microseconds per call: median, min and max over `repeats` runs of `calls` calls."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(calls):
            fn(CONTEXTS[i & 63])
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return {"median_us": statistics.median(runs), "min_us": min(runs), "max_us": max(runs)}


def run(engine: str, calls: int, repeats: int) -> dict[str, Any]:
    spec = vramcore.get_model(MODEL).spec
    gpu = vramcore.get_gpu("H100")
    eng = vramcore.get_engine(engine)
    est = vramcore.Estimator(MODEL, engine=engine)
    dtype = vramcore.get_dtype("bf16")
    check = est(8192, 1, "H100")
    assert check == vramcore.estimate(MODEL, context=8192, gpu="H100", engine=engine)
    cases: dict[str, Callable[[int], Any]] = {
        "estimate by name": lambda c: vramcore.estimate(MODEL, context=c, gpu="H100", engine=engine),
        "estimate with objects": lambda c: vramcore.estimate(spec, context=c, gpu=gpu, engine=eng),
        "bound Estimator": lambda c: est(c, 1, "H100"),
        "pure-Python oracle (anchor)": lambda c: reference_estimate(spec, dtype, None, eng, 1, c, 1,
                                                                    gpu.usable_bytes, gpu_name=gpu.name),
    }
    out: dict[str, Any] = {"model": MODEL, "engine": engine, "calls": calls, "repeats": repeats, "cases": {}}
    for name, fn in cases.items():
        n = max(1, calls // 50) if "oracle" in name else calls
        out["cases"][name] = {**per_call(fn, n, repeats), "calls": n}
    anchor = out["cases"]["pure-Python oracle (anchor)"]["median_us"]
    for v in out["cases"].values():
        v["configs_per_s"] = 1e6 / v["median_us"]
        v["anchor_over_this"] = anchor / v["median_us"]
    return out


def report(r: dict[str, Any]) -> str:
    lines = [f"one estimate of {r['model']} under {r['engine']}: microseconds per call, median [min - max] of "
             f"{r['repeats']} runs", "",
             f"  {'path':<32}{'median us':>11}{'range us':>18}{'configs/s':>13}{'anchor / this':>15}"]
    for name, v in r["cases"].items():
        rng = f"{v['min_us']:.2f} - {v['max_us']:.2f}"
        lines.append(f"  {name:<32}{v['median_us']:>11.2f}{rng:>18}{v['configs_per_s']:>13,.0f}"
                     f"{v['anchor_over_this']:>14.0f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few calls (CI)")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure")
    parser.add_argument("--engine", default="transformers", help="engine (default transformers)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    calls, repeats = (2000, 3) if args.quick else (args.calls, args.repeats)
    if calls < 1 or repeats < 1:
        parser.error("--calls and --repeats must be >= 1")
    result = run(args.engine, calls, repeats)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
