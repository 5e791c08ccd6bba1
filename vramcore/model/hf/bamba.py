"""Bamba (``bamba``): Mamba2 layers with full attention at ``attn_layer_indices``, a dense gated MLP in every layer.

Also the home of :func:`mamba2_mixer`, the ``mamba_*`` fields Bamba and
Granite-4.0-H (``granitemoehybrid``, whose Mamba layer is ``BambaMixer``)
spell the same way.
"""

from __future__ import annotations

from vramcore._record import replace
from vramcore.model.hf._reader import Fields, Reader, common_fields

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from vramcore.model.recurrent import StateSpec

__all__ = ["mamba2_mixer", "mamba_head_dim", "read_bamba", "ssm_fp32_requested"]

#: Config fields that ask the serving engines for an fp32 recurrent state (vLLM reads them from the HF config).
_SSM_DTYPE_KEYS = ("mamba_ssm_cache_dtype", "mamba_ssm_dtype")


def ssm_fp32_requested(r: Reader) -> bool:
    """Return True when the config asks for an fp32 recurrent state (``mamba_ssm_cache_dtype`` / ``mamba_ssm_dtype``).

    Parameters
    ----------
    r : Reader
        The config.

    Returns
    -------
    bool
        ``"float32"`` (or ``"fp32"``) in either field; another dtype name, or
        neither field, leaves the state in the model dtype.

    Raises
    ------
    ValueError
        A field holds something other than a dtype name.
    """
    fp32 = False
    for key in _SSM_DTYPE_KEYS:
        value = r.cfg.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"config field {key!r} must be a dtype name, got {str(value)[:80]!r}")
        fp32 = fp32 or value in ("float32", "fp32")
    return fp32


def mamba_head_dim(r: Reader, heads: int, inner: int, width: str) -> int:
    """Return a Mamba2 mixer's ``mamba_d_head``: as given, or ``inner // heads`` when absent or ``"auto"``.

    Raises
    ------
    ValueError
        `heads` does not divide `inner` (the mixer's inner width, spelled `width` in the message) for an
        ``"auto"`` head size, or head size x heads is not that width, as transformers requires.
    """
    if r.cfg.get("mamba_d_head", "auto") in (None, "auto"):
        if inner % heads:
            raise ValueError(f"config of model_type {r.model_type!r}: mamba_n_heads ({heads}) must divide "
                             f"{width} ({inner}) when mamba_d_head is 'auto', as transformers requires")
        return inner // heads
    head_dim = r.int("mamba_d_head", minimum=1)
    if head_dim * heads != inner:
        raise ValueError(f"config of model_type {r.model_type!r}: mamba_d_head x mamba_n_heads ({head_dim} x {heads}) "
                         f"must equal {width} ({inner}), as transformers requires")
    return head_dim


def mamba2_mixer(r: Reader, hidden: int) -> StateSpec:
    """Return the Mamba2 mixer a ``mamba_*`` config describes (transformers ``BambaMixer``).

    The inner width is ``mamba_expand x hidden``; ``mamba_d_head`` (``"auto"``:
    inner / ``mamba_n_heads``) times ``mamba_n_heads`` must equal it, as
    transformers' config checks.  ``in_proj`` (bias when ``mamba_proj_bias``)
    yields the gate, the ``inner + 2 x groups x state`` convolution channels
    (``conv1d`` bias when ``mamba_conv_bias``) and one ``dt`` per head;
    ``dt_bias``, ``A_log`` and ``D`` have one entry per head; a gated RMSNorm
    of the inner width (its group split changes no shape); ``out_proj``.

    Parameters
    ----------
    r : Reader
        The config (class defaults already merged in).
    hidden : int
        The model's hidden size.

    Returns
    -------
    StateSpec
        With ``ssm_fp32`` when :func:`ssm_fp32_requested`.

    Raises
    ------
    ValueError
        A field is missing, malformed or out of bounds, or the heads do not
        tile the inner width.

    Examples
    --------
    >>> from vramcore.model.hf._reader import Reader
    >>> cfg = {"mamba_n_heads": 48, "mamba_d_head": "auto", "mamba_d_state": 128, "mamba_n_groups": 1,
    ...        "mamba_d_conv": 4, "mamba_expand": 2}
    >>> s = mamba2_mixer(Reader(cfg, "granitemoehybrid"), 1536)
    >>> s.state_heads, s.state_rows, s.state_cols, s.conv_dim
    (48, 64, 128, 3328)
    """
    from vramcore.model.recurrent import mamba2  # loaded with the first model that has one

    heads = r.int("mamba_n_heads", minimum=1)
    inner = r.int("mamba_expand", minimum=1) * hidden
    head_dim = mamba_head_dim(r, heads, inner, "mamba_expand x hidden_size")
    state = mamba2(hidden=hidden, heads=heads, head_dim=head_dim, state_size=r.int("mamba_d_state", minimum=1),
                   groups=r.int("mamba_n_groups", minimum=1), conv_kernel=r.int("mamba_d_conv", minimum=1),
                   conv_bias=r.bool("mamba_conv_bias", True), proj_bias=r.bool("mamba_proj_bias", False))
    return replace(state, ssm_fp32=True) if ssm_fp32_requested(r) else state


def read_bamba(r: Reader) -> Fields:
    """Fields of a ``bamba`` config (transformers ``configuration_bamba.py`` / ``modeling_bamba.py``).

    The layers listed in ``attn_layer_indices`` attend (q/k/v/o with biases
    when ``attention_bias``); every other layer is a Mamba2 mixer
    (:func:`mamba2_mixer`); every layer has a dense gated MLP (biases when
    ``mlp_bias``) and two RMSNorms.  No ``attn_layer_indices``: every layer is
    Mamba2, as transformers builds it.
    """
    out = common_fields(r, tie_default=False)
    n = out["num_layers"]
    indices = r.int_set("attn_layer_indices")
    outside = sorted(i for i in indices if not 0 <= i < n)
    if outside:
        raise ValueError(f"config field 'attn_layer_indices' names layers outside 0..{n - 1}: {outside[:8]}")
    types = tuple("full_attention" if i in indices else "mamba" for i in range(n))
    bias = r.bool("attention_bias", False)
    out.update(layer_types=types, qkv_bias=bias, o_bias=bias, mlp_bias=r.bool("mlp_bias", False))
    # BambaConfig.__post_init__ sets partial_rotary_factor 0.5 whatever the file says ("hardcode for BC",
    # transformers 5.24 configuration_bamba.py); BambaRotaryEmbedding rotates int(head_dim x 0.5) dims
    head_dim = out["head_dim"] or out["hidden_size"] // out["num_heads"]
    out["rotary_dim"] = int(head_dim * 0.5)
    if "mamba" in types:
        out["recurrent"] = mamba2_mixer(r, out["hidden_size"])
    return out


READERS = {"bamba": read_bamba}

# BambaConfig defaults for fields real files may leave out (transformers configuration_bamba.py)
DEFAULTS = {
    "bamba": {
        "vocab_size": 128000, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 262144,
        "mamba_n_heads": 128, "mamba_d_head": "auto", "mamba_n_groups": 1, "mamba_d_state": 256, "mamba_d_conv": 4,
        "mamba_expand": 2,
    },
}
