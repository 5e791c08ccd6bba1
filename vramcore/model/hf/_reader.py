"""What every family reader shares: loading a ``config.json`` and typed access to its fields.

A family module (``llama.py``, ``qwen.py`` ...) maps the config keys of its
``model_type`` values onto :class:`~vramcore.ModelSpec` fields and returns them
as a dict; it never builds the spec itself, so this package sits below
:mod:`vramcore.model.spec` and imports nothing above it.
"""

from __future__ import annotations

import builtins
import json
import math
from collections.abc import Callable, Mapping
from os import PathLike, fspath

from vramcore.model.limits import CONFIG_KEYS, check_limit

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

    #: What a family reader returns: ModelSpec keyword arguments (a reader of an alias, such as ``kimi_k2``,
    #: sets ``model_type`` to the family it belongs to).
    Fields = dict[str, Any]
else:  # annotations are strings: at run time the alias needs only to exist
    Fields = dict

__all__ = ["Reader", "Fields", "common_fields", "load_hf_config", "set_layer_types"]


def load_hf_config(source: Mapping[str, Any] | str | PathLike[str]) -> dict[str, Any]:
    """Return the config dict of `source` (a dict, a ``config.json`` path, or a folder holding one).

    Parameters
    ----------
    source : dict, str or path-like
        The parsed config, a ``config.json`` path or a folder holding one.

    Returns
    -------
    dict

    Raises
    ------
    TypeError
        `source` is neither a mapping nor a path.
    ValueError
        The file is missing or is not a JSON object.
    """
    if isinstance(source, Mapping):
        return dict(source)
    if not isinstance(source, (str, PathLike)):
        raise TypeError(f"config must be a dict, a path to config.json or a folder, got "
                        f"{type(source).__name__}")
    from pathlib import Path  # only for files: a built-in card needs no pathlib

    path = Path(fspath(source))
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():  # also refuses FIFOs, sockets and devices: reading them could block
        raise ValueError(f"config: no such file {str(path)!r}")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ValueError(f"config: {str(path)!r} is {size} bytes, more than a config.json holds "
                             f"({MAX_CONFIG_BYTES})")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"config: cannot read {str(path)!r} as JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"config: {str(path)!r} is nested too deeply to be a config.json") from None
    if not isinstance(data, dict):
        raise ValueError(f"config: {str(path)!r} does not hold a JSON object")
    return data


#: Largest config.json read (real ones are a few KiB; a multimodal one some tens).
MAX_CONFIG_BYTES = 16 * 2**20


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Reader:
    """Typed access to a config dict with errors that name the missing or malformed key."""

    def __init__(self, cfg: Mapping[str, Any], model_type: str) -> None:
        self.cfg = cfg
        self.model_type = model_type

    def int(self, key: str, default: Any = ..., *, minimum: int = 0) -> Any:
        """Return the integer field `key` (`default` when absent; required when no default).

        The value must be a whole number >= `minimum` (1 for the fields that
        divide: patterns, steps, frequencies) and within the bound
        :data:`vramcore.model.limits.LIMITS` sets for the field it feeds.
        """
        value = self.cfg.get(key, None)
        if value is None:
            if default is ...:
                raise ValueError(f"config of model_type {self.model_type!r} is missing field {key!r}")
            return default
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(value, float) and not math.isfinite(value)) or int(value) != value):
            raise ValueError(f"config field {key!r} must be an integer, got {_show(value)}")
        number = int(value)
        if number < minimum:
            raise ValueError(f"config field {key!r} must be >= {minimum}, got {number}")
        check_limit(CONFIG_KEYS.get(key, ""), number, f"config field {key!r}")
        return number

    def int_set(self, key: str) -> set[builtins.int]:
        """Return the list-of-integers field `key` (layer indices) as a set; empty when absent."""
        value = self.cfg.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"config field {key!r} must be a list of integers, got {_show(value)}")
        return set(value)

    def bool(self, key: str, default: bool) -> bool:
        """Return the boolean field `key` (`default` when absent or null)."""
        value = self.cfg.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ValueError(f"config field {key!r} must be true/false, got {value!r}")
        return value


