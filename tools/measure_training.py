"""Measure the training-memory figures that vramcore's training estimates are checked against.

vramcore estimates the GPU memory of fine-tuning and training from a model's ``config.json``: the
trainable parameters of LoRA, the optimizer state per parameter, what DeepSpeed ZeRO says the model
states take, and the activations kept for the backward pass. This script measures those figures
with the libraries that do the training (peft, torch, bitsandbytes, transformers, deepspeed) and
writes them to ``tests/data/training_measured.json``. None of these libraries is a vramcore
dependency: run the script from a scratch environment outside the repository. Everything runs on
the CPU, in a few minutes; no GPU is needed.

Usage
-----
::

    python3 -m venv /tmp/trainenv
    /tmp/trainenv/bin/pip install torch==2.13.0 transformers==5.24.0 accelerate peft==0.21.2 \\
        bitsandbytes==0.50.2
    DS_BUILD_OPS=0 /tmp/trainenv/bin/pip install deepspeed==0.19.8
    /tmp/trainenv/bin/python tools/measure_training.py

Options: ``--models-dir`` (default ``vramcore/model/data``), ``--output`` (default
``tests/data/training_measured.json``), ``--skip`` (any of ``peft deepspeed optimizers
activations lora_activations hybrid_activations``, to leave a section out while iterating), ``--update`` (keep
the skipped sections of an existing output file, and its ``versions``; this run's go to ``update_versions``),
``--peft-model-types`` (measure peft for these model types only; with ``--update`` merged into the kept
section). The hybrid figures were added with ``--update --skip deepspeed optimizers activations
lora_activations --peft-model-types granitemoehybrid falcon_h1 bamba``. No network access is needed: models are
built from their configs only, never downloaded. A library that is missing or fails is recorded
in the JSON as ``{"error": "..."}`` in its section, and the other sections are still measured.

Inputs
------
Every ``vramcore/model/data/*.json`` card (keys ``"name"`` and ``"config"``, the latter the
Hugging Face ``config.json`` content). For a multimodal config (one with a ``text_config``, such
as gemma3) the text model is built from the text config with its CausalLM class.

What is measured
----------------
``peft``
    For the smallest card of each ``model_type`` (smallest by parameter count as built), the model
    is built with ``AutoModelForCausalLM.from_config`` on the ``meta`` device and wrapped with
    ``peft.get_peft_model(model, LoraConfig(r=R, lora_alpha=2*R, target_modules=T,
    lora_dropout=0.05, bias="none", task_type="CAUSAL_LM"), low_cpu_mem_usage=True)`` for R in
    ``RANKS`` and T in ``TARGET_SETS`` (``low_cpu_mem_usage`` makes peft create the adapter weights
    on the meta device too; the counts are the same, without it a 671B model takes minutes). Key
    ``peft[card][f"r{R}"][target_key]``, target_key ``"all-linear"`` or the names joined by ``"+"``.
    Each entry has ``get_nb_trainable_parameters()`` (``trainable``, ``all``),
    ``lora_param_dtypes`` (trainable elements by dtype: peft keeps adapters in float32 on a
    bfloat16 model), the config peft resolved (``target_modules``, ``target_parameters``,
    ``rank_pattern``) and ``by_target``: for each adapted target, the number of LoRA layers, the
    summed ``in_features`` / ``out_features``, the LoRA parameters, the ranks used and the shapes
    of one layer's ``lora_A`` / ``lora_B``. A target is the module name (last path component, e.g.
    ``q_proj``) for a wrapped ``nn.Linear``; for a ``ParamWrapper`` (peft's LoRA on a bare
    parameter, which is how it adapts the fused 3-D MoE expert tensors and routers of
    transformers 5) it is ``module.parameter`` (e.g. ``experts.gate_up_proj``), and
    ``experts_per_tensor`` gives the leading dimension of the adapted 3-D parameter. If peft
    raises (a target set naming modules the family does not have), the entry is
    ``{"skipped": true, "error": ...}``; if it does not raise although some requested names are
    not modules of the model, ``names_not_modules_in_model`` lists them. peft 0.21 refuses
    ``lora_dropout != 0`` on a ``ParamWrapper``, so for MoE families the call fails; the entry then
    also holds ``with_lora_dropout_0``, the same call measured with ``lora_dropout=0``.
    ``peft[card]["not_adapted_by_all_linear"]`` lists the parameters "all-linear" leaves alone,
    with layer indices replaced by ``N`` (biases of adapted Linears are listed apart, under
    ``bias_of_adapted_module``; ``measured_with_lora_dropout`` says which run they come from).
``deepspeed``
    The signatures and source text of ``estimate_zero2_model_states_mem_needs`` and
    ``estimate_zero3_model_states_mem_needs`` (pure arithmetic, no GPU), and their results for
    three Llama-shaped models (``ZERO_MODELS``: total params and largest layer, the embedding),
    1 or 8 GPUs per node, 1 or 2 nodes and every combination of the offload flags;
    ``additional_buffer_factor`` is left at its default.
``optimizers``
    A model of one ``nn.Linear(1024, 1024, bias=False)`` (1,048,576 params), in float32 and again
    in bfloat16, runs one forward / backward / ``step()``; then the storages of every tensor in
    ``optimizer.state`` are summed, each storage once (``state_bytes``, without the ``step``
    entries; ``step_bytes`` for tensor ``step`` entries; a Python-number ``step`` counts 0).
    ``bytes_per_param`` is ``state_bytes / 1048576``. ``state_tensors`` gives each state entry's
    shape and dtype for a (1024, 1024) parameter, a (4096,) one and a (1000,) one (under the
    bitsandbytes ``min_8bit_size`` of 4096), stepped together in one optimizer.
``lora_activations``
    The same small copies (and layer counts, attention implementations and shapes) wrapped by
    ``peft.get_peft_model`` with ``LoraConfig(r=16, lora_alpha=32, lora_dropout=0)`` for "all-linear"
    and for ``["q_proj", "v_proj"]`` (``enable_input_require_grads`` so that checkpointing works over
    the frozen embedding), measured the same way, with the forward plain and under
    ``torch.autocast("cpu", dtype=torch.bfloat16)`` (keys ``autocast_...``; transformers' Trainer
    with ``bf16=True`` runs the forward under autocast).  Key
    ``lora_activations.geometries[name].by_layers[L][f"{impl}/{targets}"]``.
``activations``
    Small copies of three real configs (``ACTIVATION_GEOMETRIES``) keep hidden size, heads, KV
    heads, head_dim and intermediate size, with 1 and 2 layers (per-layer and non-layer parts
    separate by difference) and a vocab of ``SMALL_VOCAB``. Built on the CPU in bfloat16 with
    ``attn_implementation`` eager or sdpa, ``model.train()``, dropout 0, and run on random token
    ids with ``labels=input_ids`` at batch x seq in ``SHAPES``, without and with gradient
    checkpointing (``use_reentrant=False``). During ``loss = model(...).loss`` a
    ``torch.autograd.graph.saved_tensors_hooks`` records every tensor saved for backward; the
    tensors still held when the forward ends are counted, each storage once
    (``untyped_storage().nbytes()``). ``saved_bytes`` counts all of them, ``param_bytes`` those
    that are parameter storages (weights saved by matmuls: not extra memory),
    ``activation_bytes = saved_bytes - param_bytes``. Under non-reentrant checkpointing, torch's
    own hooks take the tensors saved inside a checkpointed layer (they are recomputed, not kept),
    while the checkpoint keeps the layer's inputs (hidden states, position embeddings, mask):
    those are recorded by wrapping each layer's checkpoint function and counted in the same
    storage-unique total (``checkpoint_input_bytes`` for the ones not saved otherwise).
    ``breakdown`` lists ``[shape, dtype, kind, count, bytes]`` (kind ``act``, ``param`` or
    ``ckpt_input``; bytes are the storage bytes counted at the first view of each storage).
    ``profiler`` comes from ``torch.profiler`` CPU memory events: the net bytes allocated during
    the forward (saved tensors plus outputs), and during the backward the peak above the bytes
    live when it starts and the net change at its end (gradients allocated minus activations
    freed); ``param_grad_bytes`` is what the gradients take. These are CPU figures: on CUDA, sdpa
    picks other kernels (flash / memory-efficient) that save other tensors. transformers 5.24
    refuses sdpa for Gemma-2 (attention logit softcapping); that case holds the error.
``hybrid_activations``
    Small copies of the Mamba2 hybrids (``HYBRID_GEOMETRIES``: Granite-4.0-H-Micro and -Tiny, the
    ``tests/data/hf_configs/bamba-synthetic.json`` Bamba, Falcon-H1-7B-Instruct) with the layer kinds of each
    layout (``"mamba"``, ``"attention"``, Falcon-H1's ``"hybrid"``), vocab ``SMALL_VOCAB``, sdpa, measured as
    ``activations`` for full fine-tuning and peft LoRA (r=16, "all-linear"; ``enable_input_require_grads``),
    plain and under autocast, without and with checkpointing (keys ``f"{method}/{mode}"``). On a GPU,
    transformers' Mamba2 layers call mamba_ssm's ``mamba_split_conv1d_scan_combined`` in training; here
    it is replaced by ``SplitConv1dScanStandIn``, which saves what the CUDA autograd Function saves
    (state-spaces/mamba ``ssd_combined.py``, ``MambaSplitConv1dScanCombinedFn.forward``), so the figures
    are transformers' own code around the scan plus the scan's saved set as its source states.
    ``torch_forward_activation_bytes_b1_s64`` is the unpatched CPU fallback, for comparison. peft 0.21
    refuses "all-linear" on falcon_h1 and nemotron_h (out_proj), so those geometries' LoRA runs take the
    explicit targets of ``HYBRID_LORA_TARGETS`` (recorded as ``lora_targets``).  Nemotron-3-Nano's copy
    (one-sub-block layouts ``"mamba"``, ``"attention"``, ``"mlp"``, ``"moe"``) keeps 16 of its 128 experts
    (``HYBRID_OVERRIDES``, recorded as ``overrides``).  ``--hybrid-geometries NAME ...`` measures those
    geometries only (with ``--update`` merged into the kept section); Nemotron-3-Nano and Falcon-H1's explicit
    targets were added with ``--update --skip peft deepspeed optimizers activations lora_activations
    --hybrid-geometries Nemotron-3-Nano Falcon-H1-7B-Instruct``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import inspect
import json
import platform
import re
import sys
import time
import warnings
import weakref
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS_DIR = REPO / "vramcore" / "model" / "data"
DEFAULT_OUTPUT = REPO / "tests" / "data" / "training_measured.json"
SECTIONS = ("peft", "deepspeed", "optimizers", "activations", "lora_activations", "hybrid_activations")

DTYPE = torch.bfloat16

# --- peft
RANKS = (8, 16, 64)
LORA_DROPOUT = 0.05
TARGET_SETS: tuple[str | list[str], ...] = (
    "all-linear",
    ["q_proj", "v_proj"],
    ["q_proj", "k_proj", "v_proj", "o_proj"],
    ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
)

# --- deepspeed: Llama-3.2-1B, Llama-3.1-8B, Llama-3.1-70B (largest layer: the embedding)
ZERO_MODELS = (
    (1_235_814_400, 128256 * 2048),
    (8_030_261_248, 128256 * 4096),
    (70_553_706_496, 128256 * 8192),
)
GPUS_PER_NODE = (1, 8)
NODES = (1, 2)

# --- optimizers
OPT_DIM = 1024
STATE_SHAPES = ((1024, 1024), (4096,), (1000,))

# --- activations
SMALL_VOCAB = 1024
LAYER_COUNTS = (1, 2)
SHAPES = ((1, 64), (1, 128), (2, 64))
IMPLS = ("eager", "sdpa")
ACTIVATION_GEOMETRIES = (("Llama-3.2-1B", None), ("Qwen3-0.6B", "Qwen2.5-0.5B"), ("Gemma-2-2B", None))
GEOMETRY_KEYS = (
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "tie_word_embeddings",
    "sliding_window",
    "layer_types",
)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def pattern(name: str) -> str:
    """Replace layer indices in a parameter name by ``N``."""
    return re.sub(r"\.\d+\.", ".N.", name)


# --------------------------------------------------------------------------- configs


def load_cards(models_dir: Path) -> dict[str, dict[str, Any]]:
    """Return ``{card name: raw config}`` for every card."""
    cards = {}
    for path in sorted(models_dir.glob("*.json")):
        card = json.loads(path.read_text())
        cards[card["name"]] = card["config"]
    return cards


def text_config(raw: dict[str, Any], **overrides: Any) -> transformers.PreTrainedConfig:
    """Build the transformers config of ``raw`` (text part, ``overrides`` applied to it)."""
    raw = dict(raw)
    raw.pop("quantization_config", None)
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    text = config.get_text_config(decoder=True)
    if not overrides:
        return text
    d = text.to_dict()
    d.update(overrides)
    d.pop("transformers_version", None)
    return AutoConfig.for_model(d.pop("model_type"), **d)


def meta_model(config: transformers.PreTrainedConfig) -> torch.nn.Module:
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=DTYPE)


# --------------------------------------------------------------------------- peft


def target_key(targets: str | list[str]) -> str:
    return targets if isinstance(targets, str) else "+".join(targets)


def base_path(peft_path: str) -> str:
    """Module path in the base model of a module path in the peft model."""
    path = peft_path.removeprefix("base_model.model.")
    return ".".join(part for part in path.split(".") if part != "base_layer")


def lora_layers(peft_model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    from peft.tuners.lora import LoraLayer

    return [(name, mod) for name, mod in peft_model.named_modules() if isinstance(mod, LoraLayer)]


def describe_peft(peft_model: Any, base_names: set[str], targets: str | list[str]) -> dict[str, Any]:
    """Count what ``get_peft_model`` wrapped, by target."""
    from peft.tuners.lora.layer import ParamWrapper

    trainable, total = peft_model.get_nb_trainable_parameters()
    by_target: dict[str, dict[str, Any]] = {}
    lora_sum = 0
    for name, mod in lora_layers(peft_model):
        path = base_path(name)
        leaf = path.rsplit(".", 1)[-1]
        adapter = "default"
        a = mod.lora_A[adapter].weight
        b = mod.lora_B[adapter].weight
        if isinstance(mod, ParamWrapper):
            key = f"{leaf}.{mod.parameter_name}"
            param = mod.get_param()
            experts = param.shape[0] if param.dim() == 3 else None
        else:
            key = leaf
            experts = None
        n_lora = a.numel() + b.numel()
        lora_sum += n_lora
        entry = by_target.setdefault(
            key,
            {
                "layer_class": type(mod).__name__,
                "modules": 0,
                "in_features_sum": 0,
                "out_features_sum": 0,
                "lora_params": 0,
                "ranks": set(),
                "lora_A_shape": list(a.shape),
                "lora_B_shape": list(b.shape),
                "experts_per_tensor": experts,
            },
        )
        entry["modules"] += 1
        entry["in_features_sum"] += int(mod.in_features)
        entry["out_features_sum"] += int(mod.out_features)
        entry["lora_params"] += n_lora
        entry["ranks"].add(int(mod.r[adapter]))
    for entry in by_target.values():
        entry["ranks"] = sorted(entry["ranks"])
    lora_dtypes: Counter[str] = Counter()
    for param in peft_model.parameters():
        if param.requires_grad:
            lora_dtypes[dtype_name(param.dtype)] += param.numel()
    cfg = peft_model.peft_config["default"]
    result: dict[str, Any] = {
        "trainable": trainable,
        "all": total,
        "lora_param_dtypes": dict(sorted(lora_dtypes.items())),
        "by_target": dict(sorted(by_target.items())),
        "lora_params_sum_matches_trainable": lora_sum == trainable,
        "resolved_config": {
            "target_modules": sorted(cfg.target_modules)
            if not isinstance(cfg.target_modules, str)
            else cfg.target_modules,
            "target_parameters": sorted(cfg.target_parameters or []),
            "rank_pattern": dict(sorted((cfg.rank_pattern or {}).items())),
            "alpha_pattern": dict(sorted((cfg.alpha_pattern or {}).items())),
        },
    }
    if not isinstance(targets, str):
        missing = [t for t in targets if t not in base_names]
        if missing:
            result["names_not_modules_in_model"] = missing
    return result


def not_adapted(base: torch.nn.Module, peft_model: Any) -> dict[str, Any]:
    """Parameters of ``base`` that no LoRA layer adapts, by name pattern."""
    from peft.tuners.lora.layer import ParamWrapper

    covered: set[str] = set()
    wrapped_modules: set[str] = set()
    for name, mod in lora_layers(peft_model):
        path = base_path(name)
        if isinstance(mod, ParamWrapper):
            covered.add(f"{path}.{mod.parameter_name}")
        else:
            covered.add(f"{path}.weight")
            wrapped_modules.add(path)
    left: dict[str, dict[str, Any]] = {}
    biases: dict[str, dict[str, Any]] = {}
    for name, param in base.named_parameters():
        if name in covered:
            continue
        module = name.rsplit(".", 1)[0]
        bucket = biases if module in wrapped_modules else left
        entry = bucket.setdefault(pattern(name), {"count": 0, "elements": 0, "shape": list(param.shape)})
        entry["count"] += 1
        entry["elements"] += param.numel()
    return {"parameters": dict(sorted(left.items())), "bias_of_adapted_module": dict(sorted(biases.items()))}


def try_peft(base: torch.nn.Module, rank: int, targets: str | list[str], dropout: float) -> tuple[Any, list[str]]:
    """Return (peft model or the exception get_peft_model raised, its warnings) for a copy of ``base``."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=copy.copy(targets),
        lora_dropout=dropout,
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model: Any = get_peft_model(copy.deepcopy(base), cfg, low_cpu_mem_usage=True)
        except Exception as exc:  # recorded as a skip
            model = exc
    return model, [str(w.message) for w in caught if "deprecated" not in str(w.message)]


