"""Hugging Face Hub ids (``org/name``): where a model's files are, in the local cache or on the Hub.

An id resolves in this order (issue #10): a built-in card that lists it among its names (only when no
revision is asked for: a card is one published config), then the local Hugging Face cache, then the Hub
itself through ``huggingface_hub`` when it is installed and not offline.  This module finds and fetches the
files; it builds no spec and reads no weights.

Facts relied on, from ``huggingface_hub`` 2.4.0 and the Hub documentation
(https://huggingface.co/docs/hub/local-cache):

- The cache folder is ``HF_HUB_CACHE``, else the legacy ``HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``,
  ``HF_HOME`` defaulting to ``$XDG_CACHE_HOME/huggingface`` and that to ``~/.cache/huggingface``, each path
  through ``expanduser`` and ``expandvars`` (``huggingface_hub/constants.py``).
- A model repository lives in ``models--{org}--{name}`` (``file_download.repo_folder_name``); ``refs/{revision}``
  holds the commit hash a branch or tag points to, and ``snapshots/{commit}/`` the files of that commit
  (symbolic links into ``blobs/``); a 40-hex revision names its snapshot directly
  (``file_download.try_to_load_from_cache``, ``REGEX_COMMIT_HASH``).
- ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set to 1 / ON / YES / TRUE turns the network off
  (``constants.HF_HUB_OFFLINE``, ``_is_true``).
- A file of a repository is served at ``{HF_ENDPOINT}/{repo_id}/resolve/{revision}/{filename}``
  (``constants.HUGGINGFACE_CO_URL_TEMPLATE``, built by ``hf_hub_url``), and the Hub answers ``Range``
  requests with ``206`` and ``Content-Range: bytes a-b/total``, which ``parse_safetensors_file_metadata`` relies on
  to read a safetensors header without the weights; each response names its commit in ``X-Repo-Commit``.
- Errors: ``hf_raise_for_status`` turns the Hub's ``X-Error-Code`` (``GatedRepo``, ``RepoNotFound``,
  ``RevisionNotFound``, ``EntryNotFound``) into ``GatedRepoError`` (a ``RepositoryNotFoundError``),
  ``RepositoryNotFoundError``, ``RevisionNotFoundError`` and ``RemoteEntryNotFoundError`` (an
  ``EntryNotFoundError``); requests made while offline raise ``OfflineModeIsEnabled``.
- ``build_hf_headers()`` adds the user's token (``HF_TOKEN`` or the one ``hf auth login`` stored) the way every
  ``huggingface_hub`` call does, so gated repositories work as they do for ``hf download``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from functools import cache, lru_cache

from vramcore._names import normalize_name
from vramcore._record import Record, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DEFAULT_REVISION", "HubError", "HubRemote", "Snapshot", "card_config", "find_snapshot", "hub_cache_dir",
           "is_commit_hash", "no_config", "offline_reason", "open_hub", "parse_json", "pretrained_config",
           "split_model_id"]

#: The revision an id without one means (``huggingface_hub.constants.DEFAULT_REVISION``).
DEFAULT_REVISION = "main"
#: Largest ``config.json`` fetched (as :data:`vramcore.model.hf._reader.MAX_CONFIG_BYTES` for a local one).
MAX_CONFIG_BYTES = 16 * 2**20
#: Largest ``model.safetensors.index.json`` fetched (DeepSeek-V3's, 91k tensors in 163 shards, is ~9 MB).
MAX_INDEX_BYTES = 64 * 2**20
#: Most shards an index may name for a download (Llama-3.1-405B has 191).
MAX_SHARDS = 4096
#: Longest revision accepted (branch and tag names; a commit hash is 40).
MAX_REVISION_CHARS = 256

# huggingface_hub/utils/_validators.py: namespace and name of 1-96 characters [A-Za-z0-9_.-], starting and
# ending with a word character, no "--" or "..", not ending in ".git"
_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"{_PART}/{_PART}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REVISION = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_./-]*")
_TRUE = frozenset({"1", "ON", "YES", "TRUE"})  # huggingface_hub.constants.ENV_VARS_TRUE_VALUES


class HubError(ValueError):
    """A Hugging Face id that could not be resolved: what went wrong, what was tried and how to fix it.

    Attributes
    ----------
    reason : str
        ``"bad_id"``, ``"bad_revision"``, ``"offline"``, ``"not_installed"``, ``"network"``, ``"gated"``,
        ``"forbidden"``, ``"not_found"``, ``"revision_not_found"``, ``"no_config"`` or ``"bad_response"``.
    tried : tuple of str
        The places looked at, in order.
    """

    def __init__(self, message: str, reason: str, tried: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.tried = tried


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def split_model_id(model_id: str, revision: str | None = None) -> tuple[str, str | None]:
    """Return ``(repo_id, revision)`` of a Hugging Face id, ``"org/name"`` or ``"org/name@revision"``, checked.

    Parameters
    ----------
    model_id : str
        The id as a user types it.
    revision : str, optional
        A branch, tag or commit hash; may not be given when `model_id` names one after ``@``.

    Returns
    -------
    tuple of (str, str or None)
        The repository id and the revision (None when neither names one).

    Raises
    ------
    HubError
        (a ValueError) `model_id` is not ``org/name`` shaped (``../x``, ``a/b/c``, ``a--b``), or the revision
        is empty, too long, or not a plain ref name (``..`` components, spaces, control characters).
    TypeError
        `model_id` or `revision` is not a str.

    Examples
    --------
    >>> split_model_id("Qwen/Qwen3-8B@main")
    ('Qwen/Qwen3-8B', 'main')
    >>> split_model_id("../etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    vramcore.model.hub.HubError: model '../etc/passwd' is neither a built-in name, an existing path nor a ...
    """
    if not isinstance(model_id, str):
        raise TypeError(f"model id must be a str, got {type(model_id).__name__}")
    repo_id, at, named = model_id.partition("@")
    if at:
        if revision is not None:
            raise HubError(f"model {_show(model_id)} names a revision after '@' and revision={_show(revision)} "
                           f"is given too: give one", "bad_revision")
        revision = named
    if (len(repo_id) > 193 or not _REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id
            or repo_id.endswith(".git")):
        raise HubError(f"model {_show(model_id)} is neither a built-in name, an existing path nor a Hugging Face "
                       f"id 'org/name' (letters, digits, '-', '_', '.'; optionally '@revision'); see "
                       f"vramcore.list_models()", "bad_id")
    if revision is not None:
        _check_revision(revision, model_id)
    return repo_id, revision


def _check_revision(revision: object, model_id: str) -> None:
    if not isinstance(revision, str):
        raise TypeError(f"revision must be a str or None, got {type(revision).__name__}")
    parts = revision.split("/")
    if (not revision or len(revision) > MAX_REVISION_CHARS or not _REVISION.fullmatch(revision)
            or any(p in ("", ".", "..") for p in parts) or revision.endswith(".lock")):
        raise HubError(f"revision {_show(revision)} of model {_show(model_id)} is not a branch, tag or commit "
                       f"hash (at most {MAX_REVISION_CHARS} characters of letters, digits, '-', '_', '.', '/'; "
                       f"no '..' parts)", "bad_revision")


def is_commit_hash(revision: str | None) -> bool:
    """Return True when `revision` is a full 40-hex commit hash (it names a snapshot folder directly).

    Parameters
    ----------
    revision : str or None
        A revision as given.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_commit_hash("main"), is_commit_hash("0" * 40)
    (False, True)
    """
    return isinstance(revision, str) and _COMMIT.fullmatch(revision) is not None


def hub_cache_dir() -> str:
    """Return the Hugging Face cache folder, read from the environment now, as ``huggingface_hub`` reads it.

    ``HF_HUB_CACHE``, else ``HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub`` with ``HF_HOME`` defaulting to
    ``$XDG_CACHE_HOME/huggingface``, then ``~/.cache/huggingface`` (``huggingface_hub/constants.py``); an
    empty variable counts as unset.

    Returns
    -------
    str
        The folder (it need not exist).
    """
    env = os.environ

    def expand(path: str) -> str:
        return os.path.expandvars(os.path.expanduser(path))

    home = expand(env.get("HF_HOME") or os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"))
    return expand(env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub"))


@record(frozen=True, repr=False, eq=False)
class Snapshot(Record):
    """Where a cached revision of a repository is, or why it is not there.

    Attributes
    ----------
    folder : str or None
        ``.../models--org--name/snapshots/<commit>`` holding a ``config.json``; None on a miss.
    commit : str or None
        The commit hash of the snapshot (None when not known).
    note : str
        What was looked at: the folder found, or the first thing missing.
    """

    folder: str | None
    commit: str | None
    note: str


def find_snapshot(repo_id: str, revision: str | None = None) -> Snapshot:
    """Look a repository revision up in the local Hugging Face cache.

    Parameters
    ----------
    repo_id : str
        ``org/name``, as :func:`split_model_id` returns it.
    revision : str, optional
        A branch or tag (read from ``refs/<revision>``) or a 40-hex commit hash (``snapshots/<hash>``);
        default ``"main"``.

    Returns
    -------
    Snapshot
        ``folder`` is set when the snapshot holds a ``config.json``.
    """
    revision = revision or DEFAULT_REVISION
    cache_dir = hub_cache_dir()
    name = "models--" + repo_id.replace("/", "--")
    repo = os.path.join(cache_dir, name)
    where = f"HF cache {cache_dir}"
    if not os.path.isdir(repo):
        return Snapshot(None, None, f"{where}: no {name} folder")
    if is_commit_hash(revision):
        commit = revision
    else:
        ref = os.path.join(repo, "refs", *revision.split("/"))
        if not os.path.isfile(ref):
            return Snapshot(None, None, f"{where}: {name} has no refs/{revision}")
        try:
            with open(ref, encoding="ascii") as fh:
                commit = fh.read(128).strip()
        except (OSError, UnicodeDecodeError):
            commit = ""
        if not is_commit_hash(commit):
            return Snapshot(None, None, f"{where}: {name}/refs/{revision} does not hold a commit hash")
    snap = os.path.join(repo, "snapshots", commit)
    if not os.path.isdir(snap):
        return Snapshot(None, commit, f"{where}: {name} has no snapshot {commit}")
    if not os.path.isfile(os.path.join(snap, "config.json")):
        return Snapshot(None, commit, f"{where}: snapshot {commit} of {name} has no config.json")
    return Snapshot(snap, commit, f"{where}: {snap}")


def offline_reason() -> str | None:
    """Return why the Hub may not be reached (``"HF_HUB_OFFLINE=1"``), or None when it may.

    The same rule as ``huggingface_hub``: ``HF_HUB_OFFLINE``, else ``TRANSFORMERS_OFFLINE``, is one of
    1 / ON / YES / TRUE (any case).

    Returns
    -------
    str or None
        ``"VARIABLE=value"`` of the variable that turns the network off.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = os.environ.get(var)
        if value:  # huggingface_hub: os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
            return f"{var}={value}" if value.upper() in _TRUE else None
    return None


def _fail(model: str, what: str, reason: str, tried: list[str], fix: str) -> HubError:
    return HubError(f"cannot resolve model {_show(model)}: {what}; tried: {'; '.join(tried)}; {fix}", reason,
                    tuple(tried))


_FETCH_FIX = ("put it in the cache while online (`hf download {repo} config.json`; the whole checkpoint for "
              "its exact stored bytes), or pass a config.json path or checkpoint folder")


def open_hub(repo_id: str, revision: str | None, tried: list[str], model: str | None = None) -> HubRemote:
    """Return a connection to the repository on the Hub, or raise why there is none.

    Parameters
    ----------
    repo_id : str
        ``org/name``.
    revision : str or None
        Branch, tag or commit (None: ``"main"``).
    tried : list of str
        What was looked at before (cards, cache); the error messages list it.  Appended to.
    model : str, optional
        The id as the user typed it, for messages (default `repo_id`).

    Returns
    -------
    HubRemote

    Raises
    ------
    HubError
        ``reason="offline"`` (``HF_HUB_OFFLINE``) or ``"not_installed"`` (no ``huggingface_hub``).
    """
    model = model or repo_id
    offline = offline_reason()
    if offline is not None:
        tried.append(f"download skipped: {offline}")
        raise _fail(model, "it is not cached and the Hub is off", "offline", tried,
                    "unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) to read it from the Hub, or "
                    + _FETCH_FIX.format(repo=repo_id))
    try:
        import huggingface_hub  # noqa: F401 -- the optional [hub] extra, imported only on this path
    except ImportError:
        tried.append("download skipped: huggingface_hub is not installed")
        raise _fail(model, "it is not cached and huggingface_hub is not installed", "not_installed", tried,
                    'pip install "vramcore[hub]" to read it from the Hub, or '
                    + _FETCH_FIX.format(repo=repo_id)) from None
    return HubRemote(repo_id, revision, tried, model)


class HubRemote:
    """Files of one repository revision on the Hub, fetched through ``huggingface_hub``'s session and token.

    The first response's ``X-Repo-Commit`` pins every later request to that commit, so that a push between
    two requests cannot mix files of two commits.  Every read is bounded; a ranged read never takes more
    than the bytes asked for, even from a server that ignores ``Range``.

    Parameters
    ----------
    repo_id : str
        ``org/name``.
    revision : str or None
        Branch, tag or commit (None: ``"main"``).
    tried : list of str
        What was looked at before, for error messages.
    model : str
        The id as the user typed it.

    Attributes
    ----------
    commit : str or None
        The commit the files come from, once a response named it.
    endpoint : str
        The Hub (``HF_ENDPOINT``).
    tried : list of str
        What was looked at, including the failed requests.
    where : str
        ``"the Hub at <endpoint>"``, for messages.
    """

    def __init__(self, repo_id: str, revision: str | None, tried: list[str], model: str) -> None:
        from huggingface_hub import constants, hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session

        self.repo_id = repo_id
        self.revision = revision or DEFAULT_REVISION
        self.commit: str | None = revision if is_commit_hash(revision) else None
        self.endpoint: str = constants.ENDPOINT  # HF_ENDPOINT, read by huggingface_hub at import
        self.model = model
        self.tried = tried
        self._url: Callable[..., str] = hf_hub_url
        self._session = get_session()
        self._errors: tuple[type[BaseException], ...] = (OSError, *_client_errors(self._session))
        self._timeout = float(constants.HF_HUB_DOWNLOAD_TIMEOUT)  # HF_HUB_DOWNLOAD_TIMEOUT, default 10 s
        self._headers: dict[str, str] = build_hf_headers(library_name="vramcore")  # its own token handling
        self.where = f"the Hub at {self.endpoint}"

    def url(self, filename: str) -> str:
        """Return the ``resolve`` URL of `filename` at the pinned commit (else the revision).

        Parameters
        ----------
        filename : str
            A file of the repository.

        Returns
        -------
        str
        """
        return self._url(self.repo_id, filename, revision=self.commit or self.revision, endpoint=self.endpoint)

    def get(self, filename: str, limit: int) -> bytes | None:
        """Return the whole file `filename` (at most `limit` bytes), or None when the repository has no such file.

        Parameters
        ----------
        filename : str
            A file of the repository.
        limit : int
            Most bytes accepted.

        Returns
        -------
        bytes or None

        Raises
        ------
        HubError
            Gated, not found, revision not found, network failure, or a file larger than `limit`.
        """
        out = self._fetch(filename, None, limit)
        return None if out is None else out[0]

    def get_range(self, filename: str, start: int, length: int) -> tuple[bytes, int] | None:
        """Return bytes ``start .. start+length-1`` of `filename` and the file's total size, by range request.

        Parameters
        ----------
        filename : str
            A file of the repository.
        start, length : int
            The first byte and how many.

        Returns
        -------
        tuple of (bytes, int) or None
            The bytes (fewer when the file ends sooner) and the file's size; None when the repository has
            no such file.

        Raises
        ------
        HubError
            As :meth:`get`, or a response without the file's size.
        """
        return self._fetch(filename, (start, length), length)

    def _fetch(self, filename: str, span: tuple[int, int] | None, limit: int) -> tuple[bytes, int] | None:
        from huggingface_hub.utils import hf_raise_for_status

        headers = dict(self._headers)
        if span is not None:
            headers["Range"] = f"bytes={span[0]}-{span[0] + span[1] - 1}"
        url = self.url(filename)
        try:
            with self._session.stream("GET", url, headers=headers, timeout=self._timeout) as response:
                if span is not None and response.status_code == 416:  # the file ends before the range starts
                    m = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("Content-Range", "").strip())
                    return b"", int(m.group(1)) if m else span[0]
                hf_raise_for_status(response)
                commit = response.headers.get("X-Repo-Commit", "")
                if self.commit is None and is_commit_hash(commit):
                    self.commit = commit
                return self._body(response, url, span, limit)
        except HubError:
            raise
        except self._errors as exc:
            if _is_entry_not_found(exc):
                return None
            raise self._error(exc, url) from None

    def _body(self, response: Any, url: str, span: tuple[int, int] | None, limit: int) -> tuple[bytes, int]:
        start, length = span if span is not None else (0, limit + 1)
        ranged = span is not None and response.status_code == 206
        if span is not None and ranged:
            m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", "").strip())
            if (m is None or m.group(3) == "*" or int(m.group(1)) != start or int(m.group(2)) > start + length - 1
                    or int(m.group(2)) >= int(m.group(3))):
                raise self._bad(url, f"answered a range request with Content-Range "
                                     f"{_show(response.headers.get('Content-Range'))}")
            total, skip, want = int(m.group(3)), 0, int(m.group(2)) - start + 1
        else:  # 200: the whole file follows (a server that ignores Range): read only what is asked for
            declared = response.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else -1
            skip, want = (start, length) if span is not None else (0, limit + 1)
            if span is not None and total < 0:
                raise self._bad(url, "gave no Content-Range or Content-Length: the file size is unknown")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= skip + want:
                break
        data = bytes(body[skip:skip + want])
        if span is None:
            if len(data) > limit:
                raise self._bad(url, f"sent more than {limit} bytes for a file that holds metadata")
            total = len(data)
        return data, total

    def _bad(self, url: str, what: str) -> HubError:
        return self.fail(f"{url} {what}", "bad_response",
                         "check HF_ENDPOINT points at a Hugging Face Hub (or a mirror that serves Range requests)")

    def fail(self, what: str, reason: str, fix: str) -> HubError:
        """Return the :class:`HubError` for `what` went wrong on the Hub (noted in :attr:`tried`), with a `fix`.

        Parameters
        ----------
        what : str
            What went wrong.
        reason : str
            The error's :attr:`HubError.reason`.
        fix : str
            How to fix it.

        Returns
        -------
        HubError
        """
        self.tried.append(f"{self.where}: {what}")
        return _fail(self.model, what, reason, self.tried, fix)

    def _error(self, exc: BaseException, url: str) -> HubError:
        from huggingface_hub import errors

        repo, rev = self.repo_id, self.revision
        page = f"{self.endpoint}/{repo}"
        if isinstance(exc, errors.GatedRepoError):
            self.tried.append(f"{self.where}: gated ({_status(exc)})")
            return _fail(self.model, f"{repo} is a gated repository and this machine has no access", "gated",
                         self.tried, f"accept its licence at {page} and log in with `hf auth login` (or "
                         f"`huggingface-cli login`, or set HF_TOKEN) with that account")
        if isinstance(exc, errors.RevisionNotFoundError):
            self.tried.append(f"{self.where}: no revision {rev!r} ({_status(exc)})")
            return _fail(self.model, f"{repo} has no revision {rev!r}", "revision_not_found", self.tried,
                         f"check the revision: a branch, tag or commit hash of {page}")
        if isinstance(exc, getattr(errors, "DisabledRepoError", ())):
            self.tried.append(f"{self.where}: {repo} is disabled ({_status(exc)})")
            return _fail(self.model, f"{repo} is disabled on the Hub", "not_found", self.tried,
                         "its owner disabled it: use another repository")
        if isinstance(exc, errors.RepositoryNotFoundError):
            self.tried.append(f"{self.where}: no repository {repo} ({_status(exc)})")
            return _fail(self.model, f"no model {repo} on the Hub", "not_found", self.tried,
                         "check the id (org/name, as on its Hub page, e.g. 'Qwen/Qwen3-8B'); a private repository "
                         "needs `hf auth login`")
        if isinstance(exc, errors.OfflineModeIsEnabled):
            self.tried.append(f"download skipped: {offline_reason() or 'HF_HUB_OFFLINE'} (huggingface_hub)")
            return _fail(self.model, "it is not cached and the Hub is off", "offline", self.tried,
                         "unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) to read it from the Hub, or "
                         + _FETCH_FIX.format(repo=repo))
        if isinstance(exc, errors.HfHubHTTPError):
            status = _status(exc)
            self.tried.append(f"{self.where}: {url}: HTTP {status}")
            if status in ("401", "403"):
                return _fail(self.model, f"the Hub refused {url} (HTTP {status})", "forbidden", self.tried,
                             f"log in with an account that may read {repo} (`hf auth login`, or HF_TOKEN with "
                             f"read access to it)")
            return _fail(self.model, f"the Hub answered HTTP {status} for {url}", "network", self.tried,
                         "try again later, or check HF_ENDPOINT")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        self.tried.append(f"{self.where}: {type(exc).__name__}{': ' + first[:200] if first else ''}")
        return _fail(self.model, f"{self.endpoint} could not be reached", "network", self.tried,
                     "check the network connection and HF_ENDPOINT, or " + _FETCH_FIX.format(repo=repo))


