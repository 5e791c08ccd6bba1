"""Recurrent token mixers of hybrid models: their tensors, and the fixed-size state a sequence keeps.

Hybrid decoders (Qwen3-Next, Granite-4.0-H, Nemotron-H, Falcon-H1 ...) replace
attention in some layers by a recurrent mixer whose cache is not per token but
a fixed state per sequence: a causal-convolution window and a recurrent
matrix.  A :class:`StateSpec` describes one such layer exactly (its tensors as
transformers builds them, and the state shapes); the layers that use it are
marked ``"linear_attention"`` (gated DeltaNet) or ``"mamba"`` (Mamba2) in
:attr:`vramcore.ModelSpec.layer_types`.

State per sequence and layer, in elements:

- convolution: ``conv_dim x conv_len``, where transformers keeps the whole
  kernel (``conv_len = conv_kernel``) and the serving engines the kernel's
  past inputs only (``conv_kernel - 1``; an engine rule,
  :attr:`vramcore.EngineSpec.state_conv_offset`);
- recurrent: ``state_heads x state_rows x state_cols`` (gated DeltaNet:
  value heads x key dim x value dim; Mamba2: heads x head dim x state size).

Under tensor parallelism heads and channels split over the ranks, except
Mamba2's B and C (``groups x state size`` channels each): every rank holds the
whole groups its heads read, so with more ranks than groups each group is
replicated on ``tp / groups`` ranks (:meth:`StateSpec.tp_groups`).
"""

from __future__ import annotations

import numbers
from math import prod

from vramcore._record import Record, record
from vramcore.model.limits import check_tensor

__all__ = ["STATE_KINDS", "MixerTensor", "StateSpec", "gated_deltanet", "mamba1", "mamba2"]

#: Recurrent mixer kinds, and the ``layer_types`` entry of the layers that use each.
STATE_KINDS: dict[str, str] = {"gated_deltanet": "linear_attention", "mamba2": "mamba", "mamba1": "mamba"}

#: What a mixer tensor may be (:attr:`MixerTensor.role`).
MIXER_ROLES: tuple[str, ...] = ("linear", "conv", "norm", "param")


