"""Chunked sweeps: progress bar on/off, tqdm optional, Ctrl-C between chunks with a clear message."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

import vramcore
import vramcore.grid._kernel as _kernel
import vramcore.grid.progress as _progress
import vramcore.grid.results
import vramcore.grid.run as _run
from vramcore.grid.progress import Chunks

SEED = "DeepSeek-R1-Distill-Llama-8B"
AXES: tuple[Any, ...] = ([SEED, "Qwen3-8B"], ["bf16", "int4"], [1024, 4096, 32768], [1, 2, 4, 8], ["H100", "L4"])


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Make every grid run in several chunks (96 cells in chunks of 10)."""
    monkeypatch.setattr(_run, "CHUNK_CELLS", 10)
    return 10


def test_chunks_cover_rows_once() -> None:
    with Chunks(25, 10, 4, progress=False) as chunks:
        bounds = list(chunks)
    assert bounds == [(0, 10), (10, 20), (20, 25)]
    assert chunks.done_cells == 100 == chunks.total_cells


def test_chunked_result_equals_one_chunk(small_chunks: int, monkeypatch: pytest.MonkeyPatch) -> None:
    chunked = vramcore.sweep(*AXES, progress=False)
    monkeypatch.setattr(_run, "CHUNK_CELLS", 1 << 22)
    whole = vramcore.sweep(*AXES, progress=False)
    for f in vramcore.grid.results.FIELDS:
        np.testing.assert_array_equal(getattr(chunked, f), getattr(whole, f))


def test_progress_true_draws_a_bar(small_chunks: int, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    vramcore.sweep(*AXES, progress=True)
    err = capsys.readouterr().err
    assert "vramcore sweep" in err and "96/96" in err and "cell" in err


@pytest.mark.parametrize("progress", [False, None])
def test_no_bar_when_off_or_not_a_terminal(small_chunks: int, progress: bool | None,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_progress, "PROGRESS_MIN_CELLS", 1)  # big enough for a bar, but stderr is captured
    vramcore.sweep(*AXES, progress=progress)
    assert capsys.readouterr().err == ""


def test_auto_bar_on_a_terminal_for_big_grids(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    monkeypatch.setattr(_progress, "_stderr_is_tty", lambda: True)
    monkeypatch.setattr(_progress, "PROGRESS_MIN_CELLS", 96)
    assert _progress.progress_enabled(None, 96)
    assert not _progress.progress_enabled(None, 95)  # small grids stay quiet
    assert not _progress.progress_enabled(False, 10**9)


def test_without_tqdm_progress_is_a_no_op(small_chunks: int, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    s = vramcore.sweep(*AXES, progress=True)
    assert s.size == 96 and capsys.readouterr().err == ""


def test_progress_must_be_bool_or_none() -> None:
    with pytest.raises(TypeError, match="progress must be True, False or None, got 'yes'"):
        vramcore.sweep(SEED, progress="yes")  # type: ignore[arg-type]


def _interrupt_on_call(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    real = _kernel.grid
    calls = []

    def grid(*args: Any) -> None:
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(_kernel, "grid", grid)


def test_ctrl_c_stops_between_chunks_with_a_message(small_chunks: int, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    _interrupt_on_call(monkeypatch, 3)  # after two chunks of 10 cells
    with pytest.raises(KeyboardInterrupt, match="vramcore sweep interrupted after 20 of 96 cells; no result"):
        vramcore.sweep(*AXES, progress=True)
    assert "20/96" in capsys.readouterr().err  # the bar was closed where it stopped
