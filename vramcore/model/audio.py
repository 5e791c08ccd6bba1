"""Audio towers of multimodal models: their tensors, and the tokens an audio clip costs.

Gemma-3n's checkpoint holds an audio encoder beside its text decoder and vision
tower: transformers ``Gemma3nAudioEncoder`` (models/gemma3n/modeling_gemma3n.py),
a Conformer after the Universal Speech Model, and ``Gemma3nMultimodalEmbedder``
(``embed_audio``), which maps its outputs into the decoder's width.  An
:class:`AudioSpec` lists their tensors exactly, as transformers instantiates them
(:func:`gemma3n_audio`); :class:`~vramcore.ModelSpec` counts them in the part
``audio_tower``.
"""

from __future__ import annotations

from vramcore._record import Record, field, record
from vramcore.model.limits import check_count
from vramcore.model.vision import VisionTensor

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["AudioSpec", "gemma3n_audio"]


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    return check_count("AudioSpec", name, value, minimum)


@record(frozen=True, slots=True, kw_only=True, repr=False, eq=False)
class AudioSpec(Record):
    """An audio encoder and its embedder into the decoder: exact tensors, geometry and tokens per clip.

    Parameters
    ----------
    kind : str
        The encoder family (``"gemma3n_audio"``), a label.
    tensors : tuple of VisionTensor
        Every parameter tensor of the encoder and its embedder (``projector`` True for the embedder's).
    hidden_size, num_layers, num_heads : int
        Encoder geometry.
    tokens_per_clip : int
        Soft tokens one audio clip becomes in the decoder's context (Gemma-3n's
        ``audio_soft_tokens_per_image``), markers not included.
    marker_tokens : int
        Tokens around each clip that the processor adds (begin / end of audio).

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
    tokens_per_clip: int
    marker_tokens: int = 0
    _count: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str):
            raise TypeError(f"AudioSpec.kind must be a str, got {self.kind!r}")
        for name in ("hidden_size", "num_layers", "num_heads", "tokens_per_clip"):
            object.__setattr__(self, name, _check_int(name, getattr(self, name)))
        object.__setattr__(self, "marker_tokens", _check_int("marker_tokens", self.marker_tokens, minimum=0))
        tensors = tuple(self.tensors)
        for t in tensors:
            if not isinstance(t, VisionTensor):
                raise TypeError(f"AudioSpec.tensors must hold VisionTensor entries, got {t!r}")
        object.__setattr__(self, "tensors", tensors)
        object.__setattr__(self, "_count", sum(t.numel for t in tensors))

    @property
    def params(self) -> int:
        """Parameters of the encoder and its embedder (``audio_tower``)."""
        return self._count

    @property
    def clip_tokens(self) -> int:
        """Context tokens one audio clip costs: its soft tokens and the markers around them."""
        return self.tokens_per_clip + self.marker_tokens

    def to_dict(self) -> dict[str, Any]:
        """Return the geometry and count (no tensor list), JSON-serialisable."""
        return {"kind": self.kind, "params": self.params, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "num_heads": self.num_heads, "tokens_per_clip": self.tokens_per_clip}


def _t(name: str, shape: tuple[int, ...], role: str, projector: bool = False) -> VisionTensor:
    return VisionTensor(name, shape, projector, role)


def gemma3n_audio(ac: dict[str, Any], text_hidden: int, tokens_per_clip: int) -> AudioSpec:
    """Return Gemma-3n's audio encoder and ``embed_audio``, tensor by tensor.

    transformers 5.24 ``modeling_gemma3n.py``: ``Gemma3nAudioSubSampleConvProjection`` is two bias-free
    ``Conv2d`` (1 -> c0 -> c1 channels, kernels and strides from ``sscp_conv_kernel_size`` /
    ``sscp_conv_stride_size``, the frequency axis padded 1 + 1) each with a ``Gemma3nAudioCumulativeGroupNorm``
    weight of its channels, then ``input_proj_linear`` from ``c1 x F`` (F the frequency bins left) to
    ``hidden_size``; each of ``conf_num_hidden_layers`` ``Gemma3nAudioConformerBlock`` holds two feed-forward
    modules (pre / post RMSNorm, hidden -> 4 hidden -> hidden), attention (pre / post RMSNorm, q / k / v,
    the relative position projection ``pos_proj``, ``per_dim_scale`` of head_dim, ``post``), a light
    convolution (pre RMSNorm, ``linear_start`` to 2 hidden, a depthwise ``Conv1d`` of
    ``conf_conv_kernel_size`` taps, ``conv_norm``, ``linear_end``) and a final RMSNorm, no biases anywhere.
    ``Gemma3nMultimodalEmbedder``: an embedding of ``vocab_size`` x hidden, hard and soft RMSNorms, a bias-free
    projection to the text width (its post-projection norm has no weight).  Names are vramcore's (``a.*``).

    `ac` holds the ``audio_config`` fields read by
    :func:`vramcore.model.hf.gemma3n.towers_gemma3n`, checked there.
    """
    d, heads = ac["hidden_size"], ac["conf_num_attention_heads"]
    if d % heads:
        raise ValueError(f"config field 'audio_config.hidden_size' ({d}) must be a multiple of "
                         f"'audio_config.conf_num_attention_heads' ({heads})")
    (c0, c1), kernels, strides = ac["sscp_conv_channel_size"], ac["sscp_conv_kernel_size"], ac["sscp_conv_stride_size"]
    tensors: list[VisionTensor] = []
    freq, channels = ac["input_feat_size"], 1
    for i, out in enumerate((c0, c1)):
        (kh, kw), sw = kernels[i], strides[i][1]
        if freq + 2 < kw:
            raise ValueError(f"config field 'audio_config.sscp_conv_kernel_size' ({kw} frequency taps in block {i}) "
                             f"exceeds the {freq + 2} padded frequency bins")
        tensors += [_t(f"a.conv{i}.weight", (out, channels, kh, kw), "patch"), _t(f"a.conv{i}.norm.weight", (out,),
                                                                                  "norm")]
        freq, channels = (freq + 2 - kw) // sw + 1, out
    tensors.append(_t("a.input_proj.weight", (d, c1 * freq), "linear"))
    for i in range(ac["conf_num_hidden_layers"]):
        b = f"a.blk.{i}"
        for ffw in ("ffw_start", "ffw_end"):
            tensors += [_t(f"{b}.{ffw}.pre_norm.weight", (d,), "norm"),
                        _t(f"{b}.{ffw}.up.weight", (4 * d, d), "linear"),
                        _t(f"{b}.{ffw}.down.weight", (d, 4 * d), "linear"),
                        _t(f"{b}.{ffw}.post_norm.weight", (d,), "norm")]
        tensors += [_t(f"{b}.attn_pre_norm.weight", (d,), "norm"),
                    *(_t(f"{b}.attn_{r}.weight", (d, d), "linear") for r in ("q", "k", "v", "pos", "out")),
                    _t(f"{b}.attn_per_dim_scale", (d // heads,), "norm"),
                    _t(f"{b}.attn_post_norm.weight", (d,), "norm"),
                    _t(f"{b}.conv_pre_norm.weight", (d,), "norm"), _t(f"{b}.conv_start.weight", (2 * d, d), "linear"),
                    _t(f"{b}.conv_dw.weight", (d, 1, ac["conf_conv_kernel_size"]), "patch"),
                    _t(f"{b}.conv_norm.weight", (d,), "norm"), _t(f"{b}.conv_end.weight", (d, d), "linear"),
                    _t(f"{b}.norm.weight", (d,), "norm")]
    tensors += [_t("mm.a.embedding.weight", (ac["vocab_size"], d), "linear", True),
                _t("mm.a.hard_norm.weight", (d,), "norm", True), _t("mm.a.soft_norm.weight", (d,), "norm", True),
                _t("mm.a.projection.weight", (text_hidden, d), "linear", True)]
    # Gemma3nProcessor (processing_gemma3n.py, full_audio_sequence): boa + audio_soft_tokens_per_image audio tokens
    # + eoa around each clip (the "\n\n" on either side tokenize with the prompt's text, as for Gemma-3's images)
    return AudioSpec(kind="gemma3n_audio", tensors=tuple(tensors), hidden_size=d,
                     num_layers=ac["conf_num_hidden_layers"], num_heads=heads, tokens_per_clip=tokens_per_clip,
                     marker_tokens=2)
