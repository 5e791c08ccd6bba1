"""Measure the peak of live activation bytes while a vision tower runs, on the CPU, tensor by tensor.

vramcore's vLLM profile counts the encoder's activation peak as bytes per patch of the largest image
(``VisionSpec.vllm_encoder_phases``).  That form rests on two facts this script measures on
transformers' ``Qwen2_5_VisionTransformerPretrainedModel`` (the Qwen2.5-VL-7B-Instruct vision geometry,
with fewer blocks): the peak above the inputs and weights grows linearly in the patches, and it does not
grow with the number of blocks (every block frees what it allocates, so the peak is one block's).  It
also records which operator the peak is reached in.  It does not measure vLLM: vLLM's tower (vLLM
0.9.0.1, ``vllm/model_executor/models/qwen2_5_vl.py``) holds other tensors (unfused rotary kernel, q / k /
v copies, its own attention backends), which vramcore reads from vLLM's code, not from here.

It also runs the prefill of a whole ``Qwen2_5_VLForConditionalGeneration`` (the same tower, a one-layer
decoder) over batches of images (``qwen2_5_vl_request``): the tower calls per prefill (one, for every image
of the batch), what is live when the tower starts and when the decoder starts, and the tower's peak above
its start -- the facts behind ``VisionSpec.transformers_encoder_phases``.  ``gemma3_request`` does the same
for ``Gemma3ForConditionalGeneration`` (Gemma-3-27B's SigLIP tower with 1 to 3 layers, a one-layer decoder of
the 27B's width): its peak does not grow past two layers (from the second on, the encoder's loop variable
holds the previous layer's output beside the embeddings).  ``mistral3_request`` runs
``Mistral3ForConditionalGeneration`` (Mistral-Small-3.1-24B's Pixtral tower with 1 to 3 layers): all images of
the batch go through the tower as one sequence of patches, under a block-diagonal attention mask of every pair
of them (quadratic in the patches of the call).  ``qwen3_vl_request`` runs ``Qwen3VLForConditionalGeneration``
(Qwen3-VL-8B's tower with 1 to 4 blocks and 0 to 3 deepstack mergers); ``qwen3_5_request``
``Qwen3_5ForConditionalGeneration`` (Qwen3.5's tower, Qwen3-VL's without deepstack, with 1 to 3 blocks, and its
hybrid decoder class with one full-attention layer); ``llama4_request``
``Llama4ForConditionalGeneration`` (Llama-4-Scout's tower with 1 to 3 layers, each tile a batch row);
``mllama_request`` ``MllamaForConditionalGeneration`` (Llama-3.2-11B-Vision's tower with 2-3 local and 1-2
global layers, every image a batch row of 4 padded tiles under its aspect-ratio mask).

The tracker is a ``TorchDispatchMode``: every tensor an operator returns is attributed to its storage;
a storage counts from the first operator that returns it until the last tensor viewing it dies
(``weakref.finalize``).  Inputs and parameters, created before the mode, never count.  Fused kernels'
internal buffers (the CPU flash-attention kernel's) are invisible to it, as they are to a count of
tensors.  Runs under ``torch.inference_mode`` in bf16.

Usage
-----
::

    /tmp/tfenv/bin/python tools/measure_encoder_peak.py            # torch 2.13.0, transformers 5.24.0
    /tmp/tfenv/bin/python tools/measure_encoder_peak.py --only gemma3   # one family, the others kept

Options: ``--output`` (default ``tests/data/encoder_peak_measured.json``).  No network: the tower is
built from its config with random weights.
"""

from __future__ import annotations

import argparse
import json
import weakref
from pathlib import Path

#: Qwen2.5-VL-7B-Instruct's vision_config (config.json of the checkpoint), depth and full-attention
#: blocks replaced per run.
QWEN2_5_VL_7B_VISION = {
    "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "patch_size": 14,
    "temporal_patch_size": 2, "spatial_merge_size": 2, "window_size": 112, "in_channels": 3,
    "out_hidden_size": 3584, "hidden_act": "silu",
}


