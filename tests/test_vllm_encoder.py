"""vLLM's vision-encoder peak per tower family (VisionSpec.vllm_encoder_phases) and its profile.

Each figure here is summed in the test from the family's config (widths, heads, merge size) and the
tensors vLLM's tower holds at the phase that peaks, listed beside each sum with the vLLM function that
holds them; the library computes the same phases from its own table (vramcore/model/vision.py,
``_VLLM_ENCODER_PHASES``).  bf16: 2 B an activation element, 4 B an fp32 one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import vramcore
from vramcore.grid import pack
from vramcore.grid.reference import reference_estimate
from vramcore.model import vision as vis
from vramcore.model.vision import VisionSpec

CONFIGS = {d["name"]: d["config"] for d in (json.loads(p.read_text()) for p in
                                            sorted((Path(__file__).parent / "data" / "hf_configs").glob("*.json")))}

#: Gemma-3 (4B-27B) vision_config: SigLIP-So400m at 896 px
GEMMA3_VISION = {"hidden_size": 1152, "intermediate_size": 4304, "num_attention_heads": 16, "num_hidden_layers": 27,
                 "patch_size": 14, "image_size": 896, "num_channels": 3}
#: Qwen3-VL-8B-Instruct vision_config (deepstack_visual_indexes [8, 16, 24])
QWEN3_VL_8B_VISION = {"hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16, "depth": 27,
                      "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3,
                      "out_hidden_size": 4096, "num_position_embeddings": 2304}


def _per_patch(v: VisionSpec, tp: int = 1) -> float:
    """The library's peak bytes per patch on one TP rank, bf16."""
    return max(2 * (a + a_tp / tp) + 4 * (f + f_tp / tp) for a, a_tp, f, f_tp in v.vllm_encoder_phases)


def _siglip_expected(vc: dict[str, Any], tp: int) -> float:
    h, i = vc["hidden_size"], vc["intermediate_size"]
    # MLP phase (siglip.py SiglipEncoderLayer / SiglipMLP): the embeddings (SiglipVisionTransformer.forward),
    # the previous layer's output (SiglipEncoder's loop), the residual sum, layer_norm2's output -- whole; fc1's
    # output and its gelu -- column-parallel
    mlp = 2 * (4 * h + 2 * i / tp)
    # attention phase: the embeddings, the previous output, layer_norm1's output, out_proj's all-reduced output
    # whole; qkv_proj's output and the attention output head-split
    attn = 2 * (4 * h + (3 * h + h) / tp)
    return max(mlp, attn)


def _pixtral_expected(vc: dict[str, Any], tp: int) -> float:
    h, i, d = vc["hidden_size"], vc["intermediate_size"], vc["head_dim"]
    # pixtral.py PixtralHFVisionModel / PixtralHFTransformerBlock / PixtralHFMLP (SiluAndMul.forward_native):
    # patch_conv's output, ln_pre's output, the previous block's output, the attention's output r, h, ffn_norm's
    # output (6H) and the rotary cos / sin (2d) whole; gate_up (2I), silu(gate) and the product (2I) split;
    # int64 position_ids, 8 B a patch
    mlp = 2 * (6 * h + 2 * d + 4 * i / tp) + 8
    # the attention at k's rotation: the first three H, attention_norm's output, cos / sin whole; qkv (3H) and
    # q_embed, k * cos, rotate_half(k) * sin, k_embed (4H) split
    attn = 2 * (4 * h + 2 * d + 7 * h / tp) + 8
    return max(mlp, attn)


def _llama4_expected(vc: dict[str, Any], tp: int) -> float:
    h, i = vc["hidden_size"], vc["intermediate_size"]
    # mllama4.py Llama4VisionAttention with Llama4VisionRotaryEmbedding.forward_native, per row: layernorm_pre's
    # output, the previous layer's output, input_layernorm's output (3H) whole; qkv (3H) and the rotated q, k
    # cast back (2H) split; q.float(), k.float() and their complex products (4H fp32) split
    attn = 2 * (3 * h + 5 * h / tp) + 4 * (4 * h / tp)
    # Llama4VisionMLP: the three H above but input_layernorm's, the residual sum and post_attention_layernorm's
    # output (4H) whole, fc1 and its GELU (2I) split
    mlp = 2 * (4 * h + 2 * i / tp)
    return max(attn, mlp)


