"""The grid API: :func:`sweep` and :class:`Sweep`, plus the argument resolution it shares with estimate."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from vramcore import _kernel, _pack, _validation
from vramcore.dtypes import DType, get_dtype
from vramcore.engines import EngineSpec, get_engine
from vramcore.gpus import GPUSpec, get_gpu
from vramcore.models import ModelCard, get_model, is_model_name
from vramcore.specs import ModelSpec

if TYPE_CHECKING:
    import pandas

__all__ = ["FIELDS", "DIMS", "Sweep", "sweep", "resolve_model"]

#: Result fields, in the order of :class:`vramcore.Estimate`.
FIELDS: tuple[str, ...] = ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes",
                           "total_bytes", "gpu_bytes", "fits", "headroom_bytes")
#: Axis names of a sweep.
DIMS: tuple[str, ...] = ("model", "dtype", "context", "batch", "gpu")

#: Cells computed per kernel call; between chunks Ctrl-C is honoured.
CHUNK_CELLS = 1 << 22

ModelLike = str | ModelSpec | ModelCard | Mapping[str, Any] | PathLike[str]


def resolve_model(model: Any, argname: str = "model") -> ModelSpec:
    """Turn a built-in name, a card, a spec, a config dict or a config path into a :class:`ModelSpec`.

    Raises
    ------
    ValueError
        Unknown name (close matches listed) or unreadable config.
    TypeError
        Any other type.
    """
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, ModelCard):
        return model.spec
    if isinstance(model, Mapping):
        return ModelSpec.from_hf_config(model)
    if isinstance(model, PathLike):
        return ModelSpec.from_hf_config(model)
    if isinstance(model, str):
        if is_model_name(model):
            return get_model(model).spec
        if os.path.exists(model):
            return ModelSpec.from_hf_config(model)
        return get_model(model).spec  # raises with close matches
    raise TypeError(f"{argname} must be a model name, ModelSpec, ModelCard, config dict or path, "
                    f"got {type(model).__name__}")


def _resolve_gpu(gpu: Any) -> GPUSpec:
    if isinstance(gpu, GPUSpec):
        return gpu
    return get_gpu(gpu)


@dataclass(frozen=True, eq=False)
class Sweep:
    """Results of :func:`sweep` over the grid (models, dtypes, contexts, batches, gpus).

    Every result field is a float64 (``fits``: bool) array of shape
    ``(len(models), len(dtypes), len(contexts), len(batches), len(gpus))``,
    named as in :class:`vramcore.Estimate`; byte counts are exact integers up
    to 2**53.  ``weights_bytes`` and ``gpu_bytes`` do not vary along most
    axes and are read-only broadcast views.

    Attributes
    ----------
    models, dtypes, gpus : tuple of str
        Axis labels.
    contexts, batches : numpy.ndarray
        Axis values (int64).
    specs : tuple of ModelSpec
        The resolved model specs.
    kv_dtype : str or None
        KV-cache dtype (None: each weight dtype's compute dtype).
    engine : EngineSpec
        The engine rules used.
    n_gpus : int
        GPUs per configuration.
    """

    models: tuple[str, ...]
    dtypes: tuple[str, ...]
    contexts: np.ndarray
    batches: np.ndarray
    gpus: tuple[str, ...]
    specs: tuple[ModelSpec, ...]
    kv_dtype: str | None
    engine: EngineSpec
    n_gpus: int
    weights_bytes: np.ndarray
    kv_cache_bytes: np.ndarray
    activation_bytes: np.ndarray
    overhead_bytes: np.ndarray
    total_bytes: np.ndarray
    gpu_bytes: np.ndarray
    fits: np.ndarray
    headroom_bytes: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        """Grid shape (models, dtypes, contexts, batches, gpus)."""
        return self.total_bytes.shape  # type: ignore[return-value]

    @property
    def size(self) -> int:
        """Number of configurations."""
        return int(self.total_bytes.size)

    def cell(self, i: int, j: int, k: int, l: int, m: int) -> Any:  # noqa: E741
        """Return cell (i, j, k, l, m) as an :class:`vramcore.Estimate`."""
        from vramcore._estimate import Estimate

        idx = (i, j, k, l, m)
        return Estimate(
            model=self.models[i], dtype=self.dtypes[j], kv_dtype=self.kv_dtype,
            context=int(self.contexts[k]), batch=int(self.batches[l]), gpu=self.gpus[m],
            n_gpus=self.n_gpus, engine=self.engine.name,
            weights_bytes=float(self.weights_bytes[idx]), kv_cache_bytes=float(self.kv_cache_bytes[idx]),
            activation_bytes=float(self.activation_bytes[idx]),
            overhead_bytes=float(self.overhead_bytes[idx]), total_bytes=float(self.total_bytes[idx]),
            gpu_bytes=float(self.gpu_bytes[idx]), fits=bool(self.fits[idx]),
            headroom_bytes=float(self.headroom_bytes[idx]))

    def __iter__(self) -> Iterator[Any]:
        """Iterate over every cell as an Estimate (slow; for small grids)."""
        for idx in np.ndindex(*self.shape):
            yield self.cell(*idx)

    def to_pandas(self) -> pandas.DataFrame:
        """Long-format DataFrame: one row per cell, axis columns then result columns.

        Requires pandas (optional dependency, imported here).
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("Sweep.to_pandas() needs pandas: pip install 'vramcore[pandas]'") from exc
        idx = np.indices(self.shape).reshape(5, -1)
        columns: dict[str, Any] = {
            "model": np.asarray(self.models, dtype=object)[idx[0]],
            "dtype": np.asarray(self.dtypes, dtype=object)[idx[1]],
            "context": self.contexts[idx[2]],
            "batch": self.batches[idx[3]],
            "gpu": np.asarray(self.gpus, dtype=object)[idx[4]],
        }
        for f in FIELDS:
            columns[f] = np.asarray(getattr(self, f)).reshape(-1)
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        return (f"Sweep(shape={self.shape}, models={list(self.models)}, dtypes={list(self.dtypes)}, "
                f"contexts={self.contexts.tolist()}, batches={self.batches.tolist()}, "
                f"gpus={list(self.gpus)}, engine={self.engine.name!r})")


def _compute(specs: Sequence[ModelSpec], dtypes: Sequence[DType], kv_dtype: DType | None,
             contexts: np.ndarray, batches: np.ndarray, gpu_bytes: np.ndarray, engine: EngineSpec,
             n_gpus: int, n_threads: int | None) -> dict[str, np.ndarray]:
    models_arr = _pack.pack_models(specs)
    dtypes_arr = _pack.pack_dtypes(dtypes, kv_dtype)
    engine_arr = _pack.pack_engine(engine, n_gpus)
    M, D, C, B, G = len(specs), len(dtypes), contexts.size, batches.size, gpu_bytes.size
    shape = (M, D, C, B, G)
    part_bytes = _pack.pack_weights(specs, dtypes)
    weights = np.empty((M, D), dtype=np.float64)
    _kernel.weights(part_bytes, weights)
    out: dict[str, np.ndarray] = {f: np.empty(shape, dtype=np.float64)
           for f in ("kv_cache_bytes", "activation_bytes", "overhead_bytes", "total_bytes",
                     "headroom_bytes")}
    fits = np.empty(shape, dtype=np.bool_)
    rows = M * D * C * B
    threads = _validation.n_threads(n_threads, rows * G)
    flat = {k: v.reshape(-1) for k, v in out.items()}
    fits_flat = fits.reshape(-1).view(np.uint8)
    rows_per_chunk = max(1, CHUNK_CELLS // max(G, 1))
    for start in range(0, rows, rows_per_chunk):
        _kernel.grid(models_arr, dtypes_arr, engine_arr, contexts, batches, gpu_bytes, weights,
                     flat["kv_cache_bytes"], flat["activation_bytes"], flat["overhead_bytes"],
                     flat["total_bytes"], flat["headroom_bytes"], fits_flat,
                     start, min(rows, start + rows_per_chunk), threads)
    out["fits"] = fits
    out["weights_bytes"] = np.broadcast_to(weights[:, :, None, None, None], shape)
    out["gpu_bytes"] = np.broadcast_to(gpu_bytes[None, None, None, None, :], shape)
    return out


def sweep(models: ModelLike | Sequence[ModelLike], dtypes: str | Sequence[str] = "bf16",
          contexts: int | Sequence[int] = 4096, batches: int | Sequence[int] = 1,
          gpus: str | GPUSpec | Sequence[str | GPUSpec] = "H100-SXM-80GB", *,
          kv_dtype: str | None = None, engine: str | EngineSpec = "transformers", n_gpus: int = 1,
          n_threads: int | None = None) -> Sweep:
    """Estimate memory for every configuration of a Cartesian grid, in the compiled kernel.

    The grid is never materialised: the kernel decodes each cell's axis
    indices from its flat position and writes straight into the result arrays.
    Each cell equals :func:`vramcore.estimate` for the same inputs.

    Parameters
    ----------
    models : model or sequence of models
        Built-in names, :class:`ModelSpec`, :class:`ModelCard`, config dicts or paths.
    dtypes : str or sequence of str
        Weight dtypes (see :func:`vramcore.list_dtypes`).
    contexts : int or sequence of int
        Tokens per sequence (prompt plus generated), each >= 1.
    batches : int or sequence of int
        Concurrent sequences, each >= 1.
    gpus : str, GPUSpec or sequence of them
        GPU names (see :func:`vramcore.list_gpus`) or custom specs.
    kv_dtype : str, optional
        KV-cache dtype for every cell; None caches in each weight dtype's
        compute dtype (bf16 for quantized weights).
    engine : str or EngineSpec
        Allocation rules; ``"transformers"`` (default).
    n_gpus : int
        GPUs per configuration; their memory adds up and each pays the CUDA context.
    n_threads : int, optional
        Kernel threads; None uses one thread for small grids and every core for
        large ones.  Results are identical for any thread count.

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
    """
    model_list = _validation.as_list("models", models)
    specs = tuple(resolve_model(m, "models") for m in model_list)
    dtype_list = tuple(get_dtype(d, argname="dtypes") for d in _validation.as_list("dtypes", dtypes))
    kv = get_dtype(kv_dtype, argname="kv_dtype") if kv_dtype is not None else None
    ctx = _validation.positive_counts("contexts", contexts)
    bat = _validation.positive_counts("batches", batches)
    gpu_list = tuple(_resolve_gpu(g) for g in _validation.as_list("gpus", gpus))
    eng = get_engine(engine)
    n = _validation.positive_int("n_gpus", n_gpus)
    gpu_bytes = np.array([float(g.usable_bytes) * n for g in gpu_list], dtype=np.float64)
    out = _compute(specs, dtype_list, kv, ctx, bat, gpu_bytes, eng, n, n_threads)
    return Sweep(
        models=tuple(s.name for s in specs), dtypes=tuple(d.name for d in dtype_list),
        contexts=ctx.astype(np.int64), batches=bat.astype(np.int64),
        gpus=tuple(g.name for g in gpu_list), specs=specs,
        kv_dtype=kv.name if kv is not None else None, engine=eng, n_gpus=n, **out)
