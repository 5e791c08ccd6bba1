"""Results into the user's tools: xarray, Parquet, CSV, JSON and text tables, written atomically.

Every writer here streams a :class:`vramcore.Sweep` in blocks of rows of its
long format (one row per cell, C order over the axes), so that the output
never needs a second in-memory copy of the grid.  Files are written under a
temporary name in the destination folder and moved into place with
:func:`os.replace` only when complete, so an interrupted write leaves the
previous file (or none), never a truncated one.  Optional libraries are
imported inside the functions that need them (:func:`require`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType

import numpy as np

from vramcore._units import GiB

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import IO, Any

    import pyarrow
    import xarray

    from vramcore.grid.results import Sweep

__all__ = ["FORMATS", "ROWS_PER_BLOCK", "atomic_path", "axis_labels", "csv_blocks", "dataset", "field_attrs",
           "format_of", "iter_blocks", "json_blocks", "parquet_blocks", "require", "write", "write_blocks", "write_csv",
           "write_json", "write_parquet", "write_table"]

#: Long-format rows per block when streaming a sweep out.
ROWS_PER_BLOCK = 1 << 20

#: Output formats by file extension.
FORMATS: dict[str, str] = {".csv": "csv", ".parquet": "parquet", ".json": "json"}

#: Units of the result fields that are not byte counts.
_UNITS = {"kv_capacity_tokens": "tokens", "kv_blocks": "blocks", "max_concurrency": "sequences"}

#: Columns of the text table: (field, header); byte fields shown in GiB.
_TABLE = (("weights_bytes", "weights"), ("kv_cache_bytes", "KV cache"), ("activation_bytes", "activations"),
          ("overhead_bytes", "overhead"), ("total_bytes", "total"), ("gpu_bytes", "GPU"),
          ("headroom_bytes", "headroom"))


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional dependency or raise an ImportError naming the extra to install.

    Examples
    --------
    >>> require("json", "none", "this example").__name__
    'json'
    >>> require("no_such_module_xyz", "plot", "vramcore.plot")
    Traceback (most recent call last):
        ...
    ImportError: vramcore.plot needs no_such_module_xyz: pip install 'vramcore[plot]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ImportError(f"{what} needs {top}: pip install 'vramcore[{extra}]'") from exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds.

    The temporary file is named ``.NAME.RANDOM.tmp`` in the same folder (so
    :func:`os.replace` is atomic) and is removed when the block raises,
    KeyboardInterrupt included.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "out.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (folder / "out.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('done', ['out.txt'])
    """
    final = Path(path)
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def axis_labels(sweep: Sweep) -> dict[str, np.ndarray]:
    """Axis name -> labels (object arrays of str, int64 arrays for contexts and batches)."""
    labels: dict[str, np.ndarray] = {}
    for dim in sweep.dims:
        if dim == "context":
            labels[dim] = np.asarray(sweep.contexts, dtype=np.int64)
        elif dim == "batch":
            labels[dim] = np.asarray(sweep.batches, dtype=np.int64)
        else:
            values = {"model": sweep.models, "dtype": sweep.dtypes, "gpu": sweep.gpus, "engine": sweep.engines}[dim]
            arr = np.empty(len(values), dtype=object)
            arr[:] = list(values)
            labels[dim] = arr
    return labels


def field_attrs(field: str) -> dict[str, str]:
    """Attributes of a result field: its units (``"bytes"`` for byte counts) and a description.

    Examples
    --------
    >>> field_attrs("kv_cache_bytes")
    {'units': 'bytes', 'long_name': 'kv cache bytes'}
    >>> field_attrs("fits")
    {'long_name': 'no blocking reason (see reasons)'}
    """
    if field == "fits":
        return {"long_name": "no blocking reason (see reasons)"}
    if field == "reasons":
        return {"long_name": "why it does not fit: bit i is vramcore.grid.results.REASONS[i]"}
    units = _UNITS.get(field, "bytes" if field.endswith("_bytes") else "1")
    return {"units": units, "long_name": field.replace("_", " ")}


def sweep_attrs(sweep: Sweep) -> dict[str, Any]:
    """Metadata of a sweep as plain str / int values (netCDF- and JSON-safe)."""
    from vramcore import __version__

    attrs: dict[str, Any] = {"n_gpus": int(sweep.n_gpus), "tp": int(getattr(sweep, "tp", 1)),
                             "pp": int(getattr(sweep, "pp", 1)), "vramcore_version": __version__}
    if "engine" not in sweep.dims:
        attrs["engine"] = sweep.engines[0]
    attrs["kv_dtype"] = sweep.kv_dtype if sweep.kv_dtype is not None else "compute dtype"
    return attrs


