"""One configuration at a time: the scalar path of :func:`vramcore.estimate` and :class:`Estimator`.

A caller that asks about one configuration -- another tool looping over
configurations, ``vramcore estimate`` on the command line -- needs neither a
grid nor numpy.  This module resolves a model, dtype and engine once into the
kernel's plan (``vramcore.grid._kernel.cell_plan``: the same ``vc_make_plan``
the grid uses, over rows packed by :mod:`vramcore.grid.pack` into
``array.array`` buffers), then answers each (context, batch, GPU) with one call
of the same C formula (``_kernel.cell``).  The figures are the ones
:func:`vramcore.sweep` writes for that cell, bit for bit; the verdicts set in
Python (a format the engine does not load, FP8 on a GPU without it) are decided
by the same predicates, :func:`format_blocked_cell` and
:func:`fp8_blocked_cell`, that the grid applies array-wide.
"""

from __future__ import annotations

import os
import warnings
from array import array
from collections.abc import Hashable
from functools import lru_cache

import vramcore.grid._kernel as _kernel
import vramcore.grid.pack as _pack
from vramcore._errors import VramcoreWarning
from vramcore._identity import key, unkey
from vramcore.engines import EngineSpec, loads_format, needs_fp8_hardware
from vramcore.engines.base import engine_attention
from vramcore.grid.record import GPU_REASONS, REASONS, Estimate, reason_names
from vramcore.grid.resolve import gpu_memory_bytes, prepare_engines, resolve_gpu, resolve_model
from vramcore.grid.validation import MAX_COUNT, positive_int
from vramcore.hardware.gpus import MAX_GPU_BYTES, GPUSpec
from vramcore.model.cards import is_model_name
from vramcore.model.spec import ModelSpec
from vramcore.storage.dtypes import DType
from vramcore.storage.resolve import format_family, get_dtype, resolve_auto

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Estimator", "estimate_cell", "format_blocked_cell", "fp8_blocked_cell", "result_dtype_name",
           "result_weights_by_part"]

#: reasons bits set in Python (vramcore.grid.results.REASONS)
FORMAT_NOT_RUNNABLE = 1 << REASONS.index("format_not_runnable_on_engine")
DTYPE_UNSUPPORTED_ON_GPU = 1 << REASONS.index("dtype_unsupported_on_gpu")
_GPU_BITS = sum(1 << REASONS.index(r) for r in GPU_REASONS)
#: The placeholder GPU of an estimate without one (nothing that depends on its memory is reported).
NO_GPU = GPUSpec(name="none", vendor="none", memory_total_bytes=MAX_GPU_BYTES, source="placeholder")
_ANY_GPU = GPUSpec(name="any", vendor="none", memory_total_bytes=MAX_GPU_BYTES, cuda_visible_bytes=MAX_GPU_BYTES,
                   source="placeholder")


def _is_fp8(name: str | None) -> bool:
    return name is not None and name.lower().replace("-", "_").startswith("fp8")


def format_blocked_cell(spec: ModelSpec, dtype: DType, engine: EngineSpec) -> bool:
    """Return True where `engine` does not run `spec` stored in `dtype` (``format_not_runnable_on_engine``).

    Inference engines load the storage families of their module's ``LOADS``;
    the training methods train from what :func:`vramcore.engines.train.training_base` allows.
    """
    if engine.kind == "train":
        from vramcore.engines.train import training_base  # the training rules load with the first training engine

        return not training_base(spec, dtype, engine)[1]
    return not loads_format(engine, format_family(dtype, spec))


def fp8_blocked_cell(spec: ModelSpec, dtype: DType, kv_dtype: DType | None, engine: EngineSpec) -> bool:
    """Return True where the configuration needs hardware FP8 (FP8 weights or KV under an engine that needs it).

    The cell is then blocked (``dtype_unsupported_on_gpu``) on a GPU whose ``fp8`` is False.
    """
    if not needs_fp8_hardware(engine):
        return False
    if _is_fp8(engine.kv_cache_dtype) or (kv_dtype is not None and _is_fp8(kv_dtype.name)):
        return True
    weights = resolve_auto(spec) if dtype.name == "auto" else dtype
    return format_family(weights) == "fp8" or _is_fp8(weights.name)


