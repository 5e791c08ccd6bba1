"""A Hugging Face id as a model: its card, its cached snapshot or its files on the Hub, measured from the headers.

What :func:`vramcore.estimate`, :func:`vramcore.sweep`, the inverse questions and the command line do with a
string such as ``"Qwen/Qwen3-8B"`` (issue #10), in this order:

1. a built-in card that lists the id among its names (only without a revision: a card is one published config);
2. the local Hugging Face cache (:func:`vramcore.model.hub.find_snapshot`): the snapshot's ``config.json``, and,
   where the snapshot holds the checkpoint's safetensors files (``model.safetensors.index.json`` and every shard
   it names, else ``model.safetensors``), their headers for the exact stored bytes, as
   :func:`vramcore.read_safetensors` reads a local folder;
3. the Hub through ``huggingface_hub`` (optional extra ``[hub]``): ``config.json``, the index (or the single
   file), and of each shard only its header, by two range requests (``bytes=0-7`` for the length ``N``, then
   ``bytes=8-(8+N-1)``), so that the stored dtypes, packed quantized tensors and exact bytes come from the real
   files while no weight is downloaded;
4. otherwise a :class:`vramcore.model.hub.HubError` (a ValueError) saying what was tried and how to fix it.

A checkpoint without safetensors files (``pytorch_model.bin`` only) is read from its config alone.  Each
``(id, revision)`` resolves once per process.  Nothing is written to disk: the Hugging Face cache stays as
``huggingface_hub`` left it, so that the next process resolves the same way.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from vramcore._errors import VramcoreWarning
from vramcore.model import hub
from vramcore.model.cards import get_model, is_model_name
from vramcore.model.spec import ModelSpec
from vramcore.storage.safetensors import header_length, index_shards, read_safetensors, read_safetensors_headers

__all__ = ["pretrained_spec"]

_INDEX = "model.safetensors.index.json"
_SINGLE = "model.safetensors"
#: Shard headers fetched at once (huggingface_hub's get_safetensors_metadata also fetches them in threads).
_FETCH_THREADS = 8


def pretrained_spec(model_id: str, revision: str | None = None) -> ModelSpec:
    """Return the :class:`~vramcore.ModelSpec` of a Hugging Face id: card, cache, then the Hub (see the module).

    Parameters
    ----------
    model_id : str
        ``org/name`` or ``org/name@revision`` (a built-in card's own names are accepted too).
    revision : str, optional
        Branch, tag or commit hash (default: the card, else ``main``).

    Returns
    -------
    ModelSpec
        Named after the repository id (``"Qwen/Qwen3-8B"``, never a snapshot hash), or the card's name; with
        ``quantization`` = the bytes measured from the safetensors headers where the files were found.  The
        same object for the same ``(model_id, revision)`` within a process.

    Raises
    ------
    vramcore.model.hub.HubError
        (a ValueError) A bad id or revision; or no card, no cached snapshot and no download: offline, no
        ``huggingface_hub``, gated, not found, no such revision, no ``config.json``, network failure.
    ValueError
        Headers or an index that are not what the format requires.
    """
    return _resolve(model_id, revision)


@lru_cache(maxsize=256)
def _resolve(model_id: str, revision: str | None) -> ModelSpec:
    if revision is None and "@" not in model_id and is_model_name(model_id):
        return get_model(model_id).spec
    repo_id, rev = hub.split_model_id(model_id, revision)
    tried = [f"built-in cards: none is called {repo_id!r}" if rev is None
             else f"built-in cards: skipped for revision {rev!r}"]
    snap = hub.find_snapshot(repo_id, rev)
    tried.append(snap.note)
    try:
        if snap.folder is not None:
            return _from_snapshot(snap.folder, repo_id)
        return _from_hub(hub.open_hub(repo_id, rev, tried, model_id))
    except hub.HubError:
        raise
    except ValueError as exc:  # a config or header that is not what it must be: say which model it came from
        raise ValueError(f"model {model_id!r}: {exc}") from None


def _from_snapshot(folder: str, repo_id: str) -> ModelSpec:
    """Return the spec of a cached snapshot: config.json, and the safetensors headers where all shards are."""
    index, single = os.path.join(folder, _INDEX), os.path.join(folder, _SINGLE)
    if os.path.isfile(index):
        with open(index, "rb") as fh:
            raw = fh.read(hub.MAX_INDEX_BYTES + 1)
        if len(raw) > hub.MAX_INDEX_BYTES:
            raise ValueError(f"safetensors index {index!r}: larger than {hub.MAX_INDEX_BYTES} bytes")
        shards = index_shards(hub.parse_json(raw, index), index)
        missing = [s for s in shards if not os.path.isfile(os.path.join(folder, s))]
        if not missing:
            return _checked(read_safetensors(index, name=repo_id).spec)
        import warnings

        warnings.warn(f"{repo_id}: the cached snapshot {folder} holds {len(shards) - len(missing)} of the "
                      f"{len(shards)} shards its index names; stored bytes follow from config.json alone",
                      VramcoreWarning, stacklevel=2)
    elif os.path.isfile(single):
        return _checked(read_safetensors(single, name=repo_id).spec)
    return ModelSpec.from_hf_config(os.path.join(folder, "config.json"), name=repo_id)


def _checked(spec: ModelSpec | None) -> ModelSpec:
    assert spec is not None  # read_safetensors gives a spec whenever config.json is beside the files
    return spec


def _from_hub(remote: hub.HubRemote) -> ModelSpec:
    """Return the spec of a Hub repository: config.json, the index, and each shard header by range request."""
    raw = remote.get("config.json", hub.MAX_CONFIG_BYTES)
    if raw is None:
        raise hub.no_config(remote)
    config = hub.parse_json(raw, remote.url("config.json"))
    if not isinstance(config, dict):
        raise ValueError(f"config: {remote.url('config.json')} does not hold a JSON object")
    index = remote.get(_INDEX, hub.MAX_INDEX_BYTES)
    if index is not None:
        source = remote.url(_INDEX)
        shards = index_shards(hub.parse_json(index, source), source, max_shards=hub.MAX_SHARDS)
    else:
        source, shards = remote.url(_SINGLE), [_SINGLE]
    with ThreadPoolExecutor(max_workers=min(_FETCH_THREADS, len(shards))) as pool:
        headers = list(pool.map(lambda s: _header(remote, s, index is not None), shards))
    found = [h for h in headers if h is not None]
    if not found:  # neither an index nor model.safetensors: a .bin checkpoint, read from its config
        return ModelSpec.from_hf_config(config, name=remote.repo_id)
    spec = read_safetensors_headers(found, config=config, name=remote.repo_id, source=source).spec
    return _checked(spec)


def _header(remote: hub.HubRemote, shard: str, indexed: bool) -> tuple[str, bytes, int] | None:
    """Return ``(url, header bytes, file size)`` of one shard: two range requests, never a byte of the weights."""
    url = remote.url(shard)
    first = remote.get_range(shard, 0, 8)
    if first is None:
        if indexed:
            raise remote.fail(f"{_INDEX} names the shard {shard!r}, which is not in the repository", "bad_response",
                              "the repository is incomplete; try another revision")
        return None
    prefix, size = first
    n = header_length(prefix, size, url)  # also refuses n > MAX_HEADER_BYTES before anything is asked for
    if n == 0:
        return url, b"", size
    second = remote.get_range(shard, 8, n)
    if second is None or second[1] != size:
        raise remote.fail(f"{url} changed between two requests", "bad_response", "try again")
    if len(second[0]) != n:
        raise ValueError(f"safetensors file {url!r}: truncated header ({len(second[0])} of {n} bytes)")
    return url, second[0], size
