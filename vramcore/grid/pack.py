"""Specs -> struct-of-doubles rows for the kernel: the one bridge to C.

The column order of each row matches the field order of the structs in
include/vramcore/common.h (``vc_model``, ``vc_dtype``, ``vc_engine``, ``vc_train``,
``vc_place``); ``tests/test_api.py`` checks the counts against the compiled module.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from vramcore._errors import VramcoreWarning
from vramcore._identity import key, unkey
from vramcore.engines import EngineSpec
from vramcore.engines.base import TRAIN_PRECISIONS, TRAIN_RECOMPUTE
from vramcore.model.spec import PARTS, STATE_LAYER_KINDS, WINDOWED_KINDS, ModelSpec
from vramcore.storage.dtypes import DType
from vramcore.storage.kv import kv_bits
from vramcore.storage.resolve import format_family

if TYPE_CHECKING:
    import numpy as np


def _train() -> Any:
    """Return the training rules (vramcore.engines.train), imported with the first training engine (~4 ms)."""
    import vramcore.engines.train as rules

    return rules


MODEL_FIELDS: tuple[str, ...] = (
    "n_full_layers",
    "n_sliding_layers",
    "sliding_window",
    "num_heads",
    "kv_heads",
    "head_dim_k",
    "head_dim_v",
    "mla_latent",
    "hidden",
    "dense_intermediate",
    "n_dense_mlp_layers",
    "n_moe_layers",
    "n_experts",
    "experts_per_token",
    "expert_intermediate",
    "shared_intermediate",
    "vocab",
    "max_context",
    "attn_kv_fraction",
    "attn_replicated_fraction",
    "rotary_dim",
    "norm_kind",
    "norms_per_layer",
    "qk_norm",
    "attn_softcap",
    "final_softcap",
    "embed_scale",
    "attn_kinds",
    "n_state_layers",
    "state_conv_dim",
    "state_conv_kernel",
    "state_ssm_elems",
    "state_ssm_fp32",
    "index_kv_elems",
    "mm_item_features",
    "mm_item_patches",
    "mm_patch_hidden",
    "mm_patch_inter",
    "n_mixerless_layers",
    "mlp_rows",
    "mm_item_pixels",
    "mm_rope_table",
)
DTYPE_FIELDS: tuple[str, ...] = ("act_bytes", "kv_bits")
ENGINE_FIELDS: tuple[str, ...] = (
    "kind", "tp", "pp", "sliding_cap_offset", "mla_compressed", "full_logits", "cuda_context_bytes",
    "allocator_reserve", "mem_fraction", "block_size", "max_num_batched_tokens", "max_num_seqs",
    "cuda_graph_bytes", "non_torch_bytes", "ctx_pad", "n_gpu_layers", "swa_full", "max_model_len",
    "kv_bits", "sampler_bytes", "graphs_in_budget", "flash_attn", "rope_cache", "kv_bits_v",
    "state_conv_offset", "state_conv_bits", "state_ssm_bits", "index_bits", "mm_limit", "state_blocks",
    "grad_bytes", "fp32_grad_bytes", "master_bytes", "zero", "dp", "offload_optimizer", "offload_params",
    "recompute", "eager_attention", "train_act_bytes", "backward_transient", "frozen_base",
    "hidden_states", "profile_workspace", "mm_padding",
)
#: The ``vc_place`` row: the layers on the most loaded GPU by kind, then those in host memory.
PLACE_FIELDS: tuple[str, ...] = tuple(f"{where}_{kind}" for where in ("gpu", "host")
                                      for kind in ("layers", "full", "sliding", "state", "dense", "moe"))
#: The ``vc_train`` row: three per-part vectors, then the scalars.
TRAIN_FIELDS: tuple[str, ...] = (
    *(f"weight_bytes.{p}" for p in PARTS), *(f"trainable.{p}" for p in PARTS), *(f"optim_bytes.{p}" for p in PARTS),
    "gather_bytes", "gather_grad_bytes", "adapter_token_layer", "adapter_layer_bytes", "dequant_bytes",
    "trainable_total",
)


def _state_fields(spec: ModelSpec) -> dict[str, float]:
    """Return the recurrent-state fields of the ``vc_model`` row (zeros for a model without recurrent layers)."""
    rec = spec.recurrent
    if rec is None:
        return {"n_state_layers": 0.0, "state_conv_dim": 0.0, "state_conv_kernel": 0.0, "state_ssm_elems": 0.0,
                "state_ssm_fp32": 0.0}
    return {"n_state_layers": float(spec.n_state_layers), "state_conv_dim": float(rec.conv_dim),
            "state_conv_kernel": float(rec.conv_kernel), "state_ssm_elems": float(rec.ssm_elems),
            "state_ssm_fp32": float(rec.ssm_fp32)}


def _vision_fields(spec: ModelSpec) -> dict[str, float]:
    """Return the ``vc_model`` fields of a multimodal model's largest image (zeros for a text-only model)."""
    from vramcore.engines.vllm import mm_dummy_image_elems, mm_rope_table_bytes

    v = spec.vision
    if v is None:
        return {"mm_item_features": 0.0, "mm_item_patches": 0.0, "mm_patch_hidden": 0.0, "mm_patch_inter": 0.0,
                "mm_item_pixels": 0.0, "mm_rope_table": 0.0}
    wide, inter = v.peak_elems_split
    return {"mm_item_features": float(v.max_item_features), "mm_item_patches": float(v.max_item_patches),
            "mm_patch_hidden": float(wide), "mm_patch_inter": float(inter),
            "mm_item_pixels": float(mm_dummy_image_elems(v)), "mm_rope_table": float(mm_rope_table_bytes(v))}


