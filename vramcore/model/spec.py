"""Model geometry: :class:`ModelSpec`, the one description every estimate starts from.

A spec holds the shapes of a decoder-only transformer and nothing about how it
is run (dtype, context, engine).  From the shapes it derives exact parameter
counts by part, in the way Hugging Face transformers instantiates the model
(tied tensors counted once).  Specs come from three places, all ending here:
written by hand (a few keyword arguments), read from a Hugging Face
``config.json`` (:meth:`ModelSpec.from_hf_config`), or from a built-in card
(:func:`vramcore.get_model`).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from os import PathLike

from vramcore._record import Record, field, record, replace
from vramcore.model.limits import check_limit

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, Protocol

    from vramcore.model.audio import AudioSpec
    from vramcore.model.recurrent import StateSpec
    from vramcore.model.vision import VisionSpec

    class WeightStorage(Protocol):  # checked at run time by _is_weight_storage
        """What a spec's ``quantization`` may hold besides a name: any storage rule with weight bytes by part.

        :class:`vramcore.DType`, the quantization formats and the measured storage
        of a real file (:mod:`vramcore.storage`) all are; the model layer needs no
        more than this to hold one.
        """

        name: str

        def weight_bytes_by_part(self, spec: ModelSpec) -> dict[str, float]:
            """Return the stored bytes of each part of `spec`."""

__all__ = ["ATTENTION_KINDS", "CROSS_KIND", "MLP_KINDS", "PARTS", "ModelSpec"]

#: Parameter parts, in the order the kernel packs them (include/vramcore/formulas.h).
PARTS: tuple[str, ...] = (
    "embedding",
    "attention",
    "mlp_dense",
    "mlp_routed_experts",
    "mlp_shared_experts",
    "norms",
    "router",
    "lm_head",
    "vision_tower",
    "multimodal_projector",
    "audio_tower",
)

#: Token-mixer kinds a layer may have (Hugging Face ``layer_types`` spelling): attention with a per-token
#: KV cache, a recurrent mixer with a fixed state per sequence (:mod:`vramcore.model.recurrent`), or both side
#: by side on the same input (``"hybrid"``: Falcon-H1, whose layers transformers types ``"hybrid"``).
ATTENTION_KINDS: tuple[str, ...] = ("full_attention", "sliding_attention", "chunked_attention", "linear_attention",
                                    "mamba", "cross_attention", "none", "hybrid")

#: The kind whose K and V come from the vision encoder's states, cached once per sequence whatever its length
#: (Llama-3.2-Vision's cross-attention layers: transformers ``MllamaCrossAttentionDecoderLayer``).
CROSS_KIND = "cross_attention"

#: The kinds with full (global) attention: a KV cache of every token.  A ``"hybrid"`` layer also keeps a state.
FULL_KINDS: tuple[str, ...] = ("full_attention", "hybrid")

#: The attention kinds whose cache is bounded by ``sliding_window`` tokens: a sliding window, or chunked local
#: attention (Llama-4), which every engine caches the same way (transformers cache_utils: "from a cache point of
#: view, sliding and chunked are the same in how they should behave, only the mask differs").
WINDOWED_KINDS: tuple[str, ...] = ("sliding_attention", "chunked_attention")

#: The kinds whose cache is (or, for ``"hybrid"``, also holds) a fixed state per sequence.
STATE_LAYER_KINDS: tuple[str, ...] = ("linear_attention", "mamba", "hybrid")

#: MLP kinds a layer may have ("none": a mixer-only block, as Nemotron-H's).
MLP_KINDS: tuple[str, ...] = ("dense", "moe", "none")


def _is_weight_storage(value: object) -> bool:
    """Tell whether `value` is a storage rule a spec's ``quantization`` may hold (``WeightStorage``'s members)."""
    return isinstance(getattr(value, "name", None), str) and callable(getattr(value, "weight_bytes_by_part", None))


def _check_int(name: str, value: object, *, minimum: int = 1, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"ModelSpec.{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"ModelSpec.{name} must be >= {minimum}, got {value!r}")
    check_limit(name, int(value), f"ModelSpec.{name}")


_INT_FIELDS = ("num_layers", "hidden_size", "num_heads", "intermediate_size", "vocab_size", "num_kv_heads",
               "head_dim", "max_context", "sliding_window", "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim",
               "qk_nope_head_dim", "v_head_dim", "moe_intermediate_size", "num_experts", "experts_per_token",
               "shared_expert_intermediate_size", "first_dense_layers", "norms_per_layer", "index_n_heads",
               "index_head_dim", "index_topk", "embedding_rows", "cross_attention_tokens",
               "image_patches", "image_features", "image_count", "kv_shared_layers", "altup_inputs", "rotary_tables",
               "laurel_rank", "per_layer_input_size", "per_layer_vocab_size", "rotary_dim")
#: ModelSpec.moe_router values, as the C field router_kind numbers them (include/vramcore/training.h)
MOE_ROUTERS: dict[str, int] = {"softmax_topk": 0, "topk_softmax": 1, "sigmoid_group": 2, "softmax_topk_norm": 3}


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"ModelSpec.{name} must be a bool, got {value!r} ({type(value).__name__})")


@record(frozen=True, slots=True, kw_only=True)
class ModelSpec(Record):
    """Geometry of a decoder-only LLM.

    Only the first five fields are required; a Llama-3.1-8B-shaped model is
    ``ModelSpec(num_layers=32, hidden_size=4096, num_heads=32, num_kv_heads=8,
    intermediate_size=14336, vocab_size=128256, max_context=131072)``.

    Parameters
    ----------
    num_layers : int
        Decoder layers.
    hidden_size : int
        Width of the residual stream.
    num_heads : int
        Query heads.
    intermediate_size : int
        Width of the dense (gated) MLP.  For MoE models whose every layer is
        MoE it is unused unless ``moe_intermediate_size`` is None.
    vocab_size : int
        Vocabulary size (rows of the embedding and of the lm_head).
    num_kv_heads : int, optional
        Key/value heads (grouped-query attention); defaults to ``num_heads``.
        Must divide ``num_heads``.
    head_dim : int, optional
        Per-head width.  Defaults to ``hidden_size // num_heads`` (which must
        then divide exactly); always pass it when the config gives it (e.g.
        Gemma-2-9B: 256, not 3584 / 16).
    name : str
        A label for results.
    max_context : int, optional
        Longest context the model was trained for (tokens); None if unknown.
    tie_embeddings : bool
        lm_head shares the embedding matrix (counted once).
    qkv_bias, o_bias : bool
        Biases on the q/k/v projections and on the output projection.
    mlp_bias : bool
        Biases on the dense MLP projections.
    qk_norm : bool
        Per-head RMSNorm on queries and keys (Qwen3, Gemma-3).
    qk_norm_full_width : bool
        The q/k norms span the whole projection instead of one head (OLMo-2):
        weights of ``num_heads * head_dim`` and ``num_kv_heads * head_dim``
        elements per layer (not ``head_dim`` each), one rsqrt per token.
        Requires ``qk_norm``.
    attention_sinks : bool
        One learned sink logit per query head and layer (gpt-oss).
    sdpa_supported : bool
        The model's transformers class has an sdpa attention path (default
        True).  False for Gemma-2 and gpt-oss (``_supports_sdpa = False`` in
        transformers 5.24: soft-capping, sinks): transformers' default
        attention is then eager, whose prefill scores grow with the square
        of the prompt (:attr:`EngineSpec.attention`).
    rotary_tables : int
        Rotary (cos, sin) pairs the model's forward builds for every token
        (default 1; Gemma-3: 2, a local and a global one), held beside the
        layers through a transformers prefill.
    flash_supported : bool
        The model's transformers class takes ``flash_attention_2`` (default
        True).  False for Llama-4, Llama-3.2-Vision, DeepSeek-V3.2 and
        Gemma-3's multimodal class (``_supports_flash_attn = False`` in
        transformers 5.24): ``EngineSpec.attention="flash"`` is refused.
    norms_per_layer : int
        Norm weight vectors of width ``hidden_size`` per layer (2 for Llama,
        4 for Gemma-2/3).  A final norm is always added.
    layer_types : tuple of str, optional
        Token-mixer kind of every layer, ``"full_attention"``,
        ``"sliding_attention"``, ``"chunked_attention"`` (local attention
        within chunks of ``sliding_window`` tokens, cached like a window of
        that size) or, in hybrid models, ``"linear_attention"``
        / ``"mamba"`` (see `recurrent`), ``"hybrid"``: full attention and
        the recurrent mixer side by side on the same input (Falcon-H1), a
        KV cache and a state in the one layer, or ``"cross_attention"``: a
        Llama-3.2-Vision cross-attention layer (q/k/v/o as the self-attention
        layers, per-head RMSNorms on q and k whatever ``qk_norm`` says, two
        scalar tanh gates) whose K and V are the images' vision tokens,
        ``cross_attention_tokens`` per sequence.  None means all full, or all sliding when
        ``sliding_window`` is given (the Hugging Face rule for configs with a
        window and no ``layer_types``).
    sliding_window : int, optional
        Window of the sliding layers, in tokens.
    q_lora_rank, kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim, v_head_dim : int, optional
        Multi-head latent attention (DeepSeek-V2/V3).  Setting ``kv_lora_rank``
        makes the model MLA and requires the three head dims; ``q_lora_rank``
        None means a plain query projection.
    index_n_heads, index_head_dim, index_topk : int, optional
        The lightning indexer of DeepSeek Sparse Attention (DeepSeek-V3.2,
        transformers ``DeepseekV32Indexer``): ``index_n_heads`` query heads of
        ``index_head_dim`` from the q latent, one key of ``index_head_dim``
        per token (LayerNorm'd) and a per-head weight projection; each query
        attends to ``index_topk`` selected tokens.  Setting them requires MLA
        with a ``q_lora_rank``.  Their parameters count under ``attention``
        (the key's LayerNorm under ``norms``); the indexer's key cache
        (``index_head_dim`` elements per token and layer, on every TP rank)
        counts in the KV cache, at the engine's ``index_cache_bits``.
    num_experts : int
        Routed experts per MoE layer (0: dense model).
    experts_per_token : int
        Experts each token is routed to.
    moe_intermediate_size : int, optional
        Width of one routed expert; defaults to ``intermediate_size``.
    shared_expert_intermediate_size : int
        Total width of the always-on shared experts (0: none).
    first_dense_layers : int
        Leading layers that keep a dense MLP before the first MoE layer
        (DeepSeek ``first_k_dense_replace``).
    mlp_layer_types : tuple of str, optional
        MLP kind of every layer, ``"dense"`` or ``"moe"``; overrides
        ``first_dense_layers``.
    router_bias, expert_bias : bool
        Biases on the router and on the expert projections (gpt-oss).
    router_fp32 : bool
        The engine keeps router weights in fp32 whatever the weight dtype
        (transformers does for DeepSeek-V3).
    norm_plus_one : bool
        RMSNorm scales by ``1 + weight`` in fp32 (Gemma): a training step saves
        an fp32 normalized copy per norm.
    norm_weight_fp32 : bool
        RMSNorm multiplies its weight into the fp32 normalized input before
        casting back (OLMo-2's ``(weight * x).to(dtype)``, not Llama's
        ``weight * x.to(dtype)``): a training step saves the fp32 normalized
        copy per norm, with no constant.  Excludes ``norm_plus_one``.
    norm_weight_upcast : bool
        RMSNorm multiplies an fp32 copy of its weight into the fp32 normalized
        input (Nemotron-H's ``self.weight.to(torch.float32) * hidden_states``:
        transformers ``NemotronHRMSNorm``): a training step saves the fp32
        normalized copy per token and the weight's fp32 copy per norm, as
        Gemma's ``norm_plus_one`` does.  Excludes the other two kinds.
    embed_scale : bool
        Embeddings are multiplied by ``sqrt(hidden_size)`` (Gemma).
    attn_softcap, final_softcap : bool
        tanh soft-capping of the attention scores / of the logits (Gemma-2's
        ``attn_logit_softcapping`` / ``final_logit_softcapping``): one more
        tensor saved for backward.
    recurrent : StateSpec, optional
        The recurrent mixer of the ``"linear_attention"`` / ``"mamba"``
        layers of a hybrid model (Qwen3-Next's gated DeltaNet, Mamba2): its
        tensors (counted under ``attention``, its internal norm under
        ``norms``) and the fixed state each sequence keeps instead of a KV
        cache.  Required exactly when ``layer_types`` has such layers.
    attn_output_gate : bool
        The query projection also yields a sigmoid output gate per head
        (Qwen3-Next's gated attention): ``q_proj`` is twice as wide.
    shared_expert_gate : bool
        A ``hidden -> 1`` gate scales the shared experts' output (Qwen2-MoE,
        Qwen3-Next); counted under ``router``.
    mlp_gated : bool
        Every MLP (dense, routed and shared experts) is gated: gate, up and
        down projections.  False: up and down only (Nemotron-H's squared-ReLU
        MLP).  Layers of ``layer_types`` ``"none"`` have no token mixer and of
        ``mlp_layer_types`` ``"none"`` no MLP (Nemotron-H's one-sub-block
        layers).
    embedding_rows : int, optional
        Rows of the token embedding when it differs from ``vocab_size``
        (Mllama's ``vocab_size + 8``: transformers ``MllamaTextModel``); the
        lm_head and the logits keep ``vocab_size``.  None: ``vocab_size``.
    cross_attention_tokens : int
        Vision tokens each ``"cross_attention"`` layer caches per sequence
        (set by ``vramcore.estimate(..., images=N)`` from the model's vision
        tower; 0: no image, the layers are skipped and cache nothing).
    image_patches, image_features, image_count : int
        Patches the vision tower runs over, embeddings it hands the
        decoder and images, per sequence (set by
        ``vramcore.estimate(..., images=N)`` for the towers whose peak under
        transformers is modelled,
        :attr:`vramcore.VisionSpec.transformers_encoder_phases`; 0: a
        text-only request, no encoder phase).  Read by the transformers
        engine only; they need a ``vision`` tower.
    kv_shared_layers : int
        The last ``kv_shared_layers`` layers compute no K and V of their own:
        each reads the cache of the last layer of its attention kind before
        them (Gemma-3n's ``num_kv_shared_layers``; transformers
        ``Gemma3nTextConfig.kv_sharing_modes``).  They hold no k/v projections
        and no k_norm (``Gemma3nTextAttention``: "Layers sharing kv states don't
        need any weight matrices") and allocate no KV cache.  Every kind among
        them needs such a layer before them.
    altup_inputs : int
        Gemma-3n's AltUp (``altup_num_inputs``; 1: none): the residual stream is
        ``altup_inputs`` stacked copies of the hidden state; each layer adds
        ``Gemma3nTextAltUp`` (prediction and correction coefficients, a
        modality router, its RMSNorm and ``correct_output_scale``) and the
        model ``altup_inputs - 1`` square projections in and out
        (``altup_projections``, ``altup_unembed_projections``).
    laurel_rank : int
        Gemma-3n's LAuReL block per layer (``laurel_rank``; 0: none): two
        low-rank projections ``hidden -> rank -> hidden`` and their RMSNorm.
    per_layer_input_size, per_layer_vocab_size : int
        Gemma-3n's per-layer embeddings (``hidden_size_per_layer_input``,
        ``vocab_size_per_layer_input``; 0: none): a table of
        ``per_layer_vocab_size x num_layers x per_layer_input_size``
        (``embed_tokens_per_layer``, counted under ``embedding``), its
        projection from the hidden state and RMSNorm, and per layer an input
        gate, a projection back and its RMSNorm.  The AltUp, LAuReL and
        per-layer-input projections count under ``attention`` (they are
        linear layers of every decoder layer, quantized and split per layer as
        the token mixers are), their norms under ``norms``.
    vision : VisionSpec, optional
        The vision encoder and projector of a multimodal checkpoint (parts
        ``vision_tower`` and ``multimodal_projector``); None for a text-only
        model.  :attr:`text_only` is the same spec without it.
    audio : AudioSpec, optional
        The audio encoder and its embedder of a multimodal checkpoint
        (Gemma-3n; part ``audio_tower``); None otherwise.  :attr:`text_only`
        is the same spec without it.
    layer_positions : bool
        The model passes the position ids to every decoder layer (default:
        Llama's ``position_ids=position_ids``, Nemotron-H's ``NemotronHBlock``
        with no rotary embedding at all): under gradient checkpointing a
        training step keeps them as each layer's input (one int64 per position
        of a sequence).  False for Granite-4.0-H, whose
        ``GraniteMoeHybridModel`` passes its layers the position embeddings
        only.
    rotary_dim : int, optional
        Width of each head's rotary part: ``int(head_dim x partial_rotary_factor)``
        where a config rotates only part of the head (Bamba 0.5, GLM-4.5 0.5,
        Phi-4-mini 0.75, Qwen3-Next 0.25: transformers ``modeling_rope_utils``
        ``_compute_default_rope_parameters``, vLLM ``get_rope``); sizes the
        cos/sin tables a training step saves and the engines' cos/sin caches.
        None: the whole head (MLA: ``qk_rope_head_dim``).  At most that width.
    moe_router : str
        What the MoE router saves for backward in training
        (``vramcore/include/training.h`` ``vc_moe_mlp_saved``): ``"softmax_topk"``
        (default: a softmax over every expert, then the top-k: Qwen-MoE
        without ``norm_topk_prob``), ``"softmax_topk_norm"`` (the same, then the
        k weights divided in place by their sum: Mixtral, Qwen3-MoE with
        ``norm_topk_prob``, Qwen3-Next, Qwen3.5-MoE), ``"topk_softmax"`` (the
        top-k of the logits, then a softmax over them: Granite-4.0-H
        ``GraniteMoeHybridTopKRouter``) or ``"sigmoid_group"`` (sigmoid scores,
        group-limited top-k, fp32 routing weights: Nemotron-H
        ``NemotronHTopkRouter``).
    rope : bool
        The attention layers apply rotary position embeddings (default);
        False for Granite-4.0-H's ``position_embedding_type`` other than
        ``"rope"`` (transformers builds no rotary embedding then): a training
        step saves no cos/sin tables.
    rope_per_row : bool
        The rotary cos/sin are computed for each row of a batch, not once for
        all (Qwen3.5's multimodal rotary: ``position_ids`` of shape
        ``(3, batch, seq)``): a training step saves them per token, not per
        position of one sequence.
    model_type : str, optional
        Hugging Face ``model_type`` the spec was read from, if any.
    quantization : str or DType, optional
        The weight format the checkpoint is stored in, if known: a format name
        recorded from a config's ``quantization_config`` (``"gptq-int4-g128"``,
        ``"mxfp4"`` ...; see :func:`vramcore.get_dtype`), or the measured
        storage of a real file (:func:`vramcore.read_gguf`).  The dtype
        ``"auto"`` resolves to it (None: bf16).  Not part of equality.

    Raises
    ------
    TypeError
        A field has the wrong type.
    ValueError
        A field is out of range or the fields disagree (heads not divisible by
        KV heads, sliding layers without a window, MLA without its head dims).

    Examples
    --------
    >>> spec = ModelSpec(num_layers=32, hidden_size=4096, num_heads=32, num_kv_heads=8,
    ...                  intermediate_size=14336, vocab_size=128256, max_context=131072)
    >>> spec.head_dim
    128
    >>> spec.param_count
    8030261248
    """

    num_layers: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    name: str = "custom"
    max_context: int | None = None
    tie_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    qk_norm_full_width: bool = False
    attention_sinks: bool = False
    sdpa_supported: bool = True
    flash_supported: bool = True
    rotary_tables: int = 1
    norms_per_layer: int = 2
    layer_types: tuple[str, ...] | None = None
    sliding_window: int | None = None
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None
    index_n_heads: int | None = None
    index_head_dim: int | None = None
    index_topk: int | None = None
    num_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int | None = None
    shared_expert_intermediate_size: int = 0
    first_dense_layers: int = 0
    mlp_layer_types: tuple[str, ...] | None = None
    router_bias: bool = False
    expert_bias: bool = False
    router_fp32: bool = False
    norm_plus_one: bool = False
    norm_weight_fp32: bool = False
    norm_weight_upcast: bool = False
    embed_scale: bool = False
    attn_softcap: bool = False
    final_softcap: bool = False
    recurrent: StateSpec | None = None
    attn_output_gate: bool = False
    shared_expert_gate: bool = False
    mlp_gated: bool = True
    embedding_rows: int | None = None
    cross_attention_tokens: int = 0
    image_patches: int = 0
    image_features: int = 0
    image_count: int = 0
    kv_shared_layers: int = 0
    altup_inputs: int = 1
    laurel_rank: int = 0
    per_layer_input_size: int = 0
    per_layer_vocab_size: int = 0
    vision: VisionSpec | None = None
    audio: AudioSpec | None = None
    rope: bool = True
    rope_per_row: bool = False
    rotary_dim: int | None = None
    layer_positions: bool = True
    moe_router: str = "softmax_topk"
    model_type: str | None = field(default=None, compare=False)
    quantization: str | WeightStorage | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("num_layers", "hidden_size", "num_heads", "intermediate_size", "vocab_size"):
            _check_int(name, getattr(self, name))
        for name in ("num_kv_heads", "head_dim", "max_context", "sliding_window", "q_lora_rank",
                     "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim",
                     "moe_intermediate_size", "index_n_heads", "index_head_dim", "index_topk", "embedding_rows",
                     "rotary_dim"):
            _check_int(name, getattr(self, name), optional=True)
        for name in ("num_experts", "experts_per_token", "shared_expert_intermediate_size",
                     "first_dense_layers", "norms_per_layer", "cross_attention_tokens", "kv_shared_layers",
                     "image_patches", "image_features", "image_count", "laurel_rank", "per_layer_input_size",
                     "per_layer_vocab_size"):
            _check_int(name, getattr(self, name), minimum=0)
        _check_int("altup_inputs", self.altup_inputs)
        _check_int("rotary_tables", self.rotary_tables)
        for name in _INT_FIELDS:  # numpy integers in, plain ints stored
            value = getattr(self, name)
            if value is not None and type(value) is not int:
                object.__setattr__(self, name, int(value))
        for name in ("tie_embeddings", "qkv_bias", "o_bias", "mlp_bias", "qk_norm", "qk_norm_full_width",
                     "attention_sinks", "sdpa_supported", "flash_supported", "router_bias", "expert_bias",
                     "router_fp32", "norm_plus_one", "norm_weight_fp32", "norm_weight_upcast", "embed_scale",
                     "attn_softcap", "final_softcap", "rope", "rope_per_row", "layer_positions"):
            _check_bool(name, getattr(self, name))
        if not isinstance(self.name, str):
            raise TypeError(f"ModelSpec.name must be a str, got {self.name!r}")
        for name in ("attn_output_gate", "shared_expert_gate", "mlp_gated"):
            _check_bool(name, getattr(self, name))
        # the tower and mixer modules load only for the models that have them (a CLI call for a plain card
        # does not pay for their record classes)
        if self.recurrent is not None:
            from vramcore.model.recurrent import StateSpec

            if not isinstance(self.recurrent, StateSpec):
                raise TypeError(f"ModelSpec.recurrent must be a StateSpec or None, got "
                                f"{type(self.recurrent).__name__}")
        if self.vision is not None:
            from vramcore.model.vision import VisionSpec

            if not isinstance(self.vision, VisionSpec):
                raise TypeError(f"ModelSpec.vision must be a VisionSpec or None, got {type(self.vision).__name__}")
        if self.audio is not None:
            from vramcore.model.audio import AudioSpec

            if not isinstance(self.audio, AudioSpec):
                raise TypeError(f"ModelSpec.audio must be an AudioSpec or None, got {type(self.audio).__name__}")
        q = self.quantization
        if q is not None and not (isinstance(q, str) or _is_weight_storage(q)):
            raise TypeError(f"ModelSpec.quantization must be a str, a DType or None, got "
                            f"{self.quantization!r}")

        set_ = object.__setattr__
        if self.num_kv_heads is None:
            set_(self, "num_kv_heads", self.num_heads)
        assert self.num_kv_heads is not None
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"ModelSpec.num_heads ({self.num_heads}) must be divisible by "
                f"num_kv_heads ({self.num_kv_heads})")

        if self.kv_lora_rank is not None:
            for name in ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
                if getattr(self, name) is None:
                    raise ValueError(f"ModelSpec.{name} is required for MLA (kv_lora_rank="
                                     f"{self.kv_lora_rank}), got None")
            if self.head_dim is None:
                set_(self, "head_dim", self.qk_nope_head_dim + self.qk_rope_head_dim)  # type: ignore[operator]
        elif self.head_dim is None:
            if self.hidden_size % self.num_heads:
                raise ValueError(
                    f"ModelSpec.head_dim is None and hidden_size ({self.hidden_size}) is not "
                    f"divisible by num_heads ({self.num_heads}); pass head_dim explicitly")
            set_(self, "head_dim", self.hidden_size // self.num_heads)

        self._check_indexer()
        if self.qk_norm_full_width and not self.qk_norm:
            raise ValueError("ModelSpec.qk_norm_full_width needs qk_norm=True")
        if self.qk_norm_full_width and self.is_mla:
            raise ValueError("ModelSpec.qk_norm_full_width is for standard attention, not MLA (kv_lora_rank is set)")
        if self.norm_weight_fp32 + self.norm_plus_one + self.norm_weight_upcast > 1:
            raise ValueError("ModelSpec.norm_weight_fp32, norm_plus_one and norm_weight_upcast: two RMSNorm "
                             "kinds given; set one")
        whole = self.qk_rope_head_dim if self.is_mla else self.head_dim
        if self.rotary_dim is not None and self.rotary_dim > whole:  # type: ignore[operator]
            raise ValueError(f"ModelSpec.rotary_dim ({self.rotary_dim}) must not exceed the head's rotary width "
                             f"({whole})")
        if self.moe_router not in MOE_ROUTERS:
            raise ValueError(f"ModelSpec.moe_router must be one of {list(MOE_ROUTERS)}, got {self.moe_router!r}")

        # attention kind of every layer
        if self.layer_types is None:
            kind = "sliding_attention" if self.sliding_window is not None else "full_attention"
            set_(self, "layer_types", (kind,) * self.num_layers)
        else:
            set_(self, "layer_types", self._check_kinds("layer_types", self.layer_types, ATTENTION_KINDS))
        assert self.layer_types is not None
        state_kinds = {k for k in self.layer_types if k in STATE_LAYER_KINDS}
        if state_kinds and self.recurrent is None:
            raise ValueError(f"ModelSpec.layer_types has {sorted(state_kinds)} layers: a recurrent mixer "
                             f"(ModelSpec.recurrent, a StateSpec) is required")
        own = state_kinds - {"hybrid"}  # a hybrid layer runs the mixer of any kind beside its attention
        if self.recurrent is not None and (not state_kinds or own - {self.recurrent.layer_type}):
            raise ValueError(f"ModelSpec.recurrent is a {self.recurrent.kind} mixer, whose layers are "
                             f"{self.recurrent.layer_type!r} (or 'hybrid', beside attention); layer_types has "
                             f"{sorted(state_kinds) or 'none'}")
        if self.recurrent is not None and self.is_mla:
            raise ValueError("ModelSpec.recurrent: a hybrid recurrent model with MLA attention is not supported")
        if self.embedding_rows is not None and self.tie_embeddings and self.embedding_rows != self.vocab_size:
            raise ValueError(f"ModelSpec.embedding_rows ({self.embedding_rows}) must equal vocab_size "
                             f"({self.vocab_size}) when the embeddings are tied")
        if CROSS_KIND in self.layer_types and self.is_mla:
            raise ValueError("ModelSpec.layer_types: cross_attention layers with MLA attention are not supported")
        if (self.image_patches or self.image_features or self.image_count) and self.vision is None:
            raise ValueError(f"ModelSpec.image_patches / image_features / image_count ({self.image_patches}, "
                             f"{self.image_features}, {self.image_count}) need a vision tower")
        if self.cross_attention_tokens and CROSS_KIND not in self.layer_types:
            raise ValueError(f"ModelSpec.cross_attention_tokens is {self.cross_attention_tokens} but layer_types has "
                             "no cross_attention layer")
        windowed = sorted({k for k in self.layer_types if k in WINDOWED_KINDS})
        if windowed and self.sliding_window is None:
            raise ValueError(f"ModelSpec.sliding_window is required when layer_types has "
                             f"{' / '.join(map(repr, windowed))} layers, got None")

        self._check_gemma3n()

        # MoE
        if self.num_experts:
            if not 1 <= self.experts_per_token <= self.num_experts:
                raise ValueError(
                    f"ModelSpec.experts_per_token must be in [1, num_experts={self.num_experts}], "
                    f"got {self.experts_per_token}")
            if self.moe_intermediate_size is None:
                set_(self, "moe_intermediate_size", self.intermediate_size)
        elif self.experts_per_token or self.shared_expert_intermediate_size:
            raise ValueError("ModelSpec.num_experts is 0 but experts_per_token / "
                             "shared_expert_intermediate_size are set")
        if self.mlp_layer_types is None:
            if self.first_dense_layers > self.num_layers:
                raise ValueError(f"ModelSpec.first_dense_layers ({self.first_dense_layers}) exceeds "
                                 f"num_layers ({self.num_layers})")
            kinds = tuple("moe" if self.num_experts and i >= self.first_dense_layers else "dense"
                          for i in range(self.num_layers))
            set_(self, "mlp_layer_types", kinds)
        else:
            set_(self, "mlp_layer_types", self._check_kinds("mlp_layer_types", self.mlp_layer_types,
                                                            MLP_KINDS))
            if "moe" in self.mlp_layer_types and not self.num_experts:  # type: ignore[operator]
                raise ValueError("ModelSpec.mlp_layer_types has 'moe' layers but num_experts is 0")

    def _check_gemma3n(self) -> None:
        # transformers Gemma3nTextConfig.kv_sharing_modes: every kind among the sharing layers reads the last
        # layer of its kind before them
        n = self.kv_shared_layers
        if (self.per_layer_input_size == 0) != (self.per_layer_vocab_size == 0):
            raise ValueError(f"ModelSpec.per_layer_input_size ({self.per_layer_input_size}) and "
                             f"per_layer_vocab_size ({self.per_layer_vocab_size}) are set together (0: none)")
        if not n:
            return
        if n >= self.num_layers:
            raise ValueError(f"ModelSpec.kv_shared_layers ({n}) must be below num_layers ({self.num_layers}): "
                             "the sharing layers read an earlier layer's cache")
        if self.is_mla:
            raise ValueError("ModelSpec.kv_shared_layers: KV sharing with MLA attention is not supported")
        kinds = self.layer_types or ()
        first = self.num_layers - n
        for i in range(first, self.num_layers):
            if kinds[i] not in FULL_KINDS + WINDOWED_KINDS or kinds[i] == "hybrid":
                raise ValueError(f"ModelSpec.kv_shared_layers: layer {i} is {kinds[i]!r}; only full and "
                                 "sliding attention layers can share an earlier layer's KV")
            if kinds[i] not in kinds[:first]:
                raise ValueError(f"ModelSpec.kv_shared_layers: layer {i} ({kinds[i]!r}) shares the KV of an "
                                 f"earlier {kinds[i]!r} layer, and none of the first {first} layers is one")

    def _check_indexer(self) -> None:
        # DeepseekV32Indexer (transformers 5.23): wq_b reads the q latent, the key splits into rope + rest
        given = [n for n in ("index_n_heads", "index_head_dim") if getattr(self, n) is not None]
        if not given:
            if self.index_topk is not None:
                raise ValueError("ModelSpec.index_topk needs index_n_heads and index_head_dim")
            return
        if len(given) == 1:
            missing = "index_head_dim" if given == ["index_n_heads"] else "index_n_heads"
            raise ValueError(f"ModelSpec.{missing} is required with {given[0]} (the sparse-attention indexer), "
                             "got None")
        if not self.is_mla or self.q_lora_rank is None:
            raise ValueError("ModelSpec.index_n_heads / index_head_dim need MLA with a q_lora_rank (the indexer "
                             "reads the q latent)")
        if self.index_head_dim < self.qk_rope_head_dim:  # type: ignore[operator]
            raise ValueError(f"ModelSpec.index_head_dim ({self.index_head_dim}) must be >= qk_rope_head_dim "
                             f"({self.qk_rope_head_dim}): its first qk_rope_head_dim dims take the rotary")

    def _check_kinds(self, name: str, kinds: object, valid: tuple[str, ...]) -> tuple[str, ...]:
        if isinstance(kinds, str) or not hasattr(kinds, "__iter__"):
            raise TypeError(f"ModelSpec.{name} must be a sequence of str, got {kinds!r}")
        kinds = tuple(kinds)  # type: ignore[arg-type]
        if len(kinds) != self.num_layers:
            raise ValueError(f"ModelSpec.{name} has {len(kinds)} entries, expected num_layers="
                             f"{self.num_layers}")
        for i, k in enumerate(kinds):
            if k not in valid:
                raise ValueError(f"ModelSpec.{name}[{i}] = {k!r} is not one of {valid}")
        return tuple(str(k) for k in kinds)

    # ------------------------------------------------------------------ derived shapes
    @property
    def rotary_width(self) -> int:
        """Width of each head's rotary part: :attr:`rotary_dim`, else the head (MLA: ``qk_rope_head_dim``)."""
        if self.rotary_dim is not None:
            return self.rotary_dim
        return (self.qk_rope_head_dim if self.is_mla else self.head_dim)  # type: ignore[return-value]

    @property
    def is_mla(self) -> bool:
        """True for multi-head latent attention (a ``kv_lora_rank`` is set)."""
        return self.kv_lora_rank is not None

    @property
    def has_indexer(self) -> bool:
        """True for DeepSeek Sparse Attention: a lightning indexer per layer (``index_n_heads`` is set)."""
        return self.index_n_heads is not None

    @property
    def is_moe(self) -> bool:
        """True when some layer has a mixture-of-experts MLP."""
        return self.num_experts > 0 and "moe" in (self.mlp_layer_types or ())

    @property
    def n_full_layers(self) -> int:
        """Layers with full (global) attention (``"hybrid"`` layers included)."""
        return sum(1 for k in self.layer_types or () if k in FULL_KINDS)

    @property
    def n_sliding_layers(self) -> int:
        """Layers with sliding-window attention."""
        return sum(1 for k in self.layer_types or () if k in WINDOWED_KINDS)

    @property
    def n_state_layers(self) -> int:
        """Layers with a recurrent mixer (a fixed state per sequence; ``"hybrid"`` layers also attend)."""
        return sum(1 for k in self.layer_types or () if k in STATE_LAYER_KINDS)

    @property
    def n_cross_layers(self) -> int:
        """Layers with cross-attention to the images' vision tokens (a fixed cache per sequence)."""
        return (self.layer_types or ()).count(CROSS_KIND)

    @property
    def n_mixerless_layers(self) -> int:
        """Layers with no token mixer (``layer_types`` ``"none"``: Nemotron-H's MLP-only blocks)."""
        return (self.layer_types or ()).count("none")

    @property
    def n_attention_layers(self) -> int:
        """Layers with attention (full or sliding): the layers that hold a KV cache."""
        return self.n_full_layers + self.n_sliding_layers

    @property
    def n_moe_layers(self) -> int:
        """Layers with a mixture-of-experts MLP."""
        return (self.mlp_layer_types or ()).count("moe")

    @property
    def n_dense_mlp_layers(self) -> int:
        """Layers with a dense MLP."""
        return (self.mlp_layer_types or ()).count("dense")

    @property
    def kv_layers(self) -> int:
        """Layers that hold a per-token KV cache: every self-attention layer but the KV-sharing ones.

        Recurrent layers keep a state instead, cross-attention layers the images' tokens, and the last
        ``kv_shared_layers`` layers read an earlier layer's cache.
        """
        return self.n_attention_layers - self.kv_shared_layers

    def owns_kv(self, layer: int) -> bool:
        """Return True when decoder layer `layer` computes (and caches) K and V of its own (not KV-sharing)."""
        return layer < self.num_layers - self.kv_shared_layers

    @property
    def n_kv_full_layers(self) -> int:
        """Full-attention layers that hold a KV cache of their own (KV-sharing layers left out)."""
        kinds = self.layer_types or ()
        return sum(1 for i, k in enumerate(kinds) if k in FULL_KINDS and self.owns_kv(i))

    @property
    def n_kv_sliding_layers(self) -> int:
        """Sliding-window (or chunked) layers that hold a KV cache of their own (KV-sharing layers left out)."""
        kinds = self.layer_types or ()
        return sum(1 for i, k in enumerate(kinds) if k in WINDOWED_KINDS and self.owns_kv(i))

    @property
    def kv_projection_params(self) -> int:
        """Parameters of every k and v projection (biases included) of the whole model: the k/v share of TP."""
        if self.is_mla or not self.n_attention_layers + self.n_cross_layers:
            return 0
        width = self.num_kv_heads * self.head_dim  # type: ignore[operator]
        per_layer = 2 * self.hidden_size * width + (2 * width if self.qkv_bias else 0)
        return per_layer * (self.n_attention_layers + self.n_cross_layers - self.kv_shared_layers)

    def _gemma3n_layer_params(self) -> tuple[int, int, int]:
        """Return one layer's Gemma-3n extras: (TP-split linear params, TP-replicated params, norm params).

        transformers ``Gemma3nTextDecoderLayer``: ``Gemma3nTextAltUp`` (correction_coefs n x n,
        prediction_coefs n x n^2, modality_router hidden x n, router_norm, correct_output_scale),
        ``Gemma3nTextLaurelBlock`` (linear_left, linear_right, post_laurel_norm), per_layer_input_gate,
        per_layer_projection, post_per_layer_input_norm.  vLLM (model_executor/models/gemma3n.py,
        Gemma3nAltUp / Gemma3nDecoderLayer) keeps the AltUp linears and the per-layer-input gate and
        projection whole on every TP rank (``ReplicatedLinear``) and splits LAuReL (column / row parallel).
        """
        h, n = self.hidden_size, self.altup_inputs
        split = replicated = norms = 0
        if n > 1:
            replicated += n * n + n * n * n + h * n
            norms += 2 * h  # router_norm and correct_output_scale
        if self.laurel_rank:
            split += 2 * h * self.laurel_rank
            norms += h
        if self.per_layer_input_size:
            replicated += 2 * h * self.per_layer_input_size
            norms += h
        return split, replicated, norms

    def _gemma3n_model_params(self) -> tuple[int, int, int]:
        """Return the Gemma-3n extras outside the layers: (embedding table, linear params, norm params).

        transformers ``Gemma3nTextModel``: embed_tokens_per_layer (per-layer vocab x layers x per-layer
        width), per_layer_model_projection (hidden -> layers x per-layer width), per_layer_projection_norm,
        and the ``altup_num_inputs - 1`` altup_projections and altup_unembed_projections (hidden x hidden).
        """
        h, L, p = self.hidden_size, self.num_layers, self.per_layer_input_size
        table = self.per_layer_vocab_size * L * p
        linear = h * L * p + 2 * (self.altup_inputs - 1) * h * h
        return table, linear, p

    @property
    def tp_replicated_attention_params(self) -> int:
        """Parameters of the ``attention`` part that vLLM keeps whole on every TP rank (besides MLA latents).

        Gemma-3n's AltUp coefficients and router and its per-layer-input gate and projection
        (:meth:`_gemma3n_layer_params`); 0 for every other model.
        """
        return self._gemma3n_layer_params()[1] * self.num_layers

    # ------------------------------------------------------------------ parameters
    def _attention_params_per_layer(self) -> tuple[int, int]:
        """Return (attention params, attention-internal norm params) of one layer."""
        h, nh = self.hidden_size, self.num_heads
        if self.is_mla:
            rope, nope = self.qk_rope_head_dim, self.qk_nope_head_dim
            vdim, kvr = self.v_head_dim, self.kv_lora_rank
            assert rope is not None and nope is not None and vdim is not None and kvr is not None
            q_out = nh * (nope + rope)
            if self.q_lora_rank is not None:
                q = h * self.q_lora_rank + self.q_lora_rank * q_out
                norms = self.q_lora_rank
            else:
                q = h * q_out
                norms = 0
            kv = h * (kvr + rope) + kvr * nh * (nope + vdim)
            norms += kvr
            o = nh * vdim * h
            bias = (q_out + kvr + rope) if self.qkv_bias else 0
            indexer = 0
            if self.index_n_heads is not None:
                # DeepseekV32Indexer: wq_b (q latent -> heads x dim), wk (hidden -> dim), weights_proj
                # (hidden -> heads), k_norm a LayerNorm (weight and bias) over dim
                ih, idim = self.index_n_heads, self.index_head_dim
                assert idim is not None and self.q_lora_rank is not None
                indexer = self.q_lora_rank * ih * idim + h * idim + h * ih
                norms += 2 * idim
            return q + kv + o + bias + indexer + (h if self.o_bias else 0), norms
        hd, nkv = self.head_dim, self.num_kv_heads
        assert hd is not None and nkv is not None
        q_out, kv_out = nh * hd, nkv * hd
        # a gated attention's q_proj also yields the output gate (Qwen3NextAttention: heads x head_dim x 2)
        params = h * q_out * (2 if self.attn_output_gate else 1) + 2 * h * kv_out + q_out * h
        if self.qkv_bias:
            params += q_out + 2 * kv_out
        if self.o_bias:
            params += h
        if self.attention_sinks:
            params += nh
        if not self.qk_norm:
            return params, 0
        # per-head norms hold head_dim weights each; OLMo-2's span the whole q and k projections
        return params, (q_out + kv_out if self.qk_norm_full_width else 2 * hd)

    def param_breakdown(self) -> dict[str, int]:
        """Exact parameter counts by part, as transformers instantiates the model.

        Returns
        -------
        dict of str to int
            One entry per name in :data:`vramcore.PARTS` (zero where a part is
            absent).  Norms inside attention (q/k norms, MLA latent norms) count
            as ``norms``; a tied lm_head counts as 0.

        Examples
        --------
        >>> import vramcore
        >>> vramcore.get_model("DeepSeek-R1-Distill-Llama-8B").spec.param_breakdown()["lm_head"]
        525336576
        """
        h, L = self.hidden_size, self.num_layers
        attn, attn_norms = self._attention_params_per_layer()
        parts = dict.fromkeys(PARTS, 0)
        parts["embedding"] = (self.embedding_rows or self.vocab_size) * h
        parts["lm_head"] = 0 if self.tie_embeddings else self.vocab_size * h
        n_attn, n_state, n_cross = self.n_attention_layers, self.n_state_layers, self.n_cross_layers
        parts["attention"] = attn * n_attn
        parts["norms"] = self.norms_per_layer * h * L + attn_norms * n_attn + h
        if n_cross:
            # MllamaCrossAttentionDecoderLayer: the same q/k/v/o, q_norm and k_norm of head_dim, and the scalar
            # tanh gates cross_attn_attn_gate and cross_attn_mlp_gate (counted with the attention)
            parts["attention"] += (attn + 2) * n_cross
            parts["norms"] += 2 * self.head_dim * n_cross  # type: ignore[operator]
        if self.recurrent is not None:
            parts["attention"] += self.recurrent.params * n_state
            parts["norms"] += self.recurrent.norm_params * n_state
        mats = 3 if self.mlp_gated else 2  # gate, up, down (or up, down)
        dense = mats * h * self.intermediate_size
        if self.mlp_bias:
            dense += (mats - 1) * self.intermediate_size + h
        parts["mlp_dense"] = dense * self.n_dense_mlp_layers
        n_moe = self.n_moe_layers
        if n_moe:
            e, ei = self.num_experts, self.moe_intermediate_size
            assert ei is not None
            expert = mats * h * ei + (((mats - 1) * ei + h) if self.expert_bias else 0)
            parts["mlp_routed_experts"] = e * expert * n_moe
            parts["mlp_shared_experts"] = mats * h * self.shared_expert_intermediate_size * n_moe
            parts["router"] = (h * e + (e if self.router_bias else 0) + (h if self.shared_expert_gate else 0)) * n_moe
        if self.kv_shared_layers:
            # Gemma3nTextAttention builds k_proj, v_proj, k_norm and v_norm (no weight) only for the layers
            # that compute their own K and V
            shared = self.kv_shared_layers
            parts["attention"] -= self.kv_projection_params // (self.n_attention_layers + self.n_cross_layers
                                                                  - shared) * shared
            parts["norms"] -= (self.head_dim if self.qk_norm else 0) * shared  # type: ignore[operator]
        split, replicated, layer_norms = self._gemma3n_layer_params()
        table, linear, model_norms = self._gemma3n_model_params()
        parts["attention"] += (split + replicated) * L + linear
        parts["norms"] += layer_norms * L + model_norms
        parts["embedding"] += table
        if self.vision is not None:
            parts["vision_tower"] = self.vision.tower_params
            parts["multimodal_projector"] = self.vision.projector_params
        if self.audio is not None:
            parts["audio_tower"] = self.audio.params
        return parts

    @property
    def param_count(self) -> int:
        """Total parameters (tied tensors once), exactly as transformers counts them."""
        return sum(self.param_breakdown().values())

    @property
    def text_only(self) -> ModelSpec:
        """The text decoder alone: this spec without its towers and projector (itself when it has none)."""
        if self.vision is None and self.audio is None:
            return self
        return replace(self, vision=None, audio=None, image_patches=0, image_features=0, image_count=0)

    @property
    def active_param_count(self) -> int:
        """Parameters used per token: routed experts count ``experts_per_token`` of ``num_experts``."""
        parts = self.param_breakdown()
        routed = parts["mlp_routed_experts"]
        if not routed:
            return sum(parts.values())
        return sum(parts.values()) - routed + routed // self.num_experts * self.experts_per_token

    # ------------------------------------------------------------------ KV geometry
    @property
    def kv_cache_width(self) -> int:
        """Cached K+V elements per token per layer, as transformers >= 5 caches them.

        Standard attention: ``2 * num_kv_heads * head_dim``.  MLA caches its
        compressed latent: ``kv_lora_rank + qk_rope_head_dim`` (no factor 2).
        """
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim  # type: ignore[operator]
        return 2 * self.num_kv_heads * self.head_dim  # type: ignore[operator]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any] | str | PathLike[str], *,
                       name: str | None = None) -> ModelSpec:
        """Read a spec from a Hugging Face ``config.json``.

        Parameters
        ----------
        config : dict, str or path-like
            The parsed config, a path to a ``config.json``, or a folder that
            holds one.
        name : str, optional
            Label for the spec; defaults to the folder name or the model type.

        Returns
        -------
        ModelSpec

        Raises
        ------
        ValueError
            The ``model_type`` is not supported, a required field is missing,
            or the file does not exist / is not JSON.
        TypeError
            ``config`` is of another type.

        Examples
        --------
        >>> spec = ModelSpec.from_hf_config({"model_type": "llama", "num_hidden_layers": 16,
        ...     "hidden_size": 2048, "num_attention_heads": 32, "num_key_value_heads": 8,
        ...     "head_dim": 64, "intermediate_size": 8192, "vocab_size": 128256,
        ...     "tie_word_embeddings": True, "max_position_embeddings": 131072})
        >>> spec.param_count
        1235814400
        """
        from vramcore.model.hf import read_hf_config

        return cls(**read_hf_config(config, name=name))

    @classmethod
    def from_pretrained(cls, model_id: str, revision: str | None = None) -> ModelSpec:
        """Read a spec from a Hugging Face id: a built-in card, the local HF cache, then the Hub.

        The id resolves in that order: a card that lists it among its names
        (without a revision), the snapshot of `revision` in the Hugging Face
        cache (``HF_HUB_CACHE``, ``HF_HOME``; ``refs/<revision>``), then the
        repository's ``config.json`` on the Hub through ``huggingface_hub``
        (``pip install "vramcore[hub]"``; its token for gated repositories).
        Like :meth:`from_hf_config`, this reads the config (geometry and
        ``quantization_config``); ``vramcore.estimate("org/name")`` and
        :func:`vramcore.sweep` also read the checkpoint's safetensors headers
        for the exact stored bytes.

        Parameters
        ----------
        model_id : str
            ``"org/name"`` (e.g. ``"Qwen/Qwen3-8B"``) or ``"org/name@revision"``.
        revision : str, optional
            Branch, tag or commit hash (default ``"main"``).

        Returns
        -------
        ModelSpec
            Named after the card, else the repository id (never a snapshot hash).

        Raises
        ------
        ValueError
            A bad id or revision, or none of the three found it (offline,
            ``huggingface_hub`` not installed, gated, not found, no such
            revision): the message says what was tried and how to fix it.

        Examples
        --------
        >>> ModelSpec.from_pretrained("meta-llama/Llama-3.1-8B-Instruct").num_kv_heads
        8
        """
        from vramcore.model.hub import pretrained_config

        name, config = pretrained_config(model_id, revision)
        return cls.from_hf_config(config, name=name)

    def replace(self, **changes: Any) -> ModelSpec:
        """Return a copy with some fields changed (validated again).

        Derived fields are re-derived when not given: ``layer_types`` when
        ``num_layers`` changes, ``mlp_layer_types`` when ``num_layers``,
        ``num_experts`` or ``first_dense_layers`` changes; ``recurrent`` is
        dropped when the new ``layer_types`` have no recurrent layer, and
        ``cross_attention_tokens`` set to 0 when they have no cross-attention
        layer.

        Examples
        --------
        >>> spec = ModelSpec(num_layers=4, hidden_size=64, num_heads=4, intermediate_size=128,
        ...                  vocab_size=100, num_experts=4, experts_per_token=2)
        >>> spec.replace(first_dense_layers=1).mlp_layer_types
        ('dense', 'moe', 'moe', 'moe')
        """
        if "num_layers" in changes:
            changes.setdefault("layer_types", None)
        if "layer_types" in changes and "recurrent" not in changes:
            kinds = changes["layer_types"] or ()
            if not any(k in STATE_LAYER_KINDS for k in kinds):
                changes["recurrent"] = None  # no recurrent layer left: the mixer goes with them
        if "layer_types" in changes and "cross_attention_tokens" not in changes and CROSS_KIND not in (
                changes["layer_types"] or ()):
            changes["cross_attention_tokens"] = 0  # no cross-attention layer left: nothing caches the images
        if changes.keys() & {"num_layers", "num_experts", "first_dense_layers"}:
            changes.setdefault("mlp_layer_types", None)
        return replace(self, **changes)
