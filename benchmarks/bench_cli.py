"""Wall time of one ``vramcore estimate`` process, start to exit, beside other command-line estimators.

    python benchmarks/bench_cli.py                  # 25 runs each
    python benchmarks/bench_cli.py --quick          # 5 runs (CI: never rots)
    python benchmarks/bench_cli.py --peer 'vramcalc=/path/to/venv/bin/vramcalc ...'   # a peer, same machine

Each command runs as a fresh process (``subprocess.run``, output discarded); the figures are the median and
the minimum wall time over ``--runs`` runs, commands interleaved run by run so that the machine's noise falls
on all of them alike.  A peer is any command line, given as ``NAME=COMMAND``; none is a dependency.  The
vramcore command is the README's main job, run through the ``vramcore`` console script beside this interpreter
(what users type; ``python -m vramcore`` where there is none); ``--check`` fails (exit 1) when it imports
numpy.  Whether it imports typing (~5 ms of start-up) is reported too.  Nothing is asserted about times.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARGS = ["estimate", "DeepSeek-R1-Distill-Llama-8B", "--gpu", "H100", "--context", "32k"]
# the console script users type (pip's entry point beside this interpreter), as peers' are timed; else -m
SCRIPT = Path(sys.executable).with_name("vramcore")
ESTIMATE = [str(SCRIPT), *ARGS] if SCRIPT.is_file() else [sys.executable, "-m", "vramcore", *ARGS]
BARE = [sys.executable, "-c", "pass"]


def imported(modules: tuple[str, ...]) -> dict[str, bool]:
    """Whether the estimate command imports each of `modules` (``-X importtime`` lists what it imports)."""
    target = [str(SCRIPT)] if SCRIPT.is_file() else ["-m", "vramcore"]
    err = subprocess.run([sys.executable, "-X", "importtime", *target, *ARGS], capture_output=True, text=True,
                         check=True).stderr
    names = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines()}
    return {m: m in names for m in modules}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 runs (CI)")
    parser.add_argument("--runs", type=int, default=25, help="runs per command (default 25)")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=COMMAND",
                        help="another estimator's command line, timed the same way")
    parser.add_argument("--check", action="store_true", help="exit 1 when `vramcore estimate` imports numpy")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else args.runs
    commands = {"bare interpreter": BARE, "vramcore estimate": ESTIMATE}
    for peer in args.peer:
        name, sep, cmd = peer.partition("=")
        if not sep or not cmd:
            parser.error(f"--peer: expected NAME=COMMAND, got {peer!r}")
        commands[name] = shlex.split(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times[name].append(time.perf_counter() - start)
    heavy = imported(("numpy", "typing"))
    numpy = heavy["numpy"]
    result = {"runs": runs, "vramcore_estimate_imports_numpy": numpy,
              "vramcore_estimate_imports_typing": heavy["typing"],
              "commands": {name: {"argv": commands[name], "median_ms": statistics.median(t) * 1e3,
                                  "min_ms": min(t) * 1e3} for name, t in times.items()}}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"process wall time, {runs} runs each (interleaved): median and min")
        for name, v in result["commands"].items():
            print(f"  {name:<28}{v['median_ms']:>9.1f} ms{v['min_ms']:>9.1f} ms")
        print(f"  vramcore estimate imports numpy: {numpy}; typing: {heavy['typing']}")
    return 1 if args.check and numpy else 0


if __name__ == "__main__":
    sys.exit(main())
