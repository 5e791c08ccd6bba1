"""The pure-Python oracle the tests hold the compiled kernel to.

An independent, deliberately slow re-implementation of the memory model of the
``"transformers"`` engine as it is *documented* (the comments of
``include/vramcore/formulas.h``, the docstrings of :func:`vramcore.estimate`,
:func:`vramcore.sweep` and the fields of :class:`vramcore.EngineSpec`).  It works
from the specs themselves, never from the kernel's packed rows
(``vramcore._pack`` is not imported), and it is written differently on purpose:

- the KV cache is summed layer by layer over ``spec.layer_types``;
- the activation peak is the maximum over the layers of ``spec.mlp_layer_types``;
- the weights are summed part by part over ``spec.param_breakdown()``, the
  attention part split projection by projection for tensor parallelism;
- every quantity is computed *exactly*, with Python integers and
  :class:`fractions.Fraction`, and rounded to a float once, at the end.

So :func:`reference_estimate_exact` is the mathematical value of the model and
:func:`reference_estimate` its correctly rounded float.  The kernel computes in
double precision: where all its intermediate values are exact (byte counts
below about 2**42 with integer or power-of-two factors) it must agree bit for
bit, elsewhere up to the rounding of its intermediate operations.

Every figure is per GPU, the most loaded one, for ``tp`` tensor-parallel ranks
times ``pp`` pipeline stages (``n_gpus = tp * pp``; with neither given,
transformers spreads its layers over ``n_gpus`` pipeline stages).

:func:`reference_grid_numpy` evaluates the same formulas over a whole grid as a
NumPy float64 broadcast: per-model scalars of shape ``(M, 1, 1, 1, 1)``,
per-dtype ``(1, D, 1, 1, 1)``, contexts ``(1, 1, C, 1, 1)``, batches
``(1, 1, 1, B, 1)`` and GPUs ``(1, 1, 1, 1, G)``.  The benchmark uses it as "the
same formulas as a NumPy broadcast".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from vramcore.dtypes import DType, get_dtype
from vramcore.engines import EngineSpec
from vramcore.specs import PARTS, ModelSpec

__all__ = ["FIELDS", "MAX_COUNT", "reference_estimate", "reference_estimate_exact",
           "reference_grid_numpy"]

#: Result keys, in the order of :class:`vramcore.Estimate`.
FIELDS: tuple[str, ...] = ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes",
                           "total_bytes", "gpu_bytes", "fits", "headroom_bytes", "kv_capacity_tokens",
                           "kv_blocks", "max_concurrency", "host_bytes")

#: Largest context / batch / GPU count accepted (byte counts stay meaningful doubles).
MAX_COUNT = 2**53

#: Parts stored at the width of the weight dtype even when it is quantized.
_LINEAR_PARTS = frozenset({"attention", "mlp_dense", "mlp_routed_experts", "mlp_shared_experts"})
#: Parts held by every decoder layer (the final norm goes with them).
_LAYER_PARTS = ("attention", "mlp_dense", "mlp_routed_experts", "mlp_shared_experts", "router", "norms")


# ---------------------------------------------------------------------- argument checks
def _count(name: str, value: Any) -> int:
    """Return `value` as an int in [1, 2**53]; integral floats are accepted, bools are not."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real):
        as_float = float(value)
        if not math.isfinite(as_float) or as_float != math.floor(as_float):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
        number = int(as_float)
    else:
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if not 1 <= number <= MAX_COUNT:
        raise ValueError(f"{name} must be a positive integer <= 2**53, got {value!r}")
    return number


