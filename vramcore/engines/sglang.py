"""SGLang: a token pool sized from ``mem_fraction_static``.

Its rules are the fields of :data:`ENGINE` (defaults with their sources); the
formulas are ``include/vramcore/engines/sglang.h``.
"""

from vramcore.engines.base import EngineSpec, GiB, MiB

#: SGLang.  Token pool = mem_fraction_static x the memory free before loading -
#: weights (python/sglang/srt/model_executor/model_runner.py, profile_max_num_token);
#: activations and CUDA graphs live in the rest; page size 1.
ENGINE = EngineSpec(
    name="sglang",
    kind="sglang",
    # DeepSeek-V3.2 (NSA): the indexer's keys are fp8 with one fp32 scale per 128-element block
    # (srt/mem_cache: the NSA token pool's index_k_with_scale buffer)
    index_cache_bits=8.25,
    # hybrid models: conv (kernel - 1) x channels in bf16, recurrent state in fp32 (--mamba-ssm-dtype default;
    # srt/configs/mamba_utils.py, mamba2_state_dtype)
    state_conv_offset=-1,
    state_ssm_bits=32,
    mla_compressed=True,
    cuda_context_bytes=512 * MiB,
    allocator_reserve_fraction=0.0,
    # 0 = SGLang's default for the GPU (server_args.py, _handle_gpu_memory_settings):
    # 0.835 on an H100 80GB
    mem_fraction=0.0,
    block_size=1,
    max_num_batched_tokens=0,
    max_num_seqs=0,
    cuda_graph_bytes=int(0.5 * GiB),
    non_torch_bytes=0,
    sampler_bytes_per_logit=8.0,
    rope_cache=True,
)

#: Weight storage families the engine loads as stored: SGLang's quantization support (docs: Quantization; --load-
#: format gguf).
LOADS: frozenset[str] = frozenset({
    "plain", "gptq", "awq", "compressed-tensors", "bitsandbytes", "fp8", "mxfp4", "nvfp4", "gguf",
})

#: Whether FP8 weights or an FP8 KV cache need hardware FP8: SGLang falls back to weight-only FP8 (Marlin) without
#: hardware FP8.
NEEDS_FP8_HARDWARE = False

#: Other spellings :func:`vramcore.get_engine` accepts.
ALIASES: tuple[str, ...] = ()
