"""Multimodal wrappers: the vision tower and projector of ``gemma3``, ``mistral3`` and ``qwen2_5_vl`` configs.

``TOWERS`` maps a top-level ``model_type`` to a function of the whole config
(and of the text fields already read from its ``text_config``) that returns
the fields the wrapper adds: ``vision`` (a
:class:`~vramcore.model.vision.VisionSpec`) and ``tie_embeddings``, which
transformers 5 reads from the outer config when the file sets it there (and
otherwise from the text config: see ``_tie``).
``READERS`` reads the text decoder of Qwen2.5-VL, whose older files keep the
text fields at the top level (``qwen2_5_vl``) and newer ones in a
``text_config`` (``qwen2_5_vl_text``).
"""

from __future__ import annotations

from collections.abc import Mapping

from vramcore.model.hf._reader import Fields, Reader
from vramcore.model.hf.qwen import read_qwen2

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


def _sub(r: Reader, key: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Return the sub-config `key` with `defaults` filled in, every count checked (names as ``key.field``)."""
    raw = r.cfg.get(key)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"config field {key!r} must be an object, got {type(raw).__name__}")
    merged = {**defaults, **{k: v for k, v in raw.items() if v is not None}}
    sub = Reader(merged, r.model_type)
    out: dict[str, Any] = {}
    for name, default in defaults.items():
        if isinstance(default, bool):
            out[name] = sub.bool(name, default)
            continue
        try:
            out[name] = sub.int(name, minimum=1)
        except ValueError as exc:
            raise ValueError(str(exc).replace(f"field {name!r}", f"field '{key}.{name}'")) from None
        # a vision encoder is far smaller than the decoder bounds allow: keep the tensor list short
        if name in ("num_hidden_layers", "depth") and out[name] > 1024:
            raise ValueError(f"config field '{key}.{name}' must be <= 1024, got {out[name]}")
    return out


def _tie(r: Reader, text: Fields) -> bool:
    # transformers 5 ties by the outer config, whose class default may differ from the text config's
    # (Mistral3Config ties by default, MistralConfig does not); loading a checkpoint that holds both
    # matrices unties them again (modeling_utils: "both are present in the checkpoints ... we will NOT tie
    # them").  A file that sets the outer flag is followed; otherwise the text config's flag says what the
    # published checkpoints hold.
    return r.bool("tie_word_embeddings", text["tie_embeddings"])


# SiglipVisionConfig defaults (transformers models/siglip/configuration_siglip.py)
_SIGLIP = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
           "num_channels": 3, "image_size": 224, "patch_size": 16, "vision_use_head": True}


def towers_gemma3(r: Reader, text: Fields) -> Fields:
    """Gemma-3: SigLIP encoder (``vision_use_head`` off in every published config) and the soft-token projector."""
    from vramcore.model.vision import siglip_gemma3  # loaded with the first model that has one

    vc = _sub(r, "vision_config", _SIGLIP)
    if vc.pop("vision_use_head"):
        raise ValueError("config field 'vision_config.vision_use_head' is true: Gemma-3 builds its SigLIP "
                         "tower without the pooling head, and no published config sets it")
    tokens = r.int("mm_tokens_per_image", 256, minimum=1)
    # Gemma3ForConditionalGeneration._supports_flash_attn = False (transformers 5.24; Gemma3ForCausalLM has it)
    return {"vision": siglip_gemma3(vc, text["hidden_size"], tokens), "tie_embeddings": _tie(r, text),
            "flash_supported": False}


# PixtralVisionConfig defaults (transformers models/pixtral/configuration_pixtral.py); head_dim = hidden / heads
_PIXTRAL = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
            "num_channels": 3, "image_size": 1024, "patch_size": 16}


def towers_mistral3(r: Reader, text: Fields) -> Fields:
    """Mistral-Small-3.1 / 3.2 (``mistral3``): Pixtral encoder, RMSNorm + patch merger + two-layer projector."""
    from vramcore.model.vision import pixtral  # loaded with the first model that has one

    vc = _sub(r, "vision_config", _PIXTRAL)
    raw = r.cfg.get("vision_config") or {}
    heads = vc["num_attention_heads"]
    vc["head_dim"] = Reader(raw, r.model_type).int("head_dim", vc["hidden_size"] // heads, minimum=1)
    merge = r.int("spatial_merge_size", 2, minimum=1)
    bias = r.bool("multimodal_projector_bias", False)
    return {"vision": pixtral(vc, text["hidden_size"], merge, bias), "tie_embeddings": _tie(r, text)}


# Qwen2_5_VLVisionConfig defaults (transformers models/qwen2_5_vl/configuration_qwen2_5_vl.py)
_QWEN25_VL = {"depth": 32, "hidden_size": 3584, "intermediate_size": 3420, "num_heads": 16, "in_channels": 3,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 3584}


def towers_qwen2_5_vl(r: Reader, text: Fields) -> Fields:
    """Qwen2.5-VL: its ViT with a 2x2 patch merger into the decoder's width."""
    from vramcore.model.vision import qwen2_5_vl  # loaded with the first model that has one

    vc = _sub(r, "vision_config", _QWEN25_VL)
    if vc["out_hidden_size"] != text["hidden_size"]:
        raise ValueError(f"config field 'vision_config.out_hidden_size' ({vc['out_hidden_size']}) must equal the "
                         f"text hidden_size ({text['hidden_size']})")
    # Qwen2_5_VLConfig: the outer flag, or (pre-v5 files) the text config's when the outer one is false
    return {"vision": qwen2_5_vl(vc), "tie_embeddings": r.bool("tie_word_embeddings", False) or text["tie_embeddings"]}


TOWERS = {"gemma3": towers_gemma3, "mistral3": towers_mistral3, "qwen2_5_vl": towers_qwen2_5_vl}

READERS = {"qwen2_5_vl": read_qwen2, "qwen2_5_vl_text": read_qwen2}
