"""The shared repr / equality / hash of the frozen dataclasses (vramcore._record) behave as dataclasses' own."""

from __future__ import annotations

import inspect
from dataclasses import FrozenInstanceError, dataclass, field, fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vramcore
from vramcore._record import Record, record


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class Ours(Record):
    a: int
    b: str = "x"
    c: int = field(default=0, compare=False)
    d: float = field(default=0.0, repr=False)


@dataclass(frozen=True, slots=True)
class Theirs:
    a: int
    b: str = "x"
    c: int = field(default=0, compare=False)
    d: float = field(default=0.0, repr=False)


@dataclass(frozen=True, repr=False, eq=False)
class OursOne(Record):
    a: int


@dataclass(frozen=True)
class TheirsOne:
    a: int


@dataclass(frozen=True, repr=False, eq=False)
class OursNone(Record):
    pass


@dataclass(frozen=True)
class TheirsNone:
    pass


values = st.tuples(st.integers(-3, 3), st.sampled_from(["x", "y", "it's"]), st.integers(0, 2),
                   st.sampled_from([0.0, 1.5, float("nan")]))


@given(values, values)
def test_like_dataclasses(x: tuple, y: tuple) -> None:
    ox, oy, tx, ty = Ours(*x), Ours(*y), Theirs(*x), Theirs(*y)
    assert repr(ox).replace("Ours(", "Theirs(") == repr(tx)
    assert (ox == oy) == (tx == ty) and (ox != oy) == (tx != ty)
    if ox == oy:
        assert hash(ox) == hash(oy)
    assert ox == replace(ox, c=x[2] + 1) and hash(ox) == hash(replace(ox, c=x[2] + 1))  # compare=False
    assert (OursOne(x[0]) == OursOne(y[0])) == (TheirsOne(x[0]) == TheirsOne(y[0]))
    assert hash(OursOne(x[0])) == hash(OursOne(x[0]))


def test_other_classes_and_empty() -> None:
    assert Ours(1).__eq__(Theirs(1)) is NotImplemented and Ours(1) != Theirs(1)
    assert Ours(1) != (1, "x", 0, 0.0) and Ours(1).__eq__(3) is NotImplemented
    assert OursNone() == OursNone() and hash(OursNone()) == hash(OursNone())
    assert repr(OursNone()) == repr(TheirsNone()).replace("TheirsNone", "OursNone")
    assert repr(OursOne(2)) == "OursOne(a=2)"


def test_library_records() -> None:
    spec = vramcore.get_model("DeepSeek-R1-Distill-Llama-8B").spec
    # ModelSpec leaves model_type and quantization out of equality, as its dataclass did
    assert spec == replace(spec, model_type="other") and hash(spec) == hash(replace(spec, model_type="other"))
    assert spec != replace(spec, intermediate_size=spec.intermediate_size + 1)
    gpu = vramcore.get_gpu("H100")
    assert repr(gpu).startswith("GPUSpec(name='H100-SXM-80GB', vendor='NVIDIA', ") and gpu == replace(gpu)
    assert vramcore.get_engine("vllm") != vramcore.get_engine("sglang")
    assert vramcore.get_engine("vllm") == vramcore.get_engine("vllm", gpu_memory_utilization=0.9)
    assert {vramcore.get_dtype("bf16"), vramcore.get_dtype("bf16")} == {vramcore.get_dtype("bf16")}


def _post(self: object) -> None:
    object.__setattr__(self, "seen", (self.a, self.e))  # type: ignore[attr-defined]


@record(frozen=True, slots=True)
class OursInit(Record):
    a: int
    g: int
    h: int
    b: str = "x"
    c: list = field(default_factory=list)
    seen: tuple = field(default=(), init=False)
    e: int = field(default=5, kw_only=True)
    f: int = field(kw_only=True, default=0)
    __post_init__ = _post


