"""Specs -> struct-of-doubles rows for the kernel: the one bridge to C.

The column order of each row matches the field order of the structs in
include/vramcore/common.h (``vc_model``, ``vc_dtype``, ``vc_engine``, ``vc_train``,
``vc_place``); ``tests/test_api.py`` checks the counts against the compiled module.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

from vramcore._errors import VramcoreWarning
from vramcore._identity import key, unkey
from vramcore.engines import EngineSpec, rope_cache_fp32
from vramcore.engines.base import (
    TRAIN_PRECISIONS,
    TRAIN_RECOMPUTE,
    attention_code,
    check_cross_attention,
    check_kv_sharing,
    check_towers,
)
from vramcore.model.spec import CROSS_KIND, FULL_KINDS, MOE_ROUTERS, PARTS, STATE_LAYER_KINDS, WINDOWED_KINDS, ModelSpec
from vramcore.storage.dtypes import DType
from vramcore.storage.kv import kv_bits
from vramcore.storage.resolve import format_family, fused_expert_bytes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    import numpy as np


def _train() -> Any:
    """Return the training rules (vramcore.engines.train), imported with the first training engine (~4 ms)."""
    import vramcore.engines.train as rules

    return rules


#: Phases of a vision tower's block the ``vc_model`` row holds (``VC_MM_PHASES`` in include/vramcore/common.h).
MM_PHASES = 4

#: The ``vc_model`` fields of those phases, phase by phase: ``mm_phase{k}_act``, ``_act_tp``, ``_f32``, ``_f32_tp``.
_MM_PHASE_FIELDS = tuple(f"mm_phase{k}_{part}" for k in range(MM_PHASES) for part in ("act", "act_tp", "f32", "f32_tp"))

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
    "state_groups",
    "state_group_width",
    "attn_group_fraction",
    "index_kv_elems",
    "mm_item_features",
    "mm_item_patches",
    # vc_model.mm_phase[4][4]: per phase of the tower's block, {act, act_tp, f32, f32_tp} (_MM_PHASE_FIELDS)
    *_MM_PHASE_FIELDS,
    "n_mixerless_layers",
    "mlp_rows",
    "mm_item_pixels",
    "mm_rope_table",
    "n_cross_layers",
    "cross_tokens",
    "n_layers",
    "mixer_proj",
    "mixer_inner",
    "mixer_heads",
    "mixer_norm_groups",
    "mixer_input_copies",
    "mixer_proj_scale",
    "rope",
    "resident_elems",
    "mm_tf_act",
    "mm_tf_f32",
    "mm_tf_fixed",
    "mm_tf_held_act",
    "mm_tf_held_f32",
    "mm_tf_held_feature",
    "mm_tf_pair",
    "mm_tf_image",
    "image_count",
    "image_patches",
    "image_features",
    "router_kind",
    "shared_gate",
    "layer_positions",
    "layer_pairs",
    "dn_key_heads",
    "dn_key_width",
    "dn_value_heads",
    "dn_value_width",
    "attn_output_gate",
    "rope_per_row",
    "m1_inner",
    "m1_state",
    "m1_dt_rank",
    "attention_sinks",
    "rotary_tables",
)
DTYPE_FIELDS: tuple[str, ...] = ("act_bytes", "kv_bits")
ENGINE_FIELDS: tuple[str, ...] = (
    "kind", "tp", "pp", "sliding_cap_offset", "mla_compressed", "full_logits", "cuda_context_bytes",
    "allocator_reserve", "mem_fraction", "block_size", "max_num_batched_tokens", "max_num_seqs",
    "cuda_graph_bytes", "non_torch_bytes", "ctx_pad", "n_gpu_layers", "swa_full", "max_model_len",
    "kv_bits", "sampler_bytes", "graphs_in_budget", "flash_attn", "rope_cache", "kv_bits_v",
    "state_conv_offset", "state_conv_bits", "state_ssm_bits", "index_bits", "mm_limit", "state_blocks",
    "grad_bytes", "fp32_grad_bytes", "master_bytes", "zero", "dp", "offload_optimizer", "offload_params",
    "recompute", "train_act_bytes", "backward_transient", "frozen_base", "autocast",
    "hidden_states", "profile_workspace", "mm_padding",
)
#: The ``vc_place`` row: a stage's layers on its GPU by kind, those in host memory, then the stage's role.
PLACE_FIELDS: tuple[str, ...] = (*(f"{where}_{kind}" for where in ("gpu", "host")
                                   for kind in ("layers", "full", "sliding", "state", "dense", "moe", "cross")),
                                 "first_stage", "last_stage", "in_flight", "group_layers", "rope_fp32",
                                 "attn_kv_extra", "attn_impl", "n_stages")
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
                "state_ssm_fp32": 0.0, "state_groups": 0.0, "state_group_width": 0.0, "attn_group_fraction": 0.0}
    attention = spec.param_breakdown()["attention"]
    return {"n_state_layers": float(spec.n_state_layers), "state_conv_dim": float(rec.conv_dim),
            "state_conv_kernel": float(rec.conv_kernel), "state_ssm_elems": float(rec.ssm_elems),
            "state_ssm_fp32": float(rec.ssm_fp32), "state_groups": float(rec.groups or 0),
            "state_group_width": float(rec.group_width),
            # the attention part's share in Mamba2 B and C rows, held whole-group per TP rank (StateSpec.tp_groups)
            "attn_group_fraction": rec.group_params * spec.n_state_layers / attention if attention else 0.0}


def _deltanet_fields(spec: ModelSpec) -> dict[str, float]:
    """Return the ``vc_model`` fields of what a gated-DeltaNet layer saves for backward (zeros without one)."""
    rec = spec.recurrent
    if rec is None or rec.kind != "gated_deltanet":
        return dict.fromkeys(("dn_key_heads", "dn_key_width", "dn_value_heads", "dn_value_width"), 0.0)
    key_width = (rec.conv_dim - rec.state_heads * rec.state_cols) // 2    # conv_dim = 2 x key width + value width
    return {"dn_key_heads": float(key_width // rec.state_rows), "dn_key_width": float(key_width),
            "dn_value_heads": float(rec.state_heads), "dn_value_width": float(rec.state_heads * rec.state_cols)}


def _mamba1_fields(spec: ModelSpec) -> dict[str, float]:
    """Return the ``vc_model`` fields of what a Mamba1 layer saves for backward (zeros without one)."""
    rec = spec.recurrent
    if rec is None or rec.kind != "mamba1":
        return dict.fromkeys(("m1_inner", "m1_state", "m1_dt_rank"), 0.0)
    dt = next(t for t in rec.tensors if t.name == "ssm_dt.weight")      # dt_proj: dt rank -> inner
    return {"m1_inner": float(rec.state_heads), "m1_state": float(rec.state_cols), "m1_dt_rank": float(dt.shape[1])}


def _mixer_fields(spec: ModelSpec) -> dict[str, float]:
    """Return the ``vc_model`` fields of what a Mamba2 layer saves for backward (zeros without one)."""
    rec = spec.recurrent
    if rec is None or rec.kind != "mamba2":
        return dict.fromkeys(("mixer_proj", "mixer_inner", "mixer_heads", "mixer_norm_groups", "mixer_input_copies",
                              "mixer_proj_scale"), 0.0)
    inner = rec.state_heads * rec.state_rows
    groups = (rec.conv_dim - inner) // (2 * rec.state_cols)       # conv_dim = inner + 2 x groups x state
    proj = next(t.shape[0] for t in rec.tensors if t.name == "ssm_in.weight")
    gated_norm = any(t.role == "norm" for t in rec.tensors)
    return {"mixer_proj": float(proj), "mixer_inner": float(inner), "mixer_heads": float(rec.state_heads),
            "mixer_norm_groups": float(groups) if gated_norm else 0.0, "mixer_input_copies": float(rec.input_copies),
            "mixer_proj_scale": float(rec.proj_scaled)}


def _vision_fields(spec: ModelSpec) -> dict[str, float]:
    """Return the ``vc_model`` fields of a multimodal model's largest image (zeros for a text-only model)."""
    v = spec.vision
    if v is None:
        return {"mm_item_features": 0.0, "mm_item_patches": 0.0, "mm_item_pixels": 0.0, "mm_rope_table": 0.0,
                **dict.fromkeys(_MM_PHASE_FIELDS, 0.0)}
    from vramcore.engines.vllm import mm_dummy_image_elems, mm_rope_table_bytes

    phases = v.vllm_encoder_phases
    if not 1 <= len(phases) <= MM_PHASES:
        raise ValueError(f"VisionSpec.vllm_encoder_phases: {len(phases)} phases for tower {v.kind!r}, the kernel "
                         f"holds 1 to {MM_PHASES}")
    flat = [float(x) for phase in phases for x in phase] + [0.0] * (4 * (MM_PHASES - len(phases)))
    return {"mm_item_features": float(v.max_item_features), "mm_item_patches": float(v.max_item_patches),
            **dict(zip(_MM_PHASE_FIELDS, flat, strict=True)),
            "mm_item_pixels": float(mm_dummy_image_elems(v)), "mm_rope_table": float(mm_rope_table_bytes(v))}