def _counts(name: str, values: Any) -> np.ndarray:
    """Return a scalar or 1-D sequence of counts as a new float64 array (the input is not touched).

    Each element is checked on its own, so a bool among ints is refused, as a lone bool is.
    """
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a positive integer or a 1-D sequence of them, got {values!r}")
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "b":
            raise TypeError(f"{name} must hold integers, got a bool array")
        items = values.reshape(-1).tolist() if values.ndim <= 1 else None
    elif isinstance(values, (numbers.Number, np.generic)):
        items = [values]
    else:
        items = list(values)
        if any(isinstance(v, (list, tuple, np.ndarray)) for v in items):
            items = None
    if items is None:
        raise ValueError(f"{name} must be a scalar or 1-D, got {values!r}")
    if not items:
        raise ValueError(f"{name} must not be empty")
    return np.array([_count(name, v) for v in items], dtype=np.float64)


def _gpu_bytes(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"gpu_bytes must be an int number of bytes, got {value!r}")
    if value <= 0:
        raise ValueError(f"gpu_bytes must be positive, got {value!r}")
    return int(value)


def _check_types(spec: ModelSpec, dtype: DType, kv_dtype: DType | None) -> None:
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec, got {type(spec).__name__}")
    if not isinstance(dtype, DType):
        raise TypeError(f"dtype must be a DType, got {type(dtype).__name__}")
    if kv_dtype is not None and not isinstance(kv_dtype, DType):
        raise TypeError(f"kv_dtype must be a DType or None, got {type(kv_dtype).__name__}")


def _check_engine(engine: EngineSpec) -> None:
    if not isinstance(engine, EngineSpec):
        raise TypeError(f"engine must be an EngineSpec, got {type(engine).__name__}")
    if engine.kind != "transformers":
        raise NotImplementedError(f"the reference models the 'transformers' engine kind only, "
                                  f"got {engine.kind!r}")
    offset = engine.sliding_cap_offset
    if isinstance(offset, bool) or not isinstance(offset, numbers.Integral):
        raise TypeError(f"engine.sliding_cap_offset must be an int number of tokens, got {offset!r}")
    for flag in ("mla_compressed", "full_logits"):
        if not isinstance(getattr(engine, flag), bool):
            raise TypeError(f"engine.{flag} must be a bool, got {getattr(engine, flag)!r}")
    ctx = engine.cuda_context_bytes
    if isinstance(ctx, bool) or not isinstance(ctx, numbers.Integral) or ctx < 0:
        raise ValueError(f"engine.cuda_context_bytes must be an int >= 0, got {ctx!r}")


def _parallelism(spec: ModelSpec, n_gpus: Any, tp: Any, pp: Any) -> tuple[int, int]:
    """Resolve and check (tp, pp): transformers spreads `n_gpus` over pipeline stages by default."""
    n = _count("n_gpus", n_gpus)
    if tp is None and pp is None:
        tp_, pp_ = 1, n
    else:
        tp_ = _count("tp", tp) if tp is not None else 1
        pp_ = _count("pp", pp) if pp is not None else 1
        if n != 1 and n != tp_ * pp_:
            raise ValueError(f"n_gpus ({n}) must equal tp x pp ({tp_} x {pp_}) when both are given")
    if spec.num_heads % tp_:
        raise ValueError(f"tp={tp_} does not divide the {spec.num_heads} attention heads")
    kv_heads = spec.num_kv_heads or spec.num_heads
    if not spec.is_mla and kv_heads % tp_ and tp_ % kv_heads:
        raise ValueError(f"tp={tp_} and the {kv_heads} KV heads must divide one another")
    if pp_ > spec.num_layers:
        raise ValueError(f"pp={pp_} exceeds the {spec.num_layers} layers")
    return tp_, pp_


# ---------------------------------------------------------------------- the model, exactly
def _compute_bytes(dtype: DType) -> Fraction:
    """Bytes of one activation element: activations run in the compute dtype."""
    return Fraction(dtype.compute_bits) / 8


def _kv_bytes_per_elem(dtype: DType, kv_dtype: DType | None, engine: EngineSpec) -> Fraction:
    """Bytes of one cached element: the engine's KV dtype, else `kv_dtype`, else the compute dtype."""
    if engine.kv_cache_dtype is not None:
        bits = get_dtype(engine.kv_cache_dtype, argname="kv_cache_dtype").bits
    elif kv_dtype is not None:
        bits = kv_dtype.bits
    else:
        bits = dtype.compute_bits
    return Fraction(bits) / 8


