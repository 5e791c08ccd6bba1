"""Every example in the README runs: the Python blocks as written, and every `vramcore ...` command line.

Run in a scratch folder (the examples write grid.parquet, pictures, grid-parts/).
The one placeholder, ``path/to/checkpoint-folder``, becomes a real folder with a
config.json.  The README is read when the tests run beside it (a source tree);
an installed package without it skips nothing else.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from pathlib import Path

import pytest

import vramcore
from vramcore.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_examples() -> None:
    assert len(blocks("python")) >= 3 and len(blocks("bash")) >= 3


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("dask")
    monkeypatch.chdir(tmp_path)
    code = blocks("python")[index]
    namespace: dict[str, object] = {"vramcore": vramcore}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, f"README.md python block {index}", "exec"), namespace)  # noqa: S102


def command_lines() -> list[str]:
    lines: list[str] = []
    for block in blocks("bash"):
        for raw in block.replace("\\\n", " ").splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith("vramcore "):
                lines.append(line)
    return lines


@pytest.mark.parametrize("line", command_lines())
def test_command_line_example_runs(line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "path" / "to" / "checkpoint-folder"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(vramcore.get_model("Qwen3-8B").config))
    argv = shlex.split(line)[1:]
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(argv)
    expected = 1 if "--check" in argv else 0  # the README's --check example does not fit, on purpose
    assert code == expected, (line, err.getvalue())
    assert out.getvalue() or "-o" in argv


def test_setup_commands_are_the_two_the_brief_names() -> None:
    first, second = blocks("bash")[:2]
    assert "pip install . && vramcore estimate DeepSeek-R1-Distill-Llama-8B" in first
    assert 'pip install -e ".[test]" && python -m pytest' in second
