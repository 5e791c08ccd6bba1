"""Multimodal models: vision towers and projectors counted, images costing context.

Parameter counts by part and the image tokens of each processor are held to
``tests/data/transformers_measured.json`` (``tools/measure_transformers.py``:
the whole ``*ForConditionalGeneration`` model built on the meta device, and the
family's image processor run on blank images).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import vramcore
from vramcore.grid.reference import reference_estimate
from vramcore.model.tensors import list_tensors, sum_by_part
from vramcore.model.vision import VisionSpec, VisionTensor

DATA = Path(__file__).parent / "data"
MEASURED: dict[str, Any] = json.loads((DATA / "transformers_measured.json").read_text())["models"]
CONFIGS = {d["name"]: d["config"]
           for d in (json.loads(p.read_text()) for p in sorted((DATA / "hf_configs").glob("*.json")))}
MULTIMODAL_CARDS = ["Gemma-3-4B", "Gemma-3-12B", "Gemma-3-27B"]


def _spec(name: str) -> vramcore.ModelSpec:
    if name in CONFIGS:
        return vramcore.ModelSpec.from_hf_config(CONFIGS[name], name=name)
    return vramcore.get_model(name).spec


@pytest.mark.parametrize("name", MULTIMODAL_CARDS + ["Qwen2.5-VL-7B-Instruct", "Mistral-Small-3.1-24B-geometry",
                                  "Qwen3.5-defaults", "Qwen3.5-MoE-defaults", "Llama-4-Scout-17B-16E-geometry",
                                  "Qwen3-VL-defaults", "Qwen3-VL-MoE-defaults"])
def test_towers_counted_as_transformers_builds_them(name: str) -> None:
    spec, m = _spec(name), MEASURED[name]
    by = m["params"]["by_category"]
    assert spec.vision is not None
    assert spec.param_breakdown()["vision_tower"] == by["vision_tower"]
    assert spec.param_breakdown()["multimodal_projector"] == by["multimodal_projector"]
    assert spec.param_count == m["params"]["total"]
    assert spec.text_only.param_count == m["params"]["total"] - by["vision_tower"] - by["multimodal_projector"]
    text = spec.text_only
    assert text.vision is None and text.text_only is text


def test_gemma3_27b_weights_include_the_tower() -> None:
    # the card: 27,432,406,640 parameters as Gemma3ForConditionalGeneration, 51.1 GiB in bf16
    e = vramcore.estimate("Gemma-3-27B", context=4096)
    assert e.weights_by_part["vision_tower"] == 2 * MEASURED["Gemma-3-27B"]["params"]["by_category"]["vision_tower"]
    assert round(e.weights_bytes / 2**30, 1) == 51.1
    text = vramcore.estimate(vramcore.get_model("Gemma-3-27B").spec.text_only, context=4096)
    assert e.weights_bytes - text.weights_bytes == 2 * (e.weights_by_part["vision_tower"] // 2
                                                        + e.weights_by_part["multimodal_projector"] // 2)
    assert e.kv_cache_bytes == text.kv_cache_bytes


@pytest.mark.parametrize("name", ["Qwen2.5-VL-7B-Instruct", "Mistral-Small-3.1-24B-geometry", "Qwen3.5-defaults",
                                  "Qwen3.5-MoE-defaults", "Llama-4-Scout-17B-16E-geometry", "Qwen3-VL-defaults"])
def test_image_tokens_match_the_processor(name: str) -> None:
    vision = _spec(name).vision
    assert vision is not None
    for size, tokens in MEASURED[name]["image_tokens"].items():
        w, h = map(int, size.split("x"))
        assert vision.image_tokens(w, h) - vision.marker_tokens == tokens, size


def test_gemma3_image_is_a_fixed_256_soft_tokens() -> None:
    # Gemma3Processor: boi + mm_tokens_per_image (256) image tokens + eoi, whatever the image size
    vision = vramcore.get_model("Gemma-3-4B").spec.vision
    assert vision is not None
    assert {vision.image_tokens(w, h) for w, h in [(896, 896), (100, 3000), (4000, 4000)]} == {258}


def test_images_add_their_tokens_to_the_context() -> None:
    e0 = vramcore.estimate("Gemma-3-27B", context=8192, batch=2)
    e = vramcore.estimate("Gemma-3-27B", context=8192, batch=2, images=3)
    assert e.context == 8192 + 3 * 258
    assert e.kv_cache_bytes > e0.kv_cache_bytes
    assert e.kv_cache_bytes == vramcore.estimate("Gemma-3-27B", context=8192 + 774, batch=2).kv_cache_bytes
    qwen = _spec("Qwen2.5-VL-7B-Instruct")
    assert vramcore.estimate(qwen, context=100, images=2, image_size=(640, 480)).context == 100 + 2 * (391 + 2)


def test_images_with_a_config_path_read_the_file_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import vramcore.model.hf as hf

    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIGS["Qwen2.5-VL-7B-Instruct"]))
    reads: list[object] = []
    real = hf.load_hf_config
    monkeypatch.setattr(hf, "load_hf_config", lambda p, *a, **k: reads.append(p) or real(p, *a, **k))
    e = vramcore.estimate(str(path), context=100, images=2, image_size=(640, 480), engine="vllm", gpu="L4")
    assert len(reads) == 1
    assert e.context == 100 + 2 * (391 + 2)
    same = vramcore.estimate(_spec("Qwen2.5-VL-7B-Instruct"), context=e.context, engine="vllm", gpu="L4")
    assert (e.weights_bytes, e.kv_cache_bytes, e.activation_bytes, e.total_bytes) == \
        (same.weights_bytes, same.kv_cache_bytes, same.activation_bytes, same.total_bytes)


def test_images_need_a_vision_tower_and_sane_sizes() -> None:
    with pytest.raises(ValueError, match="no vision tower"):
        vramcore.estimate("Qwen3-8B", context=100, images=1)
    with pytest.raises(ValueError, match="image width"):
        vramcore.estimate("Gemma-3-4B", context=100, images=1, image_size=(0, 10))
    with pytest.raises(ValueError, match="image_size"):
        vramcore.estimate("Gemma-3-4B", context=100, images=1, image_size=(10,))
    with pytest.raises(ValueError, match="images"):
        vramcore.estimate("Gemma-3-4B", context=100, images=10**9)
    with pytest.raises(ValueError, match="aspect ratio"):
        _spec("Qwen2.5-VL-7B-Instruct").vision.image_tokens(10_000, 10)  # type: ignore[union-attr]


@pytest.mark.parametrize("engine,tp,pp", [("transformers", 1, 1), ("vllm", 2, 1), ("vllm", 1, 2), ("llamacpp", 1, 1),
                                          ("sglang", 2, 1)])
def test_kernel_and_oracle_place_the_towers_alike(engine: str, tp: int, pp: int) -> None:
    spec = vramcore.get_model("Gemma-3-12B").spec
    e = vramcore.estimate(spec, context=4096, engine=engine, tp=tp, pp=pp, n_gpus=tp * pp, gpu="H100")
    r = reference_estimate(spec, vramcore.get_dtype("bf16"), None, vramcore.get_engine(engine), tp * pp, 4096, 1,
                           int(e.gpu_bytes), tp=tp, pp=pp)
    assert e.weights_bytes == pytest.approx(float(r["weights_bytes"]), abs=1)
    text = vramcore.estimate(spec.text_only, context=4096, engine=engine, tp=tp, pp=pp, n_gpus=tp * pp, gpu="H100")
    towers = 2 * (spec.vision.tower_params + spec.vision.projector_params)  # type: ignore[union-attr]
    # split over TP like the matrices; on the first pipeline stage, which then outweighs the last
    assert e.weights_bytes - text.weights_bytes == pytest.approx(towers / tp, abs=1) or pp > 1
    assert e.weights_bytes >= text.weights_bytes


def test_quantized_formats_keep_the_towers_in_16_bits() -> None:
    spec = vramcore.get_model("Gemma-3-4B").spec
    parts = vramcore.get_dtype("int4").weight_bytes_by_part(spec)
    assert parts["vision_tower"] == 2 * spec.vision.tower_params  # type: ignore[union-attr]
    tensors = vramcore.list_tensors(spec)
    assert sum(t.numel for t in tensors if t.part == "vision_tower") == spec.vision.tower_params  # type: ignore[union-attr]
    assert {t.part for t in tensors} >= {"vision_tower", "multimodal_projector"}


def test_cli_images(capsys: pytest.CaptureFixture[str]) -> None:
    from vramcore.cli import main

    assert main(["estimate", "Gemma-3-4B", "--context", "1000", "--images", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["context"] == 1000 + 2 * 258
    assert main(["estimate", "Qwen3-8B", "--images", "1"]) == 2
    assert "no vision tower" in capsys.readouterr().err
    assert main(["estimate", "Gemma-3-4B", "--images", "1", "--image-size", "12"]) == 2


def test_vision_spec_by_hand_and_its_checks() -> None:
    v = VisionSpec.vit(num_layers=2, hidden_size=64, intermediate_size=128, num_heads=4, patch_size=14,
                       image_size=224, text_hidden_size=256)
    # patch conv 64*3*14*14 + bias, 256 positions, per layer 2 LayerNorms + q/k/v/o + fc1/fc2 with biases, final LN
    per_layer = 2 * 2 * 64 + 4 * (64 * 64 + 64) + (128 * 64 + 128) + (64 * 128 + 64)
    assert v.tower_params == 64 * 3 * 14 * 14 + 64 + 256 * 64 + 2 * per_layer + 2 * 64
    spec = vramcore.ModelSpec(num_layers=2, hidden_size=256, num_heads=4, intermediate_size=512, vocab_size=100,
                              vision=v)
    assert spec.param_count == spec.text_only.param_count + v.tower_params + v.projector_params
    with pytest.raises(TypeError, match="vision"):
        vramcore.ModelSpec(num_layers=2, hidden_size=256, num_heads=4, intermediate_size=512, vocab_size=100,
                           vision="siglip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="token_rule"):
        VisionSpec(kind="x", tensors=(), hidden_size=1, num_layers=1, num_heads=1, intermediate_size=1,
                   patch_size=1, image_size=1, token_rule="nope")
    with pytest.raises(TypeError, match="VisionTensor"):
        VisionSpec(kind="x", tensors=("w",), hidden_size=1, num_layers=1, num_heads=1,  # type: ignore[arg-type]
                   intermediate_size=1, patch_size=1, image_size=1, token_rule="fixed", tokens_per_image=1)
    assert VisionTensor("a", (2, 3), False, "linear").numel == 6


@pytest.mark.parametrize("mutate,match", [
    (lambda c: c["vision_config"].update(num_hidden_layers=10**6), "vision_config.num_hidden_layers"),
    (lambda c: c["vision_config"].update(hidden_size=-3), "vision_config.hidden_size"),
    (lambda c: c["vision_config"].update(vision_use_head=True), "vision_use_head"),
    (lambda c: c.update(vision_config=[1]), "vision_config"),
    (lambda c: c.update(mm_tokens_per_image=0), "mm_tokens_per_image"),
])
def test_bad_vision_configs_are_refused_by_name(mutate: Any, match: str) -> None:
    cfg = json.loads(json.dumps(vramcore.get_model("Gemma-3-4B").config))
    mutate(cfg)
    with pytest.raises(ValueError, match=match):
        vramcore.ModelSpec.from_hf_config(cfg)


def test_qwen_vl_merger_must_feed_the_decoder_width() -> None:
    cfg = json.loads(json.dumps(CONFIGS["Qwen2.5-VL-7B-Instruct"]))
    cfg["vision_config"]["out_hidden_size"] = 1000
    with pytest.raises(ValueError, match="out_hidden_size"):
        vramcore.ModelSpec.from_hf_config(cfg)


def test_llama4_chunked_layers_cache_like_a_window_of_the_chunk() -> None:
    # transformers caches chunked_attention layers with DynamicSlidingWindowLayer (window = attention_chunk_size);
    # measured: 36 chunked layers keep 8191 tokens, the 12 NoPE layers every token
    spec = _spec("Llama-4-Scout-17B-16E-geometry")
    assert spec.layer_types.count("chunked_attention") == 36 and spec.n_full_layers == 12
    assert spec.sliding_window == 8192 and spec.n_sliding_layers == 36
    per_token = 2 * 8 * 128 * 2
    for context in (4096, 8191, 100_000):
        e = vramcore.estimate(spec, context=context)
        assert e.kv_cache_bytes == per_token * (12 * context + 36 * min(context, 8191))
    assert spec.param_count == 108_641_793_536   # "109B" (Meta's model card)
    with pytest.raises(ValueError, match="no_rope_layers"):
        vramcore.ModelSpec.from_hf_config({"model_type": "llama4", "text_config": {"no_rope_layers": [1, 0]}})
    with pytest.raises(ValueError, match="moe_layers"):
        vramcore.ModelSpec.from_hf_config({"model_type": "llama4", "text_config": {"moe_layers": [48]}})


def test_a_checkpoints_tower_tensors_count_as_towers(tmp_path: Path) -> None:
    # transformers' tensor names of the multimodal families: the towers and projectors by their prefixes
    import struct

    names = {"model.vision_tower.encoder.layers.0.self_attn.q_proj.weight": "vision_tower",
             "model.visual.blocks.0.attn.qkv.weight": "vision_tower",
             "vision_model.model.layers.0.mlp.fc1.weight": "vision_tower",
             "model.visual.merger.mlp.0.weight": "multimodal_projector",
             "model.visual.deepstack_merger_list.0.linear_fc1.weight": "multimodal_projector",
             "model.multi_modal_projector.linear_1.weight": "multimodal_projector",
             "model.language_model.layers.0.self_attn.q_proj.weight": "attention"}
    header, offset = {}, 0
    for name in names:
        header[name] = {"dtype": "BF16", "shape": [4, 4], "data_offsets": [offset, offset + 32]}
        offset += 32
    raw = json.dumps(header).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    ckpt = vramcore.read_safetensors(path)
    parts = ckpt.bytes_by_part
    assert parts["vision_tower"] == 3 * 32 and parts["multimodal_projector"] == 3 * 32 and parts["attention"] == 32


def test_vllm_profiles_the_encoder_on_its_largest_images() -> None:
    # vLLM's profile_run feeds the encoder the largest image, as many as the encoder budget holds
    # (max(max_num_batched_tokens, one image's embeddings)) and max_num_seqs x the images per max_model_len prompt
    # allow, and keeps their embeddings while the decoder's dummy pass runs (helpers' reading of
    # vllm/v1/worker/gpu_model_runner.py profile_run and vllm/multimodal/budget.py)
    qwen = _spec("Qwen2.5-VL-7B-Instruct")
    v = qwen.vision
    assert v is not None
    assert v.largest_image == (3584, 3584) and v.max_item_features == 16384 and v.max_item_patches == 65536
    engine = vramcore.get_engine("vllm", max_model_len=2048, max_num_batched_tokens=2048)
    text = vramcore.get_engine("vllm", max_model_len=2048, max_num_batched_tokens=2048, limit_mm_per_prompt=0)
    e, t = (vramcore.estimate(qwen, context=2048, engine=x, gpu="L4") for x in (engine, text))
    # one image of 65,536 patches at the peak of vLLM 0.9.0.1's Qwen2_5_VisionAttention (the rotary step), above
    # the decoder's 2048 tokens, and the profile's workspace (cuBLAS).  Per patch (H 1280, d 80, pixels 2 x 3 x
    # 14 x 14): bf16 -- the pixels twice, the residual, norm1's output, qkv, the contiguous q / k / v, the rotated
    # query; fp32 -- the rotary angles (d / 2), cos and sin (d), the query's fp32 copy and the kernel's output
    h, d, pixels = 1280, 80, 3 * 2 * 14 * 14
    per_patch = 2 * (2 * pixels + h + h + 3 * h + 3 * h + h) + 4 * (d // 2 + d + 2 * h)
    assert per_patch == 38464
    assert e.activation_bytes == 65536 * per_patch + engine.profile_workspace_bytes
    # the MLP's phase (residual, norm2's and down_proj's outputs, gate, up and their product) is the smaller
    assert 2 * (2 * pixels + 3 * h + 3 * 3420) + 4 * (d // 2) < per_patch
    # text-only mode builds no tower and profiles no encoder: more cache
    assert e.weights_bytes - t.weights_bytes == 2 * (v.tower_params + v.projector_params)
    assert t.activation_bytes < e.activation_bytes and t.kv_cache_bytes > e.kv_cache_bytes
    # Gemma-3 images are 256 embeddings: a budget of 8192 tokens feeds 32 of them at once
    gemma = vramcore.get_model("Gemma-3-27B").spec
    g = vramcore.estimate(gemma, context=4096, engine=vramcore.get_engine("vllm", max_num_batched_tokens=8192),
                          gpu="H200")
    assert g.activation_bytes >= 32 * 4096 * (2 * 1152 + 2 * 4304) * 2


def _vllm_0_9_0_1(**options: Any) -> vramcore.EngineSpec:
    # vLLM 0.9.0.1's budget (vllm/v1/worker/gpu_worker.py, determine_available_memory): total x utilization -
    # torch's peak allocation - (device memory in use - torch's allocation) after the profile; the CUDA context
    # is created before and falls in the second term (later versions take an init snapshot and leave it out), so
    # the engine's non-torch memory here is its non-torch figure plus its CUDA-context figure.  The log's
    # sampler: "Using FlashInfer for top-p & top-k sampling"
    base = vramcore.get_engine("vllm")
    return base.with_options(non_torch_bytes=base.non_torch_bytes + base.cuda_context_bytes, sampler="flashinfer",
                             **options)


def test_vllm_qwen2_5_vl_l4_log() -> None:
    # github.com/tsailiming/openshift-ai-bootstrap README.md: vLLM 0.9.0.1, Qwen2.5-VL-7B-Instruct bf16 on an L4
    # (23034 MiB), gpu_memory_utilization 0.9, --max-model-len 2048, max_num_batched_tokens 2048:
    # "Model loading took 15.6271 GiB", "encoder cache ... 16384 tokens, 1 image", "Available KV cache memory:
    # 1.81 GiB", "GPU KV cache size: 33,824 tokens".  The encoder's peak (one 3584 x 3584 image, 65,536 patches)
    # is the profile's: VisionSpec.vllm_encoder_phases, 2.35 GiB
    engine = _vllm_0_9_0_1(max_model_len=2048, max_num_batched_tokens=2048)
    e = vramcore.estimate(_spec("Qwen2.5-VL-7B-Instruct"), context=2048, engine=engine, gpu="L4")
    assert e.kv_cache_bytes / 2**30 == pytest.approx(1.81, rel=0.05)
    assert e.kv_capacity_tokens == pytest.approx(33824, rel=0.05)
    # the generic rule (2 x hidden + 3 x intermediate a patch) would leave 0.8 GiB more
    generic = 65536 * (2 * 1280 + 3 * 3420) * 2
    assert e.activation_bytes - generic > 0.75 * 2**30


def test_vllm_qwen2_5_vl_l4_tp2_log() -> None:
    # the same README, the same model on 2 L4s: --max-model-len 8192 --tensor-parallel-size 2, "Available KV cache
    # memory: 10.04 GiB" on each rank, "GPU KV cache size: 375,968 tokens"; non-torch memory adds NCCL's
    engine = _vllm_0_9_0_1(max_model_len=8192, max_num_batched_tokens=2048)
    e = vramcore.estimate(_spec("Qwen2.5-VL-7B-Instruct"), context=8192, engine=engine, gpu="L4", tp=2, n_gpus=2)
    assert e.kv_cache_bytes / 2**30 == pytest.approx(10.04, rel=0.05)
    assert e.kv_capacity_tokens == pytest.approx(375968, rel=0.05)


def test_encoder_peak_measured_on_transformers_is_one_block_per_patch() -> None:
    # tools/measure_encoder_peak.py: transformers' Qwen2_5_VisionTransformerPretrainedModel (the 7B's vision
    # geometry, bf16, CPU), live tensor bytes beyond inputs and weights.  The peak does not grow with the blocks
    # and grows linearly in the patches: bytes per patch of the largest image, as vramcore counts them
    data = json.loads((Path(__file__).parent / "data" / "encoder_peak_measured.json").read_text())
    runs = {(r["depth"], r["patches"]): r for r in data["qwen2_5_vl"]}
    for patches in (1024, 4096):
        assert runs[(2, patches)]["peak_bytes"] == runs[(4, patches)]["peak_bytes"]
    small, large = runs[(2, 1024)]["peak_bytes"], runs[(2, 4096)]["peak_bytes"]
    # transformers' code read tensor by tensor (modeling_qwen2_5_vl.py): at the key's rotary products
    # (apply_rotary_pos_emb_vision) the residual, norm1's output and qkv in bf16 (5 x 1280 x 2 B), cos and sin
    # in fp32 (2 x 80 x 4 B), and in fp32 q and k, the rotated query, k x cos, rotate_half(k) and its product with
    # sin (6 x 1280 x 4 B); the vision position ids (2 x int64) and the window index (int64 per 4 patches)
    h, d = 1280, 80
    per_patch = 5 * h * 2 + 2 * d * 4 + 6 * h * 4 + 2 * 8 + 8 // 4
    assert (large - small) / (4096 - 1024) == pytest.approx(per_patch, abs=1)
    assert runs[(2, 1024)]["peak_op"] == "mul"
    assert abs(small - 1024 * per_patch) < 1024  # a few hundred bytes that do not grow with the image


# ---------------------------------------------------------------------- Llama-3.2-Vision (mllama)
MLLAMA = "Llama-3.2-11B-Vision-Instruct"
MLLAMA_MEASURED = MEASURED[MLLAMA]


def test_llama_3_2_vision_is_read_whole_by_part() -> None:
    # MllamaForConditionalGeneration on the meta device (tools/measure_transformers.py): tower, projector and the
    # decoder with its 8 cross-attention layers, to the parameter
    spec = vramcore.get_model(MLLAMA).spec
    m = MLLAMA_MEASURED["params"]
    assert "mllama" in vramcore.SUPPORTED_MODEL_TYPES and "mllama_text_model" in vramcore.SUPPORTED_MODEL_TYPES
    assert spec.param_count == m["total"]
    parts = spec.param_breakdown()
    assert parts["vision_tower"] == m["by_category"]["vision_tower"]
    assert parts["multimodal_projector"] == m["by_category"]["multimodal_projector"]
    assert parts["embedding"] == m["by_category"]["embedding"] == (128256 + 8) * 4096  # vocab + 8 rows
    assert parts["lm_head"] == m["by_category"]["lm_head"] == 128256 * 4096
    assert spec.layer_types.count("cross_attention") == 8 and spec.kv_layers == 32
    assert [i for i, k in enumerate(spec.layer_types) if k == "cross_attention"] == [3, 8, 13, 18, 23, 28, 33, 38]
    # the tensors listed add up to the same parts (quantized formats and training count per tensor)
    listed: dict[str, int] = {}
    for t in list_tensors(spec):
        listed[t.part] = listed.get(t.part, 0) + t.numel
    assert sum_by_part(listed) == parts


def test_llama_3_2_vision_cross_attention_cache_is_per_image_not_per_token() -> None:
    spec = vramcore.get_model(MLLAMA).spec
    kv = MLLAMA_MEASURED["kv_cache"]
    cross = kv["cross_kinds"]["cross_attention"]
    per_token = kv["bytes_per_token_uncapped"]  # the 32 self-attention layers
    assert cross["tokens_per_image"] == spec.vision.cross_tokens_per_image == 4 * (40 * 40 + 1)
    # text only: the cross-attention layers are skipped and cache nothing
    assert vramcore.estimate(MLLAMA, context=4096).kv_cache_bytes == 4096 * per_token
    for images, batch in ((1, 1), (3, 2)):
        e = vramcore.estimate(MLLAMA, context=4096, batch=batch, images=images, image_size=(640, 480))
        assert e.context == 4096 + images  # one <|image|> token each
        assert e.kv_cache_bytes == batch * ((4096 + images) * per_token
                                            + images * cross["layers"] * cross["bytes_per_image_per_layer"])
    # the padded tiles are cached whatever the canvas the image fills
    small = vramcore.estimate(MLLAMA, context=64, images=1, image_size=(100, 50))
    large = vramcore.estimate(MLLAMA, context=64, images=1, image_size=(3000, 2000))
    assert small.kv_cache_bytes == large.kv_cache_bytes


def test_llama_3_2_vision_tiles_follow_the_image_processor() -> None:
    vision = vramcore.get_model(MLLAMA).spec.vision
    for size, tiles in MLLAMA_MEASURED["image_tiles"].items():
        w, h = map(int, size.split("x"))
        assert vision.image_tiles(w, h) == tiles
        assert MLLAMA_MEASURED["image_tiles_padded"][size] == vision.max_tiles  # what the cache holds


def test_llama_3_2_vision_under_other_engines_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"V0 engine only, until v0\.10\.2"):
        vramcore.estimate(MLLAMA, context=1024, engine="vllm", gpu="H100")
    for engine in ("sglang", "trtllm", "llamacpp"):
        with pytest.raises(ValueError, match=f"cross-attention layers.*{engine}.*not modelled yet"):
            vramcore.estimate(MLLAMA, context=1024, engine=engine, gpu="H100")
    with pytest.raises(ValueError, match="training step saves in its 8 cross-attention layers"):
        vramcore.estimate(MLLAMA, context=1024, engine=vramcore.get_engine("train", method="lora"), gpu="H100")


@pytest.mark.parametrize("change,match", [
    ({"text_config": {"cross_attention_layers": [3, 40]}}, r"'cross_attention_layers' holds layer indices outside "
                                                            r"\[0, 40\).*\[40\]"),
    ({"text_config": {"cross_attention_layers": [3, 3]}}, "'cross_attention_layers' must hold distinct"),
    ({"text_config": {"cross_attention_layers": "3"}}, "'cross_attention_layers' must be a list of integers"),
    ({"text_config": {"tie_word_embeddings": True}}, "'tie_word_embeddings' is true"),
    ({"vision_config": {"max_num_tiles": 2000}}, r"'vision_config.max_num_tiles' must be <= 1024, got 2000"),
    ({"vision_config": {"num_global_layers": -1}}, r"'vision_config.num_global_layers' must be >= 1"),
    ({"vision_config": {"vision_output_dim": 1280}}, r"'vision_config.vision_output_dim' \(1280\)"),
    ({"vision_config": {"supported_aspect_ratios": [[1]]}}, "'vision_config.supported_aspect_ratios' must be"),
    ({"text_config": {"num_hidden_layers": 10**9}}, "'num_hidden_layers' must be <= 4096"),
])
def test_llama_3_2_vision_bad_configs_name_the_field(change: dict[str, Any], match: str, tmp_path: Path) -> None:
    cfg = json.loads(json.dumps(vramcore.get_model(MLLAMA).config))
    for key, sub in change.items():
        cfg[key].update(sub)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=match):
        vramcore.ModelSpec.from_hf_config(path)


def test_cross_attention_spec_checks() -> None:
    spec = vramcore.get_model(MLLAMA).spec
    with pytest.raises(ValueError, match="cross_attention_tokens is 5 but layer_types has no cross_attention"):
        spec.text_only.replace(layer_types=None, cross_attention_tokens=5)
    with pytest.raises(ValueError, match=r"embedding_rows \(10\) must equal vocab_size"):
        vramcore.ModelSpec(num_layers=1, hidden_size=8, num_heads=2, intermediate_size=8, vocab_size=12,
                           tie_embeddings=True, embedding_rows=10)
    with pytest.raises(ValueError, match="cross_attention_tokens must be <="):
        spec.replace(cross_attention_tokens=2**41)


@pytest.mark.parametrize("args,error,match", [
    (("v.blk.0.attn_q.weight", (0, 8), False, "linear"), ValueError, "shape dims must be >= 1"),
    (("v.blk.0.attn_q.weight", (8, 8), 1, "linear"), TypeError, "projector must be a bool"),
    (("v.blk.0.attn_q.weight", (8, 8), False, "conv"), ValueError, "role must be one of"),
    (("v.patch_embd.weight", (8, 3, 2, 14, 14, 1), False, "patch"), ValueError, "1 to 5 dims"),
])
def test_hand_written_vision_tensors_are_checked(args: tuple[Any, ...], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        VisionTensor(*args)
    assert VisionTensor("v.patch_embd.weight", (8, 3, 2, 14, 14), False, "patch").numel == 8 * 3 * 2 * 14 * 14


def test_a_tiled_canvas_is_bounded() -> None:
    # the canvas search tries every a x b <= max_tiles: a hand-written 10**9 would hang image_tokens
    import dataclasses

    vision = _spec("Llama-4-Scout-17B-16E-geometry").vision
    assert vision is not None and vision.max_tiles == 16
    with pytest.raises(ValueError, match=r"VisionSpec.max_tiles must be in \[1, 1024\], got 1000000000"):
        dataclasses.replace(vision, max_tiles=10**9)
    wide = dataclasses.replace(vision, max_tiles=1024)
    assert wide.image_tokens(336 * 1024, 336) > vision.image_tokens(336 * 1024, 336)


# ---------------------------------------------------------------------- transformers: the vision tower's prefill
def _qwen_request_runs() -> list[dict[str, Any]]:
    data = json.loads((DATA / "encoder_peak_measured.json").read_text())
    return data["qwen2_5_vl_request"]


@pytest.mark.parametrize("run", _qwen_request_runs(), ids=lambda r: f"b{r['batch']}-n{r['images']}-{r['patches']}")
def test_transformers_encoder_phases_match_the_measured_prefill(run: dict[str, Any]) -> None:
    # tools/measure_encoder_peak.py, qwen2_5_vl_request: Qwen2_5_VLForConditionalGeneration's prefill on the CPU
    # (the 7B's tower with 2 blocks, a one-layer decoder of the 7B's width), float32 pixels as the processor
    # makes them.  The caller's pixels are an input there (not tracked): the rule's fp32 x per patch is left out
    v = _spec("Qwen2.5-VL-7B-Instruct").vision
    assert v is not None and v.transformers_encoder_phases is not None
    (act, f32, fixed), (held_act, held_f32, held_feature) = v.transformers_encoder_phases
    x, text_hidden = v.patch_elems, v.out_hidden_size
    assert run["pixel_width"] == x and text_hidden == 3584
    # one tower call for every image of the batch
    assert run["tower_calls"] == 1
    patches, features, embeds = run["patches"], run["features"], run["batch"] * run["tokens"] * text_hidden * 2
    # at the tower's start: the prompt's inputs_embeds and the pixels' bf16 copy (get_image_features)
    assert run["live_at_tower"] == embeds + patches * x * 2
    # the tower's own peak, one block's, linear in the patches of all images (a few hundred bytes of window
    # lengths that do not grow with them)
    own = patches * (2 * (act - x) + 4 * (f32 - x) + fixed)
    assert 0 <= run["tower_peak"] - own < 1024
    # what the decoder starts with: the merged inputs_embeds, the tower's last hidden state and the embeddings
    # twice (pooler_output, its torch.cat copy); the image / video masks are one bool per token each
    held = patches * held_act * 2 + features * held_feature * 2
    assert held_f32 == x
    assert 0 <= run["live_at_decoder"] - (embeds + held) <= 2 * run["batch"] * run["tokens"]


@pytest.mark.parametrize(("images", "size", "batch", "dtype"), [(1, (1024, 1024), 2, "bf16"),
                                                                 (4, (1792, 1792), 2, "bf16"),
                                                                 (2, (448, 448), 1, "fp32"),
                                                                 (3, (1280, 720), 4, "int4")])
def test_transformers_activations_take_the_larger_phase(images: int, size: tuple[int, int], batch: int,
                                                       dtype: str) -> None:
    # the decoder's phase is the same request's text figure at the total context, plus what the tower leaves held;
    # the encoder's is the tower's peak over all batch x images images beside the prompt's embeddings
    spec = _spec("Qwen2.5-VL-7B-Instruct")
    v = spec.vision
    assert v is not None and v.transformers_encoder_phases is not None
    e = vramcore.estimate(spec, context=4096, images=images, image_size=size, batch=batch, dtype=dtype, gpu="H200")
    text = vramcore.estimate(spec, context=e.context, batch=batch, dtype=dtype, gpu="H200")
    ab = 4 if dtype == "fp32" else 2
    patches = images * v.image_patches(*size)
    assert patches == images * (v.image_tokens(*size) - 2) * 4
    (act, f32, fixed), (held_act, held_f32, held_feature) = v.transformers_encoder_phases
    encoder = batch * (patches * (act * ab + f32 * 4 + fixed) + e.context * spec.hidden_size * ab)
    held = batch * (patches * (held_act * ab + held_f32 * 4) + patches // 4 * held_feature * ab)
    assert e.activation_bytes == max(text.activation_bytes + held, encoder)
    assert e.weights_bytes == text.weights_bytes and e.kv_cache_bytes == text.kv_cache_bytes
    reference = vramcore.grid.reference.reference_estimate(
        spec.replace(image_patches=patches, image_features=patches // 4), vramcore.get_dtype(dtype), None,
        vramcore.get_engine("transformers"), 1, e.context, batch, vramcore.get_gpu("H200").usable_bytes)
    assert reference["activation_bytes"] == e.activation_bytes and reference["total_bytes"] == e.total_bytes


def test_transformers_encoder_phase_only_with_images_and_on_the_first_stage() -> None:
    spec = _spec("Qwen2.5-VL-7B-Instruct")
    # a text-only request is unchanged, and so is vLLM's profile (its own encoder rule)
    assert vramcore.estimate(spec, context=8192, images=0).activation_bytes == \
        vramcore.estimate(spec, context=8192).activation_bytes
    with_images = spec.replace(image_patches=4 * 16384, image_features=4 * 4096)
    vllm = vramcore.get_engine("vllm")
    assert vramcore.estimate(with_images, context=8192, engine=vllm, gpu="H100").activation_bytes == \
        vramcore.estimate(spec, context=8192, engine=vllm, gpu="H100").activation_bytes
    # two pipeline stages: the tower's stage (the first) holds the encoder's peak, the second does not
    one = vramcore.estimate(with_images, context=8192, n_gpus=2)
    assert one.activation_bytes > vramcore.estimate(spec, context=8192, n_gpus=2).activation_bytes
    assert with_images.text_only.image_patches == 0
    with pytest.raises(ValueError, match="need a vision tower"):
        vramcore.ModelSpec(num_layers=1, hidden_size=8, num_heads=1, intermediate_size=8, vocab_size=8,
                           image_patches=4)
    # the largest context at 4 images of 1792 px is found under the larger phase (no closed form there)
    for batch, gpu in ((1, "L4"), (8, "H200"), (32, "H200")):
        m = int(vramcore.max_context(with_images, "bf16", batch, gpu).values.item())
        assert m > 0 and vramcore.estimate(with_images, context=m, batch=batch, gpu=gpu).fits
        assert not vramcore.estimate(with_images, context=m + 1, batch=batch, gpu=gpu).fits
        b = int(vramcore.max_batch(with_images, "bf16", m, gpu).values.item())
        assert b >= batch and not vramcore.estimate(with_images, context=m, batch=b + 1, gpu=gpu).fits


def _request_runs(key: str) -> list[dict[str, Any]]:
    return list(json.loads((DATA / "encoder_peak_measured.json").read_text())[key])


def _check_prefill_run(name: str, run: dict[str, Any], width: int | None = None,
                       height: int | None = None) -> tuple[Any, int]:
    """Check what every measured prefill shares; return the phases and the tower's own peak without pixels.

    One tower call for every image of the batch, its patches and embeddings as the spec counts them, the
    prompt's ``inputs_embeds`` live when it starts, and through the decoder what the tower leaves held
    (the caller's pixels are an input there, not tracked: the rule's x per patch is left out) beside the
    image mask's bools.
    """
    spec = _spec(name)
    assert spec.vision is not None and spec.vision.num_layers > 3
    v = dataclasses.replace(spec.vision, num_layers=run["layers"])
    phases = v.transformers_encoder_phases
    assert phases is not None
    (act, f32, fixed), (held_act, held_f32, held_feature) = phases
    x, text_hidden, n = v.patch_elems, v.out_hidden_size, run["batch"] * run["images"]
    assert (x, text_hidden, f32, held_f32) == (588, spec.hidden_size, 0, 0)
    assert run["tower_calls"] == 1
    assert run["patches"] == n * v.image_patches(width, height)
    assert run["features"] == n * v.image_features(width, height)
    embeds = run["batch"] * run["tokens"] * text_hidden * 2
    assert run["live_at_tower"] == embeds
    held = run["patches"] * (held_act - x) * 2 + run["features"] * held_feature * 2
    assert run["live_at_decoder"] == embeds + held + run["batch"] * run["tokens"]
    return phases, run["patches"] * ((act - x) * 2 + fixed)


@pytest.mark.parametrize("run", _request_runs("gemma3_request"),
                         ids=lambda r: f"b{r['batch']}-n{r['images']}-l{r['layers']}")
def test_gemma3_tower_phases_match_the_measured_prefill(run: dict[str, Any]) -> None:
    # tools/measure_encoder_peak.py, gemma3_request: Gemma3ForConditionalGeneration's prefill on the CPU (the
    # 27B's SigLIP tower with 1-3 layers, a one-layer decoder of the 27B's width), bf16 pixels as the model card
    # moves them
    _, linear = _check_prefill_run("Gemma-3-27B", run)
    # the peak (the last block's MLP activation), to the byte: linear in the patches, flat from two layers on
    assert run["tower_peak"] == linear and run["tower_peak_op"] == "gelu"


def test_gemma3_images_take_the_larger_phase() -> None:
    spec = _spec("Gemma-3-27B")
    v = spec.vision
    assert v is not None and v.transformers_encoder_phases is not None
    (act, _, _), (held_act, _, held_feature) = v.transformers_encoder_phases
    for images, batch in ((1, 1), (8, 2), (64, 4)):
        e = vramcore.estimate(spec, context=2048, images=images, batch=batch, gpu="H200")
        text = vramcore.estimate(spec, context=e.context, batch=batch, gpu="H200")
        assert e.context == 2048 + images * 258                 # 256 embeddings and two markers per image
        encoder = batch * (images * 4096 * act * 2 + e.context * spec.hidden_size * 2)
        held = batch * images * (4096 * held_act * 2 + 256 * held_feature * 2)
        assert e.activation_bytes == max(text.activation_bytes + held, encoder)
    # many images: the tower's peak is the larger phase (13,804 elements a patch in bf16, 108 MiB an image)
    assert encoder > text.activation_bytes + held


@pytest.mark.parametrize("run", _request_runs("mistral3_request"),
                         ids=lambda r: f"b{r['batch']}-n{r['images']}-{r['width']}x{r['height']}-l{r['layers']}")
def test_pixtral_tower_phases_match_the_measured_prefill(run: dict[str, Any]) -> None:
    # tools/measure_encoder_peak.py, mistral3_request: Mistral3ForConditionalGeneration's prefill on the CPU
    # (Mistral-Small-3.1-24B's Pixtral tower with 1-3 layers, a one-layer decoder of its width), sdpa, bf16 pixels
    w, h = run["width"], run["height"]
    _, linear = _check_prefill_run("Mistral-Small-3.1-24B-geometry", run, w, h)
    v = _spec("Mistral-Small-3.1-24B-geometry").vision
    assert v is not None and v.transformers_encoder_pairs == 1
    assert v.image_tokens(w, h) == (h // 28) * (w // 28 + 1)      # a break token ending each row
    # the peak, to the byte: linear in the patches (flat from two layers on), the mask quadratic in the
    # patches of the whole call, and the last image's meshgrid ranges (int64 rows and columns, left out)
    patches = run["patches"]
    assert run["tower_peak"] == linear + patches * patches * 2 + 8 * (h // 14 + w // 14)
    assert run["tower_peak_op"] == "mul"


def test_pixtral_images_cost_their_mask_over_the_whole_batch() -> None:
    spec = _spec("Mistral-Small-3.1-24B-geometry")
    v = spec.vision
    assert v is not None and v.transformers_encoder_phases is not None
    (act, _, fixed), (held_act, _, held_feature) = v.transformers_encoder_phases
    p, f = v.image_patches(1540, 1540), v.image_features(1540, 1540)
    assert (p, f, v.image_tokens(1540, 1540)) == (12100, 3025, 3080)
    for images, batch in ((1, 1), (4, 1), (2, 3), (8, 2)):
        e = vramcore.estimate(spec, context=4096, images=images, image_size=(1540, 1540), batch=batch, gpu="H200")
        text = vramcore.estimate(spec, context=e.context, batch=batch, gpu="H200")
        assert e.context == 4096 + images * 3080
        calls = batch * images * p                               # one tower call: every patch against every other
        encoder = calls * (act * 2 + fixed) + calls * calls * 2 + batch * e.context * spec.hidden_size * 2
        held = batch * images * (p * held_act * 2 + f * held_feature * 2)
        assert e.activation_bytes == max(text.activation_bytes + held, encoder)
        reference = vramcore.grid.reference.reference_estimate(
            spec.replace(image_patches=images * p, image_features=images * f), vramcore.get_dtype("bf16"), None,
            vramcore.get_engine("transformers"), 1, e.context, batch, vramcore.get_gpu("H200").usable_bytes)
        assert reference["activation_bytes"] == e.activation_bytes and reference["total_bytes"] == e.total_bytes
        assert reference["max_concurrency"] == e.max_concurrency
    # eight images of two sequences: the mask alone is (2 x 8 x 12,100)^2 x 2 B = 75.0 GB
    assert encoder > text.activation_bytes + held and calls * calls * 2 == 74_961_920_000


def test_pixtral_concurrency_and_largest_batch_under_the_quadratic_phase() -> None:
    spec = _spec("Mistral-Small-3.1-24B-geometry")
    p, f = 4 * 12100, 4 * 3025
    with_images = spec.replace(image_patches=p, image_features=f)
    for gpu in ("H100", "H200", "B200"):
        for context in (4096, 16384):
            e = vramcore.estimate(with_images, context=context, gpu=gpu)
            n = int(e.max_concurrency)
            # max_concurrency: the most sequences whose cost (the larger phase's, the mask's pairs included)
            # the memory left holds; their total fits, one more does not (here no byte of rounding decides)
            b = int(vramcore.max_batch(with_images, "bf16", context, gpu).values.item())
            assert n >= 1 and b == n
            assert vramcore.estimate(with_images, context=context, batch=n, gpu=gpu).fits
            assert not vramcore.estimate(with_images, context=context, batch=n + 1, gpu=gpu).fits
            # the decoder's line alone (no pairs) would have taken more
            linear = spec.replace(image_patches=0, image_features=0)
            assert vramcore.estimate(linear, context=context, gpu=gpu).max_concurrency > n


@pytest.mark.parametrize("run", _request_runs("qwen3_vl_request"),
                         ids=lambda r: f"b{r['batch']}-n{r['images']}-s{r['grid_thw'][1]}-l{r['depth']}"
                                       f"-d{len(r['deepstack_visual_indexes'])}")
def test_qwen3_vl_tower_phases_match_the_measured_prefill(run: dict[str, Any]) -> None:
    # tools/measure_encoder_peak.py, qwen3_vl_request: Qwen3VLForConditionalGeneration's prefill on the CPU
    # (Qwen3-VL-8B's tower with 1-4 blocks and 0-3 deepstack mergers, a one-layer decoder of its width), fp32
    # pixels as the processor returns them (an input: not tracked)
    from vramcore.model.vision import qwen3_vl

    vc = json.loads((DATA / "encoder_peak_measured.json").read_text())["qwen3_vl_vision"]
    v = qwen3_vl({**vc, "depth": run["depth"]}, deepstack=len(run["deepstack_visual_indexes"]))
    assert v.deepstack_mergers == len(run["deepstack_visual_indexes"])
    assert v.transformers_encoder_phases is not None
    _check_qwen3_vl_run(v, run, vc["out_hidden_size"])


@pytest.mark.parametrize("run", _request_runs("qwen3_5_request"),
                         ids=lambda r: f"b{r['batch']}-n{r['images']}-s{r['grid_thw'][1]}-l{r['depth']}")
def test_qwen3_5_tower_phases_match_the_measured_prefill(run: dict[str, Any]) -> None:
    # tools/measure_encoder_peak.py, qwen3_5_request: Qwen3_5ForConditionalGeneration's prefill on the CPU
    # (Qwen3.5's tower, Qwen3-VL's without deepstack, with 1-3 blocks; its hybrid decoder class, one
    # full-attention layer of the tower's output width), fp32 pixels as the processor returns them
    vc = json.loads((DATA / "encoder_peak_measured.json").read_text())["qwen3_5_vision"]
    v = _spec("Qwen3.5-defaults").vision
    assert v is not None and v.deepstack_mergers == 0
    assert {k: getattr(v, k) for k in ("hidden_size", "intermediate_size", "out_hidden_size")} == {
        "hidden_size": vc["hidden_size"], "intermediate_size": vc["intermediate_size"],
        "out_hidden_size": vc["out_hidden_size"]}
    _check_qwen3_vl_run(v, run, vc["out_hidden_size"])


def _check_qwen3_vl_run(v: Any, run: dict[str, Any], out_hidden: int) -> None:
    """Hold one Qwen3-VL / Qwen3.5 prefill run to the tower's phases (its depth does not change them)."""
    phases = v.transformers_encoder_phases
    (act, f32, fixed), (held_act, held_f32, held_feature) = phases
    x, side, n = v.patch_elems, run["grid_thw"][1] * 16, run["batch"] * run["images"]
    assert x == run["pixel_width"] == 1536 and held_f32 == x
    assert run["tower_calls"] == 1
    assert run["patches"] == n * v.image_patches(side, side) and run["features"] == n * v.image_features(side, side)
    patches, features = run["patches"], run["features"]
    embeds = run["batch"] * run["tokens"] * out_hidden * 2
    # at the tower's start: the prompt's inputs_embeds and the pixels' bf16 copy (get_image_features)
    assert run["live_at_tower"] == embeds + patches * x * 2
    # the tower's own peak, to the byte: linear in the patches, and the call's cu_seqlens (int32, one more than
    # the images)
    assert run["tower_peak"] == patches * (2 * (act - x) + 4 * (f32 - x) + fixed) + 4 * (n + 1)
    # through the decoder: the held outputs (the bf16 pixel copy freed); beside them the image / video masks
    # (a bool per token each), the 3-D positions (3 int64 per token) and rope_deltas (an int64 per sequence)
    held = patches * held_act * 2 + features * held_feature * 2
    assert run["live_at_decoder"] - (embeds + held) == run["batch"] * (26 * run["tokens"] + 8)