def _attention_fractions(spec: ModelSpec) -> tuple[float, float]:
    """Shares of the attention part's weights in k/v projections and in TP-replicated projections.

    The attention part holds every layer's token mixer: in a hybrid model the
    recurrent mixers too, whose projections split over TP like q and o.
    """
    if not spec.n_attention_layers:
        return 0.0, 0.0  # recurrent layers only: every projection splits over TP
    attn = spec.param_breakdown()["attention"] / spec.n_attention_layers  # per attention layer, mixers included
    h = spec.hidden_size
    if spec.is_mla:
        # q_a_proj and kv_a_proj_with_mqa are replicated on every TP rank in vLLM's
        # DeepseekV2MLAAttention (ReplicatedLinear); the b projections and o_proj split.
        replicated = h * (spec.kv_lora_rank + spec.qk_rope_head_dim)  # type: ignore[operator]
        if spec.q_lora_rank is not None:
            replicated += h * spec.q_lora_rank
        return 0.0, replicated / attn
    kv = 2 * h * spec.num_kv_heads * spec.head_dim  # type: ignore[operator]
    if spec.qkv_bias:
        kv += 2 * spec.num_kv_heads * spec.head_dim  # type: ignore[operator]
    return kv / attn, 0.0


def model_row(spec: ModelSpec) -> list[float]:
    """Return the ``vc_model`` row of `spec`."""
    if spec.is_mla:
        kv_heads = float(spec.num_heads)
        hd_k = float(spec.qk_nope_head_dim + spec.qk_rope_head_dim)  # type: ignore[operator]
        hd_v = float(spec.v_head_dim)  # type: ignore[arg-type]
        mla_latent = float(spec.kv_lora_rank + spec.qk_rope_head_dim)  # type: ignore[operator]
    else:
        kv_heads = float(spec.num_kv_heads)  # type: ignore[arg-type]
        hd_k = hd_v = float(spec.head_dim)  # type: ignore[arg-type]
        mla_latent = 0.0
    kv_fraction, replicated_fraction = _attention_fractions(spec)
    row = {
        "n_full_layers": float(spec.n_full_layers),
        "n_sliding_layers": float(spec.n_sliding_layers),
        "sliding_window": float(spec.sliding_window or 0),
        "num_heads": float(spec.num_heads),
        "kv_heads": kv_heads,
        "head_dim_k": hd_k,
        "head_dim_v": hd_v,
        "mla_latent": mla_latent,
        "hidden": float(spec.hidden_size),
        "dense_intermediate": float(spec.intermediate_size),
        "n_dense_mlp_layers": float(spec.n_dense_mlp_layers),
        "n_moe_layers": float(spec.n_moe_layers),
        "n_experts": float(spec.num_experts),
        "experts_per_token": float(spec.experts_per_token),
        "expert_intermediate": float(spec.moe_intermediate_size or 0),
        "shared_intermediate": float(spec.shared_expert_intermediate_size),
        "vocab": float(spec.vocab_size),
        "max_context": float(spec.max_context or 0),
        "attn_kv_fraction": kv_fraction,
        "attn_replicated_fraction": replicated_fraction,
        "rotary_dim": float(spec.qk_rope_head_dim if spec.is_mla else spec.head_dim),  # type: ignore[arg-type]
        "norm_kind": 1.0 if spec.norm_plus_one else (2.0 if spec.norm_weight_fp32 else 0.0),
        "norms_per_layer": float(spec.norms_per_layer),
        "qk_norm": (2.0 if spec.qk_norm_full_width else 1.0) if spec.qk_norm else 0.0,
        "attn_softcap": float(spec.attn_softcap),
        "final_softcap": float(spec.final_softcap),
        "embed_scale": float(spec.embed_scale),
        "attn_kinds": float((spec.n_full_layers > 0) + (spec.n_sliding_layers > 0)),
        **_state_fields(spec),
        "index_kv_elems": float(spec.index_head_dim or 0) if spec.has_indexer else 0.0,
        **_vision_fields(spec),
        "n_mixerless_layers": float(spec.n_mixerless_layers),
        "mlp_rows": 3.0 if spec.mlp_gated else 2.0,
    }
    return [row[f] for f in MODEL_FIELDS]


