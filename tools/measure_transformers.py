"""Measure parameter counts and KV-cache sizes as Hugging Face transformers builds them.

vramcore estimates GPU memory from a model's ``config.json``. Its tests compare those
estimates with what transformers really instantiates; this script produces the figures
they compare against (``tests/data/transformers_measured.json``). transformers is not a
vramcore dependency: run the script from a scratch environment outside the repository.

Usage
-----
::

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install torch==2.13.0 transformers==5.24.0 accelerate
    /tmp/tfenv/bin/python tools/measure_transformers.py

Options: ``--models-dir`` (default ``vramcore/model/data``), ``--reference`` (default
``transformers_facts.json`` in the shared reference folder, when present), ``--output``
(default ``tests/data/transformers_measured.json``). No network access is needed: models are
built from their configs only, never downloaded.

Inputs
------
Every ``vramcore/model/data/*.json`` card (keys ``"name"`` and ``"config"``, the latter the
Hugging Face ``config.json`` content), every ``tests/data/hf_configs/*.json`` config of a family
that has no card yet (same keys, plus ``"source"``; ``tests/data/hf_configs/pending/*.json`` for
families whose cache vramcore cannot count yet, measured so that the figures are there when it can),
plus the seven configs of the reference file (key
``models.<name>.config``). A card and a reference model with the same name are measured once,
from the card. The figures of the reference models are checked against the reference file and
the comparison is printed.

What is measured
----------------
``params``
    The model is built with ``AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)``
    on the ``meta`` device. A multimodal config (one with a ``text_config``, such as gemma3) is
    built whole with ``AutoModelForImageTextToText``: its vision tower and projector count as
    ``vision_tower`` and ``multimodal_projector`` (by the parameter name prefixes
    ``VISION_PREFIXES`` / ``PROJECTOR_PREFIXES``), Gemma-3n's audio encoder and its embedder as
    ``audio_tower`` (``AUDIO_PREFIXES``). Gemma-3n's vision tower is a timm model (``TimmWrapperModel``):
    timm must be installed (``pip install timm --no-deps`` and ``pip install pillow torchvision==0.28.0
    --no-deps``; see :func:`allow_torchvision_without_ops`).
    ``total`` sums ``named_parameters()``, which yields a tied tensor once.

    ``by_category`` splits that total by parameter name; empty categories are left out:
    ``embedding`` (``embed_tokens``), ``lm_head``, ``attention`` (everything under
    ``self_attn``: projections, biases, q/k norms, sinks, MLA a/b projections and their
    layernorms), ``mlp_dense`` (MLP of dense layers), ``mlp_routed_experts``,
    ``mlp_shared_experts``, ``router`` (``mlp.gate`` / ``mlp.router`` / ``shared_expert_gate``
    of MoE layers; Granite's ``block_sparse_moe`` router and experts and its ``shared_mlp``, which is the
    dense MLP where a config has no experts) and ``norms`` (per-layer input / post-attention / pre- and
    post-feedforward norms and the final norm). ``attention_internal_norms`` counts the norms inside
    ``self_attn`` apart: the reference file files them under ``norms``, and the check below
    moves them there before comparing. ``by_pattern`` gives every parameter name with layer
    indices replaced by ``N`` (number of tensors, elements in all).

    ``dtypes_as_built`` counts the parameters transformers keeps in a dtype other than
    bfloat16, by dtype. This depends on the release: 5.24 keeps DeepSeek-V3's router
    (``mlp.gate.weight``) in float32, 5.23 builds it in bfloat16.
``kv_cache``
    A small copy of the (text) config keeps the attention geometry (hidden size, heads, KV
    heads, head dims, MLA ranks) and one layer of each layer type, with fewer layers, a vocab
    of 256, small MLPs, four experts and a sliding window of ``SMALL_WINDOW`` tokens. It is
    built on the CPU in bfloat16 and run with ``use_cache=True``: a prefill of ``SHORT_PROMPT``
    tokens gives the bytes per token per layer of the returned ``DynamicCache`` (sum of
    ``numel() * element_size()`` of ``cache.layers[i].keys`` and ``.values``); a prefill of
    ``SMALL_WINDOW + 16`` tokens followed by one decode step gives how many tokens a sliding
    layer keeps, written as a rule of the window (``"window-1"``) and applied to the full
    config's window. Layer counts per kind come from the full config through the same
    function ``DynamicCache`` uses to pick its layer classes.

    Recurrent layers of hybrid models (``LinearAttentionLayer``: gated DeltaNet, Mamba) hold
    no keys: ``state_kinds`` gives, per layer kind, the shapes and dtypes of their
    ``conv_states`` and ``recurrent_states`` for one sequence and their bytes
    (``bytes_per_sequence_per_layer``), checked not to change with the prompt or a decode
    step; ``state_bytes_per_sequence`` sums them over the full config's layers. transformers names
    every such kind ``linear_attention``; a Mamba mixer's layers are filed as ``mamba``, vramcore's name.
    Cross-attention layers (mllama: ``text_config.cross_attention_layers``) cache the images' vision tokens,
    not the prompt's: a text-only pass skips them. For such a config the cache is measured through the
    multimodal class around a small copy (one self-attention and one cross-attention layer, a one-local /
    one-global-layer vision model of width 32 with the full config's image size, patch size, tiles and aspect
    ratios), run on 1 and 2 blank images (every tile filled) with a ``SHORT_PROMPT``-token prompt and then one
    decode step: ``layer_kinds`` holds the self-attention layers (per token), ``cross_kinds`` the
    cross-attention ones (``tokens_per_image``, ``bytes_per_image_per_layer``, checked to scale with the images
    and not to grow with the decode step).
    A ``hybrid`` layer (Falcon-H1: attention and Mamba2 side by side, ``LinearAttentionAndFullAttentionLayer``)
    holds both: it is measured under ``layer_kinds`` (its keys and values) and under ``state_kinds``
    (its ``conv_states`` and ``recurrent_states``), as ``hybrid`` in each.
``image_tokens``
    Multimodal configs with a dynamic-resolution processor: the tokens one image of each of
    ``IMAGE_SIZES`` becomes (see :func:`measure_image_tokens`); mllama: ``image_tiles``, the tiles its
    image processor fills for each size, and ``image_tiles_padded``, the tiles of its ``pixel_values``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText
from transformers.cache_utils import get_layer_types_and_kwargs

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS_DIR = REPO / "vramcore" / "model" / "data"
DEFAULT_OUTPUT = REPO / "tests" / "data" / "transformers_measured.json"
# Configs measured beside the cards (families without a card yet): {"name", "config", "source"} each.
EXTRA_CONFIGS_DIR = REPO / "tests" / "data" / "hf_configs"
REFERENCE_CANDIDATES = [
    REPO / "shared" / "reference" / "transformers_facts.json",
    REPO.parent / "shared" / "reference" / "transformers_facts.json",
]

# Layer kinds whose cache layer holds keys and values and a recurrent state (transformers 5.24 cache_utils:
# "hybrid" is LinearAttentionAndFullAttentionLayer, Falcon-H1's), and the attributes of that state.
HYBRID_KINDS = ("hybrid", "hybrid_sliding")
STATE_ATTRIBUTES = ("conv_states", "recurrent_states")

DTYPE = torch.bfloat16
SMALL_WINDOW = 32  # sliding window of the small copy
SHORT_PROMPT = 16  # shorter than SMALL_WINDOW - 1, so no layer caps it
LONG_PROMPT = SMALL_WINDOW + 16
SMALL_VOCAB = 256
CONTEXTS = (1024, 4096, 8192, 32768, 131072)

NORM = re.compile(r"(^|\.)\w*norm\.(weight|bias)$")
CATEGORIES = (
    "embedding",
    "lm_head",
    "attention",
    "mlp_dense",
    "mlp_routed_experts",
    "mlp_shared_experts",
    "router",
    "norms",
    "vision_tower",
    "multimodal_projector",
    "audio_tower",
)

# Multimodal wrappers (transformers 5 names): the encoder and the projector that feeds the decoder.
# Qwen2.5-VL keeps its patch merger inside `visual`; it is the projector.
# Llama-4 keeps them at the top level (vision_model., multi_modal_projector., language_model.).
VISION_PREFIXES = ("model.vision_tower.", "model.visual.", "model.vision_model.", "vision_model.")
PROJECTOR_PREFIXES = ("model.multi_modal_projector.", "model.visual.merger.", "multi_modal_projector.",
                      "model.visual.deepstack_merger_list.", "model.embed_vision.")
# Gemma-3n: Gemma3nAudioEncoder and the Gemma3nMultimodalEmbedder that feeds its outputs to the decoder
AUDIO_PREFIXES = ("model.audio_tower.", "model.embed_audio.")


def allow_torchvision_without_ops() -> None:
    """Let torchvision's Python modules import where its compiled ops cannot load.

    timm (which transformers' ``TimmWrapperModel`` builds Gemma-3n's MobileNetV5 with) imports torchvision at
    import time.  The torchvision 0.28.0 wheel on PyPI is built against the CUDA torch and its ``_C`` extension
    does not load against the CPU torch 2.13.0; torchvision then skips its ops but still registers fake kernels
    for ``torchvision::nms`` and ``torchvision::qnms`` (``torchvision/_meta_registrations.py``), which fails
    when the ops do not exist.  Defining those two schemas (never run: MobileNetV5 uses no torchvision op)
    lets the import finish.  Nothing is done where the ops are there.
    """
    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        for op in ("nms", "qnms"):
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[mod]
    except ImportError:
        pass


# --------------------------------------------------------------------------- inputs


def load_inputs(models_dir: Path, reference: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Return ``{name: {"config": dict, "source": str}}`` for the cards and reference models."""
    inputs: dict[str, dict[str, Any]] = {}
    if reference is not None:
        for name, entry in reference["models"].items():
            inputs[name] = {"config": entry["config"], "source": "reference"}
    for folder in (models_dir, EXTRA_CONFIGS_DIR, EXTRA_CONFIGS_DIR / "pending"):
        for path in sorted(folder.glob("*.json")):
            card = json.loads(path.read_text())
            inputs[card["name"]] = {
                "config": card["config"],
                "source": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
            }
    return inputs


