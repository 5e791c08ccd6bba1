"""The grid API: :func:`sweep` and :class:`Sweep`, plus the argument resolution it shares with estimate."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from vramcore import _kernel, _pack, _validation
from vramcore._progress import Chunks, check_progress
from vramcore.dtypes import DType, get_dtype
from vramcore.engines import EngineSpec, get_engine
from vramcore.gpus import GPUSpec, get_gpu
from vramcore.models import ModelCard, get_model, is_model_name
from vramcore.specs import ModelSpec

if TYPE_CHECKING:
    import pandas
    import xarray

__all__ = ["FIELDS", "DIMS", "Sweep", "sweep", "resolve_model"]

#: Result fields, in the order of :class:`vramcore.Estimate`.
FIELDS: tuple[str, ...] = ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes",
                           "total_bytes", "gpu_bytes", "fits", "headroom_bytes", "kv_capacity_tokens",
                           "kv_blocks", "max_concurrency", "host_bytes")
#: Axis names of a sweep (a sixth, "engine", when several engines are swept).
DIMS: tuple[str, ...] = ("model", "dtype", "context", "batch", "gpu")

#: Cells computed per kernel call; between chunks Ctrl-C is honoured.
CHUNK_CELLS = 1 << 22

ModelLike = str | ModelSpec | ModelCard | Mapping[str, Any] | PathLike[str]
#: Contexts / batches: one count, a sequence of counts, or a 1-D array.
Counts = int | Sequence[int] | np.ndarray


def resolve_model(model: Any, argname: str = "model") -> ModelSpec:
    """Turn a built-in name, a card, a spec, a config dict or a config path into a :class:`ModelSpec`.

    Also accepted: a ``.gguf`` file path (read with :func:`vramcore.read_gguf`)
    and any object with a ``spec`` attribute holding a ModelSpec (a
    :class:`vramcore.GGUFModel`, a :class:`vramcore.SafetensorsCheckpoint`).

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
    if isinstance(model, (str, PathLike)) and os.fspath(model).lower().endswith(".gguf"):
        from vramcore.io_gguf import read_gguf

        return read_gguf(model).spec
    if isinstance(model, PathLike):
        return ModelSpec.from_hf_config(model)
    if isinstance(model, str):
        if is_model_name(model):
            return get_model(model).spec
        if os.path.exists(model):
            return ModelSpec.from_hf_config(model)
        return get_model(model).spec  # raises with close matches
    if isinstance(getattr(model, "spec", None), ModelSpec):
        return model.spec
    if hasattr(model, "spec"):  # a safetensors checkpoint read without its config.json
        raise TypeError(f"{argname}: {type(model).__name__} has no spec (no config.json beside the files)")
    raise TypeError(f"{argname} must be a model name, ModelSpec, ModelCard, config dict or path, "
                    f"got {type(model).__name__}")


def _resolve_gpu(gpu: Any) -> GPUSpec:
    if isinstance(gpu, GPUSpec):
        return gpu
    return get_gpu(gpu)


def gpu_memory_bytes(gpu: GPUSpec, gpu_memory: str | int) -> float:
    """Per-GPU memory a result is checked against.

    ``"usable"``: CUDA-visible bytes where known, else the nvidia-smi total;
    ``"cuda_visible"``: CUDA-visible bytes (error when unknown); ``"total"``:
    the nvidia-smi total; an int: that many bytes.
    """
    if isinstance(gpu_memory, str):
        if gpu_memory == "usable":
            return float(gpu.usable_bytes)
        if gpu_memory == "total":
            return float(gpu.memory_total_bytes)
        if gpu_memory == "cuda_visible":
            if gpu.cuda_visible_bytes is None:
                raise ValueError(f"gpu_memory='cuda_visible' but the CUDA-visible memory of {gpu.name!r} is "
                                 "not known; use 'total', 'usable' or a number of bytes")
            return float(gpu.cuda_visible_bytes)
        raise ValueError(f"gpu_memory must be 'usable', 'cuda_visible', 'total' or a number of bytes, "
                         f"got {gpu_memory!r}")
    return float(_validation.positive_int("gpu_memory", gpu_memory))