def _transformers_encoder_fields(spec: ModelSpec) -> dict[str, float]:
    """Return the ``vc_model`` fields of the vision tower's prefill under transformers (zeros: not counted)."""
    names = ("mm_tf_act", "mm_tf_f32", "mm_tf_fixed", "mm_tf_held_act", "mm_tf_held_f32", "mm_tf_held_feature")
    phases = spec.vision.transformers_encoder_phases if spec.vision is not None else None
    if phases is None or not spec.image_patches:
        return {**dict.fromkeys(names, 0.0), "mm_tf_pair": 0.0, "mm_tf_image": 0.0, "image_count": 0.0,
                "image_patches": 0.0, "image_features": 0.0}
    assert spec.vision is not None
    return {**{f: float(x) for f, x in zip(names, (*phases[0], *phases[1]), strict=True)},
            "mm_tf_pair": float(spec.vision.transformers_encoder_pairs),
            "mm_tf_image": spec.vision.transformers_encoder_image, "image_count": float(spec.image_count),
            "image_patches": float(spec.image_patches), "image_features": float(spec.image_features)}


def _attention_fractions(spec: ModelSpec) -> tuple[float, float]:
    """Shares of the attention part's weights in k/v projections and in TP-replicated projections.

    The attention part holds every layer's token mixer: in a hybrid model the
    recurrent mixers too, whose projections split over TP like q and o.
    """
    if not spec.n_attention_layers + spec.n_cross_layers:
        return 0.0, 0.0  # recurrent layers only: every projection splits over TP
    # per attention layer, mixers (and cross-attention layers, whose k/v projections are the same) included
    attn = spec.param_breakdown()["attention"] / (spec.n_attention_layers + spec.n_cross_layers)
    h = spec.hidden_size
    if spec.is_mla:
        # q_a_proj and kv_a_proj_with_mqa are replicated on every TP rank in vLLM's
        # DeepseekV2MLAAttention (ReplicatedLinear); the b projections and o_proj split.
        replicated = h * (spec.kv_lora_rank + spec.qk_rope_head_dim)  # type: ignore[operator]
        if spec.q_lora_rank is not None:
            replicated += h * spec.q_lora_rank
        return 0.0, replicated / attn
    # over the whole part: KV-sharing layers (Gemma-3n) hold no k/v projections, and vLLM keeps Gemma-3n's AltUp
    # and per-layer-input projections whole on every rank (ModelSpec.tp_replicated_attention_params)
    total = attn * (spec.n_attention_layers + spec.n_cross_layers)
    return spec.kv_projection_params / total, spec.tp_replicated_attention_params / total


