"""vramcore.sweep_to: a grid computed and written part by part equals the in-memory sweep's file, row for row."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vramcore
import vramcore.grid.progress as _progress
import vramcore.grid.stream as _stream
import vramcore.io.export as _export

GRID: tuple[Any, ...] = ("Qwen3-8B", ["bf16", "int4", "fp8"], [4096, 8192, 32768], [1, 2, 8], ["H100", "RTX-4090"])


@settings(deadline=None, max_examples=200)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=6), st.integers(1, 200))
def test_parts_tile_the_grid_in_c_order(shape: list[int], chunk: int) -> None:
    cells: list[int] = []
    index = np.arange(math.prod(shape)).reshape(shape)
    inner = math.prod(shape[min(4, len(shape)):])
    for box in _stream.parts(shape, chunk):
        flat = index[box].reshape(-1).tolist()
        assert len(flat) <= max(chunk, inner)     # never more than asked, unless one (gpu, engine) row is
        cells += flat
    assert cells == list(range(math.prod(shape)))  # consecutive, in order, each cell once


@pytest.mark.parametrize("suffix", [".csv", ".json"])
@pytest.mark.parametrize("chunk", [1, 5, 7, 18, 10**6])
def test_streamed_text_files_equal_the_sweeps(tmp_path: Path, suffix: str, chunk: int) -> None:
    whole = tmp_path / f"whole{suffix}"
    streamed = tmp_path / f"streamed{suffix}"
    _export.write(vramcore.sweep(*GRID), whole)
    assert vramcore.sweep_to(streamed, *GRID, chunk_cells=chunk) == suffix[1:]
    assert streamed.read_text() == whole.read_text()


def test_streamed_parquet_equals_the_sweeps(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    engines = ["vllm", "llamacpp"]
    whole = tmp_path / "whole.parquet"
    streamed = tmp_path / "streamed.parquet"
    vramcore.sweep(*GRID, engine=engines, fields=("total_bytes", "fits", "reasons")).to_parquet(whole)
    vramcore.sweep_to(streamed, *GRID, engine=engines, fields=("total_bytes", "fits", "reasons"), chunk_cells=10)
    a, b = pq.read_table(whole), pq.read_table(streamed)
    assert a.equals(b) and a.schema.metadata == b.schema.metadata
    assert b.num_rows == 3 * 3 * 3 * 2 * 2
    # a (model, dtype, context) row of 3 batches x 4 (gpu, engine) cells is 12 > 10: cut into 2 + 1 batches,
    # 8 and 4 cells, a row group each
    assert pq.ParquetFile(streamed).num_row_groups == 9 * 2


@pytest.fixture
def part_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The cells of each part sweep_to computes, in order (its run_sweep calls, recorded)."""
    sizes: list[int] = []
    real = _stream.run_sweep

    def recording(*args: Any, **kwargs: Any) -> vramcore.Sweep:
        s = real(*args, **kwargs)
        sizes.append(s.size)
        return s

    monkeypatch.setattr(_stream, "run_sweep", recording)
    return sizes


def test_only_one_part_is_ever_computed_at_a_time(tmp_path: Path, part_sizes: list[int]) -> None:
    vramcore.sweep_to(tmp_path / "g.csv", *GRID, chunk_cells=12)
    assert sum(part_sizes) == 3 * 3 * 3 * 2 and max(part_sizes) <= 12 and len(part_sizes) > 1


def test_the_bar_counts_cells_once_their_rows_are_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[int] = []
    advanced: list[int] = []
    real_blocks = _export.iter_blocks

    def counting(sweep: vramcore.Sweep, rows: int = _export.ROWS_PER_BLOCK) -> Any:
        for block in real_blocks(sweep, rows):
            yield block
            written.append(len(block["model"]))   # resumed: the writer has taken this block

    real_advance = _progress.Chunks.advance

    def advance(self: _progress.Chunks, cells: int) -> None:
        real_advance(self, cells)
        if self.total_cells != 3 * 3 * 3 * 2:    # a part's own kernel chunks
            return
        advanced.append(cells)
        assert sum(advanced) == sum(written)      # the bar never runs ahead of the file

    monkeypatch.setattr(_export, "iter_blocks", counting)
    monkeypatch.setattr(_progress.Chunks, "advance", advance)
    vramcore.sweep_to(tmp_path / "g.json", *GRID, chunk_cells=9)
    # a dtype's 3 contexts x 3 batches x 2 gpus are 18 > 9 cells: one context (6 cells) a part
    assert advanced == [6] * 9


def test_bad_arguments_are_refused_before_any_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot tell the format of .*\.xlsx"):
        vramcore.sweep_to(tmp_path / "g.xlsx", *GRID)
    with pytest.raises(ValueError, match="contexts"):
        vramcore.sweep_to(tmp_path / "g.csv", "Qwen3-8B", "bf16", [4096, -1])
    with pytest.raises(ValueError, match="chunk_cells"):
        vramcore.sweep_to(tmp_path / "g.csv", *GRID, chunk_cells=0)
    with pytest.raises(ValueError, match="fields"):
        vramcore.sweep_to(tmp_path / "g.csv", *GRID, fields=("no_such_field",))
    assert list(tmp_path.iterdir()) == []


def test_a_grid_larger_than_memory_streams(tmp_path: Path) -> None:
    # 4 x 10**10 cells refuse to sweep in memory; written part by part, the file starts with the same rows
    contexts = np.arange(1, 10**5 + 1)
    batches = np.arange(1, 10**5 + 1)
    with pytest.raises(ValueError, match=r"needs [\d,.]+ GiB of results"):
        vramcore.sweep("Qwen3-8B", ["bf16", "int4"], contexts, batches, ["H100", "L4"])
    seen: list[dict[str, Any]] = []

    class Enough(Exception):
        pass

    def first_rows(sweep: Any, blocks: Any, stream: Any) -> None:
        for block in blocks:
            seen.append({k: v[:3].tolist() for k, v in block.items()})
            raise Enough

    real = _export._BLOCK_WRITERS["json"]
    _export._BLOCK_WRITERS["json"] = first_rows
    try:
        with pytest.raises(Enough):
            vramcore.sweep_to(tmp_path / "g.json", "Qwen3-8B", ["bf16", "int4"], contexts, batches,
                              ["H100", "L4"], fields=("fits",))
    finally:
        _export._BLOCK_WRITERS["json"] = real
    small = vramcore.sweep("Qwen3-8B", "bf16", 1, [1, 2], ["H100", "L4"], fields=("fits",))
    assert seen[0]["batch"] == [1, 1, 2] and seen[0]["gpu"] == ["H100", "L4", "H100"]
    assert seen[0]["fits"] == [bool(small.fits[0, 0, 0, 0, 0]), bool(small.fits[0, 0, 0, 0, 1]),
                               bool(small.fits[0, 0, 0, 1, 0])]
    assert list(tmp_path.iterdir()) == []      # interrupted: no partial file


def test_cli_sweep_output_streams(tmp_path: Path, capsys: pytest.CaptureFixture[str], part_sizes: list[int]) -> None:
    from vramcore.cli import main

    path = tmp_path / "g.json"
    assert main(["sweep", "Qwen3-8B", "--dtype", "bf16,int4", "--context", "4096,8192", "-o", str(path),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"path": str(path), "format": "json", "rows": 4,
                       "dims": ["model", "dtype", "context", "batch", "gpu"], "shape": [1, 2, 2, 1, 1]}
    assert sum(part_sizes) == 4 and len(json.loads(path.read_text())) == 4
