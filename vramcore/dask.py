"""Sweeps larger than memory, or than one machine: the grid as chunked dask arrays.

:func:`sweep_dask` splits the grid (models x dtypes x contexts x batches x
GPUs) into blocks along its axes; each block is one call of
:func:`vramcore.sweep` on the sub-axes, so the same compiled kernel computes
every cell and the results equal the in-memory sweep cell for cell.  Nothing is
computed until asked: :meth:`DaskSweep.compute` (an in-memory
:class:`vramcore.Sweep`), :meth:`DaskSweep.to_xarray` (a Dataset backed by
dask arrays), or :meth:`DaskSweep.to_parquet` (one Parquet file per block,
written by the workers, so the grid never has to fit anywhere).

Scheduling is dask's: by default local threads; pass ``client=`` (a
``dask.distributed.Client``) to run the blocks on a cluster.  This module
imports dask only when called (``pip install 'vramcore[dask]'``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import vramcore.grid.validation as _validation
import vramcore.io.export as _export
from vramcore._record import replace
from vramcore.grid.resolve import resolve_model
from vramcore.grid.results import DIMS, FIELDS, Sweep
from vramcore.grid.sweep import sweep

if TYPE_CHECKING:
    import dask.array
    import xarray

__all__ = ["DEFAULT_BLOCK_CELLS", "DaskSweep", "sweep_dask"]

#: Cells per block when ``chunks`` is None: every result field of a block is held at once (about
#: 100 bytes a cell, so ~100 MiB a block, dask's recommended size).
DEFAULT_BLOCK_CELLS = 1 << 20


def _object_array(values: Sequence[Any]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr


def _block(models: np.ndarray, dtypes: np.ndarray, contexts: np.ndarray, batches: np.ndarray, gpus: np.ndarray,
           *, kwargs: Mapping[str, Any]) -> np.ndarray:
    """Compute one block with :func:`vramcore.sweep`; stack the fields on a trailing axis (float64)."""
    s = sweep(list(models), list(dtypes), contexts, batches, list(gpus), **kwargs)
    out = np.empty((*s.shape, len(FIELDS)), dtype=np.float64)
    for i, f in enumerate(FIELDS):
        out[..., i] = getattr(s, f)
    return out


def _write_part(models: Sequence[Any], dtypes: Sequence[Any], contexts: np.ndarray, batches: np.ndarray,
                gpus: Sequence[Any], kwargs: Mapping[str, Any], path: str) -> int:
    """Compute one block and write it as one Parquet file; return its row count."""
    s = sweep(list(models), list(dtypes), contexts, batches, list(gpus), **kwargs)
    _export.write_parquet(s, path)
    return s.size


def _normalize_chunks(chunks: Any, shape: tuple[int, ...], cells_factor: int) -> tuple[tuple[int, ...], ...]:
    from dask.array.core import normalize_chunks

    if chunks is None:
        chunks = DEFAULT_BLOCK_CELLS
    if isinstance(chunks, bool):
        raise TypeError(f"chunks must be None, an int, a dict or a tuple, got {chunks!r}")
    if isinstance(chunks, int):
        if chunks < 1:
            raise ValueError(f"chunks (cells per block) must be >= 1, got {chunks}")
        limit = max(1, chunks // cells_factor) * 8
        return normalize_chunks("auto", shape, limit=limit, dtype=np.float64)
    if isinstance(chunks, Mapping):
        unknown = sorted(set(chunks) - set(DIMS))
        if unknown:
            raise ValueError(f"chunks has unknown axes {unknown}; valid axes: {', '.join(DIMS)}")
        per_axis = tuple(chunks.get(d, "auto") for d in DIMS)
    elif isinstance(chunks, (tuple, list)) and len(chunks) == len(DIMS):
        per_axis = tuple(chunks)
    else:
        raise TypeError(f"chunks must be None, an int (cells per block), a dict {{axis: length}} or a tuple of "
                        f"{len(DIMS)} ({', '.join(DIMS)}), got {chunks!r}")
    for d, c in zip(DIMS, per_axis, strict=True):
        if isinstance(c, bool) or (isinstance(c, int) and c < 1 and c != -1):
            raise ValueError(f"chunks[{d!r}] must be a block length >= 1, -1 (whole axis) or 'auto', got {c!r}")
    limit = max(1, DEFAULT_BLOCK_CELLS // cells_factor) * 8
    return normalize_chunks(per_axis, shape, limit=limit, dtype=np.float64)


def _check_client(client: Any) -> Any:
    if client is not None and not callable(getattr(client, "get", None)):
        raise TypeError(f"client must be a dask.distributed.Client or None, got {type(client).__name__}")
    return client


class DaskSweep:
    """A lazily evaluated, chunked sweep (see :func:`sweep_dask`).

    Attributes
    ----------
    models, dtypes, gpus, engines : tuple of str
        Axis labels (``engines`` has one name unless several engines are swept).
    contexts, batches : numpy.ndarray
        Axis values (int64).
    dims : tuple of str
        Axis names: model, dtype, context, batch, gpu (and engine when swept).
    shape : tuple of int
        Grid shape.
    chunks : tuple of tuple of int
        Block lengths along model, dtype, context, batch, gpu.
    client : dask.distributed.Client or None
        Where :meth:`compute` and :meth:`to_parquet` run (None: dask's default,
        local threads).
    """

    def __init__(self, probe: Sweep, inputs: tuple[list[Any], list[Any], np.ndarray, np.ndarray, list[Any]],
                 chunks: tuple[tuple[int, ...], ...], client: Any, kwargs: dict[str, Any]) -> None:
        import dask.array as da

        self._probe = probe
        self._inputs = inputs
        self._kwargs = kwargs
        self.client = client
        self.chunks = chunks
        self.models, self.dtypes, self.gpus, self.engines = probe.models, probe.dtypes, probe.gpus, probe.engines
        self.contexts, self.batches = inputs[2], inputs[3]
        self.dims: tuple[str, ...] = probe.dims
        self.shape: tuple[int, ...] = (len(inputs[0]), len(inputs[1]), len(inputs[2]), len(inputs[3]),
                                       len(inputs[4])) + probe.shape[5:]
        objects = [_object_array(inputs[0]), _object_array(inputs[1]), inputs[2], inputs[3],
                   _object_array(inputs[4])]
        axes = [da.from_array(a, chunks=(c,)) for a, c in zip(objects, chunks, strict=True)]
        index = "mdcbg" + ("e" if len(self.dims) == 6 else "")
        new_axes = {"f": len(FIELDS)}
        if len(self.dims) == 6:
            new_axes = {"e": len(self.engines), **new_axes}
        # align_arrays=False: every input has its own index, nothing to align (an outer product).
        self._stacked = da.blockwise(_block, index + "f", *(x for a, i in zip(axes, "mdcbg", strict=True)
                                                           for x in (a, i)),
                                     new_axes=new_axes, dtype=np.float64, align_arrays=False,
                                     meta=np.empty((0,) * (len(index) + 1), dtype=np.float64), kwargs=kwargs)

    @property
    def size(self) -> int:
        """Number of configurations."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def numblocks(self) -> tuple[int, ...]:
        """Blocks along model, dtype, context, batch, gpu."""
        return tuple(len(c) for c in self.chunks)

    def field(self, name: str) -> dask.array.Array:
        """One result field as a lazy dask array of the grid's shape (``fits``: bool, ``reasons``: uint16).

        Also ``lazy.<name>``.
        """
        if name not in FIELDS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        arr = self._stacked[..., FIELDS.index(name)]
        if name == "fits":
            return arr != 0
        return arr.astype(np.uint16) if name == "reasons" else arr

    @property
    def arrays(self) -> dict[str, dask.array.Array]:
        """Field name -> lazy dask array of the grid's shape (``fits``: bool)."""
        return {f: self.field(f) for f in FIELDS}

    def __getattr__(self, name: str) -> dask.array.Array:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.field(name)

    def _scheduler(self) -> Any:
        return self.client  # None: dask's default scheduler (local threads unless configured otherwise)

    def compute(self) -> Sweep:
        """Compute every block and gather the result in memory.

        Returns
        -------
        Sweep
            Equal, cell for cell, to :func:`vramcore.sweep` on the same axes.
        """
        import dask

        arrays = self.arrays
        values = dask.compute(*arrays.values(), scheduler=self._scheduler())
        fields: dict[str, Any] = {f: np.asarray(v) for f, v in zip(arrays, values, strict=True)}
        return replace(self._probe, contexts=self.contexts, batches=self.batches,
                                   specs=tuple(self._inputs[0]), **fields)

    def to_xarray(self) -> xarray.Dataset:
        """Return the grid as an xarray Dataset of lazy dask arrays (one variable per field).

        Units are in each variable's attrs, as in :meth:`vramcore.Sweep.to_xarray`.
        Requires xarray (``pip install 'vramcore[xarray]'``).

        Returns
        -------
        xarray.Dataset
        """
        labels: dict[str, Any] = {"model": self.models, "dtype": self.dtypes, "context": self.contexts,
                                  "batch": self.batches, "gpu": self.gpus}
        if len(self.dims) == 6:
            labels["engine"] = self.engines
        return _export.dataset(labels, self.arrays, _export.sweep_attrs(self._probe))

    def to_parquet(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> list[str]:
        """Write the long format as partitioned Parquet: one file per block, written where the block is computed.

        Each part (``part-000000.parquet``, ... in block order) is written
        atomically by the worker that computes it, so memory holds one block
        per worker at a time.  Read the folder back with
        ``pyarrow.parquet.read_table(path)``, ``pandas.read_parquet(path)`` or
        ``dask.dataframe.read_parquet(path)``; rows are in block order.

        Parameters
        ----------
        path : str or path-like
            Folder to write (created if missing).  On a cluster it must be
            reachable by every worker under the same name.
        overwrite : bool
            Remove the ``part-*.parquet`` files already there first; without
            it a folder that holds parts is an error.

        Returns
        -------
        list of str
            The part files written.

        Raises
        ------
        FileExistsError
            The folder holds parts and `overwrite` is False.
        ImportError
            pyarrow is not installed.

        Examples
        --------
        >>> import tempfile, pyarrow.parquet as pq
        >>> folder = tempfile.mkdtemp()
        >>> lazy = sweep_dask("Qwen3-8B", ["bf16", "int4"], [4096, 32768], [1, 8], ["H100", "L4"],
        ...                   chunks={"dtype": 1})
        >>> [p.rsplit("/", 1)[-1] for p in lazy.to_parquet(folder)]
        ['part-000000.parquet', 'part-000001.parquet']
        >>> pq.read_table(folder).num_rows
        16
        """
        import dask

        _export.require("pyarrow", "parquet", "DaskSweep.to_parquet()")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        old = sorted(folder.glob("part-*.parquet"))
        if old and not overwrite:
            raise FileExistsError(f"{os.fspath(folder)!r} already holds {len(old)} part files; "
                                  "pass overwrite=True to replace them")
        for p in old:
            p.unlink()
        bounds = [np.cumsum((0, *c)) for c in self.chunks]
        models, dtypes, contexts, batches, gpus = self._inputs
        tasks, names = [], []
        write = dask.delayed(_write_part, pure=False)
        for n, block in enumerate(np.ndindex(*self.numblocks)):
            (m0, m1), (d0, d1), (c0, c1), (b0, b1), (g0, g1) = (
                (int(b[i]), int(b[i + 1])) for b, i in zip(bounds, block, strict=True))
            name = os.fspath(folder / f"part-{n:06d}.parquet")
            names.append(name)
            tasks.append(write(models[m0:m1], dtypes[d0:d1], contexts[c0:c1], batches[b0:b1], gpus[g0:g1],
                               self._kwargs, name))
        dask.compute(*tasks, scheduler=self._scheduler())
        return names

    def __repr__(self) -> str:
        return (f"DaskSweep(shape={self.shape}, numblocks={self.numblocks}, models={list(self.models)}, "
                f"dtypes={list(self.dtypes)}, contexts={len(self.contexts)} values, "
                f"batches={len(self.batches)} values, gpus={list(self.gpus)}, engines={list(self.engines)})")


def sweep_dask(models: Any, dtypes: Any = "bf16", contexts: Any = 4096, batches: Any = 1,
               gpus: Any = "H100-SXM-80GB", *, chunks: int | Mapping[str, Any] | Sequence[Any] | None = None,
               client: Any = None, **kwargs: Any) -> DaskSweep:
    """Plan a sweep in blocks, each computed lazily by :func:`vramcore.sweep` on sub-axes.

    Every argument is checked here, at once, so a bad value fails before any
    block runs.  Nothing else is computed until :meth:`DaskSweep.compute`,
    :meth:`DaskSweep.to_xarray` (then ``.compute()`` / ``.load()``) or
    :meth:`DaskSweep.to_parquet`.

    Parameters
    ----------
    models, dtypes, contexts, batches, gpus
        The axes, as for :func:`vramcore.sweep`.
    chunks : int, dict, tuple or None
        Block shape.  None: about ``2**20`` cells a block, shaped by dask's
        ``"auto"`` rule; an int: about that many cells a block; a dict
        ``{axis: length}`` (axes model, dtype, context, batch, gpu; -1 for a
        whole axis; axes left out are ``"auto"``); or a tuple of five such
        lengths (or tuples of lengths), as in ``dask.array``.
    client : dask.distributed.Client, optional
        Run on this cluster; None uses dask's default scheduler (local
        threads, unless a distributed Client has made itself the default).
    **kwargs
        Passed to :func:`vramcore.sweep` for every block (``kv_dtype``,
        ``engine``, ``n_gpus``, ``tp``, ``pp``, ``gpu_memory``, ...).
        ``n_threads`` defaults to 1 (dask runs blocks in parallel); progress
        bars are off inside blocks.

    Returns
    -------
    DaskSweep

    Raises
    ------
    ValueError, TypeError
        Any invalid argument, named with its value.
    ImportError
        dask is not installed (``pip install 'vramcore[dask]'``).

    Examples
    --------
    >>> from vramcore.dask import sweep_dask
    >>> lazy = sweep_dask(["Qwen3-8B", "Llama-3.2-1B"], ["bf16", "int4"], [4096, 32768, 131072], [1, 8, 64],
    ...                   ["H100", "L4"], chunks={"model": 1, "context": 2})
    >>> lazy.shape, lazy.numblocks
    ((2, 2, 3, 3, 2), (2, 1, 2, 1, 1))
    >>> s = lazy.compute()
    >>> import numpy as np, vramcore
    >>> bool(np.array_equal(s.total_bytes, vramcore.sweep(["Qwen3-8B", "Llama-3.2-1B"], ["bf16", "int4"],
    ...      [4096, 32768, 131072], [1, 8, 64], ["H100", "L4"]).total_bytes))
    True
    >>> int(lazy.fits.sum().compute()) == int(s.fits.sum())  # lazy dask arrays
    True
    """
    _export.require("dask.array", "dask", "vramcore.dask")
    if "progress" in kwargs and kwargs["progress"] not in (None, False, True):
        raise TypeError(f"progress must be True, False or None, got {kwargs['progress']!r}")
    kwargs = {**kwargs, "progress": False}
    kwargs.setdefault("n_threads", 1)
    client = _check_client(client)
    specs = [resolve_model(m, "models") for m in _validation.as_list("models", models)]
    dtype_list = _validation.as_list("dtypes", dtypes)
    ctx = _validation.positive_counts("contexts", contexts).astype(np.int64)
    bat = _validation.positive_counts("batches", batches).astype(np.int64)
    # as the caller spelled them (the labels); the probe resolves and validates them
    gpu_list = _validation.as_list("gpus", gpus)
    # the probe validates every model, dtype, GPU and keyword at once (one context, one batch)
    probe = sweep(specs, dtype_list, ctx[:1], bat[:1], gpu_list, **kwargs)
    n_engines = probe.shape[5] if len(probe.shape) == 6 else 1
    shape = (len(specs), len(dtype_list), ctx.size, bat.size, len(gpu_list))
    normalized = _normalize_chunks(chunks, shape, n_engines)
    return DaskSweep(probe, (specs, dtype_list, ctx, bat, gpu_list), normalized, client, kwargs)
