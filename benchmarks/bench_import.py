"""Import time of ``vramcore`` against a bare interpreter, in fresh subprocesses, best of N.

    python benchmarks/bench_import.py            # best of 20
    python benchmarks/bench_import.py --quick    # best of 5 (CI: never rots)
    python benchmarks/bench_import.py --importtime   # also the slowest modules from -X importtime
    python benchmarks/bench_import.py --check    # exit 1 when `import vramcore` costs > --budget-ms

`import vramcore` must stay light: its public names load lazily, so neither
numpy nor the compiled kernel nor any optional extra (pandas, matplotlib,
dask, pyarrow, xarray, tqdm) is imported until used.  Budget: 50 ms over a
bare interpreter.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

HEAVY = ("numpy", "pandas", "matplotlib", "dask", "distributed", "pyarrow", "xarray", "tqdm")

CASES = {
    "bare interpreter": "pass",
    "import vramcore": "import vramcore",
    "import vramcore.cli": "import vramcore.cli",
}


def best_of(code: str, n: int) -> float:
    """Best wall time (seconds) of `n` runs of ``python -c code`` in a fresh process."""
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def heavy_modules_loaded(code: str) -> list[str]:
    """Heavy modules present in sys.modules after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return out.split()


def importtime(code: str, top: int) -> list[tuple[int, str]]:
    """The `top` modules by cumulative import time (microseconds) under ``-X importtime``."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True, capture_output=True,
                         text=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = (p.strip() for p in line.split(":", 1)[1].split("|"))
        rows.append((int(cumulative_us), name))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="best of 5 instead of 20")
    parser.add_argument("-n", type=int, default=None, help="runs per case")
    parser.add_argument("--importtime", action="store_true", help="show the slowest modules (-X importtime)")
    parser.add_argument("--budget-ms", type=float, default=50.0, help="allowed cost over bare (ms)")
    parser.add_argument("--check", action="store_true", help="exit 1 when over budget or a heavy module loads")
    args = parser.parse_args(argv)
    n = args.n or (5 if args.quick else 20)

    times = {name: best_of(code, n) for name, code in CASES.items()}
    bare = times["bare interpreter"]
    print(f"python {sys.version.split()[0]}, best of {n} fresh processes")
    print(f"{'case':<22}{'wall ms':>10}{'over bare ms':>15}")
    for name, t in times.items():
        print(f"{name:<22}{t * 1e3:>10.1f}{(t - bare) * 1e3:>15.1f}")
    over_ms = (times["import vramcore"] - bare) * 1e3
    heavy = heavy_modules_loaded("import vramcore")
    print(f"heavy modules after `import vramcore`: {', '.join(heavy) if heavy else 'none'}")
    ok = over_ms <= args.budget_ms and not heavy
    print(f"import vramcore costs {over_ms:.1f} ms over bare (budget {args.budget_ms:.0f} ms): "
          f"{'ok' if ok else 'OVER'}")
    if args.importtime:
        print("\nslowest modules under -X importtime (cumulative us):")
        for us, name in importtime("import vramcore", 10):
            print(f"  {us:>8}  {name}")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
