"""Grids larger than memory, straight to a file: :func:`sweep_to` computes and writes one part at a time.

A :class:`~vramcore.Sweep` holds every result array of its grid; a grid of
10**10 cells would need about a terabyte.  :func:`sweep_to` cuts the grid into
parts of about ``chunk_cells`` cells that are consecutive in the file's row
order (C order over model, dtype, context, batch, gpu, engine), runs the
kernel on each part, writes its rows and drops it before the next one, so only
one part is ever in memory.  The progress bar counts a part's cells once they
are written, so it covers writing as well as computing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

import vramcore.grid.validation as _validation
from vramcore.engines import EngineSpec
from vramcore.grid.progress import Chunks, check_progress
from vramcore.grid.resolve import Counts, ModelLike
from vramcore.grid.results import DIMS, Sweep
from vramcore.grid.run import CHUNK_CELLS, run_sweep
from vramcore.hardware.gpus import GPUSpec

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["grid_layout", "parts", "sweep_to"]


def parts(shape: Sequence[int], chunk_cells: int) -> Iterator[tuple[slice, ...]]:
    """Yield the parts of a grid of `shape`, in C order, each a box of about `chunk_cells` cells or fewer.

    Every part fixes the leading axes, takes a run of the next one and the
    whole of the rest, so that its cells are consecutive in C order; only the
    leading four axes (model, dtype, context, batch) are cut, so a part holds
    at least one (gpu, engine) row whatever `chunk_cells` says.

    Examples
    --------
    >>> [tuple((s.start, s.stop) for s in p) for p in parts((2, 3, 1, 1, 4), 8)]
    [((0, 1), (0, 2), (0, 1), (0, 1), (0, 4)), ((0, 1), (2, 3), (0, 1), (0, 1), (0, 4)), \
((1, 2), (0, 2), (0, 1), (0, 1), (0, 4)), ((1, 2), (2, 3), (0, 1), (0, 1), (0, 4))]
    """
    shape = tuple(shape)
    cut = min(4, len(shape)) - 1          # the innermost axis that may be cut
    axis = 0
    while axis < cut and math.prod(shape[axis + 1:]) > chunk_cells:
        axis += 1
    inner = math.prod(shape[axis + 1:])
    step = max(1, chunk_cells // inner)
    for outer in np.ndindex(*shape[:axis]):
        for start in range(0, shape[axis], step):
            yield (*(slice(i, i + 1) for i in outer), slice(start, min(shape[axis], start + step)),
                   *(slice(0, n) for n in shape[axis + 1:]))


def grid_layout(models: Any, dtypes: Any, contexts: Any, batches: Any, gpus: Any,
                engine: Any) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Return the axis names and shape of the sweep these arguments describe (as :attr:`Sweep.dims` / ``shape``).

    Examples
    --------
    >>> grid_layout("Qwen3-8B", ["bf16", "int4"], [4096, 8192], 1, "H100", ["vllm", "sglang"])
    (('model', 'dtype', 'context', 'batch', 'gpu', 'engine'), (1, 2, 2, 1, 1, 2))
    """
    shape = (len(_validation.as_list("models", models)), len(_validation.as_list("dtypes", dtypes)),
             len(_validation.positive_counts("contexts", contexts)),
             len(_validation.positive_counts("batches", batches)), len(_validation.as_list("gpus", gpus)))
    if isinstance(engine, (list, tuple)):
        return (*DIMS, "engine"), (*shape, len(_validation.as_list("engine", engine)))
    return DIMS, shape


