"""The families of issue #10 (OLMo-2, SmolLM3, GLM-4.5, Phi-4, DeepSeek-V3.1/V3.2, Kimi-K2) and the generic reader.

Every card's parameters and cache are held to transformers in
``tests/test_transformers_measured.py``; here: each reader's edge cases, the
new ModelSpec fields and every place they reach (tensors, kernel, oracle,
LoRA modules), the generic reader's warning and refusals, aliases and nested
``text_config``, and DeepSeek-V3.2's measured geometry (its indexer cache is
pending).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

import vramcore
from vramcore import ModelSpec, UnknownModelWarning, VramcoreWarning, get_dtype, get_engine
from vramcore.engines.train import lora_modules
from vramcore.grid.reference import reference_estimate_exact
from vramcore.model.hf import SUPPORTED_MODEL_TYPES

DATA = Path(__file__).parent / "data"
MEASURED: dict[str, Any] = json.loads((DATA / "transformers_measured.json").read_text())["models"]
PENDING = {d["name"]: d for d in (json.loads(p.read_text()) for p in sorted((DATA / "hf_configs" / "pending")
                                                                              .glob("*.json")))}
TINY = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": 100, "max_position_embeddings": 4096}
MLA = {"kv_lora_rank": 16, "q_lora_rank": 24, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 8}
MOE = {"n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}
NEW_CARDS = ["OLMo-2-7B", "SmolLM3-3B", "GLM-4.5-Air", "GLM-4.5", "GLM-4.6", "Phi-4", "Phi-4-mini-instruct",
             "DeepSeek-V3.1", "Kimi-K2-Instruct"]


def read(cfg: dict[str, Any]) -> ModelSpec:
    return ModelSpec.from_hf_config(cfg)


def read_unknown(cfg: dict[str, Any]) -> tuple[ModelSpec, str]:
    with pytest.warns(UnknownModelWarning) as caught:
        spec = read(cfg)
    return spec, " ".join(str(w.message) for w in caught)


# ----------------------------------------------------------------------------- cards
@pytest.mark.parametrize("name", NEW_CARDS)
def test_new_cards_are_measured_and_have_every_seed_field(name: str) -> None:
    card = vramcore.get_model(name)
    seed = json.loads((Path(vramcore.__file__).parent / "model" / "data" / "deepseek-r1-distill-llama-8b.json")
                      .read_text())
    raw = json.loads((Path(vramcore.__file__).parent / "model" / "data" / f"{name.lower()}.json").read_text())
    assert set(seed) <= set(raw)
    assert card.total_params == card.published_params == MEASURED[name]["params"]["total"]
    assert card.sources and card.aliases and card.license and card.release_date
    assert vramcore.get_model(card.hf_repo) is card
    for alias in card.aliases:
        assert vramcore.get_model(alias) is card


@pytest.mark.parametrize(("alias", "name"), [
    ("allenai/OLMo-2-1124-7B-Instruct", "OLMo-2-7B"), ("HuggingFaceTB/SmolLM3-3B-Base", "SmolLM3-3B"),
    ("zai-org/GLM-4.5-Air", "GLM-4.5-Air"), ("microsoft/phi-4", "Phi-4"),
    ("microsoft/Phi-4-mini-instruct", "Phi-4-mini-instruct"), ("deepseek-ai/DeepSeek-V3.1-Terminus", "DeepSeek-V3.1"),
    ("moonshotai/Kimi-K2-Base", "Kimi-K2-Instruct"),
])
def test_hf_ids_of_the_new_cards(alias: str, name: str) -> None:
    assert vramcore.get_model(alias).name == name


def test_fp8_checkpoints_are_counted_as_published() -> None:
    for name in ("DeepSeek-V3.1", "Kimi-K2-Instruct"):
        spec = vramcore.get_model(name).spec
        assert spec.quantization == "fp8-block128"
        assert vramcore.estimate(name, context=1).dtype == "fp8-block128"


# ----------------------------------------------------------------------------- OLMo-2
def test_olmo2_norms_span_the_projections_and_sit_after_the_branches() -> None:
    spec = vramcore.get_model("OLMo-2-7B").spec
    assert spec.qk_norm and spec.qk_norm_full_width and spec.norm_weight_fp32 and spec.norms_per_layer == 2
    h = spec.hidden_size
    # q_norm (32 x 128) + k_norm (32 x 128) + the two post-branch norms, per layer, + the final norm
    assert spec.param_breakdown()["norms"] == spec.num_layers * (2 * 4096 + 2 * h) + h
    layer0 = {t.name: t.shape for t in vramcore.list_tensors(spec) if t.layer == 0 and t.part == "norms"}
    assert layer0 == {"blk.0.post_attention_norm.weight": (h,), "blk.0.post_ffw_norm.weight": (h,),
                      "blk.0.attn_q_norm.weight": (4096,), "blk.0.attn_k_norm.weight": (4096,)}
    gqa = read({**TINY, "model_type": "olmo2"})
    shapes = {t.name: t.shape for t in vramcore.list_tensors(gqa) if "q_norm" in t.name or "k_norm" in t.name}
    assert shapes["blk.0.attn_q_norm.weight"] == (64,) and shapes["blk.0.attn_k_norm.weight"] == (32,)
    biased = read({**TINY, "model_type": "olmo2", "attention_bias": True})
    assert biased.qkv_bias and biased.o_bias


def test_olmo2_training_activations_kernel_equals_oracle() -> None:
    spec = vramcore.get_model("OLMo-2-7B").spec
    per_head = spec.replace(qk_norm_full_width=False, norm_weight_fp32=False)
    for engine in (get_engine("train"), get_engine("train", attention="eager"), get_engine("lora")):
        got = {s: vramcore.estimate(s, context=512, batch=2, gpu="H100", engine=engine).activation_bytes
               for s in (spec, per_head)}
        for s in (spec, per_head):
            exact = reference_estimate_exact(s, get_dtype("bf16"), None, engine, 1, 512, 2,
                                             vramcore.get_gpu("H100").usable_bytes)
            assert got[s] == float(exact["activation_bytes"]), engine
        # one rsqrt per token, not per head, but an fp32 normalized copy (not bf16) per norm: more bytes
        assert got[spec] != got[per_head]


# ----------------------------------------------------------------------------- new fields: validation
@pytest.mark.parametrize(("changes", "match"), [
    ({"qk_norm_full_width": True}, "qk_norm_full_width needs qk_norm=True"),
    ({"qk_norm": True, "qk_norm_full_width": True, **{k: v for k, v in MLA.items()}, "num_kv_heads": 4},
     "not MLA"),
    ({"norm_weight_fp32": True, "norm_plus_one": True}, "two RMSNorm kinds"),
    ({"index_n_heads": 4}, "index_head_dim is required"),
    ({"index_head_dim": 16}, "index_n_heads is required"),
    ({"index_topk": 64}, "index_topk needs"),
    ({"index_n_heads": 4, "index_head_dim": 16}, "need MLA with a q_lora_rank"),
    ({**MLA, "num_kv_heads": 4, "q_lora_rank": None, "index_n_heads": 4, "index_head_dim": 16}, "q_lora_rank"),
    ({**MLA, "num_kv_heads": 4, "index_n_heads": 4, "index_head_dim": 4}, "must be >= qk_rope_head_dim"),
])
def test_new_field_validation(changes: dict[str, Any], match: str) -> None:
    base = dict(num_layers=2, hidden_size=64, num_heads=4, intermediate_size=128, vocab_size=100)
    with pytest.raises(ValueError, match=match):
        ModelSpec(**base, **changes)
    with pytest.raises(TypeError, match="qk_norm_full_width must be a bool"):
        ModelSpec(**base, qk_norm=True, qk_norm_full_width=1)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- SmolLM3
def test_smollm3_nope_layers_change_nothing_and_sliding_follows_the_config_class() -> None:
    card = vramcore.get_model("SmolLM3-3B").spec
    assert card.tie_embeddings and set(card.layer_types) == {"full_attention"}
    nope = read({**TINY, "model_type": "smollm3", "num_hidden_layers": 4})
    rope = read({**TINY, "model_type": "smollm3", "num_hidden_layers": 4, "no_rope_layers": [1, 1, 1, 1]})
    assert nope == rope  # NoPE only skips the rotary embedding
    # SmolLM3Config: a layer slides when use_sliding_window and sliding_window are set and it is a NoPE layer
    sliding = read({**TINY, "model_type": "smollm3", "num_hidden_layers": 8, "use_sliding_window": True,
                    "sliding_window": 64})
    assert sliding.layer_types == ("full_attention",) * 3 + ("sliding_attention",) + ("full_attention",) * 3 + (
        "sliding_attention",)
    assert sliding.sliding_window == 64
    listed = read({**TINY, "model_type": "smollm3", "use_sliding_window": True, "sliding_window": 64,
                   "no_rope_layers": [0, 1]})
    assert listed.layer_types == ("sliding_attention", "full_attention")
    assert read({**TINY, "model_type": "smollm3", "sliding_window": 64, "no_rope_layers": [0, 0]}).n_sliding_layers == 0
    own = read({**TINY, "model_type": "smollm3", "layer_types": ["sliding_attention", "full_attention"],
                "sliding_window": 8})
    assert own.layer_types == ("sliding_attention", "full_attention")
    for bad in ([1], [1, 2], "1101", [True, False]):
        with pytest.raises(ValueError, match="no_rope_layers"):
            read({**TINY, "model_type": "smollm3", "no_rope_layers": bad})


# ----------------------------------------------------------------------------- GLM-4.5
def test_glm4_moe_biases_norms_and_dense_layers() -> None:
    air, full = vramcore.get_model("GLM-4.5-Air").spec, vramcore.get_model("GLM-4.5").spec
    assert air.qkv_bias and not air.o_bias and not air.qk_norm and air.router_fp32
    assert full.qk_norm and not full.qk_norm_full_width
    assert air.mlp_layer_types == ("dense",) + ("moe",) * 45 and full.n_dense_mlp_layers == 3
    assert air.shared_expert_intermediate_size == air.moe_intermediate_size == 1408
    # Glm4MoeConfig defaults: first_k_dense_replace 1, n_shared_experts 1, no q/k norm
    tiny = read({**TINY, "model_type": "glm4_moe", "num_hidden_layers": 3, **MOE})
    assert tiny.mlp_layer_types == ("dense", "moe", "moe") and tiny.shared_expert_intermediate_size == 32
    assert not read({**TINY, "model_type": "glm4_moe", **MOE, "n_shared_experts": 0}).shared_expert_intermediate_size
    # GLM-4.6 is GLM-4.5 with a longer context
    assert vramcore.get_model("GLM-4.6").spec.replace(max_context=131072) == full.replace(name="GLM-4.6")


# ----------------------------------------------------------------------------- Phi-4
def test_phi4_cards_use_the_phi3_layout() -> None:
    phi4, mini = vramcore.get_model("Phi-4").spec, vramcore.get_model("Phi-4-mini-instruct").spec
    assert phi4.model_type == mini.model_type == "phi3"
    assert not phi4.tie_embeddings and mini.tie_embeddings
    assert set(mini.layer_types) == {"sliding_attention"} and mini.sliding_window == 262144
    names = {t.role for t in vramcore.list_tensors(mini) if t.layer == 0}
    assert "attn_qkv" in names and "ffn_gate" not in names  # fused projections


# ----------------------------------------------------------------------------- Kimi-K2 and aliases
def test_kimi_k2_is_read_as_deepseek_v3() -> None:
    card = vramcore.get_model("Kimi-K2-Instruct")
    assert card.config["model_type"] == "kimi_k2" and card.spec.model_type == "deepseek_v3"
    assert "kimi_k2" in SUPPORTED_MODEL_TYPES
    as_v3 = ModelSpec.from_hf_config({**card.config, "model_type": "deepseek_v3"}, name=card.name)
    assert card.spec == as_v3 and card.spec.model_type == as_v3.model_type
    assert card.spec.num_experts == 384 and card.spec.n_dense_mlp_layers == 1
    # peft's MoE conversion goes by model_type: the alias takes deepseek_v3's
    assert {m.name for m in lora_modules(card.spec)} == {m.name for m in lora_modules(as_v3)}


def test_nested_text_config_of_a_known_and_an_unknown_wrapper() -> None:
    text = {"model_type": "kimi_k2", **TINY, **MLA, **MOE, "first_k_dense_replace": 1}
    with pytest.warns(UnknownModelWarning, match="'kimi_k25' is a multimodal wrapper.*text_config \\('kimi_k2'\\).*"
                                                 "towers and projectors are not counted"):
        spec = read({"model_type": "kimi_k25", "text_config": text, "vision_config": {"hidden_size": 8}})
    assert spec.model_type == "deepseek_v3" and spec == read(text)
    # a text_config without its own model_type, under an unknown wrapper: the generic reader, and the towers warning
    with pytest.warns(UnknownModelWarning) as caught:
        spec = read({"model_type": "newvlm", "text_config": TINY})
    messages = [str(w.message) for w in caught]
    assert any("'newvlm_text' is not one vramcore reads" in m for m in messages)
    assert any("'newvlm' is a multimodal wrapper" in m for m in messages)
    assert spec.param_count == read({**TINY, "model_type": "llama"}).param_count


# ----------------------------------------------------------------------------- DeepSeek-V3.2 (pending cache)
def test_deepseek_v32_parameters_and_indexer_cache_match_transformers() -> None:
    (name, entry), = PENDING.items()
    spec = ModelSpec.from_hf_config(entry["config"], name=name)
    m = MEASURED[name]
    assert spec.param_count == m["params"]["total"] == 671_877_929_216
    expected = dict(m["params"]["by_category"])
    expected["attention"] -= m["params"]["attention_internal_norms"]
    expected["norms"] += m["params"]["attention_internal_norms"]
    assert {k: v for k, v in spec.param_breakdown().items() if v} == expected
    assert m["params"]["dtypes_as_built"]["float32"] == spec.param_breakdown()["router"]  # indexer kept in bf16
    assert spec.has_indexer and (spec.index_n_heads, spec.index_head_dim, spec.index_topk) == (64, 128, 2048)
    # what the lead's indexed-attention cache kind must add: transformers' DynamicIndexedLayer keeps the MLA
    # latent and one indexer key of index_head_dim per token and layer, in the compute dtype
    kind = m["kv_cache"]["layer_kinds"]["indexed_attention"]
    assert kind["layers"] == spec.num_layers and kind["cached_indexer_keys_dim"] == spec.index_head_dim
    assert kind["bytes_per_token_per_layer"] == 2 * (spec.kv_cache_width + spec.index_head_dim)
    # the transformers engine counts both, as measured
    assert vramcore.estimate(spec, context=1).kv_cache_bytes == kind["bytes_per_token_per_layer"] * spec.num_layers
    # vLLM keeps the indexer key in fp8 with an fp32 scale per 128 elements (DeepseekV32IndexerCache): 132 B
    e = vramcore.estimate(spec, dtype="fp8", context=4096, engine="vllm", n_gpus=8, gpu="H200")
    assert e.kv_blocks and (e.kv_cache_bytes / e.kv_blocks) == 16 * spec.num_layers * (2 * 576 + 132)
    by_part: dict[str, int] = {}
    for t in vramcore.list_tensors(spec):
        by_part[t.part] = by_part.get(t.part, 0) + t.numel
    assert {k: v for k, v in by_part.items() if v} == {k: v for k, v in spec.param_breakdown().items() if v}
    assert {"wq_b", "wk", "weights_proj"} <= {m.name for m in lora_modules(spec)}  # peft's all-linear adapts them


def test_deepseek_v32_reader_rules() -> None:
    base = {**TINY, "model_type": "deepseek_v32", **MLA, **MOE, "num_hidden_layers": 4, "index_n_heads": 2,
            "index_head_dim": 16}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VramcoreWarning)
        assert read(base).mlp_layer_types == ("dense",) * 3 + ("moe",)  # first_k_dense_replace defaults to 3
        listed = read({**base, "mlp_layer_types": ["dense", "sparse", "dense", "sparse"]})
        assert listed.mlp_layer_types == ("dense", "moe", "dense", "moe")
        assert read({**base, "layer_types": ["indexed_attention"] * 4}).layer_types == ("full_attention",) * 4
        assert read({key: v for key, v in base.items() if key != "q_lora_rank"}).q_lora_rank == 1536
        for bad, match in [({"mlp_layer_types": ["moe"] * 4}, "mlp_layer_types"),
                           ({"layer_types": ["sliding_attention"] * 4}, "indexed_attention"),
                           ({"index_head_dim": 4}, "qk_rope_head_dim")]:
            with pytest.raises(ValueError, match=match):
                read({**base, **bad})


# ----------------------------------------------------------------------------- the generic reader
def test_unknown_model_type_warns_with_the_type_and_every_assumption() -> None:
    spec, message = read_unknown({**TINY, "model_type": "newfam"})
    for phrase in ("model_type 'newfam' is not one vramcore reads", "Llama-like decoder",
                   "gated MLP of 3 projections (gate, up, down)", "2 RMSNorms of hidden_size",
                   "no attention biases (attention_bias absent)", "no MLP biases (mlp_bias absent)", "no q/k norms",
                   "lm_head untied (tie_word_embeddings absent)", "head_dim = hidden_size / num_attention_heads",
                   "every layer full attention (no layer_types, no sliding_window)",
                   "a dense MLP on every layer"):
        assert phrase in message, phrase
    assert spec.model_type == "newfam" and spec == read({**TINY, "model_type": "llama"}).replace(name="newfam")
    _, message = read_unknown({**TINY, "model_type": "newfam", "attention_bias": True, "tie_word_embeddings": True,
                               "use_qk_norm": True, "head_dim": 16})
    assert "biases on q, k, v and o (attention_bias)" in message and "tied to the embedding" in message
    assert "per-head q/k RMSNorms (use_qk_norm)" in message and "head_dim =" not in message
    _, message = read_unknown({**TINY, "model_type": "newfam", "num_key_value_heads": None})
    assert "num_key_value_heads = num_attention_heads (absent" in message


def test_unknown_model_type_missing_fields_are_named_at_once() -> None:
    with pytest.raises(ValueError, match="model_type 'newfam'.*missing 'num_hidden_layers', 'num_attention_heads', "
                                         "'vocab_size', 'intermediate_size'"):
        read({"model_type": "newfam", "hidden_size": 64})
    moe = {**TINY, "model_type": "newfam", "num_local_experts": 4}
    del moe["intermediate_size"]
    with pytest.raises(ValueError, match="missing 'intermediate_size', 'num_experts_per_tok'"):
        read(moe)
    with pytest.raises(ValueError, match="missing 'head_dim'"):
        read({**TINY, "model_type": "newfam", "hidden_size": 66})
    with pytest.raises(ValueError, match="missing 'qk_nope_head_dim', 'v_head_dim'"):
        read({**TINY, "model_type": "newfam", "kv_lora_rank": 16, "qk_rope_head_dim": 8})
    with pytest.raises(ValueError, match="missing 'sliding_window'"):
        read({**TINY, "model_type": "newfam", "layer_types": ["sliding_attention", "full_attention"]})
    for bad in ("", 7, ["llama"]):
        with pytest.raises(ValueError, match="'model_type' must be a non-empty string"):
            read({**TINY, "model_type": bad})


@pytest.mark.parametrize("kinds", [["linear_attention", "full_attention"], ["mamba", "attention"],
                                   ["conv", "full_attention"], ["chunked_attention", "full_attention"]])
def test_unknown_model_type_layer_kinds_beyond_full_and_sliding_are_refused_by_name(kinds: list[str]) -> None:
    odd = [k for k in kinds if k != "full_attention"]
    with pytest.raises(ValueError, match="layer kinds vramcore cannot estimate yet: " + ", ".join(
            f"'{k}' \\(1 layer\\)" for k in odd)):
        read({**TINY, "model_type": "newfam", "layer_types": kinds})


def test_unknown_model_type_sliding_moe_and_mla() -> None:
    spec, message = read_unknown({**TINY, "model_type": "newfam", "sliding_window": 32})
    assert set(spec.layer_types) == {"sliding_attention"} and "every layer sliding" in message
    spec, _ = read_unknown({**TINY, "model_type": "newfam", "sliding_window": 32, "use_sliding_window": False})
    assert set(spec.layer_types) == {"full_attention"}
    spec, message = read_unknown({**TINY, "model_type": "newfam", "layer_types": ["sliding_attention",
                                                                                  "full_attention"],
                                  "sliding_window": 32})
    assert spec.layer_types == ("sliding_attention", "full_attention") and "from layer_types" in message
    # Mixtral-style (experts of intermediate_size) and DeepSeek-style (first_k_dense_replace, shared experts)
    spec, message = read_unknown({**TINY, "model_type": "newfam", "num_local_experts": 8, "num_experts_per_tok": 2})
    assert spec.num_experts == 8 and spec.moe_intermediate_size == 128 and spec.n_moe_layers == 2
    assert "8 routed experts (num_local_experts) of intermediate_size width" in message
    spec, message = read_unknown({**TINY, "model_type": "newfam", "num_hidden_layers": 3, **MOE,
                                  "n_shared_experts": 2, "first_k_dense_replace": 1})
    assert spec.mlp_layer_types == ("dense", "moe", "moe") and spec.shared_expert_intermediate_size == 64
    assert "first_k_dense_replace=1" in message and "shared experts of total width 64" in message
    only_moe = {k: v for k, v in TINY.items() if k != "intermediate_size"}
    spec, _ = read_unknown({**only_moe, "model_type": "newfam", **MOE})
    assert spec.n_dense_mlp_layers == 0 and spec.intermediate_size == 32
    spec, message = read_unknown({**TINY, "model_type": "newfam", **MLA})
    assert spec.is_mla and spec.kv_cache_width == 16 + 8 and "multi-head latent attention" in message
    spec, _ = read_unknown({**TINY, "model_type": "newfam", **MOE, "mlp_layer_types": ["sparse", "dense"]})
    assert spec.mlp_layer_types == ("moe", "dense")


@pytest.mark.parametrize("name", ["granite-tiny (generic reader)", "ministral-tiny (generic reader)"])
def test_generic_reader_reproduces_transformers_for_llama_like_families(name: str) -> None:
    cfg = json.loads((DATA / "hf_configs" / f"generic-{name.split('-')[0]}-tiny.json").read_text())["config"]
    spec, message = read_unknown(cfg)
    assert f"model_type {cfg['model_type']!r}" in message
    m = MEASURED[name]
    assert spec.param_count == m["params"]["total"]
    assert {k: v for k, v in spec.param_breakdown().items() if v} == m["params"]["by_category"]
    for kind, entry in m["kv_cache"]["layer_kinds"].items():
        assert spec.layer_types.count(kind) == entry["layers"]
        assert 2 * spec.kv_cache_width == entry["bytes_per_token_per_layer"]
