"""One configuration's result, :class:`Estimate`, and the verdict codes: the part of the results without numpy.

:func:`vramcore.estimate` and the CLI's ``estimate`` build an Estimate without
importing numpy (the scalar path, :mod:`vramcore.grid.cell`); a sweep's cell is
the same class (:mod:`vramcore.grid.results` re-exports everything here).
"""

from __future__ import annotations

from functools import lru_cache

from vramcore._record import Record, asdict, field, record
from vramcore._units import GB, GiB

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["BLOCKING_REASONS", "FIELDS", "GPU_REASONS", "REASONS", "Estimate", "reason_names"]

#: Why a configuration does not fit, or what to know about it: bit ``1 << i`` of a
#: ``reasons`` code is ``REASONS[i]`` (the VC_WHY_* bits of include/vramcore/common.h).
REASONS: tuple[str, ...] = (
    "weights_exceed_gpu",             # the weights alone exceed the GPU
    "total_exceeds_gpu",              # weights + KV cache + activations + overhead exceed the GPU
    "no_kv_budget",                   # vLLM / SGLang / TensorRT-LLM: nothing is left for the KV cache
    "kv_below_batch",                 # ... the KV cache holds fewer than `batch` sequences of `context`
    "kv_below_max_model_len",         # vLLM: the cache cannot hold one max_model_len sequence: it will not start
    "context_beyond_max_model_len",   # the engine refuses a context longer than its max_model_len
    "context_beyond_trained_length",  # advisory: longer than the model was trained for (max_position_embeddings)
    "approximate",                    # advisory: a byte count above 2**53, so rounded to the nearest double
    "format_not_runnable_on_engine",  # the engine does not load this weight format as stored (GGUF under vLLM ok,
                                      # under transformers dequantized; GPTQ under llama.cpp converted first)
    "dtype_unsupported_on_gpu",       # FP8 weights / KV on a GPU without hardware FP8 (A100, T4 ...) under an
                                      # engine that needs it (transformers, TensorRT-LLM)
)
#: The reasons that make ``fits`` False (the others are advice).
BLOCKING_REASONS: frozenset[str] = frozenset((*REASONS[:6], REASONS[8], REASONS[9]))
#: The reasons that need a GPU's memory to be decided (left out of an estimate without a GPU).
GPU_REASONS: frozenset[str] = frozenset((*REASONS[:5], REASONS[9]))


@lru_cache(maxsize=4096)
def reason_names(code: int) -> tuple[str, ...]:
    """Return the names of the bits set in a ``reasons`` code, in :data:`REASONS` order.

    Examples
    --------
    >>> reason_names(2 | 64)
    ('total_exceeds_gpu', 'context_beyond_trained_length')
    """
    return tuple(name for i, name in enumerate(REASONS) if int(code) >> i & 1)

#: Result fields, in the order of :class:`vramcore.Estimate`.
FIELDS: tuple[str, ...] = ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes",
                           "total_bytes", "gpu_bytes", "fits", "headroom_bytes", "kv_capacity_tokens",
                           "kv_blocks", "max_concurrency", "host_bytes", "gradients_bytes", "optimizer_bytes",
                           "master_weights_bytes", "trainable_params", "state_bytes", "reasons")
