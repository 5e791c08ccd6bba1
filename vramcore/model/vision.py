"""Vision towers of multimodal models: their tensors, and the tokens an image costs.

A multimodal checkpoint (Gemma-3 4B and up, Mistral-Small-3.1, Qwen2.5-VL ...)
holds a vision encoder and a projector beside its text decoder.  A
:class:`VisionSpec` lists their tensors exactly, as transformers instantiates
them (built by the family readers in :mod:`vramcore.model.hf`, or by hand with
:meth:`VisionSpec.vit`), and says how many context tokens one image becomes.
:class:`~vramcore.ModelSpec` counts them in the parts ``vision_tower`` and
``multimodal_projector``.

Image tokens follow each family's processor in transformers 5.x:

``"fixed"``
    A fixed count per image whatever its size (Gemma-3's SigLIP at 896 px,
    ``mm_tokens_per_image`` = 256 soft tokens) plus the begin / end markers
    (``Gemma3Processor``: ``boi`` + 256 image tokens + ``eoi``).
``"pixtral"``
    The image is scaled down (never up) until its longest side fits
    ``image_size``; every ``patch_size * merge_size`` pixels of a side are one
    token, rounded up, and every row of tokens ends with ``[IMG_BREAK]`` (the
    last with ``[IMG_END]``): ``rows * (cols + 1)`` (``PixtralProcessor``).
``"qwen_vl"``
    The image is resized to multiples of ``patch_size * merge_size`` pixels
    with its area kept within ``[min_pixels, max_pixels]``
    (``qwen2_vl.image_processing_qwen2_vl.smart_resize``); each such square is
    one token, plus ``<|vision_start|>`` and ``<|vision_end|>``.
``"tiles"``
    Llama-4: the image goes on the canvas of ``a x b`` tiles of ``image_size``
    pixels (``a x b <= max_tiles``, 16) that upscales it least, else
    downscales it least (``Llama4ImageProcessor``, ``get_best_fit``); each
    tile is ``tokens_per_image`` tokens, a global view adds one more tile when
    there are several, with a separator after every tile but each row's last
    and one per row, plus ``<|image_start|>``, ``<|image|>`` and
    ``<|image_end|>`` (``Llama4Processor._prompt_split_image``).
``"mllama"``
    Llama-3.2-Vision: an image is one ``<|image|>`` token in the prompt
    (``MllamaProcessor`` does not expand it); its vision tokens go to the
    cross-attention layers instead, ``max_tiles`` tiles of
    ``(image_size / patch_size)**2 + 1`` tokens (the class token) each:
    ``MllamaImageProcessor`` pads every image to ``max_image_tiles`` tiles
    whatever its canvas (:meth:`VisionSpec.image_tiles` gives the tiles it
    fills), and ``MllamaForConditionalGeneration`` projects all of them
    (:attr:`VisionSpec.cross_tokens_per_image`).
"""

from __future__ import annotations

import math
import numbers
from math import prod

from vramcore._record import Record, field, record
from vramcore.model.limits import check_count, check_tensor

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DEFAULT_IMAGE_SIZE", "TOKEN_RULES", "VisionSpec", "VisionTensor"]

#: How one image turns into context tokens (see the module docstring).
TOKEN_RULES: tuple[str, ...] = ("fixed", "pixtral", "qwen_vl", "tiles", "mllama")

#: Image size (width, height in pixels) assumed when a caller gives a count of images and no size.
#: A dynamic-resolution model's cost depends on it; a fixed-size one (Gemma-3) ignores it.
DEFAULT_IMAGE_SIZE: tuple[int, int] = (1024, 1024)

#: What a tower or projector tensor may be (:attr:`VisionTensor.role`).
VISION_ROLES: tuple[str, ...] = ("norm", "bias", "position", "patch", "linear")

#: Most tiles one image's canvas may hold (``"tiles"``): far above Llama-4's 16.
MAX_TILES = 2**10

#: Largest image side accepted, in pixels (far above any processor's limit; keeps token counts finite).
MAX_IMAGE_SIDE = 2**20


@record(frozen=True, slots=True, repr=False, eq=False)
class VisionTensor(Record):
    """One parameter tensor of a vision tower or projector.

    Attributes
    ----------
    name : str
        Name as llama.cpp writes it in an ``mmproj`` GGUF (``"v.blk.0.attn_q.weight"``, ``"mm.0.weight"``).
    shape : tuple of int
        PyTorch order (rows, row length) for matrices; the patch convolution keeps its own shape.
    projector : bool
        The tensor belongs to the projector (``multimodal_projector``), not the encoder (``vision_tower``).
    role : str
        ``"norm"``, ``"bias"``, ``"position"``, ``"patch"`` or ``"linear"``.

    Raises
    ------
    TypeError, ValueError
        A shape that is not 1 to 5 positive ints (at most 2**40 elements), an unknown role, or a
        `projector` that is not a bool (:func:`vramcore.model.limits.check_tensor`).
    """

    name: str
    shape: tuple[int, ...]
    projector: bool
    role: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", check_tensor("VisionTensor", self.name, self.shape, self.role,
                                                       VISION_ROLES))
        if not isinstance(self.projector, bool):
            raise TypeError(f"VisionTensor {self.name!r}: projector must be a bool, got {self.projector!r}")

    @property
    def numel(self) -> int:
        """Number of elements."""
        return prod(self.shape)


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    return check_count("VisionSpec", name, value, minimum)


