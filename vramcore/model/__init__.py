"""What a model is: its geometry, its tensors, the configs it is read from and the built-in cards.

The model layer knows shapes and counts, nothing about storage or engines.
Modules, bottom up:

- :mod:`~vramcore.model.hf`: Hugging Face ``config.json`` readers, one module per family (field dicts);
- :mod:`~vramcore.model.spec`: :class:`~vramcore.ModelSpec`, exact parameter counts by part;
- :mod:`~vramcore.model.tensors`: every tensor of a spec, with its shape and part;
- :mod:`~vramcore.model.cards`: the built-in model cards (``data/*.json``).
"""

from __future__ import annotations

import importlib

#: Public names and the module each comes from, imported on first use (a card
#: needs neither the tensor lists nor every family module).
_LAZY: dict[str, str] = {
    "ModelCard": "vramcore.model.cards", "get_model": "vramcore.model.cards",
    "is_model_name": "vramcore.model.cards", "list_models": "vramcore.model.cards",
    "load_hf_config": "vramcore.model.hf", "SUPPORTED_MODEL_TYPES": "vramcore.model.hf",
    "PARTS": "vramcore.model.spec", "ModelSpec": "vramcore.model.spec",
    "TensorInfo": "vramcore.model.tensors", "list_tensors": "vramcore.model.tensors",
}

__all__ = ["PARTS", "SUPPORTED_MODEL_TYPES", "ModelCard", "ModelSpec", "TensorInfo", "get_model", "is_model_name",
           "list_models", "list_tensors", "load_hf_config", "spec_from_hf_config"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from os import PathLike
    from typing import Any

    from vramcore.model.cards import ModelCard, get_model, is_model_name, list_models
    from vramcore.model.hf import SUPPORTED_MODEL_TYPES, load_hf_config
    from vramcore.model.spec import PARTS, ModelSpec
    from vramcore.model.tensors import TensorInfo, list_tensors


def __getattr__(name: str) -> Any:
    """Return a public name on first use (``SUPPORTED_MODEL_TYPES`` imports every family module)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if name != "SUPPORTED_MODEL_TYPES":     # hf's own lazy value, kept there
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def spec_from_hf_config(source: Mapping[str, Any] | str | PathLike[str], *, name: str | None = None) -> ModelSpec:
    """Build a :class:`~vramcore.ModelSpec` from a Hugging Face config (:meth:`ModelSpec.from_hf_config`).

    Parameters
    ----------
    source : dict, str or path-like
        The config, a ``config.json`` path or a folder holding one.
    name : str, optional
        Label for the spec.

    Returns
    -------
    ModelSpec
    """
    from vramcore.model.spec import ModelSpec

    return ModelSpec.from_hf_config(source, name=name)
