"""The pure-Python oracle the tests hold the compiled kernel to.

An independent, deliberately slow re-implementation of the memory model of
every engine kind (``"transformers"``, ``"vllm"``, ``"sglang"``, ``"trtllm"``,
``"llamacpp"``) as it is *documented* (the comments of
``include/vramcore/formulas.h``, the docstrings of :func:`vramcore.estimate`,
:func:`vramcore.sweep`, the fields and sources of :class:`vramcore.EngineSpec`
in ``vramcore/engines/`` and the engine table of the README).  It works from
the specs themselves, never from the kernel's packed rows (``vramcore.grid.pack``
is not imported), and it is written differently on purpose:

- one function per engine kind (:func:`_transformers_cell`,
  :func:`_paged_cell` with a budget rule per serving engine,
  :func:`_llamacpp_cell`) instead of one plan with switches;
- the KV cache is summed layer by layer over ``spec.layer_types``; llama.cpp
  offloads *named* layers (the last ``n_gpu_layers - 1``), so its weights and
  cache are summed over exactly those layers, MLP kind by MLP kind;
- the activation peak is the maximum over the layers of ``spec.mlp_layer_types``;
- the weights are summed part by part over ``spec.param_breakdown()``, the
  attention part split projection by projection for tensor parallelism;
- every quantity is computed *exactly*, with Python integers and
  :class:`fractions.Fraction`, and rounded to a float once, at the end.

So :func:`reference_estimate_exact` is the mathematical value of the model and
:func:`reference_estimate` its correctly rounded float.  The kernel computes in
double precision: where all its intermediate values are exact (byte counts
below about 2**42 with integer or power-of-two factors) it must agree bit for
bit, elsewhere up to the rounding of its intermediate operations (and a floor
of a rounded quotient, such as a block count, may then land one off when the
exact quotient sits within that rounding of an integer).

Every figure is per GPU, the most loaded one, for ``tp`` tensor-parallel ranks
times ``pp`` pipeline stages (``n_gpus = tp * pp``; with neither given,
transformers and llama.cpp spread their layers over ``n_gpus`` pipeline stages,
the serving engines use ``n_gpus`` tensor-parallel ranks).  Each stage is
estimated on its own layers (vLLM and SGLang give the layers ``L % pp`` leaves
over to the stages before the last, counting back from the second-to-last;
TensorRT-LLM, transformers and training to the first stages; llama.cpp puts
item ``il`` of its offloaded range, output layer last, on GPU ``floor((il -
start) x pp / offloaded)``); the first stage holds the embedding, the vision
tower and the encoder's profile, the last the output layer, the logits, the
sampler and the loss; under 1F1B stage ``k`` holds ``pp - k`` micro-batches.
The figures are the binding stage's (the fewest KV blocks for the budgeted
engines, the most memory for the others), with every stage's reasons, the
smallest headroom, concurrency and capacity.

The rules per engine, with the sources the project documents:

- ``transformers``: a ``DynamicCache`` that grows with the sequences (full
  layers every token, sliding layers ``window + sliding_cap_offset``), the
  prefill peak plus the last-position logits, a CUDA context and an allocator
  slack on KV + activations.
- ``vllm`` / ``sglang`` / ``trtllm`` (paged): the KV cache is what a memory
  budget holds, in blocks of ``block_size`` tokens: vLLM ``gpu_memory_utilization
  x memory - weights - profile peak - non-torch`` (minus the CUDA-graph
  estimate when ``cuda_graphs_in_budget``), SGLang ``mem_fraction_static x
  (memory - CUDA context - non-torch) - weights``, TensorRT-LLM
  ``free_gpu_memory_fraction x (memory - weights - profile peak - CUDA context
  - non-torch - CUDA graphs)``.  Hybrid models share one block pool among KV
  groups (vLLM ``get_kv_cache_groups``); blocks = ``floor(budget / (page x
  group size))``, a request needs ``ceil(context / block)`` blocks per full
  group and ``ceil(min(window - 1 + max_num_batched_tokens, context) / block) +
  1`` per sliding group; ``max_concurrency`` = blocks / blocks per request and
  ``kv_capacity_tokens`` = ``blocks // groups x block_size``, as vLLM logs them.
  The profile peak is the larger of a forward over the token budget ``T`` and
  the sampler over ``N = min(max_num_seqs, T)`` logits rows (beside vLLM's ``T
  + 2N`` hidden states when ``profile_hidden_states``), plus
  ``profile_workspace_bytes``.  Settings left at 0
  follow the GPU: vLLM 8192 tokens / 1024 sequences on GPUs of >= 70 GiB that
  are not A100s, else 2048 / 256; SGLang's chunked prefill and
  ``mem_fraction_static`` follow its memory (``_handle_gpu_memory_settings``).
  The non-torch memory grows by ``nccl_bytes`` when the model spans GPUs.
- ``llamacpp``: ``n_ctx = context x batch`` cells padded to ``ctx_pad``,
  sliding layers ``min(n_ctx, pad(window x batch + n_ubatch))`` cells unless
  ``swa_full``; the output layer is offloaded first, then the last
  ``n_gpu_layers - 1`` repeating layers (``-1``: every layer); token embeddings,
  the layers left on the CPU with their cache, the f32 logits buffer and the
  host compute buffer (input embeddings + f32 KQ mask) are host memory; the GPU
  compute buffer is one ``n_ubatch`` of the f32 graph (FFN, logits with the
  output layer, and without flash attention the scores over the whole cache).

:func:`reference_grid_numpy` evaluates the transformers formulas over a whole
grid as a NumPy float64 broadcast: per-model scalars of shape ``(M, 1, 1, 1,
1)``, per-dtype ``(1, D, 1, 1, 1)``, contexts ``(1, 1, C, 1, 1)``, batches
``(1, 1, 1, B, 1)`` and GPUs ``(1, 1, 1, 1, G)``.  The benchmark uses it as "the
same formulas as a NumPy broadcast".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from vramcore._record import record
from vramcore.engines import EngineSpec, rope_cache_fp32
from vramcore.engines.base import (
    TRAIN_PRECISIONS,
    check_cross_attention,
    check_kv_sharing,
    check_towers,
    resolve_attention,
)
from vramcore.engines.vllm import mm_dummy_image_elems, mm_rope_table_bytes, mxfp4_loaded_extra
from vramcore.model.spec import CROSS_KIND, FULL_KINDS, PARTS, STATE_LAYER_KINDS, WINDOWED_KINDS, ModelSpec
from vramcore.storage.dtypes import DType
from vramcore.storage.kv import kv_bits
from vramcore.storage.resolve import format_family, fused_expert_bytes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DETAILS", "FIELDS", "MAX_COUNT", "reference_estimate", "reference_estimate_exact",
           "reference_grid_numpy"]

#: Result keys, in the order of :class:`vramcore.Estimate`.
FIELDS: tuple[str, ...] = ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes",
                           "total_bytes", "gpu_bytes", "fits", "headroom_bytes", "kv_capacity_tokens",
                           "kv_blocks", "max_concurrency", "host_bytes", "gradients_bytes", "optimizer_bytes",
                           "master_weights_bytes", "trainable_params", "state_bytes", "reasons")
#: The training fields, 0 under the inference engines.
TRAIN_OUTPUTS: tuple[str, ...] = ("gradients_bytes", "optimizer_bytes", "master_weights_bytes", "trainable_params")

#: Bits of ``reasons`` (vramcore.grid.results.REASONS, include/vramcore/common.h VC_WHY_*).
WEIGHTS_EXCEED_GPU, TOTAL_EXCEEDS_GPU, NO_KV_BUDGET, KV_BELOW_BATCH = 1, 2, 4, 8
KV_BELOW_MAX_MODEL_LEN, CONTEXT_BEYOND_MAX_MODEL_LEN, CONTEXT_BEYOND_TRAINED, APPROXIMATE = 16, 32, 64, 128
BLOCKING = 63 | 256   # with format_not_runnable_on_engine (training methods; set in Python by the kernel side)
FORMAT_NOT_RUNNABLE = 256

#: Extra keys of ``reference_estimate_exact(..., details=True)`` for the paged engines.
DETAILS: tuple[str, ...] = ("budget_bytes", "block_bytes", "blocks_per_request", "kv_groups",
                            "mem_fraction", "mem_fraction_margin", "profile_tokens", "profile_seqs")

#: Largest context / batch / GPU count accepted (byte counts stay meaningful doubles).
MAX_COUNT = 2**53

#: Parts stored at the width of the weight dtype even when it is quantized.
_LINEAR_PARTS = frozenset({"attention", "mlp_dense", "mlp_routed_experts", "mlp_shared_experts"})
#: Parts held by every decoder layer (the final norm goes with them).
_LAYER_PARTS = ("attention", "mlp_dense", "mlp_routed_experts", "mlp_shared_experts", "router", "norms")

#: Engines that split layers over ``n_gpus`` (the others split tensors).
_LAYER_SPLIT_KINDS = ("transformers", "llamacpp", "train")
#: Engines that size their KV cache from a memory budget.
_PAGED_KINDS = ("vllm", "sglang", "trtllm")

GiB = 2**30
MiB = 2**20
#: vLLM's larger batch defaults apply from this much memory (vllm/engine/arg_utils.py, get_batch_defaults).
_VLLM_LARGE_GPU_BYTES = 70 * GiB
#: llama.cpp's n_ubatch default (common/common.h), what ``max_num_batched_tokens=0`` ("auto") stands for.
_LLAMACPP_UBATCH = 512


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
    offset = engine.sliding_cap_offset
    if isinstance(offset, bool) or not isinstance(offset, numbers.Integral):
        raise TypeError(f"engine.sliding_cap_offset must be an int number of tokens, got {offset!r}")
    for flag in ("mla_compressed", "full_logits"):
        if not isinstance(getattr(engine, flag), bool):
            raise TypeError(f"engine.{flag} must be a bool, got {getattr(engine, flag)!r}")
    ctx = engine.cuda_context_bytes
    if isinstance(ctx, bool) or not isinstance(ctx, numbers.Integral) or ctx < 0:
        raise ValueError(f"engine.cuda_context_bytes must be an int >= 0, got {ctx!r}")


def _parallelism(spec: ModelSpec, engine: EngineSpec, n_gpus: Any, tp: Any, pp: Any) -> tuple[int, int]:
    """Resolve and check (tp, pp).

    With neither given, `n_gpus` means pipeline stages for the engines that
    split layers (transformers ``device_map``, llama.cpp) and tensor-parallel
    ranks for the serving engines.
    """
    check_cross_attention(spec, engine)
    check_kv_sharing(spec, engine)
    check_towers(spec, engine)
    n = _count("n_gpus", n_gpus)
    if tp is None and pp is None:
        tp_, pp_ = (1, n) if engine.kind in _LAYER_SPLIT_KINDS else (n, 1)
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
    rec = spec.recurrent
    if rec is not None and rec.groups is not None and tp_ > 1:  # Mamba2: even heads, whole groups per rank
        if rec.state_heads % tp_:
            raise ValueError(f"tp={tp_} does not divide the {rec.state_heads} Mamba2 heads")
        if rec.groups % tp_ and tp_ % rec.groups:
            raise ValueError(f"tp={tp_} and the {rec.groups} Mamba2 groups must divide one another")
    if pp_ > spec.num_layers:
        raise ValueError(f"pp={pp_} exceeds the {spec.num_layers} layers")
    if engine.kind == "llamacpp" and engine.n_gpu_layers > spec.num_layers + 1:
        raise ValueError(f"n_gpu_layers={engine.n_gpu_layers} exceeds the {spec.num_layers} layers (+1 output)")
    return tp_, pp_


# ---------------------------------------------------------------------- the model, exactly
def _compute_bytes(dtype: DType) -> Fraction:
    """Bytes of one activation element: activations run in the compute dtype."""
    return Fraction(dtype.compute_bits) / 8


def _kv_bytes_per_elem(dtype: DType, kv_dtype: DType | None, engine: EngineSpec) -> tuple[Fraction, Fraction]:
    """Bytes of one cached K and one cached V element.

    K: the engine's own type (llama.cpp ``cache_type_k``, else ``kv_cache_dtype``),
    else `kv_dtype`, else the compute dtype; V: llama.cpp ``cache_type_v``, else as K.
    """
    name = engine.cache_type_k or engine.kv_cache_dtype
    if name is not None:
        k = Fraction(kv_bits(engine.kind, name)) / 8
    elif kv_dtype is not None:
        k = Fraction(kv_dtype.bits) / 8
    else:
        k = Fraction(dtype.compute_bits) / 8
    v = Fraction(kv_bits(engine.kind, engine.cache_type_v)) / 8 if engine.cache_type_v else k
    return k, v


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
    # the attention part holds every token mixer (a hybrid model's recurrent mixers too): the k/v share is
    # that of the attention layers' k/v projections in the whole part, taken per attention layer
    if not spec.n_attention_layers + spec.n_cross_layers:
        return Fraction(0), Fraction(0)  # recurrent layers only: every projection splits over TP
    # cross-attention layers (mllama) hold the same k/v projections: their share is taken over them too
    per_layer = Fraction(spec.param_breakdown()["attention"], spec.n_attention_layers + spec.n_cross_layers)
    if spec.is_mla:
        assert spec.kv_lora_rank is not None and spec.qk_rope_head_dim is not None
        kv_a_proj = h * (spec.kv_lora_rank + spec.qk_rope_head_dim)  # kv_a_proj_with_mqa
        q_a_proj = h * spec.q_lora_rank if spec.q_lora_rank is not None else 0
        return Fraction(0), (kv_a_proj + q_a_proj) / per_layer
    assert spec.num_kv_heads is not None and spec.head_dim is not None
    k_proj = v_proj = h * spec.num_kv_heads * spec.head_dim
    biases = 2 * spec.num_kv_heads * spec.head_dim if spec.qkv_bias else 0
    # Gemma-3n: the KV-sharing layers hold no k/v projections (Gemma3nTextAttention), and vLLM replicates the
    # AltUp and per-layer-input linears on every TP rank (Gemma3nAltUp / Gemma3nDecoderLayer: ReplicatedLinear)
    owners = spec.n_attention_layers + spec.n_cross_layers - spec.kv_shared_layers
    total = per_layer * (spec.n_attention_layers + spec.n_cross_layers)
    n, p = spec.altup_inputs, spec.per_layer_input_size
    replicated = ((n * n + n ** 3 + h * n if n > 1 else 0) + 2 * h * p) * spec.num_layers
    return (k_proj + v_proj + biases) * owners / total, Fraction(replicated) / total


def _group_rank_share(spec: ModelSpec, tp: int) -> tuple[Fraction, Fraction]:
    """Return the attention part's share in Mamba2 B and C rows, and the share of those rows one TP rank holds.

    Each rank holds whole groups (``spec.recurrent.tp_groups(tp)`` laid out
    over the ranks, :meth:`vramcore.model.recurrent.StateSpec.tp_groups`): with
    ``tp`` dividing the groups, ``1 / tp`` of the rows; with more ranks than
    groups, one group's, ``1 / groups``.
    """
    rec = spec.recurrent
    attention = spec.param_breakdown()["attention"]
    if rec is None or not rec.group_params or not attention:
        return Fraction(0), Fraction(1, tp)
    assert rec.groups is not None
    return (Fraction(rec.group_params * spec.n_state_layers, attention),
            Fraction(rec.tp_groups(tp), rec.groups * tp))


def _attention_rank(spec: ModelSpec, attention: Fraction, tp: int) -> Fraction:
    """One TP rank's share of attention-part bytes `attention` (every token mixer's projections).

    TP splits the projections; k/v over at most kv_heads ranks, MLA latent
    projections replicated, Mamba2 B and C rows whole-group per rank
    (:func:`_group_rank_share`).
    """
    kv_heads = spec.num_heads if spec.is_mla else spec.num_kv_heads
    assert kv_heads is not None
    kv_share, replicated_share = _attention_split(spec)
    group_share, group_rank = _group_rank_share(spec, tp)
    kv, replicated, groups = attention * kv_share, attention * replicated_share, attention * group_share
    return ((attention - kv - replicated - groups) / tp + kv / min(tp, kv_heads) + replicated
            + groups * group_rank)


def _weights_bytes(spec: ModelSpec, dtype: DType, tp: int, stage: _Stage, engine: EngineSpec | None = None) -> Fraction:
    """Weights on one GPU of `stage` (see :func:`_split_parts`), as `engine` holds them when given.

    transformers keeps an MoE's fused experts unquantized under bitsandbytes (``bnb_quantizes_experts``).
    """
    parts = _stored_part_bytes(spec, dtype)
    experts = fused_expert_bytes(spec, dtype) if engine is not None and not engine.bnb_quantizes_experts else None
    if experts is not None:
        parts["mlp_routed_experts"] = Fraction(experts)
    return _split_parts(spec, parts, tp, stage)


def _towers(parts: dict[str, Fraction]) -> Fraction:
    """Return a multimodal model's towers and projector in `parts`: vision tower, projector, audio tower."""
    return parts["vision_tower"] + parts["multimodal_projector"] + parts["audio_tower"]


