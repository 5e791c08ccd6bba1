"""What the grid returns: :class:`Estimate` (one configuration) and :class:`Sweep` (a grid of them).

Both entry points, :func:`vramcore.estimate` and :func:`vramcore.sweep`, build
their results here; a sweep's cell is an Estimate with the same field names.
Exports go down to :mod:`vramcore.io`, which knows arrays and labels, not
results.
"""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike

import numpy as np

from vramcore._record import record
from vramcore.engines import EngineSpec
from vramcore.engines.base import engine_attention
from vramcore.grid.cell import result_dtype_name, result_weights_by_part
from vramcore.grid.record import (  # noqa: F401 -- re-exported: the names of vramcore.grid.results
    BLOCKING_REASONS,
    FIELDS,
    GPU_REASONS,
    REASONS,
    Estimate,
    reason_names,
)
from vramcore.model.spec import ModelSpec
from vramcore.storage.resolve import get_dtype

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    import pandas
    import xarray

__all__ = ["BLOCKING_REASONS", "DIMS", "FIELDS", "REASONS", "Estimate", "Sweep", "reason_names"]

#: Axis names of a sweep (a sixth, "engine", when several engines are swept).
DIMS: tuple[str, ...] = ("model", "dtype", "context", "batch", "gpu")


@record(frozen=True, eq=False)
class Sweep:
    """Results of :func:`sweep` over the grid (models, dtypes, contexts, batches, gpus).

    Every result field is a float64 (``fits``: bool; ``reasons``: uint16
    codes, bit ``1 << i`` for :data:`REASONS` ``[i]``, decoded by
    :func:`reason_names`) array of shape
    ``(len(models), len(dtypes), len(contexts), len(batches), len(gpus))``
    (plus a trailing ``len(engines)`` axis when a list of engines is swept),
    named as in :class:`vramcore.Estimate`; byte counts are per GPU and exact
    integers up to 2**53.  ``gpu_bytes`` is a read-only broadcast view.

    Attributes
    ----------
    models, dtypes, gpus : tuple of str
        Axis labels: dtypes and GPUs as the caller spelled them (``"fp8"``,
        ``"H100"``), so that ``ds.sel(gpu="H100")``, ``df[df.gpu == "H100"]``
        and plot ``select=`` find them; models by their names.
    dtype_names, gpu_names : tuple of str
        The canonical names beside the labels (``"fp8_e4m3"``,
        ``"H100-SXM-80GB"``); a cell's Estimate carries these.
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
    weights_bytes: np.ndarray | None
    kv_cache_bytes: np.ndarray | None
    activation_bytes: np.ndarray | None
    overhead_bytes: np.ndarray | None
    total_bytes: np.ndarray | None
    gpu_bytes: np.ndarray
    fits: np.ndarray | None
    headroom_bytes: np.ndarray | None
    kv_capacity_tokens: np.ndarray | None
    kv_blocks: np.ndarray | None
    max_concurrency: np.ndarray | None
    host_bytes: np.ndarray | None
    gradients_bytes: np.ndarray | None
    optimizer_bytes: np.ndarray | None
    master_weights_bytes: np.ndarray | None
    trainable_params: np.ndarray | None
    reasons: np.ndarray | None
    state_bytes: np.ndarray | None = None
    tp: int = 1
    pp: int = 1
    weights_part_bytes: np.ndarray | None = None
    dtype_names: tuple[str, ...] = ()
    gpu_names: tuple[str, ...] = ()

    @property
    def bits_per_weight(self) -> np.ndarray:
        """Effective bits per parameter of each (model, dtype): whole-model weight bytes x 8 / parameters.

        Examples
        --------
        >>> from vramcore import sweep
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
        name = self.dtype_names[j] if self.dtype_names else self.dtypes[j]
        if name != "auto":
            return name
        from vramcore.storage.resolve import resolve_auto

        return resolve_auto(self.specs[i]).name

    @staticmethod
    def reason_names(code: int) -> tuple[str, ...]:
        """Return the names of a ``reasons`` code (:func:`reason_names`)."""
        return reason_names(code)

    @property
    def fields(self) -> tuple[str, ...]:
        """Names of the result fields this sweep holds, in :data:`FIELDS` order (all unless ``fields=`` chose)."""
        return tuple(f for f in FIELDS if getattr(self, f) is not None)

    def field(self, name: str) -> np.ndarray:
        """Return the array of result field `name`.

        Raises
        ------
        ValueError
            Not a result field, or one this sweep did not compute (``sweep(..., fields=...)``).
        """
        if name not in FIELDS:
            raise ValueError(f"{name!r} is not a result field; the fields: {', '.join(FIELDS)}")
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"this sweep computed only {', '.join(self.fields)}; pass fields= with {name!r} "
                             "(or leave fields out for every field)")
        return value

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape (models, dtypes, contexts, batches, gpus[, engines])."""
        return tuple(self.gpu_bytes.shape)

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
        return int(self.gpu_bytes.size)

    def cell(self, *index: int) -> Any:
        """Return one cell, ``cell(i, j, k, l, m[, e])``, as an :class:`vramcore.Estimate`."""
        if len(index) != len(self.shape):
            raise ValueError(f"cell() takes {len(self.shape)} indices ({', '.join(self.dims)}), got {len(index)}")
        i, j, k, l, m = index[:5]  # noqa: E741
        missing = [f for f in FIELDS if getattr(self, f) is None]
        if missing:
            raise ValueError(f"cell() needs every field; this sweep computed only {', '.join(self.fields)}")
        engine = self.engines[index[5]] if len(index) == 6 else self.engines[0]
        values: dict[str, Any] = {f: float(getattr(self, f)[index]) for f in FIELDS if f not in ("fits", "reasons")}
        values["fits"] = bool(self.field("fits")[index])
        values["reasons"] = reason_names(int(self.field("reasons")[index]))
        spec_engine = self.engine[index[5]] if isinstance(self.engine, tuple) else self.engine
        given = get_dtype(self.dtype_names[j] if self.dtype_names else self.dtypes[j])
        # as the scalar path names them (vramcore.grid.cell): "auto" resolved, training's dtype and adapters
        dtype = result_dtype_name(self.specs[i], given, spec_engine)
        if self.weights_part_bytes is not None:
            values["weights_by_part"] = result_weights_by_part(self.specs[i], given, spec_engine)
            values["param_count"] = self.specs[i].param_count
        return Estimate(
            attention=engine_attention(self.specs[i], spec_engine),
            model=self.models[i], dtype=dtype, kv_dtype=self.kv_dtype,
            context=int(self.contexts[k]), batch=int(self.batches[l]),
            gpu=self.gpu_names[m] if self.gpu_names else self.gpus[m],
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
        for f in self.fields:
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
        >>> from vramcore import sweep
        >>> ds = sweep("Qwen3-8B", ["bf16", "int4"], [4096, 32768], [1, 8], ["H100", "L4"]).to_xarray()
        >>> ds.total_bytes.dims
        ('model', 'dtype', 'context', 'batch', 'gpu')
        >>> ds.kv_cache_bytes.attrs["units"]
        'bytes'
        >>> bool(ds.fits.sel(dtype="int4", context=4096, batch=1, gpu="L4").item())
        True
        """
        import vramcore.io.export as _export

        return _export.dataset(_export.axis_labels(self), {f: getattr(self, f) for f in self.fields},
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
        >>> from vramcore import sweep
        >>> path = os.path.join(tempfile.mkdtemp(), "grid.parquet")
        >>> sweep("Qwen3-8B", "bf16", [4096, 8192], [1, 2], "H100").to_parquet(path)
        >>> pq.read_table(path).num_rows
        4
        """
        import vramcore.io.export as _export

        _export.write_parquet(self, path)

    def __repr__(self) -> str:
        return (f"Sweep(shape={self.shape}, models={list(self.models)}, dtypes={list(self.dtypes)}, "
                f"contexts={self.contexts.tolist()}, batches={self.batches.tolist()}, "
                f"gpus={list(self.gpus)}, engines={list(self.engines)})")
