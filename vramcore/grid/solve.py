"""Inverse questions: max context, max batch, min GPUs, best dtype -- for every cell of a grid.

Max context and max batch are solved in the compiled kernel from the closed
form of the memory model (linear in context on each side of a sliding cap,
linear in batch), then moved to the exact integer answer by the same
``vc_estimate`` the forward sweep uses, so the answer always fits and
answer + 1 never does.  Min GPUs and best dtype choose from short candidate
lists with one vectorised sweep per candidate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

import vramcore.grid._kernel as _kernel
import vramcore.grid.pack as _pack
import vramcore.grid.validation as _validation
from vramcore._errors import VramcoreWarning
from vramcore._record import record
from vramcore.engines import EngineSpec, get_engine
from vramcore.grid.resolve import (
    Counts,
    ModelLike,
    check_parallelism,
    gpu_memory_bytes,
    prepare_engines,
    resolve_gpu,
    resolve_model,
)
from vramcore.grid.run import format_blocked, fp8_blocked
from vramcore.grid.sweep import sweep
from vramcore.hardware.gpus import GPUSpec
from vramcore.model.spec import ModelSpec
from vramcore.storage.resolve import get_dtype

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    import pandas

__all__ = ["Solution", "best_dtype", "max_batch", "max_context", "min_gpus"]

#: Largest batch the solver reports when memory allows more (2**53: counts stay exact doubles).
MAX_BATCH = float(_validation.MAX_COUNT)


@record(frozen=True, eq=False)
class Solution:
    """Answers of an inverse question for every cell of a labelled grid.

    Attributes
    ----------
    name : str
        The question (``"max_context"``, ``"max_batch"``, ``"min_gpus"``, ``"best_dtype"``).
    values : numpy.ndarray
        The answers; int64 counts (0 when nothing fits) or, for ``best_dtype``,
        dtype names (``""`` when none fits).
    dims : tuple of str
        Axis names of `values`.
    coords : dict of str to tuple
        Axis labels.
    """

    name: str
    values: np.ndarray
    dims: tuple[str, ...]
    coords: dict[str, tuple[Any, ...]]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`values`."""
        return tuple(self.values.shape)

    def to_pandas(self) -> pandas.DataFrame:
        """Long-format DataFrame: one row per cell (pandas, optional)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("Solution.to_pandas() needs pandas: pip install 'vramcore[pandas]'") from exc
        idx = np.indices(self.values.shape).reshape(len(self.dims), -1)
        columns = {d: np.asarray(self.coords[d], dtype=object)[idx[k]] for k, d in enumerate(self.dims)}
        columns[self.name] = self.values.reshape(-1)
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        return f"Solution({self.name!r}, shape={self.shape}, dims={self.dims})"


def _prepare(models: Any, dtypes: Any, gpus: Any, kv_dtype: str | None, engine: Any, n_gpus: int,
             tp: int | None, pp: int | None, gpu_memory: str | int) -> dict[str, Any]:
    specs = tuple(resolve_model(m, "models") for m in _validation.as_list("models", models))
    dtype_list = tuple(get_dtype(d, argname="dtypes") for d in _validation.as_list("dtypes", dtypes))
    kv = get_dtype(kv_dtype, argname="kv_dtype") if kv_dtype is not None else None
    gpu_list = tuple(resolve_gpu(g) for g in _validation.as_list("gpus", gpus))
    engine_list, rows, _, _ = prepare_engines(engine, specs, n_gpus, tp, pp)
    p: dict[str, Any] = {
        "specs": specs, "dtypes": dtype_list, "kv": kv, "gpus": gpu_list, "engines": engine_list,
        "rows": rows, "many_engines": isinstance(engine, (list, tuple)),
        "gpu_bytes": np.array([gpu_memory_bytes(g, gpu_memory) for g in gpu_list], dtype=np.float64),
    }
    p["gpu_large"] = np.array([_pack.gpu_is_large(g.name, b) for g, b in zip(gpu_list, p["gpu_bytes"], strict=True)],
                              dtype=np.float64)
    return p


def _run(which: int, p: dict[str, Any], fixed: np.ndarray, caps: np.ndarray, fixed_dim: str,
         n_threads: int | None, name: str) -> Solution:
    specs, dtypes = p["specs"], p["dtypes"]
    shape = (len(specs), len(dtypes), fixed.size, p["gpu_bytes"].size, len(p["rows"]))
    _validation.check_grid_size(shape, 8)  # the int64 answers, written by the kernel
    cells = math.prod(shape)
    threads = _validation.n_threads(n_threads, cells * 8)
    out = np.empty(cells, dtype=np.int64)
    place = _pack.pack_place(specs, p["rows"])
    plans = _pack.plans_scratch(len(specs), len(dtypes), len(p["rows"]), place.shape[2])
    _kernel.solve(which, _pack.pack_models(specs), _pack.pack_dtypes(dtypes, p["kv"]),
                  _pack.pack_loaded_weights(specs, dtypes, p["rows"]), _pack.pack_engines(p["rows"]),
                  _pack.pack_train(specs, dtypes, p["rows"]), place, fixed, p["gpu_bytes"], p["gpu_large"], caps,
                  plans, _pack.pools_scratch(plans, p["gpu_bytes"].size), out,
                  0, len(specs) * len(dtypes) * fixed.size, threads)
    values = out.reshape(shape)
    # an engine that does not load the format, FP8 on a GPU without it: nothing fits
    blocked = format_blocked(specs, dtypes, p["engines"])
    for i, j, e in zip(*np.nonzero(blocked), strict=True):
        values[i, j, :, :, e] = 0
    no_fp8 = fp8_blocked(specs, dtypes, p["kv"], p["engines"], [g.fp8 for g in p["gpus"]])
    for i, j, g, e in zip(*np.nonzero(no_fp8), strict=True):
        values[i, j, :, g, e] = 0
    dims: tuple[str, ...] = ("model", "dtype", fixed_dim, "gpu", "engine")
    coords: dict[str, tuple[Any, ...]] = {
        "model": tuple(s.name for s in specs), "dtype": tuple(d.name for d in dtypes),
        fixed_dim: tuple(int(x) for x in fixed), "gpu": tuple(g.name for g in p["gpus"]),
        "engine": tuple(e.name for e in p["engines"]),
    }
    if not p["many_engines"]:
        values, dims = values[..., 0], dims[:-1]
        coords.pop("engine")
    return Solution(name, values, dims, coords)


def max_context(models: ModelLike | Sequence[ModelLike], dtypes: str | Sequence[str] = "auto",
                batches: Counts = 1, gpus: str | GPUSpec | Sequence[str | GPUSpec] = "H100-SXM-80GB",
                *, kv_dtype: str | None = None, engine: str | EngineSpec | Sequence[str | EngineSpec] = "transformers",
                n_gpus: int = 1, tp: int | None = None, pp: int | None = None, gpu_memory: str | int = "usable",
                n_threads: int | None = None) -> Solution:
    """Longest context (tokens per sequence) that fits, for every (model, dtype, batch, gpu[, engine]).

    The answer fits and answer + 1 does not; it is capped at the model's
    ``max_context`` (2**53 when unknown) and 0 when not even one token fits.
    Arguments are those of :func:`vramcore.sweep`.

    Returns
    -------
    Solution
        int64 values of shape (models, dtypes, batches, gpus[, engines]).

    Raises
    ------
    ValueError, TypeError
        Any invalid argument, named with its value.

    Examples
    --------
    >>> sol = max_context("DeepSeek-R1-Distill-Llama-8B", "bf16", [1, 64], "RTX-4090")
    >>> sol.dims
    ('model', 'dtype', 'batch', 'gpu')
    >>> bool(sol.values[0, 0, 0, 0] > sol.values[0, 0, 1, 0] > 0)
    True
    """
    p = _prepare(models, dtypes, gpus, kv_dtype, engine, n_gpus, tp, pp, gpu_memory)
    batches_arr = _validation.positive_counts("batches", batches)
    caps = np.array([float(s.max_context or _validation.MAX_COUNT) for s in p["specs"]], dtype=np.float64)
    return _run(0, p, batches_arr, caps, "batch", n_threads, "max_context")


def max_batch(models: ModelLike | Sequence[ModelLike], dtypes: str | Sequence[str] = "auto",
              contexts: Counts = 4096, gpus: str | GPUSpec | Sequence[str | GPUSpec] = "H100-SXM-80GB",
              *, kv_dtype: str | None = None, engine: str | EngineSpec | Sequence[str | EngineSpec] = "transformers",
              n_gpus: int = 1, tp: int | None = None, pp: int | None = None, gpu_memory: str | int = "usable",
              n_threads: int | None = None) -> Solution:
    """Most concurrent sequences of each context that fit, for every (model, dtype, context, gpu[, engine]).

    The answer fits and answer + 1 does not (0 when not even one sequence
    fits, at most 2**53).  Arguments are those of :func:`vramcore.sweep`.

    Returns
    -------
    Solution
        int64 values of shape (models, dtypes, contexts, gpus[, engines]).

    Examples
    --------
    >>> int(max_batch("DeepSeek-R1-Distill-Llama-8B", "bf16", 131072, "L4").values[0, 0, 0, 0])
    0
    """
    p = _prepare(models, dtypes, gpus, kv_dtype, engine, n_gpus, tp, pp, gpu_memory)
    contexts_arr = _validation.positive_counts("contexts", contexts)
    caps = np.full(len(p["specs"]), MAX_BATCH)
    return _run(1, p, contexts_arr, caps, "context", n_threads, "max_batch")


#: GPU counts min_gpus tries by default: tensor parallelism within a node of 8, then whole nodes as
#: pipeline stages (Llama-3.1-405B in bf16 needs 16 H100s: tp=8 x pp=2).
GPU_COUNTS: tuple[int, ...] = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128)
#: Largest tensor-parallel degree min_gpus uses (one NVLink node); more GPUs become pipeline stages.
MAX_TP = 8


def gpu_layout(spec: ModelSpec, engine: EngineSpec, n: int) -> tuple[int, int] | None:
    """Return the (tp, pp) layout min_gpus uses for `n` GPUs, or None when the model cannot be split over `n`.

    transformers and llama.cpp split layers (pp = n); the serving engines take the
    largest tensor-parallel degree <= MAX_TP that divides `n` and suits the
    heads, and pipeline stages for the rest.

    Parameters
    ----------
    spec : ModelSpec
        The model.
    engine : EngineSpec
        The engine.
    n : int
        GPUs.

    Returns
    -------
    tuple of int or None

    Examples
    --------
    >>> from vramcore import get_engine, get_model
    >>> gpu_layout(get_model("Llama-3.1-405B").spec, get_engine("vllm"), 16)
    (8, 2)
    """
    if engine.kind in ("transformers", "llamacpp"):
        options = [(1, n)]
    else:
        options = [(tp, n // tp) for tp in range(min(n, MAX_TP), 0, -1) if n % tp == 0]
    for tp, pp in options:
        try:
            check_parallelism(spec, engine, tp, pp)
        except ValueError:
            continue
        return tp, pp
    return None


def min_gpus(models: ModelLike | Sequence[ModelLike], dtypes: str | Sequence[str] = "auto",
             contexts: Counts = 4096, batches: Counts = 1,
             gpu: str | GPUSpec | Sequence[str | GPUSpec] = "H100-SXM-80GB", *,
             candidates: Sequence[int] = GPU_COUNTS, kv_dtype: str | None = None,
             engine: str | EngineSpec = "vllm", gpu_memory: str | int = "usable",
             n_threads: int | None = None) -> Solution:
    """Fewest GPUs from `candidates` on which each configuration fits (0: none of them).

    Each count is laid out as :func:`gpu_layout` says: tensor parallelism up to
    8 GPUs (one node), then pipeline stages of 8-GPU nodes; a count the model
    cannot be split over is skipped for that model.  A training engine under
    ZeRO >= 1 (or FSDP) takes the count as its data-parallel degree ``dp``:
    the answer is the smallest ZeRO / FSDP degree that fits.

    Parameters
    ----------
    gpu : str, GPUSpec or a sequence of them
        One GPU, or several: then the result has a trailing "gpu" axis.
    candidates : sequence of int
        GPU counts to try, in any order (default :data:`GPU_COUNTS`, 1 to 128).
    engine : str or EngineSpec
        One engine (default ``"vllm"``).

    Other parameters are those of :func:`vramcore.sweep`.

    Returns
    -------
    Solution
        int64 values of shape (models, dtypes, contexts, batches[, gpus]).

    Examples
    --------
    >>> int(min_gpus("Llama-3.1-70B", "bf16", 8192, 1, "H100").values[0, 0, 0, 0])
    4
    >>> min_gpus("Llama-3.1-405B", "bf16", 8192, 1, ["H100", "H200"]).values[0, 0, 0, 0].tolist()
    [16, 8]
    >>> from vramcore import get_engine
    >>> int(min_gpus("Llama-3.1-70B", "auto", 4096, 1, "H100",
    ...              engine=get_engine("train", fsdp="full_shard", dp=2, recompute="full")).values[0, 0, 0, 0])
    24
    """
    specs = tuple(resolve_model(m, "models") for m in _validation.as_list("models", models))
    dtype_list = _validation.as_list("dtypes", dtypes)
    ctx = _validation.positive_counts("contexts", contexts)
    bat = _validation.positive_counts("batches", batches)
    many_gpus = isinstance(gpu, (list, tuple))
    gpu_list = [resolve_gpu(g) for g in _validation.as_list("gpu", gpu)]
    cands = sorted({_validation.positive_int("candidates", c) for c in _validation.as_list("candidates", candidates)})
    if isinstance(engine, (list, tuple)):
        raise TypeError("min_gpus takes one engine; call it once per engine")
    eng = get_engine(engine)
    result = np.zeros((len(specs), len(dtype_list), ctx.size, bat.size, len(gpu_list)), dtype=np.int64)
    sharded = eng.kind == "train" and eng.zero >= 1
    for i, spec in enumerate(specs):
        for n in reversed(cands):      # smallest last, so it wins
            layout = (1, 1) if sharded else gpu_layout(spec, eng, n)
            if layout is None:
                continue
            # training under ZeRO / FSDP: n GPUs are the data-parallel degree
            run_eng = eng.with_options(dp=n) if sharded else eng
            with warnings.catch_warnings():
                if sharded:
                    warnings.simplefilter("ignore", VramcoreWarning)   # dp=1: sharding over one GPU
                s = sweep(spec, dtype_list, ctx, bat, gpu_list, kv_dtype=kv_dtype, engine=run_eng, tp=layout[0],
                          pp=layout[1], gpu_memory=gpu_memory, n_threads=n_threads, fields=("fits",))
            result[i] = np.where(s.field("fits")[0], n, result[i])
    coords: dict[str, tuple[Any, ...]] = {
        "model": tuple(s.name for s in specs),
        "dtype": tuple(get_dtype(d, argname="dtypes").name for d in dtype_list),
        "context": tuple(int(x) for x in ctx), "batch": tuple(int(x) for x in bat),
        "gpu": tuple(g.name for g in gpu_list),
    }
    dims: tuple[str, ...] = ("model", "dtype", "context", "batch", "gpu")
    if not many_gpus:
        result, dims = result[..., 0], dims[:-1]
        del coords["gpu"]
    return Solution("min_gpus", result, dims, coords)


#: Weight dtypes from highest to lowest precision, the order best_dtype tries them in.
PRECISION_ORDER: tuple[str, ...] = ("fp32", "bf16", "fp16", "fp8_e4m3", "int8", "int4")


def best_dtype(models: ModelLike | Sequence[ModelLike], contexts: Counts = 4096,
               batches: Counts = 1, gpus: str | GPUSpec | Sequence[str | GPUSpec] = "H100-SXM-80GB",
               *, dtypes: Sequence[str] = PRECISION_ORDER, kv_dtype: str | None = None,
               engine: str | EngineSpec = "transformers", n_gpus: int = 1, tp: int | None = None,
               pp: int | None = None, gpu_memory: str | int = "usable", n_threads: int | None = None) -> Solution:
    """Highest-precision weight dtype that fits, for every (model, context, batch, gpu).

    Parameters
    ----------
    dtypes : sequence of str
        Candidates from highest to lowest precision (default
        :data:`PRECISION_ORDER`); the first that fits is the answer.

    Other parameters are those of :func:`vramcore.sweep`.

    Returns
    -------
    Solution
        Values are dtype names (``""`` when none fits), shape (models, contexts, batches, gpus).

    Examples
    --------
    >>> str(best_dtype("Llama-3.1-70B", 8192, 1, "H100").values[0, 0, 0, 0])
    'fp8_e4m3'
    """
    if isinstance(engine, (list, tuple)):
        raise TypeError("best_dtype takes one engine; call it once per engine")
    s = sweep(models, list(dtypes), contexts, batches, gpus, kv_dtype=kv_dtype, engine=engine, n_gpus=n_gpus,
              tp=tp, pp=pp, gpu_memory=gpu_memory, n_threads=n_threads, fields=("fits",))
    fits = s.field("fits")                                # (M, D, C, B, G)
    first = np.argmax(fits, axis=1)                       # first dtype that fits
    names = np.asarray(s.dtypes + ("",), dtype=object)
    index = np.where(fits.any(axis=1), first, len(s.dtypes))
    coords: dict[str, tuple[Any, ...]] = {
        "model": s.models, "context": tuple(int(x) for x in s.contexts),
        "batch": tuple(int(x) for x in s.batches), "gpu": s.gpus,
    }
    return Solution("best_dtype", names[index], ("model", "context", "batch", "gpu"), coords)
