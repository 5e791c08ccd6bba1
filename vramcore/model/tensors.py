"""The tensors a model holds: a per-tensor view of a :class:`~vramcore.ModelSpec`.

Quantized formats store each tensor by its own rules (a GGUF recipe gives
``attn_v`` more bits on some layers, GPTQ groups run along each row, a row that
is not a multiple of a block falls back to another type), so exact storage
needs the tensors, not just the parameter counts by part.  :func:`list_tensors`
lists them with llama.cpp's GGUF names (``blk.{i}.attn_q.weight``), which are
uniform across architectures, and with shapes in PyTorch order: the last
dimension is the row that block quantizers run along (``ne[0]`` in GGML), and
the routed experts of a layer are stacked as one 3-D tensor
``(num_experts, rows, row_length)``, as llama.cpp stores them.

The list holds exactly the parameters transformers instantiates: its sums by
part equal :meth:`ModelSpec.param_breakdown` (a test checks every built-in
card).  Buffers a GGUF file adds that are not parameters (``rope_freqs``,
DeepSeek's ``exp_probs_b``) are left out; they are a few kilobytes.
"""

from __future__ import annotations

from functools import lru_cache
from math import prod

from vramcore._identity import Same
from vramcore._record import Record, record
from vramcore.model.spec import PARTS, ModelSpec

__all__ = ["TensorInfo", "list_tensors", "sum_by_part"]


@record(frozen=True, slots=True, repr=False, eq=False)
class TensorInfo(Record):
    """One tensor of a model.

    Attributes
    ----------
    name : str
        llama.cpp GGUF name, e.g. ``"blk.0.attn_q.weight"``, ``"token_embd.weight"``.
    shape : tuple of int
        PyTorch order: ``(rows, row_length)`` for a matrix, ``(n,)`` for a
        vector, ``(num_experts, rows, row_length)`` for stacked experts.
    part : str
        The :data:`vramcore.PARTS` entry the tensor counts in.
    layer : int or None
        Decoder layer index; None for the embedding, output norm and lm_head.
    role : str
        What the tensor is, independent of the layer: ``"token_embd"``,
        ``"output"``, ``"attn_q"``, ``"attn_k"``, ``"attn_v"``, ``"attn_qkv"``,
        ``"attn_output"``, ``"attn_q_a"``, ``"attn_q_b"``, ``"attn_kv_a_mqa"``,
        ``"attn_k_b"``, ``"attn_v_b"``, ``"attn_sinks"``, ``"indexer_attn_q_b"``,
        ``"indexer_attn_k"``, ``"indexer_proj"`` (DeepSeek-V3.2's indexer), ``"ffn_gate"``,
        ``"ffn_up"``, ``"ffn_down"`` (with ``_exps`` / ``_shexp`` suffixes for
        routed / shared experts), ``"ffn_gate_inp"`` (router), ``"norm"``,
        ``"bias"`` or ``"vision"`` (a matrix, patch convolution or position
        table of a vision tower or projector).
    """

    name: str
    shape: tuple[int, ...]
    part: str
    layer: int | None
    role: str

    @property
    def numel(self) -> int:
        """Number of elements."""
        return prod(self.shape)

    @property
    def row_length(self) -> int:
        """Length of one row (the last dimension; GGML's ``ne[0]``)."""
        return self.shape[-1]

    @property
    def n_rows(self) -> int:
        """Number of rows (all dimensions but the last, multiplied)."""
        return prod(self.shape[:-1])

    @property
    def is_matrix(self) -> bool:
        """True for a 2-D or 3-D weight (what quantizers may quantize); False for vectors and biases."""
        return len(self.shape) >= 2 and self.role not in ("norm", "bias")


_NORM_NAMES = ("attn_norm", "ffn_norm", "post_attention_norm", "post_ffw_norm")