def _stored_part_bytes(spec: ModelSpec, dtype: DType) -> dict[str, Fraction]:
    """Return the stored bytes of every parameter part of `spec` in `dtype`.

    Linear layers take the dtype's width; the other parts the compute width when
    the dtype is quantized; a router the engine keeps in fp32 takes 4 bytes.
    """
    out: dict[str, Fraction] = {}
    for part, count in spec.param_breakdown().items():
        if part in _LINEAR_PARTS:
            bits = Fraction(dtype.bits)
        elif part == "router" and spec.router_fp32:
            bits = Fraction(32)
        else:
            bits = Fraction(dtype.compute_bits if dtype.quantized else dtype.bits)
        out[part] = count * bits / 8
    assert tuple(out) == PARTS
    return out


def _attention_split(spec: ModelSpec) -> tuple[Fraction, Fraction]:
    """Return the shares of a layer's attention parameters in k/v and in MLA latent projections.

    k/v projections split over at most kv_heads TP ranks; MLA latent projections
    are replicated on every rank.
    """
    h = spec.hidden_size
    per_layer = Fraction(spec.param_breakdown()["attention"], spec.num_layers)
    if spec.is_mla:
        assert spec.kv_lora_rank is not None and spec.qk_rope_head_dim is not None
        kv_a_proj = h * (spec.kv_lora_rank + spec.qk_rope_head_dim)  # kv_a_proj_with_mqa
        q_a_proj = h * spec.q_lora_rank if spec.q_lora_rank is not None else 0
        return Fraction(0), (kv_a_proj + q_a_proj) / per_layer
    assert spec.num_kv_heads is not None and spec.head_dim is not None
    k_proj = v_proj = h * spec.num_kv_heads * spec.head_dim
    biases = 2 * spec.num_kv_heads * spec.head_dim if spec.qkv_bias else 0
    return (k_proj + v_proj + biases) / per_layer, Fraction(0)


