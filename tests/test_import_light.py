"""`import vramcore` stays light: no numpy and no optional extra until a function needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "pandas", "matplotlib", "dask", "distributed", "pyarrow", "xarray", "tqdm")
ROOT = Path(__file__).resolve().parents[1]


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_vramcore_loads_no_heavy_module() -> None:
    assert loaded_after("import vramcore") == set()


def test_cli_import_and_help_are_light() -> None:
    assert loaded_after("import vramcore.cli") == set()
    quiet_help = ("import contextlib, io\nfrom vramcore.cli import main\n"
                  "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])")
    assert loaded_after(quiet_help) == set()


@pytest.mark.parametrize(("module", "allowed"), [("vramcore.plot", set()), ("vramcore.dask", {"numpy"})])
def test_optional_modules_import_their_library_only_when_called(module: str, allowed: set[str]) -> None:
    assert loaded_after(f"import {module}") <= allowed


def test_public_names_load_on_first_use() -> None:
    assert "numpy" in loaded_after("import vramcore\nvramcore.sweep")


def test_bench_import_quick_runs() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_import.py"), "--quick", "-n", "2"],
                         capture_output=True, text=True, check=True).stdout
    assert "import vramcore" in out and "over bare" in out
    assert "heavy modules after `import vramcore`: none" in out


@pytest.mark.parametrize("argv", [
    ["estimate", "DeepSeek-R1-Distill-Llama-8B", "--gpu", "H100", "--context", "32k"],
    ["estimate", "Qwen3-8B", "--gpu", "L4", "--engine", "vllm", "--json"],
    ["card", "qwen3-8b"], ["models"], ["gpus"],
])
def test_cli_answers_without_numpy_or_typing(argv: list[str]) -> None:
    """The per-call commands import neither numpy nor typing (~5 ms of start-up: TYPE_CHECKING = False instead),
    and a plain-dtype model neither the quantization formats nor the tensor lists (~3 ms)."""
    code = f"import contextlib, io\nfrom vramcore.cli import main\nwith contextlib.redirect_stdout(io.StringIO()):\n" \
           f"    assert main({argv!r}) == 0\nimport sys\n" \
           "print(*(m in sys.modules for m in ('typing', 'vramcore.storage.quant', 'vramcore.model.tensors')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-3] == "False"
    if argv[0] in ("estimate", "gpus"):
        assert out[-2:] == ["False", "False"]
    assert loaded_after(code.rsplit("\nimport sys", 1)[0]) == set()


def test_family_listing_is_pkgutils() -> None:
    """The registry lists the family modules from the package folder as pkgutil would (without importing it)."""
    import pkgutil

    from vramcore.model import hf

    expected = sorted(i.name for i in pkgutil.iter_modules(hf.__path__) if not i.name.startswith("_")
                      and i.name != "quantization")
    assert list(hf._family_names()) == expected


def test_cli_estimate_process_imports_no_dataclasses_inspect_or_numpy() -> None:
    """``python -m vramcore estimate ...`` (run as -m runs it) imports neither dataclasses (with inspect, which it
    imports) nor numpy: the records are built by vramcore._record, and the command needs no grid."""
    argv = ["vramcore", "estimate", "DeepSeek-R1-Distill-Llama-8B", "--gpu", "H100", "--context", "32k"]
    code = ("import contextlib, io, runpy, sys\n"
            f"sys.argv = {argv!r}\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n"
            "        runpy.run_module('vramcore', run_name='__main__', alter_sys=True)\n"
            "    except SystemExit as exc:\n"
            "        assert not exc.code, exc.code\n"
            "assert 'fits' in out.getvalue(), out.getvalue()\n"
            "print(' '.join(m for m in ('dataclasses', 'inspect', 'numpy', 'typing') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == []


def test_records_answer_dataclasses_once_it_is_imported() -> None:
    """A user who imports dataclasses still gets fields / replace / asdict on vramcore's records."""
    code = ("import vramcore, dataclasses\n"
            "e = vramcore.estimate('DeepSeek-R1-Distill-Llama-8B', context=1024, gpu='H100')\n"
            "assert dataclasses.is_dataclass(e) and dataclasses.asdict(e)['context'] == 1024\n"
            "g = dataclasses.replace(vramcore.get_gpu('H100'), name='x')\n"
            "print(g.name, len(dataclasses.fields(vramcore.ModelSpec)) > 40)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["x", "True"]
