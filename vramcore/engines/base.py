"""Engines: the allocation rules of the program that runs the model.

A memory estimate is only right *for an engine*.  Each engine is an
:class:`EngineSpec`: plain named fields, every constant with its source, all
overridable (``get_engine("vllm", gpu_memory_utilization=0.95)`` or
``spec.with_options(...)``).  A spec is packed into the kernel's ``vc_engine``
struct (include/vramcore/formulas.h), so engines are values of the grid and one
sweep compares them side by side.

Engine-specific knob names are accepted as aliases of the generic fields:

=========================  ==========================  =======================================
knob (engine)              field                       meaning
=========================  ==========================  =======================================
gpu_memory_utilization     mem_fraction                vLLM share of total memory it may use
mem_fraction_static        mem_fraction                SGLang share of total memory (static)
free_gpu_memory_fraction   mem_fraction                TensorRT-LLM share of free memory for KV
tokens_per_block           block_size                  TensorRT-LLM tokens per KV block
n_ubatch                   max_num_batched_tokens      llama.cpp physical batch
enforce_eager              cuda_graph_bytes            vLLM: no CUDA graphs (pool = 0)
=========================  ==========================  =======================================
"""

from __future__ import annotations

import math
import sys

from vramcore._record import Record, fields, record, replace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ENGINE_KINDS", "FSDP_STRATEGIES", "TRAIN_METHODS", "TRAIN_OPTIMIZERS", "TRAIN_PRECISIONS", "GiB", "MiB",
           "EngineSpec"]

MiB = 2**20
GiB = 2**30

def np_generic_types() -> tuple[type, ...]:
    """Return numpy's scalar and array types when numpy is loaded (engines import without it), else ()."""
    np = sys.modules.get("numpy")
    return (np.generic, np.ndarray) if np is not None else ()


#: Engine kinds, in the order of the VC_ENGINE_* constants of include/vramcore/common.h (one module
#: of this package and one header of include/vramcore/engines/ each).
ENGINE_KINDS: tuple[str, ...] = ("transformers", "vllm", "sglang", "trtllm", "llamacpp", "train")

#: Training knobs' values (vramcore/engines/train.py): ``method``; ``precision`` -> (parameter bytes, fp32
#: master weights); ``recompute`` in the kernel's code order; ``attention``; ``optimizer``.
TRAIN_METHODS: tuple[str, ...] = ("full", "lora", "qlora")
TRAIN_PRECISIONS: dict[str, tuple[int, bool]] = {
    "bf16-mixed": (2, True), "fp16-mixed": (2, True), "bf16": (2, False), "fp16": (2, False), "fp32": (4, False),
}
TRAIN_RECOMPUTE: tuple[str, ...] = ("none", "selective", "full")
#: vLLM's top-k / top-p sampler paths (EngineSpec.sampler) -> bytes its profiling run holds per (sampled request x
#: vocabulary entry) at the sampler's peak (sources in vramcore/engines/vllm.py, SAMPLER_BYTES_PER_LOGIT's comment).
SAMPLER_PATHS: dict[str, float] = {"sort": 38.0, "flashinfer": 14.0}
#: How an engine holds MXFP4 experts once loaded (EngineSpec.mxfp4_layout; vramcore.engines.vllm.mxfp4_loaded).
MXFP4_LAYOUTS: tuple[str, ...] = ("stored", "triton", "triton-keep-scales")
#: Attention implementations of the transformers and training engines (EngineSpec.attention): ``auto`` is
#: transformers' default (``attn_implementation=None``), sdpa where the model class supports it, else eager
#: (modeling_utils.PreTrainedModel.get_correct_attn_implementation, transformers 5.24).
TRAIN_ATTENTION: tuple[str, ...] = ("auto", "sdpa", "flash", "eager")
#: The implementation a cell runs, as the kernel's place row codes it (vc_place.attn_impl).
ATTENTION_CODES: dict[str, int] = {"sdpa": 0, "flash": 1, "eager": 2}
TRAIN_OPTIMIZERS: tuple[str, ...] = ("adamw", "adam", "sgd", "adafactor", "lion", "adamw_8bit", "paged_adamw_8bit",
                                     "lion_8bit", "paged_lion_8bit", "muon")
#: transformers ``TrainingArguments.optim`` names accepted for ``optimizer`` (training_args.py, OptimizerNames).
TRAIN_OPTIMIZER_ALIASES: dict[str, str] = {
    "adamw_torch": "adamw", "adamw_torch_fused": "adamw", "adamw_hf": "adamw", "adamw_apex_fused": "adamw",
    "adamw_bnb_8bit": "adamw_8bit", "bnb_8bit": "adamw_8bit", "paged_adamw_32bit": "adamw",
    "lion_32bit": "lion", "paged_lion_32bit": "lion",
}
#: ``fsdp`` sharding strategies -> the ZeRO stage that shards the same states (PyTorch FSDP ShardingStrategy).
FSDP_STRATEGIES: dict[str, int] = {"full_shard": 3, "hybrid_shard": 3, "shard_grad_op": 2, "no_shard": 0}

