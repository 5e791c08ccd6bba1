"""Read Hugging Face ``config.json`` files: one module per model family, and this registry.

Only reads metadata; never touches the network or tensor data.  Each family
module in this package (``llama.py``, ``qwen.py``, ``gemma.py`` ...) defines
``READERS``, a dict from the ``model_type`` values it reads to a function that
maps the config's keys onto :class:`~vramcore.ModelSpec` fields, following the
corresponding ``configuration_<type>.py`` / ``modeling_<type>.py`` of
transformers 5.x (defaults included, e.g. Gemma ties embeddings by default),
and optionally ``DEFAULTS``, the config-class defaults real files leave out.
The registry finds the family modules by itself: adding a family is adding a
module.  Readers return field dicts, never specs, so this package imports
nothing above it; :meth:`vramcore.ModelSpec.from_hf_config` builds the spec.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Mapping
from functools import cache
from os import PathLike, fspath

from vramcore._errors import UnknownModelWarning
from vramcore.model.hf._reader import Fields, Reader, load_hf_config
from vramcore.model.hf.quantization import format_from_quantization_config

__all__ = ["REFUSED_MODEL_TYPES", "SUPPORTED_MODEL_TYPES", "load_hf_config", "read_hf_config"]

_NOT_FAMILIES = frozenset({"quantization"})


@cache
def _family_names() -> tuple[str, ...]:
    """Return the family modules of this package, sorted (a listing of its folder: pkgutil imports typing)."""
    names = {entry.name[:-3] for folder in __path__ for entry in os.scandir(folder)
             if entry.name.endswith(".py") and entry.is_file()}
    return tuple(sorted(n for n in names if n.isidentifier() and not n.startswith("_") and n not in _NOT_FAMILIES))


@cache
def _registry() -> tuple[dict[str, Callable[[Reader], Fields]], dict[str, dict[str, Any]],
                         dict[str, Callable[[Reader, Fields], Fields]]]:
    """Collect ``READERS`` (``REFUSED`` too), ``DEFAULTS`` and ``TOWERS`` of every family module of this package."""
    readers: dict[str, Callable[[Reader], Fields]] = {}
    defaults: dict[str, dict[str, Any]] = {}
    towers: dict[str, Callable[[Reader, Fields], Fields]] = {}
    for name in _family_names():
        module = importlib.import_module(f"{__name__}.{name}")
        for model_type, reader in (*module.READERS.items(), *getattr(module, "REFUSED", {}).items()):
            if model_type in readers:
                raise RuntimeError(f"model_type {model_type!r} is read by two family modules")
            readers[model_type] = reader
        defaults.update(getattr(module, "DEFAULTS", {}))
        towers.update(getattr(module, "TOWERS", {}))
    return readers, defaults, towers


@cache
def _refused() -> frozenset[str]:
    """Return the model types a family module reads only to refuse them with the reason (``REFUSED``)."""
    out: set[str] = set()
    for name in _family_names():
        out |= set(getattr(importlib.import_module(f"{__name__}.{name}"), "REFUSED", {}))
    return frozenset(out)


TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    #: The ``model_type`` values :meth:`vramcore.ModelSpec.from_hf_config` reads (refused families left out:
    #: :data:`REFUSED_MODEL_TYPES`).
    SUPPORTED_MODEL_TYPES: tuple[str, ...]
    #: Model types refused with the reason a ModelSpec cannot count them yet.
    REFUSED_MODEL_TYPES: tuple[str, ...]


def __getattr__(name: str) -> tuple[str, ...]:
    """Make ``SUPPORTED_MODEL_TYPES`` / ``REFUSED_MODEL_TYPES`` on first use: both import every family module."""
    if name == "SUPPORTED_MODEL_TYPES":
        return _supported()
    if name == "REFUSED_MODEL_TYPES":
        return tuple(sorted(_refused()))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _supported() -> tuple[str, ...]:
    readers, _, towers = _registry()
    return tuple(sorted((readers.keys() | towers.keys()) - _refused()))


def _own_module(model_type: str) -> Any | None:
    """Return the family module named `model_type`, when there is one that reads it, without the registry.

    Every ``READERS`` / ``REFUSED`` / ``DEFAULTS`` / ``TOWERS`` key that names a family module
    lives in that module (tests/test_specs.py checks it over the registry), so a config of such a
    type needs that module alone: a built-in card's ``llama`` imports ``llama.py``, not the twenty
    other families.
    """
    if not model_type.isidentifier() or model_type.startswith("_") or model_type in _NOT_FAMILIES:
        return None
    try:
        module = importlib.import_module(f"{__name__}.{model_type}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{model_type}":
            return None
        raise
    known = model_type in module.READERS or model_type in getattr(module, "REFUSED", {})
    return module if known else None


def read_hf_config(source: Mapping[str, Any] | str | PathLike[str], *, name: str | None = None) -> Fields:
    """Return the :class:`~vramcore.ModelSpec` fields a Hugging Face config describes.

    Multimodal configs (Gemma-3 4B and up, Mistral-Small-3.1, Qwen2.5-VL) give
    the text decoder's fields from their ``text_config`` and the vision tower
    and projector as ``vision`` (a :class:`~vramcore.model.vision.VisionSpec`),
    read by the family module's ``TOWERS`` entry for the top-level ``model_type``.  A
    ``quantization_config`` (GPTQ, AWQ, bitsandbytes, fp8, compressed-tensors,
    ModelOpt, mxfp4) is recorded as ``quantization``, the format the dtype
    ``"auto"`` resolves to.

    A ``model_type`` no family module reads is read as a Llama-like decoder
    from the standard fields, with an :class:`~vramcore.UnknownModelWarning`
    naming it and every assumption made (``vramcore/model/hf/_generic.py``);
    an alias (``kimi_k2``) is read by its family.  A nested ``text_config``
    is read for any ``model_type``; a multimodal wrapper no family module
    reads gives its text decoder alone, with a warning that its towers are
    not counted.

    Parameters
    ----------
    source : dict, str or path-like
        The config, a ``config.json`` path or a folder holding one.
    name : str, optional
        Label for the spec; defaults to the folder name, the config's
        ``_name_or_path`` or the model type.

    Returns
    -------
    dict
        Keyword arguments of :class:`~vramcore.ModelSpec` (``name``,
        ``model_type`` and ``quantization`` included).

    Raises
    ------
    ValueError
        No ``model_type``, a missing / malformed field (for an unknown model
        type: every field the estimate needs, named at once), or layer kinds
        a ModelSpec cannot hold.
    TypeError
        `source` is of another type.

    Warns
    -----
    UnknownModelWarning
        The ``model_type`` (or the multimodal wrapper around a known one) is
        not one a family module reads.
    """
    cfg = load_hf_config(source)
    full = cfg
    quantization = _quantization(cfg)
    model_type = cfg.get("model_type")
    wrapper = model_type
    text = cfg.get("text_config")
    if isinstance(text, Mapping):
        merged = dict(text)
        merged.setdefault("model_type", f"{model_type}_text" if model_type else None)
        if model_type == "gemma3":
            merged["model_type"] = "gemma3_text"
        cfg, model_type = merged, merged.get("model_type")
    if model_type is None:
        raise ValueError("config is missing field 'model_type'")
    if not isinstance(model_type, str) or not model_type:
        raise ValueError(f"config field 'model_type' must be a non-empty string, got {str(model_type)[:80]!r}")
    own = _own_module(model_type) if not isinstance(text, Mapping) else None
    if own is not None:  # a family module named after the type: the registry is not needed
        reader = {**getattr(own, "REFUSED", {}), **own.READERS}.get(model_type)
        defaults, towers = getattr(own, "DEFAULTS", {}).get(model_type), getattr(own, "TOWERS", {})
    else:
        readers, all_defaults, towers = _registry()
        defaults, reader = all_defaults.get(str(model_type)), readers.get(model_type)
    if defaults:
        cfg = {**defaults, **{k: v for k, v in cfg.items() if v is not None}}
    if reader is None:  # no family module reads it: a Llama-like read, every assumption in a warning
        from vramcore.model.hf._generic import read_unknown

        fields = read_unknown(Reader(cfg, model_type), _supported())
    else:
        fields = reader(Reader(cfg, model_type))
    tower = towers.get(str(full.get("model_type")))
    if tower is not None:  # a multimodal checkpoint: its vision tower and projector count too
        fields.update(tower(Reader(full, str(full.get("model_type"))), fields))
    if isinstance(text, Mapping) and wrapper not in _supported():
        warnings.warn(f"model_type {wrapper!r} is a multimodal wrapper vramcore does not read: the estimate counts "
                      f"its text_config ({model_type!r}) alone; its vision / audio towers and projectors are not "
                      "counted", UnknownModelWarning, stacklevel=3)
    if name is None:
        if isinstance(source, (str, PathLike)):
            from pathlib import Path  # only for files: a built-in card needs no pathlib

            p = Path(fspath(source))
            name = (p if p.is_dir() else p.parent).name or model_type
        else:
            name = cfg.get("_name_or_path") or model_type
    return {"name": str(name), "model_type": model_type, "quantization": quantization, **fields}


def _quantization(cfg: Mapping[str, Any]) -> str | None:
    """Return the storage format the config's ``quantization_config`` names (top level or ``text_config``)."""
    qc = cfg.get("quantization_config")
    if qc is None and isinstance(cfg.get("text_config"), Mapping):
        qc = cfg["text_config"].get("quantization_config")
    if qc is None:
        return None
    if not isinstance(qc, Mapping):
        raise ValueError(f"config field 'quantization_config' must be an object, got {qc!r}")
    try:
        return format_from_quantization_config(qc)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config field 'quantization_config': {exc}") from None
