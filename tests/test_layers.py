"""The package's layers: every module imports alone, and only modules of its own layer or the layers below.

The import graph is read from the source (module- and function-level imports,
``TYPE_CHECKING`` blocks excluded), the way ``shared/tools/import_circles.py``
reads it, so a lazy import up the stack fails here too.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import vramcore

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vramcore"

#: Bottom up.  A module may import modules of its own layer and of any layer below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("vramcore._names", "vramcore._units", "vramcore._moved", "vramcore._errors", "vramcore._identity",
     "vramcore._record"),
    ("vramcore.model",),
    ("vramcore.storage", "vramcore.engines", "vramcore.hardware"),
    ("vramcore.io",),
    ("vramcore.grid",),
    ("vramcore.plot", "vramcore.dask", "vramcore.cli", "vramcore.__main__"),
)


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _layer(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if any(module == top or module.startswith(top + ".") for top in layer):
            return i
    raise AssertionError(f"{module} belongs to no layer; add it to LAYERS")


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m in MODULES and m not in (module, "vramcore")}


def test_every_module_sits_in_a_layer() -> None:
    for module in MODULES:
        if module != "vramcore":
            _layer(module)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [f"{m} (layer {_layer(m)}) imports {dep} (layer {_layer(dep)})"
              for m, path in MODULES.items() if m != "vramcore"
              for dep in sorted(_imports(m, path)) if _layer(dep) > _layer(m)]
    assert upward == []


def test_no_import_circle() -> None:
    graph = {m: _imports(m, p) for m, p in MODULES.items()}
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for dep in sorted(graph[m]):
            if state.get(dep) == 1:
                circles.append([*stack[stack.index(dep):], dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "vramcore.__main__"))
def test_each_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


#: Old module paths of the flat layout and names they exported; they must keep importing.
OLD_PATHS = {
    "vramcore.specs": ("ModelSpec", "PARTS", "ATTENTION_KINDS", "MLP_KINDS"),
    "vramcore.tensors": ("TensorInfo", "list_tensors"),
    "vramcore.models": ("ModelCard", "get_model", "list_models"),
    "vramcore.hf": ("SUPPORTED_MODEL_TYPES", "load_hf_config", "spec_from_hf_config"),
    "vramcore.dtypes": ("LINEAR_PARTS", "DType", "get_dtype", "list_dtypes"),
    "vramcore.quant": ("MeasuredStorage", "QuantFormat", "StoredTensor", "format_from_quantization_config",
                       "list_formats", "parse_format", "resolve_auto"),
    "vramcore.ggml": ("GGML_TYPES", "FILE_TYPES", "gguf_tensor_types", "tensor_nbytes"),
    "vramcore.io_gguf": ("GGUFModel", "read_gguf"),
    "vramcore.io_safetensors": ("SafetensorsCheckpoint", "read_safetensors"),
    "vramcore.gpus": ("GPUSpec", "get_gpu", "list_gpus"),
    "vramcore.engines": ("ENGINE_KINDS", "EngineSpec", "get_engine", "list_engines"),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_module_paths_still_import(old: str) -> None:
    module = importlib.import_module(old)
    missing = [name for name in OLD_PATHS[old] if not hasattr(module, name)]
    assert missing == []
    assert sys.modules[old] is module


def test_old_path_is_the_new_module_itself() -> None:
    import vramcore.gpus

    import vramcore.hardware.gpus

    assert vramcore.gpus is vramcore.hardware.gpus
    assert vramcore.gpus.get_gpu("H100") is vramcore.get_gpu("H100")


def test_unknown_old_looking_path_still_fails() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("vramcore.no_such_module")


def test_family_registry_is_the_union_of_the_family_modules() -> None:
    from vramcore.model import hf

    families = sorted(p.stem for p in (PACKAGE / "model" / "hf").glob("*.py")
                      if not p.stem.startswith("_") and p.stem != "quantization")
    union: set[str] = set()
    wrappers: set[str] = set()
    for family in families:
        module = importlib.import_module(f"vramcore.model.hf.{family}")
        readers, towers = module.READERS, getattr(module, "TOWERS", {})
        assert not union & set(readers), f"{family} reads a model_type another module reads"
        assert not wrappers & set(towers), f"{family} reads towers another module reads"
        union |= set(readers)
        wrappers |= set(towers)
    # a multimodal wrapper whose text_config another family reads (mistral3 -> mistral) is supported too
    assert union | wrappers == set(hf.SUPPORTED_MODEL_TYPES)


def test_a_new_family_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vramcore.model import hf

    (tmp_path / "toyfam.py").write_text(
        "from vramcore.model.hf._reader import common_fields\n"
        "def read_toy(r):\n"
        "    return common_fields(r, tie_default=True)\n"
        "READERS = {'toy_lm': read_toy}\n")
    monkeypatch.setattr(hf, "__path__", [*hf.__path__, str(tmp_path)])
    caches = (hf._family_names, hf._registry, hf._supported)
    for made in caches:
        made.cache_clear()
    try:
        spec = vramcore.ModelSpec.from_hf_config({
            "model_type": "toy_lm", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
            "intermediate_size": 128, "vocab_size": 100})
        assert spec.model_type == "toy_lm" and spec.tie_embeddings
        assert spec.param_count == vramcore.ModelSpec(num_layers=2, hidden_size=64, num_heads=4,
                                                      intermediate_size=128, vocab_size=100,
                                                      tie_embeddings=True).param_count
    finally:
        for made in caches:
            made.cache_clear()
        sys.modules.pop("vramcore.model.hf.toyfam", None)


def test_engine_registry_has_one_module_and_one_header_per_kind() -> None:
    from vramcore.engines import ENGINE_KINDS, get_engine

    headers = {p.stem for p in (ROOT / "include" / "vramcore" / "engines").glob("*.h")}
    for kind in ENGINE_KINDS:
        module = importlib.import_module(f"vramcore.engines.{kind}")
        assert module.ENGINE.kind == kind and get_engine(kind) is module.ENGINE
        assert kind in headers