#: Token-mixer kinds by the index layer_pairs gives them (include/vramcore/engines/train.h, vc_train_plan):
#: attention (full, sliding, chunked, cross), a recurrent mixer alone, both side by side, none.
_PAIR_MIXERS = {"mamba": 1, "linear_attention": 1, "hybrid": 2, "none": 3}
_PAIR_MLPS = {"dense": 0, "moe": 1, "none": 2}


def layer_pairs(spec: ModelSpec) -> int:
    """Return the bits of the (token mixer, MLP) kinds `spec`'s layers have: bit ``3 x mixer + mlp``.

    Mixers: 0 attention, 1 a recurrent mixer alone, 2 both side by side (Falcon-H1's ``"hybrid"``), 3 none
    (a Nemotron-H MLP block); MLPs: 0 dense, 1 MoE, 2 none.
    """
    bits = 0
    for mixer, mlp in zip(spec.layer_types or (), spec.mlp_layer_types or (), strict=True):
        bits |= 1 << (3 * _PAIR_MIXERS.get(mixer, 0) + _PAIR_MLPS[mlp])
    return bits


def resident_elems(spec: ModelSpec) -> int:
    """Return the elements per token a forward pass of `spec` holds through every layer beyond the residual.

    Gemma-3n (transformers ``Gemma3nTextModel.forward`` / ``Gemma3nTextDecoderLayer.forward``; vLLM
    ``Gemma3nTextModel`` the same): the residual stream is ``altup_inputs`` stacked copies of the hidden state,
    and a layer holds its input stack while ``altup.predict`` builds a second one (``predictions``); the
    per-layer inputs of all layers (``num_layers x per_layer_input_size``) are computed once before the first
    layer and kept to the last.  Counted whole beside the 2 x hidden every model has (the residual and its
    normed copy), which then stands for the active prediction's normed copy and the LAuReL output: a named
    upper bound, not measured.  0 for every other model.
    """
    n = spec.altup_inputs
    return (2 * n * spec.hidden_size if n > 1 else 0) + spec.num_layers * spec.per_layer_input_size


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
        # the layers that cache K and V (Gemma-3n's KV-sharing layers read an earlier layer's cache)
        "n_full_layers": float(spec.n_kv_full_layers),
        "n_sliding_layers": float(spec.n_kv_sliding_layers),
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
        "rotary_dim": float(spec.rotary_width),
        # Nemotron-H's fp32 weight copy saves what Gemma's fp32 (1 + weight) does (training.h vc_norm_saved)
        "norm_kind": 1.0 if spec.norm_plus_one or spec.norm_weight_upcast else (2.0 if spec.norm_weight_fp32 else 0.0),
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
        "n_cross_layers": float(spec.n_cross_layers),
        "cross_tokens": float(spec.cross_attention_tokens),
        "n_layers": float(spec.num_layers),
        **_mixer_fields(spec),
        "rope": float(spec.rope),
        "resident_elems": float(resident_elems(spec)),
        **_transformers_encoder_fields(spec),
        "router_kind": float(MOE_ROUTERS[spec.moe_router]),
        "shared_gate": float(spec.shared_expert_gate),
        "layer_positions": float(spec.layer_positions),
        "layer_pairs": float(layer_pairs(spec)),
        **_deltanet_fields(spec),
        "attn_output_gate": float(spec.attn_output_gate),
        "rope_per_row": float(spec.rope_per_row),
        **_mamba1_fields(spec),
        "attention_sinks": float(spec.attention_sinks),
        "rotary_tables": float(spec.rotary_tables),
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
    (``EngineSpec.mxfp4_layout``, :func:`vramcore.engines.vllm.mxfp4_loaded_extra`), and the k/v
    projections and k norms vLLM builds in KV-sharing layers (``EngineSpec.kv_shared_projections``,
    :func:`vramcore.engines.vllm.kv_shared_loaded_extra`), at the widths of the dtype's attention and norms.
    """
    parts = {p: float(b) for p, b in dtype.weight_bytes_by_part(spec).items()}
    if engine.mxfp4_layout != "stored" and format_family(dtype, spec) == "mxfp4":
        from vramcore.engines.vllm import mxfp4_loaded_extra

        parts["mlp_routed_experts"] += mxfp4_loaded_extra(spec, engine.mxfp4_layout)
    if not engine.bnb_quantizes_experts:
        experts = fused_expert_bytes(spec, dtype)
        if experts is not None:
            parts["mlp_routed_experts"] = experts
    if engine.kv_shared_projections and spec.kv_shared_layers:
        # the sharing layers' extra tensors are stored like the model's own k/v and k norms: the bytes the
        # dtype gives the same model with no KV-sharing layers, less its own
        alike = dtype.weight_bytes_by_part(spec.replace(kv_shared_layers=0))
        for part in ("attention", "norms"):
            parts[part] = alike[part]
    return {p: parts[p] for p in PARTS}


def _reshapes_weights(engine: EngineSpec, spec: ModelSpec, dtype: DType) -> bool:
    """Return whether `engine` holds `spec`'s weights in `dtype` otherwise than stored (:func:`engine_part_bytes`)."""
    if engine.kv_shared_projections and spec.kv_shared_layers:
        return True
    if engine.mxfp4_layout == "stored" and engine.bnb_quantizes_experts:
        return False
    family = format_family(dtype, spec)
    return (engine.mxfp4_layout != "stored" and family == "mxfp4") or (
        not engine.bnb_quantizes_experts and spec.is_moe and family == "bitsandbytes")