def _split_parts(spec: ModelSpec, parts: dict[str, Fraction], tp: int, stage: _Stage,
                 kv_extra: Fraction = Fraction(0)) -> Fraction:
    """Return the share of per-part figures (bytes or elements) on one GPU of `stage`.

    TP splits the attention and MLP matrices and the vocabulary; k/v projections
    split over at most kv_heads ranks, Mamba2 B and C rows over at most n_groups
    (:func:`_attention_rank`); MLA latent projections, norms and the router
    are replicated.  Every layer holds an even share of the attention (every
    token mixer) and norms parts, each dense-MLP layer an even share of the dense
    MLP, each MoE layer of the experts and router; the stage holds its own
    layers' shares, and the embedding and the vision tower and projector if it
    is the first, the lm_head if it is the last (a tied lm_head is a second copy
    of the embedding there when the stages are several).  `kv_extra`: bytes of
    k/v projections within ``parts["attention"]`` that the engine adds in
    KV-sharing layers, split like k/v and spread over the layers like the rest.
    """
    kv_heads = spec.num_heads if spec.is_mla else spec.num_kv_heads
    assert kv_heads is not None
    mixer = _attention_rank(spec, parts["attention"] - kv_extra, tp) + kv_extra / min(tp, kv_heads) + parts["norms"]
    mlps = spec.mlp_layer_types or ()
    here = [mlps[i] for i in stage.layers]
    n_dense, n_moe = mlps.count("dense"), mlps.count("moe")
    on_gpu = mixer * Fraction(len(here), spec.num_layers)
    if n_dense:
        on_gpu += parts["mlp_dense"] / tp * Fraction(here.count("dense"), n_dense)
    if n_moe:
        experts = (parts["mlp_routed_experts"] + parts["mlp_shared_experts"]) / tp + parts["router"]
        on_gpu += experts * Fraction(here.count("moe"), n_moe)
    embedding, lm_head = parts["embedding"] / tp, parts["lm_head"] / tp
    if stage.first:
        on_gpu += embedding + _towers(parts) / tp
    if stage.last:
        on_gpu += lm_head if lm_head or stage.first else embedding
    return on_gpu


def _rope_cache_bytes(spec: ModelSpec, dtype: DType, engine: EngineSpec) -> Fraction:
    """Return the bytes of the engine's cos/sin cache: max_context x rotary dim, compute dtype (or fp32)."""
    if not engine.rope_cache or spec.max_context is None:
        return Fraction(0)
    rotary = spec.rotary_width
    return spec.max_context * rotary * (Fraction(4) if rope_cache_fp32(engine, spec) else _compute_bytes(dtype))


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


def _first_kv_shared(spec: ModelSpec) -> int:
    """Return the first layer that shares an earlier layer's KV (Gemma-3n ``num_kv_shared_layers``)."""
    return spec.num_layers - spec.kv_shared_layers


def _cached_tokens(spec: ModelSpec, engine: EngineSpec, context: int, layers: Sequence[int]) -> int:
    """Tokens held by `layers` together for one sequence of `context` tokens."""
    tokens = 0
    kinds = spec.layer_types or ()
    # Gemma-3n's last kv_shared_layers layers read an earlier layer's cache and hold none
    for kind in (kinds[i] if i < _first_kv_shared(spec) else "none" for i in layers):
        if kind in FULL_KINDS:  # a hybrid layer's attention too
            tokens += context
        elif kind in WINDOWED_KINDS:
            tokens += min(context, _sliding_cap(spec, engine))
        elif kind == CROSS_KIND:
            tokens += spec.cross_attention_tokens  # the images' vision tokens, whatever the context
        else:
            assert kind in STATE_LAYER_KINDS or kind == "none"  # a recurrent layer (a state) or no mixer
    return tokens


def _state_bytes_per_seq_layer(spec: ModelSpec, dtype: DType, engine: EngineSpec, tp: int) -> Fraction:
    """Bytes of one sequence's state in one recurrent layer on one TP rank (0 without recurrent layers).

    The convolution keeps ``conv_kernel + engine.state_conv_offset`` inputs of
    every channel in ``state_conv_bits`` (0: the compute dtype); the recurrent
    matrix takes ``state_ssm_bits`` (0: fp32 when the model asks for it, else
    the compute dtype); heads and channels split over `tp`, except Mamba2's B
    and C channels, laid out as ``rec.tp_groups(tp)`` groups (whole groups per
    rank: each group replicated on ``tp / groups`` ranks when ``tp > groups``).
    """
    rec = spec.recurrent
    if rec is None:
        return Fraction(0)
    compute_bits = 8 * _compute_bytes(dtype)
    conv_bits = engine.state_conv_bits or compute_bits
    ssm_bits = engine.state_ssm_bits or (32 if rec.ssm_fp32 else compute_bits)
    channels = rec.conv_dim - rec.group_channels + rec.group_width * rec.tp_groups(tp)  # over all ranks
    conv = channels * max(0, rec.conv_kernel + engine.state_conv_offset) * conv_bits
    return Fraction(conv + rec.ssm_elems * ssm_bits, 8 * tp)


def _state_bytes(spec: ModelSpec, dtype: DType, engine: EngineSpec, tp: int, stage: _Stage, batch: int) -> Fraction:
    """Recurrent states of `batch` sequences in the recurrent layers of `stage`."""
    return batch * stage.count(spec, STATE_LAYER_KINDS) * _state_bytes_per_seq_layer(spec, dtype, engine, tp)


def _sliding_cap(spec: ModelSpec, engine: EngineSpec) -> int:
    """Tokens a sliding layer keeps at most: ``window + engine.sliding_cap_offset``."""
    assert spec.sliding_window is not None
    cap = spec.sliding_window + int(engine.sliding_cap_offset)
    if cap < 0:
        raise ValueError(f"engine.sliding_cap_offset ({engine.sliding_cap_offset}) leaves the sliding "
                         f"layers of a {spec.sliding_window}-token window a negative token count")
    return cap


def _kv_cache_bytes(spec: ModelSpec, kv_bytes: tuple[Fraction, Fraction], engine: EngineSpec, tp: int,
                    stage: _Stage, context: int, batch: int) -> Fraction:
    per_seq = _cached_tokens(spec, engine, context, stage.layers) * _kv_layer_bytes_per_token(spec, kv_bytes, engine,
                                                                                               tp)
    return batch * per_seq


def _layer_peak_elems_per_token(spec: ModelSpec, mlp_kind: str, tp: int,
                                transformers: Fraction | None = None) -> Fraction:
    """Elements per prompt token alive at the peak inside one layer (one TP rank) whose MLP is `mlp_kind`.

    Under transformers (`transformers`: the activation bytes; None for the other engines), measured per
    tensor (``tools/measure_prefill_peak.py --breakdown``): the attention's peak is at q's rotary step
    (``apply_rotary_pos_emb``: q, ``q * cos``, ``rotate_half(q)`` and its product with sin, beside k and
    v; eager's k and v repeated to every head come after it, at less); the MLP runs while the model's loop
    still holds the layer's input, at the larger of its product step and its down projection (input and
    output); an RMSNorm of the residual stream holds its fp32 upcast and product and fp32 mean and rsqrt,
    beside the attention's output in Gemma's four-norm layers.
    """
    if spec.is_mla:
        assert spec.qk_nope_head_dim is not None and spec.qk_rope_head_dim is not None
        key_dim, kv_heads = spec.qk_nope_head_dim + spec.qk_rope_head_dim, spec.num_heads
    else:
        assert spec.head_dim is not None and spec.num_kv_heads is not None
        key_dim, kv_heads = spec.head_dim, spec.num_kv_heads
    q_width = Fraction(spec.num_heads * key_dim, tp)
    kv_width = max(Fraction(1), Fraction(kv_heads, tp)) * key_dim
    residual = 2 * spec.hidden_size  # residual stream + its normed copy
    # Gemma-3n: the AltUp input stack and its predictions (altup_inputs copies each) and every layer's per-layer
    # input stay through the layer (Gemma3nTextModel.forward)
    if spec.altup_inputs > 1:
        residual += 2 * spec.altup_inputs * spec.hidden_size
    residual += spec.num_layers * spec.per_layer_input_size
    attention = 3 * q_width + 3 * kv_width  # q, k, v, rotary copies of q and k, attention output
    if transformers is not None:
        attention = 4 * q_width + 2 * kv_width
    rows = 3 if spec.mlp_gated else 2  # gate, up, act(gate) * up; or up, act(up)
    if mlp_kind == "none":
        mlp = Fraction(0)
    elif mlp_kind == "dense":
        mlp = Fraction(rows * spec.intermediate_size, tp)
    else:
        assert mlp_kind == "moe" and spec.moe_intermediate_size is not None
        experts = spec.num_experts
        mlp = (2 * experts  # fp32 router logits, in 16-bit units
               + spec.hidden_size  # output accumulator
               # one expert at a time over its even share of the tokens
               + Fraction(rows * spec.moe_intermediate_size * spec.experts_per_token, tp * experts)
               + Fraction(rows * spec.shared_expert_intermediate_size, tp))
    norm = Fraction(0)
    if transformers is not None:
        h, a = spec.hidden_size, transformers
        if mlp_kind == "dense":
            mlp = max(mlp, h + Fraction(spec.intermediate_size, tp))    # the down projection's input and output
        if mlp_kind != "none":
            mlp += h                                                     # the layer's input, held by the loop
        stats = 0 if spec.norm_plus_one or spec.norm_weight_upcast else 8      # fp32 mean and rsqrt, a token each
        norm = (h if spec.norms_per_layer >= 4 else 0) + ((8 if a != 4 else 4) * h + stats) / a
    return residual + max(attention, mlp, norm)