#: tests/data/hf_configs files peft also measures, as cards of the file's ``name`` (families no card has)
PEFT_EXTRA_CONFIGS = ("hf_configs/bamba-synthetic.json",)


def measure_peft(cards: dict[str, dict[str, Any]], model_types: list[str] | None = None) -> dict[str, Any]:
    import peft

    cards = dict(cards)
    for source in PEFT_EXTRA_CONFIGS:
        cards[json.loads((REPO / "tests" / "data" / source).read_text())["name"]] = load_config_source(source, {})
    if model_types:
        cards = {name: raw for name, raw in cards.items() if raw["model_type"] in model_types}

    # Smallest card of each model_type, by parameter count as built.
    by_type: dict[str, list[tuple[int, str]]] = {}
    errors: dict[str, str] = {}
    for name, raw in cards.items():
        try:
            model = meta_model(text_config(raw))
            size = sum(p.numel() for p in model.parameters())
        except Exception as exc:  # recorded under build_errors
            errors[name] = error_text(exc)
            continue
        by_type.setdefault(raw["model_type"], []).append((size, name))
    chosen = {mtype: min(entries)[1] for mtype, entries in sorted(by_type.items())}

    out: dict[str, Any] = {
        "peft_version": peft.__version__,
        "lora_config": f"LoraConfig(r=R, lora_alpha=2*R, target_modules=T, lora_dropout={LORA_DROPOUT}, "
        "bias='none', task_type='CAUSAL_LM')",
        "cards_measured": chosen,
        "cards": {},
    }
    if errors:
        out["build_errors"] = errors
    for mtype, card in chosen.items():
        print(f"peft: {card} ({mtype})", file=sys.stderr)
        entry: dict[str, Any] = {"model_type": mtype}
        try:
            base = meta_model(text_config(cards[card]))
        except Exception as exc:
            out["cards"][card] = {"model_type": mtype, "error": error_text(exc)}
            continue
        entry["base_params"] = sum(p.numel() for p in base.parameters())
        base_names = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules() if name}
        peft_warnings: set[str] = set()
        not_wrapped = None
        for rank in RANKS:
            per_rank: dict[str, Any] = {}
            for targets in TARGET_SETS:
                key = target_key(targets)
                model, caught = try_peft(base, rank, targets, LORA_DROPOUT)
                peft_warnings.update(f"{key}: {w}" for w in caught)
                if isinstance(model, BaseException):
                    per_rank[key] = {"skipped": True, "error": error_text(model)}
                    if "dropout" not in str(model):
                        continue
                    # peft refuses lora_dropout != 0 for ParamWrapper (MoE expert tensors, routers):
                    # measure what the same call does with lora_dropout=0.
                    model, caught = try_peft(base, rank, targets, 0.0)
                    peft_warnings.update(f"{key} (lora_dropout=0): {w}" for w in caught)
                    if isinstance(model, BaseException):
                        per_rank[key]["with_lora_dropout_0"] = {"skipped": True, "error": error_text(model)}
                        continue
                    per_rank[key]["with_lora_dropout_0"] = describe_peft(model, base_names, targets)
                else:
                    per_rank[key] = describe_peft(model, base_names, targets)
                if targets == "all-linear":
                    left = not_adapted(base, model)
                    left["measured_with_lora_dropout"] = model.peft_config["default"].lora_dropout
                    if not_wrapped is not None and left != not_wrapped:
                        raise RuntimeError(f"{card}: all-linear adapts different parameters at r={rank}")
                    not_wrapped = left
                del model
            entry[f"r{rank}"] = per_rank
        entry["not_adapted_by_all_linear"] = not_wrapped
        entry["peft_warnings"] = sorted(peft_warnings)
        out["cards"][card] = entry
    return out


