"""Hugging Face ids (#10): card aliases, the local HF cache, and the Hub through huggingface_hub -- all offline.

The cache is a folder the tests build (``models--org--name/{refs,snapshots,blobs}``, as huggingface_hub lays it
out); the Hub is a threading HTTP server on 127.0.0.1 that serves ``/{repo}/resolve/{revision}/{file}`` with
``Range`` support (206 + Content-Range), answers gated / missing repositories, revisions and files the way the
Hub does (status + ``X-Error-Code``), redirects safetensors files to a "CDN" path as the Hub does for LFS
files, and records every request so that the tests can check no weight byte was asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import vramcore
from vramcore.cli import main
from vramcore.grid.resolve import resolve_model
from vramcore.model import cards, hub
from vramcore.storage import pretrained
from vramcore.storage.quant import MeasuredStorage
from vramcore.storage.safetensors import read_safetensors

ROOT = Path(__file__).resolve().parents[1]
COMMIT_A = "a" * 40
COMMIT_B = "b" * 40

CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 128,
    "vocab_size": 256, "max_position_embeddings": 2048, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}
ITEMSIZE = {"BF16": 2, "F16": 2, "F32": 4, "I32": 4}


# --------------------------------------------------------------------------- files
def llama_tensors(config: dict[str, Any], gptq_bits: int | None = None) -> dict[str, tuple[str, list[int]]]:
    """Every tensor of a small Llama: linears BF16 (or GPTQ-packed), norms F32 (so measured != computed bf16)."""
    h, i, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    q, kv = config["num_attention_heads"] * config["head_dim"], config["num_key_value_heads"] * config["head_dim"]
    out: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": ("BF16", [v, h])}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        linears = {"self_attn.q_proj": (q, h), "self_attn.k_proj": (kv, h), "self_attn.v_proj": (kv, h),
                   "self_attn.o_proj": (h, q), "mlp.gate_proj": (i, h), "mlp.up_proj": (i, h),
                   "mlp.down_proj": (h, i)}
        for name, (n_out, n_in) in linears.items():
            if gptq_bits is None:
                out[p + name + ".weight"] = ("BF16", [n_out, n_in])
            else:  # GPTQ: qweight (in * bits / 32, out), qzeros (groups, out * bits / 32), scales, g_idx
                out[p + name + ".qweight"] = ("I32", [n_in * gptq_bits // 32, n_out])
                out[p + name + ".qzeros"] = ("I32", [1, n_out * gptq_bits // 32])
                out[p + name + ".scales"] = ("F16", [1, n_out])
                out[p + name + ".g_idx"] = ("I32", [n_in])
        out[p + "input_layernorm.weight"] = ("F32", [h])
        out[p + "post_attention_layernorm.weight"] = ("F32", [h])
    out["model.norm.weight"] = ("F32", [h])
    out["lm_head.weight"] = ("BF16", [v, h])
    return out


def nbytes(dtype: str, shape: list[int]) -> int:
    n = ITEMSIZE[dtype]
    for d in shape:
        n *= d
    return n


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], pad: int = 0) -> bytes:
    """A safetensors file written by hand: 8-byte length, JSON header, zero data."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    pos = 0
    for name, (dtype, shape) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [pos, pos + nbytes(dtype, shape)]}
        pos += nbytes(dtype, shape)
    raw = json.dumps(header).encode()
    raw += b" " * pad
    return struct.pack("<Q", len(raw)) + raw + bytes(pos)


def checkpoint_files(config: dict[str, Any], shards: int = 1, gptq_bits: int | None = None) -> dict[str, bytes]:
    """config.json plus one model.safetensors, or `shards` shards and their index."""
    tensors = llama_tensors(config, gptq_bits)
    files = {"config.json": json.dumps(config).encode()}
    if shards == 1:
        files["model.safetensors"] = safetensors_bytes(tensors)
        return files
    names = list(tensors)
    weight_map = {}
    for k in range(shards):
        part = {n: tensors[n] for n in names[k::shards]}
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        files[fname] = safetensors_bytes(part)
        weight_map.update(dict.fromkeys(part, fname))
    files["model.safetensors.index.json"] = json.dumps({"metadata": {"total_size": 0},
                                                        "weight_map": weight_map}).encode()
    return files


def header_len(data: bytes) -> int:
    return int(struct.unpack("<Q", data[:8])[0])