def _qwen3_vl_expected(vc: dict[str, Any], deepstack: int, tp: int) -> float:
    h, d, m, out = vc["hidden_size"], vc["hidden_size"] // vc["num_heads"], vc["spatial_merge_size"], \
        vc["out_hidden_size"]
    deep = deepstack * out / (m * m)   # deepstack_feature_lists: every merger's output, per merge**2 patches
    # qwen3_vl.py Qwen3_VisionTransformer.forward + qwen2_5_vl.py Qwen2_5_VisionAttention.forward at the rotary's
    # cast back: pos_embeds, the block's input, norm1's output (3H) and the deepstack features whole; qkv (3H), the
    # contiguous q / k / v (3H), torch.cat([q, k]) (2H) and the rotated result in bf16 (2H) split; fp32: the
    # rotary angles (d / 2) and cos / sin (d) whole, the concatenation's float() and the kernel's output (4H) split
    attn = 2 * (3 * h + deep + 10 * h / tp) + 4 * (1.5 * d + 4 * h / tp)
    mlp = 2 * (4 * h + deep + 2 * vc["intermediate_size"] / tp) + 4 * (d / 2)
    return max(attn, mlp)


def _qwen2_5_vl_expected(vc: dict[str, Any], tp: int) -> float:
    h, d = vc["hidden_size"], vc["hidden_size"] // vc["num_heads"]
    x = 3 * vc["temporal_patch_size"] * vc["patch_size"] ** 2   # the pixels' concatenated copy (vLLM 0.9.0.1)
    # Qwen2_5_VisionAttention at the rotary step: residual, norm1 (2H) and x whole; qkv, contiguous q / k / v and the
    # rotated query (7H) split; fp32 angles, cos / sin (1.5d) whole, the query's float() and the kernel's output split
    attn = 2 * (2 * h + x + 7 * h / tp) + 4 * (1.5 * d + 2 * h / tp)
    # Qwen2_5_VisionMLP (gate and up unfused): the residual, norm2's and down_proj's outputs (3H) and x whole; the
    # activated gate, up and their product (3I) split; the angles (d / 2 fp32) -- the peak from TP 4 on
    mlp = 2 * (3 * h + x + 3 * vc["intermediate_size"] / tp) + 4 * (d / 2)
    return max(attn, mlp)


FAMILIES = [
    # (name, vision spec, expected bytes per patch at TP 1, rule, the figure by TP)
    ("Gemma-3 SigLIP", lambda: vis.siglip_gemma3(GEMMA3_VISION, 5376, 256), "siglip",
     lambda tp: _siglip_expected(GEMMA3_VISION, tp), 26432),
    ("Pixtral (mistral3)", lambda: vramcore.ModelSpec.from_hf_config(CONFIGS["Mistral-Small-3.1-24B-geometry"]).vision,
     "pixtral_hf", lambda tp: _pixtral_expected(CONFIGS["Mistral-Small-3.1-24B-geometry"]["vision_config"], tp),
     45320),
    ("Llama-4 (per row)", lambda: vramcore.ModelSpec.from_hf_config(CONFIGS["Llama-4-Scout-17B-16E-geometry"]).vision,
     "llama4", lambda tp: _llama4_expected(CONFIGS["Llama-4-Scout-17B-16E-geometry"]["vision_config"], tp), 45056),
    ("Qwen3-VL-8B", lambda: vis.qwen3_vl(QWEN3_VL_8B_VISION, deepstack=3), "qwen3_vl",
     lambda tp: _qwen3_vl_expected(QWEN3_VL_8B_VISION, 3, tp), 54960),
    ("Qwen2.5-VL-7B", lambda: vramcore.ModelSpec.from_hf_config(CONFIGS["Qwen2.5-VL-7B-Instruct"]).vision,
     "qwen2_5_vl", lambda tp: _qwen2_5_vl_expected(CONFIGS["Qwen2.5-VL-7B-Instruct"]["vision_config"], tp), 36112),
]