def _client_errors(session: Any) -> tuple[type[BaseException], ...]:
    """Return the base error of the HTTP client behind huggingface_hub's session: httpx (1.x), httpx2 (2.x)."""
    for klass in type(session).__mro__:
        module = sys.modules.get(klass.__module__.split(".")[0])
        error = getattr(module, "HTTPError", None)
        if isinstance(error, type) and issubclass(error, Exception) and hasattr(module, "Client"):
            return (error,)
    return ()


def _status(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(getattr(response, "status_code", "?"))


def _is_entry_not_found(exc: BaseException) -> bool:
    from huggingface_hub import errors

    return isinstance(exc, errors.EntryNotFoundError) and not isinstance(
        exc, (errors.RepositoryNotFoundError, errors.RevisionNotFoundError))


def parse_json(raw: bytes, what: str) -> Any:
    """Parse fetched JSON metadata (a config or an index).

    Parameters
    ----------
    raw : bytes
        The file's bytes.
    what : str
        The file (a URL), for messages.

    Returns
    -------
    object
        The parsed JSON.

    Raises
    ------
    ValueError
        Not UTF-8 JSON, or nested too deeply.
    """
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{what}: not valid JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"{what}: nested too deeply to be a config") from None


# --------------------------------------------------------------------------- ModelSpec.from_pretrained
@cache
def _card_configs() -> dict[str, tuple[str, dict[str, Any]]]:
    """Card names, aliases and repo ids -> (card name, config), read from the card files.

    :mod:`vramcore.model.cards` builds the same table (tests/test_hub.py holds them equal); it cannot be imported
    here, because :mod:`vramcore.model.spec` (which the cards import) calls this module.
    """
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    table: dict[str, tuple[str, dict[str, Any]]] = {}
    for file in sorted(os.listdir(folder)):
        if file.endswith(".json"):
            with open(os.path.join(folder, file), encoding="utf-8") as fh:
                data = json.loads(fh.read())
            for key in (data["name"], *data.get("aliases", ()), data["hf_repo"]):
                table[normalize_name(key)] = (data["name"], data["config"])
    return table