def build_configs(
    raw: dict[str, Any], notes: list[str]
) -> tuple[transformers.PreTrainedConfig, transformers.PreTrainedConfig]:
    """Build the transformers config of ``raw``; return it and its text (decoder) part."""
    raw = dict(raw)
    if raw.pop("quantization_config", None) is not None:
        notes.append("quantization_config is not passed to transformers; the model is built unquantised.")
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    text_config = config.get_text_config(decoder=True)
    if text_config is not config:
        notes.append(
            f"Multimodal config ({config.model_type}): parameters of the whole model built with "
            f"AutoModelForImageTextToText (vision tower and projector included); the KV cache of the text "
            f"model built from text_config ({text_config.model_type}) with its CausalLM class."
        )
    return config, text_config


def pattern(name: str) -> str:
    """Replace layer indices in a parameter name by ``N``."""
    return re.sub(r"\.\d+\.", ".N.", name)


# --------------------------------------------------------------------------- parameters


def is_token_mixer(name: str) -> bool:
    """True for a parameter of a layer's token mixer: attention, gated DeltaNet (``linear_attn``) or Mamba
    (``mixer``; Bamba and Granite-4.0-H call it ``mamba``)."""
    return any(part in name for part in (".self_attn.", ".linear_attn.", ".mixer.", ".mamba.", ".cross_attn.")) \
        or name.endswith((".cross_attn_attn_gate", ".cross_attn_mlp_gate"))  # mllama's cross-attention layers


#: Gemma-3n's modules beside attention and MLP (transformers Gemma3nTextDecoderLayer / Gemma3nTextModel).
GEMMA3N_EXTRAS = (".altup.", ".laurel.", ".per_layer_input_gate.", ".per_layer_projection.",
                  ".post_per_layer_input_norm.", ".per_layer_model_projection.", ".per_layer_projection_norm.",
                  ".altup_projections.", ".altup_unembed_projections.")