@record(frozen=True, repr=False, eq=False)
class Estimate(Record):
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
        Memory to spare: ``gpu_bytes - total_bytes`` (negative when memory is
        short).  For the engines that size their KV cache from a budget
        (vLLM, SGLang, TensorRT-LLM) the pool always fills the memory, so
        headroom is what the pool has beyond the request -- ``batch``
        sequences of ``context`` and, for vLLM, one of ``max_model_len`` --
        negative when the pool is short by that much.
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
        offloaded, the logits buffer; training: offloaded optimizer states,
        master weights, fp32 gradients and ZeRO-3 parameters, per GPU).
    gradients_bytes, optimizer_bytes, master_weights_bytes : float
        Training engines: gradients (16-bit, and DeepSpeed's fp32 partition),
        optimizer states and fp32 master weights on the GPU; 0 for inference.
        ``activation_bytes`` is then what autograd saves for backward plus the
        backward's transient peak, logits and loss buffers included.
    trainable_params : float
        Training engines: trainable parameters of the whole model (LoRA: the
        adapters, as peft counts them); 0 for inference.
    state_bytes : float
        Hybrid models (recurrent layers): the fixed-size states of the
        ``batch`` sequences, whatever the context.  transformers and llama.cpp
        hold them beside the KV cache, SGLang (a MambaPool of its whole slots)
        and TensorRT-LLM (one slot per request of max_batch_size) in a pool of
        their own, all counted in ``total_bytes``; vLLM pages them in the KV
        pool, so they are the part of ``kv_cache_bytes`` the request's states
        take.  0 for models without recurrent layers.
    tp, pp : int
        Tensor- and pipeline-parallel degrees.
    weights_by_part : dict of str to float
        Stored weight bytes of the whole model by part (:data:`vramcore.PARTS`:
        embedding, attention, MLP, experts, norms, router, lm_head), before any
        tensor / pipeline split; empty when not computed.
    param_count : int
        Parameters of the model (0 when not computed).
    reasons : tuple of str
        Why it does not fit, and what to know (:data:`REASONS`): e.g.
        ``("kv_below_max_model_len",)``; empty when it fits without remark.
        Without a GPU only the advisory ``context_beyond_trained_length``
        can appear.
    attention : str or None
        The attention implementation the transformers and training engines
        run this model with (``"sdpa"``, ``"flash"`` or ``"eager"``:
        :attr:`vramcore.EngineSpec.attention` resolved, ``"auto"`` being eager
        for a model without sdpa); None under the serving engines.
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
    gradients_bytes: float = 0.0
    optimizer_bytes: float = 0.0
    master_weights_bytes: float = 0.0
    trainable_params: float = 0.0
    state_bytes: float = 0.0
    tp: int = 1
    pp: int = 1
    weights_by_part: dict[str, float] = field(default_factory=dict)
    param_count: int = 0
    reasons: tuple[str, ...] = ()
    attention: str | None = None

    @property
    def verdict(self) -> str:
        """One line: ``"fits"``, ``"does not fit: kv_below_batch"``, or ``"no GPU given"``; advice after ``;``.

        Examples
        --------
        >>> from vramcore import estimate
        >>> estimate("Qwen3-8B", context=131072, gpu="RTX-4090").verdict
        'does not fit: total_exceeds_gpu; note: context_beyond_trained_length'
        """
        blocking = [r for r in self.reasons if r in BLOCKING_REASONS]
        notes = [r for r in self.reasons if r not in BLOCKING_REASONS]
        head = "no GPU given" if self.fits is None else "fits" if self.fits else "does not fit"
        if blocking:
            head += ": " + ", ".join(blocking)
        return head + ("; note: " + ", ".join(notes) if notes else "")

    @property
    def bits_per_weight(self) -> float:
        """Effective bits per parameter: whole-model weight bytes x 8 / ``param_count`` (0.0 if unknown).

        Examples
        --------
        >>> from vramcore import estimate
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
    def _states_in_cache(self) -> bool:
        """True when the recurrent states are pages of the KV pool (vLLM): the total does not add them again."""
        parts = self.weights_bytes + self.kv_cache_bytes + self.activation_bytes + self.overhead_bytes
        return abs(self.total_bytes - parts) < abs(self.total_bytes - parts - self.state_bytes)

    @property
    def total_gib(self) -> float:
        """Total in GiB (2**30 bytes)."""
        return self.total_bytes / GiB

    def __str__(self) -> str:
        def gib(x: float) -> str:
            return f"{x / GiB:10.2f} GiB  {x / GB:9.2f} GB"

        kv = self.kv_dtype or "compute dtype"
        par = f", tp={self.tp} pp={self.pp}" if self.n_gpus > 1 else ""
        # an attention other than sdpa is named: its scores (eager) or their absence (flash) show in the figures
        att = f", {self.attention} attention" if self.attention not in (None, "sdpa") else ""
        head = (f"{self.model}: {self.dtype} weights, KV in {kv}, context {self.context:,} x batch "
                f"{self.batch:,}, engine {self.engine}{att}{par}")
        training = self.gradients_bytes or self.optimizer_bytes or self.trainable_params
        if training:
            head = (f"{self.model}: {self.dtype} weights, sequence {self.context:,} x micro-batch {self.batch:,}, "
                    f"engine {self.engine}{att}{par}")
            rows = [("weights", self.weights_bytes), ("gradients", self.gradients_bytes),
                    ("optimizer", self.optimizer_bytes), ("master", self.master_weights_bytes),
                    ("activations", self.activation_bytes), ("overhead", self.overhead_bytes),
                    ("total", self.total_bytes)]
        else:
            rows = [
                ("weights", self.weights_bytes),
                ("KV cache", self.kv_cache_bytes),
                *([("states", self.state_bytes)] if self.state_bytes and not self._states_in_cache else []),
                ("activations", self.activation_bytes),
                ("overhead", self.overhead_bytes),
                ("total", self.total_bytes),
            ]
        lines = [head] + [f"  {name:<12}{gib(v)}" for name, v in rows]
        if self.state_bytes and self._states_in_cache and not training:  # vLLM pages the states in its pool
            lines.insert(3, f"    of which {self.state_bytes / GiB:.2f} GiB the sequences' recurrent states")
        if training:
            share = f" ({self.trainable_params / self.param_count:.2%} of {self.param_count:,})" \
                if self.param_count else ""
            lines.insert(1, f"  trainable {self.trainable_params:,.0f} parameters{share}")
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
            blocking = [r for r in self.reasons if r in BLOCKING_REASONS]
            if blocking:
                lines.append(f"  because: {', '.join(blocking)}")
        notes = [r for r in self.reasons if r not in BLOCKING_REASONS]
        if notes:
            lines.append(f"  note: {', '.join(notes)}")
        return "\n".join(lines)