def write_snapshot(cache: Path, repo_id: str, files: dict[str, bytes], commit: str = COMMIT_A,
                   refs: tuple[str, ...] = ("main",)) -> Path:
    """Lay `files` out as huggingface_hub does: blobs by hash, snapshot entries as links to them, refs."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        try:
            (snap / name).symlink_to(os.path.relpath(blob, snap))
        except OSError:  # no symlinks (Windows without developer mode): huggingface_hub copies
            (snap / name).write_bytes(data)
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snap


# --------------------------------------------------------------------------- fixtures
def _clear() -> None:
    pretrained._resolve.cache_clear()
    hub._pretrained_config.cache_clear()
    from vramcore.grid import cell

    cell._cached.cache_clear()  # the scalar path keeps an Estimator per resolved id


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty HF cache in HF_HUB_CACHE, offline, with no token and fresh resolution caches."""
    cache = tmp_path / "hub"
    cache.mkdir()
    for var in ("HF_HOME", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "TRANSFORMERS_OFFLINE", "HF_TOKEN",
                "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _clear()
    yield cache
    _clear()


class FakeHub:
    """What the server serves: repositories, their revisions and files; and the requests it received."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        self.honour_range = True
        self.content_range: str | None = None  # override, to test a bad answer
        self.tokens = {"hf_ok"}

    def add(self, repo_id: str, files: dict[str, bytes], *, commit: str = COMMIT_A, gated: bool = False,
            refs: tuple[str, ...] = ("main",), forbidden: bool = False) -> None:
        repo = self.repos.setdefault(repo_id, {"commits": {}, "refs": {}, "gated": gated, "forbidden": forbidden})
        repo["commits"][commit] = files
        for ref in refs:
            repo["refs"][ref] = commit

    def requests_for(self, suffix: str) -> list[dict[str, Any]]:
        return [r for r in self.log if r["file"].endswith(suffix)]


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(),
                   {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"})

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        fake: FakeHub = self.server.fake
        raw = self.path.split("?")[0].split("/")
        rng = self.headers.get("Range")
        cdn = raw[1:2] == ["cdn"]
        if cdn:  # /cdn/<repo org>/<repo name>/<commit>/<file>
            repo_id, rev, file = f"{raw[2]}/{raw[3]}", raw[4], urllib.parse.unquote("/".join(raw[5:]))
        elif len(raw) >= 6 and raw[3] == "resolve":
            repo_id, rev, file = f"{raw[1]}/{raw[2]}", urllib.parse.unquote(raw[4]), urllib.parse.unquote(
                "/".join(raw[5:]))
        else:
            return self._error(404, "RepoNotFound", "Repository not found")
        fake.log.append({"repo": repo_id, "rev": rev, "file": file, "range": rng, "cdn": cdn,
                         "auth": self.headers.get("Authorization")})
        repo = fake.repos.get(repo_id)
        if repo is None:
            return self._error(401, "RepoNotFound", "Repository not found")
        if repo["forbidden"]:  # a 403 without an error code (a token without read access, say)
            return self._send(403, b"Forbidden", {"Content-Type": "text/plain"})
        if repo["gated"] and not cdn:
            auth = self.headers.get("Authorization") or ""
            if not auth:
                return self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have "
                                                     "access to it and be authenticated to access it.")
            if auth.removeprefix("Bearer ") not in fake.tokens:
                return self._error(403, "GatedRepo", f"Access to model {repo_id} is restricted and you are not "
                                                     "in the authorized list.")
        commit = repo["refs"].get(rev, rev)
        files = repo["commits"].get(commit)
        if files is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        if file not in files:
            return self._error(404, "EntryNotFound", f"{file} does not exist on \"{rev}\"")
        data = files[file]
        headers = {"X-Repo-Commit": commit, "ETag": hashlib.sha256(data).hexdigest()}
        if file.endswith(".safetensors") and not cdn:  # LFS files: the Hub redirects to its CDN
            return self._send(302, b"", {**headers, "Location": f"/cdn/{repo_id}/{commit}/{file}"})
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", rng or "")
        if m is None or not fake.honour_range:
            return self._send(200, data, headers)
        start, end = int(m.group(1)), int(m.group(2))
        if start >= len(data):
            return self._send(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"})
        end = min(end, len(data) - 1)
        self._send(206, data[start:end + 1],
                   {**headers, "Content-Range": fake.content_range or f"bytes {start}-{end}/{len(data)}"})


@pytest.fixture
def fake_hub(hf_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A Hub on 127.0.0.1, pointed at with HF_ENDPOINT (and huggingface_hub's constants, read at its import)."""
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    fake = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def measured(spec: vramcore.ModelSpec) -> MeasuredStorage:
    assert isinstance(spec.quantization, MeasuredStorage), spec.quantization
    return spec.quantization


def local_reference(tmp_path: Path, files: dict[str, bytes], name: str) -> vramcore.ModelSpec:
    """The spec the local reader gives for the same files in a plain folder."""
    folder = tmp_path / "reference"
    folder.mkdir()
    for fname, data in files.items():
        (folder / fname).write_bytes(data)
    spec = read_safetensors(folder, name=name).spec
    assert spec is not None
    return spec


# --------------------------------------------------------------------------- built-in cards by HF id
@pytest.mark.parametrize(("model_id", "card"), [
    ("meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-8B"),
    ("meta-llama/Meta-Llama-3.1-8B", "Llama-3.1-8B"),
    ("meta-llama/Meta-Llama-3.1-70B-Instruct", "Llama-3.1-70B"),
    ("meta-llama/Llama-3.2-1B-Instruct", "Llama-3.2-1B"),
    ("google/gemma-3-27b-it", "Gemma-3-27B"),
    ("google/gemma-3-27b-pt", "Gemma-3-27B"),
    ("google/gemma-2-9b-it", "Gemma-2-9B"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "Mistral-7B-Instruct-v0.3"),
    ("mistralai/Mistral-7B-v0.3", "Mistral-7B-Instruct-v0.3"),
    ("openai/gpt-oss-20b", "gpt-oss-20b"),
    ("Qwen/Qwen3-8B", "Qwen3-8B"),
    ("deepseek-ai/DeepSeek-V3-Base", "DeepSeek-V3"),
])
def test_hf_ids_of_a_card_resolve_to_it(model_id: str, card: str, hf_cache: Path) -> None:
    assert vramcore.get_model(model_id).name == card
    assert resolve_model(model_id) is vramcore.get_model(card).spec
    assert vramcore.ModelSpec.from_pretrained(model_id) == vramcore.get_model(card).spec
    e = vramcore.estimate(model_id, context=4096, gpu="H100")
    assert e.total_bytes == vramcore.estimate(card, context=4096, gpu="H100").total_bytes


def test_issue_example_on_the_command_line(capsys: pytest.CaptureFixture[str], hf_cache: Path) -> None:
    assert main(["estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100", "--context", "8k"]) == 0
    assert capsys.readouterr().out.startswith("Llama-3.1-8B: bf16 weights")


def test_card_hf_ids_are_hub_shaped_and_unique() -> None:
    owner: dict[str, str] = {}
    for card in (vramcore.get_model(n) for n in vramcore.list_models()):
        for name in (card.name, *card.aliases, card.hf_repo):
            key = name.casefold()
            assert owner.setdefault(key, card.name) == card.name, f"{name!r} names two cards"
            if "/" in name:
                assert hub.split_model_id(name) == (name, None)


def test_from_pretrained_sees_the_cards_the_catalog_sees() -> None:
    # vramcore.model.hub reads the card files itself (spec.py cannot import cards.py): the tables must agree
    table = cards._table()
    assert set(hub._card_configs()) == set(table)
    for key, (name, config) in hub._card_configs().items():
        assert name == table[key].name and config == table[key].config


def test_a_revision_skips_the_card(hf_cache: Path) -> None:
    write_snapshot(hf_cache, "Qwen/Qwen3-8B", {"config.json": json.dumps(CONFIG).encode()}, refs=("main",))
    assert resolve_model("Qwen/Qwen3-8B").name == "Qwen3-8B"                      # the card
    assert resolve_model("Qwen/Qwen3-8B@main").name == "Qwen/Qwen3-8B"            # the cache, at that revision
    assert vramcore.ModelSpec.from_pretrained("Qwen/Qwen3-8B", revision="main").num_layers == 2


# --------------------------------------------------------------------------- the local HF cache
def test_cache_dir_follows_huggingface_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub.hub_cache_dir() == str(tmp_path / "home" / ".cache" / "huggingface" / "hub")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.hub_cache_dir() == str(tmp_path / "xdg" / "huggingface" / "hub")
    monkeypatch.setenv("HF_HOME", "~/hf")
    assert hub.hub_cache_dir() == str(tmp_path / "home" / "hf" / "hub")
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "legacy"))
    assert hub.hub_cache_dir() == str(tmp_path / "legacy")
    monkeypatch.setenv("MYROOT", str(tmp_path / "root"))
    monkeypatch.setenv("HF_HUB_CACHE", "$MYROOT/hub")
    assert hub.hub_cache_dir() == str(tmp_path / "root" / "hub")
    pytest.importorskip("huggingface_hub")
    script = "from huggingface_hub import constants; print(constants.HF_HUB_CACHE)"
    for env in ({"HF_HUB_CACHE": "$MYROOT/hub"}, {"HF_HUB_CACHE": ""}, {"HUGGINGFACE_HUB_CACHE": ""}):
        for var, value in env.items():
            if value:
                monkeypatch.setenv(var, value)
            else:
                monkeypatch.delenv(var, raising=False)
        theirs = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        assert theirs.stdout.strip() == hub.hub_cache_dir()


