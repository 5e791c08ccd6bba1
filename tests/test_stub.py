"""The compiled module's stub (vramcore/_kernel.pyi) matches the module (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_kernel_stub() -> None:
    pytest.importorskip("mypy")
    result = subprocess.run([sys.executable, "-m", "mypy.stubtest", "vramcore._kernel"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