@pytest.mark.parametrize("name,make,rule,expected,figure", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_per_patch_figure_from_the_named_shapes(name: str, make: Any, rule: str, expected: Any, figure: int) -> None:
    v = make()
    assert v is not None and v.vllm_encoder_rule == rule
    assert 1 <= len(v.vllm_encoder_phases) <= pack.MM_PHASES
    assert _per_patch(v) == expected(1) == figure
    for tp in (2, 4, 8):   # whole tensors stay, split ones shrink: above figure / tp, at most figure
        assert _per_patch(v, tp) == pytest.approx(expected(tp), rel=1e-12)
        assert figure / tp < _per_patch(v, tp) < figure


def test_gemma3_and_qwen3_vl_cards_follow_their_families() -> None:
    gemma = vramcore.get_model("Gemma-3-27B").spec.vision
    assert gemma is not None and gemma.vllm_encoder_rule == "siglip" and _per_patch(gemma) == 26432
    qwen3 = vramcore.ModelSpec.from_hf_config(CONFIGS["Qwen3-VL-defaults"]).vision   # out_hidden_size 3584
    assert qwen3 is not None and qwen3.deepstack_mergers == 3
    assert _per_patch(qwen3) == _qwen3_vl_expected({**QWEN3_VL_8B_VISION, "out_hidden_size": 3584}, 3, 1) == 54192


@pytest.mark.parametrize("name", ["Qwen3.5-defaults", "Llama-3.2-11B-Vision-Instruct"])
def test_towers_not_read_from_vllm_keep_the_generic_rule(name: str) -> None:
    spec = vramcore.ModelSpec.from_hf_config(CONFIGS[name]) if name in CONFIGS else vramcore.get_model(name).spec
    v = spec.vision
    assert v is not None and v.vllm_encoder_rule == "generic"
    wide, split = v.peak_elems_split
    assert v.vllm_encoder_phases == ((wide, split, 0.0, 0.0),)
    hand = VisionSpec.vit(num_layers=2, hidden_size=64, intermediate_size=128, num_heads=4, patch_size=14,
                          image_size=224, text_hidden_size=256)
    assert hand.vllm_encoder_rule == "generic"


@pytest.mark.parametrize("name", ["Qwen3.5-defaults", "Qwen3.5-MoE-defaults"])
def test_qwen3_5_profiles_qwen3_vl_dummy_images_under_the_generic_rule(name: str) -> None:
    # vllm/model_executor/models/qwen3_5.py: Qwen3_5ForConditionalGeneration (and its MoE subclass) builds
    # qwen3_vl.py's Qwen3_VisionTransformer over a vision_config without deepstack_visual_indexes (the tower falls
    # back to none) and registers Qwen3VLMultiModalProcessor / Qwen3VLDummyInputsBuilder with Qwen3_5ProcessingInfo
    # (a Qwen3VLProcessingInfo): the profile's dummy image is Qwen3-VL's.  Largest image: 16,777,216 px
    # (longest_edge) as a 4096 x 4096 square, 16 px patches (256 x 256 = 65,536), merged 2 x 2 into 16,384
    # embeddings; each patch's pixels 3 channels x 2 temporal frames x 16 x 16 = 1,536 elements
    spec = vramcore.ModelSpec.from_hf_config(CONFIGS[name])
    v = spec.vision
    assert v is not None and v.kind == "qwen3_vl" and v.deepstack_mergers == 0
    patches, features, pixels = (4096 // 16) ** 2, (4096 // 16) ** 2 // (2 * 2), 3 * 2 * 16 * 16
    assert (v.max_item_patches, v.max_item_features, v.patch_elems) == (patches, features, pixels)
    assert (patches, features, pixels) == (65536, 16384, 1536)
    fields = pack._vision_fields(spec)
    assert fields["mm_item_pixels"] == patches * pixels == 100663296
    qwen3 = pack._vision_fields(vramcore.ModelSpec.from_hf_config(CONFIGS["Qwen3-VL-defaults"]))
    for key in ("mm_item_features", "mm_item_patches", "mm_item_pixels", "mm_rope_table"):
        assert fields[key] == qwen3[key]
    # the tower vLLM runs for Qwen3.5 is newer than the 0.11-series code the "qwen3_vl" rule reads: generic, 2H + 2I
    # a patch (H 1152, I 4304), 21,824 B in bf16
    assert v.vllm_encoder_rule == "generic" and _per_patch(v) == 2 * (2 * 1152 + 2 * 4304) == 21824


def test_the_kernel_row_holds_four_phases_padded_with_zeros() -> None:
    spec = vramcore.get_model("Gemma-3-27B").spec
    fields = pack._vision_fields(spec)
    row = [fields[f] for f in pack._MM_PHASE_FIELDS]
    assert len(row) == 16 and row[:8] == [4608.0, 8608.0, 0.0, 0.0, 4608.0, 4608.0, 0.0, 0.0] and row[8:] == [0.0] * 8
    assert set(pack._MM_PHASE_FIELDS) <= set(pack.MODEL_FIELDS)


def test_more_phases_than_the_kernel_holds_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = vramcore.get_model("Gemma-3-27B").spec
    monkeypatch.setattr(VisionSpec, "vllm_encoder_phases", property(lambda self: ((1.0, 0.0, 0.0, 0.0),) * 5))
    with pytest.raises(ValueError, match=r"vllm_encoder_phases: 5 phases for tower 'siglip'"):
        pack._vision_fields(spec)


def _gemma_engine(tokens: int) -> vramcore.EngineSpec:
    # few sequences: the sampler stays small and the encoder's batch decides the profile's peak
    return vramcore.get_engine("vllm", max_num_batched_tokens=tokens, max_num_seqs=4, max_model_len=8192)


@pytest.mark.parametrize("tp", [1, 2])
def test_encoder_peak_scales_with_images_and_tp(tp: int) -> None:
    # Gemma-3-27B: 256 embeddings an image, so a budget of T tokens profiles T / 256 images (at most 4 seqs x
    # the 32 images an 8192-token prompt takes); each one 4096 patches and its 3 x 896 x 896 dummy pixels in bf16
    # beside the encoder; plus the 34 MiB workspace
    spec = vramcore.get_model("Gemma-3-27B").spec
    per_patch = _siglip_expected(GEMMA3_VISION, tp)
    pixels = 3 * 896 * 896 * 2
    acts = []
    for tokens in (1024, 2048, 4096):
        engine = _gemma_engine(tokens)
        e = vramcore.estimate(spec, context=4096, engine=engine, gpu="H200", tp=tp, n_gpus=tp)
        images = tokens // 256
        assert e.activation_bytes == images * (4096 * per_patch + pixels) + engine.profile_workspace_bytes
        r = reference_estimate(spec, vramcore.get_dtype("bf16"), None, engine, tp, 4096, 1, int(e.gpu_bytes), tp=tp)
        assert r["activation_bytes"] == e.activation_bytes
        acts.append(e.activation_bytes - engine.profile_workspace_bytes)
    assert acts[1] == 2 * acts[0] and acts[2] == 4 * acts[0]     # linear in the profiled images


def test_estimate_with_images_under_vllm() -> None:
    # a request's images cost context (258 tokens each: boi, 256 soft tokens, eoi); the profile's encoder peak is
    # the largest images' whatever the request, now SigLIP's 4H + 2I a patch (the generic 2H + 2I left 4608
    # elements a patch out)
    spec = vramcore.get_model("Gemma-3-27B").spec
    engine = _gemma_engine(2048)
    base = vramcore.estimate(spec, context=1000, engine=engine, gpu="H200")
    previous = base
    for images in (1, 3):
        e = vramcore.estimate(spec, context=1000, images=images, engine=engine, gpu="H200")
        assert e.context == 1000 + images * 258
        assert e.activation_bytes == base.activation_bytes
        # the same pool, longer requests: fewer of them fit
        assert e.kv_capacity_tokens == base.kv_capacity_tokens and e.max_concurrency < previous.max_concurrency
        previous = e
    generic = 8 * (4096 * 2 * (2 * 1152 + 2 * 4304) + 3 * 896 * 896 * 2) + engine.profile_workspace_bytes
    assert base.activation_bytes - generic == 8 * 4096 * 2 * (2 * 1152)