def test_hf_home_cache_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path) -> None:
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    write_snapshot(tmp_path / "hfhome" / "hub", "acme/home-model", {"config.json": json.dumps(CONFIG).encode()})
    assert resolve_model("acme/home-model").name == "acme/home-model"


def test_cached_config_only(hf_cache: Path) -> None:
    write_snapshot(hf_cache, "acme/tiny", {"config.json": json.dumps(CONFIG).encode()})
    spec = resolve_model("acme/tiny")
    assert spec.name == "acme/tiny" and COMMIT_A not in spec.name
    assert spec == vramcore.ModelSpec.from_hf_config(CONFIG, name="acme/tiny")
    assert spec.quantization is None  # no weights cached: the config alone
    assert vramcore.ModelSpec.from_pretrained("acme/tiny") == spec


@pytest.mark.parametrize("shards", [1, 3])
def test_cached_safetensors_give_exact_bytes(shards: int, hf_cache: Path, tmp_path: Path) -> None:
    files = checkpoint_files(CONFIG, shards)
    write_snapshot(hf_cache, "acme/tiny-st", files)
    spec = resolve_model("acme/tiny-st")
    reference = local_reference(tmp_path, files, "acme/tiny-st")
    assert spec.name == "acme/tiny-st" and spec == reference
    assert measured(spec).bytes_by_part == measured(reference).bytes_by_part
    total = sum(n for _, n in measured(spec).bytes_by_part)
    assert measured(spec).weight_bytes_by_part(spec)["norms"] == 4 * 64 * 5  # F32 as stored, not bf16
    e = vramcore.estimate("acme/tiny-st", context=128, gpu="H100")
    assert e.weights_bytes == total and e.model == "acme/tiny-st"