@dataclass(frozen=True, slots=True)
class TheirsInit:
    a: int
    g: int
    h: int
    b: str = "x"
    c: list = field(default_factory=list)
    seen: tuple = field(default=(), init=False)
    e: int = field(default=5, kw_only=True)
    f: int = field(kw_only=True, default=0)
    __post_init__ = _post


@record(frozen=True, kw_only=True)
class OursKw(Record):
    a: int
    b: int = 2
    c: int
    d: int


@dataclass(frozen=True, kw_only=True)
class TheirsKw:
    a: int
    b: int = 2
    c: int
    d: int


def _outcome(cls: type, args: tuple, kwargs: dict) -> object:
    try:
        made = cls(*args, **kwargs)
    except TypeError as exc:
        # the same error, named after the class (dataclasses' generated __init__ says "__init__()")
        return ("TypeError", str(exc).replace(f"{cls.__qualname__}.__init__()", "__init__()"))
    return tuple(getattr(made, f.name) for f in fields(made))


names = st.sampled_from(["a", "b", "c", "e", "f", "g", "h", "seen", "zz"])


@given(st.lists(st.integers(0, 9), max_size=5), st.dictionaries(names, st.integers(0, 9), max_size=5))
def test_record_init_binds_as_dataclasses(args: list, kwargs: dict) -> None:
    """record's shared __init__ binds positional, keyword-only, defaulted, factory and init=False fields, runs
    __post_init__, and refuses a missing, repeated, unknown or extra argument with dataclasses' TypeError."""
    assert _outcome(OursInit, tuple(args), kwargs) == _outcome(TheirsInit, tuple(args), kwargs)
    kw = {{"e": "c", "f": "d"}.get(k, k): v for k, v in kwargs.items() if k in ("a", "b", "e", "f", "zz")}
    assert _outcome(OursKw, tuple(args[:1]), kw) == _outcome(TheirsKw, tuple(args[:1]), kw)


def test_record_class_is_a_frozen_dataclass() -> None:
    o = OursInit(1, 2, 3)
    assert o.c == [] and o.c is not OursInit(1, 2, 3).c and o.seen == (1, 5)
    with pytest.raises(FrozenInstanceError):
        o.a = 2  # type: ignore[misc]
    assert replace(o, b="y") == OursInit(1, 2, 3, "y") and replace(o, e=7).seen == (1, 7)
    assert [f.name for f in fields(OursInit)] == [f.name for f in fields(TheirsInit)]
    assert str(inspect.signature(OursInit)) == str(inspect.signature(TheirsInit))
    assert str(inspect.signature(OursKw)) == str(inspect.signature(TheirsKw))
    with pytest.raises(TypeError, match="frozen"):
        record(frozen=False)


def test_library_specs_bind_like_dataclasses() -> None:
    """ModelSpec and EngineSpec (the record classes) keep their dataclass signatures and refusals."""
    sig = inspect.signature(vramcore.ModelSpec)
    assert all(p.kind is p.KEYWORD_ONLY for p in sig.parameters.values()) and "num_layers" in sig.parameters
    with pytest.raises(TypeError, match="missing 5 required keyword-only arguments"):
        vramcore.ModelSpec(name="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'layers'"):
        vramcore.ModelSpec(layers=2, hidden_size=8, num_heads=2, intermediate_size=8, vocab_size=8)  # type: ignore
    spec = vramcore.ModelSpec(num_layers=2, hidden_size=8, num_heads=2, intermediate_size=8, vocab_size=8)
    assert spec.num_kv_heads == 2 and spec == replace(spec)      # __post_init__ filled the derived field
    engine = vramcore.EngineSpec("custom", "vllm")
    assert engine.kind == "vllm" and list(inspect.signature(vramcore.EngineSpec).parameters)[:2] == ["name", "kind"]
    with pytest.raises(TypeError, match="multiple values for argument 'kind'"):
        vramcore.EngineSpec("custom", "vllm", kind="sglang")  # type: ignore[misc]
