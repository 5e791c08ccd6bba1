"""Training: one optimizer step of full fine-tuning, LoRA or QLoRA, as an engine.

``get_engine("train")`` (full fine-tuning), ``get_engine("lora")`` and
``get_engine("qlora")`` are one engine kind, ``"train"``, whose knobs are named
as the training stacks name them (``method``, ``lora_rank``, ``lora_targets``,
``optimizer``, ``precision``, ``recompute``, ``attention``, ``zero``, ``dp``,
``offload_optimizer``, ``offload_params``; aliases such as
``gradient_checkpointing``, ``fsdp``, ``target_modules``, ``optim`` and
transformers' optimizer names are accepted).  ``context`` is the sequence
length and ``batch`` the micro-batch per GPU.  The formulas are
``include/vramcore/training.h`` and ``include/vramcore/engines/train.h``; this
module holds the rules that need a model's tensors: which parameters LoRA
adds (as peft counts them), what each optimizer keeps per tensor, and the
per-element widths of gradients and master weights.

Rules and their sources
-----------------------
- LoRA adds ``r x (in + out)`` parameters per adapted ``nn.Linear`` (peft
  ``LoraLayer.update_layer``); "all-linear" adapts every ``nn.Linear`` but the
  output layer (peft ``_maybe_include_all_linear_layers``).  transformers 5
  stores the routed experts as fused 3-D parameters: peft 0.21 adapts them with
  ``ParamWrapper`` at rank ``r`` per expert (``down_proj``) and ``2 r`` for the
  fused ``gate_up_proj`` (its ``rank_pattern``), and the router as ``gate.weight``;
  for the model types it converts (peft ``utils/transformers_weight_conversion.py``,
  ``_MOE_TARGET_MODULE_MAPPING``: Mixtral's ``w1/w2/w3/gate``, the Qwen2-MoE group's
  ``gate_proj/up_proj/down_proj/gate``) the named MLP projections go to the
  experts only, so dense and shared-expert MLPs of those models are not adapted.
  Measured: tests/data/training_measured.json (peft 0.21.2, every card family).
- peft keeps adapters in float32 on a 16-bit base (``autocast_adapter_dtype=True``,
  measured), so their gradients and optimizer states are float32 and need no
  master copy.
- Optimizer states per trainable tensor of ``n`` elements, measured after one
  step (same file): AdamW / Adam two states, SGD with momentum one, Lion one
  (bitsandbytes keeps it fp32), Muon one (2-D matrices; the rest AdamW),
  Adafactor a row and a column vector for matrices (``4 (rows + cols) + 4``),
  ``4 n + 4`` for vectors; 8-bit AdamW / Lion (bitsandbytes, paged or not) one
  byte per state element plus an fp32 absmax per 256 elements, and the shared
  256-entry fp32 quantization maps, with 32-bit states for tensors under 4096
  elements (``min_8bit_size``).  States are fp32 under mixed precision (the
  optimizer steps the fp32 master weights) and in the parameter dtype otherwise.
- Mixed precision (``"bf16-mixed"`` / ``"fp16-mixed"``, DeepSpeed / Megatron
  style): 16-bit parameters and gradients, fp32 master weights; under ZeRO >= 1
  DeepSpeed also keeps an fp32 gradient partition.  ZeRO sharding and the
  largest layer gathered under stage 3 follow DeepSpeed's own estimators
  (``estimate_zero2_model_states_mem_needs``, ``..._zero3_...``), which the tests
  reproduce byte for byte.  DeepSpeed's host figures add a 1.5 buffer factor and
  per-process load copies that ``host_bytes`` (per GPU) leaves out.
- Activations: see include/vramcore/training.h (measured per tensor on CPU).  Mamba2 hybrids follow the
  fused mamba_ssm path transformers takes on a GPU (vc_mamba2_saved); there the Mamba2 ``out_proj`` runs
  inside that Function from its base weight, so a LoRA adapter on it saves nothing and gets no gradient
  (counted as trainable, with its states, as peft counts it: an upper bound).  peft refuses ``out_proj``
  and ``conv1d`` on falcon_h1 / nemotron_h / mamba models, "all-linear" included
  (:data:`PEFT_MAMBA_MODEL_TYPES`).  Gated-DeltaNet hybrids follow the fla / causal_conv1d path transformers
  takes on a GPU (vc_deltanet_saved), Mamba1 (Jamba) the causal_conv1d / selective_scan_fn one (vc_mamba1_saved;
  its dt_proj runs from the base weight, so a dt_proj adapter saves nothing, as Mamba2's out_proj).
- peft's ``ParamWrapper`` (fused experts, the router's weight) folds the adapter into the parameter on every
  forward, so the merged weight is saved once a layer with the inputs of the ops that read it
  (:func:`adapter_activation_bytes`; measured on Qwen3-Next).
  Assumptions, not measured: the backward's transient (gradients of one layer,
  ``2 a h + 3 a x MLP width`` per token; the loss's fp32 gradients,
  ``(8 + a) V`` per token), pipeline stages holding ``pp`` micro-batches (1F1B),
  hidden-sized tensors replicated over TP (no sequence parallelism), and LoRA
  keeping full fine-tuning's activations plus, per adapted module, its fp32 input
  and its A output (peft casts the input to the adapter dtype) -- frozen modules
  save less, so this is an upper bound.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import lru_cache

from vramcore._errors import VramcoreWarning
from vramcore._identity import key, unkey
from vramcore._record import Record, record, replace
from vramcore.engines.base import TRAIN_METHODS, TRAIN_OPTIMIZERS, TRAIN_PRECISIONS, EngineSpec, MiB
from vramcore.model.spec import PARTS, ModelSpec
from vramcore.model.tensors import TensorInfo, list_tensors
from vramcore.storage.dtypes import DType
from vramcore.storage.resolve import format_family, fused_expert_bytes, get_dtype, resolve_auto

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ENGINE", "METHODS", "OPTIMIZERS", "PRECISIONS", "LoraModule", "adapted_modules", "adapter_activation_bytes",
           "base_bytes_by_part", "check_trainable",
           "largest_layer_matrix", "largest_module", "lora_modules", "optimizer_bytes_by_part",
           "optimizer_state_bytes", "state_widths", "trainable_by_part", "training_base", "weight_bytes_by_part"]

#: Full fine-tuning; ``get_engine("lora")`` / ``get_engine("qlora")`` are :data:`VARIANTS`.
ENGINE = EngineSpec(
    name="train",
    kind="train",
    method="full",
    # the same CUDA context as inference (vramcore/engines/transformers.py)
    cuda_context_bytes=512 * MiB,
    # caching-allocator slack: 5 % of the activations (the transformers engine's assumption)
    allocator_reserve_fraction=0.05,
)

#: Other spellings :func:`vramcore.get_engine` accepts.
ALIASES: tuple[str, ...] = ("training", "full", "finetune", "fine-tune", "sft")

#: Named variants: ``get_engine("lora")`` is LoRA, ``get_engine("qlora")`` QLoRA over a 4-bit NF4 base.
VARIANTS: dict[str, EngineSpec] = {
    "lora": replace(ENGINE, name="lora", method="lora"),
    "qlora": replace(ENGINE, name="qlora", method="qlora"),
}

#: Weight formats the engine trains from: plain weights; LoRA also over quantized bases peft supports
#: (bitsandbytes, GPTQ, AWQ, compressed-tensors, FP8 -- peft ``tuners/lora`` dispatchers).
LOADS: frozenset[str] = frozenset({"plain", "gptq", "awq", "compressed-tensors", "bitsandbytes", "fp8"})

#: FP8 bases need hardware FP8, as under transformers.
NEEDS_FP8_HARDWARE = True

#: ``method`` values.
METHODS = TRAIN_METHODS
#: ``precision`` values: parameter bytes, whether fp32 master weights are kept.
PRECISIONS = TRAIN_PRECISIONS
#: ``optimizer`` values (transformers' ``optim`` names are aliases: engines.base.TRAIN_OPTIMIZER_ALIASES).
OPTIMIZERS = TRAIN_OPTIMIZERS

#: bitsandbytes: tensors under this many elements keep 32-bit states (``min_8bit_size``).
BNB_MIN_8BIT_SIZE = 4096
#: bitsandbytes: one fp32 absmax per block of this many state elements (blockwise quantization).
BNB_BLOCK = 256
#: bitsandbytes: the 256-entry fp32 dynamic quantization map of each 8-bit state, shared by all tensors.
BNB_QMAP_BYTES = 256 * 4

#: transformers 5 model types whose fused experts peft 0.21 converts, with the target names it maps
#: (peft utils/transformers_weight_conversion.py, _MOE_TARGET_MODULE_MAPPING via transformers'
#: conversion_mapping._MODEL_TO_CONVERSION_PATTERN).
_QWEN2_MOE_MAP = {"gate": "router", "gate_proj": "experts.gate_up_proj", "up_proj": "experts.gate_up_proj",
                  "down_proj": "experts.down_proj"}
MOE_TARGET_MAPS: dict[str, dict[str, str]] = {
    "mixtral": {"gate": "router", "w1": "experts.gate_up_proj", "w3": "experts.gate_up_proj",
                "w2": "experts.down_proj"},
    **{t: _QWEN2_MOE_MAP for t in ("qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3", "olmoe", "glm4_moe",
                                    "qwen3_next")},
}
#: peft 0.21 refuses LoRA on these module names of these model types ("incompatible with Mamba-based models":
#: peft tuners/tuners_utils.py, _check_lora_target_modules_mamba), also when "all-linear" names them.
PEFT_MAMBA_MODEL_TYPES: frozenset[str] = frozenset({"falcon_h1", "mamba", "mamba2", "falcon_mamba", "nemotron_h"})
PEFT_MAMBA_INCOMPATIBLE: frozenset[str] = frozenset({"out_proj", "conv1d"})
#: The pairs peft refuses to target apart because they are fused into one parameter.
_FUSED_PAIRS = {"mixtral": ("w1", "w3"), "qwen2_moe": ("gate_proj", "up_proj")}

# llama.cpp tensor roles (vramcore.model.tensors) -> the Hugging Face module leaf name
_LINEAR_NAMES = {
    "attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj", "attn_qkv": "qkv_proj", "attn_output": "o_proj",
    "attn_q_a": "q_a_proj", "attn_q_b": "q_b_proj", "attn_kv_a_mqa": "kv_a_proj_with_mqa",
    "ffn_gate": "gate_proj", "ffn_up": "up_proj", "ffn_down": "down_proj",
    "ffn_gate_shexp": "gate_proj", "ffn_up_shexp": "up_proj", "ffn_down_shexp": "down_proj",
    # the shared expert's hidden -> 1 sigmoid gate (Qwen3-Next, Qwen3.5-MoE): an nn.Linear
    "ffn_gate_inp_shexp": "shared_expert_gate",
    # DeepSeek-V3.2's indexer (DeepseekV32Indexer): nn.Linear modules too, so peft's all-linear adapts them
    "indexer_attn_q_b": "wq_b", "indexer_attn_k": "wk", "indexer_proj": "weights_proj",
}

# Granite-4.0-H's dense / shared MLP (transformers GraniteMoeHybridMLP: input_linear, output_linear), by role;
# "" for the gate, which input_linear holds (its routed experts are ParallelExperts, no nn.Linear; measured: peft
# "all-linear" adapts neither them nor the router)
_GRANITE_MLP_NAMES = {"ffn_gate": "", "ffn_up": "input_linear", "ffn_down": "output_linear",
                      "ffn_gate_shexp": "", "ffn_up_shexp": "input_linear", "ffn_down_shexp": "output_linear"}

# Recurrent mixers' nn.Linear modules, by mixer kind (transformers Qwen3NextGatedDeltaNet, Mamba2Mixer)
_MIXER_LINEAR_NAMES = {
    "gated_deltanet": {"ssm_in": "in_proj_qkvz", "ssm_ba": "in_proj_ba", "ssm_out": "out_proj",
                       # Qwen3.5's four input projections
                       "ssm_in_qkv": "in_proj_qkv", "ssm_in_z": "in_proj_z", "ssm_in_b": "in_proj_b",
                       "ssm_in_a": "in_proj_a"},
    "mamba2": {"ssm_in": "in_proj", "ssm_out": "out_proj"},
    "mamba1": {"ssm_in": "in_proj", "ssm_x": "x_proj", "ssm_dt": "dt_proj", "ssm_out": "out_proj"},
}


@record(frozen=True, slots=True, repr=False, eq=False)
class LoraModule(Record):
    """One module LoRA can adapt, per layer, as peft shapes its adapter.

    An adapter of rank ``r`` is ``lora_A`` of shape ``(k r, in_features)`` and
    ``lora_B`` of shape ``(out_features, k r)`` with ``k = experts x rank_factor``
    (peft ``ParamWrapper`` stacks the experts of a fused 3-D parameter; the fused
    gate_up takes rank ``2 r``).

    Attributes
    ----------
    name : str
        The target name: a module leaf (``"q_proj"``) or, for fused experts and
        the router, ``"experts.gate_up_proj"``, ``"experts.down_proj"``, ``"router"``.
    part : str
        The :data:`vramcore.PARTS` entry the adapter counts in.
    in_features, out_features : int
        Input and output width of one module (one expert).
    experts : int
        Experts stacked in the parameter (1 for a Linear).
    rank_factor : int
        2 for the fused gate_up projection, else 1.
    layers : int
        Layers holding the module.
    linear : bool
        True for an ``nn.Linear`` ("all-linear" takes it).
    """

    name: str
    part: str
    in_features: int
    out_features: int
    experts: int
    rank_factor: int
    layers: int
    linear: bool

    @property
    def min_dim(self) -> int:
        """The smallest dimension of one module: a rank above it is refused."""
        return min(self.in_features, self.out_features)

    def params(self, rank: int) -> int:
        """Adapter parameters of rank `rank` over all layers."""
        return self.layers * self.experts * self.rank_factor * rank * (self.in_features + self.out_features)

    def shapes(self, rank: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """Shapes of one layer's ``lora_A`` and ``lora_B``."""
        k = self.experts * self.rank_factor * rank
        return (k, self.in_features), (self.out_features, k)


