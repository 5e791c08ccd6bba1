"""vLLM (V1 engine): a paged KV cache sized from a memory budget after a profiling run.

Its rules are the fields of :data:`ENGINE` (defaults with their sources); the
formulas are ``include/vramcore/engines/vllm.h``.
"""

from __future__ import annotations

from vramcore.engines.base import EngineSpec, GiB, MiB

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from vramcore.model.spec import ModelSpec
    from vramcore.model.vision import VisionSpec


def _round_up(x: int, to: int) -> int:
    return -(-x // to) * to


#: PyTorch's CUDA caching allocator (c10/cuda/CUDACachingAllocator.cpp, the torch 2.9 vLLM 0.11.1 ran): requests
#: round up to 512 B; those of at most 1 MiB share 2 MiB small-pool segments, those under 10 MiB are cut from
#: 20 MiB blocks, larger ones get a segment of their size rounded up to 2 MiB; a block is split only when more
#: than 1 MiB would remain (should_split), and an unsplit block counts whole in the allocated bytes
#: (alloc_found_block) that vLLM's "Model loading took" reads (DeviceMemoryProfiler, torch.cuda.max_memory_allocated
#: right after reset_peak_memory_stats).
_BLOCK_ROUND = 512
_SMALL_SIZE = 1 << 20
_MIN_LARGE_ALLOC = 10 << 20
_ROUND_LARGE = 2 << 20


def cuda_block_bytes(n: int) -> int:
    """Return the bytes PyTorch's caching allocator counts for a tensor of `n` bytes given a fresh block.

    A request of at least 10 MiB gets a segment of its size rounded up to 2 MiB and keeps it whole when the
    rest is at most 1 MiB; smaller requests are cut from shared segments (only the 512 B rounding shows).  A
    block reused from the cache may be larger; that is not modelled.

    Examples
    --------
    >>> cuda_block_bytes(16588800)        # 15.82 MiB: kept whole in a 16 MiB block
    16777216
    >>> cuda_block_bytes(29491200)        # 28.125 MiB: the 1.875 MiB left over is split off
    29491200
    """
    size = _round_up(max(n, 1), _BLOCK_ROUND)
    if size < _MIN_LARGE_ALLOC:
        return size
    segment = _round_up(size, _ROUND_LARGE)
    return segment if segment - size <= _SMALL_SIZE else size


def mxfp4_loaded_extra(spec: ModelSpec, layout: str) -> int:
    """Return the bytes vLLM holds beyond the stored MXFP4 experts of `spec`, for the layout `layout`.

    vLLM's Triton MoE backend on Hopper (vllm/model_executor/layers/quantization/mxfp4.py,
    Mxfp4MoEMethod.process_weights_after_loading, Triton branch) swizzles each
    expert's E8M0 scales with triton_kernels' ``HopperMXScaleLayout``
    (``mx_axis=1``, ``num_warps=8``), which pads the output rows to a multiple
    of 2 x 8 x 2 x 8 = 256 and the K / 32 columns to an even count (w13:
    2 x intermediate rows of hidden / 32; w2: hidden rows of intermediate /
    32); the values' swizzle (``HopperMXValueLayout``) pads to 16 x 32 bytes,
    which 2880-wide experts already are, and keeps their bytes.  The expert
    biases become fp32.  Up to vllm-project/vllm#46549 ("Free unused MXFP4
    scales in OAI Triton Backend") the checkpoint's scales stayed allocated
    beside the swizzled copy (``"triton-keep-scales"``).

    Each of these tensors is one allocation per MoE layer (all experts), held
    at the block PyTorch's caching allocator gives it (:func:`cuda_block_bytes`):
    gpt-oss-20b's w13 values (253.125 MiB) sit in 254 MiB blocks and its kept
    w13 scales (15.82 MiB) in 16 MiB ones; gpt-oss-120b's kept scales (63.28
    and 31.64 MiB) and swizzled w2 scales (33.75 MiB) in 64, 32 and 34 MiB
    ones.  Per-rank padding and blocks under tensor parallelism are not
    modelled: the extra bytes split over TP with the experts.

    Examples
    --------
    >>> from vramcore import get_model
    >>> round(mxfp4_loaded_extra(get_model("gpt-oss-20b").spec, "triton-keep-scales") / 2**30, 4)
    0.6139
    """
    if layout == "stored" or not spec.num_experts or spec.moe_intermediate_size is None:
        return 0
    h, i, e = spec.hidden_size, spec.moe_intermediate_size, spec.num_experts
    values = [e * 2 * i * (h // 2), e * h * (i // 2)]
    stored_scales = [e * 2 * i * (h // 32), e * h * (i // 32)]
    swizzled = [e * _round_up(2 * i, 256) * _round_up(h // 32, 2), e * _round_up(h, 256) * _round_up(i // 32, 2)]
    biases = [e * 2 * i, e * h] if spec.expert_bias else []
    held = values + swizzled + (stored_scales if layout == "triton-keep-scales" else []) + [4 * b for b in biases]
    stored = sum(values) + sum(stored_scales) + 2 * sum(biases)
    return spec.n_moe_layers * (sum(cuda_block_bytes(t) for t in held) - stored)


def kv_shared_loaded_extra(spec: ModelSpec) -> tuple[int, int]:
    """Return the parameters vLLM builds in `spec`'s KV-sharing layers beyond transformers': (k/v, k norms).

    vLLM's ``Gemma3nAttention`` (vllm/model_executor/models/gemma3n.py) makes
    the same ``QKVParallelLinear`` over all ``num_key_value_heads`` and the
    same ``k_norm`` in every layer, the KV-sharing ones included (there it
    only points ``Attention`` at the earlier layer's cache with
    ``kv_sharing_target_layer_name``); transformers ``Gemma3nTextAttention``
    builds ``k_proj``, ``v_proj`` and ``k_norm`` only in the layers that
    compute their own K and V.  The first figure counts under ``attention``
    (split over TP like every k/v projection: at most ``kv_heads`` ways), the
    second under ``norms``.  (0, 0) for a model without KV-sharing layers.

    Examples
    --------
    >>> import vramcore
    >>> e4b = vramcore.ModelSpec.from_hf_config({"model_type": "gemma3n_text"})  # the class defaults: E4B
    >>> kv_shared_loaded_extra(e4b)   # 15 layers x (2 x 2 x 256 x 2048, 256)
    (31457280, 3840)
    """
    shared = spec.kv_shared_layers
    if not shared:
        return 0, 0
    width = spec.num_kv_heads * spec.head_dim  # type: ignore[operator]
    per_layer = 2 * spec.hidden_size * width + (2 * width if spec.qkv_bias else 0)
    return per_layer * shared, (spec.head_dim if spec.qk_norm else 0) * shared  # type: ignore[operator]


#: Model types whose vLLM implementation builds the rotary cos/sin cache in fp32 whatever the model dtype:
#: gpt-oss (vllm/model_executor/models/gpt_oss.py, OAIAttention: get_rope(..., dtype=torch.float32), one
#: YaRNScalingRotaryEmbedding of original_max_position_embeddings x factor = 131072 positions shared by every
#: layer through get_rope's cache, vLLM 0.11.1; the cache is cast to the query's dtype only on the first
#: forward, after "Model loading took" is measured).
ROPE_CACHE_FP32: frozenset[str] = frozenset({"gpt_oss"})

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
    # Gemma-3n: qkv_proj and k_norm in the KV-sharing layers too (kv_shared_loaded_extra)
    kv_shared_projections=True,
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
    # RotaryEmbedding's cos_sin_cache (max_position x rotary_dim, model dtype; fp32 for ROPE_CACHE_FP32) is
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
    """Return the elements of the largest dummy image as vLLM's profiling run holds it: its patches' pixels.

    The processor's pixels are cast to the model dtype (vllm/multimodal/processing.py,
    ``_postprocess_output``) and moved to the GPU as one batch (``profile_run``'s
    ``batched_dummy_mm_inputs``), bound while the encoder runs over it: counted once per image
    beside the encoder's peak (``include/vramcore/engines/vllm.h``, ``vc_vllm_cut``), and through the
    whole profile under ``EngineSpec.mm_profile_padding`` (vLLM 0.11.0 / 0.11.1).  One patch holds
    :attr:`VisionSpec.patch_elems` pixels (Qwen-VL: both temporal frames, ``3 x 2 x 14 x 14``), over
    :attr:`VisionSpec.max_item_patches` patches; Llama-3.2-Vision's tiles hold no class-token pixels.

    Examples
    --------
    >>> from vramcore.model.vision import VisionSpec
    >>> v = VisionSpec(kind="pixtral", tensors=(), hidden_size=1024, num_layers=24, num_heads=16,
    ...                intermediate_size=4096, patch_size=14, image_size=1540, token_rule="pixtral", merge_size=2)
    >>> mm_dummy_image_elems(v) == 3 * 1540 * 1540
    True
    """
    patches = vision.max_item_patches
    if vision.token_rule == "mllama":   # max_tiles tiles of (image_size / patch)**2 patches, no class tokens
        patches = vision.max_tiles * (vision.image_size // vision.patch_size) ** 2
    return vision.patch_elems * patches


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
