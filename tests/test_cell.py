"""The scalar path (vramcore/grid/cell.py): estimate() and Estimator equal the sweep's cell bit for bit,
need no numpy, and cache only what cannot change."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vramcore
from vramcore import Estimator, GPUSpec, ModelSpec, VramcoreWarning, get_engine

SEED = "DeepSeek-R1-Distill-Llama-8B"
ENGINES = vramcore.list_engines()
GPUS = ["H100", "A100-80GB", "RTX-4090", "L4", GPUSpec(name="card", vendor="x", memory_total_bytes=40 * 2**30)]


def _same(a: vramcore.Estimate, b: vramcore.Estimate) -> None:
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    assert da.keys() == db.keys()
    differ = {k: (da[k], db[k]) for k in da if da[k] != db[k] or type(da[k]) is not type(db[k])}
    assert not differ, differ


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("model", [SEED, "Qwen3-30B-A3B", "Gemma-2-9B", "DeepSeek-R1"])
def test_estimate_equals_the_sweep_cell_for_every_engine(model: str, engine: str) -> None:
    dtypes = ["auto", "bf16", "fp8", "Q4_K_M", "bnb-nf4"]
    contexts, batches = [1, 4096, 131072], [1, 8]
    s = vramcore.sweep(model, dtypes, contexts, batches, GPUS, engine=[engine])
    for j, d in enumerate(dtypes):
        for k, c in enumerate(contexts):
            for b_i, b in enumerate(batches):
                for g_i, g in enumerate(GPUS):
                    _same(vramcore.estimate(model, dtype=d, context=c, batch=b, gpu=g, engine=engine),
                          s.cell(0, j, k, b_i, g_i, 0))


@settings(max_examples=40, deadline=None)
@given(spec=st.from_type(ModelSpec), engine=st.sampled_from(ENGINES), context=st.integers(1, 2**20),
       batch=st.integers(1, 256), dtype=st.sampled_from(vramcore.list_dtypes()))
def test_estimator_equals_sweep_for_random_models(spec: ModelSpec, engine: str, context: int, batch: int,
                                                  dtype: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VramcoreWarning)
        try:
            s = vramcore.sweep(spec, dtype, context, batch, "H100", engine=engine)
        except ValueError as exc:           # a layout or knob this random model refuses: refused alike
            with pytest.raises(ValueError) as info:
                Estimator(spec, dtype=dtype, engine=engine)
            assert str(info.value) == str(exc)
            return
        _same(Estimator(spec, dtype=dtype, engine=engine)(context, batch, "H100"), s.cell(0, 0, 0, 0, 0))


def test_estimate_without_a_gpu_matches_the_grid_figures() -> None:
    e = vramcore.estimate(SEED, context=8192)
    s = vramcore.sweep(SEED, "auto", 8192, 1, "H100")
    assert (e.gpu, e.gpu_bytes, e.fits, e.headroom_bytes, e.max_concurrency) == (None, None, None, None, None)
    for field in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes", "total_bytes"):
        assert getattr(e, field) == getattr(s.cell(0, 0, 0, 0, 0), field)
    with pytest.raises(ValueError, match="sizes its KV cache from the GPU's memory; pass gpu="):
        vramcore.estimate(SEED, context=8192, engine="vllm")
    with pytest.raises(TypeError, match="use vramcore.sweep to compare engines"):
        vramcore.estimate(SEED, context=8192, engine=["vllm", "transformers"])


def test_estimator_checks_each_call() -> None:
    est = Estimator(SEED, engine="vllm", gpu_memory="total")
    assert est(8192, gpu="H100").gpu_bytes == vramcore.get_gpu("H100").memory_total_bytes
    for bad, exc in ((0, ValueError), (1.5, ValueError), (True, TypeError), ("8k", TypeError), (2**53 + 1,
                                                                                                ValueError)):
        with pytest.raises(exc, match="context"):
            est(bad, gpu="H100")
    with pytest.raises(ValueError, match="unknown gpu .H999."):
        est(8192, gpu="H999")
    with pytest.raises(ValueError, match="gpu_memory must be"):
        Estimator(SEED, gpu_memory="half")


def test_cached_estimates_warn_again_and_paths_are_read_again(tmp_path: Path) -> None:
    engine = get_engine("lora", lora_targets=["q_proj", "w9"])
    for _ in range(2):                      # the second call comes from the cache: the warning is said again
        with pytest.warns(VramcoreWarning, match=r"\['w9'\] are not modules"):
            vramcore.estimate(SEED, context=1024, engine=engine)
    config = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
              "intermediate_size": 128, "vocab_size": 100}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    first = vramcore.estimate(str(path), context=128).weights_bytes
    path.write_text(json.dumps({**config, "num_hidden_layers": 4}))
    assert vramcore.estimate(str(path), context=128).weights_bytes > first


def test_scalar_path_imports_no_numpy() -> None:
    code = ("import sys, vramcore\n"
            "e = vramcore.estimate('DeepSeek-R1-Distill-Llama-8B', context=32768, gpu='H100')\n"
            "f = vramcore.Estimator('Qwen3-8B', engine='vllm')(8192, 1, 'H100')\n"
            "from vramcore.cli import main\n"
            "assert main(['estimate', 'DeepSeek-R1-Distill-Llama-8B', '--gpu', 'H100', '--context', '32k',"
            " '--json']) == 0\n"
            "assert main(['card', 'Qwen3-8B', '--json']) == 0 and main(['models', '--json']) == 0\n"
            "assert main(['gpus', '--json']) == 0\n"
            "print('numpy' in sys.modules, e.fits, f.fits)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False True True"


def test_equal_specs_that_differ_are_not_confused_by_the_cache() -> None:
    # a ModelSpec's quantization (and model_type) are left out of its equality: the cache keys by identity
    spec = vramcore.get_model("Llama-3.2-1B").spec
    plain = vramcore.estimate(spec, context=1)
    quant = spec.replace(quantization="Q4_K_M")
    assert quant == spec
    assert (vramcore.estimate(quant, context=1).dtype, plain.dtype) == ("Q4_K_M", "bf16")
    assert vramcore.estimate(spec, context=1) == plain


def test_tensor_lists_and_lora_targets_follow_model_type_not_equality() -> None:
    from vramcore.model.tensors import list_tensors

    llama = ModelSpec(num_layers=2, hidden_size=64, num_heads=4, intermediate_size=128, vocab_size=100,
                      model_type="llama")
    phi3 = llama.replace(model_type="phi3")
    assert llama == phi3                   # model_type is not part of a spec's equality ...
    roles = {t.role for t in list_tensors(llama)}, {t.role for t in list_tensors(phi3)}
    assert "attn_q" in roles[0] and "attn_qkv" in roles[1]   # ... but phi3 fuses q, k and v
    lora = get_engine("lora", lora_targets=["qkv_proj"])
    with pytest.raises(ValueError, match="name no module"):
        vramcore.estimate(llama, context=16, engine=lora)
    assert vramcore.estimate(phi3, context=16, engine=lora).trainable_params == 2 * 16 * (64 + 64 + 2 * 64)