def lora_modules(spec: ModelSpec) -> tuple[LoraModule, ...]:
    """Return the modules of `spec` LoRA can adapt, one entry per (name, part), counted over layers.

    Examples
    --------
    >>> from vramcore import get_model
    >>> [(m.name, m.in_features, m.out_features, m.layers) for m in lora_modules(get_model("Llama-3.2-1B").spec)][:2]
    [('q_proj', 2048, 2048, 16), ('k_proj', 2048, 512, 16)]
    """
    found: dict[tuple[str, str], LoraModule] = {}

    def add(name: str, part: str, fin: int, fout: int, experts: int = 1, factor: int = 1,
            linear: bool = True) -> None:
        key = (name, part)
        old = found.get(key)
        if old is not None and (old.in_features, old.out_features) != (fin, fout):
            raise ValueError(f"{spec.name}: layers disagree on the shape of {name}")  # not in any supported family
        found[key] = LoraModule(name, part, fin, fout, experts, factor, (old.layers if old else 0) + 1, linear)

    by_layer: dict[int | None, dict[str, TensorInfo]] = {}
    for t in list_tensors(spec):
        if t.role not in ("bias", "norm"):
            by_layer.setdefault(t.layer, {})[t.role] = t
    for layer, roles in by_layer.items():
        if layer is None:
            continue
        for role, t in roles.items():
            if role in _GRANITE_MLP_NAMES and spec.model_type == "granitemoehybrid":
                # GraniteMoeHybridMLP fuses gate and up into input_linear (hidden -> 2 x width), then output_linear
                if _GRANITE_MLP_NAMES[role]:
                    fused = 2 if role.startswith("ffn_up") else 1
                    add(_GRANITE_MLP_NAMES[role], t.part, t.shape[1], fused * t.shape[0])
            elif role in _LINEAR_NAMES:
                name = "gate_up_proj" if role == "ffn_up" and spec.model_type == "phi3" else _LINEAR_NAMES[role]
                add(name, t.part, t.shape[1], t.shape[0])
            elif spec.recurrent is not None and role in _MIXER_LINEAR_NAMES[spec.recurrent.kind]:
                add(_MIXER_LINEAR_NAMES[spec.recurrent.kind][role], t.part, t.shape[1], t.shape[0])
        if "attn_k_b" in roles:                     # HF keeps kv_b_proj whole: kv_lora_rank -> heads x (nope + v)
            kb, vb = roles["attn_k_b"], roles["attn_v_b"]
            add("kv_b_proj", "attention", kb.shape[1], kb.shape[0] * kb.shape[2] + vb.shape[0] * vb.shape[1])
        if "ffn_gate_exps" in roles:
            g, d = roles["ffn_gate_exps"], roles["ffn_down_exps"]
            n_exp, inter, h = g.shape
            add("experts.gate_up_proj", g.part, h, 2 * inter, n_exp, 2, linear=False)
            add("experts.down_proj", d.part, inter, h, n_exp, 1, linear=False)
        if "ffn_gate_inp" in roles:
            r = roles["ffn_gate_inp"]
            add("router", r.part, r.shape[1], r.shape[0], linear=False)
    head = by_layer.get(None, {}).get("output")
    if head is not None:
        add("lm_head", "lm_head", head.shape[1], head.shape[0])
    return tuple(found.values())


