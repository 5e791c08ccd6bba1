"""Specs -> struct-of-doubles rows for the kernel: the one bridge to C.

The column order of each row matches the field order of the structs in
include/vramcore/formulas.h (``vc_model``, ``vc_dtype``, ``vc_engine``);
``tests/test_kernel_contract.py`` checks the counts against the compiled module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vramcore.dtypes import DType
from vramcore.engines import EngineSpec
from vramcore.specs import PARTS, ModelSpec

MODEL_FIELDS: tuple[str, ...] = (
    "n_full_layers",
    "n_sliding_layers",
    "sliding_window",
    "kv_heads",
    "head_dim_k",
    "head_dim_v",
    "mla_latent",
    "hidden",
    "q_width",
    "kv_width",
    "dense_intermediate",
    "n_dense_mlp_layers",
    "n_moe_layers",
    "n_experts",
    "experts_per_token",
    "expert_intermediate",
    "shared_intermediate",
    "vocab",
)
DTYPE_FIELDS: tuple[str, ...] = ("act_bytes", "kv_bits")
ENGINE_FIELDS: tuple[str, ...] = ("sliding_cap_offset", "mla_compressed", "full_logits",
                                  "cuda_context_bytes", "allocator_reserve", "n_gpus")


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
    row = {
        "n_full_layers": float(spec.n_full_layers),
        "n_sliding_layers": float(spec.n_sliding_layers),
        "sliding_window": float(spec.sliding_window or 0),
        "kv_heads": kv_heads,
        "head_dim_k": hd_k,
        "head_dim_v": hd_v,
        "mla_latent": mla_latent,
        "hidden": float(spec.hidden_size),
        "q_width": spec.num_heads * hd_k,
        "kv_width": kv_heads * hd_k,
        "dense_intermediate": float(spec.intermediate_size),
        "n_dense_mlp_layers": float(spec.n_dense_mlp_layers),
        "n_moe_layers": float(spec.n_moe_layers),
        "n_experts": float(spec.num_experts),
        "experts_per_token": float(spec.experts_per_token),
        "expert_intermediate": float(spec.moe_intermediate_size or 0),
        "shared_intermediate": float(spec.shared_expert_intermediate_size),
        "vocab": float(spec.vocab_size),
    }
    return [row[f] for f in MODEL_FIELDS]


def pack_models(specs: Sequence[ModelSpec]) -> np.ndarray:
    """Return a C-contiguous float64 array (len(specs), len(MODEL_FIELDS))."""
    return np.ascontiguousarray(np.array([model_row(s) for s in specs], dtype=np.float64)
                                .reshape(len(specs), len(MODEL_FIELDS)))


def dtype_row(dtype: DType, kv_dtype: DType | None) -> list[float]:
    """Return the ``vc_dtype`` row: activations in the compute dtype, KV in `kv_dtype` or the compute dtype."""
    kv_bits = kv_dtype.bits if kv_dtype is not None else dtype.compute_bits
    return [dtype.compute_bits / 8.0, float(kv_bits)]


def pack_dtypes(dtypes: Sequence[DType], kv_dtype: DType | None) -> np.ndarray:
    """Return a C-contiguous float64 array (len(dtypes), len(DTYPE_FIELDS))."""
    return np.ascontiguousarray(np.array([dtype_row(d, kv_dtype) for d in dtypes], dtype=np.float64)
                                .reshape(len(dtypes), len(DTYPE_FIELDS)))


def pack_weights(specs: Sequence[ModelSpec], dtypes: Sequence[DType]) -> np.ndarray:
    """Return stored weight bytes as a C-contiguous float64 array (models, dtypes, len(PARTS))."""
    out = np.empty((len(specs), len(dtypes), len(PARTS)), dtype=np.float64)
    for i, spec in enumerate(specs):
        for j, dtype in enumerate(dtypes):
            parts = dtype.weight_bytes_by_part(spec)
            out[i, j] = [parts[p] for p in PARTS]
    return out


def pack_engine(engine: EngineSpec, n_gpus: int) -> np.ndarray:
    """Return the ``vc_engine`` row as a float64 array."""
    return np.array([float(engine.sliding_cap_offset), float(engine.mla_compressed),
                     float(engine.full_logits), float(engine.cuda_context_bytes),
                     float(engine.allocator_reserve_fraction), float(n_gpus)], dtype=np.float64)