def categorize(name: str) -> str:
    """Return the vramcore parameter category of a transformers parameter name."""
    if name.startswith(PROJECTOR_PREFIXES):
        return "multimodal_projector"
    if name.startswith(AUDIO_PREFIXES):
        return "audio_tower"
    if name.startswith(VISION_PREFIXES):
        return "vision_tower"
    if "embed_tokens" in name or name == "model.embeddings.weight":  # Nemotron-H: model.embeddings
        return "embedding"
    if name.startswith(("lm_head.", "language_model.lm_head.")):
        return "lm_head"
    if name == "model.norm_f.weight":  # Nemotron-H's final norm
        return "norms"
    if ".mixer." in name:  # Nemotron-H calls every block's one sub-block "mixer": its MLP and MoE blocks too
        sub = name.split(".mixer.", 1)[1]
        if sub.startswith("experts."):
            return "mlp_routed_experts"
        if sub.startswith("shared_experts."):
            return "mlp_shared_experts"
        if sub.startswith("gate."):
            return "router"
        if sub.startswith(("up_proj.", "down_proj.")):
            return "mlp_dense"
    if is_token_mixer(name):
        return "attention"  # the token mixer: attention, gated DeltaNet or Mamba
    if any(part in name for part in GEMMA3N_EXTRAS):
        # Gemma-3n's AltUp, LAuReL and per-layer-input modules: their norms and AltUp's correct_output_scale vector
        # under norms, their linears under attention (vramcore counts them there: ModelSpec.altup_inputs)
        return "norms" if NORM.search(name) or name.endswith(".correct_output_scale") else "attention"
    if ".block_sparse_moe." in name:  # Granite MoE families: block_sparse_moe.router / .experts
        return "mlp_routed_experts" if ".block_sparse_moe.experts." in name else "router"
    if ".shared_mlp." in name:  # Granite's shared expert (the dense MLP where there are no experts: measure_params)
        return "mlp_shared_experts"
    if ".mlp." in name or ".feed_forward." in name:  # Llama-4 calls its MLP feed_forward
        sub = name.split(".mlp." if ".mlp." in name else ".feed_forward.", 1)[1]
        if sub.startswith("experts."):
            return "mlp_routed_experts"
        if sub.startswith(("shared_experts.", "shared_expert.")):
            return "mlp_shared_experts"
        if sub.startswith(("gate.", "router.", "shared_expert_gate.")):
            return "router"
        return "mlp_dense"
    if NORM.search(name):
        return "norms"
    raise ValueError(f"parameter {name!r} fits no category")


def measure_params(config: transformers.PreTrainedConfig, multimodal: bool, notes: list[str]) -> dict[str, Any]:
    """Build the model on the meta device and count its parameters."""
    with torch.device("meta"):
        if multimodal:
            model = AutoModelForImageTextToText.from_config(config, dtype=DTYPE)
        else:
            model = AutoModelForCausalLM.from_config(config, dtype=DTYPE)
    by_category: Counter[str] = Counter()
    attention_norms = 0
    by_pattern: dict[str, dict[str, int]] = {}
    other_dtypes: Counter[str] = Counter()
    other_dtype_patterns: dict[str, str] = {}
    params = dict(model.named_parameters())
    for name, param in params.items():
        by_category[categorize(name)] += param.numel()
        entry = by_pattern.setdefault(pattern(name), {"count": 0, "elements": 0})
        entry["count"] += 1
        entry["elements"] += param.numel()
        if is_token_mixer(name) and NORM.search(name):
            attention_norms += param.numel()
        if param.dtype != DTYPE:
            dtype = str(param.dtype).removeprefix("torch.")
            other_dtypes[dtype] += param.numel()
            other_dtype_patterns[pattern(name)] = dtype
    if by_category["mlp_shared_experts"] and not by_category["mlp_routed_experts"]:
        # a shared MLP with no routed experts beside it is the dense MLP (granitemoehybrid with num_local_experts 0)
        by_category["mlp_dense"] += by_category.pop("mlp_shared_experts")
        notes.append("No routed experts: the shared MLP (shared_mlp) is the dense MLP, counted under mlp_dense.")
    total = sum(by_category.values())

    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is embed
    if tied:
        notes.append(
            f"Embeddings are tied: lm_head.weight is the same tensor as embed_tokens.weight and is "
            f"counted once ({embed.numel():,} params); counting it twice would give {total + embed.numel():,}."
        )
    if attention_norms:
        notes.append(
            f"Norms inside self_attn (q/k norms, MLA a-projection layernorms: {attention_norms:,} params) are "
            "counted under attention; attention_internal_norms gives them apart."
        )
    if other_dtype_patterns:
        listed = ", ".join(f"{p} ({d})" for p, d in sorted(other_dtype_patterns.items()))
        notes.append(f"Built with dtype=bfloat16, transformers keeps these in another dtype: {listed}.")

    buffers: dict[str, dict[str, Any]] = {}
    persistent = set(model.state_dict())
    for name, tensor in model.named_buffers():
        if name not in persistent:
            continue
        dtype = str(tensor.dtype).removeprefix("torch.")
        entry = buffers.setdefault(pattern(name), {"count": 0, "elements_each": tensor.numel(), "dtype": dtype})
        entry["count"] += 1
    if buffers:
        listed = ", ".join(
            f"{p} x{b['count']} ({b['elements_each']} elements, {b['dtype']})" for p, b in buffers.items()
        )
        notes.append(f"Persistent non-parameter buffers (not in the parameter count): {listed}.")

    return {
        "transformers_class": type(model).__name__,
        "params": {
            "total": total,
            "by_category": {c: by_category[c] for c in CATEGORIES if by_category[c]},
            "attention_internal_norms": attention_norms,
            "tied_embeddings": tied,
            "dtypes_as_built": dict(sorted(other_dtypes.items())),
            "by_pattern": by_pattern,
        },
        "persistent_buffers": buffers,
    }


# --------------------------------------------------------------------------- KV cache