def adapted_modules(spec: ModelSpec, targets: str | Sequence[str], rank: int, *,
                    warn: bool = True) -> tuple[LoraModule, ...]:
    """Return the modules LoRA adapts for `targets`, as peft 0.21 resolves them on transformers 5.

    Parameters
    ----------
    spec : ModelSpec
    targets : str or sequence of str
        ``"all-linear"`` or module names.
    rank : int
        The LoRA rank.
    warn : bool
        Emit the warnings below (the estimate paths emit them once per configuration).

    Raises
    ------
    ValueError
        No target names a module of the model, or gate and up projections of
        fused experts targeted apart.

    Warns
    -----
    VramcoreWarning
        Target names that are not modules of the model (peft ignores them), or
        a rank above the smallest dimension of a module named in `targets`
        (under "all-linear", e.g. Mixtral's 8-expert router at rank 16, peft
        builds such adapters silently and so does the count).
    """
    chosen, notes = _resolve_targets(key(spec), targets if isinstance(targets, str) else tuple(targets), rank)
    if warn:
        for note in notes:
            warnings.warn(note, VramcoreWarning, stacklevel=2)
    return chosen


@lru_cache(maxsize=256)
def _resolve_targets(spec_key: Any, targets: str | tuple[str, ...], rank: int) \
        -> tuple[tuple[LoraModule, ...], tuple[str, ...]]:
    spec: ModelSpec = unkey(spec_key)     # by identity: model_type (peft's MoE mapping) is not in its equality
    modules = lora_modules(spec)
    moe_map = MOE_TARGET_MAPS.get(spec.model_type or "", {}) if spec.is_moe else {}
    explicit = not isinstance(targets, str) or targets.lower() != "all-linear"
    if isinstance(targets, str):
        if targets.lower() != "all-linear":
            targets = (targets,)
        else:
            # peft's all-linear: every nn.Linear but the output layer; on a converted MoE model the v4 expert and
            # router names too, which the mapping below sends to the fused parameters
            targets = tuple(dict.fromkeys([m.name for m in modules if m.linear and m.name != "lm_head"]
                                          + list(moe_map)))
    wanted = list(dict.fromkeys(targets))
    refused = sorted(PEFT_MAMBA_INCOMPATIBLE & set(wanted)) if spec.model_type in PEFT_MAMBA_MODEL_TYPES else []
    if refused:
        raise ValueError(f"lora_targets: peft refuses {refused} on {spec.name} (model_type {spec.model_type!r}): "
                         "'Module ... is incompatible with Mamba-based models' (peft tuners_utils "
                         "_check_lora_target_modules_mamba); name the targets without them"
                         + (" ('all-linear' includes out_proj)" if not explicit else ""))
    fused = _FUSED_PAIRS.get("mixtral" if spec.model_type == "mixtral" else "qwen2_moe") if moe_map else None
    if fused is not None and (fused[0] in wanted) != (fused[1] in wanted):
        raise ValueError(f"lora_targets: {fused[0]} and {fused[1]} are one fused parameter (experts.gate_up_proj) "
                         f"in {spec.name}; target both or neither (peft refuses one alone)")
    names = {moe_map.get(t, t) for t in wanted}
    # a name mapped to the experts is no longer a module target: dense / shared-expert MLPs of it are left alone
    mapped_away = {t for t in wanted if t in moe_map}
    chosen = tuple(m for m in modules if (m.name in names and not (m.linear and m.name in mapped_away)))
    if not chosen:
        options = sorted({m.name for m in modules} | set(moe_map))
        raise ValueError(f"lora_targets {list(wanted)} name no module of {spec.name}; its modules: {options} "
                         "(or 'all-linear')")
    notes = []
    unknown = [t for t in wanted if t not in moe_map and not any(m.name == t for m in modules)]
    if unknown:
        notes.append(f"lora_targets {unknown} are not modules of {spec.name}; peft ignores them")
    over = [f"{m.name} ({m.min_dim})" for m in chosen if rank > m.min_dim]
    if over and explicit:
        # peft builds such an adapter (it is then no low-rank update, and bigger than the module's own delta)
        notes.append(f"lora_rank {rank} is above the smallest dimension of {', '.join(over)} in {spec.name}; "
                     "the adapter is counted as peft builds it")
    return chosen, tuple(notes)


