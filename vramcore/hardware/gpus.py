"""GPU catalog: memory and bandwidth of common accelerators.

The catalog lives in ``vramcore/hardware/data/gpus.json`` and is loaded (and validated)
once, on first use. Each GPU carries two memory figures, because a nominal
"80 GB" card is neither 80 GiB nor 80e9 bytes to the software that runs on it:

* ``memory_total_bytes``: the total that ``nvidia-smi`` (AMD: ``rocm-smi``)
  reports, e.g. 81559 MiB for an H100 SXM.
* ``cuda_visible_bytes``: the total that CUDA itself reports
  (``cudaMemGetInfo``, ``torch.cuda.get_device_properties(i).total_memory``),
  a few hundred MiB less, e.g. 79.18 GiB for the same H100. This is the
  figure inference engines budget against (vLLM multiplies it by
  ``gpu_memory_utilization``).

:attr:`GPUSpec.usable_bytes` picks the CUDA figure when it is known and the
``nvidia-smi`` figure otherwise; it is the figure ``fits`` uses.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import os
from numbers import Real

from vramcore._names import build_table, lookup
from vramcore._record import Record, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["GPUSpec", "get_gpu", "list_gpus"]

_MIB = 2**20
#: Largest memory a GPU spec may state (1 PiB): bounds every headroom and budget figure.
MAX_GPU_BYTES = 2**50
_GIB = 2**30
_DATA_FILE = "gpus.json"
_ENTRY_KEYS = frozenset(
    {
        "name",
        "aliases",
        "vendor",
        "memory_total_mib",
        "cuda_visible_bytes",
        "bandwidth_gb_s",
        "source",
    }
)


def _as_positive_int(value: object, field: str) -> int:
    """Return `value` as an int, requiring an integer (not bool) greater than zero."""
    if isinstance(value, bool):
        raise TypeError(f"GPUSpec.{field} must be an int number of bytes, not bool")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"GPUSpec.{field} must be an int number of bytes, not {type(value).__name__}"
        ) from None
    if number <= 0:
        raise ValueError(f"GPUSpec.{field} must be positive, got {number}")
    if number > MAX_GPU_BYTES:
        raise ValueError(f"GPUSpec.{field} must be <= 2**50 bytes (1 PiB), got {str(number)[:40]}")
    return number


@record(frozen=True, slots=True, repr=False, eq=False)
class GPUSpec(Record):
    """Memory and bandwidth of one GPU model.

    Catalog entries come from :func:`get_gpu`; a custom card can be described
    directly and passed wherever a GPU name is accepted.

    Parameters
    ----------
    name : str
        Canonical name, e.g. ``"H100-SXM-80GB"``.
    vendor : str
        Vendor, e.g. ``"NVIDIA"`` or ``"AMD"``.
    memory_total_bytes : int
        Total device memory as ``nvidia-smi`` / ``rocm-smi`` report it, in
        bytes (the reported MiB times ``2**20``).
    cuda_visible_bytes : int or None, optional
        Total device memory as CUDA reports it (``cudaMemGetInfo`` total,
        ``torch.cuda.get_device_properties(i).total_memory``), in bytes, or
        None when unknown. At most `memory_total_bytes`.
    bandwidth_bytes_per_s : float, optional
        Peak memory bandwidth in bytes per second; ``0.0`` (the default)
        means unknown.
    aliases : tuple of str, optional
        Other names the catalog accepts for this GPU.
    source : str, optional
        Where the memory figures come from.
    fp8 : bool or None, optional
        Hardware FP8 (NVIDIA compute capability 8.9 and up, AMD MI300X); None
        when unknown (nothing is refused on its account).

    Raises
    ------
    TypeError
        If a field has the wrong type (the message names the field).
    ValueError
        If a memory figure is not positive, `cuda_visible_bytes` exceeds
        `memory_total_bytes`, the bandwidth is negative or not finite, or the
        name is empty (the message names the field).

    Examples
    --------
    >>> card = GPUSpec(name="my-card", vendor="x", memory_total_bytes=24 * 2**30)
    >>> card.usable_bytes == 24 * 2**30
    True
    >>> card.memory_gib
    24.0
    >>> GPUSpec(name="my-card", vendor="x", memory_total_bytes=0)
    Traceback (most recent call last):
        ...
    ValueError: GPUSpec.memory_total_bytes must be positive, got 0
    """

    name: str
    vendor: str
    memory_total_bytes: int
    cuda_visible_bytes: int | None = None
    bandwidth_bytes_per_s: float = 0.0
    aliases: tuple[str, ...] = ()
    source: str = "user-defined"
    fp8: bool | None = None

    def __post_init__(self) -> None:
        if self.fp8 is not None and not isinstance(self.fp8, bool):
            raise TypeError(f"GPUSpec.fp8 must be a bool or None, got {self.fp8!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"GPUSpec.name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.vendor, str):
            raise TypeError(f"GPUSpec.vendor must be a str, not {type(self.vendor).__name__}")
        total = _as_positive_int(self.memory_total_bytes, "memory_total_bytes")
        object.__setattr__(self, "memory_total_bytes", total)

        if self.cuda_visible_bytes is not None:
            visible = _as_positive_int(self.cuda_visible_bytes, "cuda_visible_bytes")
            if visible > total:
                raise ValueError(
                    f"GPUSpec.cuda_visible_bytes ({visible}) must not exceed "
                    f"GPUSpec.memory_total_bytes ({total})"
                )
            object.__setattr__(self, "cuda_visible_bytes", visible)

        bandwidth = self.bandwidth_bytes_per_s
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, Real):
            raise TypeError(
                "GPUSpec.bandwidth_bytes_per_s must be a real number, "
                f"not {type(bandwidth).__name__}"
            )
        bandwidth = float(bandwidth)
        if not math.isfinite(bandwidth) or bandwidth < 0:
            raise ValueError(
                "GPUSpec.bandwidth_bytes_per_s must be finite and >= 0 "
                f"(0 means unknown), got {bandwidth}"
            )
        object.__setattr__(self, "bandwidth_bytes_per_s", bandwidth)

        if isinstance(self.aliases, str):
            raise TypeError("GPUSpec.aliases must be a sequence of str, not a single str")
        aliases = tuple(self.aliases)
        for alias in aliases:
            if not isinstance(alias, str) or not alias.strip():
                raise ValueError(f"GPUSpec.aliases must hold non-empty strs, got {alias!r}")
        object.__setattr__(self, "aliases", aliases)

        if not isinstance(self.source, str):
            raise TypeError(f"GPUSpec.source must be a str, not {type(self.source).__name__}")

    @property
    def usable_bytes(self) -> int:
        """Device memory that allocations can use, in bytes; the figure ``fits`` uses.

        This is `cuda_visible_bytes` when known (what CUDA, PyTorch and
        inference engines see as the device total), else `memory_total_bytes`
        (the ``nvidia-smi`` total, a few hundred MiB more than CUDA sees).
        Engines then reserve a fraction of it (e.g. vLLM's
        ``gpu_memory_utilization``); that is not subtracted here.

        Returns
        -------
        int
            Usable device memory in bytes.

        Examples
        --------
        >>> GPUSpec("a", "x", memory_total_bytes=100, cuda_visible_bytes=90).usable_bytes
        90
        >>> GPUSpec("a", "x", memory_total_bytes=100).usable_bytes
        100
        """
        if self.cuda_visible_bytes is not None:
            return self.cuda_visible_bytes
        return self.memory_total_bytes

    @property
    def memory_gib(self) -> float:
        """Total device memory (`memory_total_bytes`) in GiB (``2**30`` bytes).

        Returns
        -------
        float
            ``memory_total_bytes / 2**30``.

        Examples
        --------
        >>> get_gpu("a100-80gb").memory_gib
        80.0
        """
        return self.memory_total_bytes / _GIB


def _entry_error(index: int, entry: object, message: str) -> ValueError:
    label = entry.get("name") if isinstance(entry, dict) else None
    where = f"entry {index}" + (f" ({label!r})" if isinstance(label, str) else "")
    return ValueError(f"vramcore/hardware/data/{_DATA_FILE}: {where}: {message}")


def _spec_from_entry(index: int, entry: Any) -> GPUSpec:
    """Validate one catalog entry and turn it into a GPUSpec."""
    if not isinstance(entry, dict):
        raise _entry_error(index, entry, "must be a JSON object")
    keys = set(entry) - {"fp8"}  # optional: hardware FP8, unknown when absent
    if keys != _ENTRY_KEYS:
        missing = sorted(_ENTRY_KEYS - keys)
        unknown = sorted(keys - _ENTRY_KEYS)
        raise _entry_error(index, entry, f"missing keys {missing}, unknown keys {unknown}")

    mib = entry["memory_total_mib"]
    if isinstance(mib, bool) or not isinstance(mib, int) or mib <= 0:
        raise _entry_error(index, entry, f"memory_total_mib must be a positive int, got {mib!r}")
    visible = entry["cuda_visible_bytes"]
    if visible is not None and (isinstance(visible, bool) or not isinstance(visible, int)):
        raise _entry_error(index, entry, f"cuda_visible_bytes must be an int or null, got {visible!r}")
    bandwidth = entry["bandwidth_gb_s"]
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)) or not bandwidth > 0:
        raise _entry_error(index, entry, f"bandwidth_gb_s must be a positive number, got {bandwidth!r}")
    aliases = entry["aliases"]
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise _entry_error(index, entry, "aliases must be a list of strings")
    fp8 = entry.get("fp8")
    if fp8 is not None and not isinstance(fp8, bool):
        raise _entry_error(index, entry, f"fp8 must be true or false, got {fp8!r}")
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise _entry_error(index, entry, "source must be a non-empty string")
    vendor = entry["vendor"]
    if not isinstance(vendor, str) or not vendor.strip():
        raise _entry_error(index, entry, "vendor must be a non-empty string")

    try:
        return GPUSpec(
            name=entry["name"],
            vendor=vendor,
            memory_total_bytes=mib * _MIB,
            cuda_visible_bytes=visible,
            bandwidth_bytes_per_s=float(bandwidth) * 1e9,
            aliases=tuple(aliases),
            source=source,
            fp8=fp8,
        )
    except (TypeError, ValueError) as exc:
        raise _entry_error(index, entry, str(exc)) from exc


@functools.cache
def _catalog() -> tuple[dict[str, GPUSpec], tuple[GPUSpec, ...]]:
    """Load and validate the packaged GPU catalog (once).

    Returns
    -------
    tuple of (dict of str to GPUSpec, tuple of GPUSpec)
        The lookup table keyed by normalised names and aliases, and the
        specs in file order.

    Raises
    ------
    ValueError
        If the data file is malformed or two names or aliases collide.
    """
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", _DATA_FILE), encoding="utf-8") as fh:
        text = fh.read()
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("gpus"), list):
        raise ValueError(f"vramcore/hardware/data/{_DATA_FILE}: expected an object with a 'gpus' list")
    specs = tuple(_spec_from_entry(i, entry) for i, entry in enumerate(data["gpus"]))
    table = build_table(((s.name, s.aliases, s) for s in specs), what="gpu")
    return table, specs


def get_gpu(name: str | GPUSpec) -> GPUSpec:
    """Return the catalog entry for a GPU name or alias.

    Names are matched case-insensitively, with spaces, ``_`` and ``-``
    treated alike, so ``"h100"``, ``"H100-80GB"``, ``"h100_sxm"`` and
    ``"NVIDIA H100 80GB HBM3"`` (the ``nvidia-smi`` name) all find the
    H100 SXM.

    Parameters
    ----------
    name : str or GPUSpec
        A canonical name or alias (see :func:`list_gpus`), or a
        :class:`GPUSpec`, which is returned unchanged.

    Returns
    -------
    GPUSpec
        The GPU's specification.

    Raises
    ------
    TypeError
        If `name` is neither a str nor a GPUSpec.
    ValueError
        If `name` is not a known GPU; the message suggests close names.

    Examples
    --------
    >>> gpu = get_gpu("H100 SXM")
    >>> gpu.name, gpu.memory_total_bytes // 2**20
    ('H100-SXM-80GB', 81559)
    >>> round(gpu.usable_bytes / 2**30, 2)
    79.18
    >>> get_gpu("a100")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: unknown gpu 'a100' for argument 'gpu'; did you mean 'A100-PCIe-40GB', ...
    """
    if isinstance(name, GPUSpec):
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"argument 'gpu' must be a str naming a gpu or a GPUSpec, not {type(name).__name__}"
        )
    table, _ = _catalog()
    return lookup(name, table, what="gpu", argname="gpu")


def list_gpus() -> list[str]:
    """Return the canonical names of all catalog GPUs, sorted.

    Returns
    -------
    list of str
        Canonical GPU names; each is accepted by :func:`get_gpu`.

    Examples
    --------
    >>> names = list_gpus()
    >>> "H100-SXM-80GB" in names and "MI300X" in names
    True
    >>> names == sorted(names)
    True
    """
    _, specs = _catalog()
    return sorted(spec.name for spec in specs)
