"""The command line: a thin client of the public API.

Subcommands: ``estimate`` (one configuration), ``sweep`` (a grid, to a table
or a .csv / .parquet / .json file), ``models`` and ``gpus`` (the catalogs,
filterable), ``card`` (one model card), ``plot estimate`` / ``plot sweep``
(pictures).  Every subcommand takes ``--json``.  Exit codes: 0 ok, 1 the
configuration does not fit (``estimate --check``), 2 bad usage (the message
names the flag and the value), 130 interrupted (Ctrl-C; no partial output).

Counts (tokens, sequences) are ``8192``, ``8k`` (8 x 1024) or ``1m``
(2**20); grid flags take comma lists and ranges: ``START:STOP`` (step 1),
``START:STOP:STEP`` (arithmetic) or ``START:STOP:xFACTOR`` (geometric), e.g.
``--context 1k:128k:x2``.  Sizes need a unit: ``GiB`` (2**30 bytes) or
``GB`` (10**9 bytes), also MiB/MB/TiB/TB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence

from vramcore._errors import VramcoreWarning
from vramcore._units import is_size, parse_count, parse_counts, parse_size

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["main", "parse_count"]

EXAMPLES = """examples:
  vramcore estimate DeepSeek-R1-Distill-Llama-8B --gpu H100 --context 32k
  vramcore estimate path/to/config.json --dtype int4 --gpu RTX-4090 --context 8192 --json
  vramcore estimate Qwen3-8B --gpu 24GiB --context 16k --batch 4 --check
  vramcore sweep DeepSeek-R1-Distill-Llama-8B,Qwen3-8B --dtype bf16,int4 --context 4k,8k,32k,128k \\
      --batch 1:64:x2 --gpu H100,L4 -o grid.parquet
  vramcore fit context DeepSeek-R1-Distill-Llama-8B --dtype bf16,int4 --batch 1,8,32 --gpu H100,RTX-4090
  vramcore fit gpus Llama-3.1-70B --context 8k,128k --gpu H100 --engine vllm
  vramcore models --company meta
  vramcore gpus --min-memory 40GiB
  vramcore card DeepSeek-R1-Distill-Llama-8B
  vramcore plot sweep Qwen3-8B --context 1k:128k:x2 --batch 1:64:x2 --gpu H100,L4 --value fits -o fits.png

