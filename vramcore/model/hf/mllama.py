"""Llama-3.2-Vision (``mllama`` / ``mllama_text_model``): cross-attention layers with a cache of their own.

Every layer listed in ``text_config.cross_attention_layers`` (8 of 40 in the
11B model, 20 of 100 in the 90B) is a ``"cross_attention"`` layer
(transformers ``MllamaCrossAttentionDecoderLayer``): q/k/v/o projections of
the self-attention shapes, per-head ``q_norm`` / ``k_norm``, and tanh gates on
its attention and MLP branches.  Its K and V are projected from the vision
encoder's states, ``max_num_tiles x ((image_size / patch)**2 + 1)`` tokens per
image, cached once per sequence (``MllamaTextCrossAttention`` calls
``cache.update`` only when ``cross_attention_states`` are passed, at the
prefill); with no image the layers are skipped and cache nothing
(``MllamaTextModel.forward``).  The token embedding holds ``vocab_size + 8``
rows, the lm_head ``vocab_size`` (``MllamaTextModel.embed_tokens``; the
checkpoints never tie them: ``MllamaForConditionalGeneration`` has its
``_tied_weights_keys`` commented out).

The vision model is ``num_hidden_layers`` local plus ``num_global_layers``
gated global encoder layers over up to ``max_num_tiles`` tiles with gated
position and tile embeddings (:func:`vramcore.model.vision.mllama`).
"""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader, _show, common_fields
from vramcore.model.hf.vision_towers import _sub

__all__ = ["read_mllama_text", "towers_mllama"]


def read_mllama_text(r: Reader) -> Fields:
    """Fields of a ``mllama_text_model`` config (transformers ``configuration_mllama.py`` / ``modeling_mllama.py``).

    Raises
    ------
    ValueError
        ``cross_attention_layers`` is not a list of distinct layer indices in ``[0, num_hidden_layers)``, or
        ``tie_word_embeddings`` is true (the embedding has 8 more rows than the lm_head: they cannot be one
        tensor).
    """
    out = common_fields(r, tie_default=False)
    n = out["num_layers"]
    raw = r.cfg.get("cross_attention_layers")
    cross = r.int_set("cross_attention_layers")
    if raw is not None and len(cross) != len(raw):
        raise ValueError(f"config field 'cross_attention_layers' must hold distinct layer indices, got {_show(raw)}")
    bad = sorted(i for i in cross if not 0 <= i < n)
    if bad:
        raise ValueError(f"config field 'cross_attention_layers' holds layer indices outside [0, {n}) "
                         f"(num_hidden_layers): {bad[:8]}")
    if out["tie_embeddings"]:
        raise ValueError("config field 'tie_word_embeddings' is true: an mllama embedding holds vocab_size + 8 rows "
                         "and its lm_head vocab_size, so they cannot be tied")
    out.update(layer_types=tuple("cross_attention" if i in cross else "full_attention" for i in range(n)),
               embedding_rows=out["vocab_size"] + 8)
    # MllamaForCausalLM._supports_flash_attn = False (transformers 5.24): flash_attention_2 is refused
    out["flash_supported"] = False
    return out


# MllamaVisionConfig defaults (transformers configuration_mllama.py)
_VISION = {"hidden_size": 1280, "num_hidden_layers": 32, "num_global_layers": 8, "attention_heads": 16,
           "num_channels": 3, "intermediate_size": 5120, "vision_output_dim": 7680, "image_size": 448,
           "patch_size": 14, "max_num_tiles": 4}
_ASPECT_RATIOS = [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]]


def towers_mllama(r: Reader, text: Fields) -> Fields:
    """Llama-3.2-Vision's vision model and its one-linear projector (``multi_modal_projector``).

    Raises
    ------
    ValueError
        A vision count that is not a positive integer (named ``vision_config.<field>``), ``max_num_tiles``
        above 1024, ``supported_aspect_ratios`` that is not a list of ``[rows, cols]`` pairs, or a
        ``vision_output_dim`` other than ``hidden_size x (len(intermediate_layers_indices) + 1)`` (the
        width of the states the projector reads: the last layer's and each listed intermediate layer's).
    """
    from vramcore.model.vision import mllama  # loaded with the first model that has one

    vc = _sub(r, "vision_config", _VISION)
    raw = r.cfg.get("vision_config") or {}
    vision_keys = Reader(raw, r.model_type)
    if "num_attention_heads" in raw and "attention_heads" not in raw:  # MllamaVisionConfig.attribute_map
        vc["attention_heads"] = vision_keys.int("num_attention_heads", minimum=1)
    if vc["max_num_tiles"] > 1024:
        raise ValueError(f"config field 'vision_config.max_num_tiles' must be <= 1024, got {vc['max_num_tiles']}")
    ratios = raw.get("supported_aspect_ratios", _ASPECT_RATIOS)
    if not isinstance(ratios, list) or not ratios or len(ratios) > 2**16 or any(
            not isinstance(x, list) or len(x) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                                          for v in x) for x in ratios):
        raise ValueError(f"config field 'vision_config.supported_aspect_ratios' must be a list of [rows, cols] "
                         f"pairs of positive integers, got {_show(ratios)}")
    layers = raw.get("intermediate_layers_indices", [3, 7, 15, 23, 30])
    if not isinstance(layers, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in layers):
        raise ValueError(f"config field 'vision_config.intermediate_layers_indices' must be a list of integers, "
                         f"got {_show(layers)}")
    if vc["vision_output_dim"] != vc["hidden_size"] * (len(layers) + 1):
        raise ValueError(f"config field 'vision_config.vision_output_dim' ({vc['vision_output_dim']}) must be "
                         f"vision hidden_size x (len(intermediate_layers_indices) + 1) = {vc['hidden_size']} x "
                         f"{len(layers) + 1}")
    if vc["image_size"] < vc["patch_size"]:
        raise ValueError(f"config field 'vision_config.image_size' ({vc['image_size']}) is smaller than its "
                         f"patch_size ({vc['patch_size']})")
    return {"vision": mllama(vc, text["hidden_size"], len(ratios)), "tie_embeddings": False}


READERS = {"mllama_text_model": read_mllama_text, "mllama_text": read_mllama_text}

TOWERS = {"mllama": towers_mllama}

# MllamaTextConfig defaults (transformers configuration_mllama.py): the 11B model's text geometry
DEFAULTS = {
    name: {"vocab_size": 128256, "hidden_size": 4096, "num_hidden_layers": 40, "num_attention_heads": 32,
           "num_key_value_heads": 8, "intermediate_size": 14336, "max_position_embeddings": 131072,
           "cross_attention_layers": [3, 8, 13, 18, 23, 28, 33, 38]}
    for name in ("mllama_text_model", "mllama_text")
}
