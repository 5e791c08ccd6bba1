"""Every result says why it does not fit (``reasons``), and ``headroom_bytes`` keeps its sign.

The vLLM cases are the ones a user met: a fit refused with a positive headroom,
and a default ``max_model_len`` the KV cache cannot hold (vLLM then refuses to
start: vllm/v1/core/kv_cache_utils.py, check_enough_kv_cache_memory, "To serve
at least one request with the models's max seq len ... KV cache is needed,
which is larger than the available KV cache memory").
"""

from __future__ import annotations

import numpy as np
import pytest

import vramcore
import vramcore.grid._kernel as _kernel
from vramcore.cli import main
from vramcore.grid.results import BLOCKING_REASONS, REASONS, reason_names


def test_reason_bits_are_the_kernels() -> None:
    blocking = sum(1 << i for i, name in enumerate(REASONS) if name in BLOCKING_REASONS)
    assert blocking == _kernel.REASONS_BLOCKING
    assert reason_names(0) == () and reason_names(2**len(REASONS) - 1) == REASONS


def test_vllm_short_pool_is_refused_with_a_negative_headroom() -> None:
    e = vramcore.estimate("Llama-3.1-8B", context=131072, batch=64, gpu="H100", engine="vllm")
    assert e.fits is False and e.headroom_bytes < 0
    assert e.reasons == ("kv_below_batch",)
    # short by the blocks 64 sequences need beyond what the pool holds
    need = 131072 // 16
    assert e.headroom_bytes == (e.kv_blocks - 64 * need) * (e.kv_cache_bytes / e.kv_blocks)