def common_fields(r: Reader, *, tie_default: bool) -> Fields:
    """Return the fields every decoder config spells the same way (Llama names)."""
    heads = r.int("num_attention_heads")
    return {
        "num_layers": r.int("num_hidden_layers"),
        "hidden_size": r.int("hidden_size"),
        "num_heads": heads,
        "num_kv_heads": r.int("num_key_value_heads", heads),
        "head_dim": r.int("head_dim", None),
        "intermediate_size": r.int("intermediate_size"),
        "vocab_size": r.int("vocab_size"),
        "max_context": r.int("max_position_embeddings", None),
        "tie_embeddings": r.bool("tie_word_embeddings", tie_default),
    }


def rotary_dim(r: Reader, out: Fields, default: float = 1.0) -> int | None:
    """Return each head's rotary width from ``partial_rotary_factor`` (None: the whole head).

    transformers 5 reads the factor from ``rope_parameters`` (where its configs move it) or the top level
    (``modeling_rope_utils._compute_default_rope_parameters``: ``int(head_dim * partial_rotary_factor)``; vLLM
    ``get_rope`` takes the same width).  `default` is the family's config default when the file gives none
    (GLM-4.5 0.5, Qwen3-Next 0.25).

    Raises
    ------
    ValueError
        The factor is not a number in (0, 1], or no head width is given and ``num_attention_heads`` is 0.
    """
    params = r.cfg.get("rope_parameters")
    factor = params.get("partial_rotary_factor") if isinstance(params, dict) else None
    if factor is None:
        factor = r.cfg.get("partial_rotary_factor")
    if factor is None:
        factor = default
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0.0 < factor <= 1.0:
        raise ValueError(f"config field 'partial_rotary_factor' of model_type {r.model_type!r} must be a number "
                         f"in (0, 1], got {_show(factor)}")
    if not out.get("head_dim") and out["num_heads"] < 1:   # the head width comes from the heads
        raise ValueError(f"config field 'num_attention_heads' of model_type {r.model_type!r} must be >= 1, got "
                         f"{_show(out['num_heads'])}")
    head_dim = out.get("head_dim") or out["hidden_size"] // out["num_heads"]
    width = int(head_dim * factor)
    if width < 1:
        raise ValueError(f"config field 'partial_rotary_factor' ({factor}) leaves no rotary dimension of the "
                         f"{head_dim}-wide heads of model_type {r.model_type!r}")
    return None if width == head_dim else width


def config_layer_types(r: Reader, n_layers: int) -> tuple[str, ...] | None:
    """Return the config's own ``layer_types`` list (checked for length), or None when it has none."""
    types = r.cfg.get("layer_types")
    if types is None:
        return None
    if not isinstance(types, list) or len(types) != n_layers:
        raise ValueError(f"config field 'layer_types' must be a list of {n_layers} entries, got {_show(types)}")
    for i, kind in enumerate(types):
        if not isinstance(kind, str):
            raise ValueError(f"config field 'layer_types'[{i}] must be a string, got {_show(kind)}")
    return tuple(types)


def set_layer_types(r: Reader, out: Fields, sliding: Callable[[int], bool] | None) -> None:
    """Set ``layer_types`` (and ``sliding_window`` when a layer slides) in `out`.

    The config's ``layer_types`` wins; otherwise layer ``i`` slides when
    ``sliding(i)`` is true (None: leave ``layer_types`` unset, the
    ModelSpec rule applies).
    """
    n = out["num_layers"]
    types = config_layer_types(r, n)
    if types is None and sliding is not None:
        types = tuple("sliding_attention" if sliding(i) else "full_attention" for i in range(n))
    out["layer_types"] = types
    if types is not None and "sliding_attention" in types:
        out["sliding_window"] = r.int("sliding_window")
