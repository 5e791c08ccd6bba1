"""The training engines held to measured facts: peft's trainable counts, DeepSpeed's ZeRO estimators,
optimizer states after one step, and the bytes autograd saves for backward.

Every figure comes from ``tools/measure_training.py`` (torch 2.13 CPU, transformers 5.24, peft 0.21.2,
bitsandbytes 0.50.2, deepspeed 0.19.8), committed as ``tests/data/training_measured.json``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vramcore
from vramcore import GPUSpec, ModelSpec, VramcoreWarning, get_engine
from vramcore.engines.train import optimizer_state_bytes, trainable_by_part

MEASURED = json.loads((Path(__file__).parent / "data" / "training_measured.json").read_text())
H100 = "H100"


def _quiet_trainable(spec: ModelSpec, **knobs: Any) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VramcoreWarning)
        return sum(trainable_by_part(spec, get_engine("lora", **knobs)).values())


# ---------------------------------------------------------------------- peft
def _card_spec(card: str) -> ModelSpec:
    """A card's spec, or that of the tests/data/hf_configs file the script measured under that name."""
    for path in (Path(__file__).parent / "data" / "hf_configs").glob("*.json"):
        raw = json.loads(path.read_text())
        if raw.get("name") == card:
            return ModelSpec.from_hf_config(raw["config"])
    return vramcore.get_model(card).spec


def _peft_cases() -> list[tuple[str, int, str, dict[str, Any]]]:
    cases = []
    for card, entries in MEASURED["peft"]["cards"].items():
        for rank_key, by_target in entries.items():
            if not rank_key.startswith("r"):
                continue
            for target, entry in by_target.items():
                cases.append((card, int(rank_key[1:]), target, entry))
    return cases


@pytest.mark.parametrize(("card", "rank", "target", "entry"), _peft_cases(),
                         ids=[f"{c}-r{r}-{t}" for c, r, t, _ in _peft_cases()])
def test_lora_trainable_params_equal_peft(card: str, rank: int, target: str, entry: dict[str, Any]) -> None:
    spec = _card_spec(card)
    targets: str | list[str] = target if target == "all-linear" else target.split("+")
    if entry.get("skipped"):
        measured = entry.get("with_lora_dropout_0")
        if measured is None:    # peft raised: no target names a module of the model, or out_proj of a Mamba model
            refused = "incompatible with Mamba" in entry["error"]
            with pytest.raises(ValueError, match="incompatible with Mamba" if refused else "name no module"):
                _quiet_trainable(spec, lora_rank=rank, lora_targets=targets)
            return
        entry = measured        # peft 0.21 refuses dropout on fused experts; counted with dropout 0
    assert _quiet_trainable(spec, lora_rank=rank, lora_targets=targets) == entry["trainable"]


def test_every_card_family_has_peft_counts() -> None:
    families = {_card_spec(c).model_type for c in MEASURED["peft"]["cards"]}
    assert families >= {"llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma2", "gemma3_text",
                        "deepseek_v3", "gpt_oss", "phi3"}


def test_estimate_reports_peft_count_and_fp32_adapters() -> None:
    e = vramcore.estimate("Llama-3.2-1B", context=1024, engine=get_engine("lora", lora_rank=16), gpu=H100)
    assert e.trainable_params == 11272192                      # peft, all-linear, r=16
    # peft keeps the adapters in fp32: 4-byte gradients, two fp32 AdamW states, no master copy
    assert e.gradients_bytes == 4 * 11272192
    assert e.optimizer_bytes == 8 * 11272192
    assert e.master_weights_bytes == 0


