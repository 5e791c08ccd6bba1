"""One configuration: :func:`estimate` and :class:`Estimate`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vramcore._validation import positive_int
from vramcore.engines import EngineSpec, get_engine
from vramcore.gpus import GPUSpec

__all__ = ["Estimate", "estimate", "GiB", "GB"]

GiB = 2**30  #: bytes in a gibibyte (what nvidia-smi's "MiB" and PyTorch report)
GB = 10**9  #: bytes in a gigabyte (what GPU marketing names)

@dataclass(frozen=True)
class Estimate:
    """Memory of one configuration.  Byte counts are floats holding exact integers up to 2**53.

    Attributes
    ----------
    model, dtype : str
        Model name and weight dtype.
    kv_dtype : str or None
        KV-cache dtype (None: the weight dtype's compute dtype).
    context, batch : int
        Tokens per sequence and concurrent sequences.
    gpu : str or None
        GPU name; None when no GPU was given (then ``gpu_bytes``, ``fits`` and
        ``headroom_bytes`` are None, and budgeted engines report no KV budget).
    n_gpus : int
        GPUs the model is spread over (``tp * pp``); every byte figure is per
        GPU, the most loaded one.
    engine : str
        Engine whose rules apply.
    weights_bytes : float
        Model weights.
    kv_cache_bytes : float
        KV cache of ``batch`` sequences of ``context`` tokens.
    activation_bytes : float
        Transient peak of the prefill forward pass, logits included.
    overhead_bytes : float
        CUDA context per GPU and allocator slack (see ``vramcore.engines``).
    total_bytes : float
        Sum of the four parts.
    gpu_bytes : float or None
        Usable memory of one GPU (CUDA-visible where known, else nvidia-smi total).
    fits : bool or None
        ``total_bytes <= gpu_bytes``.
    headroom_bytes : float or None
        ``gpu_bytes - total_bytes`` (negative when it does not fit).
    kv_capacity_tokens : float
        Tokens of KV cache the engine holds per layer: the allocated pool of
        vLLM / SGLang / TensorRT-LLM ("GPU KV cache size: N tokens"), llama.cpp's
        n_ctx, transformers' context x batch.
    kv_blocks : float
        KV blocks (pages) of the paged engines; 0 otherwise.
    max_concurrency : float or None
        Sequences of ``context`` tokens that fit at once (vLLM's "Maximum
        concurrency for N tokens per request").
    host_bytes : float
        Host memory the engine uses (llama.cpp: embeddings, layers not
        offloaded, the logits buffer).
    tp, pp : int
        Tensor- and pipeline-parallel degrees.
    weights_by_part : dict of str to float
        Stored weight bytes of the whole model by part (:data:`vramcore.PARTS`:
        embedding, attention, MLP, experts, norms, router, lm_head), before any
        tensor / pipeline split; empty when not computed.
    param_count : int
        Parameters of the model (0 when not computed).
    """

    model: str
    dtype: str
    kv_dtype: str | None
    context: int
    batch: int
    gpu: str | None
    n_gpus: int
    engine: str
    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float
    overhead_bytes: float
    total_bytes: float
    gpu_bytes: float | None
    fits: bool | None
    headroom_bytes: float | None
    kv_capacity_tokens: float = 0.0
    kv_blocks: float = 0.0
    max_concurrency: float | None = 0.0
    host_bytes: float = 0.0
    tp: int = 1
    pp: int = 1
    weights_by_part: dict[str, float] = field(default_factory=dict)
    param_count: int = 0

    @property
    def bits_per_weight(self) -> float:
        """Effective bits per parameter: whole-model weight bytes x 8 / ``param_count`` (0.0 if unknown).

        Examples
        --------
        >>> round(estimate("Llama-3.1-8B", dtype="Q4_K_M", context=1).bits_per_weight, 4)
        4.8944
        """
        if not self.param_count or not self.weights_by_part:
            return 0.0
        return sum(self.weights_by_part.values()) * 8 / self.param_count

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-serialisable dict."""
        return asdict(self)

    @property
    def total_gib(self) -> float:
        """Total in GiB (2**30 bytes)."""
        return self.total_bytes / GiB

    def __str__(self) -> str:
        def gib(x: float) -> str:
            return f"{x / GiB:10.2f} GiB  {x / GB:9.2f} GB"

        kv = self.kv_dtype or "compute dtype"
        par = f", tp={self.tp} pp={self.pp}" if self.n_gpus > 1 else ""
        head = (f"{self.model}: {self.dtype} weights, KV in {kv}, context {self.context:,} x batch "
                f"{self.batch:,}, engine {self.engine}{par}")
        rows = [
            ("weights", self.weights_bytes),
            ("KV cache", self.kv_cache_bytes),
            ("activations", self.activation_bytes),
            ("overhead", self.overhead_bytes),
            ("total", self.total_bytes),
        ]
        lines = [head] + [f"  {name:<12}{gib(v)}" for name, v in rows]
        if self.weights_by_part:
            parts = ", ".join(f"{p} {b / GiB:.2f}" for p, b in self.weights_by_part.items() if b)
            lines.insert(2, f"    {self.bits_per_weight:.4g} bits/weight; whole model by part (GiB): {parts}")
        if self.host_bytes:
            lines.append(f"  {'host':<12}{gib(self.host_bytes)}  in CPU memory")
        if self.kv_blocks:
            lines.append(f"  KV capacity {self.kv_capacity_tokens:,.0f} tokens in {self.kv_blocks:,.0f} blocks; "
                         f"max concurrency {self.max_concurrency:.2f}x at {self.context:,} tokens")
        if self.gpu is not None and self.gpu_bytes is not None and self.headroom_bytes is not None:
            per = " per GPU" if self.n_gpus > 1 else ""
            lines.append(f"  {'GPU':<12}{gib(self.gpu_bytes)}  usable on {self.gpu}{per}")
            verdict = "fits" if self.fits else "does NOT fit"
            lines.append(f"  {verdict}: headroom {self.headroom_bytes / GiB:.2f} GiB")
        return "\n".join(lines)


def estimate(model: Any, *, dtype: str = "auto", kv_dtype: str | None = None, context: int,
             batch: int = 1, gpu: str | GPUSpec | None = None, n_gpus: int = 1,
             engine: str | EngineSpec = "transformers", tp: int | None = None, pp: int | None = None,
             gpu_memory: str | int = "usable") -> Estimate:
    """Estimate the GPU memory of one inference configuration.

    Under the default engine, ``"transformers"``, the estimate assumes (each
    rule is a named field of :class:`vramcore.EngineSpec`, with its source,
    in ``vramcore/engines.py``):

    - weights: exact parameter counts by part (tied tensors once); integer /
      fp8 dtypes store the linear layers at their width and keep the
      embedding, norms, router and lm_head in the 16-bit compute dtype; no
      quantization scales are counted; quantization *formats* (GPTQ, AWQ,
      bitsandbytes, fp8 with scales, MXFP4, NVFP4, GGUF file types) count the
      exact bytes every tensor is stored in, scales and zero points included;
    - KV cache: transformers' ``DynamicCache``: ``2 x kv_heads x head_dim``
      elements per token and layer, sliding-window layers keep ``window - 1``
      tokens, MLA caches its compressed latent (``kv_lora_rank + rope dim``);
      by default in the compute dtype (bf16 for quantized weights);
    - activations: the transient peak of one forward pass over the whole
      prompt with fused SDPA / flash attention (no ``context x context``
      score matrix), plus the last-position logits that ``generate()`` keeps
      (and its fp32 copy);
    - overhead: 512 MiB of CUDA context per GPU and 5 % allocator slack on
      the KV cache and activations;
    - GPU memory: CUDA-visible bytes where known, else the nvidia-smi total.

    The serving engines (``"vllm"``, ``"sglang"``, ``"trtllm"``) size the KV
    cache from a memory budget: ``kv_cache_bytes`` is what they allocate and
    ``fits`` means the budget holds ``batch`` sequences of ``context`` tokens;
    ``"llamacpp"`` allocates ``n_ctx = context x batch`` cells up front.

    Parameters
    ----------
    model : str, ModelSpec, ModelCard, dict, path, GGUFModel or SafetensorsCheckpoint
        Built-in name, spec, card, ``config.json`` dict, a path to a config
        file, to a folder holding one or to a ``.gguf`` file, or a file read
        with :func:`vramcore.read_gguf` / :func:`vramcore.read_safetensors`.
    dtype : str
        Weight dtype: fp32, fp16, bf16, fp8_e4m3 (fp8), fp8_e5m2, int8, int4,
        or a quantization format (``"gptq-int4-g128"``, ``"awq-int4-g128"``,
        ``"bnb-nf4-dq"``, ``"fp8-block128"``, ``"mxfp4"``, ``"nvfp4"``,
        ``"Q4_K_M"`` ...; see ``vramcore.list_dtypes("all")``).  ``"auto"``
        (default): the model's own format (its ``quantization_config``, a GGUF
        file's tensors), else bf16; :attr:`Estimate.dtype` names the result.
    kv_dtype : str, optional
        KV-cache dtype; None uses the compute dtype.
    context : int
        Tokens per sequence (prompt plus generated tokens).
    batch : int
        Concurrent sequences.
    gpu : str or GPUSpec, optional
        GPU to check the fit against; None skips the fit.
    n_gpus : int
        GPUs the model is spread over (see :func:`vramcore.sweep`); figures are per GPU.
    engine : str or EngineSpec
        Allocation rules (see :func:`vramcore.list_engines`).
    tp, pp : int, optional
        Tensor- and pipeline-parallel degrees.
    gpu_memory : {"usable", "cuda_visible", "total"} or int
        Which per-GPU memory figure to check against.

    Returns
    -------
    Estimate

    Raises
    ------
    ValueError
        Unknown model / dtype / GPU / engine (with close matches), a context,
        batch or n_gpus that is not a positive integer, or a parallel layout
        the model does not allow.
    TypeError
        An argument of the wrong type.

    Examples
    --------
    >>> e = estimate("DeepSeek-R1-Distill-Llama-8B", context=8192, gpu="H100")
    >>> int(e.weights_bytes), int(e.kv_cache_bytes)
    (16060522496, 1073741824)
    >>> e.fits
    True
    """
    from dataclasses import replace

    from vramcore._sweep import sweep

    context = positive_int("context", context)
    batch = positive_int("batch", batch)
    if isinstance(engine, (list, tuple)):
        raise TypeError("engine must be one engine name or EngineSpec; use vramcore.sweep to compare engines")
    if gpu is None and get_engine(engine).budgeted:
        raise ValueError(f"engine {get_engine(engine).name!r} sizes its KV cache from the GPU's memory; pass gpu=")
    target: str | GPUSpec = (gpu if gpu is not None else
                             GPUSpec(name="none", vendor="none", memory_total_bytes=2**62, source="placeholder"))
    s = sweep(model, dtype, context, batch, target, kv_dtype=kv_dtype, engine=engine, n_gpus=n_gpus, tp=tp,
              pp=pp, gpu_memory=gpu_memory if gpu is not None else "usable", n_threads=1)
    cell = s.cell(0, 0, 0, 0, 0)
    if gpu is None:
        # nothing that depends on the GPU's memory is meaningful without one
        return replace(cell, gpu=None, gpu_bytes=None, fits=None, headroom_bytes=None, max_concurrency=None)
    return cell
