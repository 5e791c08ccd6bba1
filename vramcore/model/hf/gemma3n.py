"""Gemma-3n (``gemma3n_text``; the ``gemma3n`` wrapper's text decoder).

transformers ``models/gemma3n/configuration_gemma3n.py`` (``Gemma3nTextConfig``) and
``modeling_gemma3n.py`` (``Gemma3nTextModel``, ``Gemma3nTextDecoderLayer``): a Gemma-3 style decoder
(four norms per layer, q/k norms, tied and scaled embeddings, final logit soft-capping) with AltUp
(``altup_num_inputs`` copies of the residual stream), a LAuReL block per layer, per-layer embeddings
(``embed_tokens_per_layer``) and KV sharing in the last ``num_kv_shared_layers`` layers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from vramcore.model.hf._reader import Fields, Reader, common_fields, set_layer_types

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


def _uniform_intermediate(r: Reader, n_layers: int) -> int:
    # Gemma3nTextConfig: an int, or one width per layer (MatFormer slices); a ModelSpec holds one MLP width
    value = r.cfg.get("intermediate_size")
    if not isinstance(value, list):
        return int(r.int("intermediate_size"))
    if len(value) != n_layers:
        raise ValueError(f"config field 'intermediate_size' must be an integer or a list of {n_layers} integers "
                         f"(one per layer), got {len(value)} entries")
    widths = {Reader({"intermediate_size": v}, r.model_type).int("intermediate_size", minimum=1) for v in value}
    if len(widths) != 1:
        raise ValueError(f"config field 'intermediate_size' lists different widths per layer ({sorted(widths)}): "
                         "a ModelSpec holds one MLP width, so a MatFormer slice with mixed widths is not supported")
    return int(widths.pop())


def read_gemma3n(r: Reader) -> Fields:
    """Fields of a ``gemma3n_text`` config (every fifth layer global unless ``layer_types`` says otherwise)."""
    n_layers = r.int("num_hidden_layers")
    cfg = dict(r.cfg)
    cfg["intermediate_size"] = _uniform_intermediate(r, n_layers)
    r = Reader(cfg, r.model_type)
    out = common_fields(r, tie_default=True)
    bias = r.bool("attention_bias", False)
    # Gemma3nRMSNorm scales by weight, not 1 + weight (its weight starts at ones); the embeddings are scaled by
    # sqrt(hidden) (Gemma3nTextScaledWordEmbedding); the final logits are soft-capped (final_logit_softcapping
    # 30.0 by default), the attention scores not (Gemma3nTextAttention passes no softcap)
    cap = r.cfg["final_logit_softcapping"] is not None if "final_logit_softcapping" in r.cfg else True
    out.update(qkv_bias=bias, o_bias=bias, norms_per_layer=4, qk_norm=True, embed_scale=True,
               final_softcap=cap)
    # Gemma3nTextConfig.__post_init__: layer i is full when (i + 1) % 5 == 0
    set_layer_types(r, out, lambda i: (i + 1) % 5 != 0)
    out["kv_shared_layers"] = r.int("num_kv_shared_layers", 15)
    out["altup_inputs"] = r.int("altup_num_inputs", 4, minimum=1)
    out["laurel_rank"] = r.int("laurel_rank", 64)
    out["per_layer_input_size"] = r.int("hidden_size_per_layer_input", 256)
    out["per_layer_vocab_size"] = r.int("vocab_size_per_layer_input", 262144)
    if out["per_layer_input_size"] == 0 or out["per_layer_vocab_size"] == 0:
        out["per_layer_input_size"] = out["per_layer_vocab_size"] = 0
    return out


READERS = {"gemma3n_text": read_gemma3n}

# Gemma3nTextConfig class defaults (transformers 5.24 configuration_gemma3n.py) for fields a config may leave out
DEFAULTS = {
    "gemma3n_text": {
        "vocab_size": 262400, "hidden_size": 2048, "intermediate_size": 16384, "num_hidden_layers": 35,
        "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 256, "max_position_embeddings": 32768,
        "sliding_window": 512,
    },
}


#: Parameters of the timm vision encoders Gemma-3n's ``vision_config.architecture`` names, as transformers 5.24
#: builds them (``TimmWrapperModel``: ``timm.create_model(architecture, num_classes=0)``).  Their shapes live in
#: timm's code (pytorch-image-models ``timm/models/mobilenetv5.py``), not in the config: the figure is measured
#: by tools/measure_transformers.py on the meta device with timm 1.0.31 (tests/data/transformers_measured.json,
#: Gemma-3n-E4B / E2B ``by_category.vision_tower``).
TIMM_VISION_PARAMS: dict[str, int] = {"mobilenetv5_300m_enc": 294126912}

#: Image side Gemma-3n's processor resizes every image to (pixels): unverified -- the checkpoints'
#: preprocessor_config.json (a SiglipImageProcessor of 768 x 768) is not in the searchable sources.  A label only:
#: the image costs ``vision_soft_tokens_per_image`` tokens whatever its size.
GEMMA3N_IMAGE_SIZE = 768

# Gemma3nAudioConfig class defaults (transformers 5.24 configuration_gemma3n.py)
_AUDIO = {"hidden_size": 1536, "input_feat_size": 128, "conf_num_attention_heads": 8, "conf_num_hidden_layers": 12,
          "conf_conv_kernel_size": 5, "vocab_size": 128, "sscp_conv_channel_size": [128, 32],
          "sscp_conv_kernel_size": [[3, 3], [3, 3]], "sscp_conv_stride_size": [[2, 2], [2, 2]]}
# Gemma3nVisionConfig class defaults (the same file)
_VISION = {"architecture": "mobilenetv5_300m_enc", "hidden_size": 2048, "vocab_size": 128}


def _pairs(raw: object, key: str, depth: int) -> list:
    """Return a list of 2 positive ints (depth 1) or of 2 such pairs (depth 2), named in errors as `key`."""
    def ok(v: object) -> bool:
        return not isinstance(v, bool) and isinstance(v, int) and 1 <= v <= 2**16

    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise ValueError(f"config field {key!r} must be a list of 2 entries (one per subsampling block), got {raw!r}")
    for v in raw:
        if (depth == 1 and not ok(v)) or (depth == 2 and not (isinstance(v, (list, tuple)) and len(v) == 2
                                                               and all(ok(x) for x in v))):
            raise ValueError(f"config field {key!r} must hold " + ("positive ints" if depth == 1 else
                             "[time, frequency] pairs of positive ints") + f", got {raw!r}")
    return [list(v) if depth == 2 else v for v in raw]


def towers_gemma3n(r: Reader, text: Fields) -> Fields:
    """Gemma-3n (``gemma3n``): the timm MobileNetV5 vision tower, the Conformer audio tower and their embedders.

    transformers ``Gemma3nModel``: ``vision_tower`` (``TimmWrapperModel`` of ``vision_config.architecture``,
    counted by :data:`TIMM_VISION_PARAMS`), ``audio_tower`` (``Gemma3nAudioEncoder``, exact from
    ``audio_config``: :func:`vramcore.model.audio.gemma3n_audio`), ``embed_vision`` (the projector) and
    ``embed_audio`` (counted with the audio tower), each a ``Gemma3nMultimodalEmbedder``.
    """
    from vramcore.model.audio import gemma3n_audio
    from vramcore.model.hf.vision_towers import _sub
    from vramcore.model.vision import VisionSpec, VisionTensor

    vraw = r.cfg.get("vision_config") or {}
    if not isinstance(vraw, Mapping):
        raise ValueError(f"config field 'vision_config' must be an object, got {type(vraw).__name__}")
    arch = vraw.get("architecture", _VISION["architecture"])
    if arch not in TIMM_VISION_PARAMS:
        raise ValueError(f"config field 'vision_config.architecture' is {arch!r}: the parameters of a timm encoder "
                         f"come from timm's code, and vramcore has measured only {sorted(TIMM_VISION_PARAMS)}")
    vc = _sub(r, "vision_config", {k: v for k, v in _VISION.items() if k != "architecture"})
    h_text = text["hidden_size"]
    tokens = r.int("vision_soft_tokens_per_image", 256, minimum=1)
    hv = vc["hidden_size"]
    # Gemma3nMultimodalEmbedder: embedding (vocab_size x hidden), hard and soft RMSNorms, a bias-free projection
    # to the text width; embedding_post_projection_norm has no weight (with_scale=False)
    tensors = (VisionTensor(f"v.{arch}", (TIMM_VISION_PARAMS[arch],), False, "linear"),
               VisionTensor("mm.embedding.weight", (vc["vocab_size"], hv), True, "linear"),
               VisionTensor("mm.hard_emb_norm.weight", (hv,), True, "norm"),
               VisionTensor("mm.soft_emb_norm.weight", (hv,), True, "norm"),
               VisionTensor("mm.input_projection.weight", (h_text, hv), True, "linear"))
    side = math.isqrt(tokens)
    # a CNN: no ViT layers, heads or MLP; the encoder's width is its output channels (vision_config.hidden_size),
    # one soft token per GEMMA3N_IMAGE_SIZE / sqrt(tokens) pixels a side (Gemma3nModel.get_image_features reshapes
    # the output to vision_soft_tokens_per_image rows); Gemma3nProcessor wraps the tokens in boi / eoi
    vision = VisionSpec(kind="mobilenetv5", tensors=tensors, hidden_size=hv, num_layers=1, num_heads=1,
                        intermediate_size=hv, patch_size=max(1, GEMMA3N_IMAGE_SIZE // max(side, 1)),
                        image_size=GEMMA3N_IMAGE_SIZE, token_rule="fixed", tokens_per_image=tokens, marker_tokens=2)
    ints = {k: v for k, v in _AUDIO.items() if isinstance(v, int)}
    ac: dict[str, Any] = _sub(r, "audio_config", ints)
    araw = r.cfg.get("audio_config") or {}
    ac["sscp_conv_channel_size"] = _pairs(araw.get("sscp_conv_channel_size", _AUDIO["sscp_conv_channel_size"]),
                                          "audio_config.sscp_conv_channel_size", 1)
    for key in ("sscp_conv_kernel_size", "sscp_conv_stride_size"):
        ac[key] = _pairs(araw.get(key, _AUDIO[key]), f"audio_config.{key}", 2)
    audio = gemma3n_audio(ac, h_text, r.int("audio_soft_tokens_per_image", 188, minimum=1))
    # Gemma3nConfig has no tie_word_embeddings of its own: the text config's flag
    return {"vision": vision, "audio": audio, "tie_embeddings": text["tie_embeddings"]}


TOWERS = {"gemma3n": towers_gemma3n}