def trainable_by_part(spec: ModelSpec, engine: EngineSpec) -> dict[str, int]:
    """Return the trainable parameters of `spec` under `engine`, by :data:`vramcore.PARTS`.

    Full fine-tuning trains every parameter; LoRA and QLoRA only the adapters
    (counted as peft counts them).

    Examples
    --------
    >>> from vramcore import get_engine, get_model
    >>> sum(trainable_by_part(get_model("Llama-3.2-1B").spec, get_engine("lora", lora_rank=16)).values())
    11272192
    """
    if engine.method == "full":
        return dict(spec.param_breakdown())
    out = dict.fromkeys(PARTS, 0)
    for m in adapted_modules(spec, engine.lora_targets, engine.lora_rank, warn=False):
        out[m.part] += m.params(engine.lora_rank)
    return out


def state_widths(engine: EngineSpec) -> tuple[float, float, float, int]:
    """Return (gradient bytes, fp32 gradient-partition bytes, master-weight bytes, state dtype bytes) per element.

    Full fine-tuning: gradients in the parameter dtype (fp32 with
    ``grad_accum_fp32``); mixed precision adds fp32 master weights and, under
    ZeRO >= 1, DeepSpeed's fp32 gradient partition.  LoRA adapters are fp32
    (peft): fp32 gradients and states, no master copy.
    """
    param_bytes, mixed = PRECISIONS[engine.precision]
    if engine.method != "full":
        return 4.0, 0.0, 0.0, 4                        # fp32 adapters (peft autocast_adapter_dtype=True)
    grad = 4.0 if engine.grad_accum_fp32 else float(param_bytes)
    fp32_part = 4.0 if mixed and engine.zero >= 1 else 0.0
    master = 4.0 if mixed else 0.0
    return grad, fp32_part, master, 4 if mixed else param_bytes