def _norm_names(spec: ModelSpec) -> list[str]:
    # llama.cpp names: attn_norm / ffn_norm (Llama); Gemma-2/3 add post_attention_norm and
    # post_ffw_norm; gpt-oss calls its pre-MLP norm post_attention_norm; OLMo-2 has only the two
    # post-branch norms (post_attention_layernorm, post_feedforward_layernorm: LLM_ARCH_OLMO2's
    # ATTN_POST_NORM / FFN_POST_NORM).
    n = spec.norms_per_layer
    if spec.model_type == "gpt_oss" and n == 2:
        return ["attn_norm", "post_attention_norm"]
    if spec.model_type == "olmo2" and n == 2:
        return ["post_attention_norm", "post_ffw_norm"]
    names = list(_NORM_NAMES[:n])
    names += [f"norm_{k}" for k in range(len(names), n)]
    return names


def _mixer(spec: ModelSpec, i: int) -> list[TensorInfo]:
    """Return layer `i`'s token mixer: attention, a recurrent mixer, both side by side (``"hybrid"``) or none."""
    kind = spec.layer_types[i] if spec.layer_types is not None else "full_attention"
    if kind == "none":
        return []  # an MLP-only block (Nemotron-H)
    out: list[TensorInfo] = []
    if spec.recurrent is not None and kind in (spec.recurrent.layer_type, "hybrid"):
        blk = f"blk.{i}."
        for t in spec.recurrent.tensors:  # a recurrent mixer (llama.cpp's ssm_* names)
            part = "norms" if t.role == "norm" else "attention"
            role = {"linear": t.name.split(".")[0], "conv": "ssm_conv1d"}.get(t.role, t.role)
            out.append(TensorInfo(blk + t.name, t.shape, part, i, "bias" if t.role == "param" else role))
        if kind != "hybrid":
            return out
    return out + _attention(spec, i)  # a hybrid layer (Falcon-H1) also attends


def _attention(spec: ModelSpec, i: int) -> list[TensorInfo]:
    h, nh = spec.hidden_size, spec.num_heads
    blk = f"blk.{i}."
    out: list[TensorInfo] = []

    def add(role: str, shape: tuple[int, ...], part: str = "attention", suffix: str = "weight") -> None:
        kind = "bias" if suffix == "bias" else ("norm" if role.endswith("_norm") else role)
        out.append(TensorInfo(f"{blk}{role}.{suffix}", shape, part, i, kind))

    if spec.is_mla:
        rope, nope, vdim, kvr = (spec.qk_rope_head_dim, spec.qk_nope_head_dim, spec.v_head_dim,
                                 spec.kv_lora_rank)
        assert rope is not None and nope is not None and vdim is not None and kvr is not None
        q_out = nh * (nope + rope)
        if spec.q_lora_rank is not None:
            add("attn_q_a", (spec.q_lora_rank, h))
            add("attn_q_a_norm", (spec.q_lora_rank,), "norms")
            add("attn_q_b", (q_out, spec.q_lora_rank))
            q_role = "attn_q_b"
        else:
            add("attn_q", (q_out, h))
            q_role = "attn_q"
        add("attn_kv_a_mqa", (kvr + rope, h))
        add("attn_kv_a_norm", (kvr,), "norms")
        # current convert_hf_to_gguf.py splits kv_b_proj into per-head k_b (transposed) and v_b
        add("attn_k_b", (nh, kvr, nope))
        add("attn_v_b", (nh, vdim, kvr))
        add("attn_output", (h, nh * vdim))
        if spec.qkv_bias:
            add(q_role, (q_out,), suffix="bias")
            add("attn_kv_a_mqa", (kvr + rope,), suffix="bias")
        if spec.o_bias:
            add("attn_output", (h,), suffix="bias")
        if spec.index_n_heads is not None:
            out.extend(_indexer(spec, i))
        return out

    hd, nkv = spec.head_dim, spec.num_kv_heads
    assert hd is not None and nkv is not None
    q_out, kv_out = nh * hd, nkv * hd
    if spec.attn_output_gate:  # Qwen3-Next: q_proj yields the query and its output gate
        add("attn_q", (2 * q_out, h))
        add("attn_k", (kv_out, h))
        add("attn_v", (kv_out, h))
        if spec.qkv_bias:
            add("attn_q", (2 * q_out,), suffix="bias")
            add("attn_k", (kv_out,), suffix="bias")
            add("attn_v", (kv_out,), suffix="bias")
    elif spec.model_type == "phi3":  # fused qkv_proj
        add("attn_qkv", (q_out + 2 * kv_out, h))
        if spec.qkv_bias:
            add("attn_qkv", (q_out + 2 * kv_out,), suffix="bias")
    else:
        own = spec.owns_kv(i)  # a Gemma-3n KV-sharing layer has no k/v projections (Gemma3nTextAttention)
        add("attn_q", (q_out, h))
        if own:
            add("attn_k", (kv_out, h))
            add("attn_v", (kv_out, h))
        if spec.qkv_bias:
            add("attn_q", (q_out,), suffix="bias")
            if own:
                add("attn_k", (kv_out,), suffix="bias")
                add("attn_v", (kv_out,), suffix="bias")
    add("attn_output", (h, q_out))
    if spec.o_bias:
        add("attn_output", (h,), suffix="bias")
    if spec.attention_sinks:
        add("attn_sinks", (nh,))
    if spec.layer_types is not None and spec.layer_types[i] == "cross_attention":
        # MllamaCrossAttentionDecoderLayer: per-head q/k norms and the scalar tanh gates of its attention and MLP
        # branches (llama.cpp's mllama names: cross_attn_attn_gate, cross_attn_mlp_gate)
        add("cross_attn_q_norm", (hd,), "norms")
        add("cross_attn_k_norm", (hd,), "norms")
        add("cross_attn_attn_gate", (1,))
        add("cross_attn_mlp_gate", (1,))
        return out
    if spec.qk_norm:
        full = spec.qk_norm_full_width  # OLMo-2: one norm over the whole q and k projections
        add("attn_q_norm", (q_out if full else hd,), "norms")
        if spec.owns_kv(i):
            add("attn_k_norm", (kv_out if full else hd,), "norms")
    return out


