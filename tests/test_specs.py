"""ModelSpec: hand-written specs, HF config reading, validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from vramcore.hf import SUPPORTED_MODEL_TYPES

import vramcore
from vramcore import ModelSpec

LLAMA_8B = dict(num_layers=32, hidden_size=4096, num_heads=32, num_kv_heads=8,
                intermediate_size=14336, vocab_size=128256, max_context=131072)

# DeepSeek-R1-Distill-Llama-8B config.json (huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Llama-8B)
R1_8B_CONFIG = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256,
    "max_position_embeddings": 131072, "tie_word_embeddings": False, "attention_bias": False,
    "mlp_bias": False, "torch_dtype": "bfloat16",
}


def test_hand_written_llama_8b_equals_config() -> None:
    spec = ModelSpec(name="r1-8b", **LLAMA_8B)
    assert spec.head_dim == 128
    assert spec.param_count == 8_030_261_248  # transformers, see test_reference_facts
    assert spec == ModelSpec.from_hf_config(R1_8B_CONFIG, name="r1-8b")


def test_seed_card() -> None:
    card = vramcore.get_model("DeepSeek-R1-Distill-Llama-8B")
    assert card.company == "DeepSeek"
    assert card.release_date == "2025-01-20"
    assert card.modality == "text"
    assert card.context_window == 131072
    assert (card.layers, card.hidden_size, card.attention_heads, card.kv_heads, card.kv_layers) == (
        32, 4096, 32, 8, 32)
    assert card.total_params == card.active_params == 8_030_261_248
    assert round(card.total_params / 1e9, 2) == 8.03
    assert card.license and card.family and card.architecture and card.notes and card.usage
    assert card.sources
    d = card.to_dict()
    json.dumps(d)
    for key in ("company", "family", "release_date", "architecture", "license", "modality",
                "context_window", "total_params", "active_params", "layers", "hidden_size",
                "attention_heads", "kv_heads", "kv_layers", "notes", "usage"):
        assert key in d


def test_every_card_builds_and_matches_its_published_count() -> None:
    names = vramcore.list_models()
    assert len(names) >= 20
    for name in names:
        card = vramcore.get_model(name)
        spec = card.spec
        assert spec.param_count > 0
        assert spec.active_param_count <= spec.param_count
        if card.published_params is not None:
            assert spec.param_count == card.published_params, name
        assert card.context_window >= 1
        assert card.sources, name


def test_model_names_case_insensitive_and_close_matches() -> None:
    a = vramcore.get_model("deepseek-r1-distill-llama-8b")
    b = vramcore.get_model("DeepSeek R1 Distill Llama 8B")
    assert a is b
    with pytest.raises(ValueError, match="did you mean.*DeepSeek-R1-Distill-Llama-8B"):
        vramcore.get_model("DeepSeek-R1-Distill-Lama-8B")
    with pytest.raises(TypeError, match="model"):
        vramcore.get_model(8)  # type: ignore[arg-type]


def test_from_hf_config_path_and_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(R1_8B_CONFIG))
    by_folder = ModelSpec.from_hf_config(folder)
    by_file = ModelSpec.from_hf_config(folder / "config.json")
    by_str = ModelSpec.from_hf_config(str(folder))
    assert by_folder == by_file == by_str
    assert by_folder.name == "my-model"
    est = vramcore.estimate(str(folder), context=1024)
    assert est.kv_cache_bytes == 1024 * 131072


def test_from_hf_config_errors(tmp_path: Path) -> None:
    # an unknown model type is read as a Llama-like decoder, with a warning that names it (and a close match)
    with pytest.warns(vramcore.UnknownModelWarning, match="model_type 'lama' is not one vramcore reads.*did you "
                      "mean 'llama'"):
        lama = ModelSpec.from_hf_config({**R1_8B_CONFIG, "model_type": "lama"})
    assert lama.param_breakdown() == ModelSpec.from_hf_config(R1_8B_CONFIG).param_breakdown()
    missing = dict(R1_8B_CONFIG)
    del missing["num_hidden_layers"]
    with pytest.raises(ValueError, match="missing field 'num_hidden_layers'"):
        ModelSpec.from_hf_config(missing)
    with pytest.raises(ValueError, match="model_type"):
        ModelSpec.from_hf_config({"hidden_size": 8})
    with pytest.raises(ValueError, match="no such file"):
        ModelSpec.from_hf_config(tmp_path / "nope.json")
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        ModelSpec.from_hf_config(bad)
    with pytest.raises(TypeError, match="config must be"):
        ModelSpec.from_hf_config(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'hidden_size' must be an integer"):
        ModelSpec.from_hf_config({**R1_8B_CONFIG, "hidden_size": 4096.5})


def test_supported_model_types() -> None:
    for t in ("llama", "mistral", "qwen2", "qwen3", "qwen3_moe", "mixtral", "gemma2", "gemma3",
              "gemma3_text", "phi3", "deepseek_v3", "gpt_oss"):
        assert t in SUPPORTED_MODEL_TYPES


def test_family_keys_live_in_the_module_named_after_them() -> None:
    """What lets a config of type T import the family module named T alone (vramcore.model.hf._own_module)."""
    import importlib
    import pkgutil

    from vramcore.model import hf

    modules = {i.name: importlib.import_module(f"vramcore.model.hf.{i.name}") for i in pkgutil.iter_modules(hf.__path__)
               if not i.name.startswith("_") and i.name != "quantization"}
    for name, module in modules.items():
        for table in ("READERS", "REFUSED", "DEFAULTS", "TOWERS"):
            for key in getattr(module, table, {}):
                assert key not in modules or key == name, f"{table}[{key!r}] of {name}.py belongs in {key}.py"


@pytest.mark.filterwarnings("ignore::vramcore.UnknownModelWarning")
def test_own_module_reads_as_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every card and test config reads the same with the module shortcut and through the full registry."""
    from vramcore.model import hf

    configs = [vramcore.get_model(n).config for n in vramcore.list_models()]
    folder = Path(__file__).parent / "data" / "hf_configs"
    configs += [json.loads(p.read_text())["config"] for p in folder.glob("*.json")]
    fast = [hf.read_hf_config(c, name="x") for c in configs]
    assert any(hf._own_module(c["model_type"]) is not None for c in configs)
    monkeypatch.setattr(hf, "_own_module", lambda model_type: None)
    assert [hf.read_hf_config(c, name="x") for c in configs] == fast
    assert hf._own_module("_reader") is None and hf._own_module("quantization") is None


