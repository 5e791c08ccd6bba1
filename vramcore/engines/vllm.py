"""vLLM (V1 engine): a paged KV cache sized from a memory budget after a profiling run.

Its rules are the fields of :data:`ENGINE` (defaults with their sources); the
formulas are ``include/vramcore/engines/vllm.h``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vramcore.engines.base import EngineSpec, GiB, MiB

if TYPE_CHECKING:
    from vramcore.model.spec import ModelSpec


def _round_up(x: int, to: int) -> int:
    return -(-x // to) * to


def mxfp4_loaded_extra(spec: ModelSpec, layout: str) -> int:
    """Return the bytes vLLM holds beyond the stored MXFP4 experts of `spec`, for the layout `layout`.

    vLLM's Triton MoE backend on Hopper (vllm/model_executor/layers/quantization/mxfp4.py,
    Mxfp4MoEMethod.process_weights_after_loading, Triton branch) swizzles each
    expert's E8M0 scales with triton_kernels' ``HopperMXScaleLayout``
    (``mx_axis=1``, ``num_warps=8``), which pads the output rows to a multiple
    of 2 x 8 x 2 x 8 = 256 and the K / 32 columns to an even count (w13:
    2 x intermediate rows of hidden / 32; w2: hidden rows of intermediate /
    32); the values' swizzle keeps their bytes.  The expert biases become
    fp32.  Up to vllm-project/vllm#46549 ("Free unused MXFP4 scales in OAI
    Triton Backend") the checkpoint's scales stayed allocated beside the
    swizzled copy (``"triton-keep-scales"``).  Per-rank padding under tensor
    parallelism is not modelled: the extra bytes split over TP with the
    experts.

    Examples
    --------
    >>> from vramcore import get_model
    >>> round(mxfp4_loaded_extra(get_model("gpt-oss-20b").spec, "triton-keep-scales") / 2**30, 4)
    0.5891
    """
    if layout == "stored" or not spec.num_experts or spec.moe_intermediate_size is None:
        return 0
    h, i, e = spec.hidden_size, spec.moe_intermediate_size, spec.num_experts
    stored = 2 * i * (h // 32) + h * (i // 32)
    swizzled = _round_up(2 * i, 256) * _round_up(h // 32, 2) + _round_up(h, 256) * _round_up(i // 32, 2)
    extra = swizzled if layout == "triton-keep-scales" else swizzled - stored
    if spec.expert_bias:
        extra += (2 * i + h) * 2          # bf16 -> fp32
    return e * spec.n_moe_layers * extra

#: vLLM (V1 engine).  KV budget = total x gpu_memory_utilization - weights - peak
#: activation of the profiling run - non-torch memory
#: (vllm/v1/worker/gpu_worker.py, determine_available_memory; the CUDA-graph pool
#: lives in the remaining fraction up to v0.20); pages of block_size tokens x KV
#: heads per rank x (K + V dims) (vllm/v1/kv_cache_interface.py); blocks = budget
#: // (page x group size) and concurrency = blocks / blocks per request
#: (vllm/v1/core/kv_cache_utils.py).
ENGINE = EngineSpec(
    name="vllm",
    kind="vllm",
    # DeepSeek-V3.2: the indexer's key cache is fp8 with one fp32 scale per 128 elements, whatever
    # kv_cache_dtype says (vllm/model_executor/models/deepseek_v2.py, DeepseekV32IndexerCache: head_dim +
    # head_dim // 128 x 4 bytes)
    index_cache_bits=8.25,
    # hybrid models: conv state (kernel - 1) x channels in mamba_cache_dtype (auto: the model dtype), recurrent
    # state in mamba_ssm_cache_dtype (auto: the model dtype, fp32 where the model's config asks for it)
    # (vllm/model_executor/layers/mamba/mamba_utils.py, MambaStateShapeCalculator / MambaStateDtypeCalculator);
    # mamba_cache_mode "align" with prefix caching on (vllm/config/cache.py)
    state_conv_offset=-1,
    mamba_cache_mode="align",
    # MXFP4 experts (gpt-oss): the Triton MoE backend vLLM picks on Hopper (mxfp4.py, get_mxfp4_backend)
    mxfp4_layout="triton",
    mla_compressed=True,
    # measured before the budget is taken (init snapshot): not in the budget
    cuda_context_bytes=512 * MiB,
    allocator_reserve_fraction=0.0,
    mem_fraction=0.9,
    block_size=16,
    # 0 = vLLM's defaults for the GPU: 8192 / 1024 on >= 70 GiB non-A100 GPUs,
    # else 2048 / 256 (vllm/engine/arg_utils.py, get_batch_defaults, API server)
    max_num_batched_tokens=0,
    max_num_seqs=0,
    # llm-d benchmark config_explorer/empirical-vllm-memory-results.md (H100):
    # non-torch 0.13 GiB; CUDA graphs 0.39 (gpt-oss-20b) ... 1.03 GiB (gpt-oss-120b)
    cuda_graph_bytes=int(0.5 * GiB),
    non_torch_bytes=int(0.13 * GiB),
    # same source: non-torch memory is 0.54-0.55 GiB at TP=2 (Qwen3-32B, Llama-3.3-70B-FP8)
    nccl_bytes=int(0.41 * GiB),
    # The profiling run's peak is the sampler over max_num_seqs logits rows: the
    # llm-d rows give 38.4-39.6 bytes per (request x vocab entry) across models
    # of 0.6B-70B (fp32 logits, probabilities, sort values and int64 indices).
    sampler_bytes_per_logit=38.75,
    cuda_graphs_in_budget=False,
    # RotaryEmbedding's cos_sin_cache (max_position x rotary_dim, model dtype) is
    # part of "Model loading took X GiB" (14.99 GiB for Llama-3.1-8B = 14.96 + 0.03)
    rope_cache=True,
)

#: Weight storage families the engine loads as stored: vLLM's quantization methods (docs: Quantization, supported
#: hardware), GGUF included.
LOADS: frozenset[str] = frozenset({
    "plain", "gptq", "awq", "compressed-tensors", "bitsandbytes", "fp8", "mxfp4", "nvfp4", "gguf",
})

#: Whether FP8 weights or an FP8 KV cache need hardware FP8: vLLM runs FP8 weights on Ampere as W8A16 with Marlin
#: kernels (docs: FP8 W8A8).
NEEDS_FP8_HARDWARE = False

#: Other spellings :func:`vramcore.get_engine` accepts.
ALIASES: tuple[str, ...] = ()
