"""Public API contracts: errors name the argument and value, scalar in -> scalar out, CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import vramcore
import vramcore.grid._kernel as _kernel
import vramcore.grid.pack as _pack
from vramcore.cli import main

SEED = "DeepSeek-R1-Distill-Llama-8B"


def test_kernel_struct_layout_matches_pack() -> None:
    assert _kernel.MODEL_NFIELDS == len(_pack.MODEL_FIELDS)
    assert _kernel.DTYPE_NFIELDS == len(_pack.DTYPE_FIELDS)
    assert _kernel.ENGINE_NFIELDS == len(_pack.ENGINE_FIELDS)
    assert _kernel.N_PARTS == len(vramcore.PARTS)
    assert _kernel.TRAIN_NFIELDS == len(_pack.TRAIN_FIELDS)
    assert _kernel.PLACE_NFIELDS == len(_pack.PLACE_FIELDS)
    assert _kernel.RESULT_NFIELDS == len(_kernel.RESULT_FIELDS) + 1  # + fits, written to its own array


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"context": 0}, ValueError, "context must be in"),
        ({"context": -1}, ValueError, "context must be in"),
        ({"context": math.nan}, ValueError, "context must be a positive integer, got nan"),
        ({"context": math.inf}, ValueError, "context must be a positive integer, got inf"),
        ({"context": 1.5}, ValueError, "context must be a positive integer, got 1.5"),
        ({"context": True}, TypeError, "context must be a positive integer"),
        ({"context": "8k"}, TypeError, "context must be a positive integer, got '8k'"),
        ({"context": 2**60}, ValueError, "context must be in"),
        ({"context": 1024, "batch": 0}, ValueError, "batch must be in"),
        ({"context": 1024, "batch": 2.5}, ValueError, "batch must be a positive integer"),
        ({"context": 1024, "n_gpus": 0}, ValueError, "n_gpus must be in"),
        ({"context": 1024, "dtype": "bf61"}, ValueError, "unknown dtype 'bf61'.*did you mean.*bf16"),
        ({"context": 1024, "kv_dtype": "fp9"}, ValueError, "kv_dtype"),
        ({"context": 1024, "gpu": "h10"}, ValueError, "unknown gpu 'h10'.*did you mean"),
        ({"context": 1024, "engine": "transformer"}, ValueError, "unknown engine.*transformers"),
        ({"context": 1024, "dtype": 16}, TypeError, "dtype"),
    ],
)
def test_estimate_bad_input(kwargs: dict, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        vramcore.estimate(SEED, **kwargs)


def test_unknown_model_close_match() -> None:
    with pytest.raises(ValueError, match="unknown model 'deepseek-r1-distill-llama-8'.*did you mean"):
        vramcore.estimate("deepseek-r1-distill-llama-8", context=10)
    with pytest.raises(TypeError, match="model"):
        vramcore.estimate(3.14, context=10)


@pytest.mark.parametrize("bad", [[1024, 0], [1024, -3], [np.nan], [1.5], [], [[1, 2]], ["4k"], [True]])
def test_sweep_bad_contexts(bad: list) -> None:
    with pytest.raises((ValueError, TypeError), match="contexts"):
        vramcore.sweep(SEED, "bf16", bad, 1, "H100")


def test_sweep_axes_and_labels() -> None:
    s = vramcore.sweep([SEED, "Llama-3.2-1B"], ["bf16", "int4"], [1024, 8192], [1, 4], ["H100", "L4"])
    assert s.shape == (2, 2, 2, 2, 2)
    assert s.models == (SEED, vramcore.get_model("Llama-3.2-1B").name)
    assert s.dtypes == ("bf16", "int4")
    assert s.contexts.tolist() == [1024, 8192] and s.batches.tolist() == [1, 4]
    assert s.fits.dtype == np.bool_
    assert not s.gpu_bytes.flags.writeable
    assert (s.weights_bytes == s.weights_bytes[:, :, :1, :1, :1]).all()  # independent of context/batch/gpu
    np.testing.assert_array_equal(s.headroom_bytes, s.gpu_bytes - s.total_bytes)
    np.testing.assert_array_equal(s.fits, s.headroom_bytes >= 0)


def test_estimate_without_gpu() -> None:
    e = vramcore.estimate(SEED, context=4096)
    assert e.gpu is None and e.fits is None and e.gpu_bytes is None and e.headroom_bytes is None
    assert e.total_bytes == e.weights_bytes + e.kv_cache_bytes + e.activation_bytes + e.overhead_bytes
    assert "GPU" not in str(e)


def test_estimate_str_and_dict() -> None:
    e = vramcore.estimate(SEED, context=32768, gpu="H100")
    text = str(e)
    for word in ("weights", "KV cache", "activations", "overhead", "total", "GiB", "fits"):
        assert word in text
    d = e.to_dict()
    json.dumps(d)
    assert d["kv_cache_bytes"] == 32768 * 131072


def test_does_not_fit_on_small_gpu() -> None:
    e = vramcore.estimate(SEED, context=131072, batch=8, gpu="L4")
    assert e.fits is False and e.headroom_bytes < 0
    assert "does NOT fit" in str(e)


def test_n_gpus_splits_layers_per_gpu_under_transformers() -> None:
    one = vramcore.estimate(SEED, context=4096, gpu="H100")
    two = vramcore.estimate(SEED, context=4096, gpu="H100", n_gpus=2)
    assert (two.tp, two.pp, two.n_gpus) == (1, 2, 2)
    assert two.gpu_bytes == one.gpu_bytes  # per GPU
    spec = vramcore.get_model(SEED).spec
    parts = spec.param_breakdown()
    per_layer = sum(parts[p] for p in ("attention", "mlp_dense", "norms")) * 2  # bf16
    # the most loaded stage holds half the layers and the larger of embedding / lm_head
    assert two.weights_bytes == per_layer / 2 + max(parts["embedding"], parts["lm_head"]) * 2
    assert two.kv_cache_bytes * 2 == one.kv_cache_bytes


def test_cli_estimate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", SEED, "--gpu", "H100", "--context", "32k", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["context"] == 32768 and out["kv_cache_bytes"] == 32768 * 131072 and out["fits"] is True


def test_cli_bad_usage_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", SEED, "--context", "abc"]) == 2
    assert "--context" in capsys.readouterr().err
    assert main(["estimate", "no-such-model", "--context", "8"]) == 2
    assert main(["estimate", SEED, "--gpu", "L4", "--context", "128k", "--batch", "16", "--check"]) == 1


def test_cli_module_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "vramcore", "estimate", SEED, "--gpu", "H100",
                          "--context", "8192"], capture_output=True, text=True, check=True).stdout
    assert "KV cache" in out and "fits" in out


def test_import_is_lazy() -> None:
    code = "import sys, vramcore; print('numpy' in sys.modules, 'vramcore.grid._kernel' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