def dataset(labels: Mapping[str, Any], data: Mapping[str, Any], attrs: Mapping[str, Any]) -> xarray.Dataset:
    """Build an xarray Dataset: one variable per field over ``labels``' dims (numpy or dask arrays)."""
    xr = require("xarray", "xarray", "to_xarray()")
    dims = tuple(labels)
    coords: dict[str, Any] = {d: (d, list(v) if np.asarray(v).dtype == object else np.asarray(v), {})
                              for d, v in labels.items()}
    coords["context"] = ("context", np.asarray(labels["context"], dtype=np.int64), {"units": "tokens"})
    coords["batch"] = ("batch", np.asarray(labels["batch"], dtype=np.int64), {"units": "sequences"})
    variables = {f: (dims, arr, field_attrs(f)) for f, arr in data.items()}
    return xr.Dataset(variables, coords=coords, attrs=dict(attrs))


def iter_blocks(sweep: Sweep, rows: int = ROWS_PER_BLOCK) -> Iterator[dict[str, np.ndarray]]:
    """Yield the long format in blocks: axis columns (labels) then one column per field.

    Examples
    --------
    >>> import vramcore
    >>> s = vramcore.sweep("Qwen3-8B", ["bf16", "int4"], [4096, 8192], 1, "H100")
    >>> [(b["dtype"].tolist(), b["context"].tolist()) for b in iter_blocks(s, rows=3)]
    [(['bf16', 'bf16', 'int4'], [4096, 8192, 4096]), (['int4'], [8192])]
    """
    labels = axis_labels(sweep)
    shape = sweep.shape
    arrays = {f: np.asarray(getattr(sweep, f)) for f in sweep.fields}
    # contiguous fields are sliced flat; broadcast views (gpu_bytes) are gathered per block, never copied whole
    flat = {f: a.reshape(-1) for f, a in arrays.items() if a.flags.c_contiguous}
    for start in range(0, sweep.size, rows):
        stop = min(sweep.size, start + rows)
        index = np.unravel_index(np.arange(start, stop), shape)
        block: dict[str, np.ndarray] = {d: labels[d][i] for d, i in zip(labels, index, strict=True)}
        block.update({f: flat[f][start:stop] if f in flat else a[index] for f, a in arrays.items()})
        yield block


def _arrow_block(block: Mapping[str, np.ndarray], dims: tuple[str, ...]) -> pyarrow.Table:
    import pyarrow as pa

    columns = {}
    for name, arr in block.items():
        if name in dims and arr.dtype == object:
            columns[name] = pa.array(arr.tolist(), type=pa.string())
        else:
            columns[name] = pa.array(arr)
    return pa.table(columns)


def arrow_schema_metadata(sweep: Sweep) -> dict[bytes, bytes]:
    """Return the Parquet schema metadata: the sweep's attributes and each field's units."""
    meta = {"attrs": sweep_attrs(sweep), "units": {f: field_attrs(f).get("units") for f in sweep.fields}}
    return {b"vramcore": json.dumps(meta).encode()}


def write_parquet(sweep: Sweep, path: str | os.PathLike[str], rows: int = ROWS_PER_BLOCK) -> None:
    """Write the long format to one Parquet file (one row group per block), atomically."""
    parquet_blocks(sweep, iter_blocks(sweep, rows), path)


def parquet_blocks(sweep: Sweep, blocks: Iterable[Mapping[str, np.ndarray]], path: str | os.PathLike[str]) -> None:
    """Write long-format `blocks` (of `sweep`'s axes and fields) to one Parquet file, a row group each, atomically.

    `sweep` names the columns and the schema metadata; the blocks may come
    from it or, streamed, from the sweeps of consecutive parts of one grid
    (:func:`vramcore.sweep_to`).
    """
    require("pyarrow", "parquet", "Parquet output")
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        writer = None
        try:
            for block in blocks:
                table = _arrow_block(block, sweep.dims)
                if writer is None:
                    schema = table.schema.with_metadata(arrow_schema_metadata(sweep))
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.replace_schema_metadata(schema.metadata))
        finally:
            if writer is not None:
                writer.close()


def _plain(values: np.ndarray) -> list[Any]:
    """Numbers as JSON/CSV values: exact ints where a float column holds whole numbers, None for NaN/inf."""
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if finite.all() and (values == np.floor(values)).all() and (np.abs(values) <= 2**53).all():
            return values.astype(np.int64).tolist()
        return [float(v) if math.isfinite(v) else None for v in values.tolist()]
    return values.tolist()


def _rows(block: Mapping[str, np.ndarray]) -> Iterator[tuple[Any, ...]]:
    return zip(*(_plain(a) for a in block.values()), strict=True)


def write_csv(sweep: Sweep, stream: IO[str], rows: int = ROWS_PER_BLOCK) -> None:
    """Write the long format as CSV: a header, then one line per cell; bytes as exact integers."""
    csv_blocks(sweep, iter_blocks(sweep, rows), stream)