def pack_models(specs: Sequence[ModelSpec]) -> np.ndarray:
    """Return a C-contiguous float64 array (len(specs), len(MODEL_FIELDS))."""
    import numpy as np

    return np.ascontiguousarray(np.array([model_row(s) for s in specs], dtype=np.float64)
                                .reshape(len(specs), len(MODEL_FIELDS)))


def dtype_row(dtype: DType, kv_dtype: DType | None) -> list[float]:
    """Return the ``vc_dtype`` row: activations in the compute dtype, KV in `kv_dtype` or the compute dtype."""
    kv_bits = kv_dtype.bits if kv_dtype is not None else dtype.compute_bits
    return [dtype.compute_bits / 8.0, float(kv_bits)]


def pack_dtypes(dtypes: Sequence[DType], kv_dtype: DType | None) -> np.ndarray:
    """Return a C-contiguous float64 array (len(dtypes), len(DTYPE_FIELDS))."""
    import numpy as np

    return np.ascontiguousarray(np.array([dtype_row(d, kv_dtype) for d in dtypes], dtype=np.float64)
                                .reshape(len(dtypes), len(DTYPE_FIELDS)))


def pack_weights(specs: Sequence[ModelSpec], dtypes: Sequence[DType]) -> np.ndarray:
    """Return stored weight bytes as a C-contiguous float64 array (models, dtypes, len(PARTS))."""
    import numpy as np

    out = np.empty((len(specs), len(dtypes), len(PARTS)), dtype=np.float64)
    for i, spec in enumerate(specs):
        for j, dtype in enumerate(dtypes):
            parts = dtype.weight_bytes_by_part(spec)
            out[i, j] = [parts[p] for p in PARTS]
    return out


def engine_part_bytes(spec: ModelSpec, dtype: DType, engine: EngineSpec) -> dict[str, float]:
    """Return the whole model's weight bytes by part as `engine` holds them once loaded.

    As stored, except where the engine's layout differs: vLLM's MXFP4 experts
    (``EngineSpec.mxfp4_layout``, :func:`vramcore.engines.vllm.mxfp4_loaded_extra`).
    """
    parts = {p: float(b) for p, b in dtype.weight_bytes_by_part(spec).items()}
    if engine.mxfp4_layout != "stored" and format_family(dtype, spec) == "mxfp4":
        from vramcore.engines.vllm import mxfp4_loaded_extra

        parts["mlp_routed_experts"] += mxfp4_loaded_extra(spec, engine.mxfp4_layout)
    return {p: parts[p] for p in PARTS}


