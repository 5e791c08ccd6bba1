"""Old module paths, kept importable: ``import vramcore.quant`` is :mod:`vramcore.storage`, and so on.

vramcore was 27 flat modules before it was cut into layers; tools that
imported a module by its old name keep working.  The finder maps only the
names in :data:`MOVED` and hands back the module that now holds their public
names (the very same object, so monkeypatching and ``is`` behave).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from types import ModuleType

__all__ = ["MOVED", "install"]

#: Old module name -> the module (or package) that exports its public names now.
MOVED: dict[str, str] = {
    "vramcore.specs": "vramcore.model.spec",
    "vramcore.tensors": "vramcore.model.tensors",
    "vramcore.models": "vramcore.model.cards",
    "vramcore.hf": "vramcore.model",
    "vramcore.dtypes": "vramcore.storage",
    "vramcore.quant": "vramcore.storage",
    "vramcore.ggml": "vramcore.storage.ggml",
    "vramcore.io_gguf": "vramcore.storage.gguf",
    "vramcore.io_safetensors": "vramcore.storage.safetensors",
    "vramcore.gpus": "vramcore.hardware.gpus",
}


class _Loader:  # the loader protocol, without importlib.abc (which costs 5 ms of import time)
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the target module is already imported."""


class _Finder:  # a meta path finder: find_spec is the whole protocol
    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(new))  # type: ignore[arg-type]


def install() -> None:
    """Put the finder on :data:`sys.meta_path` once."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