def _peak_elems_per_token(spec: ModelSpec, tp: int, layers: Sequence[int] | None = None,
                          transformers: Fraction | None = None) -> Fraction:
    """Return the largest per-layer peak over `layers` (default: all; each MLP kind evaluated once)."""
    by_kind: dict[str, Fraction] = {}
    peak = Fraction(0)
    mlps = spec.mlp_layer_types or ()
    for kind in (mlps if layers is None else [mlps[i] for i in layers]):
        if kind not in by_kind:
            by_kind[kind] = _layer_peak_elems_per_token(spec, kind, tp, transformers)
        peak = max(peak, by_kind[kind])
    return peak


def _activation_bytes(spec: ModelSpec, act_bytes: Fraction, engine: EngineSpec, tp: int, context: int,
                      batch: int, stage: _Stage) -> Fraction:
    per_token = _peak_elems_per_token(spec, tp, stage.layers, act_bytes if engine.kind == "transformers" else None)
    if engine.kind == "transformers":
        # what the forward holds beside the layers: the embedding output (inputs_embeds, to the end of the
        # forward, on the first stage) and every token's rotary cos / sin (tools/measure_prefill_peak.py)
        per_token += (spec.hidden_size if stage.first else 0) + 2 * spec.rotary_width * spec.rope * spec.rotary_tables
    positions = 8 if engine.kind == "transformers" else 0    # generate()'s int64 position_ids, a token each
    if not stage.last:  # the logits are the last stage's
        return batch * context * (per_token * act_bytes + positions)
    if engine.full_logits:
        # final hidden states + this rank's logits of every position, in the compute dtype
        per_token = max(per_token, spec.hidden_size + Fraction(spec.vocab_size, tp))
        return batch * context * (per_token * act_bytes + positions)
    # last-position logits in the compute dtype plus the fp32 copy generate() samples from
    last_logits = batch * spec.vocab_size * (act_bytes + 4)
    return batch * context * (per_token * act_bytes + positions) + last_logits


def _numpy_encoder_parts(spec: ModelSpec) -> tuple[float, float, float, float, float]:
    """Return one sequence's tower peak, held bytes and pairs (zeros: no phase).

    The peak and the held bytes as (x act bytes, whole bytes) pairs, then the tower's elements per pair
    of sequences (x act bytes).
    """
    phases = spec.vision.transformers_encoder_phases if spec.vision is not None else None
    if phases is None or not spec.image_patches:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    assert spec.vision is not None
    (act, f32, fixed), (held_act, held_f32, held_feature) = phases
    n, f = spec.image_patches, spec.image_features
    return (n * act + spec.image_count * spec.vision.transformers_encoder_image, n * (f32 * 4 + fixed),
            n * held_act + f * held_feature, n * held_f32 * 4,
            n * n * spec.vision.transformers_encoder_pairs)


def _prefill_pair_rates(spec: ModelSpec, act_bytes: Fraction, engine: EngineSpec, tp: int,
                        stage: _Stage) -> tuple[Fraction, Fraction, int]:
    """Return what one sequence's prefill attention holds per (query x key) pair, on `stage`.

    The bytes a pair at every prompt length, the bytes a pair from a prompt of the window on, and that
    window (0 when none).

    Under eager attention (:func:`vramcore.engines.base.resolve_attention`; transformers 5.24
    ``eager_attention_forward``) each head of this rank holds its scores, their fp32 softmax and the cast
    back (``a + 4 + a`` bytes a pair; in fp32 ``2a``: the scores and the masked scores), or with attention
    sinks (gpt-oss) the scores, their concatenation with the sinks and that less its row max (``3a``); and
    one additive mask per attention kind in the compute dtype.  Under sdpa a stage with sliding layers
    holds their boolean mask once the prompt reaches the window (1 byte a pair) and, on CUDA, its additive
    conversion in the query's dtype (PyTorch's ``convert_boolean_attn_mask``).  Flash attention: nothing.
    Measured: ``tools/measure_prefill_peak.py``.
    """
    none = (Fraction(0), Fraction(0), 0)
    if not stage.count(spec, (*FULL_KINDS, *WINDOWED_KINDS)):
        return none
    impl = resolve_attention(spec, engine)
    if impl == "eager":
        a = act_bytes
        scores = 3 * a if spec.attention_sinks else max(2 * a, a + 4 + (a if a != 4 else 0))
        kinds = (spec.n_full_layers > 0) + (spec.n_sliding_layers > 0)
        return Fraction(spec.num_heads, tp) * scores + kinds * a, Fraction(0), 0
    if impl == "sdpa" and stage.count(spec, WINDOWED_KINDS) and spec.sliding_window is not None:
        return Fraction(0), 1 + act_bytes, spec.sliding_window
    return none


def _prefill_pair_bytes(spec: ModelSpec, act_bytes: Fraction, engine: EngineSpec, tp: int, context: int,
                        stage: _Stage) -> Fraction:
    """Return one sequence's prefill pairs' bytes at `context` tokens (:func:`_prefill_pair_rates`)."""
    always, from_window, window = _prefill_pair_rates(spec, act_bytes, engine, tp, stage)
    return context * context * (always + (from_window if context >= window else 0))


def _transformers_activation_bytes(spec: ModelSpec, act_bytes: Fraction, engine: EngineSpec, tp: int,
                                   context: int, batch: int, stage: _Stage) -> Fraction:
    """Return the transformers prefill's activation peak: the decoder's, or with images the larger phase.

    A request with images (``spec.image_patches``, a tower in
    :attr:`VisionSpec.transformers_encoder_phases`) runs the vision tower once over every image of the
    batch before the decoder (transformers ``Qwen2_5_VLModel.forward``, ``Gemma3Model.forward``): its peak
    per patch (and per pair of patches of the call, :attr:`VisionSpec.transformers_encoder_pairs`) beside
    the prompt's ``inputs_embeds`` (hidden per token), or the decoder's peak beside what the tower leaves
    held (its last hidden state, the caller's pixels, the image embeddings).  On the first
    stage, whole on every TP rank (the text model's ``tp_plan`` alone).
    """
    decoder = _activation_bytes(spec, act_bytes, engine, tp, context, batch, stage)
    decoder += batch * _prefill_pair_bytes(spec, act_bytes, engine, tp, context, stage)
    phases = spec.vision.transformers_encoder_phases if spec.vision is not None else None
    if phases is None or spec.vision is None or not spec.image_patches or not stage.first:
        return decoder
    (act, f32, fixed), (held_act, held_f32, held_feature) = (tuple(Fraction(x) for x in ph) for ph in phases)
    patches, features = spec.image_patches, spec.image_features
    encoder = batch * (patches * (act * act_bytes + f32 * 4 + fixed) + context * spec.hidden_size * act_bytes
                       + spec.image_count * Fraction(spec.vision.transformers_encoder_image) * act_bytes)
    # Pixtral: the attention mask over every pair of patches of the call (all the batch's images)
    encoder += (batch * patches) ** 2 * Fraction(spec.vision.transformers_encoder_pairs) * act_bytes
    held = batch * (patches * (held_act * act_bytes + held_f32 * 4) + features * held_feature * act_bytes)
    return max(decoder + held, encoder)


# ---------------------------------------------------------------------- layer by layer, engine by engine
@record(frozen=True)
class _Stage:
    """One GPU of a pipeline: its decoder layers, its role, and (llama.cpp) the layers left in host memory."""

    layers: tuple[int, ...]
    first: bool
    last: bool
    in_flight: int = 1          # training under 1F1B: the micro-batches it holds
    host: tuple[int, ...] = ()

    def count(self, spec: ModelSpec, kinds: Any) -> int:
        """Return how many of the stage's layers are of a layer type in `kinds`."""
        types = spec.layer_types or ()
        return sum(1 for i in self.layers if types[i] in kinds)