def _gemma3n_layer(spec: ModelSpec, i: int) -> list[TensorInfo]:
    """Return layer `i`'s AltUp, LAuReL and per-layer-input tensors (Gemma-3n; none for other models).

    llama.cpp's gemma3n names (src/llama-arch.cpp): ``altup_*``, ``laurel_*``, ``inp_gate``, ``proj``,
    ``post_norm``; shapes as transformers ``Gemma3nTextDecoderLayer`` builds them.
    """
    h, n, r, p = spec.hidden_size, spec.altup_inputs, spec.laurel_rank, spec.per_layer_input_size
    blk = f"blk.{i}."
    out: list[TensorInfo] = []
    if n > 1:
        out += [TensorInfo(f"{blk}altup_correct_coef.weight", (n, n), "attention", i, "altup_correct_coef"),
                TensorInfo(f"{blk}altup_correct_scale.weight", (h,), "norms", i, "norm"),
                TensorInfo(f"{blk}altup_predict_coef.weight", (n * n, n), "attention", i, "altup_predict_coef"),
                TensorInfo(f"{blk}altup_router.weight", (n, h), "attention", i, "altup_router"),
                TensorInfo(f"{blk}altup_router_norm.weight", (h,), "norms", i, "norm")]
    if r:
        out += [TensorInfo(f"{blk}laurel_l.weight", (r, h), "attention", i, "laurel_l"),
                TensorInfo(f"{blk}laurel_r.weight", (h, r), "attention", i, "laurel_r"),
                TensorInfo(f"{blk}laurel_post_norm.weight", (h,), "norms", i, "norm")]
    if p:
        out += [TensorInfo(f"{blk}inp_gate.weight", (p, h), "attention", i, "inp_gate"),
                TensorInfo(f"{blk}proj.weight", (h, p), "attention", i, "proj"),
                TensorInfo(f"{blk}post_norm.weight", (h,), "norms", i, "norm")]
    return out


