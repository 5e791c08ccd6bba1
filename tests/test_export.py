"""Sweep results in other tools: xarray, Parquet, CSV, JSON; atomic writes; lazy optional imports."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import vramcore
import vramcore.io.export as _export
from vramcore.grid.sweep import FIELDS

SEED = "DeepSeek-R1-Distill-Llama-8B"


@pytest.fixture(scope="module")
def grid() -> vramcore.Sweep:
    return vramcore.sweep([SEED, "Qwen3-8B"], ["bf16", "int4"], [4096, 32768, 131072], [1, 8], ["H100", "L4"])


def test_to_xarray_labels_units_and_values(grid: vramcore.Sweep) -> None:
    xr = pytest.importorskip("xarray")
    ds = grid.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert tuple(ds.dims) == ("model", "dtype", "context", "batch", "gpu")
    assert set(ds.data_vars) == set(FIELDS)
    assert ds["context"].values.tolist() == [4096, 32768, 131072]
    assert ds["gpu"].values.tolist() == ["H100", "L4"]  # as the caller spelled them
    for f in FIELDS:
        np.testing.assert_array_equal(ds[f].values, getattr(grid, f))
        if f.endswith("_bytes"):
            assert ds[f].attrs["units"] == "bytes"
    assert ds["fits"].dtype == bool and "units" not in ds["fits"].attrs
    assert ds.attrs["engine"] == "transformers" and ds.attrs["n_gpus"] == 1
    cell = grid.cell(0, 0, 1, 1, 1)
    picked = ds.sel(model=SEED, dtype="bf16", context=32768, batch=8, gpu="L4")
    assert float(picked.total_bytes) == cell.total_bytes and bool(picked.fits) == cell.fits


def test_to_xarray_engine_axis() -> None:
    pytest.importorskip("xarray")
    s = vramcore.sweep(SEED, "bf16", 8192, 1, "H100", engine=["transformers", "vllm"])
    ds = s.to_xarray()
    assert ds.total_bytes.dims[-1] == "engine" and ds["engine"].values.tolist() == ["transformers", "vllm"]
    assert "engine" not in ds.attrs


def test_to_parquet_long_format_matches_pandas(grid: vramcore.Sweep, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("pandas")
    path = tmp_path / "grid.parquet"
    grid.to_parquet(path)
    table = pq.read_table(path)
    assert table.num_rows == grid.size
    assert table.column_names == ["model", "dtype", "context", "batch", "gpu", *FIELDS]
    meta = json.loads(table.schema.metadata[b"vramcore"])
    assert meta["units"]["total_bytes"] == "bytes" and meta["attrs"]["engine"] == "transformers"
    got = table.to_pandas()
    want = grid.to_pandas()
    for column in want.columns:
        assert got[column].tolist() == want[column].tolist(), column
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.parquet"]  # no temporary left


def test_parquet_streams_in_row_groups(grid: vramcore.Sweep, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "g.parquet"
    _export.write_parquet(grid, path, rows=10)
    f = pq.ParquetFile(path)
    assert f.metadata.num_row_groups == -(-grid.size // 10)
    assert f.read().column("total_bytes").to_pylist() == grid.total_bytes.reshape(-1).tolist()


def test_csv_and_json_round_trip(grid: vramcore.Sweep) -> None:
    import csv

    buf = io.StringIO()
    _export.write_csv(grid, buf, rows=7)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(rows) == grid.size
    first = grid.cell(0, 0, 0, 0, 0)
    assert rows[0]["model"] == SEED and rows[0]["context"] == "4096"
    assert int(rows[0]["kv_cache_bytes"]) == first.kv_cache_bytes  # exact integer bytes, no exponent
    assert {r["fits"] for r in rows} == {"true", "false"}

    buf = io.StringIO()
    _export.write_json(grid, buf, rows=7)
    records = json.loads(buf.getvalue())
    assert len(records) == grid.size
    assert records[0]["kv_cache_bytes"] == first.kv_cache_bytes and records[0]["fits"] is True
    assert [r["total_bytes"] for r in records] == grid.total_bytes.reshape(-1).tolist()


def test_write_by_extension(grid: vramcore.Sweep, tmp_path: Path) -> None:
    assert _export.write(grid, tmp_path / "a.csv") == "csv"
    assert _export.write(grid, tmp_path / "a.JSON") == "json"
    with pytest.raises(ValueError, match=r"cannot tell the format of .*a\.xlsx.*\.csv, \.parquet, \.json"):
        _export.write(grid, tmp_path / "a.xlsx")


def test_atomic_write_keeps_old_file_on_error(grid: vramcore.Sweep, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.csv"
    path.write_text("previous\n")

    def interrupted(sweep: object, blocks: object, stream: io.TextIOBase) -> None:
        stream.write("model,dtype\npartial")
        raise KeyboardInterrupt("simulated Ctrl-C while writing")

    monkeypatch.setitem(_export._BLOCK_WRITERS, "csv", interrupted)
    with pytest.raises(KeyboardInterrupt, match="simulated"):
        _export.write(grid, path)
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # the temporary is gone


def test_atomic_parquet_leaves_nothing_on_error(grid: vramcore.Sweep, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyarrow")
    calls = []
    real = _export.iter_blocks

    def failing(sweep: vramcore.Sweep, rows: int = 1) -> object:
        for block in real(sweep, 5):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt("simulated")
            yield block

    monkeypatch.setattr(_export, "iter_blocks", failing)
    with pytest.raises(KeyboardInterrupt):
        grid.to_parquet(tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []


def test_missing_extra_names_it(grid: vramcore.Sweep, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(ImportError, match=r"to_xarray\(\) needs xarray: pip install 'vramcore\[xarray\]'"):
        grid.to_xarray()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"pip install 'vramcore\[parquet\]'"):
        grid.to_parquet(tmp_path / "never-written.parquet")
    assert list(tmp_path.iterdir()) == []


def test_text_table(grid: vramcore.Sweep) -> None:
    buf = io.StringIO()
    _export.write_table(grid, buf)
    lines = buf.getvalue().splitlines()
    assert lines[0].split()[:5] == ["model", "dtype", "context", "batch", "gpu"]
    assert "total GiB" in lines[0] and "headroom GiB" in lines[0]
    assert len(lines) == grid.size + 2
    assert lines[-1].startswith("GiB = 2**30 bytes")
    no = [ln for ln in lines[1:-1] if " NO " in ln or ln.endswith(" NO")]
    assert len(no) == int((~grid.fits).sum())
    assert lines[0].endswith("fits  why") and all("total_exceeds_gpu" in ln for ln in no)
