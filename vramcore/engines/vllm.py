"""vLLM (V1 engine): a paged KV cache sized from a memory budget after a profiling run.

Its rules are the fields of :data:`ENGINE` (defaults with their sources); the
formulas are ``include/vramcore/engines/vllm.h``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vramcore.engines.base import EngineSpec, GiB, MiB

if TYPE_CHECKING:
    from vramcore.model.spec import ModelSpec
    from vramcore.model.vision import VisionSpec


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
    # The profiling run's peak is the sampler over N = min(max_num_seqs, T) logits rows
    # (gpu_model_runner.py, profile_run -> _dummy_sampler_run: every dummy request sets top-k and top-p).
    # Sampler.forward casts the bf16 logits to fp32 (sampler.py); the path then decides the peak
    # (SAMPLER_PATHS, EngineSpec.sampler):
    #  "sort" (default from 0.11.1, vllm-project/vllm#26859; still in 0.16.0): apply_top_k_top_p sorts
    #    every row (topk_topp_sampler.py); at N >= 128 rows PyTorch's stable sort takes segmented_sort_pairs
    #    (aten/src/ATen/native/cuda/SortStable.cu), which allocates int64 "reverse indices" beside the fp32
    #    values and int64 indices it returns, and CUB's DeviceSegmentedRadixSort, given separate in / out
    #    buffers, allocates third key and value buffers (cub dispatch_radix_sort.cuh): 2 + 4 + 4 + 8 + 8 +
    #    (4 + 8) = 38 B per logit.  Fewer rows take the full-sort path (other buffers; not modelled).
    #  "flashinfer" (0.11.0 default with FlashInfer installed, VLLM_USE_FLASHINFER_SAMPLER unset):
    #    flashinfer.sampling.top_k_top_p_sampling_from_logits (0.3.1) masks into a new fp32 tensor, then
    #    softmaxes it: 2 + 4 + 4 + 4 = 14 B.
    sampler="sort",
    # ... beside the (T + 2N) x hidden_size hidden states it still holds: the dummy forward's output, the
    # N rows gathered for sampling and _dummy_sampler_run's torch.rand_like stand-in for them
    profile_hidden_states=True,
    # PyTorch's cuBLAS workspace, allocated by the profile's first matmul (4096 x 8 KiB = 32 MiB on sm90:
    # aten/src/ATen/cuda/CublasHandlePool.cpp, parseChosenWorkspaceSize) plus ~2 MiB not attributed: with the
    # rules above, the llm-d rows (0.6B-70B, vocabularies 128k-201k; the Mistral-Small row with its
    # multimodal profile) each bound the sum within 5 MiB, together to 33.5-34.8 MiB
    profile_workspace_bytes=34 * MiB,
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


def mm_dummy_image_elems(vision: VisionSpec) -> int:
    """Return the elements of the largest dummy image as vLLM's profiling run holds it (channels x height x width).

    The processor's pixels (3 channels of ``patch_size``-square patches) are
    cast to the model dtype (vllm/multimodal/processing.py,
    ``_postprocess_output``) and stay referenced through the profiling run
    (``profile_run``'s ``batched_dummy_mm_inputs``).  Counted under
    ``EngineSpec.mm_profile_padding`` only; Qwen-VL's temporal copies are not
    counted.

    Examples
    --------
    >>> from vramcore.model.vision import VisionSpec
    >>> v = VisionSpec(kind="pixtral", tensors=(), hidden_size=1024, num_layers=24, num_heads=16,
    ...                intermediate_size=4096, patch_size=14, image_size=1540, token_rule="pixtral", merge_size=2)
    >>> mm_dummy_image_elems(v) == 3 * 1540 * 1540
    True
    """
    return 3 * vision.max_item_patches * vision.patch_size * vision.patch_size


def mm_rope_table_bytes(vision: VisionSpec) -> int:
    """Return the bytes of the 2-D rotary table a Pixtral encoder builds on its first use in vLLM (0 for others).

    vLLM's Mistral-format Pixtral encoder (vllm/model_executor/models/pixtral.py,
    ``VisionTransformer.freqs_cis``) caches ``precompute_freqs_cis_2d`` on the
    GPU: (image_size / patch_size)^2 x head_dim / 2 complex64 entries, first
    built in the profiling run.  Counted under ``EngineSpec.mm_profile_padding``.

    Examples
    --------
    >>> from vramcore.model.vision import VisionSpec
    >>> v = VisionSpec(kind="pixtral", tensors=(), hidden_size=1024, num_layers=24, num_heads=16,
    ...                intermediate_size=4096, patch_size=14, image_size=1540, token_rule="pixtral", merge_size=2)
    >>> mm_rope_table_bytes(v)
    3097600
    """
    if vision.kind != "pixtral":
        return 0
    side = vision.image_size // vision.patch_size
    return side * side * (vision.hidden_size // vision.num_heads // 2) * 8
