"""The compiled module's stub (vramcore/grid/_kernel.pyi) matches the module (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_kernel_stub() -> None:
    pytest.importorskip("mypy")
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-m", "mypy.stubtest", "vramcore.grid._kernel",
                             "--mypy-config-file", str(root / "pyproject.toml"),
                             "--allowlist", str(root / "tests" / "stubtest_allowlist.txt")],
                            capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