def pack_loaded_weights(specs: Sequence[ModelSpec], dtypes: Sequence[DType],
                        engines: Sequence[tuple[EngineSpec, int, int]]) -> np.ndarray:
    """Return weight bytes as each engine holds them (:func:`engine_part_bytes`), (models, dtypes, engines, parts)."""
    import numpy as np

    out = np.empty((len(specs), len(dtypes), len(engines), len(PARTS)), dtype=np.float64)
    stored = pack_weights(specs, dtypes)
    for k, (engine, _, _) in enumerate(engines):
        out[:, :, k] = stored
        for i, spec in enumerate(specs):
            for j, dtype in enumerate(dtypes):
                if _reshapes_weights(engine, spec, dtype):
                    out[i, j, k] = list(engine_part_bytes(spec, dtype, engine).values())
    return out


def _kind_counts(spec: ModelSpec, layers: Sequence[int]) -> list[float]:
    """Return the counts of `layers` by kind: all, full, sliding (or chunked), recurrent, dense MLP, MoE MLP, cross.

    A ``"hybrid"`` layer (attention and a recurrent mixer side by side) counts
    as full and as recurrent, so the kinds may sum to more than all.  Full and
    sliding count the layers that cache their own K and V: a KV-sharing layer
    (Gemma-3n) allocates none in any engine (transformers skips its
    ``cache.update``; vLLM's ``kv_sharing_target_layer_name``; llama.cpp's
    ``n_layer_kv_from_start``).
    """
    kinds = spec.layer_types or ()
    mlps = spec.mlp_layer_types or ()
    return [float(len(layers)),
            float(sum(1 for i in layers if kinds[i] in FULL_KINDS and spec.owns_kv(i))),
            float(sum(1 for i in layers if kinds[i] in WINDOWED_KINDS and spec.owns_kv(i))),
            float(sum(1 for i in layers if kinds[i] in STATE_LAYER_KINDS)),
            float(sum(1 for i in layers if mlps[i] == "dense")),
            float(sum(1 for i in layers if mlps[i] == "moe")),
            float(sum(1 for i in layers if kinds[i] == CROSS_KIND))]


