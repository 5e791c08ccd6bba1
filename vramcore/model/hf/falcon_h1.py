"""Falcon-H1 (``falcon_h1``): attention and a Mamba2 mixer side by side in every layer, then a gated MLP.

transformers ``FalconH1DecoderLayer`` feeds the same normed input to
``FalconH1Attention`` and ``FalconH1Mixer`` (a Mamba2 mixer) and adds both
outputs, so every layer keeps a KV cache and a recurrent state: the layer kind
``"hybrid"`` (transformers' own ``layers_block_type``; its cache layer is
``LinearAttentionAndFullAttentionLayer``).  vLLM registers the two as separate
cache layers (vllm/model_executor/models/falcon_h1.py, ``FalconH1ParallelHybrid``:
the mixer as layer ``num_hidden_layers + i``) and llama.cpp's hybrid memory
gives every layer both a KV cache and a recurrent cell (src/llama-model.cpp,
``LLM_ARCH_FALCON_H1``: both layer filters true).

The multipliers (``embedding_multiplier``, ``lm_head_multiplier``,
``key_multiplier``, ``attention_in/out_multiplier``, ``ssm_in/out_multiplier``,
``ssm_multipliers``, ``mlp_multipliers``) scale activations and build no
parameter; the mixer's ``mup_vector`` is a non-persistent buffer.
"""

from __future__ import annotations

from vramcore.model.hf._reader import Fields, Reader
from vramcore.model.hf.bamba import mamba_head_dim

__all__ = ["read_falcon_h1"]

# FalconH1Config defaults (transformers 5.24 configuration_falcon_h1.py), read in place rather than merged as
# DEFAULTS: an explicit null mamba_d_ssm means mamba_expand x hidden_size, an absent one the default 1024
_DEFAULT_D_SSM = 1024


def _check_layout(r: Reader, n: int) -> None:
    """Refuse a config whose layer list or attention indices ask for anything but a hybrid layer everywhere."""
    for key in ("layers_block_type", "layer_types"):
        listed = r.cfg.get(key)
        if listed is None:
            continue
        if not isinstance(listed, list) or len(listed) != n:
            raise ValueError(f"config field {key!r} of a falcon_h1 model must be a list of {n} entries "
                             f"(num_hidden_layers), got {str(listed)[:80]}")
        other = sorted({str(k)[:40] for k in listed if k != "hybrid"})
        if other:
            raise ValueError(f"config field {key!r} of a falcon_h1 model holds {other[:5]}: FalconH1DecoderLayer "
                             "runs attention and a Mamba2 mixer in every layer ('hybrid'), and no other kind")
    indices = r.cfg.get("attn_layer_indices")
    if indices not in (None, []):
        raise ValueError(f"config field 'attn_layer_indices' of a falcon_h1 model is {str(indices)[:80]}: "
                         "transformers and vLLM give every Falcon-H1 layer attention beside its Mamba2 mixer "
                         "whatever it says, so a layout that lists attention layers is not one they build")


def _mamba_inner(r: Reader, hidden: int) -> int:
    """Return the mixer's inner width: ``mamba_d_ssm``, or ``mamba_expand x hidden_size`` when it is null."""
    if "mamba_d_ssm" in r.cfg and r.cfg["mamba_d_ssm"] is None:
        return r.int("mamba_expand", 2, minimum=1) * hidden
    return r.int("mamba_d_ssm", _DEFAULT_D_SSM, minimum=1)


def read_falcon_h1(r: Reader) -> Fields:
    """Fields of a ``falcon_h1`` config (transformers ``configuration_falcon_h1.py`` / ``modeling_falcon_h1.py``).

    Every layer is ``"hybrid"``: attention (q/k/v/o of ``head_dim``, biases
    when ``attention_bias``) beside a Mamba2 mixer of ``mamba_n_heads`` x
    ``mamba_d_head`` (``"auto"``: inner / heads) with inner width
    ``mamba_d_ssm`` (null: ``mamba_expand x hidden_size``), ``mamba_n_groups``
    x ``mamba_d_state``: ``in_proj`` (bias when ``mamba_proj_bias``),
    ``conv1d`` (bias when ``mamba_conv_bias``), ``dt_bias`` / ``A_log`` /
    ``D``, a gated RMSNorm only when ``mamba_rms_norm`` and ``out_proj`` (bias
    when ``projectors_bias``); then a gated MLP (biases when ``mlp_bias``);
    two RMSNorms a layer and a final one.  Embeddings untied unless the file
    says so.

    Raises
    ------
    ValueError
        A field is missing, malformed or out of bounds, the Mamba2 heads do
        not tile the inner width (transformers' ``validate_architecture``), or
        the config lists layers of another kind (:func:`_check_layout`).
    """
    from vramcore._record import replace
    from vramcore.model.hf.bamba import ssm_fp32_requested
    from vramcore.model.recurrent import mamba2  # loaded with the first model that has one

    n = r.int("num_hidden_layers", 32, minimum=1)
    _check_layout(r, n)
    hidden = r.int("hidden_size", 4096, minimum=1)
    heads = r.int("num_attention_heads", 32, minimum=1)
    inner = _mamba_inner(r, hidden)
    m_heads = r.int("mamba_n_heads", 128, minimum=1)
    head_dim = mamba_head_dim(r, m_heads, inner, "the mixer's inner width mamba_d_ssm")
    mixer = mamba2(hidden=hidden, heads=m_heads, head_dim=head_dim, state_size=r.int("mamba_d_state", 256, minimum=1),
                   groups=r.int("mamba_n_groups", 1, minimum=1), conv_kernel=r.int("mamba_d_conv", 4, minimum=1),
                   conv_bias=r.bool("mamba_conv_bias", True), proj_bias=r.bool("mamba_proj_bias", False),
                   out_bias=r.bool("projectors_bias", False), gated_norm=r.bool("mamba_rms_norm", False))
    # FalconH1DecoderLayer / FalconH1Mixer: in_proj takes hidden_states * ssm_in_multiplier and q/k/v
    # hidden_states * attention_in_multiplier (two copies of the normed input), and in_proj's output is
    # multiplied by the mup_vector buffer (transformers modeling_falcon_h1.py)
    mixer = replace(mixer, ssm_fp32=ssm_fp32_requested(r), input_copies=2, proj_scaled=True)
    bias = r.bool("attention_bias", False)
    return {
        "num_layers": n,
        "hidden_size": hidden,
        "num_heads": heads,
        # FalconH1Config: 8 KV heads unless the file says, an explicit null meaning one per query head
        "num_kv_heads": heads if r.cfg.get("num_key_value_heads", 8) is None else r.int("num_key_value_heads", 8,
                                                                                         minimum=1),
        "head_dim": r.int("head_dim", None, minimum=1),
        "intermediate_size": r.int("intermediate_size", 14336, minimum=1),
        "vocab_size": r.int("vocab_size", 128000, minimum=1),
        "max_context": r.int("max_position_embeddings", 8192, minimum=1),
        "tie_embeddings": r.bool("tie_word_embeddings", False),
        "layer_types": ("hybrid",) * n,
        "recurrent": mixer,
        "qkv_bias": bias,
        "o_bias": bias,
        "mlp_bias": r.bool("mlp_bias", False),
    }


READERS = {"falcon_h1": read_falcon_h1}