class LiveBytes:
    """A dispatch mode that tracks the bytes of live storages returned by operators, and their peak."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        tracker = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                out = func(*args, **(kwargs or {}))
                tracker._record(out, str(func.overloadpacket.__name__))
                return out

        self.mode = _Mode()
        self.sizes: dict[int, int] = {}     # storage data_ptr -> bytes
        self.refs: dict[int, int] = {}      # storage data_ptr -> live tensors viewing it
        self.seen: set[int] = set()         # ids of tensors already attributed
        self.live = 0
        self.peak = 0
        self.peak_op = ""

    def _release(self, ptr: int, tid: int) -> None:
        self.seen.discard(tid)
        self.refs[ptr] -= 1
        if self.refs[ptr] == 0:
            self.live -= self.sizes.pop(ptr)
            del self.refs[ptr]

    def _record(self, out: object, op: str) -> None:
        import torch

        tensors = [out] if isinstance(out, torch.Tensor) else [t for t in (out if isinstance(out, (tuple, list))
                                                                           else ()) if isinstance(t, torch.Tensor)]
        for t in tensors:
            if id(t) in self.seen:
                continue
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in self.sizes:
                if ptr in self.external:   # an input or a parameter (or a view of one)
                    continue
                self.sizes[ptr] = storage.nbytes()
                self.refs[ptr] = 0
                self.live += storage.nbytes()
                if self.live > self.peak:
                    self.peak, self.peak_op = self.live, op
            self.refs[ptr] += 1
            self.seen.add(id(t))
            weakref.finalize(t, self._release, ptr, id(t))

    def run(self, fn, external: set[int]):  # type: ignore[no-untyped-def]
        """Run `fn()` under the mode; `external` holds the data pointers of inputs and parameters."""
        self.external = external
        with self.mode:
            result = fn()
        return result


def measure_qwen2_5_vl(depth: int, full_blocks: list[int], side: int) -> dict[str, object]:
    """Peak live bytes of transformers' Qwen2.5-VL tower over one ``side x side``-patch image (bf16, CPU)."""
    import torch
    from transformers import Qwen2_5_VLConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    cfg = Qwen2_5_VLConfig(vision_config={**QWEN2_5_VL_7B_VISION, "depth": depth,
                                          "fullatt_block_indexes": full_blocks}).vision_config
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = Qwen2_5_VisionTransformerPretrainedModel._from_config(cfg, dtype=torch.bfloat16).eval()
    patches = side * side
    width = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size ** 2
    pixels = torch.randn(patches, width, dtype=torch.bfloat16)
    grid = torch.tensor([[1, side, side]])
    external = {p.untyped_storage().data_ptr() for p in model.parameters()}
    external |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    external |= {pixels.untyped_storage().data_ptr(), grid.untyped_storage().data_ptr()}
    tracker = LiveBytes()
    with torch.inference_mode():
        out = tracker.run(lambda: model(pixels, grid_thw=grid).pooler_output, external)
    return {"depth": depth, "fullatt_block_indexes": full_blocks, "grid_thw": [1, side, side],
            "patches": patches, "peak_bytes": tracker.peak, "peak_op": tracker.peak_op,
            "output_shape": list(out.shape)}