def stage_layers(engine: EngineSpec, n_layers: int, pp: int) -> list[Sequence[int]]:
    """Return the decoder layers of each of `pp` pipeline stages under `engine`, in order.

    vLLM and SGLang give the layers left over by ``n_layers // pp`` to the
    stages before the last, counting back from the second-to-last
    (vllm/distributed/utils.py and sglang/srt/distributed/utils.py,
    get_pp_indices).  TensorRT-LLM gives them to the first stages
    (tensorrt_llm/mapping.py, pp_layers: ``torch.tensor_split``), and so do the
    transformers and training engines -- a named assumption there: DeepSpeed's
    ``partition_uniform`` splits that way, accelerate's balanced device map by
    memory.  llama.cpp's split is :func:`place_rows`' own.
    """
    base, extra = divmod(n_layers, pp)
    if engine.kind in ("vllm", "sglang"):
        sizes = [base + (pp - 1 - extra <= k < pp - 1) for k in range(pp)]
    else:
        sizes = [base + (k < extra) for k in range(pp)]
    bounds = [sum(sizes[:k]) for k in range(pp + 1)]
    return [range(bounds[k], bounds[k + 1]) for k in range(pp)]


def _llamacpp_devices(spec: ModelSpec, engine: EngineSpec, pp: int) -> tuple[list[list[int]], int, range]:
    """Return llama.cpp's layers per GPU, the GPU of the output layer (-1: host) and the layers left on the host.

    load_tensors (src/llama-model.cpp) offloads the items ``i_gpu_start = n_layer
    + 1 - ngl`` .. ``n_layer`` (the output layer is item ``n_layer``; ``-ngl -1``:
    all of them) and puts item ``il`` on the GPU whose share of the split holds
    ``(il - i_gpu_start) / n_offloaded``: on `pp` equal GPUs (the default
    ``--tensor-split`` follows free memory; equal shares are the assumption)
    GPU ``floor((il - i_gpu_start) x pp / n_offloaded)``.
    """
    n_layers = spec.num_layers
    n_items = n_layers + 1
    ngl = engine.n_gpu_layers
    offloaded = n_items if ngl < 0 else min(ngl, n_items)
    start = n_items - offloaded
    devices: list[list[int]] = [[] for _ in range(pp)]
    output = -1
    for il in range(start, n_items):
        d = (il - start) * pp // offloaded
        if il == n_layers:
            output = d
        else:
            devices[d].append(il)
    return devices, output, range(min(start, n_layers))


