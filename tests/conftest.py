"""Hypothesis profiles and the strategies the property tests share.

Profiles (chosen by the ``HYPOTHESIS_PROFILE`` environment variable):

- ``dev``: the default on a workstation, about 100 examples per test;
- ``ci``: the default when ``CI`` is set; fewer examples, no deadline (shared
  runners are slow and noisy) and derandomized, so a CI run is reproducible;
- ``fuzz``: a long hunt for ``tests/test_fuzz.py`` run by hand (3000 examples).

Strategies for :class:`vramcore.ModelSpec`, :class:`vramcore.GPUSpec` and
:class:`vramcore.EngineSpec` are registered with
:func:`hypothesis.strategies.register_type_strategy`, so every test module
draws them with ``st.from_type(ModelSpec)`` (test modules cannot import each
other under ``--import-mode=importlib``).
"""

from __future__ import annotations

import dataclasses
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from vramcore import EngineSpec, GPUSpec, ModelSpec, get_engine, list_dtypes
from vramcore.model.recurrent import gated_deltanet, mamba1, mamba2
from vramcore.model.spec import MOE_ROUTERS

settings.register_profile("dev", max_examples=100)
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
# a longer hunt, run by hand: HYPOTHESIS_PROFILE=fuzz python -m pytest tests/test_fuzz.py
settings.register_profile("fuzz", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@st.composite
def model_specs(draw: st.DrawFn) -> ModelSpec:
    """Random valid specs: dense, GQA, sliding (random windows and patterns), MLA, MoE, biases, recurrent and
    cross-attention layers."""
    num_layers = draw(st.integers(1, 12))
    kv_heads = draw(st.integers(1, 16))
    num_heads = kv_heads * draw(st.integers(1, 8))
    fields: dict = {
        "name": "hyp",
        "num_layers": num_layers,
        "num_heads": num_heads,
        "num_kv_heads": kv_heads,
        "intermediate_size": draw(st.integers(1, 65536)),
        "vocab_size": draw(st.integers(1, 262144)),
        "tie_embeddings": draw(st.booleans()),
        "qkv_bias": draw(st.booleans()),
        "o_bias": draw(st.booleans()),
        "mlp_bias": draw(st.booleans()),
        "qk_norm": draw(st.booleans()),
        "attention_sinks": draw(st.booleans()),
        "sdpa_supported": draw(st.booleans()),
        "rotary_tables": draw(st.integers(1, 3)),     # Gemma-3: a local and a global rotary table
        "norms_per_layer": draw(st.integers(0, 4)),
        "max_context": draw(st.none() | st.integers(1, 2**20)),
    }
    if draw(st.booleans()):  # head_dim given explicitly (Gemma-2: 256 != hidden / heads)
        fields["head_dim"] = draw(st.integers(1, 512))
        fields["hidden_size"] = draw(st.integers(1, 16384))
    else:  # derived: hidden must divide
        fields["hidden_size"] = num_heads * draw(st.integers(1, 256))

    if draw(st.booleans()):  # multi-head latent attention
        fields["kv_lora_rank"] = draw(st.integers(1, 1024))
        fields["qk_rope_head_dim"] = draw(st.integers(1, 128))
        fields["qk_nope_head_dim"] = draw(st.integers(1, 256))
        fields["v_head_dim"] = draw(st.integers(1, 256))
        fields["q_lora_rank"] = draw(st.none() | st.integers(1, 2048))
        fields.pop("head_dim", None)
        fields["num_kv_heads"] = num_heads
        if fields["q_lora_rank"] is not None and draw(st.booleans()):  # DeepSeek-V3.2's sparse-attention indexer
            fields["index_n_heads"] = draw(st.integers(1, 64))
            fields["index_head_dim"] = draw(st.integers(fields["qk_rope_head_dim"], 256))
            fields["index_topk"] = draw(st.none() | st.integers(1, 4096))
    elif fields["qk_norm"]:
        fields["qk_norm_full_width"] = draw(st.booleans())  # OLMo-2: one norm over the whole q / k projection
    fields["norm_weight_fp32"] = draw(st.booleans())  # OLMo-2's RMSNorm: weight x the fp32 result
    if not fields["norm_weight_fp32"]:
        fields["norm_plus_one"] = draw(st.booleans())  # Gemma / Qwen3-Next's RMSNorm: x (1 + weight) in fp32
    fields["rope_per_row"] = draw(st.booleans())       # Qwen3.5: cos / sin per batch row

    attention = draw(st.sampled_from(["full", "sliding_all", "pattern"]))
    if attention != "full":
        fields["sliding_window"] = draw(st.integers(1, 8) | st.integers(1, 2**20)
                                        | st.sampled_from([512, 4096, 32768]))
    if attention == "pattern":
        fields["layer_types"] = tuple(draw(st.lists(
            st.sampled_from(["full_attention", "sliding_attention"]),
            min_size=num_layers, max_size=num_layers)))

    if "kv_lora_rank" not in fields and draw(st.booleans()):  # a hybrid model: some layers recurrent
        base = fields.get("layer_types") or (
            ("sliding_attention" if "sliding_window" in fields else "full_attention"),) * num_layers
        mask = draw(st.lists(st.booleans(), min_size=num_layers, max_size=num_layers))
        hidden = fields["hidden_size"]
        mixer = draw(st.sampled_from(["gated_deltanet", "mamba2", "mamba1"]))
        if mixer == "mamba1":   # Jamba: its training scan states step every 2048 tokens
            kind = "mamba"
            rec = mamba1(hidden=hidden, inner=draw(st.integers(1, 4096)), state_size=draw(st.integers(1, 64)),
                         conv_kernel=draw(st.integers(1, 8)), dt_rank=draw(st.integers(1, 512)),
                         conv_bias=draw(st.booleans()))
        elif mixer == "gated_deltanet":
            kind = "linear_attention"
            rec = gated_deltanet(hidden=hidden, key_heads=draw(st.integers(1, 16)),
                                 value_heads=draw(st.integers(1, 32)),
                                 key_dim=draw(st.integers(1, 256)), value_dim=draw(st.integers(1, 256)),
                                 conv_kernel=draw(st.integers(1, 8)))
        else:
            kind = "mamba"
            rec = mamba2(hidden=hidden, heads=draw(st.integers(1, 128)), head_dim=draw(st.integers(1, 128)),
                         state_size=draw(st.integers(1, 256)), groups=draw(st.integers(1, 8)),
                         conv_kernel=draw(st.integers(1, 8)), conv_bias=draw(st.booleans()))
        layers = tuple(kind if m else b for m, b in zip(mask, base, strict=True))
        if draw(st.booleans()):  # Nemotron-H-like: some layers with no token mixer at all (MLP-only blocks)
            drop = draw(st.lists(st.booleans(), min_size=num_layers, max_size=num_layers))
            layers = tuple("none" if d and k != kind else k for d, k in zip(drop, layers, strict=True))
        if draw(st.booleans()):  # Falcon-H1-like: some attention layers also run the mixer beside it ("hybrid")
            both = draw(st.lists(st.booleans(), min_size=num_layers, max_size=num_layers))
            layers = tuple("hybrid" if b and k == "full_attention" else k for b, k in zip(both, layers, strict=True))
        if kind in layers or "hybrid" in layers:
            fields["layer_types"] = layers
            fields["recurrent"] = dataclasses.replace(rec, ssm_fp32=draw(st.booleans()))
            fields["attn_output_gate"] = draw(st.booleans())
    if "kv_lora_rank" not in fields and draw(st.booleans()):  # Llama-3.2-Vision: some layers cross-attention
        base = fields.get("layer_types") or (
            ("sliding_attention" if "sliding_window" in fields else "full_attention"),) * num_layers
        mask = draw(st.lists(st.booleans(), min_size=num_layers, max_size=num_layers))
        layers = tuple("cross_attention" if m and k in ("full_attention", "sliding_attention") else k
                       for m, k in zip(mask, base, strict=True))
        if "cross_attention" in layers:
            fields["layer_types"] = layers
            fields["cross_attention_tokens"] = draw(st.sampled_from([0, 6404, 3 * 6404]) | st.integers(0, 2**20))
            fields["embedding_rows"] = None if fields["tie_embeddings"] else draw(
                st.none() | st.integers(fields["vocab_size"], fields["vocab_size"] + 8))
    if draw(st.booleans()):  # mixture of experts
        experts = draw(st.sampled_from([1, 2, 8, 32, 64, 128, 256]) | st.integers(1, 300))
        fields["num_experts"] = experts
        fields["experts_per_token"] = draw(st.integers(1, experts))
        fields["moe_intermediate_size"] = draw(st.none() | st.integers(1, 8192))
        fields["shared_expert_intermediate_size"] = draw(st.just(0) | st.integers(1, 16384))
        fields["router_bias"] = draw(st.booleans())
        fields["expert_bias"] = draw(st.booleans())
        fields["router_fp32"] = draw(st.booleans())
        fields["moe_router"] = draw(st.sampled_from(list(MOE_ROUTERS)))   # what a training step's router saves
        fields["shared_expert_gate"] = draw(st.booleans())
        if draw(st.booleans()):
            fields["first_dense_layers"] = draw(st.integers(0, num_layers))
        else:
            fields["mlp_layer_types"] = tuple(draw(st.lists(
                st.sampled_from(["dense", "moe"]), min_size=num_layers, max_size=num_layers)))
    fields["mlp_gated"] = draw(st.booleans()) if draw(st.booleans()) else True  # Nemotron-H: up and down only
    tower = draw(st.sampled_from([None, "qwen2_5_vl", "pixtral", "mllama", "siglip", "llama4", "qwen3_vl"]))
    if tower == "qwen2_5_vl":  # a Qwen2.5-VL-like tower and a request's images (the transformers encoder phase)
        from vramcore.model.vision import qwen2_5_vl

        heads, merge = draw(st.integers(1, 16)), draw(st.integers(1, 3))
        fields["vision"] = qwen2_5_vl({
            "hidden_size": heads * draw(st.integers(1, 128)), "intermediate_size": draw(st.integers(1, 8192)),
            "num_heads": heads, "depth": draw(st.integers(1, 4)), "patch_size": draw(st.integers(1, 16)),
            "spatial_merge_size": merge, "temporal_patch_size": draw(st.integers(1, 2)), "in_channels": 3,
            "out_hidden_size": fields["hidden_size"]})
        features = draw(st.just(0) | st.integers(1, 2**16) | st.integers(1, 2**26))
        fields["image_patches"] = features * merge * merge
        fields["image_features"] = features
    elif tower == "pixtral":  # a tower whose peak holds a mask over every pair of the batch's patches
        from vramcore.model.vision import pixtral

        heads, head_dim, merge = draw(st.integers(1, 16)), draw(st.integers(1, 128)), draw(st.integers(1, 3))
        fields["vision"] = pixtral({
            "hidden_size": heads * head_dim, "head_dim": head_dim, "num_attention_heads": heads,
            "intermediate_size": draw(st.integers(1, 8192)), "num_hidden_layers": draw(st.integers(1, 4)),
            "patch_size": draw(st.integers(1, 16)), "num_channels": 3, "image_size": 1540},
            fields["hidden_size"], merge, draw(st.booleans()))
        features = draw(st.just(0) | st.integers(1, 2**12) | st.integers(1, 2**18))
        fields["image_patches"] = features * merge * merge
        fields["image_features"] = features
    elif tower == "mllama":  # a tower with a per-image term (Llama-3.2-Vision's patch embeddings)
        from vramcore.model.vision import mllama

        heads = draw(st.integers(1, 16))
        fields["vision"] = vision = mllama({
            "hidden_size": heads * draw(st.integers(1, 128)), "attention_heads": heads,
            "intermediate_size": draw(st.integers(1, 8192)), "num_hidden_layers": draw(st.integers(1, 4)),
            "num_global_layers": draw(st.integers(1, 2)), "patch_size": 14,
            "image_size": draw(st.sampled_from([56, 560])), "max_num_tiles": draw(st.integers(1, 4)),
            "num_channels": 3, "vision_output_dim": draw(st.integers(1, 8192))}, fields["hidden_size"], 8)
        images = draw(st.integers(0, 8) | st.integers(0, 2**10))
        fields["image_patches"] = images * vision.image_patches()
        fields["image_features"] = images * vision.image_features()
        fields["image_count"] = images
    elif tower == "siglip":  # Gemma-3's tower: vLLM's SigLIP phases (VisionSpec.vllm_encoder_phases)
        from vramcore.model.vision import siglip_gemma3

        patch = draw(st.integers(1, 16))
        heads = draw(st.integers(1, 16))
        fields["vision"] = siglip_gemma3({
            "hidden_size": heads * draw(st.integers(1, 128)), "intermediate_size": draw(st.integers(1, 8192)),
            "num_attention_heads": heads, "num_hidden_layers": draw(st.integers(1, 4)), "patch_size": patch,
            "image_size": patch * draw(st.integers(1, 64)), "num_channels": 3},
            fields["hidden_size"], draw(st.integers(1, 1024)))
    elif tower == "llama4":  # per-row phases with fp32 rotary products split over TP
        from vramcore.model.vision import llama4

        heads = draw(st.integers(1, 16))
        fields["vision"] = llama4({
            "hidden_size": heads * draw(st.integers(1, 128)), "intermediate_size": draw(st.integers(1, 8192)),
            "num_attention_heads": heads, "num_hidden_layers": draw(st.integers(1, 4)), "patch_size": 14,
            "image_size": 14 * draw(st.sampled_from([2, 4, 24])), "num_channels": 3,
            "projector_input_dim": draw(st.integers(1, 4096)), "projector_output_dim": draw(st.integers(1, 4096)),
            "vision_output_dim": draw(st.integers(1, 4096)), "multi_modal_projector_bias": draw(st.booleans()),
            "pixel_shuffle_ratio": 0.5}, fields["hidden_size"])
    elif tower == "qwen3_vl":  # deepstack features: a fractional width per patch (out_hidden_size / merge**2)
        from vramcore.model.vision import qwen3_vl

        heads, merge = draw(st.integers(1, 16)), draw(st.integers(1, 3))
        fields["vision"] = qwen3_vl({
            "hidden_size": heads * 2 * draw(st.integers(1, 64)), "intermediate_size": draw(st.integers(1, 8192)),
            "num_heads": heads, "depth": draw(st.integers(1, 4)), "patch_size": draw(st.integers(1, 16)),
            "spatial_merge_size": merge, "temporal_patch_size": draw(st.integers(1, 2)), "in_channels": 3,
            "num_position_embeddings": draw(st.integers(1, 2304)), "out_hidden_size": draw(st.integers(1, 8192))},
            deepstack=draw(st.integers(0, 3)))
    if draw(st.booleans()):  # partial rotary (Bamba, Phi-4-mini): the rotated part of each head
        whole = fields.get("qk_rope_head_dim") or fields.get("head_dim") or fields["hidden_size"] // num_heads
        fields["rotary_dim"] = draw(st.integers(1, whole))
    return ModelSpec(**fields)


def gpu_specs() -> st.SearchStrategy[GPUSpec]:
    """Custom GPUs from 1 byte to 1 PiB, with and without a CUDA-visible figure."""

    @st.composite
    def build(draw: st.DrawFn) -> GPUSpec:
        total = draw(st.integers(1, 2**50) | st.integers(2**33, 2**38))
        visible = draw(st.none() | st.integers(1, total))
        return GPUSpec(name=f"gpu-{total}-{visible}", vendor="test", memory_total_bytes=total,
                       cuda_visible_bytes=visible)

    return build()


def engine_specs() -> st.SearchStrategy[EngineSpec]:
    """The transformers engine with random overrides of every rule."""
    base = get_engine("transformers")
    fraction = (st.sampled_from([0.0, 0.05, 0.125, 0.5]) | st.integers(0, 1023).map(lambda k: k / 1024)
                | st.floats(0.0, 1.0, exclude_max=True, allow_subnormal=False))
    return st.builds(
        base.with_options,
        # >= -1 keeps window + offset >= 0 for every window >= 1
        sliding_cap_offset=st.sampled_from([-1, 0]) | st.integers(-1, 64),
        mla_compressed=st.booleans(),
        full_logits=st.booleans(),
        cuda_context_bytes=st.sampled_from([0, 512 * 2**20]) | st.integers(0, 2**34),
        allocator_reserve_fraction=fraction,
        kv_cache_dtype=st.none() | st.sampled_from(list_dtypes()),
        rope_cache=st.booleans(),
        state_conv_offset=st.sampled_from([0, -1]),
        state_conv_bits=st.sampled_from([0, 8, 16, 32]),
        state_ssm_bits=st.sampled_from([0, 16, 32]),
        # "sdpa" itself is "auto" on a model with sdpa and refused on one without (test_prefill_attention.py)
        attention=st.sampled_from(["auto", "eager", "flash"]),
    )


st.register_type_strategy(ModelSpec, model_specs())
st.register_type_strategy(GPUSpec, gpu_specs())
st.register_type_strategy(EngineSpec, engine_specs())