def _bnb_8bit(n: int, states: int, fp32: int) -> int:
    if n < BNB_MIN_8BIT_SIZE:
        return states * fp32 * n
    return states * (n + 4 * math.ceil(n / BNB_BLOCK))


def optimizer_state_bytes(optimizer: str, shape: tuple[int, ...], state_bytes: int, momentum: float = 0.0,
                          is_embedding: bool = False) -> int:
    """Return the optimizer state bytes of one trainable tensor (shared quantization maps excluded).

    Parameters
    ----------
    optimizer : str
        One of :data:`OPTIMIZERS`.
    shape : tuple of int
        The tensor's shape.
    state_bytes : int
        Bytes per element of 32/16-bit states (4 under mixed precision, else the parameter's).
    momentum : float
        SGD momentum (0: no state).
    is_embedding : bool
        Muon: embeddings and the output layer go to AdamW.

    Examples
    --------
    >>> optimizer_state_bytes("adamw_8bit", (1024, 1024), 4)
    2129920
    >>> optimizer_state_bytes("adafactor", (1024, 1024), 4)
    8196
    """
    n = math.prod(shape)
    if optimizer in ("adamw", "adam"):
        return 2 * state_bytes * n
    if optimizer == "sgd":
        return state_bytes * n if momentum > 0 else 0
    if optimizer == "lion":
        return 4 * n                                   # bitsandbytes keeps 32-bit Lion states in fp32
    if optimizer == "muon":
        if len(shape) == 2 and not is_embedding:
            return state_bytes * n                     # the momentum buffer, in the parameter dtype
        return 2 * state_bytes * n                     # the rest steps with AdamW
    if optimizer == "adafactor":
        if len(shape) >= 2:                            # factored: row and column second moments + RMS
            lead = math.prod(shape[:-2])
            return 4 * lead * (shape[-2] + shape[-1]) + 4
        return 4 * n + 4
    if optimizer in ("adamw_8bit", "paged_adamw_8bit"):
        return _bnb_8bit(n, 2, 4)
    if optimizer in ("lion_8bit", "paged_lion_8bit"):
        return _bnb_8bit(n, 1, 4)
    raise ValueError(f"unknown optimizer {optimizer!r}; one of {OPTIMIZERS}")


