"""TensorRT-LLM (PyTorch backend): paged KV cache from a fraction of the free memory.

Its rules are the fields of :data:`ENGINE` (defaults with their sources); the
formulas are ``include/vramcore/engines/trtllm.h``.
"""

from vramcore.engines.base import EngineSpec, GiB, MiB

#: TensorRT-LLM (PyTorch backend).  KV = free_gpu_memory_fraction (0.9) x (total -
#: profiled peak incl. non-torch memory) (tensorrt_llm/_torch/pyexecutor/_util.py,
#: KvCacheCreator); 32 tokens per block (llmapi KvCacheConfig defaults).
ENGINE = EngineSpec(
    name="trtllm",
    kind="trtllm",
    # hybrid models: conv (d_conv - 1) x channels and the recurrent state in the model dtype
    # (mamba_ssm_cache_dtype "auto"; tensorrt_llm/_torch/pyexecutor/mamba_cache_manager.py)
    state_conv_offset=-1,
    state_ssm_bits=16,
    mla_compressed=True,
    cuda_context_bytes=512 * MiB,
    allocator_reserve_fraction=0.0,
    mem_fraction=0.9,
    block_size=32,
    max_num_batched_tokens=8192,
    max_num_seqs=256,
    cuda_graph_bytes=int(0.5 * GiB),
    sampler_bytes_per_logit=8.0,
)

#: Weight storage families the engine loads as stored: TensorRT-LLM's quantization modes (docs: Quantization:
#: ModelOpt FP8 / NVFP4 / W4A16 AWQ / GPTQ, MXFP4); no bitsandbytes and no GGUF.
LOADS: frozenset[str] = frozenset({
    "plain", "gptq", "awq", "compressed-tensors", "fp8", "mxfp4", "nvfp4",
})

#: Whether FP8 weights or an FP8 KV cache need hardware FP8: TensorRT-LLM runs FP8 on Ada, Hopper and Blackwell
#: only (docs: quantization support matrix).
NEEDS_FP8_HARDWARE = True

#: Other spellings :func:`vramcore.get_engine` accepts.
ALIASES: tuple[str, ...] = ('tensorrt-llm', 'tensorrt_llm', 'trt-llm')
