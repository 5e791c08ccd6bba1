"""llama.cpp (llama-server / llama-cli): ``n_ctx`` cells allocated up front, layers offloaded by ``-ngl``.

Its rules are the fields of :data:`ENGINE` (defaults with their sources); the
formulas are ``include/vramcore/engines/llamacpp.h``.
"""

from vramcore.engines.base import EngineSpec, MiB

#: llama.cpp (llama-server / llama-cli).  One cache of n_ctx = context x n_seq
#: cells padded to 256 (src/llama-context.cpp); sliding layers keep
#: pad256(min(n_ctx, window x n_seq + n_ubatch)) (src/llama-kv-cache-iswa.cpp);
#: token embeddings and the logits output buffer stay on the host.
ENGINE = EngineSpec(
    name="llamacpp",
    kind="llamacpp",
    # hybrid models: llama_memory_recurrent's r (conv, d_conv - 1 inputs) and s (recurrent) tensors are f32
    # whatever the cache type (src/llama-model.cpp, create_memory; src/llama-hparams.cpp n_embd_r / n_embd_s)
    state_conv_offset=-1,
    state_conv_bits=32,
    state_ssm_bits=32,
    mla_compressed=True,
    # CUDA runtime context + cuBLAS workspace of a ggml process (assumption)
    cuda_context_bytes=256 * MiB,
    allocator_reserve_fraction=0.0,
    block_size=1,
    max_num_batched_tokens=512,      # n_ubatch default (common/common.h)
    ctx_pad=256,
    n_gpu_layers=-1,
    flash_attn=True,
)

#: Weight storage families the engine loads as stored: llama.cpp loads GGUF only: other checkpoints are converted
#: (and requantized) first.
LOADS: frozenset[str] = frozenset({
    "plain", "gguf",
})

#: Whether FP8 weights or an FP8 KV cache need hardware FP8: llama.cpp has no FP8 types at all (its formats are
#: GGUF's).
NEEDS_FP8_HARDWARE = False

#: Other spellings :func:`vramcore.get_engine` accepts.
ALIASES: tuple[str, ...] = ('llama.cpp', 'llama-cpp')