def _group_layers(spec: ModelSpec, engine: EngineSpec, layers: Sequence[int]) -> float:
    """Return how many of `layers` the fullest of a paged engine's KV-cache groups holds.

    vLLM groups the layers of the whole model (vllm/v1/core/kv_cache_utils.py,
    get_kv_cache_groups): each kind's layers in order -- full, sliding, and
    under vLLM the recurrent ones, which page their states in the same pool --
    cut into runs of the group size (the smallest kind's count, the largest's
    when within 1.5x; one kind: one group); a stage pages a block id in each of
    its layers of the fullest group (get_kv_cache_config_from_groups).  A
    ``"hybrid"`` layer is one full-attention layer and one recurrent layer
    there (vllm/model_executor/models/falcon_h1.py registers its Mamba2 mixer
    apart, as layer ``num_hidden_layers + i``).
    """
    kinds = spec.layer_types or ()
    wanted: list[frozenset[str]] = [frozenset(FULL_KINDS), frozenset(WINDOWED_KINDS)]
    if engine.kind == "vllm":
        wanted.append(frozenset(STATE_LAYER_KINDS))
    # KV-sharing layers (Gemma-3n) have no KV-cache spec: vLLM groups the layers that own a cache
    lists = [ids for ids in ([i for i, k in enumerate(kinds) if k in want and spec.owns_kv(i)] for want in wanted)
             if ids]
    if not lists:
        return 0.0
    lo, hi = min(len(x) for x in lists), max(len(x) for x in lists)
    size = hi if hi < 1.5 * lo else lo
    here = set(layers)
    return float(max(sum(1 for i in ids[j:j + size] if i in here)
                     for ids in lists for j in range(0, len(ids), size)))


def attn_kv_extra(spec: ModelSpec, engine: EngineSpec) -> float:
    """Return the share of `spec`'s attention weights, as `engine` loads them, that it adds in KV-sharing layers.

    ``extra / (attention + extra)`` in parameters (the attention part is one
    width in every dtype), where ``extra`` is
    :func:`vramcore.engines.vllm.kv_shared_loaded_extra`'s k/v count under an
    engine that builds them (``EngineSpec.kv_shared_projections``), else 0.
    These are k/v projections: TP splits them over at most ``kv_heads`` ranks
    (``vc_layer_weights_rank``); like the rest of the attention part, every
    layer holds an even share of them.
    """
    if not (engine.kv_shared_projections and spec.kv_shared_layers):
        return 0.0
    from vramcore.engines.vllm import kv_shared_loaded_extra

    extra = kv_shared_loaded_extra(spec)[0]
    return extra / (spec.param_breakdown()["attention"] + extra)


def place_rows(spec: ModelSpec, engine: EngineSpec, tp: int, pp: int) -> list[list[float]]:
    """Return the ``vc_place`` rows of `spec` under `engine` on `tp` x `pp` GPUs: one per distinct stage.

    Each stage holds its own layers (:func:`stage_layers`; llama.cpp's ``-ngl``
    and layer split: :func:`_llamacpp_devices`), counted by kind; the first
    also holds the embedding and the vision tower, the last the output layer;
    under 1F1B training stage ``k`` holds ``pp - k`` micro-batches.  Every
    row also carries three facts of the (model, engine) pair: ``rope_fp32``, the
    engine builds this model's rotary cos/sin cache in fp32
    (:func:`vramcore.engines.rope_cache_fp32`); ``attn_kv_extra``, the share
    of the attention weights as the engine loads them that are k/v projections
    it adds in KV-sharing layers (:func:`attn_kv_extra`); ``attn_impl``, the
    attention implementation the transformers and training engines run it with
    (:func:`vramcore.engines.base.attention_code`).  Stages with the same row are
    listed once, in order of their first appearance
    (``vramcore.grid.reference`` combines every stage the same way).
    """
    check_cross_attention(spec, engine)
    check_kv_sharing(spec, engine)
    check_towers(spec, engine)
    n_layers = spec.num_layers
    rows: list[list[float]] = []
    pair = [float(rope_cache_fp32(engine, spec)), attn_kv_extra(spec, engine), float(attention_code(spec, engine))]
    if engine.kind == "llamacpp":
        devices, output, host = _llamacpp_devices(spec, engine, pp)
        host_counts = _kind_counts(spec, host)
        for d, layers in enumerate(devices):
            rows.append(_kind_counts(spec, layers) + host_counts
                        + [float(d == 0), float(d == output), 1.0, 0.0, *pair])
    else:
        for k, stage in enumerate(stage_layers(engine, n_layers, pp)):
            in_flight = float(pp - k) if engine.kind == "train" else 1.0
            rows.append(_kind_counts(spec, stage) + [0.0] * 7
                        + [float(k == 0), float(k == pp - 1), in_flight,
                           _group_layers(spec, engine, stage) if engine.budgeted else 0.0, *pair])
    distinct: list[list[float]] = []
    for row in rows:
        if row not in distinct:
            distinct.append(row)
    return [row + [float(len(distinct))] for row in distinct]