def resolve_parallelism(engine: EngineSpec, n_gpus: int, tp: int | None, pp: int | None) -> tuple[int, int]:
    """Return (tp, pp) for `engine`.

    With neither given, `n_gpus` GPUs mean pipeline stages for engines that
    split layers (transformers ``device_map``, llama.cpp) and tensor
    parallelism for the serving engines (vLLM, SGLang, TensorRT-LLM).
    """
    if tp is None and pp is None:
        return (1, n_gpus) if engine.kind in ("transformers", "llamacpp") else (n_gpus, 1)
    tp_ = _validation.positive_int("tp", tp) if tp is not None else 1
    pp_ = _validation.positive_int("pp", pp) if pp is not None else 1
    if n_gpus != 1 and n_gpus != tp_ * pp_:
        raise ValueError(f"n_gpus ({n_gpus}) must equal tp x pp ({tp_} x {pp_}) when both are given")
    return tp_, pp_


def check_parallelism(spec: ModelSpec, engine: EngineSpec, tp: int, pp: int) -> None:
    """Raise ValueError when `spec` cannot run with `tp` x `pp` under `engine`."""
    if spec.num_heads % tp:
        raise ValueError(f"tp={tp} does not divide the {spec.num_heads} attention heads of {spec.name!r}")
    kv = spec.num_kv_heads or spec.num_heads
    if not spec.is_mla and kv % tp and tp % kv:
        raise ValueError(f"tp={tp} and the {kv} KV heads of {spec.name!r} must divide one another")
    if pp > spec.num_layers:
        raise ValueError(f"pp={pp} exceeds the {spec.num_layers} layers of {spec.name!r}")
    if spec.n_sliding_layers and spec.sliding_window + engine.sliding_cap_offset < 0:  # type: ignore[operator]
        raise ValueError(f"sliding_cap_offset={engine.sliding_cap_offset} leaves the sliding layers of "
                         f"{spec.name!r} (window {spec.sliding_window}) a negative number of tokens")
    if engine.kind == "llamacpp" and engine.n_gpu_layers > spec.num_layers + 1:
        raise ValueError(f"n_gpu_layers={engine.n_gpu_layers} exceeds the {spec.num_layers} layers (+1 output) "
                         f"of {spec.name!r}")