@record(frozen=True, slots=True, kw_only=True, repr=False, eq=False)
class VisionSpec(Record):
    """A vision encoder and its projector: exact tensors, encoder geometry and the image-token rule.

    Parameters
    ----------
    kind : str
        The encoder family (``"siglip"``, ``"pixtral"``, ``"qwen2_5_vl"`` ...), a label.
    tensors : tuple of VisionTensor
        Every parameter tensor of the encoder and the projector.
    hidden_size, num_layers, num_heads, intermediate_size : int
        Encoder geometry.
    patch_size : int
        Pixels per patch side.
    image_size : int
        The encoder's native (fixed-size encoders) or largest (``"pixtral"``) image side, in pixels.
    token_rule : str
        One of :data:`TOKEN_RULES`.
    tokens_per_image : int
        Image tokens of a ``"fixed"`` encoder (0 otherwise).
    merge_size : int
        Patches merged per side into one token (``spatial_merge_size``; 1: none).
    min_pixels, max_pixels : int
        Area bounds of ``"qwen_vl"`` resizing.
    marker_tokens : int
        Tokens around each image that the chat template adds, beyond what the
        processor expands the image into (``"fixed"``: boi/eoi, ``"qwen_vl"``:
        vision start/end).
    max_tiles : int
        ``"tiles"``: most tiles of ``image_size`` pixels one image's canvas
        may hold (``Llama4ImageProcessor``'s ``max_patches``, 16 by default; at
        most 1024, which keeps the canvas search short).

    Raises
    ------
    TypeError, ValueError
        A field has the wrong type or range.
    """

    kind: str
    tensors: tuple[VisionTensor, ...]
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    patch_size: int
    image_size: int
    token_rule: str
    tokens_per_image: int = 0
    merge_size: int = 1
    min_pixels: int = 56 * 56
    max_pixels: int = 12845056
    marker_tokens: int = 0
    max_tiles: int = 16
    # the parameter counts, summed once (every estimate reads them)
    _counts: tuple[int, int] = field(init=False, repr=False, compare=False, default=(0, 0))

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str):
            raise TypeError(f"VisionSpec.kind must be a str, got {self.kind!r}")
        if self.token_rule not in TOKEN_RULES:
            raise ValueError(f"VisionSpec.token_rule must be one of {TOKEN_RULES}, got {self.token_rule!r}")
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "patch_size", "image_size",
                     "merge_size", "min_pixels", "max_pixels", "max_tiles"):
            object.__setattr__(self, name, _check_int(name, getattr(self, name)))
        for name in ("tokens_per_image", "marker_tokens"):
            object.__setattr__(self, name, _check_int(name, getattr(self, name), minimum=0))
        if self.max_tiles > MAX_TILES:  # _best_canvas tries every a x b <= max_tiles
            raise ValueError(f"VisionSpec.max_tiles must be in [1, {MAX_TILES}], got {self.max_tiles!r}")
        if self.token_rule in ("fixed", "tiles") and not self.tokens_per_image:
            raise ValueError(f"VisionSpec.tokens_per_image is required for token_rule {self.token_rule!r}")
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"VisionSpec.min_pixels ({self.min_pixels}) exceeds max_pixels ({self.max_pixels})")
        tensors = tuple(self.tensors)
        for t in tensors:
            if not isinstance(t, VisionTensor):
                raise TypeError(f"VisionSpec.tensors must hold VisionTensor entries, got {t!r}")
        object.__setattr__(self, "tensors", tensors)
        object.__setattr__(self, "_counts", (sum(t.numel for t in tensors if not t.projector),
                                             sum(t.numel for t in tensors if t.projector)))

    # ------------------------------------------------------------------ counts
    @property
    def tower_params(self) -> int:
        """Parameters of the encoder (``vision_tower``)."""
        return self._counts[0]

    @property
    def projector_params(self) -> int:
        """Parameters of the projector (``multimodal_projector``)."""
        return self._counts[1]

    def image_tokens(self, width: int | None = None, height: int | None = None) -> int:
        """Return the context tokens one image of `width` x `height` pixels costs.

        Parameters
        ----------
        width, height : int, optional
            Image size in pixels; :data:`DEFAULT_IMAGE_SIZE` when left out.

        Returns
        -------
        int
            Image tokens plus the processor's markers around them.

        Raises
        ------
        ValueError
            A side is not a positive whole number of pixels (at most 2**20).

        Examples
        --------
        >>> import vramcore
        >>> vramcore.get_model("Gemma-3-27B").spec.vision.image_tokens()
        258
        """
        w, h = _sides(width, height)
        if self.token_rule == "fixed":
            return self.tokens_per_image + self.marker_tokens
        if self.token_rule == "mllama":
            return 1 + self.marker_tokens  # the <|image|> token; the vision tokens go to the cross-attention layers
        if self.token_rule == "tiles":
            rows, cols = _best_canvas(h, w, self.image_size, self.max_tiles)
            tiles = rows * cols
            body = (tiles + 1) * self.tokens_per_image + tiles if tiles > 1 else self.tokens_per_image
            return 3 + body + self.marker_tokens  # <|image_start|>, <|image|>, <|image_end|> are the processor's
        if self.token_rule == "pixtral":
            rows, cols = self._pixtral_grid(w, h)
            return rows * (cols + 1) + self.marker_tokens   # a break token ending each row ([IMG_END] the last)
        unit = self.patch_size * self.merge_size
        # qwen_vl: smart_resize to multiples of `unit` within the pixel bounds (Python's round, as there)
        if max(h, w) / min(h, w) > 200:
            raise ValueError(f"image aspect ratio must be at most 200 (the Qwen-VL processor's limit), got "
                             f"{width} x {height}")
        hb, wb = round(h / unit) * unit, round(w / unit) * unit
        if hb * wb > self.max_pixels:
            beta = math.sqrt(h * w / self.max_pixels)
            hb = max(unit, math.floor(h / beta / unit) * unit)
            wb = max(unit, math.floor(w / beta / unit) * unit)
        elif hb * wb < self.min_pixels:
            beta = math.sqrt(self.min_pixels / (h * w))
            hb, wb = math.ceil(h * beta / unit) * unit, math.ceil(w * beta / unit) * unit
        return (hb // unit) * (wb // unit) + self.marker_tokens

    def _pixtral_grid(self, w: int, h: int) -> tuple[int, int]:
        """Rows and columns of merged patches of a checked `w` x `h` image (``PixtralImageProcessor``)."""
        unit = self.patch_size * self.merge_size
        ratio = max(h / self.image_size, w / self.image_size)
        if ratio > 1:  # scaled down with floor so that the longest side fits
            h, w = math.floor(h / ratio), math.floor(w / ratio)
        return -(-h // unit), -(-w // unit)   # then resized up to whole merged patches

    def image_tiles(self, width: int | None = None, height: int | None = None) -> int:
        """Return the tiles of ``image_size`` pixels the canvas of a `width` x `height` image fills.

        The canvas of ``rows x cols <= max_tiles`` tiles that upscales the image
        least, else downscales it least (``MllamaImageProcessor``,
        ``get_optimal_tiled_canvas``; Llama-4's ``get_best_fit`` is the same
        rule).  :data:`DEFAULT_IMAGE_SIZE` when a side is left out.

        Examples
        --------
        >>> import vramcore
        >>> vramcore.get_model("Llama-3.2-11B-Vision-Instruct").spec.vision.image_tiles(640, 480)
        2
        """
        w, h = _sides(width, height)
        rows, cols = _best_canvas(h, w, self.image_size, self.max_tiles)
        return rows * cols

    @property
    def cross_tokens_per_image(self) -> int:
        """Vision tokens one image gives each cross-attention layer (``"mllama"``; 0 for the other rules).

        ``max_tiles x ((image_size / patch_size)**2 + 1)``: every tile's patches and its class token, over all
        ``max_tiles`` tiles, which the image processor pads every image to (transformers
        ``MllamaVisionModel`` strips only the padding patches it adds to reach a multiple of 8).
        """
        if self.token_rule != "mllama":
            return 0
        return self.max_tiles * ((self.image_size // self.patch_size) ** 2 + 1)

    # ------------------------------------------------------------------ construction
    @classmethod
    def vit(cls, *, num_layers: int, hidden_size: int, intermediate_size: int, num_heads: int, patch_size: int,
            image_size: int, text_hidden_size: int, tokens_per_image: int | None = None, num_channels: int = 3,
            bias: bool = True, gated_mlp: bool = False, layernorm: bool = True, position_embeddings: bool = True,
            merge_size: int = 1, kind: str = "vit") -> VisionSpec:
        """Describe a plain ViT encoder and a one-matrix projector by hand.

        A SigLIP / CLIP-style encoder: a patch convolution, learned position
        embeddings (optional), ``num_layers`` pre-norm blocks (q, k, v, o and a
        two- or three-matrix MLP, biases optional) and a final norm; the
        projector is one ``hidden_size x text_hidden_size`` matrix.

        Parameters
        ----------
        num_layers, hidden_size, intermediate_size, num_heads, patch_size, image_size : int
            Encoder geometry.
        text_hidden_size : int
            Width of the text decoder the projector feeds.
        tokens_per_image : int, optional
            Tokens per image (fixed); defaults to ``(image_size // patch_size // merge_size) ** 2``.
        num_channels : int
            Input channels.
        bias, gated_mlp, layernorm, position_embeddings : bool
            Biases on every linear layer; a gated three-matrix MLP; LayerNorm (weight and bias) rather than
            RMSNorm; learned position embeddings.
        merge_size : int
            Patches merged per side into one token.
        kind : str
            Label.

        Returns
        -------
        VisionSpec

        Examples
        --------
        >>> v = VisionSpec.vit(num_layers=2, hidden_size=64, intermediate_size=128, num_heads=4, patch_size=14,
        ...                    image_size=224, text_hidden_size=256)
        >>> v.image_tokens(), v.projector_params
        (256, 16384)
        """
        side = image_size // patch_size
        tensors = _vit_encoder(num_layers, hidden_size, intermediate_size, patch_size, num_channels, bias=bias,
                               gated=gated_mlp, layernorm=layernorm,
                               positions=side * side if position_embeddings else 0)
        tensors.append(VisionTensor("mm.input_projection.weight", (text_hidden_size, hidden_size), True, "linear"))
        tokens = (side // merge_size) ** 2 if tokens_per_image is None else tokens_per_image
        return cls(kind=kind, tensors=tuple(tensors), hidden_size=hidden_size, num_layers=num_layers,
                   num_heads=num_heads, intermediate_size=intermediate_size, patch_size=patch_size,
                   image_size=image_size, token_rule="fixed", tokens_per_image=tokens, merge_size=merge_size)

    @property
    def largest_image(self) -> tuple[int, int]:
        """Width and height of the image that makes the most tokens (vLLM's profiling dummy).

        The encoder's native size for ``"fixed"`` encoders, ``image_size`` squared for Pixtral, the largest
        square within ``max_pixels`` for Qwen-VL, a full canvas of tiles for Llama-4
        (vLLM ``get_image_size_with_most_features`` of each family).
        """
        if self.token_rule == "qwen_vl":
            unit = self.patch_size * self.merge_size
            side = math.isqrt(self.max_pixels) // unit * unit
            return side, side
        if self.token_rule in ("tiles", "mllama"):
            return self.image_size * self.max_tiles, self.image_size  # 1 x max_tiles tiles: the most tokens
        return self.image_size, self.image_size

    @property
    def max_item_tokens(self) -> int:
        """Context tokens of the largest image (:attr:`largest_image`), markers included."""
        return self.image_tokens(*self.largest_image)

    @property
    def max_item_patches(self) -> int:
        """Patches the encoder runs over for the largest image (every tile and the global view of Llama-4)."""
        w, h = self.largest_image
        if self.token_rule == "mllama":
            return self.cross_tokens_per_image
        if self.token_rule == "tiles":
            rows, cols = _best_canvas(h, w, self.image_size, self.max_tiles)
            tiles = rows * cols + (1 if rows * cols > 1 else 0)
            return tiles * (self.image_size // self.patch_size) ** 2
        if self.token_rule == "qwen_vl":
            return (h // self.patch_size) * (w // self.patch_size)
        side = -(-self.image_size // self.patch_size) if self.token_rule == "pixtral" else \
            self.image_size // self.patch_size
        return side * side

    @property
    def max_item_features(self) -> int:
        """Embeddings the encoder hands the decoder for the largest image (the tokens without markers or breaks)."""
        if self.token_rule == "fixed":
            return self.tokens_per_image
        if self.token_rule == "mllama":
            return self.cross_tokens_per_image
        if self.token_rule == "tiles":
            w, h = self.largest_image
            rows, cols = _best_canvas(h, w, self.image_size, self.max_tiles)
            return (rows * cols + (1 if rows * cols > 1 else 0)) * self.tokens_per_image
        return self.max_item_patches // (self.merge_size * self.merge_size)

    @property
    def mlp_gated(self) -> bool:
        """The encoder's MLP is gated (gate, up, down projections)."""
        return any(t.name.endswith("ffn_gate.weight") for t in self.tensors)

    @property
    def peak_elems_per_patch(self) -> int:
        """Elements per patch alive at the peak of a generic pre-norm ViT block (a named assumption).

        The residual and its normed copy, and the MLP's intermediate rows (gate,
        up and their product for a gated MLP; fc1 and its activation otherwise),
        with fused attention (no patch x patch scores).  vLLM's profile uses it
        for the towers :attr:`vllm_encoder_phases` does not read from vLLM's code.
        """
        return sum(self.peak_elems_split)

    @property
    def peak_elems_split(self) -> tuple[int, int]:
        """Return :attr:`peak_elems_per_patch` as (the encoder-wide rows, the MLP-wide rows split over TP ranks)."""
        return 2 * self.hidden_size, (3 if self.mlp_gated else 2) * self.intermediate_size

    @property
    def patch_elems(self) -> int:
        """Input elements of one patch (channels x temporal frames x patch x patch: the patch convolution's)."""
        for t in self.tensors:
            if t.role == "patch":
                return prod(t.shape[1:])
        return 3 * self.patch_size * self.patch_size

    @property
    def vllm_encoder_rule(self) -> str:
        """Name the rule :attr:`vllm_encoder_phases` follows for this tower: a family read from vLLM, or ``"generic"``.

        ``"siglip"`` (Gemma-3), ``"pixtral_hf"`` (Pixtral in HF format, ``Mistral3ForConditionalGeneration``),
        ``"llama4"``, ``"qwen3_vl"`` (with deepstack mergers), ``"qwen2_5_vl"``; every other tower
        (Llama-3.2-Vision's ``"mllama"``, Qwen3.5's tower, Gemma-3n's MobileNet, a hand-built :meth:`vit`)
        is ``"generic"``: their vLLM code is not read to the tensor.

        Qwen3.5 (vllm/model_executor/models/qwen3_5.py, ``Qwen3_5ForConditionalGeneration`` and its MoE
        subclass) builds qwen3_vl.py's ``Qwen3_VisionTransformer`` over its ``vision_config`` (no
        ``deepstack_visual_indexes``: the tower falls back to none) and profiles through Qwen3-VL's
        processing info and dummy-input builder, so its dummy images and encoder budget are Qwen3-VL's
        (:attr:`max_item_patches`, :attr:`max_item_features`, :attr:`patch_elems`).  But vLLM has that class
        only in releases whose tower is newer than the 0.11-series code ``"qwen3_vl"`` was read from (the
        rotary cos / sin gathered from ``get_rope``'s cache into an ``encoder_metadata`` dict, q and k
        rotated by ``ApplyRotaryEmb``, attention through ``MMEncoderAttention``, the position blend by a
        Triton kernel), so ``"qwen3_vl"`` less its deepstack term would not be what that vLLM holds.

        Examples
        --------
        >>> import vramcore
        >>> vramcore.get_model("Gemma-3-27B").spec.vision.vllm_encoder_rule
        'siglip'
        """
        if self.kind == "siglip" and self.token_rule == "fixed":
            return "siglip"
        if self.kind == "pixtral":
            return "pixtral_hf"
        if self.kind == "qwen3_vl":
            # no deepstack mergers: Qwen3.5's tower, in vLLM only past the 0.11 code "qwen3_vl" reads (above)
            return "qwen3_vl" if self.deepstack_mergers else "generic"
        if self.kind in ("llama4", "qwen2_5_vl"):
            return self.kind
        return "generic"

    @property
    def vllm_encoder_phases(self) -> tuple[tuple[float, float, float, float], ...]:
        """Return what vLLM's encoder holds per patch at each phase of a block: one to four phases.

        Each phase is ``(act, act_split, fp32, fp32_split)``: elements per patch (Llama-4: per row, the
        class token's included) in the model's activation dtype and in fp32, whole on every TP rank and
        split over the ranks.  The encoder's peak on one rank is the largest phase, ``(act + act_split /
        tp) x act_bytes + (fp32 + fp32_split / tp) x 4``, times the patches of the images the profiling run
        feeds it (``include/vramcore/engines/vllm.h``, ``vc_vllm_plan``).  The dummy pixels themselves are
        not in the phases: the engine counts them once per image beside the encoder
        (:func:`vramcore.engines.vllm.mm_dummy_image_elems`).  The rule per family
        (:attr:`vllm_encoder_rule`, table ``_VLLM_ENCODER_PHASES``) names each tensor and the vLLM
        function it comes from.  vLLM runs the tower eagerly; with ``-O3`` compilation its custom ops are
        off, so RMSNorm and SiluAndMul run ``forward_native``.  Below, H is the encoder width, I its MLP
        width, d its head width, and ``p`` 1 from the second block on (a block's input is the previous
        block's output, still bound by the encoder's loop), 0 for a one-block tower.

        Examples
        --------
        >>> import vramcore
        >>> v = vramcore.get_model("Gemma-3-27B").spec.vision     # SigLIP: H 1152, I 4304
        >>> int(max(2 * (a + a_tp) + 4 * (f + f_tp) for a, a_tp, f, f_tp in v.vllm_encoder_phases))
        26432
        """
        return _VLLM_ENCODER_PHASES.get(self.vllm_encoder_rule, _generic_vllm_phases)(self)

    @property
    def out_hidden_size(self) -> int:
        """Width of the embeddings the projector hands the decoder (rows of its last matrix)."""
        return [t for t in self.tensors if t.projector and t.role == "linear"][-1].shape[0]

    def image_patches(self, width: int | None = None, height: int | None = None) -> int:
        """Return the patches the encoder runs over for one `width` x `height` image.

        ``"qwen_vl"``: the image ``smart_resize`` makes (:meth:`image_tokens`), ``patch_size`` pixels a
        patch, ``merge_size**2`` patches per image token.  ``"fixed"``: every image is resized to the
        encoder's ``image_size`` square (Gemma-3: 896 px, 4,096 patches; pan and scan off, the processor's
        default).  ``"pixtral"``: the image scaled to fit ``image_size`` and resized up to whole merged
        patches, ``merge_size**2`` patches each.  ``"tiles"`` (Llama-4): ``(image_size / patch)**2 + 1``
        per tile the encoder runs (the canvas's tiles and, past one, the global view; a class token each).
        ``"mllama"``: ``max_tiles`` tiles of ``(image_size / patch)**2 + 1`` rows padded to a multiple of 8
        (``MllamaVisionModel``), whatever the canvas.  Other token rules raise ``NotImplementedError``.

        Examples
        --------
        >>> v = qwen2_5_vl({"hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "depth": 32,
        ...                 "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3,
        ...                 "out_hidden_size": 3584})             # Qwen2.5-VL-7B-Instruct's vision_config
        >>> v.image_patches(896, 896), v.image_tokens(896, 896)
        (4096, 1026)
        """
        if self.token_rule == "fixed":
            _sides(width, height)      # checked, though every image is resized to the square
            return (self.image_size // self.patch_size) ** 2
        if self.token_rule == "tiles":   # every tile (and the global view) with its class token
            return self._tiles_run(width, height) * ((self.image_size // self.patch_size) ** 2 + 1)
        if self.token_rule == "mllama":  # every image padded to max_tiles tiles, each to a multiple of 8 rows
            _sides(width, height)
            return self.max_tiles * -(-((self.image_size // self.patch_size) ** 2 + 1) // 8) * 8
        if self.token_rule not in ("qwen_vl", "pixtral"):
            raise NotImplementedError(f"image_patches: token rule {self.token_rule!r} is not modelled")
        return self.image_features(width, height) * self.merge_size * self.merge_size

    def _tiles_run(self, width: int | None, height: int | None) -> int:
        """Tiles the encoder runs for one image (``"tiles"``): the canvas's, and a global view past one."""
        tiles = self.image_tiles(width, height)
        return tiles + 1 if tiles > 1 else tiles

    def image_features(self, width: int | None = None, height: int | None = None) -> int:
        """Return the embeddings the projector hands the decoder for one `width` x `height` image.

        The image's tokens without the processor's markers (:meth:`image_tokens`): Gemma-3's 256 pooled
        embeddings, Qwen2.5-VL's merged patches; Pixtral's merged patches, without the break token that
        ends each row; Llama-4's 144 pixel-shuffled embeddings per tile run (without the tile separators);
        Llama-3.2-Vision's vision tokens (:attr:`cross_tokens_per_image`, for the cross-attention layers).

        Examples
        --------
        >>> import vramcore
        >>> v = vramcore.get_model("Gemma-3-27B").spec.vision
        >>> v.image_patches(1280, 720), v.image_features(1280, 720)
        (4096, 256)
        """
        if self.token_rule == "tiles":
            return self._tiles_run(width, height) * self.tokens_per_image
        if self.token_rule == "mllama":
            _sides(width, height)
            return self.cross_tokens_per_image
        if self.token_rule == "pixtral":
            rows, cols = self._pixtral_grid(*_sides(width, height))
            return rows * cols
        return self.image_tokens(width, height) - self.marker_tokens

    @property
    def transformers_encoder_phases(self) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
        """Return what transformers' tower holds per patch at its peak and what it leaves held, or None.

        ``((act, fp32, fixed), (held_act, held_fp32, held_feature_act))``: at the tower's peak, elements per
        patch in the model's activation dtype and in fp32 and bytes per patch whatever the dtype; held through
        the decoder's prefill, elements per patch (activation dtype, fp32) and per image embedding
        (activation dtype).  Beside the encoder's peak the prompt's ``inputs_embeds`` (hidden per token,
        counted by the engine) is live.  ``"qwen2_5_vl"`` only, read from transformers 5.24.0
        ``models/qwen2_5_vl/modeling_qwen2_5_vl.py`` and measured (``tools/measure_encoder_peak.py``,
        ``tests/data/encoder_peak_measured.json``, ``qwen2_5_vl_request``): one tower call for all images of
        the batch (``Qwen2_5_VLModel.get_image_features``: ``self.visual(pixel_values, grid_thw=...)``), its
        peak linear in their patches and one block's (every block frees what it allocates).  With H the
        width, d the head width, x the elements of one patch's pixels, m the merge size:

        * the peak, inside ``apply_rotary_pos_emb_vision`` (``k_embed``'s ``rotate_half(k) * sin``): the
          residual, ``norm1``'s output and the fused qkv output (5H); in fp32 ``q.float()``, ``k.float()``,
          ``q_embed``, ``k * cos``, ``rotate_half(k)`` and their product (6H) and the cos / sin tables built
          once per tower call (``Qwen2_5_VisionTransformerPretrainedModel.forward``: 2d); the pixels' copy in
          the tower's dtype (``get_image_features``: ``pixel_values.type(self.visual.dtype)``, x) and the
          caller's pixels in fp32 (x: ``Qwen2VLImageProcessor`` returns float32, and the model card's
          ``inputs.to(model.device)`` keeps it); int64 ``position_ids`` (2 per patch) and ``window_index``
          (one per ``m**2`` patches): 16 + 8 / m**2 bytes;
        * held through the decoder (``Qwen2_5_VLModel.forward`` keeps ``mm_encoder_outputs``): the tower's
          ``last_hidden_state`` (H per patch), the caller's pixels (x fp32), and per embedding the merger's
          output and ``image_embeds``, its ``torch.cat`` copy (2 x the decoder width).

        ``"siglip"`` (Gemma-3's tower, transformers 5.24.0 ``models/siglip/modeling_siglip.py`` and
        ``models/gemma3/modeling_gemma3.py``; measured, ``gemma3_request``): one tower call for all
        images (``Gemma3Model.get_image_features``), no fp32 tensors, with x = 588 the elements of one
        patch's pixels (3 x 14 x 14):

        * the peak, at the last block's MLP activation (``SiglipMLP``: ``fc1``'s output and its
          ``gelu_pytorch_tanh``, 2I): the embeddings (H, held by ``SiglipVisionTransformer.forward``'s
          local through the encoder), the previous block's output (H, the encoder loop's variable: from the
          second block on), the residual and ``layer_norm2``'s output (2H), and the caller's pixels (x in
          the activation dtype: the model card moves the processor's output ``dtype=torch.bfloat16``);
          attention (the q / k / v projections and SDPA's output, fused on a GPU) holds less for this
          geometry (8H against 4H + 2I);
        * held through the decoder: the tower's ``last_hidden_state`` (H per patch: ``get_image_features``
          returns it with the projection), the caller's pixels (x), and the projector's 256 pooled
          embeddings per image (the decoder width each).

        ``"pixtral"`` (Mistral-Small-3.1's tower, transformers 5.24.0 ``models/pixtral/modeling_pixtral.py``
        and ``models/mistral3/modeling_mistral3.py``; measured, ``mistral3_request``): one tower call for all
        images, as one sequence of patches (``PixtralVisionModel.forward``), no fp32 tensors, x = 588:

        * the peak, at the last block's gated MLP (``PixtralMLP``: the activated gate, the up projection and
          their product, 3I): ``patch_conv``'s output (H, still viewed by the per-image crops), ``ln_pre``'s
          output (H), the previous block's output (H, from the second block on), the residual and
          ``ffn_norm``'s output (2H), the rotary cos and sin (2 x head_dim), the caller's pixels (x), and
          16 bytes a patch of int64 positions (two coordinates); besides, the block-diagonal attention mask
          over every pair of patches of the call (:attr:`transformers_encoder_pairs`), and 8 bytes per row
          and column of the last image (its ``meshgrid`` ranges: left out);
        * held through the decoder: the tower's ``last_hidden_state`` (H, kept in the returned
          ``image_outputs``), the pixels (x), and per embedding the projector's output and its
          ``torch.cat`` copy (2 x the decoder width).

        ``"qwen3_vl"`` with deepstack mergers (Qwen3-VL, transformers 5.24.0
        ``models/qwen3_vl/modeling_qwen3_vl.py``; measured, ``qwen3_vl_request``): one tower call for all
        images, x = 1536 (3 x 2 x 16 x 16 pixels a patch); the peak is any block's fp32 rotary step
        (``apply_rotary_pos_emb_vision``, as Qwen2.5-VL's: 6H + 2 head_dim in fp32), beside the learned
        positions' bilinear blend (``pos_embeds``, H in fp32: bf16 rows times fp32 weights, held through
        the tower), the pixels' copy in the activation dtype and the caller's fp32 pixels (x each), 5H in
        the activation dtype (the block's input, its norm, the fused qkv output and the rotated pair), the
        deepstack features made so far (the decoder width per embedding each: every merger reads a block
        before the last), and 64 bytes a patch of interpolation indices, weights and positions;
        held through the decoder: ``last_hidden_state`` (H), the caller's pixels (x fp32), and per
        embedding the merger's and each deepstack merger's output, with their ``torch.cat`` copies
        (2 x (1 + deepstack) x the decoder width).  Qwen3.5's tower (Qwen3-VL's without deepstack, under
        ``Qwen3_5ForConditionalGeneration``: measured, ``qwen3_5_request``) follows the same rule, to the byte.

        ``"llama4"`` (Llama-4's tower, transformers 5.24.0 ``models/llama4/modeling_llama4.py``; measured,
        ``llama4_request``): one tower call, every tile a batch row of ``(image_size / patch)**2 + 1``
        patches (the class token appended); no per-patch fixed bytes:

        * the peak, at the last layer's rotary step (``vision_apply_rotary_emb``: q and k in fp32, their
          complex products, 4H in fp32): ``layernorm_pre``'s output (H, held by the forward's local), the
          previous layer's output (H, from the second layer on), the layer's input norm (H), q / k / v (3H)
          and the rotated q and k back in the activation dtype (2H); the caller's pixels (3 x 336 x 336 a
          tile, 588 per patch but the class token's) are left out;
        * held through the decoder: per embedding the pixel-shuffle adapter's output (its width) and the
          projector's (the decoder width): ``Llama4ForConditionalGeneration.forward`` keeps both.

        ``"mllama"`` (Llama-3.2-Vision, transformers 5.24.0 ``models/mllama/modeling_mllama.py``; measured,
        ``mllama_request``): every image one batch row of ``max_tiles`` padded tiles (R rows,
        :meth:`image_patches`); the peak at the last global layer's MLP (fc1 and its gelu, 2I; the attention
        phase holds 4H there instead, the larger counts): every local and global layer's output so far
        (H each: the encoders record their hidden states for the intermediate features), the encoder's
        input, the layer's residual sum and its norm (2H), the aspect-ratio attention mask (R per row: R^2
        an image), and per image ``patch_embedding``'s output (the tiles' patches without class tokens, H
        each: :attr:`transformers_encoder_image`); the caller's pixels are left out.  Held through the
        decoder, per vision token: the tower's output (``vision_output_dim``) and the projector's (the
        decoder width).

        Other families: None, their encoder peak under transformers is not counted.

        Examples
        --------
        >>> v = qwen2_5_vl({"hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "depth": 32,
        ...                 "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3,
        ...                 "out_hidden_size": 3584})             # Qwen2.5-VL-7B-Instruct's vision_config
        >>> (act, f32, fixed), held = v.transformers_encoder_phases
        >>> 2 * (act - 1176) + 4 * (f32 - 1176) + fixed     # the tower's own peak per patch in bf16, measured 44178.1
        44178.0
        """
        if self.kind == "siglip" and self.token_rule == "fixed":
            return self._siglip_transformers_phases()
        if self.kind == "pixtral":
            return self._pixtral_transformers_phases()
        if self.kind == "mllama":
            h, i = self.hidden_size, self.intermediate_size
            rows = self.image_patches()
            tower_out = next(t for t in self.tensors if t.name == "mm.0.weight").shape[1]
            return (((self.num_layers + 2) * h + max(2 * i, 4 * h) + rows, 0.0, 0.0),
                    (0.0, 0.0, float(tower_out + self.out_hidden_size)))
        if self.kind == "llama4":
            h = self.hidden_size
            previous = 1 if self.num_layers > 1 else 0
            adapter = next(t for t in self.tensors if t.name == "v.adapter.fc2.weight").shape[0]
            return (((7 + previous) * h, 4.0 * h, 0.0), (0.0, 0.0, float(adapter + self.out_hidden_size)))
        if self.kind == "qwen3_vl":
            return self._qwen3_vl_transformers_phases()
        if self.kind != "qwen2_5_vl":
            return None
        h, d, x, m = self.hidden_size, self.hidden_size // self.num_heads, self.patch_elems, self.merge_size
        return ((5.0 * h + x, 6.0 * h + 2.0 * d + x, 16.0 + 8.0 / (m * m)),
                (float(h), float(x), 2.0 * self.out_hidden_size))

    def _siglip_transformers_phases(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """Gemma-3's SigLIP tower under transformers (:attr:`transformers_encoder_phases`)."""
        h, i, x = self.hidden_size, self.intermediate_size, self.patch_elems
        previous = 1 if self.num_layers > 1 else 0      # one block: its input is the embeddings themselves
        return (((3 + previous) * h + 2 * i + x, 0.0, 0.0), (float(h + x), 0.0, float(self.out_hidden_size)))

    def _pixtral_transformers_phases(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """Pixtral's tower under transformers (:attr:`transformers_encoder_phases`)."""
        h, i, x, d = self.hidden_size, self.intermediate_size, self.patch_elems, self.hidden_size // self.num_heads
        previous = 1 if self.num_layers > 1 else 0
        return (((4 + previous) * h + 3 * i + 2 * d + x, 0.0, 16.0), (float(h + x), 0.0, 2.0 * self.out_hidden_size))

    def _qwen3_vl_transformers_phases(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """Qwen3-VL's tower under transformers (:attr:`transformers_encoder_phases`)."""
        h, d, x, m = self.hidden_size, self.hidden_size // self.num_heads, self.patch_elems, self.merge_size
        deep, out = self.deepstack_mergers, self.out_hidden_size
        return ((5.0 * h + x + deep * out / (m * m), 7.0 * h + 2.0 * d + x, 64.0),
                (float(h), float(x), 2.0 * (1 + deep) * out))

    @property
    def deepstack_mergers(self) -> int:
        """Qwen3-VL's deepstack mergers (each reads an inner block's output for an early decoder layer); 0 others.

        Examples
        --------
        >>> import vramcore
        >>> vramcore.get_model("Gemma-3-27B").spec.vision.deepstack_mergers
        0
        """
        return sum(1 for t in self.tensors if t.name.startswith("mm.deepstack.") and t.name.endswith(".norm.weight"))

    @property
    def transformers_encoder_image(self) -> float:
        """Elements per image held at the tower's peak under transformers beside the per-patch ones.

        Llama-3.2-Vision: ``patch_embedding``'s output, ``max_tiles x (image_size / patch)**2`` patches of
        the hidden width (the class tokens and padding rows come later).  0 for the other towers.

        Examples
        --------
        >>> import vramcore
        >>> vramcore.get_model("Llama-3.2-11B-Vision-Instruct").spec.vision.transformers_encoder_image
        8192000.0
        """
        if self.kind != "mllama":
            return 0.0
        return float(self.max_tiles * (self.image_size // self.patch_size) ** 2 * self.hidden_size)

    @property
    def transformers_encoder_pairs(self) -> float:
        """Elements per pair of patches of one tower call held at its peak under transformers.

        Pixtral: 1, the ``sdpa`` block-diagonal attention mask (``generate_block_attention_mask``: every
        patch of every image of the batch against every other, in the activation dtype: quadratic in the
        patches of the call; FlashAttention-2 builds none, not modelled).  0 for the other towers, whose
        attention is split per image or window.

        Examples
        --------
        >>> import vramcore
        >>> vramcore.get_model("Gemma-3-27B").spec.vision.transformers_encoder_pairs
        0.0
        """
        return 1.0 if self.kind == "pixtral" else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the geometry and counts (no tensor list), JSON-serialisable."""
        return {"kind": self.kind, "tower_params": self.tower_params, "projector_params": self.projector_params,
                "hidden_size": self.hidden_size, "num_layers": self.num_layers, "num_heads": self.num_heads,
                "intermediate_size": self.intermediate_size, "patch_size": self.patch_size,
                "image_size": self.image_size, "token_rule": self.token_rule, "merge_size": self.merge_size}


# ---------------------------------------------------------------------- vLLM's vision encoders, per family
# What vLLM's tower holds per patch at each phase of a block (VisionSpec.vllm_encoder_phases): (act, act_split,
# fp32, fp32_split) elements.  Read from vLLM's model code of the 0.11 series (vllm/model_executor/models/...);
# every term names the tensor and the function holding it.  "Whole" tensors are on every TP rank in full
# (inputs, norms, the all-reduced outputs of row-parallel layers); "split" ones are head- or column-sharded.

_Phase = tuple[float, float, float, float]


def _previous(v: VisionSpec) -> int:
    """Return 1 when a block's input (the previous block's output) is a tensor of its own: from the second block on."""
    return 1 if v.num_layers > 1 else 0


def _generic_vllm_phases(v: VisionSpec) -> tuple[_Phase, ...]:
    """Return the generic rule's one phase (a named assumption, not read from vLLM).

    :attr:`VisionSpec.peak_elems_split` as the MLP's phase: the residual and its normed copy whole, the MLP's
    intermediate rows split (gate, up and their product for a gated MLP; fc1 and its activation otherwise);
    fused attention holds no patch x patch scores.
    """
    wide, split = v.peak_elems_split
    return ((float(wide), float(split), 0.0, 0.0),)


def _siglip_vllm_phases(v: VisionSpec) -> tuple[_Phase, ...]:
    """Gemma-3's SigLIP tower (vllm/model_executor/models/siglip.py; gemma3_mm.py feeds it the pixels).

    ``SiglipVisionTransformer.forward`` keeps the embeddings (``SiglipVisionEmbeddings.forward``: the patch
    convolution's output, positions added in place) bound while ``SiglipEncoder.forward`` loops, and the
    loop binds the previous layer's output: ``(1 + p) H`` through every block.
    """
    h, i, p = v.hidden_size, v.intermediate_size, _previous(v)
    tower = 1 + p
    mlp = (float((tower + 2) * h),   # SiglipEncoderLayer.forward: the residual sum after attention, layer_norm2's out
           float(2 * i),             # SiglipMLP.forward: fc1's output and its gelu_pytorch_tanh (column-parallel)
           0.0, 0.0)
    attn = (float((tower + 1) * h + h),   # layer_norm1's output; out_proj's output (row-parallel, all-reduced)
            float(3 * h + h),             # SiglipAttention.forward: qkv_proj's output, the attention's output
            0.0, 0.0)
    return mlp, attn


def _pixtral_hf_vllm_phases(v: VisionSpec) -> tuple[_Phase, ...]:
    """Pixtral's tower in HF format (vllm/model_executor/models/pixtral.py, ``PixtralHFVisionModel``).

    ``Mistral3ForConditionalGeneration`` (mistral3.py) runs it over the dummy images as one sequence.
    Through every block (``PixtralHFVisionModel.forward``): ``patch_conv``'s outputs (H, the list
    ``patch_embeds_list`` stays bound), ``ln_pre``'s output (H, the first entry of
    ``PixtralHFTransformer.forward``'s ``hidden_states_pool``), the previous block's output (p H), the
    rotary cos and sin (transformers' ``PixtralRotaryEmbedding``: 2d in the activation dtype) and the
    int64 ``position_ids`` (``position_ids_in_meshgrid``: 8 B a patch, counted as 2 fp32 elements).
    xFormers' block-diagonal mask holds no per-pair tensor (the SDPA fallback's mask is not modelled).
    """
    h, i, p, d = v.hidden_size, v.intermediate_size, _previous(v), v.hidden_size // v.num_heads
    tower_act, positions = (2 + p) * h + 2 * d, 2.0
    mlp = (float(tower_act + 3 * h),   # PixtralHFTransformerBlock.forward: r (o_proj's all-reduced output, bound
           #                             until the MLP returns), h = hidden_states + r, ffn_norm's output
           float(4 * i),               # PixtralHFMLP.forward: gate_up (2I); SiluAndMul.forward_native's silu(gate)
           #                             and its product with up (2I)
           positions, 0.0)
    attn = (float(tower_act + h),      # attention_norm's output
            float(7 * h),              # PixtralHFAttention.forward: qkv (3H); at k's rotation (transformers'
            #                            apply_rotary_pos_emb): q_embed, k * cos, rotate_half(k) * sin, k_embed (4H)
            positions, 0.0)
    return mlp, attn


def _llama4_vllm_phases(v: VisionSpec) -> tuple[_Phase, ...]:
    """Llama-4's tower (vllm/model_executor/models/mllama4.py, ``Llama4VisionModel``), per row of a tile.

    A row is a patch or the class token (``(image_size / patch)**2 + 1`` a tile).  Through every layer:
    ``layernorm_pre``'s output (H, ``Llama4VisionModel.forward``'s ``hidden_state`` while
    ``Llama4VisionEncoder`` runs) and the previous layer's output (p H, the encoder's loop variable).
    """
    h, i, p = v.hidden_size, v.intermediate_size, _previous(v)
    tower = 1 + p
    mlp = (float((tower + 2) * h),   # Llama4VisionEncoderLayer.forward: the residual sum, post_attention_layernorm's
           #                          output
           float(2 * i),             # Llama4VisionMLP.forward: fc1's output and its GELU (column-parallel)
           0.0, 0.0)
    attn = (float((tower + 1) * h),  # input_layernorm's output
            float(3 * h + 2 * h),    # Llama4VisionAttention.forward: qkv_proj's output (3H, q and k viewed from it);
            #                          the rotated q and k cast back (Llama4VisionRotaryEmbedding.forward_native,
            #                          type_as: 2H)
            0.0,
            float(4 * h))            # in fp32 there: query.float(), key.float() and their complex products (4H)
    return mlp, attn


def _qwen3_vl_vllm_phases(v: VisionSpec) -> tuple[_Phase, ...]:
    """Qwen3-VL's tower with deepstack mergers (vllm/model_executor/models/qwen3_vl.py, ``Qwen3_VisionTransformer``).

    Through every block (``Qwen3_VisionTransformer.forward``): ``pos_embeds`` (H: ``fast_pos_embed_interpolate``'s
    bilinear blend, bound to the end), the block's input (H: the previous block's output, or the patch
    embeddings plus positions), the rotary angles (``rot_pos_emb``: d / 2 fp32) and the deepstack features
    made so far (``deepstack_feature_lists``: each merger's output, the decoder width per ``merge**2``
    patches; all of them from the last deepstack layer on, where the peak is taken).
    """
    h, i, d, m = v.hidden_size, v.intermediate_size, v.hidden_size // v.num_heads, v.merge_size
    deep = v.deepstack_mergers * v.out_hidden_size / (m * m)
    tower_act, tower_f32 = 2 * h + deep, d / 2
    mlp = (float(tower_act + 2 * h),   # Qwen3_VisionBlock.forward: x + attn(...) (the new x), norm2's output
           float(2 * i),               # Qwen3_VisionMLP.forward: linear_fc1's output and its activation
           tower_f32, 0.0)
    attn = (float(tower_act + h),      # norm1's output
            float(3 * h + 3 * h + 2 * h + 2 * h),
            # qwen2_5_vl.py Qwen2_5_VisionAttention.forward: qkv's output (3H, bound as x), the contiguous q, k, v
            # (3H), qk_concat = torch.cat([q, k]) (2H) and apply_rotary_pos_emb_vision's result cast back (2H)
            float(tower_f32 + d),      # apply_rotary_pos_emb_vision: freqs.cos() and freqs.sin() (d / 2 each)
            float(4 * h))              # ... t.float() of qk_concat (2H) and the rotary kernel's fp32 output (2H)
    return mlp, attn


def _qwen2_5_vl_vllm_phases(v: VisionSpec) -> tuple[_Phase, ...]:
    """Qwen2.5-VL's tower, read from vLLM 0.9.0.1 (vllm/model_executor/models/qwen2_5_vl.py), and log-checked.

    Through the tower: the dummy pixels' concatenated copy (x, the elements of one patch's pixels:
    ``_validate_and_reshape_mm_tensor``'s ``torch.concat``; the batch itself is the dummy pixel tensor,
    counted beside the encoder) and the rotary angles (d / 2 fp32, ``Qwen2_5_VisionTransformer.forward``).
    """
    h, i, d, x = v.hidden_size, v.intermediate_size, v.hidden_size // v.num_heads, v.patch_elems
    table = d / 2
    mlp = (float(3 * h + x),   # Qwen2_5_VisionMLP.forward: the residual, norm2's and down_proj's outputs
           float(3 * i),       # the activated gate, the up projection and their product (gate and up unfused)
           table, 0.0)
    attn = (float(2 * h + x),  # Qwen2_5_VisionAttention.forward at the rotary step: the residual, norm1's output
            float(7 * h),      # the fused qkv output (3H), the contiguous q, k, v (3H) and the rotated result (H)
            table + d,         # the cos / sin tables (apply_rotary_pos_emb_vision)
            float(2 * h))      # the query's t.float() and the rotary kernel's output (vllm_flash_attn apply_rotary)
    return mlp, attn


#: The per-family rules of :attr:`VisionSpec.vllm_encoder_phases`, by :attr:`VisionSpec.vllm_encoder_rule`.
_VLLM_ENCODER_PHASES = {
    "siglip": _siglip_vllm_phases,
    "pixtral_hf": _pixtral_hf_vllm_phases,
    "llama4": _llama4_vllm_phases,
    "qwen3_vl": _qwen3_vl_vllm_phases,
    "qwen2_5_vl": _qwen2_5_vl_vllm_phases,
    "generic": _generic_vllm_phases,
}


def _best_canvas(height: int, width: int, tile: int, max_tiles: int) -> tuple[int, int]:
    """Return (rows, cols) of Llama-4's canvas for an image: the least upscaling, else the least downscaling.

    Every ``rows x cols <= max_tiles`` is a candidate; the scale of one is the
    smaller of ``rows x tile / height`` and ``cols x tile / width``; ties take
    the smaller canvas (``image_processing_llama4.get_best_fit``).
    """
    from fractions import Fraction

    options = [(min(Fraction(r * tile, height), Fraction(c * tile, width)), r * c, r, c)
               for r in range(1, max_tiles + 1) for c in range(1, max_tiles // r + 1)]
    up = [o for o in options if o[0] >= 1]
    scale = min(o[0] for o in up) if up else max(o[0] for o in options)
    _, _, rows, cols = min(o for o in options if o[0] == scale)
    return rows, cols


def _sides(width: object, height: object) -> tuple[int, int]:
    """Return an image's checked (width, height), :data:`DEFAULT_IMAGE_SIZE` for a side left out."""
    return (_check_side("width", DEFAULT_IMAGE_SIZE[0] if width is None else width),
            _check_side("height", DEFAULT_IMAGE_SIZE[1] if height is None else height))


def _check_side(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= int(value) <= MAX_IMAGE_SIDE:
        raise ValueError(f"image {name} must be a whole number of pixels in [1, {MAX_IMAGE_SIDE}], got {value!r}")
    return int(value)


def _linear(name: str, rows: int, cols: int, bias: bool, projector: bool = False) -> list[VisionTensor]:
    out = [VisionTensor(f"{name}.weight", (rows, cols), projector, "linear")]
    if bias:
        out.append(VisionTensor(f"{name}.bias", (rows,), projector, "bias"))
    return out


def _norm(name: str, width: int, layernorm: bool, projector: bool = False) -> list[VisionTensor]:
    out = [VisionTensor(f"{name}.weight", (width,), projector, "norm")]
    if layernorm:
        out.append(VisionTensor(f"{name}.bias", (width,), projector, "norm"))
    return out


def _vit_encoder(layers: int, hidden: int, inter: int, patch: int, channels: int, *, bias: bool, gated: bool,
                 layernorm: bool, positions: int, qkv_fused: bool = False, patch_bias: bool | None = None,
                 temporal_patch: int = 1, pre_norm: bool = False, post_norm: bool = True) -> list[VisionTensor]:
    """Tensors of a pre-norm ViT encoder (llama.cpp ``mmproj`` names); `channels` 0: no patch convolution."""
    pb = bias if patch_bias is None else patch_bias
    shape = (hidden, channels, temporal_patch, patch, patch) if temporal_patch > 1 else (hidden, channels, patch, patch)
    out = [VisionTensor("v.patch_embd.weight", shape, False, "patch")] if channels else []
    if pb:
        out.append(VisionTensor("v.patch_embd.bias", (hidden,), False, "bias"))
    if positions:
        out.append(VisionTensor("v.position_embd.weight", (positions, hidden), False, "position"))
    if pre_norm:
        out += _norm("v.pre_ln", hidden, layernorm)
    for i in range(layers):
        b = f"v.blk.{i}"
        out += _norm(f"{b}.ln1", hidden, layernorm)
        if qkv_fused:
            out += _linear(f"{b}.attn_qkv", 3 * hidden, hidden, bias)
        else:
            for role in ("attn_q", "attn_k", "attn_v"):
                out += _linear(f"{b}.{role}", hidden, hidden, bias)
        out += _linear(f"{b}.attn_out", hidden, hidden, bias)
        out += _norm(f"{b}.ln2", hidden, layernorm)
        if gated:
            out += _linear(f"{b}.ffn_gate", inter, hidden, bias)
        out += _linear(f"{b}.ffn_up", inter, hidden, bias)
        out += _linear(f"{b}.ffn_down", hidden, inter, bias)
    if post_norm:
        out += _norm("v.post_ln", hidden, layernorm)
    return out


# ---------------------------------------------------------------------- the families transformers builds


def siglip_gemma3(vc: dict[str, Any], text_hidden: int, tokens_per_image: int) -> VisionSpec:
    """Return Gemma-3's SigLIP encoder and ``Gemma3MultiModalProjector``.

    transformers ``modeling_siglip.py`` / ``modeling_gemma3.py``: LayerNorms with bias, biased q/k/v/out and
    fc1/fc2, learned positions, no head; the projector is a soft-embedding RMSNorm and one matrix without bias.
    """
    h, p, size = vc["hidden_size"], vc["patch_size"], vc["image_size"]
    tensors = _vit_encoder(vc["num_hidden_layers"], h, vc["intermediate_size"], p, vc["num_channels"], bias=True,
                           gated=False, layernorm=True, positions=(size // p) ** 2)
    tensors += [VisionTensor("mm.soft_emb_norm.weight", (h,), True, "norm"),
                VisionTensor("mm.input_projection.weight", (text_hidden, h), True, "linear")]
    return VisionSpec(kind="siglip", tensors=tuple(tensors), hidden_size=h, num_layers=vc["num_hidden_layers"],
                      num_heads=vc["num_attention_heads"], intermediate_size=vc["intermediate_size"], patch_size=p,
                      image_size=size, token_rule="fixed", tokens_per_image=tokens_per_image, marker_tokens=2)


def pixtral(vc: dict[str, Any], text_hidden: int, merge: int, projector_bias: bool) -> VisionSpec:
    """Return Pixtral's encoder and ``Mistral3MultiModalProjector``.

    transformers ``modeling_pixtral.py`` / ``modeling_mistral3.py``: no biases, RMSNorms, a gated MLP,
    ``ln_pre``, 2-D RoPE (no position table); the projector is an RMSNorm, the patch merger
    (``merge**2 * hidden -> hidden``) and two linears.
    """
    h, p = vc["hidden_size"], vc["patch_size"]
    heads, hd = vc["num_attention_heads"], vc["head_dim"]
    if heads * hd != h:
        raise ValueError(f"vision_config: num_attention_heads * head_dim ({heads} * {hd}) must equal hidden_size "
                         f"({h}) for a Pixtral encoder")
    tensors = _vit_encoder(vc["num_hidden_layers"], h, vc["intermediate_size"], p, vc["num_channels"], bias=False,
                           gated=True, layernorm=False, positions=0, pre_norm=True, post_norm=False)
    tensors += _norm("mm.norm", h, False, projector=True)
    tensors += _linear("mm.patch_merger", h, h * merge * merge, False, projector=True)
    tensors += _linear("mm.1", text_hidden, h, projector_bias, projector=True)
    tensors += _linear("mm.2", text_hidden, text_hidden, projector_bias, projector=True)
    return VisionSpec(kind="pixtral", tensors=tuple(tensors), hidden_size=h, num_layers=vc["num_hidden_layers"],
                      num_heads=heads, intermediate_size=vc["intermediate_size"], patch_size=p,
                      image_size=vc["image_size"], token_rule="pixtral", merge_size=merge)


def llama4(vc: dict[str, Any], text_hidden: int) -> VisionSpec:
    """Return Llama-4's vision encoder, its pixel-shuffle adapter and the projector.

    transformers ``modeling_llama4.py``: an unfolded-patch linear without bias, a class embedding and a
    position table of ``(image_size / patch)**2 + 1`` rows, LayerNorms (with bias) before and after the
    encoder and around each block's biased attention and two-matrix MLP; the adapter (``vision_adapter``,
    counted with the tower as transformers nests it there) is two bias-free linears, ``intermediate_size ->
    projector_input_dim -> projector_output_dim``; the projector one linear ``vision_output_dim -> text
    hidden`` (with bias when ``multi_modal_projector_bias``).
    """
    h, p, size = vc["hidden_size"], vc["patch_size"], vc["image_size"]
    side = size // p
    tensors = [VisionTensor("v.patch_embd.weight", (h, vc["num_channels"] * p * p), False, "patch"),
               VisionTensor("v.class_embd", (h,), False, "position"),
               VisionTensor("v.position_embd.weight", (side * side + 1, h), False, "position")]
    tensors += _norm("v.pre_ln", h, True)
    tensors += _norm("v.post_ln", h, True)
    tensors += _vit_encoder(vc["num_hidden_layers"], h, vc["intermediate_size"], p, 0, bias=True, gated=False,
                            layernorm=True, positions=0, patch_bias=False, post_norm=False)  # patch: above
    tensors += _linear("v.adapter.fc1", vc["projector_input_dim"], vc["intermediate_size"], False)
    tensors += _linear("v.adapter.fc2", vc["projector_output_dim"], vc["projector_input_dim"], False)
    tensors += _linear("mm.linear_1", text_hidden, vc["vision_output_dim"], vc["multi_modal_projector_bias"],
                       projector=True)
    ratio = vc["pixel_shuffle_ratio"]
    per_tile = side * side // round(1 / (ratio * ratio))
    return VisionSpec(kind="llama4", tensors=tuple(tensors), hidden_size=h, num_layers=vc["num_hidden_layers"],
                      num_heads=vc["num_attention_heads"], intermediate_size=vc["intermediate_size"], patch_size=p,
                      image_size=size, token_rule="tiles", tokens_per_image=per_tile)


def qwen3_vl(vc: dict[str, Any], deepstack: int = 0) -> VisionSpec:
    """Return the Qwen3-VL / Qwen3.5 encoder and patch merger.

    transformers ``modeling_qwen3_vl.py`` / ``modeling_qwen3_5.py``: a biased 3-D patch convolution, a learned
    position table of ``num_position_embeddings``, LayerNorms with bias, fused biased qkv, a two-matrix biased
    MLP; the merger is a LayerNorm over the encoder width and two biased linears over ``merge**2 * hidden``;
    Qwen3-VL adds `deepstack` more mergers (LayerNorm over the merged width) fed from inner layers.
    """
    h, p, m = vc["hidden_size"], vc["patch_size"], vc["spatial_merge_size"]
    tensors = _vit_encoder(vc["depth"], h, vc["intermediate_size"], p, vc["in_channels"], bias=True, gated=False,
                           layernorm=True, positions=vc["num_position_embeddings"], qkv_fused=True,
                           temporal_patch=vc["temporal_patch_size"], post_norm=False)
    wide = h * m * m
    tensors += _norm("mm.norm", h, True, projector=True)
    tensors += _linear("mm.0", wide, wide, True, projector=True)
    tensors += _linear("mm.2", vc["out_hidden_size"], wide, True, projector=True)
    for i in range(deepstack):
        tensors += _norm(f"mm.deepstack.{i}.norm", wide, True, projector=True)
        tensors += _linear(f"mm.deepstack.{i}.0", wide, wide, True, projector=True)
        tensors += _linear(f"mm.deepstack.{i}.2", vc["out_hidden_size"], wide, True, projector=True)
    # Qwen3-VL's preprocessor_config.json: 16 px patches merged 2 x 2, 65,536 to 16,777,216 pixels
    return VisionSpec(kind="qwen3_vl", tensors=tuple(tensors), hidden_size=h, num_layers=vc["depth"],
                      num_heads=vc["num_heads"], intermediate_size=vc["intermediate_size"], patch_size=p,
                      image_size=p * m, token_rule="qwen_vl", merge_size=m, min_pixels=65536,
                      max_pixels=16777216, marker_tokens=2)


def qwen2_5_vl(vc: dict[str, Any]) -> VisionSpec:
    """Return Qwen2.5-VL's encoder and patch merger.

    transformers ``modeling_qwen2_5_vl.py``: a bias-free 3-D patch convolution over ``temporal_patch_size``
    frames, RMSNorms, fused biased qkv, biased gated MLP, no position table; the merger is an RMSNorm and two
    biased linears over ``merge**2 * hidden``.
    """
    h, p, m = vc["hidden_size"], vc["patch_size"], vc["spatial_merge_size"]
    tensors = _vit_encoder(vc["depth"], h, vc["intermediate_size"], p, vc["in_channels"], bias=True, gated=True,
                           layernorm=False, positions=0, qkv_fused=True, patch_bias=False,
                           temporal_patch=vc["temporal_patch_size"], post_norm=False)
    wide = h * m * m
    tensors += _norm("mm.ln_q", h, False, projector=True)
    tensors += _linear("mm.0", wide, wide, True, projector=True)
    tensors += _linear("mm.2", vc["out_hidden_size"], wide, True, projector=True)
    return VisionSpec(kind="qwen2_5_vl", tensors=tuple(tensors), hidden_size=h, num_layers=vc["depth"],
                      num_heads=vc["num_heads"], intermediate_size=vc["intermediate_size"], patch_size=p,
                      image_size=p * m, token_rule="qwen_vl", merge_size=m, marker_tokens=2)


def mllama(vc: dict[str, Any], text_hidden: int, aspect_ratios: int) -> VisionSpec:
    """Return Llama-3.2-Vision's encoder (``MllamaVisionModel``) and its projector.

    transformers ``modeling_mllama.py``: a bias-free patch convolution, a class embedding, a gated position
    embedding of ``(image_size / patch)**2 + 1`` rows with its tile table (one row per aspect-ratio id, 0 the
    padding id: ``len(supported_aspect_ratios) + 1`` rows of ``max_num_tiles x patches x hidden``), gated
    pre- and post-tile embeddings (``max_num_tiles x hidden`` per aspect-ratio id), LayerNorms (with bias)
    before and after, ``num_hidden_layers`` local layers and ``num_global_layers`` gated global ones (q/k/v/o
    without bias, a biased fc1/fc2 MLP, two LayerNorms; the global ones add their ``gate_attn`` and
    ``gate_ffn``); the projector is one biased linear ``vision_output_dim -> text hidden``.
    """
    h, p, size = vc["hidden_size"], vc["patch_size"], vc["image_size"]
    tiles, inter, ch = vc["max_num_tiles"], vc["intermediate_size"], vc["num_channels"]
    patches = (size // p) ** 2 + 1
    ids = aspect_ratios + 1
    tensors = [VisionTensor("v.patch_embd.weight", (h, ch, p, p), False, "patch"),
               VisionTensor("v.class_embd", (h,), False, "position"),
               VisionTensor("v.position_embd.weight", (patches, h), False, "position"),
               VisionTensor("v.position_embd.gate", (1,), False, "position"),
               VisionTensor("v.tile_position_embd.weight", (ids, tiles * patches * h), False, "position"),
               VisionTensor("v.pre_tile_position_embd.weight", (ids, tiles * h), False, "position"),
               VisionTensor("v.pre_tile_position_embd.gate", (1,), False, "position"),
               VisionTensor("v.post_tile_position_embd.weight", (ids, tiles * h), False, "position"),
               VisionTensor("v.post_tile_position_embd.gate", (1,), False, "position")]
    tensors += _norm("v.pre_ln", h, True)
    tensors += _norm("v.post_ln", h, True)
    encoders = (("v.blk", vc["num_hidden_layers"], False), ("v.global.blk", vc["num_global_layers"], True))
    for prefix, n, gated in encoders:
        for i in range(n):
            b = f"{prefix}.{i}"
            tensors += _norm(f"{b}.ln1", h, True)
            for role in ("attn_q", "attn_k", "attn_v", "attn_out"):
                tensors += _linear(f"{b}.{role}", h, h, False)
            tensors += _norm(f"{b}.ln2", h, True)
            tensors += _linear(f"{b}.ffn_up", inter, h, True)
            tensors += _linear(f"{b}.ffn_down", h, inter, True)
            if gated:
                tensors += [VisionTensor(f"{b}.attn_gate", (1,), False, "norm"),
                            VisionTensor(f"{b}.ffn_gate_scale", (1,), False, "norm")]
    tensors += _linear("mm.0", text_hidden, vc["vision_output_dim"], True, projector=True)
    layers = vc["num_hidden_layers"] + vc["num_global_layers"]
    return VisionSpec(kind="mllama", tensors=tuple(tensors), hidden_size=h, num_layers=layers,
                      num_heads=vc["attention_heads"], intermediate_size=inter, patch_size=p, image_size=size,
                      token_rule="mllama", max_tiles=tiles)