def _gemma3n_model(spec: ModelSpec) -> list[TensorInfo]:
    """Return Gemma-3n's tensors outside the layers: per-layer embeddings, their projection, AltUp in / out."""
    h, L, n, p = spec.hidden_size, spec.num_layers, spec.altup_inputs, spec.per_layer_input_size
    out: list[TensorInfo] = []
    if p:
        out += [TensorInfo("per_layer_token_embd.weight", (spec.per_layer_vocab_size, L * p), "embedding", None,
                           "token_embd"),
                TensorInfo("per_layer_model_proj.weight", (L * p, h), "attention", None, "per_layer_model_proj"),
                TensorInfo("per_layer_proj_norm.weight", (p,), "norms", None, "norm")]
    if n > 1:  # llama.cpp stacks the n - 1 projections into one 3-D tensor
        out += [TensorInfo("altup_proj.weight", (n - 1, h, h), "attention", None, "altup_proj"),
                TensorInfo("altup_unembd_proj.weight", (n - 1, h, h), "attention", None, "altup_unembd_proj")]
    return out


def _indexer(spec: ModelSpec, i: int) -> list[TensorInfo]:
    # DeepSeek-V3.2's lightning indexer (transformers DeepseekV32Indexer: wq_b, wk, k_norm, weights_proj),
    # under llama.cpp's indexer.* names
    h, ih, idim, qr = spec.hidden_size, spec.index_n_heads, spec.index_head_dim, spec.q_lora_rank
    assert ih is not None and idim is not None and qr is not None
    blk = f"blk.{i}.indexer."
    return [
        TensorInfo(f"{blk}attn_q_b.weight", (ih * idim, qr), "attention", i, "indexer_attn_q_b"),
        TensorInfo(f"{blk}attn_k.weight", (idim, h), "attention", i, "indexer_attn_k"),
        TensorInfo(f"{blk}k_norm.weight", (idim,), "norms", i, "norm"),
        TensorInfo(f"{blk}k_norm.bias", (idim,), "norms", i, "bias"),
        TensorInfo(f"{blk}proj.weight", (ih, h), "attention", i, "indexer_proj"),
    ]


def _mlp(spec: ModelSpec, i: int) -> list[TensorInfo]:
    h = spec.hidden_size
    blk = f"blk.{i}."
    out: list[TensorInfo] = []

    def add(role: str, shape: tuple[int, ...], part: str, suffix: str = "weight") -> None:
        kind = "bias" if suffix == "bias" else role
        out.append(TensorInfo(f"{blk}{role}.{suffix}", shape, part, i, kind))

    assert spec.mlp_layer_types is not None
    if spec.mlp_layer_types[i] == "none":
        return out  # a mixer-only block (Nemotron-H)
    gated = spec.mlp_gated
    if spec.mlp_layer_types[i] == "dense":
        ff = spec.intermediate_size
        if spec.model_type == "phi3":  # fused gate_up_proj, stored by llama.cpp as ffn_up
            add("ffn_up", (2 * ff, h), "mlp_dense")
        else:
            if gated:
                add("ffn_gate", (ff, h), "mlp_dense")
            add("ffn_up", (ff, h), "mlp_dense")
        add("ffn_down", (h, ff), "mlp_dense")
        if spec.mlp_bias:
            if gated:
                add("ffn_gate", (ff,), "mlp_dense", "bias")
            add("ffn_up", (ff,), "mlp_dense", "bias")
            add("ffn_down", (h,), "mlp_dense", "bias")
        return out
    e, ei = spec.num_experts, spec.moe_intermediate_size
    assert ei is not None
    add("ffn_gate_inp", (e, h), "router")
    if spec.router_bias:
        add("ffn_gate_inp", (e,), "router", "bias")
    if spec.shared_expert_gate:
        add("ffn_gate_inp_shexp", (1, h), "router")
    if gated:
        add("ffn_gate_exps", (e, ei, h), "mlp_routed_experts")
    add("ffn_up_exps", (e, ei, h), "mlp_routed_experts")
    add("ffn_down_exps", (e, h, ei), "mlp_routed_experts")
    if spec.expert_bias:
        if gated:
            add("ffn_gate_exps", (e, ei), "mlp_routed_experts", "bias")
        add("ffn_up_exps", (e, ei), "mlp_routed_experts", "bias")
        add("ffn_down_exps", (e, h), "mlp_routed_experts", "bias")
    s = spec.shared_expert_intermediate_size
    if s:
        if gated:
            add("ffn_gate_shexp", (s, h), "mlp_shared_experts")
        add("ffn_up_shexp", (s, h), "mlp_shared_experts")
        add("ffn_down_shexp", (h, s), "mlp_shared_experts")
    return out