def small_copy(full: transformers.PreTrainedConfig) -> transformers.PreTrainedConfig:
    """Return a cheap copy of ``full`` that keeps its attention geometry and layer types."""
    d = full.to_dict()
    d["vocab_size"] = SMALL_VOCAB
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if isinstance(d.get(key), int) and d[key] >= SMALL_VOCAB:
            d[key] = None
    for key, size in (
        ("intermediate_size", 64),
        ("moe_intermediate_size", 32),
        ("shared_expert_intermediate_size", 32),
    ):
        if d.get(key):
            d[key] = size
    for key in ("num_local_experts", "num_experts", "n_routed_experts"):
        if d.get(key):
            d[key] = min(d[key], 4)
    if d.get("num_experts_per_tok"):
        d["num_experts_per_tok"] = min(d["num_experts_per_tok"], 2)
    for key in ("n_group", "topk_group"):
        if d.get(key):
            d[key] = 1
    if d.get("first_k_dense_replace"):
        d["first_k_dense_replace"] = 1  # one dense layer, then MoE layers
    if d.get("mlp_only_layers"):
        d["mlp_only_layers"] = []
    if getattr(full, "sliding_window", None) is not None:
        d["sliding_window"] = SMALL_WINDOW
    if getattr(full, "attention_chunk_size", None) is not None:
        d["attention_chunk_size"] = SMALL_WINDOW
    layer_types = d.get("layer_types")
    if layer_types:
        kinds = list(dict.fromkeys(layer_types))  # one layer of each type, in order of appearance
        d["layer_types"] = kinds if len(kinds) > 1 else kinds * 2
        d["num_hidden_layers"] = len(d["layer_types"])
    else:
        d["num_hidden_layers"] = 2
    if d.get("attn_layer_period"):  # Jamba places attention by period and offset: a Mamba1 layer, then attention
        d.update(attn_layer_period=2, attn_layer_offset=1, expert_layer_period=2, expert_layer_offset=1,
                 num_hidden_layers=2)
    if d.get("attn_layer_indices"):  # Bamba names its attention layers by index: a Mamba2 layer, then attention
        d["attn_layer_indices"] = [1]
        d["num_hidden_layers"] = 2
    if d.get("mlp_layer_types") and "sparse" in d["mlp_layer_types"]:  # DeepSeek-V3.2: one dense layer, then MoE
        d["mlp_layer_types"] = ["dense"] + ["sparse"] * (d["num_hidden_layers"] - 1)
    if d.get("num_kv_shared_layers"):  # Gemma-3n: one layer of each kind that caches, then one of each that shares
        d["layer_types"] = list(dict.fromkeys(d["layer_types"])) * 2
        d["num_hidden_layers"] = len(d["layer_types"])
        d["num_kv_shared_layers"] = len(kinds)
        d["activation_sparsity_pattern"] = [0.0] * d["num_hidden_layers"]
        d["intermediate_size"] = 64
        d["vocab_size_per_layer_input"] = SMALL_VOCAB
    return type(full).from_dict(d)


def layer_bytes(layer: Any) -> tuple[int, int]:
    """Return (bytes of the logical keys+values tensors, bytes of their storages).

    A DSA layer (DeepSeek-V3.2, ``DynamicIndexedLayer``) also caches its indexer's keys; they count too.
    """
    tensors = [layer.keys, layer.values]
    if getattr(layer, "indexer_keys", None) is not None:
        tensors.append(layer.indexer_keys)
    logical = sum(t.numel() * t.element_size() for t in tensors)
    storage = sum(t.untyped_storage().nbytes() for t in tensors)
    return logical, storage


def run(model: Any, ids: torch.Tensor, cache: Any = None) -> Any:
    """Run one forward pass with ``use_cache=True`` and return the cache it hands back."""
    cache_kwarg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    kwargs = {cache_kwarg: cache} if cache is not None else {}
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True, **kwargs)
    # transformers 5.24 renamed `past_key_values` to `cache` (argument and output); accept both.
    return out["cache"] if "cache" in out else out["past_key_values"]


def cap_rule(cap: int, window: int) -> str:
    """Write ``cap`` as a rule of the window, e.g. ``"window-1"``."""
    offset = cap - window
    return "window" if offset == 0 else f"window{offset:+d}"


def text_only_model(outer: transformers.PreTrainedConfig, small: transformers.PreTrainedConfig) -> Any:
    """Build the multimodal model of ``outer`` around the small text config ``small``, for text-only passes.

    For a family whose text config has no CausalLM class (Qwen2.5-VL): the wrapper runs ``input_ids`` alone
    through its own decoder, so the cache is the one it really returns. Its vision tower keeps one layer.
    """
    d = outer.to_dict()
    d["text_config"] = small.to_dict()
    vision = d.get("vision_config") or {}
    for key in ("depth", "num_hidden_layers"):
        if key in vision:
            vision[key] = 1
    config = type(outer).from_dict(d)
    return AutoModelForImageTextToText.from_config(config, dtype=DTYPE, attn_implementation="eager").eval()