# --------------------------------------------------------------------------- deepspeed


def measure_deepspeed() -> dict[str, Any]:
    import deepspeed
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs as zero3
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs as zero2

    out: dict[str, Any] = {
        "deepspeed_version": deepspeed.__version__,
        "zero2": {
            "function": f"{zero2.__module__}.{zero2.__name__}",
            "signature": str(inspect.signature(zero2)),
            "source": inspect.getsource(zero2),
            "returns": "(cpu_mem, gpu_mem) in bytes",
            "cases": [],
        },
        "zero3": {
            "function": f"{zero3.__module__}.{zero3.__name__}",
            "signature": str(inspect.signature(zero3)),
            "source": inspect.getsource(zero3),
            "returns": "(cpu_mem, gpu_mem, largest_layer_memory) in bytes",
            "cases": [],
        },
    }
    for total, largest in ZERO_MODELS:
        for gpus in GPUS_PER_NODE:
            for nodes in NODES:
                for offload in (True, False):
                    cpu, gpu = zero2(total, num_gpus_per_node=gpus, num_nodes=nodes, cpu_offload=offload)
                    out["zero2"]["cases"].append(
                        {
                            "total_params": total,
                            "num_gpus_per_node": gpus,
                            "num_nodes": nodes,
                            "cpu_offload": offload,
                            "cpu_mem": cpu,
                            "gpu_mem": gpu,
                        }
                    )
                    for offload_params in (True, False):
                        for zero_init in (True, False):
                            res = zero3(
                                total,
                                largest,
                                num_gpus_per_node=gpus,
                                num_nodes=nodes,
                                cpu_offload=offload,
                                cpu_offload_params=offload_params,
                                zero_init=zero_init,
                            )
                            case = {
                                "total_params": total,
                                "largest_layer_params": largest,
                                "num_gpus_per_node": gpus,
                                "num_nodes": nodes,
                                "cpu_offload": offload,
                                "cpu_offload_params": offload_params,
                                "zero_init": zero_init,
                                "cpu_mem": res[0],
                                "gpu_mem": res[1],
                            }
                            if len(res) > 2:
                                case["largest_layer_memory"] = res[2]
                            out["zero3"]["cases"].append(case)
    return out


# --------------------------------------------------------------------------- optimizers


def optimizer_factories() -> dict[str, Any]:
    """``{name: (description, factory(params) -> optimizer)}``; a factory may raise."""
    from transformers.optimization import Adafactor

    facts: dict[str, Any] = {
        "torch.AdamW": ("torch.optim.AdamW(params, lr=1e-3)", lambda p: torch.optim.AdamW(p, lr=1e-3)),
        "torch.Adam": ("torch.optim.Adam(params, lr=1e-3)", lambda p: torch.optim.Adam(p, lr=1e-3)),
        "torch.SGD_momentum0": ("torch.optim.SGD(params, lr=1e-3, momentum=0)", lambda p: torch.optim.SGD(p, lr=1e-3)),
        "torch.SGD_momentum0.9": (
            "torch.optim.SGD(params, lr=1e-3, momentum=0.9)",
            lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9),
        ),
        "transformers.Adafactor_default": ("transformers Adafactor(params)", lambda p: Adafactor(p)),
        "transformers.Adafactor_fixed_lr": (
            "transformers Adafactor(params, scale_parameter=False, relative_step=False, lr=1e-3)",
            lambda p: Adafactor(p, scale_parameter=False, relative_step=False, lr=1e-3),
        ),
    }
    try:
        import bitsandbytes as bnb

        facts.update(
            {
                "bnb.AdamW8bit": (
                    "bitsandbytes.optim.AdamW8bit(params, lr=1e-3)",
                    lambda p: bnb.optim.AdamW8bit(p, lr=1e-3),
                ),
                "bnb.PagedAdamW8bit": (
                    "bitsandbytes.optim.PagedAdamW8bit(params, lr=1e-3)",
                    lambda p: bnb.optim.PagedAdamW8bit(p, lr=1e-3),
                ),
                "bnb.Lion": ("bitsandbytes.optim.Lion(params, lr=1e-4)", lambda p: bnb.optim.Lion(p, lr=1e-4)),
                "bnb.Lion8bit": (
                    "bitsandbytes.optim.Lion8bit(params, lr=1e-4)",
                    lambda p: bnb.optim.Lion8bit(p, lr=1e-4),
                ),
            }
        )
    except Exception as exc:
        facts["bitsandbytes"] = ("import bitsandbytes", exc)
    if hasattr(torch.optim, "Muon"):
        facts["torch.Muon"] = ("torch.optim.Muon(params, lr=1e-3)", lambda p: torch.optim.Muon(p, lr=1e-3))
    return facts