@lru_cache(maxsize=256)
def _tensors(spec_key: Same) -> tuple[TensorInfo, ...]:
    spec: ModelSpec = spec_key.obj        # by identity: model_type (fused or named tensors) is not in its equality
    h, v = spec.hidden_size, spec.vocab_size
    out = [TensorInfo("token_embd.weight", (spec.embedding_rows or v, h), "embedding", None, "token_embd")]
    for i in range(spec.num_layers):
        for name in _norm_names(spec):
            out.append(TensorInfo(f"blk.{i}.{name}.weight", (h,), "norms", i, "norm"))
        out.extend(_mixer(spec, i))
        out.extend(_mlp(spec, i))
        out.extend(_gemma3n_layer(spec, i))
    out.extend(_gemma3n_model(spec))
    out.append(TensorInfo("output_norm.weight", (h,), "norms", None, "norm"))
    if not spec.tie_embeddings:
        out.append(TensorInfo("output.weight", (v, h), "lm_head", None, "output"))
    if spec.vision is not None:  # a multimodal model: its mmproj tensors (llama.cpp names them v.* and mm.*)
        for t in spec.vision.tensors:
            part = "multimodal_projector" if t.projector else "vision_tower"
            role = t.role if t.role in ("norm", "bias") else "vision"
            out.append(TensorInfo(t.name, t.shape, part, None, role))
    if spec.audio is not None:  # Gemma-3n's audio encoder and its embedder (vramcore names: a.* and mm.a.*)
        for t in spec.audio.tensors:
            role = t.role if t.role in ("norm", "bias") else "vision"
            out.append(TensorInfo(t.name, t.shape, "audio_tower", None, role))
    return tuple(out)


def list_tensors(spec: ModelSpec) -> tuple[TensorInfo, ...]:
    """List the parameter tensors of `spec`, named as llama.cpp names them in a GGUF file.

    The order is the token embedding, then each layer (norms, attention, MLP),
    then the output norm, (unless tied) the lm_head and, for a multimodal
    model, the vision tower and projector tensors.  Sums by part equal
    :meth:`ModelSpec.param_breakdown`.

    Parameters
    ----------
    spec : ModelSpec
        The model.

    Returns
    -------
    tuple of TensorInfo

    Raises
    ------
    TypeError
        `spec` is not a ModelSpec.

    Examples
    --------
    >>> import vramcore
    >>> ts = list_tensors(vramcore.get_model("Llama-3.1-8B").spec)
    >>> [(t.name, t.shape) for t in ts[4:6]]
    [('blk.0.attn_k.weight', (1024, 4096)), ('blk.0.attn_v.weight', (1024, 4096))]
    >>> sum(t.numel for t in ts)
    8030261248
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec, got {type(spec).__name__}")
    return _tensors(Same(spec))


def sum_by_part(values: dict[str, int] | None = None) -> dict[str, int]:
    """Return a dict with one zero entry per part in :data:`vramcore.PARTS`, updated with `values`.

    Examples
    --------
    >>> sum_by_part({"attention": 3})["attention"], len(sum_by_part())
    (3, 11)
    """
    out = dict.fromkeys(PARTS, 0)
    if values:
        for part, n in values.items():
            if part not in out:
                raise ValueError(f"part must be one of {PARTS}, got {part!r}")
            out[part] += n
    return out
