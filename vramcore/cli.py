"""The command line: a thin client of the public API.

``vramcore estimate MODEL --gpu G --context N --batch B --dtype D [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

EXAMPLES = """examples:
  vramcore estimate DeepSeek-R1-Distill-Llama-8B --gpu H100 --context 32k
  vramcore estimate path/to/config.json --dtype int4 --gpu RTX-4090 --context 8192 --json
  vramcore models
  vramcore gpus
"""

_SUFFIX = {"k": 1024, "m": 1024**2}


def parse_count(text: str) -> int:
    """Parse ``8192``, ``8k`` (8 x 1024) or ``1m`` (2**20); raise ValueError otherwise."""
    t = text.strip().lower().replace("_", "")
    mult = 1
    if t and t[-1] in _SUFFIX:
        mult, t = _SUFFIX[t[-1]], t[:-1]
    if not t.isdigit():
        raise ValueError(f"not a positive integer: {text!r}")
    return int(t) * mult


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vramcore", description="GPU memory for LLM configurations.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("estimate", help="memory of one configuration", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("model", help="built-in name, config.json path or folder")
    e.add_argument("--gpu", default=None, help="GPU name (see `vramcore gpus`)")
    e.add_argument("--n-gpus", default="1", help="GPUs the model is spread over")
    e.add_argument("--context", default="4096", help="tokens per sequence (e.g. 8192, 32k)")
    e.add_argument("--batch", default="1", help="concurrent sequences")
    e.add_argument("--dtype", default="bf16", help="weight dtype (fp32, fp16, bf16, fp8, int8, int4)")
    e.add_argument("--kv-dtype", default=None, help="KV-cache dtype (default: compute dtype)")
    e.add_argument("--engine", default="transformers", help="engine rules")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--check", action="store_true", help="exit 1 when it does not fit")
    sub.add_parser("models", help="list built-in models").add_argument("--json", action="store_true")
    sub.add_parser("gpus", help="list GPUs").add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 does not fit with --check, 2 bad usage)."""
    args = _parser().parse_args(argv)
    import vramcore

    try:
        if args.command == "estimate":
            counts = {}
            for flag in ("context", "batch", "n_gpus"):
                try:
                    counts[flag] = parse_count(getattr(args, flag))
                except ValueError as exc:
                    raise ValueError(f"--{flag.replace('_', '-')}: {exc}") from None
            est = vramcore.estimate(args.model, dtype=args.dtype, kv_dtype=args.kv_dtype,
                                    context=counts["context"], batch=counts["batch"], gpu=args.gpu,
                                    n_gpus=counts["n_gpus"], engine=args.engine)
            print(json.dumps(est.to_dict(), indent=2) if args.json else est)
            if args.check and est.fits is False:
                return 1
        elif args.command == "models":
            names = vramcore.list_models()
            print(json.dumps(names, indent=2) if args.json else "\n".join(names))
        elif args.command == "gpus":
            names = vramcore.list_gpus()
            print(json.dumps(names, indent=2) if args.json else "\n".join(names))
    except (ValueError, TypeError) as exc:
        print(f"vramcore: error: {exc}", file=sys.stderr)
        return 2
    return 0