def run_prefill(model, inputs: dict[str, object], tower, projector=None, decoder=None) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Run one prefill of `model` on `inputs` under :class:`LiveBytes` and return its marks.

    Hooks record the tower calls, the live bytes when the tower starts, its peak above them (up to the
    end of `projector` when given, else of the tower) and the operator of that peak, the live bytes after
    the tower (and the projector), and when the `decoder` (default ``model.model.language_model``) starts.  The
    parameters, buffers and `inputs` never count.
    """
    import torch

    external = {p.untyped_storage().data_ptr() for p in model.parameters()}
    external |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    external |= {t.untyped_storage().data_ptr() for t in inputs.values() if isinstance(t, torch.Tensor)}
    tracker = LiveBytes()
    marks: dict[str, object] = {"tower_calls": 0}

    def tower_pre(*_: object) -> None:
        marks["tower_calls"] = int(marks["tower_calls"]) + 1  # type: ignore[call-overload]
        marks["live_at_tower"] = tracker.live
        tracker.peak = tracker.live

    def peak_end(after: str) -> None:
        marks["tower_peak"] = tracker.peak - int(marks["live_at_tower"])  # type: ignore[call-overload]
        marks["tower_peak_op"] = tracker.peak_op
        marks[after] = tracker.live

    def tower_post(*_: object) -> None:
        if projector is None:
            peak_end("live_after_tower")
        else:
            marks["live_after_tower"] = tracker.live

    def decoder_pre(*_: object) -> None:
        marks["live_at_decoder"] = tracker.live

    hooks = [tower.register_forward_pre_hook(tower_pre), tower.register_forward_hook(tower_post),
             (model.model.language_model if decoder is None else decoder).register_forward_pre_hook(decoder_pre)]
    if projector is not None:
        hooks.append(projector.register_forward_hook(lambda *_: peak_end("live_after_projector")))
    try:
        with torch.inference_mode():
            tracker.run(lambda: model(**inputs, use_cache=False, logits_to_keep=1).logits, external)
    except AttributeError as error:   # raised once the decoder has run (Llama-4, transformers 5.24.0): kept
        if "live_at_decoder" not in marks:
            raise
        marks["error_after_decoder"] = f"{type(error).__name__}: {error}"
    finally:
        for h in hooks:
            h.remove()
    return marks


#: A one-layer text decoder for the end-to-end runs (the decoder's own peak is not what they measure): the
#: 7B's width, so that the merger's output feeds it, and a small vocabulary with the special tokens inside it.
TINY_TEXT = {"hidden_size": 3584, "intermediate_size": 512, "num_hidden_layers": 1, "num_attention_heads": 28,
             "num_key_value_heads": 4, "vocab_size": 512, "rope_parameters": {"rope_type": "default",
             "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}}
SPECIAL = {"image_token_id": 500, "video_token_id": 501, "vision_start_token_id": 502, "vision_end_token_id": 503}


def qwen_vl_inputs(vision: dict[str, object], batch: int, images: int, side: int, text_tokens: int):  # type: ignore[no-untyped-def]
    """Return a Qwen-VL prompt of `batch` sequences of `images` ``side x side``-patch images and their inputs.

    ``(input_ids, pixel_values, image_grid_thw, embeddings per image, pixel elements per patch)``: each image
    between its vision start / end tokens, one image token per merged patch, then `text_tokens` text tokens;
    the pixels float32 as ``Qwen2VLImageProcessor`` returns them.
    """
    import torch

    merge = int(vision["spatial_merge_size"])  # type: ignore[call-overload]
    features = side * side // (merge * merge)
    row = [SPECIAL["vision_start_token_id"]] + [SPECIAL["image_token_id"]] * features + [
        SPECIAL["vision_end_token_id"]]
    ids = torch.tensor([row * images + list(range(text_tokens))] * batch)
    width = 3 * int(vision["temporal_patch_size"]) * int(vision["patch_size"]) ** 2  # type: ignore[call-overload]
    pixels = torch.randn(batch * images * side * side, width, dtype=torch.float32)
    grid = torch.tensor([[1, side, side]] * (batch * images))
    return ids, pixels, grid, features, width


def measure_qwen2_5_vl_request(batch: int, images: int, side: int, text_tokens: int = 16) -> dict[str, object]:
    """Live bytes of a prefill of ``Qwen2_5_VLForConditionalGeneration`` over `batch` x `images` images.

    Each image is ``side x side`` patches (``grid_thw = [1, side, side]``), its pixels float32 as
    ``Qwen2VLImageProcessor`` returns them.  Forward hooks on the vision tower and on the language model
    record: how many tower calls the prefill makes; the live bytes when the tower starts (what is held beside
    it) and its peak above them; and the live bytes when the decoder starts (what the tower leaves held).
    """
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    cfg = Qwen2_5_VLConfig(text_config=TINY_TEXT, vision_config={**QWEN2_5_VL_7B_VISION, "depth": 2,
                                                                  "fullatt_block_indexes": [1]}, **SPECIAL)
    cfg._attn_implementation = "sdpa"
    cfg.vision_config._attn_implementation = "sdpa"
    cfg.text_config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16).eval()
    ids, pixels, grid, features, width = qwen_vl_inputs(QWEN2_5_VL_7B_VISION, batch, images, side, text_tokens)
    marks = run_prefill(model, {"input_ids": ids, "pixel_values": pixels, "image_grid_thw": grid},
                        model.model.visual)
    return {"batch": batch, "images": images, "grid_thw": [1, side, side], "patches": batch * images * side * side,
            "features": batch * images * features, "tokens": len(ids[0]), "pixel_width": width, **marks}


#: Gemma-3's SigLIP vision_config (google/gemma-3-27b-it config.json; the 4B and 12B share it), its layers
#: replaced per run, and a one-layer decoder of the 27B's width with a small vocabulary holding the markers.
GEMMA3_VISION = {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
                 "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
                 "patch_size": 14, "vision_use_head": False}
GEMMA3_TEXT = {"hidden_size": 5376, "intermediate_size": 256, "num_hidden_layers": 1, "num_attention_heads": 32,
               "num_key_value_heads": 16, "head_dim": 128, "vocab_size": 512, "sliding_window": 1024}
GEMMA3_SPECIAL = {"image_token_index": 500, "boi_token_index": 501, "eoi_token_index": 502}


def measure_gemma3_request(batch: int, images: int, layers: int, text_tokens: int = 16) -> dict[str, object]:
    """Live bytes of a prefill of ``Gemma3ForConditionalGeneration`` over `batch` x `images` 896 px images.

    The pixels are bf16, as Gemma-3's model card moves the processor's output (``.to(model.device,
    dtype=torch.bfloat16)``).  Hooks record the tower calls, the live bytes when the tower starts, its peak
    above them up to the projector's end, what the tower and the projector leave, and the live bytes when
    the decoder starts.
    """
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    cfg = Gemma3Config(text_config=GEMMA3_TEXT, vision_config={**GEMMA3_VISION, "num_hidden_layers": layers},
                       mm_tokens_per_image=256, **GEMMA3_SPECIAL)
    for c in (cfg, cfg.vision_config, cfg.text_config):
        c._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = Gemma3ForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16).eval()
    row = [GEMMA3_SPECIAL["boi_token_index"]] + [GEMMA3_SPECIAL["image_token_index"]] * 256 + [
        GEMMA3_SPECIAL["eoi_token_index"]]
    ids = torch.tensor([row * images + list(range(text_tokens))] * batch)
    side = GEMMA3_VISION["image_size"]
    pixels = torch.randn(batch * images, 3, side, side, dtype=torch.bfloat16)
    marks = run_prefill(model, {"input_ids": ids, "pixel_values": pixels}, model.model.vision_tower,
                        model.model.multi_modal_projector)
    patches = (side // GEMMA3_VISION["patch_size"]) ** 2
    return {"batch": batch, "images": images, "layers": layers, "patches": batch * images * patches,
            "features": batch * images * 256, "tokens": len(ids[0]), "pixel_dtype": "bfloat16", **marks}


#: Pixtral's vision_config (mistralai/Mistral-Small-3.1-24B-Instruct-2503 config.json), its layers replaced
#: per run, and a one-layer decoder of the 24B's width with a small vocabulary holding the image token.
PIXTRAL_VISION = {"head_dim": 64, "hidden_act": "silu", "hidden_size": 1024, "image_size": 1540,
                  "intermediate_size": 4096, "model_type": "pixtral", "num_attention_heads": 16,
                  "num_channels": 3, "num_hidden_layers": 24, "patch_size": 14, "rope_theta": 10000.0}
MISTRAL3_TEXT = {"head_dim": 128, "hidden_size": 5120, "intermediate_size": 256, "num_hidden_layers": 1,
                 "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 512, "model_type": "mistral"}
MISTRAL3_IMAGE_TOKEN = 500


def measure_mistral3_request(batch: int, images: int, width: int, height: int, layers: int,
                             text_tokens: int = 16) -> dict[str, object]:
    """Live bytes of a prefill of ``Mistral3ForConditionalGeneration`` over `batch` x `images` images.

    Each image is `width` x `height` pixels (multiples of 28, the size ``PixtralImageProcessor`` resizes
    to), the pixels bf16 as Mistral-Small-3.1's model card moves them.  The prompt holds one image token
    per merged patch (the ``[IMG_BREAK]`` / ``[IMG_END]`` tokens are text to the model).  Hooks as in
    :func:`measure_gemma3_request`; ``sdpa`` attention, whose block-diagonal mask over every patch of the
    call (``generate_block_attention_mask``) the tower builds in the activation dtype.
    """
    import torch
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    cfg = Mistral3Config(vision_config={**PIXTRAL_VISION, "num_hidden_layers": layers}, text_config=MISTRAL3_TEXT,
                         image_token_index=MISTRAL3_IMAGE_TOKEN, spatial_merge_size=2, vision_feature_layer=-1,
                         multimodal_projector_bias=False, projector_hidden_act="gelu")
    for c in (cfg, cfg.vision_config, cfg.text_config):
        c._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = Mistral3ForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16).eval()
    features = (width // 28) * (height // 28)
    ids = torch.tensor([[MISTRAL3_IMAGE_TOKEN] * features * images + list(range(text_tokens))] * batch)
    pixels = torch.randn(batch * images, 3, height, width, dtype=torch.bfloat16)
    sizes = torch.tensor([[height, width]] * (batch * images))
    marks = run_prefill(model, {"input_ids": ids, "pixel_values": pixels, "image_sizes": sizes},
                        model.model.vision_tower)
    patches = (width // PIXTRAL_VISION["patch_size"]) * (height // PIXTRAL_VISION["patch_size"])
    return {"batch": batch, "images": images, "width": width, "height": height, "layers": layers,
            "patches": batch * images * patches, "features": batch * images * features, "tokens": len(ids[0]),
            "pixel_dtype": "bfloat16", **marks}


#: Qwen3-VL-8B-Instruct's vision_config (config.json of the checkpoint; transformers' Qwen3VLVisionConfig
#: defaults but for out_hidden_size, the 8B's text width), depth and deepstack layers replaced per run, and a
#: one-layer decoder of that width.
QWEN3_VL_VISION = {"hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16, "patch_size": 16,
                   "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3, "out_hidden_size": 4096,
                   "num_position_embeddings": 2304, "hidden_act": "gelu_pytorch_tanh"}
QWEN3_VL_TEXT = {"hidden_size": 4096, "intermediate_size": 256, "num_hidden_layers": 1, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 512,
                 "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0,
                                     "mrope_section": [24, 20, 20], "mrope_interleaved": True}}


def measure_qwen3_vl_request(batch: int, images: int, side: int, depth: int, deepstack: list[int],
                             text_tokens: int = 16) -> dict[str, object]:
    """Live bytes of a prefill of ``Qwen3VLForConditionalGeneration`` over `batch` x `images` images.

    Each image is ``side x side`` patches (``grid_thw = [1, side, side]``), its pixels float32 as the
    processor returns them; `deepstack` lists the blocks whose output a deepstack merger reads.
    ``mm_token_type_ids`` marks the image tokens (1), as the processor returns it.  Hooks as in
    :func:`run_prefill`.
    """
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    vision = {**QWEN3_VL_VISION, "depth": depth, "deepstack_visual_indexes": deepstack}
    cfg = Qwen3VLConfig(text_config=QWEN3_VL_TEXT, vision_config=vision, **SPECIAL)
    run = qwen3_vl_prefill(cfg, Qwen3VLForConditionalGeneration, QWEN3_VL_VISION, batch, images, side, text_tokens)
    return {"batch": batch, "images": images, "grid_thw": [1, side, side], "depth": depth,
            "deepstack_visual_indexes": deepstack, **run}


def qwen3_vl_prefill(cfg, model_class, vision: dict[str, object], batch: int, images: int, side: int,  # type: ignore[no-untyped-def]
                     text_tokens: int) -> dict[str, object]:
    """Build `model_class` from `cfg` (sdpa, bf16) and run :func:`run_prefill` over Qwen-VL inputs of `vision`."""
    import torch

    for c in (cfg, cfg.vision_config, cfg.text_config):
        c._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = model_class._from_config(cfg, dtype=torch.bfloat16).eval()
    ids, pixels, grid, features, width = qwen_vl_inputs(vision, batch, images, side, text_tokens)
    types = (ids == SPECIAL["image_token_id"]).long()
    marks = run_prefill(model, {"input_ids": ids, "pixel_values": pixels, "image_grid_thw": grid,
                                "mm_token_type_ids": types}, model.model.visual)
    return {"patches": batch * images * side * side, "features": batch * images * features,
            "tokens": len(ids[0]), "pixel_width": width, **marks}


#: Qwen3.5's vision_config (transformers' Qwen3_5VisionConfig defaults, which Qwen3_5Config() uses: Qwen3-VL's tower
#: without deepstack, out_hidden_size 3584), depth replaced per run, and a one-layer full-attention decoder of that
#: width (Qwen3_5TextConfig defaults otherwise).
QWEN3_5_VISION = {"hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16, "patch_size": 16,
                  "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3, "out_hidden_size": 3584,
                  "num_position_embeddings": 2304, "hidden_act": "gelu_pytorch_tanh"}
QWEN3_5_TEXT = {"hidden_size": 3584, "intermediate_size": 256, "num_hidden_layers": 1, "num_attention_heads": 16,
                "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 512, "layer_types": ["full_attention"]}


def measure_qwen3_5_request(batch: int, images: int, side: int, depth: int,
                            text_tokens: int = 16) -> dict[str, object]:
    """Live bytes of a prefill of ``Qwen3_5ForConditionalGeneration`` over `batch` x `images` images.

    As :func:`measure_qwen3_vl_request`, with Qwen3.5's tower (no deepstack mergers) and hybrid decoder class.
    """
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

    cfg = Qwen3_5Config(text_config=QWEN3_5_TEXT, vision_config={**QWEN3_5_VISION, "depth": depth}, **SPECIAL)
    run = qwen3_vl_prefill(cfg, Qwen3_5ForConditionalGeneration, QWEN3_5_VISION, batch, images, side, text_tokens)
    return {"batch": batch, "images": images, "grid_thw": [1, side, side], "depth": depth, **run}


#: Llama-4-Scout's vision_config (meta-llama/Llama-4-Scout-17B-16E-Instruct config.json), its layers replaced
#: per run, and a one-layer dense decoder of the Scout's width.
LLAMA4_VISION = {"hidden_act": "gelu", "hidden_size": 1408, "image_size": 336, "intermediate_size": 5632,
                 "model_type": "llama4_vision_model", "multi_modal_projector_bias": False, "norm_eps": 1e-05,
                 "num_attention_heads": 16, "num_channels": 3, "num_hidden_layers": 34, "patch_size": 14,
                 "pixel_shuffle_ratio": 0.5, "projector_input_dim": 4096, "projector_output_dim": 4096,
                 "rope_theta": 10000, "vision_feature_layer": -1, "vision_output_dim": 4096}
LLAMA4_TEXT = {"hidden_size": 5120, "intermediate_size": 256, "intermediate_size_mlp": 256, "num_hidden_layers": 1,
               "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 512,
               "num_local_experts": 1, "attention_chunk_size": 8192}
LLAMA4_SPECIAL = {"image_token_index": 500, "boi_token_index": 501, "eoi_token_index": 502}


def measure_llama4_request(batch: int, tiles: int, layers: int, text_tokens: int = 16) -> dict[str, object]:
    """Live bytes of a prefill of ``Llama4ForConditionalGeneration`` over `batch` sequences of `tiles` tiles.

    Each tile is 336 x 336 bf16 pixels (the processor's tiles, moved as the model card does); the prompt
    holds 144 image tokens per tile (576 patches pixel-shuffled by 0.5).  Hooks as in :func:`run_prefill`, the
    peak up to the projector's end.  transformers 5.24.0's ``Llama4ForConditionalGeneration.forward`` raises
    ``AttributeError`` after the decoder (it reads ``image_outputs`` from the text model's output): recorded,
    every mark is taken before it.
    """
    import torch
    from transformers import Llama4Config, Llama4ForConditionalGeneration

    cfg = Llama4Config(vision_config={**LLAMA4_VISION, "num_hidden_layers": layers}, text_config=LLAMA4_TEXT,
                       **LLAMA4_SPECIAL)
    for c in (cfg, cfg.vision_config, cfg.text_config):
        c._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = Llama4ForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16).eval()
    row = [LLAMA4_SPECIAL["boi_token_index"]] + [LLAMA4_SPECIAL["image_token_index"]] * 144 * tiles + [
        LLAMA4_SPECIAL["eoi_token_index"]]
    ids = torch.tensor([row + list(range(text_tokens))] * batch)
    side = LLAMA4_VISION["image_size"]
    pixels = torch.randn(batch * tiles, 3, side, side, dtype=torch.bfloat16)
    marks = run_prefill(model, {"input_ids": ids, "pixel_values": pixels}, model.vision_model,
                        model.multi_modal_projector, model.language_model)
    per_tile = (side // LLAMA4_VISION["patch_size"]) ** 2 + 1     # and the class token
    return {"batch": batch, "tiles": tiles, "layers": layers, "patches": batch * tiles * per_tile,
            "features": batch * tiles * 144, "tokens": len(ids[0]), "pixel_dtype": "bfloat16", **marks}


#: Llama-3.2-11B-Vision-Instruct's vision_config (config.json of the checkpoint), its local and global layers
#: and intermediate-feature layers replaced per run, and a two-layer decoder (one cross-attention layer) of the
#: 11B's width.
MLLAMA_VISION = {"attention_heads": 16, "hidden_act": "gelu", "hidden_size": 1280, "image_size": 560,
                 "intermediate_size": 5120, "max_num_tiles": 4, "model_type": "mllama_vision_model",
                 "norm_eps": 1e-05, "num_channels": 3, "num_global_layers": 8, "num_hidden_layers": 32,
                 "patch_size": 14, "supported_aspect_ratios": [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2],
                                                              [3, 1], [4, 1]], "vision_output_dim": 7680}
MLLAMA_TEXT = {"hidden_size": 4096, "intermediate_size": 256, "num_hidden_layers": 2, "cross_attention_layers": [1],
               "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 512, "pad_token_id": 0}


def measure_mllama_request(batch: int, images: int, layers: int, global_layers: int, intermediate: list[int],
                           text_tokens: int = 16) -> dict[str, object]:
    """Live bytes of a prefill of ``MllamaForConditionalGeneration`` over `batch` x `images` images.

    Every image is 4 tiles of 560 px (aspect ratio 2 x 2), its pixels bf16; one ``<|image|>`` token each in
    the prompt, every token attending to every image.  `intermediate` lists the local layers whose outputs
    join the tower's features (``vision_output_dim`` = the hidden width x (1 + their count)).  Hooks as in
    :func:`run_prefill`.
    """
    import torch
    from transformers import MllamaConfig, MllamaForConditionalGeneration

    vision = {**MLLAMA_VISION, "num_hidden_layers": layers, "num_global_layers": global_layers,
              "intermediate_layers_indices": intermediate,
              "vision_output_dim": MLLAMA_VISION["hidden_size"] * (1 + len(intermediate))}
    cfg = MllamaConfig(vision_config=vision, text_config=MLLAMA_TEXT, image_token_index=500)
    for c in (cfg, cfg.vision_config, cfg.text_config):
        c._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = MllamaForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16).eval()
    ids = torch.tensor([[500] * images + list(range(text_tokens))] * batch)
    tiles, side = MLLAMA_VISION["max_num_tiles"], MLLAMA_VISION["image_size"]
    inputs = {"input_ids": ids,
              "pixel_values": torch.randn(batch, images, tiles, 3, side, side, dtype=torch.bfloat16),
              "aspect_ratio_ids": torch.full((batch, images), 6, dtype=torch.long),     # [2, 2]: 4 tiles
              "aspect_ratio_mask": torch.ones(batch, images, tiles, dtype=torch.long),
              "cross_attention_mask": torch.ones(batch, len(ids[0]), images, tiles, dtype=torch.long)}
    marks = run_prefill(model, inputs, model.model.vision_model)
    return {"batch": batch, "images": images, "layers": layers, "global_layers": global_layers,
            "intermediate_layers": intermediate, "tokens": len(ids[0]), "pixel_dtype": "bfloat16", **marks}


def main() -> None:
    """Measure and write the JSON."""
    import torch
    import transformers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(Path(__file__).resolve().parents[1] / "tests" / "data"
                                                / "encoder_peak_measured.json"))
    parser.add_argument("--only", choices=("qwen2_5_vl", "gemma3", "mistral3", "qwen3_vl", "qwen3_5", "llama4",
                                           "mllama"),
                        default=None,
                        help="measure one family and keep the others' runs of the existing file")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = Path(args.output)
    data = json.loads(out.read_text()) if args.only and out.exists() else {}
    data.update({"torch": torch.__version__, "transformers": transformers.__version__, "dtype": "bfloat16",
                 "attn_implementation": "sdpa",
                 "what": "peak of live tensor bytes during the tower's forward, beyond its inputs and parameters"})
    if args.only in (None, "qwen2_5_vl"):
        data["model"] = "Qwen2.5-VL-7B-Instruct vision_config"
        data["qwen2_5_vl"] = [measure_qwen2_5_vl(depth, full, side)
                              for depth, full in ((2, [1]), (4, [1, 3])) for side in (32, 64)]
        data["qwen2_5_vl_request"] = [measure_qwen2_5_vl_request(b, n, side) for b, n, side in
                                      ((1, 1, 32), (1, 1, 64), (1, 2, 32), (2, 1, 32), (2, 2, 32))]
    if args.only in (None, "gemma3"):
        data["gemma3_model"] = "Gemma-3-27B's vision_config (SigLIP), a one-layer decoder of its width"
        data["gemma3_request"] = [measure_gemma3_request(b, n, layers) for b, n, layers in
                                  ((1, 1, 1), (1, 1, 2), (1, 1, 3), (1, 2, 2), (2, 1, 2), (2, 2, 3))]
    if args.only in (None, "mistral3"):
        data["mistral3_model"] = "Mistral-Small-3.1-24B's vision_config (Pixtral), a one-layer decoder of its width"
        data["mistral3_request"] = [measure_mistral3_request(b, n, w, h, layers) for b, n, w, h, layers in
                                    ((1, 1, 280, 280, 1), (1, 1, 280, 280, 2), (1, 1, 280, 280, 3),
                                     (1, 1, 560, 560, 2), (1, 1, 560, 280, 2), (1, 2, 280, 280, 2),
                                     (2, 1, 280, 280, 2), (2, 2, 420, 336, 3))]
    if args.only in (None, "qwen3_vl"):
        data["qwen3_vl_vision"] = QWEN3_VL_VISION
        data["qwen3_vl_request"] = [measure_qwen3_vl_request(b, n, side, depth, deep) for b, n, side, depth, deep in
                                    ((1, 1, 16, 1, []), (1, 1, 16, 2, [0]), (1, 1, 16, 3, [0, 1]),
                                     (1, 1, 32, 3, [0, 1]), (1, 2, 16, 3, [0, 1]), (2, 1, 16, 3, [0, 1]),
                                     (2, 2, 24, 4, [0, 1, 2]))]
    if args.only in (None, "qwen3_5"):
        data["qwen3_5_vision"] = QWEN3_5_VISION
        data["qwen3_5_request"] = [measure_qwen3_5_request(b, n, side, depth) for b, n, side, depth in
                                   ((1, 1, 16, 1), (1, 1, 16, 2), (1, 1, 32, 3), (1, 2, 16, 2), (2, 1, 16, 2),
                                    (2, 2, 24, 3))]
    if args.only in (None, "llama4"):
        data["llama4_model"] = "Llama-4-Scout's vision_config, a one-layer dense decoder of its width"
        data["llama4_request"] = [measure_llama4_request(b, t, layers) for b, t, layers in
                                  ((1, 1, 1), (1, 1, 2), (1, 1, 3), (1, 2, 2), (2, 1, 2), (2, 3, 3))]
    if args.only in (None, "mllama"):
        data["mllama_model"] = "Llama-3.2-11B-Vision-Instruct's vision_config, a two-layer decoder of its width"
        data["mllama_request"] = [measure_mllama_request(b, n, layers, glob, inter) for b, n, layers, glob, inter in
                                  ((1, 1, 2, 1, [0]), (1, 1, 3, 1, [0]), (1, 1, 3, 2, [0]), (1, 1, 3, 1, [0, 1]),
                                   (1, 2, 2, 1, [0]), (2, 1, 2, 1, [0]))]
    for key in ("qwen2_5_vl", "qwen2_5_vl_request", "gemma3_request", "mistral3_request", "qwen3_vl_request",
                "qwen3_5_request", "llama4_request", "mllama_request"):
        for r in data.get(key, []):
            print(key, r)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print("wrote", args.output)


if __name__ == "__main__":
    main()