def test_vllm_fitting_headroom_is_the_pools_spare_blocks() -> None:
    e = vramcore.estimate("Llama-3.1-8B", context=8192, batch=4, gpu="H100", engine="vllm")
    assert e.fits and e.reasons == ()
    block = e.kv_cache_bytes / e.kv_blocks
    spare = (e.kv_blocks - max(4 * 8192 // 16, 131072 // 16)) * block
    assert e.headroom_bytes == min(e.gpu_bytes - e.total_bytes, spare) > 0


def test_vllm_default_max_model_len_must_fit_in_the_cache() -> None:
    e = vramcore.estimate("Llama-3.1-8B", context=4096, gpu="RTX-4090", engine="vllm")
    assert e.kv_capacity_tokens < 131072
    assert e.fits is False and e.reasons == ("kv_below_max_model_len",) and e.headroom_bytes < 0
    shorter = vramcore.estimate("Llama-3.1-8B", context=4096, gpu="RTX-4090",
                                engine=vramcore.get_engine("vllm", max_model_len=32768))
    assert shorter.fits and shorter.reasons == ()


def test_vllm_refuses_a_context_beyond_its_max_model_len() -> None:
    e = vramcore.estimate("Qwen3-8B", context=65536, gpu="H200", engine="vllm")
    assert "context_beyond_max_model_len" in e.reasons and e.fits is False
    assert "context_beyond_trained_length" in e.reasons


@pytest.mark.parametrize(("model", "context", "trained"), [("Qwen3-8B", 131072, 40960),
                                                           ("Mistral-7B-v0.1", 2**20, 32768)])
def test_context_beyond_the_trained_length_is_flagged_not_refused(model: str, context: int, trained: int) -> None:
    assert vramcore.get_model(model).spec.max_context == trained
    e = vramcore.estimate(model, dtype="int4", context=context, gpu="B200")
    assert "context_beyond_trained_length" in e.reasons
    assert e.fits == (e.total_bytes <= e.gpu_bytes)
    no_gpu = vramcore.estimate(model, context=context)
    assert no_gpu.fits is None and no_gpu.reasons == ("context_beyond_trained_length",)
    assert vramcore.estimate(model, context=trained, gpu="B200").reasons == ()


def test_transformers_reasons_name_what_overflows() -> None:
    e = vramcore.estimate("Llama-3.1-70B", context=4096, gpu="RTX-4090")
    assert e.reasons == ("weights_exceed_gpu", "total_exceeds_gpu")
    assert e.verdict == "does not fit: weights_exceed_gpu, total_exceeds_gpu"


def test_sweep_reasons_are_codes_equal_to_the_cells() -> None:
    s = vramcore.sweep(["Llama-3.1-8B", "Llama-3.1-70B"], ["bf16", "int4"], [4096, 200_000], [1, 64],
                       ["H100", "RTX-4090"], engine=["transformers", "vllm"])
    assert s.reasons.dtype == np.uint16 and s.reasons.shape == s.shape
    assert ((s.reasons & _kernel.REASONS_BLOCKING) == 0).tolist() == s.fits.tolist()
    for idx in np.ndindex(*s.shape):
        assert reason_names(s.reasons[idx]) == s.cell(*idx).reasons


def test_cli_prints_the_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["estimate", "Llama-3.1-8B", "--context", "128k", "--batch", "64", "--gpu", "H100",
                 "--engine", "vllm", "--check"])
    out = capsys.readouterr().out
    assert code == 1
    assert "does NOT fit: headroom -" in out and "because: kv_below_batch" in out
    main(["estimate", "Qwen3-8B", "--context", "128k", "--gpu", "B200", "--dtype", "int4"])
    assert "note: context_beyond_trained_length" in capsys.readouterr().out


def test_cli_and_api_agree_on_the_default_dtype(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    cfg = {**vramcore.get_model("Llama-3.1-8B").config,
           "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    api = vramcore.estimate(str(tmp_path), context=4096)
    assert api.dtype == "gptq-int4-g128"
    assert main(["estimate", str(tmp_path), "--context", "4096", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["dtype"] == api.dtype and printed["weights_bytes"] == api.weights_bytes


def test_estimate_json_prints_whole_bytes_as_integers(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["estimate", "Qwen3-8B", "--context", "32k", "--gpu", "L4", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for key in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes", "total_bytes",
                "headroom_bytes", "gpu_bytes"):
        assert type(printed[key]) is int, key
    assert all(type(v) is int for v in printed["weights_by_part"].values())
    e = vramcore.estimate("Qwen3-8B", context=32768, gpu="L4")
    assert printed["overhead_bytes"] == e.overhead_bytes == int(e.overhead_bytes)


def test_byte_figures_are_whole_numbers_rounded_up() -> None:
    # 5 % allocator slack on an odd number of bytes, a pipeline stage's average share, a 4-bit cache
    for e in (vramcore.estimate("Qwen3-8B", context=4097, batch=3, gpu="H100"),
              vramcore.estimate("DeepSeek-V3", dtype="fp8", context=4096, gpu="H200", n_gpus=3),
              vramcore.estimate("Qwen3-8B", context=1, kv_dtype="int4", gpu="H100")):
        for v in (e.weights_bytes, e.kv_cache_bytes, e.activation_bytes, e.overhead_bytes, e.total_bytes):
            assert v == int(v)
        assert e.total_bytes == e.weights_bytes + e.kv_cache_bytes + e.activation_bytes + e.overhead_bytes


def test_beyond_2_53_bytes_the_result_says_it_is_approximate() -> None:
    e = vramcore.estimate("Llama-3.1-405B", context=2**20, batch=2**30, gpu="B200")
    assert e.kv_cache_bytes > 2**53 and "approximate" in e.reasons
    assert "approximate" not in vramcore.estimate("Llama-3.1-405B", context=2**20, gpu="B200").reasons


@pytest.mark.parametrize(("dtype", "engine", "runs"), [
    ("Q4_K_M", "transformers", False),   # transformers dequantizes a GGUF file on load
    ("Q4_K_M", "llamacpp", True), ("Q4_K_M", "vllm", True), ("Q4_K_M", "trtllm", False),
    ("gptq-int4-g128", "llamacpp", False),  # llama.cpp loads GGUF only
    ("gptq-int4-g128", "vllm", True), ("bnb-nf4", "trtllm", False), ("bnb-nf4", "transformers", True),
    ("bf16", "llamacpp", True), ("int4", "trtllm", True),
])
def test_formats_an_engine_does_not_load_are_named(dtype: str, engine: str, runs: bool) -> None:
    e = vramcore.estimate("Llama-3.1-8B", dtype=dtype, context=4096, gpu="B200", engine=engine)
    assert ("format_not_runnable_on_engine" in e.reasons) == (not runs)
    assert e.fits == runs
    if engine in ("transformers", "llamacpp"):  # known without a GPU too
        no_gpu = vramcore.estimate("Llama-3.1-8B", dtype=dtype, context=4096, engine=engine)
        assert ("format_not_runnable_on_engine" in no_gpu.reasons) == (not runs)
    answer = vramcore.max_context("Llama-3.1-8B", dtype, 1, "B200", engine=engine).values.item()
    assert (answer > 0) == runs


def test_auto_resolves_the_format_per_model_before_the_check() -> None:
    s = vramcore.sweep(["gpt-oss-20b", "Llama-3.1-8B"], "auto", 4096, 1, "H100", engine=["llamacpp", "vllm"])
    names = [[reason_names(s.reasons[i, 0, 0, 0, 0, e]) for e in range(2)] for i in range(2)]
    assert "format_not_runnable_on_engine" in names[0][0]       # gpt-oss's MXFP4 checkpoint under llama.cpp
    assert "format_not_runnable_on_engine" not in names[0][1]   # ... under vLLM
    assert all("format_not_runnable_on_engine" not in n for n in names[1])  # bf16 runs everywhere


def test_labels_keep_the_callers_spelling_everywhere_they_are_read() -> None:
    pytest.importorskip("xarray")
    pytest.importorskip("matplotlib")
    from vramcore import plot

    s = vramcore.sweep("Qwen3-8B", ["fp8", "bf16"], [4096, 8192], [1, 2], ["H100", "L4"])
    assert s.dtypes == ("fp8", "bf16") and s.gpus == ("H100", "L4")
    assert s.dtype_names == ("fp8_e4m3", "bf16") and s.gpu_names == ("H100-SXM-80GB", "L4")
    ds = s.to_xarray()
    assert float(ds.total_bytes.sel(model="Qwen3-8B", gpu="H100", dtype="fp8", context=4096,
                                    batch=1)) == s.total_bytes[0, 0, 0, 0, 0]
    df = s.to_pandas()
    assert len(df[(df.gpu == "H100") & (df.dtype == "fp8")]) == 4
    plot.sweep_heatmap(s, value="fits", facet="gpu", select={"dtype": "fp8", "model": "Qwen3-8B"})
    cell = s.cell(0, 0, 0, 0, 0)  # an Estimate carries the canonical names
    assert cell.dtype == "fp8_e4m3" and cell.gpu == "H100-SXM-80GB"


@pytest.mark.parametrize(("gpu", "engine", "dtype", "kv", "refused"), [
    ("A100-SXM4-80GB", "transformers", "fp8", None, True),    # transformers' FP8 needs compute capability 8.9
    ("A100-SXM4-80GB", "trtllm", "fp8-block128", None, True),
    ("A100-SXM4-80GB", "vllm", "fp8", None, False),           # vLLM: W8A16 Marlin on Ampere
    ("T4", "transformers", "bf16", "fp8", True),              # an FP8 KV cache under transformers
    ("RTX-3090", "transformers", "int8", None, False),
    ("H100", "transformers", "fp8", None, False), ("RTX-4090", "trtllm", "fp8", None, False),
])
def test_fp8_on_gpus_without_fp8(gpu: str, engine: str, dtype: str, kv: str | None, refused: bool) -> None:
    e = vramcore.estimate("Qwen3-8B", dtype=dtype, kv_dtype=kv, context=2048, gpu=gpu, engine=engine)
    assert ("dtype_unsupported_on_gpu" in e.reasons) == refused
    if refused:
        assert e.fits is False
        assert vramcore.max_batch("Qwen3-8B", dtype, 2048, gpu, kv_dtype=kv, engine=engine).values.item() == 0


def test_gpu_catalog_states_fp8() -> None:
    with_fp8 = {g for g in vramcore.list_gpus() if vramcore.get_gpu(g).fp8}
    assert {"H100-SXM-80GB", "H200-SXM-141GB", "L40S", "L4", "RTX-4090", "B200", "MI300X"} <= with_fp8
    assert not with_fp8 & {"A100-SXM4-80GB", "T4", "V100-SXM2-32GB", "RTX-3090", "A10G"}
    assert vramcore.GPUSpec(name="x", vendor="y", memory_total_bytes=2**34).fp8 is None  # unknown: never refused