def pack_loaded_weights(specs: Sequence[ModelSpec], dtypes: Sequence[DType],
                        engines: Sequence[tuple[EngineSpec, int, int]]) -> np.ndarray:
    """Return weight bytes as each engine holds them (:func:`engine_part_bytes`), (models, dtypes, engines, parts)."""
    import numpy as np

    out = np.empty((len(specs), len(dtypes), len(engines), len(PARTS)), dtype=np.float64)
    stored = pack_weights(specs, dtypes)
    for k, (engine, _, _) in enumerate(engines):
        out[:, :, k] = stored
        if engine.mxfp4_layout == "stored":
            continue
        for i, spec in enumerate(specs):
            for j, dtype in enumerate(dtypes):
                out[i, j, k] = list(engine_part_bytes(spec, dtype, engine).values())
    return out


def _kind_counts(spec: ModelSpec, layers: range) -> list[float]:
    """Return the counts of `layers` by kind: all, full, sliding (or chunked), recurrent, dense MLP, MoE MLP."""
    kinds = spec.layer_types or ()
    mlps = spec.mlp_layer_types or ()
    return [float(len(layers)),
            float(sum(1 for i in layers if kinds[i] == "full_attention")),
            float(sum(1 for i in layers if kinds[i] in WINDOWED_KINDS)),
            float(sum(1 for i in layers if kinds[i] in STATE_LAYER_KINDS)),
            float(sum(1 for i in layers if mlps[i] == "dense")),
            float(sum(1 for i in layers if mlps[i] == "moe"))]