@pytest.mark.parametrize(
    ("changes", "exc", "match"),
    [
        ({"num_kv_heads": 5}, ValueError, r"num_heads \(32\) must be divisible by num_kv_heads \(5\)"),
        ({"num_layers": 0}, ValueError, "num_layers must be >= 1, got 0"),
        ({"hidden_size": -4096}, ValueError, "hidden_size must be >= 1"),
        ({"hidden_size": 4096.0}, TypeError, "hidden_size must be an int"),
        ({"vocab_size": True}, TypeError, "vocab_size must be an int"),
        ({"sliding_window": 0}, ValueError, "sliding_window must be >= 1, got 0"),
        ({"sliding_window": -5}, ValueError, "sliding_window must be >= 1"),
        ({"layer_types": ("sliding_attention",) * 32}, ValueError, "sliding_window is required"),
        ({"layer_types": ("chunked_attention", "full_attention") * 16}, ValueError,
         "sliding_window is required when layer_types has 'chunked_attention' layers"),
        ({"layer_types": ("full_attention",) * 3}, ValueError, "has 3 entries, expected num_layers=32"),
        ({"layer_types": ("local",) * 32}, ValueError, r"layer_types\[0\] = 'local'"),
        ({"kv_lora_rank": 512}, ValueError, "qk_rope_head_dim is required for MLA"),
        ({"num_experts": 8, "experts_per_token": 9}, ValueError, "experts_per_token must be in"),
        ({"experts_per_token": 2}, ValueError, "num_experts is 0"),
        ({"tie_embeddings": 1}, TypeError, "tie_embeddings must be a bool"),
        ({"hidden_size": 4000, "num_heads": 30, "num_kv_heads": 10}, ValueError,
         "pass head_dim explicitly"),
    ],
)
def test_spec_validation(changes: dict, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        ModelSpec(**{**LLAMA_8B, **changes})


def test_sliding_window_without_layer_types_makes_all_layers_sliding() -> None:
    spec = ModelSpec(**LLAMA_8B, sliding_window=4096)
    assert spec.n_sliding_layers == 32 and spec.n_full_layers == 0


def test_head_dim_from_config_is_not_derived() -> None:
    # Gemma-2-9B: head_dim 256 while hidden / heads = 224
    gemma = vramcore.get_model("google/gemma-2-9b").spec
    assert gemma.head_dim == 256 != gemma.hidden_size // gemma.num_heads


def test_moe_active_params() -> None:
    spec = ModelSpec(**{**LLAMA_8B, "num_experts": 8, "experts_per_token": 2})
    parts = spec.param_breakdown()
    per_expert = parts["mlp_routed_experts"] // 8
    assert spec.active_param_count == spec.param_count - 6 * per_expert
    assert parts["mlp_dense"] == 0
    dense_first = spec.replace(first_dense_layers=2)
    assert dense_first.n_dense_mlp_layers == 2 and dense_first.n_moe_layers == 30


def test_mla_kv_width() -> None:
    v3 = vramcore.get_model("deepseek-ai/DeepSeek-V3").spec
    assert v3.is_mla and v3.kv_cache_width == 512 + 64
    assert math.isclose(v3.active_param_count / 1e9, 37.5, rel_tol=0.03)  # "37B activated"


def test_a_card_by_its_name_reads_one_file() -> None:
    """The lookup by canonical name (one card file read) gives the very card the whole catalog gives."""
    import os

    from vramcore._names import normalize_name
    from vramcore.model import cards

    canonical = {normalize_name(n) for n in vramcore.list_models()}
    for key, card in cards._table().items():  # no alias of one card is another card's canonical key
        assert key not in canonical or normalize_name(card.name) == key
    for name in vramcore.list_models():
        assert os.path.isfile(os.path.join(cards._FOLDER, normalize_name(name) + ".json"))
        for spelling in (name, name.upper(), name.replace("-", "_")):
            assert cards._by_file(spelling) is cards._cards()[name] is vramcore.get_model(spelling)
    for other in ("README", "readme.md", "../spec", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "", "."):
        assert cards._by_file(other) is None
    assert vramcore.get_model("deepseek-ai/DeepSeek-R1-Distill-Llama-8B").name == "DeepSeek-R1-Distill-Llama-8B"