@record(frozen=True, slots=True, repr=False, eq=False)
class MixerTensor(Record):
    """One parameter tensor of a recurrent mixer (one layer's).

    Attributes
    ----------
    name : str
        Name within the layer as llama.cpp writes it (``"ssm_in.weight"``, ``"ssm_conv1d.weight"``).
    shape : tuple of int
        PyTorch order.
    role : str
        ``"linear"`` (a matrix quantizers may quantize), ``"conv"``, ``"norm"`` or ``"param"`` (a small vector:
        ``A_log``, ``D``, ``dt_bias``, biases).
    group_rows : int
        Rows (along dim 0) that belong to Mamba2's B and C groups, which split over at most
        :attr:`StateSpec.groups` TP ranks and are replicated past that (0: the tensor splits evenly).

    Raises
    ------
    TypeError, ValueError
        A shape that is not 1 to 5 positive ints (at most 2**40 elements) or an unknown role
        (:func:`vramcore.model.limits.check_tensor`), or `group_rows` not an int in ``[0, shape[0]]``.
    """

    name: str
    shape: tuple[int, ...]
    role: str
    group_rows: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", check_tensor("MixerTensor", self.name, self.shape, self.role,
                                                       MIXER_ROLES))
        rows = self.group_rows
        if isinstance(rows, bool) or not isinstance(rows, numbers.Integral) or not 0 <= int(rows) <= self.shape[0]:
            raise ValueError(f"MixerTensor {self.name!r}: group_rows must be an int in [0, {self.shape[0]}], "
                             f"got {rows!r}")
        object.__setattr__(self, "group_rows", int(rows))

    @property
    def numel(self) -> int:
        """Number of elements."""
        return prod(self.shape)

    @property
    def group_numel(self) -> int:
        """Elements in the B and C group rows (:attr:`group_rows` x the elements of one row)."""
        return self.group_rows * (self.numel // self.shape[0])


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= int(value) <= 2**24:
        raise ValueError(f"StateSpec.{name} must be an int in [1, 2**24], got {value!r}")
    return int(value)


@record(frozen=True, slots=True, kw_only=True, repr=False, eq=False)
class StateSpec(Record):
    """One recurrent mixer layer: exact tensors and the per-sequence state.

    Parameters
    ----------
    kind : str
        A key of :data:`STATE_KINDS`.
    tensors : tuple of MixerTensor
        Every parameter tensor of one layer's mixer.
    conv_dim : int
        Channels of the causal convolution.
    conv_kernel : int
        Its kernel width.
    state_heads, state_rows, state_cols : int
        Shape of the recurrent state of one sequence.
    ssm_fp32 : bool
        The model's config asks the serving engines for an fp32 recurrent
        state (NemotronH ``mamba_ssm_cache_dtype``, Qwen3.5
        ``mamba_ssm_dtype``); vLLM follows it, else keeps the model dtype.
    input_copies : int
        Scaled copies of the layer's normed input that its projections take
        (and a training step saves) instead of the norm's output: Falcon-H1
        multiplies the mixer's input by ``ssm_in_multiplier`` and attention's
        by ``attention_in_multiplier`` (2); 0 elsewhere.
    proj_scaled : bool
        ``in_proj``'s output is multiplied by a buffer of its width before the
        scan (Falcon-H1's ``mup_vector``), which autograd saves once a layer.
    groups : int, optional
        Mamba2's ``n_groups``: the convolution's last ``2 x groups x state_cols``
        channels (B and C) and the matching rows of the input projection are
        held whole-group per TP rank (:meth:`tp_groups`).  None: every channel
        splits over the ranks (gated DeltaNet, Mamba1).

    Raises
    ------
    ValueError, TypeError
        A field is out of range or of the wrong type, or B and C would be more
        channels than the convolution has.
    """

    kind: str
    tensors: tuple[MixerTensor, ...]
    conv_dim: int
    conv_kernel: int
    state_heads: int
    state_rows: int
    state_cols: int
    ssm_fp32: bool = False
    input_copies: int = 0
    proj_scaled: bool = False
    groups: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in STATE_KINDS:
            raise ValueError(f"StateSpec.kind must be one of {tuple(STATE_KINDS)}, got {self.kind!r}")
        for name in ("conv_dim", "conv_kernel", "state_heads", "state_rows", "state_cols"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        tensors = tuple(self.tensors)
        for t in tensors:
            if not isinstance(t, MixerTensor):
                raise TypeError(f"StateSpec.tensors must hold MixerTensor entries, got {t!r}")
        object.__setattr__(self, "tensors", tensors)
        for name in ("ssm_fp32", "proj_scaled"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"StateSpec.{name} must be a bool, got {getattr(self, name)!r}")
        if isinstance(self.input_copies, bool) or not isinstance(self.input_copies, int) \
                or not 0 <= self.input_copies <= 2:
            raise ValueError(f"StateSpec.input_copies must be an int in [0, 2], got {self.input_copies!r}")
        if self.groups is not None:
            object.__setattr__(self, "groups", _positive("groups", self.groups))
            if self.group_channels > self.conv_dim:
                raise ValueError(f"StateSpec.groups: B and C take 2 x {self.groups} x {self.state_cols} = "
                                 f"{self.group_channels} channels, more than conv_dim = {self.conv_dim}")

    @property
    def layer_type(self) -> str:
        """The ``layer_types`` entry of the layers that use this mixer."""
        return STATE_KINDS[self.kind]

    @property
    def params(self) -> int:
        """Parameters of one layer's mixer, its internal norm excluded (counted under ``attention``)."""
        return sum(t.numel for t in self.tensors if t.role != "norm")

    @property
    def norm_params(self) -> int:
        """Parameters of the mixer's internal norm (counted under ``norms``)."""
        return sum(t.numel for t in self.tensors if t.role == "norm")

    @property
    def ssm_elems(self) -> int:
        """Recurrent-state elements of one sequence in one layer."""
        return self.state_heads * self.state_rows * self.state_cols

    def conv_elems(self, offset: int = 0) -> int:
        """Convolution-state elements of one sequence in one layer keeping ``conv_kernel + offset`` inputs."""
        return self.conv_dim * max(0, self.conv_kernel + offset)

    @property
    def group_width(self) -> int:
        """Convolution channels of one group: its B and C rows (``2 x state_cols``; 0 without groups)."""
        return 2 * self.state_cols if self.groups is not None else 0

    @property
    def group_channels(self) -> int:
        """Convolution channels of all groups' B and C (``groups x group_width``)."""
        return (self.groups or 0) * self.group_width

    @property
    def group_params(self) -> int:
        """Parameters of one layer's mixer in B and C rows (input projection and convolution; 0 without groups)."""
        if self.groups is None:
            return 0
        return sum(t.group_numel for t in self.tensors if t.role != "norm")

    def tp_groups(self, tp: int) -> int:
        """Return the groups the serving engines lay out over `tp` ranks: ``max(groups, tp)`` (0 without groups).

        Each rank holds whole groups next to its heads.  With ``tp`` dividing
        ``groups`` they split; with more ranks than groups (the TP layouts the
        engines accept: ``tp`` a multiple of ``groups``), each group is
        replicated on ``tp / groups`` ranks, one group a rank.  vLLM:
        ``MambaStateShapeCalculator.extra_groups_for_head_shards`` (``n_groups +
        tp - n_groups`` groups when ``tp`` does not divide them) in
        vllm/model_executor/layers/mamba/mamba_utils.py, sized into the conv
        state by ``mamba2_state_shape`` and into ``in_proj`` / ``conv1d`` by
        ``MambaMixer2.__init__`` (mamba_mixer2.py; it accepts n_groups % tp == 0
        or n_groups == 1); SGLang the same (python/sglang/srt/configs/mamba_utils.py,
        ``Mamba2StateShape.create``; layers/attention/mamba/mamba.py,
        ``MambaMixer2``); TensorRT-LLM ``Mamba2TpShard`` (tp_ngroups 1 when
        tp > n_groups, tensorrt_llm/_torch/modules/mamba/mamba2_tp.py).

        Examples
        --------
        >>> s = mamba2(hidden=1536, heads=48, head_dim=64, state_size=128, groups=1, conv_kernel=4)
        >>> [s.tp_groups(tp) for tp in (1, 2, 8)]
        [1, 2, 8]
        """
        return max(self.groups, tp) if self.groups is not None else 0


def _linear(name: str, rows: int, cols: int) -> MixerTensor:
    return MixerTensor(f"{name}.weight", (rows, cols), "linear")


def gated_deltanet(*, hidden: int, key_heads: int, value_heads: int, key_dim: int, value_dim: int,
                   conv_kernel: int, split: bool = False) -> StateSpec:
    """Return Qwen3-Next's gated DeltaNet mixer (transformers ``Qwen3NextGatedDeltaNet``).

    ``in_proj_qkvz`` (hidden -> 2 key widths + 2 value widths), ``in_proj_ba``
    (hidden -> 2 x value heads), a bias-free depthwise ``conv1d`` over
    ``2 x key width + value width`` channels, ``dt_bias`` and ``A_log`` (one per
    value head), a gated RMSNorm of the value head dim and ``out_proj``.
    With `split` (Qwen3.5's ``Qwen3_5GatedDeltaNet``) the same parameters are
    four projections: ``in_proj_qkv``, ``in_proj_z``, ``in_proj_b``, ``in_proj_a``.

    Examples
    --------
    >>> s = gated_deltanet(hidden=2048, key_heads=16, value_heads=32, key_dim=128, value_dim=128, conv_kernel=4)
    >>> s.params, s.ssm_elems, s.conv_elems(-1)
    (33718336, 524288, 24576)
    """
    kw, vw = key_heads * key_dim, value_heads * value_dim
    conv_dim = 2 * kw + vw
    inputs: tuple[MixerTensor, ...]
    if split:
        inputs = (_linear("ssm_in_qkv", 2 * kw + vw, hidden), _linear("ssm_in_z", vw, hidden),
                  _linear("ssm_in_b", value_heads, hidden), _linear("ssm_in_a", value_heads, hidden))
    else:
        inputs = (_linear("ssm_in", 2 * kw + 2 * vw, hidden), _linear("ssm_ba", 2 * value_heads, hidden))
    tensors = (
        *inputs,
        MixerTensor("ssm_conv1d.weight", (conv_dim, 1, conv_kernel), "conv"),
        MixerTensor("ssm_dt.bias", (value_heads,), "param"),
        MixerTensor("ssm_a", (value_heads,), "param"),
        MixerTensor("ssm_norm.weight", (value_dim,), "norm"),
        _linear("ssm_out", hidden, vw),
    )
    return StateSpec(kind="gated_deltanet", tensors=tensors, conv_dim=conv_dim, conv_kernel=conv_kernel,
                     state_heads=value_heads, state_rows=key_dim, state_cols=value_dim)


def mamba2(*, hidden: int, heads: int, head_dim: int, state_size: int, groups: int, conv_kernel: int,
           conv_bias: bool = True, proj_bias: bool = False, out_bias: bool | None = None,
           gated_norm: bool = True) -> StateSpec:
    """Return a Mamba2 mixer (transformers ``Mamba2Mixer`` / ``GraniteMoeHybridMambaLayer`` / ``NemotronHMamba2Mixer``).

    ``in_proj`` (hidden -> 2 x inner + 2 x groups x state + heads, inner =
    heads x head dim), a depthwise ``conv1d`` over ``inner + 2 x groups x
    state`` channels (with bias unless `conv_bias` is false), ``dt_bias``,
    ``A_log`` and ``D`` (one per head), a gated RMSNorm of width inner
    (none when `gated_norm` is false: Falcon-H1's ``mamba_rms_norm`` off) and
    ``out_proj`` (biases on both projections when `proj_bias`; `out_bias`, when
    given, sets ``out_proj``'s apart: Falcon-H1's ``projectors_bias``).

    Examples
    --------
    >>> s = mamba2(hidden=1536, heads=48, head_dim=64, state_size=128, groups=1, conv_kernel=4)
    >>> s.ssm_elems, s.conv_dim, s.group_channels, s.group_params
    (393216, 3328, 256, 394496)
    """
    inner = heads * head_dim
    bc = 2 * groups * state_size  # B and C: held whole-group per TP rank (StateSpec.tp_groups)
    conv_dim = inner + bc
    proj = 2 * inner + bc + heads
    tensors = [MixerTensor("ssm_in.weight", (proj, hidden), "linear", bc)]
    if proj_bias:
        tensors.append(MixerTensor("ssm_in.bias", (proj,), "param", bc))
    tensors.append(MixerTensor("ssm_conv1d.weight", (conv_dim, 1, conv_kernel), "conv", bc))
    if conv_bias:
        tensors.append(MixerTensor("ssm_conv1d.bias", (conv_dim,), "param", bc))
    tensors += [MixerTensor("ssm_dt.bias", (heads,), "param"), MixerTensor("ssm_a", (heads,), "param"),
                MixerTensor("ssm_d", (heads,), "param")]
    if gated_norm:
        tensors.append(MixerTensor("ssm_norm.weight", (inner,), "norm"))
    tensors.append(_linear("ssm_out", hidden, inner))
    if proj_bias if out_bias is None else out_bias:
        tensors.append(MixerTensor("ssm_out.bias", (hidden,), "param"))
    return StateSpec(kind="mamba2", tensors=tuple(tensors), conv_dim=conv_dim, conv_kernel=conv_kernel,
                     state_heads=heads, state_rows=head_dim, state_cols=state_size, groups=groups)


def mamba1(*, hidden: int, inner: int, state_size: int, conv_kernel: int, dt_rank: int, conv_bias: bool = True,
           proj_bias: bool = False, dt_norms: bool = True) -> StateSpec:
    """Return a Mamba1 mixer (transformers ``JambaMambaMixer``).

    ``in_proj`` (hidden -> 2 x inner), a depthwise ``conv1d`` over the inner
    width (with bias unless `conv_bias` is false), ``x_proj`` (inner -> dt rank
    + 2 x state), ``dt_proj`` (dt rank -> inner, biased), ``A_log`` (inner x
    state), ``D`` (inner), ``out_proj`` (inner -> hidden; biases on both
    projections when `proj_bias`) and, with `dt_norms` (Jamba), RMSNorms over
    the dt rank and over B and C.  The state is the inner width x state per
    sequence.

    Examples
    --------
    >>> s = mamba1(hidden=4096, inner=8192, state_size=16, conv_kernel=4, dt_rank=256)
    >>> s.ssm_elems, s.conv_dim, s.norm_params
    (131072, 8192, 288)
    """
    tensors = [_linear("ssm_in", 2 * inner, hidden)]
    if proj_bias:
        tensors.append(MixerTensor("ssm_in.bias", (2 * inner,), "param"))
    tensors.append(MixerTensor("ssm_conv1d.weight", (inner, 1, conv_kernel), "conv"))
    if conv_bias:
        tensors.append(MixerTensor("ssm_conv1d.bias", (inner,), "param"))
    tensors += [_linear("ssm_x", dt_rank + 2 * state_size, inner), _linear("ssm_dt", inner, dt_rank),
                MixerTensor("ssm_dt.bias", (inner,), "param"), MixerTensor("ssm_a", (inner, state_size), "param"),
                MixerTensor("ssm_d", (inner,), "param"), _linear("ssm_out", hidden, inner)]
    if proj_bias:
        tensors.append(MixerTensor("ssm_out.bias", (hidden,), "param"))
    if dt_norms:
        tensors += [MixerTensor("ssm_dt_norm.weight", (dt_rank,), "norm"),
                    MixerTensor("ssm_b_norm.weight", (state_size,), "norm"),
                    MixerTensor("ssm_c_norm.weight", (state_size,), "norm")]
    return StateSpec(kind="mamba1", tensors=tuple(tensors), conv_dim=inner, conv_kernel=conv_kernel,
                     state_heads=inner, state_rows=1, state_cols=state_size)