def place_row(spec: ModelSpec, engine: EngineSpec, tp: int, pp: int) -> list[float]:
    """Return the ``vc_place`` rows of :func:`place_rows`, flattened into one buffer (the scalar path's)."""
    return [x for row in place_rows(spec, engine, tp, pp) for x in row]


def pack_place(specs: Sequence[ModelSpec], engines: Sequence[tuple[EngineSpec, int, int]]) -> np.ndarray:
    """Return the ``vc_place`` rows as a C-contiguous float64 array (models, engines, stages, len(PLACE_FIELDS)).

    ``stages`` is the most distinct stages of any (model, engine); the rows
    beyond a pair's own ``n_stages`` repeat its first and are never read.
    """
    import numpy as np

    rows = [[place_rows(s, e, tp, pp) for e, tp, pp in engines] for s in specs]
    n_s = max((len(r) for per_model in rows for r in per_model), default=1)
    out = np.empty((len(specs), len(engines), n_s, len(PLACE_FIELDS)), dtype=np.float64)
    for i, per_model in enumerate(rows):
        for j, stages in enumerate(per_model):
            out[i, j, :len(stages)] = stages
            out[i, j, len(stages):] = stages[0]
    return out


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
        return dict.fromkeys(ENGINE_FIELDS[ENGINE_FIELDS.index("grad_bytes"):ENGINE_FIELDS.index("autocast") + 1],
                             0.0)
    grad, fp32_part, master, _ = _train().state_widths(engine)
    return {
        "grad_bytes": grad, "fp32_grad_bytes": fp32_part, "master_bytes": master, "zero": float(engine.zero),
        "dp": float(engine.dp), "offload_optimizer": float(engine.offload_optimizer),
        "offload_params": float(engine.offload_params),
        "recompute": float(TRAIN_RECOMPUTE.index(engine.recompute)),
        "train_act_bytes": float(TRAIN_PRECISIONS[engine.precision][0]),
        "backward_transient": float(engine.backward_transient),
        "frozen_base": float(engine.method != "full"),
        "autocast": float(TRAIN_PRECISIONS[engine.precision][1]),
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
    per_elem = sum(rules.base_bytes_by_part(spec, base).values()) / max(1, spec.param_count)
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


def plans_scratch(n_models: int, n_dtypes: int, n_engines: int, n_stages: int = 1) -> np.ndarray:
    """Scratch for the kernel's per-(model, dtype, engine, stage) plans."""
    import numpy as np

    import vramcore.grid._kernel as _kernel

    return np.empty((n_models, n_dtypes, n_engines, n_stages, _kernel.PLAN_NFIELDS), dtype=np.float64)


def pools_scratch(plans: np.ndarray, n_gpus: int) -> np.ndarray:
    """Scratch for the budgeted engines' pool on each GPU, per plan (the kernel's inverse questions)."""
    import numpy as np

    import vramcore.grid._kernel as _kernel

    return np.empty((*plans.shape[:4], n_gpus, _kernel.POOL_NFIELDS), dtype=np.float64)


def pack_engines(engines: Sequence[tuple[EngineSpec, int, int]]) -> np.ndarray:
    """Return a C-contiguous float64 array (len(engines), len(ENGINE_FIELDS)) of (engine, tp, pp) rows."""
    import numpy as np

    return np.ascontiguousarray(np.array([engine_row(e, tp, pp) for e, tp, pp in engines], dtype=np.float64)
                                .reshape(len(engines), len(ENGINE_FIELDS)))