def test_cached_gptq_checkpoint_unpacks_packed_tensors(hf_cache: Path, tmp_path: Path) -> None:
    config = {**CONFIG, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 64,
                                                "desc_act": False, "sym": True}}
    files = checkpoint_files(config, 2, gptq_bits=4)
    write_snapshot(hf_cache, "acme/tiny-gptq", files)
    spec = resolve_model("acme/tiny-gptq")
    assert measured(spec).name == "safetensors:gptq-int4-g64"
    ckpt = read_safetensors(hf_cache / "models--acme--tiny-gptq" / "snapshots" / COMMIT_A)
    assert ckpt.param_count == spec.param_count  # packed int32 unpacked into 4-bit weights
    assert dict(measured(spec).bytes_by_part) == ckpt.bytes_by_part


def test_cache_revision_by_ref_and_by_commit(hf_cache: Path) -> None:
    write_snapshot(hf_cache, "acme/revs", {"config.json": json.dumps(CONFIG).encode()}, COMMIT_A, ("main",))
    write_snapshot(hf_cache, "acme/revs", {"config.json": json.dumps({**CONFIG, "num_hidden_layers": 3}).encode()},
                   COMMIT_B, ("v2", "refs/pr/1"))
    assert resolve_model("acme/revs").num_layers == 2
    assert resolve_model("acme/revs@v2").num_layers == 3
    assert resolve_model("acme/revs@refs/pr/1").num_layers == 3
    assert vramcore.ModelSpec.from_pretrained("acme/revs", revision="v2").num_layers == 3
    assert vramcore.ModelSpec.from_pretrained("acme/revs", revision=COMMIT_B).num_layers == 3
    assert vramcore.ModelSpec.from_pretrained("acme/revs", revision=COMMIT_A).num_layers == 2
    assert resolve_model(f"acme/revs@{COMMIT_B}").name == "acme/revs"   # the repo id, never the hash


def test_incomplete_cached_shards_fall_back_to_the_config(hf_cache: Path) -> None:
    files = checkpoint_files(CONFIG, 3)
    del files["model-00002-of-00003.safetensors"]
    write_snapshot(hf_cache, "acme/partial", files)
    with pytest.warns(vramcore.VramcoreWarning, match="holds 2 of the 3 shards"):
        spec = resolve_model("acme/partial")
    assert spec.quantization is None and spec.name == "acme/partial"