def _stages(spec: ModelSpec, engine: EngineSpec, pp: int) -> list[_Stage]:
    """Return the `pp` pipeline stages of `spec` under `engine`, in order (see the module docstring)."""
    n = spec.num_layers
    if engine.kind == "llamacpp":
        items = n + 1                                   # the output layer is item n
        offloaded = items if engine.n_gpu_layers < 0 else min(engine.n_gpu_layers, items)
        start = items - offloaded
        gpu_of = {il: (il - start) * pp // offloaded for il in range(start, items)}
        host = tuple(range(min(start, n)))
        return [_Stage(tuple(i for i in range(n) if gpu_of.get(i) == d), d == 0, gpu_of.get(n) == d, 1, host)
                for d in range(pp)]
    sizes = [n // pp] * pp
    for i in range(n % pp):
        if engine.kind in ("vllm", "sglang"):
            sizes[-2 - i] += 1                          # get_pp_indices: partitions[-i] for i = 2, 3, ...
        else:
            sizes[i] += 1                               # torch.tensor_split
    stages, at = [], 0
    for k, size in enumerate(sizes):
        stages.append(_Stage(tuple(range(at, at + size)), k == 0, k == pp - 1,
                             pp - k if engine.kind == "train" else 1))
        at += size
    return stages


def _group_layers(spec: ModelSpec, engine: EngineSpec, stage: _Stage) -> int:
    """Return the most layers of `stage` in one of vLLM's KV-cache groups (runs of each kind's layers, in order)."""
    types = spec.layer_types or ()
    kinds = [set(FULL_KINDS), set(WINDOWED_KINDS)] + ([set(STATE_LAYER_KINDS)] if engine.kind == "vllm" else [])
    runs = [[i for i, t in enumerate(types) if t in k and i < _first_kv_shared(spec)] for k in kinds]
    runs = [r for r in runs if r]
    if not runs:
        return 0
    counts = [Fraction(len(r)) for r in runs] + [Fraction(0)] * (3 - len(runs))
    size = int(_kv_groups(*counts)[0])
    mine = set(stage.layers)
    return max(len(mine.intersection(r[j:j + size])) for r in runs for j in range(0, len(r), size))


def _layer_weights(spec: ModelSpec, dtype: DType, tp: int) -> list[Fraction]:
    """Return one TP rank's stored bytes of every decoder layer, layer by layer.

    Every layer has the same attention and norms (the final norm is spread
    with them, as :func:`_weights_bytes` keeps it with the layers); its MLP is
    a dense MLP or routed + shared experts with their router, per
    ``spec.mlp_layer_types``.  Attention and MLP matrices split over `tp` ranks
    (k/v over at most kv_heads, MLA latent projections replicated); norms and
    routers are replicated.
    """
    parts = _stored_part_bytes(spec, dtype)
    n_layers = spec.num_layers
    kinds = spec.mlp_layer_types or ()
    n_dense, n_moe = kinds.count("dense"), kinds.count("moe")
    attention_rank = _attention_rank(spec, parts["attention"] / n_layers, tp)
    norms = parts["norms"] / n_layers
    dense = parts["mlp_dense"] / n_dense / tp if n_dense else Fraction(0)
    moe = ((parts["mlp_routed_experts"] + parts["mlp_shared_experts"]) / n_moe / tp + parts["router"] / n_moe
           if n_moe else Fraction(0))
    return [attention_rank + norms + (dense if kind == "dense" else moe if kind == "moe" else 0) for kind in kinds]


def _kv_layer_bytes_per_token(spec: ModelSpec, kv_bytes: tuple[Fraction, Fraction], engine: EngineSpec,
                              tp: int) -> Fraction:
    """Bytes one layer caches per token on one TP rank (max(1, kv_heads // tp) heads; MLA latent replicated).

    K and V at their own widths; a compressed MLA latent is one K-type row;
    DeepSeek-V3.2's indexer key (``index_head_dim``, on every rank) at the
    engine's ``index_cache_bits`` (0: the K width).
    """
    k, v = kv_bytes
    index = Fraction(0)
    if spec.has_indexer:
        assert spec.index_head_dim is not None
        index = spec.index_head_dim * (Fraction(engine.index_cache_bits) / 8 if engine.index_cache_bits else k)
    return index + _attn_kv_layer_bytes_per_token(spec, kv_bytes, engine, tp)


def _attn_kv_layer_bytes_per_token(spec: ModelSpec, kv_bytes: tuple[Fraction, Fraction], engine: EngineSpec,
                                   tp: int) -> Fraction:
    """Return the attention's own K and V (or latent) bytes of :func:`_kv_layer_bytes_per_token`."""
    k, v = kv_bytes
    if k == v or (spec.is_mla and engine.mla_compressed):
        return _kv_elems_per_token(spec, engine, tp) * k
    if spec.is_mla:
        heads = Fraction(spec.num_heads, tp)
        return heads * ((spec.qk_nope_head_dim + spec.qk_rope_head_dim) * k + spec.v_head_dim * v)  # type: ignore[operator]
    assert spec.num_kv_heads is not None and spec.head_dim is not None
    heads = max(Fraction(1), Fraction(spec.num_kv_heads, tp))
    return heads * spec.head_dim * (k + v)


def _layers_by_kind(spec: ModelSpec) -> tuple[int, int]:
    """Return (full-attention layers, sliding-window layers), counted over ``spec.layer_types``."""
    full = sliding = 0
    for kind in (spec.layer_types or ())[:_first_kv_shared(spec)]:
        if kind in FULL_KINDS:
            full += 1
        elif kind in WINDOWED_KINDS:
            sliding += 1
    return full, sliding


def _transformers_cell(spec: ModelSpec, dtype: DType, kv_dtype: DType | None, engine: EngineSpec, tp: int,
                       stage: _Stage, context: int, batch: int, gpu_bytes: int | None) -> dict[str, Any]:
    """Estimate under ``"transformers"``: a dynamic cache, the prefill peak and an allocator slack."""
    act_bytes = _compute_bytes(dtype)
    kv_bytes = _kv_bytes_per_elem(dtype, kv_dtype, engine)
    reserve = Fraction(engine.allocator_reserve_fraction)

    # whole bytes: fractional parts (a stage's average share, a 4-bit cache, the slack) are rounded up
    weights = _whole(_weights_bytes(spec, dtype, tp, stage, engine) + _rope_cache_bytes(spec, dtype, engine))
    kv = _whole(_kv_cache_bytes(spec, kv_bytes, engine, tp, stage, context, batch))
    activations = _whole(_transformers_activation_bytes(spec, act_bytes, engine, tp, context, batch, stage))
    state = _whole(_state_bytes(spec, dtype, engine, tp, stage, batch))
    overhead = engine.cuda_context_bytes + _whole(reserve * (kv + activations + state))
    total = weights + kv + activations + state + overhead
    out: dict[str, Any] = dict.fromkeys(FIELDS)
    out.update(weights_bytes=weights, kv_cache_bytes=kv, activation_bytes=activations,
               overhead_bytes=overhead, total_bytes=total, kv_capacity_tokens=Fraction(context * batch),
               kv_blocks=Fraction(0), host_bytes=Fraction(0), state_bytes=state)
    if gpu_bytes is not None:
        memory = Fraction(gpu_bytes)
        # sequences of `context` tokens the memory left after weights and context holds
        free = memory - weights - engine.cuda_context_bytes

        def cost(n: int) -> Fraction:   # n sequences beyond the constant part, before whole bytes
            return (_kv_cache_bytes(spec, kv_bytes, engine, tp, stage, context, n)
                    + _transformers_activation_bytes(spec, act_bytes, engine, tp, context, n, stage)
                    + _state_bytes(spec, dtype, engine, tp, stage, n)) * (1 + reserve)

        n = math.floor(free / cost(1)) if free > 0 else 0
        if n > 0 and cost(n) > free:
            # a tower phase that grows with the batch (Pixtral's mask): the largest n by bisection,
            # cost(1) per sequence being the least
            lo, hi = 0, n
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if cost(mid) <= free else (lo, mid)
            n = lo
        out.update(gpu_bytes=memory, fits=total <= memory, headroom_bytes=memory - total,
                   max_concurrency=Fraction(n))
    return out


# ---------------------------------------------------------------------- paged serving engines
def _is_large_gpu(gpu_bytes: int, gpu_name: str | None) -> bool:
    """Return True where vLLM uses its larger batch defaults: >= 70 GiB, not an A100 (get_batch_defaults)."""
    return gpu_bytes >= _VLLM_LARGE_GPU_BYTES and "a100" not in (gpu_name or "").lower()


def _sglang_gpu_defaults(gpu_bytes: int) -> tuple[int, int]:
    """Return SGLang's (chunked prefill tokens, CUDA-graph max batch) for a GPU of `gpu_bytes`.

    server_args.py, _handle_gpu_memory_settings: < 20 GiB 2048 / 8, < 35 GiB
    2048 / 24, < 60 GiB 4096 / 32, < 160 GiB 8192 / 256, else 16384 / 512.
    """
    gib = Fraction(gpu_bytes, GiB)
    for limit, chunk, graph_bs in ((20, 2048, 8), (35, 2048, 24), (60, 4096, 32), (160, 8192, 256)):
        if gib < limit:
            return chunk, graph_bs
    return 16384, 512


def _sglang_mem_fraction_static(gpu_bytes: int, chunk: int, graph_bs: int, n_gpus: int) -> tuple[Fraction, Fraction]:
    """Return SGLang's default ``mem_fraction_static`` and how far it is from a rounding tie.

    ``(memory - reserved) / memory`` rounded to three decimals (at least 0.05),
    with reserved = 512 MiB + 1.5 x the chunked-prefill tokens (at least 2048) +
    2 x the CUDA-graph batch + tp x pp / 8 GiB, and at least 10 GiB above 60 GiB
    of memory (in MiB throughout).  The margin is the distance, in thousandths,
    of the unrounded value from the nearest half-thousandth (0 at a tie).
    """
    mib = Fraction(gpu_bytes, MiB)
    reserved = 512 + Fraction(3, 2) * max(chunk, 2048) + 2 * graph_bs + Fraction(n_gpus, 8) * 1024
    if mib > 60 * 1024:
        reserved = max(reserved, Fraction(10 * 1024))
    thousandths = (mib - reserved) / mib * 1000 + Fraction(1, 2)
    rounded = math.floor(thousandths)
    margin = min(thousandths - rounded, rounded + 1 - thousandths)
    return max(Fraction(1, 20), Fraction(rounded, 1000)), margin


def _serving_settings(engine: EngineSpec, gpu_bytes: int, gpu_name: str | None, tp: int,
                      pp: int) -> tuple[int, int, Fraction, Fraction | None]:
    """Resolve the settings a paged engine leaves at 0 ("auto") from the GPU.

    Returns (profile tokens, profile sequences, memory fraction, margin of an
    SGLang default fraction from its rounding tie, else None).
    """
    large = _is_large_gpu(gpu_bytes, gpu_name)
    tokens = engine.max_num_batched_tokens or (8192 if large else 2048)
    seqs = engine.max_num_seqs or (1024 if large else 256)
    fraction, margin = Fraction(engine.mem_fraction), None
    if engine.kind == "sglang":
        chunk, graph_bs = _sglang_gpu_defaults(gpu_bytes)
        if engine.max_num_batched_tokens == 0:  # SGLang's chunked prefill follows the GPU's memory
            tokens = chunk
        if engine.mem_fraction == 0:
            fraction, margin = _sglang_mem_fraction_static(gpu_bytes, tokens, graph_bs, tp * pp)
    return tokens, seqs, fraction, margin


def _kv_groups(full: Fraction, sliding: Fraction, state: Fraction = Fraction(0)) -> tuple[Fraction, int, int, int]:
    """Return (group size, full groups, sliding groups, recurrent groups) of the layers on one GPU.

    vLLM (vllm/v1/core/kv_cache_utils.py, get_kv_cache_groups): one kind alone
    is one group of every layer; hybrid models use groups of the smallest
    kind's count (the largest's when it is under 1.5 x the smallest), each kind
    split into ceil(count / group size) groups (the last padded).
    """
    counts = [c for c in (full, sliding, state) if c]
    if len(counts) < 2:
        return full + sliding + state, int(full > 0), int(sliding > 0), int(state > 0)
    small, large = min(counts), max(counts)
    size = large if large < Fraction(3, 2) * small else small
    return (size, math.ceil(full / size) if full else 0, math.ceil(sliding / size) if sliding else 0,
            math.ceil(state / size) if state else 0)


def _blocks_per_request(context: int, block: int, window: int | None, tokens: int, full_groups: int,
                        sliding_groups: int) -> int:
    """Blocks one request of `context` tokens takes from the shared pool.

    A full group holds every token: ceil(context / block).  A sliding group
    (vLLM SlidingWindowSpec) at most the window - 1 previous tokens plus one
    scheduler step, and one more block for a window that does not start on a
    block boundary.
    """
    need = full_groups * -(-context // block)
    if sliding_groups:
        assert window is not None
        held = min(window - 1 + tokens, context)
        need += sliding_groups * (-(-held // block) + 1)
    return need


def _kv_budget(engine: EngineSpec, fraction: Fraction, memory: Fraction, weights: Fraction, profile: Fraction,
               non_torch: int) -> Fraction:
    """Bytes each serving engine hands to its KV cache on one GPU."""
    if engine.kind == "vllm":
        # gpu_memory_utilization x total - weights - profile peak - non-torch (vllm/v1/worker/gpu_worker.py);
        # the CUDA context was in the init snapshot, graphs live in the rest unless counted in the budget
        graphs = engine.cuda_graph_bytes if engine.cuda_graphs_in_budget else 0
        return fraction * memory - weights - profile - non_torch - graphs
    if engine.kind == "sglang":
        # mem_fraction_static x the memory free before loading, minus the weights (model_runner.py)
        return fraction * (memory - engine.cuda_context_bytes - non_torch) - weights
    assert engine.kind == "trtllm"
    # free_gpu_memory_fraction x what the profiled peak leaves (KvCacheCreator)
    return fraction * (memory - weights - profile - engine.cuda_context_bytes - non_torch - engine.cuda_graph_bytes)


def _whole(x: Fraction | int) -> Fraction:
    """Round a byte figure up to a whole byte; a fraction below 2**-44 of it (and 1/4) is dropped (vc_whole).

    The kernel drops it as float noise (0.05 x 720 is 36.000...04 in doubles);
    the exact value gets the same rule, so exact integers stay integers in both.
    """
    x = Fraction(x)
    return Fraction(math.ceil(x - min(abs(x) * Fraction(1, 2**44), Fraction(1, 4))))


def _max_model_len(spec: ModelSpec, engine: EngineSpec) -> int:
    """Longest sequence the engine accepts (0: any); vLLM defaults to the model's trained context."""
    if engine.max_model_len:
        return engine.max_model_len
    return (spec.max_context or 0) if engine.kind == "vllm" else 0


def _combine(acc: dict[str, Any], one: dict[str, Any], engine: EngineSpec) -> dict[str, Any]:
    """Fold the next pipeline stage's cell `one` into `acc`, the stages before it.

    The binding stage gives the figures: the fewest KV blocks for the budgeted
    engines (every vLLM stage uses the smallest block count, kv_cache_utils.py,
    get_kv_cache_configs; a tie: the smaller headroom), the most memory for the
    others (a tie: the earlier stage).  Reasons are every stage's; headroom,
    concurrency and capacity the smallest.
    """
    if engine.kind in _PAGED_KINDS:
        binds = (one["kv_blocks"], one["headroom_bytes"]) < (acc["kv_blocks"], acc["headroom_bytes"])
    else:
        binds = one["total_bytes"] > acc["total_bytes"]
    out = dict(one if binds else acc)
    why = acc["reasons"] | one["reasons"]
    out["reasons"] = why
    out["kv_capacity_tokens"] = min(acc["kv_capacity_tokens"], one["kv_capacity_tokens"])
    if acc.get("gpu_bytes") is not None:
        out["fits"] = not why & BLOCKING
        out["headroom_bytes"] = min(acc["headroom_bytes"], one["headroom_bytes"])
        out["max_concurrency"] = min(acc["max_concurrency"], one["max_concurrency"])
    return out


def _verdict(out: dict[str, Any], spec: ModelSpec, engine: EngineSpec, context: int) -> None:
    """Set ``reasons``, ``fits`` and ``headroom_bytes`` of a cell from its parts (GPU-less: advice only)."""
    why = out.pop("_why", 0)
    spare = out.pop("_spare", None)
    if spec.max_context and context > spec.max_context:
        why |= CONTEXT_BEYOND_TRAINED
    if out["total_bytes"] > 2**53 or out["host_bytes"] > 2**53:
        why |= APPROXIMATE
    memory = out.get("gpu_bytes")
    if memory is None:
        out["reasons"] = why
        return
    if out["weights_bytes"] > memory:
        why |= WEIGHTS_EXCEED_GPU
    if out["total_bytes"] > memory:
        why |= TOTAL_EXCEEDS_GPU
    max_len = _max_model_len(spec, engine)
    if max_len and context > max_len:
        why |= CONTEXT_BEYOND_MAX_MODEL_LEN
    left = memory - out["total_bytes"]
    out.update(reasons=why, fits=not why & BLOCKING, headroom_bytes=left if spare is None else min(left, spare))


def _mm_profile_items(spec: ModelSpec, engine: EngineSpec, tokens: int, seqs: int) -> int:
    """Largest images vLLM's profiling run feeds the encoder at once (vllm/multimodal/budget.py).

    As many as the encoder budget, max(max_num_batched_tokens, one image's
    embeddings), holds, at most max_num_seqs x the images one max_model_len
    prompt takes (at most ``limit_mm_per_prompt``), at least one.
    """
    assert spec.vision is not None
    toks = spec.vision.max_item_features
    max_len = _max_model_len(spec, engine)
    per_prompt = min(engine.limit_mm_per_prompt, max_len // toks) if max_len else engine.limit_mm_per_prompt
    return max(1, min(max(tokens, toks) // toks, seqs * max(1, per_prompt)))


def _mm_held_bytes(spec: ModelSpec, dtype: DType, engine: EngineSpec, tokens: int, seqs: int) -> Fraction:
    """Bytes of the profiled images' embeddings, held while the decoder's dummy pass runs."""
    assert spec.vision is not None
    items = _mm_profile_items(spec, engine, tokens, seqs)
    toks = spec.vision.max_item_features
    held = items * toks * spec.hidden_size * _compute_bytes(dtype)
    if engine.mm_profile_padding and toks < max(tokens, toks):
        # vLLM 0.11.0 / 0.11.1 profile_run: each output copied into zeros of the encoder budget's rows, the
        # unpadded outputs still referenced
        held += items * max(tokens, toks) * spec.hidden_size * _compute_bytes(dtype)
    return held


def _mm_pixel_bytes(spec: ModelSpec, dtype: DType, engine: EngineSpec, tokens: int, seqs: int) -> Fraction:
    """Bytes of the profiled dummy images in the compute dtype, once per image (``mm_dummy_image_elems``)."""
    assert spec.vision is not None
    items = _mm_profile_items(spec, engine, tokens, seqs)
    return items * mm_dummy_image_elems(spec.vision) * _compute_bytes(dtype)


def _mm_image_bytes(spec: ModelSpec, dtype: DType, engine: EngineSpec, tokens: int, seqs: int) -> Fraction:
    """Bytes of the dummy images and the encoder's rotary table vLLM 0.11.0 / 0.11.1 hold through the profile."""
    if not engine.mm_profile_padding:
        return Fraction(0)
    assert spec.vision is not None
    return _mm_pixel_bytes(spec, dtype, engine, tokens, seqs) + Fraction(mm_rope_table_bytes(spec.vision))


def _mm_encoder_bytes(spec: ModelSpec, dtype: DType, engine: EngineSpec, tokens: int, seqs: int,
                      tp: int) -> Fraction:
    """Return the vision encoder's peak bytes over the profiled images on one TP rank.

    Per patch, the largest of the tower's phases (one to four, :attr:`vramcore.VisionSpec.vllm_encoder_phases`,
    a rule per family), each its activation-dtype elements (whole, and split over TP ranks) at the compute
    width plus its fp32 elements at 4 B; beside it, outside the padded profile, the dummy pixels once per image.
    """
    v = spec.vision
    assert v is not None
    items = _mm_profile_items(spec, engine, tokens, seqs)
    act = _compute_bytes(dtype)
    per_patch = max((Fraction(a) + Fraction(a_tp) / tp) * act + (Fraction(f) + Fraction(f_tp) / tp) * 4
                    for a, a_tp, f, f_tp in v.vllm_encoder_phases)
    beside = Fraction(0) if engine.mm_profile_padding else _mm_pixel_bytes(spec, dtype, engine, tokens, seqs)
    return items * v.max_item_patches * per_patch + beside


def _paged_cell(spec: ModelSpec, dtype: DType, kv_dtype: DType | None, engine: EngineSpec, tp: int, pp: int,
                stage: _Stage, context: int, batch: int, gpu_bytes: int, gpu_name: str | None) -> dict[str, Any]:
    """Estimate under vLLM, SGLang or TensorRT-LLM: a block pool sized from a memory budget."""
    memory = Fraction(gpu_bytes)
    tokens, seqs, fraction, margin = _serving_settings(engine, gpu_bytes, gpu_name, tp, pp)
    text_only = engine.kind == "vllm" and engine.limit_mm_per_prompt == 0  # vLLM never builds the towers then
    parts = _stored_part_bytes(spec, dtype)
    if engine.mxfp4_layout != "stored" and format_family(dtype, spec) == "mxfp4":
        # vLLM's Triton MoE layout of MXFP4 experts: swizzled, padded scales and fp32 biases
        parts["mlp_routed_experts"] += mxfp4_loaded_extra(spec, engine.mxfp4_layout)
    kv_extra = Fraction(0)
    if engine.kv_shared_projections and spec.kv_shared_layers:
        # vLLM's Gemma3nAttention: qkv_proj over every KV head and k_norm in the KV-sharing layers too
        # (model_executor/models/gemma3n.py), stored like the model's other attention matrices and norms
        width = spec.num_kv_heads * spec.head_dim  # type: ignore[operator]
        per_layer = 2 * spec.hidden_size * width + (2 * width if spec.qkv_bias else 0)
        norm = spec.head_dim if spec.qk_norm else 0
        kv_extra = spec.kv_shared_layers * per_layer * Fraction(dtype.bits) / 8
        parts["attention"] += kv_extra
        parts["norms"] += spec.kv_shared_layers * (norm or 0) * Fraction(
            dtype.compute_bits if dtype.quantized else dtype.bits) / 8
    if text_only:
        parts = {**parts, "vision_tower": Fraction(0), "multimodal_projector": Fraction(0),
                 "audio_tower": Fraction(0)}
    weights = _whole(_split_parts(spec, parts, tp, stage, kv_extra) + _rope_cache_bytes(spec, dtype, engine))
    # profiling run: a forward over the token budget, or (the last stage) the sampler over one logits row per
    # request
    forward = tokens * _peak_elems_per_token(spec, tp, stage.layers) * _compute_bytes(dtype)
    rows = min(seqs, tokens)
    sampler = rows * spec.vocab_size * Fraction(engine.resolved_sampler_bytes_per_logit) if stage.last else 0
    if engine.profile_hidden_states and stage.last:  # vLLM: the forward's T outputs, the N gathered rows, their
        sampler += (tokens + 2 * rows) * spec.hidden_size * _compute_bytes(dtype)  # random stand-in
    workspace = Fraction(engine.profile_workspace_bytes)
    profile = _whole(max(forward, sampler) + workspace)
    if engine.kind == "vllm" and spec.vision is not None and not text_only and stage.first:  # the encoder's stage
        profile = _whole(max(profile + _mm_held_bytes(spec, dtype, engine, tokens, seqs),
                             _mm_encoder_bytes(spec, dtype, engine, tokens, seqs, tp) + workspace)
                         + _mm_image_bytes(spec, dtype, engine, tokens, seqs))
    non_torch = engine.non_torch_bytes + (engine.nccl_bytes if tp * pp > 1 else 0)
    overhead = Fraction(engine.cuda_context_bytes + non_torch + engine.cuda_graph_bytes)
    budget = _kv_budget(engine, fraction, memory, weights, profile, non_torch)

    # KV geometry of the layers on this GPU, kind by kind; the groups are the whole model's
    full, sliding = _layers_by_kind(spec)
    per_req_state = _state_bytes(spec, dtype, engine, tp, stage, 1)  # a hybrid model's recurrent states
    per_token = _kv_layer_bytes_per_token(spec, _kv_bytes_per_elem(dtype, kv_dtype, engine), engine, tp)
    block = engine.block_size
    state_layers = spec.n_state_layers if engine.kind == "vllm" else 0
    max_len = _max_model_len(spec, engine)
    if state_layers:
        # vLLM pages the states in the KV pool: the attention block grows to 16 x cdiv(state page, 16 x bytes
        # per token) and the state page is padded to it (HybridAttentionMambaModelConfig)
        state_page = _state_bytes_per_seq_layer(spec, dtype, engine, tp)
        if full + sliding:
            block = max(block, 16 * math.ceil(state_page / (16 * per_token)))
            page = block * per_token
        else:
            page = state_page
    else:
        page = block * per_token
    _, full_groups, sliding_groups, state_groups = _kv_groups(Fraction(full), Fraction(sliding),
                                                              Fraction(state_layers))
    block_bytes = page * _group_layers(spec, engine, stage)  # one block id: a page in each layer of the fullest group

    def state_blocks(ctx: int) -> int:
        mode = {"none": 1, "align": 2}.get(engine.mamba_cache_mode)
        return state_groups * (mode if mode is not None else -(-max(max_len, ctx) // block))

    if engine.kind == "sglang" and per_req_state and budget > 0:
        # a MambaPool of whole requests' states: mamba_full_memory_ratio 0.9 / 1.9 of the budget (plus a dummy
        # slot); the token pool gets the rest
        slots = math.floor(budget * Fraction(9, 19) / per_req_state)
        budget -= slots * per_req_state
    else:
        slots = 0
    pool = (seqs + 2) * per_req_state if engine.kind == "trtllm" else Fraction(0)
    if pool:  # TensorRT-LLM: one state slot per request of max_batch_size (+2) before the KV fraction
        budget = _kv_budget(engine, fraction, memory - pool, weights, profile, non_torch)
    blocks = math.floor(budget / block_bytes) if budget > 0 and block_bytes else 0
    kv = _whole(blocks * block_bytes)
    need = _blocks_per_request(context, block, spec.sliding_window, tokens, full_groups,
                               sliding_groups) + state_blocks(context)
    state = Fraction(0)
    if state_groups:
        state = batch * state_blocks(context) * block_bytes  # pages inside kv
    elif engine.kind == "sglang" and per_req_state:
        state = (slots + 1) * per_req_state if slots else Fraction(0)
    elif pool:
        state = pool
    total = weights + kv + profile + overhead + (state if not state_groups else 0)
    # what the pool must hold: the request, and for vLLM one sequence of max_model_len (checked at start-up)
    why, required = 0, batch * need
    # a model of recurrent layers only needs no KV block: the engine's state slots bound it
    concurrency: Any = Fraction(blocks, need) if need else (math.inf if per_req_state else Fraction(0))
    if budget <= 0:
        why |= NO_KV_BUDGET
    elif blocks < batch * need:
        why |= KV_BELOW_BATCH
    if engine.kind == "sglang" and per_req_state:
        running = slots // 5   # MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO 3 + the radix cache's 2 buffers
        concurrency = min(concurrency, Fraction(running))
        if running < batch:
            why |= KV_BELOW_BATCH
    if pool:
        concurrency = min(concurrency, Fraction(seqs))
        if seqs < batch:
            why |= KV_BELOW_BATCH
    if engine.kind == "vllm" and max_len:
        need_max = _blocks_per_request(max_len, block, spec.sliding_window, tokens, full_groups,
                                       sliding_groups) + state_blocks(max_len)
        if blocks < need_max:
            why |= KV_BELOW_MAX_MODEL_LEN
        required = max(required, need_max)
    spare = -_whole(-((blocks - required) * block_bytes if budget > 0 else budget - required * block_bytes))
    out: dict[str, Any] = {
        "weights_bytes": weights, "kv_cache_bytes": Fraction(kv), "activation_bytes": profile,
        "overhead_bytes": overhead, "total_bytes": total, "gpu_bytes": memory, "_why": why, "_spare": spare,
        # vLLM logs num_blocks // len(kv_cache_groups) * block_size tokens
        "kv_capacity_tokens": Fraction(blocks // max(full_groups + sliding_groups + state_groups, 1) * block),
        "kv_blocks": Fraction(blocks), "max_concurrency": concurrency, "host_bytes": Fraction(0),
        "state_bytes": Fraction(state),
        "budget_bytes": budget, "block_bytes": block_bytes, "blocks_per_request": need,
        "kv_groups": full_groups + sliding_groups, "mem_fraction": fraction, "mem_fraction_margin": margin,
        "profile_tokens": tokens, "profile_seqs": seqs,
    }
    return out


# ---------------------------------------------------------------------- llama.cpp
def _pad(x: int, to: int) -> int:
    """`x` rounded up to a multiple of `to` (GGML_PAD)."""
    return -(-x // to) * to


def _llamacpp_cell(spec: ModelSpec, dtype: DType, kv_dtype: DType | None, engine: EngineSpec, tp: int,
                   stage: _Stage, context: int, batch: int, gpu_bytes: int | None) -> dict[str, Any]:
    """Estimate one GPU under llama.cpp: n_ctx cells up front, its offloaded layers, the rest on the host.

    The output layer is offloaded first, then the last ``n_gpu_layers - 1``
    repeating layers (src/llama-model.cpp, load_tensors); :func:`_stages`
    says which of them are on this GPU.
    """
    offloaded, on_host = frozenset(stage.layers), frozenset(stage.host)
    output_on_gpu = stage.last and engine.n_gpu_layers != 0
    ubatch_setting = engine.max_num_batched_tokens or _LLAMACPP_UBATCH
    cells = _pad(context * batch, engine.ctx_pad)  # n_seq = batch sequences share one unified cache
    if spec.sliding_window is None or engine.swa_full:
        swa_cells = cells
    else:
        swa_cells = min(cells, _pad(spec.sliding_window * batch + ubatch_setting, engine.ctx_pad))
    ubatch = min(ubatch_setting, cells)  # the worst-case graph: one ubatch, n_kv = the whole cache

    parts = _stored_part_bytes(spec, dtype)
    kv_bytes = _kv_bytes_per_elem(dtype, kv_dtype, engine)
    gpu_layers, host_layers = _layer_weights(spec, dtype, tp), _layer_weights(spec, dtype, 1)
    gpu_token, host_token = (_kv_layer_bytes_per_token(spec, kv_bytes, engine, t) for t in (tp, 1))
    weights = kv = host = state = Fraction(0)
    # a recurrent layer keeps one cell of state per sequence (llama_memory_recurrent, n_seq_max = batch)
    gpu_state, host_state = (batch * _state_bytes_per_seq_layer(spec, dtype, engine, t) for t in (tp, 1))
    for i, kind in enumerate(spec.layer_types or ()):
        if i not in offloaded and i not in on_host:
            continue  # on another GPU
        # a layer left on the CPU keeps its whole weights, cache and state in host memory
        if i in offloaded:
            weights += gpu_layers[i]
        else:
            host += host_layers[i]
        if kind in STATE_LAYER_KINDS:  # a hybrid layer keeps both (llama_memory_hybrid: every layer, Falcon-H1)
            if i in offloaded:
                state += gpu_state
            else:
                host += host_state
        if (kind in FULL_KINDS or kind in WINDOWED_KINDS) and i < _first_kv_shared(spec):
            tokens = cells if kind in FULL_KINDS else swa_cells
            if i in offloaded:
                kv += tokens * gpu_token
            else:
                host += tokens * host_token
    if output_on_gpu:  # the output matrix (a tied one is duplicated from the token embeddings)
        weights += (parts["lm_head"] or parts["embedding"]) / tp
    elif engine.n_gpu_layers == 0:
        host += parts["lm_head"]
    if stage.first:  # mmproj, offloaded to the first GPU whatever -ngl says
        weights += _towers(parts) / tp
    weights += _rope_cache_bytes(spec, dtype, engine)
    # token embeddings, the f32 logits buffer (n_vocab x n_seq) and the host compute buffer (inputs + KQ mask)
    host += parts["embedding"] + 4 * spec.vocab_size * batch + ubatch * 4 * (spec.hidden_size + cells)

    # GPU compute buffer: one ubatch of the f32 graph
    logits_row = 4 * (spec.vocab_size + spec.hidden_size) if output_on_gpu else 0
    ffn_row = 4 * ((2 if spec.mlp_gated else 1) * spec.intermediate_size + 4 * spec.hidden_size)
    scores_row = 0 if engine.flash_attn else 4 * spec.num_heads * cells + 4 * 7 * spec.hidden_size
    activations = Fraction(ubatch * max(logits_row, ffn_row, scores_row))
    overhead = Fraction(engine.cuda_context_bytes)
    weights, kv, host, state = (_whole(x) for x in (weights, kv, host, state))  # whole bytes
    total = weights + kv + activations + state + overhead
    out: dict[str, Any] = dict.fromkeys(FIELDS)
    out.update(weights_bytes=weights, kv_cache_bytes=kv, activation_bytes=activations, overhead_bytes=overhead,
               total_bytes=total, kv_capacity_tokens=Fraction(cells), kv_blocks=Fraction(0), host_bytes=host,
               state_bytes=state)
    if gpu_bytes is not None:
        memory = Fraction(gpu_bytes)
        out.update(gpu_bytes=memory, fits=total <= memory, headroom_bytes=memory - total,
                   max_concurrency=Fraction(cells // context))
    return out


# ---------------------------------------------------------------------- training
def _norm_tensors(spec: ModelSpec, width: int, a: Fraction, frozen: bool, rsqrts: Fraction = Fraction(1)) \
        -> list[Fraction]:
    """Return the bytes per token one RMSNorm saves for backward.

    Its fp32 input, the rsqrt (one per head for q/k norms), and -- for its
    weight's gradient, so not when frozen -- the 16-bit cast the weight
    multiplies (Llama style) or the fp32 normalized copy (Gemma's 1 + weight;
    OLMo-2's weight times the fp32 normalized input, ``norm_weight_fp32``).
    """
    if frozen:
        return [Fraction(4 * width), 4 * rsqrts]
    last = Fraction(4 * width) if spec.norm_plus_one or spec.norm_weight_fp32 or spec.norm_weight_upcast \
        else a * width
    return [Fraction(4 * width), 4 * rsqrts, last]


def _mamba2_saved(spec: ModelSpec, a: Fraction, tp: int, frozen: bool) -> tuple[Fraction, Fraction]:
    """Return (bytes per token, bytes per layer) one Mamba2 mixer saves for backward on the CUDA path.

    mamba_ssm's ``MambaSplitConv1dScanCombinedFn`` keeps the in_proj output and the scan output (16-bit)
    and the gated norm's fp32 rstd per group; A and, while A_log trains, its exp (fp32, per head) once a
    layer; Falcon-H1's scaled input copies stand in for the input norm's output, and its mup_vector
    buffer is saved once a layer (see include/vramcore/training.h, vc_mamba2_saved).
    """
    rec = spec.recurrent
    assert rec is not None and rec.kind == "mamba2"
    inner = rec.state_heads * rec.state_rows
    groups = (rec.conv_dim - inner) // (2 * rec.state_cols)
    proj = next(t.shape[0] for t in rec.tensors if t.name == "ssm_in.weight")
    per_token = a * Fraction(proj + inner, tp)
    if any(t.role == "norm" for t in rec.tensors):
        per_token += 4 * max(Fraction(1), Fraction(groups, tp))
    if rec.input_copies and not frozen:
        per_token += (rec.input_copies - 1) * a * spec.hidden_size
    per_layer = (4 if frozen else 8) * Fraction(rec.state_heads, tp) + (a * proj if rec.proj_scaled else 0)
    return per_token, per_layer


def _deltanet_saved(spec: ModelSpec, a: Fraction, tp: int, frozen: bool) -> tuple[Fraction, Fraction]:
    """Return (bytes per token, bytes per layer) one gated-DeltaNet mixer saves for backward on the CUDA path.

    causal_conv1d keeps its q|k|v input; fla's chunked rule the l2-normalised q and k with their fp32 rstd,
    v, the fp32 cumulated g, beta and its (s x 64 per value head) A matrix; the decay gate softplus's fp32
    input (and output, for the trained A_log); the gated RMSNorm its fp32 input and gate, their silu, the
    weighted copy, the weight's 16-bit operand (trained) and an rsqrt per row; out_proj its input (trained).
    Per layer -exp(A_log) and, while A_log trains, the exp (see include/vramcore/training.h,
    vc_deltanet_saved).
    """
    rec = spec.recurrent
    assert rec is not None and rec.kind == "gated_deltanet"
    value_heads, value_width = Fraction(rec.state_heads, tp), Fraction(rec.state_heads * rec.state_cols, tp)
    key_width = Fraction((rec.conv_dim - rec.state_heads * rec.state_cols) // 2, tp)
    key_heads = key_width / rec.state_rows
    trains = 0 if frozen else 1
    saved = [a * Fraction(rec.conv_dim, tp),                                      # causal_conv1d's input
             2 * a * key_width, 8 * key_heads, a * value_width, 4 * value_heads,  # q, k, rstd, v, g
             a * value_heads, a * value_heads * 64,                               # beta, A
             4 * value_heads * (1 + trains),                                      # softplus in (and out)
             (12 + a * (1 + trains)) * value_width + 4 * value_heads,             # the gated norm
             trains * a * value_width]                                            # out_proj's input
    return sum(saved, Fraction(0)), 4 * value_heads * (1 + trains)


def _mamba1_saved(spec: ModelSpec, a: Fraction, tp: int, frozen: bool) -> tuple[Fraction, Fraction, Fraction]:
    """Return (bytes per token, per layer, per sequence and 2048-token chunk) one Mamba1 mixer saves for backward.

    On the CUDA path (causal_conv1d, mamba_ssm's selective scan): the in_proj output the conv's input view keeps
    alive, x_proj's input (trained), the dt / B / C norms, dt_proj's input (trained), the scan's contiguous u,
    delta, B, C and z and its pre-gate output, out_proj's input copy (trained); per layer A, the exp (trained)
    and a 16-bit model's fp32 D and dt bias; per chunk the fp32 scan states (see include/vramcore/training.h,
    vc_mamba1_saved).
    """
    rec = spec.recurrent
    assert rec is not None and rec.kind == "mamba1"
    inner, n = Fraction(rec.state_heads, tp), rec.state_cols
    r = next(t for t in rec.tensors if t.name == "ssm_dt.weight").shape[1]
    trains = 0 if frozen else 1
    norms = (4 + trains * a) * (r + 2 * n) + 12
    per_token = 6 * a * inner + trains * a * (2 * inner + r) + 2 * a * n + norms
    per_layer = 4 * inner * n * (1 + trains) + (8 * inner if a < 4 else 0)
    return per_token, per_layer, 8 * inner * n


def _layer_saved(spec: ModelSpec, a: Fraction, tp: int, eager: bool, mlp_kind: str, frozen: bool,
                 mixer: str = "full_attention", autocast: bool = False) -> tuple[Fraction, Fraction, Fraction]:
    """Return (bytes per token, per query x key of one sequence, per layer) one decoder layer saves for backward.

    `frozen`: a LoRA base, whose frozen linears keep not their inputs.  `mixer`: the layer's
    ``layer_types`` entry (``"mamba"``: a Mamba2 mixer in place of attention, ``"hybrid"``: both).
    """
    h = spec.hidden_size
    heads = Fraction(spec.num_heads, tp)
    if spec.is_mla:
        kv_heads = heads
        dk = spec.qk_nope_head_dim + spec.qk_rope_head_dim  # type: ignore[operator]
        dv = spec.v_head_dim
    else:
        kv_heads = max(Fraction(1), Fraction(spec.num_kv_heads, tp))  # type: ignore[arg-type]
        dk = dv = spec.head_dim
    assert dk is not None and dv is not None
    saved: list[Fraction] = []
    for _ in range(spec.norms_per_layer):
        saved += _norm_tensors(spec, h, a, frozen)
    if not frozen:
        # the token mixer's and the MLP's normed inputs, saved by their first linears (one a sub-block:
        # Nemotron-H's blocks hold one of them)
        saved += [a * h] * ((mixer != "none") + (mlp_kind != "none"))
    per_layer = Fraction(0)
    if mixer in ("mamba", "hybrid", "linear_attention"):   # the recurrent mixer (beside attention: "hybrid")
        kind = spec.recurrent.kind if spec.recurrent is not None else None
        if kind == "mamba1":
            mixer_tok, per_layer, _ = _mamba1_saved(spec, a, tp, frozen)
        elif kind == "gated_deltanet":
            mixer_tok, per_layer = _deltanet_saved(spec, a, tp, frozen)
        else:
            mixer_tok, per_layer = _mamba2_saved(spec, a, tp, frozen)
        saved.append(mixer_tok)
    attends = mixer not in ("mamba", "linear_attention", "none")   # "none": a Nemotron-H MLP block
    if spec.qk_norm and attends:
        # one rsqrt per head, or one per token for a norm over the whole projection (OLMo-2)
        q_rsqrts, k_rsqrts = (Fraction(1), Fraction(1)) if spec.qk_norm_full_width else (heads, kv_heads)
        saved += _norm_tensors(spec, heads * dk, a, frozen, q_rsqrts)      # type: ignore[arg-type]
        saved += _norm_tensors(spec, kv_heads * dk, a, frozen, k_rsqrts)  # type: ignore[arg-type]
        if (spec.norm_plus_one or spec.norm_weight_upcast) and not spec.qk_norm_full_width:
            per_layer += 2 * 4 * dk       # each per-head norm's fp32 (1 + weight), once a layer
    if spec.is_mla:
        latent = spec.kv_lora_rank + spec.qk_rope_head_dim  # type: ignore[operator]
        saved += _norm_tensors(spec, latent, a, frozen) + [a * latent]
    scores = Fraction(0)
    if not attends:
        pass
    elif eager:
        saved += [a * heads * dk, a * heads * dk, a * heads * dv]      # q; k, v repeated to every head
        if not frozen:
            saved += [a * heads * dv]                                # the reshaped output, o_proj's input
        scores = heads * (4 + a + (a if spec.attn_softcap else 0))   # fp32 softmax, 16-bit probs
    else:
        saved += [a * heads * dk, a * kv_heads * dk, a * kv_heads * dv, a * heads * dv, 4 * heads]  # + logsumexp
        copied = not spec.is_mla and spec.rotary_width < dk
        if spec.attn_output_gate:
            # the output gate's multiply keeps the reshaped output (a copy under partial rotary) and the sigmoid;
            # o_proj keeps the product unless frozen
            saved += [a * heads * dv] * ((1 if copied else 0) + 1 + (0 if frozen else 1))
        elif copied and not frozen:
            # partial rotary: q concatenated head-major, SDPA's output laid out like it, o_proj's input a copy
            saved += [a * heads * dv]
    # gated: gate, up, act(gate) (and the down_proj input, unless frozen); ungated relu2 (Nemotron-H): the relu's
    # output (and the square, down_proj's input, unless frozen)
    mlp_tensors = (3 if spec.mlp_gated else 1) + (0 if frozen else 1)
    if mlp_kind == "dense":
        saved += [a * Fraction(spec.intermediate_size, tp)] * mlp_tensors
    elif mlp_kind == "moe":
        k, ie = spec.experts_per_token, Fraction(spec.moe_intermediate_size, tp)  # type: ignore[arg-type]
        weight, weighted = a, a * h              # the routing weight of each copy and the weighted copy
        if spec.moe_router == "topk_softmax":    # Granite-4.0-H: softmax over the top-k logits (fp32), indices
            saved += [Fraction(4 * k), Fraction(8 * k)]
        elif spec.moe_router == "sigmoid_group":
            # Nemotron-H: the router's fp32 input (for its fp32 weight), sigmoid scores, gather indices,
            # the gathered weights and their sum (in-place division); fp32 weights -- 16-bit under autocast,
            # which runs the linear in 16 bits on the normed input itself and keeps its weight's 16-bit cast
            w = a if autocast else Fraction(4)
            saved += ([] if frozen or autocast else [Fraction(4 * h)]) + [w * spec.num_experts, Fraction(8 * k),
                                                                         w * k, w]
            weight = w
            if autocast:
                per_layer += a * spec.num_experts * h
        else:                                    # softmax over every expert (fp32), then top-k indices
            saved += [Fraction(4 * spec.num_experts), Fraction(8 * k)]
            if spec.moe_router == "softmax_topk_norm":   # the in-place division by the sum: its k results, the sum
                saved += [Fraction(4 * k), Fraction(4)]
        saved += [Fraction(8 * k)] * 3           # grouped_mm: token gather, weight gather, inverse permutation
        copy = ([] if frozen else [a * h]) + [a * ie] * mlp_tensors + [weighted, weight]
        saved += copy * k
        saved += [a * Fraction(spec.shared_expert_intermediate_size, tp)] * mlp_tensors
        if spec.shared_expert_gate:
            saved += [a * h, a]                  # the sigmoid gate's multiply: the shared output and the gate
        per_layer += 4 * spec.num_experts        # grouped_mm's int32 offsets, one per expert
    if spec.norm_plus_one or spec.norm_weight_upcast:
        per_layer += 4 * h * spec.norms_per_layer     # Gemma's fp32 (1 + weight), Nemotron-H's fp32 weight copy
    return sum(saved, Fraction(0)), scores, per_layer


def _train_activations(spec: ModelSpec, engine: EngineSpec, a: Fraction, tp: int, stage: _Stage, context: int,
                       batch: int, adapter: tuple[Fraction, Fraction]) -> Fraction:
    """Return the activation peak of one training step on `stage`, layer by layer over its layers."""
    eager = resolve_attention(spec, engine) == "eager"
    frozen = engine.method != "full"
    adapter_token_layer, adapter_weights = adapter
    checkpointing = engine.recompute == "full"
    selective = engine.recompute == "selective"
    h, vocab = spec.hidden_size, Fraction(spec.vocab_size, tp)
    in_flight = stage.in_flight                  # 1F1B: stage k of pp holds pp - k micro-batches
    tokens, s2 = batch * context, context * context
    # each layer by (token mixer, MLP kind)
    all_kinds = list(zip(spec.layer_types or (), spec.mlp_layer_types or (), strict=True))
    kinds = [all_kinds[i] for i in stage.layers]
    autocast = TRAIN_PRECISIONS[engine.precision][1]   # the "-mixed" precisions run the forward under autocast
    per_layer = {k: _layer_saved(spec, a, tp, eager, k[1], frozen, k[0], autocast) for k in set(all_kinds)}
    layers_tok = sum((per_layer[k][0] + adapter_token_layer for k in kinds), Fraction(0))
    layers_sq = sum((per_layer[k][1] for k in kinds), Fraction(0))
    norm_consts = sum((per_layer[k][2] + adapter_weights for k in kinds), Fraction(0))
    # the largest layer of the model, recomputed under checkpointing: the largest mixer, the largest MLP
    one_tok = max(per_layer[k][0] for k in all_kinds) + adapter_token_layer
    one_sq = max(per_layer[k][1] for k in all_kinds)
    # the final norm, the lm_head's input and the token ids (not for a frozen lm_head / embedding), the
    # labels, the loss's fp32 log-softmax: the last stage's
    outer = sum(_norm_tensors(spec, h, a, frozen), Fraction(0)) + (8 if frozen else a * h + 16) + 4 * vocab \
        + (a * vocab if spec.final_softcap else 0) if stage.last else Fraction(0)
    rotary = spec.rotary_width       # the rotated part of each head (partial_rotary_factor)
    # cos/sin: saved by attention layers or kept as checkpoint inputs; position ids under checkpointing
    tables = 2 * a * rotary if checkpointing or spec.n_attention_layers else 0
    per_sequence = context * (tables * spec.rope * (not spec.rope_per_row)
                              + (8 if checkpointing and spec.layer_positions else 0))
    per_row_tables = tokens * tables * spec.rope * spec.rope_per_row   # Qwen3.5: cos / sin per batch row
    # the loss scalar; Gemma's sqrt(hidden) scalar (saved when the embedding trains); its final norm's 1 + w
    constant = 4 + (a if spec.embed_scale and not frozen else 0) + (
        4 * h if spec.norm_plus_one or spec.norm_weight_upcast else 0)
    if checkpointing:
        kinds_of_attention = (spec.n_full_layers > 0) + (spec.n_sliding_layers > 0)
        saved = tokens * (in_flight * len(kinds) * a * h + outer)
        saved += (batch * s2 * a * kinds_of_attention if eager else 0)   # the (b, 1, s, s) masks, kept
        layer_transient = tokens * one_tok + batch * s2 * one_sq
    else:
        saved = tokens * (in_flight * layers_tok + outer) + in_flight * norm_consts
        saved += 0 if selective else in_flight * batch * s2 * layers_sq
        if spec.recurrent is not None and spec.recurrent.kind == "mamba1":   # the scan states, per 2048 tokens
            state_layers = sum(1 for mixer, _ in kinds if mixer in ("mamba", "hybrid"))
            saved += in_flight * state_layers * batch * -(-context // 2048) * _mamba1_saved(spec, a, tp, frozen)[2]
        layer_transient = batch * s2 * one_sq if selective else Fraction(0)
    saved += per_sequence + per_row_tables + constant + (8 if batch == 1 else 0)
    widest = max(spec.intermediate_size if any(mlp == "dense" for _, mlp in kinds) else 0,
                 spec.experts_per_token * (spec.moe_intermediate_size or 0) + spec.shared_expert_intermediate_size)
    layer_transient += tokens * (2 * a * h + 3 * a * Fraction(widest, tp))
    loss_transient = tokens * (8 + a) * vocab if stage.last else Fraction(0)
    if not engine.backward_transient:
        return saved
    return saved + max(layer_transient, loss_transient)


def _train_cell(spec: ModelSpec, dtype: DType, engine: EngineSpec, tp: int, stage: _Stage, context: int,
                batch: int, gpu_bytes: int | None) -> dict[str, Any]:
    """Estimate a training step: model states sharded by ZeRO stage, activations saved for backward."""
    from vramcore.engines import train as rules  # the per-tensor rules (peft, optimizers), not formulas

    rules.check_trainable(spec)

    base, trains = rules.training_base(spec, dtype, engine)
    trainable = {p: Fraction(n) for p, n in rules.trainable_by_part(spec, engine).items()}
    grad, fp32_grad, master_width, _ = (Fraction(x) for x in rules.state_widths(engine))
    # a quantized base as its format stores it (vramcore.storage, exact per tensor); plain widths otherwise
    stored = ({p: Fraction(b) for p, b in rules.base_bytes_by_part(spec, base).items()}
              if engine.method == "qlora" or rules.format_family(base, spec) != "plain"
              else _stored_part_bytes(spec, base))
    base_bytes = sum(stored.values(), Fraction(0))
    if engine.method != "full":
        stored = {p: stored[p] + trainable[p] * grad for p in PARTS}
    optim_parts = {p: Fraction(n) for p, n in rules.optimizer_bytes_by_part(spec, engine).items()}
    dp, zero = engine.dp, engine.zero
    weights_rank = _split_parts(spec, stored, tp, stage)
    params = _split_parts(spec, trainable, tp, stage)
    optim_rank = _split_parts(spec, optim_parts, tp, stage)
    largest = max(t.numel for t in rules.list_tensors(spec))
    param_bytes = Fraction(rules.PRECISIONS[engine.precision][0])
    if engine.method == "full":
        gather, gather_grad = largest * param_bytes, largest * grad
    else:
        gather = largest * base_bytes / spec.param_count
        gather_grad = Fraction(0)
    shard = dp if zero >= 1 else 1
    grads16, grads32, master = params * grad, params * fp32_grad / shard, params * master_width / shard
    optim = optim_rank / shard
    if zero >= 3:
        grads16 = Fraction(0) if fp32_grad else grads16 / dp  # DeepSpeed stage 3 counts the fp32 partition only
    elif zero == 2:
        grads16 = grads16 / dp
    weights = weights_rank / dp + gather if zero >= 3 else weights_rank
    host = Fraction(0)
    if engine.offload_optimizer:
        host = grads32 + master + optim
        grads = grads16 if zero <= 1 else Fraction(0)
        optim = master = Fraction(0)
    else:
        grads = grads16 + grads32
    if zero >= 3:
        grads += gather_grad
        if engine.offload_params:
            host += weights_rank / dp
            weights = gather
    a = param_bytes if engine.precision == "fp32" else Fraction(2)
    per_token_layer, per_layer = rules.adapter_activation_bytes(spec, engine)
    adapter = (Fraction(per_token_layer), Fraction(per_layer))
    dequant = rules.largest_layer_matrix(spec) * a if engine.method == "qlora" and engine.backward_transient else 0
    activations = _whole(_train_activations(spec, engine, a, tp, stage, context, batch, adapter) + dequant)
    weights, grads, optim, master, host = (_whole(x) for x in (weights, grads, optim, master, host))
    overhead = engine.cuda_context_bytes + _whole(Fraction(engine.allocator_reserve_fraction) * activations)
    total = weights + grads + optim + master + activations + overhead
    out: dict[str, Any] = dict.fromkeys(FIELDS)
    out["_why"] = 0 if trains else FORMAT_NOT_RUNNABLE   # full fine-tuning of quantized weights, QLoRA over non-NF4
    out.update(weights_bytes=weights, kv_cache_bytes=Fraction(0), activation_bytes=activations,
               overhead_bytes=overhead, total_bytes=total, kv_capacity_tokens=Fraction(0), kv_blocks=Fraction(0),
               host_bytes=host, gradients_bytes=grads, optimizer_bytes=optim, master_weights_bytes=master,
               trainable_params=sum(trainable.values(), Fraction(0)))
    if gpu_bytes is not None:
        memory = Fraction(gpu_bytes)
        out.update(gpu_bytes=memory, fits=total <= memory, headroom_bytes=memory - total,
                   max_concurrency=Fraction(0))
    return out


# ---------------------------------------------------------------------- public
def reference_estimate_exact(spec: ModelSpec, dtype: DType, kv_dtype: DType | None, engine: EngineSpec,
                             n_gpus: int, context: int, batch: int, gpu_bytes: int | None, *,
                             tp: int | None = None, pp: int | None = None, gpu_name: str | None = None,
                             details: bool = False) -> dict[str, Any]:
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
        Allocation rules, of any kind.
    n_gpus : int
        GPUs per configuration (>= 1); pipeline stages for transformers and
        llama.cpp, tensor-parallel ranks for the serving engines, unless `tp` /
        `pp` are given.
    context : int
        Tokens per sequence (>= 1).
    batch : int
        Concurrent sequences (>= 1).
    gpu_bytes : int or None
        Memory of one GPU in bytes; None skips the fit (not allowed for the
        engines that size their KV cache from it: vLLM, SGLang, TensorRT-LLM).
    tp, pp : int, optional
        Tensor- and pipeline-parallel degrees (``n_gpus = tp * pp``).
    gpu_name : str, optional
        Name of the GPU; vLLM's batch defaults are smaller on an A100 whatever
        its memory (None: not an A100).
    details : bool
        Also return the paged engines' intermediate figures (:data:`DETAILS`:
        the KV budget, the bytes of one block id, blocks per request, KV
        groups, the memory fraction and, for SGLang's default fraction, its
        distance from a rounding tie in thousandths), and ``stages``: the
        :data:`FIELDS` and :data:`DETAILS` of every pipeline stage on its own, in order.

    Returns
    -------
    dict
        The keys of :data:`FIELDS`, per GPU (the most loaded one).  Byte
        counts and counts are exact Fractions (a float knob taken at the exact
        binary value of its float), ``fits`` is a bool; ``gpu_bytes``,
        ``fits``, ``headroom_bytes`` and ``max_concurrency`` are None when
        `gpu_bytes` is None.

    Raises
    ------
    TypeError
        An argument of the wrong type.
    ValueError
        A count out of [1, 2**53], a GPU without memory (or none for a serving
        engine), a parallel layout the model does not allow, llama.cpp
        ``n_gpu_layers`` beyond the layers + 1, or a transformers engine whose
        sliding-window offset leaves a negative number of tokens.

    Examples
    --------
    >>> from vramcore import ModelSpec, get_dtype, get_engine
    >>> spec = ModelSpec(num_layers=2, hidden_size=64, num_heads=4, intermediate_size=128,
    ...                  vocab_size=1000)
    >>> r = reference_estimate_exact(spec, get_dtype("bf16"), None, get_engine("transformers"),
    ...                              1, 10, 1, None)
    >>> r["kv_cache_bytes"]  # 2 layers x 10 tokens x 2 x 4 heads x 16 dims x 2 bytes
    Fraction(5120, 1)
    >>> v = reference_estimate_exact(spec, get_dtype("bf16"), None, get_engine("vllm", block_size=16),
    ...                              1, 10, 1, 2**30, details=True)
    >>> v["block_bytes"]  # 16 tokens x 2 layers x 256 bytes a token and layer
    Fraction(8192, 1)
    >>> v["kv_cache_bytes"] == v["kv_blocks"] * v["block_bytes"]
    True
    """
    _check_types(spec, dtype, kv_dtype)
    _check_engine(engine)
    tp_, pp_ = _parallelism(spec, engine, n_gpus, tp, pp)
    context = _count("context", context)
    batch = _count("batch", batch)
    memory = _gpu_bytes(gpu_bytes) if gpu_bytes is not None else None
    if gpu_name is not None and not isinstance(gpu_name, str):
        raise TypeError(f"gpu_name must be a str or None, got {gpu_name!r}")
    if engine.kind in _PAGED_KINDS and memory is None:
        raise ValueError(f"engine {engine.name!r} sizes its KV cache from the GPU's memory; pass gpu_bytes")
    out: dict[str, Any] = {}
    cells: list[dict[str, Any]] = []
    for k, stage in enumerate(_stages(spec, engine, pp_)):
        if engine.kind == "transformers":
            one = _transformers_cell(spec, dtype, kv_dtype, engine, tp_, stage, context, batch, memory)
        elif engine.kind == "train":
            one = _train_cell(spec, dtype, engine, tp_, stage, context, batch, memory)
        elif engine.kind == "llamacpp":
            one = _llamacpp_cell(spec, dtype, kv_dtype, engine, tp_, stage, context, batch, memory)
        else:
            assert memory is not None
            one = _paged_cell(spec, dtype, kv_dtype, engine, tp_, pp_, stage, context, batch, memory, gpu_name)
        for name in (*TRAIN_OUTPUTS, "state_bytes"):
            if one.get(name) is None:
                one[name] = Fraction(0)
        _verdict(one, spec, engine, context)
        cells.append({f: one.get(f) for f in (*FIELDS, *DETAILS)})
        out = one if k == 0 else _combine(out, one, engine)
    if details:
        return {**dict.fromkeys(DETAILS), **out, "stages": cells}
    return {k: out[k] for k in FIELDS}


def reference_estimate(spec: ModelSpec, dtype: DType, kv_dtype: DType | None, engine: EngineSpec,
                       n_gpus: int, context: int, batch: int, gpu_bytes: int | None, *,
                       tp: int | None = None, pp: int | None = None, gpu_name: str | None = None) -> dict[str, Any]:
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
        Allocation rules, of any kind.
    n_gpus : int
        GPUs per configuration (>= 1); pipeline stages for transformers and
        llama.cpp, tensor-parallel ranks for the serving engines, unless `tp` /
        `pp` are given.
    context : int
        Tokens per sequence (>= 1).
    batch : int
        Concurrent sequences (>= 1).
    gpu_bytes : int or None
        Memory of one GPU in bytes (e.g. ``GPUSpec.usable_bytes``); None skips
        the fit (serving engines need it).
    tp, pp : int, optional
        Tensor- and pipeline-parallel degrees (``n_gpus = tp * pp``).
    gpu_name : str, optional
        Name of the GPU (vLLM's defaults differ on an A100).

    Returns
    -------
    dict
        The keys of :data:`FIELDS`, per GPU: byte counts and counts as floats,
        ``fits`` as a bool; ``gpu_bytes``, ``fits``, ``headroom_bytes`` and
        ``max_concurrency`` are None when `gpu_bytes` is None.

    Raises
    ------
    TypeError, ValueError
        As :func:`reference_estimate_exact`.

    Examples
    --------
    >>> import vramcore
    >>> spec = vramcore.get_model("DeepSeek-R1-Distill-Llama-8B").spec
    >>> r = reference_estimate(spec, vramcore.get_dtype("bf16"), None,
    ...                        vramcore.get_engine("transformers"), 1, 32768, 1, 80 * 2**30)
    >>> int(r["kv_cache_bytes"]), r["fits"]
    (4294967296, True)
    >>> r = reference_estimate(spec, vramcore.get_dtype("bf16"), None, vramcore.get_engine("llamacpp"),
    ...                        1, 1000, 1, None)
    >>> int(r["kv_capacity_tokens"])  # n_ctx padded to 256
    1024
    """
    exact = reference_estimate_exact(spec, dtype, kv_dtype, engine, n_gpus, context, batch, gpu_bytes,
                                     tp=tp, pp=pp, gpu_name=gpu_name)
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
        The fields that depend on the GPU (headroom, concurrency, reasons,
        fits) are C-contiguous arrays of their own (float64; ``reasons``
        uint16, ``fits`` bool); the others, like ``gpu_bytes``, are read-only
        broadcast views of their own smaller shape: the bytes the kernel
        writes.

    Raises
    ------
    TypeError, ValueError
        As :func:`reference_estimate`, or an empty axis.
    NotImplementedError
        An engine of another kind than ``"transformers"``, or ``pp > 1``.

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
    if engine.kind != "transformers":
        raise NotImplementedError(f"the NumPy broadcast models the 'transformers' engine kind only, "
                                  f"got {engine.kind!r}; use reference_estimate for the others")
    layouts = set()
    for spec in specs:
        for dtype in dtypes:
            _check_types(spec, dtype, kv_dtype)
        layouts.add(_parallelism(spec, engine, n_gpus, tp, pp))
    (tp_, pp_), = layouts
    if pp_ > 1:
        raise NotImplementedError("the NumPy broadcast models one pipeline stage; use reference_estimate for pp > 1")
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

    whole_model = [_Stage(tuple(range(s.num_layers)), True, True) for s in specs]
    act_bytes = per_dtype([_compute_bytes(d) for d in dtypes])
    kv_bytes = per_dtype([_kv_bytes_per_elem(d, kv_dtype, engine)[0] for d in dtypes])  # K = V under transformers
    # KV elements per token on this GPU of the full and of the sliding layers
    if engine.index_cache_bits and any(s.has_indexer for s in specs):
        raise ValueError("reference_grid_numpy: an indexer cache at its own width (index_cache_bits) is not "
                         "modelled here; use reference_estimate")
    full_elems = per_model([_layers_by_kind(s)[0] * (_kv_elems_per_token(s, engine, tp_) + (s.index_head_dim or 0))
                            for s in specs])
    sliding_elems = per_model([_layers_by_kind(s)[1] * (_kv_elems_per_token(s, engine, tp_) + (s.index_head_dim or 0))
                               for s in specs])
    cap = per_model([_sliding_cap(s, engine) if s.n_sliding_layers else 0 for s in specs])
    peak = [[_peak_elems_per_token(s, tp_, transformers=_compute_bytes(d)) + s.hidden_size
             + 2 * s.rotary_width * s.rope * s.rotary_tables for d in dtypes] for s in specs]
    if engine.full_logits:
        peak = [[max(p, s.hidden_size + Fraction(s.vocab_size, tp_)) for p in row]
                for row, s in zip(peak, specs, strict=True)]
    peak_elems = np.array([[float(p) for p in row] for row in peak],
                          dtype=np.float64).reshape(len(specs), len(dtypes), 1, 1, 1)
    vocab = per_model([s.vocab_size for s in specs])
    weights = np.array([[float(_whole(_weights_bytes(s, d, tp_, st, engine) + _rope_cache_bytes(s, d, engine)))
                         for d in dtypes]
                        for s, st in zip(specs, whole_model, strict=True)],
                       dtype=np.float64).reshape(len(specs), len(dtypes), 1, 1, 1)
    reserve = float(engine.allocator_reserve_fraction)
    cuda = float(engine.cuda_context_bytes)

    # per sequence, at (M, D, C, 1, 1)
    cross_elems = per_model([s.n_cross_layers * s.cross_attention_tokens * _kv_elems_per_token(s, engine, tp_)
                             for s in specs])
    kv_seq = (full_elems * ctx + sliding_elems * np.minimum(ctx, cap) + cross_elems) * kv_bytes
    act_seq = ctx * (peak_elems * act_bytes + 8.0)     # + generate()'s int64 position_ids
    # the prefill attention's pairs (_prefill_pair_bytes): eager scores and masks, or sdpa's sliding mask from
    # the window on, each a rate per (model, dtype) of one sequence's context x context pairs
    rates = [[_prefill_pair_rates(s, _compute_bytes(d), engine, tp_, st) for d in dtypes]
             for s, st in zip(specs, whole_model, strict=True)]

    def per_model_dtype(i: int) -> np.ndarray:
        return np.array([[float(r[i]) for r in row] for row in rates],
                        dtype=np.float64).reshape(len(specs), len(dtypes), 1, 1, 1)

    always, from_window, window = per_model_dtype(0), per_model_dtype(1), per_model_dtype(2)
    act_seq = act_seq + ctx * ctx * (always + np.where(ctx >= window, from_window, 0.0))
    logits_seq = 0.0 if engine.full_logits else vocab * (act_bytes + 4.0)
    state_seq = np.array([[float(_state_bytes(s, d, engine, tp_, st, 1)) for d in dtypes]
                          for s, st in zip(specs, whole_model, strict=True)],
                         dtype=np.float64).reshape(len(specs), len(dtypes), 1, 1, 1)
    # per configuration, at (M, D, C, B, 1)
    def whole(x: Any) -> Any:  # vc_whole
        return np.ceil(x - np.minimum(np.abs(x) * 2.0**-44, 0.25))

    # requests with images (ModelSpec.image_patches): the larger of the decoder's phase and the tower's
    # (_transformers_activation_bytes)
    enc_parts = [_numpy_encoder_parts(s) for s in specs]
    enc_seq = per_model([e[0] for e in enc_parts]) * act_bytes + per_model([e[1] for e in enc_parts])
    held_seq = per_model([e[2] for e in enc_parts]) * act_bytes + per_model([e[3] for e in enc_parts])
    pair_seq = per_model([e[4] for e in enc_parts]) * act_bytes     # x batch: Pixtral's mask over the call
    embed_token = per_model([s.hidden_size for s in specs]) * act_bytes
    dec_seq, enc_lin = act_seq + logits_seq + held_seq, enc_seq + ctx * embed_token
    images = enc_seq > 0.0
    act_b = np.where(images, np.maximum(dec_seq, enc_lin + bat * pair_seq) - logits_seq, act_seq)
    kv = whole(bat * kv_seq)
    activations = whole(bat * act_b + bat * logits_seq)
    state = whole(bat * state_seq)
    overhead = cuda + whole(reserve * (kv + activations + state))
    total = weights + kv + activations + state + overhead
    # sequences that fit, at (M, D, C, 1, G)
    free = gpu - weights - cuda
    act_1 = np.where(images, np.maximum(dec_seq, enc_lin), act_seq + logits_seq)
    per_seq = (kv_seq + act_1 + state_seq) * (1.0 + reserve)
    with np.errstate(divide="ignore", invalid="ignore"):
        concurrency = np.where(free > 0.0, np.floor(free / per_seq), 0.0)
        if np.any(pair_seq > 0.0):
            # the tower's phase grows with the batch: each phase's root, then exact steps
            # (vc_transformers_pair_concurrency)
            a = (kv_seq + dec_seq + state_seq) * (1.0 + reserve)
            b = (kv_seq + enc_lin + state_seq) * (1.0 + reserve)
            c = pair_seq * (1.0 + reserve)

            def cost(n: Any) -> Any:
                return np.maximum(n * a, n * b + n * n * c)

            n = np.maximum(np.minimum(np.floor(free / a), np.floor(2.0 * free / (b + np.sqrt(b * b + 4.0 * c * free)))),
                           0.0)
            for _ in range(4):
                n = np.where(cost(n + 1.0) <= free, n + 1.0, n)
            for _ in range(4):
                n = np.where((n > 0.0) & (cost(n) > free), n - 1.0, n)
            concurrency = np.where((pair_seq > 0.0) & (free > 0.0), n, concurrency)

    shape = (len(specs), len(dtypes), ctx.size, bat.size, gpu.size)
    out: dict[str, np.ndarray] = {}
    # what depends on the GPU is computed per cell; the rest stays at its own shape, broadcast (as the kernel
    # writes it once: vramcore.grid.run.field_shapes)
    for name, value in (("weights_bytes", weights), ("kv_cache_bytes", kv), ("activation_bytes", activations),
                        ("overhead_bytes", overhead), ("total_bytes", total),
                        ("kv_capacity_tokens", ctx * bat), ("kv_blocks", 0.0), ("host_bytes", 0.0),
                        *((name, 0.0) for name in TRAIN_OUTPUTS), ("state_bytes", state)):
        out[name] = np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
    # per (M, D, C, 1, G): the batch changes nothing of it (as the kernel writes it, field_shapes' class 4)
    out["max_concurrency"] = np.broadcast_to(concurrency, shape)
    headroom = np.empty(shape, dtype=np.float64)
    np.subtract(gpu, total, out=headroom)
    out["headroom_bytes"] = headroom
    trained = per_model([s.max_context or 0 for s in specs])
    why = ((weights > gpu) * WEIGHTS_EXCEED_GPU | (total > gpu) * TOTAL_EXCEEDS_GPU
           | ((trained > 0) & (ctx > trained)) * CONTEXT_BEYOND_TRAINED | (total > 2.0**53) * APPROXIMATE)
    if engine.max_model_len:
        why = why | (ctx > engine.max_model_len) * CONTEXT_BEYOND_MAX_MODEL_LEN
    reasons = np.empty(shape, dtype=np.uint16)
    reasons[...] = why
    out["reasons"] = reasons
    out["fits"] = (reasons & BLOCKING) == 0
    out["gpu_bytes"] = np.broadcast_to(gpu, shape)
    return {k: out[k] for k in FIELDS}
