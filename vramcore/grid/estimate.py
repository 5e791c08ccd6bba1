"""One configuration: :func:`estimate`, through the scalar path (vramcore/grid/cell.py) over the kernel's formulas."""

from __future__ import annotations

import os

from vramcore._units import GB, GiB
from vramcore.engines import EngineSpec
from vramcore.grid.cell import estimate_cell
from vramcore.grid.record import Estimate
from vramcore.hardware.gpus import GPUSpec

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["GB", "Estimate", "GiB", "estimate"]


def estimate(model: Any, *, dtype: str = "auto", kv_dtype: str | None = None, context: int,
             batch: int = 1, gpu: str | GPUSpec | None = None, n_gpus: int = 1,
             engine: str | EngineSpec = "transformers", tp: int | None = None, pp: int | None = None,
             gpu_memory: str | int = "usable", images: int = 0,
             image_size: tuple[int, int] | None = None) -> Estimate:
    """Estimate the GPU memory of one inference configuration.

    Under the default engine, ``"transformers"``, the estimate assumes (each
    rule is a named field of :class:`vramcore.EngineSpec`, with its source,
    in ``vramcore/engines/``):

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
    images : int
        Images in each sequence (a multimodal model only).  Each adds the
        tokens its processor makes of it (:meth:`vramcore.VisionSpec.image_tokens`:
        Gemma-3 a fixed 256 + 2, Pixtral / Qwen-VL by resolution) to
        `context`; :attr:`Estimate.context` is the total.  Llama-3.2-Vision
        adds one ``<|image|>`` token each, and its cross-attention layers
        cache each image's ``max_tiles x ((image_size / patch)**2 + 1)``
        vision tokens (6,404 for 560-pixel tiles) once per sequence
        (:attr:`vramcore.VisionSpec.cross_tokens_per_image`).  Under
        transformers the prefill's activation peak is the larger of the
        decoder's (with the image embeddings it keeps) and the vision tower's
        over all ``batch x images`` images in one call, beside the prompt's
        embeddings (:attr:`vramcore.VisionSpec.transformers_encoder_phases`:
        Qwen2.5-VL, Qwen3-VL, Gemma-3, Pixtral, Llama-4 and
        Llama-3.2-Vision, measured; Pixtral's mask is quadratic in the
        patches of all the batch's images; Qwen3.5's peak is not counted
        yet).
    image_size : (int, int), optional
        Width and height of each image in pixels;
        :data:`vramcore.model.vision.DEFAULT_IMAGE_SIZE` (1024 x 1024) when left out.

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
    if images is not None and not (isinstance(images, int) and images == 0):
        model, context = _with_images(model, context, images, image_size)  # the model is read once
    return estimate_cell(model, dtype, kv_dtype, context, batch, gpu, n_gpus, engine, tp, pp, gpu_memory)


#: Most images one sequence may hold (a bound, far above any engine's limit).
MAX_IMAGES = 2**16


def _with_images(model: Any, context: Any, images: Any, image_size: Any) -> tuple[Any, int]:
    """Return `model` resolved and `context` plus the tokens of `images` images of `image_size` in its processor.

    A built-in name or Hugging Face id is returned as given (its Estimator is cached by name); anything else
    as the spec it was read into, so that a config file is not read a second time.
    """
    from vramcore.grid.resolve import resolve_model
    from vramcore.grid.validation import positive_int

    n = positive_int("images", images)
    if n > MAX_IMAGES:
        raise ValueError(f"images must be at most {MAX_IMAGES} per sequence, got {n}")
    ctx = positive_int("context", context)
    spec = resolve_model(model)
    if spec.vision is None:
        raise ValueError(f"images={n}: model {spec.name!r} has no vision tower (a text-only model)")
    if image_size is None:
        width = height = None
    elif (isinstance(image_size, (tuple, list)) and len(image_size) == 2):
        width, height = image_size
    else:
        raise ValueError(f"image_size must be (width, height) in pixels, got {image_size!r}")
    resolved = model if isinstance(model, str) and not os.path.exists(model) else spec
    vision = spec.vision
    if spec.n_cross_layers:
        # Llama-3.2-Vision: the images' vision tokens go to the cross-attention layers, cached once per sequence
        # (every image padded to max_tiles tiles: VisionSpec.cross_tokens_per_image)
        vision.image_tiles(width, height)  # the size is checked as for the other families
        resolved = spec = spec.replace(cross_attention_tokens=spec.cross_attention_tokens
                                       + n * vision.cross_tokens_per_image)
    if vision.transformers_encoder_phases is not None:
        # the tower's patches and embeddings, for the encoder's peak under transformers (read by that engine only)
        resolved = spec.replace(image_patches=n * vision.image_patches(width, height),
                                image_features=n * vision.image_features(width, height), image_count=n)
    return resolved, ctx + n * vision.image_tokens(width, height)