@dataclass(frozen=True, eq=False)
class Sweep:
    """Results of :func:`sweep` over the grid (models, dtypes, contexts, batches, gpus).

    Every result field is a float64 (``fits``: bool) array of shape
    ``(len(models), len(dtypes), len(contexts), len(batches), len(gpus))``
    (plus a trailing ``len(engines)`` axis when a list of engines is swept),
    named as in :class:`vramcore.Estimate`; byte counts are per GPU and exact
    integers up to 2**53.  ``gpu_bytes`` is a read-only broadcast view.

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
    engine : EngineSpec or tuple of EngineSpec
        The engine rules used; a tuple when several engines were swept (then
        the arrays have a sixth axis, "engine").
    n_gpus, tp, pp : int
        GPUs per configuration and their tensor / pipeline split.
    weights_part_bytes : numpy.ndarray or None
        Stored weight bytes of the whole model by part, shape
        ``(len(models), len(dtypes), len(vramcore.PARTS))`` (exact integers;
        before any tensor / pipeline split), read-only.
    """

    models: tuple[str, ...]
    dtypes: tuple[str, ...]
    contexts: np.ndarray
    batches: np.ndarray
    gpus: tuple[str, ...]
    specs: tuple[ModelSpec, ...]
    kv_dtype: str | None
    engine: EngineSpec | tuple[EngineSpec, ...]
    n_gpus: int
    weights_bytes: np.ndarray
    kv_cache_bytes: np.ndarray
    activation_bytes: np.ndarray
    overhead_bytes: np.ndarray
    total_bytes: np.ndarray
    gpu_bytes: np.ndarray
    fits: np.ndarray
    headroom_bytes: np.ndarray
    kv_capacity_tokens: np.ndarray
    kv_blocks: np.ndarray
    max_concurrency: np.ndarray
    host_bytes: np.ndarray
    tp: int = 1
    pp: int = 1
    weights_part_bytes: np.ndarray | None = None

    @property
    def bits_per_weight(self) -> np.ndarray:
        """Effective bits per parameter of each (model, dtype): whole-model weight bytes x 8 / parameters.

        Examples
        --------
        >>> s = sweep("Llama-3.1-8B", ["bf16", "Q4_K_M"])
        >>> s.bits_per_weight.round(4).tolist()
        [[16.0, 4.8944]]
        """
        if self.weights_part_bytes is None:
            raise ValueError("this Sweep was built without weights_part_bytes")
        params = np.array([float(s.param_count) for s in self.specs])
        return self.weights_part_bytes.sum(axis=2) * 8 / params[:, None]

    def dtype_of(self, i: int, j: int) -> str:
        """Name of the weight format cell (model `i`, dtype `j`) uses: ``"auto"`` resolved for the model."""
        if self.dtypes[j] != "auto":
            return self.dtypes[j]
        from vramcore.quant import resolve_auto

        return resolve_auto(self.specs[i]).name

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape (models, dtypes, contexts, batches, gpus[, engines])."""
        return tuple(self.total_bytes.shape)

    @property
    def dims(self) -> tuple[str, ...]:
        """Axis names."""
        return DIMS + (("engine",) if isinstance(self.engine, tuple) else ())

    @property
    def engines(self) -> tuple[str, ...]:
        """Engine names along the engine axis (one name when a single engine was used)."""
        if isinstance(self.engine, tuple):
            return tuple(e.name for e in self.engine)
        return (self.engine.name,)

    @property
    def size(self) -> int:
        """Number of configurations."""
        return int(self.total_bytes.size)

    def cell(self, *index: int) -> Any:
        """Return one cell, ``cell(i, j, k, l, m[, e])``, as an :class:`vramcore.Estimate`."""
        from vramcore._estimate import Estimate

        if len(index) != len(self.shape):
            raise ValueError(f"cell() takes {len(self.shape)} indices ({', '.join(self.dims)}), got {len(index)}")
        i, j, k, l, m = index[:5]  # noqa: E741
        engine = self.engines[index[5]] if len(index) == 6 else self.engines[0]
        values: dict[str, Any] = {f: float(getattr(self, f)[index]) for f in FIELDS if f != "fits"}
        values["fits"] = bool(self.fits[index])
        if self.weights_part_bytes is not None:
            from vramcore.specs import PARTS

            values["weights_by_part"] = dict(zip(PARTS, self.weights_part_bytes[i, j].tolist(), strict=True))
            values["param_count"] = self.specs[i].param_count
        return Estimate(
            model=self.models[i], dtype=self.dtype_of(i, j), kv_dtype=self.kv_dtype,
            context=int(self.contexts[k]), batch=int(self.batches[l]), gpu=self.gpus[m],
            n_gpus=self.n_gpus, engine=engine, tp=self.tp, pp=self.pp, **values)

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
        idx = np.indices(self.shape).reshape(len(self.shape), -1)
        columns: dict[str, Any] = {
            "model": np.asarray(self.models, dtype=object)[idx[0]],
            "dtype": np.asarray(self.dtypes, dtype=object)[idx[1]],
            "context": self.contexts[idx[2]],
            "batch": self.batches[idx[3]],
            "gpu": np.asarray(self.gpus, dtype=object)[idx[4]],
        }
        if len(self.shape) == 6:
            columns["engine"] = np.asarray(self.engines, dtype=object)[idx[5]]
        for f in FIELDS:
            columns[f] = np.asarray(getattr(self, f)).reshape(-1)
        return pd.DataFrame(columns)

    def to_xarray(self) -> xarray.Dataset:
        """Labeled grid: an xarray Dataset with one variable per result field.

        Dims and coords are :attr:`dims` (model, dtype, context, batch, gpu
        [, engine]); each variable's ``attrs["units"]`` says ``"bytes"`` for
        byte counts (``"tokens"``, ``"blocks"``, ``"sequences"`` otherwise);
        the dataset's attrs hold the engine, KV dtype and parallelism.  The
        arrays are shared, not copied.  Requires xarray
        (``pip install 'vramcore[xarray]'``).

        Returns
        -------
        xarray.Dataset

        Raises
        ------
        ImportError
            xarray is not installed.

        Examples
        --------
        >>> ds = sweep("Qwen3-8B", ["bf16", "int4"], [4096, 32768], [1, 8], ["H100", "L4"]).to_xarray()
        >>> ds.total_bytes.dims
        ('model', 'dtype', 'context', 'batch', 'gpu')
        >>> ds.kv_cache_bytes.attrs["units"]
        'bytes'
        >>> bool(ds.fits.sel(dtype="int4", context=4096, batch=1, gpu="L4").item())
        True
        """
        from vramcore import _export

        return _export.dataset(_export.axis_labels(self), {f: getattr(self, f) for f in FIELDS},
                               _export.sweep_attrs(self))

    def to_parquet(self, path: str | PathLike[str]) -> None:
        """Write the long format (one row per cell, as :meth:`to_pandas`) to a Parquet file.

        Streams in row groups of ``2**20`` rows, so the grid is never copied
        whole; the file appears only when complete (written under a temporary
        name, then moved into place).  Units and the sweep's attributes are
        stored in the schema metadata (key ``b"vramcore"``).  Requires
        pyarrow (``pip install 'vramcore[parquet]'``).

        Parameters
        ----------
        path : str or path-like
            Destination file.

        Raises
        ------
        ImportError
            pyarrow is not installed.

        Examples
        --------
        >>> import tempfile, os, pyarrow.parquet as pq
        >>> path = os.path.join(tempfile.mkdtemp(), "grid.parquet")
        >>> sweep("Qwen3-8B", "bf16", [4096, 8192], [1, 2], "H100").to_parquet(path)
        >>> pq.read_table(path).num_rows
        4
        """
        from vramcore import _export

        _export.write_parquet(self, path)

    def __repr__(self) -> str:
        return (f"Sweep(shape={self.shape}, models={list(self.models)}, dtypes={list(self.dtypes)}, "
                f"contexts={self.contexts.tolist()}, batches={self.batches.tolist()}, "
                f"gpus={list(self.gpus)}, engines={list(self.engines)})")


def _compute(specs: Sequence[ModelSpec], dtypes: Sequence[DType], kv_dtype: DType | None,
             contexts: np.ndarray, batches: np.ndarray, gpu_bytes: np.ndarray, gpu_large: np.ndarray,
             engines: Sequence[tuple[EngineSpec, int, int]], n_threads: int | None,
             progress: bool | None = None) -> dict[str, np.ndarray]:
    """Run the kernel over the grid; return the result arrays, shape (M, D, C, B, G, E)."""
    models_arr = _pack.pack_models(specs)
    dtypes_arr = _pack.pack_dtypes(dtypes, kv_dtype)
    part_bytes = _pack.pack_weights(specs, dtypes)
    engines_arr = _pack.pack_engines(engines)
    shape = (len(specs), len(dtypes), contexts.size, batches.size, gpu_bytes.size, len(engines))
    cells = int(np.prod(shape))
    plans = _pack.plans_scratch(len(specs), len(dtypes), len(engines))
    out = np.empty((len(_kernel.RESULT_FIELDS), cells), dtype=np.float64)
    fits = np.empty(cells, dtype=np.bool_)
    threads = _validation.n_threads(n_threads, cells)
    fits_u8 = fits.view(np.uint8)
    rows = len(specs) * len(dtypes) * contexts.size * batches.size
    per_row = gpu_bytes.size * len(engines)
    with Chunks(rows, CHUNK_CELLS // per_row, per_row, progress) as chunks:  # Ctrl-C between chunks
        for start, stop in chunks:
            _kernel.grid(models_arr, dtypes_arr, part_bytes, engines_arr, contexts, batches, gpu_bytes,
                         gpu_large, plans, out, fits_u8, start, stop, threads)
    result = {name: out[k].reshape(shape) for k, name in enumerate(_kernel.RESULT_FIELDS)}
    result["fits"] = fits.reshape(shape)
    result["gpu_bytes"] = np.broadcast_to(gpu_bytes[None, None, None, None, :, None], shape)
    return result


def prepare_engines(engine: Any, specs: Sequence[ModelSpec], n_gpus: int, tp: int | None,
                    pp: int | None) -> tuple[list[EngineSpec], list[tuple[EngineSpec, int, int]], int, int]:
    """Resolve the engine argument (one or several) with its parallelism, checked against every model."""
    many = isinstance(engine, (list, tuple))
    engine_list = [get_engine(e) for e in _validation.as_list("engine", engine)] if many else [get_engine(engine)]
    if len(engine_list) > _kernel.MAX_ENGINES:
        raise ValueError(f"engine: at most {_kernel.MAX_ENGINES} engines per sweep, got {len(engine_list)}")
    n = _validation.positive_int("n_gpus", n_gpus)
    rows: list[tuple[EngineSpec, int, int]] = []
    tp_ = pp_ = 1
    for eng in engine_list:
        tp_, pp_ = resolve_parallelism(eng, n, tp, pp)
        for spec in specs:
            check_parallelism(spec, eng, tp_, pp_)
        rows.append((eng, tp_, pp_))
    return engine_list, rows, tp_, pp_


def sweep(models: ModelLike | Sequence[ModelLike], dtypes: str | Sequence[str] = "auto",
          contexts: Counts = 4096, batches: Counts = 1,
          gpus: str | GPUSpec | Sequence[str | GPUSpec] = "H100-SXM-80GB", *,
          kv_dtype: str | None = None, engine: str | EngineSpec | Sequence[str | EngineSpec] = "transformers",
          n_gpus: int = 1, tp: int | None = None, pp: int | None = None, gpu_memory: str | int = "usable",
          n_threads: int | None = None, progress: bool | None = None) -> Sweep:
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
    """
    model_list = _validation.as_list("models", models)
    specs = tuple(resolve_model(m, "models") for m in model_list)
    dtype_list = tuple(get_dtype(d, argname="dtypes") for d in _validation.as_list("dtypes", dtypes))
    kv = get_dtype(kv_dtype, argname="kv_dtype", allow_formats=False) if kv_dtype is not None else None
    ctx = _validation.positive_counts("contexts", contexts)
    bat = _validation.positive_counts("batches", batches)
    gpu_list = tuple(_resolve_gpu(g) for g in _validation.as_list("gpus", gpus))
    engine_list, rows, tp_, pp_ = prepare_engines(engine, specs, n_gpus, tp, pp)
    gpu_bytes = np.array([gpu_memory_bytes(g, gpu_memory) for g in gpu_list], dtype=np.float64)
    gpu_large = np.array([_pack.gpu_is_large(g.name, b) for g, b in zip(gpu_list, gpu_bytes, strict=True)],
                         dtype=np.float64)
    check_progress(progress)
    out = _compute(specs, dtype_list, kv, ctx, bat, gpu_bytes, gpu_large, rows, n_threads, progress=progress)
    if not isinstance(engine, (list, tuple)):
        out = {k: v[..., 0] for k, v in out.items()}
    part_bytes = _pack.pack_weights(specs, dtype_list)  # cached per (format, spec): cheap a second time
    part_bytes.flags.writeable = False
    return Sweep(
        models=tuple(s.name for s in specs), dtypes=tuple(d.name for d in dtype_list),
        contexts=ctx.astype(np.int64), batches=bat.astype(np.int64),
        gpus=tuple(g.name for g in gpu_list), specs=specs,
        kv_dtype=kv.name if kv is not None else None,
        engine=tuple(engine_list) if isinstance(engine, (list, tuple)) else engine_list[0],
        n_gpus=tp_ * pp_, tp=tp_, pp=pp_, weights_part_bytes=part_bytes, **out)
