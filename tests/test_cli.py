"""The command line: every subcommand, --json, units, exit codes, atomic -o writes, Ctrl-C."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import vramcore
import vramcore.grid._kernel as _kernel
import vramcore.grid.run as _run
import vramcore.io.export as _export
from vramcore.cli import main

SEED = "DeepSeek-R1-Distill-Llama-8B"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- estimate


def test_estimate_table_has_parts_total_gpu_fit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "estimate", SEED, "--gpu", "H100", "--context", "32k")
    assert code == 0
    for word in ("weights", "KV cache", "activations", "overhead", "total", "GiB", "GB", "usable on H100-SXM-80GB",
                 "fits: headroom"):
        assert word in out


def test_estimate_custom_gpu_by_size(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "estimate", SEED, "--gpu", "24GiB", "--context", "8k", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["gpu"] == "24GiB" and d["gpu_bytes"] == 24 * 2**30
    code, out, _ = run(capsys, "estimate", SEED, "--gpu", "80GB", "--context", "8k", "--json")
    assert json.loads(out)["gpu_bytes"] == 80 * 10**9
    code, out, _ = run(capsys, "estimate", SEED, "--gpu-memory", "24GiB", "--context", "8k", "--json")
    assert json.loads(out)["gpu_bytes"] == 24 * 2**30  # a size alone is a custom GPU
    code, out, _ = run(capsys, "estimate", SEED, "--gpu", "H100", "--gpu-memory", "total", "--context", "8k", "--json")
    assert json.loads(out)["gpu_bytes"] == vramcore.get_gpu("H100").memory_total_bytes


def test_estimate_check_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "estimate", SEED, "--gpu", "H100", "--context", "8k", "--check")[0] == 0
    code, out, _ = run(capsys, "estimate", SEED, "--gpu", "16GiB", "--context", "8k", "--check")
    assert code == 1 and "does NOT fit" in out
    code, _, err = run(capsys, "estimate", SEED, "--context", "8k", "--check")
    assert code == 2 and "--check needs --gpu" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["estimate", SEED, "--context", "abc"], "--context: not a positive integer: 'abc'"),
    (["estimate", SEED, "--batch", "0"], "--batch: not a positive integer: '0'"),
    (["estimate", SEED, "--gpu-memory", "lots"], "--gpu-memory: expected usable, cuda_visible, total or a size"),
    (["estimate", SEED, "--gpu-memory", "24"], "--gpu-memory: expected"),
    (["estimate", SEED, "--gpu", "h10"], "unknown gpu 'h10'"),
    (["estimate", "no-such-model"], "unknown model 'no-such-model'"),
    (["estimate", SEED, "--dtype", "bf61"], "unknown dtype 'bf61'"),
    (["sweep", SEED, "--context", "1:64:x1"], "--context '1:64:x1': geometric step must be x2 or more"),
    (["sweep", SEED, "--batch", "8:1"], "--batch '8:1': range '8:1' ends before it starts"),
    (["sweep", SEED, "-o", "grid.xlsx"], "-o 'grid.xlsx': unknown extension; use .csv, .parquet, .json"),
    (["gpus", "--min-memory", "40"], "--min-memory: size '40' needs a unit"),
    (["card", "deepsek-r1"], "unknown model 'deepsek-r1'"),
])
def test_bad_usage_exits_2_with_flag_and_value(capsys: pytest.CaptureFixture[str], argv: list[str],
                                               message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("vramcore: error: ") and message in err
    assert "Traceback" not in err and out == ""


def test_argparse_errors_and_help_return_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "estimate", SEED, "--bogus")
    assert code == 2 and "unrecognized arguments: --bogus" in err
    code, _, err = run(capsys, "plot", "sweep", SEED, "--x", "tokens", "-o", "x.png")
    assert code == 2 and "--x" in err and "'tokens'" in err
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "examples:" in out and "1k:128k:x2" in out and "GiB (2**30 bytes)" in out
    for sub in ("estimate", "sweep", "models", "gpus", "card"):
        code, out, _ = run(capsys, sub, "--help")
        assert code == 0 and "example" in out, sub
    code, out, _ = run(capsys, "--version")
    assert code == 0 and vramcore.__version__ in out


# ---------------------------------------------------------------- sweep


def test_sweep_table_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sweep", f"{SEED},Qwen3-8B", "--context", "4k,32k", "--batch", "1:4:x2",
                       "--gpu", "H100,L4,24GiB")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["model", "dtype", "context", "batch", "gpu"] and "headroom GiB" in lines[0]
    assert len(lines) == 2 * 2 * 3 * 3 + 2
    assert any(" 24GiB " in ln for ln in lines)


def test_sweep_json_equals_api(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sweep", SEED, "--dtype", "bf16,int4", "--context", "1k:4k:x2", "--batch", "1:3",
                       "--gpu", "L4", "--json")
    assert code == 0
    records = json.loads(out)
    s = vramcore.sweep(SEED, ["bf16", "int4"], [1024, 2048, 4096], [1, 2, 3], "L4")
    assert len(records) == s.size
    assert [r["total_bytes"] for r in records] == s.total_bytes.reshape(-1).tolist()
    assert [r["fits"] for r in records] == s.fits.reshape(-1).tolist()


def test_sweep_engine_list_adds_an_axis(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sweep", SEED, "--engine", "transformers,vllm", "--json")
    assert code == 0
    assert [r["engine"] for r in json.loads(out)] == ["transformers", "vllm"]


@pytest.mark.parametrize("ext", [".csv", ".json", ".parquet"])
def test_sweep_to_file_by_extension(capsys: pytest.CaptureFixture[str], tmp_path: Path, ext: str) -> None:
    if ext == ".parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"grid{ext}"
    code, out, err = run(capsys, "sweep", SEED, "--context", "4k,8k,32k,128k", "--batch", "1:64:x2",
                         "--gpu", "H100,L4", "-o", str(path))
    assert code == 0 and out == "" and "wrote 56 rows" in err
    s = vramcore.sweep(SEED, "bf16", [4096, 8192, 32768, 131072], [1, 2, 4, 8, 16, 32, 64], ["H100", "L4"])
    if ext == ".csv":
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        totals = [float(r["total_bytes"]) for r in rows]
    elif ext == ".json":
        totals = [r["total_bytes"] for r in json.loads(path.read_text())]
    else:
        import pyarrow.parquet as pq

        totals = pq.read_table(path).column("total_bytes").to_pylist()
    assert totals == s.total_bytes.reshape(-1).tolist()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_sweep_output_json_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "sweep", SEED, "--batch", "1,2", "-o", str(tmp_path / "g.csv"), "--json")
    assert code == 0
    assert json.loads(out) == {"path": str(tmp_path / "g.csv"), "format": "csv", "rows": 2,
                               "dims": ["model", "dtype", "context", "batch", "gpu"], "shape": [1, 1, 1, 2, 1]}


def test_sweep_unwritable_output_is_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "sweep", SEED, "-o", str(tmp_path / "missing" / "g.csv"))
    assert code == 2 and "-o" in err and "No such file or directory" in err


def test_ctrl_c_during_sweep_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_run, "CHUNK_CELLS", 4)
    real = _kernel.grid
    calls: list[int] = []

    def grid(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(_kernel, "grid", grid)
    path = tmp_path / "g.parquet"
    code, out, err = run(capsys, "sweep", SEED, "--batch", "1:16", "-o", str(path), "--no-progress")
    assert code == 130
    assert "vramcore: interrupted: vramcore sweep interrupted after 4 of 16 cells" in err
    assert "no output written" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_writing_keeps_the_old_file(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g.csv"
    path.write_text("old contents\n")

    def interrupted(sweep: object, blocks: object, stream: io.TextIOBase) -> None:
        stream.write("model,dtype\nhalf a ro")
        raise KeyboardInterrupt

    monkeypatch.setitem(_export._BLOCK_WRITERS, "csv", interrupted)
    code, _, err = run(capsys, "sweep", SEED, "-o", str(path))
    assert code == 130 and "no output written" in err
    assert path.read_text() == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["g.csv"]


def test_sweep_progress_flag(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    monkeypatch.setattr(_run, "CHUNK_CELLS", 4)
    code, _, err = run(capsys, "sweep", SEED, "--batch", "1:16", "--progress", "--json")
    assert code == 0 and "vramcore sweep" in err and "16/16" in err
    code, _, err = run(capsys, "sweep", SEED, "--batch", "1:16", "--no-progress", "--json")
    assert code == 0 and err == ""


# ---------------------------------------------------------------- catalogs


def test_models_filters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models")
    assert code == 0 and SEED in out and "params" in out.splitlines()[0]
    assert len(out.splitlines()) == len(vramcore.list_models()) + 1
    _, out, _ = run(capsys, "models", "--company", "meta", "--json")
    cards = json.loads(out)
    assert cards and all(c["company"] == "Meta" for c in cards)
    _, out, _ = run(capsys, "models", "qwen3", "--family", "qwen3")
    names = [ln.split()[0] for ln in out.splitlines()[1:]]
    assert names and all(n.startswith("Qwen3") for n in names)
    _, out, _ = run(capsys, "models", "r1-distill-llama-8b", "--json")  # an alias matches
    assert [c["name"] for c in json.loads(out)] == [SEED]
    code, out, err = run(capsys, "models", "no-such-thing")
    assert code == 0 and out == "" and "no model matches" in err


def test_gpus_filters_and_units(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "gpus", "--min-memory", "40GiB", "--json")
    gpus = json.loads(out)
    assert gpus and all(g["memory_total_bytes"] >= 40 * 2**30 for g in gpus)
    names = {g["name"] for g in gpus}
    assert "H100-SXM-80GB" in names and "L4" not in names
    _, out, _ = run(capsys, "gpus", "--max-memory", "30GB", "--json")
    assert all(g["memory_total_bytes"] <= 30e9 for g in json.loads(out))
    _, out, _ = run(capsys, "gpus", "--vendor", "amd", "--json")
    assert {g["vendor"] for g in json.loads(out)} == {"AMD"}
    code, out, _ = run(capsys, "gpus", "h100")
    assert code == 0 and "total GiB" in out and "GiB = 2**30 bytes, GB = 10**9 bytes" in out
    assert all("H100" in ln for ln in out.splitlines()[1:-1])


def test_card_prints_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    card = vramcore.get_model(SEED)
    code, out, _ = run(capsys, "card", "deepseek-r1-distill-llama-8b")
    assert code == 0 and out.strip() == str(card)
    for key in card.to_dict():
        assert key in out
    _, out, _ = run(capsys, "card", SEED, "--json")
    assert json.loads(out) == card.to_dict()
    _, out, _ = run(capsys, "card", SEED, "--config")
    assert json.loads(out)["num_key_value_heads"] == 8


# ---------------------------------------------------------------- plot


def test_plot_commands_write_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    bars, heat = tmp_path / "bars.png", tmp_path / "heat.png"
    code, _, _ = run(capsys, "plot", "estimate", SEED, "--context", "8k,128k", "--gpu", "L4", "-o", str(bars))
    assert code == 0 and bars.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run(capsys, "plot", "sweep", SEED, "--dtype", "bf16,int4", "--context", "1k:128k:x2",
                       "--batch", "1:64:x2", "--gpu", "H100,L4", "--select", "dtype=int4", "-o", str(heat), "--json")
    assert code == 0 and json.loads(out) == {"path": str(heat), "format": "png", "cells": 2 * 8 * 7 * 2}
    assert heat.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.png", "heat.png"]


def test_plot_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    code, _, err = run(capsys, "plot", "sweep", SEED, "--dtype", "bf16,int4", "-o", str(tmp_path / "a.png"))
    assert code == 2 and "axis 'dtype' has 2 labels" in err and "--select dtype=" in err
    code, _, err = run(capsys, "plot", "sweep", SEED, "-o", str(tmp_path / "a.xyz"))
    assert code == 2 and "unknown image extension" in err
    code, _, err = run(capsys, "plot", "sweep", SEED, "--select", "dtype", "-o", str(tmp_path / "a.png"))
    assert code == 2 and "--select: expected AXIS=LABEL, got 'dtype'" in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- entry points


def test_python_dash_m_and_exit_code() -> None:
    ok = subprocess.run([sys.executable, "-m", "vramcore", "sweep", SEED, "--batch", "1,2", "--json"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and len(json.loads(ok.stdout)) == 2
    bad = subprocess.run([sys.executable, "-m", "vramcore", "estimate", SEED, "--gpu", "8GiB", "--check"],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    usage = subprocess.run([sys.executable, "-m", "vramcore", "gpus", "--min-memory", "lots"],
                           capture_output=True, text=True)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_models_and_gpus_need_no_numpy() -> None:
    code = ("import sys\nfrom vramcore.cli import main\nmain(['gpus', '--json']); main(['models', 'qwen3'])\n"
            "print('numpy' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "False"


def test_fit_context_matches_api(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "context", "DeepSeek-R1-Distill-Llama-8B", "--dtype", "bf16,int4", "--batch", "1,8",
                 "--gpu", "H100,RTX-4090", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    sol = vramcore.max_context("DeepSeek-R1-Distill-Llama-8B", ["bf16", "int4"], [1, 8], ["H100", "RTX-4090"])
    assert [r["max_context"] for r in records] == sol.values.reshape(-1).tolist()
    assert records[0]["dtype"] == "bf16" and records[0]["batch"] == 1


def test_fit_other_questions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "batch", "Llama-3.1-8B", "--context", "4k", "--gpu", "H100", "--engine",
                 "transformers,vllm", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["engine"] for r in records} == {"transformers", "vllm"} and all(r["max_batch"] > 0 for r in records)
    assert main(["fit", "gpus", "Llama-3.1-70B", "--context", "8k", "--gpu", "H100", "--engine", "vllm"]) == 0
    assert "min_gpus" in capsys.readouterr().out
    assert main(["fit", "dtype", "Llama-3.1-70B", "--context", "8k", "--gpu", "H100", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["best_dtype"] == "fp8_e4m3"
    assert main(["fit", "gpus", "Llama-3.1-70B", "--gpu", "H100,L4", "--json"]) == 0  # several GPUs in one call
    assert [r["gpu"] for r in json.loads(capsys.readouterr().out)] == ["H100-SXM-80GB", "L4"]
    assert main(["fit", "gpus", "Llama-3.1-70B", "--gpu", "H100", "--engine", "vllm,sglang"]) == 2
    assert "give one --engine" in capsys.readouterr().err


def test_fit_gpus_goes_past_one_node(capsys: pytest.CaptureFixture[str]) -> None:
    # 405B in bf16 holds 756 GiB of weights: more than 8 H100s; 16 as tp=8 x pp=2
    assert main(["fit", "gpus", "Llama-3.1-405B", "--dtype", "bf16", "--context", "8k", "--gpu", "H100",
                 "--engine", "vllm", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["min_gpus"] == 16
    assert vramcore.estimate("Llama-3.1-405B", dtype="bf16", context=8192, gpu="H100", engine="vllm", tp=8,
                             pp=2).fits
    assert not vramcore.estimate("Llama-3.1-405B", dtype="bf16", context=8192, gpu="H100", engine="vllm",
                                 tp=8).fits


@pytest.mark.parametrize(("argv", "says", "never"), [
    (["sweep", "Qwen3-8B", "--dtype", "bf17"], "for --dtype; did you mean 'bf16'", "'dtypes'"),
    (["estimate", "Qwen3-9B"], "see `vramcore models`", "list_models()"),
    (["sweep", "Qwen3-8B", "--gpu", "H1000"], "for --gpu; did you mean", "list_gpus()"),
    (["estimate", "Qwen3-8B", "--kv-dtype", "q9"], "for --kv-dtype", "'kv_dtype'"),
])
def test_errors_name_flags_and_commands(capsys: pytest.CaptureFixture[str], argv: list[str], says: str,
                                        never: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and says in err and never not in err


def test_dtypes_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "dtypes", "--kind", "all", "--json")
    assert code == 0 and json.loads(out) == vramcore.list_dtypes("all")
    code, out, _ = run(capsys, "dtypes", "--kv", "llamacpp", "--json")
    assert {r["name"]: r["bits"] for r in json.loads(out)}["q8_0"] == 8.5
    code, _, err = run(capsys, "sweep", "Qwen3-8B", "--dtype", "bf17")
    assert code == 2 and "`vramcore dtypes --kind all`" in err and "list_dtypes" not in err


# ---------------------------------------------------------------- training


def test_estimate_train_qlora_as_the_issue_spells_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "estimate", SEED, "--train", "qlora", "--lora-rank", "16", "--optimizer",
                       "paged_adamw_8bit", "--context", "4k", "--batch", "4", "--gpu", "RTX-4090", "--json")
    assert code == 0
    got = json.loads(out)
    api = vramcore.estimate(SEED, context=4096, batch=4, gpu="RTX-4090",
                            engine=vramcore.get_engine("qlora", lora_rank=16, optimizer="paged_adamw_8bit"))
    assert got["engine"] == "qlora" and got["dtype"] == "bnb-nf4"
    for field in ("weights_bytes", "gradients_bytes", "optimizer_bytes", "master_weights_bytes",
                  "activation_bytes", "total_bytes", "trainable_params"):
        assert got[field] == getattr(api, field) and isinstance(got[field], int), field
    assert got["trainable_params"] == 41943040     # peft: all-linear r=16 on a Llama-8B geometry
    code, out, _ = run(capsys, "estimate", SEED, "--train", "qlora", "--context", "4k", "--gpu", "RTX-4090")
    for word in ("trainable", "gradients", "optimizer", "master", "activations", "micro-batch"):
        assert word in out


def test_fit_batch_with_lora_and_training_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fit", "batch", "Qwen3-8B", "--train", "lora", "--context", "8k", "--gpu", "L40S",
                       "--recompute", "full", "--json")
    assert code == 0
    (row,) = json.loads(out)
    engine = vramcore.get_engine("lora", recompute="full")
    b = row["max_batch"]
    assert b >= 1
    assert vramcore.estimate("Qwen3-8B", context=8192, batch=b, gpu="L40S", engine=engine).fits
    assert not vramcore.estimate("Qwen3-8B", context=8192, batch=b + 1, gpu="L40S", engine=engine).fits
    code, out, _ = run(capsys, "estimate", "Llama-3.1-8B", "--train", "full", "--zero", "3", "--dp", "8",
                       "--context", "8k", "--gpu", "H100", "--json")
    e = vramcore.estimate("Llama-3.1-8B", context=8192, gpu="H100",
                          engine=vramcore.get_engine("train", zero=3, dp=8))
    assert code == 0 and json.loads(out)["total_bytes"] == e.total_bytes


def test_sweep_train_methods_are_an_engine_axis(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sweep", "Qwen3-8B", "--train", "full,lora,qlora", "--context", "2k,8k",
                       "--gpu", "H100", "--json")
    assert code == 0
    rows = json.loads(out)
    assert {r["engine"] for r in rows} == {"train", "lora", "qlora"} and len(rows) == 6


def test_training_flag_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "estimate", SEED, "--train", "dpo", "--context", "1k")
    assert code == 2 and "--train: expected full, lora or qlora" in err
    code, _, err = run(capsys, "estimate", SEED, "--train", "lora", "--engine", "vllm", "--context", "1k")
    assert code == 2 and "--train and --engine" in err
    code, _, err = run(capsys, "estimate", SEED, "--train", "full", "--zero", "5", "--context", "1k")
    assert code == 2 and "ZeRO stage 0, 1, 2 or 3" in err
    code, _, err = run(capsys, "estimate", SEED, "--train", "full", "--optimizer", "adamax", "--context", "1k")
    assert code == 2 and "optimizer must be one of" in err
    code, _, err = run(capsys, "estimate", SEED, "--train", "lora", "--lora-targets", "q_proj,w9", "--context",
                       "1k")
    assert code == 0 and "w9" in err            # peft ignores names that are not modules: a named warning


def test_sweep_fields_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "grid.csv"
    code, _, _ = run(capsys, "sweep", "Qwen3-8B", "--context", "4k,128k", "--gpu", "H100,L4", "--fields",
                     "total_bytes,fits", "-o", str(out))
    assert code == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header == ["model", "dtype", "context", "batch", "gpu", "total_bytes", "gpu_bytes", "fits"]
    code, _, err = run(capsys, "sweep", "Qwen3-8B", "--fields", "fits")
    assert code == 2 and "which this sweep did not compute" in err
    code, _, err = run(capsys, "sweep", "Qwen3-8B", "--fields", "total", "--json")
    assert code == 2 and "'total' is not a result field" in err


def test_llamacpp_ctx_size_and_parallel(capsys: pytest.CaptureFixture[str]) -> None:
    # llama-server -c 32768 -np 4: four slots of 8192 cells (tools/server: n_ctx_slot = n_ctx / n_parallel)
    code, out, _ = run(capsys, "estimate", "Qwen3-8B", "--engine", "llamacpp", "--dtype", "Q4_K_M", "-c", "32k",
                       "-np", "4", "--json")
    same = vramcore.estimate("Qwen3-8B", dtype="Q4_K_M", context=8192, batch=4, engine="llamacpp")
    assert code == 0 and json.loads(out)["total_bytes"] == same.total_bytes
    code, _, err = run(capsys, "estimate", "Qwen3-8B", "-c", "32k", "--context", "8k")
    assert code == 2 and "--ctx-size and --context" in err
    code, _, err = run(capsys, "estimate", "Qwen3-8B", "-c", "1000", "-np", "3")
    assert code == 2 and "not a multiple of the 3 sequences" in err


def test_an_empty_engine_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # found by the CLI fuzz: --engine '' used to end in an internal IndexError
    for command in (["estimate", "Qwen3-8B"], ["sweep", "Qwen3-8B"]):
        assert main([*command, "--engine", ""]) == 2
        err = capsys.readouterr().err
        assert "--engine: expected an engine name" in err and "Traceback" not in err