def optimizer_bytes_by_part(spec: ModelSpec, engine: EngineSpec) -> dict[str, int]:
    """Return the optimizer state bytes of the trainable tensors of `spec` under `engine`, by part."""
    state = state_widths(engine)[3]
    opt = engine.optimizer
    out = dict.fromkeys(PARTS, 0)
    if engine.method == "full":
        for t in list_tensors(spec):
            out[t.part] += optimizer_state_bytes(opt, t.shape, state, engine.momentum,
                                                 t.role in ("token_embd", "output"))
    else:
        for m in adapted_modules(spec, engine.lora_targets, engine.lora_rank, warn=False):
            a_shape, b_shape = m.shapes(engine.lora_rank)
            each = (optimizer_state_bytes(opt, a_shape, state, engine.momentum)
                    + optimizer_state_bytes(opt, b_shape, state, engine.momentum))
            out[m.part] += each * m.layers
    if opt in ("adamw_8bit", "paged_adamw_8bit"):
        out["norms"] += 2 * BNB_QMAP_BYTES
    elif opt in ("lion_8bit", "paged_lion_8bit"):
        out["norms"] += BNB_QMAP_BYTES
    return out


def adapter_activation_bytes(spec: ModelSpec, engine: EngineSpec) -> tuple[float, float]:
    """Return what the LoRA adapters save for backward: (bytes per token per layer, constant bytes per layer).

    peft keeps the adapters in fp32 and casts each adapted module's input to
    their dtype; ``lora_A`` saves that input and ``lora_B`` the rank-``r`` A
    output (measured: tests/data/training_measured.json, ``lora_activations``).
    Under mixed precision (the forward under ``torch.autocast``, as
    transformers' Trainer runs it) autocast casts the input to 16 bits instead
    (a 16-bit copy per module, ``a (in + r)`` per token) and keeps 16-bit copies
    of the adapter weights (``a x`` the layer's adapter parameters, constant);
    without autocast each module keeps an fp32 copy (``4 (in + r)``).  In fp32
    the cast is a no-op: the inputs are the tensors the frozen layer already
    has, counted once per distinct input (norm outputs, the attention output,
    the down_proj input).  The output layer's adapter is left out (it does not
    repeat per layer).
    """
    if engine.method == "full":
        return 0.0, 0.0
    r = engine.lora_rank
    mixed = PRECISIONS[engine.precision][1]
    per_token = constant = 0.0
    shared: set[str] = set()
    # the Mamba2 out_proj runs inside mamba_ssm's fused Function, which reads out_proj.weight (the frozen base
    # layer's, through peft's LoraLayer.weight) and never calls the module: its adapter saves nothing (and
    # gets no gradient) on that path (mamba_ssm ssd_combined.py MambaSplitConv1dScanCombinedFn.forward;
    # transformers BambaMixer.forward passes outproj_weight=self.out_proj.weight)
    bypassed = {"out_proj"} if spec.recurrent is not None and spec.recurrent.kind == "mamba2" else set()
    # Jamba's Mamba1 mixer multiplies by dt_proj.weight itself (transformers JambaMambaMixer.forward:
    # self.dt_proj.weight @ time_step), so a dt_proj adapter is never called either
    if spec.recurrent is not None and spec.recurrent.kind == "mamba1":
        bypassed = {"dt_proj"}
    for m in adapted_modules(spec, engine.lora_targets, r, warn=False):
        if m.name == "lm_head" or m.name in bypassed:
            continue
        if not m.linear:
            # peft ParamWrapper (fused experts, the router's weight): the adapter is folded into the parameter on
            # every forward (experts: torch.baddbmm(W, lhs, rhs) in _LoraFactorsProxy, its factors cast to W's
            # dtype; the router: W + B @ A, _LoraParameterProxy), so the merged weight requires grad: the op that
            # reads it saves it (one copy a layer, in W's dtype) and its input -- the tokens gathered for each of
            # the k experts they are routed to, the down projection's input per copy, the router's input
            # (measured: tests/data/training_measured.json, hybrid_activations, Qwen3-Next); the factors' 16-bit
            # copies are saved by the fold (experts, a 16-bit W) and, under autocast, by the router's B @ A
            wide = 4.0 if engine.precision == "fp32" else 2.0
            stacked = m.experts > 1
            copies = mixed or (stacked and engine.precision != "fp32")
            per_token += m.layers * wide * m.in_features * (spec.experts_per_token if stacked else 1)
            constant += wide * (m.layers * m.experts * m.in_features * m.out_features) + (2.0 * m.params(r)
                                                                                        if copies else 0.0)
            continue
        a_out = m.experts * m.rank_factor * r if m.name.startswith("experts.") else m.rank_factor * r
        if mixed:
            per_token += m.layers * 2.0 * (m.in_features + a_out)
            constant += 2.0 * m.params(r)
        elif engine.precision != "fp32":
            per_token += m.layers * 4.0 * (m.in_features + a_out)
        else:
            # fp32: the input is a tensor of the frozen layer; each distinct one once
            source = {"q_proj": "attn_in", "k_proj": "attn_in", "v_proj": "attn_in", "qkv_proj": "attn_in",
                      "q_a_proj": "attn_in", "kv_a_proj_with_mqa": "attn_in", "gate_proj": "mlp_in",
                      "up_proj": "mlp_in", "gate_up_proj": "mlp_in", "input_linear": "mlp_in", "router": "mlp_in",
                      "experts.gate_up_proj": "mlp_in"}.get(m.name, m.name)
            fresh = source not in shared and m.name != "o_proj"   # o_proj's input is the attention output
            shared.add(source)
            per_token += m.layers * 4.0 * ((m.in_features if fresh else 0) + a_out)
    return per_token / spec.num_layers, constant / spec.num_layers