@pytest.mark.parametrize(("name", "deepstack"), [("Qwen3-VL-defaults", 3), ("Qwen3.5-defaults", 0),
                                                ("Qwen3.5-MoE-defaults", 0)])
def test_qwen3_vl_images_take_the_larger_phase(name: str, deepstack: int) -> None:
    spec = _spec(name)
    v = spec.vision
    assert v is not None and v.transformers_encoder_phases is not None and v.deepstack_mergers == deepstack
    (act, f32, fixed), (held_act, held_f32, held_feature) = v.transformers_encoder_phases
    p, f = v.image_patches(1024, 1024), v.image_features(1024, 1024)
    assert (p, f) == (4096, 1024)                                  # 16 px patches, merged 2 x 2
    for images, batch in ((1, 1), (4, 2), (16, 4)):
        e = vramcore.estimate(spec, context=2048, images=images, image_size=(1024, 1024), batch=batch, gpu="H200")
        text = vramcore.estimate(spec, context=e.context, batch=batch, gpu="H200")
        assert e.context == 2048 + images * (f + 2)
        encoder = batch * (images * p * (act * 2 + f32 * 4 + fixed) + e.context * spec.hidden_size * 2)
        held = batch * images * (p * (held_act * 2 + held_f32 * 4) + f * held_feature * 2)
        assert e.activation_bytes == max(text.activation_bytes + held, encoder)
        assert e.activation_bytes > text.activation_bytes         # the tower's outputs, at the least, are held