def test_an_id_resolves_once_per_process(hf_cache: Path) -> None:
    write_snapshot(hf_cache, "acme/once", checkpoint_files(CONFIG))
    first = resolve_model("acme/once")
    import shutil

    shutil.rmtree(hf_cache / "models--acme--once")
    assert resolve_model("acme/once") is first
    est = vramcore.Estimator("acme/once")
    assert est(context=64, batch=1).total_bytes == vramcore.estimate("acme/once", context=64).total_bytes


def test_the_scalar_path_keeps_a_resolved_ids_estimator(hf_cache: Path) -> None:
    # a per-call tool calls estimate("org/name") over and over: the id's Estimator is built once, as a card name's
    from vramcore.grid.cell import estimator_for

    write_snapshot(hf_cache, "acme/kept", {"config.json": json.dumps(CONFIG).encode()})
    assert estimator_for("acme/kept") is estimator_for("acme/kept")
    assert vramcore.estimate("acme/kept", context=64).model == "acme/kept"
    local = hf_cache.parent / "acme" / "kept"   # a path of the same spelling is read as a path, not cached
    local.mkdir(parents=True)
    (local / "config.json").write_text(json.dumps(CONFIG))
    import os

    cwd = os.getcwd()
    os.chdir(hf_cache.parent)
    try:
        assert estimator_for("acme/kept") is not estimator_for("acme/kept")
    finally:
        os.chdir(cwd)


def test_sweep_of_ids(hf_cache: Path) -> None:
    write_snapshot(hf_cache, "acme/a", checkpoint_files(CONFIG))
    write_snapshot(hf_cache, "acme/b", {"config.json": json.dumps({**CONFIG, "num_hidden_layers": 4}).encode()})
    s = vramcore.sweep(["acme/a", "acme/b", "Llama-3.2-1B"], ["auto"], [128, 1024], [1], ["H100"])
    assert s.models == ("acme/a", "acme/b", "Llama-3.2-1B")
    assert [sp.name for sp in s.specs] == ["acme/a", "acme/b", "Llama-3.2-1B"]
    one = vramcore.estimate("acme/b", context=1024, gpu="H100")
    assert s.total_bytes[1, 0, 1, 0, 0] == one.total_bytes


