"""Pipeline parallelism: every stage counted on its own layers (issue #11).

Sources of the partition rules:
- vLLM, vllm/distributed/utils.py ``get_pp_indices``: ``num_hidden_layers // pp`` layers a stage, the
  remainder one each to ``partitions[-2]``, ``partitions[-3]``, ...; SGLang's
  sglang/srt/distributed/utils.py ``get_pp_indices`` is the same rule;
- TensorRT-LLM, tensorrt_llm/mapping.py ``pp_layers``: ``torch.tensor_split`` ("first n ranks get one
  extra layer");
- llama.cpp, src/llama-model.cpp ``load_tensors``: item ``il`` of the offloaded range ``i_gpu_start ..
  n_layer`` (the output layer is item ``n_layer``) goes to the device whose cumulative split passes
  ``(il - i_gpu_start) / act_gpu_layers``;
- vLLM's KV cache under PP, vllm/v1/core/kv_cache_utils.py ``get_kv_cache_configs``: "Change the
  num_blocks of each rank to the smallest among all ranks".
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

import vramcore
from vramcore import get_dtype, get_engine
from vramcore.grid import pack
from vramcore.grid.reference import _layer_weights, _rope_cache_bytes, reference_estimate_exact

GiB = 2**30


def _sizes(engine: str, n_layers: int, pp: int) -> list[int]:
    return [len(s) for s in pack.stage_layers(get_engine(engine), n_layers, pp)]


def test_each_engine_splits_the_layers_its_own_way() -> None:
    # DeepSeek-V3's 61 layers over 4 stages: 61 // 4 = 15, one left over
    assert _sizes("vllm", 61, 4) == [15, 15, 16, 15]        # partitions[-2] += 1
    assert _sizes("sglang", 61, 4) == [15, 15, 16, 15]
    assert _sizes("trtllm", 61, 4) == [16, 15, 15, 15]      # tensor_split: the first stage
    assert _sizes("vllm", 62, 4) == [15, 16, 16, 15]        # partitions[-2], partitions[-3]
    assert _sizes("vllm", 63, 4) == [16, 16, 16, 15]
    assert _sizes("vllm", 20, 4) == [5, 5, 5, 5]
    for engine in ("vllm", "trtllm", "transformers", "train"):
        stages = pack.stage_layers(get_engine(engine), 61, 4)
        assert [i for s in stages for i in s] == list(range(61))


def test_deepseek_v3_pp4_counts_the_stage_of_16_moe_layers() -> None:
    # The averaged rule gave the most loaded stage ceil(61 / 4) = 16 of the 61 layers as 16/61 of each kind
    # (0.79 dense + 15.2 MoE layers): about 4 % short of vLLM's third stage, which holds layers 30-45, all MoE.
    spec = vramcore.get_model("DeepSeek-V3").spec
    bf16 = get_dtype("bf16")
    engine = get_engine("vllm", max_model_len=4096)
    e = vramcore.estimate(spec, dtype="bf16", context=4096, engine=engine, tp=8, pp=4, gpu="H200")
    per_layer = _layer_weights(spec, bf16, 8)
    third = sum(per_layer[30:46], Fraction(0))
    assert all(spec.mlp_layer_types[i] == "moe" for i in range(30, 46))  # type: ignore[index]
    assert e.weights_bytes == math.ceil(third) + _rope_cache_bytes(spec, bf16, engine)  # whole bytes
    averaged = Fraction(16, 61) * sum(per_layer, Fraction(0))
    assert 1.03 < third / averaged < 1.05


def test_vllm_stages_share_the_smallest_block_count() -> None:
    # Gemma-3-27B over 2 stages under vLLM: the first holds the embedding (262144 x 5376 in bf16, 2.69 GiB),
    # the vision tower and the encoder's profile run; the last its own copy of the tied embedding as lm_head
    # and the sampler's profile (256 rows x 262144 logits on a 48 GB GPU), so it has the fewest blocks; every
    # stage's cache is that many blocks, and the figures reported are that stage's
    spec = vramcore.get_model("Gemma-3-27B").spec
    engine = get_engine("vllm", max_model_len=8192)
    e = vramcore.estimate(spec, context=8192, engine=engine, pp=2, n_gpus=2, gpu="L40S")
    exact = reference_estimate_exact(spec, get_dtype("bf16"), None, engine, 2, 8192, 1,
                                     int(e.gpu_bytes), pp=2, gpu_name="L40S", details=True)
    first, last = exact["stages"]
    assert last["kv_blocks"] < first["kv_blocks"]
    assert first["weights_bytes"] - last["weights_bytes"] == sum(
        2 * v for v in (spec.vision.tower_params, spec.vision.projector_params))  # type: ignore[union-attr]
    assert last["activation_bytes"] > first["activation_bytes"]     # the sampler
    assert e.kv_blocks == float(last["kv_blocks"]) and e.weights_bytes == float(last["weights_bytes"])
    assert e.max_concurrency == pytest.approx(float(min(first["max_concurrency"], last["max_concurrency"])))
    assert e.fits == (first["fits"] and last["fits"])


def test_transformers_pipeline_binds_on_the_stage_holding_most() -> None:
    # Llama-3.1-8B over 3 GPUs: 11 + 11 + 10 layers; the last stage holds the lm_head and the logits, the first
    # the embedding; at a long context the stage with 11 layers and the embedding holds the most KV as well
    spec = vramcore.get_model("Llama-3.1-8B").spec
    e = vramcore.estimate(spec, context=65536, engine="transformers", n_gpus=3, gpu="H100")
    exact = reference_estimate_exact(spec, get_dtype("bf16"), None, get_engine("transformers"), 3, 65536, 1,
                                     int(e.gpu_bytes), details=True)
    totals = [c["total_bytes"] for c in exact["stages"]]
    assert [len(s) for s in pack.stage_layers(get_engine("transformers"), 32, 3)] == [11, 11, 10]
    assert e.total_bytes == float(max(totals)) and e.headroom_bytes == float(e.gpu_bytes - max(totals))
    # 11 layers x 65536 tokens x 8 heads x 128 x 2 (K, V) x 2 bytes
    assert e.kv_cache_bytes == 11 * 65536 * 8 * 128 * 2 * 2


def test_llamacpp_splits_layers_and_output_over_gpus() -> None:
    # -ngl -1 over 2 GPUs: 33 items (32 layers + output); item il on GPU floor(il x 2 / 33): layers 0-16 on
    # the first, 17-31 and the output layer on the second
    spec = vramcore.get_model("Llama-3.1-8B").spec
    rows = pack.place_rows(spec, get_engine("llamacpp"), 1, 2)
    fields = pack.PLACE_FIELDS
    first, second = (dict(zip(fields, r, strict=True)) for r in rows)
    assert (first["gpu_layers"], second["gpu_layers"]) == (17, 15)
    assert (first["last_stage"], second["last_stage"]) == (0, 1) and first["first_stage"] == 1
    e = vramcore.estimate(spec, context=8192, engine="llamacpp", n_gpus=2, gpu="RTX-4090")
    one = vramcore.estimate(spec, context=8192, engine="llamacpp", gpu="RTX-4090")
    # the second GPU binds: 2 layers fewer (0.41 GiB) but the output matrix (0.98 GiB) and the logits rows
    assert e.kv_cache_bytes == one.kv_cache_bytes * 15 / 32
    head = spec.vocab_size * spec.hidden_size * 2
    assert e.weights_bytes == pytest.approx(15 * (one.weights_bytes - head) / 32 + head, rel=1e-12)
    # -ngl 20 over 2 GPUs (was refused): the output and the last 19 layers, 10 items each
    partial = get_engine("llamacpp", n_gpu_layers=20)
    rows = pack.place_rows(spec, partial, 1, 2)
    assert [r[0] for r in rows] == [10, 9] and [r[fields.index("host_layers")] for r in rows] == [13, 13]
    p = vramcore.estimate(spec, context=8192, engine=partial, n_gpus=2, gpu="RTX-4090")
    exact = reference_estimate_exact(spec, get_dtype("bf16"), None, partial, 2, 8192, 1, int(p.gpu_bytes))
    assert p.total_bytes == float(exact["total_bytes"]) and p.host_bytes == float(exact["host_bytes"])


def test_training_1f1b_first_stage_holds_pp_micro_batches() -> None:
    spec = vramcore.get_model("Llama-3.1-8B").spec
    rows = pack.place_rows(spec, get_engine("train"), 1, 4)
    assert [r[pack.PLACE_FIELDS.index("in_flight")] for r in rows] == [4, 3, 2, 1]
    e = vramcore.estimate(spec, context=4096, engine="train", n_gpus=4, gpu="H100")
    exact = reference_estimate_exact(spec, get_dtype("bf16"), None, get_engine("train"), 4, 4096, 1,
                                     int(e.gpu_bytes), details=True)
    acts = [c["activation_bytes"] for c in exact["stages"]]
    assert acts[0] == max(acts) and e.activation_bytes == float(acts[0])


def test_inverse_questions_take_the_smallest_stage() -> None:
    spec = vramcore.get_model("Llama-3.1-8B").spec
    for engine in ("transformers", "vllm", "llamacpp"):
        n = int(vramcore.max_context(spec, "bf16", 8, "L4", engine=engine, pp=2, tp=1, n_gpus=2).values.item())
        assert 0 < n < (spec.max_context or 2**53)
        at, above = (vramcore.estimate(spec, context=c, batch=8, engine=engine, pp=2, tp=1, n_gpus=2, gpu="L4")
                     for c in (n, n + 1))
        assert at.fits and not above.fits, engine
