"""The grid API: :func:`sweep`, every configuration of a Cartesian grid in the compiled kernel."""

from __future__ import annotations

from collections.abc import Sequence

from vramcore.engines import EngineSpec
from vramcore.grid.resolve import Counts, ModelLike
from vramcore.grid.results import DIMS, FIELDS, Sweep
from vramcore.grid.run import run_sweep
from vramcore.hardware.gpus import GPUSpec

__all__ = ["DIMS", "FIELDS", "Sweep", "sweep"]


def sweep(models: ModelLike | Sequence[ModelLike], dtypes: str | Sequence[str] = "auto",
          contexts: Counts = 4096, batches: Counts = 1,
          gpus: str | GPUSpec | Sequence[str | GPUSpec] = "H100-SXM-80GB", *,
          kv_dtype: str | None = None, engine: str | EngineSpec | Sequence[str | EngineSpec] = "transformers",
          n_gpus: int = 1, tp: int | None = None, pp: int | None = None, gpu_memory: str | int = "usable",
          n_threads: int | None = None, progress: bool | None = None,
          fields: Sequence[str] | None = None) -> Sweep:
    """Estimate memory for every configuration of a Cartesian grid, in the compiled kernel.

    The grid is never materialised: the kernel decodes each cell's axis
    indices from its flat position and writes straight into the result arrays.
    Each cell equals :func:`vramcore.estimate` for the same inputs.

    Parameters
    ----------
    models : model or sequence of models
        Built-in names, :class:`ModelSpec`, :class:`ModelCard`, config dicts or paths.
    dtypes : str or sequence of str
        Weight dtypes or quantization formats (see :func:`vramcore.list_dtypes`,
        ``list_dtypes("all")``): ``"bf16"``, ``"int4"``, ``"gptq-int4-g128"``,
        ``"Q4_K_M"`` ...  ``"auto"`` (default): each model's own format (a
        config's ``quantization_config``, a GGUF file's tensors), else bf16.
    contexts : int or sequence of int
        Tokens per sequence (prompt plus generated), each >= 1.
    batches : int or sequence of int
        Concurrent sequences, each >= 1.
    gpus : str, GPUSpec or sequence of them
        GPU names (see :func:`vramcore.list_gpus`) or custom specs.
    kv_dtype : str, optional
        KV-cache dtype for every cell; None caches in each weight dtype's
        compute dtype (bf16 for quantized weights).
    engine : str, EngineSpec or a sequence of them
        Allocation rules (see :func:`vramcore.list_engines`); a sequence adds a
        trailing "engine" axis so that one sweep compares engines.
    n_gpus : int
        GPUs per configuration: pipeline stages for transformers / llama.cpp,
        tensor-parallel ranks for vLLM / SGLang / TensorRT-LLM unless `tp` /
        `pp` say otherwise.  Every figure is per GPU (the most loaded one).
    tp, pp : int, optional
        Tensor- and pipeline-parallel degrees (``n_gpus = tp * pp``).
    gpu_memory : {"usable", "cuda_visible", "total"} or int
        Which per-GPU memory figure results are checked against: CUDA-visible
        where known else nvidia-smi total (default), strictly CUDA-visible, the
        nvidia-smi total, or a number of bytes.
    n_threads : int, optional
        Kernel threads; None uses one thread for small grids and every core for
        large ones.  Results are identical for any thread count.
    progress : bool, optional
        Progress bar on stderr (needs tqdm, ``pip install 'vramcore[progress]'``;
        a no-op without it).  None (default) shows it for grids of at least
        ``2**23`` cells when stderr is a terminal; False never; True always.
        Grids run in chunks of ``CHUNK_CELLS`` cells; Ctrl-C stops between
        chunks with a ``KeyboardInterrupt`` that says how far it got.
    fields : sequence of str, optional
        Fields on demand: compute and write only these result fields
        (:data:`FIELDS` names, e.g. ``("total_bytes", "fits")``); the others
        are None on the Sweep (:meth:`Sweep.field` says which were computed).
        A verdict-only sweep writes one byte a cell instead of about 120.
        Default: every field.

    Returns
    -------
    Sweep

    Raises
    ------
    ValueError, TypeError
        Any invalid argument, named with its value.

    Examples
    --------
    >>> s = sweep("DeepSeek-R1-Distill-Llama-8B", ["bf16", "int4"], [4096, 32768], [1, 8],
    ...           ["H100-SXM-80GB", "RTX-4090"])
    >>> s.shape
    (1, 2, 2, 2, 2)
    >>> int(s.kv_cache_bytes[0, 0, 1, 0, 0])  # 32768 tokens x 128 KiB per token
    4294967296
    >>> sweep("Llama-3.1-8B", contexts=16000, engine=["transformers", "vllm"]).dims[-1]
    'engine'
    >>> sweep("Qwen3-8B", "bf16", [4096, 131072], 8, "RTX-4090", fields=("fits",)).fields  # gpu_bytes: a view
    ('gpu_bytes', 'fits')
    """
    return run_sweep(models, dtypes, contexts, batches, gpus, kv_dtype=kv_dtype, engine=engine, n_gpus=n_gpus,
                     tp=tp, pp=pp, gpu_memory=gpu_memory, n_threads=n_threads, progress=progress, fields=fields)
