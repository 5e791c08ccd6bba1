"""Hugging Face transformers: ``AutoModelForCausalLM`` + ``generate()``, the default engine.

Its rules are the fields of :data:`ENGINE` (defaults with their sources); the
formulas are ``include/vramcore/engines/transformers.h``.
"""

from vramcore.engines.base import EngineSpec, MiB

#: Hugging Face transformers (``AutoModelForCausalLM`` + ``generate()``), the default engine.
ENGINE = EngineSpec(
    name="transformers",
    kind="transformers",
    # hybrid models: DynamicCache's LinearAttentionLayer keeps the whole conv kernel in the model dtype and
    # the recurrent state as the kernels return it, fp32 (measured: tools/measure_transformers.py state_kinds)
    state_conv_offset=0,
    state_ssm_bits=32,
    # DynamicSlidingWindowLayer keeps the last window - 1 tokens (measured with
    # transformers 5.24: Gemma-2-9B sliding layers hold 4095 tokens for window 4096;
    # shared/reference/transformers_facts.json).
    sliding_cap_offset=-1,
    # transformers >= 5 caches the MLA latent after kv_a_layernorm plus the shared
    # rope key: (kv_lora_rank + qk_rope_head_dim) per token and layer (same source).
    mla_compressed=True,
    # generate() passes logits_to_keep=1 during prefill and samples from an fp32
    # copy of the last position (huggingface/transformers#30860).
    full_logits=False,
    # PyTorch's CUDA context with lazy module loading (default since CUDA 11.7 /
    # PyTorch 1.13) plus cuBLAS workspaces: a few hundred MiB; eager loading was
    # measured at 781 MB (pytorch/pytorch#34323).  512 MiB is the assumption.
    cuda_context_bytes=512 * MiB,
    # The caching allocator rounds large blocks to 2 MiB segments and keeps freed
    # blocks cached; a growing DynamicCache (torch.cat per step) fragments them.
    # 5 % of the dynamic memory is the assumption.
    allocator_reserve_fraction=0.05,
    # bitsandbytes quantizes nn.Linear modules only; transformers 5 holds routed experts as fused 3-D parameters,
    # which stay in the compute dtype (quantizers/quantizer_bnb_4bit.py param_needs_quantization)
    bnb_quantizes_experts=False,
)

#: Weight storage families the engine loads as stored: transformers' quantizers (docs: Quantization overview):
#: GPTQ, AWQ, compressed-tensors, bitsandbytes, FP8, MXFP4 (gpt-oss). A GGUF file is dequantized on load (docs:
#: GGUF), so its bytes are not what transformers holds.
LOADS: frozenset[str] = frozenset({
    "plain", "gptq", "awq", "compressed-tensors", "bitsandbytes", "fp8", "mxfp4",
})

#: Whether FP8 weights or an FP8 KV cache need hardware FP8: transformers' FP8 quantizer requires compute
#: capability >= 8.9 (quantizer_finegrained_fp8.py, validate_environment).
NEEDS_FP8_HARDWARE = True

#: Other spellings :func:`vramcore.get_engine` accepts.
ALIASES: tuple[str, ...] = ('hf', 'huggingface')