def largest_module(spec: ModelSpec) -> int:
    """Elements of the largest parameter tensor (ZeRO-3 gathers one module at a time)."""
    return max(t.numel for t in list_tensors(spec))


def largest_layer_matrix(spec: ModelSpec) -> int:
    """Elements of the largest weight matrix inside the decoder layers (QLoRA dequantizes one at a time)."""
    sizes = [t.numel // (t.shape[0] if len(t.shape) == 3 else 1) for t in list_tensors(spec)
             if t.layer is not None and t.is_matrix]
    return max(sizes, default=0)


#: Recurrent mixer kinds whose saved activations the training formulas model (include/vramcore/training.h,
#: vc_mamba2_saved and vc_deltanet_saved: the CUDA packages' paths transformers takes on a GPU).
TRAINABLE_MIXERS: frozenset[str] = frozenset({"mamba2", "gated_deltanet", "mamba1"})


def check_trainable(spec: ModelSpec) -> None:
    """Refuse a training estimate the formulas cannot make honestly.

    Mamba2 hybrids (Bamba, Granite-4.0-H, Falcon-H1, Nemotron-H with its
    one-sub-block layers and ungated squared-ReLU MLPs), gated-DeltaNet
    hybrids (Qwen3-Next, Qwen3.5, Qwen3.5-MoE) and Mamba1 hybrids (Jamba) are
    modelled.

    Raises
    ------
    ValueError
        `spec` has recurrent layers of a kind the formulas do not model
        (:data:`TRAINABLE_MIXERS`); nor what a cross-attention layer
        (Llama-3.2-Vision) saves, nor mixer-less layers beside "hybrid" ones.
    """
    if spec.recurrent is not None and spec.recurrent.kind not in TRAINABLE_MIXERS:
        raise ValueError(f"training {spec.name!r}: the activations a {spec.recurrent.kind} layer saves for backward "
                         f"are not modelled yet (these are: {sorted(TRAINABLE_MIXERS)}), so this model has "
                         "no training estimate (inference engines estimate it)")
    if "none" in (spec.layer_types or ()) and "hybrid" in (spec.layer_types or ()):
        raise ValueError(f"training {spec.name!r}: mixer-less layers beside Falcon-H1-style hybrid layers are not "
                         "modelled (include/vramcore/training.h vc_sub_block_inputs; inference engines estimate "
                         "the model)")
    if spec.n_cross_layers:
        raise ValueError(f"training {spec.name!r}: what a training step saves in its {spec.n_cross_layers} "
                         "cross-attention layers is not modelled yet (the transformers engine estimates the model)")
    if spec.altup_inputs > 1 or spec.laurel_rank or spec.per_layer_input_size or spec.kv_shared_layers:
        raise ValueError(f"training {spec.name!r}: what Gemma-3n's AltUp, LAuReL, per-layer-input and KV-sharing "
                         "layers save for backward is not modelled yet (inference engines estimate the model)")