def csv_blocks(sweep: Sweep, blocks: Iterable[Mapping[str, np.ndarray]], stream: IO[str]) -> None:
    """Write long-format `blocks` as CSV under the header of `sweep`'s axes and fields."""
    import csv

    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([*sweep.dims, *sweep.fields])
    for block in blocks:
        writer.writerows(tuple("true" if v is True else "false" if v is False else v for v in row)
                         for row in _rows(block))


def write_json(sweep: Sweep, stream: IO[str], rows: int = ROWS_PER_BLOCK) -> None:
    """Write the long format as a JSON array of records (one object per cell); bytes as exact integers."""
    json_blocks(sweep, iter_blocks(sweep, rows), stream)


def json_blocks(sweep: Sweep, blocks: Iterable[Mapping[str, np.ndarray]], stream: IO[str]) -> None:
    """Write long-format `blocks` as one JSON array of records named by `sweep`'s axes and fields."""
    names = [*sweep.dims, *sweep.fields]
    stream.write("[")
    first = True
    for block in blocks:
        for row in _rows(block):
            stream.write(("\n" if first else ",\n") + json.dumps(dict(zip(names, row, strict=True))))
            first = False
    stream.write("\n]\n")


def _gib(x: float) -> str:
    return f"{x / GiB:.2f}" if math.isfinite(x) else str(x)


def write_table(sweep: Sweep, stream: IO[str], rows: int = ROWS_PER_BLOCK) -> None:
    """Write a readable fixed-width table: the axes, the parts in GiB, the GPU memory, headroom and fit."""
    missing = [f for f in (*(f for f, _ in _TABLE), "fits", "reasons") if f not in sweep.fields]
    if missing:
        raise ValueError(f"the table shows {', '.join(missing)}, which this sweep did not compute (fields=); "
                         "write a .csv, .parquet or .json file, or sweep every field")
    labels = axis_labels(sweep)
    widths = {d: max(len(d), *(len(str(v)) for v in labels[d])) for d in sweep.dims}
    heads = [f"{h} GiB" for _, h in _TABLE]
    num_w = [max(len(h), 9) for h in heads]
    line = "  ".join([*(f"{d:<{widths[d]}}" for d in sweep.dims), *(f"{h:>{w}}" for h, w in zip(heads, num_w,
                                                                                                strict=True)),
                      "fits  why"])
    stream.write(line + "\n")
    for block in iter_blocks(sweep, rows):
        cols = [block[d].tolist() for d in sweep.dims] + [block[f].tolist() for f, _ in _TABLE]
        fits = block["fits"].tolist()
        why = block["reasons"].tolist()
        n_dims = len(sweep.dims)
        for r, ok in enumerate(fits):
            cells = [f"{cols[i][r]!s:<{widths[d]}}" if isinstance(cols[i][r], str) else f"{cols[i][r]:>{widths[d]}}"
                     for i, d in enumerate(sweep.dims)]
            cells += [f"{_gib(cols[n_dims + j][r]):>{w}}" for j, w in enumerate(num_w)]
            cells.append("yes " if ok else "NO  ")
            cells.append(", ".join(sweep.reason_names(why[r])))
            stream.write("  ".join(cells).rstrip() + "\n")
    stream.write("GiB = 2**30 bytes; headroom = GPU - total (vLLM / SGLang / TensorRT-LLM: the KV pool's memory "
                 "beyond the request); every figure is per GPU\n")


_BLOCK_WRITERS: dict[str, Callable[[Sweep, Iterable[Mapping[str, np.ndarray]], IO[str]], None]] = {
    "csv": csv_blocks, "json": json_blocks}


def format_of(path: str | os.PathLike[str]) -> str:
    """Return the output format `path`'s extension names (.csv, .parquet, .json).

    Raises
    ------
    ValueError
        Unknown extension (the message lists the known ones).

    Examples
    --------
    >>> format_of("grid.PARQUET")
    'parquet'
    """
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the format of {os.fspath(path)!r}: use one of "
                         f"{', '.join(FORMATS)}")
    return fmt


def write(sweep: Sweep, path: str | os.PathLike[str]) -> str:
    """Write `sweep` to `path` in the format its extension names (.csv, .parquet, .json), atomically.

    Returns
    -------
    str
        The format written.

    Raises
    ------
    ValueError
        Unknown extension (the message lists the known ones).
    ImportError
        Parquet without pyarrow.
    """
    return write_blocks(sweep, iter_blocks(sweep), path)


def write_blocks(sweep: Sweep, blocks: Iterable[Mapping[str, np.ndarray]], path: str | os.PathLike[str]) -> str:
    """Write long-format `blocks` of `sweep`'s columns to `path` in the format its extension names, atomically.

    Returns
    -------
    str
        The format written.
    """
    fmt = format_of(path)
    if fmt == "parquet":
        parquet_blocks(sweep, blocks, path)
        return fmt
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as stream:
        _BLOCK_WRITERS[fmt](sweep, blocks, stream)
    return fmt