def test_lora_target_errors_and_warnings() -> None:
    spec = vramcore.get_model("DeepSeek-R1").spec
    with pytest.raises(ValueError, match=r"name no module of DeepSeek-R1.*kv_a_proj_with_mqa"):
        vramcore.estimate(spec, context=128, engine=get_engine("lora", lora_targets=["q_proj", "v_proj"]))
    with pytest.raises(ValueError, match="gate_proj and up_proj are one fused parameter"):
        vramcore.estimate("Qwen3-30B-A3B", context=128, engine=get_engine("lora", lora_targets=["gate_proj"]))
    with pytest.warns(VramcoreWarning, match=r"\['w9'\] are not modules"):
        vramcore.estimate("Llama-3.2-1B", context=128, engine=get_engine("lora", lora_targets=["q_proj", "w9"]))
    with pytest.warns(VramcoreWarning, match="lora_rank 600 is above the smallest dimension of k_proj"):
        vramcore.estimate("Llama-3.2-1B", context=128, engine=get_engine("lora", lora_rank=600,
                                                                        lora_targets=["k_proj"]))


# ---------------------------------------------------------------------- DeepSpeed ZeRO
ZERO_CARDS = {1235814400: "Llama-3.2-1B", 8030261248: "Llama-3.1-8B", 70553706496: "Llama-3.1-70B"}


def _model_states(card: str, **knobs: Any) -> vramcore.Estimate:
    engine = get_engine("train", optimizer="adamw", precision="bf16-mixed", **knobs)
    return vramcore.estimate(card, context=1, engine=engine)


def _gpu_states(e: vramcore.Estimate) -> float:
    return e.weights_bytes + e.gradients_bytes + e.optimizer_bytes + e.master_weights_bytes


@pytest.mark.parametrize("case", MEASURED["deepspeed"]["zero2"]["cases"],
                         ids=lambda c: f"P{c['total_params']}-g{c['num_gpus_per_node']}x{c['num_nodes']}-"
                                       f"off{int(c['cpu_offload'])}")