def training_base(spec: ModelSpec, dtype: DType, engine: EngineSpec) -> tuple[DType, bool]:
    """Return the dtype the weights are held in while `engine` trains `spec` from `dtype`, and whether it can.

    Full fine-tuning holds the parameters in the precision's dtype (bf16 for
    ``"bf16-mixed"``, fp32 for ``"fp32"``), from plain 16/32-bit weights only;
    LoRA freezes a plain base in that dtype and keeps a quantized one as stored
    (int8 / int4 / fp8 widths and the formats peft adapts: bitsandbytes, GPTQ,
    AWQ, compressed-tensors, FP8); QLoRA quantizes a plain base to the engine's
    ``qlora_format`` (``"bnb-nf4"``) and keeps a 4-bit bitsandbytes one.
    ``"auto"`` is the model's own format where the method trains from it, else
    its plain weights.  The flag is False where the method cannot train from
    `dtype` (full fine-tuning of quantized weights, QLoRA over anything but a
    4-bit bitsandbytes base): the cell is then blocked
    (``format_not_runnable_on_engine``) and its figures are those of the
    dtype the method would use.
    """
    plain = get_dtype({2: "fp16" if engine.precision.startswith("fp16") else "bf16", 4: "fp32"}[
        PRECISIONS[engine.precision][0]])
    auto = dtype.name == "auto"
    base = resolve_auto(spec) if auto else dtype
    family = format_family(base, spec)
    unquantized = family == "plain" and not base.quantized
    if engine.method == "qlora":
        if family == "bitsandbytes" and base.bits <= 4.5:
            return base, True
        # a plain base (or "auto" over another format: its dequantized weights) is quantized on load
        return get_dtype(engine.qlora_format, argname="qlora_format"), unquantized or auto
    if unquantized or auto and (engine.method == "full" or family not in LOADS):
        return plain, True
    if engine.method == "full":
        return plain, False
    return base, family in LOADS


def base_bytes_by_part(spec: ModelSpec, base: DType) -> dict[str, float]:
    """Return the bytes of the weights transformers holds in `base` (:func:`training_base`), by part.

    transformers 5's bitsandbytes integration quantizes ``nn.Linear`` (and
    ``Conv1D``) modules only (``integrations/bitsandbytes.py``,
    ``replace_with_bnb_linear``); its MoE classes hold the routed experts as
    fused 3-D parameters, so a bitsandbytes base (QLoRA's NF4 among them)
    keeps them in the compute dtype.

    Examples
    --------
    >>> from vramcore import get_dtype, get_model
    >>> spec = get_model("Qwen3-30B-A3B").spec
    >>> parts = base_bytes_by_part(spec, get_dtype("bnb-nf4"))
    >>> parts["mlp_routed_experts"] == 2 * spec.param_breakdown()["mlp_routed_experts"]
    True
    """
    out = dict(base.weight_bytes_by_part(spec))
    experts = fused_expert_bytes(spec, base)
    if experts is not None:
        out["mlp_routed_experts"] = experts
    return out


def weight_bytes_by_part(spec: ModelSpec, dtype: DType, engine: EngineSpec) -> dict[str, float]:
    """Return the bytes of every parameter while `engine` trains `spec` from `dtype`, by part.

    The base as :func:`training_base` holds it, plus the LoRA adapters (fp32).

    Examples
    --------
    >>> from vramcore import get_dtype, get_engine, get_model
    >>> spec = get_model("Llama-3.2-1B").spec
    >>> parts = weight_bytes_by_part(spec, get_dtype("auto"), get_engine("lora"))
    >>> int(sum(parts.values()) - 2 * spec.param_count) == 4 * 11272192
    True
    """
    base = training_base(spec, dtype, engine)[0]
    out = base_bytes_by_part(spec, base)
    if engine.method != "full":
        grad = state_widths(engine)[0]
        for part, n in trainable_by_part(spec, engine).items():
            out[part] += n * grad
    return out