def place_row(spec: ModelSpec, engine: EngineSpec, tp: int, pp: int) -> list[float]:
    """Return the ``vc_place`` row: where `spec`'s layers sit under `engine` on `tp` x `pp` GPUs.

    llama.cpp with ``n_gpu_layers = n >= 0`` offloads the last ``n - 1``
    layers (src/llama-model.cpp, load_tensors: ``i_gpu_start = n_layer + 1 -
    ngl``), so the counts are those layers' own kinds and the rest are in host
    memory.  Otherwise every layer is on a GPU, and the most loaded pipeline
    stage holds ``ceil(L / pp)`` of the ``L`` layers, taken as that share of
    every kind (``vramcore.grid.reference`` counts the same way).
    """
    n_layers = spec.num_layers
    if engine.kind == "llamacpp" and engine.n_gpu_layers >= 0:
        on_gpu = min(max(engine.n_gpu_layers - 1, 0), n_layers)
        return (_kind_counts(spec, range(n_layers - on_gpu, n_layers))
                + _kind_counts(spec, range(n_layers - on_gpu)))
    share = -(-n_layers // pp) / n_layers if pp > 1 else 1.0
    return [share * c for c in _kind_counts(spec, range(n_layers))] + [0.0] * 6


def pack_place(specs: Sequence[ModelSpec], engines: Sequence[tuple[EngineSpec, int, int]]) -> np.ndarray:
    """Return the ``vc_place`` rows as a C-contiguous float64 array (models, engines, len(PLACE_FIELDS))."""
    import numpy as np

    return np.ascontiguousarray(np.array([[place_row(s, e, tp, pp) for e, tp, pp in engines] for s in specs],
                                         dtype=np.float64).reshape(len(specs), len(engines), len(PLACE_FIELDS)))


def engine_row(engine: EngineSpec, tp: int, pp: int) -> list[float]:
    """Return the ``vc_engine`` row of `engine` run with `tp` x `pp` GPUs."""
    row = {
        "kind": float(engine.kind_code),
        "tp": float(tp),
        "pp": float(pp),
        "sliding_cap_offset": float(engine.sliding_cap_offset),
        "mla_compressed": float(engine.mla_compressed),
        "full_logits": float(engine.full_logits),
        "cuda_context_bytes": float(engine.cuda_context_bytes),
        "allocator_reserve": float(engine.allocator_reserve_fraction),
        "mem_fraction": float(engine.mem_fraction),
        "block_size": float(engine.block_size),
        "max_num_batched_tokens": float(engine.max_num_batched_tokens),
        "max_num_seqs": float(engine.max_num_seqs),
        "cuda_graph_bytes": float(engine.cuda_graph_bytes),
        "non_torch_bytes": float(engine.non_torch_bytes + (engine.nccl_bytes if tp * pp > 1 else 0)),
        "ctx_pad": float(engine.ctx_pad),
        "n_gpu_layers": float(engine.n_gpu_layers),
        "swa_full": float(engine.swa_full),
        "max_model_len": float(engine.max_model_len),
        "kv_bits": engine_kv_bits(engine)[0],
        "sampler_bytes": float(engine.resolved_sampler_bytes_per_logit),
        "graphs_in_budget": float(engine.cuda_graphs_in_budget),
        "flash_attn": float(engine.flash_attn),
        "rope_cache": float(engine.rope_cache),
        "kv_bits_v": engine_kv_bits(engine)[1],
        "state_conv_offset": float(engine.state_conv_offset),
        "state_conv_bits": float(engine.state_conv_bits),
        "state_ssm_bits": float(engine.state_ssm_bits),
        "index_bits": float(engine.index_cache_bits),
        "mm_limit": float(engine.limit_mm_per_prompt),
        "state_blocks": {"none": 1.0, "align": 2.0, "all": 0.0}[engine.mamba_cache_mode],
        **_train_engine_fields(engine),
        "hidden_states": float(engine.profile_hidden_states),
        "profile_workspace": float(engine.profile_workspace_bytes),
        "mm_padding": float(engine.mm_profile_padding),
    }
    return [row[f] for f in ENGINE_FIELDS]


def _train_engine_fields(engine: EngineSpec) -> dict[str, float]:
    """Return the training fields of the ``vc_engine`` row (zeros for the inference engines)."""
    if engine.kind != "train":
        return dict.fromkeys(ENGINE_FIELDS[ENGINE_FIELDS.index("grad_bytes"):ENGINE_FIELDS.index("frozen_base") + 1],
                             0.0)
    grad, fp32_part, master, _ = _train().state_widths(engine)
    return {
        "grad_bytes": grad, "fp32_grad_bytes": fp32_part, "master_bytes": master, "zero": float(engine.zero),
        "dp": float(engine.dp), "offload_optimizer": float(engine.offload_optimizer),
        "offload_params": float(engine.offload_params),
        "recompute": float(TRAIN_RECOMPUTE.index(engine.recompute)),
        "eager_attention": float(engine.attention == "eager"),
        "train_act_bytes": float(TRAIN_PRECISIONS[engine.precision][0]),
        "backward_transient": float(engine.backward_transient),
        "frozen_base": float(engine.method != "full"),
    }


def train_row(spec: ModelSpec, dtype: DType, engine: EngineSpec) -> list[float]:
    """Return the ``vc_train`` row of `spec` trained from `dtype` under `engine` (zeros for inference engines)."""
    if engine.kind != "train":
        return [0.0] * len(TRAIN_FIELDS)
    _train().check_trainable(spec)
    if engine.method != "full":       # unknown target names, a rank above a module's width: said here
        _train().adapted_modules(spec, engine.lora_targets, engine.lora_rank)
    if engine.zero >= 1 and engine.dp == 1:
        warnings.warn(f"engine {engine.name!r}: ZeRO-{engine.zero} with dp=1 shards over one GPU, which saves "
                      "nothing; set dp to the data-parallel degree", VramcoreWarning, stacklevel=5)
    return list(_train_row(key(spec), key(dtype), key(engine)))


@lru_cache(maxsize=1024)
def _train_row(spec_key: Any, dtype_key: Any, engine_key: Any) -> tuple[float, ...]:
    """Compute the row per tensor; cached per (spec, dtype, engine) object (vramcore._identity)."""
    spec, dtype, engine = unkey(spec_key), unkey(dtype_key), unkey(engine_key)
    rules = _train()
    base = rules.training_base(spec, dtype, engine)[0]
    weights = rules.weight_bytes_by_part(spec, dtype, engine)
    trainable = rules.trainable_by_part(spec, engine)
    grad = rules.state_widths(engine)[0]
    optim = rules.optimizer_bytes_by_part(spec, engine)
    largest = rules.largest_module(spec)
    per_elem = sum(base.weight_bytes_by_part(spec).values()) / max(1, spec.param_count)
    act = TRAIN_PRECISIONS[engine.precision][0]
    dequant = float(rules.largest_layer_matrix(spec) * act) if engine.method == "qlora" else 0.0
    adapter = rules.adapter_activation_bytes(spec, engine)
    scalars = {
        "gather_bytes": largest * (per_elem if engine.method != "full" else TRAIN_PRECISIONS[engine.precision][0]),
        "gather_grad_bytes": float(largest * grad) if engine.method == "full" else 0.0,
        "adapter_token_layer": adapter[0],
        "adapter_layer_bytes": adapter[1],
        "dequant_bytes": dequant,
        "trainable_total": float(sum(trainable.values())),
    }
    return tuple([float(weights[p]) for p in PARTS] + [float(trainable[p]) for p in PARTS]
                 + [float(optim[p]) for p in PARTS] + [float(scalars[f]) for f in TRAIN_FIELDS[3 * len(PARTS):]])


def pack_train(specs: Sequence[ModelSpec], dtypes: Sequence[DType],
               engines: Sequence[tuple[EngineSpec, int, int]]) -> np.ndarray:
    """Return the ``vc_train`` rows as a C-contiguous float64 array (models, dtypes, engines, len(TRAIN_FIELDS))."""
    import numpy as np

    out = np.zeros((len(specs), len(dtypes), len(engines), len(TRAIN_FIELDS)), dtype=np.float64)
    for k, (engine, _, _) in enumerate(engines):
        if engine.kind != "train":
            continue
        for i, spec in enumerate(specs):
            for j, dtype in enumerate(dtypes):
                out[i, j, k] = train_row(spec, dtype, engine)
    return out


def engine_kv_bits(engine: EngineSpec) -> tuple[float, float]:
    """Bits of a cached K and V element the engine sets (0: the sweep's KV dtype / the compute dtype)."""
    k_name = engine.cache_type_k or engine.kv_cache_dtype
    k = kv_bits(engine.kind, k_name, "cache_type_k" if engine.cache_type_k else "kv_cache_dtype") if k_name else 0.0
    v = kv_bits(engine.kind, engine.cache_type_v, "cache_type_v") if engine.cache_type_v else k
    return k, v


def gpu_is_large(gpu_name: str, gpu_bytes: float) -> bool:
    """Return True where vLLM uses its larger batch defaults: >= 70 GiB, not an A100 (get_batch_defaults)."""
    return gpu_bytes >= 70 * 2**30 and "a100" not in gpu_name.lower()


def plans_scratch(n_models: int, n_dtypes: int, n_engines: int) -> np.ndarray:
    """Scratch for the kernel's per-(model, dtype, engine) plans."""
    import numpy as np

    import vramcore.grid._kernel as _kernel

    return np.empty((n_models, n_dtypes, n_engines, _kernel.PLAN_NFIELDS), dtype=np.float64)


def pack_engines(engines: Sequence[tuple[EngineSpec, int, int]]) -> np.ndarray:
    """Return a C-contiguous float64 array (len(engines), len(ENGINE_FIELDS)) of (engine, tp, pp) rows."""
    import numpy as np

    return np.ascontiguousarray(np.array([engine_row(e, tp, pp) for e, tp, pp in engines], dtype=np.float64)
                                .reshape(len(engines), len(ENGINE_FIELDS)))