def state_storage(optimizer: torch.optim.Optimizer) -> tuple[int, int, set[int]]:
    """(state bytes without 'step', bytes of tensor 'step' entries), each storage once."""
    seen: set[int] = set()
    state_bytes = step_bytes = 0
    for per_param in optimizer.state.values():
        for key, value in per_param.items():
            if not torch.is_tensor(value):
                continue
            storage = value.untyped_storage()
            ptr = storage.data_ptr()
            if ptr in seen:
                continue
            seen.add(ptr)
            if key == "step":
                step_bytes += storage.nbytes()
            else:
                state_bytes += storage.nbytes()
    return state_bytes, step_bytes, seen


def describe_state(state: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in sorted(state.items()):
        if torch.is_tensor(value):
            out[key] = {
                "shape": list(value.shape),
                "dtype": dtype_name(value.dtype),
                "bytes": value.numel() * value.element_size(),
            }
        else:
            out[key] = {"python": type(value).__name__, "bytes": 0}
    return out


def measure_optimizers() -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": f"torch.nn.Linear({OPT_DIM}, {OPT_DIM}, bias=False), one forward/backward/step on an "
        f"(8, {OPT_DIM}) input",
        "params": OPT_DIM * OPT_DIM,
        "results": {},
    }
    for name, (description, factory) in optimizer_factories().items():
        entry: dict[str, Any] = {"call": description}
        out["results"][name] = entry
        if isinstance(factory, BaseException):
            entry["error"] = error_text(factory)
            continue
        for dtype in (torch.float32, torch.bfloat16):
            key = dtype_name(dtype)
            torch.manual_seed(0)
            try:
                layer = torch.nn.Linear(OPT_DIM, OPT_DIM, bias=False, dtype=dtype)
                opt = factory(list(layer.parameters()))
                x = torch.randn(8, OPT_DIM, dtype=dtype)
                layer(x).float().pow(2).mean().backward()
                opt.step()
                state_bytes, step_bytes, _ = state_storage(opt)
                entry[key] = {
                    "state_bytes": state_bytes,
                    "step_bytes": step_bytes,
                    "bytes_per_param": state_bytes / (OPT_DIM * OPT_DIM),
                    "state": describe_state(opt.state[layer.weight]),
                }
            except Exception as exc:  # e.g. a backend without CPU kernels
                entry[key] = {"error": error_text(exc)}
            # State tensors for several parameter shapes, stepped in one optimizer.
            torch.manual_seed(0)
            params = [torch.nn.Parameter(torch.randn(*shape, dtype=dtype)) for shape in STATE_SHAPES]
            shapes: dict[str, Any] = {}
            try:
                opt = factory(params)
                sum((p.float() ** 2).sum() for p in params).backward()
                opt.step()
                for p in params:
                    shapes["x".join(map(str, p.shape))] = describe_state(opt.state[p])
            except Exception as exc:  # Muon takes 2-D parameters only
                shapes = {"error": error_text(exc)}
                if name == "torch.Muon":
                    try:
                        opt = factory(params[:1])
                        (params[0].float() ** 2).sum().backward()
                        opt.step()
                        shapes["1024x1024_alone"] = describe_state(opt.state[params[0]])
                    except Exception as exc2:
                        shapes["1024x1024_alone"] = {"error": error_text(exc2)}
            entry.setdefault(key, {})["state_tensors"] = shapes
    return out


# --------------------------------------------------------------------------- activations


class SavedTensorRecorder:
    """Record the tensors autograd saves for backward, and the inputs checkpointed layers keep."""

    def __init__(self, param_ptrs: set[int]) -> None:
        self.param_ptrs = param_ptrs
        self.saved: list[tuple[Any, int, int, tuple[int, ...], str, int]] = []
        self.ckpt: list[tuple[Any, int, int, tuple[int, ...], str, int]] = []

    def _entry(self, t: torch.Tensor) -> tuple[Any, int, int, tuple[int, ...], str, int]:
        storage = t.untyped_storage()
        return (
            weakref.ref(t),
            storage.data_ptr(),
            storage.nbytes(),
            tuple(t.shape),
            dtype_name(t.dtype),
            t.numel() * t.element_size(),
        )

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        self.saved.append(self._entry(t))
        return t

    @staticmethod
    def unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def wrap_checkpoint(self, func: Any) -> Any:
        @functools.wraps(func)
        def wrapped(fn: Any, *args: Any, **kwargs: Any) -> Any:
            held = list(args) + list(kwargs.values()) + list(getattr(fn, "keywords", {}).values())
            for value in held:
                values = value if isinstance(value, (tuple, list)) else (value,)
                for v in values:
                    if torch.is_tensor(v):
                        self.ckpt.append(self._entry(v))
            return func(fn, *args, **kwargs)

        return wrapped

    def summary(self) -> dict[str, Any]:
        seen: set[int] = set()
        breakdown: Counter[tuple[str, str, str]] = Counter()
        breakdown_bytes: Counter[tuple[str, str, str]] = Counter()
        totals = Counter()
        freed = 0
        for source, entries in (("saved", self.saved), ("ckpt", self.ckpt)):
            for ref, ptr, nbytes, shape, dtype, view_bytes in entries:
                if source == "saved" and ref() is None:
                    freed += 1  # its graph branch was dropped during the forward
                    continue
                if ptr in self.param_ptrs:
                    kind = "param"
                elif source == "ckpt":
                    kind = "ckpt_input"
                else:
                    kind = "act"
                if source == "saved":
                    totals["saved_views"] += 1
                    totals["saved_view_bytes"] += view_bytes
                new = 0
                if ptr not in seen:
                    seen.add(ptr)
                    new = nbytes
                key = (str(list(shape)), dtype, kind)
                breakdown[key] += 1
                breakdown_bytes[key] += new
                totals[kind] += new
        return {
            "saved_bytes": totals["act"] + totals["param"] + totals["ckpt_input"],
            "activation_bytes": totals["act"] + totals["ckpt_input"],
            "param_bytes": totals["param"],
            "checkpoint_input_bytes": totals["ckpt_input"],
            "saved_views": totals["saved_views"],
            "saved_view_bytes_sum": totals["saved_view_bytes"],
            "saved_then_freed_in_forward": freed,
            "breakdown": sorted([json.loads(k[0]), k[1], k[2], n, breakdown_bytes[k]] for k, n in breakdown.items()),
        }


def memory_profile(prof: Any) -> dict[str, int]:
    """Net forward allocation and backward peak from the profiler's CPU memory events."""
    events = list(prof.profiler.kineto_results.events())
    phases = ("measure_forward", "measure_backward")
    spans = {e.name(): (e.start_ns(), e.end_ns()) for e in events if e.name() in phases}
    memory = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    out = {}
    for phase in ("forward", "backward"):
        start, end = spans[f"measure_{phase}"]
        cur = peak = 0
        for ts, nbytes in memory:
            if start <= ts <= end:
                cur += nbytes
                peak = max(peak, cur)
        out[f"{phase}_net_bytes"] = cur
        out[f"{phase}_peak_above_start_bytes"] = peak
    return out


def activation_config(raw: dict[str, Any], layers: int) -> transformers.PreTrainedConfig:
    overrides: dict[str, Any] = {
        "num_hidden_layers": layers,
        "vocab_size": SMALL_VOCAB,
        "attention_dropout": 0.0,
        "use_cache": False,
    }
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        value = raw.get(key)
        if isinstance(value, list) or (isinstance(value, int) and value >= SMALL_VOCAB):
            overrides[key] = None
    text = text_config(raw)
    if getattr(text, "layer_types", None):
        overrides["layer_types"] = list(text.layer_types[:layers])
    for key in ("hidden_dropout", "embd_pdrop", "resid_pdrop", "dropout"):
        if hasattr(text, key):
            overrides[key] = 0.0
    return text_config(raw, **overrides)


def measure_activation_case(model: Any, batch: int, seq: int, checkpointing: bool) -> dict[str, Any]:
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    recorder = SavedTensorRecorder(param_ptrs)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        for module in model.modules():
            if getattr(module, "gradient_checkpointing", False) and hasattr(module, "_gradient_checkpointing_func"):
                module._gradient_checkpointing_func = recorder.wrap_checkpoint(module._gradient_checkpointing_func)
    else:
        model.gradient_checkpointing_disable()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    ids = torch.randint(0, SMALL_VOCAB, (batch, seq))
    from torch.profiler import ProfilerActivity, profile, record_function

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with record_function("measure_forward"):
            with torch.autograd.graph.saved_tensors_hooks(recorder.pack, recorder.unpack):
                loss = model(input_ids=ids, labels=ids).loss
        summary = recorder.summary()
        with record_function("measure_backward"):
            loss.backward()
    del loss
    summary["profiler"] = memory_profile(prof)
    summary["profiler"]["param_grad_bytes"] = sum(
        p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None
    )
    model.zero_grad(set_to_none=True)
    return summary