def _weights_bytes(spec: ModelSpec, dtype: DType, tp: int, pp: int) -> Fraction:
    """Weights on the most loaded GPU.

    TP splits the attention and MLP matrices and the vocabulary; k/v projections
    split over at most kv_heads ranks; MLA latent projections, norms and the router
    are replicated.  The most loaded pipeline stage holds ceil(L / pp) of the L
    layers, plus the embedding (first stage) or the lm_head (last stage; a tied
    lm_head is a second copy of the embedding there), whichever is larger.
    """
    parts = _stored_part_bytes(spec, dtype)
    kv_heads = spec.num_heads if spec.is_mla else spec.num_kv_heads
    assert kv_heads is not None
    kv_share, replicated_share = _attention_split(spec)
    rank_bytes = Fraction(0)
    for part in _LAYER_PARTS:
        if part == "attention":
            attention = parts[part]
            kv = attention * kv_share
            replicated = attention * replicated_share
            rank_bytes += (attention - kv - replicated) / tp + kv / min(tp, kv_heads) + replicated
        elif part in ("router", "norms"):
            rank_bytes += parts[part]
        else:
            rank_bytes += parts[part] / tp
    layers_here = -(-spec.num_layers // pp)  # ceil
    on_gpu = rank_bytes * Fraction(layers_here, spec.num_layers)
    embedding, lm_head = parts["embedding"] / tp, parts["lm_head"] / tp
    if pp == 1:
        return on_gpu + embedding + lm_head
    last_stage_head = lm_head if lm_head else embedding
    return on_gpu + max(embedding, last_stage_head)


def _rope_cache_bytes(spec: ModelSpec, dtype: DType, engine: EngineSpec) -> Fraction:
    """Return the bytes of the engine's cos/sin cache: max_context x rotary dim, compute dtype."""
    if not engine.rope_cache or spec.max_context is None:
        return Fraction(0)
    rotary = spec.qk_rope_head_dim if spec.is_mla else spec.head_dim
    assert rotary is not None
    return spec.max_context * rotary * _compute_bytes(dtype)


def _kv_elems_per_token(spec: ModelSpec, engine: EngineSpec, tp: int) -> Fraction:
    """K and V elements one layer caches per token on one TP rank."""
    if spec.is_mla:
        assert spec.kv_lora_rank is not None and spec.qk_rope_head_dim is not None
        assert spec.qk_nope_head_dim is not None and spec.v_head_dim is not None
        if engine.mla_compressed:
            return Fraction(spec.kv_lora_rank + spec.qk_rope_head_dim)  # one latent, replicated
        # decompressed: every query head has its own key (nope + rope) and value, split over TP
        heads = Fraction(spec.num_heads, tp)
        return heads * (spec.qk_nope_head_dim + spec.qk_rope_head_dim + spec.v_head_dim)
    assert spec.num_kv_heads is not None and spec.head_dim is not None
    heads = max(Fraction(1), Fraction(spec.num_kv_heads, tp))  # replicated when tp > kv heads
    return heads * spec.head_dim * 2


def _cached_tokens(spec: ModelSpec, engine: EngineSpec, context: int) -> int:
    """Tokens held by all layers together for one sequence of `context` tokens."""
    tokens = 0
    for kind in spec.layer_types or ():
        if kind == "full_attention":
            tokens += context
        else:
            assert kind == "sliding_attention"
            tokens += min(context, _sliding_cap(spec, engine))
    return tokens


def _sliding_cap(spec: ModelSpec, engine: EngineSpec) -> int:
    """Tokens a sliding layer keeps at most: ``window + engine.sliding_cap_offset``."""
    assert spec.sliding_window is not None
    cap = spec.sliding_window + int(engine.sliding_cap_offset)
    if cap < 0:
        raise ValueError(f"engine.sliding_cap_offset ({engine.sliding_cap_offset}) leaves the sliding "
                         f"layers of a {spec.sliding_window}-token window a negative token count")
    return cap


def _kv_cache_bytes(spec: ModelSpec, kv_bytes: Fraction, engine: EngineSpec, tp: int, pp: int,
                    context: int, batch: int) -> Fraction:
    share = Fraction(-(-spec.num_layers // pp), spec.num_layers)
    per_seq = _cached_tokens(spec, engine, context) * share * _kv_elems_per_token(spec, engine, tp) * kv_bytes
    return batch * per_seq


def _layer_peak_elems_per_token(spec: ModelSpec, mlp_kind: str, tp: int) -> Fraction:
    """Elements per prompt token alive at the peak inside one layer (one TP rank) whose MLP is `mlp_kind`."""
    if spec.is_mla:
        assert spec.qk_nope_head_dim is not None and spec.qk_rope_head_dim is not None
        key_dim, kv_heads = spec.qk_nope_head_dim + spec.qk_rope_head_dim, spec.num_heads
    else:
        assert spec.head_dim is not None and spec.num_kv_heads is not None
        key_dim, kv_heads = spec.head_dim, spec.num_kv_heads
    q_width = Fraction(spec.num_heads * key_dim, tp)
    kv_width = max(Fraction(1), Fraction(kv_heads, tp)) * key_dim
    residual = 2 * spec.hidden_size  # residual stream + its normed copy
    attention = 3 * q_width + 3 * kv_width  # q, k, v, rotary copies of q and k, attention output
    if mlp_kind == "dense":
        mlp = Fraction(3 * spec.intermediate_size, tp)  # gate, up, act(gate) * up
    else:
        assert mlp_kind == "moe" and spec.moe_intermediate_size is not None
        experts = spec.num_experts
        mlp = (2 * experts  # fp32 router logits, in 16-bit units
               + spec.hidden_size  # output accumulator
               # one expert at a time over its even share of the tokens
               + Fraction(3 * spec.moe_intermediate_size * spec.experts_per_token, tp * experts)
               + Fraction(3 * spec.shared_expert_intermediate_size, tp))
    return residual + max(attention, mlp)


def _peak_elems_per_token(spec: ModelSpec, tp: int) -> Fraction:
    """Return the largest per-layer peak over the layers (each MLP kind evaluated once)."""
    by_kind: dict[str, Fraction] = {}
    peak = Fraction(0)
    for kind in spec.mlp_layer_types or ():
        if kind not in by_kind:
            by_kind[kind] = _layer_peak_elems_per_token(spec, kind, tp)
        peak = max(peak, by_kind[kind])
    return peak


def _activation_bytes(spec: ModelSpec, act_bytes: Fraction, engine: EngineSpec, tp: int, context: int,
                      batch: int) -> Fraction:
    per_token = _peak_elems_per_token(spec, tp)
    if engine.full_logits:
        # final hidden states + this rank's logits of every position, in the compute dtype
        per_token = max(per_token, spec.hidden_size + Fraction(spec.vocab_size, tp))
        return batch * context * per_token * act_bytes
    # last-position logits in the compute dtype plus the fp32 copy generate() samples from
    last_logits = batch * spec.vocab_size * (act_bytes + 4)
    return batch * context * per_token * act_bytes + last_logits


def reference_estimate_exact(spec: ModelSpec, dtype: DType, kv_dtype: DType | None, engine: EngineSpec,
                             n_gpus: int, context: int, batch: int, gpu_bytes: int | None, *,
                             tp: int | None = None, pp: int | None = None) -> dict[str, Any]:
    """Return the exact value of every field of one estimate, as :class:`fractions.Fraction`.

    Parameters
    ----------
    spec : ModelSpec
        Model geometry.
    dtype : DType
        Weight dtype.
    kv_dtype : DType or None
        KV-cache dtype; None caches in the compute dtype of `dtype` (an engine
        ``kv_cache_dtype`` overrides both).
    engine : EngineSpec
        Allocation rules; its kind must be ``"transformers"``.
    n_gpus : int
        GPUs per configuration (>= 1); pipeline stages unless `tp` / `pp` are given.
    context : int
        Tokens per sequence (>= 1).
    batch : int
        Concurrent sequences (>= 1).
    gpu_bytes : int or None
        Memory of one GPU in bytes; None skips the fit.
    tp, pp : int, optional
        Tensor- and pipeline-parallel degrees (``n_gpus = tp * pp``).

    Returns
    -------
    dict
        The keys of :data:`FIELDS`, per GPU (the most loaded one).  Byte
        counts and counts are exact Fractions (the allocator fraction taken at
        the exact binary value of its float), ``fits`` is a bool; ``gpu_bytes``,
        ``fits``, ``headroom_bytes`` and ``max_concurrency`` are None when
        `gpu_bytes` is None.

    Raises
    ------
    TypeError
        An argument of the wrong type.
    ValueError
        A count out of [1, 2**53], a GPU without memory, a parallel layout the
        model does not allow, or an engine whose sliding-window offset leaves a
        negative number of tokens.
    NotImplementedError
        An engine of another kind than ``"transformers"``.

    Examples
    --------
    >>> from vramcore import ModelSpec, get_dtype, get_engine
    >>> spec = ModelSpec(num_layers=2, hidden_size=64, num_heads=4, intermediate_size=128,
    ...                  vocab_size=1000)
    >>> r = reference_estimate_exact(spec, get_dtype("bf16"), None, get_engine("transformers"),
    ...                              1, 10, 1, None)
    >>> r["kv_cache_bytes"]  # 2 layers x 10 tokens x 2 x 4 heads x 16 dims x 2 bytes
    Fraction(5120, 1)
    """
    _check_types(spec, dtype, kv_dtype)
    _check_engine(engine)
    tp_, pp_ = _parallelism(spec, n_gpus, tp, pp)
    context = _count("context", context)
    batch = _count("batch", batch)
    act_bytes = _compute_bytes(dtype)
    kv_bytes = _kv_bytes_per_elem(dtype, kv_dtype, engine)
    reserve = Fraction(engine.allocator_reserve_fraction)

    weights = _weights_bytes(spec, dtype, tp_, pp_) + _rope_cache_bytes(spec, dtype, engine)
    kv = _kv_cache_bytes(spec, kv_bytes, engine, tp_, pp_, context, batch)
    activations = _activation_bytes(spec, act_bytes, engine, tp_, context, batch)
    overhead = engine.cuda_context_bytes + reserve * (kv + activations)
    total = weights + kv + activations + overhead
    out: dict[str, Any] = dict.fromkeys(FIELDS)
    out.update(weights_bytes=weights, kv_cache_bytes=kv, activation_bytes=activations,
               overhead_bytes=overhead, total_bytes=total, kv_capacity_tokens=Fraction(context * batch),
               kv_blocks=Fraction(0), host_bytes=Fraction(0))
    if gpu_bytes is not None:
        memory = Fraction(_gpu_bytes(gpu_bytes))
        # sequences of `context` tokens the memory left after weights and context holds
        free = memory - weights - engine.cuda_context_bytes
        per_seq = (_kv_cache_bytes(spec, kv_bytes, engine, tp_, pp_, context, 1)
                   + _activation_bytes(spec, act_bytes, engine, tp_, context, 1)) * (1 + reserve)
        out.update(gpu_bytes=memory, fits=total <= memory, headroom_bytes=memory - total,
                   max_concurrency=Fraction(math.floor(free / per_seq)) if free > 0 else Fraction(0))
    return out


def reference_estimate(spec: ModelSpec, dtype: DType, kv_dtype: DType | None, engine: EngineSpec,
                       n_gpus: int, context: int, batch: int, gpu_bytes: int | None, *,
                       tp: int | None = None, pp: int | None = None) -> dict[str, Any]:
    """Estimate one configuration in pure Python: the oracle for :func:`vramcore.estimate`.

    Every field is the correctly rounded float of its exact value (see
    :func:`reference_estimate_exact`, which takes the same arguments).

    Parameters
    ----------
    spec : ModelSpec
        Model geometry.
    dtype : DType
        Weight dtype.
    kv_dtype : DType or None
        KV-cache dtype; None caches in the compute dtype of `dtype`.
    engine : EngineSpec
        Allocation rules; its kind must be ``"transformers"``.
    n_gpus : int
        GPUs per configuration (>= 1); pipeline stages unless `tp` / `pp` are given.
    context : int
        Tokens per sequence (>= 1).
    batch : int
        Concurrent sequences (>= 1).
    gpu_bytes : int or None
        Memory of one GPU in bytes (e.g. ``GPUSpec.usable_bytes``); None skips the fit.
    tp, pp : int, optional
        Tensor- and pipeline-parallel degrees (``n_gpus = tp * pp``).

    Returns
    -------
    dict
        The keys of :data:`FIELDS`, per GPU: byte counts and counts as floats,
        ``fits`` as a bool; ``gpu_bytes``, ``fits``, ``headroom_bytes`` and
        ``max_concurrency`` are None when `gpu_bytes` is None.

    Raises
    ------
    TypeError
        An argument of the wrong type.
    ValueError
        A count out of [1, 2**53], a GPU without memory, a parallel layout the
        model does not allow, or an engine whose sliding-window offset leaves a
        negative number of tokens.
    NotImplementedError
        An engine of another kind than ``"transformers"``.

    Examples
    --------
    >>> import vramcore
    >>> spec = vramcore.get_model("DeepSeek-R1-Distill-Llama-8B").spec
    >>> r = reference_estimate(spec, vramcore.get_dtype("bf16"), None,
    ...                        vramcore.get_engine("transformers"), 1, 32768, 1, 80 * 2**30)
    >>> int(r["kv_cache_bytes"]), r["fits"]
    (4294967296, True)
    """
    exact = reference_estimate_exact(spec, dtype, kv_dtype, engine, n_gpus, context, batch, gpu_bytes,
                                     tp=tp, pp=pp)
    return {k: (v if v is None or isinstance(v, bool) else float(v)) for k, v in exact.items()}


# ---------------------------------------------------------------------- the same formulas, broadcast
def reference_grid_numpy(specs: Sequence[ModelSpec], dtypes: Sequence[DType], kv_dtype: DType | None,
                         engine: EngineSpec, n_gpus: int, contexts: Any, batches: Any, gpu_bytes: Any, *,
                         tp: int | None = None, pp: int | None = None) -> dict[str, np.ndarray]:
    """Evaluate the model over a whole grid as a NumPy float64 broadcast.

    Per-model quantities are packed into arrays of shape ``(M, 1, 1, 1, 1)``,
    per-dtype ones into ``(1, D, 1, 1, 1)`` (per model and dtype:
    ``(M, D, 1, 1, 1)``), and broadcast against contexts ``(1, 1, C, 1, 1)``,
    batches ``(1, 1, 1, B, 1)`` and GPUs ``(1, 1, 1, 1, G)``.

    Parameters
    ----------
    specs : sequence of ModelSpec
        Models (axis 0).
    dtypes : sequence of DType
        Weight dtypes (axis 1).
    kv_dtype : DType or None
        KV-cache dtype of every cell; None caches in each weight dtype's compute dtype.
    engine : EngineSpec
        Allocation rules; its kind must be ``"transformers"``.
    n_gpus : int
        GPUs per configuration (>= 1); pipeline stages unless `tp` / `pp` are given.
    contexts, batches : int or 1-D array-like of int
        Tokens per sequence (axis 2) and concurrent sequences (axis 3); not modified.
    gpu_bytes : int or 1-D sequence of int
        Memory of one GPU of each kind, in bytes (axis 4).
    tp, pp : int, optional
        Tensor- and pipeline-parallel degrees.

    Returns
    -------
    dict of str to numpy.ndarray
        The keys of :data:`FIELDS`, each of shape ``(M, D, C, B, G)``, per GPU.
        Every field but ``gpu_bytes`` (a read-only broadcast view) is a
        C-contiguous array of its own, float64 (``fits``: bool): the output
        bytes the kernel writes.

    Raises
    ------
    TypeError, ValueError, NotImplementedError
        As :func:`reference_estimate`, or an empty axis.

    Examples
    --------
    >>> import vramcore
    >>> spec = vramcore.get_model("DeepSeek-R1-Distill-Llama-8B").spec
    >>> g = reference_grid_numpy([spec], [vramcore.get_dtype("bf16")], None,
    ...                          vramcore.get_engine("transformers"), 1, [4096, 32768], [1, 2],
    ...                          [80 * 2**30])
    >>> g["kv_cache_bytes"].shape
    (1, 1, 2, 2, 1)
    >>> int(g["kv_cache_bytes"][0, 0, 1, 0, 0])
    4294967296
    """
    specs, dtypes = list(specs), list(dtypes)
    if not specs or not dtypes:
        raise ValueError("specs and dtypes must not be empty")
    _check_engine(engine)
    layouts = set()
    for spec in specs:
        for dtype in dtypes:
            _check_types(spec, dtype, kv_dtype)
        layouts.add(_parallelism(spec, n_gpus, tp, pp))
    (tp_, pp_), = layouts
    ctx = _counts("contexts", contexts).reshape(1, 1, -1, 1, 1)
    bat = _counts("batches", batches).reshape(1, 1, 1, -1, 1)
    gpu_list = [gpu_bytes] if isinstance(gpu_bytes, numbers.Number) else list(gpu_bytes)
    if not gpu_list:
        raise ValueError("gpu_bytes must not be empty")
    gpu = np.array([float(_gpu_bytes(g)) for g in gpu_list], dtype=np.float64).reshape(1, 1, 1, 1, -1)

    def per_model(values: list[Any]) -> np.ndarray:
        return np.array([float(v) for v in values], dtype=np.float64).reshape(-1, 1, 1, 1, 1)

    def per_dtype(values: list[Any]) -> np.ndarray:
        return np.array([float(v) for v in values], dtype=np.float64).reshape(1, -1, 1, 1, 1)

    shares = [Fraction(-(-s.num_layers // pp_), s.num_layers) for s in specs]
    act_bytes = per_dtype([_compute_bytes(d) for d in dtypes])
    kv_bytes = per_dtype([_kv_bytes_per_elem(d, kv_dtype, engine) for d in dtypes])
    # KV elements per token on this GPU of the full and of the sliding layers
    full_elems = per_model([s.n_full_layers * sh * _kv_elems_per_token(s, engine, tp_)
                            for s, sh in zip(specs, shares, strict=True)])
    sliding_elems = per_model([s.n_sliding_layers * sh * _kv_elems_per_token(s, engine, tp_)
                               for s, sh in zip(specs, shares, strict=True)])
    cap = per_model([_sliding_cap(s, engine) if s.n_sliding_layers else 0 for s in specs])
    peak = [_peak_elems_per_token(s, tp_) for s in specs]
    if engine.full_logits:
        peak = [max(p, s.hidden_size + Fraction(s.vocab_size, tp_)) for p, s in zip(peak, specs, strict=True)]
    peak_elems = per_model(peak)
    vocab = per_model([s.vocab_size for s in specs])
    weights = np.array([[float(_weights_bytes(s, d, tp_, pp_) + _rope_cache_bytes(s, d, engine)) for d in dtypes]
                        for s in specs],
                       dtype=np.float64).reshape(len(specs), len(dtypes), 1, 1, 1)
    reserve = float(engine.allocator_reserve_fraction)
    cuda = float(engine.cuda_context_bytes)

    # per sequence, at (M, D, C, 1, 1)
    kv_seq = (full_elems * ctx + sliding_elems * np.minimum(ctx, cap)) * kv_bytes
    act_seq = ctx * (peak_elems * act_bytes)
    logits_seq = 0.0 if engine.full_logits else vocab * (act_bytes + 4.0)
    # per configuration, at (M, D, C, B, 1)
    kv = bat * kv_seq
    activations = bat * act_seq + bat * logits_seq
    overhead = cuda + reserve * (kv + activations)
    total = weights + kv + activations + overhead
    # sequences that fit, at (M, D, C, 1, G)
    free = gpu - weights - cuda
    per_seq = (kv_seq + act_seq + logits_seq) * (1.0 + reserve)
    with np.errstate(divide="ignore", invalid="ignore"):
        concurrency = np.where(free > 0.0, np.floor(free / per_seq), 0.0)

    shape = (len(specs), len(dtypes), ctx.size, bat.size, gpu.size)
    out: dict[str, np.ndarray] = {}
    for name, value in (("weights_bytes", weights), ("kv_cache_bytes", kv), ("activation_bytes", activations),
                        ("overhead_bytes", overhead), ("total_bytes", total),
                        ("kv_capacity_tokens", ctx * bat), ("kv_blocks", 0.0),
                        ("max_concurrency", concurrency), ("host_bytes", 0.0)):
        full = np.empty(shape, dtype=np.float64)
        full[...] = value
        out[name] = full
    headroom = np.empty(shape, dtype=np.float64)
    np.subtract(gpu, total, out=headroom)
    out["headroom_bytes"] = headroom
    out["fits"] = headroom >= 0.0
    out["gpu_bytes"] = np.broadcast_to(gpu, shape)
    return {k: out[k] for k in FIELDS}