@pytest.mark.parametrize("run", _request_runs("llama4_request"),
                         ids=lambda r: f"b{r['batch']}-t{r['tiles']}-l{r['layers']}")
def test_llama4_tower_phases_match_the_measured_prefill(run: dict[str, Any]) -> None:
    # tools/measure_encoder_peak.py, llama4_request: Llama4ForConditionalGeneration's prefill on the CPU
    # (Llama-4-Scout's tower with 1-3 layers, a one-layer dense decoder of its width), bf16 pixels (an input)
    spec = _spec("Llama-4-Scout-17B-16E-geometry")
    assert spec.vision is not None and spec.vision.num_layers == 34
    v = dataclasses.replace(spec.vision, num_layers=run["layers"])
    assert v.transformers_encoder_phases is not None
    (act, f32, fixed), (held_act, held_f32, held_feature) = v.transformers_encoder_phases
    assert (held_act, held_f32, fixed) == (0, 0, 0)
    # one tower call; 336 px tiles: 577 patches (the class token's included) and 144 embeddings each
    assert run["tower_calls"] == 1 and v.image_patches(336, 336) == 577 and v.image_features(336, 336) == 144
    assert run["patches"] == run["batch"] * run["tiles"] * 577 and run["features"] == run["batch"] * run["tiles"] * 144
    embeds = run["batch"] * run["tokens"] * spec.hidden_size * 2
    assert run["live_at_tower"] == embeds
    # the peak at the last layer's fp32 rotary step, to the byte
    assert run["tower_peak"] == run["patches"] * (act * 2 + f32 * 4) and run["tower_peak_op"] == "type_as"
    # held: the adapter's and the projector's outputs per embedding, and the image mask's bools
    assert run["live_at_decoder"] == embeds + run["features"] * held_feature * 2 + run["batch"] * run["tokens"]
    # transformers 5.24.0 fails after the decoder (every mark is taken before): recorded, not hidden
    assert "image_outputs" in run["error_after_decoder"]


