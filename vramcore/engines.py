"""Engines: the allocation rules of the program that runs the model.

Each assumption the estimate makes lives here, once, as a named field with its
source.  An :class:`EngineSpec` is packed into the kernel's ``vc_engine``
struct (include/vramcore/formulas.h).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from vramcore._names import lookup, normalize_name

__all__ = ["EngineSpec", "get_engine", "list_engines"]

MiB = 2**20


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """Allocation rules of one inference engine.

    Parameters
    ----------
    name : str
        Engine name.
    sliding_cap_offset : int
        A sliding-window layer keeps at most ``window + sliding_cap_offset``
        tokens.
    mla_compressed : bool
        MLA layers cache the compressed latent (``kv_lora_rank + rope dim``
        per token) instead of per-head K and V.
    full_logits : bool
        The forward pass over the prompt computes logits for every position
        (``model(input_ids)``) rather than for the last one (``generate()``).
    cuda_context_bytes : int
        Device memory outside the tensor allocator, per GPU: CUDA context,
        kernels and library workspaces.
    allocator_reserve_fraction : float
        Caching-allocator slack (block rounding, fragmentation) as a fraction
        of KV cache + activations.
    """

    name: str
    sliding_cap_offset: int
    mla_compressed: bool
    full_logits: bool
    cuda_context_bytes: int
    allocator_reserve_fraction: float

    def __post_init__(self) -> None:
        if not isinstance(self.cuda_context_bytes, int) or self.cuda_context_bytes < 0:
            raise ValueError(f"EngineSpec.cuda_context_bytes must be an int >= 0, got "
                             f"{self.cuda_context_bytes!r}")
        frac = self.allocator_reserve_fraction
        if not isinstance(frac, (int, float)) or not 0.0 <= frac < 1.0:
            raise ValueError(f"EngineSpec.allocator_reserve_fraction must be in [0, 1), got {frac!r}")

    def with_options(self, **changes: Any) -> EngineSpec:
        """Return a copy with some rules overridden (validated again)."""
        return replace(self, **changes)


#: Hugging Face transformers (``AutoModelForCausalLM`` + ``generate()``), the default engine.
TRANSFORMERS = EngineSpec(
    name="transformers",
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
)

_ENGINES: tuple[EngineSpec, ...] = (TRANSFORMERS,)


def get_engine(name: str | EngineSpec) -> EngineSpec:
    """Return the engine called `name`; an :class:`EngineSpec` passes through.

    Raises
    ------
    ValueError
        Unknown engine (close matches listed).
    TypeError
        `name` is not a str.

    Examples
    --------
    >>> get_engine("transformers").sliding_cap_offset
    -1
    """
    if isinstance(name, EngineSpec):
        return name
    table = {normalize_name(e.name): e for e in _ENGINES}
    table[normalize_name("hf")] = TRANSFORMERS
    return lookup(name, table, what="engine", argname="engine")


def list_engines() -> list[str]:
    """Names of the engines vramcore models.

    Examples
    --------
    >>> list_engines()
    ['transformers']
    """
    return [e.name for e in _ENGINES]
