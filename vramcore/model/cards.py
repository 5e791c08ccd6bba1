"""Built-in model cards: package data files under ``vramcore/model/data``.

A card is facts about a published model (who made it, when, its license and
usage guidance) plus its Hugging Face ``config.json``; the geometry comes only
from that config, through :meth:`ModelSpec.from_hf_config` (one way in).
"""

from __future__ import annotations

import json
import os
from functools import cache, cached_property

from vramcore._names import lookup, normalize_name
from vramcore._record import Record, field, record
from vramcore.model.spec import ModelSpec

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ModelCard", "get_model", "list_models"]


@record(frozen=True, repr=False, eq=False)
class ModelCard(Record):
    """A built-in model: published facts plus the spec read from its config.

    Attributes
    ----------
    name : str
        Canonical name (e.g. ``"DeepSeek-R1-Distill-Llama-8B"``).
    aliases : tuple of str
        Other accepted names.
    hf_repo : str
        Hugging Face repository.
    company, family, release_date, architecture, license, modality : str
        Card facts (release date as ISO ``YYYY-MM-DD``).
    context_window : int
        Context window in tokens.
    published_params : int or None
        Published parameter count (checked against :attr:`total_params` in the tests).
    notes : str
        Memory behaviour.
    usage : str
        Usage guidance.
    sources : tuple of str
        Where the facts and the config come from.
    config : dict
        The ``config.json`` content.
    """

    name: str
    aliases: tuple[str, ...]
    hf_repo: str
    company: str
    family: str
    release_date: str
    architecture: str
    license: str
    modality: str
    context_window: int
    published_params: int | None
    notes: str
    usage: str
    sources: tuple[str, ...]
    config: dict[str, Any] = field(repr=False, compare=False)

    @cached_property
    def spec(self) -> ModelSpec:
        """The :class:`ModelSpec` read from the card's config."""
        return ModelSpec.from_hf_config(self.config, name=self.name)

    @property
    def total_params(self) -> int:
        """Total parameters (exact, tied tensors once)."""
        return self.spec.param_count

    @property
    def active_params(self) -> int:
        """Parameters active per token (equal to the total for dense models)."""
        return self.spec.active_param_count

    @property
    def layers(self) -> int:
        """Decoder layers."""
        return self.spec.num_layers

    @property
    def hidden_size(self) -> int:
        """Hidden size."""
        return self.spec.hidden_size

    @property
    def attention_heads(self) -> int:
        """Query heads."""
        return self.spec.num_heads

    @property
    def kv_heads(self) -> int:
        """Key/value heads."""
        return int(self.spec.num_kv_heads or 0)

    @property
    def kv_layers(self) -> int:
        """Layers that hold a KV cache."""
        return self.spec.kv_layers

    def to_dict(self) -> dict[str, Any]:
        """Every card field plus the derived geometry, JSON-serialisable (config excluded)."""
        return {
            "name": self.name, "aliases": list(self.aliases), "hf_repo": self.hf_repo,
            "company": self.company, "family": self.family, "release_date": self.release_date,
            "architecture": self.architecture, "license": self.license, "modality": self.modality,
            "context_window": self.context_window, "total_params": self.total_params,
            "active_params": self.active_params, "layers": self.layers,
            "hidden_size": self.hidden_size, "attention_heads": self.attention_heads,
            "kv_heads": self.kv_heads, "kv_layers": self.kv_layers, "notes": self.notes,
            "usage": self.usage, "sources": list(self.sources),
        }

    def __str__(self) -> str:
        d = self.to_dict()
        width = max(len(k) for k in d)
        lines = []
        for k, v in d.items():
            if isinstance(v, list):
                v = ", ".join(map(str, v))
            elif isinstance(v, int) and k.endswith("params"):
                v = f"{v:,} ({v / 1e9:.2f}B)"
            lines.append(f"{k:<{width}}  {v}")
        return "\n".join(lines)


def _card_from_json(data: dict[str, Any], source: str) -> ModelCard:
    try:
        return ModelCard(
            name=data["name"], aliases=tuple(data.get("aliases", ())), hf_repo=data["hf_repo"],
            company=data["company"], family=data["family"], release_date=data["release_date"],
            architecture=data["architecture"], license=data["license"], modality=data["modality"],
            context_window=int(data["context_window"]), published_params=data.get("published_params"),
            notes=data.get("notes", ""), usage=data.get("usage", ""),
            sources=tuple(data.get("sources", ())), config=data["config"])
    except KeyError as exc:
        raise ValueError(f"model card {source} is missing field {exc.args[0]!r}") from None


#: The package's data folder on disk (plain os calls: importlib.resources costs a CLI call ~10 ms to import).
_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@cache
def _load(filename: str) -> ModelCard:
    """Read one card file of the package data, once (every lookup shares the instance)."""
    with open(os.path.join(_FOLDER, filename), encoding="utf-8") as fh:
        return _card_from_json(json.loads(fh.read()), filename)


@cache
def _cards() -> dict[str, ModelCard]:
    """Canonical name -> card, loaded once from the package data."""
    cards: dict[str, ModelCard] = {}
    for name in sorted(os.listdir(_FOLDER)):
        if name.endswith(".json"):
            card = _load(name)
            cards[card.name] = card
    return cards


def _by_file(name: str) -> ModelCard | None:
    """Return the card whose canonical name `name` is, reading its file alone, or None.

    Each card file is named after its canonical name's key (``normalize_name``) and no alias
    of one card is another's canonical key (tests/test_specs.py checks both), so a lookup by
    canonical name needs that one file, not the whole catalog.
    """
    key = normalize_name(name)
    if not key or key.startswith(".") or "/" in key or "\\" in key or os.sep in key:
        return None
    filename = key + ".json"
    if not os.path.isfile(os.path.join(_FOLDER, filename)):
        return None
    card = _load(filename)
    return card if normalize_name(card.name) == key else None


@cache
def _table() -> dict[str, ModelCard]:
    table: dict[str, ModelCard] = {}
    for card in _cards().values():
        for key in (card.name, *card.aliases, card.hf_repo):
            table[normalize_name(key)] = card
    return table


def is_model_name(name: str) -> bool:
    """Return True when `name` names a built-in card."""
    return _by_file(name) is not None or normalize_name(name) in _table()


def get_model(name: str) -> ModelCard:
    """Return the built-in card called `name` (case-insensitive; aliases and HF repo ids accepted).

    Parameters
    ----------
    name : str
        E.g. ``"DeepSeek-R1-Distill-Llama-8B"``, ``"deepseek-ai/DeepSeek-R1-Distill-Llama-8B"``.

    Returns
    -------
    ModelCard

    Raises
    ------
    ValueError
        Unknown name; the message lists close matches.
    TypeError
        `name` is not a str.

    Examples
    --------
    >>> card = get_model("deepseek-r1-distill-llama-8b")
    >>> card.company, card.context_window, card.kv_heads
    ('DeepSeek', 131072, 8)
    """
    card = _by_file(name) if isinstance(name, str) else None
    return card if card is not None else lookup(name, _table(), what="model", argname="model")


def list_models() -> list[str]:
    """Canonical names of the built-in cards, sorted.

    Examples
    --------
    >>> "DeepSeek-R1-Distill-Llama-8B" in list_models()
    True
    """
    return sorted(_cards())