def result_dtype_name(spec: ModelSpec, dtype: DType, engine: EngineSpec) -> str:
    """Return the weight format an Estimate names: ``"auto"`` resolved; under training, the dtype trained in."""
    if engine.kind == "train":
        from vramcore.engines.train import training_base

        return training_base(spec, dtype, engine)[0].name
    return resolve_auto(spec).name if dtype.name == "auto" else dtype.name


def result_weights_by_part(spec: ModelSpec, dtype: DType, engine: EngineSpec) -> dict[str, float]:
    """Return the whole model's weight bytes by part as the engine holds them, as an Estimate reports them."""
    if engine.kind == "train":
        from vramcore.engines.train import weight_bytes_by_part

        return weight_bytes_by_part(spec, dtype, engine)
    return _pack.engine_part_bytes(spec, dtype, engine)


class Estimator:
    """A model, weight dtype and engine resolved and planned once, called per (context, batch, gpu).

    For tools that loop over configurations: construction does the lookups,
    validation and the kernel's per-(model, dtype, engine) plan; each call is
    one C evaluation and an :class:`vramcore.Estimate` equal to what
    :func:`vramcore.estimate` (and the matching :func:`vramcore.sweep` cell)
    returns.

    Parameters
    ----------
    model : str, ModelSpec, ModelCard, dict or path
        As for :func:`vramcore.estimate`.
    dtype, kv_dtype, engine, n_gpus, tp, pp, gpu_memory
        As for :func:`vramcore.estimate`.

    Raises
    ------
    ValueError, TypeError
        As :func:`vramcore.estimate` does, at construction or per call (a
        context, batch or GPU that is not valid).

    Examples
    --------
    >>> import vramcore
    >>> from vramcore import Estimator
    >>> est = Estimator("DeepSeek-R1-Distill-Llama-8B", engine="vllm")
    >>> [est(context=c, gpu="H100").fits for c in (8192, 131072)]
    [True, True]
    >>> est(context=8192, gpu="H100") == vramcore.estimate("DeepSeek-R1-Distill-Llama-8B", context=8192,
    ...                                                    gpu="H100", engine="vllm")
    True
    """

    __slots__ = ("_attention", "_blocked", "_constant", "_fp8", "_gpus", "_gpu_memory", "_kv_name", "_plan",
                 "_said", "_weights_by_part", "engine", "spec")

    def __init__(self, model: Any, *, dtype: str | DType = "auto", kv_dtype: str | None = None,
                 engine: str | EngineSpec = "transformers", n_gpus: int = 1, tp: int | None = None,
                 pp: int | None = None, gpu_memory: str | int = "usable") -> None:
        if isinstance(engine, (list, tuple)):
            raise TypeError("engine must be one engine name or EngineSpec; use vramcore.sweep to compare engines")
        spec = resolve_model(model, "model")
        dt = get_dtype(dtype)
        kv = get_dtype(kv_dtype, argname="kv_dtype", allow_formats=False) if kv_dtype is not None else None
        _, rows, tp_, pp_ = prepare_engines(engine, (spec,), n_gpus, tp, pp)
        eng = rows[0][0]
        gpu_memory_bytes(_ANY_GPU, gpu_memory)        # validate the choice once (each GPU is checked when used)
        place = array("d", _pack.place_row(spec, eng, tp_, pp_))   # one row per distinct pipeline stage
        plan = array("d", bytes(8 * _kernel.PLAN_NFIELDS * (len(place) // _kernel.PLACE_NFIELDS)))
        parts = _pack.engine_part_bytes(spec, dt, eng)
        with warnings.catch_warnings(record=True) as said:
            # what the configuration warns about (a LoRA target that is no module, ZeRO over one GPU) is kept,
            # so that an estimate from a cached Estimator says it again (say_again)
            warnings.simplefilter("always", VramcoreWarning)
            train = _pack.train_row(spec, dt, eng)
        _kernel.cell_plan(array("d", _pack.model_row(spec)), array("d", _pack.dtype_row(dt, kv)),
                          array("d", list(parts.values())), array("d", _pack.engine_row(eng, tp_, pp_)),
                          array("d", train), place, plan)
        self.spec, self.engine, self._plan, self._gpu_memory = spec, eng, plan, gpu_memory
        self._kv_name = kv.name if kv is not None else None
        self._blocked = format_blocked_cell(spec, dt, eng)
        self._fp8 = fp8_blocked_cell(spec, dt, kv, eng)
        self._weights_by_part = result_weights_by_part(spec, dt, eng)
        self._attention = engine_attention(spec, eng)
        # model, dtype, kv_dtype, n_gpus, engine, tp, pp, param_count
        self._constant = (spec.name, result_dtype_name(spec, dt, eng), self._kv_name, tp_ * pp_, eng.name, tp_, pp_,
                          spec.param_count)
        self._gpus: dict[Hashable, tuple[str, float, float, bool | None, Any]] = {}
        self._said = tuple(str(w.message) for w in said)
        self.say_again(stacklevel=2)

    def say_again(self, stacklevel: int = 1) -> None:
        """Warn again what building this Estimator warned about (a :class:`vramcore.VramcoreWarning` each)."""
        for message in self._said:
            warnings.warn(message, VramcoreWarning, stacklevel=stacklevel + 1)

    def _gpu(self, gpu: Any) -> tuple[str, float, float, bool | None]:
        # names by value, GPUSpecs by identity (hashing a spec's fields costs more than the estimate)
        key: Hashable = gpu if isinstance(gpu, str) else id(gpu)
        found = self._gpus.get(key)
        if found is not None and (isinstance(gpu, str) or found[4] is gpu):
            return found[:4]
        g = resolve_gpu(gpu)
        memory = gpu_memory_bytes(g, self._gpu_memory)
        found = (g.name, memory, 1.0 if _pack.gpu_is_large(g.name, memory) else 0.0, g.fp8, gpu)
        if isinstance(gpu, (str, GPUSpec)):
            if len(self._gpus) >= 256:
                self._gpus.clear()
            self._gpus[key] = found
        return found[:4]

    def __call__(self, context: int, batch: int = 1, gpu: str | GPUSpec | None = None) -> Estimate:
        """Return the :class:`vramcore.Estimate` of `batch` sequences of `context` tokens on `gpu`.

        Parameters
        ----------
        context : int
            Tokens per sequence (training: the sequence length).
        batch : int
            Concurrent sequences (training: the micro-batch per GPU).
        gpu : str or GPUSpec, optional
            GPU to check the fit against; None skips the fit.

        Returns
        -------
        Estimate
        """
        if type(context) is not int or not 0 < context <= MAX_COUNT:
            context = positive_int("context", context)
        if type(batch) is not int or not 0 < batch <= MAX_COUNT:
            batch = positive_int("batch", batch)
        name: str | None
        if gpu is None:
            if self.engine.budgeted:
                raise ValueError(f"engine {self.engine.name!r} sizes its KV cache from the GPU's memory; "
                                 "pass gpu=")
            name, memory, fp8 = "none", gpu_memory_bytes(NO_GPU, "usable"), None
            large = 1.0 if _pack.gpu_is_large("none", memory) else 0.0
        else:
            name, memory, large, fp8 = self._gpu(gpu)
        r = _kernel.cell(self._plan, float(context), float(batch), memory, large)
        code = int(r[15])
        if self._blocked:
            code |= FORMAT_NOT_RUNNABLE
        if self._fp8 and fp8 is False:
            code |= DTYPE_UNSUPPORTED_ON_GPU
        c = self._constant
        if gpu is None:
            # nothing that depends on the GPU's memory is meaningful without one
            name, gpu_bytes, fits, headroom, concurrency = None, None, None, None, None
            reasons = reason_names(code & ~_GPU_BITS)
        else:
            gpu_bytes, headroom, concurrency, reasons = memory, r[5], r[8], reason_names(code)
            fits = bool(r[16]) and not code & (FORMAT_NOT_RUNNABLE | DTYPE_UNSUPPORTED_ON_GPU)
        values = {
            "model": c[0], "dtype": c[1], "kv_dtype": c[2], "context": context, "batch": batch, "gpu": name,
            "n_gpus": c[3], "engine": c[4], "weights_bytes": r[0], "kv_cache_bytes": r[1],
            "activation_bytes": r[2], "overhead_bytes": r[3], "total_bytes": r[4], "gpu_bytes": gpu_bytes,
            "fits": fits, "headroom_bytes": headroom, "kv_capacity_tokens": r[6], "kv_blocks": r[7],
            "max_concurrency": concurrency, "host_bytes": r[9], "gradients_bytes": r[10], "optimizer_bytes": r[11],
            "master_weights_bytes": r[12], "trainable_params": r[13], "state_bytes": r[14], "tp": c[5], "pp": c[6],
            "weights_by_part": dict(self._weights_by_part), "param_count": c[7], "reasons": reasons,
            "attention": self._attention,
        }
        out = object.__new__(Estimate)            # every field set here: no __init__ round trip per call
        object.__setattr__(out, "__dict__", values)
        return out


@lru_cache(maxsize=256, typed=True)
def _cached(model: Any, dtype: Any, kv_dtype: Any, engine: Any, n_gpus: Any, tp: Any, pp: Any,
            gpu_memory: Any) -> Estimator:
    return Estimator(unkey(model), dtype=unkey(dtype), kv_dtype=unkey(kv_dtype), engine=unkey(engine),
                     n_gpus=unkey(n_gpus), tp=unkey(tp), pp=unkey(pp), gpu_memory=unkey(gpu_memory))


#: Which strings are built-in model names (cached: a path is read again each time, it may change).
_NAMES: dict[str, bool] = {}


def estimator_for(model: Any, dtype: Any = "auto", kv_dtype: Any = None, engine: Any = "transformers",
                  n_gpus: Any = 1, tp: Any = None, pp: Any = None, gpu_memory: Any = "usable") -> Estimator:
    """Return an :class:`Estimator`, cached for immutable arguments (built-in names, specs, engines).

    A path or a config dict is read again each time (the file may change).
    """
    return _estimator_and_hit(model, dtype, kv_dtype, engine, n_gpus, tp, pp, gpu_memory)[0]


def _estimator_and_hit(model: Any, dtype: Any, kv_dtype: Any, engine: Any, n_gpus: Any, tp: Any, pp: Any,
                       gpu_memory: Any) -> tuple[Estimator, bool]:
    if type(model) is str:
        named = _NAMES.get(model)
        if named is None:
            named = is_model_name(model)
            if len(_NAMES) < 4096:
                _NAMES[model] = named
        # a Hugging Face id that is no local path resolves once per process (vramcore.storage.pretrained):
        # its Estimator can be kept as a built-in name's is
        cacheable = named or (("/" in model or "@" in model) and not model.lower().endswith((".json", ".gguf"))
                              and not os.path.exists(model))
    else:
        cacheable = isinstance(model, ModelSpec)
    if cacheable:                 # every key is hashable: values by value, objects by identity
        misses = _cached.cache_info().misses
        est = _cached(key(model), key(dtype), key(kv_dtype), key(engine), key(n_gpus), key(tp), key(pp),
                      key(gpu_memory))
        return est, _cached.cache_info().misses == misses
    return Estimator(model, dtype=dtype, kv_dtype=kv_dtype, engine=engine, n_gpus=n_gpus, tp=tp, pp=pp,
                     gpu_memory=gpu_memory), False


def estimate_cell(model: Any, dtype: Any, kv_dtype: Any, context: Any, batch: Any, gpu: Any, n_gpus: Any,
                  engine: Any, tp: Any, pp: Any, gpu_memory: Any) -> Estimate:
    """Return the Estimate of one configuration through the scalar path (what :func:`vramcore.estimate` does)."""
    est, cached = _estimator_and_hit(model, dtype, kv_dtype, engine, n_gpus, tp, pp,
                                     gpu_memory if gpu is not None else "usable")
    if cached and est._said:
        est.say_again(stacklevel=3)
    return est(context, batch, gpu)