def sweep_to(path: str | os.PathLike[str], models: ModelLike | Sequence[ModelLike],
             dtypes: str | Sequence[str] = "auto", contexts: Counts = 4096, batches: Counts = 1,
             gpus: str | GPUSpec | Sequence[str | GPUSpec] = "H100-SXM-80GB", *,
             kv_dtype: str | None = None, engine: str | EngineSpec | Sequence[str | EngineSpec] = "transformers",
             n_gpus: int = 1, tp: int | None = None, pp: int | None = None, gpu_memory: str | int = "usable",
             n_threads: int | None = None, progress: bool | None = None, fields: Sequence[str] | None = None,
             chunk_cells: int = CHUNK_CELLS) -> str:
    """Compute a sweep and write its long format to `path` part by part, never holding the whole grid.

    The file is what ``vramcore.sweep(...)`` followed by
    :meth:`~vramcore.Sweep.to_parquet` (or the CSV / JSON writers of
    ``vramcore sweep -o``) would write, row for row, for any grid size: each
    part of about `chunk_cells` cells is computed, written and dropped before
    the next.  The file appears only when complete (a temporary name, then a
    move), so an interrupted run leaves the previous file or none.

    Parameters
    ----------
    path : str or path-like
        Destination; its extension names the format: ``.parquet`` (needs
        pyarrow, ``pip install 'vramcore[parquet]'``), ``.csv`` or ``.json``.
    models, dtypes, contexts, batches, gpus
        The grid, as for :func:`vramcore.sweep`.
    kv_dtype, engine, n_gpus, tp, pp, gpu_memory, n_threads, fields
        As for :func:`vramcore.sweep`.
    progress : bool, optional
        Progress bar on stderr counting cells as they are written (needs
        tqdm); None shows it for grids of at least ``2**23`` cells when stderr
        is a terminal.
    chunk_cells : int
        Cells per part (default ``CHUNK_CELLS``, 2**22: about 0.5 GB of
        results with every field).

    Returns
    -------
    str
        The format written: ``"parquet"``, ``"csv"`` or ``"json"``.

    Raises
    ------
    ValueError, TypeError
        Any invalid argument, named with its value; an unknown extension.
    ImportError
        Parquet without pyarrow.

    Examples
    --------
    >>> import os, tempfile, vramcore
    >>> path = os.path.join(tempfile.mkdtemp(), "grid.csv")
    >>> vramcore.sweep_to(path, "Qwen3-8B", ["bf16", "int4"], [4096, 8192], [1, 2], "H100",
    ...                   fields=("total_bytes", "fits"), chunk_cells=3)
    'csv'
    >>> with open(path) as f:
    ...     print(f.readline() + f.readline(), end="")
    model,dtype,context,batch,gpu,total_bytes,gpu_bytes,fits
    Qwen3-8B,bf16,4096,1,H100,18013732007,85017755648,true
    """
    import vramcore.io.export as _export

    fmt = _export.format_of(path)
    if fmt == "parquet":
        _export.require("pyarrow", "parquet", "Parquet output")
    chunk = _validation.positive_int("chunk_cells", chunk_cells)
    check_progress(progress)
    axes: list[Any] = [_validation.as_list("models", models), _validation.as_list("dtypes", dtypes),
                       _validation.positive_counts("contexts", contexts),
                       _validation.positive_counts("batches", batches)]
    gpu_list = _validation.as_list("gpus", gpus)
    # one engine: a trailing axis of one, dropped by each part's sweep
    n_engines = len(_validation.as_list("engine", engine)) if isinstance(engine, (list, tuple)) else 1
    shape = (*(len(a) for a in axes), len(gpu_list), n_engines)
    kwargs: dict[str, Any] = {"kv_dtype": kv_dtype, "engine": engine, "n_gpus": n_gpus, "tp": tp, "pp": pp,
                              "gpu_memory": gpu_memory, "n_threads": n_threads, "progress": False,
                              "fields": fields}

    def part_sweep(box: tuple[slice, ...]) -> Sweep:
        m, d, c, b = (a[s] for a, s in zip(axes, box[:4], strict=True))
        return run_sweep(m, d, c, b, gpu_list, **kwargs)

    boxes = parts(shape, chunk)
    first = part_sweep(next(boxes))   # every argument checked before the file is opened

    def blocks() -> Iterator[Mapping[str, np.ndarray]]:
        # a part's cells count on the bar once its rows are written: the next part is asked for only then
        with Chunks(math.prod(shape), 1, 1, progress, desc=f"vramcore sweep -> {os.fspath(path)}") as bar:
            part: Sweep | None = first
            while part is not None:
                yield from _export.iter_blocks(part)
                bar.advance(part.size)
                box = next(boxes, None)
                part = part_sweep(box) if box is not None else None

    return _export.write_blocks(first, blocks(), path)
