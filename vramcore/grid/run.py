"""Resolved arguments -> packed rows -> the compiled kernel -> a :class:`~vramcore.Sweep`.

The one path every forward question takes: :func:`vramcore.sweep` calls it for
a grid, :func:`vramcore.estimate` for one cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

import vramcore.grid._kernel as _kernel
import vramcore.grid.pack as _pack
import vramcore.grid.validation as _validation
from vramcore.engines import EngineSpec
from vramcore.grid.cell import format_blocked_cell, fp8_blocked_cell
from vramcore.grid.progress import Chunks, check_progress
from vramcore.grid.resolve import gpu_memory_bytes, label, prepare_engines, resolve_gpu, resolve_model
from vramcore.grid.results import FIELDS, REASONS, Sweep
from vramcore.model.spec import ModelSpec
from vramcore.storage.dtypes import DType
from vramcore.storage.resolve import get_dtype

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["CHUNK_CELLS", "compute", "run_sweep"]

#: Cells computed per kernel call; between chunks Ctrl-C is honoured.
CHUNK_CELLS = 1 << 22


#: VC_WHY_FORMAT_NOT_RUNNABLE: the reasons bit of format_not_runnable_on_engine.
FORMAT_NOT_RUNNABLE = 1 << REASONS.index("format_not_runnable_on_engine")
#: VC_WHY_DTYPE_UNSUPPORTED_ON_GPU.
DTYPE_UNSUPPORTED_ON_GPU = 1 << REASONS.index("dtype_unsupported_on_gpu")


def fp8_blocked(specs: Sequence[ModelSpec], dtypes: Sequence[DType], kv_dtype: DType | None,
                engines: Sequence[EngineSpec], gpu_fp8: Sequence[bool | None]) -> np.ndarray:
    """Return a bool array (models, dtypes, gpus, engines): True for FP8 on a GPU without it, where it matters.

    That is FP8 weights or an FP8 KV cache on a GPU whose ``fp8`` is False, under an
    engine that needs hardware FP8 (:func:`vramcore.grid.cell.fp8_blocked_cell`).
    """
    out = np.zeros((len(specs), len(dtypes), len(gpu_fp8), len(engines)), dtype=bool)
    lacking = np.array([f is False for f in gpu_fp8])
    if not lacking.any():
        return out
    for e, engine in enumerate(engines):
        for j, dtype in enumerate(dtypes):
            for i, spec in enumerate(specs):
                if fp8_blocked_cell(spec, dtype, kv_dtype, engine):
                    out[i, j, :, e] = lacking
    return out


def format_blocked(specs: Sequence[ModelSpec], dtypes: Sequence[DType], engines: Sequence[EngineSpec]) -> np.ndarray:
    """Return a bool array (models, dtypes, engines): True where the engine does not run the weight format."""
    out = np.zeros((len(specs), len(dtypes), len(engines)), dtype=bool)
    for j, dtype in enumerate(dtypes):
        for i, spec in enumerate(specs):
            for e, engine in enumerate(engines):
                out[i, j, e] = format_blocked_cell(spec, dtype, engine)
    return out


#: Fields that are plan constants: one value per (model, dtype, engine) of one pipeline stage.
PLAN_CONSTANTS = ("weights_bytes", "gradients_bytes", "optimizer_bytes", "master_weights_bytes", "trainable_params")
#: Fields that the GPU does not change under the engines that do not size their cache from it.
GPU_FREE = ("kv_cache_bytes", "activation_bytes", "overhead_bytes", "total_bytes", "kv_capacity_tokens", "kv_blocks",
            "host_bytes", "state_bytes")
#: Fields no request changes under the budgeted engines: their pool, profile and overhead come from the GPU alone.
REQUEST_FREE = ("kv_cache_bytes", "activation_bytes", "overhead_bytes", "total_bytes", "kv_capacity_tokens",
                "kv_blocks", "host_bytes")


def field_shapes(engines: Sequence[EngineSpec], staged: bool) -> dict[str, int]:
    """Return the result fields smaller than the grid: 1 not per GPU, 2 per plan, 3 per (plan, GPU), 4 not per batch.

    2 is one value per (model, dtype, engine), 3 one per (model, dtype, GPU, engine), 4 one per (model, dtype,
    context, GPU, engine).

    Plan constants (:data:`PLAN_CONSTANTS`) depend only on (model, dtype,
    engine) when no engine of the sweep splits into several distinct pipeline
    stages (`staged`: the binding stage may change with context, batch and
    GPU).  Without a budgeted engine (:attr:`EngineSpec.budgeted`: its cache is
    sized from the GPU's memory) no figure but the verdict (headroom, reasons,
    fits) depends on the GPU, except transformers' ``max_concurrency`` (the
    sequences its memory holds).  When every engine is budgeted and no engine
    is staged, the pool, profile and overhead (:data:`REQUEST_FREE`) do not
    depend on the context or the batch: one value per (model, dtype, GPU, engine).
    When every engine is transformers and none is staged, its ``max_concurrency``
    (the memory left after the constant part over one sequence's bytes) does
    not depend on the batch: one value per (model, dtype, context, GPU, engine).
    """
    out: dict[str, int] = {}
    if engines and all(e.kind == "transformers" and not e.budgeted for e in engines) and not staged:
        out["max_concurrency"] = 4
    if engines and all(e.budgeted for e in engines) and not staged:
        out.update(dict.fromkeys(REQUEST_FREE, 3))
    if not any(e.budgeted for e in engines):
        gpu_free = GPU_FREE + (() if any(e.kind == "transformers" for e in engines) else ("max_concurrency",))
        out.update(dict.fromkeys(gpu_free + PLAN_CONSTANTS, 1))
    if not staged:
        out.update(dict.fromkeys(PLAN_CONSTANTS, 2))
    return out


def compute(specs: Sequence[ModelSpec], dtypes: Sequence[DType], kv_dtype: DType | None,
             contexts: np.ndarray, batches: np.ndarray, gpu_bytes: np.ndarray, gpu_large: np.ndarray,
             engines: Sequence[tuple[EngineSpec, int, int]], n_threads: int | None,
             progress: bool | None = None, gpu_fp8: Sequence[bool | None] = (),
             fields: Sequence[str] | None = None) -> dict[str, np.ndarray | None]:
    """Run the kernel over the grid; return the result arrays, shape (M, D, C, B, G, E).

    `fields` (default: all): the result fields to compute and write; the others are None.
    Each field is written once at the shape it really has (:func:`field_shapes`)
    and returned as a read-only broadcast view of that shape where it is smaller.
    """
    shape = (len(specs), len(dtypes), contexts.size, batches.size, gpu_bytes.size, len(engines))
    wanted = set(_kernel.RESULT_FIELDS) | {"fits"} if fields is None else set(fields)
    place_arr = _pack.pack_place(specs, engines)
    staged = bool((place_arr[:, :, 0, _pack.PLACE_FIELDS.index("n_stages")] > 1).any())
    where = field_shapes([e for e, _, _ in engines], staged)
    by_class: dict[int, list[int]] = {0: [], 1: [], 2: [], 3: [], 4: []}
    for k, name in enumerate(_kernel.RESULT_FIELDS):
        if name in wanted and name != "reasons":        # reasons: a uint16 array of its own
            by_class[where.get(name, 0)].append(k)
    rows_, rows1, rows2, rows3, rows4 = by_class[0], by_class[1], by_class[2], by_class[3], by_class[4]
    write_fits = "fits" in wanted
    cells = math.prod(shape)
    per_gpu_cells, per_plan = cells // shape[4], len(specs) * len(dtypes) * len(engines)
    write_reasons = "reasons" in wanted
    _validation.check_grid_size(shape, 8 * len(rows_) + int(write_fits) + 2 * int(write_reasons)
                                + -(-8 * len(rows1) // shape[4]) + -(-8 * len(rows4) // shape[3]))
    threads = _validation.n_threads(n_threads, cells)
    models_arr = _pack.pack_models(specs)
    dtypes_arr = _pack.pack_dtypes(dtypes, kv_dtype)
    part_bytes = _pack.pack_loaded_weights(specs, dtypes, engines)
    engines_arr = _pack.pack_engines(engines)
    train_arr = _pack.pack_train(specs, dtypes, engines)
    plans = _pack.plans_scratch(len(specs), len(dtypes), len(engines), place_arr.shape[2])
    cuts = np.empty((plans.size // _kernel.PLAN_NFIELDS * gpu_bytes.size, _kernel.CUT_NFIELDS), dtype=np.float64)
    out = np.empty((max(1, len(rows_)), cells if rows_ else 1), dtype=np.float64)
    out1 = np.empty((max(1, len(rows1)), per_gpu_cells if rows1 else 1), dtype=np.float64)
    out2 = np.empty((max(1, len(rows2)), per_plan), dtype=np.float64)
    out3 = np.empty((max(1, len(rows3)), per_plan * gpu_bytes.size), dtype=np.float64)
    per_context = len(specs) * len(dtypes) * contexts.size * gpu_bytes.size * len(engines)
    out4 = np.empty((max(1, len(rows4)), per_context if rows4 else 1), dtype=np.float64)
    fits = np.empty(cells if write_fits else 1, dtype=np.bool_)
    fits_u8 = fits.view(np.uint8)
    reasons = np.empty(cells, dtype=np.uint16) if write_reasons else None
    select, select1, select2, select3, select4 = (np.array(r, dtype=np.int32)
                                                  for r in (rows_, rows1, rows2, rows3, rows4))
    rows = len(specs) * len(dtypes) * contexts.size * batches.size
    per_row = gpu_bytes.size * len(engines)
    with Chunks(rows, CHUNK_CELLS // per_row, per_row, progress) as chunks:  # Ctrl-C between chunks
        for start, stop in chunks:
            _kernel.grid(models_arr, dtypes_arr, part_bytes, engines_arr, train_arr, place_arr, contexts, batches,
                         gpu_bytes, gpu_large, plans, out, fits_u8, start, stop, threads, select, write_fits,
                         out1, select1, out2 if start == 0 else None, select2 if start == 0 else None, reasons,
                         cuts, out3 if start == 0 else None, select3 if start == 0 else None, out4, select4)
    result: dict[str, np.ndarray | None] = dict.fromkeys((*_kernel.RESULT_FIELDS, "fits"))
    for k, row in enumerate(rows_):
        result[_kernel.RESULT_FIELDS[row]] = out[k].reshape(shape)
    m, d, c, b, g, e = shape
    for k, row in enumerate(rows1):
        result[_kernel.RESULT_FIELDS[row]] = np.broadcast_to(out1[k].reshape(m, d, c, b, 1, e), shape)
    for k, row in enumerate(rows2):
        result[_kernel.RESULT_FIELDS[row]] = np.broadcast_to(out2[k].reshape(m, d, 1, 1, 1, e), shape)
    for k, row in enumerate(rows3):
        result[_kernel.RESULT_FIELDS[row]] = np.broadcast_to(out3[k].reshape(m, d, 1, 1, g, e), shape)
    for k, row in enumerate(rows4):
        result[_kernel.RESULT_FIELDS[row]] = np.broadcast_to(out4[k].reshape(m, d, c, 1, g, e), shape)
    if reasons is not None:
        result["reasons"] = reasons.reshape(shape)
    if write_fits:
        result["fits"] = fits.reshape(shape)
    # an engine that does not load a weight format as stored, FP8 on a GPU without it: no figure of it fits
    reasons, fits_ = result["reasons"], result["fits"]
    for i, j, e in zip(*np.nonzero(format_blocked(specs, dtypes, [e for e, _, _ in engines])), strict=True):
        if reasons is not None:
            reasons[i, j, ..., e] |= FORMAT_NOT_RUNNABLE
        if fits_ is not None:
            fits_[i, j, ..., e] = False
    no_fp8 = fp8_blocked(specs, dtypes, kv_dtype, [e for e, _, _ in engines], gpu_fp8)
    for i, j, g, e in zip(*np.nonzero(no_fp8), strict=True):
        if reasons is not None:
            reasons[i, j, :, :, g, e] |= DTYPE_UNSUPPORTED_ON_GPU
        if fits_ is not None:
            fits_[i, j, :, :, g, e] = False
    result["gpu_bytes"] = np.broadcast_to(gpu_bytes[None, None, None, None, :, None], shape)
    return result


def _check_fields(fields: Any) -> tuple[str, ...] | None:
    """Validate ``fields=``: None (every field) or result field names (``gpu_bytes`` is always there)."""
    if fields is None:
        return None
    names = [fields] if isinstance(fields, str) else _validation.as_list("fields", fields)
    for name in names:
        if not isinstance(name, str) or name not in FIELDS:
            raise ValueError(f"fields: {name!r} is not a result field; the fields: {', '.join(FIELDS)}")
    return tuple(names)


def run_sweep(models: Any, dtypes: Any, contexts: Any, batches: Any, gpus: Any, *, kv_dtype: str | None,
              engine: Any, n_gpus: int, tp: int | None, pp: int | None, gpu_memory: str | int,
              n_threads: int | None, progress: bool | None, fields: Any = None) -> Sweep:
    """Validate and resolve every argument of :func:`vramcore.sweep`, run the kernel, return the Sweep."""
    model_list = _validation.as_list("models", models)
    specs = tuple(resolve_model(m, "models") for m in model_list)
    dtype_args = _validation.as_list("dtypes", dtypes)
    dtype_list = tuple(get_dtype(d, argname="dtypes") for d in dtype_args)
    kv = get_dtype(kv_dtype, argname="kv_dtype", allow_formats=False) if kv_dtype is not None else None
    ctx = _validation.positive_counts("contexts", contexts)
    bat = _validation.positive_counts("batches", batches)
    gpu_args = _validation.as_list("gpus", gpus)
    gpu_list = tuple(resolve_gpu(g) for g in gpu_args)
    engine_list, rows, tp_, pp_ = prepare_engines(engine, specs, n_gpus, tp, pp)
    gpu_bytes = np.array([gpu_memory_bytes(g, gpu_memory) for g in gpu_list], dtype=np.float64)
    gpu_large = np.array([_pack.gpu_is_large(g.name, b) for g, b in zip(gpu_list, gpu_bytes, strict=True)],
                         dtype=np.float64)
    check_progress(progress)
    wanted = _check_fields(fields)
    out = compute(specs, dtype_list, kv, ctx, bat, gpu_bytes, gpu_large, rows, n_threads, progress=progress,
                  gpu_fp8=[g.fp8 for g in gpu_list], fields=wanted)
    if not isinstance(engine, (list, tuple)):
        out = {k: (v[..., 0] if v is not None else None) for k, v in out.items()}
    results: dict[str, Any] = out     # the fields not asked for stay None (Sweep.field says so)
    part_bytes = _pack.pack_weights(specs, dtype_list)  # cached per (format, spec): cheap a second time
    part_bytes.flags.writeable = False
    return Sweep(
        models=tuple(s.name for s in specs),
        dtypes=tuple(label(a, d) for a, d in zip(dtype_args, dtype_list, strict=True)),
        contexts=ctx.astype(np.int64), batches=bat.astype(np.int64),
        gpus=tuple(label(a, g) for a, g in zip(gpu_args, gpu_list, strict=True)), specs=specs,
        dtype_names=tuple(d.name for d in dtype_list), gpu_names=tuple(g.name for g in gpu_list),
        kv_dtype=kv.name if kv is not None else None,
        engine=tuple(engine_list) if isinstance(engine, (list, tuple)) else engine_list[0],
        n_gpus=tp_ * pp_, tp=tp_, pp=pp_, weights_part_bytes=part_bytes, **results)
