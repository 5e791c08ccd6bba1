"""Pictures: render with Agg, check the files and the pixels (fits is green, does-not-fit is red)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import vramcore

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vramcore.plot import FITS_COLORS, PART_COLORS, estimate_bar, sweep_heatmap  # noqa: E402

SEED = "DeepSeek-R1-Distill-Llama-8B"
PNG = b"\x89PNG\r\n\x1a\n"


def pixels(fig: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(int)


def share(img: np.ndarray, hex_color: str, tol: int = 12) -> float:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(img - rgb).max(axis=-1) <= tol).mean())


def test_estimate_bar_parts_and_gpu_line(tmp_path: Path) -> None:
    e = vramcore.estimate(SEED, context=32768, gpu="H100")
    fig = estimate_bar(e)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()][:1] == ["H100-SXM-80GB: 79.18 GiB"]
    heights = [p.get_height() for p in ax.patches]
    parts = [e.weights_bytes, e.kv_cache_bytes, e.activation_bytes, e.overhead_bytes]
    assert heights == pytest.approx([b / 2**30 for b in parts])
    line = ax.get_lines()[0]
    assert line.get_ydata()[0] == pytest.approx(e.gpu_bytes / 2**30)
    img = pixels(fig)
    for color in PART_COLORS.values():
        assert share(img, color) > 0, color
    out = tmp_path / "bar.png"
    fig.savefig(out)
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 5000


def test_estimate_bar_marks_what_does_not_fit() -> None:
    fits = vramcore.estimate(SEED, context=4096, gpu="L4")
    too_big = vramcore.estimate(SEED, context=131072, batch=4, gpu="L4")
    assert fits.fits and not too_big.fits
    red_ok = share(pixels(estimate_bar([fits])), FITS_COLORS[0], tol=20)
    red_bad = share(pixels(estimate_bar([fits, too_big])), FITS_COLORS[0], tol=20)
    assert red_ok == 0 and red_bad > 0
    labels = [t.get_text() for t in estimate_bar([fits, too_big]).axes[0].get_xticklabels()]
    assert labels == ["4k tok\nbatch 1", "128k tok\nbatch 4"]


def test_estimate_bar_draws_on_given_axes_and_without_gpu() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert estimate_bar(vramcore.estimate(SEED, context=4096), ax=ax) is fig
    assert ax.get_lines() == []  # no GPU, no line
    with pytest.raises(ValueError, match="at least one estimate"):
        estimate_bar([])
    with pytest.raises(TypeError, match="takes vramcore.Estimate objects, got str"):
        estimate_bar(["nope"])  # type: ignore[list-item]


def test_heatmap_fits_pixels_follow_the_result() -> None:
    everything_fits = vramcore.sweep("Llama-3.2-1B", "bf16", [1024, 2048], [1, 2], "H100")
    nothing_fits = vramcore.sweep("Llama-3.1-70B", "bf16", [1024, 2048], [1, 2], "L4")
    assert everything_fits.fits.all() and not nothing_fits.fits.any()
    green, red = FITS_COLORS[1], FITS_COLORS[0]
    img_ok = pixels(sweep_heatmap(everything_fits, value="fits", annotate=False))
    img_bad = pixels(sweep_heatmap(nothing_fits, value="fits", annotate=False))
    assert share(img_ok, green) > 0.2 and share(img_ok, red) < 0.01  # the legend patch is small
    assert share(img_bad, red) > 0.2 and share(img_bad, green) < 0.01


def test_heatmap_facets_selection_and_data(tmp_path: Path) -> None:
    s = vramcore.sweep(SEED, ["bf16", "int4"], [4096, 32768, 131072], [1, 8, 32], ["H100", "L4"])
    fig = sweep_heatmap(s, value="headroom_bytes", select={"dtype": "int4"})
    panels = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in panels] == ["gpu = H100", "gpu = L4"]
    assert "dtype = int4" in fig.get_suptitle() and "GiB" in fig.get_suptitle()
    shown = panels[1].images[0].get_array()
    np.testing.assert_allclose(shown, s.headroom_bytes[0, 1, :, :, 1].T / 2**30)  # y = batch, x = context
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["4k", "32k", "128k"]
    fig = sweep_heatmap(s, x="batch", y="dtype", value="total_bytes", facet="context", select={"gpu": "h100"})
    assert len([a for a in fig.axes if a.get_title()]) == 3
    out = tmp_path / "heat.png"
    fig.savefig(out)
    assert out.read_bytes()[:8] == PNG


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"x": "tokens"}, "x='tokens' is not an axis of the sweep"),
    ({"x": "gpu"}, "x, y and facet must be different axes"),
    ({"value": "vram"}, "value='vram' is not a result field"),
    ({"select": {"dtype": "fp8"}}, r"select\['dtype'\]='fp8' is not on the sweep's dtype axis"),
    ({"select": {"gpu": "H100"}}, "already drawn"),
    ({}, "axis 'dtype' has 2 labels"),
])
def test_heatmap_errors(kwargs: dict, match: str) -> None:
    s = vramcore.sweep(SEED, ["bf16", "int4"], [4096, 8192], [1, 2], ["H100", "L4"])
    with pytest.raises(ValueError, match=match):
        sweep_heatmap(s, **kwargs)


def test_plot_is_lazy_and_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert vramcore.plot.estimate_bar is estimate_bar  # lazy submodule attribute
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"vramcore.plot needs matplotlib: pip install 'vramcore\[plot\]'"):
        estimate_bar(vramcore.estimate(SEED, context=1024))