def test_llama4_images_run_every_tile_and_the_global_view() -> None:
    spec = _spec("Llama-4-Scout-17B-16E-geometry")
    v = spec.vision
    assert v is not None and v.transformers_encoder_phases is not None
    (act, f32, _), (_, _, held_feature) = v.transformers_encoder_phases
    assert v.image_tiles(1344, 1008) == 12 and v.image_patches(1344, 1008) == 13 * 577    # 4 x 3 and the view
    for images, batch in ((1, 1), (3, 2)):
        e = vramcore.estimate(spec, context=1024, images=images, image_size=(1344, 1008), batch=batch, gpu="B200")
        text = vramcore.estimate(spec, context=e.context, batch=batch, gpu="B200")
        assert e.context == 1024 + images * v.image_tokens(1344, 1008)
        encoder = batch * (images * 13 * 577 * (act * 2 + f32 * 4) + e.context * spec.hidden_size * 2)
        held = batch * images * 13 * 144 * held_feature * 2
        assert e.activation_bytes == max(text.activation_bytes + held, encoder)


@pytest.mark.parametrize("run", _request_runs("mllama_request"),
                         ids=lambda r: f"b{r['batch']}-n{r['images']}-l{r['layers']}-g{r['global_layers']}"
                                       f"-i{len(r['intermediate_layers'])}")