def measure_activations(cards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "small_vocab": SMALL_VOCAB,
        "dtype": dtype_name(DTYPE),
        "device": "cpu",
        "shapes_batch_seq": [list(s) for s in SHAPES],
        "geometries": {},
    }
    for name, fallback in ACTIVATION_GEOMETRIES:
        card = name if name in cards else fallback
        if card not in cards:
            out["geometries"][name] = {"error": f"no card {name!r} or {fallback!r}"}
            continue
        print(f"activations: {card}", file=sys.stderr)
        geo: dict[str, Any] = {"card": card, "by_layers": {}}
        for layers in LAYER_COUNTS:
            per_layers: dict[str, Any] = {}
            for impl in IMPLS:
                try:
                    cfg = activation_config(cards[card], layers)
                    torch.manual_seed(0)
                    model = AutoModelForCausalLM.from_config(cfg, dtype=DTYPE, attn_implementation=impl)
                    model.train()
                except Exception as exc:
                    per_layers[impl] = {"error": error_text(exc)}
                    continue
                if "geometry" not in geo:
                    geo["geometry"] = {k: getattr(cfg, k, None) for k in GEOMETRY_KEYS}
                    geo["model_class"] = type(model).__name__
                per_impl: dict[str, Any] = {
                    "params": sum(p.numel() for p in model.parameters()),
                    "layer_types": list(getattr(cfg, "layer_types", None) or []),
                    "attn_implementation_used": model.config._attn_implementation,
                }
                for checkpointing in (False, True):
                    ck = "checkpointing" if checkpointing else "no_checkpointing"
                    per_impl[ck] = {}
                    for batch, seq in SHAPES:
                        try:
                            result = measure_activation_case(model, batch, seq, checkpointing)
                        except Exception as exc:
                            result = {"error": error_text(exc)}
                        per_impl[ck][f"b{batch}_s{seq}"] = result
                per_layers[impl] = per_impl
                del model
            geo["by_layers"][str(layers)] = per_layers
        out["geometries"][name] = geo
    return out


# LoRA activations: the same small copies wrapped by peft (adapters in fp32, as peft keeps them on a
# 16-bit base), r=16, two target sets, with and without torch.autocast (transformers' Trainer with bf16=True
# runs the forward under autocast)
LORA_ACTIVATION_RANK = 16
LORA_ACTIVATION_TARGETS: tuple[str | list[str], ...] = ("all-linear", ["q_proj", "v_proj"])