def measure_kv(
    full: transformers.PreTrainedConfig, notes: list[str], outer: transformers.PreTrainedConfig | None = None
) -> dict[str, Any]:
    """Measure the DynamicCache of a small copy of ``full`` and scale it to the full layer count."""
    full_types, full_kwargs = get_layer_types_and_kwargs(full)
    windows = {t: kw["sliding_window"] for t, kw in zip(full_types, full_kwargs, strict=True) if "sliding_window" in kw}
    small = small_copy(full)
    small_types, _ = get_layer_types_and_kwargs(small)
    torch.manual_seed(0)
    try:
        model = AutoModelForCausalLM.from_config(small, dtype=DTYPE, attn_implementation="eager").eval()
    except ValueError:  # no CausalLM class for this text config: run the multimodal wrapper on text alone
        if outer is None:
            raise
        model = text_only_model(outer, small)
        notes.append(f"KV cache measured through {type(model).__name__} on text input alone (its text config "
                     f"{small.model_type} has no CausalLM class).")

    ids = torch.randint(0, SMALL_VOCAB, (1, LONG_PROMPT + 1))
    short = run(model, ids[:, :SHORT_PROMPT])
    long_prefill = run(model, ids[:, :LONG_PROMPT])
    # The decode step updates the same cache object: read the prefill state first.
    after_prefill = [(layer.keys.shape[-2], layer_bytes(layer)) if getattr(layer, "keys", None) is not None
                     else state_tensors(layer) for layer in long_prefill.layers]
    after_prefill_states = [state_tensors(layer, STATE_ATTRIBUTES) for layer in long_prefill.layers]
    decoded = run(model, ids[:, LONG_PROMPT:], long_prefill)

    kinds: dict[str, dict[str, Any]] = {}
    state_kinds: dict[str, dict[str, Any]] = {}
    for i, kind in enumerate(small_types):
        if kind in ("moe", "mlp", "dummy"):  # Nemotron-H's MLP-only blocks: no cache (DynamicCache's DummyLayer)
            continue
        if getattr(short.layers[i], "keys", None) is None:  # a recurrent layer: a fixed state per sequence
            entry = state_entry(short.layers[i], after_prefill[i], decoded.layers[i])
            entry["layers"] = full_types.count(kind)
            first = state_kinds.setdefault(recurrent_kind(model, i, kind), entry)
            if first["bytes_per_sequence_per_layer"] != entry["bytes_per_sequence_per_layer"]:
                raise RuntimeError(f"layers of kind {kind} differ in state size")
            continue
        if kind in HYBRID_KINDS:  # attention and a recurrent mixer in one layer: its keys and values, and its state
            entry = state_entry(short.layers[i], after_prefill_states[i], decoded.layers[i], STATE_ATTRIBUTES)
            entry["layers"] = full_types.count(kind)
            if state_kinds.setdefault(kind, entry)["bytes_per_sequence_per_layer"] != \
                    entry["bytes_per_sequence_per_layer"]:
                raise RuntimeError(f"layers of kind {kind} differ in state size")
        entry = kind_entry(short.layers[i], after_prefill[i], decoded.layers[i], windows.get(kind))
        entry["layers"] = full_types.count(kind)
        if kinds.setdefault(kind, entry)["bytes_per_token_per_layer"] != entry["bytes_per_token_per_layer"]:
            raise RuntimeError(f"layers of kind {kind} differ in size")
    notes.extend(kv_notes(full, kinds))

    if getattr(full, "layer_types", None):
        layer_types_from = "config.layer_types"
    elif getattr(full, "sliding_window", None) is not None:
        layer_types_from = "no layer_types, sliding_window set: every layer sliding"
    else:
        layer_types_from = "no layer_types, no sliding_window: every layer full"
    return {
        "bytes_per_token_uncapped": sum(e["layers"] * e["bytes_per_token_per_layer"] for e in kinds.values()),
        "layer_kinds": kinds,
        **({"state_kinds": state_kinds,
            "state_bytes_per_sequence": sum(e["layers"] * e["bytes_per_sequence_per_layer"]
                                            for e in state_kinds.values())} if state_kinds else {}),
        "layer_types_from": layer_types_from,
        "num_hidden_layers": len(full_types),
        "kv_bytes_at_context_batch1": {
            str(n): sum(
                e["layers"] * e["bytes_per_token_per_layer"] * min(n, e["window_cap_tokens"] or n)
                for e in kinds.values()
            )
            for n in CONTEXTS
        },
        "small_copy": {
            "num_hidden_layers": small.num_hidden_layers,
            "layer_types": small_types,
            "prompt_tokens": [SHORT_PROMPT, LONG_PROMPT],
            "attn_implementation": "eager",
        },
    }


def recurrent_kind(model: Any, index: int, kind: str) -> str:
    """Return vramcore's name for the kind of recurrent layer `index`: ``"mamba"`` for a Mamba mixer, else `kind`.

    transformers 5.24 calls every recurrent layer ``linear_attention`` (configs' ``"mamba"`` entries are remapped to
    it); vramcore's ``layer_types`` keep ``linear_attention`` for gated DeltaNet and ``mamba`` for Mamba mixers
    (Bamba and Granite-4.0-H keep theirs as ``layers.N.mamba``, Mamba2 models as ``layers.N.mixer``).
    """
    at = re.compile(rf"(^|\.)layers\.{index}$")
    for name, module in model.named_modules():
        if at.search(name) and (getattr(module, "mamba", None) is not None
                                or "Mamba" in type(getattr(module, "mixer", None)).__name__):
            return "mamba"
    return kind


def state_tensors(layer: Any, only: tuple[str, ...] | None = None) -> dict[str, list[tuple[tuple[int, ...], str]]]:
    """Return the shapes and dtypes of a recurrent cache layer's state tensors (``conv_states``, ``recurrent_states``
    or ``ssm_states``), by attribute name; `only`: just these attributes (a hybrid layer's keys and values apart)."""
    out: dict[str, list[tuple[tuple[int, ...], str]]] = {}
    for name, value in vars(layer).items():
        if only is not None and name not in only:
            continue
        items = value.values() if isinstance(value, dict) else (value if isinstance(value, (list, tuple)) else [value])
        tensors = [t for t in items if torch.is_tensor(t)]
        if tensors:
            out[name] = [(tuple(t.shape), str(t.dtype).removeprefix("torch.")) for t in tensors]
    return out