def test_mllama_tower_phases_match_the_measured_prefill(run: dict[str, Any]) -> None:
    # tools/measure_encoder_peak.py, mllama_request: MllamaForConditionalGeneration's prefill on the CPU
    # (Llama-3.2-11B-Vision's tower with 2-3 local and 1-2 global layers, a two-layer decoder of its width),
    # 4 tiles an image, bf16 pixels (an input, left out of the rule)
    from vramcore.model.vision import mllama

    card = vramcore.get_model("Llama-3.2-11B-Vision-Instruct").spec
    vc = json.loads((Path(vramcore.__file__).parent / "model" / "data" / "llama-3.2-11b-vision-instruct.json")
                    .read_text())["config"]["vision_config"]
    v = mllama({**vc, "num_hidden_layers": run["layers"], "num_global_layers": run["global_layers"],
                "vision_output_dim": vc["hidden_size"] * (1 + len(run["intermediate_layers"]))}, card.hidden_size,
               len(vc["supported_aspect_ratios"]))
    assert v.transformers_encoder_phases is not None
    (act, f32, fixed), (held_act, held_f32, held_feature) = v.transformers_encoder_phases
    assert (f32, fixed, held_act, held_f32) == (0, 0, 0, 0)
    n = run["batch"] * run["images"]
    rows, tokens = v.image_patches(), v.image_features()
    assert (rows, tokens, v.transformers_encoder_image) == (4 * 1608, 4 * 1601, 4 * 1600 * 1280)
    assert run["tower_calls"] == 1 and run["live_at_tower"] == 0     # the tower runs before the prompt's embeddings
    # the peak, to the byte: per padded row the layers' recorded outputs, the MLP and the aspect-ratio mask's row;
    # per image patch_embedding's output
    assert run["tower_peak"] == n * (rows * act + v.transformers_encoder_image) * 2 and run["tower_peak_op"] == "gelu"
    # held through the decoder: the tower's and the projector's outputs per vision token; beside them the
    # prompt's embeddings and the cross-attention masks (under one bf16 element per token and vision token)
    embeds = run["batch"] * run["tokens"] * card.hidden_size * 2
    rest = run["live_at_decoder"] - embeds - n * tokens * held_feature * 2
    assert 0 < rest < run["batch"] * run["tokens"] * run["images"] * tokens * 2