def measure_lora_activations(cards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from peft import LoraConfig, get_peft_model

    out: dict[str, Any] = {
        "rank": LORA_ACTIVATION_RANK, "small_vocab": SMALL_VOCAB, "dtype": dtype_name(DTYPE),
        "shapes_batch_seq": [list(s) for s in SHAPES], "lora_dropout": 0.0, "geometries": {},
    }
    for name, fallback in ACTIVATION_GEOMETRIES:
        card = name if name in cards else fallback
        print(f"lora activations: {card}", file=sys.stderr)
        geo: dict[str, Any] = {"card": card, "by_layers": {}}
        for layers in LAYER_COUNTS:
            per_layers: dict[str, Any] = {}
            for impl in IMPLS:
                for targets in LORA_ACTIVATION_TARGETS:
                    key = f"{impl}/{target_key(targets)}"
                    try:
                        cfg = activation_config(cards[card], layers)
                        torch.manual_seed(0)
                        base = AutoModelForCausalLM.from_config(cfg, dtype=DTYPE, attn_implementation=impl)
                        model = get_peft_model(base, LoraConfig(r=LORA_ACTIVATION_RANK, lora_alpha=32,
                                                                target_modules=targets, lora_dropout=0.0,
                                                                bias="none", task_type="CAUSAL_LM"))
                        model.train()
                        # gradient checkpointing on a frozen embedding needs inputs that require grad
                        model.enable_input_require_grads()
                    except Exception as exc:
                        per_layers[key] = {"error": error_text(exc)}
                        continue
                    entry: dict[str, Any] = {
                        "layer_types": list(getattr(cfg, "layer_types", None) or []),
                        "trainable": model.get_nb_trainable_parameters()[0],
                    }
                    for autocast in (False, True):
                        for checkpointing in (False, True):
                            ck = ("autocast_" if autocast else "") + (
                                "checkpointing" if checkpointing else "no_checkpointing")
                            entry[ck] = {}
                            for batch, seq in SHAPES:
                                try:
                                    with torch.autocast("cpu", dtype=DTYPE, enabled=autocast):
                                        result = measure_activation_case(model, batch, seq, checkpointing)
                                    result.pop("profiler", None)
                                except Exception as exc:
                                    result = {"error": error_text(exc)}
                                entry[ck][f"b{batch}_s{seq}"] = result
                    per_layers[key] = entry
                    del model, base
            geo["by_layers"][str(layers)] = per_layers
        out["geometries"][name] = geo
    return out


# --------------------------------------------------------------------------- hybrid (Mamba2) activations
# Small copies of the Mamba2 hybrids: (geometry name, card or tests/data/hf_configs file, layouts).  A layout is
# the layer kinds of the copy, in order ("mamba", "attention"; Falcon-H1's layers are all "hybrid"; Nemotron-H's
# one-sub-block layers "mamba", "attention", "mlp" and "moe").
HYBRID_GEOMETRIES: tuple[tuple[str, str, tuple[tuple[str, ...], ...]], ...] = (
    ("Granite-4.0-H-Micro", "Granite-4.0-H-Micro",
     (("mamba",), ("attention",), ("mamba", "mamba"), ("mamba", "attention"))),
    ("Granite-4.0-H-Tiny", "Granite-4.0-H-Tiny", (("mamba",), ("mamba", "mamba"), ("mamba", "attention"))),
    ("bamba-synthetic", "hf_configs/bamba-synthetic.json", (("mamba",), ("mamba", "mamba"), ("mamba", "attention"))),
    ("Falcon-H1-7B-Instruct", "Falcon-H1-7B-Instruct", (("hybrid",), ("hybrid", "hybrid"))),
    ("Nemotron-3-Nano", "NVIDIA-Nemotron-3-Nano-30B-A3B",
     (("mamba",), ("attention",), ("mlp",), ("moe",), ("mamba", "moe", "attention", "mlp"))),
    ("Qwen3-Next-80B-A3B-Instruct", "Qwen3-Next-80B-A3B-Instruct",
     (("deltanet",), ("attention",), ("deltanet", "attention"))),
    ("Qwen3.5-defaults", "hf_configs/qwen3.5-defaults.json",
     (("deltanet",), ("attention",), ("deltanet", "attention"))),
    ("Qwen3.5-MoE-defaults", "hf_configs/qwen3.5-moe-defaults.json",
     (("deltanet",), ("attention",), ("deltanet", "attention"))),
    ("Jamba-v0.1-defaults", "hf_configs/jamba-v0.1-defaults.json",
     (("mamba",), ("attention",), ("mamba", "attention"), ("mamba+moe",), ("mamba", "attention+moe"))),
)
#: config fields a geometry's small copy changes beyond its layers and vocab (recorded as ``overrides``): 16 of
#: Nemotron-3-Nano's 128 experts keep its MoE layer small on the CPU (every expert has the card's shape)
HYBRID_OVERRIDES: dict[str, dict[str, Any]] = {"Nemotron-3-Nano": {"n_routed_experts": 16},
                                               "Qwen3-Next-80B-A3B-Instruct": {"num_experts": 16},
                                               "Qwen3.5-MoE-defaults": {"num_experts": 16},
                                               # Jamba: 4 of its 16 experts (each of the card's shape)
                                               "Jamba-v0.1-defaults": {"num_experts": 4}}
#: shapes a geometry is measured at beyond HYBRID_SHAPES (Jamba: past the selective scan's 2048-token chunk)
HYBRID_EXTRA_SHAPES: dict[str, tuple[tuple[int, int], ...]] = {"Jamba-v0.1-defaults": ((1, 2100),)}
#: LoRA targets of a geometry where peft refuses "all-linear" (falcon_h1 and nemotron_h: Mamba's out_proj,
#: peft tuners_utils._check_lora_target_modules_mamba): every other linear of its layers
HYBRID_LORA_TARGETS: dict[str, list[str]] = {
    "Falcon-H1-7B-Instruct": ["q_proj", "k_proj", "v_proj", "o_proj", "in_proj", "gate_proj", "up_proj",
                              "down_proj"],
    "Nemotron-3-Nano": ["q_proj", "k_proj", "v_proj", "o_proj", "in_proj", "up_proj", "down_proj"],
}
#: Nemotron-H's layers_block_type names of the layout kinds (transformers NemotronHConfig)
NEMOTRON_BLOCKS = {"mamba": "linear_attention", "attention": "full_attention", "mlp": "mlp", "moe": "moe"}
HYBRID_SHAPES = ((1, 64), (2, 64))
HYBRID_LORA_RANK = 16
#: the transformers modules whose Mamba2 layers call mamba_ssm's fused function in training
MAMBA2_MODULES = ("bamba", "granitemoehybrid", "falcon_h1", "nemotron_h")
#: the transformers modules whose gated-DeltaNet layers call fla's chunk_gated_delta_rule and causal_conv1d's
#: causal_conv1d_fn in training (transformers integrations/hub_kernels.py use_kernel_func_from_hub_with_fallback:
#: the package when it imports, else the torch reference)
DELTANET_MODULES = ("qwen3_next", "qwen3_5", "qwen3_5_moe")
#: the transformers modules whose Mamba1 layers call causal_conv1d_fn and mamba_ssm's selective_scan_fn in training
MAMBA1_MODULES = ("jamba",)
#: mamba_ssm's selective scan keeps its state every this many tokens (csrc/selective_scan: kChunkSize 2048)
SCAN_CHUNK = 2048
#: fla's chunk size: the WY matrix A it saves is (b, s, value heads, FLA_CHUNK) in the input dtype
FLA_CHUNK = 64


class SplitConv1dScanStandIn(torch.autograd.Function):
    """A CPU stand-in for mamba_ssm's ``MambaSplitConv1dScanCombinedFn`` that saves what the CUDA one saves.

    transformers' Mamba2 layers (``BambaMixer``, ``GraniteMoeHybridMambaLayer``, ``FalconH1Mixer``,
    ``NemotronHMamba2Mixer``) call ``mamba_split_conv1d_scan_combined`` when training without a cache, and
    fall back to their ``torch_forward`` only where mamba_ssm is missing (as on this CPU).  The real
    forward (state-spaces/mamba, mamba_ssm/ops/triton/ssd_combined.py,
    ``MambaSplitConv1dScanCombinedFn.forward``) runs causal_conv1d, the chunked scan, the gated RMSNorm
    and out_proj inside one autograd Function and keeps ``ctx.save_for_backward(zxbcdt, conv1d_weight,
    conv1d_bias, out_x, A, D, dt_bias, initial_states, seq_idx, rmsnorm_weight, rstd, outproj_weight,
    outproj_bias)``: the in_proj output, the scan output ``out_x`` (b, s, heads, head_dim) in the input's
    dtype, the fp32 ``rstd`` of the gated norm (one per row and group: layernorm_gated ``_layer_norm_fwd``),
    the parameters and A.  This stand-in saves the same tensors, with the same shapes and dtypes; its
    values are not the scan's (a convolution and a D skip stand for it), which no byte count depends on.
    """

    @staticmethod
    def forward(ctx: Any, zxbcdt: torch.Tensor, conv1d_weight: torch.Tensor, conv1d_bias: Any,
                dt_bias: torch.Tensor, A: torch.Tensor, D: torch.Tensor, rmsnorm_weight: Any, rmsnorm_eps: float,
                outproj_weight: Any, outproj_bias: Any, headdim: int, ngroups: int) -> torch.Tensor:
        nheads = D.shape[0]
        dim = nheads * headdim
        dstate = (conv1d_weight.shape[0] - dim) // ngroups // 2
        z, xbc, _ = torch.split(zxbcdt, [dim, dim + 2 * ngroups * dstate, nheads], dim=-1)
        seq = xbc.shape[1]
        conv = torch.nn.functional.conv1d(xbc.transpose(1, 2), conv1d_weight.unsqueeze(1), conv1d_bias,
                                          padding=conv1d_weight.shape[-1] - 1, groups=conv1d_weight.shape[0])
        x = torch.nn.functional.silu(conv[..., :seq]).transpose(1, 2)[..., :dim]
        out_x = (x * D.repeat_interleave(headdim).to(x.dtype)).contiguous()
        gated = out_x.float() * torch.nn.functional.silu(z.float())
        rstd = None
        if rmsnorm_weight is not None:
            grouped = gated.view(*gated.shape[:-1], ngroups, dim // ngroups)
            rstd = torch.rsqrt(grouped.pow(2).mean(-1) + rmsnorm_eps).reshape(-1)       # (b s g,) fp32
            gated = (grouped * rstd.view(*grouped.shape[:-1], 1)).view_as(gated) * rmsnorm_weight.float()
        out = gated.to(zxbcdt.dtype)
        if outproj_weight is not None:
            out = torch.nn.functional.linear(out, outproj_weight, outproj_bias)
        ctx.save_for_backward(zxbcdt, conv1d_weight, conv1d_bias, out_x, A, D, dt_bias, rmsnorm_weight, rstd,
                              outproj_weight, outproj_bias)
        ctx.n_inputs = 12
        return out

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[Any, ...]:
        # zero gradients of the right shapes: the saved-bytes figures do not depend on the backward's values
        grads: list[Any] = [None] * ctx.n_inputs
        saved = ctx.saved_tensors
        for slot, tensor in ((0, saved[0]), (1, saved[1]), (2, saved[2]), (3, saved[6]), (4, saved[4]),
                             (5, saved[5]), (6, saved[7]), (8, saved[9]), (9, saved[10])):
            if tensor is not None and ctx.needs_input_grad[slot]:
                grads[slot] = torch.zeros_like(tensor)
        return tuple(grads)


def split_conv1d_scan_standin(zxbcdt: torch.Tensor, conv1d_weight: torch.Tensor, conv1d_bias: Any,
                              dt_bias: torch.Tensor, A: torch.Tensor, D: torch.Tensor, chunk_size: int = 256,
                              rmsnorm_weight: Any = None, rmsnorm_eps: float = 1e-6, outproj_weight: Any = None,
                              outproj_bias: Any = None, headdim: int | None = None, ngroups: int = 1,
                              **kwargs: Any) -> torch.Tensor:
    """Call :class:`SplitConv1dScanStandIn` with ``mamba_split_conv1d_scan_combined``'s arguments."""
    return SplitConv1dScanStandIn.apply(zxbcdt, conv1d_weight, conv1d_bias, dt_bias, A, D, rmsnorm_weight,
                                        rmsnorm_eps or 1e-6, outproj_weight, outproj_bias, headdim, ngroups)


class CausalConv1dStandIn(torch.autograd.Function):
    """A CPU stand-in for causal_conv1d's ``CausalConv1dFn`` that saves what the CUDA one saves.

    Dao-AILab/causal-conv1d ``causal_conv1d/causal_conv1d_interface.py`` (v1.6.1), ``CausalConv1dFn.forward``:
    ``x`` is made contiguous only when neither its channel nor its time stride is 1 (a channel-last view, as
    transformers passes the transposed projection, is kept as it is), the output is ``torch.empty_like(x)``
    after the optional silu, and ``ctx.save_for_backward(x, weight, bias, seq_idx, initial_states)`` keeps the
    input (a view of its whole storage), the weight and the bias; the output is recomputed in the backward.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: Any, activation: Any) -> torch.Tensor:
        if x.stride(2) != 1 and x.stride(1) != 1:
            x = x.contiguous()
        conv = torch.nn.functional.conv1d(x, weight.unsqueeze(1), bias, padding=weight.shape[-1] - 1,
                                          groups=x.shape[1])[..., :x.shape[-1]]
        if activation in ("silu", "swish"):
            conv = torch.nn.functional.silu(conv)
        out = torch.empty_like(x)
        out.copy_(conv)
        ctx.save_for_backward(x, weight, bias)
        return out

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[Any, ...]:
        x, weight, bias = ctx.saved_tensors
        grads = [torch.zeros_like(t) if t is not None and ctx.needs_input_grad[i] else None
                 for i, t in enumerate((x, weight, bias))]
        return (*grads, None)


def causal_conv1d_standin(x: torch.Tensor, weight: torch.Tensor, bias: Any = None, seq_idx: Any = None,
                          initial_states: Any = None, return_final_states: bool = False,
                          final_states_out: Any = None, activation: Any = None, **kwargs: Any) -> torch.Tensor:
    """Call :class:`CausalConv1dStandIn` with ``causal_conv1d_fn``'s arguments (no packed sequences, no state)."""
    if seq_idx is not None or initial_states is not None or return_final_states:
        raise NotImplementedError("the stand-in runs a plain training forward only")
    return CausalConv1dStandIn.apply(x, weight, bias, activation)


class ChunkGatedDeltaRuleStandIn(torch.autograd.Function):
    """A CPU stand-in for fla's ``ChunkGatedDeltaRuleFunction`` that saves what the CUDA one saves.

    fla-org/flash-linear-attention ``fla/ops/gated_delta_rule/chunk.py`` (0.5.2): ``@input_guard`` makes every
    input contiguous; with ``use_qk_l2norm_in_kernel`` q and k are l2-normalised (``l2norm_fwd``: the output in
    the input dtype, an fp32 rstd per row); g is cumulated per chunk in fp32 (``chunk_local_cumsum``); A is
    ``(b, s, value heads, 64)`` in k's dtype; and ``ctx.save_for_backward(q, q_rstd, k, k_rstd, v, g, beta_raw,
    beta, A, initial_state, cu_seqlens, chunk_indices, g_input, A_log, dt_bias)`` keeps the normalised q and k,
    their rstd, v, the cumulated g, beta (once: ``beta_raw`` is ``beta``) and A, the rest None in plain training.
    The chunk states h, w and u are recomputed in the backward.  q and k keep their own (key) heads: fla takes
    fewer key than value heads (GVA, fla >= 0.5.0).  The output is ``(b, s, value heads, value dim)`` in v's
    dtype.  Values are not the rule's (none of the saved bytes depends on them).
    """

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
                beta: torch.Tensor) -> torch.Tensor:
        q, k, v, g, beta = (t.contiguous() for t in (q, k, v, g, beta))

        def l2norm(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            rstd = torch.rsqrt(x.float().pow(2).sum(-1) + 1e-6)
            return (x.float() * rstd.unsqueeze(-1)).to(x.dtype), rstd

        q_n, q_rstd = l2norm(q)
        k_n, k_rstd = l2norm(k)
        g_cum = g.float().cumsum(1)
        b, s, hv, _ = v.shape
        A = torch.zeros(b, s, hv, FLA_CHUNK, dtype=k.dtype)
        out = torch.empty_like(v)
        out.copy_(v * beta.unsqueeze(-1).to(v.dtype))
        ctx.save_for_backward(q_n, q_rstd, k_n, k_rstd, v, g_cum, beta, A)
        ctx.shapes = [(t.shape, t.dtype) for t in (q, k, v, g, beta)]
        return out

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[Any, ...]:
        return tuple(torch.zeros(shape, dtype=dtype) if ctx.needs_input_grad[i] else None
                     for i, (shape, dtype) in enumerate(ctx.shapes))


def chunk_gated_delta_rule_standin(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
                                   beta: torch.Tensor, scale: Any = None, initial_state: Any = None,
                                   output_final_state: bool = False, use_qk_l2norm_in_kernel: bool = False,
                                   cu_seqlens: Any = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Call :class:`ChunkGatedDeltaRuleStandIn` with ``chunk_gated_delta_rule``'s arguments (training, no state)."""
    if initial_state is not None or output_final_state or cu_seqlens is not None or not use_qk_l2norm_in_kernel:
        raise NotImplementedError("the stand-in runs transformers' plain training call only")
    return ChunkGatedDeltaRuleStandIn.apply(q, k, v, g, beta), None


class SelectiveScanStandIn(torch.autograd.Function):
    """A CPU stand-in for mamba_ssm's ``SelectiveScanFn`` that saves what the CUDA one saves.

    state-spaces/mamba ``mamba_ssm/ops/selective_scan_interface.py`` (2.3), ``SelectiveScanFn.forward``: u,
    delta, B, C and z are made contiguous where their last stride is not 1, a 3-D B / C gets a group axis
    (a view), the CUDA forward returns ``out`` (``empty_like(delta)``), ``x`` -- the scan state at the end of
    every 2048-token chunk, ``(b, d, ceil(l / 2048), 2 n)`` in the weight dtype (fp32) -- and, with z, ``out_z``;
    and ``ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, x, out)`` keeps all of them but out_z,
    which it returns.  Values are not the scan's (none of the saved bytes depends on them).
    """

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                C: torch.Tensor, D: Any, z: Any, delta_bias: Any) -> torch.Tensor:
        u, delta, B, C, z = (t.contiguous() if t is not None and t.stride(-1) != 1 else t
                             for t in (u, delta, B, C, z))
        B, C = (t.unsqueeze(1) if t.dim() == 3 else t for t in (B, C))
        b, d, length = u.shape
        x = torch.zeros(b, d, -(-length // SCAN_CHUNK), 2 * A.shape[1], dtype=A.dtype)
        out = torch.empty_like(delta)
        out.copy_(u if D is None else u * D.to(u.dtype).unsqueeze(-1))
        result = out
        if z is not None:
            result = torch.empty_like(delta)
            result.copy_(out * torch.nn.functional.silu(z))
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, x, out)
        ctx.shapes = [None if t is None else (t.shape, t.dtype) for t in (u, delta, A, B, C, D, z, delta_bias)]
        return result

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[Any, ...]:
        grads = []
        for i, sd in enumerate(ctx.shapes):
            shape = None if sd is None else (sd[0][:1] + sd[0][2:] if i in (3, 4) else sd[0])  # B, C: no group axis
            grads.append(torch.zeros(shape, dtype=sd[1]) if sd is not None and ctx.needs_input_grad[i] else None)
        return tuple(grads)


def selective_scan_standin(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                           C: torch.Tensor, D: Any = None, z: Any = None, delta_bias: Any = None,
                           delta_softplus: bool = False, return_last_state: bool = False,
                           **kwargs: Any) -> torch.Tensor:
    """Call :class:`SelectiveScanStandIn` with ``selective_scan_fn``'s arguments (training, no final state)."""
    if return_last_state:
        raise NotImplementedError("the stand-in runs a plain training forward only")
    return SelectiveScanStandIn.apply(u, delta, A, B, C, D, z, delta_bias)


class CudaPathOnCpu:
    """Within the block, transformers' recurrent layers call the stand-ins as they call the CUDA packages on a GPU.

    Mamba2 layers: mamba_ssm's fused function; gated-DeltaNet layers: fla's chunked rule and causal_conv1d.
    """

    def __enter__(self) -> CudaPathOnCpu:
        import importlib

        self.saved: list[tuple[Any, str, Any]] = []
        patches = [(name, "mamba2_split_conv1d_scan_combined", split_conv1d_scan_standin) for name in MAMBA2_MODULES]
        patches += [(name, attr, func) for name in DELTANET_MODULES
                    for attr, func in (("causal_conv1d_fn", causal_conv1d_standin),
                                       ("torch_chunk_gated_delta_rule", chunk_gated_delta_rule_standin))]
        patches += [(name, attr, func) for name in MAMBA1_MODULES
                    for attr, func in (("causal_conv1d_fn", causal_conv1d_standin),
                                       ("mamba_selective_scan", selective_scan_standin))]
        for name, attr, func in patches:
            module = importlib.import_module(f"transformers.models.{name}.modeling_{name}")
            self.saved.append((module, attr, getattr(module, attr)))
            setattr(module, attr, func)
        return self

    def __exit__(self, *exc: Any) -> None:
        for module, attr, func in self.saved:
            setattr(module, attr, func)


def load_config_source(source: str, cards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A card's config, or a ``hf_configs/NAME.json`` file's (under tests/data)."""
    if source.startswith("hf_configs/"):
        return json.loads((REPO / "tests" / "data" / source).read_text())["config"]
    return cards[source]


def hybrid_config(raw: dict[str, Any], layout: tuple[str, ...],
                  overrides: dict[str, Any] | None = None) -> transformers.PreTrainedConfig:
    """The small copy of `raw` with the layer kinds of `layout`, vocab :data:`SMALL_VOCAB`, no dropout."""
    if isinstance(raw.get("text_config"), dict):   # a multimodal wrapper: its decoder alone (Qwen3.5)
        raw = {**raw["text_config"], "model_type": raw["model_type"] + "_text"}
    raw = {**raw, **(overrides or {})}
    raw.pop("auto_map", None)
    n = len(layout)
    mtype = raw["model_type"]
    if mtype == "bamba":
        raw["attn_layer_indices"] = [i for i, k in enumerate(layout) if k == "attention"]
    elif mtype == "granitemoehybrid":
        raw["layer_types"] = list(layout)
    elif mtype == "jamba":
        # attention where i % attn_layer_period == attn_layer_offset, an MoE where i % expert_layer_period ==
        # expert_layer_offset ("+moe" in the layout); the others Mamba1 and dense
        mixers = [k.split("+")[0] for k in layout]
        moe = [k.endswith("+moe") for k in layout]
        period, offset = (1, 0) if set(mixers) == {"attention"} else (2, 1)
        e_period, e_offset = (1, 0) if all(moe) else (2, 1) if moe == [i % 2 == 1 for i in range(n)] else (8, 7)
        raw.update(attn_layer_period=period, attn_layer_offset=offset, expert_layer_period=e_period,
                   expert_layer_offset=e_offset)
        if [("attention" if i % period == offset else "mamba") for i in range(n)] != mixers or \
                [i % e_period == e_offset for i in range(n)] != moe:
            raise ValueError(f"no Jamba attention / expert periods lay out {layout}")
    elif mtype in ("qwen3_next", "qwen3_5_text", "qwen3_5_moe_text"):
        raw["layer_types"] = ["full_attention" if k == "attention" else "linear_attention" for k in layout]
    elif mtype == "nemotron_h":
        raw.pop("hybrid_override_pattern", None)
        raw["layers_block_type"] = [NEMOTRON_BLOCKS[k] for k in layout]
    raw.update(num_hidden_layers=n, vocab_size=SMALL_VOCAB, attention_dropout=0.0, use_cache=False)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        value = raw.get(key)
        if isinstance(value, list) or (isinstance(value, int) and value >= SMALL_VOCAB):
            raw[key] = None
    raw.pop("quantization_config", None)
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    for key in ("hidden_dropout", "embd_pdrop", "resid_pdrop", "dropout"):
        if hasattr(config, key):
            setattr(config, key, 0.0)
    return config


def measure_hybrid_activations(cards: dict[str, dict[str, Any]], only: list[str] | None = None) -> dict[str, Any]:
    from peft import LoraConfig, get_peft_model

    out: dict[str, Any] = {
        "small_vocab": SMALL_VOCAB, "dtype": dtype_name(DTYPE), "device": "cpu", "attn_implementation": "sdpa",
        "shapes_batch_seq": [list(s) for s in HYBRID_SHAPES], "lora_rank": HYBRID_LORA_RANK,
        "lora_targets": "all-linear", "scan": (
            "the Mamba2 layers' fused function replaced by SplitConv1dScanStandIn, which saves the tensors "
            "state-spaces/mamba ssd_combined.py MambaSplitConv1dScanCombinedFn.forward saves "
            "(ctx.save_for_backward): the CUDA path transformers takes in training; the gated-DeltaNet layers' "
            "fla chunk_gated_delta_rule and causal_conv1d_fn replaced by ChunkGatedDeltaRuleStandIn and "
            "CausalConv1dStandIn, which save what fla-org/flash-linear-attention fla/ops/gated_delta_rule/chunk.py "
            "ChunkGatedDeltaRuleFunction.forward and Dao-AILab/causal-conv1d causal_conv1d_interface.py "
            "CausalConv1dFn.forward save; Jamba's Mamba1 layers' causal_conv1d_fn and selective_scan_fn by "
            "CausalConv1dStandIn and SelectiveScanStandIn (state-spaces/mamba selective_scan_interface.py "
            "SelectiveScanFn.forward); everything around them is transformers' own code, measured; "
            "torch_forward_* figures are the CPU fallback, unpatched"),
        "geometries": {},
    }
    for name, source, layouts in HYBRID_GEOMETRIES:
        if only is not None and name not in only:
            continue
        print(f"hybrid activations: {name}", file=sys.stderr)
        raw = load_config_source(source, cards)
        overrides = HYBRID_OVERRIDES.get(name, {})
        targets: str | list[str] = HYBRID_LORA_TARGETS.get(name, "all-linear")
        geo: dict[str, Any] = {"source": source, "model_type": raw["model_type"], "by_layout": {},
                               "overrides": overrides, "lora_targets": targets}
        for layout in layouts:
            key = "+".join(layout)
            entry: dict[str, Any] = {"layout": list(layout)}
            for method in ("full", "lora"):
                try:
                    torch.manual_seed(0)
                    model: Any = AutoModelForCausalLM.from_config(hybrid_config(raw, layout, overrides),
                                                                  dtype=DTYPE, attn_implementation="sdpa")
                    if method == "lora":
                        model = get_peft_model(model, LoraConfig(r=HYBRID_LORA_RANK, lora_alpha=32,
                                                                 target_modules=targets, lora_dropout=0.0,
                                                                 bias="none", task_type="CAUSAL_LM"))
                        model.enable_input_require_grads()
                        entry["lora_trainable"] = model.get_nb_trainable_parameters()[0]
                    model.train()
                except Exception as exc:
                    entry[method] = {"error": error_text(exc)}
                    continue
                entry.setdefault("params", sum(p.numel() for p in model.parameters()))
                modes = ((False, False), (False, True)) if method == "full" else \
                    ((False, False), (False, True), (True, False), (True, True))
                for autocast, checkpointing in modes:
                    mode = f"{method}/" + ("autocast_" if autocast else "") + (
                        "checkpointing" if checkpointing else "no_checkpointing")
                    entry[mode] = {}
                    for batch, seq in HYBRID_SHAPES + HYBRID_EXTRA_SHAPES.get(name, ()):
                        try:
                            with CudaPathOnCpu(), torch.autocast("cpu", dtype=DTYPE, enabled=autocast):
                                result = measure_activation_case(model, batch, seq, checkpointing)
                            result.pop("profiler", None)
                        except Exception as exc:
                            result = {"error": error_text(exc)}
                        entry[mode][f"b{batch}_s{seq}"] = result
                if method == "full":
                    try:
                        result = measure_activation_case(model, 1, 64, False)
                        entry["torch_forward_activation_bytes_b1_s64"] = result["activation_bytes"]
                    except Exception as exc:
                        entry["torch_forward_activation_bytes_b1_s64"] = {"error": error_text(exc)}
                del model
            geo["by_layout"][key] = entry
        out["geometries"][name] = geo
    return out


# --------------------------------------------------------------------------- main


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    for module in ("peft", "deepspeed", "bitsandbytes", "accelerate"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found[module] = __import__(module).__version__
        except Exception as exc:
            found[module] = f"unavailable ({error_text(exc)})"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--skip", nargs="*", choices=SECTIONS, default=[])
    parser.add_argument("--update", action="store_true",
                        help="keep the sections of an existing --output that this run skips")
    parser.add_argument("--peft-model-types", nargs="*", default=None,
                        help="measure peft for these model types only; with --update, merged into the kept "
                             "peft section")
    parser.add_argument("--hybrid-geometries", nargs="*", default=None,
                        help="measure hybrid_activations for these geometries only; with --update, merged into "
                             "the kept section")
    args = parser.parse_args(argv)

    cards = load_cards(args.models_dir)
    result: dict[str, Any] = {
        "about": (
            "Training-memory figures measured on the CPU by tools/measure_training.py: LoRA trainable "
            "parameters as peft counts them (models built on the meta device from the vramcore cards), the "
            "DeepSpeed ZeRO-2/3 model-state estimators (source and results), optimizer state bytes per "
            "parameter after one step, and bytes saved for backward by small bfloat16 copies of real "
            "configs. See the script's docstring for how each figure is obtained."
        ),
        "versions": versions(),
    }
    kept: dict[str, Any] = {}
    if args.update and args.output.exists():
        kept = json.loads(args.output.read_text())
        result.update({k: v for k, v in kept.items() if k in SECTIONS and k in args.skip})
        if "versions" in kept:
            # the kept sections were measured with the kept versions; this run's are recorded beside them
            result["versions"] = kept["versions"]
            result["update_versions"] = {**kept.get("update_versions", {}),
                                         **{s: versions() for s in SECTIONS if s not in args.skip}}
    measures = {
        "peft": lambda: measure_peft(cards, args.peft_model_types),
        "deepspeed": measure_deepspeed,
        "optimizers": measure_optimizers,
        "activations": lambda: measure_activations(cards),
        "lora_activations": lambda: measure_lora_activations(cards),
        "hybrid_activations": lambda: measure_hybrid_activations(cards, args.hybrid_geometries),
    }
    for section, measure in measures.items():
        if section in args.skip:
            continue
        start = time.perf_counter()
        try:
            result[section] = measure()
        except Exception as exc:  # recorded, the other sections still run
            if section in kept and (args.peft_model_types if section == "peft" else args.hybrid_geometries):
                # a partial re-measure that failed keeps the section it would have merged into
                print(f"{section}: FAILED ({error_text(exc)}); the kept section is left as it was", file=sys.stderr)
                result[section] = kept[section]
                continue
            result[section] = {"error": error_text(exc)}
        if section == "peft" and args.peft_model_types and "peft" in kept and "cards" in result[section]:
            merged = kept["peft"]
            merged["cards"].update(result[section]["cards"])
            merged["cards_measured"].update(result[section]["cards_measured"])
            result[section] = merged
        if section == "hybrid_activations" and args.hybrid_geometries and section in kept \
                and "geometries" in result[section]:
            # this run's description of the method (and its shapes, rank ...) with the kept geometries and its own
            merged = {**kept[section], **{k: v for k, v in result[section].items() if k != "geometries"}}
            merged["geometries"] = {**kept[section]["geometries"], **result[section]["geometries"]}
            result[section] = merged
        print(f"{section}: {time.perf_counter() - start:.1f} s", file=sys.stderr)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
