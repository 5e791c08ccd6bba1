"""The record classes (vramcore._record) behave as dataclasses' own, without importing dataclasses."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from collections import namedtuple
from dataclasses import FrozenInstanceError, dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vramcore
from vramcore import _record
from vramcore._record import Record, field, record

# ---------------------------------------------------------------------- the same classes, built both ways


@record(frozen=True, slots=True, repr=False, eq=False)
class Ours(Record):
    a: int
    b: str = "x"
    c: int = field(default=0, compare=False)
    d: float = field(default=0.0, repr=False)


@record(frozen=True, slots=True)
class OursMade(Record):
    """The same fields, with record's own repr / eq / hash (not the mixin's)."""

    a: int
    b: str = "x"
    c: int = field(default=0, compare=False)
    d: float = field(default=0.0, repr=False)


@dataclass(frozen=True, slots=True)
class Theirs:
    a: int
    b: str = "x"
    c: int = dataclasses.field(default=0, compare=False)
    d: float = dataclasses.field(default=0.0, repr=False)


@record(frozen=True, repr=False, eq=False)
class OursOne(Record):
    a: int


@dataclass(frozen=True)
class TheirsOne:
    a: int


@record(frozen=True, repr=False, eq=False)
class OursNone(Record):
    pass


@dataclass(frozen=True)
class TheirsNone:
    pass


values = st.tuples(st.integers(-3, 3), st.sampled_from(["x", "y", "it's"]), st.integers(0, 2),
                   st.sampled_from([0.0, 1.5, float("nan")]))


@given(values, values)
def test_like_dataclasses(x: tuple, y: tuple) -> None:
    tx, ty = Theirs(*x), Theirs(*y)
    for cls in (Ours, OursMade):
        ox, oy = cls(*x), cls(*y)
        assert repr(ox).replace(f"{cls.__name__}(", "Theirs(") == repr(tx)
        assert (ox == oy) == (tx == ty) and (ox != oy) == (tx != ty)
        assert hash(ox) == hash(tx)                    # the hash of the compared fields' tuple, as dataclasses'
        nan = float("nan")
        assert (cls(1, d=nan) == cls(1, d=nan)) == (Theirs(1, d=nan) == Theirs(1, d=nan))
        assert ox == _record.replace(ox, c=x[2] + 1) and hash(ox) == hash(_record.replace(ox, c=x[2] + 1))
    assert (OursOne(x[0]) == OursOne(y[0])) == (TheirsOne(x[0]) == TheirsOne(y[0]))
    assert hash(OursOne(x[0])) == hash(TheirsOne(x[0]))


def test_other_classes_and_empty() -> None:
    for cls in (Ours, OursMade):
        assert cls(1).__eq__(Theirs(1)) is NotImplemented and cls(1) != Theirs(1)
        assert cls(1) != (1, "x", 0, 0.0) and cls(1).__eq__(3) is NotImplemented
    assert Ours(1) != OursMade(1)
    assert OursNone() == OursNone() and hash(OursNone()) == hash(TheirsNone())
    assert repr(OursNone()) == repr(TheirsNone()).replace("TheirsNone", "OursNone")
    assert repr(OursOne(2)) == "OursOne(a=2)"


@record(frozen=True)
class Node:
    name: str
    child: object = None


@dataclass(frozen=True)
class TheirNode:
    name: str
    child: object = None


def test_repr_of_a_record_inside_itself() -> None:
    class Box(list):  # a mutable container lets a frozen record hold itself, as reprlib.recursive_repr handles
        pass

    ours, theirs = Box(), Box()
    o, t = Node("n", ours), TheirNode("n", theirs)
    ours.append(o)
    theirs.append(t)
    assert repr(o) == repr(t).replace("TheirNode", "Node") == "Node(name='n', child=[...])"


# ---------------------------------------------------------------------- __init__


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
    c: list = dataclasses.field(default_factory=list)
    seen: tuple = dataclasses.field(default=(), init=False)
    e: int = dataclasses.field(default=5, kw_only=True)
    f: int = dataclasses.field(kw_only=True, default=0)
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
    return tuple(getattr(made, f.name) for f in dataclasses.fields(made))


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
    assert dataclasses.replace(o, b="y") == OursInit(1, 2, 3, "y") and dataclasses.replace(o, e=7).seen == (1, 7)
    assert _record.replace(o, b="y") == OursInit(1, 2, 3, "y") and _record.replace(o, e=7).seen == (1, 7)
    assert o.__replace__(b="y") == OursInit(1, 2, 3, "y")        # what copy.replace calls (Python 3.13)
    assert str(inspect.signature(OursInit)) == str(inspect.signature(TheirsInit))
    assert str(inspect.signature(OursKw)) == str(inspect.signature(TheirsKw))
    assert OursInit.__match_args__ == TheirsInit.__match_args__ == ("a", "g", "h", "b", "c")
    assert OursKw.__match_args__ == TheirsKw.__match_args__ == ()
    assert OursInit.__slots__ == TheirsInit.__slots__ and not hasattr(o, "__dict__")
    assert hasattr(OursKw(a=1, c=2, d=3), "__dict__")
    match o:
        case OursInit(1, 2, h, c=[]):
            assert h == 3
        case _:
            raise AssertionError("no match")


def test_frozen_errors_as_dataclasses() -> None:
    def refusal(obj: object, name: str, delete: bool) -> tuple[type, str]:
        with pytest.raises(AttributeError) as info:
            if delete:
                delattr(obj, name)
            else:
                setattr(obj, name, 1)
        return info.type, str(info.value)

    for ours, theirs in ((OursInit(1, 2, 3), TheirsInit(1, 2, 3)), (OursKw(a=1, c=2, d=3), TheirsKw(a=1, c=2, d=3)),
                         (OursOne(1), TheirsOne(1))):
        for name in ("a", "zz"):
            for delete in (False, True):
                kind, message = refusal(ours, name, delete)
                assert kind is FrozenInstanceError and issubclass(kind, AttributeError)
                if name == "zz" and hasattr(theirs, "__slots__"):
                    # Python 3.11's slotted frozen dataclass fails here with a TypeError from super(); 3.12 says this
                    assert message == f"cannot {'delete' if delete else 'assign to'} field 'zz'"
                    continue
                assert (kind, message) == refusal(theirs, name, delete)


def test_replace_errors_as_dataclasses() -> None:
    o, t = OursInit(1, 2, 3), TheirsInit(1, 2, 3)
    for rep in (_record.replace, dataclasses.replace):
        with pytest.raises(ValueError) as ours:
            rep(o, seen=(1,))
        with pytest.raises(ValueError) as theirs:
            dataclasses.replace(t, seen=(1,))
        assert str(ours.value) == str(theirs.value)
        with pytest.raises(TypeError, match="unexpected keyword argument 'zz'"):
            rep(o, zz=1)
    with pytest.raises(TypeError, match="record instances"):
        _record.replace(OursInit, a=1)
    with pytest.raises(TypeError, match="record instances"):
        _record.replace(Theirs(1), a=2)


# ---------------------------------------------------------------------- fields, asdict, is_dataclass

ATTRS = ("name", "type", "default", "default_factory", "init", "repr", "hash", "compare", "kw_only", "metadata")


def _describe(fs: tuple) -> list[tuple]:
    def value(f: object, attr: str) -> object:
        v = getattr(f, attr)
        return "MISSING" if v is _record.MISSING or v is dataclasses.MISSING else v

    return [tuple(value(f, a) for a in ATTRS) for f in fs]


def test_fields_as_dataclasses() -> None:
    for ours, theirs in ((OursInit, TheirsInit), (OursKw, TheirsKw), (Ours, Theirs), (OursNone, TheirsNone)):
        assert _describe(dataclasses.fields(ours)) == _describe(dataclasses.fields(theirs))
        assert _describe(_record.fields(ours)) == _describe(dataclasses.fields(theirs))
        assert dataclasses.is_dataclass(ours) and dataclasses.is_dataclass(ours.__new__(ours))
        assert ours.__dataclass_params__.frozen and ours.__dataclass_params__.eq == ours.__record_params__["eq"]
    assert _record.fields(OursInit(1, 2, 3)) is _record.fields(OursInit)
    with pytest.raises(TypeError):
        _record.fields(Theirs)


@record(frozen=True)
class Meta:
    a: int = field(default=1, metadata={"unit": "B"})


def test_metadata_is_read_only() -> None:
    assert _record.fields(Meta)[0].metadata["unit"] == "B" and dataclasses.fields(Meta)[0].metadata == {"unit": "B"}
    with pytest.raises(TypeError):
        _record.fields(Meta)[0].metadata["unit"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        _record.fields(OursInit)[0].metadata["unit"] = "x"  # type: ignore[index]


Pair = namedtuple("Pair", "x y")


@record(frozen=True)
class Outer:
    inner: OursInit
    items: list = field(default_factory=list)
    by_name: dict = field(default_factory=dict)
    pair: tuple = ()


@dataclass(frozen=True)
class TheirOuter:
    inner: TheirsInit
    items: list = dataclasses.field(default_factory=list)
    by_name: dict = dataclasses.field(default_factory=dict)
    pair: tuple = ()


def test_asdict_as_dataclasses() -> None:
    nested = [OursInit(4, 5, 6)]
    o = Outer(OursInit(1, 2, 3, c=[1, [2]]), nested, {"k": OursKw(a=1, c=2, d=3)}, Pair(1, TheirsKw(a=1, c=2, d=3)))
    t = TheirOuter(TheirsInit(1, 2, 3, c=[1, [2]]), [TheirsInit(4, 5, 6)], {"k": TheirsKw(a=1, c=2, d=3)},
                   Pair(1, TheirsKw(a=1, c=2, d=3)))
    expected = dataclasses.asdict(t)
    assert _record.asdict(o) == dataclasses.asdict(o) == expected
    made = _record.asdict(o)
    assert made["inner"]["c"] is not o.inner.c and made["items"] is not nested     # copies, as dataclasses'
    assert type(made["pair"]) is Pair
    assert _record.asdict(o, dict_factory=list) == dataclasses.asdict(t, dict_factory=list)
    with pytest.raises(TypeError, match="record instances"):
        _record.asdict(Outer)


# ---------------------------------------------------------------------- pickling, copies, subclasses


@pytest.mark.parametrize("obj", [OursInit(1, 2, 3, c=[4]), OursKw(a=1, c=2, d=3), Ours(1, "y", 2, 0.5),
                                 OursMade(1), OursNone(), Meta()])
def test_pickle_and_copies(obj: object) -> None:
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(obj, proto))
        assert back == obj and type(back) is type(obj)
        assert _describe_values(back) == _describe_values(obj)
    assert copy.copy(obj) == obj and copy.deepcopy(obj) == obj
    if isinstance(obj, OursInit):
        assert copy.deepcopy(obj).c is not obj.c and copy.copy(obj).c is obj.c


def _describe_values(obj: object) -> list:
    return [getattr(obj, f.name) for f in _record.fields(obj)]


def test_library_records_pickle() -> None:
    spec = vramcore.get_model("DeepSeek-R1-Distill-Llama-8B").spec
    for obj in (spec, vramcore.get_gpu("H100"), vramcore.get_engine("vllm"), vramcore.get_dtype("bf16"),
                vramcore.estimate("DeepSeek-R1-Distill-Llama-8B", context=4096, gpu="H100")):
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and repr(back) == repr(obj)
        assert copy.deepcopy(obj) == obj


@record(frozen=True, slots=True, kw_only=True)
class Child(OursInit):
    extra: int = 9
    b: str = "child"


@dataclass(frozen=True, slots=True, kw_only=True)
class TheirChild(TheirsInit):
    extra: int = 9
    b: str = "child"


def test_subclass_fields_as_dataclasses() -> None:
    assert _describe(_record.fields(Child)) == _describe(dataclasses.fields(TheirChild))
    assert str(inspect.signature(Child)) == str(inspect.signature(TheirChild))
    c = Child(1, 2, 3, extra=1)
    assert (c.b, c.extra, c.seen) == ("child", 1, (1, 5)) and c != OursInit(1, 2, 3, "child")
    assert Child.__slots__ == TheirChild.__slots__ == ("extra",)

    @dataclass(frozen=True)
    class Theirs2(OursInit):      # a user's dataclass over a record
        z: int = 0

    assert [f.name for f in dataclasses.fields(Theirs2)][-1] == "z" and Theirs2(1, 2, 3, z=4).seen == (1, 5)


def test_class_refusals_as_dataclasses() -> None:
    def error(build: object) -> tuple[type, str]:
        with pytest.raises((TypeError, ValueError)) as info:
            build()  # type: ignore[operator]
        return info.type, str(info.value)

    def ours_mutable() -> None:
        @record(frozen=True)
        class Bad:
            a: list = []  # noqa: RUF012

    def theirs_mutable() -> None:
        @dataclass(frozen=True)
        class Bad:
            a: list = []  # noqa: RUF012

    def ours_order() -> None:
        @record(frozen=True)
        class Bad:
            a: int = 1
            b: int

    def theirs_order() -> None:
        @dataclass(frozen=True)
        class Bad:
            a: int = 1
            b: int

    def ours_unannotated() -> None:
        @record(frozen=True)
        class Bad:
            a = field(default=1)

    def theirs_unannotated() -> None:
        @dataclass(frozen=True)
        class Bad:
            a = dataclasses.field(default=1)

    assert error(ours_mutable) == error(theirs_mutable)
    assert error(ours_order) == error(theirs_order)
    assert error(ours_unannotated) == error(theirs_unannotated)
    with pytest.raises(ValueError, match="both default and default_factory"):
        field(default=1, default_factory=list)
    with pytest.raises(TypeError, match="frozen"):
        record(frozen=False)
    with pytest.raises(TypeError, match="order"):
        record(frozen=True, order=True)


@record(frozen=True)
class Undocumented:
    a: int
    b: list = field(default_factory=list)
    c: str = field(default="x", kw_only=True)


@dataclass(frozen=True)
class TheirUndocumented:
    a: int
    b: list = dataclasses.field(default_factory=list)
    c: str = dataclasses.field(default="x", kw_only=True)


def test_doc_and_class_attributes_as_dataclasses() -> None:
    assert Undocumented.__doc__ == TheirUndocumented.__doc__.replace("TheirUndocumented", "Undocumented")
    assert OursMade.__doc__.startswith("The same fields")
    assert Undocumented.c == TheirUndocumented.c == "x" and not hasattr(Undocumented, "b")  # class-level defaults
    assert not hasattr(OursInit, "b") or not isinstance(OursInit.__dict__.get("b"), str)    # slots: no defaults


# ---------------------------------------------------------------------- the library's records


def test_library_records() -> None:
    spec = vramcore.get_model("DeepSeek-R1-Distill-Llama-8B").spec
    # ModelSpec leaves model_type and quantization out of equality, as its dataclass did
    assert spec == spec.replace(model_type="other") and hash(spec) == hash(dataclasses.replace(spec, model_type="x"))
    assert spec != _record.replace(spec, intermediate_size=spec.intermediate_size + 1)
    gpu = vramcore.get_gpu("H100")
    assert repr(gpu).startswith("GPUSpec(name='H100-SXM-80GB', vendor='NVIDIA', ") and gpu == _record.replace(gpu)
    assert vramcore.get_engine("vllm") != vramcore.get_engine("sglang")
    assert vramcore.get_engine("vllm") == vramcore.get_engine("vllm", gpu_memory_utilization=0.9)
    assert {vramcore.get_dtype("bf16"), vramcore.get_dtype("bf16")} == {vramcore.get_dtype("bf16")}
    est = vramcore.estimate("DeepSeek-R1-Distill-Llama-8B", context=4096, gpu="H100")
    assert est.to_dict() == dataclasses.asdict(est) and list(est.to_dict()) == [
        f.name for f in dataclasses.fields(vramcore.Estimate)]
    with pytest.raises(FrozenInstanceError):
        spec.num_layers = 3  # type: ignore[misc]


def test_library_specs_bind_like_dataclasses() -> None:
    """ModelSpec and EngineSpec keep their dataclass signatures and refusals."""
    sig = inspect.signature(vramcore.ModelSpec)
    assert all(p.kind is p.KEYWORD_ONLY for p in sig.parameters.values()) and "num_layers" in sig.parameters
    with pytest.raises(TypeError, match="missing 5 required keyword-only arguments"):
        vramcore.ModelSpec(name="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'layers'"):
        vramcore.ModelSpec(layers=2, hidden_size=8, num_heads=2, intermediate_size=8, vocab_size=8)  # type: ignore
    spec = vramcore.ModelSpec(num_layers=2, hidden_size=8, num_heads=2, intermediate_size=8, vocab_size=8)
    assert spec.num_kv_heads == 2 and spec == _record.replace(spec)      # __post_init__ filled the derived field
    engine = vramcore.EngineSpec("custom", "vllm")
    assert engine.kind == "vllm" and list(inspect.signature(vramcore.EngineSpec).parameters)[:2] == ["name", "kind"]
    with pytest.raises(TypeError, match="multiple values for argument 'kind'"):
        vramcore.EngineSpec("custom", "vllm", kind="sglang")  # type: ignore[misc]