_KNOB_ALIASES: dict[str, str] = {
    "gpu_memory_utilization": "mem_fraction",
    "mem_fraction_static": "mem_fraction",
    "free_gpu_memory_fraction": "mem_fraction",
    "tokens_per_block": "block_size",
    "n_ubatch": "max_num_batched_tokens",
    "max_num_tokens": "max_num_batched_tokens",
    "type_k": "cache_type_k",          # llama-cpp-python
    "type_v": "cache_type_v",
    "r": "lora_rank",                  # peft LoraConfig
    "lora_r": "lora_rank",
    "target_modules": "lora_targets",
    "optim": "optimizer",              # transformers TrainingArguments
    "attn_implementation": "attention",
    "zero_stage": "zero",
    "data_parallel": "dp",
}


@record(frozen=True, slots=True)
class EngineSpec(Record):
    """Allocation rules of one inference engine (all sizes in bytes).

    Parameters
    ----------
    name : str
        Engine name.
    kind : str
        One of :data:`ENGINE_KINDS`: how the KV cache is sized.
    sliding_cap_offset : int
        transformers: a sliding-window layer keeps ``window + offset`` tokens.
    mla_compressed : bool
        MLA layers cache the compressed latent (``kv_lora_rank + rope dim``)
        instead of per-head K and V.
    full_logits : bool
        transformers: the prompt forward computes logits for every position
        (``model(input_ids)``) rather than the last one (``generate()``).
    cuda_context_bytes : int
        Per GPU, outside the tensor allocator: CUDA context, kernels, cuBLAS
        workspaces.
    allocator_reserve_fraction : float
        transformers: caching-allocator slack as a fraction of KV + activations.
    mem_fraction : float
        Budgeted engines: vLLM ``gpu_memory_utilization`` / SGLang
        ``mem_fraction_static`` (of total memory), TensorRT-LLM
        ``free_gpu_memory_fraction`` (of free memory).  0 = the engine's
        GPU-dependent default (SGLang).
    block_size : int
        Tokens per KV block (page); 1 for unpaged engines.
    max_num_batched_tokens : int
        vLLM tokens of the profiling run / SGLang chunked prefill / TensorRT-LLM
        max_num_tokens / llama.cpp ``n_ubatch``; 0 = the engine's GPU-dependent
        default.
    max_num_seqs : int
        Requests whose sampler logits the profiling run holds; 0 = GPU-dependent default.
    cuda_graph_bytes : int
        CUDA-graph memory pool (0 without graphs).
    non_torch_bytes : int
        vLLM: non-torch allocations (NCCL, cuBLAS) subtracted from the budget.
    ctx_pad : int
        llama.cpp: ``n_ctx`` padding (256 in current llama.cpp whatever the
        attention kernel; older builds used 32 without flash attention).
    n_gpu_layers : int
        llama.cpp ``-ngl``: layers offloaded to the GPU; -1 means all plus the
        output layer.
    swa_full : bool
        llama.cpp ``--swa-full``: sliding layers keep the whole context.
    max_model_len : int
        Longest sequence the engine accepts (0: any).
    kv_cache_dtype : str or None
        Engine-level KV dtype, spelled as the engine spells it (vLLM
        ``fp8_e5m2``, SGLang ``fp8_e4m3``, TensorRT-LLM ``nvfp4`` / ``int8``;
        llama.cpp: both caches; see :mod:`vramcore.storage.kv`) or a plain
        dtype; overrides the sweep's ``kv_dtype`` when set.
    sampler_bytes_per_logit : float or None
        Budgeted engines: bytes the profiling run's sampler holds per
        (request x vocabulary entry) at its peak, overriding the rule of
        :attr:`sampler` (None: that rule; see
        :attr:`resolved_sampler_bytes_per_logit`).  SGLang and TensorRT-LLM set
        8.
    cuda_graphs_in_budget : bool
        vLLM >= 0.21: the CUDA-graph estimate is subtracted from the KV budget.
    flash_attn : bool
        llama.cpp ``-fa``: no ``n_head x n_kv x n_ubatch`` score matrix.
    rope_cache : bool
        The engine keeps a cos/sin cache of ``max_context x rotary dim`` in
        the compute dtype (vLLM's RotaryEmbedding), counted with the weights;
        in fp32 for the model types in the engine module's ``ROPE_CACHE_FP32``
        (vLLM: gpt-oss; :func:`vramcore.engines.rope_cache_fp32`).
    nccl_bytes : int
        Extra non-torch memory (NCCL and all-reduce buffers) per GPU when the
        model spans more than one GPU.
    cache_type_k, cache_type_v : str or None
        llama.cpp ``--cache-type-k`` / ``--cache-type-v`` (``-ctk`` / ``-ctv``):
        the K and the V cache types apart (``q8_0``, ``q4_0``, ``q4_1``,
        ``q5_0``, ``q5_1``, ``iq4_nl``, ``f16``, ``bf16``, ``f32``; see
        :mod:`vramcore.storage.kv`).  V defaults to K's type; a quantized V
        needs ``flash_attn`` (llama.cpp refuses it otherwise).
    state_conv_offset : int
        Hybrid models: a recurrent layer's convolution state keeps
        ``conv_kernel + state_conv_offset`` inputs per channel (transformers
        0: the whole kernel; vLLM, SGLang, llama.cpp -1: the past inputs).
    state_conv_bits, state_ssm_bits : int
        Widths of the convolution and the recurrent state (bits); 0 = the
        compute dtype, and for the recurrent state the model's own rule
        (:attr:`vramcore.model.recurrent.StateSpec.ssm_fp32`).  llama.cpp
        keeps both in f32.
    index_cache_bits : float
        DeepSeek-V3.2: bits per element of the sparse-attention indexer's
        cached key (``index_head_dim`` per token and layer, on every rank); 0
        = the K cache's width (transformers keeps it in the compute dtype).
    limit_mm_per_prompt : int
        vLLM ``--limit-mm-per-prompt`` (images): the profiling run feeds the
        vision encoder the largest image as often as the encoder budget and
        ``max_num_seqs`` x this allow (default 999, vLLM's); 0 is vLLM's
        text-only mode: no encoder profile and no tower loaded.
    mamba_cache_mode : {"none", "align", "all"}
        vLLM hybrid models: state blocks a request takes in each recurrent
        KV group (``--mamba-cache-mode``: 1, 2 with prefix caching's aligned
        copy, or one per block of ``max_model_len``).
    mxfp4_layout : {"stored", "triton", "triton-keep-scales"}
        How the engine holds MXFP4 experts (gpt-oss) once loaded: as stored
        (every engine but vLLM; vLLM's Marlin path, GPUs without the Triton
        kernels' swizzle); vLLM's Triton MoE backend on Hopper, the default
        there (``"triton"``: scales swizzled with their output rows padded to
        256, expert biases in fp32); or the same with the checkpoint's scales
        kept beside the swizzled ones (``"triton-keep-scales"``, vLLM 0.11.1
        until vllm-project/vllm#46549, the llm-d logs' version).  Under both
        Triton layouts each expert tensor counts at the block PyTorch's
        caching allocator gives it (:func:`vramcore.engines.vllm.cuda_block_bytes`).
    bnb_quantizes_experts : bool
        The engine quantizes an MoE's routed experts under a bitsandbytes
        format (vLLM's ``BitsAndBytesMoEMethod``; default).  False for
        transformers 5, which keeps its fused 3-D experts in the compute dtype
        (:func:`vramcore.storage.resolve.fused_expert_bytes`).
    kv_shared_projections : bool
        The engine builds the k and v projections and the k norm in a model's
        KV-sharing layers too (Gemma-3n ``num_kv_shared_layers``), which
        transformers leaves out: vLLM's ``Gemma3nAttention`` makes one
        ``QKVParallelLinear`` and a ``k_norm`` in every layer
        (:func:`vramcore.engines.vllm.kv_shared_loaded_extra`).  vLLM engines
        only (True there).
    sampler : {"sort", "flashinfer"}
        vLLM's top-k / top-p sampler in its profiling run (whose dummy
        requests set both), which fixes the bytes per logit at its peak:
        ``"sort"``, the PyTorch-native path that sorts every logits row, the
        default of vLLM 0.11.1 to 0.16.x (vllm-project/vllm#26859 made
        FlashInfer's kernel opt-in with ``VLLM_USE_FLASHINFER_SAMPLER=1``):
        38 B (bf16 logits 2, their fp32 copy 4, sorted values 4, int64 sort
        indices 8, PyTorch's reverse indices 8, CUB's alternate keys and values
        12); ``"flashinfer"``, FlashInfer's ``top_k_top_p_sampling_from_logits``,
        the default of vLLM 0.11.0 and earlier V1 releases with FlashInfer
        installed: 14 B (bf16 logits 2, fp32 logits 4, fp32 masked logits 4,
        fp32 probabilities 4).
    profile_hidden_states : bool
        vLLM: the profiling run holds ``T + 2 N`` hidden states (``hidden_size``
        wide, compute dtype) while the sampler runs: the forward's output over
        the token budget ``T`` = ``max_num_batched_tokens``, its ``N`` =
        ``min(max_num_seqs, T)`` rows the sampler reads, and the random
        stand-in for them (gpu_model_runner.py, ``_dummy_sampler_run``).
    profile_workspace_bytes : int
        vLLM: bytes the profiling run's peak holds besides its tensors,
        counted once in the activation peak: PyTorch's cuBLAS workspace (32 MiB
        on Hopper), allocated by the run's first matmul, and about 2 MiB not
        attributed (the llm-d rows bound the sum to 33.5-34.8 MiB).
    mm_profile_padding : bool
        vLLM 0.11.0 and 0.11.1 multimodal profiling run (``profile_run``):
        each dummy image's embeddings are copied into zeros of the encoder
        budget's rows (``max(max_num_batched_tokens, one image's
        embeddings)``) while the unpadded embeddings stay referenced; the dummy
        images stay on the GPU in the compute dtype and Pixtral's encoder keeps
        the 2-D rotary table it builds on first use.  Later vLLM caches the
        unpadded embeddings only (False; the dummy images and the table are not
        counted there).
    method : str
        Training engines (kind ``"train"``, :mod:`vramcore.engines.train`):
        ``"full"``, ``"lora"`` or ``"qlora"``.  The training fields below are
        ignored by the inference engines.
    lora_rank : int
        LoRA rank ``r`` (peft ``LoraConfig.r``; alias ``r``, ``lora_r``).
    lora_targets : str or tuple of str
        ``"all-linear"`` or module names (``("q_proj", "v_proj")``; alias
        ``target_modules``), resolved as peft 0.21 resolves them.
    lora_dropout : float
        Accepted for completeness; it does not change the memory counted.
    optimizer : str
        ``adamw``, ``adam``, ``sgd``, ``adafactor``, ``lion``, ``adamw_8bit``,
        ``paged_adamw_8bit``, ``lion_8bit``, ``paged_lion_8bit``, ``muon``
        (transformers ``optim`` names are aliases, e.g. ``adamw_torch``).
    momentum : float
        SGD momentum (0: SGD keeps no state).
    precision : str
        ``"bf16-mixed"`` (16-bit parameters and gradients, fp32 master weights
        and states), ``"fp16-mixed"``, ``"bf16"``, ``"fp16"`` (pure), ``"fp32"``.
    grad_accum_fp32 : bool
        Gradients accumulated in fp32 instead of the parameter dtype.
    recompute : str
        ``"none"``, ``"selective"`` (attention scores recomputed) or ``"full"``
        (gradient checkpointing of every layer; alias ``gradient_checkpointing=True``).
    attention : str
        The transformers and training engines' attention implementation
        (``attn_implementation``): ``"auto"`` (transformers' default: sdpa,
        or eager for the models whose class has no sdpa path, Gemma-2 and
        gpt-oss, :attr:`ModelSpec.sdpa_supported`), ``"sdpa"`` / ``"flash"``
        (no context x context scores; sdpa materializes a sliding layer's
        mask from the window on) or ``"eager"`` (the scores, their fp32
        softmax and one additive mask per attention kind, quadratic in the
        prompt).  ``"sdpa"`` on a model without it is refused, as
        transformers refuses it.
    zero : int
        DeepSpeed ZeRO stage 0-3 (alias ``fsdp="full_shard"`` = 3,
        ``"shard_grad_op"`` = 2, ``"no_shard"`` = 0).
    dp : int
        Data-parallel degree the ZeRO stage shards over.
    offload_optimizer : bool
        Optimizer states, master weights and fp32 gradients on the host (ZeRO >= 1).
    offload_params : bool
        ZeRO-3 parameter partitions on the host.
    qlora_format : str
        The 4-bit format QLoRA quantizes a plain base to (``"bnb-nf4"``, the
        bitsandbytes default; ``"bnb-nf4-dq"`` with double quantization).
    backward_transient : bool
        Count the backward's transient peak on top of the saved tensors (False:
        only what autograd holds when the forward ends, the figure
        ``tools/measure_training.py`` measures).

    Raises
    ------
    ValueError
        A knob out of range (fractions outside (0, 1], block size < 1 ...).
    """

    name: str
    kind: str = "transformers"
    sliding_cap_offset: int = -1
    mla_compressed: bool = True
    full_logits: bool = False
    cuda_context_bytes: int = 512 * MiB
    allocator_reserve_fraction: float = 0.05
    mem_fraction: float = 1.0
    block_size: int = 1
    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 256
    cuda_graph_bytes: int = 0
    non_torch_bytes: int = 0
    ctx_pad: int = 1
    n_gpu_layers: int = -1
    swa_full: bool = False
    max_model_len: int = 0
    kv_cache_dtype: str | None = None
    sampler_bytes_per_logit: float | None = None
    cuda_graphs_in_budget: bool = False
    flash_attn: bool = True
    rope_cache: bool = False
    nccl_bytes: int = 0
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    state_conv_offset: int = 0
    state_conv_bits: int = 0
    state_ssm_bits: int = 0
    mamba_cache_mode: str = "align"
    mxfp4_layout: str = "stored"
    kv_shared_projections: bool = False
    bnb_quantizes_experts: bool = True
    index_cache_bits: float = 0.0
    limit_mm_per_prompt: int = 999
    method: str = "full"
    lora_rank: int = 16
    lora_targets: str | tuple[str, ...] = "all-linear"
    lora_dropout: float = 0.0
    optimizer: str = "adamw"
    momentum: float = 0.0
    precision: str = "bf16-mixed"
    grad_accum_fp32: bool = False
    recompute: str = "none"
    attention: str = "auto"
    zero: int = 0
    dp: int = 1
    offload_optimizer: bool = False
    offload_params: bool = False
    qlora_format: str = "bnb-nf4"
    backward_transient: bool = True
    sampler: str = "sort"
    profile_hidden_states: bool = False
    profile_workspace_bytes: int = 0
    mm_profile_padding: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.lora_targets, list):
            object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
        self._normalize()
        self._check_training()
        for flag in ("mla_compressed", "full_logits", "swa_full", "cuda_graphs_in_budget", "flash_attn", "rope_cache",
                     "profile_hidden_states", "mm_profile_padding", "kv_shared_projections",
                     "bnb_quantizes_experts"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"EngineSpec.{flag} must be a bool, got {getattr(self, flag)!r}")
        for name in ("kv_cache_dtype", "cache_type_k", "cache_type_v"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"EngineSpec.{name} must be a KV-cache type name or None, got {value!r}")
        if (self.cache_type_k is not None or self.cache_type_v is not None) and self.kind != "llamacpp":
            raise ValueError(f"cache_type_k / cache_type_v are llama.cpp's knobs; engine {self.name!r} takes "
                             "kv_cache_dtype")
        if self.kind not in ENGINE_KINDS:
            raise ValueError(f"EngineSpec.kind must be one of {ENGINE_KINDS}, got {self.kind!r}")
        for name in ("cuda_context_bytes", "cuda_graph_bytes", "non_torch_bytes", "max_model_len", "nccl_bytes",
                     "profile_workspace_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"EngineSpec.{name} must be an int >= 0, got {value!r}")
        for name in ("block_size", "ctx_pad"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"EngineSpec.{name} must be an int >= 1, got {value!r}")
        for name in ("max_num_batched_tokens", "max_num_seqs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"EngineSpec.{name} must be an int >= 1 (0 = auto), got {value!r}")
        spb = self.sampler_bytes_per_logit
        if spb is not None:
            if isinstance(spb, bool) or not isinstance(spb, (int, float)) or not (0.0 <= spb < 1e6):
                raise ValueError(f"EngineSpec.sampler_bytes_per_logit must be >= 0 (or None: the sampler's rule), "
                                 f"got {spb!r}")
            object.__setattr__(self, "sampler_bytes_per_logit", float(spb))
        if not isinstance(self.sampler, str) or self.sampler not in SAMPLER_PATHS:
            raise ValueError(f"EngineSpec.sampler must be one of {', '.join(map(repr, SAMPLER_PATHS))}, got "
                             f"{self.sampler!r}")
        if isinstance(self.n_gpu_layers, bool) or not isinstance(self.n_gpu_layers, int) or self.n_gpu_layers < -1:
            raise ValueError(f"EngineSpec.n_gpu_layers must be an int >= -1 (-1 = all), got {self.n_gpu_layers!r}")
        frac = self.mem_fraction
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not (0.0 < frac <= 1.0):
            if not (frac == 0 and self.kind == "sglang"):
                raise ValueError(f"EngineSpec.mem_fraction must be in (0, 1], got {frac!r}")
        res = self.allocator_reserve_fraction
        if isinstance(res, bool) or not isinstance(res, (int, float)) or not (0.0 <= res < 1.0):
            raise ValueError(f"EngineSpec.allocator_reserve_fraction must be in [0, 1), got {res!r}")
        if not isinstance(self.sliding_cap_offset, int) or isinstance(self.sliding_cap_offset, bool):
            raise ValueError(f"EngineSpec.sliding_cap_offset must be an int, got {self.sliding_cap_offset!r}")
        if self.state_conv_offset not in (0, -1) or isinstance(self.state_conv_offset, bool):
            raise ValueError(f"EngineSpec.state_conv_offset must be 0 or -1, got {self.state_conv_offset!r}")
        lim = self.limit_mm_per_prompt
        if isinstance(lim, bool) or not isinstance(lim, int) or not 0 <= lim <= 2**20:
            raise ValueError(f"EngineSpec.limit_mm_per_prompt must be an int in [0, 2**20], got {lim!r}")
        icb = self.index_cache_bits
        if isinstance(icb, bool) or not isinstance(icb, (int, float)) or not 0 <= icb <= 64:
            raise ValueError(f"EngineSpec.index_cache_bits must be in [0, 64] (0 = the K cache's), got {icb!r}")
        if self.kv_shared_projections and self.kind != "vllm":
            raise ValueError(f"EngineSpec.kv_shared_projections is a fact of vLLM's Gemma-3n implementation; "
                             f"it cannot be set for an engine of kind {self.kind!r}")
        if self.mxfp4_layout not in MXFP4_LAYOUTS:
            raise ValueError(f"EngineSpec.mxfp4_layout must be one of {', '.join(map(repr, MXFP4_LAYOUTS))}, got "
                             f"{self.mxfp4_layout!r}")
        if self.mamba_cache_mode not in ("none", "align", "all"):
            raise ValueError(f"EngineSpec.mamba_cache_mode must be 'none', 'align' or 'all', got "
                             f"{self.mamba_cache_mode!r}")
        for name in ("state_conv_bits", "state_ssm_bits"):
            if getattr(self, name) not in (0, 8, 16, 32) or isinstance(getattr(self, name), bool):
                raise ValueError(f"EngineSpec.{name} must be 0 (auto), 8, 16 or 32, got {getattr(self, name)!r}")

    def _check_training(self) -> None:
        """Validate the training knobs (every engine carries them; only kind ``"train"`` uses them)."""
        optimizer = TRAIN_OPTIMIZER_ALIASES.get(self.optimizer, self.optimizer) if isinstance(self.optimizer, str) \
            else self.optimizer
        object.__setattr__(self, "optimizer", optimizer)
        for name, options in (("method", TRAIN_METHODS), ("precision", tuple(TRAIN_PRECISIONS)),
                              ("recompute", TRAIN_RECOMPUTE), ("attention", TRAIN_ATTENTION),
                              ("optimizer", TRAIN_OPTIMIZERS)):
            if getattr(self, name) not in options:
                raise ValueError(f"EngineSpec.{name} must be one of {list(options)}, got {getattr(self, name)!r}")
        for name, low, high in (("lora_rank", 1, 65536), ("zero", 0, 3), ("dp", 1, 1 << 20)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
                raise ValueError(f"EngineSpec.{name} must be an int in [{low}, {high}], got {value!r}")
        for name in ("lora_dropout", "momentum"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value < 1.0):
                raise ValueError(f"EngineSpec.{name} must be in [0, 1), got {value!r}")
        for flag in ("grad_accum_fp32", "offload_optimizer", "offload_params", "backward_transient"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"EngineSpec.{flag} must be a bool, got {getattr(self, flag)!r}")
        targets = self.lora_targets
        if isinstance(targets, str):
            if not targets:
                raise ValueError("EngineSpec.lora_targets must be 'all-linear' or module names, got ''")
        elif not (isinstance(targets, tuple) and targets and len(targets) <= 64
                  and all(isinstance(t, str) and 0 < len(t) <= 100 for t in targets)):
            raise TypeError(f"EngineSpec.lora_targets must be 'all-linear' or a list of module names, "
                            f"got {str(targets)[:80]}")
        if not isinstance(self.qlora_format, str):
            raise TypeError(f"EngineSpec.qlora_format must be a format name, got {self.qlora_format!r}")
        if self.kind != "train":
            return
        if self.offload_optimizer and self.zero < 1:
            raise ValueError("offload_optimizer needs zero >= 1 (DeepSpeed ZeRO-Offload shards the optimizer)")
        if self.offload_params and self.zero < 3:
            raise ValueError("offload_params needs zero=3 (only ZeRO-3 partitions the parameters)")

    def _normalize(self) -> None:
        """Store numpy scalars (and 0-d arrays) as the Python bool / int / float the field holds; refuse arrays."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np_generic_types()) and getattr(value, "ndim", 0) == 0:
                value = value.item()  # type: ignore[attr-defined]  # numpy scalar or 0-d array
                object.__setattr__(self, f.name, value)
            if hasattr(value, "__len__") and not isinstance(value, str) and f.name != "lora_targets":
                raise TypeError(f"EngineSpec.{f.name} must be one value, got {type(value).__name__} "
                                f"{str(value)[:60]}; sweep a list of engines to compare settings")
            if f.type in ("int", "float") and isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"EngineSpec.{f.name} must be a finite number, got {value!r}")
            if f.type in ("int", "float") and isinstance(value, (int, float)) and abs(value) > 2**53:
                raise ValueError(f"EngineSpec.{f.name} must be at most 2**53 in size, got {str(value)[:40]}")
            if f.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))

    @property
    def kind_code(self) -> int:
        """Index of :attr:`kind` in :data:`ENGINE_KINDS` (the kernel's VC_ENGINE_* value)."""
        return ENGINE_KINDS.index(self.kind)

    @property
    def resolved_sampler_bytes_per_logit(self) -> float:
        """Bytes per (sampled request x vocabulary entry) the profiling run's sampler holds at its peak.

        :attr:`sampler_bytes_per_logit` when set, else the rule of
        :attr:`sampler` (:data:`SAMPLER_PATHS`).

        Examples
        --------
        >>> from vramcore import get_engine
        >>> get_engine("vllm").resolved_sampler_bytes_per_logit
        38.0
        >>> get_engine("vllm", sampler="flashinfer").resolved_sampler_bytes_per_logit
        14.0
        >>> get_engine("vllm", sampler_bytes_per_logit=40).resolved_sampler_bytes_per_logit
        40.0
        """
        if self.sampler_bytes_per_logit is not None:
            return self.sampler_bytes_per_logit
        return SAMPLER_PATHS[self.sampler]

    @property
    def budgeted(self) -> bool:
        """True for engines that size the KV cache from a memory budget (vLLM, SGLang, TensorRT-LLM)."""
        return self.kind in ("vllm", "sglang", "trtllm")

    def with_options(self, **knobs: Any) -> EngineSpec:
        """Return a copy with some rules overridden (validated again).

        Engine knob names (``gpu_memory_utilization``, ``mem_fraction_static``,
        ``free_gpu_memory_fraction``, ``tokens_per_block``, ``n_ubatch``,
        ``max_num_tokens``, ``flash_attn``, ``enforce_eager``) are accepted
        beside the field names.

        Raises
        ------
        ValueError
            Unknown knob (close matches listed) or a value out of range.

        Examples
        --------
        >>> from vramcore import get_engine
        >>> get_engine("vllm").with_options(gpu_memory_utilization=0.95).mem_fraction
        0.95
        """
        changes: dict[str, Any] = {}
        valid = {f.name for f in fields(self)}
        for key, value in knobs.items():
            if key == "enforce_eager":
                if value:
                    changes["cuda_graph_bytes"] = 0
                continue
            if key == "gradient_checkpointing":          # transformers TrainingArguments
                changes["recompute"] = "full" if value else "none"
                continue
            if key == "fsdp":                            # PyTorch FSDP sharding strategy
                if value not in FSDP_STRATEGIES:
                    raise ValueError(f"fsdp must be one of {list(FSDP_STRATEGIES)}, got {value!r}")
                changes["zero"] = FSDP_STRATEGIES[value]
                continue
            field = _KNOB_ALIASES.get(key, key)
            if field not in valid or field == "name":
                import difflib

                options = sorted((valid - {"name"}) | set(_KNOB_ALIASES)
                                 | {"flash_attn", "enforce_eager", "gradient_checkpointing", "fsdp"})
                close = difflib.get_close_matches(key, options, n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ValueError(f"unknown engine option {key!r} for engine {self.name!r}{hint}")
            changes[field] = value
        return replace(self, **changes)


#: Engine kinds that run a model with cross-attention layers (Llama-3.2-Vision, ``mllama``), with their cache
#: rule known.  vLLM ran MllamaForConditionalGeneration on its V0 engine only (an encoder-decoder cache: every
#: request's encoder tokens in cross-attention blocks of the shared pool, vllm/model_executor/models/mllama.py)
#: and dropped it with V0 (vllm/model_executor/models/registry.py, _PREVIOUSLY_SUPPORTED_MODELS:
#: "MllamaForConditionalGeneration": "0.10.2", vllm-project/vllm#24907); the V1 engine modelled here runs it
#: in no release.  SGLang's, TensorRT-LLM's and llama.cpp's rules are not modelled yet (upstream llama.cpp has
#: no mllama), nor what a training step saves in those layers.
CROSS_ATTENTION_KINDS: tuple[str, ...] = ("transformers",)


#: Engines whose rule for KV-sharing layers (Gemma-3n ``num_kv_shared_layers``) is read from their source: transformers
#: (``Gemma3nTextAttention`` skips ``cache.update`` in them), vLLM (``kv_sharing_target_layer_name``: no KV-cache
#: spec of their own), llama.cpp (``n_layer_kv_from_start``) and the training engine (transformers' forward).
KV_SHARING_KINDS: tuple[str, ...] = ("transformers", "vllm", "llamacpp", "train")

#: llama.cpp's gemma3n loader hard-codes the layers that own a KV cache (src/llama-model.cpp, LLM_ARCH_GEMMA3N:
#: ``hparams.n_layer_kv_from_start = 20``) instead of reading the shared-layer count.
LLAMACPP_GEMMA3N_KV_LAYERS = 20


def check_kv_sharing(spec: Any, engine: Any) -> None:
    """Refuse a model with KV-sharing layers under an engine whose rule for them is not modelled.

    Raises
    ------
    ValueError
        `spec` has ``kv_shared_layers`` and `engine` is not of a kind in :data:`KV_SHARING_KINDS`, or is
        llama.cpp and the layers that own a cache are not the :data:`LLAMACPP_GEMMA3N_KV_LAYERS` its loader
        assumes.
    """
    shared = getattr(spec, "kv_shared_layers", 0)
    if not shared:
        return
    if engine.kind not in KV_SHARING_KINDS:
        raise ValueError(f"model {spec.name!r} shares KV in its last {shared} layers (model_type "
                         f"{spec.model_type or 'gemma3n_text'!r}) and engine {engine.name!r} ({engine.kind}) cannot "
                         f"be estimated for it: how {engine.kind} caches KV-sharing layers is not modelled yet; "
                         f"engines that can: {', '.join(KV_SHARING_KINDS)}")
    owners = spec.num_layers - shared
    if engine.kind == "llamacpp" and owners != LLAMACPP_GEMMA3N_KV_LAYERS:
        raise ValueError(f"model {spec.name!r}: llama.cpp's gemma3n loader gives the first "
                         f"{LLAMACPP_GEMMA3N_KV_LAYERS} layers a KV cache whatever the config says, but "
                         f"num_layers - kv_shared_layers is {owners}; its cache is not modelled for this geometry")


def check_towers(spec: Any, engine: Any) -> None:
    """Refuse a model with Gemma-3n's towers under an engine whose handling of them is not modelled.

    The MobileNetV5 vision tower (a CNN) and the audio tower are counted as transformers builds them; vLLM's
    encoder profile is modelled for ViT towers only, so vLLM takes such a model in its text-only mode alone
    (``limit_mm_per_prompt`` 0, when vLLM builds no tower); llama.cpp's Gemma-3n projector files are not
    modelled.

    Raises
    ------
    ValueError
        `spec` has an audio tower or a ``"mobilenetv5"`` vision tower and `engine` is neither transformers nor
        vLLM in text-only mode.
    """
    vision = getattr(spec, "vision", None)
    if getattr(spec, "audio", None) is None and (vision is None or vision.kind != "mobilenetv5"):
        return
    if engine.kind == "transformers" or (engine.kind == "vllm" and engine.limit_mm_per_prompt == 0):
        return
    how = ("vLLM's profile of a MobileNetV5 / audio encoder is not modelled: use limit_mm_per_prompt=0 (vLLM's "
           "text-only mode, no tower loaded)") if engine.kind == "vllm" else \
        f"how {engine.kind} holds Gemma-3n's vision and audio towers is not modelled"
    raise ValueError(f"model {spec.name!r} has Gemma-3n's vision (MobileNetV5) and audio towers and engine "
                     f"{engine.name!r} cannot be estimated for it: {how}; its text_config alone can be")


def resolve_attention(spec: Any, engine: Any) -> str:
    """Return the attention implementation `engine` runs `spec` with: ``"sdpa"``, ``"flash"`` or ``"eager"``.

    ``"auto"`` resolves as transformers resolves ``attn_implementation=None``: sdpa where the model's class
    supports it (:attr:`ModelSpec.sdpa_supported`), else eager.  Only the transformers and training engines
    read it; the serving engines run their own kernels.

    Raises
    ------
    ValueError
        ``"sdpa"`` or ``"flash"`` asked of a model whose class has no such path (transformers raises too:
        ``get_correct_attn_implementation``, ``_flash_attn_2_can_dispatch``).
    """
    impl = engine.attention
    if impl == "auto":
        return "sdpa" if spec.sdpa_supported else "eager"
    for name, supported in (("sdpa", spec.sdpa_supported), ("flash", spec.flash_supported)):
        if impl == name and not supported:
            raise ValueError(f"EngineSpec.attention {name!r} is refused for model {spec.name!r} (model_type "
                             f"{spec.model_type!r}): its transformers class does not support {name} "
                             f"(ModelSpec.{name}_supported False; transformers raises the same); use 'auto' or "
                             f"'eager'")
    return str(impl)


def engine_attention(spec: Any, engine: Any) -> str | None:
    """Return :func:`resolve_attention` under the transformers and training engines, None under the others."""
    return resolve_attention(spec, engine) if engine.kind in ("transformers", "train") else None


def attention_code(spec: Any, engine: Any) -> int:
    """Return :func:`engine_attention` as the kernel codes it (:data:`ATTENTION_CODES`); 0 for serving engines."""
    impl = engine_attention(spec, engine)
    return 0 if impl is None else ATTENTION_CODES[impl]


def check_cross_attention(spec: Any, engine: Any) -> None:
    """Refuse a model with cross-attention layers under an engine whose rule for them is not modelled.

    Raises
    ------
    ValueError
        `spec` has ``"cross_attention"`` layers and `engine` is a serving engine not of a kind in
        :data:`CROSS_ATTENTION_KINDS`.
    """
    # the training engine refuses them in its own check (vramcore.engines.train.check_trainable), beside its other
    # refusals, in one order whichever path runs first
    if not getattr(spec, "n_cross_layers", 0) or engine.kind in (*CROSS_ATTENTION_KINDS, "train"):
        return
    why = {"vllm": "vLLM ran mllama on its V0 engine only, until v0.10.2; the V1 engine does not run it"}.get(
        engine.kind, f"how {engine.kind} caches those layers is not modelled yet")
    raise ValueError(f"model {spec.name!r} has {spec.n_cross_layers} cross-attention layers (model_type "
                     f"{spec.model_type or 'mllama'!r}) and engine {engine.name!r} ({engine.kind}) cannot be "
                     f"estimated for it: {why}; engines that can: {', '.join(CROSS_ATTENTION_KINDS)}")