counts: 8192, 8k (8 x 1024), 1m (2**20); lists 4k,8k,32k; ranges START:STOP (step 1),
START:STOP:STEP (arithmetic), START:STOP:xFACTOR (geometric), e.g. 1k:128k:x2.
sizes: a number and a unit, GiB (2**30 bytes) or GB (10**9 bytes), also MiB, MB, TiB, TB.
exit codes: 0 ok, 1 does not fit (with --check), 2 bad usage, 130 interrupted.
"""

_COUNT_HELP = "e.g. 8192, 32k"
_LIST_HELP = "comma list or range, e.g. 4k,8k,32k or 1k:128k:x2 or 1:8"


class UsageError(ValueError):
    """A command-line value that cannot be used; the message names the flag and the value."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _count(flag: str, text: str) -> int:
    try:
        return parse_count(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _counts(flag: str, text: str) -> list[int]:
    try:
        return parse_counts(text)
    except ValueError as exc:
        raise UsageError(f"{flag} {text!r}: {exc}") from None


def _size(flag: str, text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _split(text: str) -> list[str]:
    return [t for t in (s.strip() for s in text.split(",")) if t]


def _gpu(text: str) -> Any:
    """Return a GPU name as is, or a custom GPU for a size (``24GiB`` of usable memory)."""
    if is_size(text):
        from vramcore.hardware.gpus import GPUSpec

        return GPUSpec(name=text.strip(), vendor="custom", memory_total_bytes=_size("--gpu", text),
                       source="command line")
    return text


def _gpu_memory(text: str | None) -> str | int:
    if text is None:
        return "usable"
    if text in ("usable", "cuda_visible", "total"):
        return text
    if is_size(text):
        return _size("--gpu-memory", text)
    raise UsageError(f"--gpu-memory: expected usable, cuda_visible, total or a size such as 24GiB, got {text!r}")


def _optional_count(args: argparse.Namespace, name: str) -> int | None:
    value = getattr(args, name)
    return None if value is None else _count(_flag(name), value)


def _add_config_args(p: argparse.ArgumentParser, grid: bool) -> None:
    """Add the flags estimate, sweep and plot share; with ``grid`` they take comma lists and ranges."""
    many = f"; {_LIST_HELP}" if grid else f" ({_COUNT_HELP})"
    p.add_argument("--dtype", default=None, help="weight dtype or format (fp32, fp16, bf16, fp8, int8, int4, "
                   "gptq-int4-g128, Q4_K_M, ...; default auto: the model's own format, else bf16, as in the API)"
                   + ("; comma list" if grid else ""))
    p.add_argument("--kv-dtype", default=None, help="KV-cache dtype (default: the compute dtype)")
    p.add_argument("--context", default="4096", help="tokens per sequence" + many)
    p.add_argument("--batch", default="1", help="concurrent sequences" + many)
    p.add_argument("--gpu", default="H100" if grid else None,
                   help="GPU name (see `vramcore gpus`) or a size for a custom GPU, e.g. 24GiB or 80GB"
                   + ("; comma list" if grid else ""))
    p.add_argument("--gpu-memory", default=None, metavar="WHICH|SIZE",
                   help="per-GPU memory to check against: usable (default: CUDA-visible where known, else the "
                        "nvidia-smi total), cuda_visible, total, or a size such as 24GiB")
    p.add_argument("--n-gpus", default="1", help="GPUs the model is spread over (figures are per GPU)")
    p.add_argument("--tp", default=None, help="tensor-parallel degree")
    p.add_argument("--pp", default=None, help="pipeline-parallel degree")
    p.add_argument("--engine", default="transformers",
                   help="engine rules (transformers, vllm, sglang, trtllm, llamacpp; train, lora, qlora)"
                   + ("; a comma list adds an engine axis" if grid else ""))
    p.add_argument("--train", default=None, metavar="METHOD",
                   help="a training step instead of inference: full, lora or qlora (context = sequence length, "
                        "batch = micro-batch per GPU)" + ("; a comma list adds an engine axis" if grid else ""))
    knobs = p.add_argument_group("engine knobs, spelled as the engines spell them (default: the engine's own)")
    for flags, (_, kind, help_) in _KNOB_FLAGS.items():
        if kind == "flag":
            knobs.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif kind == "switch":
            knobs.add_argument(*flags, action="store_true", default=None, help=help_)
        else:
            knobs.add_argument(*flags, default=None, metavar=kind.upper(), help=help_)


#: Engine knob flags: option strings -> (EngineSpec knob, value kind, help).
_KNOB_FLAGS: dict[tuple[str, ...], tuple[str, str, str]] = {
    ("--gpu-memory-utilization",): ("gpu_memory_utilization", "fraction", "vLLM: share of GPU memory (0.9)"),
    ("--max-model-len",): ("max_model_len", "count", "vLLM: longest sequence (default: the model's context)"),
    ("--block-size",): ("block_size", "count", "vLLM: tokens per KV block (16)"),
    ("--max-num-seqs",): ("max_num_seqs", "count", "vLLM / SGLang: running requests"),
    ("--max-num-batched-tokens",): ("max_num_batched_tokens", "count", "vLLM: tokens per step / profile"),
    ("--kv-cache-dtype",): ("kv_cache_dtype", "type", "vLLM / SGLang / TensorRT-LLM KV type (fp8, fp8_e5m2, "
                                                      "int8, nvfp4 ...)"),
    ("--enforce-eager",): ("enforce_eager", "switch", "vLLM: no CUDA graphs"),
    ("--mem-fraction-static",): ("mem_fraction_static", "fraction", "SGLang: static memory share"),
    ("--free-gpu-memory-fraction",): ("free_gpu_memory_fraction", "fraction", "TensorRT-LLM: KV share of free"),
    ("--tokens-per-block",): ("tokens_per_block", "count", "TensorRT-LLM: tokens per KV block (32)"),
    ("--n-gpu-layers", "-ngl"): ("n_gpu_layers", "layers", "llama.cpp: layers offloaded (-1: all)"),
    ("--cache-type-k", "-ctk"): ("cache_type_k", "type", "llama.cpp: K cache type (f16, q8_0, q4_0 ...)"),
    ("--cache-type-v", "-ctv"): ("cache_type_v", "type", "llama.cpp: V cache type (needs --flash-attn "
                                                         "when quantized)"),
    ("--flash-attn", "-fa"): ("flash_attn", "flag", "llama.cpp: flash attention (on by default)"),
    ("--ubatch-size", "-ub"): ("n_ubatch", "count", "llama.cpp: physical batch (512)"),
    # training (--train full|lora|qlora), named as peft / transformers / DeepSpeed name them
    ("--lora-rank", "-r"): ("lora_rank", "count", "training: LoRA rank (16)"),
    ("--lora-targets",): ("lora_targets", "list", "training: all-linear (default) or module names, comma list"),
    ("--optimizer", "--optim"): ("optimizer", "type", "training: adamw (default), adam, sgd, adafactor, lion, "
                                                      "adamw_8bit, paged_adamw_8bit, lion_8bit, muon"),
    ("--momentum",): ("momentum", "fraction", "training: SGD momentum (0: no state)"),
    ("--precision",): ("precision", "type", "training: bf16-mixed (default), fp16-mixed, bf16, fp16, fp32"),
    ("--grad-accum-fp32",): ("grad_accum_fp32", "switch", "training: accumulate gradients in fp32"),
    ("--recompute",): ("recompute", "type", "training: none (default), selective, full"),
    ("--gradient-checkpointing",): ("gradient_checkpointing", "switch", "training: the same as --recompute full"),
    ("--attention", "--attn-implementation"): ("attention", "type",
                                              "transformers / training: auto (default; sdpa, or eager for Gemma-2 and "
                                              "gpt-oss), sdpa, flash, eager"),
    ("--zero",): ("zero", "stage", "training: DeepSpeed ZeRO stage 0-3"),
    ("--fsdp",): ("fsdp", "type", "training: FSDP sharding (full_shard = ZeRO-3, shard_grad_op = 2, no_shard)"),
    ("--dp",): ("dp", "count", "training: data-parallel degree ZeRO / FSDP shards over"),
    ("--offload-optimizer",): ("offload_optimizer", "switch", "training: optimizer states on the host (ZeRO >= 1)"),
    ("--offload-params",): ("offload_params", "switch", "training: ZeRO-3 parameters on the host"),
}


def _engine_arg(args: argparse.Namespace) -> Any:
    """Return the --engine value with the knob flags applied: an EngineSpec, or a list for a comma list."""
    import vramcore

    names = _split(args.engine)
    if not names:
        from vramcore.engines import list_engines

        raise UsageError(f"--engine: expected an engine name ({', '.join(list_engines())}) or a comma list, "
                         f"got {args.engine!r}")
    knobs: dict[str, Any] = {}
    for flags, (knob, kind, _) in _KNOB_FLAGS.items():
        value = getattr(args, flags[0].lstrip("-").replace("-", "_"))
        if value is None:
            continue
        if kind == "fraction":
            try:
                value = float(value)
            except ValueError:
                raise UsageError(f"{flags[0]}: expected a number such as 0.9, got {value!r}") from None
        elif kind == "count":
            value = _count(flags[0], value)
        elif kind == "layers":
            value = -1 if value.strip() == "-1" else _count(flags[0], value)
        elif kind == "stage":
            if value.strip() not in ("0", "1", "2", "3"):
                raise UsageError(f"{flags[0]}: expected a ZeRO stage 0, 1, 2 or 3, got {value!r}")
            value = int(value)
        elif kind == "list":
            items = _split(value)
            value = items[0] if items == ["all-linear"] else items
            if not value:
                raise UsageError(f"{flags[0]}: expected all-linear or module names, got {args.lora_targets!r}")
        knobs[knob] = value
    if args.train is not None:
        if args.engine != "transformers":
            raise UsageError("--train and --engine both name the engine: give one (--train full,lora,qlora is "
                             "the training engines' axis)")
        methods = _split(args.train)
        bad = [m for m in methods if m not in ("full", "lora", "qlora")]
        if bad or not methods:
            raise UsageError(f"--train: expected full, lora or qlora (a comma list for an axis), got {args.train!r}")
        names = ["train" if m == "full" else m for m in methods]
    engines = [vramcore.get_engine(n, **knobs) for n in names] if knobs else names
    return engines if len(engines) > 1 else engines[0]


def _formatter(prog: str) -> argparse.HelpFormatter:
    """Argparse's formatter with the terminal width from os (argparse's own default imports shutil: ~5 ms)."""
    try:
        width = os.get_terminal_size().columns - 2
    except OSError:
        width = 78
    return argparse.RawDescriptionHelpFormatter(prog, width=max(40, width))


def _sub(sub: Any, name: str, help: str, epilog: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help, epilog=epilog,
                          formatter_class=_formatter)


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser; with `only`, that command alone (argparse is slow to build: ~0.3 ms a parser)."""

    def want(name: str) -> bool:
        return only is None or only == name

    p = argparse.ArgumentParser(prog="vramcore", description="GPU memory for LLM configurations: does it fit?",
                                epilog=EXAMPLES, formatter_class=_formatter)
    from vramcore import __version__

    p.add_argument("--version", action="version", version=f"vramcore {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    if want("estimate"):
        e = _sub(sub, "estimate", "memory of one configuration: parts, total, GPU memory, fit and headroom",
                 "examples:\n  vramcore estimate DeepSeek-R1-Distill-Llama-8B --gpu H100 --context 32k\n"
                 "  vramcore estimate Qwen3-8B --dtype int4 --gpu 24GiB --context 16k --batch 4 --check\n"
                 "  vramcore estimate path/to/checkpoint --gpu L4 --json\n"
                 "  vramcore estimate Qwen/Qwen3-8B-AWQ --gpu L4   # a Hugging Face id: the HF cache, else the Hub\n")
        e.add_argument("model", help="built-in name, config.json path, checkpoint folder, or Hugging Face id "
                                     "org/name[@revision] (read from the HF cache, else the Hub with vramcore[hub])")
        _add_config_args(e, grid=False)
        e.add_argument("--json", action="store_true", help="print JSON (bytes as numbers)")
        e.add_argument("--check", action="store_true", help="exit 1 when it does not fit (needs --gpu)")
        e.add_argument("--ctx-size", "-c", default=None, metavar="N",
                       help="llama.cpp -c: the cache cells all sequences share (n_ctx); each of --parallel sequences "
                            "gets N / parallel tokens (instead of --context)")
        e.add_argument("--parallel", "-np", default=None, metavar="N",
                       help="llama.cpp -np: sequences sharing --ctx-size (the same as --batch)")
        e.add_argument("--images", default="0", metavar="N",
                       help="images in each sequence (a multimodal model): their tokens add to --context")
        e.add_argument("--image-size", default=None, metavar="WxH",
                       help="image width x height in pixels (default 1024x1024; Gemma-3 ignores it)")

    if want("sweep"):
        s = _sub(sub, "sweep", "a grid of configurations, as a table or to a .csv / .parquet / .json file",
                 "examples:\n  vramcore sweep Qwen3-8B --context 4k,8k,32k,128k --batch 1:64:x2 --gpu H100,L4\n"
                 "  vramcore sweep Qwen3-8B,Llama-3.1-8B --dtype bf16,fp8,int4 --context 1k:128k:x2 -o grid.parquet\n"
                 "  vramcore sweep Qwen3-8B --engine transformers,vllm --gpu H100 --json\n\n"
                 "The file format follows the -o extension: .csv, .parquet (needs pyarrow) or .json (records);\n"
                 "files hold every result field in bytes; the table on stdout shows GiB (2**30 bytes).\n")
        s.add_argument("models", nargs="+", metavar="MODEL", help="built-in names, config.json paths, folders or "
                       "Hugging Face ids org/name (several, or a comma list)")
        _add_config_args(s, grid=True)
        s.add_argument("-o", "--output", metavar="FILE", help="write .csv, .parquet or .json instead of a table")
        s.add_argument("--json", action="store_true", help="print JSON records (or, with -o, a JSON summary)")
        s.add_argument("--fields", metavar="LIST", help="compute and write only these result fields, a comma list "
                       "(e.g. total_bytes,fits; with -o or --json: the table needs every part)")
        s.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar on stderr (default: for large grids on a terminal; needs tqdm)")

    if want("fit"):
        f = _sub(sub, "fit", "inverse questions for every cell: max context, max batch, min GPUs, best dtype",
                 "examples:\n  vramcore fit context Qwen3-8B --dtype bf16,int4 --batch 1,8,32 --gpu H100,L4\n"
                 "  vramcore fit batch Llama-3.1-8B --context 4k,32k --gpu H100 --engine transformers,vllm\n"
                 "  vramcore fit gpus Llama-3.1-70B --dtype bf16,fp8 --context 8k,128k --gpu H100 --engine vllm\n"
                 "  vramcore fit dtype Llama-3.1-70B --context 8k --gpu H100,H200 --json\n\n"
                 "context: the longest context that fits each (model, dtype, batch, gpu[, engine]) -- capped at the\n"
                 "model's max context, 0 when nothing fits; batch: the most sequences of each context; gpus: the\n"
                 "fewest GPUs from --candidates that fit (0: none; tensor parallel up to 8, then pipeline stages);\n"
                 "dtype: the highest-precision weight dtype that fits (empty: none). Answers are exact: the answer\n"
                 "fits and one more does not.\n")
        f.add_argument("question", choices=("context", "batch", "gpus", "dtype"), help="what to solve for")
        f.add_argument("models", nargs="+", metavar="MODEL", help="models (several, or a comma list)")
        _add_config_args(f, grid=True)
        f.add_argument("--candidates", default=None,
                       help="fit gpus: GPU counts to try (default 1,2,4,8,16,24,32,48,64,96,128: tensor parallel up to "
                            "8, then 8-GPU pipeline stages)")
        f.add_argument("--json", action="store_true", help="print JSON records")

    if want("models"):
        m = _sub(sub, "models", "list the built-in models (filterable)",
                 "examples:\n  vramcore models\n  vramcore models qwen3\n  vramcore models --company meta --json\n")
        m.add_argument("filter", nargs="?", help="case-insensitive substring of the name, an alias or the HF repo")
        m.add_argument("--family", help="case-insensitive substring of the family")
        m.add_argument("--company", help="case-insensitive substring of the company")
        m.add_argument("--json", action="store_true", help="print JSON (every card field)")

    if want("dtypes"):
        dt = _sub(sub, "dtypes", "list the weight dtypes and formats, or an engine's KV-cache types",
                  "examples:\n  vramcore dtypes\n  vramcore dtypes --kind all\n  vramcore dtypes --kv llamacpp\n")
        dt.add_argument("--kind", choices=("plain", "formats", "all"), default="plain",
                        help="plain element types (default), quantization formats, or both")
        dt.add_argument("--kv", metavar="ENGINE", help="the KV-cache types ENGINE offers, by its own names")
        dt.add_argument("--json", action="store_true", help="print JSON")

    if want("gpus"):
        g = _sub(sub, "gpus", "list the GPU catalog (filterable)",
                 "examples:\n  vramcore gpus\n  vramcore gpus --min-memory 40GiB --vendor nvidia\n"
                 "  vramcore gpus h100 --json\n\nMemory filters compare the nvidia-smi total "
                 "(GiB = 2**30 bytes, GB = 10**9 bytes).\n")
        g.add_argument("filter", nargs="?", help="case-insensitive substring of the name or an alias")
        g.add_argument("--vendor", help="case-insensitive substring of the vendor")
        g.add_argument("--min-memory", metavar="SIZE", help="at least this much memory, e.g. 40GiB or 80GB")
        g.add_argument("--max-memory", metavar="SIZE", help="at most this much memory")
        g.add_argument("--json", action="store_true", help="print JSON (bytes as numbers)")

    if want("card"):
        c = _sub(sub, "card", "show a built-in model card: facts, geometry, usage notes, sources",
                 "examples:\n  vramcore card DeepSeek-R1-Distill-Llama-8B\n  vramcore card qwen3-8b --json\n")
        c.add_argument("model", help="built-in model name (see `vramcore models`)")
        c.add_argument("--json", action="store_true", help="print JSON")
        c.add_argument("--config", action="store_true", help="print the card's Hugging Face config.json")

    if want("plot"):
        pl = _sub(sub, "plot", "draw an estimate (stacked bars) or a sweep (heatmap) to an image file",
                  "examples:\n  vramcore plot estimate DeepSeek-R1-Distill-Llama-8B --context 8k,32k,128k --gpu L4 "
                  "-o bars.png\n  vramcore plot sweep Qwen3-8B --context 1k:128k:x2 --batch 1:64:x2 --gpu H100,L4 "
                  "--value fits -o fits.png\n")
        psub = pl.add_subparsers(dest="plot_kind", required=True, metavar="KIND")

        def plot_kind(name: str, help: str, epilog: str) -> argparse.ArgumentParser:
            kind = _sub(psub, name, help, epilog)
            kind.add_argument("models", nargs="+", metavar="MODEL", help="models (several, or a comma list)")
            _add_config_args(kind, grid=True)
            kind.add_argument("-o", "--output", metavar="FILE", required=True, help="image file (.png, .svg, .pdf)")
            return kind

        pe = plot_kind("estimate", "stacked bars of estimates against the GPU memory line",
                       "Every combination of the listed values is one bar.\n\nexample:\n"
                       "  vramcore plot estimate Qwen3-8B --dtype bf16,int4 --context 32k --gpu L4 -o bars.png\n")
        pe.add_argument("--title", help="plot title")
        pe.add_argument("--json", action="store_true", help="print a JSON summary")
        ps = plot_kind("sweep", "heatmap of a sweep field over two axes, one panel per label of a third",
                       "example:\n  vramcore plot sweep Qwen3-8B --dtype bf16,int4 --context 1k:128k:x2 "
                       "--batch 1:64:x2 --gpu H100 --facet dtype --value headroom_bytes -o headroom.png\n")
        dims = ("model", "dtype", "context", "batch", "gpu", "engine")
        ps.add_argument("--x", default="context", choices=dims, help="horizontal axis (default: context)")
        ps.add_argument("--y", default="batch", choices=dims, help="vertical axis (default: batch)")
        ps.add_argument("--facet", default="gpu", choices=(*dims, "none"), help="one panel per label (default: gpu)")
        ps.add_argument("--value", default="fits", help="result field: fits (default), headroom_bytes, total_bytes, "
                        "...")
        ps.add_argument("--select", action="append", default=[], metavar="AXIS=LABEL",
                        help="fix another axis, e.g. --select dtype=bf16 (repeatable)")
        ps.add_argument("--json", action="store_true", help="print a JSON summary")
        ps.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr")
    return p


def _whole_numbers(value: Any) -> Any:
    """Floats that hold whole numbers (every byte figure) as JSON integers, as ``sweep --json`` writes them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_whole_numbers(v) for v in value]
    return value


def _print_json(value: Any) -> None:
    print(json.dumps(_whole_numbers(value), indent=2))


def _models_arg(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend([v] if os.path.exists(v) else _split(v))
    if not out:
        raise UsageError("MODEL: no model given")
    return out


def _grid_args(args: argparse.Namespace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Return the positional and keyword arguments of the sweep the grid flags describe."""
    return ((_models_arg(args.models), _split(args.dtype or "auto"), _counts("--context", args.context),
             _counts("--batch", args.batch), [_gpu(g) for g in _split(args.gpu)]),
            {"kv_dtype": args.kv_dtype, "engine": _engine_arg(args), "n_gpus": _count("--n-gpus", args.n_gpus),
             "tp": _optional_count(args, "tp"), "pp": _optional_count(args, "pp"),
             "gpu_memory": _gpu_memory(args.gpu_memory), "progress": getattr(args, "progress", None),
             "fields": _split(args.fields) if getattr(args, "fields", None) else None})


def _grid(args: argparse.Namespace) -> Any:
    """Run the sweep the grid flags describe."""
    import vramcore

    positional, keywords = _grid_args(args)
    return vramcore.sweep(*positional, **keywords)


def _context_and_batch(args: argparse.Namespace) -> tuple[int, int]:
    """--context / --batch, or llama.cpp's --ctx-size (-c) shared by --parallel (-np) sequences."""
    batch = _count("--batch", args.batch)
    if args.parallel is not None:
        if args.batch != "1" and _count("--batch", args.batch) != _count("--parallel", args.parallel):
            raise UsageError("--parallel and --batch both set the sequences: give one")
        batch = _count("--parallel", args.parallel)
    if args.ctx_size is None:
        return _count("--context", args.context), batch
    if args.context != "4096":
        raise UsageError("--ctx-size and --context both set the context: give one (--ctx-size is llama.cpp's "
                         "total n_ctx, shared by --parallel sequences)")
    cells = _count("--ctx-size", args.ctx_size)
    if cells % batch:
        raise UsageError(f"--ctx-size {cells} is not a multiple of the {batch} sequences: llama.cpp gives each "
                         "sequence n_ctx / parallel cells")
    return cells // batch, batch


def _cmd_estimate(args: argparse.Namespace) -> int:
    import vramcore

    if args.check and args.gpu is None and args.gpu_memory is None:
        raise UsageError("--check needs --gpu (a name or a size such as 24GiB)")
    gpu = _gpu(args.gpu) if args.gpu is not None else None
    gpu_memory = _gpu_memory(args.gpu_memory)
    if gpu is None and isinstance(gpu_memory, int):  # a size alone describes a custom GPU
        gpu, gpu_memory = _gpu(args.gpu_memory), "usable"
    context, batch = _context_and_batch(args)
    est = vramcore.estimate(args.model, dtype=args.dtype or "auto", kv_dtype=args.kv_dtype,
                            context=context, batch=batch,
                            gpu=gpu, n_gpus=_count("--n-gpus", args.n_gpus), engine=_engine_arg(args),
                            tp=_optional_count(args, "tp"), pp=_optional_count(args, "pp"),
                            gpu_memory=gpu_memory, images=_images(args.images),
                            image_size=_image_size(args.image_size))
    if args.json:
        _print_json(est.to_dict())
    else:
        print(est)
    return 1 if args.check and est.fits is False else 0


def _images(text: str) -> int:
    if text.strip() == "0":
        return 0
    return _count("--images", text)


def _image_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    w, sep, h = text.lower().partition("x")
    if not sep:
        raise UsageError(f"--image-size {text!r}: write width x height in pixels, e.g. 1024x768")
    return _count("--image-size width", w), _count("--image-size height", h)


def _cmd_sweep(args: argparse.Namespace) -> int:
    import vramcore.io.export as _export

    if args.output is not None and os.path.splitext(args.output)[1].lower() not in _export.FORMATS:
        raise UsageError(f"-o {args.output!r}: unknown extension; use {', '.join(_export.FORMATS)}")
    if args.output is not None:
        # streamed part by part (vramcore.sweep_to): a grid larger than memory still writes
        import math

        from vramcore.grid.stream import grid_layout, sweep_to

        positional, keywords = _grid_args(args)
        fmt = _write_output(args.output, lambda: sweep_to(args.output, *positional, **keywords))
        models, dtypes, contexts, batches, gpus = positional
        dims, shape = grid_layout(models, dtypes, contexts, batches, gpus, keywords["engine"])
        rows = math.prod(shape)
        summary = {"path": args.output, "format": fmt, "rows": rows, "dims": list(dims), "shape": list(shape)}
        if args.json:
            _print_json(summary)
        else:
            print(f"wrote {rows:,} rows ({' x '.join(map(str, shape))} {', '.join(dims)}) to "
                  f"{args.output} ({fmt})", file=sys.stderr)
        return 0
    s = _grid(args)
    if args.json:
        _export.write_json(s, sys.stdout)
    else:
        _export.write_table(s, sys.stdout)
    return 0


def _write_output(path: str, write: Callable[[], Any]) -> Any:
    try:
        return write()
    except OSError as exc:
        raise UsageError(f"-o {path!r}: {exc.strerror or exc}") from None


def _table(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                               enumerate(zip(r, widths, strict=True))).rstrip() for r in rows)


def _contains(needle: str | None, *hay: str) -> bool:
    return needle is None or any(needle.casefold() in h.casefold() for h in hay)


def _cmd_models(args: argparse.Namespace) -> int:
    from vramcore.model.cards import get_model, list_models

    cards = [get_model(n) for n in list_models()]
    cards = [c for c in cards if _contains(args.filter, c.name, c.hf_repo, *c.aliases)
             and _contains(args.family, c.family) and _contains(args.company, c.company)]
    if args.json:
        _print_json([c.to_dict() for c in cards])
        return 0
    if not cards:
        print("no model matches", file=sys.stderr)
        return 0
    rows = [["name", "company", "family", "params", "context", "released"]]
    rows += [[c.name, c.company, c.family, f"{c.total_params / 1e9:.2f}B", f"{c.context_window:,}", c.release_date]
             for c in cards]
    print(_table(rows, right={3, 4}))
    return 0


def _cmd_dtypes(args: argparse.Namespace) -> int:
    import vramcore

    if args.kv is not None:
        from vramcore.storage.kv import ENGINE_KV_TYPES

        kind = vramcore.get_engine(args.kv).kind
        rows = [{"name": n, "bits": b} for n, b in ENGINE_KV_TYPES[kind].items()]
        rows += [{"name": n, "bits": vramcore.get_dtype(n).bits} for n in vramcore.list_dtypes()
                 if n not in ENGINE_KV_TYPES[kind]]  # every engine also takes the plain dtypes
        if args.json:
            _print_json(rows)
        else:
            print("\n".join(f"{r['name']:<10} {r['bits']:g} bits" for r in rows))
        return 0
    names = vramcore.list_dtypes(args.kind)
    if args.json:
        _print_json(names)
    else:
        print("\n".join(names))
    return 0


def _cmd_gpus(args: argparse.Namespace) -> int:
    from vramcore.hardware.gpus import get_gpu, list_gpus

    lo = _size("--min-memory", args.min_memory) if args.min_memory else None
    hi = _size("--max-memory", args.max_memory) if args.max_memory else None
    gpus = [get_gpu(n) for n in list_gpus()]
    gpus = [g for g in gpus if _contains(args.filter, g.name, *g.aliases) and _contains(args.vendor, g.vendor)
            and (lo is None or g.memory_total_bytes >= lo) and (hi is None or g.memory_total_bytes <= hi)]
    if args.json:
        _print_json([{"name": g.name, "vendor": g.vendor, "memory_total_bytes": g.memory_total_bytes,
                      "cuda_visible_bytes": g.cuda_visible_bytes, "usable_bytes": g.usable_bytes,
                      "bandwidth_bytes_per_s": g.bandwidth_bytes_per_s, "aliases": list(g.aliases),
                      "source": g.source} for g in gpus])
        return 0
    if not gpus:
        print("no GPU matches", file=sys.stderr)
        return 0
    rows = [["name", "vendor", "total GiB", "total GB", "usable GiB", "bandwidth GB/s"]]
    rows += [[g.name, g.vendor, f"{g.memory_total_bytes / 2**30:.2f}", f"{g.memory_total_bytes / 1e9:.2f}",
              f"{g.usable_bytes / 2**30:.2f}", f"{g.bandwidth_bytes_per_s / 1e9:,.0f}"] for g in gpus]
    print(_table(rows, right={2, 3, 4, 5}))
    print("total: nvidia-smi / rocm-smi; usable: CUDA-visible where known (what `fits` uses); "
          "GiB = 2**30 bytes, GB = 10**9 bytes")
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from vramcore.model.cards import get_model

    card = get_model(args.model)
    if args.config:
        _print_json(card.config)
    elif args.json:
        _print_json(card.to_dict())
    else:
        print(card)
    return 0


def _image_format(path: str) -> str:
    from matplotlib.figure import Figure

    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    supported = Figure().canvas.get_supported_filetypes()
    if fmt not in supported:
        raise UsageError(f"-o {path!r}: unknown image extension; use one of "
                         f"{', '.join('.' + k for k in sorted(supported))}")
    return fmt


def _save(fig: Any, path: str, fmt: str) -> None:
    from vramcore.io.export import atomic_path

    def write() -> None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=120)

    _write_output(path, write)


def _select(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        axis, sep, label = item.partition("=")
        axis, label = axis.strip(), label.strip()
        if not sep or not axis or not label:
            raise UsageError(f"--select: expected AXIS=LABEL, got {item!r}")
        out[axis] = _count("--select", label) if axis in ("context", "batch") else label
    return out


def _cmd_plot(args: argparse.Namespace) -> int:
    import vramcore.io.export as _export

    _export.require("matplotlib", "plot", "vramcore plot")
    fmt = _image_format(args.output)
    from vramcore import plot

    s = _grid(args)
    if args.plot_kind == "estimate":
        if s.size > 64:
            raise UsageError(f"plot estimate: {s.size} bars are too many (at most 64); use `vramcore plot sweep`")
        fig = plot.estimate_bar(list(s), title=args.title)
    else:
        facet = None if args.facet == "none" else args.facet
        fig = plot.sweep_heatmap(s, x=args.x, y=args.y, value=args.value, facet=facet, select=_select(args.select))
    _save(fig, args.output, fmt)
    if args.json:
        _print_json({"path": args.output, "format": fmt, "cells": s.size})
    else:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    import vramcore

    models = _models_arg(args.models)
    engines = _split(args.engine)
    engine: Any = _engine_arg(args)
    gpus = [_gpu(g) for g in _split(args.gpu)]
    common: dict[str, Any] = {"kv_dtype": args.kv_dtype, "gpu_memory": _gpu_memory(args.gpu_memory)}
    parallel: dict[str, Any] = {"n_gpus": _count("--n-gpus", args.n_gpus), "tp": _optional_count(args, "tp"),
                                "pp": _optional_count(args, "pp")}
    if args.question == "context":
        sol = vramcore.max_context(models, _split(args.dtype or "auto"), _counts("--batch", args.batch), gpus,
                                   engine=engine, **common, **parallel)
    elif args.question == "batch":
        sol = vramcore.max_batch(models, _split(args.dtype or "auto"), _counts("--context", args.context), gpus,
                                 engine=engine, **common, **parallel)
    elif args.question == "gpus":
        if len(engines) > 1:
            raise UsageError("fit gpus: give one --engine")
        from vramcore.grid.solve import GPU_COUNTS

        candidates = _counts("--candidates", args.candidates) if args.candidates else list(GPU_COUNTS)
        sol = vramcore.min_gpus(models, _split(args.dtype or "auto"), _counts("--context", args.context),
                                _counts("--batch", args.batch), gpus if len(gpus) > 1 else gpus[0], engine=engine,
                                candidates=candidates, **common)
    else:
        if len(engines) > 1:
            raise UsageError("fit dtype: give one --engine")
        from vramcore.grid.solve import PRECISION_ORDER

        dtypes = _split(args.dtype) if args.dtype is not None else list(PRECISION_ORDER)
        sol = vramcore.best_dtype(models, _counts("--context", args.context), _counts("--batch", args.batch), gpus,
                                  dtypes=dtypes, engine=engine, **common, **parallel)
    records = []
    for idx in _ndindex(sol.values.shape):
        rec: dict[str, Any] = {dim: sol.coords[dim][i] for dim, i in zip(sol.dims, idx, strict=True)}
        value = sol.values[idx]
        rec[sol.name] = str(value) if sol.name == "best_dtype" else int(value)
        records.append(rec)
    if args.json:
        _print_json(records)
    else:
        header = [*sol.dims, sol.name]
        rows = [header] + [[f"{r[k]:,}" if isinstance(r[k], int) else str(r[k]) for k in header] for r in records]
        right = {i for i, k in enumerate(header) if isinstance(records[0][k], int)} if records else set()
        print(_table(rows, right))
    return 0


def _ndindex(shape: tuple[int, ...]) -> Any:
    import itertools

    return itertools.product(*(range(n) for n in shape))


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "estimate": _cmd_estimate, "sweep": _cmd_sweep, "fit": _cmd_fit, "models": _cmd_models, "gpus": _cmd_gpus,
    "card": _cmd_card, "plot": _cmd_plot, "dtypes": _cmd_dtypes,
}


#: Python argument names in the API's messages -> the flag a command-line user typed.
_FLAG_OF = {"dtypes": "--dtype", "dtype": "--dtype", "kv_dtype": "--kv-dtype", "gpus": "--gpu", "gpu": "--gpu",
            "engine": "--engine", "contexts": "--context", "context": "--context", "batches": "--batch",
            "batch": "--batch", "n_gpus": "--n-gpus", "tp": "--tp", "pp": "--pp", "gpu_memory": "--gpu-memory",
            "models": "MODEL", "model": "MODEL", "kv_cache_dtype": "--kv-cache-dtype",
            "cache_type_k": "--cache-type-k", "cache_type_v": "--cache-type-v"}
_COMMAND_OF = {"vramcore.list_models()": "`vramcore models`", "vramcore.list_gpus()": "`vramcore gpus`",
               "vramcore.list_dtypes()": "`vramcore dtypes --kind all`",
               "vramcore.list_engines()": "`vramcore --help`"}


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Print a warning as one ``vramcore: warning:`` line (no source location)."""
    print(f"vramcore: warning: {message}", file=sys.stderr)


def _cli_message(text: str) -> str:
    """Say an API error in the command line's words: flags, not Python arguments; commands, not functions."""
    text = re.sub(r"for argument '(\w+)'", lambda m: f"for {_FLAG_OF.get(m.group(1), m.group(1))}", text)
    text = re.sub(r"^(\w+)( must | must$|: )", lambda m: _FLAG_OF.get(m.group(1), m.group(1)) + m.group(2), text)
    for function, command in _COMMAND_OF.items():
        text = text.replace(function, command)
    return text


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 ok; 1 the configuration does not fit (``estimate --check``); 2 bad
        usage (a message on stderr names the flag and the value; argparse's own
        errors too) or output that cannot be written; 70 an internal error (a
        bug: one line, never a traceback); 130 interrupted by Ctrl-C (no
        partial output file); 141 stdout closed (``| head``).

    Examples
    --------
    >>> main(["estimate", "DeepSeek-R1-Distill-Llama-8B", "--gpu", "H100", "--context", "32k"])
    ... # doctest: +ELLIPSIS
    DeepSeek-R1-Distill-Llama-8B: bf16 weights, KV in compute dtype, context 32,768 x batch 1, ...
      KV cache          4.00 GiB       4.29 GB
    ...
      fits: headroom ... GiB
    0
    >>> main(["estimate", "DeepSeek-R1-Distill-Llama-8B", "--context", "lots"])
    2
    """
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser(words[0] if words and words[0] in _COMMANDS else None).parse_args(words)
    except SystemExit as exc:  # --help / --version (0) and argparse usage errors (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        with warnings.catch_warnings():
            # vramcore's warnings are one line each on stderr, whatever filters the caller has set
            warnings.simplefilter("default", VramcoreWarning)
            warnings.showwarning = _show_warning
            code = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not at exit
        return code
    except (ValueError, TypeError, ImportError) as exc:
        print(f"vramcore: error: {_cli_message(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `vramcore sweep ... | head`: stop quietly
        _quiet_stdout()
        return 141
    except KeyboardInterrupt as exc:
        detail = f": {exc}" if str(exc) else ""
        print(f"vramcore: interrupted{detail}; no output written", file=sys.stderr)
        return 130
    except OSError as exc:  # stdout on a full disk, an unwritable terminal
        _quiet_stdout()
        print(f"vramcore: error: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the command line never shows a traceback
        print(f"vramcore: internal error: {type(exc).__name__}: {exc} (a bug in vramcore: please report it "
              f"with the command line)", file=sys.stderr)
        return 70
