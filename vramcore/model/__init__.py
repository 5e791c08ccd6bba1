"""What a model is: its geometry, its tensors, the configs it is read from and the built-in cards.

The model layer knows shapes and counts, nothing about storage or engines.
Modules, bottom up:

- :mod:`~vramcore.model.hf`: Hugging Face ``config.json`` readers, one module per family (field dicts);
- :mod:`~vramcore.model.spec`: :class:`~vramcore.ModelSpec`, exact parameter counts by part;
- :mod:`~vramcore.model.tensors`: every tensor of a spec, with its shape and part;
- :mod:`~vramcore.model.cards`: the built-in model cards (``data/*.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

from vramcore.model.cards import ModelCard, get_model, is_model_name, list_models
from vramcore.model.hf import load_hf_config
from vramcore.model.spec import PARTS, ModelSpec
from vramcore.model.tensors import TensorInfo, list_tensors

__all__ = ["PARTS", "SUPPORTED_MODEL_TYPES", "ModelCard", "ModelSpec", "TensorInfo", "get_model", "is_model_name",
           "list_models", "list_tensors", "load_hf_config", "spec_from_hf_config"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    from vramcore.model.hf import SUPPORTED_MODEL_TYPES


def __getattr__(name: str) -> tuple[str, ...]:
    """``SUPPORTED_MODEL_TYPES`` on first use (it imports every family module)."""
    if name == "SUPPORTED_MODEL_TYPES":
        from vramcore.model import hf

        return hf.SUPPORTED_MODEL_TYPES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    return ModelSpec.from_hf_config(source, name=name)