def state_entry(short: Any, after_prefill: dict[str, Any], decoded: Any,
                only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Describe a recurrent cache layer: its state tensors (batch 1) must not grow with the prompt or a decode step."""
    shapes = state_tensors(short, only)
    if shapes != after_prefill or shapes != state_tensors(decoded, only):
        raise RuntimeError(f"a recurrent layer's state changed size: {shapes} / {after_prefill}")
    per_seq = sum(int(torch.Size(shape).numel()) * torch.empty((), dtype=getattr(torch, dtype)).element_size()
                  for entries in shapes.values() for shape, dtype in entries)
    return {"cache_layer_class": type(short).__name__, "bytes_per_sequence_per_layer": per_seq,
            "tensors": {k: [{"shape": list(sh), "dtype": dt} for sh, dt in v] for k, v in shapes.items()}}


def kind_entry(
    short: Any, after_prefill: tuple[int, tuple[int, int]], decoded: Any, window: int | None
) -> dict[str, Any]:
    """Describe one cache layer from its state after the short prefill, the long prefill and the decode step."""
    logical, _ = layer_bytes(short)
    per_token = logical // SHORT_PROMPT
    prefill_tokens, (prefill_logical, prefill_storage) = after_prefill
    decode_tokens = decoded.keys.shape[-2]
    _, decode_storage = layer_bytes(decoded)
    entry: dict[str, Any] = {
        "bytes_per_token_per_layer": per_token,
        "cache_layer_class": type(short).__name__,
        "cache_dtype": str(short.keys.dtype).removeprefix("torch."),
        "cached_keys_heads": short.keys.shape[1],
        "cached_keys_dim": short.keys.shape[3],
        "cached_values_heads": short.values.shape[1],
        "cached_values_dim": short.values.shape[3],
        **({"cached_indexer_keys_dim": short.indexer_keys.shape[-1]}
           if getattr(short, "indexer_keys", None) is not None else {}),
        "sliding_window": window,
        "window_cap_rule": None,
        "window_cap_tokens": None,
    }
    if not getattr(short, "is_sliding", False):
        if decode_tokens != LONG_PROMPT + 1 or prefill_logical != per_token * LONG_PROMPT:
            raise RuntimeError(f"a full layer holds {decode_tokens} tokens, expected {LONG_PROMPT + 1}")
        return entry
    rule = cap_rule(decode_tokens, SMALL_WINDOW)
    if cap_rule(prefill_tokens, SMALL_WINDOW) != rule:
        raise RuntimeError(f"a sliding layer keeps {prefill_tokens} tokens after prefill, {decode_tokens} after decode")
    entry["window_cap_rule"] = rule
    entry["window_cap_tokens"] = window + decode_tokens - SMALL_WINDOW
    entry["small_copy_check"] = {
        "window": SMALL_WINDOW,
        "prefill_tokens": LONG_PROMPT,
        "tokens_after_prefill": prefill_tokens,
        "storage_tokens_after_prefill": prefill_storage // per_token,
        "tokens_after_decode_step": decode_tokens,
        "storage_tokens_after_decode_step": decode_storage // per_token,
    }
    return entry


def kv_notes(full: transformers.PreTrainedConfig, kinds: dict[str, dict[str, Any]]) -> list[str]:
    """Flag cache geometry that differs from the config, and explain sliding layers; set ``matches_config_geometry``."""
    notes = []
    kv_heads = getattr(full, "num_key_value_heads", None)
    head_dim = getattr(full, "head_dim", None) or full.hidden_size // full.num_attention_heads
    naive = 2 * (kv_heads or 0) * head_dim * DTYPE.itemsize
    for kind, e in kinds.items():
        e["matches_config_geometry"] = (
            e["cached_keys_heads"] == e["cached_values_heads"] == kv_heads
            and e["cached_keys_dim"] == e["cached_values_dim"] == head_dim
        )
        if not e["matches_config_geometry"] or e["bytes_per_token_per_layer"] != naive:
            notes.append(
                f"{kind}: the cache holds keys of {e['cached_keys_heads']} head(s) x {e['cached_keys_dim']} and values "
                f"of {e['cached_values_heads']} head(s) x {e['cached_values_dim']} per token, "
                f"{e['bytes_per_token_per_layer']} B/token/layer, not 2 x num_key_value_heads ({kv_heads}) x "
                f"head_dim ({head_dim}) x 2 = {naive} B."
            )
        if e["window_cap_tokens"] is not None:
            check = e["small_copy_check"]
            notes.append(
                f"{e['layers']} {kind} layers (window {e['sliding_window']}) use {e['cache_layer_class']}: they keep "
                f"{e['window_cap_rule']} = {e['window_cap_tokens']} tokens. Small-copy check with window "
                f"{SMALL_WINDOW}: after a {LONG_PROMPT}-token prefill the tensor holds {check['tokens_after_prefill']} "
                f"tokens in a storage of {check['storage_tokens_after_prefill']}; after one decode step "
                f"{check['tokens_after_decode_step']} in a storage of {check['storage_tokens_after_decode_step']}. "
                "Each such layer also holds an 8-byte int64 window tensor."
            )
    return notes


def measure_cross_kv(config: transformers.PreTrainedConfig, text: transformers.PreTrainedConfig,
                     notes: list[str]) -> dict[str, Any]:
    """Measure the cache of a model with cross-attention layers (mllama) on images; see the module docstring."""
    cross = list(text.cross_attention_layers)
    n = text.num_hidden_layers
    small_text = text.to_dict()  # the attention geometry kept; small_copy's null token ids are refused here
    small_text.update(num_hidden_layers=2, cross_attention_layers=[1], vocab_size=SMALL_VOCAB, intermediate_size=64,
                      bos_token_id=0, eos_token_id=1, pad_token_id=2)
    vision = config.vision_config
    small_vision = {"hidden_size": 32, "attention_heads": 2, "intermediate_size": 64, "num_hidden_layers": 1,
                    "num_global_layers": 1, "intermediate_layers_indices": [0], "vision_output_dim": 64,
                    "image_size": vision.image_size, "patch_size": vision.patch_size,
                    "max_num_tiles": vision.max_num_tiles, "supported_aspect_ratios": vision.supported_aspect_ratios,
                    "num_channels": vision.num_channels}
    d = config.to_dict()
    d.update(text_config=small_text, vision_config=small_vision)
    small = type(config).from_dict(d)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(small, dtype=DTYPE, attn_implementation="eager").eval()
    tiles, size = vision.max_num_tiles, vision.image_size
    per_image = None
    self_entry: dict[str, Any] = {}
    for images in (1, 2):
        ids = torch.randint(0, SMALL_VOCAB, (1, SHORT_PROMPT + 1))
        with torch.no_grad():
            out = model(input_ids=ids[:, :SHORT_PROMPT], use_cache=True,
                        pixel_values=torch.zeros((1, images, tiles, vision.num_channels, size, size), dtype=DTYPE),
                        aspect_ratio_ids=torch.ones((1, images), dtype=torch.long),
                        aspect_ratio_mask=torch.ones((1, images, tiles), dtype=torch.long),
                        cross_attention_mask=torch.ones((1, SHORT_PROMPT, images, tiles), dtype=torch.long))
            cache = out["cache"] if "cache" in out else out["past_key_values"]
            self_bytes, _ = layer_bytes(cache.layers[0])
            cross_tokens = cache.layers[1].keys.shape[-2]
            cross_bytes, _ = layer_bytes(cache.layers[1])
            step = model(input_ids=ids[:, SHORT_PROMPT:], use_cache=True, **{
                ("cache" if "cache" in out else "past_key_values"): cache},
                cross_attention_mask=torch.ones((1, 1, images, tiles), dtype=torch.long))
            after = (step["cache"] if "cache" in step else step["past_key_values"]).layers
        if after[1].keys.shape[-2] != cross_tokens or after[0].keys.shape[-2] != SHORT_PROMPT + 1:
            raise RuntimeError("a cross-attention layer grew with a decode step, or a self-attention layer did not")
        if per_image is None:
            per_image = {"tokens_per_image": cross_tokens, "bytes_per_image_per_layer": cross_bytes,
                         "cache_layer_class": type(cache.layers[1]).__name__,
                         "cached_keys_heads": cache.layers[1].keys.shape[1],
                         "cached_keys_dim": cache.layers[1].keys.shape[3]}
            self_entry = {"bytes_per_token_per_layer": self_bytes // SHORT_PROMPT,
                          "cache_layer_class": type(cache.layers[0]).__name__,
                          "cache_dtype": str(cache.layers[0].keys.dtype).removeprefix("torch."),
                          "cached_keys_heads": cache.layers[0].keys.shape[1],
                          "cached_keys_dim": cache.layers[0].keys.shape[3],
                          "cached_values_heads": cache.layers[0].values.shape[1],
                          "cached_values_dim": cache.layers[0].values.shape[3],
                          "sliding_window": None, "window_cap_rule": None, "window_cap_tokens": None,
                          "layers": n - len(cross)}
        elif cross_tokens != 2 * per_image["tokens_per_image"] or cross_bytes != 2 * per_image[
                "bytes_per_image_per_layer"]:
            raise RuntimeError(f"two images cache {cross_tokens} tokens, one {per_image['tokens_per_image']}")
    assert per_image is not None
    per_image["layers"] = len(cross)
    notes.append(f"Cross-attention layers {cross}: {per_image['tokens_per_image']} vision tokens per image "
                 f"({tiles} tiles x ((image_size {size} / patch {vision.patch_size})^2 + 1)), cached at the "
                 "prefill and unchanged by a decode step; a text-only pass skips these layers (no cache).")
    per_token = self_entry["bytes_per_token_per_layer"] * self_entry["layers"]
    return {
        "bytes_per_token_uncapped": per_token,
        "layer_kinds": {"full_attention": self_entry},
        "cross_kinds": {"cross_attention": per_image},
        "layer_types_from": "text_config.cross_attention_layers (the others: self-attention, full)",
        "num_hidden_layers": n,
        "kv_bytes_at_context_batch1": {str(c): per_token * c for c in CONTEXTS},
        "small_copy": {"num_hidden_layers": 2, "cross_attention_layers": [1], "images": [1, 2],
                       "prompt_tokens": [SHORT_PROMPT], "attn_implementation": "eager"},
    }


# --------------------------------------------------------------------------- image tokens

IMAGE_SIZES = ((1024, 1024), (640, 480), (1540, 1540), (3000, 2000), (100, 50), (4000, 300))


def measure_image_tokens(raw: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    """Run the family's image processor on blank images of IMAGE_SIZES; return image tokens by ``"WxH"``.

    The tokens are what the processor expands one image placeholder into, without the chat template's markers
    around it: Qwen2.5-VL ``t * h * w / merge**2`` of ``image_grid_thw`` (processor settings of the published
    ``preprocessor_config.json``: min_pixels 3136, max_pixels 12845056), Pixtral ``rows * (cols + 1)`` of the
    resized ``image_sizes`` over ``patch_size * spatial_merge_size`` (``PixtralProcessor``: a break token per
    row, the last one the end token). Needs Pillow; families without a dynamic processor return None.
    """
    import numpy as np

    model_type = raw.get("model_type")
    vision = raw.get("vision_config") or {}
    out = {}
    if model_type in ("qwen2_5_vl", "qwen3_5", "qwen3_5_moe", "qwen3_vl", "qwen3_vl_moe"):
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        merge = vision.get("spatial_merge_size", 2)
        # pixel bounds of the published preprocessor_config.json files: Qwen2.5-VL 3136 - 12845056, Qwen3-VL (whose
        # processor Qwen3.5 uses) 65536 - 16777216
        lo, hi = (3136, 12845056) if model_type == "qwen2_5_vl" else (65536, 16777216)
        proc = Qwen2VLImageProcessorPil(min_pixels=lo, max_pixels=hi,
                                        patch_size=vision.get("patch_size", 14 if model_type == "qwen2_5_vl" else 16),
                                        merge_size=merge, temporal_patch_size=vision.get("temporal_patch_size", 2))
        for w, h in IMAGE_SIZES:
            t, gh, gw = proc(images=[np.zeros((h, w, 3), dtype=np.uint8)])["image_grid_thw"][0].tolist()
            out[f"{w}x{h}"] = t * gh * gw // (merge * merge)
    elif model_type == "mistral3":
        from transformers.models.pixtral.image_processing_pil_pixtral import PixtralImageProcessorPil

        unit = vision.get("patch_size", 16) * raw.get("spatial_merge_size", 2)
        proc = PixtralImageProcessorPil(size={"longest_edge": vision.get("image_size", 1024)}, patch_size=unit)
        for w, h in IMAGE_SIZES:
            rh, rw = proc(images=[np.zeros((h, w, 3), dtype=np.uint8)])["image_sizes"][0]
            out[f"{w}x{h}"] = int(rh) // unit * (int(rw) // unit + 1)
    elif model_type == "llama4":
        from transformers.models.llama4.image_processing_llama4 import Llama4ImageProcessor

        tile = vision.get("image_size", 448)
        per_tile = (tile // vision.get("patch_size", 14)) ** 2 // round(1 / vision.get("pixel_shuffle_ratio", 0.5) ** 2)
        proc = Llama4ImageProcessor(size={"height": tile, "width": tile})  # tiles of the encoder's image size
        for w, h in IMAGE_SIZES:
            rows, cols = proc(images=[np.zeros((h, w, 3), dtype=np.uint8)])["aspect_ratios"][0].tolist()
            # Llama4Processor._prompt_split_image: start, the tiles with their separators, <|image|>, the global
            # view, end
            tiles = rows * cols
            out[f"{w}x{h}"] = 3 + per_tile + ((tiles * per_tile + tiles) if tiles > 1 else 0)
    elif model_type == "mllama":
        from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

        tile = vision.get("image_size", 448)
        proc = MllamaImageProcessorPil(size={"height": tile, "width": tile},
                                       max_image_tiles=vision.get("max_num_tiles", 4))
        padded = {}
        for w, h in IMAGE_SIZES:
            got = proc(images=[[np.zeros((h, w, 3), dtype=np.uint8)]], return_tensors="np")
            out[f"{w}x{h}"] = int(got["num_tiles"][0][0])
            padded[f"{w}x{h}"] = int(got["pixel_values"].shape[2])
        notes.append(f"image_tiles: {type(proc).__name__} on blank images; pixel_values keep "
                     f"{sorted(set(padded.values()))} tiles whatever the size.")
        return {"image_tiles": out, "image_tiles_padded": padded}
    else:
        return None
    notes.append(f"image_tokens: {type(proc).__name__} on blank images of {len(IMAGE_SIZES)} sizes.")
    return out


# --------------------------------------------------------------------------- driver


#: Model types transformers has no class for, mapped as transformers itself maps them: ``Kimi_K25Config``
#: rewrites a ``kimi_k2`` text config to ``deepseek_v3`` (and Kimi-K2's own config.json loads a
#: ``DeepseekV3Config`` through ``auto_map``).
MODEL_TYPE_ALIASES = {"kimi_k2": "deepseek_v3"}


def measure(raw: dict[str, Any]) -> dict[str, Any]:
    """Measure one model config."""
    notes: list[str] = []
    if raw.get("model_type") in MODEL_TYPE_ALIASES:
        alias = raw["model_type"]
        raw = {**raw, "model_type": MODEL_TYPE_ALIASES[alias]}
        notes.append(f"model_type {alias} has no transformers class: built as {raw['model_type']}, as "
                     "transformers' Kimi_K25Config maps it.")
    config, text_config = build_configs(raw, notes)
    multimodal = text_config is not config
    result = {"model_type": raw.get("model_type"), "text_model_type": text_config.model_type}
    result.update(measure_params(config if multimodal else text_config, multimodal, notes))
    if multimodal and getattr(text_config, "cross_attention_layers", None):
        result["kv_cache"] = measure_cross_kv(config, text_config, notes)
    else:
        result["kv_cache"] = measure_kv(text_config, notes, config if multimodal else None)
    if multimodal:
        tokens = measure_image_tokens(raw, notes)
        if tokens is not None and "image_tiles" in tokens:
            result.update(tokens)
        elif tokens is not None:
            result["image_tokens"] = tokens
    result["notes"] = notes
    return result


def compare_with_reference(got: dict[str, Any], ref: dict[str, Any]) -> list[str]:
    """Return the differences between a measurement and the reference figures."""
    diffs = []
    params = dict(got["params"])
    # The reference counts norms inside self_attn under norms; move them there before comparing.
    moved = Counter(params["by_category"])
    moved["attention"] -= params["attention_internal_norms"]
    moved["norms"] += params["attention_internal_norms"]
    params["by_category"] = {c: n for c, n in moved.items() if n}
    for key in ("total", "by_category", "tied_embeddings"):
        if params[key] != ref["params"][key]:
            diffs.append(f"params.{key}: {params[key]} != {ref['params'][key]}")
    ref_kv, got_kv = ref["kv_cache"], got["kv_cache"]
    if got_kv["bytes_per_token_uncapped"] != ref_kv["bytes_per_token_uncapped"]:
        diffs.append(
            f"kv bytes_per_token_uncapped: {got_kv['bytes_per_token_uncapped']} != {ref_kv['bytes_per_token_uncapped']}"
        )
    for kind, ref_entry in ref_kv["layer_kinds"].items():
        got_entry = got_kv["layer_kinds"].get(kind, {})
        for key, value in ref_entry.items():
            if got_entry.get(key) != value:
                diffs.append(f"kv {kind}.{key}: {got_entry.get(key)} != {value}")
    if set(got_kv["layer_kinds"]) != set(ref_kv["layer_kinds"]):
        diffs.append(f"kv layer kinds: {sorted(got_kv['layer_kinds'])} != {sorted(ref_kv['layer_kinds'])}")
    if got_kv["kv_bytes_at_context_batch1"] != ref_kv["kv_bytes_at_context_batch1"]:
        diffs.append("kv_bytes_at_context_batch1 differ")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    parser.add_argument("--reference", type=Path, default=next((p for p in REFERENCE_CANDIDATES if p.exists()), None))
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--only", nargs="+", metavar="NAME",
        help="measure only these models and merge them into the existing output (the others keep the figures "
        "of the release they were measured with; each merged entry records its own versions)",
    )
    args = parser.parse_args(argv)

    transformers.logging.set_verbosity_error()
    allow_torchvision_without_ops()
    reference = json.loads(args.reference.read_text()) if args.reference else None
    inputs = load_inputs(args.models_dir, reference)
    if args.only:
        missing = set(args.only) - set(inputs)
        if missing:
            parser.error(f"--only: no such model {sorted(missing)}")
        inputs = {name: inputs[name] for name in args.only}

    models: dict[str, Any] = {}
    failures = 0
    for name, entry in inputs.items():
        print(f"{name} ({entry['source']})", flush=True)
        try:
            models[name] = {"source": entry["source"], **measure(entry["config"])}
            if args.only:
                models[name]["measured_with"] = {"transformers": transformers.__version__, "torch": torch.__version__}
                if "timm" in sys.modules:  # a timm tower was built (Gemma-3n's MobileNetV5)
                    models[name]["measured_with"]["timm"] = sys.modules["timm"].__version__
        except Exception as exc:  # report and carry on with the other models
            failures += 1
            print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        if reference is not None and name in reference["models"]:
            diffs = compare_with_reference(models[name], reference["models"][name])
            print("  reference: " + ("matches" if not diffs else "DIFFERS\n    " + "\n    ".join(diffs)), flush=True)

    if args.only and args.output.exists():
        merged = json.loads(args.output.read_text())
        merged["models"].update(models)
        args.output.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
        print(f"merged {len(models)} models into {args.output}" + (f"; {failures} failed" if failures else ""))
        return 1 if failures else 0
    output = {
        "about": (
            "Measured by tools/measure_transformers.py (see its docstring for the method): parameters of the "
            "model built on the meta device (tied tensors once), and bytes of the DynamicCache a bf16 forward "
            "pass returns, per token and per layer kind, from a small copy that keeps the attention geometry."
        ),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "models": models,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(models)} models to {args.output}" + (f"; {failures} failed" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