def card_config(name: str) -> tuple[str, dict[str, Any]] | None:
    """Return ``(card name, config)`` of the built-in card called `name` (any of its names), else None.

    Parameters
    ----------
    name : str
        A card's name, alias or Hugging Face repository id (case and separators as :func:`vramcore.get_model`).

    Returns
    -------
    tuple of (str, dict) or None
    """
    return _card_configs().get(normalize_name(name))


def pretrained_config(model_id: str, revision: str | None = None) -> tuple[str, Mapping[str, Any]]:
    """Return the name and ``config.json`` a Hugging Face id resolves to: card, cache, then the Hub.

    What :meth:`vramcore.ModelSpec.from_pretrained` reads (resolved once per process and ``(id, revision)``;
    do not modify the returned config).

    Parameters
    ----------
    model_id : str
        ``org/name`` or ``org/name@revision`` (a card's own name is accepted too).
    revision : str, optional
        Branch, tag or commit hash.

    Returns
    -------
    tuple of (str, Mapping)
        The card's name or the repository id, and the config.

    Raises
    ------
    HubError
        A bad id, or no card, no cached snapshot and no download (offline, not installed, gated, not found,
        no revision, no config.json, network failure); the message lists what was tried.
    """
    return _pretrained_config(model_id, revision)


@lru_cache(maxsize=256)
def _pretrained_config(model_id: str, revision: str | None) -> tuple[str, Mapping[str, Any]]:
    if revision is None and "@" not in model_id:
        card = card_config(model_id)
        if card is not None:
            return card
    repo_id, rev = split_model_id(model_id, revision)
    tried = [f"built-in cards: none is called {repo_id!r}" if rev is None
             else f"built-in cards: skipped for revision {rev!r}"]
    snap = find_snapshot(repo_id, rev)
    tried.append(snap.note)
    if snap.folder is not None:
        from vramcore.model.hf import load_hf_config

        return repo_id, load_hf_config(os.path.join(snap.folder, "config.json"))
    remote = open_hub(repo_id, rev, tried, model_id)
    raw = remote.get("config.json", MAX_CONFIG_BYTES)
    if raw is None:
        raise no_config(remote)
    config = parse_json(raw, remote.url("config.json"))
    if not isinstance(config, dict):
        raise ValueError(f"{remote.url('config.json')}: does not hold a JSON object")
    return repo_id, config


def no_config(remote: HubRemote) -> HubError:
    """Return the error for a repository without ``config.json`` (a GGUF-only or non-transformers repository).

    Parameters
    ----------
    remote : HubRemote
        The repository asked.

    Returns
    -------
    HubError
        ``reason="no_config"``, with what was tried.
    """
    return remote.fail(f"{remote.repo_id} has no config.json (not a transformers checkpoint)", "no_config",
                       "for GGUF files pass the .gguf path (vramcore.read_gguf); otherwise check the id")