def test_cli_estimate_and_sweep_of_a_cached_id(hf_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_snapshot(hf_cache, "acme/cli", checkpoint_files(CONFIG))
    assert main(["estimate", "acme/cli", "--context", "1k", "--gpu", "L4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "acme/cli" and out["dtype"] == "safetensors"
    assert main(["sweep", "acme/cli,Qwen3-8B", "--context", "1k,2k", "--gpu", "L4", "--json"]) == 0
    assert "acme/cli" in capsys.readouterr().out


# --------------------------------------------------------------------------- failures, offline
def test_offline_miss_says_what_was_tried(hf_cache: Path) -> None:
    with pytest.raises(hub.HubError) as info:
        resolve_model("acme/nowhere")
    err = info.value
    assert err.reason == "offline" and isinstance(err, ValueError)
    text = str(err)
    assert "\n" not in text
    for part in ("acme/nowhere", "built-in cards", str(hf_cache), "models--acme--nowhere", "HF_HUB_OFFLINE=1",
                 "unset HF_HUB_OFFLINE", "hf download acme/nowhere"):
        assert part in text, part
    with pytest.raises(hub.HubError, match="HF cache .* has no refs/v9"):
        write_snapshot(hf_cache, "acme/norefs", {"config.json": b"{}"})
        resolve_model("acme/norefs@v9")
    with pytest.raises(hub.HubError, match="has no snapshot " + COMMIT_B):
        resolve_model(f"acme/norefs@{COMMIT_B}")


def test_transformers_offline_counts_too(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "yes")
    with pytest.raises(hub.HubError, match="TRANSFORMERS_OFFLINE=yes") as info:
        vramcore.ModelSpec.from_pretrained("acme/nowhere")
    assert info.value.reason == "offline"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # huggingface_hub: HF_HUB_OFFLINE, when set, decides alone
    assert hub.offline_reason() is None


def test_without_huggingface_hub(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if not installed
    with pytest.raises(hub.HubError, match=r'huggingface_hub is not installed.*pip install "vramcore\[hub\]"') as e:
        resolve_model("acme/nowhere")
    assert e.value.reason == "not_installed"


def test_cli_prints_one_line_and_exits_2(hf_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "acme/nowhere", "--gpu", "H100"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vramcore: error: cannot resolve model 'acme/nowhere'")


@pytest.mark.parametrize(("bad", "match"), [
    ("../x", "neither a built-in name, an existing path nor a Hugging Face id"),
    ("../../no-such/place", "Hugging Face id 'org/name'"),
    ("a/b/c", "Hugging Face id 'org/name'"),
    ("acme--x/y", "Hugging Face id"),
    ("acme/x..y", "Hugging Face id"),
    ("acme/na me", "Hugging Face id"),
    ("/abs/path", "Hugging Face id"),
    ("acme/" + "x" * 200, r"Hugging Face id"),
    ("acme/x@", "revision '' of model 'acme/x@' is not a branch, tag or commit hash"),
    ("acme/x@../../etc", "revision '../../etc'"),
    ("acme/x@v1/../../x", "no '..' parts"),
    ("acme/x@" + "v" * 300, "at most 256 characters"),
    ("acme/x@a b", "revision 'a b'"),
    ("acme/x@v1\nEVIL", "is not a branch"),
    ("missing-dir/config.json", "config: no such file 'missing-dir/config.json'"),
])
def test_bad_ids_and_revisions_are_named(bad: str, match: str, hf_cache: Path) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_model(bad)


def test_bad_revision_argument(hf_cache: Path) -> None:
    with pytest.raises(ValueError, match="names a revision after '@' and revision='v2'"):
        vramcore.ModelSpec.from_pretrained("acme/x@v1", revision="v2")
    with pytest.raises(TypeError, match="revision must be a str"):
        vramcore.ModelSpec.from_pretrained("acme/x", revision=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="revision '../x'"):
        vramcore.ModelSpec.from_pretrained("acme/x", revision="../x")


def test_plain_unknown_names_keep_their_close_matches(hf_cache: Path) -> None:
    with pytest.raises(ValueError, match="unknown model 'Qwen3-8' .*did you mean"):
        resolve_model("Qwen3-8")


def test_import_vramcore_loads_no_huggingface_hub(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    write_snapshot(cache, "acme/light", checkpoint_files(CONFIG))
    probe = ("import sys, vramcore\n"
             "vramcore.estimate('meta-llama/Llama-3.1-8B-Instruct', context=1024)\n"
             "vramcore.estimate('acme/light', context=1024)\n"
             "print('huggingface_hub' in sys.modules, 'numpy' in sys.modules)")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "0"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- the Hub, served on 127.0.0.1
@pytest.mark.parametrize("shards", [1, 3])
def test_download_reads_config_index_and_headers_only(shards: int, fake_hub: FakeHub, tmp_path: Path) -> None:
    files = checkpoint_files(CONFIG, shards)
    fake_hub.add("acme/remote", files)
    spec = resolve_model("acme/remote")
    reference = local_reference(tmp_path, files, "acme/remote")
    assert spec.name == "acme/remote" and spec == reference
    assert measured(spec).bytes_by_part == measured(reference).bytes_by_part
    assert measured(spec).source.endswith(
        "/acme/remote/resolve/" + COMMIT_A + ("/model.safetensors.index.json" if shards > 1 else "/model.safetensors"))
    # what was asked for: config.json, the index (or its absence), and per shard the 8-byte length and the header
    assert [r["file"] for r in fake_hub.log][:2] == ["config.json", "model.safetensors.index.json"]
    assert fake_hub.log[0]["rev"] == "main" and all(r["rev"] == COMMIT_A for r in fake_hub.log[1:])
    shard_names = [f for f in files if f.endswith(".safetensors")]
    for name in shard_names:
        n = header_len(files[name])
        asked = sorted(r["range"] for r in fake_hub.requests_for(name) if r["cdn"])
        assert asked == sorted(["bytes=0-7", f"bytes=8-{8 + n - 1}"]), asked
    for r in fake_hub.log:
        if r["file"].endswith(".safetensors"):
            start, end = map(int, re.fullmatch(r"bytes=(\d+)-(\d+)", r["range"]).groups())  # type: ignore[union-attr]
            assert end < 8 + header_len(files[r["file"]]), "a weight byte was asked for"
    # once per process: a second resolution asks nothing
    count = len(fake_hub.log)
    assert resolve_model("acme/remote") is spec and len(fake_hub.log) == count


def test_download_of_a_packed_gptq_checkpoint_equals_the_local_reader(fake_hub: FakeHub, tmp_path: Path) -> None:
    config = {**CONFIG, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 64,
                                                "desc_act": False, "sym": True}}
    files = checkpoint_files(config, 2, gptq_bits=4)
    fake_hub.add("acme/remote-gptq", files)
    spec = resolve_model("acme/remote-gptq")
    reference = local_reference(tmp_path, files, "acme/remote-gptq")
    assert measured(spec).bytes_by_part == measured(reference).bytes_by_part
    assert measured(spec).bits == measured(reference).bits and measured(spec).name == "safetensors:gptq-int4-g64"
    e = vramcore.estimate("acme/remote-gptq", context=256)
    assert e.weights_bytes == vramcore.estimate(reference, context=256).weights_bytes


def test_download_with_revision_and_from_pretrained(fake_hub: FakeHub) -> None:
    fake_hub.add("acme/rev", checkpoint_files(CONFIG), commit=COMMIT_A, refs=("main",))
    fake_hub.add("acme/rev", checkpoint_files({**CONFIG, "num_hidden_layers": 3}), commit=COMMIT_B, refs=("v2",))
    assert resolve_model("acme/rev@v2").num_layers == 3
    assert {r["rev"] for r in fake_hub.log} == {"v2", COMMIT_B}
    spec = vramcore.ModelSpec.from_pretrained("acme/rev", revision="v2")
    assert spec.num_layers == 3 and spec.name == "acme/rev" and spec.quantization is None  # the config
    assert vramcore.ModelSpec.from_pretrained("acme/rev").num_layers == 2


def test_download_of_a_checkpoint_without_safetensors_reads_the_config(fake_hub: FakeHub) -> None:
    fake_hub.add("acme/bin", {"config.json": json.dumps(CONFIG).encode(), "pytorch_model.bin": b"\0" * 64})
    spec = resolve_model("acme/bin")
    assert spec == vramcore.ModelSpec.from_hf_config(CONFIG, name="acme/bin") and spec.quantization is None
    assert [r["file"] for r in fake_hub.log] == ["config.json", "model.safetensors.index.json", "model.safetensors"]


def test_gated_repository(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hub.add("acme/gated", checkpoint_files(CONFIG), gated=True)
    with pytest.raises(hub.HubError) as info:
        resolve_model("acme/gated")
    assert info.value.reason == "gated"
    text = str(info.value)
    assert "\n" not in text and "gated" in text and "hf auth login" in text and "HF_TOKEN" in text
    assert f"{fake_hub_endpoint()}/acme/gated" in text
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")  # huggingface_hub's token handling: HF_TOKEN, read per request
    with pytest.raises(hub.HubError, match="gated"):
        resolve_model("acme/gated")
    monkeypatch.setenv("HF_TOKEN", "hf_ok")
    spec = resolve_model("acme/gated")
    assert spec.name == "acme/gated" and isinstance(spec.quantization, MeasuredStorage)
    assert fake_hub.log[-1]["cdn"] and fake_hub.log[-2]["auth"] == "Bearer hf_ok"


def fake_hub_endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


@pytest.mark.parametrize(("model_id", "reason", "match"), [
    ("acme/missing", "not_found", "no model acme/missing on the Hub.*check the id"),
    ("acme/there@nope", "revision_not_found", "acme/there has no revision 'nope'.*check the revision"),
    ("acme/gguf-only", "no_config", "has no config.json.*read_gguf"),
])
def test_hub_failures_have_their_own_messages(model_id: str, reason: str, match: str, fake_hub: FakeHub,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fake_hub.add("acme/there", checkpoint_files(CONFIG))
    fake_hub.add("acme/gguf-only", {"model-Q4_K_M.gguf": b"GGUF"})
    with pytest.raises(hub.HubError, match=match) as info:
        resolve_model(model_id)
    assert info.value.reason == reason and "\n" not in str(info.value)
    assert any("HF cache" in t for t in info.value.tried)
    assert main(["estimate", model_id]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_network_failure(hf_cache: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")
    with pytest.raises(hub.HubError, match=f"{dead} could not be reached.*check the network") as info:
        resolve_model("acme/anything")
    assert info.value.reason == "network"


def test_huggingface_hub_offline_mode_is_honoured(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    fake_hub.add("acme/remote", checkpoint_files(CONFIG))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # set when huggingface_hub was imported
    with pytest.raises(hub.HubError, match="the Hub is off") as info:
        resolve_model("acme/remote")
    assert info.value.reason == "offline" and fake_hub.log == []


def test_a_server_that_ignores_range_still_gives_the_header_alone(fake_hub: FakeHub, tmp_path: Path) -> None:
    files = checkpoint_files(CONFIG, 2)
    fake_hub.add("acme/norange", files)
    fake_hub.honour_range = False
    spec = resolve_model("acme/norange")
    assert measured(spec).bytes_by_part == measured(local_reference(tmp_path, files, "x")).bytes_by_part


def test_a_bad_content_range_is_refused(fake_hub: FakeHub) -> None:
    fake_hub.add("acme/badrange", checkpoint_files(CONFIG))
    fake_hub.content_range = "bytes 0-7/*"
    with pytest.raises(hub.HubError, match="Content-Range 'bytes 0-7/\\*'") as info:
        resolve_model("acme/badrange")
    assert info.value.reason == "bad_response"


def test_sizes_are_bounded_before_they_are_fetched(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    huge = {"config.json": json.dumps(CONFIG).encode(),
            "model.safetensors": struct.pack("<Q", 2**40) + b"{}" + bytes(16)}
    fake_hub.add("acme/huge-header", huge)
    with pytest.raises(ValueError, match="header length 1099511627776 exceeds the 100000000-byte limit"):
        resolve_model("acme/huge-header")
    assert [r["range"] for r in fake_hub.requests_for("model.safetensors") if r["cdn"]] == ["bytes=0-7"]
    fake_hub.add("acme/many", checkpoint_files(CONFIG, 3))
    monkeypatch.setattr(hub, "MAX_SHARDS", 2)
    with pytest.raises(ValueError, match="more than 2 shards"):
        resolve_model("acme/many")
    monkeypatch.setattr(hub, "MAX_INDEX_BYTES", 100)
    with pytest.raises(hub.HubError, match="more than 100 bytes"):
        resolve_model("acme/many@main")
    fake_hub.add("acme/short", {"config.json": json.dumps(CONFIG).encode(), "model.safetensors": b"\1\0\0"})
    with pytest.raises(ValueError, match="3 bytes, too short for the 8-byte header length"):
        resolve_model("acme/short")


def test_index_naming_a_missing_shard(fake_hub: FakeHub) -> None:
    files = checkpoint_files(CONFIG, 2)
    del files["model-00002-of-00002.safetensors"]
    fake_hub.add("acme/broken", files)
    with pytest.raises(hub.HubError, match="names the shard 'model-00002-of-00002.safetensors'"):
        resolve_model("acme/broken")


def test_index_with_a_traversing_shard_name(fake_hub: FakeHub) -> None:
    files = checkpoint_files(CONFIG, 2)
    files["model.safetensors.index.json"] = json.dumps({"weight_map": {"a": "../../etc/passwd"}}).encode()
    fake_hub.add("acme/evil", files)
    with pytest.raises(ValueError, match="maps to '../../etc/passwd', not a file name"):
        resolve_model("acme/evil")
    assert not fake_hub.requests_for("passwd")


def test_cli_estimate_of_a_downloaded_id(fake_hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    fake_hub.add("acme/cli-remote", checkpoint_files(CONFIG, 2))
    assert main(["estimate", "acme/cli-remote", "--context", "2k", "--gpu", "L4"]) == 0
    assert capsys.readouterr().out.startswith("acme/cli-remote: safetensors weights")


def test_nothing_is_written_to_the_hf_cache(fake_hub: FakeHub, hf_cache: Path) -> None:
    fake_hub.add("acme/nowrite", checkpoint_files(CONFIG))
    resolve_model("acme/nowrite")
    assert list(hf_cache.iterdir()) == []



def test_an_empty_file_is_too_short(fake_hub: FakeHub) -> None:
    fake_hub.add("acme/empty", {"config.json": json.dumps(CONFIG).encode(), "model.safetensors": b""})
    with pytest.raises(ValueError, match="model 'acme/empty': .*0 bytes, too short for the 8-byte header length"):
        resolve_model("acme/empty")  # the server answers 416 to bytes=0-7


def test_a_plain_403_asks_for_a_token_with_access(fake_hub: FakeHub) -> None:
    fake_hub.add("acme/forbidden", checkpoint_files(CONFIG), forbidden=True)
    with pytest.raises(hub.HubError, match=r"refused .*HTTP 403.*hf auth login") as info:
        resolve_model("acme/forbidden")
    assert info.value.reason == "forbidden"


def test_an_unsupported_config_names_the_model(hf_cache: Path) -> None:
    write_snapshot(hf_cache, "acme/bert", {"config.json": json.dumps({"model_type": "bert"}).encode()})
    with pytest.raises(ValueError, match="^model 'acme/bert': .*bert"):
        resolve_model("acme/bert")
