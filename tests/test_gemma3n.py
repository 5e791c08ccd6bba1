"""Gemma-3n's text decoder: parameters and KV cache against transformers, KV sharing in every engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vramcore
from vramcore.grid.pack import model_row, place_rows, resident_elems
from vramcore.model.tensors import list_tensors

DATA = Path(__file__).parent / "data"
MEASURED = json.loads((DATA / "transformers_measured.json").read_text())["models"]
NAMES = ("Gemma-3n-E4B-text", "Gemma-3n-E2B-text")


def _config(name: str) -> dict:
    return json.loads((DATA / "hf_configs" / f"{name.lower()}.json").read_text())["config"]


def _spec(name: str) -> vramcore.ModelSpec:
    return vramcore.ModelSpec.from_hf_config(_config(name), name=name)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_match_transformers(name: str) -> None:
    spec, m = _spec(name), MEASURED[name]["params"]
    assert spec.param_count == m["total"]
    parts = spec.param_breakdown()
    by = m["by_category"]
    internal = m["attention_internal_norms"]  # q/k norms: transformers files them under self_attn
    assert parts["embedding"] == by["embedding"]
    assert parts["mlp_dense"] == by["mlp_dense"]
    assert parts["attention"] == by["attention"] - internal
    assert parts["norms"] == by["norms"] + internal
    assert spec.text_only.param_count == m["total"]
    assert sum(t.numel for t in list_tensors(spec)) == m["total"]


@pytest.mark.parametrize("name", NAMES)
def test_kv_cache_matches_transformers(name: str) -> None:
    spec, kv = _spec(name), MEASURED[name]["kv_cache"]
    kinds = kv["layer_kinds"]
    # only the layers before the KV-sharing ones cache (transformers' "dummy" layers hold nothing)
    assert spec.n_kv_full_layers == kinds["full_attention"]["layers"]
    assert spec.n_kv_sliding_layers == kinds["sliding_attention"]["layers"]
    assert spec.kv_layers == spec.num_layers - spec.kv_shared_layers
    for context, expected in kv["kv_bytes_at_context_batch1"].items():
        e = vramcore.estimate(spec, context=int(context), gpu="H100")
        assert e.kv_cache_bytes == expected


def test_kv_sharing_layers_cache_nothing_in_any_engine() -> None:
    spec = _spec("Gemma-3n-E4B-text")
    alike = spec.replace(kv_shared_layers=0)
    row, full = model_row(spec), model_row(alike)
    assert row[0:2] == [4.0, 16.0] and full[0:2] == [7.0, 28.0]
    for engine in ("transformers", "vllm", "llamacpp"):
        e = vramcore.get_engine(engine)
        counts = place_rows(spec, e, 1, 1)[0]
        assert counts[1:3] == [4.0, 16.0]  # the stage's full and sliding layers that own a cache
    # transformers: a long context grows only the 4 global layers that own a cache, 2 KV heads x 256 x K, V x 2 B
    a = vramcore.estimate(spec, context=8192, gpu="H100")
    b = vramcore.estimate(spec, context=16384, gpu="H100")
    assert b.kv_cache_bytes - a.kv_cache_bytes == 4 * 8192 * 2 * 2 * 256 * 2


def test_llamacpp_and_vllm_estimates_run_and_others_refuse() -> None:
    spec = _spec("Gemma-3n-E4B-text")
    e = vramcore.estimate(spec, context=4096, gpu="H100", engine="llamacpp")
    # llama.cpp keeps the token and per-layer embedding tables in host memory (LLM_TENSOR_LAYER_INPUT)
    assert e.host_bytes >= spec.param_breakdown()["embedding"] * 2
    assert vramcore.estimate(spec, context=4096, gpu="H100", engine="vllm").kv_cache_bytes > 0
    for engine in ("sglang", "trtllm"):
        with pytest.raises(ValueError, match="shares KV in its last 15 layers"):
            vramcore.estimate(spec, context=4096, gpu="H100", engine=engine)
    with pytest.raises(ValueError, match="hard-codes|20 layers"):
        vramcore.estimate(spec.replace(kv_shared_layers=10), context=4096, gpu="H100", engine="llamacpp")


def test_training_refuses() -> None:
    with pytest.raises(ValueError, match="Gemma-3n"):
        vramcore.estimate(_spec("Gemma-3n-E2B-text"), context=1024, gpu="H100", engine="train")


def test_altup_and_per_layer_inputs_raise_the_activation_peak() -> None:
    spec = _spec("Gemma-3n-E4B-text")
    assert resident_elems(spec) == 2 * 4 * 2048 + 35 * 256
    plain = spec.replace(altup_inputs=1, per_layer_input_size=0, per_layer_vocab_size=0, laurel_rank=0)
    assert resident_elems(plain) == 0
    ctx = 4096
    a, b = (vramcore.estimate(s, context=ctx, gpu="H100").activation_bytes for s in (spec, plain))
    assert a - b >= ctx * resident_elems(spec) * 2


def test_bad_geometry_is_refused() -> None:
    cfg = _config("Gemma-3n-E2B-text")
    with pytest.raises(ValueError, match="intermediate_size"):
        vramcore.ModelSpec.from_hf_config({**cfg, "intermediate_size": [8192] * 29 + [4096]})
    with pytest.raises(ValueError, match="kv_shared_layers"):
        vramcore.ModelSpec.from_hf_config({**cfg, "num_kv_shared_layers": 30})
    with pytest.raises(ValueError, match="earlier 'full_attention'"):
        vramcore.ModelSpec.from_hf_config({**cfg, "layer_types": ["sliding_attention"] * 29 + ["full_attention"],
                                           "num_kv_shared_layers": 1})
    with pytest.raises(ValueError, match="per_layer_input_size"):
        _spec("Gemma-3n-E2B-text").replace(per_layer_vocab_size=0)


LAYOUTS = [{"n_gpus": 1}, {"tp": 2, "pp": 1}, {"tp": 1, "pp": 2}]


# llama.cpp splits layers, not heads: no tp layout for it
@pytest.mark.parametrize(("engine", "layout"), [(e, lay) for e in ("transformers", "vllm", "llamacpp")
                                                for lay in LAYOUTS if not (e == "llamacpp" and lay.get("tp", 1) > 1)])
def test_kernel_agrees_with_the_oracle(engine: str, layout: dict) -> None:
    from vramcore import GPUSpec, get_dtype
    from vramcore.grid.reference import reference_estimate

    spec = _spec("Gemma-3n-E4B-text")
    gpu = GPUSpec(name="g", vendor="test", memory_total_bytes=80 * 2**30)
    n = layout.get("n_gpus") or layout["tp"] * layout["pp"]
    want = reference_estimate(spec, get_dtype("bf16"), None, vramcore.get_engine(engine), n, 8192, 2, gpu.usable_bytes,
                              tp=layout.get("tp"), pp=layout.get("pp"), gpu_name="g")
    got = vramcore.estimate(spec, context=8192, batch=2, gpu=gpu, engine=engine, **layout)
    for field in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "total_bytes"):
        assert getattr(got, field) == want[field], field


@pytest.mark.parametrize("name", NAMES)
def test_vllm_loads_kv_projections_in_the_sharing_layers(name: str) -> None:
    from vramcore.engines.vllm import kv_shared_loaded_extra

    spec = _spec(name)
    # vLLM's Gemma3nAttention builds qkv_proj and k_norm in every layer: the parameters of the same model with
    # every layer owning its K and V, which transformers builds only in the first num_layers - shared
    every = spec.replace(kv_shared_layers=0).param_breakdown()
    own = spec.param_breakdown()
    assert kv_shared_loaded_extra(spec) == (every["attention"] - own["attention"], every["norms"] - own["norms"])
    assert kv_shared_loaded_extra(spec.replace(kv_shared_layers=0)) == (0, 0)
    width = spec.num_kv_heads * spec.head_dim  # type: ignore[operator]
    assert kv_shared_loaded_extra(spec)[0] == spec.kv_shared_layers * 2 * spec.hidden_size * width
    vllm = vramcore.get_engine("vllm")
    rope = vramcore.get_engine("vllm", kv_shared_projections=False)
    for dtype, linear, other in (("bf16", 2, 2), ("int8", 1, 2)):
        a = vramcore.estimate(spec, dtype=dtype, context=4096, gpu="H100", engine=vllm)
        b = vramcore.estimate(spec, dtype=dtype, context=4096, gpu="H100", engine=rope)
        kv, norm = kv_shared_loaded_extra(spec)
        assert a.weights_by_part["attention"] - b.weights_by_part["attention"] == kv * linear
        assert a.weights_by_part["norms"] - b.weights_by_part["norms"] == norm * other
        assert a.weights_bytes - b.weights_bytes == kv * linear + norm * other
        # TP 2: the k/v split over the 2 KV heads' ranks, the norms replicated
        a2, b2 = (vramcore.estimate(spec, dtype=dtype, context=4096, gpu="H100", engine=e, tp=2, pp=1)
                  for e in (vllm, rope))
        assert a2.weights_bytes - b2.weights_bytes == kv * linear // 2 + norm * other


def test_kv_shared_projections_is_vllm_only() -> None:
    with pytest.raises(ValueError, match="kv_shared_projections"):
        vramcore.get_engine("transformers", kv_shared_projections=True)
    assert vramcore.get_engine("vllm").kv_shared_projections
    assert not vramcore.get_engine("sglang").kv_shared_projections


WHOLE = ("Gemma-3n-E4B", "Gemma-3n-E2B")


def _whole(name: str) -> vramcore.ModelSpec:
    return vramcore.ModelSpec.from_hf_config(_config(name), name=name)


@pytest.mark.parametrize("name", WHOLE)
def test_whole_checkpoint_matches_transformers(name: str) -> None:
    spec, m = _whole(name), MEASURED[name]["params"]
    by = m["by_category"]
    parts = spec.param_breakdown()
    assert spec.param_count == m["total"]
    for part in ("vision_tower", "multimodal_projector", "audio_tower", "embedding", "mlp_dense"):
        assert parts[part] == by[part], part
    # the audio encoder is counted tensor by tensor from audio_config: the same sum as transformers' modules
    assert spec.audio is not None and spec.audio.params == by["audio_tower"]
    assert sum(t.numel for t in list_tensors(spec) if t.part == "audio_tower") == by["audio_tower"]
    # the text decoder is the text_config's alone
    assert spec.text_only == _spec(f"{name}-text").replace(name=name)
    assert spec.text_only.param_count == MEASURED[f"{name}-text"]["params"]["total"]


def test_images_and_engines_with_the_towers() -> None:
    spec = _whole("Gemma-3n-E4B")
    text = spec.text_only
    e = vramcore.estimate(spec, context=4096, gpu="H100")
    towers = sum(spec.param_breakdown()[p] for p in ("vision_tower", "multimodal_projector", "audio_tower"))
    assert e.weights_bytes - vramcore.estimate(text, context=4096, gpu="H100").weights_bytes == 2 * towers
    # an image is vision_soft_tokens_per_image soft tokens between boi and eoi (Gemma3nProcessor)
    assert spec.vision is not None and spec.vision.image_tokens() == 256 + 2
    with_images = vramcore.estimate(spec, context=4096, gpu="H100", images=3)
    assert with_images.kv_cache_bytes == vramcore.estimate(spec, context=4096 + 3 * 258, gpu="H100").kv_cache_bytes
    # vLLM: its text-only mode builds no tower; with towers its MobileNetV5 / audio profile is not modelled
    text_mode = vramcore.get_engine("vllm", limit_mm_per_prompt=0)
    assert (vramcore.estimate(spec, context=4096, gpu="H100", engine=text_mode).weights_bytes
            == vramcore.estimate(text, context=4096, gpu="H100", engine=text_mode).weights_bytes)
    for engine in ("vllm", "llamacpp"):
        with pytest.raises(ValueError, match="MobileNetV5"):
            vramcore.estimate(spec, context=4096, gpu="H100", engine=engine)


def test_tower_config_errors_name_the_field() -> None:
    cfg = _config("Gemma-3n-E4B")
    with pytest.raises(ValueError, match="vision_config.architecture"):
        vramcore.ModelSpec.from_hf_config({**cfg, "vision_config": {"architecture": "mobilenetv5_base"}})
    with pytest.raises(ValueError, match="audio_config.sscp_conv_kernel_size"):
        vramcore.ModelSpec.from_hf_config({**cfg, "audio_config": {"sscp_conv_kernel_size": [[3, 3]]}})
    with pytest.raises(ValueError, match="audio_config.conf_num_attention_heads"):
        vramcore.ModelSpec.from_hf_config({**cfg, "audio_config": {"conf_num_attention_heads": 7}})
    with pytest.raises(ValueError, match="audio_config.hidden_size"):
        vramcore.ModelSpec.from_hf_config({**cfg, "audio_config": {"hidden_size": 0}})


def test_safetensors_names_of_the_towers() -> None:
    from vramcore.storage.safetensors import _part

    assert _part("model.audio_tower.conformer.0.attention.attn.q_proj.weight") == "audio_tower"
    assert _part("model.embed_audio.embedding_projection.weight") == "audio_tower"
    assert _part("model.embed_vision.embedding_projection.weight") == "multimodal_projector"
    assert _part("model.vision_tower.timm_model.conv_stem.conv.weight") == "vision_tower"


@pytest.mark.parametrize(("engine", "layout"), [(e, lay) for e in ("transformers", "vllm-text") for lay in LAYOUTS])
def test_kernel_agrees_with_the_oracle_with_the_towers(engine: str, layout: dict) -> None:
    from vramcore import GPUSpec, get_dtype
    from vramcore.grid.reference import reference_estimate

    spec = _whole("Gemma-3n-E4B")
    eng = vramcore.get_engine("vllm", limit_mm_per_prompt=0) if engine == "vllm-text" else vramcore.get_engine(engine)
    gpu = GPUSpec(name="g", vendor="test", memory_total_bytes=80 * 2**30)
    n = layout.get("n_gpus") or layout["tp"] * layout["pp"]
    want = reference_estimate(spec, get_dtype("bf16"), None, eng, n, 8192, 2, gpu.usable_bytes,
                              tp=layout.get("tp"), pp=layout.get("pp"), gpu_name="g")
    got = vramcore.estimate(spec, context=8192, batch=2, gpu=gpu, engine=eng, **layout)
    for field in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "total_bytes"):
        assert getattr(got, field) == want[field], field
