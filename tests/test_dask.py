"""Sweeps beyond one machine: dask blocks call vramcore.sweep; a real distributed cluster agrees cell for cell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vramcore
from vramcore.grid.sweep import FIELDS

pytest.importorskip("dask.array")

from vramcore.dask import DEFAULT_BLOCK_CELLS, DaskSweep, sweep_dask  # noqa: E402

SEED = "DeepSeek-R1-Distill-Llama-8B"
AXES: tuple[Any, ...] = ([SEED, "Qwen3-8B", "Llama-3.2-1B"], ["bf16", "int4"], [1024, 4096, 32768, 131072],
                         [1, 2, 8, 32, 64], ["H100", "L4", "RTX-4090"])


@pytest.fixture(scope="module")
def eager() -> vramcore.Sweep:
    return vramcore.sweep(*AXES)


def assert_same(a: vramcore.Sweep, b: vramcore.Sweep) -> None:
    assert a.shape == b.shape and a.dims == b.dims
    assert (a.models, a.dtypes, a.gpus, a.engines) == (b.models, b.dtypes, b.gpus, b.engines)
    np.testing.assert_array_equal(a.contexts, b.contexts)
    np.testing.assert_array_equal(a.batches, b.batches)
    for f in FIELDS:
        x, y = np.asarray(getattr(a, f)), np.asarray(getattr(b, f))
        assert x.dtype == y.dtype, f
        np.testing.assert_array_equal(x, y, err_msg=f)


def test_lazy_until_computed(eager: vramcore.Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    import vramcore.dask as vdask

    calls: list[tuple[int, ...]] = []
    real = vdask.sweep

    def counting(*args: Any, **kwargs: Any) -> vramcore.Sweep:
        s = real(*args, **kwargs)
        calls.append(s.shape)
        return s

    monkeypatch.setattr(vdask, "sweep", counting)
    lazy = sweep_dask(*AXES, chunks={"model": 1, "context": 2, "batch": 3})
    assert isinstance(lazy, DaskSweep)
    assert lazy.shape == eager.shape and lazy.numblocks == (3, 1, 2, 2, 1)
    assert len(calls) == 1  # only the validating probe so far
    assert calls[0][2:4] == (1, 1)
    assert_same(lazy.compute(), eager)
    assert len(calls) == 1 + 3 * 2 * 2  # one vramcore.sweep per block
    assert sorted(calls[1:]) == sorted([(1, 2, 2, b, 3) for b in (3, 2)] * 6)


@pytest.mark.parametrize("chunks", [None, 45, (1, 2, 1, 2, 1), {"gpu": 1, "batch": -1}, ((2, 1), 2, (3, 1), 5, 3)])
def test_any_chunking_gives_the_same_cells(eager: vramcore.Sweep, chunks: Any) -> None:
    assert_same(sweep_dask(*AXES, chunks=chunks).compute(), eager)


def test_fields_are_dask_arrays(eager: vramcore.Sweep) -> None:
    import dask.array as da

    lazy = sweep_dask(*AXES, chunks=40)
    assert isinstance(lazy.total_bytes, da.Array) and lazy.fits.dtype == bool
    assert int(lazy.fits.sum().compute()) == int(eager.fits.sum())
    assert float(lazy.headroom_bytes.max().compute()) == float(eager.headroom_bytes.max())
    with pytest.raises(AttributeError, match="no attribute 'vram'"):
        lazy.vram  # noqa: B018
    np.testing.assert_array_equal(lazy.field("kv_cache_bytes").compute(), eager.kv_cache_bytes)


def test_to_xarray_is_lazy_and_labeled(eager: vramcore.Sweep) -> None:
    pytest.importorskip("xarray")
    ds = sweep_dask(*AXES, chunks={"model": 1}).to_xarray()
    assert ds.total_bytes.chunks is not None  # dask-backed
    assert ds.kv_cache_bytes.attrs["units"] == "bytes"
    assert ds["context"].values.tolist() == [1024, 4096, 32768, 131072]
    loaded = ds.load()
    for f in FIELDS:
        np.testing.assert_array_equal(loaded[f].values, getattr(eager, f))


def test_engine_axis_and_kwargs_pass_through() -> None:
    kwargs = {"engine": ["transformers", "vllm"], "kv_dtype": "fp8", "gpu_memory": "total"}
    eager = vramcore.sweep(SEED, ["bf16", "int4"], [4096, 65536], [1, 16], ["H100", "L4"], **kwargs)
    lazy = sweep_dask(SEED, ["bf16", "int4"], [4096, 65536], [1, 16], ["H100", "L4"], chunks=(1, 1, 1, 1, 1),
                      **kwargs)
    assert lazy.dims[-1] == "engine" and lazy.shape == eager.shape
    assert_same(lazy.compute(), eager)


def test_to_parquet_one_part_per_block(eager: vramcore.Sweep, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    lazy = sweep_dask(*AXES, chunks={"model": 1, "context": 2})
    parts = lazy.to_parquet(tmp_path / "grid")
    assert len(parts) == int(np.prod(lazy.numblocks)) == 6
    assert sorted(p.name for p in (tmp_path / "grid").iterdir()) == [f"part-{i:06d}.parquet" for i in range(6)]
    table = pq.read_table(tmp_path / "grid")
    assert table.num_rows == eager.size
    got = table.to_pandas().sort_values(["model", "dtype", "context", "batch", "gpu"]).reset_index(drop=True)
    want = eager.to_pandas().sort_values(["model", "dtype", "context", "batch", "gpu"]).reset_index(drop=True)
    for column in want.columns:
        assert got[column].tolist() == want[column].tolist(), column
    with pytest.raises(FileExistsError, match="already holds 6 part files; pass overwrite=True"):
        lazy.to_parquet(tmp_path / "grid")
    assert len(sweep_dask(*AXES, chunks={"model": 1}).to_parquet(tmp_path / "grid", overwrite=True)) == 3
    assert len(list((tmp_path / "grid").iterdir())) == 3  # stale parts removed


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"chunks": {"tokens": 2}}, ValueError, "chunks has unknown axes"),
    ({"chunks": 0}, ValueError, r"chunks \(cells per block\) must be >= 1"),
    ({"chunks": "big"}, TypeError, "chunks must be None, an int"),
    ({"chunks": {"model": 0}}, ValueError, r"chunks\['model'\] must be a block length"),
    ({"client": "tcp://nowhere"}, TypeError, "client must be a dask.distributed.Client or None, got str"),
    ({"kv_dtype": "fp9"}, ValueError, "kv_dtype"),
    ({"tp": 3}, ValueError, "tp=3"),
])
def test_errors_before_any_block_runs(kwargs: dict, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        sweep_dask(*AXES, **kwargs)


def test_bad_axis_values_fail_early() -> None:
    with pytest.raises(ValueError, match="contexts"):
        sweep_dask(SEED, "bf16", [4096, 0])
    with pytest.raises(ValueError, match="unknown gpu 'h10'"):
        sweep_dask(SEED, gpus=["H100", "h10"])


def test_missing_dask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"vramcore.dask needs dask: pip install 'vramcore\[dask\]'"):
        sweep_dask(SEED)


def test_distributed_cluster_equals_in_memory(eager: vramcore.Sweep, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    pq = pytest.importorskip("pyarrow.parquet")
    # In-process workers (CI has 2 cores): the blocks still go through the distributed scheduler,
    # serialised to the workers; one worker with two threads.
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0")
    with cluster, distributed.Client(cluster) as client:
        lazy = sweep_dask(*AXES, chunks={"model": 1, "dtype": 1}, client=client)
        assert_same(lazy.compute(), eager)
        parts = lazy.to_parquet(tmp_path / "parts")
        assert len(parts) == 6
        prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
        assert "block" in prefixes and "write_part" in prefixes  # the cluster ran the blocks and the writers
    assert pq.read_table(tmp_path / "parts").num_rows == eager.size


def test_a_grid_larger_than_memory_plans_lazily_and_computes_slices() -> None:
    models, gpus = vramcore.list_models(), vramcore.list_gpus()
    contexts, batches = np.arange(1, 10_001) * 8, np.arange(1, 501)
    lazy = sweep_dask(models, ["bf16", "int4"], contexts, batches, gpus)
    assert lazy.size > 10**10  # ~12 float64 fields a cell: about a terabyte if materialised
    assert np.prod([c[0] for c in lazy.chunks]) <= DEFAULT_BLOCK_CELLS  # default blocks stay small
    corner = lazy.total_bytes[:2, 1, -3:, :2, :].compute()  # touches a few blocks only
    eager = vramcore.sweep(models[:2], "int4", contexts[-3:], batches[:2], gpus)
    np.testing.assert_array_equal(corner, eager.total_bytes[:, 0])


def test_graph_survives_pickling(eager: vramcore.Sweep) -> None:
    # what a process-based cluster does to every task: the blocks carry specs, dtypes, GPUs and engines
    import pickle

    lazy = sweep_dask(*AXES, chunks={"model": 1}, engine="vllm", kv_dtype="fp8")
    restored = pickle.loads(pickle.dumps(lazy.total_bytes))
    want = vramcore.sweep(*AXES, engine="vllm", kv_dtype="fp8").total_bytes
    np.testing.assert_array_equal(restored.compute(scheduler="sync"), want)