def test_mllama_images_keep_their_cross_cache_and_take_the_larger_phase() -> None:
    spec = vramcore.get_model("Llama-3.2-11B-Vision-Instruct").spec
    v = spec.vision
    assert v is not None and v.transformers_encoder_phases is not None
    (act, _, _), (_, _, held_feature) = v.transformers_encoder_phases
    rows = v.image_patches()
    for images, batch in ((1, 1), (2, 4)):
        e = vramcore.estimate(spec, context=1024, images=images, batch=batch, gpu="H200")
        text = vramcore.estimate(spec.replace(cross_attention_tokens=images * 6404), context=e.context, batch=batch,
                                 gpu="H200")
        assert e.kv_cache_bytes == text.kv_cache_bytes > vramcore.estimate(spec, context=e.context, gpu="H200",
                                                                           batch=batch).kv_cache_bytes
        encoder = batch * (images * (rows * act + v.transformers_encoder_image) * 2 + e.context * spec.hidden_size * 2)
        held = batch * images * 6404 * held_feature * 2
        assert e.activation_bytes == max(text.activation_bytes + held, encoder)
    # the 11B's 40 layers record their outputs: 0.92 GB of the tower's peak an image in bf16
    assert (rows * act + v.transformers_encoder_image) * 2 == 922_421_248


def test_towers_not_modelled_under_transformers_add_no_encoder_peak() -> None:
    # Gemma-3n's MobileNetV5 (a timm tower): not measured yet, its images cost context only
    for name in ("Gemma-3n-E4B",):
        spec = _spec(name)
        assert spec.vision is not None and spec.vision.transformers_encoder_phases is None
        e = vramcore.estimate(spec, context=4096, images=2)
        assert e.activation_bytes == vramcore.estimate(spec, context=e.context).activation_bytes
