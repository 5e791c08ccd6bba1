"""Pictures of estimates and sweeps (matplotlib, imported only when a function is called).

Both functions draw on a new :class:`matplotlib.figure.Figure` (no pyplot, so
no GUI backend and no global state) or on an ``ax`` you pass, and return the
Figure; save it with ``fig.savefig("out.png")``.  Byte counts are shown in
GiB (2**30 bytes).  Requires matplotlib (``pip install 'vramcore[plot]'``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from vramcore._units import GiB

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from vramcore.grid.results import Estimate, Sweep

__all__ = ["FITS_COLORS", "PART_COLORS", "estimate_bar", "sweep_heatmap"]

#: Colours of the stacked parts (weights, KV cache, activations, overhead).
PART_COLORS: dict[str, str] = {"weights_bytes": "#4c72b0", "kv_cache_bytes": "#dd8452",
                               "activation_bytes": "#55a868", "overhead_bytes": "#8c8c8c"}
_PART_LABELS = {"weights_bytes": "weights", "kv_cache_bytes": "KV cache", "activation_bytes": "activations",
                "overhead_bytes": "overhead"}
#: Colours of a fits heatmap: (does not fit, fits).
FITS_COLORS: tuple[str, str] = ("#d62728", "#2ca02c")
#: Heatmaps with at most this many cells per panel print each cell's value.
ANNOTATE_MAX_CELLS = 144


def _mpl() -> Any:
    from vramcore.io.export import require

    return require("matplotlib", "plot", "vramcore.plot")


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return cast("Figure", ax.figure), ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _bar_labels(estimates: Sequence[Estimate]) -> list[str]:
    """Label each bar by the attributes that differ between estimates (the model when only one)."""
    keys = ("model", "dtype", "context", "batch", "gpu", "engine")
    varying = [k for k in keys if len({getattr(e, k) for e in estimates}) > 1] or ["model"]
    labels = []
    for e in estimates:
        parts = []
        for k in varying:
            v = getattr(e, k)
            parts.append(f"{_count_label(v)} tok" if k == "context" else f"batch {v}" if k == "batch" else str(v))
        labels.append("\n".join(parts))
    return labels


def _count_label(n: Any) -> str:
    n = int(n)
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)}M"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}k"
    return str(n)


def estimate_bar(estimates: Estimate | Sequence[Estimate], ax: Axes | None = None, *,
                 title: str | None = None) -> Figure:
    """Stacked bars of estimates' parts (weights, KV cache, activations, overhead) against GPU memory.

    Each estimate is one bar, its parts stacked in GiB, its total written
    above it; a dashed line marks the GPU's usable memory (one line across
    the plot when every estimate has the same GPU, else one per bar) and a
    bar that does not fit is outlined in red.

    Parameters
    ----------
    estimates : Estimate or sequence of Estimate
        From :func:`vramcore.estimate` (or the cells of a sweep).
    ax : matplotlib.axes.Axes, optional
        Draw here; None makes a new Figure.
    title : str, optional
        Axes title (default: the model, or "GPU memory" for several models).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        No estimates.
    ImportError
        matplotlib is not installed.

    Examples
    --------
    >>> import vramcore
    >>> from vramcore.plot import estimate_bar
    >>> e = [vramcore.estimate("DeepSeek-R1-Distill-Llama-8B", context=c, gpu="L4") for c in (8192, 131072)]
    >>> fig = estimate_bar(e)
    >>> ax = fig.axes[0]
    >>> ax.get_ylabel()
    'GiB (2**30 bytes)'
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['8k tok', '128k tok']
    """
    _mpl()
    from vramcore.grid.results import Estimate

    items = [estimates] if isinstance(estimates, Estimate) else list(estimates)
    if not items:
        raise ValueError("estimate_bar() needs at least one estimate")
    for e in items:
        if not isinstance(e, Estimate):
            raise TypeError(f"estimate_bar() takes vramcore.Estimate objects, got {type(e).__name__}")
    fig, ax = _new_axes(ax, (max(4.0, 1.3 * len(items) + 2.5), 4.5))
    x = list(range(len(items)))
    bottom = [0.0] * len(items)
    for part, color in PART_COLORS.items():
        heights = [getattr(e, part) / GiB for e in items]
        ax.bar(x, heights, bottom=bottom, color=color, label=_PART_LABELS[part], width=0.6)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    for xi, e in zip(x, items, strict=True):
        ax.annotate(f"{e.total_bytes / GiB:.1f}", (xi, e.total_bytes / GiB), ha="center", va="bottom",
                    xytext=(0, 2), textcoords="offset points", fontsize=8)
        if e.fits is False:
            ax.bar([xi], [e.total_bytes / GiB], width=0.6, fill=False, edgecolor=FITS_COLORS[0], linewidth=2)
    gpus = {(e.gpu, e.gpu_bytes) for e in items if e.gpu is not None and e.gpu_bytes is not None}
    if len(gpus) == 1:
        name, gpu_bytes = next(iter(gpus))
        ax.axhline(gpu_bytes / GiB, color="black", linestyle="--", linewidth=1.2,
                   label=f"{name}: {gpu_bytes / GiB:.2f} GiB")
    else:
        for xi, e in zip(x, items, strict=True):
            if e.gpu_bytes is not None:
                ax.hlines(e.gpu_bytes / GiB, xi - 0.4, xi + 0.4, color="black", linestyle="--", linewidth=1.2)
                ax.annotate(f"{e.gpu}", (xi, e.gpu_bytes / GiB), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x, _bar_labels(items))
    ax.set_ylabel("GiB (2**30 bytes)")
    models = {e.model for e in items}
    ax.set_title(title if title is not None else (next(iter(models)) if len(models) == 1 else "GPU memory"))
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_ylim(0, max([*bottom, *(g / GiB for _, g in gpus if g is not None)]) * 1.15)
    return fig


def _axis_values(sweep: Sweep, dim: str) -> list[Any]:
    return {"model": list(sweep.models), "dtype": list(sweep.dtypes), "context": sweep.contexts.tolist(),
            "batch": sweep.batches.tolist(), "gpu": list(sweep.gpus), "engine": list(sweep.engines)}[dim]


def _tick(dim: str, v: Any) -> str:
    return _count_label(v) if dim in ("context", "batch") else str(v)


def _pick(sweep: Sweep, dim: str, label: Any) -> int:
    values = _axis_values(sweep, dim)
    for i, v in enumerate(values):
        if v == label or (isinstance(v, str) and isinstance(label, str) and v.casefold() == label.casefold()):
            return i
    if dim == "gpu" and isinstance(label, str):
        from vramcore.hardware.gpus import get_gpu

        try:
            name = get_gpu(label).name
        except ValueError:
            name = None
        if name in values:
            return values.index(name)
    raise ValueError(f"select[{dim!r}]={label!r} is not on the sweep's {dim} axis {values}")


def sweep_heatmap(sweep: Sweep, x: str = "context", y: str = "batch", value: str = "headroom_bytes",
                  facet: str | None = "gpu", *, select: Mapping[str, Any] | None = None,
                  annotate: bool | None = None, ax: Axes | None = None) -> Figure:
    """Heatmap of one result field of a sweep over two axes, one panel per label of a third.

    Parameters
    ----------
    sweep : Sweep
        From :func:`vramcore.sweep`.
    x, y : str
        Axes of the map: two of model, dtype, context, batch, gpu (engine).
    value : str
        A result field: ``"fits"`` (green fits, red does not), a byte field
        (e.g. ``"headroom_bytes"``, ``"total_bytes"``; shown in GiB, headroom
        on a red-to-green scale centred at 0) or another field.
    facet : str or None
        Axis with one panel per label (default ``"gpu"``); None: one panel.
    select : mapping, optional
        ``{axis: label}`` for every other axis longer than one, e.g.
        ``{"model": "Qwen3-8B", "dtype": "bf16"}``.
    annotate : bool, optional
        Print each cell's value (default: when a panel has at most 144 cells).
    ax : matplotlib.axes.Axes, optional
        Draw here (only for a single panel); None makes a new Figure.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        Unknown or repeated axes, an unknown field, a label not on its axis,
        or an axis longer than one left unselected (the message lists it).
    ImportError
        matplotlib is not installed.

    Examples
    --------
    >>> import vramcore
    >>> from vramcore.plot import sweep_heatmap
    >>> s = vramcore.sweep("DeepSeek-R1-Distill-Llama-8B", "bf16", [4096, 32768, 131072], [1, 8, 32],
    ...                    ["H100", "L4"])
    >>> fig = sweep_heatmap(s, value="fits")
    >>> [a.get_title() for a in fig.axes]
    ['gpu = H100', 'gpu = L4']
    >>> fig = sweep_heatmap(s, value="total_bytes", facet=None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: axis 'gpu' has 2 labels: pick one with select={'gpu': ...} ... or make it the facet
    """
    _mpl()
    import numpy as np
    from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize, TwoSlopeNorm

    from vramcore.grid.results import FIELDS

    dims = sweep.dims
    for name, dim in (("x", x), ("y", y), ("facet", facet)):
        if dim is not None and dim not in dims:
            raise ValueError(f"{name}={dim!r} is not an axis of the sweep; valid axes: {', '.join(dims)}")
    if len({x, y, facet} - {None}) != len([d for d in (x, y, facet) if d is not None]):
        raise ValueError(f"x, y and facet must be different axes, got x={x!r}, y={y!r}, facet={facet!r}")
    if value not in FIELDS:
        raise ValueError(f"value={value!r} is not a result field; valid fields: {', '.join(FIELDS)}")
    select = dict(select or {})
    for dim in select:
        if dim not in dims:
            raise ValueError(f"select has unknown axis {dim!r}; valid axes: {', '.join(dims)}")
        if dim in (x, y, facet):
            raise ValueError(f"select[{dim!r}]: {dim!r} is already drawn as x, y or facet")
    index: list[Any] = []
    for d in dims:
        if d in (x, y, facet):
            index.append(slice(None))
        elif d in select:
            index.append(_pick(sweep, d, select[d]))
        elif sweep.shape[dims.index(d)] == 1:
            index.append(0)
        else:
            raise ValueError(f"axis {d!r} has {sweep.shape[dims.index(d)]} labels: pick one with "
                             f"select={{{d!r}: ...}} (command line: --select {d}=...) or make it the facet")
    data = np.asarray(getattr(sweep, value))[tuple(index)]
    kept = [d for d in dims if d in (x, y, facet)]
    order = [kept.index(facet)] if facet is not None else []
    data = np.transpose(data, [*order, kept.index(y), kept.index(x)])
    if facet is None:
        data = data[None]
    panels = _axis_values(sweep, facet) if facet is not None else [None]

    is_fits = value == "fits"
    is_bytes = value.endswith("_bytes")
    shown = data.astype(np.float64) / (GiB if is_bytes else 1)
    cmap: Any
    norm: Any
    if is_fits:
        cmap, norm = ListedColormap(list(FITS_COLORS)), BoundaryNorm([-0.5, 0.5, 1.5], 2)
    else:
        lo, hi = float(np.nanmin(shown)), float(np.nanmax(shown))
        if value == "headroom_bytes" and lo < 0 < hi:
            cmap, norm = "RdYlGn", TwoSlopeNorm(vcenter=0.0, vmin=lo, vmax=hi)
        else:
            cmap = "RdYlGn" if value == "headroom_bytes" else "viridis"
            norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)

    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    xs, ys = _axis_values(sweep, x), _axis_values(sweep, y)
    if ax is not None:
        if n != 1:
            raise ValueError(f"ax= draws one panel, but facet={facet!r} has {n} labels")
        fig, axes = cast("Figure", ax.figure), [ax]
    else:
        from matplotlib.figure import Figure

        w = min(4.5, 1.2 + 0.55 * len(xs))
        h = min(4.0, 1.2 + 0.4 * len(ys))
        fig = Figure(figsize=(cols * w + 1.2, rows * h + 0.6), layout="constrained")
        axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    if annotate is None:
        annotate = len(xs) * len(ys) <= ANNOTATE_MAX_CELLS
    image = None
    for a, label, panel in zip(axes, panels, shown, strict=True):
        image = a.imshow(panel, origin="lower", aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
        a.set_xticks(range(len(xs)), [_tick(x, v) for v in xs], fontsize=8)
        a.set_yticks(range(len(ys)), [_tick(y, v) for v in ys], fontsize=8)
        a.set_xlabel(x)
        a.set_ylabel(y)
        if facet is not None:
            a.set_title(f"{facet} = {label}", fontsize=9)
        if annotate:
            for (i, j), v in np.ndenumerate(panel):
                text = ("yes" if v else "no") if is_fits else f"{v:.1f}" if is_bytes else f"{v:.3g}"
                a.text(j, i, text, ha="center", va="center", fontsize=7, color="black")
    fixed = [f"{d} = {_tick(d, _axis_values(sweep, d)[i])}" for d, i in zip(dims, index, strict=True)
             if not isinstance(i, slice)]
    unit = " (GiB)" if is_bytes else ""
    fig.suptitle(f"{value}{unit}" + (f": {', '.join(fixed)}" if fixed else ""), fontsize=10)
    if is_fits:
        from matplotlib.patches import Patch

        handles = [Patch(color=FITS_COLORS[1], label="fits"), Patch(color=FITS_COLORS[0], label="does not fit")]
        if ax is None:
            fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
        else:
            ax.legend(handles=handles, fontsize=8)
    elif image is not None:
        fig.colorbar(image, ax=axes, label=f"{value}{unit}", shrink=0.9)
    return fig
