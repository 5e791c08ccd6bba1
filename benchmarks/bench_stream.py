"""A grid to a Parquet file: in memory then written (sweep + to_parquet) against streamed part by part (sweep_to).

Reports, for each way, the wall time (best and spread of the repeats) and the
peak of the memory numpy and Python allocate (tracemalloc, which numpy reports
its arrays to), side by side in one run.  Nothing here is asserted: the
figures are for the README.

    python benchmarks/bench_stream.py            # 3.84 M cells, 3 repeats
    python benchmarks/bench_stream.py --quick    # 98 k cells (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import vramcore


def grid(quick: bool) -> tuple[Any, ...]:
    """Return the sweep's positional arguments: 2 models x 3 dtypes x contexts x batches x 2 GPUs."""
    n = 128 if quick else 800
    return (["Qwen3-8B", "Llama-3.1-8B"], ["bf16", "fp8", "int4"], np.arange(1, n + 1) * 512,
            np.arange(1, n // 2 + 1), ["H100", "L4"])


def measure(write: Callable[[str], None], repeats: int) -> dict[str, float]:
    """Return the best and worst wall seconds and the largest traced peak (MiB) of `write` to a fresh file."""
    times, peaks = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "grid.parquet")
            tracemalloc.start()
            t0 = time.perf_counter()
            write(path)
            times.append(time.perf_counter() - t0)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
    return {"best_s": min(times), "worst_s": max(times), "median_s": statistics.median(times), "peak_mib": max(peaks)}


def main() -> None:
    """Run both ways side by side and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small grid (CI)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per way")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        print("bench_stream: pyarrow is not installed; nothing to measure")
        return
    g = grid(args.quick)
    cells = vramcore.sweep(*g, fields=("fits",)).size
    chunk = 2**18 if args.quick else 2**20
    with tempfile.TemporaryDirectory() as folder:   # warm: pyarrow and the kernel loaded before either is timed
        vramcore.sweep_to(os.path.join(folder, "warm.parquet"), "Qwen3-8B")
    figures = {
        "cells": cells,
        "in_memory": measure(lambda p: vramcore.sweep(*g).to_parquet(p), args.repeats),
        "streamed": measure(lambda p: vramcore.sweep_to(p, *g, chunk_cells=chunk), args.repeats),
        "chunk_cells": chunk,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{cells:,} cells to Parquet, every field ({args.repeats} runs each, side by side)")
    for way in ("in_memory", "streamed"):
        f = figures[way]
        print(f"  {way:<10} best {f['best_s']:.2f} s (median {f['median_s']:.2f}, worst {f['worst_s']:.2f}), "
              f"peak traced memory {f['peak_mib']:,.0f} MiB")
    ratio = figures["in_memory"]["peak_mib"] / max(figures["streamed"]["peak_mib"], 1e-9)
    print(f"  streamed parts of {chunk:,} cells hold {ratio:.1f}x less memory at their peak")


if __name__ == "__main__":
    main()