def test_zero2_model_states_equal_deepspeed(case: dict[str, Any]) -> None:
    card = ZERO_CARDS[case["total_params"]]
    assert vramcore.get_model(card).spec.param_count == case["total_params"]
    gpus = case["num_gpus_per_node"] * case["num_nodes"]
    knobs: dict[str, Any] = {"zero": 2, "dp": gpus, "offload_optimizer": case["cpu_offload"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VramcoreWarning)   # ZeRO over dp=1: what DeepSpeed's 1-GPU rows ask
        e = _model_states(card, **knobs)
    assert _gpu_states(e) == case["gpu_mem"]              # byte for byte
    if case["cpu_offload"]:
        # DeepSpeed's host figure is per node with a 1.5 buffer factor and at least 4 bytes x params per
        # process at load time: P x max(4 G, 16) x 1.5.  Ours is per GPU, the sharded fp32 states (16 P / G).
        assert e.host_bytes * gpus == 16 * case["total_params"]
        if case["num_nodes"] == 1 and 4 * gpus <= 16:
            assert e.host_bytes * gpus * 1.5 == case["cpu_mem"]


@pytest.mark.parametrize("case", MEASURED["deepspeed"]["zero3"]["cases"],
                         ids=lambda c: f"P{c['total_params']}-g{c['num_gpus_per_node']}x{c['num_nodes']}-"
                                       f"off{int(c['cpu_offload'])}{int(c['cpu_offload_params'])}-"
                                       f"init{int(c['zero_init'])}")
def test_zero3_model_states_equal_deepspeed(case: dict[str, Any]) -> None:
    card = ZERO_CARDS[case["total_params"]]
    spec = vramcore.get_model(card).spec
    # DeepSpeed is given the largest layer; ours is the largest tensor, here the embedding
    assert max(t.numel for t in vramcore.model.tensors.list_tensors(spec)) == case["largest_layer_params"]
    gpus = case["num_gpus_per_node"] * case["num_nodes"]
    knobs: dict[str, Any] = {"zero": 3, "dp": gpus, "offload_optimizer": case["cpu_offload"],
                             "offload_params": case["cpu_offload"] and case["cpu_offload_params"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VramcoreWarning)
        e = _model_states(card, **knobs)
    assert _gpu_states(e) == case["gpu_mem"]
    if knobs["offload_params"]:
        assert e.host_bytes * gpus == 18 * case["total_params"]   # DeepSpeed (zero_init): 18 P per node x 1.5
    elif knobs["offload_optimizer"]:
        assert e.host_bytes * gpus == 16 * case["total_params"]


def test_zero3_with_one_gpu_warns() -> None:
    with pytest.warns(VramcoreWarning, match="ZeRO-3 with dp=1"):
        vramcore.estimate("Llama-3.2-1B", context=128, engine=get_engine("train", zero=3))


def test_offload_needs_zero() -> None:
    with pytest.raises(ValueError, match="offload_optimizer needs zero >= 1"):
        get_engine("train", offload_optimizer=True)
    with pytest.raises(ValueError, match="offload_params needs zero=3"):
        get_engine("train", zero=2, dp=4, offload_params=True)


def test_fsdp_and_training_argument_aliases() -> None:
    e = get_engine("train", fsdp="full_shard", dp=8, gradient_checkpointing=True, optim="adamw_torch_fused",
                   attn_implementation="eager")
    assert (e.zero, e.recompute, e.optimizer, e.attention) == (3, "full", "adamw", "eager")
    assert get_engine("lora", r=32, target_modules=["q_proj"]).lora_rank == 32
    with pytest.raises(ValueError, match="fsdp must be one of"):
        get_engine("train", fsdp="everything")


# ---------------------------------------------------------------------- optimizer states
OPT = MEASURED["optimizers"]["results"]
#: our optimizer name and SGD momentum, per measured optimizer
OPT_NAMES = {"torch.AdamW": ("adamw", 0.0), "torch.Adam": ("adam", 0.0), "torch.SGD_momentum0": ("sgd", 0.0),
             "torch.SGD_momentum0.9": ("sgd", 0.9), "torch.Muon": ("muon", 0.0),
             "transformers.Adafactor_default": ("adafactor", 0.0), "bnb.Lion": ("lion", 0.0),
             "bnb.AdamW8bit": ("adamw_8bit", 0.0), "bnb.PagedAdamW8bit": ("paged_adamw_8bit", 0.0),
             "bnb.Lion8bit": ("lion_8bit", 0.0)}
QMAPS = {"adamw_8bit": 2048, "paged_adamw_8bit": 2048, "lion_8bit": 1024}


@pytest.mark.parametrize("measured", sorted(OPT_NAMES))
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_optimizer_state_bytes_equal_one_real_step(measured: str, dtype: str) -> None:
    name, momentum = OPT_NAMES[measured]
    result = OPT[measured][dtype]
    state = 4 if dtype == "float32" else 2        # pure-dtype training: states in the parameter dtype
    got = optimizer_state_bytes(name, (1024, 1024), state, momentum) + QMAPS.get(name, 0)
    assert got == result["state_bytes"]
    for shape_key, entries in result.get("state_tensors", {}).items():
        if shape_key == "error" or shape_key.endswith("_alone"):
            continue
        shape = tuple(int(x) for x in shape_key.split("x"))
        # torch keeps `step` as a CPU scalar tensor (unless capturable / fused): not GPU memory, as state_bytes
        measured_bytes = sum(v["bytes"] for k, v in entries.items() if not k.startswith("qmap") and k != "step")
        assert optimizer_state_bytes(name, shape, state, momentum) == measured_bytes, shape_key


def test_muon_steps_matrices_and_adamw_the_rest() -> None:
    # torch.optim.Muon takes 2-D parameters only (measured: ValueError on a vector); vectors, embeddings and the
    # output layer step with AdamW in the usual recipe
    assert "Muon only supports 2D" in OPT["torch.Muon"]["bfloat16"]["state_tensors"]["error"]
    assert optimizer_state_bytes("muon", (4096,), 4) == optimizer_state_bytes("adamw", (4096,), 4)
    assert optimizer_state_bytes("muon", (1000, 64), 4, is_embedding=True) == 8 * 64000


# ---------------------------------------------------------------------- activations saved for backward
def _activation_cases() -> list[tuple[str, int, str, str, str, int]]:
    out = []
    for geometry, g in MEASURED["activations"]["geometries"].items():
        for layers, by_impl in g["by_layers"].items():
            for impl, entry in by_impl.items():
                if "error" in entry:
                    continue
                for ckpt in ("no_checkpointing", "checkpointing"):
                    for shape, x in entry[ckpt].items():
                        out.append((geometry, int(layers), impl, ckpt, shape, x["activation_bytes"]))
    return out


@pytest.mark.parametrize(("geometry", "layers", "impl", "ckpt", "shape", "measured"), _activation_cases(),
                         ids=[f"{g}-L{n}-{i}-{c}-{s}" for g, n, i, c, s, _ in _activation_cases()])
def test_saved_activations_equal_measured_bytes(geometry: str, layers: int, impl: str, ckpt: str, shape: str,
                                                measured: int) -> None:
    g = MEASURED["activations"]["geometries"][geometry]
    types = g["by_layers"][str(layers)][impl]["layer_types"]
    spec = vramcore.get_model(g["card"]).spec.replace(
        num_layers=layers, vocab_size=MEASURED["activations"]["small_vocab"],
        layer_types=tuple(types) if types else None, name=f"{geometry}-small")
    batch, context = (int(x[1:]) for x in shape.split("_"))
    engine = get_engine("train", precision="bf16", attention=impl,
                        recompute="full" if ckpt == "checkpointing" else "none", backward_transient=False)
    got = vramcore.estimate(spec, context=context, batch=batch, engine=engine).activation_bytes
    assert got == measured


def _lora_activation_cases() -> list[tuple[str, int, str, str, str, int, int]]:
    out = []
    for geometry, g in MEASURED["lora_activations"]["geometries"].items():
        for layers, by_key in g["by_layers"].items():
            for key, entry in by_key.items():
                if "error" in entry:
                    continue
                for mode in ("no_checkpointing", "checkpointing", "autocast_no_checkpointing",
                             "autocast_checkpointing"):
                    for shape, x in entry[mode].items():
                        out.append((geometry, int(layers), key, mode, shape, x["activation_bytes"],
                                    entry["trainable"]))
    return out


@pytest.mark.parametrize(("geometry", "layers", "key", "mode", "shape", "measured", "trainable"),
                         _lora_activation_cases(),
                         ids=[f"{g}-L{n}-{k}-{m}-{s}" for g, n, k, m, s, _, _ in _lora_activation_cases()])
def test_lora_saved_activations_equal_measured_bytes(geometry: str, layers: int, key: str, mode: str, shape: str,
                                                     measured: int, trainable: int) -> None:
    # peft LoRA r=16 on a bf16 base: "bf16" runs the forward plain (fp32 copies of each adapted input),
    # "bf16-mixed" under torch.autocast as transformers' Trainer does (16-bit copies and adapter weights)
    g = MEASURED["lora_activations"]["geometries"][geometry]
    entry = g["by_layers"][str(layers)][key]
    impl, target = key.split("/")
    spec = vramcore.get_model(g["card"]).spec.replace(
        num_layers=layers, vocab_size=MEASURED["lora_activations"]["small_vocab"],
        layer_types=tuple(entry["layer_types"]) if entry["layer_types"] else None, name=f"{geometry}-small")
    batch, context = (int(x[1:]) for x in shape.split("_"))
    engine = get_engine("lora", lora_rank=MEASURED["lora_activations"]["rank"],
                        lora_targets=target if target == "all-linear" else target.split("+"), attention=impl,
                        recompute="none" if mode.endswith("no_checkpointing") else "full",
                        precision="bf16-mixed" if mode.startswith("autocast") else "bf16",
                        backward_transient=False)
    e = vramcore.estimate(spec, context=context, batch=batch, engine=engine)
    assert e.trainable_params == trainable
    assert e.activation_bytes == measured


def test_gemma2_has_no_sdpa_in_transformers() -> None:
    err = MEASURED["activations"]["geometries"]["Gemma-2-2B"]["by_layers"]["1"]["sdpa"]["error"]
    assert "does not support an attention implementation" in err


def test_korthikanti_rule_differs_from_measured_as_documented() -> None:
    # 34 s b h + 5 a s^2 b per layer (Korthikanti et al. 2022, GPT-style MLP of 4h, fp16, no GQA) against
    # the measured Llama-3.2-1B layer: a gated MLP of 4 h (8192 = 4 x 2048), fp32 norm inputs, GQA
    h, heads, s = 2048, 32, 128
    g = MEASURED["activations"]["geometries"]["Llama-3.2-1B"]["by_layers"]
    per_layer = {impl: g["2"][impl]["no_checkpointing"]["b1_s128"]["activation_bytes"]
                 - g["1"][impl]["no_checkpointing"]["b1_s128"]["activation_bytes"] for impl in ("sdpa", "eager")}
    korthikanti = 34 * s * h + 5 * heads * s * s
    assert per_layer["sdpa"] == 108680 * s            # 53.07 s h: fp32 norms (+16 h), a gated MLP (+16 h vs 4 h)
    assert per_layer["eager"] - per_layer["sdpa"] == 6 * heads * s * s + 6016 * s   # 6 bytes a score, not 5
    assert per_layer["sdpa"] > korthikanti - 5 * heads * s * s


# ---------------------------------------------------------------------- properties
SPECS = st.sampled_from(["Llama-3.2-1B", "Qwen3-0.6B", "Gemma-2-2B", "Qwen3-30B-A3B", "Mixtral-8x7B-v0.1",
                         "DeepSeek-R1-Distill-Llama-8B"])
GPU = GPUSpec(name="big", vendor="test", memory_total_bytes=2**50)


def _est(model: str, context: int, batch: int, **knobs: Any) -> vramcore.Estimate:
    method = knobs.pop("method", "full")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VramcoreWarning)
        engine = get_engine({"full": "train"}.get(method, method), **knobs)
        return vramcore.estimate(model, context=context, batch=batch, engine=engine, gpu=GPU)


@settings(max_examples=25, deadline=None)
@given(model=SPECS, context=st.integers(1, 2**15), batch=st.integers(1, 16), rank=st.sampled_from([4, 16, 64]),
       attention=st.sampled_from(["auto", "eager", "flash"]))
def test_lora_below_full_and_qlora_weights_below_lora(model: str, context: int, batch: int, rank: int,
                                                      attention: str) -> None:
    full = _est(model, context, batch, attention=attention)
    lora = _est(model, context, batch, method="lora", lora_rank=rank, attention=attention)
    qlora = _est(model, context, batch, method="qlora", lora_rank=rank, attention=attention)
    assert lora.trainable_params < full.trainable_params
    assert lora.gradients_bytes + lora.optimizer_bytes + lora.master_weights_bytes \
        < full.gradients_bytes + full.optimizer_bytes + full.master_weights_bytes
    assert qlora.weights_bytes < lora.weights_bytes
    assert qlora.trainable_params == lora.trainable_params


@settings(max_examples=25, deadline=None)
@given(model=SPECS, dp=st.integers(1, 64), zero=st.integers(1, 3))
def test_zero_states_fall_with_dp(model: str, dp: int, zero: int) -> None:
    small = _est(model, 256, 1, zero=zero, dp=dp)
    large = _est(model, 256, 1, zero=zero, dp=2 * dp)
    assert large.optimizer_bytes < small.optimizer_bytes
    assert large.master_weights_bytes < small.master_weights_bytes
    assert large.total_bytes < small.total_bytes
    assert large.activation_bytes == small.activation_bytes


@settings(max_examples=25, deadline=None)
@given(model=SPECS, context=st.integers(64, 2**14), batch=st.integers(1, 8))
def test_recompute_lowers_activations_and_eager_raises_them(model: str, context: int, batch: int) -> None:
    # against a fused attention: "auto" is eager itself for Gemma-2 (its class has no sdpa)
    none = _est(model, context, batch, attention="flash")
    full = _est(model, context, batch, attention="flash", recompute="full")
    eager = _est(model, context, batch, attention="eager")
    selective = _est(model, context, batch, attention="eager", recompute="selective")
    assert full.activation_bytes < none.activation_bytes
    assert eager.activation_bytes > none.activation_bytes
    assert none.activation_bytes <= selective.activation_bytes < eager.activation_bytes
    assert full.weights_bytes == none.weights_bytes == eager.weights_bytes
    auto = _est(model, context, batch)
    assert auto.activation_bytes == (eager if model == "Gemma-2-2B" else none).activation_bytes


def test_training_blocks_what_the_method_cannot_train_from() -> None:
    # full fine-tuning of GPTQ weights, QLoRA over FP8: named, blocking verdicts with figures beside them
    full = vramcore.estimate("Llama-3.1-8B", dtype="gptq-int4-g128", context=1024, engine="train", gpu=H100)
    qlora = vramcore.estimate("Llama-3.1-8B", dtype="fp8", context=1024, engine="qlora", gpu=H100)
    for e in (full, qlora):
        assert not e.fits and "format_not_runnable_on_engine" in e.reasons
    # QLoRA over a plain or "auto" base quantizes it to NF4; over bnb-nf4-dq it keeps that format
    nf4 = vramcore.estimate("Llama-3.1-8B", context=1024, engine="qlora", gpu=H100)
    dq = vramcore.estimate("Llama-3.1-8B", dtype="bnb-nf4-dq", context=1024, engine="qlora", gpu=H100)
    assert nf4.fits and dq.fits and dq.weights_bytes < nf4.weights_bytes


def test_inverse_questions_for_training_are_exact() -> None:
    eng = get_engine("lora", recompute="full")
    sol = vramcore.max_batch("Qwen3-8B", "auto", 8192, "L40S", engine=eng)
    b = int(sol.values[0, 0, 0, 0])
    assert b >= 1
    assert vramcore.estimate("Qwen3-8B", context=8192, batch=b, gpu="L40S", engine=eng).fits
    assert not vramcore.estimate("Qwen3-8B", context=8192, batch=b + 1, gpu="L40S", engine=eng).fits
    eager = get_engine("train", attention="eager", recompute="selective")
    c = int(vramcore.max_context("Llama-3.2-1B", "auto", 2, "H100", engine=eager).values[0, 0, 0, 0])
    assert vramcore.estimate("Llama-3.2-1B", context=c, batch=2, gpu="H100", engine=eager).fits
    assert c == 131072 or not vramcore.estimate("Llama-3.2-1B", context=c + 1, batch=2, gpu="H100",
                                                engine=eager).fits


def test_qlora_keeps_fused_experts_in_bf16() -> None:
    # transformers 5.24 quantizes Linear4bit parameters only (quantizer_bnb_4bit.param_needs_quantization;
    # integrations/bitsandbytes.replace_with_bnb_linear takes nn.Linear / Conv1D): its MoE classes hold the routed
    # experts as fused 3-D nn.Parameters, which a bitsandbytes base keeps in the compute dtype
    from vramcore.grid.reference import reference_estimate

    spec = vramcore.get_model("Qwen3-30B-A3B").spec
    parts = spec.param_breakdown()
    for engine in (vramcore.get_engine("qlora", lora_targets=["q_proj", "v_proj"]),
                   vramcore.get_engine("lora", lora_targets=["q_proj", "v_proj"])):
        dtype = "auto" if engine.method == "qlora" else "bnb-nf4"
        e = vramcore.estimate(spec, dtype=dtype, context=2048, engine=engine, gpu="H200")
        assert e.weights_by_part["mlp_routed_experts"] == 2 * parts["mlp_routed_experts"]
        assert e.weights_by_part["attention"] < parts["attention"]          # the attention linears are 4-bit
        want = reference_estimate(spec, vramcore.get_dtype(dtype), None, engine, 1, 2048, 1,
                                  vramcore.get_gpu("H200").usable_bytes)
        assert e.weights_bytes == want["weights_bytes"] and e.total_bytes == want["total_bytes"]
    dense = vramcore.estimate("Qwen3-8B", context=2048, engine="qlora", gpu="H200")   # no experts: all 4-bit
    assert dense.weights_by_part["mlp_dense"] < vramcore.get_model("Qwen3-8B").spec.param_breakdown()["mlp_dense"]
